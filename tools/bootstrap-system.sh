#!/usr/bin/env bash
# Installs the Debian packages the tests run for real: etcd (the control
# plane's store) and prometheus (canary analysis). Needs root, as CI has.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages' own services are not wanted: tests start their own instances.
for svc in etcd prometheus; do
  (service "$svc" stop || true) >/dev/null 2>&1
done
exit 0
