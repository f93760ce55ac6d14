#!/usr/bin/env bash
# `make demo`: the main job, end to end, on a fresh machine, as a user meets it. Builds the image
# and the control plane, starts the local cluster with its real node, installs the reloader from
# the Helm chart (two replicas of the image, leader election, the webhook behind its Service),
# applies an app whose real pods print the Secret and ConfigMap they read, shows a typo'd
# annotation rejected by the API server, rotates the Secret, and shows the new pods printing it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
export KUBECONFIG="$repo/.cluster/kubeconfig"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
indent() { sed 's/^/    /'; }

# What the app's pods that are not being deleted printed, one line per pod.
app_says() {
  local pod deleting
  while read -r pod deleting; do
    [ -n "$pod" ] && [ -z "$deleting" ] || continue
    printf '%s: %s\n' "$pod" "$(kubectl -n demo logs "$pod" 2>/dev/null | head -1)"
  done < <(kubectl -n demo get pods -l app=demo \
    -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}')
}

step "Building the control plane, the real node and the reloader's image (cached after the first run)"
tools/build.sh >/dev/null
tools/build.sh node >/dev/null
helm=$(tools/helm.sh --path)
IMAGE_BUILD=${IMAGE_BUILD:-local} tools/image.sh 2>&1 | grep -E '^\[image\] built' | indent

step "Starting the local cluster: etcd, kube-apiserver, controller-manager, scheduler, kwok's node and a real node"
tools/cluster.sh up 2>/dev/null | indent
tools/cluster.sh import target/image/reloader.tar 2>&1 | indent
# A cluster-wide reloader runs on this cluster from now on: tests use a private cluster instead.
touch .cluster/demo
kubectl get nodes -o wide 2>&1 | cut -c1-110 | indent

step "Installing the reloader with Helm: two pods of the image on the real node, leader election, the webhook"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
"$helm" upgrade --install reloader manifests/helm/reloader -n reloader --create-namespace --wait --timeout 3m \
  --set image.repository=localhost/reloader --set "image.tag=$version" \
  --set reloader.enableHA=true --set reloader.deployment.replicas=2 \
  --set-string 'reloader.deployment.nodeSelector.reloader\.test/real-node=true' \
  --set 'reloader.deployment.tolerations[0].key=reloader.test/real-node' \
  --set 'reloader.deployment.tolerations[0].operator=Exists' 2>&1 | grep -E '^(NAME|STATUS|REVISION)' | indent
kubectl -n reloader get pods -o wide 2>&1 | cut -c1-110 | indent
echo "    leader: $(kubectl -n reloader get lease stakater-reloader-lock -o jsonpath='{.spec.holderIdentity}')"
for _ in $(seq 1 150); do
  kubectl get validatingwebhookconfiguration -o name 2>/dev/null | grep -q . && break
  sleep 0.2
done
kubectl get mutatingwebhookconfigurations,validatingwebhookconfigurations \
  -o custom-columns='KIND:.kind,NAME:.metadata.name,SERVICE:.webhooks[0].clientConfig.service.name' 2>&1 | indent

step "Applying the example app: two pods on the real node, reading a Secret (env) and a ConfigMap (file)"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo apply -f examples/app.yaml 2>&1 | indent
kubectl -n demo rollout status deployment/app --timeout=120s 2>&1 | indent
echo "    stamped by the webhook at create:"
kubectl -n demo get deployment app \
  -o jsonpath='{.spec.template.metadata.annotations.reloader\.stakater\.com/hashes}{"\n"}' | indent
echo "    what the pods print:"
app_says | indent

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
echo "    what the new pods print:"
for _ in $(seq 1 50); do
  [ "$(app_says | grep -c rotated-)" -ge 2 ] && break
  sleep 0.2
done
app_says | indent

step "What the reloader said"
leader=$(kubectl -n reloader get lease stakater-reloader-lock -o jsonpath='{.spec.holderIdentity}')
kubectl -n reloader logs "$leader" 2>/dev/null | grep -a "Changes detected" | tail -1 | cut -c1-220 | indent
kubectl -n demo get events --field-selector reason=Reloaded \
  -o custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message 2>&1 | indent

step "Done. Everything is still running:"
cat <<'TXT'
    Poke at it:   export KUBECONFIG=$PWD/.cluster/kubeconfig
                  kubectl -n demo get deploy,rs,pods -o wide
                  kubectl -n demo logs -l app=demo
                  kubectl -n reloader logs -l app=reloader-reloader -f
    Stop it:      make cluster-down   (stops the cluster, its real node and the reloader's pods)
TXT
