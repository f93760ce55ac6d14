#!/usr/bin/env bash
# Runs Stakater Reloader's own end-to-end suite (test/e2e of github.com/stakater/Reloader),
# unchanged, against this reloader on the local control plane (tools/cluster.sh).
#
#   tools/stakater-e2e.sh PATH-TO-STAKATER-CHECKOUT [SUITE...]
#
# SUITE is a directory of test/e2e: core annotations flags advanced (the default), argo, csi.
# Extra Ginkgo arguments go after `--`, e.g. `-- -ginkgo.focus='Secret'`.
#
# The checkout is yours; it is never modified:
#   git clone https://github.com/stakater/Reloader && git -C Reloader checkout v1.4.21
# The suite imports two OpenShift modules, github.com/openshift/api and
# github.com/openshift/client-go. The Go module proxy serves the client-go version v1.4.21 pins
# but refuses (403) the pinned openshift/api version; when that happens the suite is built with
# a copy of go.mod (go -modfile, in the cache directory) that replaces openshift/api with the
# version client-go itself requires. Nothing else is changed.
#
# How it works: each suite is compiled with `go test -c`, then run with a `helm` stand-in first
# on PATH (this script, called as `helm`). The suite installs "Reloader" with
# `helm upgrade --install REL CHART --namespace NS ... --set reloader.X=Y ...`; the stand-in maps
# each value to our flags and environment exactly as Stakater's chart renders them, starts our
# binary in the background against the control plane with those flags (engine and admission
# webhook, the way tools/reloader.sh runs it; STAKATER_E2E_WEBHOOK=0 runs the engine alone, which
# is what Stakater's chart with our image would give), and creates the Deployment REL-reloader
# the suite waits for (kwok runs its pods). `helm uninstall` stops that process and deletes what
# it created. Suites run one at a time.
#
# Needs: go, kubectl, curl, python3, cargo (to build the reloader), and the control-plane
# binaries of tools/build.sh (built on first use).
#
# Environment:
#   CLUSTER_DIR              control plane to use (default <repo>/target/stakater-e2e/cluster);
#                            started when not running, and then stopped at the end
#   STAKATER_E2E_KEEP_CLUSTER=1  leave a control plane this script started running
#   STAKATER_E2E_CACHE       suite binaries, go.mod copy, logs (default <repo>/target/stakater-e2e)
#   RELOADER_BIN             reloader binary to test (default: built with cargo)
#   STAKATER_E2E_PROFILE     cargo profile when building it: debug (default) or release
#   STAKATER_E2E_WEBHOOK=0   run without the admission webhook
#   STAKATER_E2E_TIMEOUT     go test timeout per suite (default 90m)
#
# Logs: <cache>/runs/<time>/<suite>.log (the suite, verbose) and
# <cache>/runs/<time>/releases/<ns>/<release>/reloader-<n>.log (each reloader started).
set -euo pipefail

ALL_SUITES=(core annotations flags advanced argo csi)
DEFAULT_SUITES=(core annotations flags advanced)
# Where the stand-in keeps the webhook's certificate Secrets: the webhook never covers its own
# namespace, so, as with manifests/ (namespace `reloader`), it is not the apps' namespace.
HOME_NAMESPACE=reloader-e2e

log() { printf '[stakater-e2e] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ======================================================================= helm stand-in

# Helm's --set syntax, enough for the suite: `a.b=v,c=w`, `\,` escapes a comma, `{x,y}` is a
# list (kept as `x,y` with a list marker). Fills the associative array `values`.
declare -A values=()
LIST_MARK=$'\x1f'
parse_set() {
  local spec=$1 item="" depth=0 c i
  for ((i = 0; i < ${#spec}; i++)); do
    c=${spec:i:1}
    if [ "$c" = "\\" ] && [ $((i + 1)) -lt ${#spec} ]; then
      i=$((i + 1)); item+=${spec:i:1}; continue
    fi
    case $c in
      '{') depth=$((depth + 1)) ;;
      '}') depth=$((depth - 1)) ;;
    esac
    if [ "$c" = , ] && [ "$depth" -eq 0 ]; then
      set_value "$item"; item=""
    else
      item+=$c
    fi
  done
  [ -z "$item" ] || set_value "$item"
}
set_value() {
  local key=${1%%=*} value=${1#*=}
  [ "$key" != "$1" ] || die "helm: --set $1: no value"
  if [[ $value == \{*\} ]]; then
    value=${value#\{}; value=${value%\}}
    value=$LIST_MARK$value
  fi
  values[$key]=$value
}

# Values as the chart's templates test them.
val() { local v=${values[$1]-${2-}}; printf '%s' "${v#"$LIST_MARK"}"; }
# `{{ if .Values.x }}`: empty, false, 0, null and an empty list are false.
truthy() {
  local v; v=$(val "$1" "${2-}")
  case $v in "" | false | 0 | null) return 1 ;; *) return 0 ;; esac
}
# `{{ if eq .Values.x true }}`: only the boolean true (what `--set x=true` gives).
is_true() { [ "$(val "$1" "${2-}")" = true ]; }

# Every `reloader.*` value the stand-in maps; any other value stops it, so nothing the suite
# sets is silently dropped.
KNOWN_VALUES=" reloader.logFormat reloader.logLevel reloader.ignoreSecrets reloader.ignoreConfigMaps
 reloader.ignoreJobs reloader.ignoreCronJobs reloader.namespaces reloader.ignoreNamespaces
 reloader.namespaceSelector reloader.resourceLabelSelector reloader.enablePProf reloader.pprofAddr
 reloader.enableCSIIntegration reloader.isArgoRollouts reloader.reloadOnCreate
 reloader.reloadOnDelete reloader.syncAfterRestart reloader.reloadStrategy reloader.autoReloadAll
 reloader.watchGlobally reloader.webhookUrl reloader.custom_annotations.configmap
 reloader.custom_annotations.secret reloader.custom_annotations.auto
 reloader.custom_annotations.secret_auto reloader.custom_annotations.configmap_auto
 reloader.custom_annotations.search reloader.custom_annotations.match
 reloader.custom_annotations.ignore reloader.custom_annotations.pausePeriod
 reloader.custom_annotations.pauseTime "

# Stakater's chart (deployments/kubernetes/chart/reloader, templates/deployment.yaml and
# _helpers.tpl of v1.4.21) rendered into our argv (`args`) and environment (`envs`), in the
# chart's order. Release namespace $1, Deployment name $2.
args=()
envs=()
render() {
  local ns=$1 name=$2 key
  for key in "${!values[@]}"; do
    case $key in
      image.* | reloader.deployment.env.open.*) ;;
      reloader.enableHA | reloader.deployment.replicas)
        die "helm: --set $key: HA is not supported by this stand-in (one process per release)" ;;
      *) [[ " ${KNOWN_VALUES//$'\n'/ } " == *" $key "* ]] || die "helm: --set $key: value not mapped by the stand-in" ;;
    esac
  done
  local global=true
  truthy reloader.watchGlobally true || global=false
  local namespaces; namespaces=$(val reloader.namespaces)
  if [ -n "$namespaces" ] && [ $global = true ]; then
    die "helm: reloader.namespaces requires reloader.watchGlobally=false (the chart fails too)"
  fi
  if [ $global = false ] && [ -z "$namespaces" ]; then envs+=("KUBERNETES_NAMESPACE=$ns"); fi
  envs+=("RELOADER_NAMESPACE=$ns" "RELOADER_DEPLOYMENT_NAME=$name")
  for key in "${!values[@]}"; do
    case $key in reloader.deployment.env.open.*)
      truthy "$key" && envs+=("${key#reloader.deployment.env.open.}=$(val "$key")") ;;
    esac
  done

  if truthy reloader.logFormat; then args+=("--log-format=$(val reloader.logFormat)"); fi
  if truthy reloader.logLevel info; then args+=("--log-level=$(val reloader.logLevel info)"); fi
  if truthy reloader.ignoreSecrets; then args+=(--resources-to-ignore=secrets); fi
  if truthy reloader.ignoreConfigMaps; then args+=(--resources-to-ignore=configmaps); fi
  if truthy reloader.ignoreJobs && truthy reloader.ignoreCronJobs; then
    args+=('--ignored-workload-types=jobs,cronjobs')
  elif truthy reloader.ignoreJobs; then
    args+=(--ignored-workload-types=jobs)
  elif truthy reloader.ignoreCronJobs; then
    args+=(--ignored-workload-types=cronjobs)
  fi
  if [ -n "$namespaces" ]; then
    # The release namespace plus the list: trimmed, deduplicated, sorted, comma-joined.
    local csv
    csv=$( { echo "$ns"; tr ',' '\n' <<<"$namespaces"; } | sed 's/^[[:space:]]*//;s/[[:space:]]*$//' |
      grep -v '^$' | LC_ALL=C sort -u | paste -sd, -)
    args+=("--namespaces=$csv")
  fi
  if truthy reloader.ignoreNamespaces && [ $global = true ]; then
    args+=("--namespaces-to-ignore=$(val reloader.ignoreNamespaces)")
  fi
  # The chart puts literal double quotes inside the argument; pflag reads it as CSV.
  if truthy reloader.namespaceSelector && [ $global = true ]; then
    args+=("--namespace-selector=\"$(val reloader.namespaceSelector)\"")
  fi
  if truthy reloader.resourceLabelSelector; then
    args+=("--resource-label-selector=$(val reloader.resourceLabelSelector)")
  fi
  if truthy reloader.enablePProf; then
    args+=(--enable-pprof)
    if truthy reloader.pprofAddr :6060; then args+=("--pprof-addr=$(val reloader.pprofAddr :6060)"); fi
  fi
  if truthy reloader.enableCSIIntegration; then args+=(--enable-csi-integration=true); fi
  local custom=false pair
  for pair in configmap:--configmap-annotation secret:--secret-annotation auto:--auto-annotation \
    secret_auto:--secret-auto-annotation configmap_auto:--configmap-auto-annotation \
    search:--auto-search-annotation match:--search-match-annotation ignore:--ignore-annotation \
    pausePeriod:--pause-deployment-annotation pauseTime:--pause-deployment-time-annotation; do
    if truthy "reloader.custom_annotations.${pair%%:*}"; then
      custom=true
      args+=("${pair#*:}" "$(val "reloader.custom_annotations.${pair%%:*}")")
    fi
  done
  # The chart renders webhookUrl only inside its custom_annotations block.
  if $custom && truthy reloader.webhookUrl; then args+=(--webhook-url "$(val reloader.webhookUrl)"); fi
  if is_true reloader.isArgoRollouts; then args+=(--is-Argo-Rollouts=true); fi
  if is_true reloader.reloadOnCreate; then args+=(--reload-on-create=true); fi
  if is_true reloader.reloadOnDelete; then args+=(--reload-on-delete=true); fi
  if is_true reloader.syncAfterRestart; then args+=(--sync-after-restart=true); fi
  if [ "$(val reloader.reloadStrategy default)" != default ]; then
    args+=("--reload-strategy=$(val reloader.reloadStrategy)")
  fi
  if is_true reloader.autoReloadAll; then args+=(--auto-reload-all=true); fi
  return 0
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

kc() { kubectl --kubeconfig="$KUBECONFIG" "$@"; }

ensure_namespace() {
  kc get namespace "$1" >/dev/null 2>&1 || kc create namespace "$1" >/dev/null
}

# The pid of a release's reloader, if that process is still the one we started.
release_pid() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid")
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
  # (not grep -q: with pipefail, tr would die of SIGPIPE and fail the check)
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -xF -- "--http-addr=127.0.0.1:$(cat "$dir/http")" >/dev/null || return 1
  echo "$pid"
}

stop_reloader() {
  local dir=$1 pid
  pid=$(release_pid "$dir") || { rm -f "$dir/pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

# The stand-in for the chart's Deployment: the name and labels the suite waits for and selects
# logs by; kwok runs its pod. Its args show what the reloader process was started with.
standin_deployment() {
  local ns=$1 rel=$2 name=$3 image=$4 json_args
  json_args=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${args[@]}")
  cat <<EOF
{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "$name", "namespace": "$ns",
   "labels": {"app": "$name", "release": "$rel", "app.kubernetes.io/name": "reloader",
              "app.kubernetes.io/instance": "$rel", "app.kubernetes.io/managed-by": "stakater-e2e-standin"}},
 "spec": {"replicas": 1,
   "selector": {"matchLabels": {"app": "$name", "release": "$rel"}},
   "template": {
     "metadata": {"labels": {"app": "$name", "release": "$rel", "app.kubernetes.io/name": "reloader",
                             "app.kubernetes.io/instance": "$rel"}},
     "spec": {"containers": [{"name": "$name", "image": "$image", "args": $json_args}]}}}}
EOF
}

helm_upgrade() {
  local rel="" chart="" ns=default wait=false timeout=180s
  while [ $# -gt 0 ]; do
    case $1 in
      --install | --create-namespace | --reset-values | --reuse-values | --atomic | --debug) ;;
      --wait) wait=true ;;
      --namespace | -n) ns=$2; shift ;;
      --namespace=*) ns=${1#*=} ;;
      --timeout) timeout=$2; shift ;;
      --timeout=*) timeout=${1#*=} ;;
      --set) parse_set "$2"; shift ;;
      --set=*) parse_set "${1#*=}" ;;
      -*) die "helm upgrade: option $1 not supported by the stand-in" ;;
      *) if [ -z "$rel" ]; then rel=$1; elif [ -z "$chart" ]; then chart=$1; else die "helm: extra argument $1"; fi ;;
    esac
    shift
  done
  [ -n "$rel" ] && [ -n "$chart" ] || die "helm upgrade: RELEASE and CHART are required"
  local name=$rel-reloader
  local dir=$STAKATER_E2E_STATE/releases/$ns/$rel
  mkdir -p "$dir"
  render "$ns" "$name"
  # --reset-values (the suite always passes it): a new process with exactly these values.
  stop_reloader "$dir"
  ensure_namespace "$ns"

  local http webhook=() run=1
  http=$(free_port)
  if [ "${STAKATER_E2E_WEBHOOK:-1}" != 0 ]; then
    local port; port=$(free_port)
    ensure_namespace "$HOME_NAMESPACE"
    webhook=(
      --admission-addr="127.0.0.1:$port" --admission-url="https://127.0.0.1:$port"
      --admission-namespace="$HOME_NAMESPACE" --admission-configuration="$name"
      --admission-secret="$name-webhook-tls"
      # It runs with the suite's (admin) credentials: name the identity it would have in a
      # cluster, so the suite's own requests still go through the webhook (tools/reloader.sh).
      --admission-self-user="system:serviceaccount:$ns:$name"
    )
  fi
  while [ -e "$dir/reloader-$run.log" ]; do run=$((run + 1)); done
  local out=$dir/reloader-$run.log
  echo "$http" >"$dir/http"
  {
    printf 'env:'; printf ' %q' "${envs[@]}"; echo
    printf 'args:'; printf ' %q' "${args[@]}"; echo
  } >"$out"
  # Detached, and not holding the caller's output pipes (the suite waits for them to close).
  env -u KUBERNETES_NAMESPACE -u POD_NAME -u POD_NAMESPACE "${envs[@]}" \
    setsid "$RELOADER_BIN" --kubeconfig="$KUBECONFIG" --http-addr="127.0.0.1:$http" \
    "${webhook[@]}" "${args[@]}" </dev/null >>"$out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  # Ready: caches synced (and the webhook certificate loaded).
  local deadline=$((SECONDS + ${timeout%s}))
  until curl -sf --max-time 1 "http://127.0.0.1:$http/ready" >/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$out" >&2
      die "helm: the reloader for $ns/$rel exited; see $out"
    fi
    [ $SECONDS -lt "$deadline" ] || die "helm: the reloader for $ns/$rel is not ready; see $out"
    sleep 0.2
  done
  local image
  image="$(val image.repository ghcr.io/stakater/reloader):$(val image.tag latest)"
  standin_deployment "$ns" "$rel" "$name" "$image" | kc apply -f - >/dev/null
  if $wait; then
    kc -n "$ns" rollout status "deployment/$name" --timeout="$timeout" >/dev/null
  fi
  echo "Release \"$rel\" has been upgraded. Happy Helming!"
  echo "NAMESPACE: $ns"
}

# `helm template`: what `upgrade` would run (env, then args, one per line), to compare with
# the real chart's rendering.
helm_template() {
  local rel="" ns=default
  while [ $# -gt 0 ]; do
    case $1 in
      --namespace | -n) ns=$2; shift ;;
      --set) parse_set "$2"; shift ;;
      -*) ;;
      *) [ -n "$rel" ] || rel=$1 ;;
    esac
    shift
  done
  render "$ns" "$rel-reloader"
  printf 'env %s\n' "${envs[@]}"
  [ ${#args[@]} -eq 0 ] || printf 'arg %s\n' "${args[@]}"
}

helm_uninstall() {
  local rel="" ns=default ignore=false
  while [ $# -gt 0 ]; do
    case $1 in
      --wait | --debug) ;;
      --ignore-not-found) ignore=true ;;
      --namespace | -n) ns=$2; shift ;;
      --namespace=*) ns=${1#*=} ;;
      --timeout) shift ;;
      --timeout=*) ;;
      -*) die "helm uninstall: option $1 not supported by the stand-in" ;;
      *) rel=$1 ;;
    esac
    shift
  done
  [ -n "$rel" ] || die "helm uninstall: RELEASE is required"
  local dir=$STAKATER_E2E_STATE/releases/$ns/$rel name=$rel-reloader
  if [ ! -f "$dir/http" ]; then
    $ignore && return 0
    die "helm uninstall: release $rel not found in $ns"
  fi
  stop_reloader "$dir"
  # What the leader registered, and the webhook's certificate Secret.
  kc delete mutatingwebhookconfiguration,validatingwebhookconfiguration "$name" \
    --ignore-not-found >/dev/null
  kc -n "$HOME_NAMESPACE" delete secret "$name-webhook-tls" --ignore-not-found >/dev/null 2>&1 || true
  kc -n "$ns" delete deployment "$name" --ignore-not-found --wait=true >/dev/null
  rm -f "$dir/http"
  echo "release \"$rel\" uninstalled"
}

helm_main() {
    [ "${1:-}" = template ] ||
    : "${STAKATER_E2E_STATE:?run through tools/stakater-e2e.sh}" "${RELOADER_BIN:?}" "${KUBECONFIG:?}"
  case ${1:-} in
    upgrade | install) shift; helm_upgrade "$@" ;;
    uninstall | delete) shift; helm_uninstall "$@" ;;
    template) shift; helm_template "$@" ;;
    version) echo 'version.BuildInfo{Version:"v3-stand-in"}' ;;
    *) die "helm $*: not supported by the stand-in" ;;
  esac
}

# Uninstalls every release still running (the end of a run, or an interrupted one).
uninstall_all() {
  local dir ns rel
  for dir in "$STAKATER_E2E_STATE"/releases/*/*; do
    [ -f "$dir/http" ] || continue
    rel=$(basename "$dir"); ns=$(basename "$(dirname "$dir")")
    log "uninstalling leftover release $ns/$rel"
    PATH="$STAKATER_E2E_STATE/bin:$PATH" helm uninstall "$rel" --namespace "$ns" --ignore-not-found \
      >/dev/null || true
  done
}

if [ "$(basename "$0")" = helm ]; then
  helm_main "$@"
  exit
fi

# ======================================================================= runner

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
self=$here/$(basename "$0")

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; esac
checkout=$(realpath "$1")
shift
suites=()
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; extra=("$@"); break; fi
  [[ " ${ALL_SUITES[*]} " == *" $1 "* ]] || die "unknown suite $1 (one of: ${ALL_SUITES[*]})"
  suites+=("$1")
  shift
done
[ ${#suites[@]} -gt 0 ] || suites=("${DEFAULT_SUITES[@]}")

[ -f "$checkout/go.mod" ] && [ -d "$checkout/test/e2e" ] ||
  die "$checkout is not a Stakater Reloader checkout (no go.mod or test/e2e)"
grep -q '^module github.com/stakater/Reloader' "$checkout/go.mod" ||
  die "$checkout/go.mod is not module github.com/stakater/Reloader"
for tool in go kubectl curl python3 setsid; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done

cache=$(realpath -m "${STAKATER_E2E_CACHE:-$repo/target/stakater-e2e}")
export CLUSTER_DIR
CLUSTER_DIR=$(realpath -m "${CLUSTER_DIR:-$cache/cluster}")
mkdir -p "$cache/bin"

# ---------------------------------------------------------------- the reloader
if [ -z "${RELOADER_BIN:-}" ]; then
  profile=${STAKATER_E2E_PROFILE:-debug}
  case $profile in
    debug) (cd "$repo" && cargo build --bin reloader) ;;
    release) (cd "$repo" && cargo build --release --bin reloader) ;;
    *) die "STAKATER_E2E_PROFILE must be debug or release" ;;
  esac
  RELOADER_BIN=$repo/target/$profile/reloader
fi
RELOADER_BIN=$(realpath "$RELOADER_BIN")
[ -x "$RELOADER_BIN" ] || die "$RELOADER_BIN is not executable"
export RELOADER_BIN

# ---------------------------------------------------------------- the suites
# A copy of go.mod/go.sum (go -modfile): the checkout stays untouched, and openshift/api is
# replaced when the module proxy refuses the pinned version.
modfile=$cache/e2e.mod
cp "$checkout/go.mod" "$modfile"
if [ -f "$checkout/go.sum" ]; then cp "$checkout/go.sum" "${modfile%.mod}.sum"; else : >"${modfile%.mod}.sum"; fi
module_version() { # the version go.mod requires of module $1 (after replaces in the file)
  (cd "$checkout" && go mod edit -json "$modfile") | python3 -c '
import json, sys
m = json.load(sys.stdin); want = sys.argv[1]
for r in m.get("Replace") or []:
    if r["Old"]["Path"] == want and r["New"].get("Version"):
        print(r["New"]["Version"]); sys.exit()
for r in m.get("Require") or []:
    if r["Path"] == want:
        print(r["Version"]); sys.exit()' "$1"
}
api=github.com/openshift/api
client=github.com/openshift/client-go
api_version=$(module_version "$api")
if [ -n "$api_version" ] && ! (cd "$checkout" && go mod download -modfile="$modfile" "$api@$api_version") 2>/dev/null; then
  client_version=$(module_version "$client")
  [ -n "$client_version" ] || die "the proxy refuses $api@$api_version and go.mod requires no $client"
  client_mod=$(cd "$checkout" && go mod download -modfile="$modfile" -json "$client@$client_version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  fallback=$(awk -v m="$api" '$1 == m { print $2; exit }' "$client_mod")
  [ -n "$fallback" ] || die "the proxy refuses $api@$api_version and $client names no version of it"
  log "the module proxy refuses $api@$api_version; building with $api@$fallback (what $client@$client_version requires)"
  (cd "$checkout" && go mod edit -replace="$api=$api@$fallback" "$modfile")
fi
for suite in "${suites[@]}"; do
  log "building suite $suite"
  (cd "$checkout" && GOFLAGS=-mod=mod go test -c -modfile="$modfile" -o "$cache/bin/$suite.test" "./test/e2e/$suite") ||
    die "building suite $suite failed"
done

# ---------------------------------------------------------------- the control plane
started_cluster=false
if ! "$here/cluster.sh" status >/dev/null 2>&1; then
  log "starting the control plane in $CLUSTER_DIR"
  "$here/cluster.sh" up >&2
  started_cluster=true
fi
export KUBECONFIG=$CLUSTER_DIR/kubeconfig

run_dir=$cache/runs/$(date +%Y%m%d-%H%M%S)
export STAKATER_E2E_STATE=$run_dir
mkdir -p "$run_dir/bin"
ln -sf "$self" "$run_dir/bin/helm"

cleanup() {
  uninstall_all
  if $started_cluster && [ "${STAKATER_E2E_KEEP_CLUSTER:-0}" != 1 ]; then
    "$here/cluster.sh" down >&2 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- run
log "reloader: $RELOADER_BIN (webhook: $([ "${STAKATER_E2E_WEBHOOK:-1}" != 0 ] && echo on || echo off))"
log "logs: $run_dir"
failed=()
summary=()
for suite in "${suites[@]}"; do
  out=$run_dir/$suite.log
  log "running suite $suite"
  rc=0
  (
    cd "$checkout/test/e2e/$suite"
    PATH="$run_dir/bin:$PATH" "$cache/bin/$suite.test" -test.v -test.timeout "${STAKATER_E2E_TIMEOUT:-90m}" \
      -ginkgo.v -ginkgo.no-color "${extra[@]}"
  ) >"$out" 2>&1 || rc=$?
  uninstall_all
  ran=$(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$out" | tail -1 || true)
  counts=$(grep -E '^(SUCCESS|FAIL)! -- ' "$out" | tail -1 || true)
  line="$suite: ${ran:-no Ginkgo summary} ${counts:+| $counts}"
  summary+=("$line")
  if [ "$rc" -ne 0 ]; then
    failed+=("$suite")
    log "$line (exit $rc)"
    sed -n '/^Summarizing [0-9]* Failure/,/^Ran [0-9]* of/p' "$out" | sed '$d' >&2
  else
    log "$line"
  fi
done

echo
echo "Stakater e2e against $RELOADER_BIN:"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (logs in $run_dir)"
  exit 1
fi
echo "all passed (logs in $run_dir)"
