#!/usr/bin/env bash
# Runs the pinned helm with the given arguments (the chart tests, `make chart-lint`). helm is
# built once from the Go module proxy (module tools/helm, version HELM_VERSION in versions.env)
# into a version-keyed cache, like the control-plane binaries, then run from there.
#   tools/helm.sh --path   builds if needed and prints the binary's path
#   RELOADER_CACHE         cache root (default $HOME/.cache/reloader)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/versions.env"

cache=${RELOADER_CACHE:-$HOME/.cache/reloader}
bin="$cache/bin-helm-$HELM_VERSION"
helm="$bin/helm"

build() {
  mkdir -p "$bin"
  # Parallel callers (tests) build once: the second one waits here, then finds it built.
  exec 8>"$cache/.helm.lock"
  flock 8
  [ -x "$helm" ] && return
  local pinned
  pinned=$(sed -n 's#^[[:space:]]*helm.sh/helm/v3 \(v[^ ]*\).*#\1#p' "$here/helm/go.mod" | head -1)
  if [ "$pinned" != "$HELM_VERSION" ]; then
    echo "[helm] tools/helm/go.mod pins $pinned but versions.env says $HELM_VERSION" >&2
    exit 1
  fi
  local minor ldf stage
  minor=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$here/helm/go.mod" | head -1)
  ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldf="$ldf -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldf="$ldf -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  # Linked into a staging file and renamed, so an interrupted build never leaves a truncated
  # (but executable) helm behind.
  stage=$(mktemp "$bin/.helm.XXXXXX")
  trap 'rm -f "$stage"' EXIT
  printf '[helm] building helm %s into %s\n' "$HELM_VERSION" "$bin" >&2
  (cd "$here/helm" && GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0 \
    go build -trimpath -ldflags "$ldf" -o "$stage" helm.sh/helm/v3/cmd/helm)
  mv -f "$stage" "$helm"
  trap - EXIT
  exec 8>&-
}

[ -x "$helm" ] || build
if [ "${1:-}" = --path ]; then
  echo "$helm"
  exit 0
fi
exec "$helm" "$@"
