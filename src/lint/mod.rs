//! `reloader lint`: the validating webhook's judgement on manifests before they are applied,
//! with no cluster needed. Every object is checked with [`crate::core::annotation_rules`] (the function the
//! webhook calls), and the cross-reference rules run against the input itself (a reload list
//! naming a ConfigMap or Secret the input does not define) or, given a cluster, against the
//! input and the cluster. This module only finds the objects, positions the findings, and
//! reports; it has no rule of its own.
//!
//! [`analyse`] reads the inputs; [`Analysis::finish`] resolves the cross references (with the
//! sources found in a cluster, if one was asked); [`output`] renders the [`Report`].

pub mod inputs;
pub mod output;

use crate::core::json::JsonAt;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::core::annotation_rules::{
    Finding, Location, LookedIn, NamedSource, Rule, Severity, Subject, lint_object, marked_match, match_without_search,
    missing_source, reload_list_names, uses_search,
};
use crate::core::source::{SourceKind, SourceRef};
use crate::core::vocabulary::AnnotationKeys;
use crate::core::workload::{Workload, string_map};
use crate::manifests::{Document, Position, escape, parse};

/// One input: a file, or stdin.
#[derive(Clone, Debug)]
pub struct Input {
    /// As shown in reports: the path as given, or `<stdin>`.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The name stdin is reported under.
pub const STDIN: &str = "<stdin>";

#[derive(Clone, Debug)]
pub struct LintOptions {
    /// The annotation keys, as the reloader's flags name them.
    pub annotations: AnnotationKeys,
    /// The namespace of objects that name none (what `kubectl apply -n` would use).
    pub namespace: String,
    /// Warnings are errors.
    pub strict: bool,
}

/// How bad a problem is, in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// The object a problem is on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One finding, where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based index of the document in its file.
    pub document: usize,
    #[serde(flatten)]
    pub at: Option<Position>,
    pub level: Level,
    pub rule: Rule,
    /// The annotation it is about.
    pub key: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    pub object: ObjectRef,
}

/// Input that could not be used (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    #[serde(flatten)]
    pub at: Option<Position>,
    pub message: String,
}

/// Everything `lint` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub files: usize,
    pub documents: usize,
    /// Objects whose annotations were checked (workloads, ConfigMaps, Secrets).
    pub objects: usize,
    pub problems: Vec<Problem>,
    pub input_errors: Vec<InputError>,
    /// The files in the order they were read (reports follow it).
    #[serde(skip)]
    pub file_order: Vec<String>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.level == Level::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.iter().filter(|p| p.level == Level::Warning).count()
    }

    /// 0 clean (warnings allowed), 1 errors, 2 unusable input (even with errors besides: the
    /// result is incomplete).
    pub fn exit_code(&self) -> u8 {
        if !self.input_errors.is_empty() {
            2
        } else if self.errors() > 0 {
            1
        } else {
            0
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// Where a finding about an object goes: file, document, object.
#[derive(Clone, Debug)]
struct Place {
    file: usize,
    document: usize,
    /// JSON pointer of the object in its document.
    pointer: String,
    object: ObjectRef,
    subject: Subject,
}

/// The inputs read and checked object by object, with what the cross references need.
#[derive(Debug, Default)]
pub struct Analysis {
    files: Vec<String>,
    documents: Vec<Vec<Document>>,
    report: Report,
    strict: bool,
    annotations: AnnotationKeys,
    /// Sources the input defines, by namespace.
    defined: BTreeSet<(String, SourceRef)>,
    /// Reload-list names of the workloads, by namespace.
    named: Vec<(Place, NamedSource)>,
    /// Namespaces where some workload of the input uses `search`.
    searching: BTreeSet<String>,
    /// Sources marked `match`.
    matched: Vec<Place>,
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.at(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Reads and checks every input.
pub fn analyse(inputs: Vec<Input>, options: &LintOptions) -> Analysis {
    let mut analysis = Analysis {
        strict: options.strict,
        annotations: options.annotations.clone(),
        ..Default::default()
    };
    for input in inputs {
        let file = analysis.files.len();
        let (documents, errors) = parse(&input.bytes);
        analysis.report.files += 1;
        analysis.report.documents += documents.len() + errors.len();
        for error in errors {
            analysis.report.input_errors.push(InputError {
                file: input.name.clone(),
                document: Some(error.document),
                at: error.at,
                message: format!("document {} is not valid YAML: {}", error.document, error.message),
            });
        }
        let objects: Vec<(usize, Value, String)> = documents
            .iter()
            .flat_map(|d| {
                d.objects()
                    .into_iter()
                    .map(|(value, pointer)| (d.index, value, pointer))
            })
            .collect();
        analysis.files.push(input.name);
        analysis.documents.push(documents);
        for (document, object, pointer) in objects {
            analysis.object(file, document, &object, pointer, options);
        }
    }
    analysis
}

impl Analysis {
    fn object(&mut self, file: usize, document: usize, object: &Value, pointer: String, options: &LintOptions) {
        let api_version = str_at(object, "/apiVersion");
        let kind = str_at(object, "/kind");
        let namespace = match str_at(object, "/metadata/namespace") {
            "" => options.namespace.clone(),
            ns => ns.to_string(),
        };
        let object_ref = ObjectRef {
            kind: kind.to_string(),
            name: str_at(object, "/metadata/name").to_string(),
            namespace: namespace.clone(),
        };
        let group = group_of(api_version);
        if let Some(source) = defined_source(group, kind, &object_ref.name) {
            self.defined.insert((namespace.clone(), source));
        }
        let Some(subject) = Subject::of(group, kind) else {
            if !object.is_object() {
                let at = self
                    .documents_of(file, document)
                    .and_then(|d| d.nearest_position(&pointer));
                self.report.input_errors.push(InputError {
                    file: self.files.get(file).cloned().unwrap_or_default(),
                    document: Some(document),
                    at,
                    message: format!("document {document} is not a Kubernetes object (not a mapping)"),
                });
            }
            return;
        };
        self.report.objects += 1;
        let place = Place {
            file,
            document,
            pointer,
            object: object_ref,
            subject,
        };
        for finding in lint_object(&self.annotations, subject, object) {
            self.push(&place, finding);
        }
        match subject {
            Subject::Workload(kind) => {
                let workload = Workload::new(kind, object);
                let metadata = workload.annotations();
                let template = workload.template_annotations().unwrap_or_default();
                if uses_search(&self.annotations, &metadata, &template) {
                    self.searching.insert(namespace);
                }
                for named in reload_list_names(&self.annotations, &metadata, &template) {
                    // Only ConfigMaps and Secrets are manifests one can define next to a workload.
                    if named.source.kind != SourceKind::SecretProviderClass {
                        self.named.push((place.clone(), named));
                    }
                }
            }
            Subject::Source(_) => {
                if marked_match(&self.annotations, &string_map(object.at("/metadata/annotations"))) {
                    self.matched.push(place);
                }
            }
        }
    }

    /// Adds inputs that could not be read at all.
    pub fn add_input_errors(&mut self, errors: Vec<InputError>) {
        self.report.input_errors.extend(errors);
    }

    fn push(&mut self, place: &Place, finding: Finding) {
        let pointer = annotation_pointer(place, &finding);
        let at = self
            .documents_of(place.file, place.document)
            .and_then(|d| d.nearest_position(&pointer));
        let level = match (finding.severity, self.strict) {
            (Severity::Deny, _) | (Severity::Warn, true) => Level::Error,
            (Severity::Warn, false) => Level::Warning,
        };
        let file = self.files.get(place.file).cloned().unwrap_or_default();
        self.report.problems.push(Problem {
            file,
            document: place.document,
            at,
            level,
            rule: finding.rule,
            key: finding.key,
            message: finding.message,
            suggestion: finding.suggestion,
            object: place.object.clone(),
        });
    }

    fn documents_of(&self, file: usize, index: usize) -> Option<&Document> {
        self.documents.get(file)?.iter().find(|d| d.index == index)
    }

    /// The ConfigMaps and Secrets the input's reload lists name that the input does not
    /// define, by namespace: what to ask a cluster about.
    pub fn undefined_sources(&self) -> BTreeSet<(String, SourceRef)> {
        self.named
            .iter()
            .map(|(place, named)| (place.object.namespace.clone(), named.source.clone()))
            .filter(|key| !self.defined.contains(key))
            .collect()
    }

    /// The report, with the cross references resolved: against the input alone (`cluster` is
    /// `None`), or against the input and the sources `cluster` found (in the namespaces of
    /// [`Analysis::undefined_sources`]).
    pub fn finish(mut self, cluster: Option<&BTreeSet<(String, SourceRef)>>) -> Report {
        let looked_in = if cluster.is_some() {
            LookedIn::Cluster
        } else {
            LookedIn::Input
        };
        let named = std::mem::take(&mut self.named);
        for (place, source) in named {
            let key = (place.object.namespace.clone(), source.source.clone());
            let exists = self.defined.contains(&key) || cluster.is_some_and(|found| found.contains(&key));
            if !exists {
                self.push(&place, missing_source(&source, looked_in));
            }
        }
        let matched = std::mem::take(&mut self.matched);
        for place in matched {
            if !self.searching.contains(&place.object.namespace) {
                let finding = match_without_search(&self.annotations, &place.object.namespace);
                self.push(&place, finding);
            }
        }
        let order: BTreeMap<&str, usize> = self.files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
        let rank = |file: &str| order.get(file).copied().unwrap_or(usize::MAX);
        self.report.problems.sort_by(|a, b| {
            (rank(&a.file), a.document, a.at, a.level, a.rule, &a.message).cmp(&(
                rank(&b.file),
                b.document,
                b.at,
                b.level,
                b.rule,
                &b.message,
            ))
        });
        self.report.input_errors.sort_by(|a, b| {
            (rank(&a.file), a.document, a.at, &a.message).cmp(&(rank(&b.file), b.document, b.at, &b.message))
        });
        self.report.file_order = self.files.clone();
        self.report
    }
}

/// The source an object defines, if it is one a reload list can name.
fn defined_source(group: &str, kind: &str, name: &str) -> Option<SourceRef> {
    let kind = match (group, kind) {
        ("", "ConfigMap") => SourceKind::ConfigMap,
        ("", "Secret") => SourceKind::Secret,
        _ => return None,
    };
    Some(SourceRef::new(kind, name))
}

/// JSON pointer of the annotation a finding is about, within its document.
fn annotation_pointer(place: &Place, finding: &Finding) -> String {
    let annotations = match (finding.location, place.subject) {
        (Location::PodTemplate, Subject::Workload(kind)) => format!("{}/metadata/annotations", kind.template_pointer()),
        _ => "/metadata/annotations".to_string(),
    };
    format!("{}{annotations}/{}", place.pointer, escape(&finding.key))
}

/// Which of `wanted` exist in a cluster, as the engine sees them (its label selector and
/// Secret-type filters applied).
pub async fn existing_in_cluster(
    lookup: &crate::admission::lookup::SourceLookup,
    wanted: &BTreeSet<(String, SourceRef)>,
) -> Result<BTreeSet<(String, SourceRef)>, kube::Error> {
    let mut found = BTreeSet::new();
    for (namespace, source) in wanted {
        if lookup.get(namespace, source).await?.is_some() {
            found.insert((namespace.clone(), source.clone()));
        }
    }
    Ok(found)
}

/// Lints inputs with no cluster: [`analyse`] then [`Analysis::finish`] against the input.
pub fn lint(inputs: Vec<Input>, options: &LintOptions) -> Report {
    analyse(inputs, options).finish(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vocabulary::defaults;

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn options() -> LintOptions {
        LintOptions {
            annotations: AnnotationKeys::default(),
            namespace: "default".into(),
            strict: false,
        }
    }

    const APP: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations:
    reloader.stakater.com/atuo: \"true\"
    secret.reloader.stakater.com/reload: db
spec:
  template:
    metadata:
      annotations:
        reloader.stakater.com/match: \"true\"
    spec:
      containers: [{name: app}]
";

    #[test]
    fn findings_are_positioned_on_their_annotation() {
        let report = lint(vec![input("app.yaml", APP)], &options());
        let lines: Vec<(u64, Level, Rule)> = report
            .problems
            .iter()
            .map(|p| (p.at.unwrap().line, p.level, p.rule))
            .collect();
        assert_eq!(
            lines,
            vec![
                (6, Level::Error, Rule::UnknownAnnotation),
                (7, Level::Warning, Rule::MissingSource),
                (12, Level::Warning, Rule::Misplaced),
            ]
        );
        assert_eq!(report.exit_code(), 1);
        assert_eq!(report.problems[0].object.to_string(), "Deployment default/app");
        assert_eq!(report.problems[0].suggestion.as_deref(), Some(defaults::AUTO));
    }

    #[test]
    fn a_source_defined_anywhere_in_the_input_satisfies_a_reload_list() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n";
        let report = lint(vec![input("app.yaml", APP), input("db.yaml", secret)], &options());
        assert!(report.problems.iter().all(|p| p.rule != Rule::MissingSource));
        let elsewhere = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: other}\n";
        let report = lint(vec![input("app.yaml", APP), input("db.yaml", elsewhere)], &options());
        assert!(report.problems.iter().any(|p| p.rule == Rule::MissingSource));
    }

    #[test]
    fn cluster_sources_count_and_the_message_is_the_webhooks() {
        let analysis = analyse(vec![input("app.yaml", APP)], &options());
        let wanted = analysis.undefined_sources();
        assert_eq!(
            wanted,
            [("default".to_string(), SourceRef::new(SourceKind::Secret, "db"))].into()
        );
        let report = analyse(vec![input("app.yaml", APP)], &options()).finish(Some(&BTreeSet::new()));
        let missing = report.problems.iter().find(|p| p.rule == Rule::MissingSource).unwrap();
        assert_eq!(
            missing.message,
            "Secret db does not exist yet; reloads on it start when it is created"
        );
        let report = analysis.finish(Some(&wanted));
        assert!(report.problems.iter().all(|p| p.rule != Rule::MissingSource));
    }

    #[test]
    fn strict_makes_warnings_errors() {
        let clean = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  annotations: {secret.reloader.stakater.com/reload: nowhere}\nspec: {template: {spec: {containers: [{name: a}]}}}\n";
        let report = lint(vec![input("a.yaml", clean)], &options());
        assert_eq!((report.errors(), report.warnings(), report.exit_code()), (0, 1, 0));
        let strict = LintOptions {
            strict: true,
            ..options()
        };
        let report = lint(vec![input("a.yaml", clean)], &strict);
        assert_eq!((report.errors(), report.warnings(), report.exit_code()), (1, 0, 1));
    }

    #[test]
    fn broken_input_exits_2_and_the_rest_is_still_checked() {
        let report = lint(
            vec![input("broken.yaml", "kind: [\n"), input("app.yaml", APP)],
            &options(),
        );
        assert_eq!(report.exit_code(), 2);
        assert_eq!(report.input_errors.len(), 1);
        assert_eq!(report.input_errors[0].file, "broken.yaml");
        assert!(report.problems.iter().any(|p| p.file == "app.yaml"));
        let scalar = lint(vec![input("s.yaml", "just a string\n")], &options());
        assert_eq!(scalar.exit_code(), 2, "{scalar:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the bytes, a report and an exit status; never a panic.
        #[test]
        fn any_bytes_give_a_report(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let report = lint(vec![Input { name: "x".into(), bytes }], &options());
            proptest::prop_assert!(report.exit_code() <= 2);
        }

        /// A real manifest with a few bytes changed: positioned problems, or positioned errors.
        #[test]
        fn damaged_manifests_give_positioned_reports(
            edits in proptest::collection::vec((0..APP.len(), proptest::sample::select(b" :-{}[]\"'\n\t&*!|>#xy0".to_vec())), 1..6)
        ) {
            let mut bytes = APP.as_bytes().to_vec();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            let report = lint(vec![Input { name: "x".into(), bytes }], &options());
            for e in &report.input_errors {
                proptest::prop_assert!(e.at.is_some(), "{e:?}");
            }
        }
    }

    #[test]
    fn lists_and_other_objects() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n    annotations: {reloader.stakater.com/auto: \"true\"}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, annotations: {reloader.stakater.com/atuo: x}}\n";
        let report = lint(vec![input("list.yaml", list)], &options());
        assert_eq!(report.objects, 1, "the Service is not checked, as by the webhook");
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].rule, Rule::Misplaced);
        assert_eq!(report.problems[0].at.unwrap().line, 8);
    }
}
