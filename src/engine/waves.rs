//! Rollout waves in the engine: the members of a changed source's waves gathered from the store
//! for the pure gate ([`crate::core::wave_gate`]), the workloads to wake when a member's health
//! changes, and the Warning Events of a halted wave.
//!
//! Everything the gate reads comes from the cluster (which members carry the source's current
//! content, by their stamps; how their rollouts are doing, by their status), so a restart or a
//! new leader resumes where the waves were. Only which halts were reported is kept in memory: a
//! restarted reloader reports a standing halt once more.
//!
//! A workload that rolls for another source, one without waves, restarts its pods, which then
//! read the gated source's new content too: waves order the rollouts a source's change causes,
//! not who reads it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::Value;

use super::context::Context;
use super::events::{EventType, component, workload_reference};
use crate::core::hash::ContentHash;
use crate::core::plan::{Action, Plan, Stamping};
use crate::core::rollout_status::RolloutHealth;
use crate::core::source::{SourceKind, SourceRef};
use crate::core::vocabulary::fixed;
use crate::core::wave_gate::{Member, WaveWait, label, wave_wait};
use crate::core::waves::WaveSizes;
use crate::core::workload::Workload;
use crate::store::{StoredWorkload, WorkloadKey};

/// The Event reason of a halted wave, on the source and on the workload that failed.
pub const HALTED_REASON: &str = "ReloadHalted";

/// Whether a rolling `plan` for `key` waits for a wave of one of the sources it rolls for: the
/// first such source, and why. `None`: it may roll now.
pub(crate) fn wave_hold(ctx: &Context, key: &WorkloadKey, plan: &Plan) -> Option<(SourceRef, WaveWait)> {
    // Only a plan that rolls the pods waits (acknowledging, resuming, announcing never do).
    if !matches!(plan.action, Action::Roll | Action::Restart) {
        return None;
    }
    plan.changes.iter().find_map(|change| {
        let source = &change.source;
        let (sizes, current) = waves_of(ctx, &key.namespace, source)?;
        let wait = wait_for(ctx, key, source, &sizes, current.as_ref())?;
        Some((source.clone(), wait))
    })
}

/// The workloads to look at again because `key`'s rollout health changed: the other members
/// of the waves of the sources it depends on.
pub(crate) fn wave_dependents(ctx: &Context, key: &WorkloadKey) -> BTreeSet<WorkloadKey> {
    let mut out = BTreeSet::new();
    for source in ctx.store.dependencies_of(key) {
        if waves_of(ctx, &key.namespace, &source).is_none() {
            continue;
        }
        let members = ctx.store.depending_on(&key.namespace, &source).unwrap_or_default();
        out.extend(members.into_iter().map(|(member, _)| member).filter(|m| m != key));
    }
    out
}

/// The waves of `source` (its annotation, else `--rollout-waves`) and its current content
/// (`None`: absent); `None` when it has no waves. An annotation that does not parse counts as
/// none (the validating webhook and `reloader lint` refuse it).
fn waves_of(ctx: &Context, namespace: &str, source: &SourceRef) -> Option<(WaveSizes, Option<ContentHash>)> {
    let sources = ctx.store.sources(namespace);
    let state = sources.map().get(source);
    let annotated = state
        .and_then(|s| s.annotations.get(fixed::ROLLOUT_WAVES))
        .and_then(|value| value.parse::<WaveSizes>().ok());
    let sizes = annotated.or_else(|| ctx.options.default_waves.clone())?;
    Some((sizes, state.map(|s| s.hash.clone())))
}

/// The gate for `key` in the waves of `source`.
fn wait_for(
    ctx: &Context,
    key: &WorkloadKey,
    source: &SourceRef,
    sizes: &WaveSizes,
    current: Option<&ContentHash>,
) -> Option<WaveWait> {
    let Some(stored) = ctx.store.depending_on(&key.namespace, source) else {
        return Some(WaveWait::MembersUnknown);
    };
    let keys = ctx.options.stamp_keys.borrow().clone();
    let stamping = Stamping {
        keys: &keys,
        namespace: &key.namespace,
    };
    // Its keys too: under per-key reloads a member whose keys did not change carries it.
    let state = ctx.store.sources(&key.namespace).map().get(source).cloned();
    let per_key = ctx.options.dependency.per_key_reloads;
    let now = ctx.clock.now();
    let member = |key: &WorkloadKey, object: &Value, health| {
        let workload = Workload::new(key.kind, object);
        let strategy = ctx.options.plan.strategy;
        Member::of(&workload, source, state.as_ref(), per_key, strategy, stamping, health)
    };
    let mut members: Vec<Member> = stored
        .iter()
        .filter_map(|(key, workload)| {
            let health = workload.rollout().health(now, ctx.options.wave_deadline);
            Some(member(key, &workload.parse()?, health))
        })
        .collect();
    // The asking workload depends on the source (it rolls for it); its index entry is written
    // before its plan, but be sure it is counted (its health does not matter).
    if !stored.iter().any(|(member, _)| member == key)
        && let Some(object) = ctx.store.workload(key)
    {
        members.push(member(key, &object, RolloutHealth::Healthy));
    }
    let boundaries = sizes.boundaries(members.len());
    let wait = wave_wait(&boundaries, &members, (key.kind, &key.name))?;
    if let WaveWait::Halted { failed, reason } = &wait {
        let failed = stored
            .iter()
            .find(|(member, _)| label(member.kind, &member.name) == *failed);
        report_halt(ctx, source, current, failed, reason);
    }
    Some(wait)
}

/// A Warning Event on the source and one on the workload that failed, once per content of the
/// source (per process: a restarted reloader tells a standing halt once more).
fn report_halt(
    ctx: &Context,
    source: &SourceRef,
    content: Option<&ContentHash>,
    failed: Option<&(WorkloadKey, StoredWorkload)>,
    reason: &str,
) {
    let Some((failed, workload)) = failed else {
        return;
    };
    let namespace = &failed.namespace;
    if !ctx.halts.note(namespace, source, content) {
        return;
    }
    let label = label(failed.kind, &failed.name);
    let message = format!(
        "Rollout of the change to {source} halted: {label} failed with it ({reason}); the workloads \
         not rolled yet keep the content before, until {source} changes again"
    );
    tracing::warn!(%source, failed = label, reason, "rollout waves halted");
    let events = &ctx.outbound.events;
    let from = component(Some(source.kind));
    events.post_detached(
        &source_reference(namespace, source),
        EventType::Warning,
        HALTED_REASON,
        &message,
        from,
    );
    let object = workload.parse().unwrap_or_default();
    events.post_detached(
        &workload_reference(failed, &object),
        EventType::Warning,
        HALTED_REASON,
        &message,
        from,
    );
}

fn source_reference(namespace: &str, source: &SourceRef) -> ObjectReference {
    let api_version = match source.kind {
        SourceKind::ConfigMap | SourceKind::Secret => "v1",
        SourceKind::SecretProviderClass => "secrets-store.csi.x-k8s.io/v1",
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(source.kind.to_string()),
        name: Some(source.name.clone()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}
