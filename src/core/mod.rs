//! The pure core: no I/O, no clock, no Kubernetes client. Everything here is a function of its
//! arguments, so the engine and the admission webhook compute the same answers from the same
//! state, and the tests need no cluster.

pub mod annotation_rules;
pub mod dependencies;
pub mod diff;
pub mod evaluate;
pub mod hash;
pub mod hash_record;
pub mod hold;
pub mod json;
pub mod keyed_hash;
pub mod names;
pub mod pause;
pub mod per_key;
pub mod plan;
pub mod pod;
pub mod pod_restart;
pub mod redact;
pub mod references;
pub mod rollout_status;
pub mod source;
pub mod text;
pub mod vocabulary;
pub mod wave_gate;
pub mod waves;
pub mod window;
pub mod workload;
