#!/usr/bin/env bash
# Stops every process tools/cluster/up.sh started (SIGTERM, then SIGKILL after
# a grace period) and checks that none of its ports is still listening.
#
# Certificates, keys and the etcd data directory are kept, so the next up.sh
# is fast and every object (namespaces, CRDs, ...) is still there. With
# --purge the whole state (.local/cluster and .local/kubeconfig) is deleted
# and the next up.sh starts from an empty cluster with a new CA.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=false
case "${1:-}" in
  "") ;;
  --purge) purge=true ;;
  *)
    echo "usage: $0 [--purge]" >&2
    exit 2
    ;;
esac

if [ ! -d "$state" ]; then
  echo "local control plane not running (no $state)"
  exit 0
fi
exec 9>"$state/.lock"
flock 9

if [ -f "$pids_file" ]; then
  stop_components 15
else
  echo "local control plane not running"
fi

# Verify: no recorded port is still listening (a process that survived, or
# one that escaped the pid file, would hold it).
if [ -f "$ports_file" ]; then
  busy=()
  while IFS='=' read -r var port; do
    if [ -n "$port" ] && port_listening "$port"; then busy+=("$var=$port"); fi
  done <"$ports_file"
  if [ ${#busy[@]} -gt 0 ]; then
    echo "down.sh: still listening after stop: ${busy[*]}" >&2
    exit 1
  fi
fi

if $purge; then
  exec 9>&-
  rm -rf "$state" "$admin_kubeconfig"
  echo "purged $state and $admin_kubeconfig"
fi
