//! reloader: rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use
//! change. A drop-in successor to Stakater Reloader.
//!
//! Layers: [`core`] is pure logic (vocabulary, hashes, references, decision, desired state);
//! [`tls`] holds certificates and the HTTPS server adapter.
#![forbid(unsafe_code)]

pub mod core;
pub mod tls;
