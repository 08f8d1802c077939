# shellcheck shell=bash disable=SC2034  # the variables are used by the sourcing scripts
# Shared by up.sh, down.sh and sa-kubeconfig.sh: paths, process and port
# helpers. Sourced, never run; the caller sets `set -euo pipefail`.

# Resolve everything from this file's location so the scripts work from any cwd.
cluster_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$cluster_dir/../.." && pwd)
cache=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
k8s_bin=$cache/k8s/bin
state=$repo_root/.local/cluster
pki=$state/pki
logs=$state/logs
pids_file=$state/pids
ports_file=$state/ports.env
admin_kubeconfig=$repo_root/.local/kubeconfig
# Start order; stopped in reverse.
components=(etcd kube-apiserver kube-controller-manager)

# The ports of every TCP socket in LISTEN state (IPv4 and IPv6), read from
# /proc so that no ss/netstat/python is needed. mawk has no strtonum, hence
# the hex conversion in bash.
listening_ports() {
  local f hex files=()
  for f in /proc/net/tcp /proc/net/tcp6; do if [ -r "$f" ]; then files+=("$f"); fi; done
  awk 'FNR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' "${files[@]}" |
    while read -r hex; do printf '%d\n' "0x$hex"; done | sort -un
}

# Captured first: `grep -q` in a pipeline could exit early, and with pipefail
# the writer's SIGPIPE would turn a match into a failure.
port_listening() {
  local ports
  ports=$(listening_ports)
  grep -qx -- "$1" <<<"$ports"
}

# A free port below the kernel's ephemeral range (32768+), so an outgoing
# connection cannot grab it between choosing it and binding it.
free_port() {
  local used port
  used=" $(listening_ports | tr '\n' ' ') $* "
  while true; do
    port=$((20000 + RANDOM % 12000))
    [[ $used == *" $port "* ]] || break
  done
  echo "$port"
}

# The pid recorded for a component, or nothing.
pid_of() {
  [ -f "$pids_file" ] || return 0
  awk -v n="$1" '$1 == n { print $2 }' "$pids_file"
}

# True when pid is alive and is one of ours: every process up.sh starts has
# the state directory on its command line, which guards against pid reuse.
is_ours() {
  local pid=$1 cmdline
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$state/"* ]]
}

component_alive() {
  is_ours "$(pid_of "$1")"
}

# Stops every recorded component: SIGTERM, then SIGKILL after a grace period.
# Only pids recorded in the pids file (and still ours) are signalled.
stop_components() {
  local grace=${1:-15} i name pid deadline
  [ -f "$pids_file" ] || return 0
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    name=${components[i]}
    pid=$(pid_of "$name")
    is_ours "$pid" || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while is_ours "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if is_ours "$pid"; then
      echo "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while is_ours "$pid"; do sleep 0.1; done
    fi
    echo "stopped $name (pid $pid)"
  done
  rm -f "$pids_file"
}

# Runs kubectl from the build cache (the version the server runs), falling
# back to one on PATH.
kubectl_bin() {
  if [ -x "$k8s_bin/kubectl" ]; then
    echo "$k8s_bin/kubectl"
  elif command -v kubectl >/dev/null 2>&1; then
    command -v kubectl
  else
    echo "kubectl not found in $k8s_bin or on PATH; build it with: make k8s-build" >&2
    return 1
  fi
}
