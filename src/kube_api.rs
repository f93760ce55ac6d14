//! Small helpers over the Kubernetes API that the engine, the webhook and `reloader explain`
//! share: a workload kind's API resource (an extra kind's plural found by discovery), and a
//! workload as the reloader keeps it; the pods a workload owns, for pod restarts.

use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use crate::core::source::LAST_APPLIED;
use crate::core::workload::{ExtraKind, WorkloadKind};

/// A workload as the store keeps it: without what the engine never reads and that costs memory
/// (managed fields, status), and with `kubectl apply`'s copy of the object emptied rather
/// than removed, so a patch computed against the stored object never drops it from the
/// server's (a Job keeps it: it is re-created from the stored object).
pub fn slim(mut object: Value) -> Value {
    let job = object.get("kind").and_then(Value::as_str) == Some("Job");
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if !job && let Some(applied) = meta.get_mut("annotations").and_then(|a| a.get_mut(LAST_APPLIED)) {
            *applied = Value::String(String::new());
        }
    }
    if let Some(obj) = object.as_object_mut() {
        obj.remove("status");
    }
    object
}

pub fn to_value(obj: &DynamicObject) -> Value {
    slim(serde_json::to_value(obj).unwrap_or(Value::Null))
}

/// The API resource of a workload kind (an extra kind's plural is empty until [`discover`]
/// found it).
pub fn api_resource(kind: WorkloadKind) -> ApiResource {
    let (group, version, plural) = kind.resource();
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version,
        kind: kind.api_kind().to_string(),
        plural: plural.into(),
    }
}

/// Whether the API server serves `group_version` (`argoproj.io/v1alpha1`): one request, for
/// the list of API groups.
pub async fn served(client: &kube::Client, group_version: &str) -> Result<bool, kube::Error> {
    let groups = client.list_api_groups().await?;
    Ok(groups
        .groups
        .iter()
        .flat_map(|g| &g.versions)
        .any(|v| v.group_version == group_version))
}

/// Why an extra kind cannot be watched (yet).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{kind:?} is not served by the API server (yet)")]
    NotServed { kind: ExtraKind },
    #[error("{kind:?} is cluster-scoped; only namespaced kinds are workloads")]
    ClusterScoped { kind: ExtraKind },
    #[error("{kind:?} is served as {found:?} now, not {kept:?} as before; restart the reloader to follow it")]
    PluralChanged {
        kind: ExtraKind,
        kept: &'static str,
        found: String,
    },
    #[error("discovering {kind:?}: {source}")]
    Api {
        kind: ExtraKind,
        #[source]
        source: Box<kube::Error>,
    },
}

impl DiscoveryError {
    /// Whether asking again later may succeed: the kind is not served yet, or the API server
    /// did not answer.
    pub fn retryable(&self) -> bool {
        matches!(self, DiscoveryError::NotServed { .. } | DiscoveryError::Api { .. })
    }
}

/// The longest wait between two discovery requests for an extra kind not served yet (the
/// engine's watchers and the webhook's registration both ask again at least this often).
pub const DISCOVERY_MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Finds an extra kind's plural through discovery (the API groups, then its group version) and
/// records it in the registry; the plural is what its watchers, patches and webhook rules use.
pub async fn discover(client: &kube::Client, kind: ExtraKind) -> Result<&'static str, DiscoveryError> {
    use kube::core::GroupVersionKind;
    use kube::discovery::{Scope, pinned_kind};
    let api_error = |source| DiscoveryError::Api {
        kind,
        source: Box::new(source),
    };
    // The group list first: asking for a group version not served is a 404, which the client
    // logs as a warning each time.
    let group_version = format!("{}/{}", kind.group(), kind.version());
    if !served(client, &group_version).await.map_err(api_error)? {
        return Err(DiscoveryError::NotServed { kind });
    }
    let gvk = GroupVersionKind::gvk(kind.group(), kind.version(), kind.kind());
    let (resource, capabilities) = match pinned_kind(client, &gvk).await {
        Ok(found) => found,
        Err(kube::Error::Api(status)) if status.code == 404 => return Err(DiscoveryError::NotServed { kind }),
        Err(kube::Error::Discovery(_)) => return Err(DiscoveryError::NotServed { kind }),
        Err(source) => return Err(api_error(source)),
    };
    if capabilities.scope != Scope::Namespaced {
        return Err(DiscoveryError::ClusterScoped { kind });
    }
    if !kind.resolve_plural(&resource.plural) {
        return Err(DiscoveryError::PluralChanged {
            kind,
            kept: kind.plural().unwrap_or_default(),
            found: resource.plural,
        });
    }
    Ok(kind.plural().unwrap_or_default())
}

/// What pod restarts read of the pods `workload` (of `kind`, in `namespace`) owns: listed by its
/// `spec.selector.matchLabels`, each pod's controller checked
/// ([`crate::core::pod_restart::owned_by`]).
pub async fn owned_pods(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    workload: &Value,
) -> Result<Vec<crate::core::pod_restart::PodFacts>, kube::Error> {
    use crate::core::pod_restart::{PodFacts, label_selector, owned_by};
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), namespace);
    let mut params = kube::api::ListParams::default();
    if let Some(selector) = label_selector(workload) {
        params = params.labels(&selector);
    }
    let listed = pods.list(&params).await?;
    Ok(listed
        .items
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .filter(|p| owned_by(p, kind, workload))
        .filter_map(|p| PodFacts::read(&p))
        .collect())
}
