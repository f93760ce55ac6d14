//! Extra workload kinds (`--extra-workload-kinds`): any namespaced kind with a pod template
//! (OpenKruise CloneSets, Strimzi, Knative Services, in-house CRDs), named as
//! `GROUP/VERSION/KIND[=PATH]`, with `PATH` the dotted path of its pod template
//! (`spec.template` by default).
//!
//! [`WorkloadKind`](super::WorkloadKind) is a `Copy` enum matched everywhere; an extra kind is
//! its variant `Extra(ExtraKind)`, a handle on an entry of a process-wide, append-only registry
//! filled from the flag at start-up ([`register`]). An entry lives as long as the process
//! (its strings are leaked once, bounded by [`REGISTRY_CAPACITY`]), so a handle is a pointer and
//! reading a kind's name or template path takes no lock. Registering the same group and kind
//! again returns the same handle; naming it with another version or template path is an error.
//! The plural is not part of the flag: it comes from discovery, once the kind is served
//! ([`ExtraKind::resolve_plural`]).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::{OnceLock, PoisonError, RwLock};

use thiserror::Error;

use crate::core::names::{MAX_LABEL_LEN, is_dns_label, is_dns_subdomain};

/// The pod template's path when the flag names none.
pub const DEFAULT_TEMPLATE_PATH: &str = "spec.template";

/// Most kinds one flag may name.
pub const MAX_EXTRA_KINDS: usize = 64;

/// Most kinds one process registers (tests register their own beside the flag's).
pub const REGISTRY_CAPACITY: usize = 256;

/// Most segments of a template path.
const MAX_PATH_SEGMENTS: usize = 16;

/// Words CEL reserves: a path segment spelled so cannot be selected by the webhook's match
/// conditions (Kubernetes escapes such field names), so it is refused.
const CEL_RESERVED: [&str; 21] = [
    "as",
    "break",
    "const",
    "continue",
    "else",
    "false",
    "for",
    "function",
    "if",
    "import",
    "in",
    "let",
    "loop",
    "package",
    "namespace",
    "null",
    "return",
    "true",
    "var",
    "void",
    "while",
];

/// Why an extra kind cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ExtraKindError {
    #[error(
        "{item:?} is not GROUP/VERSION/KIND[=PATH] (e.g. apps.kruise.io/v1alpha1/CloneSet, \
         example.com/v1/App=spec.deploy.podTemplate)"
    )]
    Shape { item: String },
    #[error("{item:?}: the group {group:?} is not a lower-case DNS subdomain (e.g. apps.kruise.io)")]
    Group { item: String, group: String },
    #[error("{item:?}: the version {version:?} is not a lower-case DNS label (e.g. v1alpha1)")]
    Version { item: String, version: String },
    #[error("{item:?}: the kind {kind:?} is not a kind name (a letter, then letters and digits, e.g. CloneSet)")]
    Kind { item: String, kind: String },
    #[error("{item:?}: the template path {path:?} {reason}")]
    Path {
        item: String,
        path: String,
        reason: &'static str,
    },
    #[error("{item:?}: {kind} of {group} is built in; it needs no flag")]
    BuiltIn { item: String, group: String, kind: String },
    #[error("{kind} of {group} is named twice, as {first:?} and as {second:?}")]
    Conflict {
        group: String,
        kind: String,
        first: String,
        second: String,
    },
    #[error("more than {MAX_EXTRA_KINDS} kinds")]
    TooMany,
    #[error("no room for more extra kinds in this process ({REGISTRY_CAPACITY})")]
    Full,
}

/// One extra kind as the flag names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtraKindSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The pod template's path, one field name per segment (`["spec", "template"]`).
    pub template_path: Vec<String>,
}

impl ExtraKindSpec {
    /// The template path, dotted (`spec.template`).
    pub fn dotted_path(&self) -> String {
        self.template_path.join(".")
    }

    /// `group/version`, the objects' `apiVersion`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

impl fmt::Display for ExtraKindSpec {
    /// As the flag takes it, the path written out only when it is not the default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.version, self.kind)?;
        let path = self.dotted_path();
        if path != DEFAULT_TEMPLATE_PATH {
            write!(f, "={path}")?;
        }
        Ok(())
    }
}

impl FromStr for ExtraKindSpec {
    type Err = ExtraKindError;

    /// One item: `GROUP/VERSION/KIND[=PATH]`, surrounding spaces ignored.
    fn from_str(text: &str) -> Result<Self, ExtraKindError> {
        let item = text.trim();
        let owned = || item.to_string();
        let (gvk, path) = match item.split_once('=') {
            Some((gvk, path)) => (gvk.trim(), Some(path.trim())),
            None => (item, None),
        };
        let parts: Vec<&str> = gvk.split('/').collect();
        let [group, version, kind] = parts[..] else {
            return Err(ExtraKindError::Shape { item: owned() });
        };
        if group.is_empty() || !is_dns_subdomain(group) {
            return Err(ExtraKindError::Group {
                item: owned(),
                group: group.into(),
            });
        }
        if !is_dns_label(version) {
            return Err(ExtraKindError::Version {
                item: owned(),
                version: version.into(),
            });
        }
        if !is_kind_name(kind) {
            return Err(ExtraKindError::Kind {
                item: owned(),
                kind: kind.into(),
            });
        }
        let template_path =
            parse_path(path.unwrap_or(DEFAULT_TEMPLATE_PATH)).map_err(|reason| ExtraKindError::Path {
                item: owned(),
                path: path.unwrap_or_default().into(),
                reason,
            })?;
        if super::WorkloadKind::ALL
            .iter()
            .any(|k| k.resource().0 == group && k.as_str() == kind)
        {
            return Err(ExtraKindError::BuiltIn {
                item: owned(),
                group: group.into(),
                kind: kind.into(),
            });
        }
        Ok(Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            template_path,
        })
    }
}

/// A kind name as the API spells kinds: a letter, then letters and digits (`CloneSet`).
fn is_kind_name(kind: &str) -> bool {
    kind.len() <= MAX_LABEL_LEN
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A dotted template path: field names that are CEL identifiers (letters, digits and `_`, not
/// starting with a digit, not a reserved word), never under `metadata` or `status`.
fn parse_path(path: &str) -> Result<Vec<String>, &'static str> {
    if path.is_empty() {
        return Err("is empty (leave out `=` for spec.template)");
    }
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() > MAX_PATH_SEGMENTS {
        return Err("has more than 16 fields");
    }
    for segment in &segments {
        let identifier = segment.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && segment.len() <= MAX_LABEL_LEN;
        if !identifier {
            return Err("is not dotted field names (letters, digits and '_', e.g. spec.deploy.podTemplate)");
        }
        if CEL_RESERVED.contains(segment) {
            return Err("has a field named as a CEL reserved word, which the webhook's conditions cannot select");
        }
    }
    if matches!(segments[0], "metadata" | "status") {
        return Err("is under metadata or status, where no pod template is written");
    }
    Ok(segments.into_iter().map(str::to_string).collect())
}

/// The flag's value: comma-separated items, empty ones skipped, the same kind named twice
/// alike kept once; the same group and kind with another version or path is an error.
pub fn parse_list(value: &str) -> Result<Vec<ExtraKindSpec>, ExtraKindError> {
    let mut specs: Vec<ExtraKindSpec> = Vec::new();
    for item in value.split(',').filter(|item| !item.trim().is_empty()) {
        let spec: ExtraKindSpec = item.parse()?;
        match specs.iter().find(|s| s.group == spec.group && s.kind == spec.kind) {
            Some(same) if *same == spec => {}
            Some(other) => {
                return Err(ExtraKindError::Conflict {
                    group: spec.group.clone(),
                    kind: spec.kind.clone(),
                    first: other.to_string(),
                    second: spec.to_string(),
                });
            }
            None if specs.len() == MAX_EXTRA_KINDS => return Err(ExtraKindError::TooMany),
            None => specs.push(spec),
        }
    }
    Ok(specs)
}

/// A registered extra kind: what the flag said, and what the process learnt since (its plural).
pub struct ExtraKindEntry {
    index: u32,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    /// The kind, or `Kind.group` when a built-in kind or an earlier extra one has its name.
    name: &'static str,
    /// The kind in lower case, as kubectl accepts it (`cloneset/web`).
    short: &'static str,
    /// JSON pointer of the pod template (`/spec/template`).
    pointer: &'static str,
    /// The template path, dotted.
    path: &'static str,
}

/// A handle on a registered extra kind; equal, ordered and hashed by registration order.
#[derive(Clone, Copy)]
pub struct ExtraKind(&'static ExtraKindEntry);

impl PartialEq for ExtraKind {
    fn eq(&self, other: &Self) -> bool {
        self.0.index == other.0.index
    }
}

impl Eq for ExtraKind {}

impl Hash for ExtraKind {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.index.hash(state);
    }
}

impl PartialOrd for ExtraKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExtraKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.index.cmp(&other.0.index)
    }
}

impl fmt::Debug for ExtraKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.0.group, self.0.version, self.0.kind)
    }
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

static REGISTRY: RwLock<Vec<ExtraKind>> = RwLock::new(Vec::new());

/// Each registered kind's plural, by its index, once discovery found it: apart from the entry,
/// so a handle holds nothing mutable (it is a map key everywhere).
static PLURALS: [OnceLock<&'static str>; REGISTRY_CAPACITY] = [const { OnceLock::new() }; REGISTRY_CAPACITY];

/// Registers `spec` (or finds it registered) and returns its handle.
pub fn register(spec: &ExtraKindSpec) -> Result<ExtraKind, ExtraKindError> {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = registry
        .iter()
        .find(|k| k.0.group == spec.group && k.0.kind == spec.kind)
    {
        if found.0.version == spec.version && found.0.path == spec.dotted_path() {
            return Ok(*found);
        }
        return Err(ExtraKindError::Conflict {
            group: spec.group.clone(),
            kind: spec.kind.clone(),
            first: found.spec().to_string(),
            second: spec.to_string(),
        });
    }
    if registry.len() >= REGISTRY_CAPACITY {
        return Err(ExtraKindError::Full);
    }
    let taken = super::WorkloadKind::ALL.iter().any(|k| k.as_str() == spec.kind)
        || registry.iter().any(|k| k.0.kind == spec.kind);
    let name = if taken {
        format!("{}.{}", spec.kind, spec.group)
    } else {
        spec.kind.clone()
    };
    let pointer: String = spec.template_path.iter().map(|s| format!("/{s}")).collect();
    let entry = ExtraKindEntry {
        index: u32::try_from(registry.len()).map_err(|_| ExtraKindError::Full)?,
        group: leak(spec.group.clone()),
        version: leak(spec.version.clone()),
        kind: leak(spec.kind.clone()),
        name: leak(name),
        short: leak(spec.kind.to_ascii_lowercase()),
        pointer: leak(pointer),
        path: leak(spec.dotted_path()),
    };
    let kind = ExtraKind(Box::leak(Box::new(entry)));
    registry.push(kind);
    Ok(kind)
}

/// What the webhook's review parser keeps of a field of a workload's `spec` that no built-in
/// kind's template is under (it skips those): see [`spec_field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecField {
    /// An extra kind's pod template (`spec.<field>`): read as a template.
    Template,
    /// Holds an extra kind's pod template deeper down (`spec.<field>.…`): kept whole.
    Holds,
}

/// Whether `spec.<field>` is, or holds, the pod template of a registered extra kind.
pub fn spec_field(field: &str) -> Option<SpecField> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut found = None;
    for kind in registry.iter() {
        let Some(rest) = kind.0.path.strip_prefix("spec.") else {
            continue;
        };
        match rest.split_once('.') {
            Some((first, _)) if first == field => return Some(SpecField::Holds),
            None if rest == field => found = Some(SpecField::Template),
            _ => {}
        }
    }
    found
}

/// Registers every kind of the flag, in its order.
pub fn register_all(specs: &[ExtraKindSpec]) -> Result<Vec<ExtraKind>, ExtraKindError> {
    specs.iter().map(register).collect()
}

impl ExtraKind {
    /// The registered kind of API `group` named `kind`, if any.
    pub fn find(group: &str, kind: &str) -> Option<Self> {
        let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        registry
            .iter()
            .find(|k| k.0.group == group && k.0.kind == kind)
            .copied()
    }

    pub fn group(self) -> &'static str {
        self.0.group
    }

    pub fn version(self) -> &'static str {
        self.0.version
    }

    /// The API kind (`CloneSet`).
    pub fn kind(self) -> &'static str {
        self.0.kind
    }

    /// How it is named in logs, Events and metrics: its kind, or `Kind.group` when a built-in
    /// kind or one registered earlier has that name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The kind in lower case (`cloneset`), as kubectl accepts it.
    pub fn short(self) -> &'static str {
        self.0.short
    }

    /// JSON pointer of the pod template.
    pub fn template_pointer(self) -> &'static str {
        self.0.pointer
    }

    /// The template path, dotted.
    pub fn template_path(self) -> &'static str {
        self.0.path
    }

    /// The resource's plural, once discovery found it.
    pub fn plural(self) -> Option<&'static str> {
        self.plural_slot()?.get().copied()
    }

    fn plural_slot(self) -> Option<&'static OnceLock<&'static str>> {
        PLURALS.get(usize::try_from(self.0.index).ok()?)
    }

    /// Records the plural discovery found. The first one found stays (a kind's plural is its
    /// CRD's name and cannot change while it is served); returns whether `plural` is it.
    pub fn resolve_plural(self, plural: &str) -> bool {
        self.plural_slot()
            .is_some_and(|slot| *slot.get_or_init(|| leak(plural.to_string())) == plural)
    }

    /// What the flag said of it.
    pub fn spec(self) -> ExtraKindSpec {
        ExtraKindSpec {
            group: self.0.group.into(),
            version: self.0.version.into(),
            kind: self.0.kind.into(),
            template_path: self.0.path.split('.').map(str::to_string).collect(),
        }
    }

    /// The webhook's CEL selection of the pod template's annotations
    /// (`spec.?deploy.?podTemplate.?metadata.?annotations`).
    pub fn cel_template_annotations(self) -> String {
        format!("{}.?metadata.?annotations", self.0.path.replace('.', ".?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ExtraKindSpec {
        text.parse().unwrap()
    }

    #[test]
    fn items_parse_with_the_default_or_a_given_path() {
        let s = spec(" apps.kruise.io/v1alpha1/CloneSet ");
        assert_eq!(
            (s.group.as_str(), s.version.as_str(), s.kind.as_str()),
            ("apps.kruise.io", "v1alpha1", "CloneSet")
        );
        assert_eq!(s.template_path, ["spec", "template"]);
        assert_eq!(s.to_string(), "apps.kruise.io/v1alpha1/CloneSet");
        let s = spec("example.com/v1/App = spec.deploy.podTemplate");
        assert_eq!(s.dotted_path(), "spec.deploy.podTemplate");
        assert_eq!(s.to_string(), "example.com/v1/App=spec.deploy.podTemplate");
        assert_eq!(s.api_version(), "example.com/v1");
        // A non-dotted group is a group too (a kind of a built-in group the reloader does not roll).
        assert_eq!(spec("apps/v1/ReplicaSet").group, "apps");
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        for (text, expected) in [
            ("CloneSet", "is not GROUP/VERSION/KIND[=PATH]"),
            ("apps.kruise.io/CloneSet", "is not GROUP/VERSION/KIND[=PATH]"),
            ("a/b/c/D", "is not GROUP/VERSION/KIND[=PATH]"),
            ("/v1/CloneSet", "the group \"\" is not"),
            ("Apps.Kruise.io/v1/CloneSet", "the group \"Apps.Kruise.io\" is not"),
            ("apps.kruise.io/V1/CloneSet", "the version \"V1\" is not"),
            ("apps.kruise.io//CloneSet", "the version \"\" is not"),
            (
                "apps.kruise.io/v1/Clone-Set",
                "the kind \"Clone-Set\" is not a kind name",
            ),
            ("apps.kruise.io/v1/1Set", "the kind \"1Set\" is not"),
            ("apps.kruise.io/v1/", "the kind \"\" is not"),
            ("x.io/v1/App=", "the template path \"\" is empty"),
            ("x.io/v1/App=spec..template", "is not dotted field names"),
            ("x.io/v1/App=spec/template", "is not dotted field names"),
            ("x.io/v1/App=spec.pod-template", "is not dotted field names"),
            ("x.io/v1/App=spec.1template", "is not dotted field names"),
            ("x.io/v1/App=spec.namespace.template", "CEL reserved word"),
            ("x.io/v1/App=metadata.template", "is under metadata or status"),
            ("x.io/v1/App=status", "is under metadata or status"),
            ("x.io/v1/App=a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", "more than 16 fields"),
            ("apps/v1/Deployment", "Deployment of apps is built in"),
            ("argoproj.io/v1alpha1/Rollout", "Rollout of argoproj.io is built in"),
        ] {
            let error = text.parse::<ExtraKindSpec>().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn lists_skip_blanks_and_refuse_conflicts() {
        let list = parse_list("a.io/v1/A, ,b.io/v2/B=spec.x.template,a.io/v1/A=spec.template,").unwrap();
        assert_eq!(list.len(), 2, "the same kind alike once; {list:?}");
        assert!(parse_list("").unwrap().is_empty());
        let error = parse_list("a.io/v1/A,a.io/v2/A").unwrap_err();
        assert_eq!(
            error.to_string(),
            "A of a.io is named twice, as \"a.io/v1/A\" and as \"a.io/v2/A\""
        );
        assert!(matches!(
            parse_list("a.io/v1/A,a.io/v1/A=spec.other"),
            Err(ExtraKindError::Conflict { .. })
        ));
        let many: Vec<String> = (0..=MAX_EXTRA_KINDS).map(|i| format!("x.io/v1/K{i}")).collect();
        assert_eq!(parse_list(&many.join(",")), Err(ExtraKindError::TooMany));
        assert!(matches!(
            parse_list("a.io/v1/A,nonsense"),
            Err(ExtraKindError::Shape { .. })
        ));
    }

    #[test]
    fn the_registry_hands_out_one_handle_per_kind() {
        let a = register(&spec("registry.test.io/v1/Widget=spec.deploy.podTemplate")).unwrap();
        let again = register(&spec("registry.test.io/v1/Widget = spec.deploy.podTemplate")).unwrap();
        assert_eq!(a, again);
        assert_eq!(ExtraKind::find("registry.test.io", "Widget"), Some(a));
        assert_eq!(ExtraKind::find("other.test.io", "Widget"), None);
        assert_eq!(a.template_pointer(), "/spec/deploy/podTemplate");
        assert_eq!(a.template_path(), "spec.deploy.podTemplate");
        assert_eq!(
            a.cel_template_annotations(),
            "spec.?deploy.?podTemplate.?metadata.?annotations"
        );
        assert_eq!((a.name(), a.short()), ("Widget", "widget"));
        assert_eq!(a.spec(), spec("registry.test.io/v1/Widget=spec.deploy.podTemplate"));
        assert_eq!(format!("{a:?}"), "registry.test.io/v1/Widget");
        // Another version or path of a registered kind is refused.
        assert!(matches!(
            register(&spec("registry.test.io/v2/Widget=spec.deploy.podTemplate")),
            Err(ExtraKindError::Conflict { .. })
        ));
        assert!(matches!(
            register(&spec("registry.test.io/v1/Widget")),
            Err(ExtraKindError::Conflict { .. })
        ));
        // A name a built-in kind or an earlier extra kind has is qualified by the group.
        let sts = register(&spec("registry-kruise.test.io/v1beta1/StatefulSet")).unwrap();
        assert_eq!(sts.name(), "StatefulSet.registry-kruise.test.io");
        assert_eq!(super::super::WorkloadKind::Extra(sts).api_kind(), "StatefulSet");
        let other = register(&spec("registry-other.test.io/v1/Widget")).unwrap();
        assert_eq!(other.name(), "Widget.registry-other.test.io");
        assert!(a < other, "ordered by registration");

        // What the webhook's parser keeps of a spec.
        assert_eq!(spec_field("deploy"), Some(SpecField::Holds));
        assert_eq!(spec_field("podTemplate"), None);
        register(&spec("registry.test.io/v1/Direct=spec.podTemplate")).unwrap();
        assert_eq!(spec_field("podTemplate"), Some(SpecField::Template));
        assert_eq!(spec_field("replicas"), None);

        // The plural: unknown until discovery says, then kept.
        let p = register(&spec("registry.test.io/v1/Plural")).unwrap();
        assert_eq!(p.plural(), None);
        assert!(p.resolve_plural("plurals"));
        assert!(!p.resolve_plural("others"), "the first plural stays");
        assert_eq!(p.plural(), Some("plurals"));
    }
}
