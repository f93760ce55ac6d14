//! Pod restarts in the engine ([`crate::core::pod_restart`] decides): after each reconcile of a
//! workload whose pods the reloader restarts (an `updateStrategy: OnDelete` StatefulSet or
//! DaemonSet, a workload with `rollout-strategy: restart`), one step: list its pods, and evict the
//! next old one when the previous replacement is Ready. Level-triggered: nothing is remembered
//! between steps; while old pods remain, the reconcile asks to look again shortly, so a restarted
//! reloader (or a new leader) resumes from what the pods say, and never evicts a pod twice (its
//! replacement is new, and each eviction names the old pod's uid).
//!
//! No pod watcher: the pods of a workload are listed (label-selected by its `spec.selector`) only
//! for such a workload, at each of its reconciles, so the reloader needs `pods` list and
//! `pods/eviction` create, nothing more, and only with `--pod-restarts`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, EvictParams, Preconditions};
use serde_json::Value;

use super::context::Context;
use super::events::{EventType, component, workload_reference};
use crate::core::pod_restart::{RestartMode, Step, next_step, restart_mode, wanted_pods};
use crate::core::workload::Workload;
use crate::kube_api::{api_resource, owned_pods};
use crate::metrics::EvictionResult;
use crate::store::WorkloadKey;

/// The Event reason of each eviction.
pub const RESTARTED_REASON: &str = "PodRestarted";

/// While old pods remain and one is on its way (terminating, replaced, not ready yet).
const WAIT: Duration = Duration::from_secs(1);
/// After a PodDisruptionBudget refused an eviction.
const REFUSED: Duration = Duration::from_secs(5);
/// After an API error.
const FAILED: Duration = Duration::from_secs(10);

/// One step of `key`'s pod restart, if it has one; when to look again while old pods remain.
/// Failing is logged and retried later, never the reconcile's failure (its write is done).
pub(super) async fn step(ctx: &Context, key: &WorkloadKey) -> Option<Duration> {
    if !ctx.options.plan.pod_restarts || !ctx.gate.is_leader() {
        return None;
    }
    let stored = ctx.store.workload(key)?;
    let mode = restart_mode(&Workload::new(key.kind, &stored))?;
    if !mode.may_restart() {
        return None;
    }
    match evict_next(ctx, key, &stored, &mode).await {
        Ok(after) => after,
        Err(error) => {
            tracing::warn!(%error, "pod restart: reading or evicting pods failed; looking again later");
            Some(FAILED)
        }
    }
}

async fn evict_next(
    ctx: &Context,
    key: &WorkloadKey,
    stored: &Value,
    mode: &RestartMode,
) -> Result<Option<Duration>, kube::Error> {
    let facts = owned_pods(&ctx.client, &key.namespace, key.kind, stored).await?;
    if !facts.iter().any(|p| !p.terminating && mode.is_old(p)) {
        return Ok(None);
    }
    // Old pods remain: the workload as its controller reports it now (its template, replicas,
    // and whether it has seen the template the pods are judged against).
    let workloads: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &key.namespace, &api_resource(key.kind));
    let Some(fresh) = workloads.get_opt(&key.name).await? else {
        return Ok(None);
    };
    let fresh = serde_json::to_value(&fresh).map_err(kube::Error::SerdeError)?;
    let generation = |p: &str| fresh.pointer(p).and_then(Value::as_i64);
    if generation("/status/observedGeneration") < generation("/metadata/generation") {
        tracing::debug!("pod restart: waiting for the controller to observe the template");
        return Ok(Some(WAIT));
    }
    let Some(mode) = restart_mode(&Workload::new(key.kind, &fresh)) else {
        return Ok(None);
    };
    let step = next_step(key.kind, &mode, wanted_pods(key.kind, &fresh), &facts);
    let (pod, progress) = match step {
        Step::Done => return Ok(None),
        Step::Wait { why, progress } => {
            tracing::debug!(%progress, "pod restart: {why}");
            return Ok(Some(WAIT));
        }
        Step::Evict { pod, progress } => (pod, progress),
    };
    // The pod's uid as a precondition: a StatefulSet's replacement has the same name.
    let evict = EvictParams {
        delete_options: Some(DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(pod.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        }),
        ..EvictParams::default()
    };
    let pods_api: Api<Pod> = Api::namespaced(ctx.evictions.clone(), &key.namespace);
    let evicted = pods_api.evict(&pod.name, &evict).await;
    let (result, after) = match &evicted {
        Ok(_) => (EvictionResult::Evicted, WAIT),
        Err(kube::Error::Api(s)) if s.code == 429 => (EvictionResult::Refused, REFUSED),
        // Gone already, or replaced: look again.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Ok(Some(WAIT)),
        Err(_) => (EvictionResult::Error, FAILED),
    };
    ctx.metrics.pod_restart(key.kind, result);
    match evicted {
        Ok(_) => {
            let message = format!(
                "Restarted pod {} for the reload (it ran the pod template before it): {} of {} pods before this one done",
                pod.name, progress.done, progress.total
            );
            tracing::info!(pod = pod.name, %progress, "pod restart: evicted");
            ctx.outbound
                .events
                .post(
                    &workload_reference(key, &fresh),
                    EventType::Normal,
                    RESTARTED_REASON,
                    &message,
                    component(None),
                )
                .await;
        }
        Err(kube::Error::Api(s)) if s.code == 429 => {
            tracing::info!(pod = pod.name, %progress, "pod restart: the eviction is refused (a PodDisruptionBudget); waiting");
        }
        Err(error) => tracing::warn!(pod = pod.name, %error, "pod restart: the eviction failed"),
    }
    Ok(Some(after))
}
