#!/usr/bin/env bash
# Builds the reloader image without a Docker daemon (make image), with buildah (installed from
# Debian's packages when missing; root only).
#
#   IMAGE_BUILD=auto        the Dockerfile when its base images can be pulled, else `local`
#   IMAGE_BUILD=dockerfile  `buildah bud` of the Dockerfile (needs a registry for the build stage)
#   IMAGE_BUILD=local       the Dockerfile's runtime stage, assembled from a static binary built
#                           here: the same files, user, entrypoint and labels (`FROM scratch`)
#   IMAGE_NAME              default localhost/reloader:<crate version>
#   IMAGE_ARCHIVE           OCI archive written too (default target/image/reloader.tar)
#
# The image is left in buildah's local storage (push it with
# `buildah push $IMAGE_NAME docker://<registry>/reloader:<tag>`) and in the OCI archive
# (`podman load -i`, `skopeo copy oci-archive:…`, or the cluster test that inspects it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

log() { printf '[image] %s\n' "$*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
name=${IMAGE_NAME:-localhost/reloader:$version}
archive=${IMAGE_ARCHIVE:-$repo/target/image/reloader.tar}
mode=${IMAGE_BUILD:-auto}
# vfs works everywhere (no overlay mounts needed, e.g. inside another container).
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

if ! command -v buildah >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    log "buildah is missing: install it (Debian/Ubuntu: apt-get install buildah) or run as root"
    exit 1
  fi
  log "installing buildah from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends buildah >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends buildah >/dev/null; }
fi

labels=(
  --label "org.opencontainers.image.title=reloader"
  --label "org.opencontainers.image.description=Rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use change; a drop-in successor to Stakater Reloader."
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.revision=$revision"
  --label "org.opencontainers.image.licenses=Apache-2.0"
  --label "org.opencontainers.image.source=https://github.com/example/reloader"
)

build_dockerfile() {
  log "building $name from the Dockerfile"
  buildah bud --layers --build-arg "VERSION=$version" --build-arg "REVISION=$revision" -t "$name" -f Dockerfile .
}

# The runtime stage of the Dockerfile, from a static binary built on this machine.
build_local() {
  local triple binary roots ctr
  triple="$(uname -m)-unknown-linux-gnu"
  log "building a static reloader for $triple (cargo build --release)"
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" --bin reloader >&2
  binary="target/$triple/release/reloader"
  # A static(-pie) executable has no program interpreter.
  if LC_ALL=C readelf -l "$binary" | grep -q 'program interpreter'; then
    log "$binary is dynamically linked"
    exit 1
  fi
  roots=/etc/ssl/certs/ca-certificates.crt
  if [ ! -s "$roots" ]; then
    log "installing ca-certificates from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
  fi
  mkdir -p target/image
  strip -o target/image/reloader "$binary"
  log "assembling $name FROM scratch"
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' RETURN
  buildah copy --chown 0:0 --chmod 0644 "$ctr" tools/image/passwd /etc/passwd >/dev/null
  buildah copy --chown 0:0 --chmod 0644 "$ctr" tools/image/group /etc/group >/dev/null
  buildah copy --chown 0:0 --chmod 0644 "$ctr" "$roots" /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah copy --chown 0:0 --chmod 0755 "$ctr" target/image/reloader /reloader >/dev/null
  buildah config --user 65532:65532 --entrypoint '["/reloader"]' --cmd '' \
    --port 9090 --port 9443 "${labels[@]}" "$ctr"
  buildah commit --rm --quiet "$ctr" "$name" >/dev/null
  trap - RETURN
}

# The image this name pointed to before, removed once the new one is built (no pile of
# untagged copies in buildah's storage across runs).
previous=$(buildah images --quiet --no-trunc "$name" 2>/dev/null | head -1 || true)

case "$mode" in
  dockerfile) build_dockerfile ;;
  local) build_local ;;
  auto)
    if timeout 60 buildah pull --quiet docker.io/library/rust:1.95-bookworm >/dev/null 2>&1; then
      build_dockerfile
    else
      log "the Dockerfile's build stage image cannot be pulled here: building its runtime stage locally"
      build_local
    fi
    ;;
  *) log "IMAGE_BUILD must be auto, dockerfile or local, not $mode"; exit 1 ;;
esac

current=$(buildah images --quiet --no-trunc "$name" 2>/dev/null | head -1 || true)
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi

mkdir -p "$(dirname "$archive")"
rm -f "$archive"
buildah push --quiet "$name" "oci-archive:$archive:$name" >/dev/null
log "built $name: $(du -h "$archive" | cut -f1) as an OCI archive ($archive)"
echo "$name"
