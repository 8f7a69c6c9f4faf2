#!/usr/bin/env bash
# install-tools.sh installs the real components the e2e suite needs: a registry
# server (Debian's docker-registry; the tests write their own bcrypt htpasswd),
# the peer tools cosign v3 and v2 and crane, the Rekor transparency logs
# (v1 on Trillian and Debian's MariaDB, v2 "rekor-tiles" posix) and the keyless
# stack (Fulcio, the tesseract CT log, a timestamp authority), and for the admission webhook tests kube-apiserver,
# kubectl and etcd, and ko for the release image, built from
# source with the local Go toolchain. (scripts/goreleaser-check.sh builds goreleaser the same
# way, into the same cache.) Builds are cached under $IMGSIGN_TOOLS (default
# ~/.cache/imgsign/tools) so that later runs take seconds.
#
# Usage: scripts/install-tools.sh [registry|cosign|rekor|keyless|kms|kube|ko|all]   (default: all)
set -euo pipefail

TOOLS="${IMGSIGN_TOOLS:-$HOME/.cache/imgsign/tools}"
mkdir -p "$TOOLS/bin"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

COSIGN3_VERSION=v3.1.3
COSIGN2_VERSION=v2.6.5
CRANE_VERSION=v0.22.1
TRILLIAN_VERSION=v1.8.0
REKOR_VERSION=v1.5.4
REKOR_TILES_VERSION=v2.3.0
FULCIO_VERSION=v1.8.4
TESSERACT_VERSION=v0.1.1
TSA_VERSION=v2.1.2
LOCAL_KMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
# ko, as goreleaser's kos section builds the release image (the version
# goreleaser v2.16.0 links, scripts/goreleaser-check.sh): test/e2e builds
# the image with it, daemonless.
KO_VERSION=v0.18.2-0.20260407063826-ae9c7272d7de

log() { printf 'install-tools: %s\n' "$*" >&2; }

# apt_no_service PACKAGE: install a Debian package without letting its
# post-install script start a system service (which may listen on all
# interfaces): policy-rc.d forbids it. The tests start their own servers.
apt_no_service() {
  log "installing Debian's $1"
  export DEBIAN_FRONTEND=noninteractive
  local rc=/usr/sbin/policy-rc.d had_rc=0
  [ -e "$rc" ] && had_rc=1
  if [ "$had_rc" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$rc"; chmod +x "$rc"; fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  [ "$had_rc" = 0 ] && rm -f "$rc"
  return 0
}

install_registry() {
  if [ -x /usr/bin/docker-registry ]; then return; fi
  apt_no_service docker-registry
  # Stop the packaged service if anything started it anyway.
  pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry' 2>/dev/null || true
}

# go_tool NAME PACKAGE@VERSION: build once into $TOOLS/bin/NAME-VERSION (NAME
# may differ from the package's own binary name, the last path element).
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

install_mariadb() {
  if [ -x /usr/sbin/mariadbd ]; then return; fi
  # The tests start their own mariadbd (skip-networking, private socket and
  # data directory).
  apt_no_service mariadb-server
  # Stop the packaged server if anything started it anyway.
  local pidfile pid
  for pidfile in /run/mysqld/mysqld.pid /run/mysqld/mariadb.pid /var/run/mysqld/mysqld.pid; do
    [ -r "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mariadbd ]; then
      log "stopping packaged mariadbd (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
}

install_rekor() {
  install_mariadb
  install_rekor_builds
}

install_rekor_builds() {
  # Rekor v1: Trillian log server, signer and createtree, then rekor itself.
  go_tool trillian_log_server github.com/google/trillian/cmd/trillian_log_server@$TRILLIAN_VERSION
  go_tool trillian_log_signer github.com/google/trillian/cmd/trillian_log_signer@$TRILLIAN_VERSION
  go_tool createtree github.com/google/trillian/cmd/createtree@$TRILLIAN_VERSION
  go_tool rekor-server github.com/sigstore/rekor/cmd/rekor-server@$REKOR_VERSION
  go_tool rekor-cli github.com/sigstore/rekor/cmd/rekor-cli@$REKOR_VERSION
  # Rekor v2 (tiles, no database); the package's binary is named "posix".
  go_tool rekor-tiles-posix github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@$REKOR_TILES_VERSION
  # Trillian's MySQL schema, from the module cache.
  local schema="$TOOLS/share/trillian-storage-$TRILLIAN_VERSION.sql"
  if [ ! -s "$schema" ]; then
    mkdir -p "$TOOLS/share"
    local dir
    # Outside any module, so that no go.mod or go.sum is touched.
    dir=$(cd "$TOOLS" && GOWORK=off go mod download -json "github.com/google/trillian@$TRILLIAN_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    if [ -z "$dir" ] || [ ! -r "$dir/storage/mysql/schema/storage.sql" ]; then
      log "cannot find Trillian's storage.sql (module dir '$dir')"; exit 1
    fi
    cp "$dir/storage/mysql/schema/storage.sql" "$schema.tmp"
    chmod 644 "$schema.tmp"
    mv "$schema.tmp" "$schema"
  fi
}

# patched_go_tool NAME MODULE@VERSION PKG FILE SED-SCRIPT: build PKG (a package
# path relative to the module root) from a private copy of MODULE's source in
# the module cache, with FILE edited by SED-SCRIPT first. Used to make servers
# that hard-code a listener on all interfaces bind to loopback only. Fails
# loudly when the edit no longer applies (the upstream line has changed).
patched_go_tool() {
  local name=$1 mod=$2 pkg=$3 file=$4 script=$5 version=${2##*@}
  local dst="$TOOLS/bin/$name-$version"
  if [ -x "$dst" ]; then return; fi
  log "building $mod/$pkg with $file patched (cached afterwards in $TOOLS)"
  local dir
  dir=$(cd "$TOOLS" && GOWORK=off go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ] || [ ! -r "$dir/$file" ]; then
    log "cannot find $file in module $mod (module dir '$dir')"; exit 1
  fi
  local tmp; tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
  cp -R "$dir/." "$tmp/src"
  chmod -R u+w "$tmp/src"
  sed -i "$script" "$tmp/src/$file"
  if cmp -s "$dir/$file" "$tmp/src/$file"; then
    log "patch '$script' did not change $mod/$file: upstream changed, update install-tools.sh"
    rm -rf "$tmp"; exit 1
  fi
  (cd "$tmp/src" && GOWORK=off GOFLAGS="$GOFLAGS -mod=readonly" go build -trimpath -o "$tmp/out" "./$pkg" 2> >(grep -v '^go: downloading' >&2))
  mv "$tmp/out" "$dst"
  rm -rf "$tmp"
}

# install_keyless builds the keyless (Fulcio) stack the e2e suite starts on
# 127.0.0.1: Fulcio with a file CA, the tesseract CT log (posix storage) and
# the timestamp authority. Fulcio binds its metrics port on all interfaces
# (":PORT" in cmd/app/serve.go) and the timestamp authority hard-codes
# ":2112" (pkg/server/prometheus.go, where the Rekor v1 harness already holds
# 127.0.0.1:2112): both are rebuilt with that one address on loopback, the
# TSA's on an ephemeral port.
install_keyless() {
  patched_go_tool fulcio "github.com/sigstore/fulcio@$FULCIO_VERSION" . cmd/app/serve.go \
    's|Addr:              fmt.Sprintf(":%v", viper.GetString("metrics-port")),|Addr:              fmt.Sprintf("127.0.0.1:%v", viper.GetString("metrics-port")),|'
  patched_go_tool timestamp-server "github.com/sigstore/timestamp-authority/v2@$TSA_VERSION" cmd/timestamp-server pkg/server/prometheus.go \
    's|Addr:         ":2112",|Addr:         "127.0.0.1:0",|'
  go_tool tesseract-posix github.com/transparency-dev/tesseract/cmd/tesseract/posix@$TESSERACT_VERSION
}

# install_kms: local-kms (an AWS KMS API server, for awskms:// keys) and
# SoftHSM2 with OpenSC's pkcs11-tool (a PKCS#11 token, for pkcs11: keys).
install_kms() {
  install_kms_packages
  go_tool local-kms github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION
}

install_kms_packages() {
  if ! command -v softhsm2-util >/dev/null; then apt_no_service softhsm2; fi
  if ! command -v pkcs11-tool >/dev/null; then apt_no_service opensc; fi
}

# install_kube builds kube-apiserver and kubectl (for the admission webhook
# e2e tests: admission runs on CREATE/UPDATE, so etcd plus kube-apiserver is
# enough, no kubelet) and etcd. k8s.io/kubernetes cannot be "go install"ed
# (its go.mod replaces its staging modules with local paths), so each is built
# from a throw-away wrapper module that pins every staging module to its
# published v0.X.Y twin. Cold: about 7.5 minutes and 2.4 GiB on 2 cores.
install_kube() {
  local api="$TOOLS/bin/kube-apiserver-$KUBE_VERSION" ctl="$TOOLS/bin/kubectl-$KUBE_VERSION"
  local etcd="$TOOLS/bin/etcd-$ETCD_VERSION"
  local staging="v0.${KUBE_VERSION#v1.}" minor="${KUBE_VERSION#v1.}"
  minor=${minor%%.*}
  if [ ! -x "$api" ] || [ ! -x "$ctl" ]; then
    log "building kube-apiserver and kubectl $KUBE_VERSION (cached afterwards in $TOOLS)"
    local tmp; tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
    local kmod
    kmod=$(cd "$TOOLS" && GOWORK=off go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    if [ -z "$kmod" ] || [ ! -r "$kmod" ]; then log "cannot find k8s.io/kubernetes's go.mod"; exit 1; fi
    {
      printf 'module kubebuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
      # Every "k8s.io/X => ./staging/src/k8s.io/X" becomes "k8s.io/X => k8s.io/X v0.Y.Z".
      sed -n '/^replace (/,/^)/s/^[[:space:]]*\(k8s\.io\/[^ ]*\) => \.\/staging.*$/\t\1 => \1 '"$staging"'/p' "$kmod"
      printf ')\n'
    } > "$tmp/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > "$tmp/tools.go"
    local ver="k8s.io/component-base/version"
    (cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod tidy 2> >(grep -v '^go: \(downloading\|finding\)' >&2) &&
      GOWORK=off go build -ldflags "-s -w -X $ver.gitVersion=$KUBE_VERSION -X $ver.gitMajor=1 -X $ver.gitMinor=$minor" \
        -o "$tmp/out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
    mv "$tmp/out/kube-apiserver" "$api"
    mv "$tmp/out/kubectl" "$ctl"
    rm -rf "$tmp"
  fi
  if [ ! -x "$etcd" ]; then
    log "building etcd $ETCD_VERSION (cached afterwards in $TOOLS)"
    local tmp; tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
    printf 'module etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$tmp/go.mod"
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$tmp/main.go"
    (cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod tidy 2> >(grep -v '^go: \(downloading\|finding\)' >&2) &&
      GOWORK=off go build -ldflags "-s -w" -o "$tmp/etcd" .)
    mv "$tmp/etcd" "$etcd"
    rm -rf "$tmp"
  fi
}

install_ko() {
  go_tool ko "github.com/google/ko@$KO_VERSION"
}

# install_all installs the Debian packages one after another (dpkg takes a
# lock), then builds the Go tools in parallel: on a fresh machine most of a
# build is waiting for module downloads and single-threaded links, which
# overlap well. Each build logs under its name; the first failure fails the
# run, after the others have finished.
install_all() {
  install_registry
  install_mariadb
  install_kms_packages
  local pids=() names=() name failed=0
  for name in cosign rekor_builds keyless kms kube ko; do
    ( "install_$name" ) 2> >(sed -u "s/^/[$name] /" >&2) &
    pids+=($!) names+=("$name")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then log "building ${names[$i]} failed"; failed=1; fi
  done
  return "$failed"
}

case "${1:-all}" in
  registry) install_registry ;;
  cosign) install_cosign ;;
  rekor) install_rekor ;;
  keyless) install_keyless ;;
  kms) install_kms ;;
  kube) install_kube ;;
  ko) install_ko ;;
  all) install_all ;;
  *) echo "usage: $0 [registry|cosign|rekor|keyless|kms|kube|ko|all]" >&2; exit 2 ;;
esac
