#!/usr/bin/env bash
# `make demo`: the main job, end to end, on a fresh machine.
#
# Status: the reload engine and the admission webhook are not built yet, so this demo
# stops short of a reload. It builds everything, starts the real local control plane and
# shows a Deployment rolling out on it, then says plainly what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
step() { printf '\n==> %s\n' "$*"; }
export KUBECONFIG="$repo/.cluster/kubeconfig"

step "Building the control-plane binaries (cached after the first run) and reloader"
tools/build.sh >/dev/null
cargo build --release --quiet

step "Starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
tools/cluster.sh up
kubectl version 2>/dev/null | sed 's/^/    /'

step "Applying an example app (Deployment using a ConfigMap and a Secret, auto-reload on)"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo apply -f - <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations: {reloader.stakater.com/auto: "true"}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - name: app
        image: registry.example/demo:1
        envFrom:
        - configMapRef: {name: app-config}
        - secretRef: {name: app-secret}
YAML
kubectl -n demo rollout status deployment/app --timeout=120s
kubectl -n demo get deployment,replicaset,pods -o wide

step "Not done yet"
cat <<'TXT'
    The reload engine (issue 4) and the admission webhook (issue 5) are not built yet, so
    this demo cannot yet reject a typo'd annotation or roll the app when its Secret rotates.
    `target/release/reloader` exits with a message saying so.

    Poke at the cluster:   export KUBECONFIG=.cluster/kubeconfig; kubectl get pods -A
    Stop it:               make cluster-down
TXT
