#!/usr/bin/env bash
# Prints the directory holding the Gateway API's standard-channel CRDs
# (config/crd/standard/, HTTPRoute among them), taken from the published Go
# module sigs.k8s.io/gateway-api. The module is downloaded through the Go
# module proxy into the project's Go module cache on first use; later runs
# read the cache (GOPROXY=off works then). The CRD files are never committed.
#
#   tools/cluster/gateway-api-crds.sh          # prints e.g. .../gateway-api@v1.6.3/config/crd/standard
set -euo pipefail

# Pinned: the newest release Go 1.26 accepts (v1.7.0 declares go >= 1.27).
version=v1.6.3
module=sigs.k8s.io/gateway-api

cache=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
go_bin=$(command -v go || true)
[ -n "$go_bin" ] || go_bin=/usr/local/go/bin/go
if [ ! -x "$go_bin" ]; then
  echo "gateway-api-crds.sh: Go is not installed; get Go >= 1.25 from https://go.dev/dl/" >&2
  exit 1
fi

# The same caches as tools/cluster/build.sh; never fetch another toolchain.
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOTOOLCHAIN=local GOFLAGS=
# Outside any go.mod, so `go mod download` takes the module as asked.
cd /

if ! out=$("$go_bin" mod download -json "$module@$version" 2>&1); then
  echo "gateway-api-crds.sh: cannot download $module@$version:" >&2
  echo "$out" >&2
  exit 1
fi
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out")
crds=$dir/config/crd/standard
if [ -z "$dir" ] || [ ! -f "$crds/gateway.networking.k8s.io_httproutes.yaml" ]; then
  echo "gateway-api-crds.sh: no HTTPRoute CRD under '$crds'; go said:" >&2
  echo "$out" >&2
  exit 1
fi
echo "$crds"
