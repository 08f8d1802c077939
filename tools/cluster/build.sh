#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl from the published
# Go modules pinned in tools/cluster/k8s/go.mod, into
# ${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/k8s/bin.
#
# A stamp records what the binaries were built from (Kubernetes version, go.mod,
# go.sum, Go version, build flags); when nothing changed the script is a no-op.
# Go's module and build caches live under the same cache directory (never in
# the repository), so a clean clone reuses them and deleting that one
# directory gives a truly cold build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod_dir=$here/k8s
cache=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
bin=$cache/k8s/bin
stamp=$cache/k8s/build.stamp

# Prefer a go on PATH, else the usual tarball location.
go_bin=$(command -v go || true)
[ -n "$go_bin" ] || go_bin=/usr/local/go/bin/go
if [ ! -x "$go_bin" ]; then
  echo "build.sh: Go is not installed; get Go >= 1.25 from https://go.dev/dl/" \
    "(or apt-get install golang-go on a recent Debian) and put it on PATH" >&2
  exit 1
fi

# One source of truth for the version: the require line in go.mod.
k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' "$mod_dir/go.mod")
if [[ ! $k8s_version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
  echo "build.sh: cannot read the k8s.io/kubernetes version from $mod_dir/go.mod" >&2
  exit 1
fi
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

pkgs=(
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kubectl
)
# The tags upstream release builds use: no test-only code, no gRPC tracing.
tags=selinux,notest,grpcnotrace

# Version info goes where `kubectl version` and /version read it from;
# client-go's copy feeds the User-Agent header.
ldflags="-s -w"
for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $v.gitVersion=$k8s_version -X $v.gitMajor=$major -X $v.gitMinor=$minor"
  ldflags+=" -X $v.gitTreeState=clean"
done

want=$(
  {
    echo "$k8s_version"
    "$go_bin" version
    echo "$tags $ldflags"
    cat "$mod_dir/go.mod" "$mod_dir/go.sum"
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
  [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ]; then
  echo "k8s $k8s_version binaries are up to date in $bin"
  exit 0
fi

export GOMODCACHE=$cache/go/mod
export GOCACHE=$cache/go/build
# Never fetch another toolchain, never rewrite go.mod during a build; static
# binaries need no C toolchain.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

echo "building kube-apiserver, kube-controller-manager, kubectl $k8s_version with $("$go_bin" env GOVERSION)" \
  "(cold: about 10 minutes on 2 cores, see tools/cluster/README.md)"
start=$(date +%s)
# Build into a scratch directory first so a failed build leaves the previous
# binaries (and a running cluster) untouched; one invocation shares the work.
tmp=$cache/k8s/bin.tmp
rm -rf "$tmp"
mkdir -p "$tmp" "$bin"
(
  cd "$mod_dir"
  "$go_bin" build -trimpath -tags "$tags" -ldflags "$ldflags \
    -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o "$tmp/" "${pkgs[@]}"
)
for b in kube-apiserver kube-controller-manager kubectl; do
  mv -f "$tmp/$b" "$bin/$b"
done
rmdir "$tmp"
echo "$want" >"$stamp"
echo "built in $(($(date +%s) - start))s: $("$bin/kubectl" version --client | head -1)"
