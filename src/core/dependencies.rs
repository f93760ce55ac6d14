//! The reload decision: whether a workload reloads on a source, and why (Stakater's
//! `ShouldReload`, `pkg/common/common.go`), and the complete set of sources a workload depends on
//! given every source in its namespace, for a level-triggered engine.

use std::collections::{BTreeMap, BTreeSet};

use super::per_key::KeySet;
use super::references::{Reference, first_container, keys_read, references};
use super::source::{SourceKind, SourceRef, SourceView};
use super::vocabulary::{
    AnnotationKeys, NameRegexList, ValueError, fixed, is_exact_true, parse_go_bool, parse_name_list,
    parse_name_regex_list, parse_switch,
};
use super::workload::{Workload, WorkloadError, WorkloadKind};

/// The options of the decision that come from flags.
#[derive(Clone, Debug, Default)]
pub struct DependencyOptions {
    pub annotations: AnnotationKeys,
    /// `--auto-reload-all`.
    pub auto_reload_all: bool,
    /// `--ignored-workload-types` (only Job and CronJob can be ignored).
    pub ignored_workload_kinds: BTreeSet<WorkloadKind>,
    /// `--resources-to-ignore`.
    pub ignored_source_kinds: BTreeSet<SourceKind>,
    /// `--per-key-reloads`: per-key reloads for workloads whose `reloader.stakater.com/per-key`
    /// does not say.
    pub per_key_reloads: bool,
}

/// Why a workload reloads on a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The source matched an item of the workload's reload list (Stakater: autoReload=false).
    Named { pattern: String },
    /// `search: "true"` on the workload, `match: "true"` on the source.
    SearchMatch,
    /// `reloader.stakater.com/auto` is true.
    Auto,
    /// The typed auto key for this source kind is true.
    TypedAuto,
    /// `--auto-reload-all`, with neither auto key set.
    AutoReloadAll,
}

impl Trigger {
    /// Auto-style triggers reload only on sources the pod template actually uses.
    pub fn needs_reference(&self) -> bool {
        !matches!(self, Trigger::Named { .. })
    }
}

/// The annotations the decision reads, for one source kind, after Stakater's fallback: if the
/// workload metadata has none of {reload, auto, typed auto, search} for this kind, all four are
/// read from the pod template instead. Exclude lists always come from the workload metadata.
#[derive(Clone, Debug, Default)]
pub struct KindAnnotations {
    pub reload: Option<String>,
    pub auto: Option<String>,
    pub typed_auto: Option<String>,
    pub search: Option<String>,
    pub exclude: Option<String>,
    /// The decision keys came from the pod template (the metadata had none of them).
    pub from_template: bool,
}

impl KindAnnotations {
    pub fn read(
        keys: &AnnotationKeys,
        kind: SourceKind,
        metadata: &BTreeMap<String, String>,
        template: &BTreeMap<String, String>,
    ) -> Self {
        let decision_keys = [
            keys.reload(kind),
            keys.auto.as_str(),
            keys.typed_auto(kind),
            keys.search.as_str(),
        ];
        let from_template = !decision_keys.iter().any(|k| metadata.contains_key(*k));
        let from = if from_template { template } else { metadata };
        let get = |key: &str| from.get(key).cloned();
        Self {
            reload: get(keys.reload(kind)),
            auto: get(&keys.auto),
            typed_auto: get(keys.typed_auto(kind)),
            search: get(&keys.search),
            exclude: metadata.get(keys.exclude(kind)).cloned(),
            from_template,
        }
    }
}

/// The workload side of the decision for one source kind, parsed once.
#[derive(Clone, Debug)]
pub struct KindPolicy {
    pub kind: SourceKind,
    pub reload: NameRegexList,
    pub auto: bool,
    pub typed_auto: bool,
    /// Both auto keys absent (or empty), so `--auto-reload-all` applies.
    pub auto_unset: bool,
    pub search: bool,
    pub exclude: BTreeSet<String>,
}

impl KindPolicy {
    pub fn new(keys: &AnnotationKeys, kind: SourceKind, a: &KindAnnotations) -> Self {
        let reload = a
            .reload
            .as_deref()
            .map(|v| parse_name_regex_list(keys.reload(kind), v))
            .unwrap_or_default();
        let truthy = |v: &Option<String>| v.as_deref().and_then(parse_go_bool).unwrap_or(false);
        let unset = |v: &Option<String>| v.as_deref().unwrap_or("").is_empty();
        Self {
            kind,
            reload,
            auto: truthy(&a.auto),
            typed_auto: truthy(&a.typed_auto),
            auto_unset: unset(&a.auto) && unset(&a.typed_auto),
            search: is_exact_true(a.search.as_deref()),
            exclude: a.exclude.as_deref().map(parse_name_list).unwrap_or_default(),
        }
    }

    /// Invalid reload-list items, which the decision skips (as Stakater does) and the
    /// validating webhook rejects.
    pub fn errors(&self) -> &[ValueError] {
        &self.reload.errors
    }

    /// Stakater's decision steps 4–8 for one source of this kind. `source_annotations` is empty
    /// for a source that does not exist.
    pub fn trigger(
        &self,
        options: &DependencyOptions,
        name: &str,
        source_annotations: &BTreeMap<String, String>,
    ) -> Option<Trigger> {
        self.judge(options, name, source_annotations).ok()
    }

    /// [`KindPolicy::trigger`], with the reason when the workload does not reload on the source.
    pub fn judge(
        &self,
        options: &DependencyOptions,
        name: &str,
        source_annotations: &BTreeMap<String, String>,
    ) -> Result<Trigger, Skip> {
        if name.is_empty() {
            return Err(Skip::EmptyName);
        }
        if self.exclude.contains(name) {
            return Err(Skip::Excluded {
                key: options.annotations.exclude(self.kind),
            });
        }
        if is_exact_true(source_annotations.get(&options.annotations.ignore).map(String::as_str)) {
            return Err(Skip::Ignored {
                key: options.annotations.ignore.clone(),
            });
        }
        if let Some(p) = self.reload.matches(name) {
            return Ok(Trigger::Named {
                pattern: p.item.clone(),
            });
        }
        if self.search && is_exact_true(source_annotations.get(&options.annotations.match_).map(String::as_str)) {
            return Ok(Trigger::SearchMatch);
        }
        if self.auto {
            return Ok(Trigger::Auto);
        }
        if self.typed_auto {
            return Ok(Trigger::TypedAuto);
        }
        if options.auto_reload_all && self.auto_unset {
            return Ok(Trigger::AutoReloadAll);
        }
        Err(Skip::NotSelected)
    }

    /// Whether finding this policy's sources needs a scan of every source of the kind (a real
    /// pattern, or search/match); otherwise references and exact names are enough.
    pub fn needs_scan(&self) -> bool {
        self.search || self.reload.patterns.iter().any(|p| !p.is_exact())
    }

    /// Names this policy depends on even before a source of that name exists: reload-list
    /// items that are plain object names.
    pub fn literal_names(&self) -> impl Iterator<Item = &str> {
        self.reload
            .patterns
            .iter()
            .filter(|p| p.is_literal_name())
            .map(|p| p.item.as_str())
    }
}

/// Why a source the workload names (a pod-template reference or a plain reload-list name) is not
/// one of its dependencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The source kind is ignored (`--resources-to-ignore`, or CSI not enabled).
    KindIgnored,
    /// The workload's exclude list for the kind names it.
    Excluded { key: &'static str },
    /// The source carries the ignore annotation.
    Ignored { key: String },
    /// No reload list item, search/match, auto or typed auto key selects it.
    NotSelected,
    /// A reference without a name.
    EmptyName,
}

/// A source the workload names but does not reload on, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub source: SourceRef,
    pub skip: Skip,
    /// Whether the pod template uses the source.
    pub referenced: bool,
}

/// One source a workload reloads on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub source: SourceRef,
    pub trigger: Trigger,
    /// The container an env-var stamp goes on; `None` only for a template without containers.
    pub container: Option<String>,
    /// Whether the pod template uses the source.
    pub referenced: bool,
    /// The keys the pod template reads from the source when it reads only some of them
    /// ([`keys_read`]); `None` when it uses the whole object, or names it without using it.
    pub keys: Option<KeySet>,
    /// Per-key reloads are on for the workload: with [`Dependency::keys`], its stamp for the
    /// source covers those keys only ([`Dependency::stamped_keys`]).
    pub per_key: bool,
}

impl Dependency {
    /// The keys the workload's stamp for the source covers; `None`: the whole content.
    pub fn stamped_keys(&self) -> Option<&KeySet> {
        self.keys.as_ref().filter(|_| self.per_key)
    }
}

/// Whether per-key reloads are on for a workload: its `reloader.stakater.com/per-key` (`"true"`
/// or `"false"`), else `default` (`--per-key-reloads`; also for a value that is neither, which
/// the validating webhook refuses).
pub fn per_key(metadata: &BTreeMap<String, String>, default: bool) -> bool {
    metadata
        .get(fixed::PER_KEY)
        .and_then(|value| parse_switch(fixed::PER_KEY, value).ok())
        .unwrap_or(default)
}

/// The complete dependency set of a workload, plus the annotation errors met on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dependencies {
    pub dependencies: Vec<Dependency>,
    pub errors: Vec<ValueError>,
    /// Some policy matches sources by pattern or search/match, so any new or changed source in
    /// the namespace may add a dependency.
    pub scans: bool,
    /// Every source the workload names (references and plain reload-list names), dependency or
    /// not: a change to one of them (say, its `ignore` annotation removed) may make it one.
    pub named: BTreeSet<SourceRef>,
    /// The named sources that are not dependencies, and why (for `reloader explain`).
    pub skipped: Vec<Skipped>,
}

impl Dependencies {
    pub fn sources(&self) -> impl Iterator<Item = &SourceRef> {
        self.dependencies.iter().map(|d| &d.source)
    }
}

/// The decision for one (workload, source) pair, exactly as Stakater asks it on an event.
/// `None` when the workload does not reload on the source.
pub fn should_reload(
    workload: &Workload<'_>,
    source: &SourceRef,
    source_annotations: &BTreeMap<String, String>,
    options: &DependencyOptions,
) -> Result<Option<Dependency>, WorkloadError> {
    if options.ignored_workload_kinds.contains(&workload.kind) || options.ignored_source_kinds.contains(&source.kind) {
        return Ok(None);
    }
    let metadata = workload.annotations();
    let template = workload.template_annotations()?;
    let spec = workload.pod_spec()?;
    let policy = KindPolicy::new(
        &options.annotations,
        source.kind,
        &KindAnnotations::read(&options.annotations, source.kind, &metadata, &template),
    );
    let Some(trigger) = policy.trigger(options, &source.name, source_annotations) else {
        return Ok(None);
    };
    let reference = super::references::find_reference(&spec, source);
    let reads = Reads {
        keys: keys_read(&spec).remove(source),
        per_key: per_key(&metadata, options.per_key_reloads),
    };
    Ok(dependency(
        source.clone(),
        trigger,
        reference.as_ref(),
        first_container(&spec),
        reads,
    ))
}

/// What a dependency's stamp covers: the keys read, and whether per-key reloads are on.
struct Reads {
    keys: Option<KeySet>,
    per_key: bool,
}

fn dependency(
    source: SourceRef,
    trigger: Trigger,
    reference: Option<&Reference>,
    first: Option<String>,
    reads: Reads,
) -> Option<Dependency> {
    let (container, referenced) = match reference {
        Some(r) => (r.container.clone(), true),
        None if trigger.needs_reference() => return None,
        None => (first, false),
    };
    Some(Dependency {
        source,
        trigger,
        container,
        referenced,
        // A source the pods do not use is covered whole: nothing says what they read of it.
        keys: reads.keys.filter(|_| referenced),
        per_key: reads.per_key,
    })
}

/// What the decision reads from one workload, parsed once: its policies per source kind (reload
/// lists compiled) and the sources its pod template uses. Built before any lock on the sources
/// is taken, so compiling patterns never happens under the store's lock; answering against the
/// sources ([`WorkloadPolicy::dependencies`]) compiles nothing.
#[derive(Clone, Debug, Default)]
pub struct WorkloadPolicy {
    /// A kind the options ignore: no dependencies at all.
    ignored: bool,
    policies: Vec<KindPolicy>,
    /// Sorted by source.
    refs: Vec<Reference>,
    first: Option<String>,
    /// The sources the pod template reads only some keys of ([`keys_read`]).
    keys_read: BTreeMap<SourceRef, KeySet>,
    /// Per-key reloads are on for the workload ([`per_key`]).
    per_key: bool,
}

impl WorkloadPolicy {
    pub fn read(workload: &Workload<'_>, options: &DependencyOptions) -> Result<Self, WorkloadError> {
        if options.ignored_workload_kinds.contains(&workload.kind) {
            return Ok(Self {
                ignored: true,
                ..Self::default()
            });
        }
        let metadata = workload.annotations();
        let template = workload.template_annotations()?;
        let spec = workload.pod_spec()?;
        // Ignored kinds keep a policy too, only to say which named sources they skip.
        let policies = SourceKind::ALL
            .into_iter()
            .map(|kind| {
                KindPolicy::new(
                    &options.annotations,
                    kind,
                    &KindAnnotations::read(&options.annotations, kind, &metadata, &template),
                )
            })
            .collect();
        Ok(Self {
            ignored: false,
            policies,
            refs: references(&spec),
            first: first_container(&spec),
            keys_read: keys_read(&spec),
            per_key: per_key(&metadata, options.per_key_reloads),
        })
    }

    /// The policies of every source kind (ignored kinds' included).
    pub fn policies(&self) -> &[KindPolicy] {
        &self.policies
    }

    fn reference(&self, source: &SourceRef) -> Option<&Reference> {
        self.refs
            .binary_search_by(|r| r.source.cmp(source))
            .ok()
            .map(|i| &self.refs[i])
    }

    /// Every source the workload reloads on, given the sources that exist in its namespace
    /// (see [`dependencies`]).
    pub fn dependencies(&self, existing: &(impl SourceView + ?Sized), options: &DependencyOptions) -> Dependencies {
        let mut out = Dependencies::default();
        if self.ignored {
            return out;
        }
        let no_annotations = BTreeMap::new();
        for policy in &self.policies {
            let kind = policy.kind;
            if options.ignored_source_kinds.contains(&kind) {
                let mut named: BTreeSet<SourceRef> = self
                    .refs
                    .iter()
                    .filter(|r| r.source.kind == kind)
                    .map(|r| r.source.clone())
                    .collect();
                named.extend(policy.literal_names().map(|n| SourceRef::new(kind, n)));
                out.skipped.extend(named.into_iter().map(|source| Skipped {
                    referenced: self.reference(&source).is_some(),
                    source,
                    skip: Skip::KindIgnored,
                }));
                continue;
            }
            out.errors.extend_from_slice(policy.errors());
            out.scans |= policy.needs_scan();
            let mut candidates: BTreeSet<SourceRef> = self
                .refs
                .iter()
                .filter(|r| r.source.kind == kind)
                .map(|r| r.source.clone())
                .collect();
            candidates.extend(policy.literal_names().map(|n| SourceRef::new(kind, n)));
            out.named.extend(candidates.iter().cloned());
            if policy.needs_scan() {
                candidates.extend(existing.of_kind(kind).map(|s| s.source.clone()));
            }

            for source in candidates {
                let annotations = existing.get(&source).map(|s| &s.annotations).unwrap_or(&no_annotations);
                let reference = self.reference(&source);
                let trigger = match policy.judge(options, &source.name, annotations) {
                    Ok(trigger) => trigger,
                    Err(skip) => {
                        if out.named.contains(&source) {
                            out.skipped.push(Skipped {
                                source,
                                skip,
                                referenced: reference.is_some(),
                            });
                        }
                        continue;
                    }
                };
                let reads = Reads {
                    keys: self.keys_read.get(&source).cloned(),
                    per_key: self.per_key,
                };
                if let Some(d) = dependency(source, trigger, reference, self.first.clone(), reads) {
                    out.dependencies.push(d);
                }
            }
        }
        out.dependencies.sort_by(|a, b| a.source.cmp(&b.source));
        out.skipped.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

/// Every source the workload reloads on, given the sources that exist in its namespace.
/// Sources that do not exist are included when the workload names them definitely (a pod
/// template reference under an auto trigger, or a plain name in a reload list), so an engine can
/// notice their creation. The result is sorted by source.
///
/// Compiles the workload's reload lists: with `existing` under a lock, read the
/// [`WorkloadPolicy`] first and call [`WorkloadPolicy::dependencies`] under the lock instead.
pub fn dependencies(
    workload: &Workload<'_>,
    existing: &(impl SourceView + ?Sized),
    options: &DependencyOptions,
) -> Result<Dependencies, WorkloadError> {
    Ok(WorkloadPolicy::read(workload, options)?.dependencies(existing, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::sha1_hex;
    use crate::core::source::SourceState;
    use crate::core::vocabulary::{defaults, fixed};
    use serde_json::{Value, json};

    fn deployment(metadata: Value, template: Value, spec: Value) -> Value {
        json!({"metadata": {"name": "app", "namespace": "ns", "annotations": metadata},
               "spec": {"template": {"metadata": {"annotations": template}, "spec": spec}}})
    }

    fn uses_cm_and_secret() -> Value {
        json!({"containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "db"}}]}]})
    }

    fn state(kind: SourceKind, name: &str, annotations: &[(&str, &str)]) -> SourceState {
        SourceState {
            source: SourceRef::new(kind, name),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            hash: sha1_hex(name.as_bytes()),
            keys: Default::default(),
            changed: None,
        }
    }

    fn deps_of(object: &Value, existing: &[SourceState], options: &DependencyOptions) -> Vec<(String, Trigger)> {
        dependencies(&Workload::new(WorkloadKind::Deployment, object), existing, options)
            .unwrap()
            .dependencies
            .into_iter()
            .map(|d| (d.source.to_string(), d.trigger))
            .collect()
    }

    fn decide(object: &Value, source: &SourceState, options: &DependencyOptions) -> Option<Trigger> {
        should_reload(
            &Workload::new(WorkloadKind::Deployment, object),
            &source.source,
            &source.annotations,
            options,
        )
        .unwrap()
        .map(|d| d.trigger)
    }

    fn cm(name: &str) -> SourceState {
        state(SourceKind::ConfigMap, name, &[])
    }
    fn secret(name: &str) -> SourceState {
        state(SourceKind::Secret, name, &[])
    }

    #[test]
    fn auto_reloads_on_referenced_sources_only() {
        let w = deployment(json!({defaults::AUTO: "true"}), json!({}), uses_cm_and_secret());
        let o = DependencyOptions::default();
        assert_eq!(decide(&w, &cm("cfg"), &o), Some(Trigger::Auto));
        assert_eq!(decide(&w, &secret("db"), &o), Some(Trigger::Auto));
        assert_eq!(decide(&w, &cm("unused"), &o), None);
    }

    #[test]
    fn typed_auto_only_its_kind() {
        let w = deployment(
            json!({defaults::CONFIGMAP_AUTO: "true"}),
            json!({}),
            uses_cm_and_secret(),
        );
        let o = DependencyOptions::default();
        assert_eq!(decide(&w, &cm("cfg"), &o), Some(Trigger::TypedAuto));
        assert_eq!(decide(&w, &secret("db"), &o), None);
        let w = deployment(json!({defaults::SECRET_AUTO: "true"}), json!({}), uses_cm_and_secret());
        assert_eq!(decide(&w, &cm("cfg"), &o), None);
        assert_eq!(decide(&w, &secret("db"), &o), Some(Trigger::TypedAuto));
    }

    #[test]
    fn named_lists_reload_even_without_a_reference() {
        let w = deployment(
            json!({defaults::CONFIGMAP_RELOAD: "other, app-config-.*"}),
            json!({}),
            json!({"containers": [{"name": "first"}, {"name": "second"}]}),
        );
        let o = DependencyOptions::default();
        assert_eq!(
            decide(&w, &cm("app-config-prod"), &o),
            Some(Trigger::Named {
                pattern: "app-config-.*".into()
            })
        );
        assert_eq!(decide(&w, &cm("other-app-config-1"), &o), None);
        let d = should_reload(
            &Workload::new(WorkloadKind::Deployment, &w),
            &SourceRef::new(SourceKind::ConfigMap, "other"),
            &BTreeMap::new(),
            &o,
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.container.as_deref(), Some("first"));
        assert!(!d.referenced);
    }

    #[test]
    fn auto_false_does_not_block_an_explicit_list() {
        let w = deployment(
            json!({defaults::AUTO: "false", defaults::CONFIGMAP_RELOAD: "cfg"}),
            json!({}),
            uses_cm_and_secret(),
        );
        let o = DependencyOptions::default();
        assert_eq!(
            decide(&w, &cm("cfg"), &o),
            Some(Trigger::Named { pattern: "cfg".into() })
        );
        assert_eq!(decide(&w, &secret("db"), &o), None);
    }

    #[test]
    fn search_needs_match_on_the_source() {
        let w = deployment(json!({defaults::SEARCH: "true"}), json!({}), uses_cm_and_secret());
        let o = DependencyOptions::default();
        let matched = state(SourceKind::ConfigMap, "cfg", &[(defaults::MATCH, "true")]);
        assert_eq!(decide(&w, &matched, &o), Some(Trigger::SearchMatch));
        assert_eq!(decide(&w, &cm("cfg"), &o), None);
        // match without search does nothing
        let plain = deployment(json!({}), json!({}), uses_cm_and_secret());
        assert_eq!(decide(&plain, &matched, &o), None);
    }

    #[test]
    fn ignore_on_the_source_wins() {
        let w = deployment(
            json!({defaults::AUTO: "true", defaults::CONFIGMAP_RELOAD: "cfg"}),
            json!({}),
            uses_cm_and_secret(),
        );
        let ignored = state(SourceKind::ConfigMap, "cfg", &[(defaults::IGNORE, "true")]);
        assert_eq!(decide(&w, &ignored, &DependencyOptions::default()), None);
    }

    #[test]
    fn exclude_lists_come_from_metadata_only() {
        let o = DependencyOptions::default();
        let w = deployment(
            json!({defaults::AUTO: "true", fixed::CONFIGMAPS_EXCLUDE: "cfg"}),
            json!({}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&w, &cm("cfg"), &o), None);
        assert_eq!(decide(&w, &secret("db"), &o), Some(Trigger::Auto));
        let on_template = deployment(
            json!({defaults::AUTO: "true"}),
            json!({fixed::CONFIGMAPS_EXCLUDE: "cfg"}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&on_template, &cm("cfg"), &o), Some(Trigger::Auto));
    }

    #[test]
    fn template_fallback_is_all_or_nothing_per_kind() {
        let o = DependencyOptions::default();
        // Only the template carries keys: they are read.
        let w = deployment(json!({}), json!({defaults::AUTO: "true"}), uses_cm_and_secret());
        assert_eq!(decide(&w, &cm("cfg"), &o), Some(Trigger::Auto));
        // A secret key on the metadata masks the template for secrets only.
        let w = deployment(
            json!({defaults::SECRET_RELOAD: "nothing"}),
            json!({defaults::AUTO: "true"}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&w, &cm("cfg"), &o), Some(Trigger::Auto));
        assert_eq!(decide(&w, &secret("db"), &o), None);
        // A pod-template CM list does not react to a secret.
        let w = deployment(
            json!({}),
            json!({defaults::CONFIGMAP_RELOAD: "cfg"}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&w, &secret("db"), &o), None);
        assert!(decide(&w, &cm("cfg"), &o).is_some());
    }

    #[test]
    fn auto_reload_all_respects_explicit_values() {
        let o = DependencyOptions {
            auto_reload_all: true,
            ..Default::default()
        };
        let plain = deployment(json!({}), json!({}), uses_cm_and_secret());
        assert_eq!(decide(&plain, &cm("cfg"), &o), Some(Trigger::AutoReloadAll));
        assert_eq!(decide(&plain, &cm("unused"), &o), None);
        let opted_out = deployment(json!({defaults::AUTO: "false"}), json!({}), uses_cm_and_secret());
        assert_eq!(decide(&opted_out, &cm("cfg"), &o), None);
        // Stakater quirk kept: typed auto for the other kind does not opt out.
        let cm_only = deployment(
            json!({defaults::CONFIGMAP_AUTO: "true"}),
            json!({}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&cm_only, &secret("db"), &o), Some(Trigger::AutoReloadAll));
    }

    #[test]
    fn ignored_kinds() {
        let mut o = DependencyOptions::default();
        o.ignored_source_kinds.insert(SourceKind::Secret);
        let w = deployment(json!({defaults::AUTO: "true"}), json!({}), uses_cm_and_secret());
        assert_eq!(decide(&w, &secret("db"), &o), None);
        assert!(decide(&w, &cm("cfg"), &o).is_some());
        let mut o = DependencyOptions::default();
        o.ignored_workload_kinds.insert(WorkloadKind::Deployment);
        assert_eq!(decide(&w, &cm("cfg"), &o), None);
    }

    #[test]
    fn empty_names_never_reload() {
        // Stakater's tombstone hazard: an empty name matched `^$` from an empty item.
        let w = deployment(
            json!({defaults::CONFIGMAP_RELOAD: ",", defaults::AUTO: "true"}),
            json!({}),
            uses_cm_and_secret(),
        );
        assert_eq!(decide(&w, &cm(""), &DependencyOptions::default()), None);
    }

    #[test]
    fn dependency_set_covers_all_sources() {
        let w = deployment(
            json!({defaults::AUTO: "true", defaults::SECRET_RELOAD: "extra,tls-.*,bad("}),
            json!({}),
            uses_cm_and_secret(),
        );
        let existing = [
            cm("cfg"),
            cm("unused"),
            secret("tls-a"),
            secret("tls-b"),
            secret("other"),
        ];
        let deps = dependencies(
            &Workload::new(WorkloadKind::Deployment, &w),
            &existing[..],
            &DependencyOptions::default(),
        )
        .unwrap();
        let summary: Vec<(String, Trigger, bool)> = deps
            .dependencies
            .iter()
            .map(|d| (d.source.to_string(), d.trigger.clone(), d.referenced))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("configmap/cfg".into(), Trigger::Auto, true),
                ("secret/db".into(), Trigger::Auto, true),
                (
                    "secret/extra".into(),
                    Trigger::Named {
                        pattern: "extra".into()
                    },
                    false
                ),
                (
                    "secret/tls-a".into(),
                    Trigger::Named {
                        pattern: "tls-.*".into()
                    },
                    false
                ),
                (
                    "secret/tls-b".into(),
                    Trigger::Named {
                        pattern: "tls-.*".into()
                    },
                    false
                ),
            ]
        );
        assert_eq!(deps.errors.len(), 1, "{:?}", deps.errors);
    }

    #[test]
    fn over_long_lists_are_skipped_and_reported() {
        let many = (0..=crate::core::vocabulary::MAX_LIST_ITEMS)
            .map(|i| format!("cfg-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let w = deployment(
            json!({defaults::CONFIGMAP_RELOAD: many, defaults::SECRET_RELOAD: format!("db,{}", "s".repeat(600))}),
            json!({}),
            uses_cm_and_secret(),
        );
        let deps = dependencies(
            &Workload::new(WorkloadKind::Deployment, &w),
            &[cm("cfg-1"), secret("db")][..],
            &DependencyOptions::default(),
        )
        .unwrap();
        let sources: Vec<String> = deps.sources().map(|s| s.to_string()).collect();
        assert_eq!(
            sources,
            vec!["secret/db"],
            "the long list is skipped, the long item only"
        );
        assert_eq!(deps.errors.len(), 2, "{:?}", deps.errors);
        assert!(matches!(deps.errors[0], ValueError::TooManyItems { count: 101, .. }));
        assert!(matches!(deps.errors[1], ValueError::ItemTooLong { len: 600, .. }));
    }

    #[test]
    fn no_annotations_no_dependencies() {
        let w = deployment(json!({}), json!({}), uses_cm_and_secret());
        assert!(deps_of(&w, &[cm("cfg"), secret("db")], &DependencyOptions::default()).is_empty());
    }

    #[test]
    fn ignored_workload_kind_has_no_dependencies() {
        let mut o = DependencyOptions::default();
        o.ignored_workload_kinds.insert(WorkloadKind::Deployment);
        let w = deployment(json!({defaults::AUTO: "true"}), json!({}), uses_cm_and_secret());
        assert!(deps_of(&w, &[cm("cfg")], &o).is_empty());
    }

    #[test]
    fn named_sources_that_are_not_dependencies_say_why() {
        let w = deployment(
            json!({defaults::CONFIGMAP_AUTO: "true", fixed::CONFIGMAPS_EXCLUDE: "cfg", defaults::SECRET_RELOAD: "gone"}),
            json!({}),
            json!({"containers": [{"name": "app",
                "envFrom": [{"configMapRef": {"name": "cfg"}}, {"configMapRef": {"name": "quiet"}}, {"secretRef": {"name": "db"}}]}]}),
        );
        let existing = [
            state(SourceKind::ConfigMap, "quiet", &[(defaults::IGNORE, "true")]),
            cm("cfg"),
            secret("db"),
        ];
        let mut options = DependencyOptions::default();
        let deps = dependencies(&Workload::new(WorkloadKind::Deployment, &w), &existing[..], &options).unwrap();
        let why: Vec<(String, Skip, bool)> = deps
            .skipped
            .iter()
            .map(|s| (s.source.to_string(), s.skip.clone(), s.referenced))
            .collect();
        assert_eq!(
            why,
            vec![
                (
                    "configmap/cfg".into(),
                    Skip::Excluded {
                        key: fixed::CONFIGMAPS_EXCLUDE
                    },
                    true
                ),
                (
                    "configmap/quiet".into(),
                    Skip::Ignored {
                        key: defaults::IGNORE.into()
                    },
                    true
                ),
                ("secret/db".into(), Skip::NotSelected, true),
            ]
        );
        assert_eq!(
            deps.sources().map(ToString::to_string).collect::<Vec<_>>(),
            ["secret/gone"]
        );
        options.ignored_source_kinds.insert(SourceKind::Secret);
        let deps = dependencies(&Workload::new(WorkloadKind::Deployment, &w), &existing[..], &options).unwrap();
        assert!(deps.skipped.contains(&Skipped {
            source: SourceRef::new(SourceKind::Secret, "db"),
            skip: Skip::KindIgnored,
            referenced: true
        }));
        assert!(deps.skipped.contains(&Skipped {
            source: SourceRef::new(SourceKind::Secret, "gone"),
            skip: Skip::KindIgnored,
            referenced: false
        }));
        assert!(deps.dependencies.is_empty());
    }
}
