#!/usr/bin/env bash
# Builds the pinned control-plane binaries from the Go module proxy into a
# version-keyed cache, only when missing. Prints the bin directory on stdout.
#   tools/build.sh node   the real node's binaries instead (containerd, its shim and ctr, the
#                         CNI plugins, the pause program): prints their bin directory
#   KUBE_VERSION   Kubernetes release (default in tools/versions.env)
#   RELOADER_CACHE cache root (default $HOME/.cache/reloader)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/versions.env"

export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
cache=${RELOADER_CACHE:-$HOME/.cache/reloader}
bin="$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$bin"

log() { printf '[build] %s\n' "$*" >&2; }

# Parallel callers (e.g. test harnesses each starting a private cluster with
# tools/cluster.sh up) must not build the same binaries twice at once: the
# second one waits here, then finds everything built.
exec 8>"$cache/.build.lock"
flock 8

# Binaries are linked into a staging directory and renamed into $bin, so an
# interrupted build never leaves a truncated (but executable) file behind.
stage=$(mktemp -d "$cache/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
install_bins() { local f; for f in "$stage"/*; do mv -f "$f" "$bin/"; done; }

# The wrapper for a non-default Kubernetes version is generated into the
# cache, so the committed go.mod/go.sum stay the pinned default.
k8s_module_dir() {
  local pinned
  pinned=$(sed -n 's#^[[:space:]]*k8s.io/kubernetes \(v[^ ]*\).*#\1#p' "$here/k8s/go.mod" | head -1)
  if [ "$pinned" = "$KUBE_VERSION" ]; then echo "$here/k8s"; return; fi
  local dir="$cache/wrapper-k8s-$KUBE_VERSION"
  if [ ! -f "$dir/go.sum" ]; then
    log "generating wrapper module for k8s $KUBE_VERSION in $dir"
    rm -rf "$dir"; mkdir -p "$dir"
    local gomod staging
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging="v0.${KUBE_VERSION#v1.}"
    (cd "$dir"
      go mod init reloader.local/tools/k8s >/dev/null 2>&1
      go mod edit -go="$(sed -n 's/^go \(.*\)/\1/p' "$gomod")"
      sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/k8s\.io/.*#\1#p' "$gomod" |
        while read -r m; do go mod edit -replace="$m=$m@$staging"; done
      go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kubelet@$KUBE_VERSION" "k8s.io/kubernetes/cmd/kube-proxy@$KUBE_VERSION" >&2
      go mod tidy >&2)
  fi
  echo "$dir"
}

build_k8s() {
  local missing=()
  # kubelet and kube-proxy run the real node (tools/node.sh); built in the same go build, so a
  # cold cache compiles the shared packages once.
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [ -x "$bin/$b" ] || missing+=("k8s.io/kubernetes/cmd/$b")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local dir minor ldf
  dir=$(k8s_module_dir)
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  ldf="$ldf -X k8s.io/component-base/version.gitTreeState=clean"
  ldf="$ldf -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  log "building ${missing[*]} ($KUBE_VERSION)"
  (cd "$dir" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldf" -o "$stage/" "${missing[@]}")
  install_bins
}

build_etcd() {
  [ -x "$bin/etcd" ] && return
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$stage/etcd" go.etcd.io/etcd/server/v3)
  install_bins
}

build_kwok() {
  [ -x "$bin/kwok" ] && return
  log "building kwok $KWOK_VERSION"
  (cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$stage/kwok" sigs.k8s.io/kwok/cmd/kwok)
  install_bins
}

# kwok has no default stages; it reads them from a config assembled from the
# module cache of the pinned version (never copied into the repository).
kwok_stages() {
  [ -s "$bin/kwok-stages.yaml" ] && return
  local src
  src=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo '---'; cat "$src/$f"
  done > "$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
}

# The real node's own binaries (kubelet and kube-proxy are build_k8s's), in a directory of
# their own so that bumping containerd does not rebuild the control plane.
node_bin="$cache/bin-node-containerd-$CONTAINERD_VERSION-cni-$CNI_PLUGINS_VERSION"
build_node() {
  mkdir -p "$node_bin"
  local b absent=0
  # pause is ours: one binary per version of its source, `pause` the current one.
  local pause; pause="pause-$(sha256sum "$here/node/pause/main.go" | cut -c1-12)"
  if [ ! -x "$node_bin/$pause" ]; then
    log "building pause"
    (cd "$here/node/pause" && go build -trimpath -ldflags "-s -w" -o "$stage/$pause" .)
    mv -f "$stage/$pause" "$node_bin/"
  fi
  ln -sfn "$pause" "$node_bin/pause"
  for b in containerd containerd-shim-runc-v2 ctr bridge host-local loopback; do
    [ -x "$node_bin/$b" ] || absent=1
  done
  ((absent)) || return 0
  log "building containerd $CONTAINERD_VERSION and the CNI plugins $CNI_PLUGINS_VERSION"
  (cd "$here/containerd" && go build -trimpath -tags no_btrfs,no_devmapper,no_zfs -ldflags "-s -w" \
    -o "$stage/" github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr)
  (cd "$here/cni" && go build -trimpath -ldflags "-s -w" -o "$stage/" \
    github.com/containernetworking/plugins/plugins/main/bridge \
    github.com/containernetworking/plugins/plugins/ipam/host-local \
    github.com/containernetworking/plugins/plugins/main/loopback)
  local f; for f in "$stage"/*; do mv -f "$f" "$node_bin/"; done
}

if [ "${1:-}" = node ]; then
  build_k8s
  build_node
  echo "$node_bin"
  exit 0
fi

build_etcd
build_kwok
kwok_stages
build_k8s
echo "$bin"
