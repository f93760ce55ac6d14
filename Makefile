# The two commands a new user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
ARGS ?=

.PHONY: test lint unit cluster cluster-down tools demo build run bench install image

## Everything CI checks: formatting, clippy, unit tests and cluster tests (the chart's with the
## real helm, and the image's: built first, its runtime stage assembled locally).
test: lint tools
	IMAGE_BUILD=local tools/image.sh >/dev/null
	tools/with-cluster.sh $(CARGO) test --lib --bins --tests

## The image without a Docker daemon (buildah; README, The image): localhost/reloader:<version>
## and target/image/reloader.tar. IMAGE_BUILD=auto|dockerfile|local.
image:
	tools/image.sh

## shellcheck is installed once from PyPI into ~/.cache/reloader (tools/shellcheck.sh).
lint:
	$(CARGO) fmt --all -- --check
	tools/shellcheck.sh -x tools/*.sh .ci/run
	$(CARGO) clippy --all-targets -- -D warnings

## Pure tests only: no control plane needed.
unit:
	$(CARGO) test --lib

build:
	$(CARGO) build --release

## Install the binary and its kubectl plugin name (a symlink): `kubectl reloader explain …`.
## PREFIX=/usr/local make install for a system-wide install; the bin directory must be on PATH.
PREFIX ?= $(HOME)/.local
install: build
	install -d $(PREFIX)/bin
	install -m 0755 target/release/reloader $(PREFIX)/bin/reloader
	ln -sf reloader $(PREFIX)/bin/kubectl-reloader

## Benchmarks: in-process hot paths, then a fan-out reload against the local control plane.
bench: tools
	$(CARGO) bench --bench core
	$(CARGO) build --release
	tools/with-cluster.sh $(CARGO) test --release --test cluster bench_ -- --ignored --nocapture --test-threads=1

## A/B against Stakater Reloader on a private control plane: memory with many Secrets and
## fan-out latency. Needs STAKATER_BIN=<its binary>; report in target/bench-compare.md.
.PHONY: bench-compare
bench-compare: tools
	tools/bench-compare.sh

## Build (once, cached under ~/.cache/reloader) the Go control-plane binaries and helm.
tools:
	tools/build.sh >/dev/null
	tools/helm.sh --path >/dev/null

## Start / stop the local control plane in .cluster/ (kubeconfig: .cluster/kubeconfig).
cluster:
	tools/cluster.sh up

cluster-down:
	tools/reloader.sh stop
	tools/cluster.sh down

## The reloader in the foreground against the local control plane (both halves; health on
## 127.0.0.1:9090, webhook on 127.0.0.1:9443). Flags: make run ARGS='--reload-strategy=env-vars'.
run: tools
	$(CARGO) build --release
	tools/cluster.sh up
	tools/reloader.sh run $(ARGS)

demo:
	tools/demo.sh
