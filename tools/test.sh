#!/usr/bin/env bash
# `make test`: installs what the suite needs, starts the local control plane,
# runs every test layer, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MODELDEPLOY_VENV:-$HOME/.cache/modeldeploy/venv}
start=$(date +%s)
tools/bootstrap-system.sh
tools/bootstrap-python.sh
tools/cluster/build.sh
tools/cluster/gateway-api-crds.sh >/dev/null  # the Gateway API CRDs the router tests install
"$VENV/bin/python" bentos/models/build_models.py --out .local/models
tools/cluster/up.sh
trap 'tools/cluster/down.sh' EXIT
echo "setup took $(( $(date +%s) - start ))s"
export KUBECONFIG=$PWD/.local/kubeconfig
export PATH=$VENV/bin:${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/k8s/bin:$PATH
"$VENV/bin/python" -m pytest tests -p no:cacheprovider "$@"
