# The reloader image: one static binary on an empty base, run as 65532 (non-root), with the CA
# roots for alert and --webhook-url endpoints. Build it with any builder that reads a Dockerfile:
#   docker build -t registry.example.com/reloader:0.1.0 .     (or podman build, buildah bud)
# `make image` builds the same runtime stage without a Docker daemon, and without pulling the
# build stage's base image when no registry is reachable (tools/image.sh; README, The image).

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY tools/link ./tools/link
COPY src ./src
# Even to build the binary alone, cargo needs the targets Cargo.toml names (the benches) and every
# workspace member's manifest (tests/support/, the crate the tests and benches share).
COPY benches ./benches
COPY tests/support ./tests/support
# Static glibc: no shared library in the runtime stage (name resolution from /etc/hosts and DNS
# is built into glibc 2.36).
RUN target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" --bin reloader \
 && cp "target/$target/release/reloader" /reloader \
 && strip /reloader

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="reloader" \
      org.opencontainers.image.description="Rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use change; a drop-in successor to Stakater Reloader." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/example/reloader"
COPY tools/image/passwd /etc/passwd
COPY tools/image/group /etc/group
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /reloader /reloader
USER 65532:65532
EXPOSE 9090 9443
ENTRYPOINT ["/reloader"]
