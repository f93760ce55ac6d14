use thiserror::Error;

/// A configuration that cannot start. Every message names the flag or variable at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--reload-strategy must be one of: env-vars, annotations (got {value:?})")]
    ReloadStrategy { value: String },
    #[error("--resources-to-ignore only accepts 'configmaps' or 'secrets', not {value:?}")]
    ResourceToIgnore { value: String },
    #[error("--resources-to-ignore only accepts 'configmaps' or 'secrets', not both")]
    BothResourcesIgnored,
    #[error("--ignored-workload-types accepts 'jobs', 'cronjobs', or both, not {value:?}")]
    WorkloadType { value: String },
    #[error("--enable-ha needs the {var} environment variable, which is not set")]
    HaEnvMissing { var: &'static str },
    #[error("{flag}: {reason}")]
    List { flag: &'static str, reason: String },
    #[error("{flag}: bad label selector term {term:?}: {reason}")]
    Selector {
        flag: &'static str,
        term: String,
        reason: String,
    },
    #[error("{origin}: {name:?} is not a valid namespace name (lower-case RFC 1123 label)")]
    Namespace { origin: &'static str, name: String },
    #[error("{flag}: {value:?} is invalid: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
}
