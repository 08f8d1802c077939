#!/usr/bin/env bash
# Usage: sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT OUTFILE
#
# Writes a kubeconfig that authenticates as an existing ServiceAccount with a
# bound token from the TokenRequest API, against the same API server and CA as
# the admin kubeconfig ($KUBECONFIG, default .local/kubeconfig). Used to run
# the operator (and tests) under least privilege instead of system:masters.
# The token is not stored in a Secret; deleting the ServiceAccount revokes it.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ $# -ne 3 ]; then
  echo "usage: $0 NAMESPACE SERVICEACCOUNT OUTFILE" >&2
  exit 2
fi
namespace=$1 sa=$2 out=$3
# A long-lived token (a year): test sessions and demos must not see it expire.
duration=${SA_TOKEN_DURATION:-8760h}
kubectl=$(kubectl_bin)
admin=${KUBECONFIG:-$admin_kubeconfig}
if [ ! -f "$admin" ]; then
  echo "sa-kubeconfig.sh: no kubeconfig at $admin; start the cluster with: make cluster-up" >&2
  exit 1
fi
k() { "$kubectl" --kubeconfig="$admin" "$@"; }

server=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca_data=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
token=$(k -n "$namespace" create token "$sa" --duration="$duration")

# Written to a temp file in the target directory, then renamed, so a reader
# never sees half a file; 0600 because it holds a credential.
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$(dirname "$out")/.sa-kubeconfig.XXXXXX")
chmod 600 "$tmp"
user="system:serviceaccount:$namespace:$sa"
cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modeldeploy-local
  cluster:
    server: $server
    certificate-authority-data: $ca_data
users:
- name: $user
  user:
    token: $token
contexts:
- name: $sa@$namespace
  context:
    cluster: modeldeploy-local
    user: $user
    namespace: $namespace
current-context: $sa@$namespace
EOF
mv -f "$tmp" "$out"
echo "wrote $out (ServiceAccount $namespace/$sa, token valid for $duration)"
