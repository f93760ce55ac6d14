#!/usr/bin/env bash
# Runs the reloader against the local control plane (.cluster/kubeconfig): both halves, the
# webhook registered by URL on https://127.0.0.1:9443, health and metrics on 127.0.0.1:9090.
#   tools/reloader.sh run [flags]     foreground (make run)
#   tools/reloader.sh start [flags]   background, log in .cluster/logs/reloader.log (make demo)
#   tools/reloader.sh stop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin="$repo/target/release/reloader"
pidfile="$repo/.cluster/reloader.pid"
log="$repo/.cluster/logs/reloader.log"

flags=(
  --kubeconfig="$repo/.cluster/kubeconfig"
  --http-addr=127.0.0.1:9090
  --admission-addr=127.0.0.1:9443
  --admission-url=https://127.0.0.1:9443
  --admission-namespace=reloader
  # It runs as the admin user here, like you: name the identity it would have in a cluster, so
  # your own kubectl requests still go through the webhook.
  --admission-self-user=system:serviceaccount:reloader:reloader
)

stop() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

home_namespace() {
  kubectl --kubeconfig="$repo/.cluster/kubeconfig" create namespace reloader --dry-run=client -o yaml |
    kubectl --kubeconfig="$repo/.cluster/kubeconfig" apply -f - >/dev/null
}

case ${1:-} in
  run)
    shift
    home_namespace
    exec "$bin" "${flags[@]}" "$@"
    ;;
  start)
    shift
    stop
    home_namespace
    mkdir -p "$(dirname "$log")"
    setsid "$bin" "${flags[@]}" "$@" </dev/null >"$log" 2>&1 &
    echo $! >"$pidfile"
    # Ready means: source caches synced and the webhook certificate loaded.
    for _ in $(seq 1 300); do
      if curl -sf --max-time 1 http://127.0.0.1:9090/ready >/dev/null; then exit 0; fi
      kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$log" >&2; exit 1; }
      sleep 0.1
    done
    echo "reloader did not become ready; see $log" >&2
    exit 1
    ;;
  stop) stop ;;
  *) echo "usage: $0 run|start [flags] | stop" >&2; exit 2 ;;
esac
