#!/usr/bin/env bash
# Starts a local Kubernetes control plane as background processes: etcd,
# kube-apiserver (TLS, RBAC, default admission incl. PodSecurity) and
# kube-controller-manager, all on free loopback ports. State lives in
# .local/cluster/ (certs, etcd data, pids, ports, logs); the admin kubeconfig
# is written to .local/kubeconfig. Idempotent: a healthy cluster is left alone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start=$SECONDS
service_cidr=10.0.0.0/24
service_ip=10.0.0.1 # the first address of service_cidr: the `kubernetes` Service

# --- prerequisites -----------------------------------------------------------
missing=()
for b in kube-apiserver kube-controller-manager kubectl; do
  [ -x "$k8s_bin/$b" ] || missing+=("$k8s_bin/$b (run: make k8s-build)")
done
command -v etcd >/dev/null 2>&1 || missing+=("etcd (run: make system-deps, Debian etcd-server)")
command -v openssl >/dev/null 2>&1 || missing+=("openssl (run: make system-deps)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'up.sh: missing %s\n' "${missing[@]}" >&2
  exit 1
fi
kubectl=$k8s_bin/kubectl

mkdir -p "$pki" "$logs"
# One up/down at a time per checkout: several engineers share the machine.
exec 9>"$state/.lock"
flock 9

# --- already running? ------------------------------------------------------
readyz() {
  "$kubectl" --kubeconfig="$state/admin.kubeconfig" --request-timeout=5s get --raw /readyz
}
if [ -f "$pids_file" ]; then
  all_alive=true
  for c in "${components[@]}"; do component_alive "$c" || all_alive=false; done
  if $all_alive && readyz >/dev/null 2>&1; then
    # Someone may have deleted the kubeconfig; it is cheap to restore.
    [ -f "$admin_kubeconfig" ] || cp "$state/admin.kubeconfig" "$admin_kubeconfig"
    echo "local control plane already running: $(
      "$kubectl" --kubeconfig="$admin_kubeconfig" config view --minify \
        -o jsonpath='{.clusters[0].cluster.server}'
    ) (KUBECONFIG=$admin_kubeconfig)"
    exit 0
  fi
  echo "found a partly running control plane; stopping it before starting afresh"
  stop_components 10
fi

# --- certificates ------------------------------------------------------------
# Private CAs and one-year leaf certs, generated once and kept across
# restarts (down.sh --purge deletes them). ECDSA P-256 keys: generated
# instantly (RSA takes seconds on a busy machine) and accepted by every
# component and client library, including for ServiceAccount tokens (ES256).
openssl_cnf=$pki/openssl.cnf
cat >"$openssl_cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# new_ca NAME COMMON_NAME
new_ca() {
  new_key "$pki/$1.key"
  openssl req -x509 -new -config "$openssl_cnf" -extensions ca -key "$pki/$1.key" \
    -subj "/CN=$2" -days 3650 -sha256 -out "$pki/$1.crt"
}

# issue CA NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
issue() {
  local ca=$1 name=$2 subject=$3 eku=$4 sans=${5:-}
  new_key "$pki/$name.key"
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    [ -z "$sans" ] || echo "subjectAltName = $sans"
  } >"$pki/$name.ext"
  openssl req -new -config "$openssl_cnf" -key "$pki/$name.key" -subj "$subject" \
    -out "$pki/$name.csr"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

needs_cert() {
  [ ! -f "$pki/$1.crt" ] || [ ! -f "$pki/$1.key" ] ||
    ! openssl x509 -in "$pki/$1.crt" -noout -checkend 86400 >/dev/null
}
# Everything is reissued when a CA expires, or when this script changes what
# it issues (bump pki_layout), so an old .local/cluster never needs --purge.
pki_layout=2
if needs_cert ca || needs_cert front-proxy-ca ||
  [ "$(cat "$pki/layout" 2>/dev/null)" != "$pki_layout" ]; then
  echo "generating the local CAs and certificates in $pki"
  # The ServiceAccount key stays: tokens already handed out remain valid.
  for f in "$pki"/*.crt "$pki"/*.key; do
    if [ "$f" != "$pki/sa.key" ]; then rm -f "$f"; fi
  done
  new_ca ca modeldeploy-local-ca
  # A separate CA for the aggregation layer's front proxy: request headers
  # that assert an identity must only be trusted from that one client.
  new_ca front-proxy-ca modeldeploy-local-front-proxy-ca
  echo "$pki_layout" >"$pki/layout"
fi
# A leaf is reissued when missing or expiring within a day.
loopback_sans="IP:127.0.0.1,DNS:localhost"
if needs_cert apiserver; then
  issue ca apiserver "/CN=kube-apiserver" serverAuth \
    "$loopback_sans,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:$service_ip"
fi
# etcd's gRPC gateway dials etcd itself with the serving cert: it needs both.
if needs_cert etcd-server; then
  issue ca etcd-server "/CN=etcd" serverAuth,clientAuth "$loopback_sans"
fi
if needs_cert apiserver-etcd-client; then
  issue ca apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
fi
if needs_cert admin; then
  issue ca admin "/O=system:masters/CN=modeldeploy-admin" clientAuth
fi
if needs_cert controller-manager; then
  issue ca controller-manager "/CN=system:kube-controller-manager" clientAuth
fi
if needs_cert controller-manager-serving; then
  issue ca controller-manager-serving "/CN=kube-controller-manager" serverAuth "$loopback_sans"
fi
if needs_cert front-proxy-client; then
  issue front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth
fi
# The ServiceAccount token signing key pair.
if [ ! -f "$pki/sa.key" ] || [ ! -f "$pki/sa.pub" ]; then
  new_key "$pki/sa.key"
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
fi

# --- ports -------------------------------------------------------------------
# Reuse the previous ports when they are still free, so a kubeconfig from an
# earlier run keeps working; otherwise pick new free ones.
ETCD_PORT='' ETCD_PEER_PORT='' APISERVER_PORT='' CONTROLLER_MANAGER_PORT=''
# shellcheck disable=SC1090
[ -f "$ports_file" ] && . "$ports_file"
chosen=()
for var in ETCD_PORT ETCD_PEER_PORT APISERVER_PORT CONTROLLER_MANAGER_PORT; do
  port=${!var}
  if [ -z "$port" ] || port_listening "$port"; then
    port=$(free_port "${chosen[@]}")
  fi
  chosen+=("$port")
  printf -v "$var" '%s' "$port"
done
cat >"$ports_file" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
CONTROLLER_MANAGER_PORT=$CONTROLLER_MANAGER_PORT
EOF
api_url=https://127.0.0.1:$APISERVER_PORT

# --- kubeconfigs -------------------------------------------------------------
# write_kubeconfig FILE USER CERT_NAME: embedded certs, so the file stands alone.
write_kubeconfig() {
  local file=$1 user=$2 cert=$3 tmp
  tmp=$(mktemp "$state/kubeconfig.XXXXXX")
  "$kubectl" --kubeconfig="$tmp" config set-cluster modeldeploy-local --server="$api_url" \
    --certificate-authority="$pki/ca.crt" --embed-certs=true >/dev/null
  "$kubectl" --kubeconfig="$tmp" config set-credentials "$user" \
    --client-certificate="$pki/$cert.crt" --client-key="$pki/$cert.key" --embed-certs=true >/dev/null
  "$kubectl" --kubeconfig="$tmp" config set-context modeldeploy-local \
    --cluster=modeldeploy-local --user="$user" >/dev/null
  "$kubectl" --kubeconfig="$tmp" config use-context modeldeploy-local >/dev/null
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}
write_kubeconfig "$state/admin.kubeconfig" modeldeploy-admin admin
write_kubeconfig "$state/controller-manager.kubeconfig" system:kube-controller-manager \
  controller-manager

# --- processes ---------------------------------------------------------------
# On any failure: show the log of the component that failed, stop what was
# started (logs stay for inspection) and exit non-zero.
fail() {
  local name=$1 why=$2
  echo "up.sh: $name $why; last lines of $logs/$name.log:" >&2
  tail -n 40 "$logs/$name.log" >&2 || true
  stop_components 5 >&2
  exit 1
}

# launch NAME CMD...: detached from this shell (own session, no stdin, no
# SIGHUP) so the cluster outlives the terminal or make that started it. The
# lock's fd is closed, or the daemons would hold the lock forever.
launch() {
  local name=$1
  shift
  [ -f "$logs/$name.log" ] && mv -f "$logs/$name.log" "$logs/$name.log.prev"
  setsid nohup "$@" >"$logs/$name.log" 2>&1 </dev/null 9>&- &
  echo "$name $!" >>"$pids_file"
}

# wait_for NAME TIMEOUT_SECONDS CMD...: until CMD succeeds, while NAME lives.
wait_for() {
  local name=$1 timeout=$2 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    component_alive "$name" || fail "$name" "exited during startup"
    ((SECONDS < deadline)) || fail "$name" "was not ready after ${timeout}s"
    sleep 0.5
  done
}

: >"$pids_file"

# etcd: loopback only, client TLS with client-cert auth (it holds Secrets
# and every local user can reach loopback); the data survives restarts.
launch etcd etcd --name=modeldeploy --data-dir="$state/etcd" \
  --listen-client-urls="https://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="modeldeploy=http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster-state=new \
  --cert-file="$pki/etcd-server.crt" --key-file="$pki/etcd-server.key" \
  --client-cert-auth --trusted-ca-file="$pki/ca.crt" \
  --logger=zap --log-outputs=stderr
wait_for etcd 30 port_listening "$ETCD_PORT"

# --allow-privileged=true as in real clusters: otherwise pod validation, not
# PodSecurity admission, would be what rejects privileged pods.
# The endpoint reconciler is off because Endpoints may not hold a loopback
# address; the `kubernetes` Service itself is still created.
launch kube-apiserver "$k8s_bin/kube-apiserver" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
  --endpoint-reconciler-type=none \
  --etcd-servers="https://127.0.0.1:$ETCD_PORT" --etcd-cafile="$pki/ca.crt" \
  --etcd-certfile="$pki/apiserver-etcd-client.crt" \
  --etcd-keyfile="$pki/apiserver-etcd-client.key" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" \
  --proxy-client-key-file="$pki/front-proxy-client.key" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --service-cluster-ip-range="$service_cidr" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key"
wait_for kube-apiserver 60 readyz

launch kube-controller-manager "$k8s_bin/kube-controller-manager" \
  --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" \
  --tls-cert-file="$pki/controller-manager-serving.crt" \
  --tls-private-key-file="$pki/controller-manager-serving.key" \
  --kubeconfig="$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
  --client-ca-file="$pki/ca.crt" \
  --leader-elect=false \
  --controllers='*' \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" \
  --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$service_cidr"
kcm_healthz() {
  "$kubectl" --kubeconfig="$state/admin.kubeconfig" --request-timeout=5s \
    --server="https://127.0.0.1:$CONTROLLER_MANAGER_PORT" get --raw /healthz
}
wait_for kube-controller-manager 60 kcm_healthz
# The serviceaccount controller works: pods can be created in `default`.
wait_for kube-controller-manager 60 \
  "$kubectl" --kubeconfig="$state/admin.kubeconfig" -n default get serviceaccount default

cp "$state/admin.kubeconfig" "$admin_kubeconfig.tmp"
mv -f "$admin_kubeconfig.tmp" "$admin_kubeconfig"
echo "local control plane $("$kubectl" --kubeconfig="$admin_kubeconfig" version -o json |
  awk -F'"' '/"gitVersion"/ { v = $4 } END { print v }') ready at $api_url" \
  "in $((SECONDS - start))s"
echo "export KUBECONFIG=$admin_kubeconfig"
