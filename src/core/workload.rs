//! Workload kinds and read access to a workload held as untyped JSON, so that fields this
//! version does not know (newer APIs, CRDs such as Argo Rollouts) survive every rewrite.
//! Kinds beyond the built-in ones come from `--extra-workload-kinds` ([`extra`]).

pub mod extra;

use crate::core::json::JsonAt;
use std::collections::BTreeMap;
use std::fmt;

use super::pod::PodSpec;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

pub use extra::ExtraKind;

/// Every kind the reloader can roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    /// Argo Rollouts `argoproj.io/v1alpha1`.
    Rollout,
    /// OpenShift `apps.openshift.io/v1`.
    DeploymentConfig,
    /// A kind of `--extra-workload-kinds` (a CloneSet, a CRD of one's own): rolled like a
    /// Deployment, its pod template where the flag says.
    Extra(ExtraKind),
}

impl WorkloadKind {
    /// The built-in kinds (extra ones are [`WorkloadKind::Extra`]).
    pub const ALL: [WorkloadKind; 7] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::CronJob,
        WorkloadKind::Job,
        WorkloadKind::Rollout,
        WorkloadKind::DeploymentConfig,
    ];

    /// (group, version, plural) of the API resource; an extra kind's plural is empty until
    /// discovery found it ([`WorkloadKind::plural`]).
    pub fn resource(self) -> (&'static str, &'static str, &'static str) {
        match self {
            WorkloadKind::Extra(extra) => (extra.group(), extra.version(), extra.plural().unwrap_or_default()),
            WorkloadKind::Deployment => ("apps", "v1", "deployments"),
            WorkloadKind::StatefulSet => ("apps", "v1", "statefulsets"),
            WorkloadKind::DaemonSet => ("apps", "v1", "daemonsets"),
            WorkloadKind::CronJob => ("batch", "v1", "cronjobs"),
            WorkloadKind::Job => ("batch", "v1", "jobs"),
            WorkloadKind::Rollout => ("argoproj.io", "v1alpha1", "rollouts"),
            WorkloadKind::DeploymentConfig => ("apps.openshift.io", "v1", "deploymentconfigs"),
        }
    }

    /// The resource's plural: always known for a built-in kind, once discovered for an extra one.
    pub fn plural(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Extra(extra) => extra.plural(),
            _ => Some(self.resource().2),
        }
    }

    /// The API kind, as written in manifests (`Deployment`); an extra kind's name
    /// ([`ExtraKind::name`]: its kind, qualified by its group when a built-in kind has its name).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Extra(extra) => extra.name(),
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Job => "Job",
            WorkloadKind::Rollout => "Rollout",
            WorkloadKind::DeploymentConfig => "DeploymentConfig",
        }
    }

    /// The kind as the API names it, for object references (`CloneSet`, where [`Self::as_str`]
    /// may be `StatefulSet.apps.kruise.io` to tell an extra kind from a built-in one).
    pub fn api_kind(self) -> &'static str {
        match self {
            WorkloadKind::Extra(extra) => extra.kind(),
            _ => self.as_str(),
        }
    }

    /// The built-in kind named `kind`.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind of objects of API `group` and `kind`: a built-in one, or an extra one registered.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        match Self::from_kind(kind) {
            Some(builtin) if builtin.resource().0 == group => Some(builtin),
            _ => ExtraKind::find(group, kind).map(WorkloadKind::Extra),
        }
    }

    /// The extra kind, if this is one.
    pub fn extra(self) -> Option<ExtraKind> {
        match self {
            WorkloadKind::Extra(extra) => Some(extra),
            _ => None,
        }
    }

    /// The name `--ignored-workload-types` uses for this kind, if it can be ignored.
    pub fn ignore_name(self) -> Option<&'static str> {
        match self {
            WorkloadKind::Job => Some("jobs"),
            WorkloadKind::CronJob => Some("cronjobs"),
            _ => None,
        }
    }

    /// JSON pointer of the pod template inside the object.
    pub fn template_pointer(self) -> &'static str {
        match self {
            WorkloadKind::Extra(extra) => extra.template_pointer(),
            WorkloadKind::CronJob => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        }
    }
}

impl serde::Serialize for WorkloadKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a workload object cannot be read.
#[derive(Debug, Error)]
pub enum WorkloadError {
    #[error("{kind} has no pod template at {pointer}")]
    MissingTemplate { kind: WorkloadKind, pointer: &'static str },
    #[error("{kind} pod template spec is invalid: {source}")]
    InvalidPodSpec {
        kind: WorkloadKind,
        #[source]
        source: serde_json::Error,
    },
}

/// Read access to a workload object.
#[derive(Clone, Copy, Debug)]
pub struct Workload<'a> {
    pub kind: WorkloadKind,
    pub object: &'a Value,
}

impl<'a> Workload<'a> {
    pub fn new(kind: WorkloadKind, object: &'a Value) -> Self {
        Self { kind, object }
    }

    pub fn name(&self) -> &'a str {
        self.object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> &'a str {
        self.object
            .at("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map(self.object.at("/metadata/annotations"))
    }

    /// One of the object's annotations, read in place (as `annotations().get(key)`, without
    /// copying the map).
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.object.at("/metadata/annotations")?.get(key)?.as_str()
    }

    pub fn template(&self) -> Result<&'a Value, WorkloadError> {
        let pointer = self.kind.template_pointer();
        self.object
            .at(pointer)
            .filter(|t| t.is_object())
            .ok_or(WorkloadError::MissingTemplate {
                kind: self.kind,
                pointer,
            })
    }

    pub fn template_annotations(&self) -> Result<BTreeMap<String, String>, WorkloadError> {
        Ok(string_map(self.template()?.at("/metadata/annotations")))
    }

    /// One of the pod template's annotations, read in place.
    pub fn template_annotation(&self, key: &str) -> Result<Option<&'a str>, WorkloadError> {
        let annotations = self.template()?.at("/metadata/annotations");
        Ok(annotations.and_then(|a| a.get(key)).and_then(Value::as_str))
    }

    pub fn pod_spec(&self) -> Result<PodSpec, WorkloadError> {
        // Deserialized from a reference: a megabyte pod spec is not copied first.
        let spec = self.template()?.get("spec").unwrap_or(&Value::Null);
        PodSpec::deserialize(spec).map_err(|source| WorkloadError::InvalidPodSpec {
            kind: self.kind,
            source,
        })
    }
}

/// A JSON object of strings as a map; non-string values are skipped.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_paths_per_kind() {
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"metadata": {"annotations": {"a": "1"}},
                          "spec": {"containers": [{"name": "c"}]}}}}}});
        let w = Workload::new(WorkloadKind::CronJob, &cron);
        assert_eq!(
            w.template_annotations().unwrap().get("a").map(String::as_str),
            Some("1")
        );
        assert_eq!(w.pod_spec().unwrap().containers[0].name, "c");
        for kind in [
            WorkloadKind::Deployment,
            WorkloadKind::StatefulSet,
            WorkloadKind::DaemonSet,
            WorkloadKind::Job,
            WorkloadKind::Rollout,
            WorkloadKind::DeploymentConfig,
        ] {
            let obj = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
            assert_eq!(
                Workload::new(kind, &obj).pod_spec().unwrap().containers[0].name,
                "c",
                "{kind}"
            );
        }
    }

    #[test]
    fn single_annotations_read_as_the_maps_do() {
        for annotations in [
            json!({"a": "1", "n": 2, "o": {"x": "y"}}),
            json!(null),
            json!("text"),
            json!(["a"]),
        ] {
            let object = json!({"metadata": {"annotations": annotations},
                                "spec": {"template": {"metadata": {"annotations": annotations}}}});
            let w = Workload::new(WorkloadKind::Deployment, &object);
            for key in ["a", "n", "o", "missing"] {
                assert_eq!(
                    w.annotation(key),
                    w.annotations().get(key).map(String::as_str),
                    "{annotations} {key}"
                );
                assert_eq!(
                    w.template_annotation(key).unwrap(),
                    w.template_annotations().unwrap().get(key).map(String::as_str)
                );
            }
        }
        let bare = json!({"metadata": {}});
        let w = Workload::new(WorkloadKind::Deployment, &bare);
        assert_eq!(w.annotation("a"), None);
        assert!(
            w.template_annotation("a").is_err(),
            "no template is an error, as for the map"
        );
    }

    #[test]
    fn missing_or_invalid_templates_are_errors() {
        let rollout_with_ref = json!({"spec": {"workloadRef": {"kind": "Deployment", "name": "x"}}});
        assert!(matches!(
            Workload::new(WorkloadKind::Rollout, &rollout_with_ref).template(),
            Err(WorkloadError::MissingTemplate { .. })
        ));
        let bad = json!({"spec": {"template": {"spec": {"containers": "nope"}}}});
        assert!(matches!(
            Workload::new(WorkloadKind::Deployment, &bad).pod_spec(),
            Err(WorkloadError::InvalidPodSpec { .. })
        ));
    }

    #[test]
    fn kinds_round_trip_and_ignore_names() {
        for kind in WorkloadKind::ALL {
            assert_eq!(WorkloadKind::from_kind(&kind.to_string()), Some(kind));
        }
        assert_eq!(WorkloadKind::Job.ignore_name(), Some("jobs"));
        assert_eq!(WorkloadKind::CronJob.ignore_name(), Some("cronjobs"));
        assert_eq!(WorkloadKind::Deployment.ignore_name(), None);
    }

    #[test]
    fn extra_kinds_read_their_template_where_the_flag_says() {
        let nested = extra::register(&"workload.test.io/v1/Nested=spec.deploy.podTemplate".parse().unwrap()).unwrap();
        let plain = extra::register(&"workload.test.io/v1beta1/Plain".parse().unwrap()).unwrap();
        let (nested, plain) = (WorkloadKind::Extra(nested), WorkloadKind::Extra(plain));
        let object = json!({"spec": {"deploy": {"podTemplate": {"metadata": {"annotations": {"a": "1"}},
                            "spec": {"containers": [{"name": "n"}]}}},
                            "template": {"spec": {"containers": [{"name": "p"}]}}}});
        let w = Workload::new(nested, &object);
        assert_eq!(w.template_annotation("a").unwrap(), Some("1"));
        assert_eq!(w.pod_spec().unwrap().containers[0].name, "n");
        assert_eq!(
            Workload::new(plain, &object).pod_spec().unwrap().containers[0].name,
            "p"
        );
        let missing = json!({"spec": {"deploy": {}}});
        let error = Workload::new(nested, &missing).template().unwrap_err();
        assert_eq!(
            error.to_string(),
            "Nested has no pod template at /spec/deploy/podTemplate"
        );

        assert_eq!(WorkloadKind::of("workload.test.io", "Nested"), Some(nested));
        assert_eq!(WorkloadKind::of("other.test.io", "Nested"), None);
        assert_eq!(WorkloadKind::of("apps", "Deployment"), Some(WorkloadKind::Deployment));
        assert_eq!(WorkloadKind::of("extensions", "Deployment"), None);
        assert_eq!(
            WorkloadKind::from_kind("Nested"),
            None,
            "from_kind names built-in kinds"
        );
        assert_eq!(nested.to_string(), "Nested");
        assert_eq!(nested.api_kind(), "Nested");
        assert_eq!(serde_json::to_value(nested).unwrap(), json!("Nested"));
        assert_eq!(nested.resource(), ("workload.test.io", "v1", ""));
        assert_eq!(nested.plural(), None);
        assert!(nested.extra().unwrap().resolve_plural("nesteds"));
        assert_eq!(nested.resource(), ("workload.test.io", "v1", "nesteds"));
        assert_eq!(nested.plural(), Some("nesteds"));
        assert_eq!(nested.ignore_name(), None);
        assert_eq!(WorkloadKind::Deployment.plural(), Some("deployments"));
    }
}
