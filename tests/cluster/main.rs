//! Cluster tests: run against a real kube-apiserver, controller-manager, scheduler and kwok
//! (see `tools/cluster.sh`). `make test` provides the control plane.

mod availability;
mod control_plane;
mod crds;
mod engine;
mod explain;
mod extra_kinds;
mod faults;
mod helm;
mod image;
mod install;
mod kinds;
mod lint;
mod migration;
mod observability;
mod per_key;
mod pod_restarts;
mod scenarios;
mod support;
mod webhook;
mod windows;

use reloader_dev_support::helm_cli;
