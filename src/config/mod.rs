//! The binary's configuration: a drop-in for Stakater Reloader's command-line flags and
//! environment variables, plus the few settings of our own that Stakater hard-codes.
//!
//! [`Cli`] is what clap parses (`flags.rs`: every flag, its syntax and its environment variable;
//! a malformed duration or address is clap's error). [`Settings::from_cli`] (`settings.rs`)
//! validates it together with the environment into the typed [`Settings`] the rest of the
//! program uses. Problems Stakater treats as fatal are [`ConfigError`]s; problems Stakater only
//! logs (or silently ignores) are collected in [`Settings::warnings`] for the binary to log once
//! logging is set up, so that every configuration Stakater starts with, we start with too.
//!
//! The rest are parts of that validation: list flags as pflag reads them (`lists.rs`), label
//! selectors (`selectors.rs`) and the admission webhook's settings (`admission.rs`). Kubernetes
//! name rules come from [`crate::core::names`].
//!
//! Every flag and variable, with how it differs from Stakater, is documented in
//! `docs/flags.md`.

mod admission;
pub mod commands;
mod error;
mod flags;
mod lists;
mod selectors;
mod settings;
#[cfg(test)]
mod testing;

pub use admission::{AdmissionEndpoint, AdmissionSettings, CertSource};
pub use error::ConfigError;
pub use flags::{AdmissionCli, Cli, ExtraKinds, FailurePolicy};
pub use selectors::{SelectorOperator, SelectorRequirement};
pub use settings::{
    AlertSettings, AlertSink, LeaderElection, LogFormat, LogLevel, RateLimits, Settings, WatchScope, process_env,
};
