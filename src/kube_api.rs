//! Small helpers over the Kubernetes API that the engine, the webhook and `reloader explain`
//! share: a workload kind's API resource, and a workload as the reloader keeps it.

use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use crate::core::source::LAST_APPLIED;
use crate::core::workload::WorkloadKind;
use crate::store::StoredWorkload;

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

/// A workload of `kind` as the store keeps it: slimmed, with its rollout status read first.
pub fn stored(kind: WorkloadKind, obj: &DynamicObject) -> StoredWorkload {
    StoredWorkload::of(kind, serde_json::to_value(obj).unwrap_or(Value::Null))
}

/// The API resource of a workload kind.
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
        kind: kind.to_string(),
        plural: plural.into(),
    }
}
