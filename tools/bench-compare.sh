#!/usr/bin/env bash
# A/B benchmark: this reloader vs Stakater Reloader, one after the other (never both at once),
# against the same private local control plane (target/bench-cluster/), measuring what
# Stakater's users report: memory with many Secrets (stakater/Reloader#321) and the latency of
# a fan-out reload (one ConfigMap used by 50 Deployments).
#
#   STAKATER_BIN=/path/to/stakater/reloader tools/bench-compare.sh      (or make bench-compare)
#
# Population (nominal sizes are of the decoded data):
#   BENCH_NAMESPACES (20) namespaces, each with 100 Opaque Secrets of 10 KiB random data,
#   50 ConfigMaps of ~2 KiB and 2 Secrets of type helm.sh/release.v1 of 200 KiB;
#   namespace bench-apps: ConfigMap `shared` and 50 Deployments (1 replica, kwok pods)
#   annotated reloader.stakater.com/auto: "true" that envFrom it.
# Objects are created with `kubectl apply --server-side -f -` (server-side, so no
# last-applied-configuration annotation doubles every object in the watchers' caches).
#
# Per contender: start it, wait until synced, read VmRSS/VmHWM, run BENCH_ROUNDS (5) rounds
# of "patch shared -> all 50 Deployments show a changed pod-template annotation", read the
# memory again, stop it (TERM, then KILL) and check it is gone.
#   synced, ours:     GET 127.0.0.1:19090/ready is 200, then 3 s more.
#   synced, Stakater: it has no readiness endpoint; its log must show
#                     "Starting Controller to watch resource type: configmaps" and "...: secrets",
#                     then VmRSS must stay within 1 MiB over 7 samples 0.5 s apart (3 s).
#   reloaded:         pod-template annotation reloader.stakater.com/hashes (ours) or
#                     reloader.stakater.com/last-reloaded-from (Stakater, annotations strategy)
#                     differs from its value before the round, on all 50 Deployments. Polled
#                     with one GET of the Deployment list (curl, as `kubectl get deploy -o json`
#                     but without kubectl's ~0.1 s start-up) every 50 ms, deadline 120 s; the
#                     clock starts just before the PATCH of `shared` is sent.
#   between rounds:   wait until every rollout has finished, so rounds do not overlap.
#
# Environment: STAKATER_BIN (required), STAKATER_VERSION (label; default: git commit of the
# checkout holding the binary, else its Go module version), BENCH_NAMESPACES, BENCH_ROUNDS,
# BENCH_PARALLEL (concurrent kubectl applies while populating, default 4).
# Output: a Markdown report on stdout and in target/bench-compare.md; logs in
# target/bench-compare/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

NAMESPACES=${BENCH_NAMESPACES:-20}
ROUNDS=${BENCH_ROUNDS:-5}
PARALLEL=${BENCH_PARALLEL:-4}
APPS=50
APPS_NS=bench-apps
OURS_ADDR=127.0.0.1:19090
POLL_INTERVAL=0.05
ROUND_DEADLINE_S=120
SYNC_TIMEOUT_S=180

export CLUSTER_DIR=$repo/target/bench-cluster
work=$repo/target/bench-compare
report=$repo/target/bench-compare.md
ours_bin=$repo/target/release/reloader

log() { printf '[bench-compare] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -n "${STAKATER_BIN:-}" ] || die "set STAKATER_BIN to a Stakater Reloader binary"
[ -x "$STAKATER_BIN" ] || die "STAKATER_BIN=$STAKATER_BIN is not an executable file"
STAKATER_BIN=$(realpath "$STAKATER_BIN")
for tool in kubectl curl jq ss base64 setsid; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# All traffic is loopback; never through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

t_start=$SECONDS
load_start=$(uptime)
mkdir -p "$work"

# ------------------------------------------------------------- clean-up

contender_pid=""
cleanup() {
  local rc=$?
  if [ -n "$contender_pid" ] && kill -0 "$contender_pid" 2>/dev/null; then
    log "stopping contender pid $contender_pid"
    kill -KILL "$contender_pid" 2>/dev/null || true
    wait "$contender_pid" 2>/dev/null || true
  fi
  log "stopping the control plane"
  "$here/cluster.sh" down >&2 || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- helpers

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
kb_to_mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; } # proc_kb <pid> VmRSS
port_in_use() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }

# api <path> [curl args...]: a request to the apiserver as the cluster admin.
api() {
  local path=$1; shift
  curl -sS --fail --max-time 10 --cacert "$CA_CERT" --cert "$ADMIN_CERT" --key "$ADMIN_KEY" \
    "$APISERVER_URL$path" "$@"
}
k() { kubectl --kubeconfig="$KUBECONFIG" "$@"; }

rand_b64() { head -c "$1" /dev/urandom | base64 -w0; } # rand_b64 <bytes>

# ------------------------------------------------------------- control plane, build

log "load at start: $load_start"
log "building this reloader (cargo build --release)"
(cd "$repo" && cargo build --release) >&2
ours_version="$("$ours_bin" --version) @ $(git -C "$repo" rev-parse --short HEAD)"
[ -z "$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock)" ] || ours_version+=" (+ uncommitted src changes)"

if [ -n "${STAKATER_VERSION:-}" ]; then
  stakater_version=$STAKATER_VERSION
elif stakater_commit=$(git -C "$(dirname "$STAKATER_BIN")" rev-parse --short=8 HEAD 2>/dev/null); then
  stakater_version="$stakater_commit ($(git -C "$(dirname "$STAKATER_BIN")" describe --tags --always))"
else
  stakater_version=$(go version -m "$STAKATER_BIN" 2>/dev/null | awk '$1 == "mod" { print $3 }')
fi

log "starting the control plane in $CLUSTER_DIR"
"$here/cluster.sh" up >&2
# shellcheck disable=SC1091
source "$CLUSTER_DIR/cluster.env" # KUBECONFIG, APISERVER_URL, CA_CERT, ADMIN_CERT, ADMIN_KEY
export KUBECONFIG

# ------------------------------------------------------------- population

# The YAML of one namespace's sources.
namespace_yaml() {
  local ns=$1 i
  for i in $(seq -w 1 100); do
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: secret-%s, namespace: %s}\ntype: Opaque\ndata:\n  blob: %s\n' \
      "$i" "$ns" "$(rand_b64 10240)"
  done
  for i in $(seq -w 1 50); do
    # 1536 random bytes -> 2048 base64 characters of text.
    printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-%s, namespace: %s}\ndata:\n  settings: %s\n' \
      "$i" "$ns" "$(rand_b64 1536)"
  done
  for i in 1 2; do
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: sh.helm.release.v1.release%s.v1\n  namespace: %s\n' "$i" "$ns"
    printf '  labels: {name: release%s, owner: helm, status: deployed, version: "1"}\n' "$i"
    printf 'type: helm.sh/release.v1\ndata:\n  release: %s\n' "$(rand_b64 204800)"
  done
}

apps_yaml() {
  local i
  printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: %s}\ndata: {value: v0}\n' "$APPS_NS"
  for i in $(seq -w 1 "$APPS"); do
    cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-$i
  namespace: $APPS_NS
  annotations: {reloader.stakater.com/auto: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-$i}}
  template:
    metadata: {labels: {app: app-$i}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        envFrom: [{configMapRef: {name: shared}}]
EOF
  done
}

populate_namespace() {
  namespace_yaml "$1" | k apply --server-side -f - >/dev/null
}

log "populating: $NAMESPACES namespaces x (100 Secrets 10 KiB + 50 ConfigMaps 2 KiB + 2 Helm release Secrets 200 KiB), $APPS Deployments in $APPS_NS"
t_pop=$SECONDS
{
  for n in $(seq -w 1 "$NAMESPACES"); do printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bench-%s}\n' "$n"; done
  printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$APPS_NS"
} | k apply --server-side -f - >/dev/null
jobs_running=()
for n in $(seq -w 1 "$NAMESPACES"); do
  populate_namespace "bench-$n" &
  jobs_running+=("$!")
  if ((${#jobs_running[@]} >= PARALLEL)); then
    wait "${jobs_running[0]}"
    jobs_running=("${jobs_running[@]:1}")
  fi
done
for j in "${jobs_running[@]}"; do wait "$j"; done
apps_yaml | k apply --server-side -f - >/dev/null
k -n "$APPS_NS" wait --for=condition=Available deployment --all --timeout=180s >/dev/null
pop_seconds=$((SECONDS - t_pop))

count() { # count <list path>: number of objects, fetched as metadata only
  api "$1" -H 'Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' | jq '.items | length'
}
n_secrets=$(count /api/v1/secrets)
n_helm=$(count '/api/v1/secrets?fieldSelector=type%3Dhelm.sh%2Frelease.v1')
n_configmaps=$(count /api/v1/configmaps)
population="$n_secrets Secrets ($n_helm Helm releases), $n_configmaps ConfigMaps, $APPS Deployments"
log "populated in ${pop_seconds}s: $population"

# ------------------------------------------------------------- measurement

deployments() { api "/apis/apps/v1/namespaces/$APPS_NS/deployments"; }

# A JSON object: Deployment name -> value of pod-template annotation $1 (null if absent).
template_annotations() {
  deployments | jq -c --arg key "$1" '[.items[] | {key: .metadata.name, value: .spec.template.metadata.annotations[$key]}] | from_entries'
}

# How many Deployments have pod-template annotation $1 different from the map $2.
changed_count() {
  deployments | jq --arg key "$1" --argjson before "$2" \
    '[.items[] | select(.spec.template.metadata.annotations[$key] != $before[.metadata.name])] | length'
}

# Waits until all rollouts in $APPS_NS are complete (the control plane is quiet again).
wait_rollouts_done() {
  local deadline=$((SECONDS + 180))
  until deployments | jq -e '.items | length > 0 and all(.[];
      .status.observedGeneration == .metadata.generation and
      (.status.updatedReplicas // 0) == .spec.replicas and
      (.status.replicas // 0) == .spec.replicas and
      (.status.availableReplicas // 0) == .spec.replicas)' >/dev/null; do
    ((SECONDS < deadline)) || die "rollouts in $APPS_NS did not finish within 180s"
    sleep 0.5
  done
}

wait_acknowledged() {
  local deadline=$((SECONDS + SYNC_TIMEOUT_S)) n
  while :; do
    n=$(deployments | jq '[.items[] | select(.metadata.annotations["reloader.stakater.com/acknowledged-hashes"] != null)] | length')
    if ((n == APPS)); then return 0; fi
    ((SECONDS < deadline)) || die "only $n/$APPS Deployments acknowledged after ${SYNC_TIMEOUT_S}s"
    sleep 0.2
  done
}

ensure_alive() { kill -0 "$contender_pid" 2>/dev/null || die "$1 exited; see $2"; }

wait_ours_synced() {
  local deadline=$((SECONDS + SYNC_TIMEOUT_S))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$OURS_ADDR/ready")" = 200 ]; do
    ensure_alive "our reloader" "$1"
    ((SECONDS < deadline)) || die "our reloader was not ready within ${SYNC_TIMEOUT_S}s"
    sleep 0.1
  done
  sleep 3
}

wait_stakater_synced() {
  local logfile=$1 deadline=$((SECONDS + SYNC_TIMEOUT_S)) samples=() lo hi s
  until grep -q 'Starting Controller to watch resource type: configmaps' "$logfile" &&
    grep -q 'Starting Controller to watch resource type: secrets' "$logfile"; do
    ensure_alive "Stakater" "$logfile"
    ((SECONDS < deadline)) || die "Stakater did not start its controllers within ${SYNC_TIMEOUT_S}s"
    sleep 0.1
  done
  while :; do
    ensure_alive "Stakater" "$logfile"
    samples+=("$(proc_kb "$contender_pid" VmRSS)")
    if ((${#samples[@]} >= 7)); then
      samples=("${samples[@]: -7}")
      lo=${samples[0]} hi=${samples[0]}
      for s in "${samples[@]}"; do
        if ((s < lo)); then lo=$s; fi
        if ((s > hi)); then hi=$s; fi
      done
      if ((hi - lo <= 1024)); then return 0; fi
    fi
    ((SECONDS < deadline)) || die "Stakater's RSS did not settle within ${SYNC_TIMEOUT_S}s"
    sleep 0.5
  done
}

stop_contender() {
  local name=$1 pid=$contender_pid
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name still running 10s after TERM; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  if kill -0 "$pid" 2>/dev/null; then die "$name (pid $pid) is still running"; fi
  [ ! -e "/proc/$pid" ] || die "$name (pid $pid) is still in /proc"
  contender_pid=""
  log "$name (pid $pid) stopped"
}

# run_contender <name>: start, measure, stop. Sets the result_* variables.
run_contender() {
  local name=$1 logfile key times=() before t0 n elapsed round value
  logfile=$work/$name.log
  case $name in
    stakater)
      key=reloader.stakater.com/last-reloaded-from
      for port in 9090 6060; do ! port_in_use $port || die "port $port is in use; Stakater binds it"; done
      log "starting Stakater: KUBECONFIG=$KUBECONFIG $STAKATER_BIN --reload-strategy=annotations"
      env -u KUBERNETES_NAMESPACE -u RELOADER_NAMESPACE KUBECONFIG="$KUBECONFIG" \
        setsid "$STAKATER_BIN" --reload-strategy=annotations </dev/null >"$logfile" 2>&1 &
      contender_pid=$!
      wait_stakater_synced "$logfile"
      ;;
    ours)
      key=reloader.stakater.com/hashes
      ! port_in_use "${OURS_ADDR##*:}" || die "port ${OURS_ADDR##*:} is in use"
      local args=(--kubeconfig="$KUBECONFIG" --http-addr="$OURS_ADDR" --reload-window=0
        --max-reloads-per-second=1000 --max-reloads-per-second-per-namespace=1000)
      log "starting ours: $ours_bin ${args[*]}"
      env -u KUBERNETES_NAMESPACE -u RELOADER_NAMESPACE \
        setsid "$ours_bin" "${args[@]}" </dev/null >"$logfile" 2>&1 &
      contender_pid=$!
      wait_ours_synced "$logfile"
      ;;
  esac
  result_rss_sync=$(proc_kb "$contender_pid" VmRSS)
  result_hwm_sync=$(proc_kb "$contender_pid" VmHWM)
  log "$name synced: VmRSS $(kb_to_mib "$result_rss_sync") MiB, VmHWM $(kb_to_mib "$result_hwm_sync") MiB"
  if [ "$name" = ours ]; then wait_acknowledged; fi

  result_timeouts=0
  for round in $(seq "$ROUNDS"); do
    wait_rollouts_done
    before=$(template_annotations "$key")
    value="$name-$round-$RANDOM$RANDOM"
    t0=$(now_ms)
    api "/api/v1/namespaces/$APPS_NS/configmaps/shared" -X PATCH \
      -H 'Content-Type: application/merge-patch+json' -d "{\"data\":{\"value\":\"$value\"}}" >/dev/null
    while :; do
      n=$(changed_count "$key" "$before")
      elapsed=$(($(now_ms) - t0))
      ((n == APPS)) && break
      if ((elapsed > ROUND_DEADLINE_S * 1000)); then
        log "$name round $round: only $n/$APPS reloaded after ${ROUND_DEADLINE_S}s"
        result_timeouts=$((result_timeouts + 1)); elapsed=""
        break
      fi
      ensure_alive "$name" "$logfile"
      sleep "$POLL_INTERVAL"
    done
    if [ -n "$elapsed" ]; then
      times+=("$elapsed")
      log "$name round $round: all $APPS reloaded in ${elapsed} ms"
    fi
  done
  wait_rollouts_done

  result_rss_end=$(proc_kb "$contender_pid" VmRSS)
  result_hwm_end=$(proc_kb "$contender_pid" VmHWM)
  log "$name after rounds: VmRSS $(kb_to_mib "$result_rss_end") MiB, VmHWM $(kb_to_mib "$result_hwm_end") MiB"
  result_times=$(printf '%s\n' "${times[@]}" | sort -n | xargs)
  if ((${#times[@]})); then
    result_fanout=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%d [%d–%d]", m, v[1], v[NR] }')
  else
    result_fanout="–"
  fi
  ((result_timeouts == 0)) || result_fanout+=" ($result_timeouts of $ROUNDS rounds timed out)"
  stop_contender "$name"
}

row() { # row <label> <version>
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(kb_to_mib "$result_rss_sync")" \
    "$(kb_to_mib "$result_hwm_end")" "$result_fanout" "$population"
}
details() { # details <label> <log file>
  printf -- '- %s: VmRSS after sync %s MiB (VmHWM %s), after rounds %s MiB (VmHWM %s); fan-out ms by round, sorted: %s; log: %s\n' \
    "$1" "$(kb_to_mib "$result_rss_sync")" "$(kb_to_mib "$result_hwm_sync")" \
    "$(kb_to_mib "$result_rss_end")" "$(kb_to_mib "$result_hwm_end")" "$result_times" "${2#"$repo"/}"
}

run_contender stakater
stakater_row=$(row "Stakater Reloader" "$stakater_version")
stakater_details=$(details "Stakater" "$work/stakater.log")
stakater_throttled=$(grep -c 'client-side throttling' "$work/stakater.log" || true)

run_contender ours
ours_row=$(row "reloader (this repo)" "$ours_version")
ours_details=$(details "ours" "$work/ours.log")

load_end=$(uptime)
total=$((SECONDS - t_start))

{
  cat <<EOF
# reloader vs Stakater Reloader: $(date -u +'%Y-%m-%d %H:%M UTC')

Local control plane (tools/cluster.sh, Kubernetes from tools/versions.env, kwok node), $(nproc) cores.
Each contender ran alone against the same population; fan-out = PATCH of ConfigMap \`shared\` to all
$APPS Deployments that envFrom it showing a new pod-template annotation ($ROUNDS rounds, polled every 50 ms).

| contender | version/commit | RSS after sync MiB | peak RSS MiB | fan-out median ms [min–max] | population |
| --- | --- | --- | --- | --- | --- |
$stakater_row
$ours_row

$stakater_details
$ours_details

- Commands: \`KUBECONFIG=$KUBECONFIG $STAKATER_BIN --reload-strategy=annotations\`;
  \`target/release/reloader --kubeconfig=$KUBECONFIG --http-addr=$OURS_ADDR --reload-window=0 --max-reloads-per-second=1000 --max-reloads-per-second-per-namespace=1000\`.
- Synced: ours when /ready is 200, plus 3 s; Stakater (no readiness endpoint) when its log shows both
  "Starting Controller to watch resource type" lines (configmaps, secrets) and its VmRSS then stayed
  within 1 MiB for 3 s. Peak RSS is VmHWM after the rounds.
- Stakater's client-go uses the default client-side rate limit (QPS 5, burst 10; it has no flags
  for it); its log has $stakater_throttled "client-side throttling" line(s).
- Population created in ${pop_seconds}s (kubectl apply --server-side). Whole run: ${total}s.
- Load average at start: ${load_start#*load average: }; at end: ${load_end#*load average: }.
EOF
} | tee "$report"
log "report written to ${report#"$repo"/}"
