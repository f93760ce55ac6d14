//! Annotation rules: what is wrong with an object's reloader annotations, as findings that either
//! deny the object or warn about it. The validating webhook and the offline linter (`reloader
//! lint`) both call this, so they can never disagree; every key and value rule comes from
//! [`super::vocabulary`]. The cross-reference rules (a reload list naming a source that does not
//! exist, `match` with no workload using `search`) are here too; only where the sources and
//! workloads are looked up differs (the webhook's cache, the linter's input or cluster).

use crate::core::json::JsonAt;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::dependencies::KindAnnotations;
use super::source::{SourceKind, SourceRef};
use super::vocabulary::{AnnotationKeys, Classifier, KeyClass, KeySpec, Placement, check_value, is_exact_true};
use super::workload::{Workload, WorkloadKind, string_map};

/// What kind of object carries the annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Workload(WorkloadKind),
    Source(SourceKind),
}

impl Subject {
    /// The subject of an object of API `group` and `kind`, if its annotations are ours to check:
    /// the workload kinds (in their own API group; extra ones as registered), ConfigMaps and
    /// Secrets.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        if let Some(workload) = WorkloadKind::of(group, kind) {
            return Some(Subject::Workload(workload));
        }
        match (group, kind) {
            ("", "ConfigMap") => Some(Subject::Source(SourceKind::ConfigMap)),
            ("", "Secret") => Some(Subject::Source(SourceKind::Secret)),
            _ => None,
        }
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

/// Which rule a finding comes from; `id` is stable, for machine-readable reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A key under a reloader domain that is not in the vocabulary (a typo, usually).
    UnknownAnnotation,
    /// A key a small edit away from a reloader domain or key.
    NearMissDomain,
    /// A known key whose value does not parse.
    InvalidValue,
    /// A value that is not a string (`auto: true` unquoted): the API server refuses the object.
    NotAString,
    /// A valid key where the reloader never reads it.
    Misplaced,
    /// A reload list naming a ConfigMap or Secret that does not exist.
    MissingSource,
    /// `match` on a source with no workload in its namespace using `search`.
    MatchWithoutSearch,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::UnknownAnnotation,
        Rule::NearMissDomain,
        Rule::InvalidValue,
        Rule::NotAString,
        Rule::Misplaced,
        Rule::MissingSource,
        Rule::MatchWithoutSearch,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::UnknownAnnotation => "unknown-annotation",
            Rule::NearMissDomain => "near-miss-domain",
            Rule::InvalidValue => "invalid-value",
            Rule::NotAString => "not-a-string",
            Rule::Misplaced => "misplaced-annotation",
            Rule::MissingSource => "missing-source",
            Rule::MatchWithoutSearch => "match-without-search",
        }
    }

    /// One line on what the rule checks.
    pub fn description(self) -> &'static str {
        match self {
            Rule::UnknownAnnotation => "An annotation under a reloader domain that the reloader does not know.",
            Rule::NearMissDomain => "An annotation whose key or domain is a small edit away from a reloader key.",
            Rule::InvalidValue => {
                "A reloader annotation whose value does not parse (boolean, regex list, duration, strategy, reload window, wave sizes)."
            }
            Rule::NotAString => "A reloader annotation whose value is not a string; the API server refuses the object.",
            Rule::Misplaced => "A valid reloader annotation where the reloader never reads it.",
            Rule::MissingSource => "A reload list names a ConfigMap or Secret that does not exist.",
            Rule::MatchWithoutSearch => {
                "A source marked with the match annotation, but no workload in its namespace uses search."
            }
        }
    }

    /// The severity the webhook gives it.
    pub fn severity(self) -> Severity {
        match self {
            Rule::UnknownAnnotation | Rule::NearMissDomain | Rule::InvalidValue | Rule::NotAString => Severity::Deny,
            Rule::Misplaced | Rule::MissingSource | Rule::MatchWithoutSearch => Severity::Warn,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    /// The annotation the finding is about.
    pub key: String,
    /// Where that annotation sits.
    pub location: Location,
    pub message: String,
    /// The key the user probably meant ("did you mean").
    pub suggestion: Option<String>,
}

impl Finding {
    fn new(rule: Rule, key: &str, location: Location, message: String) -> Self {
        Self {
            severity: rule.severity(),
            rule,
            key: key.into(),
            location,
            message,
            suggestion: None,
        }
    }

    fn suggesting(mut self, suggestion: &str) -> Self {
        self.suggestion = Some(suggestion.to_string());
        self
    }
}

/// Every finding for an object's annotations: metadata, and for workloads the pod template.
/// Sorted: denials first.
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
        // Over Kubernetes' limit: one denial, and the keys are not looked at.
        let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_ANNOTATIONS_BYTES {
            let place = match location {
                Location::Metadata => "metadata.annotations",
                Location::PodTemplate => "the pod template's annotations",
            };
            let message = format!("{place} total {size} bytes; Kubernetes allows at most {MAX_ANNOTATIONS_BYTES}");
            findings.push(Finding::new(Rule::InvalidValue, "", location, message));
            continue;
        }
        for (key, value) in annotations {
            findings.extend(lint_one(&classifier, subject, location, key, value));
        }
    }
    sort(&mut findings);
    findings
}

/// Kubernetes' limit on the total size of one object's annotations, keys plus values
/// (`TotalAnnotationSizeLimitB` in apimachinery). The API server enforces it after mutating
/// admission; the rules enforce it first, so a forged or oversized object costs one sum.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The annotations [`lint`] reads from an object: its metadata's, and for a workload its pod
/// template's (none when it has no template).
pub fn annotations_of(subject: Subject, object: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let metadata = string_map(object.at("/metadata/annotations"));
    let template = match subject {
        Subject::Workload(kind) => Workload::new(kind, object).template_annotations().unwrap_or_default(),
        Subject::Source(_) => BTreeMap::new(),
    };
    (metadata, template)
}

fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.location.cmp(&b.location))
    });
}

/// Every finding for an object as the API holds it (JSON): what the validating webhook checks.
/// Annotation values that are not strings (possible only in a manifest, never in an object the
/// API server accepted) are findings too, for the keys that are ours or near misses.
pub fn lint_object(keys: &AnnotationKeys, subject: Subject, object: &Value) -> Vec<Finding> {
    let template_pointer = match subject {
        Subject::Workload(kind) => Some(format!("{}/metadata/annotations", kind.template_pointer())),
        Subject::Source(_) => None,
    };
    let metadata = string_map(object.at("/metadata/annotations"));
    let template = match subject {
        Subject::Workload(kind) => Workload::new(kind, object).template_annotations().unwrap_or_default(),
        Subject::Source(_) => BTreeMap::new(),
    };
    let mut findings = lint(keys, subject, &metadata, &template);
    let places = [
        (Location::Metadata, Some("/metadata/annotations".to_string())),
        (Location::PodTemplate, template_pointer),
    ];
    for (location, pointer) in places {
        let Some(map) = pointer.and_then(|p| object.at(&p)).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in map.iter().filter(|(_, v)| !v.is_string()) {
            if keys.classify(key) != KeyClass::Foreign {
                findings.push(Finding::new(Rule::NotAString, key, location, not_a_string(key, value)));
            }
        }
    }
    sort(&mut findings);
    findings
}

fn not_a_string(key: &str, value: &Value) -> String {
    let what = match value {
        Value::Null => "empty (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
        Value::String(_) => "a string",
    };
    match value {
        Value::Bool(_) | Value::Number(_) => {
            format!("{key}: {value} is {what}, not a string; quote it (\"{value}\")")
        }
        _ => format!("{key}: the value is {what}, not a string"),
    }
}

fn lint_one(classifier: &Classifier, subject: Subject, location: Location, key: &str, value: &str) -> Option<Finding> {
    let finding = |rule, message| Finding::new(rule, key, location, message);
    match classifier.classify(key) {
        KeyClass::Foreign => None,
        KeyClass::UnknownInDomain { suggestion: Some(s) } => Some(
            finding(
                Rule::UnknownAnnotation,
                format!("unknown annotation {key}: did you mean {s}?"),
            )
            .suggesting(&s),
        ),
        KeyClass::NearMiss { suggestion: Some(s) } => Some(
            finding(
                Rule::NearMissDomain,
                format!("unknown annotation {key}: did you mean {s}?"),
            )
            .suggesting(&s),
        ),
        KeyClass::UnknownInDomain { suggestion: None } => Some(finding(
            Rule::UnknownAnnotation,
            format!("unknown reloader annotation {key}"),
        )),
        KeyClass::NearMiss { suggestion: None } => Some(finding(
            Rule::NearMissDomain,
            format!("{key} is not a reloader annotation; did you mean the reloader.stakater.com domain?"),
        )),
        KeyClass::Known(spec) => {
            if let Err(error) = check_value(&spec, value) {
                return Some(finding(Rule::InvalidValue, error.to_string()));
            }
            misplaced(&spec, subject, location).map(|m| finding(Rule::Misplaced, m))
        }
    }
}

/// A source a workload's reload list names by a plain object name (so the workload depends on
/// it even before it exists), with the annotation naming it and where that sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedSource {
    pub source: SourceRef,
    pub key: String,
    pub location: Location,
}

/// Every plain name in the workload's reload lists, for every source kind, read as the decision
/// reads them (metadata, or the pod template when the metadata has none of that kind's keys).
pub fn reload_list_names(
    keys: &AnnotationKeys,
    metadata: &BTreeMap<String, String>,
    template: &BTreeMap<String, String>,
) -> Vec<NamedSource> {
    let mut named = Vec::new();
    for kind in SourceKind::ALL {
        let annotations = KindAnnotations::read(keys, kind, metadata, template);
        let location = if annotations.from_template {
            Location::PodTemplate
        } else {
            Location::Metadata
        };
        let policy = super::dependencies::KindPolicy::new(keys, kind, &annotations);
        for name in policy.literal_names() {
            named.push(NamedSource {
                source: SourceRef::new(kind, name),
                key: keys.reload(kind).to_string(),
                location,
            });
        }
    }
    named
}

/// Where a missing source was looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookedIn {
    /// The cluster (the webhook's cache, or the API server).
    Cluster,
    /// The manifests being linted.
    Input,
}

/// What the webhook says about a source a workload depends on that does not exist.
pub fn missing_message(source: &SourceRef) -> String {
    format!(
        "{} {} does not exist yet; reloads on it start when it is created",
        source.kind, source.name
    )
}

/// The warning for a reload-list name that is defined nowhere it was looked for.
pub fn missing_source(named: &NamedSource, looked_in: LookedIn) -> Finding {
    let message = match looked_in {
        LookedIn::Cluster => missing_message(&named.source),
        LookedIn::Input => format!(
            "{} {} is not defined in the input; reloads on it start when it is created",
            named.source.kind, named.source.name
        ),
    };
    Finding::new(Rule::MissingSource, &named.key, named.location, message)
}

/// Whether a workload uses `search` (on its metadata or its pod template).
pub fn uses_search(
    keys: &AnnotationKeys,
    metadata: &BTreeMap<String, String>,
    template: &BTreeMap<String, String>,
) -> bool {
    let search = |m: &BTreeMap<String, String>| is_exact_true(m.get(&keys.search).map(String::as_str));
    search(metadata) || search(template)
}

/// Whether a source carries `match: "true"`.
pub fn marked_match(keys: &AnnotationKeys, annotations: &BTreeMap<String, String>) -> bool {
    is_exact_true(annotations.get(&keys.match_).map(String::as_str))
}

/// The warning for a source marked `match` when no workload in `namespace` uses `search`.
pub fn match_without_search(keys: &AnnotationKeys, namespace: &str) -> Finding {
    Finding::new(
        Rule::MatchWithoutSearch,
        &keys.match_,
        Location::Metadata,
        format!(
            "{} is set but no workload in {namespace} has {}: nothing will reload on it",
            keys.match_, keys.search
        ),
    )
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
        // A Namespace is no subject (the webhook validates none): on the objects that are, a
        // window has the rules of a workload-metadata key.
        (
            Placement::WorkloadMetadata | Placement::WorkloadMetadataOrNamespace,
            Subject::Workload(_),
            Location::Metadata,
        ) => None,
        (
            Placement::WorkloadMetadata | Placement::WorkloadMetadataOrNamespace,
            Subject::Workload(_),
            Location::PodTemplate,
        ) => ignored("a pod template"),
        (Placement::WorkloadMetadata | Placement::WorkloadMetadataOrNamespace, subject, _) => {
            ignored(&format!("a {subject}"))
        }
        (Placement::DeploymentMetadata, Subject::Workload(WorkloadKind::Deployment), Location::Metadata) => None,
        (Placement::DeploymentMetadata, Subject::Workload(WorkloadKind::Deployment), _) => ignored("a pod template"),
        (Placement::DeploymentMetadata, subject, _) => ignored(&format!("a {subject}")),
        (Placement::RestartableMetadata, Subject::Workload(kind), Location::Metadata)
            if kind == WorkloadKind::Rollout || crate::core::pod_restart::restartable(kind) =>
        {
            None
        }
        (Placement::RestartableMetadata, subject, _) => ignored(&format!("a {subject} here")),
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

    fn configmap(metadata: &[(&str, &str)]) -> Vec<Finding> {
        lint(
            &AnnotationKeys::default(),
            Subject::Source(SourceKind::ConfigMap),
            &map(metadata),
            &map(&[]),
        )
    }

    #[test]
    fn windows_and_waves_are_checked() {
        // Good examples pass.
        assert_eq!(
            deployment(
                &[
                    (
                        fixed::RELOAD_WINDOW,
                        "Mon-Fri 02:00-04:00 Europe/Berlin; Sat,Sun 00:00-23:59 UTC"
                    ),
                    (fixed::RELOAD_NOW, "true"),
                    (fixed::FIRST_WAVE, "true"),
                ],
                &[],
            ),
            vec![]
        );
        assert_eq!(configmap(&[(fixed::ROLLOUT_WAVES, "1,10%,100%")]), vec![]);
        // A bad schedule and an empty wave are denied, saying what is wrong.
        let f = deployment(&[(fixed::RELOAD_WINDOW, "Mon-Fri 02:00-02:00")], &[]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec![
                "reloader.stakater.com/reload-window: window \"Mon-Fri 02:00-02:00\": start and end are both 02:00: \
                 an empty window or a whole day? Use 00:00-24:00 for a whole day"
            ]
        );
        assert_eq!(f[0].rule, Rule::InvalidValue);
        let f = deployment(&[(fixed::RELOAD_WINDOW, "weekdays 2am-4am CET")], &[]);
        let denied = messages(&f, Severity::Deny);
        assert!(
            denied[0].contains("\"weekdays\" is not a day")
                && denied[0].contains("expected [DAYS ]HH:MM-HH:MM[ TIMEZONE]"),
            "{denied:?}"
        );
        let f = configmap(&[(fixed::ROLLOUT_WAVES, "0")]);
        assert_eq!(
            messages(&f, Severity::Deny),
            vec![
                "reloader.stakater.com/rollout-waves: wave \"0\" adds nobody: a wave is a count of at least 1 or a \
                 percentage from 1% to 100%"
            ]
        );
        assert_eq!(
            messages(&configmap(&[(fixed::ROLLOUT_WAVES, "1,101%")]), Severity::Deny).len(),
            1
        );
        let f = deployment(&[(fixed::RELOAD_NOW, "yes"), (fixed::FIRST_WAVE, "True")], &[]);
        assert_eq!(messages(&f, Severity::Deny).len(), 2, "{f:?}");
        // Typos are denied with a suggestion.
        let f = deployment(&[("reloader.stakater.com/reload-windows", "22:00-06:00")], &[]);
        assert_eq!(f[0].suggestion.as_deref(), Some(fixed::RELOAD_WINDOW));
        assert_eq!(
            messages(&f, Severity::Deny),
            vec![
                "unknown annotation reloader.stakater.com/reload-windows: did you mean reloader.stakater.com/reload-window?"
            ]
        );
        // reload-now, which rolls at once, is never what a typo is told it meant.
        let f = deployment(&[("reloader.stakater.com/reload", "cfg")], &[]);
        assert_ne!(f[0].suggestion.as_deref(), Some(fixed::RELOAD_NOW), "{f:?}");
        assert_eq!(
            messages(&f, Severity::Deny),
            vec!["unknown reloader annotation reloader.stakater.com/reload"]
        );
    }

    #[test]
    fn windows_and_waves_where_they_are_never_read_warn() {
        let f = deployment(
            &[(fixed::ROLLOUT_WAVES, "10%")],
            &[(fixed::RELOAD_WINDOW, "22:00-06:00"), (fixed::FIRST_WAVE, "true")],
        );
        assert!(messages(&f, Severity::Deny).is_empty(), "{f:?}");
        assert_eq!(
            messages(&f, Severity::Warn),
            vec![
                "reloader.stakater.com/first-wave has no effect on a pod template; it belongs on workload metadata",
                "reloader.stakater.com/reload-window has no effect on a pod template; it belongs on workload metadata \
                 or its Namespace",
                "reloader.stakater.com/rollout-waves has no effect on a Deployment; it belongs on a ConfigMap, Secret or \
                 SecretProviderClass",
            ]
        );
        let f = configmap(&[(fixed::RELOAD_WINDOW, "22:00-06:00"), (fixed::RELOAD_NOW, "true")]);
        assert_eq!(messages(&f, Severity::Warn).len(), 2, "{f:?}");
    }

    #[test]
    fn subjects_follow_the_api_group() {
        assert_eq!(
            Subject::of("apps", "Deployment"),
            Some(Subject::Workload(WorkloadKind::Deployment))
        );
        assert_eq!(Subject::of("extensions", "Deployment"), None);
        assert_eq!(
            Subject::of("argoproj.io", "Rollout"),
            Some(Subject::Workload(WorkloadKind::Rollout))
        );
        assert_eq!(Subject::of("", "Secret"), Some(Subject::Source(SourceKind::Secret)));
        assert_eq!(Subject::of("", "Service"), None);
        assert_eq!(Subject::of("secrets-store.csi.x-k8s.io", "SecretProviderClass"), None);
    }

    #[test]
    fn extra_kinds_are_workloads_checked_at_their_template() {
        let spec = "rules.test.io/v1/App=spec.deploy.podTemplate".parse().unwrap();
        let kind = WorkloadKind::Extra(crate::core::workload::extra::register(&spec).unwrap());
        assert_eq!(Subject::of("rules.test.io", "App"), Some(Subject::Workload(kind)));
        assert_eq!(Subject::of("other.test.io", "App"), None);
        let object = serde_json::json!({
            "metadata": {"annotations": {defaults::PAUSE_PERIOD: "5m"}},
            "spec": {"deploy": {"podTemplate": {"metadata": {"annotations": {"reloader.stakater.com/atuo": "true",
                                                                              defaults::AUTO: true}}}}}
        });
        let findings = lint_object(&AnnotationKeys::default(), Subject::Workload(kind), &object);
        assert_eq!(
            messages(&findings, Severity::Deny),
            [
                "unknown annotation reloader.stakater.com/atuo: did you mean reloader.stakater.com/auto?",
                "reloader.stakater.com/auto: true is a boolean, not a string; quote it (\"true\")"
            ]
        );
        assert_eq!(
            messages(&findings, Severity::Warn),
            ["deployment.reloader.stakater.com/pause-period has no effect on a App; it belongs on Deployment metadata"]
        );
    }

    #[test]
    fn objects_are_linted_where_the_annotations_sit_and_values_must_be_strings() {
        let object = serde_json::json!({
            "metadata": {"annotations": {"reloader.stakater.com/auto": true, "app/port": 8080}},
            "spec": {"template": {"metadata": {"annotations": {
                (fixed::SECRETS_EXCLUDE): "db",
                "reloader.stakater.com/atuo": "true"
            }}}}
        });
        let f = lint_object(
            &AnnotationKeys::default(),
            Subject::Workload(WorkloadKind::Deployment),
            &object,
        );
        let summary: Vec<(Rule, Location, &str)> = f.iter().map(|f| (f.rule, f.location, f.key.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (
                    Rule::UnknownAnnotation,
                    Location::PodTemplate,
                    "reloader.stakater.com/atuo"
                ),
                (Rule::NotAString, Location::Metadata, defaults::AUTO),
                (Rule::Misplaced, Location::PodTemplate, fixed::SECRETS_EXCLUDE),
            ]
        );
        assert_eq!(
            f[1].message,
            "reloader.stakater.com/auto: true is a boolean, not a string; quote it (\"true\")"
        );
        assert_eq!(f[0].suggestion.as_deref(), Some(defaults::AUTO));
    }

    #[test]
    fn reload_list_names_come_from_where_the_decision_reads_them() {
        let keys = AnnotationKeys::default();
        let named = reload_list_names(
            &keys,
            &map(&[(defaults::SECRET_RELOAD, "db, tls-.*")]),
            &map(&[(defaults::CONFIGMAP_RELOAD, "cfg"), (defaults::SECRET_RELOAD, "masked")]),
        );
        assert_eq!(
            named,
            vec![
                NamedSource {
                    source: SourceRef::new(SourceKind::ConfigMap, "cfg"),
                    key: defaults::CONFIGMAP_RELOAD.into(),
                    location: Location::PodTemplate
                },
                NamedSource {
                    source: SourceRef::new(SourceKind::Secret, "db"),
                    key: defaults::SECRET_RELOAD.into(),
                    location: Location::Metadata
                },
            ]
        );
        assert_eq!(
            missing_source(&named[1], LookedIn::Cluster).message,
            "Secret db does not exist yet; reloads on it start when it is created"
        );
        assert_eq!(
            missing_source(&named[0], LookedIn::Input).message,
            "ConfigMap cfg is not defined in the input; reloads on it start when it is created"
        );
        assert!(uses_search(&keys, &map(&[]), &map(&[(defaults::SEARCH, "true")])));
        assert!(!uses_search(&keys, &map(&[(defaults::SEARCH, "True")]), &map(&[])));
        assert!(marked_match(&keys, &map(&[(defaults::MATCH, "true")])));
    }

    #[test]
    fn every_rule_has_a_distinct_id() {
        let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
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
