//! Which sources a pod template uses, and which container is "the" container for each, with
//! Stakater's search order (`handler/upgrade.go`): volumes first, then env; the first container
//! that uses it wins, and a use only by init containers falls back to `containers[0]`.

use std::collections::BTreeMap;

use super::per_key::KeySet;
use super::pod::{Container, KeyItem, PodSpec, Volume};

use super::source::{SourceKind, SourceRef};

/// The CSI volume attribute naming a SecretProviderClass.
const CSI_SPC_ATTRIBUTE: &str = "secretProviderClass";

/// How the pod uses a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Volume,
    Env,
}

/// A source the pod template uses, with the container a reload stamps for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub source: SourceRef,
    pub usage: Usage,
    /// `None` when the template has no containers at all.
    pub container: Option<String>,
}

/// Every source the pod spec uses, in a stable order (by kind, then name). The same answer as
/// [`find_reference`] for each used source, in one pass over the spec (linear in its size, so
/// a pod spec with tens of thousands of references costs milliseconds, not minutes).
pub fn references(spec: &PodSpec) -> Vec<Reference> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let mut by_volume: BTreeMap<&str, Vec<SourceRef>> = BTreeMap::new();
    for (volume, source) in volume_sources(volumes) {
        by_volume.entry(volume).or_default().push(source);
    }
    let first = first_container(spec);
    // Regular containers in order, then init containers (which name `containers[0]`): the
    // first container using a source wins, a volume use before any env use.
    let users = spec
        .containers
        .iter()
        .map(|c| (c, Some(c.name.clone())))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, first.clone())));
    let mut by_mount: BTreeMap<SourceRef, Option<String>> = BTreeMap::new();
    let mut by_env: BTreeMap<SourceRef, Option<String>> = BTreeMap::new();
    for (container, named) in users {
        for mount in container.volume_mounts.iter().flatten() {
            for source in by_volume.get(mount.name.as_str()).into_iter().flatten() {
                by_mount.entry(source.clone()).or_insert_with(|| named.clone());
            }
        }
        for source in env_sources(container) {
            by_env.entry(source).or_insert_with(|| named.clone());
        }
    }
    let mut out: BTreeMap<SourceRef, Reference> = by_env
        .into_iter()
        .filter(|(source, _)| source.kind != SourceKind::SecretProviderClass)
        .map(|(source, container)| {
            let reference = Reference {
                source: source.clone(),
                usage: Usage::Env,
                container,
            };
            (source, reference)
        })
        .collect();
    for (source, container) in by_mount {
        let reference = Reference {
            source: source.clone(),
            usage: Usage::Volume,
            container,
        };
        out.insert(source, reference);
    }
    out.into_values().collect()
}

/// The reference for one source, or `None` when the pod does not use it.
pub fn find_reference(spec: &PodSpec, source: &SourceRef) -> Option<Reference> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let volume_names: Vec<&str> = volume_sources(volumes)
        .into_iter()
        .filter(|(_, s)| s == source)
        .map(|(v, _)| v)
        .collect();
    if !volume_names.is_empty() {
        let mounts = |c: &Container| {
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| volume_names.contains(&m.name.as_str()))
        };
        if let Some(found) = chosen_container(spec, mounts) {
            return Some(Reference {
                source: source.clone(),
                usage: Usage::Volume,
                container: found,
            });
        }
    }
    // CSI sources count only as volumes.
    if source.kind == SourceKind::SecretProviderClass {
        return None;
    }
    let uses_env = |c: &Container| env_sources(c).contains(source);
    chosen_container(spec, uses_env).map(|container| Reference {
        source: source.clone(),
        usage: Usage::Env,
        container,
    })
}

/// The first regular container satisfying `uses`; `containers[0]` when only an init container
/// does; `None` when nothing does. The inner `None` means "no containers to name".
fn chosen_container(spec: &PodSpec, uses: impl Fn(&Container) -> bool) -> Option<Option<String>> {
    if let Some(c) = spec.containers.iter().find(|c| uses(c)) {
        return Some(Some(c.name.clone()));
    }
    if spec.init_containers.iter().flatten().any(uses) {
        return Some(first_container(spec));
    }
    None
}

/// The container Stakater falls back to.
pub fn first_container(spec: &PodSpec) -> Option<String> {
    spec.containers.first().map(|c| c.name.clone())
}

/// (volume name, source) for every volume backed by a source, projected sources included.
fn volume_sources(volumes: &[Volume]) -> Vec<(&str, SourceRef)> {
    let mut out = Vec::new();
    for v in volumes {
        let name = v.name.as_str();
        if let Some(cm) = &v.config_map {
            out.push((name, SourceRef::new(SourceKind::ConfigMap, cm.name.clone())));
        }
        if let Some(secret) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            out.push((name, SourceRef::new(SourceKind::Secret, secret)));
        }
        for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &p.config_map {
                out.push((name, SourceRef::new(SourceKind::ConfigMap, cm.name.clone())));
            }
            if let Some(secret) = &p.secret {
                out.push((name, SourceRef::new(SourceKind::Secret, secret.name.clone())));
            }
        }
        if let Some(spc) = v
            .csi
            .as_ref()
            .and_then(|c| c.volume_attributes.as_ref())
            .and_then(|a| a.get(CSI_SPC_ATTRIBUTE))
        {
            out.push((name, SourceRef::new(SourceKind::SecretProviderClass, spc.clone())));
        }
    }
    out.retain(|(_, s)| !s.name.is_empty());
    out
}

/// The ConfigMaps and Secrets the pod spec reads only some keys of, with those keys (per-key
/// reloads, [`super::per_key`]): keys selected by `env[].valueFrom` (`configMapKeyRef`,
/// `secretKeyRef`) and by the `items` of `configMap` and `secret` volumes and of projections,
/// in containers and init containers alike. A source it also uses whole (`envFrom`, a volume or
/// projection without `items` or with an empty list, which project every key) is not in the
/// answer. Every volume counts, mounted or not: what a volume projects is the pod's, whichever
/// container reads it.
pub fn keys_read(spec: &PodSpec) -> BTreeMap<SourceRef, KeySet> {
    let mut keys: BTreeMap<SourceRef, KeySet> = BTreeMap::new();
    let mut whole: Vec<SourceRef> = Vec::new();
    let mut note = |source: SourceRef, items: Option<&[KeyItem]>| match items {
        Some(items) if !items.is_empty() => {
            let set = keys.entry(source).or_default();
            for item in items {
                set.insert(item.key.clone());
            }
        }
        _ => whole.push(source),
    };
    let containers = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    for container in containers {
        for from in container.env.iter().flatten().filter_map(|v| v.value_from.as_ref()) {
            let selectors = [
                (SourceKind::ConfigMap, &from.config_map_key_ref),
                (SourceKind::Secret, &from.secret_key_ref),
            ];
            for (kind, selector) in selectors {
                if let Some(r) = selector {
                    let item = KeyItem { key: r.key.clone() };
                    note(SourceRef::new(kind, r.name.clone()), Some(std::slice::from_ref(&item)));
                }
            }
        }
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                note(SourceRef::new(SourceKind::ConfigMap, r.name.clone()), None);
            }
            if let Some(r) = &from.secret_ref {
                note(SourceRef::new(SourceKind::Secret, r.name.clone()), None);
            }
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(cm) = &volume.config_map {
            note(
                SourceRef::new(SourceKind::ConfigMap, cm.name.clone()),
                cm.items.as_deref(),
            );
        }
        if let Some(secret) = &volume.secret
            && let Some(name) = &secret.secret_name
        {
            note(
                SourceRef::new(SourceKind::Secret, name.clone()),
                secret.items.as_deref(),
            );
        }
        for p in volume.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &p.config_map {
                note(
                    SourceRef::new(SourceKind::ConfigMap, cm.name.clone()),
                    cm.items.as_deref(),
                );
            }
            if let Some(secret) = &p.secret {
                note(
                    SourceRef::new(SourceKind::Secret, secret.name.clone()),
                    secret.items.as_deref(),
                );
            }
        }
    }
    for source in whole {
        keys.remove(&source);
    }
    keys.retain(|source, _| !source.name.is_empty());
    keys
}

/// Sources a container uses through `env[].valueFrom` and `envFrom`.
fn env_sources(c: &Container) -> Vec<SourceRef> {
    let mut out = Vec::new();
    for var in c.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            out.push(SourceRef::new(SourceKind::ConfigMap, r.name.clone()));
        }
        if let Some(r) = &from.secret_key_ref {
            out.push(SourceRef::new(SourceKind::Secret, r.name.clone()));
        }
    }
    for from in c.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            out.push(SourceRef::new(SourceKind::ConfigMap, r.name.clone()));
        }
        if let Some(r) = &from.secret_ref {
            out.push(SourceRef::new(SourceKind::Secret, r.name.clone()));
        }
    }
    out.retain(|s| !s.name.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    fn cm(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::ConfigMap, name)
    }
    fn secret(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::Secret, name)
    }
    fn spc(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::SecretProviderClass, name)
    }

    struct Row {
        what: &'static str,
        spec: serde_json::Value,
        source: SourceRef,
        expect: Option<(Usage, Option<&'static str>)>,
    }

    /// One row per line of the reference-detection table (§3.4).
    #[test]
    fn reference_table() {
        let rows = vec![
            Row {
                what: "configMap volume mounted by the second container",
                spec: json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "v", "mountPath": "/c"}]}],
                             "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}),
                source: cm("cfg"),
                expect: Some((Usage::Volume, Some("b"))),
            },
            Row {
                what: "secret volume",
                spec: json!({"containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/s"}]}],
                             "volumes": [{"name": "v", "secret": {"secretName": "db"}}]}),
                source: secret("db"),
                expect: Some((Usage::Volume, Some("a"))),
            },
            Row {
                what: "projected configMap",
                spec: json!({"containers": [{"name": "a", "volumeMounts": [{"name": "p", "mountPath": "/p"}]}],
                             "volumes": [{"name": "p", "projected": {"sources": [{"configMap": {"name": "cfg"}}, {"secret": {"name": "db"}}]}}]}),
                source: cm("cfg"),
                expect: Some((Usage::Volume, Some("a"))),
            },
            Row {
                what: "projected secret",
                spec: json!({"containers": [{"name": "a", "volumeMounts": [{"name": "p", "mountPath": "/p"}]}],
                             "volumes": [{"name": "p", "projected": {"sources": [{"configMap": {"name": "cfg"}}, {"secret": {"name": "db"}}]}}]}),
                source: secret("db"),
                expect: Some((Usage::Volume, Some("a"))),
            },
            Row {
                what: "CSI volume naming a SecretProviderClass",
                spec: json!({"containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/mnt"}]}],
                             "volumes": [{"name": "v", "csi": {"driver": "secrets-store.csi.k8s.io", "volumeAttributes": {"secretProviderClass": "vault"}}}]}),
                source: spc("vault"),
                expect: Some((Usage::Volume, Some("a"))),
            },
            Row {
                what: "volume mounted only by an init container falls back to containers[0]",
                spec: json!({"initContainers": [{"name": "init", "volumeMounts": [{"name": "v", "mountPath": "/c"}]}],
                             "containers": [{"name": "main"}, {"name": "side"}],
                             "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}),
                source: cm("cfg"),
                expect: Some((Usage::Volume, Some("main"))),
            },
            Row {
                what: "CSI volume used by an init container",
                spec: json!({"initContainers": [{"name": "init", "volumeMounts": [{"name": "v", "mountPath": "/m"}]}],
                             "containers": [{"name": "main"}],
                             "volumes": [{"name": "v", "csi": {"driver": "d", "volumeAttributes": {"secretProviderClass": "vault"}}}]}),
                source: spc("vault"),
                expect: Some((Usage::Volume, Some("main"))),
            },
            Row {
                what: "env valueFrom configMapKeyRef",
                spec: json!({"containers": [{"name": "a"}, {"name": "b", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}]}),
                source: cm("cfg"),
                expect: Some((Usage::Env, Some("b"))),
            },
            Row {
                what: "env valueFrom secretKeyRef",
                spec: json!({"containers": [{"name": "a", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}]}]}),
                source: secret("db"),
                expect: Some((Usage::Env, Some("a"))),
            },
            Row {
                what: "envFrom configMapRef",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}),
                source: cm("cfg"),
                expect: Some((Usage::Env, Some("a"))),
            },
            Row {
                what: "envFrom secretRef",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "db"}}]}]}),
                source: secret("db"),
                expect: Some((Usage::Env, Some("a"))),
            },
            Row {
                what: "init container envFrom falls back to containers[0]",
                spec: json!({"initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "db"}}]}],
                             "containers": [{"name": "main"}]}),
                source: secret("db"),
                expect: Some((Usage::Env, Some("main"))),
            },
            Row {
                what: "volumes are searched before env",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "cfg"}}]},
                                            {"name": "b", "volumeMounts": [{"name": "v", "mountPath": "/c"}]}],
                             "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}),
                source: cm("cfg"),
                expect: Some((Usage::Volume, Some("b"))),
            },
            Row {
                what: "a volume nobody mounts is not a use; env still is",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
                             "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}),
                source: cm("cfg"),
                expect: Some((Usage::Env, Some("a"))),
            },
            Row {
                what: "a same-named Secret is not the ConfigMap",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "cfg"}}]}]}),
                source: cm("cfg"),
                expect: None,
            },
            Row {
                what: "imagePullSecrets are not references",
                spec: json!({"containers": [{"name": "a"}], "imagePullSecrets": [{"name": "regcred"}]}),
                source: secret("regcred"),
                expect: None,
            },
            Row {
                what: "CSI sources are volume-only",
                spec: json!({"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "vault"}}]}]}),
                source: spc("vault"),
                expect: None,
            },
        ];
        for row in rows {
            let got = find_reference(&spec(row.spec), &row.source).map(|r| (r.usage, r.container));
            let want = row.expect.map(|(u, c)| (u, c.map(str::to_string)));
            assert_eq!(got, want, "{}", row.what);
        }
    }

    /// What a pod spec reads only by key: per source, its keys.
    type KeysBySource<'a> = Vec<(SourceRef, Vec<&'a str>)>;

    /// Which keys each kind of reference reads, and what makes a use whole.
    #[test]
    fn keys_read_by_kind_of_reference() {
        let rows: Vec<(&str, serde_json::Value, KeysBySource)> = vec![
            (
                "configMapKeyRef and secretKeyRef, in a container and an init container",
                json!({"initContainers": [{"name": "i", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": true}}}]}],
                       "containers": [{"name": "a", "env": [
                           {"name": "H", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DB_HOST"}}},
                           {"name": "P", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DB_PORT"}}},
                           {"name": "U", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
                           {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}),
                vec![
                    (cm("cfg"), vec!["DB_HOST", "DB_PORT"]),
                    (secret("db"), vec!["password", "user"]),
                ],
            ),
            (
                "volume items, configMap and secret, mounted or not",
                json!({"containers": [{"name": "a", "volumeMounts": [{"name": "c", "mountPath": "/c"}]}],
                       "volumes": [{"name": "c", "configMap": {"name": "cfg", "items": [{"key": "app.yaml", "path": "app.yaml"}]}},
                                   {"name": "s", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "crt"}, {"key": "tls.key", "path": "key"}]}}]}),
                vec![
                    (cm("cfg"), vec!["app.yaml"]),
                    (secret("tls"), vec!["tls.crt", "tls.key"]),
                ],
            ),
            (
                "projected items, merged with a key reference",
                json!({"containers": [{"name": "a", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}]}],
                       "volumes": [{"name": "p", "projected": {"sources": [
                           {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}]}},
                           {"secret": {"name": "db", "items": [{"key": "password", "path": "p"}]}}]}}]}),
                vec![(cm("cfg"), vec!["a"]), (secret("db"), vec!["password", "user"])],
            ),
            (
                "envFrom reads the whole object, whatever keys are also selected",
                json!({"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "cfg"}}],
                                       "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                                               {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}]}],
                       "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "db"}}]}]}),
                vec![],
            ),
            (
                "a volume or projection without items, or with an empty list, is whole",
                json!({"containers": [{"name": "a", "env": [
                           {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                           {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}},
                           {"name": "Z", "valueFrom": {"configMapKeyRef": {"name": "other", "key": "k"}}}]}],
                       "volumes": [{"name": "c", "configMap": {"name": "cfg"}},
                                   {"name": "s", "secret": {"secretName": "db", "items": []}},
                                   {"name": "p", "projected": {"sources": [{"configMap": {"name": "other"}}]}}]}),
                vec![],
            ),
            (
                "a same-named Secret and ConfigMap are apart",
                json!({"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "x"}}],
                                       "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}]}]}),
                vec![(cm("x"), vec!["k"])],
            ),
            (
                "CSI volumes are never by key",
                json!({"containers": [{"name": "a"}],
                       "volumes": [{"name": "v", "csi": {"driver": "d", "volumeAttributes": {"secretProviderClass": "vault"}}}]}),
                vec![],
            ),
        ];
        for (what, value, want) in rows {
            let got: Vec<(SourceRef, Vec<String>)> = keys_read(&spec(value))
                .into_iter()
                .map(|(source, keys)| (source, keys.iter().map(str::to_string).collect()))
                .collect();
            let want: Vec<(SourceRef, Vec<String>)> = want
                .into_iter()
                .map(|(source, keys)| (source, keys.into_iter().map(str::to_string).collect()))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn all_references_sorted_and_deduplicated() {
        let s = spec(json!({
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
            "containers": [
                {"name": "a", "envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                         {"name": "Y", "value": "plain"}]},
                {"name": "b", "volumeMounts": [{"name": "v", "mountPath": "/s"}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "db"}}, {"name": "e", "emptyDir": {}}]
        }));
        let refs = references(&s);
        let summary: Vec<(String, Option<String>)> = refs
            .iter()
            .map(|r| (r.source.to_string(), r.container.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("configmap/cfg".to_string(), Some("a".to_string())),
                ("secret/db".to_string(), Some("b".to_string())),
                ("secret/init-secret".to_string(), Some("a".to_string())),
            ]
        );
    }

    /// A pod spec of a few containers, init containers and volumes over a few names, so uses
    /// overlap: volumes of every backing kind, mounted or not, and env uses of every kind.
    fn arbitrary_spec() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let name = prop::sample::select(vec!["a", "b", "c"]);
        let volume = (0..4usize, name.clone()).prop_map(|(how, n)| match how {
            0 => json!({"configMap": {"name": n}}),
            1 => json!({"secret": {"secretName": n}}),
            2 => json!({"projected": {"sources": [{"secret": {"name": n}}, {"configMap": {"name": n}}]}}),
            _ => json!({"csi": {"driver": "d", "volumeAttributes": {"secretProviderClass": n}}}),
        });
        let env = (0..4usize, name).prop_map(|(how, n)| match how {
            0 => json!({"envFrom": [{"configMapRef": {"name": n}}]}),
            1 => json!({"envFrom": [{"secretRef": {"name": n}}]}),
            2 => json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": n, "key": "k"}}}]}),
            _ => json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": n, "key": "k"}}}]}),
        });
        let container = (prop::collection::vec(0..4usize, 0..3), prop::option::of(env));
        let containers = prop::collection::vec(container.clone(), 0..4);
        let inits = prop::collection::vec(container, 0..3);
        (containers, inits, prop::collection::vec(volume, 0..4)).prop_map(|(containers, inits, volumes)| {
            let render = |prefix: &str, list: Vec<(Vec<usize>, Option<serde_json::Value>)>| {
                list.into_iter()
                    .enumerate()
                    .map(|(i, (mounts, env))| {
                        let mut c = env.unwrap_or_else(|| json!({}));
                        c["name"] = json!(format!("{prefix}{i}"));
                        let mounts: Vec<_> = mounts
                            .iter()
                            .map(|m| json!({"name": format!("v{m}"), "mountPath": "/m"}))
                            .collect();
                        c["volumeMounts"] = json!(mounts);
                        c
                    })
                    .collect::<Vec<_>>()
            };
            let volumes: Vec<_> = volumes
                .into_iter()
                .enumerate()
                .map(|(i, mut v)| {
                    v["name"] = json!(format!("v{i}"));
                    v
                })
                .collect();
            json!({"containers": render("c", containers), "initContainers": render("i", inits), "volumes": volumes})
        })
    }

    proptest::proptest! {
        /// The one-pass `references` says what `find_reference` says for every source.
        #[test]
        fn references_agree_with_find_reference(value in arbitrary_spec()) {
            let s = spec(value);
            let mut every = Vec::new();
            for kind in SourceKind::ALL {
                for n in ["a", "b", "c"] {
                    every.push(SourceRef::new(kind, n));
                }
            }
            every.sort();
            let one_by_one: Vec<Reference> = every.iter().filter_map(|source| find_reference(&s, source)).collect();
            proptest::prop_assert_eq!(references(&s), one_by_one);
        }
    }
}
