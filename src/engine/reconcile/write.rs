//! The write phase: past the write gate (leadership, pacing), the plan's patch applied only to
//! the exact version it was computed from; Jobs re-created (their template is immutable) and
//! CronJobs run once, with creates that failed kept until a later reconcile manages them.

use crate::core::json::JsonAt;
use std::time::Duration;

use json_patch::jsonptr::PointerBuf;
use json_patch::{PatchOperation, TestOperation};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::ReconcileError;
use super::compute::Planned;
use crate::core::plan::{Action, Plan};
use crate::core::workload::WorkloadKind;
use crate::engine::context::Context;
use crate::engine::pacing::Pace;
use crate::kube_api::api_resource;
use crate::metrics::Outcome;
use crate::store::{StoredWorkload, WorkloadKey};

/// How a write attempt ended, short of an error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written {
    Done,
    /// Leadership was lost before writing: nothing written.
    NotLeader,
    /// The workload no longer exists.
    Gone,
    /// Someone else wrote first; the store holds the fresh object: compute again.
    Conflict,
    /// Over the reload rate limit: its slot is this far away.
    Paced(Duration),
}

fn is_conflict(error: &kube::Error) -> bool {
    // 409 from a stale write; 422 when our resourceVersion `test` operation failed.
    matches!(error, kube::Error::Api(s) if s.code == 409 || s.code == 422)
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

fn workload_api(ctx: &Context, key: &WorkloadKey) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), &key.namespace, &api_resource(key.kind))
}

/// Writes `planned` if this replica still leads, after the rollout pacing.
pub(super) async fn write(ctx: &Context, key: &WorkloadKey, planned: &Planned) -> Result<Written, ReconcileError> {
    if !ctx.gate.is_leader() {
        return Ok(Written::NotLeader);
    }
    if planned.outcome == Outcome::Notified {
        // At least once: announced before the hashes are recorded.
        let notifier = ctx.outbound.notifier.as_ref().ok_or(ReconcileError::NoNotifier)?;
        notifier.notify().await?;
    }
    if planned.rolls()
        && let Pace::Later(wait) = ctx.gate.pace(key)
    {
        return Ok(Written::Paced(wait));
    }
    let api = workload_api(ctx, key);
    let error = match apply(ctx, &api, key, &planned.object, &planned.plan).await {
        Ok(()) => return Ok(Written::Done),
        Err(error) => error,
    };
    if is_not_found(&error) {
        ctx.store.remove_workload(key);
        return Ok(Written::Gone);
    }
    if !is_conflict(&error) {
        return Err(error.into());
    }
    tracing::debug!(%error, "conflict; re-reading");
    let before = version(&planned.object);
    refresh(ctx, &api, key, before.as_deref())
        .await
        .map_err(ReconcileError::Reread)?;
    // A 422 on an object nobody changed is a real rejection, not our version test.
    if ctx.store.workload(key).map(|o| version(&o)) == Some(before) {
        return Err(error.into());
    }
    Ok(Written::Conflict)
}

fn version(object: &Value) -> Option<String> {
    object
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Reads the workload again after a conflict with the version `before` (unless a watcher
/// brought a newer one meanwhile).
async fn refresh(
    ctx: &Context,
    api: &Api<DynamicObject>,
    key: &WorkloadKey,
    before: Option<&str>,
) -> Result<(), kube::Error> {
    match api.get_opt(&key.name).await? {
        Some(fresh) => ctx
            .store
            .upsert_written(key.clone(), StoredWorkload::of_dynamic(key.kind, &fresh), before),
        None => ctx.store.remove_workload(key),
    }
    Ok(())
}

fn params(ctx: &Context) -> PatchParams {
    PatchParams {
        field_manager: Some(ctx.options.field_manager.clone()),
        ..Default::default()
    }
}

/// The plan's patch, applied only to the exact version it was computed from.
fn guarded(object: &Value, plan: &Plan) -> json_patch::Patch {
    let version = object.at("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    let mut ops = vec![PatchOperation::Test(TestOperation {
        path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
        value: version,
    })];
    ops.extend(plan.patch.0.iter().cloned());
    json_patch::Patch(ops)
}

async fn apply(
    ctx: &Context,
    api: &Api<DynamicObject>,
    key: &WorkloadKey,
    object: &Value,
    plan: &Plan,
) -> Result<(), kube::Error> {
    if key.kind == WorkloadKind::Job && plan.action == Action::Roll {
        // A Job's pod template is immutable: re-create it, as Stakater does.
        return recreate_job(ctx, api, key, object, plan).await;
    }
    let patched = api
        .patch(&key.name, &params(ctx), &Patch::Json::<()>(guarded(object, plan)))
        .await?;
    ctx.store.upsert_written(
        key.clone(),
        StoredWorkload::of_dynamic(key.kind, &patched),
        version(object).as_deref(),
    );
    if key.kind == WorkloadKind::CronJob && plan.action == Action::Roll {
        run_cronjob_now(ctx, key, &patched).await?;
    }
    Ok(())
}

async fn recreate_job(
    ctx: &Context,
    api: &Api<DynamicObject>,
    key: &WorkloadKey,
    object: &Value,
    plan: &Plan,
) -> Result<(), kube::Error> {
    let preconditions = Preconditions {
        uid: object.at("/metadata/uid").and_then(Value::as_str).map(str::to_string),
        resource_version: object
            .at("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let delete = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(preconditions),
        ..Default::default()
    };
    api.delete(&key.name, &delete).await?;
    let mut fresh = plan.desired.clone();
    strip_for_create(&mut fresh);
    let fresh: DynamicObject = serde_json::from_value(fresh).map_err(kube::Error::SerdeError)?;
    // The old Job may still be going away: wait for its name to free up, briefly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.create(&PostParams::default(), &fresh).await {
            Ok(created) => {
                let before = version(object);
                ctx.store.upsert_written(
                    key.clone(),
                    StoredWorkload::of_dynamic(key.kind, &created),
                    before.as_deref(),
                );
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                // The old Job is gone: keep the new one until it is created (retried with the
                // reconcile's backoff), rather than losing the Job.
                ctx.pending_create(key, fresh);
                return Err(e);
            }
        }
    }
}

/// Creates a Job an earlier reconcile could not (after deleting its predecessor, or a
/// CronJob's run); false when nothing was pending.
pub(super) async fn create_pending(ctx: &Context, key: &WorkloadKey) -> Result<bool, kube::Error> {
    let Some(job) = ctx.take_pending_create(key) else {
        return Ok(false);
    };
    let jobs: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &key.namespace, &api_resource(WorkloadKind::Job));
    match jobs.create(&PostParams::default(), &job).await {
        Ok(created) => {
            tracing::info!("created the pending Job");
            if key.kind == WorkloadKind::Job {
                ctx.store
                    .upsert_workload(key.clone(), StoredWorkload::of_dynamic(key.kind, &created));
            }
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 && key.kind == WorkloadKind::Job => Ok(true),
        Err(e) => {
            ctx.pending_create(key, job);
            Err(e)
        }
    }
}

/// Server-set fields and the Job controller's selector labels go; the rest is re-created as is.
fn strip_for_create(job: &mut Value) {
    if let Some(meta) = job.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
    }
    if let Some(obj) = job.as_object_mut() {
        obj.remove("status");
    }
    if let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("selector");
        spec.remove("manualSelector");
    }
    for labels in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(map) = job.at_mut(labels).and_then(Value::as_object_mut) {
            for label in [
                "controller-uid",
                "batch.kubernetes.io/controller-uid",
                "job-name",
                "batch.kubernetes.io/job-name",
            ] {
                map.remove(label);
            }
        }
    }
}

/// After a CronJob's template changed, run it once now (as Stakater does), unless it is
/// suspended: a suspended CronJob only gets the new template for when it is resumed.
async fn run_cronjob_now(ctx: &Context, key: &WorkloadKey, cronjob: &DynamicObject) -> Result<(), kube::Error> {
    let value = serde_json::to_value(cronjob).map_err(kube::Error::SerdeError)?;
    if value.at("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        tracing::info!("CronJob is suspended: template updated, no Job started");
        return Ok(());
    }
    let template = value.at("/spec/jobTemplate").cloned().unwrap_or(Value::Null);
    let mut annotations = template
        .at("/metadata/annotations")
        .cloned()
        .unwrap_or_else(|| json!({}));
    annotations["cronjob.kubernetes.io/instantiate"] = json!("manual");
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": format!("{}-", key.name),
            "namespace": key.namespace,
            "labels": template.at("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": key.name,
                "uid": value.at("/metadata/uid").cloned().unwrap_or(Value::Null),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    let job: DynamicObject = serde_json::from_value(job).map_err(kube::Error::SerdeError)?;
    // The template is already stamped, so a retry would find nothing to do: keep the run pending.
    ctx.pending_create(key, job);
    create_pending(ctx, key).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_copies_lose_server_fields_and_selector_labels() {
        let mut job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "uid": "u", "resourceVersion": "7", "creationTimestamp": "t",
                         "labels": {"app": "x", "controller-uid": "u", "job-name": "j"}},
            "spec": {"selector": {"matchLabels": {"controller-uid": "u"}},
                     "template": {"metadata": {"labels": {"app": "x", "batch.kubernetes.io/controller-uid": "u",
                                                          "batch.kubernetes.io/job-name": "j"}},
                                  "spec": {"containers": [{"name": "c"}]}}},
            "status": {"succeeded": 1}
        });
        strip_for_create(&mut job);
        assert_eq!(
            job,
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "j", "labels": {"app": "x"}},
                "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}}
            })
        );
    }
}
