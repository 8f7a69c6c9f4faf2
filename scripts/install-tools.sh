#!/usr/bin/env bash
# install-tools.sh installs the real components the e2e suite needs: a registry
# server (Debian's docker-registry; the tests write their own bcrypt htpasswd),
# and the peer tools cosign v3 and v2 and crane, built from source with the
# local Go toolchain. (scripts/goreleaser-check.sh builds goreleaser the same
# way, into the same cache.) Builds are cached under $IMGSIGN_TOOLS (default
# ~/.cache/imgsign/tools) so that later runs take seconds.
#
# Usage: scripts/install-tools.sh [registry|cosign|all]   (default: all)
set -euo pipefail

TOOLS="${IMGSIGN_TOOLS:-$HOME/.cache/imgsign/tools}"
mkdir -p "$TOOLS/bin"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

COSIGN3_VERSION=v3.1.3
COSIGN2_VERSION=v2.6.5
CRANE_VERSION=v0.22.1

log() { printf 'install-tools: %s\n' "$*" >&2; }

install_registry() {
  if [ -x /usr/bin/docker-registry ]; then return; fi
  log "installing Debian's docker-registry"
  export DEBIAN_FRONTEND=noninteractive
  # The package's post-install script may start a system service listening on
  # all interfaces; policy-rc.d forbids that. The tests start their own server.
  local rc=/usr/sbin/policy-rc.d had_rc=0
  [ -e "$rc" ] && had_rc=1
  if [ "$had_rc" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$rc"; chmod +x "$rc"; fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  [ "$had_rc" = 0 ] && rm -f "$rc"
  # Stop the packaged service if anything started it anyway.
  pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry' 2>/dev/null || true
}

# go_tool NAME MODULE@VERSION: build once into $TOOLS/bin/NAME-VERSION.
go_tool() {
  local name=$1 pkg=$2 version=${2##*@}
  local dst="$TOOLS/bin/$name-$version"
  if [ -x "$dst" ]; then return; fi
  log "building $pkg (cached afterwards in $TOOLS)"
  local tmp; tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
  # Module download chatter is noise in CI logs; errors still show.
  GOBIN="$tmp" go install "$pkg" 2> >(grep -v '^go: downloading' >&2)
  mv "$tmp/$(basename "${pkg%@*}")" "$dst"
  rm -rf "$tmp"
}

install_cosign() {
  go_tool cosign github.com/sigstore/cosign/v3/cmd/cosign@$COSIGN3_VERSION
  go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN2_VERSION
  go_tool crane github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION
}

case "${1:-all}" in
  registry) install_registry ;;
  cosign) install_cosign ;;
  all) install_registry; install_cosign ;;
  *) echo "usage: $0 [registry|cosign|all]" >&2; exit 2 ;;
esac
