# shellcheck shell=bash
# Sourced by tools/cluster.sh, which reads the settings below and defines `here`:
# shellcheck disable=SC2034,SC2154
# The real node: a kubelet, kube-proxy and containerd (with runc) on this machine, joined to the
# control plane that tools/cluster.sh starts, beside kwok's fake node. Sourced by tools/cluster.sh,
# whose helpers (start, stop_pids, wait_for, api, log, die) it uses; docs/real-node.md tells why
# each setting is what it is.
#
# Layout: everything the node writes lives under $CLUSTER_DIR/node, but for what the kernel and
# a few fixed paths force elsewhere (a bridge, iptables chains, cgroups, mounts, sysctls,
# /run/containerd/s for the shims' sockets, /var/log/containers). `node_up` records what it found
# of those; `node_clean` removes what the node added and restores the rest, then checks.
#
# Only one real node can run on a host (fixed names: the bridge, iptables chains, cgroups), so
# only one cluster directory at a time gets it; others (a test's private control plane) run with
# CLUSTER_REAL_NODE=0.

REAL_NODE_NAME=real-node-0
NODE_BRIDGE=rlnode0
NODE_SUBNET=10.85.0.0/24
NODE_IP=10.85.0.1
SERVICE_CIDR=10.0.0.0/24
SERVICE_API_IP=10.0.0.1
# Pods must ask for the real node: a toleration of this taint and a nodeSelector on this label.
NODE_TAINT_KEY=reloader.test/real-node
NODE_DIR=$CLUSTER_DIR/node
NODE_LOCK=/run/reloader-real-node.lock
NODE_COMPONENTS=(containerd kubelet kube-proxy)
# The images every node needs, built here (no registry is reachable) and imported at `up`.
PAUSE_IMAGE=localhost/pause:reloader
APP_IMAGE=localhost/busybox:reloader
# Host paths outside $NODE_DIR that containerd, the CNI plugins or the kubelet create when missing.
NODE_HOST_PATHS=(/run/containerd /var/lib/cni /var/log/containers /var/run/netns)
# Sysctls that the kubelet, kube-proxy or the bridge plugin may change: restored on `down`.
NODE_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet vm.overcommit_memory
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max)

# CLUSTER_REAL_NODE: 1 (default when root) or 0. Set once per cluster directory at `up` and
# remembered in cluster.env, so `down` and `status` of that directory agree with it.
real_node_wanted() {
  local want=${CLUSTER_REAL_NODE:-}
  if [ -z "$want" ]; then
    if [ "$(id -u)" = 0 ]; then want=1; else want=0; fi
  fi
  [ "$want" = 1 ]
}

# ------------------------------------------------------------------ host prerequisites

node_require() {
  [ "$(id -u)" = 0 ] || die "the real node needs root (CLUSTER_REAL_NODE=0 runs without it)"
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v buildah >/dev/null || missing+=(buildah)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
      die "could not install ${missing[*]}"
  fi
  if ip route show | grep -q "^${NODE_SUBNET%/*}"; then
    ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || die "$NODE_SUBNET is already routed on this host"
  fi
}

# The bridge carries the node's address before anything starts: the API server listens on it,
# the kubelet's and kube-proxy's node IP, and the CNI bridge plugin adopts it for the pods.
node_network_up() {
  # The lock is held for as long as the node runs: every component started from here on inherits
  # fd 7 (start closes only fd 9). Opened without truncating, so a refused caller does not erase
  # the owner's name; nothing under $NODE_DIR exists before the lock is ours, so a refused `up`
  # cleans nothing up (node_owned).
  exec 7<>"$NODE_LOCK"
  flock -n 7 || die "another cluster directory runs the real node (lock $NODE_LOCK); use CLUSTER_REAL_NODE=0"
  printf '%s\n' "$CLUSTER_DIR" >"$NODE_LOCK"
  mkdir -p "$NODE_DIR"
  node_record_host
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${NODE_SUBNET#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Pods need no route off the machine: whatever they send out of the bridge to anywhere but
  # the bridge itself is dropped (the host's own addresses are INPUT, not FORWARD).
  iptables -N RELOADER-NODE 2>/dev/null || iptables -F RELOADER-NODE
  iptables -A RELOADER-NODE -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
  iptables -C FORWARD -j RELOADER-NODE 2>/dev/null || iptables -I FORWARD -j RELOADER-NODE
}

# What the host looked like before the node: which fixed paths existed, and the sysctls.
node_record_host() {
  [ -f "$NODE_DIR/host.before" ] && return 0 # an `up` after a failed one keeps the first record
  local p s
  {
    for p in "${NODE_HOST_PATHS[@]}"; do [ -e "$p" ] && echo "path $p"; done
    for s in "${NODE_SYSCTLS[@]}"; do
      [ -e "/proc/sys/${s//.//}" ] && echo "sysctl $s $(cat "/proc/sys/${s//.//}")"
    done
  } >"$NODE_DIR/host.before.tmp"
  mv "$NODE_DIR/host.before.tmp" "$NODE_DIR/host.before"
}

# ------------------------------------------------------------------------ pki

# Called inside make_pki's subshell (cwd = $PKI, `sign` defined).
node_pki() {
  # The kubelet's client identity (the Node authorizer's), its serving certificate for the
  # API server's logs/exec calls, kube-proxy's identity, and the API server's kubelet client.
  sign kubelet "/O=system:nodes/CN=system:node:$REAL_NODE_NAME" \
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  sign kubelet-serving "/CN=$REAL_NODE_NAME" \
    "subjectAltName=IP:$NODE_IP,DNS:$REAL_NODE_NAME\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
  sign kube-proxy "/CN=system:kube-proxy" \
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" \
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
}

# --------------------------------------------------------------------- images

# pause (the sandbox) and busybox (a small app with a shell), as OCI archives cached by their
# inputs' versions; built with buildah FROM scratch.
node_images() {
  set -e # run in a command substitution, where bash turns errexit off
  local cache=${RELOADER_CACHE:-$HOME/.cache/reloader}/node-images
  mkdir -p "$cache"
  exec 6>"$cache/.lock"
  flock 6
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
  # Keyed by the pause program's source, which the cached binary was built from.
  local pause; pause="pause-$(sha256sum "$here/node/pause/main.go" | cut -c1-12).tar"
  if [ ! -s "$cache/$pause" ]; then
    log "building $PAUSE_IMAGE"
    node_image_from_files "$cache/$pause" "$PAUSE_IMAGE" '["/pause"]' "$(readlink -f "$NODE_BIN/pause"):/pause"
  fi
  ln -sf "$pause" "$cache/pause.tar"
  if [ ! -s "$cache/busybox.tar" ]; then
    log "building $APP_IMAGE from Debian's busybox-static"
    local work; work=$(mktemp -d)
    (cd "$work" && apt-get download -qq busybox-static >/dev/null 2>&1) ||
      { apt-get update -qq >/dev/null && (cd "$work" && apt-get download -qq busybox-static >/dev/null); } ||
      die "could not download busybox-static"
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/root"
    node_image_from_files "$cache/busybox.tar" "$APP_IMAGE" '["/bin/sh"]' \
      "$work/root/bin/busybox:/bin/busybox"
    rm -rf "$work"
  fi
  echo "$cache"
}

# node_image_from_files <archive> <name> <entrypoint json> <src:dest>...: for busybox, the
# applets are links to /bin/busybox.
node_image_from_files() {
  local archive=$1 name=$2 entry=$3 ctr spec; shift 3
  ctr=$(buildah from scratch)
  for spec in "$@"; do
    buildah copy --chown 0:0 --chmod 0755 "$ctr" "${spec%%:*}" "${spec#*:}" >/dev/null
  done
  if [ "$name" = "$APP_IMAGE" ]; then
    local links; links=$(mktemp -d)
    mkdir -p "$links/bin" "$links/tmp"
    for a in sh cat echo sleep date ls env printenv wget nc grep kill true false test; do
      ln -s busybox "$links/bin/$a"
    done
    chmod 1777 "$links/tmp"
    buildah copy "$ctr" "$links" / >/dev/null
    rm -rf "$links"
  fi
  buildah config --entrypoint "$entry" --cmd '' "$ctr"
  buildah commit --rm --quiet "$ctr" "$name" >/dev/null
  rm -f "$archive.tmp"
  buildah push --quiet "$name" "oci-archive:$archive.tmp:$name" >/dev/null
  mv "$archive.tmp" "$archive"
}

# Imports an image archive into the node's containerd (the CRI's namespace), by its own name.
node_import() { # node_import <archive>
  # ctr warns on stderr that cgroup v1 is deprecated, on every call.
  "$NODE_BIN/ctr" --address "$NODE_DIR/containerd.sock" -n k8s.io images import \
    --local "$1" >/dev/null 2>"$NODE_DIR/import.log" || { cat "$NODE_DIR/import.log" >&2; return 1; }
}

# ------------------------------------------------------------------------- up

node_configs() {
  local cni_dir=$NODE_DIR/cni
  mkdir -p "$NODE_DIR/containerd" "$cni_dir/net.d" "$cni_dir/ipam" "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 3
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = "$NODE_DIR/containerd.sock"
[ttrpc]
  address = "$NODE_DIR/containerd.sock.ttrpc"

[plugins.'io.containerd.cri.v1.runtime']
  # runc cannot lower the sandbox's oom_score_adj below our own without CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$NODE_BIN"]
    conf_dir = "$cni_dir/net.d"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
EOF
  cat >"$cni_dir/net.d/10-reloader.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "reloader-node",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$cni_dir/ipam",
              "ranges": [[{"subnet": "$NODE_SUBNET", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
EOF
  (write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "system:node:$REAL_NODE_NAME" kubelet)
  (write_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" system:kube-proxy kube-proxy)
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Listens on the node's bridge address only; its healthz and read-only ports are off.
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzPort: 0
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$NODE_DIR/containerd.sock
# This machine's cgroups are v1 ("hybrid"), which the kubelet refuses since 1.35 unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
podLogsDir: $NODE_DIR/pod-logs
registerWithTaints:
  - {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
# No DNS server in this cluster, and pods need no resolver off the machine.
resolvConf: ""
clusterDomain: cluster.local
# The images are imported, not pulled: image GC must never remove them, and disk pressure on a
# shared build machine must not evict the tests' pods.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
protectKernelDefaults: false
serializeImagePulls: false
maxPods: 110
EOF
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
hostnameOverride: $REAL_NODE_NAME
mode: iptables
clusterCIDR: $NODE_SUBNET
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
# No NodePorts on loopback (that would need route_localnet); conntrack sysctls left as they are.
iptables: {localhostNodePorts: false, masqueradeAll: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

real_node_ready() { node_ready "$REAL_NODE_NAME"; }
containerd_up() { "$NODE_BIN/ctr" --address "$NODE_DIR/containerd.sock" version; }
api_service_has_endpoints() {
  api "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io/service-name=kubernetes" |
    jq -e --arg ip "$NODE_IP" '[.items[].endpoints[]?.addresses[]] | index($ip) != null' >/dev/null
}

# Starts containerd, imports the images, then the kubelet and kube-proxy; waits for the node.
node_up() {
  NODE_BIN=$("$here/build.sh" node) || die "tools/build.sh node failed"
  echo "REAL_NODE_BIN=$NODE_BIN" >>"$ENV_FILE"
  local images
  images=$(node_images)
  node_configs
  start containerd "$NODE_BIN/containerd" --config "$NODE_DIR/containerd.toml"
  wait_for "containerd" containerd_up
  node_import "$images/pause.tar"
  node_import "$images/busybox.tar"

  # The `kubernetes` Service's endpoints (the API server's own reconciler is off; the mirroring
  # controller makes the EndpointSlice kube-proxy reads).
  api /api/v1/namespaces/default/endpoints -X POST -H 'Content-Type: application/json' -d @- >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes"},
 "subsets": [{"addresses": [{"ip": "$NODE_IP"}],
              "ports": [{"name": "https", "port": $APISERVER_PORT, "protocol": "TCP"}]}]}
EOF
  # The API server's kubelet client may read logs, exec and port-forward on every node.
  api /apis/rbac.authorization.k8s.io/v1/clusterrolebindings -X POST -H 'Content-Type: application/json' \
    -d @- >/dev/null <<EOF
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
 "metadata": {"name": "kube-apiserver-kubelet-client"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kubelet-api-admin"},
 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kube-apiserver-kubelet-client"}]}
EOF
  start kubelet "$BIN_DIR/kubelet" --config="$NODE_DIR/kubelet.yaml" \
    --kubeconfig="$NODE_DIR/kubelet.kubeconfig" --root-dir="$NODE_DIR/kubelet" \
    --cert-dir="$NODE_DIR/kubelet/pki" --volume-plugin-dir="$NODE_DIR/kubelet/volume-plugins" \
    --hostname-override="$REAL_NODE_NAME" --node-ip="$NODE_IP" \
    --node-labels="$NODE_TAINT_KEY=true,type=real" --v="$VERBOSITY"
  start kube-proxy "$BIN_DIR/kube-proxy" --config="$NODE_DIR/kube-proxy.yaml" --v="$VERBOSITY"
  wait_for "node $REAL_NODE_NAME Ready" real_node_ready
  wait_for "the kubernetes Service's endpoints" api_service_has_endpoints
  cat >>"$ENV_FILE" <<EOF
REAL_NODE_NAME=$REAL_NODE_NAME
REAL_NODE_IP=$NODE_IP
REAL_NODE_TAINT=$NODE_TAINT_KEY
REAL_NODE_CTR_ADDRESS=$NODE_DIR/containerd.sock
PAUSE_IMAGE=$PAUSE_IMAGE
APP_IMAGE=$APP_IMAGE
EOF
}

# ----------------------------------------------------------------------- down

# This cluster directory runs the real node: it holds its directory and the lock names it. What
# `down` does to the host (kill pods, drop chains, delete the bridge) is only ever done then.
node_owned() { [ -d "$NODE_DIR" ] && [ "$(cat "$NODE_LOCK" 2>/dev/null)" = "$CLUSTER_DIR" ]; }

# The node's binaries, as `up` recorded them (never built by `down`).
node_bin() { echo "${REAL_NODE_BIN:-${NODE_BIN:-}}"; }
node_ctr() { "$(node_bin)/ctr" --address "$NODE_DIR/containerd.sock" -n k8s.io "$@"; }

# Stops the kubelet and kube-proxy, every pod's processes and containerd. The host is cleaned
# by node_clean, after the control plane has stopped: the API server listens on the bridge's
# address, and removing it under the API server's own connections hangs its shutdown.
node_stop() {
  node_owned || return 0
  local pid name
  for name in kubelet kube-proxy; do
    pid=$(pid_of "$name"); is_ours "$name" "$pid" && stop_pids "$pid"
  done
  # The kubelet is gone, so nothing restarts them: kill every task (the pods' containers and
  # sandboxes) through containerd, then containerd.
  pid=$(pid_of containerd)
  if is_ours containerd "$pid" && [ -x "$(node_bin)/ctr" ]; then
    local id
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
    stop_pids "$pid"
  fi
  # Shims (their command line names our socket) and pod processes that outlived the above.
  node_kill_leftovers
}

# Removes what the node added to the host, restores what it changed, and checks that nothing
# is left.
node_clean() {
  node_owned || return 0
  if [ -x "$BIN_DIR/kube-proxy" ]; then
    "$BIN_DIR/kube-proxy" --cleanup --config="$NODE_DIR/kube-proxy.yaml" >>"$NODE_DIR/cleanup.log" 2>&1 || true
  fi
  node_unmount
  node_iptables_clean
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  node_cgroups_clean
  node_restore_host
  local left; left=$(node_leftovers)
  # Kept when something is left: its record of the host is what the next `down` restores.
  [ -z "$left" ] || die "the real node left behind: $left (record kept in $NODE_DIR)"
  rm -rf --one-file-system "$NODE_DIR"
  : >"$NODE_LOCK"
}

node_kill_leftovers() {
  local p pids=()
  local cmdline
  for p in /proc/[0-9]*; do
    cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ $cmdline == *"$NODE_DIR/containerd.sock"* ]] && pids+=("${p#/proc/}")
  done
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [ -d "$cg" ] && while read -r p; do pids+=("$p"); done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  ((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
  for p in "${pids[@]}"; do
    local deadline=$((SECONDS + 10))
    while ! is_gone "$p" && ((SECONDS < deadline)); do sleep 0.1; done
  done
  return 0
}

# Every mount under the node's directory (volumes, rootfs, shm, netns), deepest first.
node_mounts() { awk -v d="$NODE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
node_unmount() {
  local m
  for m in $(node_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

# Rules and chains kube-proxy, the kubelet or we added: every KUBE-* and RELOADER-NODE chain and
# every rule that jumps to one, in every table, IPv4 and IPv6; everything else is kept as is.
node_iptables_clean() {
  local t
  for t in iptables ip6tables; do
    command -v "$t-save" >/dev/null || continue
    # Captured first: `grep -q` closing the pipe early would fail it under pipefail.
    local rules; rules=$("$t-save")
    if grep -qE 'KUBE-|RELOADER-NODE' <<<"$rules"; then
      grep -vE 'KUBE-|RELOADER-NODE' <<<"$rules" | "$t-restore"
    fi
  done
  if command -v nft >/dev/null; then
    nft delete table ip kube-proxy 2>/dev/null || true
    nft delete table ip6 kube-proxy 2>/dev/null || true
  fi
}

node_cgroups_clean() {
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

node_restore_host() {
  [ -f "$NODE_DIR/host.before" ] || return 0
  local kind a b p
  for p in "${NODE_HOST_PATHS[@]}"; do
    grep -qxF "path $p" "$NODE_DIR/host.before" || rm -rf "$p"
  done
  while read -r kind a b; do
    [ "$kind" = sysctl ] || continue
    p=/proc/sys/${a//.//}
    [ "$(cat "$p" 2>/dev/null)" = "$b" ] || echo "$b" >"$p" 2>/dev/null || true
  done <"$NODE_DIR/host.before"
}

# What the node would have left on the host (empty when clean).
node_leftovers() {
  local left=()
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && left+=("bridge $NODE_BRIDGE")
  [ -n "$(node_mounts)" ] && left+=("mounts: $(node_mounts | head -3 | xargs)")
  local rules; rules=$(iptables-save 2>/dev/null; ip6tables-save 2>/dev/null)
  grep -qE 'KUBE-|RELOADER-NODE' <<<"$rules" && left+=("iptables chains")
  ls -d /sys/fs/cgroup/*/kubepods >/dev/null 2>&1 && left+=("kubepods cgroups")
  local p
  for p in "${NODE_HOST_PATHS[@]}"; do
    [ -e "$p" ] && ! grep -qxF "path $p" "$NODE_DIR/host.before" 2>/dev/null && left+=("$p")
  done
  echo "${left[*]}"
}
