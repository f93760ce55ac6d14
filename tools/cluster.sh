#!/usr/bin/env bash
# A real, local Kubernetes control plane for integration tests and demos,
# with no Docker: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake node + fake pods) as plain processes, and,
# as root, one real node beside kwok's: containerd, kubelet and kube-proxy
# running real pods (tools/node.sh, docs/real-node.md).
#
#   tools/cluster.sh up       start (idempotent; a healthy cluster is reused)
#   tools/cluster.sh down     stop every process and remove the runtime state
#   tools/cluster.sh status   exit 0 if healthy, 1 otherwise
#   tools/cluster.sh import <archive>
#                             import an image archive into the real node
#   tools/cluster.sh stop-component|start-component <name>
#                             stop one component / start it again (fault tests)
#
# Environment:
#   CLUSTER_DIR            state directory (default <repo>/.cluster); lets a
#                          test harness run a private cluster
#   CLUSTER_START_TIMEOUT  seconds allowed for each start-up wait (default 120)
#   CLUSTER_STOP_TIMEOUT   seconds between TERM and KILL on down (default 15)
#   CLUSTER_VERBOSITY      klog --v for the Kubernetes components (default 0)
#   CLUSTER_KEEP_FAILED=1  leave a half-started cluster running for debugging
#   KUBE_VERSION           passed through to tools/build.sh
#   CLUSTER_REAL_NODE      1: with the real node (default as root, when no other
#                          cluster directory has it); 0: kwok's node only
#
# Everything listens on 127.0.0.1 only, on random free ports; with the real
# node, the API server listens on the node's bridge address instead (pods reach
# it there) and the kubelet and kube-proxy on that bridge or loopback. After
# `up`, $CLUSTER_DIR/cluster.env holds the URLs, ports and paths (KEY=value lines).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
CLUSTER_DIR=$(realpath -m "${CLUSTER_DIR:-$repo/.cluster}")
START_TIMEOUT=${CLUSTER_START_TIMEOUT:-120}
STOP_TIMEOUT=${CLUSTER_STOP_TIMEOUT:-15}
VERBOSITY=${CLUSTER_VERBOSITY:-0}

PKI=$CLUSTER_DIR/pki
PIDS=$CLUSTER_DIR/pids
LOGS=$CLUSTER_DIR/logs
KUBECONFIG_FILE=$CLUSTER_DIR/kubeconfig
ENV_FILE=$CLUSTER_DIR/cluster.env
NODE_NAME=kwok-node-0

# shellcheck source-path=SCRIPTDIR
source "$here/node.sh"

# Start order (`down` stops the others first, etcd last). Each binary is
# named like its component, which is what pid checks compare
# /proc/<pid>/exe with. The real node's (NODE_COMPONENTS) come after.
CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
COMPONENTS=("${CONTROL_PLANE[@]}" "${NODE_COMPONENTS[@]}")

# Controllers the tests rely on (names from cmd/kube-controller-manager/names):
# rollouts, cascading deletes, namespace deletion, default ServiceAccounts,
# Jobs/CronJobs/StatefulSets/DaemonSets, TTL clean-up of finished Jobs,
# aggregation of the admin/edit/view ClusterRoles (for RBAC tests), and what a
# pod of a real cluster relies on: EndpointSlices for Services, and the
# kube-root-ca.crt ConfigMap in every namespace (the mounted token's CA), and
# PodDisruptionBudgets' status (which the eviction API checks).
# Deliberately left out: node-lifecycle (TaintNodesByCondition admission is
# off instead).
KCM_CONTROLLERS=deployment-controller,replicaset-controller,garbage-collector-controller
KCM_CONTROLLERS+=,namespace-controller,serviceaccount-controller,job-controller,cronjob-controller
KCM_CONTROLLERS+=,statefulset-controller,daemonset-controller,ttl-after-finished-controller
KCM_CONTROLLERS+=,clusterrole-aggregation-controller,endpointslice-controller
KCM_CONTROLLERS+=,endpointslice-mirroring-controller,root-ca-certificate-publisher-controller
KCM_CONTROLLERS+=,disruption-controller

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The apiserver's webhook client honours proxy variables; all our traffic is
# loopback and must never go through a proxy (curl needs this too).
if [ -n "${HTTP_PROXY:-}${HTTPS_PROXY:-}${http_proxy:-}${https_proxy:-}" ]; then
  NO_PROXY="127.0.0.1,localhost,$NODE_SUBNET,$SERVICE_CIDR,.svc${NO_PROXY:+,$NO_PROXY}"
  export NO_PROXY no_proxy="$NO_PROXY"
fi

# ---------------------------------------------------------------- processes

# The state of a process as one letter from /proc/<pid>/stat ("" if gone).
proc_state() { sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true; }

# True if $2 is a live (non-zombie) process of component $1 belonging to this
# cluster directory. Guards against killing an unrelated process that reused
# a stale pid.
is_ours() {
  local name=$1 pid=$2 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(proc_state "$pid")
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  [ "$(exe_name "$pid")" = "$name" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$CLUSTER_DIR/"
}

# A process is gone once it no longer exists or is a zombie (a zombie only
# waits for its new parent to reap it and holds no port or file).
is_gone() { local s; s=$(proc_state "$1"); [ -z "$s" ] || [ "$s" = Z ]; }

# Basename of a process's executable; the kernel appends " (deleted)" when
# the binary was removed or replaced since the process started.
exe_name() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  echo "${exe##*/}"
}

pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }

# Processes of any component whose command line points into this cluster
# directory, found by scanning /proc: catches a process whose pid file was
# never written (e.g. `up` killed between fork and write).
stray_pids() {
  local p name
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    name=$(exe_name "$p") || continue
    case " ${COMPONENTS[*]} " in *" $name "*) ;; *) continue ;; esac
    is_ours "$name" "$p" && echo "$p"
  done
  return 0
}

# Starts a component in its own session (so signals aimed at the caller's
# process group or terminal do not reach it), stdin/stdout/stderr detached
# from the caller (so a harness reading our output sees EOF when we exit),
# and records its pid at once so `down` can always find it. In a
# non-interactive shell the background child is not a process-group leader,
# so setsid does not fork and $! is the component's own pid.
start() {
  local name=$1; shift
  log "starting $name"
  # The command line is kept so `start-component` can bring it back after `stop-component`.
  printf '%q ' "$@" >"$PIDS/$name.cmd"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  local pid=$! tries=0
  echo "$pid" >"$PIDS/$name.pid"
  # Until setsid (and env) exec the component, the pid is the shell's fork: wait for the exec,
  # so a check right after never takes the fork for a component that died (seen once in CI).
  while [ "$(exe_name "$pid")" != "$name" ] && ! is_gone "$pid" && [ "$tries" -lt 300 ]; do
    tries=$((tries + 1))
    sleep 0.01
  done
}

# Fails if a component started so far has died, naming it and its log.
check_started_alive() {
  local name pid
  for name in "${COMPONENTS[@]}"; do
    [ -f "$PIDS/$name.pid" ] || continue
    pid=$(pid_of "$name")
    if ! is_ours "$name" "$pid"; then
      log "$name (pid $pid) exited; last lines of $LOGS/$name.log:"
      tail -n 25 "$LOGS/$name.log" >&2 || true
      return 1
    fi
  done
}

# wait_for <description> <command...>: polls the command until it succeeds,
# failing early if a component dies, or after START_TIMEOUT seconds.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    check_started_alive || die "a component died while waiting for $what"
    ((SECONDS < deadline)) || die "timed out after ${START_TIMEOUT}s waiting for $what"
    sleep 0.2
  done
}

# ------------------------------------------------------------------- ports

# free_port <var>: sets <var> to a port nobody listens on, outside the
# kernel's ephemeral range so that no outgoing connection can take it between
# now and the bind (below the range if there is room, else above it). Ports
# already handed out by this run are skipped too. (It sets a variable rather
# than printing, because $(...) would lose picked_ports in the subshell.)
picked_ports=" "
free_port() {
  local eph_lo eph_hi lo hi p
  read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
  if ((eph_lo > 11024)); then
    lo=$((eph_lo > 30000 ? 20000 : 1025)) hi=$((eph_lo - 1))
  else
    lo=$((eph_hi + 1)) hi=65535
  fi
  for _ in $(seq 200); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    case $picked_ports in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
      picked_ports+="$p "
      printf -v "$1" %s "$p"
      return 0
    fi
  done
  die "no free port found in $lo-$hi"
}

# --------------------------------------------------------------- api calls

api() { # api <path> [curl args...]
  local path=$1; shift
  curl -sS --fail --max-time 10 --cacert "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$APISERVER_URL$path" "$@"
}

apiserver_ready() { [ "$(api /readyz)" = ok ]; }
default_ns_exists() { api /api/v1/namespaces/default >/dev/null; }
node_ready() { # node_ready [name]: kwok's node by default
  api "/api/v1/nodes/${1:-$NODE_NAME}" |
    jq -e '.status.conditions[]? | select(.type == "Ready") | .status == "True"' >/dev/null
}
# KCM and the scheduler serve /healthz to anonymous callers (it is in their
# default --authorization-always-allow-paths), on a self-signed in-memory
# certificate, hence -k.
component_healthy() { [ "$(curl -sSk --fail --max-time 5 "https://127.0.0.1:$1/healthz")" = ok ]; }
etcd_healthy() { curl -sS --fail --max-time 5 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

# ---------------------------------------------------------------- status

load_env() {
  [ -f "$ENV_FILE" ] || return 1
  # shellcheck disable=SC1090
  source "$ENV_FILE"
}

# Prints nothing and returns 0 if healthy; prints the first problem otherwise.
health_problem() {
  local name
  load_env || { echo "no cluster in $CLUSTER_DIR"; return 1; }
  for name in "${COMPONENTS[@]}"; do
    case " ${NODE_COMPONENTS[*]} " in *" $name "*) [ "${REAL_NODE:-0}" = 1 ] || continue ;; esac
    is_ours "$name" "$(pid_of "$name")" || { echo "$name is not running"; return 1; }
  done
  etcd_healthy || { echo "etcd is not healthy"; return 1; }
  if [ "${REAL_NODE:-0}" = 1 ]; then
    real_node_ready 2>/dev/null || { echo "node $REAL_NODE_NAME is not Ready"; return 1; }
  fi
  apiserver_ready 2>/dev/null || { echo "kube-apiserver is not ready"; return 1; }
  component_healthy "$KCM_PORT" 2>/dev/null || { echo "kube-controller-manager is not healthy"; return 1; }
  component_healthy "$SCHEDULER_PORT" 2>/dev/null || { echo "kube-scheduler is not healthy"; return 1; }
  node_ready 2>/dev/null || { echo "node $NODE_NAME is not Ready"; return 1; }
}

summary() {
  cat <<EOF
cluster:    $CLUSTER_DIR
apiserver:  $APISERVER_URL
kubeconfig: $KUBECONFIG_FILE
env file:   $ENV_FILE
try:        kubectl --kubeconfig $KUBECONFIG_FILE get nodes
EOF
}

cmd_status() {
  local problem
  load_env || true
  if problem=$(health_problem); then
    echo "healthy: $APISERVER_URL ($CLUSTER_DIR)"
  else
    echo "not healthy: $problem"
    return 1
  fi
}

# ------------------------------------------------------------------ down

# stop_pids <pid...>: TERM, wait up to STOP_TIMEOUT, then KILL what is left
# and wait for it to go.
stop_pids() {
  (($#)) || return 0
  log "stopping pids $*"
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT)) signal=TERM pid left
  while :; do
    left=()
    for pid in "$@"; do is_gone "$pid" || left+=("$pid"); done
    ((${#left[@]})) || break
    if ((SECONDS >= deadline)); then
      [ $signal = TERM ] || die "processes survived KILL: ${left[*]}"
      log "still running after ${STOP_TIMEOUT}s, sending KILL to ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      signal=KILL deadline=$((SECONDS + 10))
    fi
    sleep 0.1
  done
}

# The processes are gone, but their new parent (pid 1 or a subreaper) reaps
# the zombies only after a moment. Wait a little for that, best effort only,
# so that `ps` right after `down` shows nothing.
await_reaped() {
  local deadline=$((SECONDS + 3)) pid
  for pid in "$@"; do
    while [ "$(proc_state "$pid")" = Z ] && ((SECONDS < deadline)); do sleep 0.1; done
  done
}

# Stops every process of this cluster, then verifies nothing is left, and
# removes the runtime state. Only logs/ is kept, for a post-mortem; `up`
# empties it before starting anything. etcd is stopped last: an apiserver that loses etcd
# first hangs in its shutdown (retrying storage calls) until KILLed.
do_down() {
  local name pid clients=() etcd=()
  load_env 2>/dev/null || true
  node_stop
  for name in "${COMPONENTS[@]}"; do
    pid=$(pid_of "$name")
    is_ours "$name" "$pid" || continue
    if [ "$name" = etcd ]; then etcd+=("$pid"); else clients+=("$pid"); fi
  done
  for pid in $(stray_pids); do
    case " ${clients[*]} ${etcd[*]} " in *" $pid "*) continue ;; esac
    if [ "$(exe_name "$pid")" = etcd ]; then etcd+=("$pid"); else clients+=("$pid"); fi
  done
  stop_pids "${clients[@]}"
  stop_pids "${etcd[@]}"
  await_reaped "${clients[@]}" "${etcd[@]}"
  [ -z "$(stray_pids)" ] || die "processes of $CLUSTER_DIR are still running: $(stray_pids | xargs)"
  node_clean

  # Remove only what `up` creates (CLUSTER_DIR may be a caller's directory).
  rm -rf "$CLUSTER_DIR/etcd" "$PKI" "$PIDS" "$KUBECONFIG_FILE" "$ENV_FILE" "$CLUSTER_DIR/scheduler.yaml" \
    "$CLUSTER_DIR/kwok" "$CLUSTER_DIR/demo"
}

cmd_down() {
  [ -d "$CLUSTER_DIR" ] || { log "nothing to stop ($CLUSTER_DIR does not exist)"; return 0; }
  lock
  do_down
  log "stopped; no process of $CLUSTER_DIR is left"
}

# Serialises up/down on one cluster directory (parallel test binaries may
# share it). The lock file stays: deleting it would race with a waiter.
lock() {
  mkdir -p "$CLUSTER_DIR"
  exec 9>"$CLUSTER_DIR/.lock"
  flock -w "$((START_TIMEOUT * 3))" 9 || die "could not lock $CLUSTER_DIR/.lock"
}

# -------------------------------------------------------------------- pki

make_pki() {
  mkdir -p "$PKI" && chmod 700 "$PKI"
  local days=365 ec=(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)
  (
    cd "$PKI"
    # One CA signs the apiserver's serving certificate and the client
    # certificates (it is also --client-ca-file).
    openssl "${ec[@]}" -out ca.key 2>/dev/null
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\n' >ca.ext
    openssl req -new -key ca.key -subj "/CN=reloader-local-ca" -out ca.csr
    openssl x509 -req -in ca.csr -signkey ca.key -days $days -extfile ca.ext -out ca.crt 2>/dev/null

    sign() { # sign <name> <subject> <extensions>
      openssl "${ec[@]}" -out "$1.key" 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAserial ca.srl -CAcreateserial \
        -days $days -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    # Also the names pods use: the `kubernetes` Service's ClusterIP and DNS names, and the
    # node's bridge address it listens on with the real node.
    sign apiserver "/CN=kube-apiserver" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$SERVICE_API_IP,IP:$NODE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    sign admin "/O=system:masters/CN=admin" \
      'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
    [ "$REAL_NODE" = 1 ] && node_pki

    # Service-account token signing key pair.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  )
}

# write_kubeconfig <file> <user> <certificate name in $PKI>: a kubeconfig for the API server
# with that client certificate embedded (the admin's, the node components').
write_kubeconfig() {
  local b64=(base64 -w0)
  umask 077  # it holds a client key; called in a subshell, so this stays local
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: reloader-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $("${b64[@]}" <"$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $("${b64[@]}" <"$PKI/$3.crt")
    client-key-data: $("${b64[@]}" <"$PKI/$3.key")
contexts:
- name: reloader-local
  context:
    cluster: reloader-local
    user: $2
current-context: reloader-local
EOF
}

# --------------------------------------------------------------------- up

cmd_up() {
  local t0=$SECONDS problem
  for tool in openssl curl jq ss setsid flock realpath base64; do
    command -v "$tool" >/dev/null || die "$tool is required"
  done
  lock
  if problem=$(health_problem); then
    load_env
    log "a healthy control plane is already running in $CLUSTER_DIR"
    summary
    return 0
  fi
  if [ -e "$ENV_FILE" ] || [ -d "$PIDS" ] || [ -n "$(stray_pids)" ]; then
    log "found an unhealthy cluster ($problem); cleaning it up first"
    do_down
  fi

  # From here on, any failure tears down what was started.
  trap on_up_exit EXIT
  trap 'exit 130' INT TERM

  local bin
  bin=$("$here/build.sh") || die "tools/build.sh failed"
  BIN_DIR=$bin
  REAL_NODE=0
  if real_node_wanted; then
    if [ -z "${CLUSTER_REAL_NODE:-}" ] && [ -e "$NODE_LOCK" ] && ! flock -n "$NODE_LOCK" true; then
      log "another cluster directory runs the real node; this one gets kwok's node only"
    else
      REAL_NODE=1
      node_require
      node_network_up
    fi
  fi
  # Pods reach the API server at the node's address; without the node, loopback only.
  local api_ip=127.0.0.1
  [ "$REAL_NODE" = 1 ] && api_ip=$NODE_IP
  for b in "${CONTROL_PLANE[@]}"; do [ -x "$bin/$b" ] || die "missing $bin/$b"; done
  [ -s "$bin/kwok-stages.yaml" ] || die "missing $bin/kwok-stages.yaml"

  rm -rf "$LOGS"
  mkdir -p "$PIDS" "$LOGS"
  local etcd_peer_port
  free_port ETCD_PORT
  free_port etcd_peer_port
  free_port APISERVER_PORT
  free_port KCM_PORT
  free_port SCHEDULER_PORT
  APISERVER_URL=https://$api_ip:$APISERVER_PORT

  make_pki
  (write_kubeconfig "$KUBECONFIG_FILE" admin admin)
  cat >"$ENV_FILE" <<EOF
CLUSTER_DIR=$CLUSTER_DIR
KUBECONFIG=$KUBECONFIG_FILE
APISERVER_URL=$APISERVER_URL
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
CA_CERT=$PKI/ca.crt
CA_KEY=$PKI/ca.key
ADMIN_CERT=$PKI/admin.crt
ADMIN_KEY=$PKI/admin.key
NODE_NAME=$NODE_NAME
BIN_DIR=$bin
REAL_NODE=$REAL_NODE
EOF
  cat >"$CLUSTER_DIR/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $KUBECONFIG_FILE
  qps: 1000
  burst: 2000
leaderElection:
  leaderElect: false
EOF

  start etcd "$bin/etcd" --name=default --data-dir="$CLUSTER_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="default=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync=true
  wait_for "etcd /health" etcd_healthy

  # --endpoint-reconciler-type=none: without the real node, validation rejects
  # the loopback address in the `kubernetes` Endpoints; with it, node_up writes
  # them (the node's address, where pods reach the API server through the
  # Service), because the API server's own reconciler makes its shutdown wait
  # 10 s on a call to itself. With the node, it calls the kubelet with a client
  # certificate, verifying the kubelet's serving one.
  # ServiceAccount admission on: pods get their token mounted, as in any cluster.
  # TaintNodesByCondition off: otherwise a new node gets a not-ready NoSchedule
  # taint that only node-lifecycle would remove.
  local node_flags=()
  if [ "$REAL_NODE" = 1 ]; then
    node_flags=(--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP)
  fi
  start kube-apiserver "$bin/kube-apiserver" \
    --bind-address="$api_ip" --advertise-address="$api_ip" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-account-issuer="$APISERVER_URL" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type=none "${node_flags[@]}" \
    --disable-admission-plugins=TaintNodesByCondition \
    --v="$VERBOSITY"
  wait_for "kube-apiserver /readyz" apiserver_ready
  wait_for "namespace default" default_ns_exists

  # KCM and the scheduler get no --authentication/--authorization-kubeconfig:
  # their own HTTPS port then serves only /healthz, /readyz and /livez (to
  # anyone), which is all we use, and they do not keep retrying to load the
  # request-header CA that this apiserver does not have (log noise).
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=false --controllers="$KCM_CONTROLLERS" --root-ca-file="$PKI/ca.crt" \
    --kube-api-qps=1000 --kube-api-burst=2000 \
    --v="$VERBOSITY"
  start kube-scheduler "$bin/kube-scheduler" --config="$CLUSTER_DIR/scheduler.yaml" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --v="$VERBOSITY"

  # The fake node: kwok manages it because of the annotation, keeps it Ready
  # (with a heartbeat Lease), and plays the pod life cycle for pods bound to
  # it. No taints, so ordinary pods and DaemonSet pods schedule onto it.
  log "creating node $NODE_NAME"
  api /api/v1/nodes -X POST -H 'Content-Type: application/json' -d @- >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "$NODE_NAME",
   "annotations": {"kwok.x-k8s.io/node": "fake"},
   "labels": {"kubernetes.io/hostname": "$NODE_NAME", "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "type": "kwok"}},
 "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
            "capacity":    {"cpu": "32", "memory": "256Gi", "pods": "1000"}}}
EOF
  # kwok has no listener unless --server-address/--node-port is given; none
  # is, so it binds nothing. --cidr is the fake pod IP range (data only).
  # KWOK_WORKDIR: keep a personal ~/.kwok/kwok.yaml from being merged in.
  start kwok env KWOK_WORKDIR="$CLUSTER_DIR/kwok" "$bin/kwok" \
    --kubeconfig="$KUBECONFIG_FILE" --config="$bin/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --cidr=10.244.0.0/16 --node-lease-duration-seconds=40

  wait_for "kube-controller-manager /healthz" component_healthy "$KCM_PORT"
  wait_for "kube-scheduler /healthz" component_healthy "$SCHEDULER_PORT"
  wait_for "node $NODE_NAME Ready" node_ready
  [ "$REAL_NODE" = 1 ] && node_up

  up_done=1
  log "control plane up in $((SECONDS - t0))s"
  summary
}

up_done=0
on_up_exit() {
  local rc=$?
  [ "$up_done" = 1 ] && return
  log "up failed (exit $rc)"
  if [ "${CLUSTER_KEEP_FAILED:-0}" = 1 ]; then
    log "CLUSTER_KEEP_FAILED=1: leaving it running; logs in $LOGS; run 'tools/cluster.sh down' later"
  else
    log "tearing down what was started; the logs stay in $LOGS"
    do_down || true
  fi
  exit "$rc"
}

# For fault tests: stop one component of a running cluster (TERM, then KILL), and start it
# again later with the same command line, ports and certificates.
cmd_stop_component() {
  local name=${1:?component name} pid
  lock
  pid=$(pid_of "$name")
  is_ours "$name" "$pid" || die "$name is not running"
  stop_pids "$pid"
  await_reaped "$pid"
  log "stopped $name"
}

cmd_start_component() {
  local name=${1:?component name} pid cmd
  lock
  load_env
  pid=$(pid_of "$name")
  if is_ours "$name" "$pid"; then log "$name is already running"; return 0; fi
  [ -f "$PIDS/$name.cmd" ] || die "no recorded command line for $name"
  cmd=$(cat "$PIDS/$name.cmd")
  eval "start $name $cmd"
  case $name in
    kube-apiserver) wait_for "kube-apiserver /readyz" apiserver_ready ;;
    etcd) wait_for "etcd /health" etcd_healthy ;;
  esac
  log "started $name again"
}

# Imports an image archive (OCI or docker) into the real node's containerd, under its own name:
# no registry is reachable, so images the node runs are built here and imported.
cmd_import() {
  local archive=${1:?image archive}
  load_env || die "no cluster in $CLUSTER_DIR"
  [ "${REAL_NODE:-0}" = 1 ] || die "the cluster in $CLUSTER_DIR has no real node"
  NODE_BIN=$REAL_NODE_BIN node_import "$archive"
  log "imported $archive into $REAL_NODE_NAME"
}

case ${1:-} in
  up) cmd_up ;;
  import) cmd_import "${2:-}" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop-component) cmd_stop_component "${2:-}" ;;
  start-component) cmd_start_component "${2:-}" ;;
  *) echo "usage: $0 up|down|status|import <image archive>|stop-component <name>|start-component <name>" >&2; exit 2 ;;
esac
