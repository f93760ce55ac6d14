//! Reading the Secrets Store CSI driver's objects: a SecretProviderClassPodStatus (one per pod
//! and class, listing the mounted objects' versions) as Stakater hashes it, and a class's content
//! as the hash most of its pod statuses report. The engine's watchers (`engine::csi`) and
//! `reloader explain` both read them so.

use std::collections::BTreeMap;

use kube::api::ApiResource;
use serde_json::Value;

use crate::core::hash::{ContentHash, secret_provider_class_hash};

pub const GROUP_VERSION: &str = "secrets-store.csi.x-k8s.io/v1";

pub fn pod_status_resource() -> ApiResource {
    ApiResource {
        group: "secrets-store.csi.x-k8s.io".into(),
        version: "v1".into(),
        api_version: GROUP_VERSION.into(),
        kind: "SecretProviderClassPodStatus".into(),
        plural: "secretproviderclasspodstatuses".into(),
    }
}

/// What one pod status says: its class and the content hash of its mounted objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodStatus {
    pub class: String,
    pub hash: ContentHash,
}

/// Stakater's hash of one status: `id=version` per object plus the class name.
pub fn read_pod_status(object: &Value) -> Option<PodStatus> {
    let status = object.get("status")?;
    let class = status.get("secretProviderClassName")?.as_str()?.to_string();
    if class.is_empty() {
        return None;
    }
    let objects: Vec<(&str, &str)> = status
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o.get("id")?.as_str()?, o.get("version")?.as_str()?)))
        .collect();
    let hash = secret_provider_class_hash(&class, objects);
    Some(PodStatus { class, hash })
}

/// The content of a class: the hash most of its pod statuses report; ties go to the greatest.
pub fn class_hash<'a>(statuses: impl IntoIterator<Item = &'a PodStatus>, class: &str) -> Option<ContentHash> {
    let mut votes: BTreeMap<&ContentHash, usize> = BTreeMap::new();
    for s in statuses.into_iter().filter(|s| s.class == class) {
        *votes.entry(&s.hash).or_default() += 1;
    }
    votes
        .into_iter()
        .max_by(|(ha, a), (hb, b)| a.cmp(b).then(ha.cmp(hb)))
        .map(|(h, _)| h.clone())
}

pub fn class_resource() -> ApiResource {
    ApiResource {
        kind: "SecretProviderClass".into(),
        plural: "secretproviderclasses".into(),
        ..pod_status_resource()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The status of a pod of `class` mounting `secret/db` at `version`.
    pub(crate) fn status(class: &str, version: &str) -> PodStatus {
        read_pod_status(&json!({"status": {"secretProviderClassName": class, "podName": "p",
                                           "objects": [{"id": "secret/db", "version": version}]}}))
        .unwrap()
    }

    #[test]
    fn stakater_hash_of_a_pod_status() {
        let s = status("vault-db", "7");
        assert_eq!(
            s.hash,
            crate::core::hash::sha1_hex(b"SecretProviderClassName=vault-db;secret/db=7")
        );
        assert!(read_pod_status(&json!({"status": {}})).is_none());
    }

    #[test]
    fn a_rotation_flips_the_class_hash_once() {
        let (v1, v2) = (status("c", "1"), status("c", "2"));
        let mut pods = vec![v1.clone(), v1.clone(), v1.clone()];
        let mut seen = vec![class_hash(&pods, "c").unwrap()];
        for i in 0..pods.len() {
            pods[i] = v2.clone();
            seen.push(class_hash(&pods, "c").unwrap());
        }
        seen.dedup();
        assert_eq!(seen, vec![v1.hash.clone(), v2.hash.clone()], "one change, no flip back");
        // A tie is decided the same way every time.
        let tie = [v1.clone(), v2.clone()];
        let reversed = [v2.clone(), v1.clone()];
        assert_eq!(class_hash(&tie, "c"), class_hash(&reversed, "c"));
        assert_eq!(class_hash(&tie, "other"), None);
    }
}
