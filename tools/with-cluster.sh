#!/usr/bin/env bash
# Runs a command with RELOADER_TEST_KUBECONFIG pointing at a healthy control plane:
# the one `make cluster` runs (.cluster/) when it is up (and no demo reloader runs on it),
# otherwise a private one in target/test-cluster/ that is started for the command and stopped
# afterwards.
# So `make test` starts the control plane at most once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

# A reloader left running by `make demo` (installed in the cluster: .cluster/demo) or `make run`
# registers cluster-wide webhooks that would stamp the tests' workloads: then the shared control
# plane is not a clean fixture, so use a private one.
demo_running() {
  local pidfile="$repo/.cluster/reloader.pid"
  [ -f "$repo/.cluster/demo" ] && return 0
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

if env -u CLUSTER_DIR "$here/cluster.sh" status >/dev/null 2>&1 && ! demo_running; then
  export RELOADER_TEST_KUBECONFIG="$repo/.cluster/kubeconfig"
  exec "$@"
fi

export CLUSTER_DIR="$repo/target/test-cluster"
# A `down` that finds something left on the host (docs/real-node.md) fails the run too.
stop_cluster() {
  local rc=$?
  "$here/cluster.sh" down >&2 || rc=1
  exit "$rc"
}
trap stop_cluster EXIT
"$here/cluster.sh" up >&2
export RELOADER_TEST_KUBECONFIG="$CLUSTER_DIR/kubeconfig"
"$@"
