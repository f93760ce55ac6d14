//! The running reloader's options, for the verdicts: read from its Deployment (flags and
//! environment), or given as flags.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};
use serde::Serialize;

use super::{ExplainError, api_error};
use crate::config::Settings;
use crate::config::commands::reloader_settings;

/// Where the options came from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionsOrigin {
    /// `Deployment reloader/reloader`, or `flags`.
    pub from: String,
    /// The reloader flags the verdicts use, as shown: URLs redacted ([`crate::core::redact::flags`]).
    pub flags: Vec<String>,
    /// What could not be read from the Deployment (environment from Secrets, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The running reloader's flags and environment, read from its Deployment; `extra` flags are
/// added after them.
pub async fn settings_from_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    extra: &[String],
) -> Result<(Settings, OptionsOrigin), ExplainError> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(api_error(format!("reading Deployment {namespace}/{name}")))?
        .ok_or_else(|| ExplainError::FromDeployment(format!("{namespace}/{name}: no such Deployment")))?;
    let containers = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.name == "reloader")
        .or_else(|| containers.first())
        .ok_or_else(|| ExplainError::FromDeployment(format!("{namespace}/{name}: no containers")))?;
    let mut flags: Vec<String> = container.command.iter().flatten().skip(1).cloned().collect();
    flags.extend(container.args.iter().flatten().cloned());
    flags.extend(extra.iter().cloned());
    let mut env = BTreeMap::new();
    let mut notes = Vec::new();
    for var in container.env.iter().flatten() {
        let field = var
            .value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        match (&var.value, field) {
            (Some(value), _) => {
                env.insert(var.name.clone(), value.clone());
            }
            (None, Some("metadata.namespace")) => {
                env.insert(var.name.clone(), namespace.to_string());
            }
            (None, Some("metadata.name")) => {
                env.insert(var.name.clone(), format!("{name}-explain"));
            }
            (None, _) if var.value_from.is_some() => {
                notes.push(format!("environment variable {} is not resolved (valueFrom)", var.name));
            }
            (None, _) => {
                env.insert(var.name.clone(), String::new());
            }
        }
    }
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        notes.push("envFrom is not resolved".into());
    }
    let settings = reloader_settings(&flags, |k| env.get(k).cloned())?;
    Ok((
        settings,
        OptionsOrigin {
            from: format!("Deployment {namespace}/{name}, container {}", container.name),
            flags: crate::core::redact::flags(&flags),
            notes,
        },
    ))
}

/// The reloader's settings from flags alone; `POD_NAMESPACE` is the reloader's namespace (so
/// the stamp key is looked for there).
pub fn settings_from_flags(
    flags: &[String],
    reloader_namespace: &str,
) -> Result<(Settings, OptionsOrigin), ExplainError> {
    let env: BTreeMap<&str, String> = [
        ("POD_NAMESPACE", reloader_namespace.to_string()),
        ("POD_NAME", "reloader-explain".to_string()),
    ]
    .into();
    let settings = reloader_settings(flags, |k| env.get(k).cloned())?;
    Ok((
        settings,
        OptionsOrigin {
            from: "flags".into(),
            flags: crate::core::redact::flags(flags),
            notes: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `explain` prints of the reloader's flags carries no webhook secret; the settings
    /// still hold the URL as given.
    #[test]
    fn shown_flags_have_urls_redacted() {
        let url = "https://hooks.slack.com/services/T0/B0/s3cret";
        let (settings, origin) = settings_from_flags(&[format!("--webhook-url={url}")], "reloader").unwrap();
        assert_eq!(settings.webhook_url.as_deref(), Some(url));
        assert_eq!(
            origin.flags,
            ["--webhook-url=https://hooks.slack.com/services/<redacted>"]
        );
    }
}
