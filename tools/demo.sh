#!/usr/bin/env bash
# `make demo`: the main job, end to end, on a fresh machine. Builds everything, starts the local
# control plane, runs the reloader with its webhooks registered, applies an example app, shows a
# typo'd annotation rejected by the API server, rotates the Secret, and shows the rollout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
export KUBECONFIG="$repo/.cluster/kubeconfig"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
indent() { sed 's/^/    /'; }

step "Building the control plane (cached after the first run) and the reloader"
tools/build.sh >/dev/null
cargo build --release --quiet

step "Starting the local control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok"
tools/cluster.sh up 2>/dev/null | indent
kubectl version 2>/dev/null | indent

step "Starting the reloader (engine + admission webhook on https://127.0.0.1:9443)"
tools/reloader.sh start
curl -s --max-time 2 http://127.0.0.1:9090/ready | indent; echo

step "Applying the example app: a Deployment using a ConfigMap and a Secret, auto-reload on"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo apply -f examples/app.yaml 2>&1 | indent
kubectl -n demo rollout status deployment/app --timeout=120s 2>&1 | indent
echo "    stamped by the webhook at create:"
kubectl -n demo get deployment app \
  -o jsonpath='{.spec.template.metadata.annotations.reloader\.stakater\.com/hashes}{"\n"}' | indent

step "A typo'd annotation is rejected by the API server"
printf '    $ kubectl -n demo annotate deployment app reloader.stakater.com/atuo=true\n'
if kubectl -n demo annotate deployment app reloader.stakater.com/atuo=true 2>&1 | indent; then
  echo "    (unexpectedly accepted)"; exit 1
fi

step "Rotating the Secret"
kubectl -n demo create secret generic app-secret --from-literal=password="rotated-$(date +%s)" \
  --dry-run=client -o yaml | kubectl apply -f - 2>&1 | indent
for _ in $(seq 1 100); do
  [ "$(kubectl -n demo get rs -l app=demo -o name | wc -l)" -ge 2 ] && break
  sleep 0.1
done
kubectl -n demo rollout status deployment/app --timeout=120s 2>&1 | indent
kubectl -n demo get replicasets -l app=demo 2>&1 | indent

step "What the reloader said"
grep -a "Changes detected" .cluster/logs/reloader.log | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | indent
kubectl -n demo get events --field-selector reason=Reloaded \
  -o custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message 2>&1 | indent

step "Done. Everything is still running:"
cat <<'TXT'
    Poke at it:   export KUBECONFIG=$PWD/.cluster/kubeconfig
                  kubectl -n demo get deploy,rs,pods
                  curl -s 127.0.0.1:9090/metrics | grep ^reloader_
                  tail -f .cluster/logs/reloader.log
    Stop it:      make cluster-down   (stops the reloader and the control plane)
TXT
