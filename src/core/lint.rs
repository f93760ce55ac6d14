//! Annotation rules: what is wrong with an object's reloader annotations, as findings that either
//! deny the object or warn about it. The validating webhook and an offline linter both call this,
//! so they can never disagree; every key and value rule comes from [`super::vocabulary`].

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::source::SourceKind;
use super::vocabulary::{AnnotationKeys, Classifier, KeyClass, KeySpec, Placement, check_value};
use super::workload::{Workload, WorkloadKind, string_map};

/// What kind of object carries the annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Workload(WorkloadKind),
    Source(SourceKind),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Workload(k) => write!(f, "{k}"),
            Subject::Source(k) => write!(f, "{k}"),
        }
    }
}

/// Where on the object an annotation sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Metadata,
    PodTemplate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The object is rejected.
    Deny,
    /// The object is admitted; the message is shown to the user.
    Warn,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub key: String,
    pub message: String,
}

impl Finding {
    fn deny(key: &str, message: String) -> Self {
        Self {
            severity: Severity::Deny,
            key: key.into(),
            message,
        }
    }

    fn warn(key: &str, message: String) -> Self {
        Self {
            severity: Severity::Warn,
            key: key.into(),
            message,
        }
    }
}

/// Kubernetes' limit on the total size of one object's annotations, keys plus values
/// (`TotalAnnotationSizeLimitB` in apimachinery). The API server enforces it after mutating
/// admission; the rules enforce it first, so a forged or oversized object costs one sum.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Every finding for an object's annotations: metadata, and for workloads the pod template.
/// Sorted: denials first. Annotations over [`MAX_ANNOTATIONS_BYTES`] in one place are one
/// denial, and their keys are not looked at.
pub fn lint(
    keys: &AnnotationKeys,
    subject: Subject,
    metadata: &BTreeMap<String, String>,
    template: &BTreeMap<String, String>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let classifier = keys.classifier();
    let locations = [(Location::Metadata, metadata), (Location::PodTemplate, template)];
    for (location, annotations) in locations {
        let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_ANNOTATIONS_BYTES {
            let place = match location {
                Location::Metadata => "metadata.annotations",
                Location::PodTemplate => "the pod template's annotations",
            };
            findings.push(Finding::deny(
                "",
                format!("{place} total {size} bytes; Kubernetes allows at most {MAX_ANNOTATIONS_BYTES}"),
            ));
            continue;
        }
        for (key, value) in annotations {
            findings.extend(lint_one(&classifier, subject, location, key, value));
        }
    }
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then_with(|| a.key.cmp(&b.key)));
    findings
}

/// The annotations [`lint`] reads from an object: its metadata's, and for a workload its pod
/// template's (none when it has no template).
pub fn annotations_of(subject: Subject, object: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let metadata = string_map(object.pointer("/metadata/annotations"));
    let template = match subject {
        Subject::Workload(kind) => Workload::new(kind, object).template_annotations().unwrap_or_default(),
        Subject::Source(_) => BTreeMap::new(),
    };
    (metadata, template)
}

fn lint_one(classifier: &Classifier, subject: Subject, location: Location, key: &str, value: &str) -> Option<Finding> {
    match classifier.classify(key) {
        KeyClass::Foreign => None,
        KeyClass::UnknownInDomain { suggestion: Some(s) } | KeyClass::NearMiss { suggestion: Some(s) } => Some(
            Finding::deny(key, format!("unknown annotation {key}: did you mean {s}?")),
        ),
        KeyClass::UnknownInDomain { suggestion: None } => {
            Some(Finding::deny(key, format!("unknown reloader annotation {key}")))
        }
        KeyClass::NearMiss { suggestion: None } => Some(Finding::deny(
            key,
            format!("{key} is not a reloader annotation; did you mean the reloader.stakater.com domain?"),
        )),
        KeyClass::Known(spec) => {
            if let Err(error) = check_value(&spec, value) {
                return Some(Finding::deny(key, error.to_string()));
            }
            misplaced(&spec, subject, location).map(|m| Finding::warn(key, m))
        }
    }
}

/// A warning when a valid key sits where the reloader never reads it.
fn misplaced(spec: &KeySpec, subject: Subject, location: Location) -> Option<String> {
    let key = &spec.key;
    let ignored = |place: &str| {
        Some(format!(
            "{key} has no effect on {place}; it belongs on {}",
            spec.placement
        ))
    };
    match (spec.placement, subject, location) {
        (Placement::Written, _, _) => None,
        (Placement::WorkloadOrTemplate, Subject::Workload(_), _) => None,
        (Placement::WorkloadOrTemplate, Subject::Source(kind), _) => ignored(&format!("a {kind}")),
        (Placement::Source, Subject::Source(_), Location::Metadata) => None,
        (Placement::Source, subject, _) => ignored(&format!("a {subject}")),
        (Placement::WorkloadMetadata, Subject::Workload(_), Location::Metadata) => None,
        (Placement::WorkloadMetadata, Subject::Workload(_), Location::PodTemplate) => ignored("a pod template"),
        (Placement::WorkloadMetadata, subject, _) => ignored(&format!("a {subject}")),
        (Placement::DeploymentMetadata, Subject::Workload(WorkloadKind::Deployment), Location::Metadata) => None,
        (Placement::DeploymentMetadata, Subject::Workload(WorkloadKind::Deployment), _) => ignored("a pod template"),
        (Placement::DeploymentMetadata, subject, _) => ignored(&format!("a {subject}")),
        (Placement::RolloutMetadata, Subject::Workload(WorkloadKind::Rollout), Location::Metadata) => None,
        (Placement::RolloutMetadata, subject, _) => ignored(&format!("a {subject} here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vocabulary::{defaults, fixed};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn deployment(metadata: &[(&str, &str)], template: &[(&str, &str)]) -> Vec<Finding> {
        lint(
            &AnnotationKeys::default(),
            Subject::Workload(WorkloadKind::Deployment),
            &map(metadata),
            &map(template),
        )
    }

    fn messages(findings: &[Finding], severity: Severity) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.message.clone())
            .collect()
    }

    #[test]
    fn typos_are_denied_with_a_suggestion() {
        let f = deployment(&[("reloader.stakater.com/atuo", "true")], &[]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec!["unknown annotation reloader.stakater.com/atuo: did you mean reloader.stakater.com/auto?"]
        );
        let f = deployment(&[("reloader.stakatar.com/auto", "true")], &[]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec!["unknown annotation reloader.stakatar.com/auto: did you mean reloader.stakater.com/auto?"]
        );
        let f = deployment(&[], &[("configmaps.reloader.stakater.com/reload", "cfg")]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec![
                "unknown annotation configmaps.reloader.stakater.com/reload: did you mean configmap.reloader.stakater.com/reload?"
            ]
        );
    }

    #[test]
    fn invalid_values_are_denied() {
        let f = deployment(
            &[
                (defaults::AUTO, "yes"),
                (defaults::CONFIGMAP_RELOAD, "good,bad("),
                (defaults::PAUSE_PERIOD, "5 minutes"),
            ],
            &[],
        );
        let denied = messages(&f, Severity::Deny);
        assert_eq!(denied.len(), 3, "{denied:?}");
        assert!(denied.iter().any(|m| m.contains("is not a boolean")));
        assert!(
            denied
                .iter()
                .any(|m| m.contains("\"bad(\" is not a valid regular expression"))
        );
        assert!(denied.iter().any(|m| m.contains("is not a duration")));
        let rollout = lint(
            &AnnotationKeys::default(),
            Subject::Workload(WorkloadKind::Rollout),
            &map(&[(fixed::ROLLOUT_STRATEGY, "restrat")]),
            &map(&[]),
        );
        assert_eq!(messages(&rollout, Severity::Deny).len(), 1);
    }

    #[test]
    fn misplaced_keys_warn() {
        let f = deployment(&[(defaults::MATCH, "true")], &[(fixed::SECRETS_EXCLUDE, "db")]);
        assert!(messages(&f, Severity::Deny).is_empty());
        assert_eq!(messages(&f, Severity::Warn).len(), 2, "{f:?}");
        let cm = lint(
            &AnnotationKeys::default(),
            Subject::Source(SourceKind::ConfigMap),
            &map(&[
                (defaults::AUTO, "true"),
                (defaults::MATCH, "true"),
                (defaults::IGNORE, "true"),
            ]),
            &map(&[]),
        );
        assert_eq!(
            messages(&cm, Severity::Warn),
            vec![
                "reloader.stakater.com/auto has no effect on a ConfigMap; it belongs on a workload or its pod template"
            ]
        );
        let sts = lint(
            &AnnotationKeys::default(),
            Subject::Workload(WorkloadKind::StatefulSet),
            &map(&[(defaults::PAUSE_PERIOD, "5m")]),
            &map(&[]),
        );
        assert_eq!(messages(&sts, Severity::Warn).len(), 1);
    }

    #[test]
    fn good_objects_have_no_findings() {
        assert!(
            deployment(
                &[
                    (defaults::AUTO, "true"),
                    (defaults::PAUSE_PERIOD, "30s"),
                    (fixed::CONFIGMAPS_EXCLUDE, "x"),
                    (fixed::ACKNOWLEDGED_HASHES, "garbage is ours to handle"),
                    ("app.kubernetes.io/name", "web"),
                ],
                &[(defaults::SECRET_RELOAD, "db,tls-.*"), (fixed::TEMPLATE_HASHES, "")],
            )
            .is_empty()
        );
    }

    #[test]
    fn reload_lists_over_the_limits_are_denied() {
        use crate::core::vocabulary::{MAX_ITEM_LEN, MAX_LIST_ITEMS};
        let many = vec!["cfg"; MAX_LIST_ITEMS + 1].join(",");
        let f = deployment(&[(defaults::CONFIGMAP_RELOAD, &many)], &[]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec![format!(
                "{}: the list has 101 items; at most 100 are allowed",
                defaults::CONFIGMAP_RELOAD
            )]
        );
        let long = "a".repeat(MAX_ITEM_LEN + 1);
        let f = deployment(&[], &[(defaults::SECRET_RELOAD, &long)]);
        let denied = messages(&f, Severity::Deny);
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert!(denied[0].contains("at most 512"), "{}", denied[0]);
        assert!(denied[0].len() < 200, "{}", denied[0]);
    }

    #[test]
    fn oversized_annotations_are_one_denial() {
        // 60,000 near-miss keys: one finding, no edit distances.
        let keys: Vec<(String, String)> = (0..60_000)
            .map(|i| (format!("reloader.stakatar.com/a{i}"), String::new()))
            .collect();
        let metadata: BTreeMap<String, String> = keys.into_iter().collect();
        let f = lint(
            &AnnotationKeys::default(),
            Subject::Workload(WorkloadKind::Deployment),
            &metadata,
            &BTreeMap::new(),
        );
        assert_eq!(f.len(), 1, "{:?}", &f[..2]);
        assert!(
            f[0].message.starts_with("metadata.annotations total "),
            "{}",
            f[0].message
        );
        assert!(f[0].message.ends_with("Kubernetes allows at most 262144"));
        let huge = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let f = deployment(&[], &[("a", &huge)]);
        assert_eq!(messages(&f, Severity::Deny).len(), 1);
        assert!(messages(&f, Severity::Deny)[0].starts_with("the pod template's annotations total"));
    }

    #[test]
    fn messages_stay_short_enough_for_kubectl() {
        let f = deployment(&[("reloader.stakater.com/atuo", "true")], &[]);
        assert!(f[0].message.len() <= 120, "{}", f[0].message);
    }
}
