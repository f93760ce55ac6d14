//! Which sources a pod template uses, and which container is "the" container for each, with
//! Stakater's search order (`handler/upgrade.go`): volumes first, then env; the first container
//! that uses it wins, and a use only by init containers falls back to `containers[0]`.

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

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

/// Every source the pod spec uses, in a stable order (by kind, then name).
pub fn references(spec: &PodSpec) -> Vec<Reference> {
    let mut sources: Vec<SourceRef> = volume_sources(&spec.volumes.clone().unwrap_or_default())
        .into_iter()
        .map(|(_, s)| s)
        .chain(all_containers(spec).flat_map(env_sources))
        .collect();
    sources.sort();
    sources.dedup();
    sources
        .into_iter()
        .filter_map(|source| find_reference(spec, &source))
        .collect()
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

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.containers.iter().chain(spec.init_containers.iter().flatten())
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
}
