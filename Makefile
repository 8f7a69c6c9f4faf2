# imgsign developer tasks. `make help` lists them.
SHELL := /bin/bash
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

BIN        := bin/imgsign
# The release's build tags (.goreleaser.yaml): grpcnotrace keeps gRPC from
# linking x/net/trace, whose templates defeat dead-method elimination.
TAGS       := grpcnotrace
FUZZTIME   ?= 20s
# Minimizing a new input stops the count of executions; keep it short in a
# time-boxed run so the time goes to exploring.
FUZZMINIMIZE ?= 2s
# go test's default 10m is too short for a cold e2e run on 2 cores.
TEST_TIMEOUT ?= 30m

.PHONY: help build test unit e2e fuzz demo bench bench-release lint tools release-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/imgsign
	go build -trimpath -buildvcs=auto -tags $(TAGS) -o $(BIN) ./cmd/imgsign

test: tools lint unit fuzz e2e release-check ## the whole test suite (installs the real registry and cosign first)

unit: ## unit and in-process tests (no external tools)
	go test -race -count=1 $$(go list ./... | grep -v /test/e2e)
	cd test/buildkit-oracle && go test -count=1 .

e2e: tools ## end-to-end tests against a real registry and real cosign
	IMGSIGN_E2E_REQUIRE=1 go test -count=1 -timeout $(TEST_TIMEOUT) ./test/e2e/...

fuzz: ## run the fuzzers (key parser, log entries, Dockerfile images, tar archives and layouts, policies, FROM resolution against BuildKit) for FUZZTIME each
	bash scripts/fuzz.sh FuzzParseKey ./pkg/keys -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzParseCosignBundle ./pkg/tlog -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzVerify ./pkg/tlog -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzImages ./pkg/dockerfile -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzOpen ./pkg/tarindex -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzImages ./pkg/k8simages -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzParse ./pkg/statement -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzParseInPlace ./pkg/envelope -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzParseDSSE ./pkg/bundle -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzWriteIndentedArray ./internal/cli -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzOpenTar ./pkg/layout -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzParse ./pkg/trustpolicy -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	cd test/buildkit-oracle && bash ../../scripts/fuzz.sh FuzzFromResolution . -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzReview ./pkg/admission -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzIndexLayer ./pkg/diff -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzGet ./pkg/idtoken -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	bash scripts/fuzz.sh FuzzDecodeBounded ./pkg/policy -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)

demo: ## build imgsign and run the quick start end to end on a local registry
	bash scripts/demo.sh

COSIGN := $(or $(IMGSIGN_TOOLS),$(HOME)/.cache/imgsign/tools)/bin/cosign-v3.1.3

bench: build ## benchmarks: wall time, peak memory and HTTP requests per sign and verify, beside cosign's
	go test -run '^$$' -bench . -benchmem $$(go list ./... | grep -v /test/e2e)
	go run ./scripts/bench -imgsign $(BIN) -cosign $(COSIGN) -n 20

bench-release: ## the release binary's size (budget 40 MB, largest modules) and start-up against cosign v3 (also part of bench)
	go run ./scripts/bench -only release -cosign $(COSIGN) -startup-runs 40

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

tools: ## install the registry server and peer tools the e2e suite uses (cached)
	bash scripts/install-tools.sh

release-check: ## validate .goreleaser.yaml (goreleaser check, and a test of its contents)
	bash scripts/goreleaser-check.sh
	go test -count=1 ./internal/release/

clean: ## remove build output
	rm -rf bin
