#!/usr/bin/env bash
# Builds the Go test binaries klutch's test environment runs (kube-apiserver, kube-controller-manager,
# kubectl, etcd, Dex; the Crossplane CLI and function-patch-and-transform for composition tests)
# from the pinned wrapper modules beside this script, into a cache keyed by component, version,
# Go version, platform and a hash of the inputs. Rebuilds only on a miss.
#
#   testbins/build.sh [COMPONENT...]        # default: k8s etcd dex
#   testbins/build.sh crossplane crossplane-fpt   # `crossplane beta render` + its function
#   testbins/build.sh crossplane-core             # Crossplane core for live end-to-end tests
#
# Prints `KLUTCH_TESTBIN_DIR=<dir>` last; that directory holds links to every built binary.
# Environment:
#   KLUTCH_TESTBIN_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/klutch-testbin)
#   KLUTCH_TESTBIN_DIR    where to link the binaries (default <repo>/target/testbin)
# See docs/testenv.md for the recipe and what each step is for.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { printf 'testbins/build.sh: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH. Install Go 1.26 (Debian: golang-1.26, or your distribution's Go), or point KLUTCH_TESTBIN_DIR at prebuilt binaries (kube-apiserver, kube-controller-manager, kubectl, etcd, dex)."
gover="$(go env GOVERSION)"
case "$gover" in
  go1.2[6-9]*|go1.[3-9]*) ;;
  *) die "Go $gover is too old: the Kubernetes 1.36 modules need Go >= 1.26." ;;
esac
command -v flock >/dev/null 2>&1 || die "flock is missing (Debian package util-linux)."

root="${KLUTCH_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klutch-testbin}"
bindir="${KLUTCH_TESTBIN_DIR:-$here/../target/testbin}"
mkdir -p "$root" "$bindir"
bindir="$(cd "$bindir" && pwd)"
export GOMODCACHE="$root/gomod" GOCACHE="$root/gobuild"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -mod=readonly -buildvcs=false"

declare -A VER=([k8s]=v1.36.3 [etcd]=v3.6.14 [dex]=v2.45.1 [crossplane]=v1.20.7 [crossplane-core]=v1.20.7 [crossplane-fpt]=v0.10.9 [registry]=v3.1.2 [crane]=v0.22.1)

build_k8s() { # $1 = output dir
  local v="${VER[k8s]}" minor ldf="-s -w" p
  minor="$(echo "$v" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here/k8s" && go build -ldflags "$ldf" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)
}
build_etcd() {
  (cd "$here/etcd" && go build -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3)
}
build_dex() {
  # main.version is what `dex version` prints (upstream's Makefile sets it the same way)
  (cd "$here/dex" && go build -ldflags "-s -w -X main.version=${VER[dex]}" -o "$1/dex" github.com/dexidp/dex/cmd/dex)
}

build_crossplane() {
  # the v1 CLI ("crank"); its version string is what `crossplane version` prints. Crossplane's
  # core CRDs go beside it: `crossplane beta validate` needs them and would download them.
  (cd "$here/crossplane" && go build \
    -ldflags "-s -w -X github.com/crossplane/crossplane/internal/version.version=${VER[crossplane]}" \
    -o "$1/crossplane" github.com/crossplane/crossplane/cmd/crank &&
    mkdir -p "$1/crossplane-crds" &&
    cp "$(go list -m -f '{{.Dir}}' github.com/crossplane/crossplane)"/cluster/crds/*.yaml "$1/crossplane-crds/" &&
    chmod -R u+w "$1/crossplane-crds")
}
build_crossplane_core() {
  # Crossplane core (`crossplane core start`), run as a local process by the test environment
  # (klutch_sdk::testenv, ../shared/spec/testenv.md §7.3). Its CRDs are the same as the CLI's copy.
  (cd "$here/crossplane-core" && go build \
    -ldflags "-s -w -X github.com/crossplane/crossplane/internal/version.version=${VER[crossplane-core]}" \
    -o "$1/crossplane-core" github.com/crossplane/crossplane/cmd/crossplane)
}
build_crossplane_fpt() {
  # with the CRD of its input (kind Resources), for `crossplane beta validate`
  (cd "$here/crossplane-fpt" && go build -ldflags "-s -w" \
    -o "$1/function-patch-and-transform" github.com/crossplane-contrib/function-patch-and-transform &&
    mkdir -p "$1/function-patch-and-transform-crds" &&
    cp "$(go list -m -f '{{.Dir}}' github.com/crossplane-contrib/function-patch-and-transform)"/package/input/*.yaml \
      "$1/function-patch-and-transform-crds/" &&
    chmod -R u+w "$1/function-patch-and-transform-crds")
}

build_registry() {
  # the CNCF Distribution registry (`registry serve <config.yml>`): a local OCI registry for the
  # image and Crossplane package tests; its version string is what `registry --version` prints
  (cd "$here/registry" && go build \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=${VER[registry]}" \
    -o "$1/registry" github.com/distribution/distribution/v3/cmd/registry)
}
build_crane() {
  # go-containerregistry's crane: builds, pushes and inspects OCI images without a container engine
  (cd "$here/crane" && go build -ldflags "-s -w" -o "$1/crane" github.com/google/go-containerregistry/cmd/crane)
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(k8s etcd dex)

for c in "${components[@]}"; do
  [[ -n "${VER[$c]:-}" ]] || die "unknown component '$c' (known: ${!VER[*]})"
  # the key hashes the module files and this component's build recipe, so a changed go.sum or
  # changed flags under the same version miss the cache
  fn="build_${c//-/_}"
  h="$( { cat "$here/$c/go.mod" "$here/$c/go.sum"; declare -f "$fn"; } | sha256sum | cut -c1-12)"
  key="$c-${VER[$c]}-$gover-$(go env GOOS)_$(go env GOARCH)-$h"
  dest="$root/$key"
  exec 9>"$root/$key.lock"
  flock 9 # one builder per key, also across concurrent CI jobs
  if [[ -f "$dest/BUILD-INFO" ]]; then
    printf 'testbins: %s: cached (%s)\n' "$c" "$dest" >&2
  else
    printf 'testbins: %s %s: building from Go modules (cold: minutes; see docs/testenv.md)...\n' "$c" "${VER[$c]}" >&2
    tmp="$dest.partial.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    start=$SECONDS
    if ! "$fn" "$tmp" >"$tmp.log" 2>&1; then
      tail -n 30 "$tmp.log" >&2
      rm -rf "$tmp"
      die "building $c ${VER[$c]} failed; full log: $tmp.log"
    fi
    {
      echo "key=$key built=$(date -u +%FT%TZ) secs=$((SECONDS - start))"
      for b in "$tmp"/*; do if [[ -f $b && -x $b ]]; then go version "$b"; fi; done
    } >"$tmp/BUILD-INFO"
    rm -f "$tmp.log"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    printf 'testbins: %s: built in %ss\n' "$c" "$((SECONDS - start))" >&2
  fi
  exec 9>&-
  for b in "$dest"/*; do if [[ -f $b && -x $b ]]; then ln -sf "$b" "$bindir/"; fi; done
  # data some components ship (e.g. crossplane-crds/), linked as directories
  for d in "$dest"/*/; do if [[ -d $d ]]; then ln -sfn "${d%/}" "$bindir/"; fi; done
  # keep the two newest entries of this component
  # (the "-v" keeps crossplane from matching crossplane-fpt)
  for old in $(ls -dt "$root/$c-v"*/ 2>/dev/null | tail -n +3); do
    rm -rf "$old" "${old%/}.lock"
  done
done
echo "KLUTCH_TESTBIN_DIR=$bindir"
