//! Desired state: given a workload, the sources it depends on and their current hashes, what the
//! workload should look like, and the minimal RFC 6902 patch from what it is.
//!
//! The model is level-triggered. What the pods were rolled with is read back from the workload
//! itself (pod-template hash annotation, or Stakater's env vars), overlaid by the hashes we
//! acknowledged without a rollout (workload-metadata annotation). Comparing that record with the
//! current hashes decides, per source:
//!
//! | recorded      | current   | outcome                                               |
//! |---------------|-----------|-------------------------------------------------------|
//! | = current     |           | up to date                                            |
//! | nothing       | hash      | acknowledge (adopt without rolling), but see below    |
//! | nothing       | absent    | acknowledge `absent` if reload-on-create, else nothing |
//! | absent        | hash      | roll if reload-on-create, else acknowledge            |
//! | hash          | absent    | roll if reload-on-delete, else nothing                |
//! | hash A        | hash B    | roll                                                  |
//!
//! A workload with no record at all (new, or never reconciled since the reloader started) was
//! started with whatever its sources held when it was created. A source change the reloader saw
//! *after* it first saw the workload (`seen`) therefore counts as a change from the hash before
//! (the creation of a source the workload names, as `absent → hash`), not as a hash to adopt:
//! a workload created and then given a new ConfigMap within the reload window rolls, as it
//! would had the first reconcile come sooner. Sources as found at start-up carry no such
//! change, so installing rolls nothing.
//!
//! Per-key reloads ([`super::per_key`]) record, for a source the workload reads only some keys
//! of, the hash of those keys (`keys.<id>.<hash>`). A record in the other form, whole content
//! where the plan now stamps keys or the reverse (per-key turned on or off), or keys of another
//! set (the template now reads other keys, which rolled the pods anyway), is compared as far as
//! it can be: one that records the content the pods read now is adopted without a rollout
//! ([`Reading::Reform`]), like a keyed record of a plain hash; one that records other content
//! rolls.
//!
//! A roll restamps every dependency, so the result is up to date by construction; applying the
//! patch and planning again yields an empty patch. Under the annotations strategy a roll also
//! writes Stakater's `last-reloaded-from` (which change it answers, and when), in the same write;
//! it is informational only: never read back, never part of the comparison.

use crate::core::json::JsonAt;
use std::collections::BTreeMap;

use json_patch::Patch;
use serde::Serialize;
use serde_json::{Map, Value, json};
use thiserror::Error;

use super::dependencies::{Dependency, Trigger, per_key};
use super::hash::ContentHash;
use super::hash_record::{HashRecord, Observed, env_var_name, is_stamp_env_var};
use super::keyed_hash::StampKeyRing;
use super::references::keys_read;
use super::source::{LastChange, SourceRef, SourceState, SourceView};
use super::vocabulary::{RolloutStrategy, fixed, parse_rollout_strategy};
use super::workload::{Workload, WorkloadError, WorkloadKind};

/// How a reload is made visible to the workload controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReloadStrategy {
    /// Our default: a pod-template annotation with the hashes of every dependency.
    #[default]
    Annotations,
    /// Stakater's default: a `STAKATER_<NAME>_<TYPE>` env var per dependency.
    EnvVars,
}

impl ReloadStrategy {
    /// Parses Stakater's `--reload-strategy` values.
    pub fn from_flag(value: &str) -> Option<Self> {
        match value {
            "annotations" => Some(ReloadStrategy::Annotations),
            "env-vars" => Some(ReloadStrategy::EnvVars),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub strategy: ReloadStrategy,
    /// `--reload-on-create`: a source appearing where an absent one was recorded rolls.
    pub reload_on_create: bool,
    /// `--reload-on-delete`: a recorded source disappearing rolls.
    pub reload_on_delete: bool,
    /// Stakater's `--webhook-url` mode: a change is announced to a webhook instead of rolling;
    /// the hashes are recorded on the workload metadata so each change is announced once.
    pub notify_only: bool,
    /// `--pod-restarts`: a Deployment, StatefulSet or DaemonSet with `rollout-strategy: restart`
    /// has its pods restarted rather than its template changed ([`super::pod_restart`]).
    pub pod_restarts: bool,
}

/// Why one source makes a workload roll. `from` is what the workload recorded (plain or keyed);
/// `to` the content hash now, of the keys it reads under per-key reloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Changed { from: Observed, to: ContentHash },
    Created { to: ContentHash },
    Deleted { from: Observed },
}

/// How one workload's stamps are written and read: the key ring, and the namespace of the
/// sources it names (part of every keyed value, so equal content elsewhere looks different).
#[derive(Clone, Copy, Debug)]
pub struct Stamping<'a> {
    pub keys: &'a StampKeyRing,
    pub namespace: &'a str,
}

/// A recorded value read against the content of its source now.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reading {
    /// Records the content now, in the form the plan writes.
    Current,
    /// Records the content the pods read now, in another form: the whole content where the
    /// plan stamps the keys read, or the reverse (per-key reloads turned on or off), or the
    /// keys of another set (the template reads other keys now, a change that rolled the pods).
    /// Adopted without a rollout.
    Reform,
    /// Records other content (or the source absent): the value as written.
    Other(Observed),
    /// A keyed value whose key the ring lacks: it cannot be checked, so it counts as no record.
    Unknown,
}

impl Stamping<'_> {
    /// A recorded value read against the source's `state` now (`None`: absent), for
    /// `dependency`: a keyed value is checked with its key, a subset against the keys the
    /// dependency reads (see [`Reading`]).
    fn reading(&self, dependency: &Dependency, recorded: Observed, state: Option<&SourceState>) -> Reading {
        if recorded.keyed().is_some_and(|keyed| !self.keys.knows(keyed)) {
            return Reading::Unknown;
        }
        let Some(state) = state else {
            return Reading::Other(recorded);
        };
        let source = &dependency.source;
        // Whether a plain or keyed value records `hash`.
        let records = |value: &Observed, hash: &ContentHash| match value {
            Observed::Hash(plain) => plain == hash,
            Observed::Keyed(keyed) => self.keys.verifies(keyed, self.namespace, source, hash),
            Observed::Absent | Observed::Subset(..) => false,
        };
        let stamps_keys = dependency.stamped_keys().is_some();
        match &recorded {
            Observed::Hash(_) | Observed::Keyed(_) if records(&recorded, &state.hash) => {
                if stamps_keys {
                    Reading::Reform
                } else {
                    Reading::Current
                }
            }
            Observed::Subset(id, value) => match &dependency.keys {
                Some(keys) if keys.id() == *id => {
                    if !records(value, &state.keys.subset_hash(keys)) {
                        Reading::Other(recorded)
                    } else if stamps_keys {
                        Reading::Current
                    } else {
                        Reading::Reform
                    }
                }
                // Made for other keys, or for keys of a source the template now uses whole:
                // the template changed since, and its pods started with the content now.
                _ => Reading::Reform,
            },
            _ => Reading::Other(recorded),
        }
    }

    /// A record the webhook may answer anyone with: [sealed](Self::seal), and without a
    /// current key, without the plain hashes of confidential sources (a Secret's SHA-1 is an
    /// offline oracle for low-entropy secrets). Those sources then have no record, and the
    /// engine adopts them without a rollout.
    pub fn answerable(&self, record: &HashRecord) -> HashRecord {
        let mut sealed = self.seal(record);
        sealed
            .0
            .retain(|source, observed| !(source.kind.is_confidential() && observed.is_plain()));
        sealed
    }

    /// A record as it is written: plain hashes keyed when the ring has a current key.
    fn seal(&self, record: &HashRecord) -> HashRecord {
        HashRecord(
            record
                .0
                .iter()
                .map(|(source, observed)| (source.clone(), self.seal_one(source, observed)))
                .collect(),
        )
    }

    /// One value as it is written: a plain hash, or the plain hash in a subset, keyed when the
    /// ring has a current key.
    pub fn seal_one(&self, source: &SourceRef, observed: &Observed) -> Observed {
        match observed {
            Observed::Hash(hash) => self
                .keys
                .seal(self.namespace, source, hash)
                .map_or_else(|| observed.clone(), Observed::Keyed),
            Observed::Subset(keys, inner) => Observed::Subset(*keys, Box::new(self.seal_one(source, inner))),
            Observed::Keyed(_) | Observed::Absent => observed.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceChange {
    pub source: SourceRef,
    pub trigger: Trigger,
    pub change: Change,
}

/// What the plan does to the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to write.
    UpToDate,
    /// Record hashes in the workload metadata; the pods do not roll.
    Acknowledge,
    /// Restamp the pod template; the pods roll.
    Roll,
    /// Argo Rollout with `rollout-strategy: restart`: set `spec.restartAt` and record the
    /// hashes in the metadata; the pod template is untouched.
    Restart,
    /// End a pause period the reloader started (see [`super::pause`]).
    Resume,
    /// `--webhook-url` mode: announce the change; record the hashes in the metadata.
    Notify,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub action: Action,
    /// The sources that make it roll (empty unless the action is Roll or Restart).
    pub changes: Vec<SourceChange>,
    /// The sources acknowledged without a roll.
    pub acknowledged: Vec<SourceRef>,
    pub desired: Value,
    /// RFC 6902 patch from the current object to `desired`; empty when up to date.
    pub patch: Patch,
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Workload(#[from] WorkloadError),
}

/// What the plan does about one dependency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceOutcome {
    /// The record matches the current state.
    UpToDate,
    /// Recorded without a rollout (never recorded, or created without `--reload-on-create`).
    Adopt(Observed),
    /// The workload rolls (or restarts, or is announced) for it.
    Change(Change),
    /// Absent and never recorded: nothing to do (`--reload-on-create` would record it absent).
    Absent,
    /// Recorded, now deleted: nothing to do without `--reload-on-delete`.
    DeletedKept,
}

/// One dependency compared: what the workload recorded for it, what the source holds now, and
/// the outcome the plan acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub source: SourceRef,
    pub trigger: Trigger,
    /// The value recorded on the workload, as written (a keyed value is not read here).
    pub recorded: Option<Observed>,
    /// The source's content now.
    pub current: Observed,
    pub outcome: SourceOutcome,
}

/// Compares every dependency's record with its current state (the table at the top).
pub fn assess(
    workload: &Workload<'_>,
    dependencies: &[Dependency],
    current: &(impl SourceView + ?Sized),
    options: PlanOptions,
    stamping: Stamping<'_>,
    seen: Option<u64>,
) -> Result<Vec<Assessment>, PlanError> {
    let recorded = recorded(workload, dependencies, options.strategy)?;
    // Changes since the first sight of a workload that has no record at all roll it: its pods
    // may have started before them (Stakater's create-then-update sequence without a webhook).
    let unrecorded_since = seen.filter(|_| recorded.is_empty());
    let mut out = Vec::with_capacity(dependencies.len());
    for dep in dependencies {
        let state = current.get(&dep.source);
        let now_observed = observed(state, dep);
        let raw = recorded.get(&dep.source).cloned();
        let reading = raw.clone().map(|r| stamping.reading(dep, r, state));
        let reform = reading == Some(Reading::Reform);
        let was = match reading {
            Some(Reading::Current) => Some(now_observed.clone()),
            Some(Reading::Other(other)) => Some(other),
            Some(Reading::Reform | Reading::Unknown) | None => None,
        };
        // The current state is plain content or absent, never keyed.
        let outcome = match (was.as_ref(), now_observed.content()) {
            _ if reform => SourceOutcome::Adopt(now_observed.clone()),
            (Some(r), _) if *r == now_observed => SourceOutcome::UpToDate,
            // Under per-key reloads the hash before a change is the whole content's: which
            // keys changed is not known, so the change counts (docs/engine.md).
            (None, Some(to)) => match changed_after(current, &dep.source, unrecorded_since) {
                Some(LastChange {
                    previous: Some(from), ..
                }) => SourceOutcome::Change(Change::Changed {
                    from: Observed::Hash(from.clone()),
                    to: to.clone(),
                }),
                Some(LastChange { previous: None, .. }) if options.reload_on_create && names(dep) => {
                    SourceOutcome::Change(Change::Created { to: to.clone() })
                }
                _ => SourceOutcome::Adopt(now_observed.clone()),
            },
            (None, None) if options.reload_on_create => SourceOutcome::Adopt(Observed::Absent),
            (None, None) => SourceOutcome::Absent,
            (Some(Observed::Absent), Some(to)) if options.reload_on_create => {
                SourceOutcome::Change(Change::Created { to: to.clone() })
            }
            (Some(Observed::Absent), Some(_)) => SourceOutcome::Adopt(now_observed.clone()),
            (Some(from), None) if options.reload_on_delete => {
                SourceOutcome::Change(Change::Deleted { from: from.clone() })
            }
            (Some(_), None) => SourceOutcome::DeletedKept,
            (Some(from), Some(to)) => SourceOutcome::Change(Change::Changed {
                from: from.clone(),
                to: to.clone(),
            }),
        };
        out.push(Assessment {
            source: dep.source.clone(),
            trigger: dep.trigger.clone(),
            recorded: raw,
            current: now_observed,
            outcome,
        });
    }
    Ok(out)
}

/// Whether the workload's record for `source` (what its pods were rolled with, overlaid by what
/// was acknowledged) is the source's content now (`current`; `None`: absent), compared as
/// [`assess`] compares them: a keyed stamp of the current content counts, one whose key the
/// ring lacks does not; under per-key reloads (`per_key_default`: `--per-key-reloads`) the keys
/// the workload reads are what counts, so a member whose keys did not change carries the
/// source's new content. For rollout waves: which dependents carry a source's new content.
pub fn carries(
    workload: &Workload<'_>,
    source: &SourceRef,
    current: Option<&SourceState>,
    per_key_default: bool,
    strategy: ReloadStrategy,
    stamping: Stamping<'_>,
) -> bool {
    // Env-var stamps are looked up on any container (no chosen one), as for a moved choice.
    let dependency = Dependency {
        source: source.clone(),
        trigger: Trigger::Auto,
        container: None,
        referenced: true,
        keys: workload
            .pod_spec()
            .ok()
            .and_then(|spec| keys_read(&spec).remove(source)),
        per_key: per_key(&workload.annotations(), per_key_default),
    };
    let Ok(mut record) = recorded(workload, std::slice::from_ref(&dependency), strategy) else {
        return false;
    };
    match record.remove(source).map(|r| stamping.reading(&dependency, r, current)) {
        Some(Reading::Current | Reading::Reform) => true,
        Some(Reading::Other(other)) => other == observed(current, &dependency),
        Some(Reading::Unknown) | None => false,
    }
}

/// Plans the workload against the current hashes of the sources in its namespace (a source
/// missing from `current` is absent). `now` (RFC 3339) is used for Argo's `spec.restartAt` and
/// `last-reloaded-from`.
pub fn plan(
    workload: &Workload<'_>,
    dependencies: &[Dependency],
    current: &(impl SourceView + ?Sized),
    options: PlanOptions,
    stamping: Stamping<'_>,
    now: &str,
) -> Result<Plan, PlanError> {
    let assessments = assess(workload, dependencies, current, options, stamping, None)?;
    Ok(plan_assessed(
        workload,
        dependencies,
        &assessments,
        current,
        options,
        stamping,
        now,
    ))
}

/// [`plan`] from the [`assess`]ment of the same dependencies.
pub fn plan_assessed(
    workload: &Workload<'_>,
    dependencies: &[Dependency],
    assessments: &[Assessment],
    current: &(impl SourceView + ?Sized),
    options: PlanOptions,
    stamping: Stamping<'_>,
    now: &str,
) -> Plan {
    let acknowledged_before = metadata_record(workload);
    let mut changes = Vec::new();
    let mut acks = BTreeMap::new();
    for a in assessments {
        match &a.outcome {
            SourceOutcome::Adopt(observed) => {
                acks.insert(a.source.clone(), observed.clone());
            }
            SourceOutcome::Change(change) => changes.push(SourceChange {
                source: a.source.clone(),
                trigger: a.trigger.clone(),
                change: change.clone(),
            }),
            SourceOutcome::UpToDate | SourceOutcome::Absent | SourceOutcome::DeletedKept => {}
        }
    }

    let mut desired = workload.object.clone();
    let action = if !changes.is_empty() {
        let full = full_record(dependencies, current);
        let sealed = stamping.seal(&full);
        if options.notify_only {
            set_metadata_record(&mut desired, &sealed);
            Action::Notify
        } else if restarts_instead(workload, options) {
            set_metadata_record(&mut desired, &sealed);
            if workload.kind == WorkloadKind::Rollout {
                set_restart_at(&mut desired, now);
            } else {
                object_at(&mut desired, "/metadata/annotations")
                    .insert(fixed::RESTARTED_AT.into(), Value::String(now.into()));
            }
            Action::Restart
        } else {
            write_template_stamp(
                &mut desired,
                workload.kind,
                dependencies,
                &full,
                options.strategy,
                stamping,
            );
            if options.strategy == ReloadStrategy::Annotations {
                let last = LastReloadedFrom::new(&changes[0], dependencies, &sealed, stamping.namespace, now);
                last.write(&mut desired, workload.kind);
            }
            Action::Roll
        }
    } else if !acks.is_empty() {
        let mut record = acknowledged_before;
        record.0.retain(|s, _| dependencies.iter().any(|d| &d.source == s));
        record.0.extend(acks.clone());
        set_metadata_record(&mut desired, &stamping.seal(&record));
        Action::Acknowledge
    } else {
        Action::UpToDate
    };
    let patch = crate::core::diff::diff(workload.object, &desired);
    let acknowledged = if action == Action::Acknowledge {
        acks.into_keys().collect()
    } else {
        Vec::new()
    };
    Plan {
        action,
        changes,
        acknowledged,
        desired,
        patch,
    }
}

/// Stakater's hash for a deleted source in `last-reloaded-from`: the SHA-1 of its fixed marker.
const DELETED_MARKER_HASH: &str = "aae45badef99284e4dae01d6046154ea9d99532f";

/// Stakater's `reloader.stakater.com/last-reloaded-from` value; the fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LastReloadedFrom<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    namespace: &'a str,
    hash: String,
    container_refs: Vec<&'a str>,
    observed_at: i64,
}

impl<'a> LastReloadedFrom<'a> {
    /// The first change a roll answers (Stakater writes one per event; a coalesced roll answers
    /// several), with the value the stamp records for it.
    fn new(
        change: &'a SourceChange,
        dependencies: &'a [Dependency],
        sealed: &HashRecord,
        namespace: &'a str,
        now: &str,
    ) -> Self {
        let hash = match (&change.change, sealed.0.get(&change.source)) {
            (Change::Deleted { .. }, _) | (_, None | Some(Observed::Absent)) => DELETED_MARKER_HASH.to_string(),
            (_, Some(observed)) => observed.to_string(),
        };
        let container = dependencies
            .iter()
            .find(|d| d.source == change.source)
            .and_then(|d| d.container.as_deref());
        let observed_at = time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .unwrap_or_default();
        Self {
            kind: change.source.kind.stakater_type(),
            name: &change.source.name,
            namespace,
            hash,
            container_refs: container.into_iter().collect(),
            observed_at,
        }
    }

    fn write(&self, object: &mut Value, kind: WorkloadKind) {
        let value = serde_json::to_string(self).ok();
        let template_metadata = format!("{}/metadata", kind.template_pointer());
        set_annotation(object, &template_metadata, fixed::LAST_RELOADED_FROM, value);
    }
}

/// What the mutating webhook admits, as a JSON patch of the review's object. An update that
/// carries no stamps and whose pod template otherwise equals the old one (a re-apply or
/// `kubectl replace` of a manifest without them, a label or scale change) keeps the old template
/// exactly, and the acknowledged record, so it never rolls. An update that carries stamps is the
/// writer's deliberate choice (the engine rolling, or a read-modify-write client) and is left as
/// is. A new workload, or a changed template (which rolls anyway), is stamped with the current
/// hashes, without copying the object: only the parts a stamp touches are copied and compared
/// ([`stamping_patch`]).
pub fn admission_patch(
    new: &Workload<'_>,
    old: Option<&Workload<'_>>,
    dependencies: &[Dependency],
    current: &(impl SourceView + ?Sized),
    strategy: ReloadStrategy,
    stamping: Stamping<'_>,
) -> Result<Patch, PlanError> {
    match same_template_as(new, old)? {
        Some(old) => Ok(super::diff::diff(new.object, &keeping_template(new, old))),
        None => stamping_patch(new, dependencies, current, strategy, stamping),
    }
}

/// The old workload when `new` is an update whose pod template equals the old one but for
/// stamps; `None` for a create or a changed template.
fn same_template_as<'o, 'w>(
    new: &Workload<'_>,
    old: Option<&'o Workload<'w>>,
) -> Result<Option<&'o Workload<'w>>, PlanError> {
    let new_template = new.template()?;
    Ok(old.filter(|o| {
        o.kind == new.kind
            && o.template()
                .is_ok_and(|t| without_stamps(new_template) == without_stamps(t))
    }))
}

/// An update whose template is the old one but for stamps: left as is when it carries stamps
/// (the writer's choice), else given the old template and acknowledged record back.
fn keeping_template(new: &Workload<'_>, old: &Workload<'_>) -> Value {
    let (Ok(new_template), Ok(old_template)) = (new.template(), old.template()) else {
        return new.object.clone();
    };
    if without_stamps(new_template) != *new_template {
        return new.object.clone();
    }
    let mut desired = new.object.clone();
    if let Some(slot) = desired.at_mut(new.kind.template_pointer()) {
        *slot = old_template.clone();
    }
    let new_record = new.annotation(fixed::ACKNOWLEDGED_HASHES);
    let old_record = old.annotation(fixed::ACKNOWLEDGED_HASHES).map(str::to_owned);
    if new_record.is_none() && old_record.is_some() {
        set_annotation(&mut desired, "/metadata", fixed::ACKNOWLEDGED_HASHES, old_record);
    }
    desired
}

/// The patch that stamps every dependency at its current hash, whatever was recorded before,
/// computed on a copy of only what stamping reads and writes: the object's and the template's
/// annotations, with every object on the way to them (empty otherwise) so paths and presence
/// are the object's. The webhook stamps every review; copying a whole workload was most of its
/// cost.
///
/// The webhook answers whoever reaches its port, so its patch is a function of the review and
/// of keyed values only ([`Stamping::answerable`]): under the annotations strategy the template
/// annotation, under env-vars the workload's metadata record ([`write_admission_stamp`]); it
/// never writes, changes or removes an env var, whose value would be (or be compared with)
/// Stakater's plain SHA-1. The engine writes those when it rolls, on the workload only those who
/// may read it see.
pub fn stamping_patch(
    workload: &Workload<'_>,
    dependencies: &[Dependency],
    current: &(impl SourceView + ?Sized),
    strategy: ReloadStrategy,
    stamping: Stamping<'_>,
) -> Result<Patch, PlanError> {
    workload.template()?;
    let template: Vec<&str> = workload.kind.template_pointer().split('/').skip(1).collect();
    let mut parts = json!({});
    copy_path(workload.object, &mut parts, &["metadata", "annotations"]);
    copy_path(
        workload.object,
        &mut parts,
        &[&template[..], &["metadata", "annotations"]].concat(),
    );
    let mut desired = parts.clone();
    let record = stamping.answerable(&full_record(dependencies, current));
    write_admission_stamp(&mut desired, workload.kind, &record, strategy);
    Ok(super::diff::diff(&parts, &desired))
}

/// Writes the webhook's `record` (already [`Stamping::answerable`]): in the template annotation
/// under the annotations strategy; on the workload's metadata under env-vars, where it
/// overrides whatever env vars the template carries (the engine reads it so).
fn write_admission_stamp(object: &mut Value, kind: WorkloadKind, record: &HashRecord, strategy: ReloadStrategy) {
    let template_metadata = format!("{}/metadata", kind.template_pointer());
    let (template_record, metadata_record) = match strategy {
        ReloadStrategy::Annotations => (record, &HashRecord::default()),
        ReloadStrategy::EnvVars => (&HashRecord::default(), record),
    };
    let value = (!template_record.is_empty()).then(|| template_record.render());
    set_annotation(object, &template_metadata, fixed::TEMPLATE_HASHES, value);
    set_metadata_record(object, metadata_record);
}

/// Copies `from`'s value at `path` into `to` (an object), creating the objects on the way; a
/// value on the way that is not an object is copied whole, and a missing one ends the copy.
fn copy_path(from: &Value, to: &mut Value, path: &[&str]) {
    let (Some((first, rest)), Some(from_map)) = (path.split_first(), from.as_object()) else {
        return;
    };
    let (Some(value), Some(to_map)) = (from_map.get(*first), to.as_object_mut()) else {
        return;
    };
    if rest.is_empty() || !value.is_object() {
        to_map.insert((*first).to_string(), value.clone());
        return;
    }
    let next = to_map.entry(first.to_string()).or_insert_with(|| json!({}));
    copy_path(value, next, rest);
}

/// A pod template with every reloader stamp removed (hash annotation, stamp-shaped env vars),
/// and the maps and lists that held only stamps dropped, for comparing what a person wrote.
fn without_stamps(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(metadata) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(map) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
            map.remove(fixed::TEMPLATE_HASHES);
            map.remove(fixed::LAST_RELOADED_FROM);
            if map.is_empty() {
                metadata.remove("annotations");
            }
        }
        if metadata.is_empty()
            && let Some(obj) = t.as_object_mut()
        {
            obj.remove("metadata");
        }
    }
    if let Some(containers) = t.at_mut("/spec/containers").and_then(Value::as_array_mut) {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                env.retain(|e| !e.get("name").and_then(Value::as_str).is_some_and(is_stamp_env_var));
                if env.is_empty() {
                    c.remove("env");
                }
            }
        }
    }
    t
}

/// Whether the workload names the source itself (a reference, or a reload-list item that is
/// its name), rather than finding it by a pattern or search/match: a source created later
/// that a pattern picks up is adopted, not rolled for (docs/compatibility.md #10).
fn names(dep: &Dependency) -> bool {
    match &dep.trigger {
        Trigger::Named { pattern } => *pattern == dep.source.name,
        Trigger::SearchMatch => false,
        // Auto-style triggers only take sources the pod template references.
        Trigger::Auto | Trigger::TypedAuto | Trigger::AutoReloadAll => true,
    }
}

/// The source's last change, if it was seen after `since`.
fn changed_after<'a>(
    current: &'a (impl SourceView + ?Sized),
    source: &SourceRef,
    since: Option<u64>,
) -> Option<&'a LastChange> {
    let since = since?;
    current
        .get(source)?
        .changed
        .as_ref()
        .filter(|change| change.seq > since)
}

/// What the plan records for `dependency` whose source is `state` now (`None`: absent): its
/// content hash, or under per-key reloads the hash of the keys it reads.
fn observed(state: Option<&SourceState>, dependency: &Dependency) -> Observed {
    match (state, dependency.stamped_keys()) {
        (None, _) => Observed::Absent,
        (Some(state), None) => Observed::Hash(state.hash.clone()),
        (Some(state), Some(keys)) => {
            Observed::Subset(keys.id(), Box::new(Observed::Hash(state.keys.subset_hash(keys))))
        }
    }
}

fn full_record(dependencies: &[Dependency], current: &(impl SourceView + ?Sized)) -> HashRecord {
    HashRecord(
        dependencies
            .iter()
            .map(|d| (d.source.clone(), observed(current.get(&d.source), d)))
            .collect(),
    )
}

/// Argo Rollouts with `rollout-strategy: restart` set `spec.restartAt`; the kinds whose pods the
/// reloader restarts itself record the restart's time (with `--pod-restarts`).
fn restarts_instead(workload: &Workload<'_>, options: PlanOptions) -> bool {
    let argo = workload.kind == WorkloadKind::Rollout
        && workload
            .annotation(fixed::ROLLOUT_STRATEGY)
            .is_some_and(|v| parse_rollout_strategy(fixed::ROLLOUT_STRATEGY, v) == Ok(RolloutStrategy::Restart));
    argo || (options.pod_restarts && super::pod_restart::restart_strategy(workload))
}

/// A hash annotation that does not parse counts as no record, so the next write replaces it.
fn parse_or_empty(text: Option<&str>) -> HashRecord {
    text.and_then(|t| HashRecord::parse(t).ok()).unwrap_or_default()
}

fn metadata_record(workload: &Workload<'_>) -> HashRecord {
    parse_or_empty(workload.annotation(fixed::ACKNOWLEDGED_HASHES))
}

/// What the workload says its pods were rolled with, overlaid by what was acknowledged since.
pub fn recorded(
    workload: &Workload<'_>,
    dependencies: &[Dependency],
    strategy: ReloadStrategy,
) -> Result<BTreeMap<SourceRef, Observed>, WorkloadError> {
    let annotation = parse_or_empty(workload.template_annotation(fixed::TEMPLATE_HASHES)?);
    let env = env_stamps(workload.template()?, dependencies);
    let mut record = match strategy {
        ReloadStrategy::Annotations => merged(annotation.0, env),
        ReloadStrategy::EnvVars => merged(env, annotation.0),
    };
    record.extend(metadata_record(workload).0);
    Ok(record)
}

fn merged(
    primary: BTreeMap<SourceRef, Observed>,
    mut secondary: BTreeMap<SourceRef, Observed>,
) -> BTreeMap<SourceRef, Observed> {
    secondary.extend(primary);
    secondary
}

fn containers(template: &Value) -> impl Iterator<Item = &Value> {
    template
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn container_name(c: &Value) -> Option<&str> {
    c.get("name").and_then(Value::as_str)
}

/// Stakater env-var stamps of the dependencies, looked up on the chosen container first, then
/// on any container (the choice may have moved since Stakater wrote it).
fn env_stamps(template: &Value, dependencies: &[Dependency]) -> BTreeMap<SourceRef, Observed> {
    let mut out = BTreeMap::new();
    for dep in dependencies {
        let var = env_var_name(&dep.source);
        // Stakater's SHA-1, or the plain `keys.<id>.<sha1>` of per-key reloads.
        let value_on = |c: &Value| {
            c.get("env")?
                .as_array()?
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(var.as_str()))?
                .get("value")?
                .as_str()
                .and_then(Observed::parse)
                .filter(Observed::is_plain)
        };
        let chosen = containers(template).find(|c| container_name(c) == dep.container.as_deref());
        let found = chosen
            .and_then(value_on)
            .or_else(|| containers(template).find_map(value_on));
        if let Some(observed) = found {
            out.insert(dep.source.clone(), observed);
        }
    }
    out
}

/// Returns the object at `pointer`, creating empty objects along the way.
fn object_at<'v>(value: &'v mut Value, pointer: &str) -> &'v mut Map<String, Value> {
    let mut node = value;
    for segment in pointer.split('/').skip(1) {
        if !node.is_object() {
            *node = json!({});
        }
        node = node
            .as_object_mut()
            .expect("just made an object")
            .entry(segment.to_string())
            .or_insert_with(|| json!({}));
    }
    if !node.is_object() {
        *node = json!({});
    }
    node.as_object_mut().expect("just made an object")
}

/// Sets or removes (when `value` is `None`) an annotation, dropping an emptied map.
fn set_annotation(object: &mut Value, metadata_pointer: &str, key: &str, value: Option<String>) {
    let exists = object.at(metadata_pointer).is_some();
    if value.is_none() && !exists {
        return;
    }
    let metadata = object_at(object, metadata_pointer);
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    let map = annotations.as_object_mut().expect("just made an object");
    match value {
        Some(v) => {
            map.insert(key.to_string(), Value::String(v));
        }
        None => {
            map.remove(key);
            if map.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
}

fn set_metadata_record(object: &mut Value, record: &HashRecord) {
    let value = (!record.is_empty()).then(|| record.render());
    set_annotation(object, "/metadata", fixed::ACKNOWLEDGED_HASHES, value);
}

fn set_restart_at(object: &mut Value, now: &str) {
    object_at(object, "/spec").insert("restartAt".into(), Value::String(now.into()));
}

fn write_template_stamp(
    object: &mut Value,
    kind: WorkloadKind,
    dependencies: &[Dependency],
    full: &HashRecord,
    strategy: ReloadStrategy,
    stamping: Stamping<'_>,
) {
    let template_metadata = format!("{}/metadata", kind.template_pointer());
    match strategy {
        ReloadStrategy::Annotations => {
            let sealed = stamping.seal(full);
            let value = (!sealed.is_empty()).then(|| sealed.render());
            set_annotation(object, &template_metadata, fixed::TEMPLATE_HASHES, value);
            set_metadata_record(object, &HashRecord::default());
        }
        ReloadStrategy::EnvVars => {
            let pointer = format!("{}/spec/containers", kind.template_pointer());
            if let Some(list) = object.at_mut(&pointer).and_then(Value::as_array_mut) {
                write_env_stamps(list, dependencies, full);
            }
            set_annotation(object, &template_metadata, fixed::TEMPLATE_HASHES, None);
            // Env vars cannot say "absent"; those entries live in the metadata record.
            let absent = HashRecord(
                full.0
                    .iter()
                    .filter(|(_, o)| **o == Observed::Absent)
                    .map(|(s, o)| (s.clone(), o.clone()))
                    .collect(),
            );
            set_metadata_record(object, &absent);
        }
    }
}

/// One var per present dependency on its chosen container; stamp-shaped vars that are stale
/// (no longer a dependency, or on another container) are removed — the pods roll anyway.
fn write_env_stamps(containers: &mut [Value], dependencies: &[Dependency], full: &HashRecord) {
    let mut wanted: BTreeMap<(String, String), String> = BTreeMap::new();
    for dep in dependencies {
        if let (Some(container), Some(observed)) = (&dep.container, full.0.get(&dep.source))
            && observed.is_plain()
        {
            wanted.insert((container.clone(), env_var_name(&dep.source)), observed.to_string());
        }
    }
    for c in containers.iter_mut() {
        let name = container_name(c).unwrap_or_default().to_string();
        let Some(obj) = c.as_object_mut() else {
            continue;
        };
        let env = obj.entry("env").or_insert_with(|| json!([]));
        if !env.is_array() {
            *env = json!([]);
        }
        let list = env.as_array_mut().expect("just made an array");
        list.retain(|e| {
            let var = e.get("name").and_then(Value::as_str).unwrap_or_default();
            !is_stamp_env_var(var) || wanted.contains_key(&(name.clone(), var.to_string()))
        });
        for ((container, var), hash) in &wanted {
            if *container != name {
                continue;
            }
            let entry = json!({"name": var, "value": hash});
            match list
                .iter_mut()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(var.as_str()))
            {
                Some(existing) => *existing = entry,
                None => list.push(entry),
            }
        }
        if list.is_empty() {
            obj.remove("env");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dependencies::{DependencyOptions, dependencies};
    use crate::core::hash::sha1_hex;
    use crate::core::keyed_hash::tests::ring;
    use crate::core::source::{SourceKind, SourceState};
    use crate::core::vocabulary::defaults;

    fn template_stamp(object: &Value) -> String {
        object["spec"]["template"]["metadata"]["annotations"][fixed::TEMPLATE_HASHES]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn keyed_stamps_hide_the_content_hash_and_switching_or_rotating_rolls_nothing() {
        let kind = WorkloadKind::Deployment;
        let obj = app(kind);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let v2 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s2")]);
        let a = ring("a", &["a"]);
        // Stamped plain (Stakater, an earlier version): a keyed ring reads it, nothing to do.
        let plain = stamp(kind, &obj, &v1, ReloadStrategy::Annotations);
        assert_eq!(
            plan_with(kind, &plain, &v1, PlanOptions::default(), &a).action,
            Action::UpToDate
        );
        // The next real change writes the keyed form, and says so in last-reloaded-from.
        let p = plan_with(kind, &plain, &v2, PlanOptions::default(), &a);
        assert_eq!(p.action, Action::Roll);
        let rolled = apply(&plain, &p.patch);
        let stamp = template_stamp(&rolled);
        assert!(stamp.contains("secret/db=k1.a."), "{stamp}");
        assert!(!stamp.contains(sha1_hex(b"s2").as_str()) && !stamp.contains(sha1_hex(b"v1").as_str()));
        let last: Value = serde_json::from_str(
            rolled["spec"]["template"]["metadata"]["annotations"][fixed::LAST_RELOADED_FROM]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(stamp.contains(&format!("secret/db={}", last["hash"].as_str().unwrap())));
        assert_eq!(
            plan_with(kind, &rolled, &v2, PlanOptions::default(), &a).action,
            Action::UpToDate
        );
        // Rotated: the old key still checks the old stamps.
        let rotated = ring("b", &["a", "b"]);
        assert_eq!(
            plan_with(kind, &rolled, &v2, PlanOptions::default(), &rotated).action,
            Action::UpToDate
        );
        let p = plan_with(kind, &rolled, &v1, PlanOptions::default(), &rotated);
        assert_eq!(p.action, Action::Roll, "a real change still rolls");
        assert!(template_stamp(&apply(&rolled, &p.patch)).contains("secret/db=k1.b."));
        // A stamp whose key is gone cannot be checked: adopted, never rolled on a guess.
        let lost = ring("b", &["b"]);
        assert_eq!(
            plan_with(kind, &rolled, &v1, PlanOptions::default(), &lost).action,
            Action::Acknowledge
        );
        // Keyed values depend on the namespace too: the same content elsewhere looks different.
        let d = deps(kind, &obj, &v1);
        let elsewhere = stamped(
            &Workload::new(kind, &obj),
            &d,
            &v1,
            ReloadStrategy::Annotations,
            Stamping {
                keys: &a,
                namespace: "other",
            },
        )
        .unwrap();
        assert_ne!(
            template_stamp(&elsewhere),
            template_stamp(&stamp_with(kind, &obj, &v1, ReloadStrategy::Annotations, &a))
        );
    }

    const NOW: &str = "2026-11-26T00:00:00Z";

    fn cm(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::ConfigMap, name)
    }
    fn secret(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::Secret, name)
    }

    fn app(kind: WorkloadKind) -> Value {
        let pod = json!({"metadata": {"labels": {"app": "x"}},
                         "spec": {"containers": [
                             {"name": "side", "image": "side:1"},
                             {"name": "app", "image": "app:1",
                              "env": [{"name": "PLAIN", "value": "1"}],
                              "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "db"}}]}]}});
        let mut obj = json!({"apiVersion": "apps/v1", "kind": kind.to_string(),
                             "metadata": {"name": "app", "namespace": "ns", "annotations": {defaults::AUTO: "true"}},
                             "spec": {}});
        let template_parent = object_at(&mut obj, kind.template_pointer().trim_end_matches("/template"));
        template_parent.insert("template".into(), pod);
        obj
    }

    type Current = BTreeMap<SourceRef, SourceState>;

    fn source(s: &SourceRef, hash: ContentHash) -> (SourceRef, SourceState) {
        let state = SourceState {
            source: s.clone(),
            annotations: BTreeMap::new(),
            hash,
            keys: Default::default(),
            changed: None,
        };
        (s.clone(), state)
    }

    fn hashes(pairs: &[(SourceRef, &str)]) -> Current {
        pairs.iter().map(|(s, c)| source(s, sha1_hex(c.as_bytes()))).collect()
    }

    fn deps(kind: WorkloadKind, obj: &Value, current: &Current) -> Vec<Dependency> {
        dependencies(&Workload::new(kind, obj), current, &DependencyOptions::default())
            .unwrap()
            .dependencies
    }

    fn plan_for(kind: WorkloadKind, obj: &Value, current: &Current, options: PlanOptions) -> Plan {
        plan_with(kind, obj, current, options, &StampKeyRing::plain())
    }

    fn stamping(keys: &StampKeyRing) -> Stamping<'_> {
        Stamping { keys, namespace: "ns" }
    }

    fn plan_with(
        kind: WorkloadKind,
        obj: &Value,
        current: &Current,
        options: PlanOptions,
        keys: &StampKeyRing,
    ) -> Plan {
        let d = deps(kind, obj, current);
        plan(&Workload::new(kind, obj), &d, current, options, stamping(keys), NOW).unwrap()
    }

    fn apply(obj: &Value, patch: &Patch) -> Value {
        let mut out = obj.clone();
        json_patch::patch(&mut out, patch).unwrap();
        out
    }

    /// The object as a roll to `current` leaves it (the engine's write, plain stamps).
    fn stamp(kind: WorkloadKind, obj: &Value, current: &Current, strategy: ReloadStrategy) -> Value {
        let d = deps(kind, obj, current);
        let mut desired = obj.clone();
        let full = full_record(&d, current);
        write_template_stamp(
            &mut desired,
            kind,
            &d,
            &full,
            strategy,
            stamping(&StampKeyRing::plain()),
        );
        desired
    }

    /// The object as the webhook admits it.
    fn stamp_with(
        kind: WorkloadKind,
        obj: &Value,
        current: &Current,
        strategy: ReloadStrategy,
        keys: &StampKeyRing,
    ) -> Value {
        let d = deps(kind, obj, current);
        stamped(&Workload::new(kind, obj), &d, current, strategy, stamping(keys)).unwrap()
    }

    #[test]
    fn unstamped_workload_is_acknowledged_not_rolled() {
        let obj = app(WorkloadKind::Deployment);
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let p = plan_for(WorkloadKind::Deployment, &obj, &current, PlanOptions::default());
        assert_eq!(p.action, Action::Acknowledge);
        assert_eq!(p.acknowledged, vec![cm("cfg"), secret("db")]);
        let expected = format!("configmap/cfg={},secret/db={}", sha1_hex(b"v1"), sha1_hex(b"s1"));
        assert_eq!(
            serde_json::to_value(&p.patch).unwrap(),
            json!([{"op": "add", "path": "/metadata/annotations/reloader.stakater.com~1acknowledged-hashes", "value": expected}])
        );
        // The pod template is untouched.
        assert_eq!(p.desired["spec"]["template"], obj["spec"]["template"]);
        // Then a change rolls, exactly once.
        let acked = apply(&obj, &p.patch);
        let again = plan_for(WorkloadKind::Deployment, &acked, &current, PlanOptions::default());
        assert_eq!(again.action, Action::UpToDate);
        assert!(again.patch.0.is_empty());
        let changed = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let roll = plan_for(WorkloadKind::Deployment, &acked, &changed, PlanOptions::default());
        assert_eq!(roll.action, Action::Roll);
        assert_eq!(
            roll.changes,
            vec![SourceChange {
                source: cm("cfg"),
                trigger: Trigger::Auto,
                change: Change::Changed {
                    from: Observed::Hash(sha1_hex(b"v1")),
                    to: sha1_hex(b"v2")
                }
            }]
        );
        let rolled = apply(&acked, &roll.patch);
        assert_eq!(
            rolled["spec"]["template"]["metadata"]["annotations"][fixed::TEMPLATE_HASHES],
            json!(format!(
                "configmap/cfg={},secret/db={}",
                sha1_hex(b"v2"),
                sha1_hex(b"s1")
            ))
        );
        assert!(
            rolled["metadata"]["annotations"]
                .get(fixed::ACKNOWLEDGED_HASHES)
                .is_none()
        );
        let settled = plan_for(WorkloadKind::Deployment, &rolled, &changed, PlanOptions::default());
        assert_eq!(settled.action, Action::UpToDate);
        assert!(settled.patch.0.is_empty());
    }

    /// `current` with `source`'s last change seen at `seq`, from `previous` (`None`: created).
    fn changed_at(mut current: Current, source: &SourceRef, previous: Option<&str>, seq: u64) -> Current {
        current.get_mut(source).unwrap().changed = Some(LastChange {
            previous: previous.map(|p| sha1_hex(p.as_bytes())),
            seq,
        });
        current
    }

    fn plan_seen(obj: &Value, current: &Current, options: PlanOptions, seen: Option<u64>) -> Plan {
        let d = deps(WorkloadKind::Deployment, obj, current);
        let w = Workload::new(WorkloadKind::Deployment, obj);
        let keys = StampKeyRing::plain();
        let assessed = assess(&w, &d, current, options, stamping(&keys), seen).unwrap();
        plan_assessed(&w, &d, &assessed, current, options, stamping(&keys), NOW)
    }

    /// Stakater's e2e sequence without the webhook: a workload is created, and its ConfigMap
    /// changes before the engine's first (windowed) reconcile of it. Its pods started with the
    /// old content: the change rolls it instead of being adopted.
    #[test]
    fn a_change_seen_after_an_unrecorded_workload_was_first_seen_rolls_it() {
        let obj = app(WorkloadKind::Deployment);
        let current = changed_at(
            hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]),
            &cm("cfg"),
            Some("v1"),
            7,
        );
        let p = plan_seen(&obj, &current, PlanOptions::default(), Some(5));
        assert_eq!(p.action, Action::Roll);
        assert_eq!(
            p.changes,
            vec![SourceChange {
                source: cm("cfg"),
                trigger: Trigger::Auto,
                change: Change::Changed {
                    from: Observed::Hash(sha1_hex(b"v1")),
                    to: sha1_hex(b"v2")
                }
            }]
        );
        // Every dependency is stamped; planning again finds nothing to do, whatever `seen` is.
        let rolled = apply(&obj, &p.patch);
        let expected = format!("configmap/cfg={},secret/db={}", sha1_hex(b"v2"), sha1_hex(b"s1"));
        assert_eq!(
            rolled["spec"]["template"]["metadata"]["annotations"][fixed::TEMPLATE_HASHES],
            json!(expected)
        );
        assert_eq!(
            plan_seen(&rolled, &current, PlanOptions::default(), Some(5)).action,
            Action::UpToDate
        );

        // A change seen before the workload was: its pods started with it; adopted.
        for seen in [Some(7), Some(9), None] {
            let p = plan_seen(&obj, &current, PlanOptions::default(), seen);
            assert_eq!(p.action, Action::Acknowledge, "seen {seen:?}");
        }
        // A workload with any record is compared with its record, never with its first sight.
        let mut acked = obj.clone();
        acked["metadata"]["annotations"][fixed::ACKNOWLEDGED_HASHES] = json!(format!("secret/db={}", sha1_hex(b"s1")));
        let p = plan_seen(&acked, &current, PlanOptions::default(), Some(5));
        assert_eq!(p.action, Action::Acknowledge);
        assert_eq!(p.acknowledged, vec![cm("cfg")]);
    }

    #[test]
    fn a_source_created_after_an_unrecorded_workload_was_first_seen_counts_as_created() {
        let obj = app(WorkloadKind::Deployment);
        let current = changed_at(hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]), &cm("cfg"), None, 7);
        let on_create = PlanOptions {
            reload_on_create: true,
            ..Default::default()
        };
        let p = plan_seen(&obj, &current, on_create, Some(5));
        assert_eq!(p.action, Action::Roll);
        assert_eq!(p.changes[0].change, Change::Created { to: sha1_hex(b"v1") });
        // Without --reload-on-create a creation is adopted, as for a recorded `absent`.
        let p = plan_seen(&obj, &current, PlanOptions::default(), Some(5));
        assert_eq!(p.action, Action::Acknowledge);
        assert_eq!(p.acknowledged, vec![cm("cfg"), secret("db")]);
        // A source a pattern picks up is adopted even with --reload-on-create (#10); one the
        // list names is created.
        for (item, action) in [("c.g", Action::Acknowledge), ("cfg", Action::Roll)] {
            let mut listed = obj.clone();
            listed["metadata"]["annotations"] = json!({defaults::CONFIGMAP_RELOAD: item});
            assert_eq!(
                plan_seen(&listed, &current, on_create, Some(5)).action,
                action,
                "{item}"
            );
        }
    }

    #[test]
    fn stamped_by_the_webhook_is_up_to_date() {
        let kind = WorkloadKind::StatefulSet;
        let obj = app(kind);
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let a = ring("a", &["a"]);
        for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
            let options = PlanOptions {
                strategy,
                ..Default::default()
            };
            let admitted = stamp_with(kind, &obj, &current, strategy, &a);
            let p = plan_with(kind, &admitted, &current, options, &a);
            assert_eq!(p.action, Action::UpToDate, "{strategy:?}");
            assert!(p.patch.0.is_empty());
            // Without a key the Secret is left out: adopted, never rolled.
            let admitted = stamp(kind, &obj, &current, strategy);
            let unkeyed = stamp_with(kind, &obj, &current, strategy, &StampKeyRing::plain());
            assert_ne!(unkeyed, admitted);
            let p = plan_for(kind, &unkeyed, &current, options);
            assert_eq!(p.action, Action::Acknowledge, "{strategy:?}");
            assert_eq!(p.acknowledged, vec![secret("db")]);
        }
    }

    /// The webhook answers whoever reaches its port: nothing in its patch is a plain hash of a
    /// Secret, keyed or not, under either strategy, whatever the review carries; env vars are
    /// neither written nor removed (their values would be compared with the Secret's hash).
    #[test]
    fn the_webhooks_patch_is_no_oracle_for_secret_contents() {
        let kind = WorkloadKind::Deployment;
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let secret_hash = sha1_hex(b"s1").to_string();
        let wrong_guess = sha1_hex(b"guess").to_string();
        for keys in [ring("a", &["a"]), StampKeyRing::plain()] {
            for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
                let mut patches = Vec::new();
                for guess in [&secret_hash, &wrong_guess] {
                    // A forged review carrying a guess in every place a stamp can be.
                    let mut obj = app(kind);
                    obj["spec"]["template"]["spec"]["containers"][1]["env"] =
                        json!([{"name": "STAKATER_DB_SECRET", "value": guess}]);
                    obj["spec"]["template"]["metadata"]["annotations"] =
                        json!({fixed::TEMPLATE_HASHES: format!("secret/db={guess}")});
                    obj["metadata"]["annotations"][fixed::ACKNOWLEDGED_HASHES] = json!(format!("secret/db={guess}"));
                    let d = deps(kind, &obj, &current);
                    let workload = Workload::new(kind, &obj);
                    let patch = admission_patch(&workload, None, &d, &current, strategy, stamping(&keys)).unwrap();
                    let text = serde_json::to_string(&patch).unwrap();
                    assert!(!text.contains(&secret_hash), "{strategy:?} {keys:?}: {text}");
                    assert!(!text.contains("/env"), "{strategy:?}: {text}");
                    patches.push(text.replace(guess.as_str(), "GUESS"));
                }
                // The right guess and a wrong one get the same answer.
                assert_eq!(patches[0], patches[1], "{strategy:?} {keys:?}");
            }
        }
    }

    #[test]
    fn label_only_source_changes_do_not_roll() {
        // Hashes cover data only, so the same hashes mean the same plan: nothing.
        let obj = app(WorkloadKind::Deployment);
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &current, ReloadStrategy::Annotations);
        let p = plan_for(
            WorkloadKind::Deployment,
            &admitted,
            &current.clone(),
            PlanOptions::default(),
        );
        assert_eq!(p.action, Action::UpToDate);
    }

    #[test]
    fn env_vars_match_stakater_stamps() {
        let mut obj = app(WorkloadKind::Deployment);
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        // As Stakater left it: both vars on the container that uses the sources.
        obj["spec"]["template"]["spec"]["containers"][1]["env"] = json!([
            {"name": "PLAIN", "value": "1"},
            {"name": "STAKATER_CFG_CONFIGMAP", "value": sha1_hex(b"v1").to_string()},
            {"name": "STAKATER_DB_SECRET", "value": sha1_hex(b"s1").to_string()}]);
        let options = PlanOptions {
            strategy: ReloadStrategy::EnvVars,
            ..Default::default()
        };
        let p = plan_for(WorkloadKind::Deployment, &obj, &current, options);
        assert_eq!(p.action, Action::UpToDate);
        assert!(p.patch.0.is_empty());

        // A secret rotation changes exactly that var.
        let rotated = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s2")]);
        let p = plan_for(WorkloadKind::Deployment, &obj, &rotated, options);
        assert_eq!(p.action, Action::Roll);
        assert_eq!(
            serde_json::to_value(&p.patch).unwrap(),
            json!([{"op": "replace", "path": "/spec/template/spec/containers/1/env/2/value",
                    "value": sha1_hex(b"s2").to_string()}])
        );
    }

    #[test]
    fn env_var_roll_collects_stale_vars() {
        let mut obj = app(WorkloadKind::Deployment);
        obj["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "STAKATER_OLD_NAME_SECRET", "value": sha1_hex(b"old").to_string()}]);
        obj["spec"]["template"]["spec"]["containers"][1]["env"] = json!([
            {"name": "PLAIN", "value": "1"},
            {"name": "STAKATER_CFG_CONFIGMAP", "value": sha1_hex(b"v0").to_string()}]);
        let current = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let options = PlanOptions {
            strategy: ReloadStrategy::EnvVars,
            ..Default::default()
        };
        let p = plan_for(WorkloadKind::Deployment, &obj, &current, options);
        assert_eq!(p.action, Action::Roll);
        let containers = &p.desired["spec"]["template"]["spec"]["containers"];
        assert!(containers[0].get("env").is_none(), "{containers}");
        assert_eq!(
            containers[1]["env"],
            json!([{"name": "PLAIN", "value": "1"},
                   {"name": "STAKATER_CFG_CONFIGMAP", "value": sha1_hex(b"v1").to_string()},
                   {"name": "STAKATER_DB_SECRET", "value": sha1_hex(b"s1").to_string()}])
        );
    }

    #[test]
    fn create_and_delete_follow_the_flags() {
        let obj = app(WorkloadKind::Deployment);
        let only_cfg = hashes(&[(cm("cfg"), "v1")]);
        let both = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let on = PlanOptions {
            reload_on_create: true,
            reload_on_delete: true,
            ..Default::default()
        };
        // Webhook admitted it while the secret did not exist yet.
        let admitted = stamp(WorkloadKind::Deployment, &obj, &only_cfg, ReloadStrategy::Annotations);
        assert!(
            admitted["spec"]["template"]["metadata"]["annotations"][fixed::TEMPLATE_HASHES]
                .as_str()
                .unwrap()
                .ends_with("secret/db=absent")
        );
        // Without reload-on-create its creation is only acknowledged.
        let p = plan_for(WorkloadKind::Deployment, &admitted, &both, PlanOptions::default());
        assert_eq!(p.action, Action::Acknowledge);
        // With it, the creation rolls.
        let p = plan_for(WorkloadKind::Deployment, &admitted, &both, on);
        assert_eq!(p.action, Action::Roll);
        assert_eq!(p.changes[0].change, Change::Created { to: sha1_hex(b"s1") });
        // Deleting it rolls only with reload-on-delete.
        let rolled = apply(&admitted, &p.patch);
        assert_eq!(
            plan_for(WorkloadKind::Deployment, &rolled, &only_cfg, PlanOptions::default()).action,
            Action::UpToDate
        );
        let p = plan_for(WorkloadKind::Deployment, &rolled, &only_cfg, on);
        assert_eq!(p.action, Action::Roll);
        assert_eq!(
            p.changes[0].change,
            Change::Deleted {
                from: Observed::Hash(sha1_hex(b"s1"))
            }
        );
    }

    #[test]
    fn cronjob_template_path() {
        let obj = app(WorkloadKind::CronJob);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::CronJob, &obj, &v1, ReloadStrategy::Annotations);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let p = plan_for(WorkloadKind::CronJob, &admitted, &v2, PlanOptions::default());
        assert_eq!(p.action, Action::Roll);
        let paths: Vec<String> = p.patch.0.iter().map(|op| op.path().to_string()).collect();
        assert_eq!(
            paths,
            vec![
                "/spec/jobTemplate/spec/template/metadata/annotations/reloader.stakater.com~1hashes",
                "/spec/jobTemplate/spec/template/metadata/annotations/reloader.stakater.com~1last-reloaded-from"
            ]
        );
    }

    fn last_reloaded_from(object: &Value) -> Option<&str> {
        object
            .at("/spec/template/metadata/annotations")?
            .get(fixed::LAST_RELOADED_FROM)?
            .as_str()
    }

    #[test]
    fn a_roll_says_what_it_answers_as_stakater_does_and_nothing_reads_it_back() {
        let obj = app(WorkloadKind::Deployment);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::Annotations);
        assert_eq!(last_reloaded_from(&admitted), None, "a stamp at create is no reload");
        let v2 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s2")]);
        let p = plan_for(WorkloadKind::Deployment, &admitted, &v2, PlanOptions::default());
        assert_eq!(p.action, Action::Roll);
        let rolled = apply(&admitted, &p.patch);
        assert_eq!(
            last_reloaded_from(&rolled),
            Some(
                format!(
                    r#"{{"type":"SECRET","name":"db","namespace":"ns","hash":"{}","containerRefs":["app"],"observedAt":1795651200}}"#,
                    sha1_hex(b"s2")
                )
                .as_str()
            )
        );
        // Informational only: removed or edited, it changes no decision.
        let mut edited = rolled.clone();
        edited["spec"]["template"]["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(fixed::LAST_RELOADED_FROM);
        for object in [&rolled, &edited] {
            let again = plan_for(WorkloadKind::Deployment, object, &v2, PlanOptions::default());
            assert_eq!(again.action, Action::UpToDate);
            assert!(again.patch.0.is_empty());
        }
        // The env-vars strategy keeps Stakater's env vars only.
        let options = PlanOptions {
            strategy: ReloadStrategy::EnvVars,
            ..Default::default()
        };
        let env = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::EnvVars);
        let p = plan_for(WorkloadKind::Deployment, &env, &v2, options);
        assert_eq!(p.action, Action::Roll);
        assert_eq!(last_reloaded_from(&apply(&env, &p.patch)), None);
    }

    #[test]
    fn a_deleted_source_is_reported_with_stakaters_marker() {
        let obj = app(WorkloadKind::Deployment);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::Annotations);
        let gone = hashes(&[(cm("cfg"), "v1")]);
        let options = PlanOptions {
            reload_on_delete: true,
            ..Default::default()
        };
        let p = plan_for(WorkloadKind::Deployment, &admitted, &gone, options);
        let rolled = apply(&admitted, &p.patch);
        let value: Value = serde_json::from_str(last_reloaded_from(&rolled).unwrap()).unwrap();
        assert_eq!(value["hash"], DELETED_MARKER_HASH);
        assert_eq!(value["name"], "db");
    }

    #[test]
    fn a_re_apply_without_last_reloaded_from_keeps_it() {
        let obj = app(WorkloadKind::Deployment);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::Annotations);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let p = plan_for(WorkloadKind::Deployment, &admitted, &v2, PlanOptions::default());
        let rolled = apply(&admitted, &p.patch);
        // `kubectl replace` with the manifest as written: no stamps at all.
        let kept = admit(&obj, Some(&rolled), &v2, ReloadStrategy::Annotations);
        assert_eq!(kept["spec"]["template"], rolled["spec"]["template"]);
    }

    #[test]
    fn argo_restart_strategy_sets_restart_at() {
        let mut obj = app(WorkloadKind::Rollout);
        obj["metadata"]["annotations"][fixed::ROLLOUT_STRATEGY] = json!("restart");
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Rollout, &obj, &v1, ReloadStrategy::Annotations);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let p = plan_for(WorkloadKind::Rollout, &admitted, &v2, PlanOptions::default());
        assert_eq!(p.action, Action::Restart);
        assert_eq!(p.desired["spec"]["restartAt"], json!(NOW));
        assert_eq!(p.desired["spec"]["template"], admitted["spec"]["template"]);
        let restarted = apply(&admitted, &p.patch);
        assert_eq!(
            plan_for(WorkloadKind::Rollout, &restarted, &v2, PlanOptions::default()).action,
            Action::UpToDate
        );
    }

    #[test]
    fn restart_strategy_records_the_restart_and_keeps_the_template() {
        let mut obj = app(WorkloadKind::Deployment);
        obj["metadata"]["annotations"][fixed::ROLLOUT_STRATEGY] = json!("restart");
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::Annotations);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let on = PlanOptions {
            pod_restarts: true,
            ..Default::default()
        };
        let p = plan_for(WorkloadKind::Deployment, &admitted, &v2, on);
        assert_eq!(p.action, Action::Restart);
        assert_eq!(p.desired["metadata"]["annotations"][fixed::RESTARTED_AT], json!(NOW));
        assert_eq!(p.desired["spec"]["template"], admitted["spec"]["template"]);
        let restarted = apply(&admitted, &p.patch);
        assert_eq!(
            plan_for(WorkloadKind::Deployment, &restarted, &v2, on).action,
            Action::UpToDate
        );
        // Without --pod-restarts the template is stamped as for any Deployment.
        let p = plan_for(WorkloadKind::Deployment, &admitted, &v2, PlanOptions::default());
        assert_eq!(p.action, Action::Roll);
    }

    #[test]
    fn notify_only_records_in_metadata_and_never_touches_the_template() {
        let obj = app(WorkloadKind::Deployment);
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let admitted = stamp(WorkloadKind::Deployment, &obj, &v1, ReloadStrategy::Annotations);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        let options = PlanOptions {
            notify_only: true,
            ..Default::default()
        };
        let p = plan_for(WorkloadKind::Deployment, &admitted, &v2, options);
        assert_eq!(p.action, Action::Notify);
        assert_eq!(p.desired["spec"], admitted["spec"]);
        let notified = apply(&admitted, &p.patch);
        assert_eq!(
            plan_for(WorkloadKind::Deployment, &notified, &v2, options).action,
            Action::UpToDate
        );
    }

    /// The whole object stamped, the straightforward way: the reference [`stamping_patch`] is
    /// checked against.
    fn stamped(
        workload: &Workload<'_>,
        dependencies: &[Dependency],
        current: &(impl SourceView + ?Sized),
        strategy: ReloadStrategy,
        stamping: Stamping<'_>,
    ) -> Result<Value, PlanError> {
        workload.template()?;
        let mut desired = workload.object.clone();
        let record = stamping.answerable(&full_record(dependencies, current));
        write_admission_stamp(&mut desired, workload.kind, &record, strategy);
        Ok(desired)
    }

    /// What the webhook admits: the review's object with its admission patch applied; a create
    /// is also checked against the whole stamped copy.
    /// The ring the webhook tests stamp with: a webhook always has one in a cluster.
    fn webhook_keys() -> StampKeyRing {
        ring("a", &["a"])
    }

    fn admit(new: &Value, old: Option<&Value>, current: &Current, strategy: ReloadStrategy) -> Value {
        let kind = WorkloadKind::Deployment;
        let d = deps(kind, new, current);
        let old = old.map(|o| Workload::new(kind, o));
        let keys = webhook_keys();
        let new = Workload::new(kind, new);
        let patch = admission_patch(&new, old.as_ref(), &d, current, strategy, stamping(&keys)).unwrap();
        let admitted = apply(new.object, &patch);
        if old.is_none() {
            let whole = stamped(&new, &d, current, strategy, stamping(&keys)).unwrap();
            assert_eq!(admitted, whole, "{strategy:?}");
        }
        admitted
    }

    #[test]
    fn webhook_keeps_stamps_when_the_template_is_unchanged() {
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
            let manifest = app(WorkloadKind::Deployment);
            let created = admit(&manifest, None, &v1, strategy);
            assert_ne!(created, manifest, "stamped at create");
            // Re-applying the stamp-less manifest, even after a source changed, keeps the old
            // template: the engine rolls for the change, the apply itself does not.
            let mut reapplied = manifest.clone();
            reapplied["metadata"]["labels"] = json!({"new": "label"});
            let admitted_update = admit(&reapplied, Some(&created), &v2, strategy);
            assert_eq!(
                admitted_update["spec"]["template"], created["spec"]["template"],
                "{strategy:?}"
            );
            assert_eq!(admitted_update["metadata"]["labels"], json!({"new": "label"}));
            // A real template change is stamped with the current hashes.
            let mut changed = created.clone();
            changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("side:2");
            let restamped = admit(&changed, Some(&created), &v2, strategy);
            let settled = plan_with(
                WorkloadKind::Deployment,
                &restamped,
                &v2,
                PlanOptions {
                    strategy,
                    ..Default::default()
                },
                &webhook_keys(),
            );
            assert_eq!(settled.action, Action::UpToDate, "{strategy:?}");
        }
    }

    #[test]
    fn webhook_leaves_a_deliberate_restamp_alone() {
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let v2 = hashes(&[(cm("cfg"), "v2"), (secret("db"), "s1")]);
        for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
            let options = PlanOptions {
                strategy,
                ..Default::default()
            };
            let old = admit(&app(WorkloadKind::Deployment), None, &v1, strategy);
            // The engine rolls: its write restamps the template; the webhook must not undo it.
            let roll = plan_with(WorkloadKind::Deployment, &old, &v2, options, &webhook_keys());
            assert_eq!(roll.action, Action::Roll);
            let engine_write = apply(&old, &roll.patch);
            assert_eq!(
                admit(&engine_write, Some(&old), &v2, strategy),
                engine_write,
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn webhook_keeps_the_acknowledged_record_on_replace() {
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let manifest = app(WorkloadKind::Deployment);
        let ack = plan_with(
            WorkloadKind::Deployment,
            &manifest,
            &v1,
            PlanOptions::default(),
            &webhook_keys(),
        );
        let acked = apply(&manifest, &ack.patch);
        let replaced = admit(&manifest, Some(&acked), &v1, ReloadStrategy::Annotations);
        assert_eq!(replaced, acked);
    }

    #[test]
    fn stripping_stamps_leaves_what_a_person_wrote() {
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        let manifest = app(WorkloadKind::Deployment);
        for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
            let stamped = stamp(WorkloadKind::Deployment, &manifest, &v1, strategy);
            assert_eq!(
                without_stamps(&stamped["spec"]["template"]),
                without_stamps(&manifest["spec"]["template"])
            );
            assert_eq!(
                without_stamps(&manifest["spec"]["template"]),
                manifest["spec"]["template"]
            );
        }
    }

    #[test]
    fn unparseable_record_counts_as_none() {
        let mut obj = app(WorkloadKind::Deployment);
        obj["spec"]["template"]["metadata"]["annotations"] = json!({fixed::TEMPLATE_HASHES: "garbage"});
        let v1 = hashes(&[(cm("cfg"), "v1"), (secret("db"), "s1")]);
        assert_eq!(
            plan_for(WorkloadKind::Deployment, &obj, &v1, PlanOptions::default()).action,
            Action::Acknowledge
        );
    }

    #[test]
    fn strategies_parse_from_flags() {
        assert_eq!(ReloadStrategy::from_flag("env-vars"), Some(ReloadStrategy::EnvVars));
        assert_eq!(
            ReloadStrategy::from_flag("annotations"),
            Some(ReloadStrategy::Annotations)
        );
        assert_eq!(ReloadStrategy::from_flag("default"), None);
    }

    /// Per-key reloads: a Deployment reading `DB_HOST` of ConfigMap `cfg` (`configMapKeyRef`,
    /// and `FEATURE`, optional and absent) and `password` of Secret `db` (volume `items`).
    mod per_key {
        use super::*;
        use crate::core::hash::configmap_hash;
        use crate::core::per_key::{KeyDigests, KeySet};

        pub(super) fn reader(kind: WorkloadKind, per_key: Option<&str>) -> Value {
            let mut obj = app(kind);
            let pointer = format!("{}/spec", kind.template_pointer());
            let spec = obj.at_mut(&pointer).unwrap();
            spec["containers"][1] = json!({"name": "app", "image": "app:1",
                "env": [{"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DB_HOST"}}},
                        {"name": "FEATURE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "FEATURE", "optional": true}}}],
                "volumeMounts": [{"name": "db", "mountPath": "/db"}]});
            spec["volumes"] =
                json!([{"name": "db", "secret": {"secretName": "db", "items": [{"key": "password", "path": "p"}]}}]);
            if let Some(value) = per_key {
                obj["metadata"]["annotations"][fixed::PER_KEY] = json!(value);
            }
            obj
        }

        /// A source with these keys, its hashes computed as the watchers compute them.
        pub(super) fn data(s: &SourceRef, pairs: &[(&str, &str)]) -> (SourceRef, SourceState) {
            let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let (hash, keys) = if s.kind == SourceKind::ConfigMap {
                (configmap_hash(&map, []), KeyDigests::of_config_map(&map, []))
            } else {
                let bytes = map.iter().map(|(k, v)| (k, v.as_bytes()));
                (
                    crate::core::hash::secret_hash(bytes.clone()),
                    KeyDigests::of_secret(bytes),
                )
            };
            let state = SourceState {
                source: s.clone(),
                annotations: BTreeMap::new(),
                hash,
                keys,
                changed: None,
            };
            (s.clone(), state)
        }

        pub(super) fn sources(host: &str, port: &str, password: &str, user: &str) -> Current {
            [
                data(&cm("cfg"), &[("DB_HOST", host), ("DB_PORT", port), ("LOG", "info")]),
                data(&secret("db"), &[("password", password), ("user", user)]),
            ]
            .into_iter()
            .collect()
        }

        fn action(kind: WorkloadKind, obj: &Value, current: &Current, o: PlanOptions, keys: &StampKeyRing) -> Action {
            plan_with(kind, obj, current, o, keys).action
        }

        fn options(strategy: ReloadStrategy) -> PlanOptions {
            PlanOptions {
                strategy,
                ..Default::default()
            }
        }

        fn strategies() -> [(ReloadStrategy, StampKeyRing); 3] {
            [
                (ReloadStrategy::Annotations, ring("a", &["a"])),
                (ReloadStrategy::Annotations, StampKeyRing::plain()),
                (ReloadStrategy::EnvVars, StampKeyRing::plain()),
            ]
        }

        /// The object after `plan`'s patch, checked to be settled.
        fn settle(
            kind: WorkloadKind,
            obj: &Value,
            current: &Current,
            options: PlanOptions,
            keys: &StampKeyRing,
        ) -> Value {
            let p = plan_with(kind, obj, current, options, keys);
            let after = apply(obj, &p.patch);
            assert_eq!(plan_with(kind, &after, current, options, keys).action, Action::UpToDate);
            after
        }

        #[test]
        fn an_unread_key_changing_is_up_to_date_and_a_read_key_changing_rolls_once() {
            let kind = WorkloadKind::Deployment;
            let obj = reader(kind, Some("true"));
            let v1 = sources("db1", "5432", "p1", "admin");
            for (strategy, keys) in strategies() {
                let o = options(strategy);
                let p = plan_with(kind, &obj, &v1, o, &keys);
                assert_eq!(p.action, Action::Acknowledge, "{strategy:?}");
                let acked = apply(&obj, &p.patch);
                // Keys it does not read: nothing to do.
                let unread = sources("db1", "6543", "p1", "root");
                assert_eq!(
                    action(kind, &acked, &unread, o, &keys),
                    Action::UpToDate,
                    "{strategy:?}"
                );
                // A key it reads: one roll, stamped with the hashes of the keys it reads.
                for read in [
                    sources("db2", "6543", "p1", "root"),
                    sources("db1", "6543", "p2", "root"),
                ] {
                    let p = plan_with(kind, &acked, &read, o, &keys);
                    assert_eq!(p.action, Action::Roll, "{strategy:?}");
                    assert_eq!(p.changes.len(), 1);
                    let rolled = apply(&acked, &p.patch);
                    assert_eq!(action(kind, &rolled, &read, o, &keys), Action::UpToDate);
                    let id = ["DB_HOST", "FEATURE"].into_iter().collect::<KeySet>().id();
                    let cfg = format!("keys.{id}.");
                    match strategy {
                        ReloadStrategy::Annotations => {
                            let stamp = template_stamp(&rolled);
                            assert!(stamp.starts_with(&format!("configmap/cfg={cfg}")), "{stamp}");
                            assert!(stamp.contains("secret/db=keys."), "{stamp}");
                            assert_eq!(stamp.contains(".k1.a."), keys.current().is_some(), "{stamp}");
                        }
                        ReloadStrategy::EnvVars => {
                            let env = &rolled["spec"]["template"]["spec"]["containers"][1]["env"];
                            let var = env
                                .as_array()
                                .unwrap()
                                .iter()
                                .find(|e| e["name"] == "STAKATER_CFG_CONFIGMAP");
                            let value = var.unwrap()["value"].as_str().unwrap();
                            let subset = read[&cm("cfg")]
                                .keys
                                .subset_hash(&["DB_HOST", "FEATURE"].into_iter().collect());
                            assert_eq!(value, format!("{cfg}{subset}"));
                        }
                    }
                }
                // An optional key it reads appearing rolls.
                let mut featured = v1.clone();
                featured.extend([data(
                    &cm("cfg"),
                    &[
                        ("DB_HOST", "db1"),
                        ("DB_PORT", "5432"),
                        ("LOG", "info"),
                        ("FEATURE", "on"),
                    ],
                )]);
                assert_eq!(action(kind, &acked, &featured, o, &keys), Action::Roll, "{strategy:?}");
            }
        }

        #[test]
        fn turning_per_key_on_or_off_adopts_without_a_rollout() {
            let kind = WorkloadKind::StatefulSet;
            let v1 = sources("db1", "5432", "p1", "admin");
            for (strategy, keys) in strategies() {
                let o = options(strategy);
                // Recorded whole (per-key off), then turned on: adopted, no rollout.
                let whole = settle(kind, &reader(kind, None), &v1, o, &keys);
                let mut on = whole.clone();
                on["metadata"]["annotations"][fixed::PER_KEY] = json!("true");
                let p = plan_with(kind, &on, &v1, o, &keys);
                assert_eq!(p.action, Action::Acknowledge, "{strategy:?}");
                assert_eq!(p.acknowledged, vec![cm("cfg"), secret("db")]);
                let on = apply(&on, &p.patch);
                let unread = sources("db1", "6543", "p1", "root");
                assert_eq!(action(kind, &on, &unread, o, &keys), Action::UpToDate, "{strategy:?}");
                // Turned on with a whole record of other content: that content changed since,
                // and which keys is not known: it rolls, as it would have before.
                let mut stale_on = whole.clone();
                stale_on["metadata"]["annotations"][fixed::PER_KEY] = json!("true");
                assert_eq!(action(kind, &stale_on, &unread, o, &keys), Action::Roll);

                // Recorded per key, then turned off: adopted (the keys it reads are the same).
                let mut off = on.clone();
                off["metadata"]["annotations"][fixed::PER_KEY] = json!("false");
                let p = plan_with(kind, &off, &unread, o, &keys);
                assert_eq!(p.action, Action::Acknowledge, "{strategy:?}");
                let off = apply(&off, &p.patch);
                // Now whole again: any change rolls.
                assert_eq!(action(kind, &off, &v1, o, &keys), Action::Roll, "{strategy:?}");
                // Turned off after a key it reads changed: it rolls.
                let mut late = on.clone();
                late["metadata"]["annotations"][fixed::PER_KEY] = json!("false");
                let read = sources("db2", "5432", "p1", "admin");
                assert_eq!(action(kind, &late, &read, o, &keys), Action::Roll, "{strategy:?}");
            }
        }

        #[test]
        fn the_flag_is_the_default_and_the_annotation_wins() {
            let kind = WorkloadKind::Deployment;
            let v1 = sources("db1", "5432", "p1", "admin");
            let unread = sources("db1", "6543", "p1", "root");
            let planned = |obj: &Value, current: &Current, flag: bool| {
                let options = DependencyOptions {
                    per_key_reloads: flag,
                    ..Default::default()
                };
                let d = dependencies(&Workload::new(kind, obj), current, &options)
                    .unwrap()
                    .dependencies;
                let keys = StampKeyRing::plain();
                plan(
                    &Workload::new(kind, obj),
                    &d,
                    current,
                    PlanOptions::default(),
                    stamping(&keys),
                    NOW,
                )
                .unwrap()
            };
            for (annotation, flag, per_key) in [
                (None, false, false),
                (None, true, true),
                (Some("true"), false, true),
                (Some("false"), true, false),
                // Neither "true" nor "false" (the webhook refuses it): the flag decides.
                (Some("yes"), false, false),
            ] {
                let obj = reader(kind, annotation);
                let acked = apply(&obj, &planned(&obj, &v1, flag).patch);
                let action = planned(&acked, &unread, flag).action;
                let want = if per_key { Action::UpToDate } else { Action::Roll };
                assert_eq!(action, want, "{annotation:?} {flag}");
            }
        }

        #[test]
        fn reading_other_keys_adopts_and_whole_uses_stay_whole() {
            let kind = WorkloadKind::Deployment;
            let v1 = sources("db1", "5432", "p1", "admin");
            let keys = ring("a", &["a"]);
            let o = options(ReloadStrategy::Annotations);
            let stamped = settle(kind, &reader(kind, Some("true")), &v1, o, &keys);
            // The template now reads DB_PORT too (a template change, which rolls the pods with
            // the content now): the record for other keys is adopted, not rolled for.
            let mut more = stamped.clone();
            more["spec"]["template"]["spec"]["containers"][1]["env"][1]["valueFrom"]["configMapKeyRef"]["key"] =
                json!("DB_PORT");
            let p = plan_with(kind, &more, &v1, o, &keys);
            assert_eq!(
                (p.action, p.acknowledged.clone()),
                (Action::Acknowledge, vec![cm("cfg")])
            );
            // envFrom of the same ConfigMap reads all of it: whole content.
            let mut whole = stamped.clone();
            whole["spec"]["template"]["spec"]["containers"][1]["envFrom"] = json!([{"configMapRef": {"name": "cfg"}}]);
            let p = plan_with(kind, &whole, &v1, o, &keys);
            assert_eq!(p.action, Action::Acknowledge);
            let whole = apply(&whole, &p.patch);
            let stamp = whole["metadata"]["annotations"][fixed::ACKNOWLEDGED_HASHES]
                .as_str()
                .unwrap();
            assert!(
                stamp.starts_with("configmap/cfg=k1.a.") && stamp.contains("secret/db=keys."),
                "{stamp}"
            );
            assert_eq!(
                plan_with(kind, &whole, &sources("db1", "6543", "p1", "admin"), o, &keys).action,
                Action::Roll
            );
        }

        #[test]
        fn stamped_by_the_webhook_per_key_is_up_to_date() {
            let kind = WorkloadKind::Deployment;
            let obj = reader(kind, Some("true"));
            let v1 = sources("db1", "5432", "p1", "admin");
            let keys = ring("a", &["a"]);
            for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
                let admitted = stamp_with(kind, &obj, &v1, strategy, &keys);
                let text = serde_json::to_string(&admitted).unwrap();
                assert!(
                    text.contains("configmap/cfg=keys.") && text.contains("secret/db=keys."),
                    "{text}"
                );
                let o = options(strategy);
                assert_eq!(action(kind, &admitted, &v1, o, &keys), Action::UpToDate, "{strategy:?}");
                let unread = sources("db1", "6543", "p1", "root");
                assert_eq!(action(kind, &admitted, &unread, o, &keys), Action::UpToDate);
                // Without a key the Secret's plain subset hash is left out, as its whole hash is.
                let plain = stamp_with(kind, &obj, &v1, strategy, &StampKeyRing::plain());
                let text = serde_json::to_string(&plain).unwrap();
                assert!(
                    text.contains("configmap/cfg=keys.") && !text.contains("secret/db"),
                    "{text}"
                );
            }
        }

        #[test]
        fn waves_count_a_member_whose_keys_did_not_change_as_carrying() {
            let kind = WorkloadKind::Deployment;
            let v1 = sources("db1", "5432", "p1", "admin");
            let unread = sources("db1", "6543", "p1", "root");
            let read = sources("db2", "5432", "p1", "admin");
            for (strategy, keys) in strategies() {
                let stamped = settle(kind, &reader(kind, Some("true")), &v1, options(strategy), &keys);
                let w = Workload::new(kind, &stamped);
                let carried =
                    |current: &Current, s: &SourceRef| carries(&w, s, current.get(s), false, strategy, stamping(&keys));
                assert!(carried(&v1, &cm("cfg")) && carried(&unread, &cm("cfg")) && carried(&unread, &secret("db")));
                assert!(!carried(&read, &cm("cfg")), "{strategy:?}");
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn kinds() -> impl Strategy<Value = WorkloadKind> {
            prop::sample::select(WorkloadKind::ALL.to_vec())
        }

        /// A recorded state: per source, nothing / absent / some content.
        fn record_state() -> impl Strategy<Value = Option<Option<u8>>> {
            prop::option::of(prop::option::of(0u8..3))
        }

        proptest! {
            /// Whatever the workload recorded and whatever the sources hold now, applying the
            /// plan's patch yields the desired object, and planning again finds nothing to do.
            #[test]
            fn patch_reaches_desired_and_second_plan_is_empty(
                kind in kinds(),
                keyed in any::<bool>(),
                env_strategy in any::<bool>(),
                on_create in any::<bool>(),
                on_delete in any::<bool>(),
                notify in any::<bool>(),
                template_cfg in record_state(),
                template_db in record_state(),
                acked_cfg in record_state(),
                now_cfg in prop::option::of(0u8..3),
                now_db in prop::option::of(0u8..3),
                stray_env in any::<bool>(),
            ) {
                let mut obj = app(kind);
                let content = |v: u8| sha1_hex(&[v]);
                let render = |s: &SourceRef, o: Option<u8>| match o {
                    Some(v) => format!("{s}={}", content(v)),
                    None => format!("{s}=absent"),
                };
                let template_entries: Vec<String> = [(cm("cfg"), template_cfg), (secret("db"), template_db)]
                    .into_iter()
                    .filter_map(|(s, st)| st.map(|o| render(&s, o)))
                    .collect();
                if !template_entries.is_empty() {
                    let pointer = format!("{}/metadata", kind.template_pointer());
                    object_at(&mut obj, &pointer)
                        .insert("annotations".into(), json!({fixed::TEMPLATE_HASHES: template_entries.join(",")}));
                }
                if let Some(o) = acked_cfg {
                    obj["metadata"]["annotations"][fixed::ACKNOWLEDGED_HASHES] = json!(render(&cm("cfg"), o));
                }
                if stray_env {
                    let pointer = format!("{}/spec/containers/0", kind.template_pointer());
                    obj.at_mut(&pointer).unwrap()["env"] =
                        json!([{"name": "STAKATER_GONE_SECRET", "value": content(9).to_string()}]);
                }
                let mut current = BTreeMap::new();
                if let Some(v) = now_cfg { current.extend([source(&cm("cfg"), content(v))]); }
                if let Some(v) = now_db { current.extend([source(&secret("db"), content(v))]); }
                let options = PlanOptions {
                    strategy: if env_strategy { ReloadStrategy::EnvVars } else { ReloadStrategy::Annotations },
                    reload_on_create: on_create,
                    reload_on_delete: on_delete,
                    notify_only: notify,
                    pod_restarts: false,
                };

                let keys = if keyed { ring("a", &["a"]) } else { StampKeyRing::plain() };
                let first = plan_with(kind, &obj, &current, options, &keys);
                let applied = apply(&obj, &first.patch);
                prop_assert_eq!(&applied, &first.desired);
                // `carries` says what `assess` says: a source is carried when it is up to date,
                // and after a roll every dependency is.
                let d = deps(kind, &obj, &current);
                let workload = Workload::new(kind, &obj);
                let assessed = assess(&workload, &d, &current, options, stamping(&keys), None).unwrap();
                for a in &assessed {
                    let carried = carries(&workload, &a.source, current.get(&a.source), false, options.strategy, stamping(&keys));
                    prop_assert_eq!(carried, a.outcome == SourceOutcome::UpToDate, "{:?}", a);
                    if first.action == Action::Roll {
                        let rolled = Workload::new(kind, &applied);
                        prop_assert!(carries(&rolled, &a.source, current.get(&a.source), false, options.strategy, stamping(&keys)));
                    }
                }
                let second = plan_with(kind, &applied, &current, options, &keys);
                prop_assert_eq!(second.action, Action::UpToDate);
                prop_assert!(second.patch.0.is_empty(), "second patch: {:?}", second.patch);
                prop_assert_eq!(first.patch.0.is_empty(), first.action == Action::UpToDate);
            }

            /// Per-key reloads, turned on or off or left, with any content before and after: a
            /// change to a key the workload reads always rolls, nothing else ever does, planning
            /// again after the patch finds nothing to do, and `carries` says what `assess`
            /// says.
            #[test]
            fn per_key_rolls_exactly_for_the_keys_read(
                kind in kinds(),
                keyed in any::<bool>(),
                env_strategy in any::<bool>(),
                flag in any::<bool>(),
                before in prop::option::of(any::<bool>()),
                after in prop::option::of(any::<bool>()),
                was in prop::collection::vec(0u8..2, 5),
                now in prop::collection::vec(0u8..2, 5),
            ) {
                use super::per_key::{data, reader};
                let content = |v: &[u8]| -> Current {
                    let feature: &[(&str, &str)] = if v[4] == 1 { &[("FEATURE", "on")] } else { &[] };
                    let host = ["db1", "db2"][usize::from(v[0])];
                    let port = ["5432", "6543"][usize::from(v[1])];
                    let mut cfg = vec![("DB_HOST", host), ("DB_PORT", port)];
                    cfg.extend_from_slice(feature);
                    let password = ["p1", "p2"][usize::from(v[2])];
                    let user = ["admin", "root"][usize::from(v[3])];
                    [data(&cm("cfg"), &cfg), data(&secret("db"), &[("password", password), ("user", user)])]
                        .into_iter()
                        .collect()
                };
                let switch = |on: Option<bool>| on.map(|b| if b { "true" } else { "false" });
                let strategy = if env_strategy { ReloadStrategy::EnvVars } else { ReloadStrategy::Annotations };
                let options = PlanOptions { strategy, ..Default::default() };
                let keys = if keyed { ring("a", &["a"]) } else { StampKeyRing::plain() };
                let dependency_options = DependencyOptions { per_key_reloads: flag, ..Default::default() };
                let planned = |obj: &Value, current: &Current| {
                    let w = Workload::new(kind, obj);
                    let d = dependencies(&w, current, &dependency_options).unwrap().dependencies;
                    let assessed = assess(&w, &d, current, options, stamping(&keys), None).unwrap();
                    let p = plan_assessed(&w, &d, &assessed, current, options, stamping(&keys), NOW);
                    (assessed, p)
                };
                let (c1, c2) = (content(&was), content(&now));
                let first = reader(kind, switch(before));
                let settled = apply(&first, &planned(&first, &c1).1.patch);
                prop_assert_eq!(planned(&settled, &c1).1.action, Action::UpToDate);

                let mut obj = settled.clone();
                match switch(after) {
                    Some(v) => { obj["metadata"]["annotations"][fixed::PER_KEY] = json!(v); }
                    None => { obj["metadata"]["annotations"].as_object_mut().unwrap().remove(fixed::PER_KEY); }
                }
                let (assessed, p) = planned(&obj, &c2);
                // The keys it reads: DB_HOST, FEATURE (optional), password.
                let read_changed = was[0] != now[0] || was[2] != now[2] || was[4] != now[4];
                let whole_changed = was != now;
                let per_key_before = before.unwrap_or(flag);
                // Recorded per key, its keys unchanged: no rollout, whether per-key stays on or
                // not. Recorded whole: any change of the whole content rolls, as it always did.
                let rolls = read_changed || (!per_key_before && whole_changed);
                prop_assert_eq!(p.action == Action::Roll, rolls, "{:?}", p.action);
                let applied = apply(&obj, &p.patch);
                let again = planned(&applied, &c2).1;
                prop_assert_eq!(again.action, Action::UpToDate);
                prop_assert!(again.patch.0.is_empty(), "second patch: {:?}", again.patch);
                let w = Workload::new(kind, &obj);
                for a in &assessed {
                    let carried = carries(&w, &a.source, c2.get(&a.source), flag, strategy, stamping(&keys));
                    let current = matches!(a.outcome, SourceOutcome::UpToDate | SourceOutcome::Adopt(_));
                    prop_assert_eq!(carried, current, "{:?}", a);
                }
            }

            /// The webhook's patch, made from copies of only the parts stamping touches, is the
            /// diff of the whole object and the whole stamped copy, whatever those parts hold.
            #[test]
            fn stamping_patch_is_the_whole_diff(
                kind in kinds(),
                keyed in any::<bool>(),
                env_strategy in any::<bool>(),
                template_cfg in record_state(),
                acked_cfg in record_state(),
                now_cfg in prop::option::of(0u8..3),
                now_db in prop::option::of(0u8..3),
                stray_env in any::<bool>(),
                shape in 0u8..6,
            ) {
                let mut obj = app(kind);
                let content = |v: u8| sha1_hex(&[v]);
                let render = |s: &SourceRef, o: Option<u8>| match o {
                    Some(v) => format!("{s}={}", content(v)),
                    None => format!("{s}=absent"),
                };
                let template_metadata = format!("{}/metadata", kind.template_pointer());
                if let Some(o) = template_cfg {
                    object_at(&mut obj, &template_metadata)
                        .insert("annotations".into(), json!({fixed::TEMPLATE_HASHES: render(&cm("cfg"), o), "team": "a"}));
                }
                if let Some(o) = acked_cfg {
                    obj["metadata"]["annotations"][fixed::ACKNOWLEDGED_HASHES] = json!(render(&cm("cfg"), o));
                }
                if stray_env {
                    let pointer = format!("{}/spec/containers/0", kind.template_pointer());
                    obj.at_mut(&pointer).unwrap()["env"] =
                        json!([{"name": "STAKATER_GONE_SECRET", "value": content(9).to_string()}]);
                }
                // Odd shapes of the parts stamping writes to.
                let template = obj.at_mut(kind.template_pointer()).unwrap().as_object_mut().unwrap();
                match shape {
                    1 => { template.remove("metadata"); }
                    2 => { template.insert("metadata".into(), json!({"labels": {"app": "x"}})); }
                    3 => { template.insert("metadata".into(), json!({"annotations": "not a map"})); }
                    4 => { template.insert("metadata".into(), json!(null)); }
                    5 => { obj["metadata"].as_object_mut().unwrap().remove("annotations"); }
                    _ => {}
                }
                let mut current = BTreeMap::new();
                if let Some(v) = now_cfg { current.extend([source(&cm("cfg"), content(v))]); }
                if let Some(v) = now_db { current.extend([source(&secret("db"), content(v))]); }
                let strategy = if env_strategy { ReloadStrategy::EnvVars } else { ReloadStrategy::Annotations };
                let keys = if keyed { ring("a", &["a"]) } else { StampKeyRing::plain() };
                let d = deps(kind, &obj, &current);
                let workload = Workload::new(kind, &obj);
                let whole = stamped(&workload, &d, &current, strategy, stamping(&keys)).unwrap();
                let patch = stamping_patch(&workload, &d, &current, strategy, stamping(&keys)).unwrap();
                prop_assert_eq!(&patch, &crate::core::diff::diff(&obj, &whole));
                prop_assert_eq!(apply(&obj, &patch), whole);
            }

            /// The webhook's stamp is always up to date for the engine.
            #[test]
            fn stamped_objects_plan_empty(
                kind in kinds(),
                keyed in any::<bool>(),
                env_strategy in any::<bool>(),
                now_cfg in prop::option::of(0u8..3),
                now_db in prop::option::of(0u8..3),
            ) {
                let obj = app(kind);
                let mut current = BTreeMap::new();
                if let Some(v) = now_cfg { current.extend([source(&cm("cfg"), sha1_hex(&[v]))]); }
                if let Some(v) = now_db { current.extend([source(&secret("db"), sha1_hex(&[v]))]); }
                let strategy = if env_strategy { ReloadStrategy::EnvVars } else { ReloadStrategy::Annotations };
                let keys = if keyed { ring("a", &["a"]) } else { StampKeyRing::plain() };
                let admitted = stamp_with(kind, &obj, &current, strategy, &keys);
                let options = PlanOptions { strategy, ..Default::default() };
                let p = plan_with(kind, &admitted, &current, options, &keys);
                if keyed || now_db.is_none() {
                    prop_assert_eq!(p.action, Action::UpToDate);
                    prop_assert!(p.patch.0.is_empty());
                } else {
                    // Without a key the webhook leaves the Secret out: the engine adopts it.
                    prop_assert_eq!(p.action, Action::Acknowledge);
                    prop_assert_eq!(p.acknowledged, vec![secret("db")]);
                    let adopted = apply(&admitted, &p.patch);
                    prop_assert_eq!(plan_with(kind, &adopted, &current, options, &keys).action, Action::UpToDate);
                }
            }
        }
    }
}
