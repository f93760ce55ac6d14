//! The pure core: no I/O, no clock, no Kubernetes client. Everything here is a function of its
//! arguments, so the engine and the admission webhook compute the same answers from the same
//! state, and the tests need no cluster.

pub mod decision;
pub mod diff;
pub mod evaluate;
pub mod hash;
pub mod json;
pub mod keys;
pub mod lint;
pub mod names;
pub mod pause;
pub mod plan;
pub mod pod;
pub mod redact;
pub mod references;
pub mod source;
pub mod stamp;
pub mod vocabulary;
pub mod workload;
