# The two commands a new user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
ARGS ?=

.PHONY: test lint unit cluster cluster-down tools demo build run bench install image

## Everything CI checks: formatting, clippy, unit tests, cluster tests (the chart's with the
## real helm, and the image's: built first, its runtime stage assembled locally), and the
## real-node tests (tests/real_node: the chart and kustomize installs running the image as pods
## on the cluster's real node; docs/real-node.md). Root is needed for the real node.
##
## The Go binaries build beside the Rust steps (lint, then the image's release build): each side
## has long single-threaded stretches (Go's links, the release build's fat LTO), so on two cores
## the pair finishes well before the sum of the two.
test:
	$(MAKE) --no-print-directory -j2 tools lint-then-image
	tools/with-cluster.sh $(CARGO) test --lib --bins --tests

.PHONY: lint-then-image
lint-then-image: lint
	IMAGE_BUILD=local tools/image.sh >/dev/null

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

## Benchmarks (README, Benchmarks): every part writes target/bench/<part>.json; the cluster part
## runs the contenders as processes against the local control plane, merges the parts into
## bench/results.json and renders the README's table from it. STAKATER_BIN=<binary> adds Stakater
## Reloader beside ours; BENCH_SCALE=0 skips the 80,000-object inventory.
bench: tools
	rm -rf target/bench && mkdir -p target/bench && cat /proc/loadavg >target/bench/loadavg-start
	$(CARGO) bench --bench core
	@# Ours is measured as it ships: the release build, linked in its profiled code order. A copy,
	@# because the cargo bench steps re-link target/release/reloader with the bench profile.
	$(CARGO) build --release --bin reloader
	cp target/release/reloader target/bench/reloader
	@# The webhook part (benches/webhook.rs: /mutate under load vs an empty TLS handler).
	BENCH_RELOADER=$(CURDIR)/target/bench/reloader CLUSTER_REAL_NODE=0 tools/with-cluster.sh $(CARGO) bench --bench webhook
	BENCH_RELOADER=$(CURDIR)/target/bench/reloader BENCH_RELOADER_BUILD="the release build" \
		CLUSTER_REAL_NODE=0 tools/with-cluster.sh $(CARGO) bench --bench cluster

## `make bench` with Stakater Reloader beside ours (STAKATER_BIN=<its binary>; README tells how to
## build it).
.PHONY: bench-compare
bench-compare:
	@test -n "$(STAKATER_BIN)" || { echo "set STAKATER_BIN to a Stakater Reloader binary" >&2; exit 2; }
	$(MAKE) bench

## Re-profile the functions the release binary runs, the order its code is linked in (build.rs,
## docs/engine.md Memory); after toolchain or dependency upgrades. Needs valgrind.
.PHONY: symbol-order
symbol-order: tools
	tools/with-cluster.sh tools/symbol-order.sh

## Build (once, cached under ~/.cache/reloader) the Go control-plane binaries, the real node's
## (containerd, the CNI plugins, pause) and helm.
tools:
	tools/build.sh >/dev/null
	tools/build.sh node >/dev/null
	tools/helm.sh --path >/dev/null

## Start / stop the local control plane in .cluster/ (kubeconfig: .cluster/kubeconfig), with the
## real node as root (CLUSTER_REAL_NODE=0: kwok's node only).
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
