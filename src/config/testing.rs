//! Helpers for the configuration's tests: parse flags, validate them with a given environment.

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;

use super::{Cli, ConfigError, Settings};

pub(super) fn cli(args: &[&str]) -> Cli {
    let mut argv = vec!["reloader"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub(super) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |key| map.get(key).cloned()
}

pub(super) fn settings_env(args: &[&str], vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_cli(cli(args), env_of(vars))
}

pub(super) fn settings(args: &[&str]) -> Settings {
    settings_env(args, &[]).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub(super) fn error(args: &[&str]) -> ConfigError {
    match settings_env(args, &[]) {
        Err(e) => e,
        Ok(s) => panic!("{args:?} was accepted: {s:?}"),
    }
}

pub(super) fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}
