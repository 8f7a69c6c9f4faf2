#!/usr/bin/env bash
# demo.sh: the quick start, end to end, on a registry it starts itself on
# 127.0.0.1. It builds imgsign, pushes an image, makes a key pair, signs,
# verifies, and then plays the attacker three ways; each must be refused.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$work/##g; s#$PWD/##g"; "$@"; }
# expect_exit CODE CMD...: run a command that must fail with CODE.
expect_exit() {
  local want=$1; shift
  set +e; run "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then
    echo "demo: expected exit code $want, got $got" >&2; exit 1
  fi
  echo "-> refused, exit code $got, as expected"
}

work=$(mktemp -d)
trap 'kill "${regpid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

bold "Build imgsign"
go build -o bin/imgsign ./cmd/imgsign
go build -o "$work/devregistry" ./scripts/devregistry
imgsign() { "$PWD/bin/imgsign" "$@"; }

bold "Start a local registry on 127.0.0.1 and push an image"
"$work/devregistry" serve -addr-file "$work/addr" &
regpid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
host=$(cat "$work/addr")
image="$host/demo/app:v1"
digest_ref=$("$work/devregistry" push-random "$image")
echo "pushed $image = $digest_ref"

bold "Generate a key pair (the password comes from IMGSIGN_PASSWORD here)"
export IMGSIGN_PASSWORD=correct-horse-battery-staple
run imgsign generate-key-pair --output-key-prefix "$work/release"
run imgsign key info "$work/release.pub"

bold "Sign the image (by digest; the tag is resolved once), in cosign's legacy and v3 bundle layouts"
run imgsign sign --key "$work/release.key" -a built-by=demo "$image"

bold "Verify it before deploy"
run imgsign verify --key "$work/release.pub" -a built-by=demo "$image"
run imgsign verify --key "$work/release.pub" -a built-by=demo --format bundle "$image"

bold "Attest how it was built, and check that before deploy too"
printf '{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/demo/v1"}\n' > "$work/provenance.json"
printf 'conditions:\n  - name: built by our CI\n    expression: predicate.builder.id == "https://ci.example/builder"\n' > "$work/policy.yaml"
run imgsign attest --key "$work/release.key" --type slsaprovenance1 --predicate "$work/provenance.json" "$image"
run imgsign verify-attestation --key "$work/release.pub" --type slsaprovenance1 --policy "$work/policy.yaml" "$image" >/dev/null

bold "Attack 1: the tag is moved to an image nobody signed"
moved_ref=$("$work/devregistry" push-random "$image")
expect_exit 10 imgsign verify --key "$work/release.pub" "$image"

bold "Attack 2: a valid signature of the old image is copied onto the new one"
old=${digest_ref#*@}
new=${moved_ref#*@}
"$work/devregistry" copy-manifest "$host/demo/app:${old/:/-}.sig" "$host/demo/app:${new/:/-}.sig"
expect_exit 12 imgsign verify --key "$work/release.pub" "$image"

bold "Attack 3: the original image, checked against a key that did not sign it"
IMGSIGN_PASSWORD=other run imgsign generate-key-pair --output-key-prefix "$work/intruder" 2>/dev/null
expect_exit 12 imgsign verify --key "$work/intruder.pub" "$digest_ref"

bold "The signed image still verifies by digest"
run imgsign verify --key "$work/release.pub" "$digest_ref"

bold "Air-gapped: save the image with its signatures, then verify with no network at all"
run imgsign save --dir "$work/offline" "$digest_ref"
run imgsign verify --key "$work/release.pub" --local "$work/offline" --verify-blobs

bold "Attack 4: a layer of the saved copy is overwritten on its way to the air gap"
manifest="$work/offline/blobs/sha256/${old#sha256:}"
layer=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$manifest" | tail -1 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
printf 'evil' > "$work/offline/blobs/sha256/$layer"
expect_exit 12 imgsign verify --key "$work/release.pub" --local "$work/offline" --verify-blobs

printf '\nDemo complete: signed, verified, saved, and four tampered cases refused.\n'
