//! reloader: rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use
//! change. A drop-in successor to Stakater Reloader.
//!
//! Layers:
//! - [`core`]: pure logic (vocabulary, hashes, references, dependencies, desired state), no I/O;
//! - [`store`]: the shared in-memory view of the cluster and its reverse index;
//! - adapters: [`engine`] (watchers, queue, Kubernetes writes), [`admission`] (the webhook),
//!   [`stamp_key`] (the key stamps are made with), [`metrics`], [`health`], [`tls`]
//!   (certificates, HTTPS server);
//! - [`config`]: flags and environment, Stakater-compatible.
#![forbid(unsafe_code)]

pub mod admission;
pub mod alerts;
pub mod clock;
pub mod config;
pub mod core;
pub mod csi;
pub mod engine;
pub mod explain;
pub mod health;
pub mod kube_api;
pub mod leader;
pub mod lint;
pub mod logging;
pub mod manifests;
pub mod meta_info;
pub mod metrics;
pub mod scope;
pub mod stamp_key_secret;
pub mod store;
pub mod tls;
