//! The Mutating- and ValidatingWebhookConfiguration, and keeping their `caBundle` current.
//!
//! The leader owns both configurations and applies them whole with server-side apply (its own
//! field manager, so concurrent writers are detected, not clobbered): with `clientConfig.url`
//! for local runs (`--admission-url`), with `clientConfig.service` in a cluster. The install
//! manifests therefore carry no webhook configuration: this file is the one definition.

use std::collections::BTreeSet;

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::config::AdmissionEndpoint;
use crate::core::workload::WorkloadKind;

pub const MUTATE_PATH: &str = "/mutate";
pub const VALIDATE_PATH: &str = "/validate";
pub const MUTATING_WEBHOOK: &str = "mutate.reloader.stakater.com";
pub const VALIDATING_WEBHOOK: &str = "validate.reloader.stakater.com";

/// Validation is sent only objects that mention the reloader in an annotation (metadata or pod
/// template), so a webhook outage never blocks unrelated writes although it fails closed.
const MENTIONS_RELOADER: &str = "[object.?metadata.?annotations, object.?spec.?template.?metadata.?annotations, \
     object.?spec.?jobTemplate.?spec.?template.?metadata.?annotations]\
     .exists(a, a.orValue({}).exists(k, k.contains('reloader') || k.contains('stakater')))";

fn client_config(endpoint: &AdmissionEndpoint, namespace: &str, path: &str, bundle: &str) -> Value {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(bundle.as_bytes());
    match endpoint {
        AdmissionEndpoint::Url { url, .. } => json!({"url": format!("{url}{path}"), "caBundle": ca_bundle}),
        AdmissionEndpoint::Service { name } => json!({
            "service": {"name": name, "namespace": namespace, "path": path, "port": 443},
            "caBundle": ca_bundle
        }),
    }
}

fn workload_rules() -> Vec<Value> {
    let mut by_group: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for kind in WorkloadKind::ALL {
        let (group, version, plural) = kind.resource();
        match by_group.iter_mut().find(|(g, v, _)| *g == group && *v == version) {
            Some((_, _, plurals)) => plurals.push(plural),
            None => by_group.push((group, version, vec![plural])),
        }
    }
    by_group
        .into_iter()
        .map(|(g, v, plurals)| {
            json!({"apiGroups": [g], "apiVersions": [v], "operations": ["CREATE", "UPDATE"], "resources": plurals, "scope": "Namespaced"})
        })
        .collect()
}

/// Never the webhook's own namespace (it must be able to restart itself) nor the system ones;
/// and only the namespaces the reloader watches, when it watches a list (elsewhere it has no
/// source hashes to stamp with).
fn namespace_selector(namespace: &str, watched: Option<&BTreeSet<String>>) -> Value {
    let mut expressions = vec![json!({
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": ["kube-system", "kube-node-lease", namespace]
    })];
    if let Some(watched) = watched {
        expressions.push(json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": watched}));
    }
    json!({"matchExpressions": expressions})
}

/// What every configuration needs to know besides its name.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub endpoint: &'a AdmissionEndpoint,
    /// The reloader's own namespace.
    pub namespace: &'a str,
    /// `--namespaces`, when set.
    pub watched: Option<&'a BTreeSet<String>>,
    pub bundle: &'a str,
}

/// The full mutating configuration (fails open: a missed stamp is adopted later).
pub fn mutating(name: &str, t: &Target<'_>) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": MUTATING_WEBHOOK,
            "clientConfig": client_config(t.endpoint, t.namespace, MUTATE_PATH, t.bundle),
            "rules": workload_rules(),
            "namespaceSelector": namespace_selector(t.namespace, t.watched),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": 5
        }]
    })
}

/// The full validating configuration (fails closed, for objects that mention the reloader).
pub fn validating(name: &str, t: &Target<'_>) -> Value {
    let mut rules = workload_rules();
    rules.push(
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                      "resources": ["configmaps", "secrets"], "scope": "Namespaced"}),
    );
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": VALIDATING_WEBHOOK,
            "clientConfig": client_config(t.endpoint, t.namespace, VALIDATE_PATH, t.bundle),
            "rules": rules,
            "namespaceSelector": namespace_selector(t.namespace, t.watched),
            "matchConditions": [{"name": "mentions-reloader", "expression": MENTIONS_RELOADER}],
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5
        }]
    })
}

fn apply_params(field_manager: &str) -> PatchParams {
    PatchParams::apply(field_manager).force()
}

/// Applies both configurations whole (`--admission-url` mode).
pub async fn apply_configurations(
    client: &Client,
    field_manager: &str,
    name: &str,
    target: &Target<'_>,
) -> Result<(), kube::Error> {
    let params = apply_params(field_manager);
    let mutating_api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    mutating_api
        .patch(name, &params, &Patch::Apply(mutating(name, target)))
        .await?;
    let validating_api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    validating_api
        .patch(name, &params, &Patch::Apply(validating(name, target)))
        .await?;
    Ok(())
}

/// The CAs the live configurations trust now (PEM, every webhook's `caBundle`); empty when they
/// do not exist yet.
pub async fn live_bundle(client: &Client, name: &str) -> Result<String, kube::Error> {
    let mut pem = String::new();
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mut bundles: Vec<Vec<u8>> = Vec::new();
    if let Some(m) = mutating.get_opt(name).await? {
        bundles.extend(
            m.webhooks
                .into_iter()
                .flatten()
                .filter_map(|w| w.client_config.ca_bundle.map(|b| b.0)),
        );
    }
    if let Some(v) = validating.get_opt(name).await? {
        bundles.extend(
            v.webhooks
                .into_iter()
                .flatten()
                .filter_map(|w| w.client_config.ca_bundle.map(|b| b.0)),
        );
    }
    for bundle in bundles {
        if let Ok(text) = String::from_utf8(bundle)
            && !pem.contains(text.trim())
        {
            pem.push_str(&text);
            if !text.ends_with('\n') {
                pem.push('\n');
            }
        }
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_deserialize_and_cover_every_kind() {
        let endpoint = AdmissionEndpoint::Url {
            url: "https://127.0.0.1:9443".into(),
            host: "127.0.0.1".into(),
        };
        let watched = BTreeSet::from(["team-a".to_string()]);
        let target = Target {
            endpoint: &endpoint,
            namespace: "ns",
            watched: Some(&watched),
            bundle: "PEM",
        };
        let m: MutatingWebhookConfiguration = serde_json::from_value(mutating("r", &target)).unwrap();
        let hook = &m.webhooks.unwrap()[0];
        assert_eq!(hook.client_config.url.as_deref(), Some("https://127.0.0.1:9443/mutate"));
        assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
        let scoped = hook
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap();
        assert_eq!(scoped[1].values.as_deref(), Some(&["team-a".to_string()][..]));
        let resources: Vec<String> = hook
            .rules
            .iter()
            .flatten()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        for kind in WorkloadKind::ALL {
            assert!(resources.contains(&kind.resource().2.to_string()), "{kind}");
        }
        let service = AdmissionEndpoint::Service {
            name: "reloader".into(),
        };
        let everywhere = Target {
            endpoint: &service,
            namespace: "ns",
            watched: None,
            bundle: "PEM",
        };
        let v: ValidatingWebhookConfiguration = serde_json::from_value(validating("r", &everywhere)).unwrap();
        let hook = &v.webhooks.unwrap()[0];
        let svc = hook.client_config.service.as_ref().unwrap();
        assert_eq!(
            (svc.name.as_str(), svc.namespace.as_str(), svc.path.as_deref()),
            ("reloader", "ns", Some("/validate"))
        );
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        let excluded = hook
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0]
            .values
            .clone()
            .unwrap();
        assert_eq!(excluded, vec!["kube-system", "kube-node-lease", "ns"]);
    }
}
