# Multi-stage build of the reloader binary. Not built in CI: this machine has no Docker engine.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin reloader

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/reloader /reloader
USER 65532:65532
ENTRYPOINT ["/reloader"]
