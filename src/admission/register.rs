//! The Mutating- and ValidatingWebhookConfiguration, and keeping their `caBundle` current.
//!
//! This file is the one definition of what the configurations contain. The install creates
//! them (the Helm chart's `templates/webhook-configurations.yaml`, kustomize's
//! `manifests/webhook.yaml`; the chart and kustomize tests compare them with [`mutating`] and
//! [`validating`]), so the reloader needs no cluster-wide `create` on admission configurations,
//! a right that cannot be limited by name and would let a compromised reloader register its own
//! webhook. The leader then only reads and patches them by name (see
//! [`apply_configurations_over`]):
//!
//! - **The install's** (any configuration without the [`CREATED_BY_LABEL`] label): the leader
//!   writes the `caBundle` of each of its webhooks, with a JSON patch of that field alone:
//!   every other field stays the install's, so `helm upgrade` and the reloader never write
//!   each other's fields, and helm's three-way merge leaves alone the `caBundle` it never set.
//! - **Missing**: the leader creates it whole with server-side apply (its own field manager),
//!   labelled as its own, if it may (a local run with an admin kubeconfig, `make run`:
//!   `clientConfig.url` and a certificate for the URL's host with `--admission-url`,
//!   `clientConfig.service` otherwise); the ClusterRole `--admission-owner-cluster-role` owns
//!   it when it exists, so deleting that garbage-collects it. Without the right it logs once that
//!   the install must create it, and serves on (the webhook fails open meanwhile).
//! - **Its own** (created by it, labelled): re-applied whole at every check, so an edited one
//!   heals, except a `failurePolicy` or `timeoutSeconds` someone set by hand (see
//!   [`keep_hand_set`]), even when set between the leader's read and its apply (see
//!   `apply_over`).
//!
//! Safe in the admission path: both fail open with a short timeout (the validating one fails
//! closed only with `--admission-failure-policy=Fail`); validation is sent only objects that
//! mention the reloader, and updates only when their reloader annotations change; neither is
//! called for the reloader's own writes (`--admission-self-user` or who the API server says it
//! is).

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::config::{AdmissionEndpoint, AdmissionSettings, FailurePolicy};
use crate::core::workload::WorkloadKind;

pub const MUTATE_PATH: &str = "/mutate";
pub const VALIDATE_PATH: &str = "/validate";
pub const MUTATING_WEBHOOK: &str = "mutate.reloader.stakater.com";
pub const VALIDATING_WEBHOOK: &str = "validate.reloader.stakater.com";

/// How long the API server waits for an answer before applying the failure policy: a slow
/// reloader delays a write by at most this.
pub const TIMEOUT_SECONDS: u32 = 3;

/// The fields of a webhook that a person may set by hand and the leader then leaves alone.
pub const HAND_SET_FIELDS: [&str; 2] = ["failurePolicy", "timeoutSeconds"];

/// The label, and its value, of a configuration the reloader created itself (and so re-applies
/// whole); a configuration without it is the install's, of which it writes only what the
/// install left unset (the `caBundle`, first of all).
pub const CREATED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "reloader");

/// Whether the reloader created this configuration itself (see [`CREATED_BY_LABEL`]).
pub fn created_by_reloader(meta: &ObjectMeta) -> bool {
    let (key, value) = CREATED_BY_LABEL;
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str) == Some(value)
}

/// Whether an annotation key concerns the reloader (CEL, over a key `k`).
const RELOADER_KEY: &str = "(k.contains('reloader') || k.contains('stakater'))";

/// Where the reloader's annotations may sit, as CEL selections under `object`: the metadata,
/// the pod template of the built-in kinds (`spec.template`, a CronJob's), and that of every
/// extra kind whose template is elsewhere (`--extra-workload-kinds`), each once.
fn annotation_places(s: &AdmissionSettings) -> Vec<String> {
    let mut places: Vec<String> = [
        "metadata.?annotations",
        "spec.?template.?metadata.?annotations",
        "spec.?jobTemplate.?spec.?template.?metadata.?annotations",
    ]
    .map(str::to_string)
    .into();
    for extra in s.extra_kinds.iter().filter_map(|k| k.extra()) {
        let place = extra.cel_template_annotations();
        if !places.contains(&place) {
            places.push(place);
        }
    }
    places
}

/// Validation is sent only objects that mention the reloader in an annotation (metadata or pod
/// template), so an outage never concerns unrelated writes.
fn mentions_reloader(s: &AdmissionSettings) -> String {
    let places: Vec<String> = annotation_places(s)
        .iter()
        .map(|place| format!("object.?{place}"))
        .collect();
    format!(
        "[{}].exists(a, a.orValue({{}}).exists(k, {RELOADER_KEY}))",
        places.join(", ")
    )
}

/// An UPDATE is validated only when its reloader annotations differ from the old object's, at
/// any of the places (a key added, removed or changed): what did not change cannot have
/// become wrong (problems an object already had only warn anyway).
fn reloader_annotations_changed(s: &AdmissionSettings) -> String {
    let pairs: Vec<String> = annotation_places(s)
        .iter()
        .map(|path| format!("[object.?{path}.orValue({{}}), oldObject.?{path}.orValue({{}})]"))
        .collect();
    format!(
        "request.operation != 'UPDATE' || [{}].exists(p, \
         p[0].exists(k, {RELOADER_KEY} && (!(k in p[1]) || p[1][k] != p[0][k])) || \
         p[1].exists(k, {RELOADER_KEY} && !(k in p[0])))",
        pairs.join(", "),
    )
}

/// Requests by the reloader itself are not sent at all (its handlers would admit them
/// unchanged): each rollout the engine writes then costs the API server no webhook round trip.
fn not_the_reloader(settings: &AdmissionSettings) -> Option<Value> {
    let user = settings.self_user.as_deref()?;
    let literal = user.replace('\\', "\\\\").replace('\'', "\\'");
    Some(json!({"name": "not-the-reloader", "expression": format!("request.userInfo.username != '{literal}'")}))
}

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

/// The built-in kinds, then the extra ones whose plural discovery found (a kind not served
/// yet joins at the next check after it is), one rule per group and version.
fn workload_rules(s: &AdmissionSettings) -> Vec<Value> {
    let mut by_group: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    let kinds = WorkloadKind::ALL.iter().chain(&s.extra_kinds);
    for (kind, plural) in kinds.filter_map(|k| Some((k, k.plural()?))) {
        let (group, version, _) = kind.resource();
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

/// The engine's namespaces and no others: never the webhook's own namespace (it must be able
/// to restart itself) nor the system ones; only `--namespaces` when set; never
/// `--namespaces-to-ignore`; only namespaces matching `--namespace-selector` (its numeric terms
/// have no LabelSelector form: the handlers apply those).
fn namespace_selector(s: &AdmissionSettings) -> Value {
    let mut excluded = vec!["kube-system".to_string(), "kube-node-lease".to_string()];
    for namespace in std::iter::once(&s.namespace).chain(&s.ignored) {
        if !excluded.contains(namespace) {
            excluded.push(namespace.clone());
        }
    }
    let mut expressions = vec![json!({
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": excluded
    })];
    if let Some(watched) = &s.watched {
        expressions.push(json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": watched}));
    }
    for term in &s.namespace_selector {
        let mut expression = json!({"key": term.key, "operator": term.operator.as_str()});
        if !term.values.is_empty() {
            expression["values"] = json!(term.values);
        }
        expressions.push(expression);
    }
    json!({"matchExpressions": expressions})
}

/// The cluster-scoped object of the install that owns the configurations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub uid: String,
}

/// What every configuration needs to know besides its name.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub settings: &'a AdmissionSettings,
    /// The CAs the API server must trust (PEM).
    pub bundle: &'a str,
    pub owner: Option<&'a Owner>,
}

fn metadata(name: &str, owner: Option<&Owner>) -> Value {
    let (key, value) = CREATED_BY_LABEL;
    let mut metadata = json!({"name": name, "labels": {key: value}});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "name": owner.name,
            "uid": owner.uid
        }]);
    }
    metadata
}

/// The full mutating configuration; always fails open (a missed stamp is adopted later).
pub fn mutating(name: &str, t: &Target<'_>) -> Value {
    let s = t.settings;
    let mut configuration = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": metadata(name, t.owner),
        "webhooks": [{
            "name": MUTATING_WEBHOOK,
            "clientConfig": client_config(&s.endpoint, &s.namespace, MUTATE_PATH, t.bundle),
            "rules": workload_rules(s),
            "namespaceSelector": namespace_selector(s),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": FailurePolicy::Ignore.as_str(),
            "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": TIMEOUT_SECONDS
        }]
    });
    if let Some(condition) = not_the_reloader(s) {
        configuration["webhooks"][0]["matchConditions"] = json!([condition]);
    }
    configuration
}

/// The full validating configuration: fails open unless `--admission-failure-policy=Fail`.
pub fn validating(name: &str, t: &Target<'_>) -> Value {
    let s = t.settings;
    let conditions: Vec<Value> = [
        json!({"name": "mentions-reloader", "expression": mentions_reloader(s)}),
        json!({"name": "reloader-annotations-changed", "expression": reloader_annotations_changed(s)}),
    ]
    .into_iter()
    .chain(not_the_reloader(s))
    .collect();
    let mut rules = workload_rules(s);
    rules.push(
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                      "resources": ["configmaps", "secrets"], "scope": "Namespaced"}),
    );
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata(name, t.owner),
        "webhooks": [{
            "name": VALIDATING_WEBHOOK,
            "clientConfig": client_config(&s.endpoint, &s.namespace, VALIDATE_PATH, t.bundle),
            "rules": rules,
            "namespaceSelector": namespace_selector(s),
            "matchConditions": conditions,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": s.failure_policy.as_str(),
            "timeoutSeconds": TIMEOUT_SECONDS
        }]
    })
}

/// Whether a field manager other than `field_manager` owns `field` of the webhook named `hook`
/// on the live object: someone set it by hand (`kubectl edit`/`patch`/`apply`, another tool).
pub fn owned_by_others(live: &ObjectMeta, field_manager: &str, hook: &str, field: &str) -> bool {
    let field = format!("f:{field}");
    live.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() != Some(field_manager)
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:webhooks"))
                .and_then(Value::as_object)
                .is_some_and(|webhooks| {
                    webhooks.iter().any(|(key, fields)| {
                        let named = key
                            .strip_prefix("k:")
                            .and_then(|k| serde_json::from_str::<Value>(k).ok())
                            .is_some_and(|k| k.get("name").and_then(Value::as_str) == Some(hook));
                        named && fields.get(&field).is_some()
                    })
                })
    })
}

/// Leaves out of the desired configuration the [`HAND_SET_FIELDS`] that someone else owns on
/// the live one. Server-side apply then keeps their value (they still own it), where a forced
/// apply of ours would take it back; a field nobody else owns stays ours, so a flag change
/// still reaches it. Returns what was left out, as `webhook/field`.
pub fn keep_hand_set(desired: &mut Value, live: Option<&ObjectMeta>, field_manager: &str) -> Vec<String> {
    let mut kept = Vec::new();
    let Some(live) = live else {
        return kept;
    };
    for hook in desired
        .get_mut("webhooks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(name) = hook.get("name").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        for field in HAND_SET_FIELDS {
            if owned_by_others(live, field_manager, &name, field)
                && let Some(fields) = hook.as_object_mut()
            {
                fields.remove(field);
                kept.push(format!("{name}/{field}"));
            }
        }
    }
    kept
}

/// What became of looking up the owner ClusterRole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerLookup {
    Found(Owner),
    /// None configured, or it does not exist (a local run).
    None,
    /// Not allowed to read it: a configuration created then works, it is only not
    /// garbage-collected with the install.
    Forbidden,
}

impl OwnerLookup {
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            OwnerLookup::Found(owner) => Some(owner),
            _ => None,
        }
    }
}

/// The owner ClusterRole's uid, for a configuration the reloader creates itself.
pub async fn owner(client: &Client, name: Option<&str>) -> Result<OwnerLookup, kube::Error> {
    let Some(name) = name else {
        return Ok(OwnerLookup::None);
    };
    match Api::<ClusterRole>::all(client.clone()).get_opt(name).await {
        Ok(Some(role)) => Ok(role.metadata.uid.map_or(OwnerLookup::None, |uid| {
            OwnerLookup::Found(Owner {
                name: name.to_string(),
                uid,
            })
        })),
        Ok(None) => Ok(OwnerLookup::None),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(OwnerLookup::Forbidden),
        Err(error) => Err(error),
    }
}

/// The configurations found missing and not creatable, as `Kind/name`: each is reported once,
/// until it exists again.
static REPORTED_MISSING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Records whether `Kind/name` is missing; true when that is news (to be reported).
fn missing_is_news(kind: &str, name: &str, missing: bool) -> bool {
    let key = format!("{kind}/{name}");
    let mut reported = REPORTED_MISSING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if missing {
        reported.insert(key)
    } else {
        reported.remove(&key);
        false
    }
}

/// The JSON patch that writes the desired `caBundle` into each webhook of the install's
/// configuration `live` that `desired` names, and nothing else: every other field is the
/// install's. The version read is the patch's precondition (a 409 when the configuration
/// changed since). Also returns the webhooks of `desired` the install lacks (it must define
/// them; nothing is added to its configuration).
pub fn install_patch(desired: &Value, live: &Value) -> (Value, Vec<String>) {
    let mut ops = Vec::new();
    let mut absent = Vec::new();
    if let Some(version) = live.pointer("/metadata/resourceVersion") {
        ops.push(json!({"op": "replace", "path": "/metadata/resourceVersion", "value": version}));
    }
    let live_hooks = live.get("webhooks").and_then(Value::as_array);
    for hook in desired.get("webhooks").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = hook.get("name").and_then(Value::as_str) else {
            continue;
        };
        let index = live_hooks
            .into_iter()
            .flatten()
            .position(|h| h.get("name").and_then(Value::as_str) == Some(name));
        match (index, hook.pointer("/clientConfig/caBundle")) {
            (Some(index), Some(bundle)) => ops.push(json!({
                "op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": bundle
            })),
            (Some(_), None) => {}
            (None, _) => absent.push(name.to_string()),
        }
    }
    (Value::Array(ops), absent)
}

/// How often a publish reads the configurations again after someone else wrote them between
/// its read and its apply, before it leaves the rest to the next check.
const PUBLISH_ATTEMPTS: usize = 3;

/// The configurations as they are now, read once for one publish: what they trust, who set
/// what by hand, and the version the apply is made against.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub mutating: Option<MutatingWebhookConfiguration>,
    pub validating: Option<ValidatingWebhookConfiguration>,
}

impl Live {
    pub async fn read(client: &Client, name: &str) -> Result<Live, kube::Error> {
        Ok(Live {
            mutating: Api::all(client.clone()).get_opt(name).await?,
            validating: Api::all(client.clone()).get_opt(name).await?,
        })
    }

    /// The CAs they trust (PEM, every webhook's `caBundle`, without repeats); empty when they
    /// do not exist yet.
    pub fn bundle(&self) -> String {
        let mutating = self.mutating.iter().flat_map(|m| m.webhooks.iter().flatten());
        let validating = self.validating.iter().flat_map(|v| v.webhooks.iter().flatten());
        let bundles = mutating
            .map(|w| &w.client_config.ca_bundle)
            .chain(validating.map(|w| &w.client_config.ca_bundle));
        let mut pem = String::new();
        for bundle in bundles.flatten() {
            if let Ok(text) = std::str::from_utf8(&bundle.0)
                && !pem.contains(text.trim())
            {
                pem.push_str(text);
                if !text.ends_with('\n') {
                    pem.push('\n');
                }
            }
        }
        pem
    }
}

/// Applies one configuration of its own over what was read of it: hand-set fields are left
/// to whoever set them, and the read's `resourceVersion` is the apply's precondition, so a write
/// made since (a person's `kubectl patch` of a hand-set field) fails the apply with a 409
/// instead of being taken back by the forced apply. Without `live`, it creates it.
async fn apply_over<K>(
    client: &Client,
    field_manager: &str,
    name: &str,
    live: Option<&K>,
    mut desired: Value,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let live = live.map(Resource::meta);
    let kept = keep_hand_set(&mut desired, live, field_manager);
    if !kept.is_empty() {
        tracing::debug!(configuration = name, ?kept, "keeping values set by hand");
    }
    if let Some(version) = live.and_then(|l| l.resource_version.as_deref()) {
        desired["metadata"]["resourceVersion"] = json!(version);
    }
    Api::<K>::all(client.clone())
        .patch(name, &PatchParams::apply(field_manager).force(), &Patch::Apply(desired))
        .await?;
    Ok(())
}

/// Keeps one configuration current: the install's gets its `caBundle` (see
/// [`install_patch`]), the reloader's own is re-applied (see `apply_over`), a missing one is
/// created when the reloader may; when it may not, that is logged once and the rest goes on.
async fn keep_current<K>(
    client: &Client,
    field_manager: &str,
    name: &str,
    live: Option<&K>,
    desired: Value,
    owner: &OwnerLookup,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    match live {
        Some(live) if !created_by_reloader(live.meta()) => {
            missing_is_news(&kind, name, false);
            let (ops, absent) = install_patch(&desired, &json!(live));
            if !absent.is_empty() {
                tracing::warn!(
                    configuration = name,
                    kind,
                    webhooks = ?absent,
                    "the install's webhook configuration lacks these webhooks: they are not called until it defines them"
                );
            }
            let patch: json_patch::Patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
            let params = PatchParams {
                field_manager: Some(field_manager.to_string()),
                ..PatchParams::default()
            };
            Api::<K>::all(client.clone())
                .patch(name, &params, &Patch::<()>::Json(patch))
                .await?;
            Ok(())
        }
        Some(_) => apply_over(client, field_manager, name, live, desired).await,
        None => match apply_over::<K>(client, field_manager, name, None, desired).await {
            Ok(()) => {
                missing_is_news(&kind, name, false);
                tracing::info!(configuration = name, kind, "created the webhook configuration");
                if *owner == OwnerLookup::Forbidden {
                    tracing::warn!(
                        configuration = name,
                        "not allowed to read the owner ClusterRole; the webhook configuration will not be \
                         garbage-collected with the install (grant get on it, or set --admission-owner-cluster-role=)"
                    );
                }
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                if missing_is_news(&kind, name, true) {
                    tracing::error!(
                        configuration = name,
                        kind,
                        "{kind} {name} does not exist and the reloader may not create it: the install must \
                         create it (the Helm chart and manifests/ do; docs/webhook.md, Registration). Until \
                         then the API server does not call this webhook (writes pass unchanged); serving on"
                    );
                }
                Ok(())
            }
            Err(error) => Err(error),
        },
    }
}

/// Keeps both configurations (`--admission-configuration`) current over `live`, with `bundle`
/// as caBundle (see [`keep_current`]). Either one written since `live` was read is a 409.
pub async fn apply_configurations_over(
    client: &Client,
    field_manager: &str,
    settings: &AdmissionSettings,
    live: &Live,
    bundle: &str,
) -> Result<(), kube::Error> {
    // The owner only goes on a configuration of the reloader's own: not looked up (nor its
    // RBAC needed) when both are the install's.
    let installs = |meta: Option<&ObjectMeta>| meta.is_some_and(|m| !created_by_reloader(m));
    let owner = if installs(live.mutating.as_ref().map(Resource::meta))
        && installs(live.validating.as_ref().map(Resource::meta))
    {
        OwnerLookup::None
    } else {
        owner(client, settings.owner_cluster_role.as_deref()).await?
    };
    let target = Target {
        settings,
        bundle,
        owner: owner.owner(),
    };
    let name = &settings.configuration;
    keep_current(
        client,
        field_manager,
        name,
        live.mutating.as_ref(),
        mutating(name, &target),
        &owner,
    )
    .await?;
    keep_current(
        client,
        field_manager,
        name,
        live.validating.as_ref(),
        validating(name, &target),
        &owner,
    )
    .await?;
    Ok(())
}

/// Reads both configurations and applies them with the caBundle `bundle` makes of the live
/// one; read again and applied again when someone wrote them in between, at most
/// `PUBLISH_ATTEMPTS` times.
pub async fn apply_configurations(
    client: &Client,
    field_manager: &str,
    settings: &AdmissionSettings,
    bundle: impl Fn(&str) -> String,
) -> Result<(), kube::Error> {
    let mut attempt = 1;
    loop {
        let live = Live::read(client, &settings.configuration).await?;
        match apply_configurations_over(client, field_manager, settings, &live, &bundle(&live.bundle())).await {
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < PUBLISH_ATTEMPTS => {
                tracing::debug!(configuration = %settings.configuration, attempt, "configurations changed while applying; reading them again");
                attempt += 1;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    use super::*;
    use crate::config::{Cli, Settings};

    fn settings(args: &[&str]) -> AdmissionSettings {
        let cli = Cli::try_parse_from(std::iter::once("reloader").chain(args.iter().copied())).unwrap();
        let env = |key: &str| (key == "POD_NAMESPACE").then(|| "ns".to_string());
        Settings::from_cli(cli, env).unwrap().admission.unwrap()
    }

    fn hook<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_reloaders_own_writes_are_not_sent_to_either_webhook() {
        let conditions = |configuration: Value| -> Vec<(String, String)> {
            configuration["webhooks"][0]["matchConditions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["expression"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let s = settings(&[
            "--admission-addr=:9443",
            "--admission-self-user=system:serviceaccount:ns:it's",
        ]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        let expected = (
            "not-the-reloader".to_string(),
            r"request.userInfo.username != 'system:serviceaccount:ns:it\'s'".to_string(),
        );
        assert_eq!(conditions(mutating("r", &target)), std::slice::from_ref(&expected));
        assert_eq!(conditions(validating("r", &target)).last(), Some(&expected));
        assert_eq!(conditions(validating("r", &target)).len(), 3);
        // Not knowing who it is, the reloader is sent its own writes (and admits them unchanged).
        let s = settings(&["--admission-addr=:9443"]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        assert!(mutating("r", &target)["webhooks"][0].get("matchConditions").is_none());
        assert_eq!(conditions(validating("r", &target)).len(), 2);
    }

    #[test]
    fn configurations_deserialize_and_cover_every_kind() {
        let s = settings(&[
            "--admission-addr=:9443",
            "--admission-url=https://127.0.0.1:9443",
            "--namespaces=team-a",
        ]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        let m: MutatingWebhookConfiguration = hook(mutating("r", &target));
        assert_eq!(m.metadata.owner_references, None, "no owner: nothing to collect it");
        let hook_ = &m.webhooks.unwrap()[0];
        assert_eq!(
            hook_.client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/mutate")
        );
        assert_eq!(hook_.failure_policy.as_deref(), Some("Ignore"));
        assert_eq!(hook_.timeout_seconds, Some(3));
        let scoped = hook_
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap();
        assert_eq!(scoped[1].values.as_deref(), Some(&["team-a".to_string()][..]));
        let resources: Vec<String> = hook_
            .rules
            .iter()
            .flatten()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        for kind in WorkloadKind::ALL {
            assert!(resources.contains(&kind.resource().2.to_string()), "{kind}");
        }
        let s = settings(&["--admission-addr=:9443"]);
        let owner = Owner {
            name: "reloader".into(),
            uid: "u-1".into(),
        };
        let everywhere = Target {
            settings: &s,
            bundle: "PEM",
            owner: Some(&owner),
        };
        let v: ValidatingWebhookConfiguration = hook(validating("r", &everywhere));
        let reference = &v.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (reference.kind.as_str(), reference.name.as_str(), reference.uid.as_str()),
            ("ClusterRole", "reloader", "u-1")
        );
        let hook_ = &v.webhooks.unwrap()[0];
        let svc = hook_.client_config.service.as_ref().unwrap();
        assert_eq!(
            (svc.name.as_str(), svc.namespace.as_str(), svc.path.as_deref()),
            ("reloader", "ns", Some("/validate"))
        );
        assert_eq!(hook_.failure_policy.as_deref(), Some("Ignore"), "fails open by default");
        assert_eq!(hook_.timeout_seconds, Some(3));
        assert_eq!(hook_.match_conditions.as_ref().unwrap().len(), 2);
        let excluded = hook_
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

        let strict = settings(&["--admission-addr=:9443", "--admission-failure-policy=Fail"]);
        let strict = Target {
            settings: &strict,
            bundle: "PEM",
            owner: None,
        };
        let v: ValidatingWebhookConfiguration = hook(validating("r", &strict));
        assert_eq!(v.webhooks.unwrap()[0].failure_policy.as_deref(), Some("Fail"));
        let m: MutatingWebhookConfiguration = hook(mutating("r", &strict));
        assert_eq!(
            m.webhooks.unwrap()[0].failure_policy.as_deref(),
            Some("Ignore"),
            "stamping never blocks"
        );
    }

    #[test]
    fn the_engines_namespace_filters_become_the_namespace_selector() {
        let s = settings(&[
            "--admission-addr=:9443",
            "--namespaces-to-ignore=legacy,kube-system",
            "--namespace-selector=team,env!=dev,gen>3",
        ]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        let selector = &mutating("r", &target)["webhooks"][0]["namespaceSelector"];
        assert_eq!(
            selector,
            &json!({"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                 "values": ["kube-system", "kube-node-lease", "ns", "legacy"]},
                {"key": "team", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
            ]})
        );
        assert_eq!(validating("r", &target)["webhooks"][0]["namespaceSelector"], *selector);
    }

    fn managed(manager: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn fields_set_by_someone_else_are_left_to_them() {
        let s = settings(&["--admission-addr=:9443"]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        let key = format!("k:{{\"name\":\"{VALIDATING_WEBHOOK}\"}}");
        let live = ObjectMeta {
            managed_fields: Some(vec![
                managed(
                    "reloader",
                    json!({"f:webhooks": {&key: {"f:failurePolicy": {}, "f:timeoutSeconds": {}, "f:sideEffects": {}}}}),
                ),
                managed(
                    "kubectl-edit",
                    json!({"f:webhooks": {&key: {".": {}, "f:timeoutSeconds": {}}}}),
                ),
                // Another webhook's field, and a field not in HAND_SET_FIELDS: no effect.
                managed(
                    "someone",
                    json!({"f:webhooks": {"k:{\"name\":\"other\"}": {"f:failurePolicy": {}}, &key: {"f:sideEffects": {}}}}),
                ),
            ]),
            ..Default::default()
        };
        let mut desired = validating("r", &target);
        let kept = keep_hand_set(&mut desired, Some(&live), "reloader");
        assert_eq!(kept, vec![format!("{VALIDATING_WEBHOOK}/timeoutSeconds")]);
        let hook_ = &desired["webhooks"][0];
        assert!(hook_.get("timeoutSeconds").is_none());
        assert_eq!(hook_["failurePolicy"], "Ignore");
        assert_eq!(hook_["sideEffects"], "None");
        // Created fresh (nothing live), or owned by us alone: everything is applied.
        let mut fresh = validating("r", &target);
        assert!(keep_hand_set(&mut fresh, None, "reloader").is_empty());
        // Seen from another manager, ours are the hand-set ones.
        assert_eq!(keep_hand_set(&mut fresh, Some(&live), "kubectl-edit").len(), 2);
    }

    #[test]
    fn the_live_bundle_is_every_webhooks_cas_once() {
        let s = settings(&["--admission-addr=:9443"]);
        let with = |bundle| Target {
            settings: &s,
            bundle,
            owner: None,
        };
        let (a, b) = ("-----A-----\n", "-----B-----");
        assert_eq!(Live::default().bundle(), "");
        let live = Live {
            mutating: Some(hook(mutating("r", &with(a)))),
            validating: Some(hook(validating("r", &with(b)))),
        };
        assert_eq!(live.bundle(), "-----A-----\n-----B-----\n");
        let same = Live {
            mutating: live.mutating.clone(),
            validating: Some(hook(validating("r", &with(a)))),
        };
        assert_eq!(same.bundle(), a);
    }

    #[test]
    fn only_the_ca_bundle_of_the_installs_configuration_is_written() {
        let s = settings(&["--admission-addr=:9443", "--admission-failure-policy=Fail"]);
        let target = Target {
            settings: &s,
            bundle: "PEM",
            owner: None,
        };
        let desired = validating("r", &target);
        // As the chart made it: another webhook first, ours second, its own policy, no bundle,
        // no label of ours.
        let live = json!({
            "metadata": {"name": "r", "resourceVersion": "42", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
            "webhooks": [
                {"name": "other.example.com", "clientConfig": {"url": "https://x"}},
                {"name": VALIDATING_WEBHOOK, "failurePolicy": "Ignore", "timeoutSeconds": 5,
                 "clientConfig": {"service": {"name": "svc", "namespace": "ns"}}}
            ]
        });
        let meta: ObjectMeta = serde_json::from_value(live["metadata"].clone()).unwrap();
        assert!(!created_by_reloader(&meta));
        let (ops, absent) = install_patch(&desired, &live);
        assert!(absent.is_empty());
        assert_eq!(
            ops,
            json!([
                {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "UEVN"},
            ])
        );
        let mut patched = live.clone();
        json_patch::patch(&mut patched, &serde_json::from_value::<json_patch::Patch>(ops).unwrap()).unwrap();
        assert_eq!(
            patched["webhooks"][1]["failurePolicy"], "Ignore",
            "the install's value stays"
        );
        assert_eq!(patched["webhooks"][1]["clientConfig"]["service"]["name"], "svc");
        assert_eq!(patched["webhooks"][0], live["webhooks"][0]);
        // A configuration without our webhook gets nothing added.
        let theirs = json!({"metadata": {"name": "r"}, "webhooks": [{"name": "other.example.com"}]});
        let (ops, absent) = install_patch(&desired, &theirs);
        assert_eq!((ops, absent), (json!([]), vec![VALIDATING_WEBHOOK.to_string()]));
        // What the reloader creates itself carries its label.
        let own: ObjectMeta = serde_json::from_value(desired["metadata"].clone()).unwrap();
        assert!(created_by_reloader(&own));
        assert!(missing_is_news("K", "r", true));
        assert!(!missing_is_news("K", "r", true), "reported once");
        assert!(!missing_is_news("K", "r", false));
        assert!(missing_is_news("K", "r", true), "again once it came back and went");
    }

    #[test]
    fn match_conditions_are_cel_over_the_three_annotation_places() {
        let s = settings(&["--admission-addr=:9443"]);
        let changed = reloader_annotations_changed(&s);
        assert!(changed.starts_with("request.operation != 'UPDATE' || "), "{changed}");
        for place in [
            "metadata.?annotations",
            "spec.?template.?metadata.?annotations",
            "spec.?jobTemplate.?spec.?template.?metadata.?annotations",
        ] {
            assert!(changed.contains(&format!("object.?{place}.orValue({{}})")), "{place}");
            assert!(
                changed.contains(&format!("oldObject.?{place}.orValue({{}})")),
                "{place}"
            );
        }
        assert!(!mentions_reloader(&s).contains("{{"));
    }

    #[test]
    fn extra_kinds_join_the_rules_and_the_conditions_once_served() {
        let s = settings(&[
            "--admission-addr=:9443",
            "--extra-workload-kinds=register.test.io/v1/Flat,register.test.io/v1/Deep=spec.deploy.podTemplate",
            "--extra-workload-kinds=register-other.test.io/v2/Other",
        ]);
        let rules = |s: &AdmissionSettings| {
            let target = Target {
                settings: s,
                bundle: "",
                owner: None,
            };
            mutating("r", &target)["webhooks"][0]["rules"].clone()
        };
        let builtin = rules(&settings(&["--admission-addr=:9443"]));
        assert_eq!(rules(&s), builtin, "no plural discovered yet: no rule");
        s.extra_kinds[0].extra().unwrap().resolve_plural("flats");
        s.extra_kinds[1].extra().unwrap().resolve_plural("deeps");
        s.extra_kinds[2].extra().unwrap().resolve_plural("others");
        let mut expected = builtin.as_array().unwrap().clone();
        for (group, version, plurals) in [
            ("register.test.io", "v1", json!(["flats", "deeps"])),
            ("register-other.test.io", "v2", json!(["others"])),
        ] {
            expected.push(
                json!({"apiGroups": [group], "apiVersions": [version], "operations": ["CREATE", "UPDATE"],
                                 "resources": plurals, "scope": "Namespaced"}),
            );
        }
        assert_eq!(rules(&s), Value::Array(expected));
        // The nested template is a place of the conditions, once; `spec.template` already is.
        let deep = "spec.?deploy.?podTemplate.?metadata.?annotations";
        assert!(mentions_reloader(&s).contains(&format!("object.?{deep}].exists(")));
        assert_eq!(
            mentions_reloader(&s)
                .matches("object.?spec.?template.?metadata")
                .count(),
            1
        );
        assert!(reloader_annotations_changed(&s).contains(&format!("oldObject.?{deep}.orValue({{}})")));
        let validating_rules = {
            let target = Target {
                settings: &s,
                bundle: "",
                owner: None,
            };
            validating("r", &target)["webhooks"][0]["rules"].clone()
        };
        assert_eq!(
            validating_rules.as_array().unwrap().len(),
            builtin.as_array().unwrap().len() + 3
        );
    }
}
