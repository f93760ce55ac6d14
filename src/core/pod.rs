//! The part of a pod spec the rules read: containers' names with their `env`, `envFrom` and
//! `volumeMounts`, and the volumes backed by sources (with the keys they project). Read straight from the workload's JSON;
//! every other field is skipped without being built (k8s-openapi's `PodSpec` builds all of them,
//! images, probes and resources included, which was most of a decision's cost).
//!
//! Read as k8s-openapi reads the same fields: a `null` or missing field is its default (`None`,
//! an empty list, an empty name). A field the rules do not read is not checked either: the API
//! server validates pod specs, the rules only look for sources.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A missing or `null` field as its default.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(deserializer: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub containers: Vec<Container>,
    pub init_containers: Option<Vec<Container>>,
    pub volumes: Option<Vec<Volume>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    pub env: Option<Vec<EnvVar>>,
    pub env_from: Option<Vec<EnvFromSource>>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// An env var; only where its value comes from matters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub value_from: Option<EnvVarSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    pub config_map_key_ref: Option<KeyRef>,
    pub secret_key_ref: Option<KeyRef>,
}

/// One key of a ConfigMap or Secret (`configMapKeyRef`, `secretKeyRef`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KeyRef {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
}

/// A ConfigMap volume or a projection of a ConfigMap or Secret: by name, with the keys it
/// projects (`items`; none or an empty list projects every key).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ItemsRef {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    pub items: Option<Vec<KeyItem>>,
}

/// One projected key (`items[]`); only which key matters.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KeyItem {
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSource {
    pub config_map_ref: Option<NameRef>,
    pub secret_ref: Option<NameRef>,
}

/// A reference by `name` alone (env sources).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NameRef {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct VolumeMount {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    pub config_map: Option<ItemsRef>,
    pub secret: Option<SecretVolume>,
    pub projected: Option<Projected>,
    pub csi: Option<Csi>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVolume {
    pub secret_name: Option<String>,
    pub items: Option<Vec<KeyItem>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Projected {
    pub sources: Option<Vec<Projection>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    pub config_map: Option<ItemsRef>,
    pub secret: Option<ItemsRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Csi {
    pub volume_attributes: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The same spec read by k8s-openapi and by this module finds the same sources: a check
    /// that the field names and the null/missing defaults are theirs.
    #[test]
    fn reads_what_k8s_openapi_reads() {
        let spec = json!({
            "containers": [
                {"name": "web", "image": "web:1", "resources": {"limits": {"cpu": "1"}},
                 "env": [{"name": "A", "value": "x"},
                         {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                         {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
                         {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "envFrom": [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "s-from"}},
                             {"configMapRef": null}],
                 "volumeMounts": [{"name": "v1", "mountPath": "/a"}, {"name": "v2", "mountPath": "/b"}]},
                {"name": "side", "env": null, "envFrom": null, "volumeMounts": null}
            ],
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "s-init"}}]}],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-vol", "defaultMode": 420}},
                {"name": "v2", "secret": {"secretName": "s-vol"}},
                {"name": "v3", "projected": {"sources": [{"configMap": {"name": "cm-proj"}},
                                                         {"secret": {"name": "s-proj"}},
                                                         {"downwardAPI": {"items": []}}]}},
                {"name": "v4", "csi": {"driver": "secrets-store.csi.k8s.io",
                                       "volumeAttributes": {"secretProviderClass": "spc"}}},
                {"name": "v5", "emptyDir": {}},
                {"name": "v6", "secret": {}}
            ]
        });
        let ours: PodSpec = serde_json::from_value(spec.clone()).unwrap();
        let theirs: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(spec).unwrap();
        let names = |c: &[Container]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ours.containers), ["web", "side"]);
        assert_eq!(
            theirs.containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            names(&ours.containers)
        );
        let web = &ours.containers[0];
        let env: Vec<Option<String>> = web
            .env
            .iter()
            .flatten()
            .map(|v| {
                let from = v.value_from.as_ref()?;
                from.config_map_key_ref
                    .as_ref()
                    .or(from.secret_key_ref.as_ref())
                    .map(|r| r.name.clone())
            })
            .collect();
        assert_eq!(env, [None, Some("cm-env".into()), Some("s-env".into()), None]);
        let from: Vec<Option<String>> = web
            .env_from
            .iter()
            .flatten()
            .map(|f| {
                f.config_map_ref
                    .as_ref()
                    .or(f.secret_ref.as_ref())
                    .map(|r| r.name.clone())
            })
            .collect();
        assert_eq!(from, [Some("cm-from".into()), Some("s-from".into()), None]);
        let mounts: Vec<&str> = web.volume_mounts.iter().flatten().map(|m| m.name.as_str()).collect();
        assert_eq!(mounts, ["v1", "v2"]);
        assert!(ours.containers[1].env.is_none() && ours.containers[1].volume_mounts.is_none());
        assert_eq!(names(ours.init_containers.as_deref().unwrap()), ["init"]);
        let volumes = ours.volumes.as_deref().unwrap();
        assert_eq!(volumes.len(), theirs.volumes.as_deref().unwrap().len());
        assert_eq!(volumes[0].config_map.as_ref().unwrap().name, "cm-vol");
        assert_eq!(
            volumes[1].secret.as_ref().unwrap().secret_name.as_deref(),
            Some("s-vol")
        );
        let projected: Vec<&str> = volumes[2]
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(|p| p.config_map.as_ref().or(p.secret.as_ref()).map(|r| r.name.as_str()))
            .collect();
        assert_eq!(projected, ["cm-proj", "s-proj"]);
        let spc = volumes[3].csi.as_ref().and_then(|c| c.volume_attributes.as_ref());
        assert_eq!(
            spc.and_then(|a| a.get("secretProviderClass")).map(String::as_str),
            Some("spc")
        );
        assert!(volumes[5].secret.as_ref().unwrap().secret_name.is_none());
    }

    /// The keys per-key reloads read: key selectors' `key`, and `items[].key` of volumes and
    /// projections, as k8s-openapi reads them.
    #[test]
    fn reads_the_keys_k8s_openapi_reads() {
        let spec = json!({
            "containers": [{"name": "web", "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": true}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b"}}}]}],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm", "items": [{"key": "c", "path": "c", "mode": 256}]}},
                {"name": "v2", "secret": {"secretName": "s", "items": [{"key": "d", "path": "d"}]}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "cm", "items": [{"key": "e", "path": "e"}]}},
                    {"secret": {"name": "s", "items": null}}]}}
            ]
        });
        let ours: PodSpec = serde_json::from_value(spec.clone()).unwrap();
        let theirs: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(spec).unwrap();
        let env = |c: &Container| -> Vec<String> {
            c.env
                .iter()
                .flatten()
                .filter_map(|v| v.value_from.as_ref())
                .filter_map(|f| f.config_map_key_ref.as_ref().or(f.secret_key_ref.as_ref()))
                .map(|r| r.key.clone())
                .collect()
        };
        let their_env: Vec<String> = theirs.containers[0]
            .env
            .iter()
            .flatten()
            .filter_map(|v| v.value_from.as_ref())
            .filter_map(|f| {
                f.config_map_key_ref
                    .as_ref()
                    .map(|r| r.key.clone())
                    .or(f.secret_key_ref.as_ref().map(|r| r.key.clone()))
            })
            .collect();
        assert_eq!(env(&ours.containers[0]), their_env);
        assert_eq!(their_env, ["a", "b"]);
        let volumes = ours.volumes.as_deref().unwrap();
        let keys = |items: Option<&Vec<KeyItem>>| items.map(|i| i.iter().map(|k| k.key.clone()).collect::<Vec<_>>());
        assert_eq!(
            keys(volumes[0].config_map.as_ref().unwrap().items.as_ref()),
            Some(vec!["c".to_string()])
        );
        assert_eq!(
            keys(volumes[1].secret.as_ref().unwrap().items.as_ref()),
            Some(vec!["d".to_string()])
        );
        let projected = volumes[2].projected.as_ref().unwrap().sources.as_deref().unwrap();
        assert_eq!(
            keys(projected[0].config_map.as_ref().unwrap().items.as_ref()),
            Some(vec!["e".to_string()])
        );
        assert_eq!(keys(projected[1].secret.as_ref().unwrap().items.as_ref()), None);
        let their_volumes = theirs.volumes.unwrap();
        let their_items = their_volumes[0].config_map.as_ref().unwrap().items.as_ref().unwrap();
        assert_eq!(their_items[0].key, "c");
    }

    #[test]
    fn nulls_and_missing_fields_are_defaults_and_other_fields_are_not_read() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": null,
            "nodeSelector": "not a map: the API server's business",
        }))
        .unwrap();
        assert!(spec.containers.is_empty() && spec.volumes.is_none());
        let spec: PodSpec = serde_json::from_value(json!({"containers": [{"image": "x", "name": null}]})).unwrap();
        assert_eq!(spec.containers[0].name, "");
    }

    #[test]
    fn what_the_rules_read_must_have_its_type() {
        for bad in [
            json!({"containers": "nope"}),
            json!({"containers": [{"name": 7}]}),
            json!({"volumes": [{"name": "v", "configMap": {"name": ["x"]}}]}),
            json!({"containers": [{"name": "c", "envFrom": {"secretRef": {"name": "s"}}}]}),
        ] {
            assert!(serde_json::from_value::<PodSpec>(bad.clone()).is_err(), "{bad}");
        }
    }
}
