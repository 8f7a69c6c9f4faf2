#!/usr/bin/env bash
# goreleaser-check.sh validates the release configuration (.goreleaser.yaml)
# with the real goreleaser: `goreleaser check` loads it strictly (unknown keys
# are errors), applies goreleaser's defaults and validation, and exits 1 if the
# configuration is invalid and 2 if it uses deprecated properties.
#
# That covers the container image (kos:) too: check applies the ko pipe's
# defaults, so a kos entry naming a build that does not exist, a main path
# that is not a package directory, or no repository is an error. It needs no
# network. What it cannot do offline is build the image: a snapshot
# (`goreleaser release --snapshot`) makes ko fetch the base image from
# gcr.io and load the result into a local Docker daemon. test/e2e builds the
# image instead, with the same ko (scripts/install-tools.sh ko) and the
# release build's flags, daemonless, onto an empty base in its test registry
# (TestDeployManifests), then runs, signs and verifies the imgsign in it and
# applies deploy/ to a real kube-apiserver; internal/release checks the kos
# values (pinned base, platforms, tags, keyless signing) against the builds
# and deploy/.
#
# goreleaser is built from source with the local Go toolchain, once, into
# $IMGSIGN_TOOLS/bin/goreleaser-$GORELEASER_VERSION (default IMGSIGN_TOOLS:
# ~/.cache/imgsign/tools, the same cache scripts/install-tools.sh uses); later
# runs take well under a second. A cold build takes a few minutes.
#
# Usage: scripts/goreleaser-check.sh [CONFIG]   (default: .goreleaser.yaml at the repository root)
set -euo pipefail

# The newest goreleaser v2 that builds with Go 1.26.8 and the module proxy:
# v2.18.x declares go 1.27, and v2.17.0 needs go.digitalxero.dev/go-msix,
# which the proxy refuses (403). Keep in step with scripts/install-tools.sh.
GORELEASER_VERSION=v2.16.0

export GOTOOLCHAIN=local
TOOLS="${IMGSIGN_TOOLS:-$HOME/.cache/imgsign/tools}"
GORELEASER="$TOOLS/bin/goreleaser-$GORELEASER_VERSION"

root="$(cd "$(dirname "$0")/.." && pwd)"
config="$(realpath "${1:-$root/.goreleaser.yaml}")"

log() { printf 'goreleaser-check: %s\n' "$*" >&2; }

if [ ! -x "$GORELEASER" ]; then
  log "building goreleaser $GORELEASER_VERSION (cached afterwards as $GORELEASER)"
  mkdir -p "$TOOLS/bin"
  # Install into a private GOBIN and move the binary into place, so that an
  # interrupted build never leaves a half-written binary under the cached name.
  tmp="$(mktemp -d "$TOOLS/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # Module download chatter is noise in CI logs; errors still show.
  GOBIN="$tmp" go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION" \
    2> >(grep -v '^go: downloading' >&2)
  mv "$tmp/goreleaser" "$GORELEASER"
fi

# Run from the repository root: goreleaser resolves paths in the configuration
# (builds' main, archives' files) relative to the working directory.
cd "$root"
"$GORELEASER" check "$config"
