#!/usr/bin/env bash
# Rewrites tools/link/symbol-order.txt: the functions the release binary runs, in the order the
# linker should pack them (see build.rs and docs/engine.md, Memory). Run it after a toolchain or
# dependency upgrade, or a large change to what runs at start-up:
#
#   make symbol-order      (tools/with-cluster.sh tools/symbol-order.sh)
#
# Needs valgrind (Debian: apt-get install valgrind) and a control plane (RELOADER_TEST_KUBECONFIG,
# as tools/with-cluster.sh gives it). Builds the release binary and the image's (static,
# --target: its symbols carry other hashes, so the file holds both builds' names), then runs
# each under callgrind against a small namespace of its own: the engine alone (start-up, sync,
# two reloads, /metrics), then with the admission webhook (a Deployment applied through it).
# The engine runs' names come first, so what every installation runs is packed tightest. The
# file is a build input, never required: names the linker does not find are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
kubeconfig=${RELOADER_TEST_KUBECONFIG:?run under tools/with-cluster.sh (or set RELOADER_TEST_KUBECONFIG)}
command -v valgrind >/dev/null || { echo "symbol-order: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

out="$repo/tools/link/symbol-order.txt"
work=$(mktemp -d)
namespace=symbol-order
# The webhook's certificates live here: the webhook never admits its own namespace.
home=symbol-order-system
kubectl() { command kubectl --kubeconfig "$kubeconfig" "$@"; }
cleanup() {
  kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration "$namespace" >/dev/null 2>&1 || true
  kubectl delete namespace "$namespace" "$home" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "symbol-order: $*" >&2; }

# The functions of `binary` that callgrind saw run, in the profile's order, recursion marks
# ('2) removed. Callgrind names each object (ob=) and function (fn=, cfn=) once, then by number.
functions_of() {
  local profile=$1 binary=$2
  awk -v bin="$binary" '
    /^(ob|cob|fn|cfn)=\(/ {
      key = substr($0, 1, index($0, "=") - 1)
      rest = substr($0, index($0, "(") + 1)
      id = substr(rest, 1, index(rest, ")") - 1)
      name = substr(rest, index(rest, ")") + 2)
      if (key == "ob" || key == "cob") {
        if (name != "") objects[id] = name
        if (key == "ob") object = objects[id]
      } else {
        if (name != "") names[id] = name
        if (key == "fn" && object == bin) {
          n = names[id]
          sub(/\047[0-9]+$/, "", n)
          if (!(n in seen)) { seen[n] = 1; print n }
        }
      }
    }' "$profile"
}

wait_ready() {
  local port=$1
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "the reloader under valgrind never became ready"
  return 1
}

# One profiled run: starts `binary` under callgrind with `args`, waits until ready, runs the
# `exercise` function, stops it with SIGTERM (as the kubelet does) and appends its functions.
profile_run() {
  local name=$1 binary=$2 exercise=$3
  shift 3
  local port=$((20000 + RANDOM % 20000))
  log "$name: $binary under callgrind"
  RELOADER_LOG=info valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$work/$name.cg" \
    "$binary" --kubeconfig="$kubeconfig" --http-addr="127.0.0.1:$port" "$@" \
    >"$work/$name.log" 2>&1 &
  local pid=$!
  wait_ready "$port" || { tail -20 "$work/$name.log" >&2; kill "$pid"; return 1; }
  "$exercise" "$port" || { tail -20 "$work/$name.log" >&2; kill "$pid"; return 1; }
  kill -TERM "$pid"
  wait "$pid" || true
  functions_of "$work/$name.cg" "$binary" >>"$work/names"
}

rollout_of() {
  kubectl -n "$namespace" get deployment "$1" -o jsonpath='{.spec.template.metadata.annotations}'
}

# Waits until the Deployment's template annotations differ from `before`.
wait_rolled() {
  local deployment=$1 before=$2
  for _ in $(seq 1 120); do
    [ "$(rollout_of "$deployment")" != "$before" ] && return 0
    sleep 1
  done
  log "$deployment was not rolled"
  return 1
}

exercise_engine() {
  local port=$1 before
  # Called in a condition, where `set -e` does not apply: every step returns its failure.
  before=$(rollout_of app-1) || return 1
  kubectl -n "$namespace" patch configmap cm-1 --type merge -p "{\"data\":{\"settings\":\"$RANDOM\"}}" >/dev/null || return 1
  wait_rolled app-1 "$before" || return 1
  before=$(rollout_of app-1) || return 1
  kubectl -n "$namespace" patch secret secret-1 --type merge -p "{\"stringData\":{\"password\":\"$RANDOM\"}}" >/dev/null || return 1
  wait_rolled app-1 "$before" || return 1
  curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null
}

exercise_webhook() {
  local port=$1
  # Registration happens once the certificate is in place; the webhook's failure policy lets
  # a write through while it is not, so apply until a stamp shows. As another user: the
  # webhook skips the reloader's own identity, which is this kubeconfig's.
  kubectl -n "$namespace" delete deployment admitted --ignore-not-found --wait=true >/dev/null || return 1
  for _ in $(seq 1 60); do
    kubectl --as=symbol-order --as-group=system:masters -n "$namespace" apply -f "$work/admitted.yaml" >/dev/null || return 1
    if [ -n "$(kubectl -n "$namespace" get deployment admitted -o jsonpath='{.spec.template.metadata.annotations}')" ]; then
      exercise_engine "$port"
      return
    fi
    kubectl -n "$namespace" delete deployment admitted --wait=true >/dev/null || return 1
    sleep 2
  done
  log "the webhook never stamped a Deployment"
  return 1
}

deployment() {
  local name=$1 annotation=$2
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $namespace
  annotations: {$annotation}
spec:
  replicas: 0
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      containers:
      - name: app
        image: example.invalid/app:1
        envFrom: [{configMapRef: {name: cm-1}}]
        env: [{name: P, valueFrom: {secretKeyRef: {name: secret-1, key: password}}}]
        volumeMounts: [{name: s, mountPath: /s}]
      volumes: [{name: s, secret: {secretName: secret-1}}]
EOF
}

{
  for name in "$namespace" "$home"; do
    echo "apiVersion: v1"
    echo "kind: Namespace"
    echo "metadata: {name: $name}"
    echo "---"
  done
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata: {name: cm-1, namespace: $namespace}"
  echo "data: {settings: initial}"
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Secret"
  echo "metadata: {name: secret-1, namespace: $namespace}"
  echo "stringData: {password: initial}"
  echo "---"
  deployment app-1 'reloader.stakater.com/auto: "true"'
  echo "---"
  deployment app-2 'configmap.reloader.stakater.com/reload: cm-1'
} >"$work/inventory.yaml"
deployment admitted 'reloader.stakater.com/auto: "true"' >"$work/admitted.yaml"
kubectl apply -f "$work/inventory.yaml" >/dev/null

triple="$(uname -m)-unknown-linux-gnu"
log "building the release binary, and the image's (the command of tools/image.sh and the Dockerfile)"
(cd "$repo" && cargo build --release --bin reloader >&2)
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" --bin reloader >&2)
: >"$work/names"
binary_of() {
  if [ "$1" = image ]; then echo "$repo/target/$triple/release/reloader"; else echo "$repo/target/release/reloader"; fi
}
for flavour in host image; do
  profile_run "engine-$flavour" "$(binary_of "$flavour")" exercise_engine
done
for flavour in host image; do
  webhook_port=$((40000 + RANDOM % 10000))
  profile_run "webhook-$flavour" "$(binary_of "$flavour")" exercise_webhook \
    --admission-addr="127.0.0.1:$webhook_port" --admission-url="https://127.0.0.1:$webhook_port" \
    --admission-namespace="$home" --admission-configuration="$namespace" \
    --namespace-selector="kubernetes.io/metadata.name=$namespace"
  # The next run registers its own address.
  kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration "$namespace" >/dev/null
done
awk '!seen[$0]++' "$work/names" >"$out"
log "$(wc -l <"$out") functions written to ${out#"$repo"/}"
