//! Reconciling one workload: compute its dependencies and plan from memory, and write only the
//! difference, guarded by the resourceVersion it was computed from. A conflict means someone
//! else wrote first: re-read, recompute, retry. Nothing is written for an up-to-date workload.

use std::time::Duration;

use json_patch::jsonptr::PointerBuf;
use json_patch::{PatchOperation, TestOperation};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kube::runtime::events::{Event, EventType};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::time::Instant;

use super::Engine;
use super::watch::{api_resource, to_value};
use crate::core::decision::dependencies;
use crate::core::pause::apply_pause;
use crate::core::plan::{Action, Change, Plan, plan};
use crate::core::workload::{Workload, WorkloadKind};
use crate::store::{IndexEntry, WorkloadKey};

const MAX_CONFLICTS: u32 = 5;

/// What a reconcile did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    Acknowledged,
    Rolled,
    Restarted,
    Resumed,
    Notified,
    Gone,
    /// Leadership was lost before writing; the new leader reconciles it.
    NotLeader,
    /// Being deleted: nothing to reload.
    Deleting,
    /// Not ours to touch (namespace ignored or not selected).
    Excluded,
    /// The object cannot be read as a workload (no pod template, invalid pod spec).
    Invalid,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::UpToDate => "up_to_date",
            Outcome::Acknowledged => "acknowledged",
            Outcome::Rolled => "rolled",
            Outcome::Restarted => "restarted",
            Outcome::Resumed => "resumed",
            Outcome::Notified => "notified",
            Outcome::Gone => "gone",
            Outcome::NotLeader => "not_leader",
            Outcome::Deleting => "deleting",
            Outcome::Excluded => "excluded",
            Outcome::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("still conflicting after {MAX_CONFLICTS} attempts")]
    Conflicts,
    #[error("--webhook-url: {0}")]
    Notify(String),
}

fn is_conflict(error: &kube::Error) -> bool {
    // 409 from a stale write; 422 when our resourceVersion `test` operation failed.
    matches!(error, kube::Error::Api(s) if s.code == 409 || s.code == 422)
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub async fn reconcile(
    engine: &Engine,
    key: &WorkloadKey,
    queued_at: Option<Instant>,
) -> Result<Outcome, ReconcileError> {
    if !engine.namespace_allowed(&key.namespace) {
        engine.metrics.skip("ignored_or_not_selected");
        return Ok(Outcome::Excluded);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(engine.client.clone(), &key.namespace, &api_resource(key.kind));
    if let Some(result) = create_pending(engine, key).await {
        result?;
        if key.kind == WorkloadKind::Job {
            return Ok(Outcome::Rolled);
        }
    }
    for _ in 0..MAX_CONFLICTS {
        let Some(object) = engine.store.workload(key) else {
            return Ok(Outcome::Gone);
        };
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Outcome::Deleting);
        }
        let now = time::OffsetDateTime::now_utc();
        let generation = engine.store.generation(&key.namespace);
        let computed = {
            let sources = engine.store.sources(&key.namespace);
            let workload = Workload::new(key.kind, &object);
            dependencies(&workload, sources.map(), &engine.options.decision).and_then(|deps| {
                let planned = plan(
                    &workload,
                    &deps.dependencies,
                    sources.map(),
                    engine.options.plan,
                    &rfc3339(now),
                )
                .map_err(|e| match e {
                    crate::core::plan::PlanError::Workload(w) => w,
                })?;
                Ok((deps, planned))
            })
        };
        let (deps, mut planned) = match computed {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(workload = %key, %error, "not a workload the reloader can read; skipped");
                engine.store.index(key, IndexEntry::default());
                return Ok(Outcome::Invalid);
            }
        };
        // Everything the workload names is watched, dependency or not (an ignored source may
        // stop being ignored).
        let mut watched = deps.named.clone();
        watched.extend(deps.sources().cloned());
        engine.store.index(
            key,
            IndexEntry {
                sources: watched,
                scans: deps.scans,
            },
        );
        // A source that changed between the read above and this index entry found no
        // dependents: look again.
        if engine.store.generation(&key.namespace) != generation {
            engine.enqueue(key.clone());
        }
        for error in &deps.errors {
            tracing::debug!(workload = %key, %error, "invalid reload-list item skipped");
        }
        let workload = Workload::new(key.kind, &object);
        if let Some(after) = apply_pause(&mut planned, &workload, &engine.options.decision.keys, now) {
            // The pause lives in the Deployment; this is only when to look again.
            engine.queue.add(key.clone(), after);
        }
        let outcome = match planned.action {
            Action::UpToDate => {
                engine.metrics.skip("no_data_change");
                return Ok(Outcome::UpToDate);
            }
            Action::Acknowledge => Outcome::Acknowledged,
            Action::Roll => Outcome::Rolled,
            Action::Restart => Outcome::Restarted,
            Action::Resume => Outcome::Resumed,
            Action::Notify => Outcome::Notified,
        };
        if !engine.is_leader() {
            return Ok(Outcome::NotLeader);
        }
        if outcome == Outcome::Notified {
            // At least once: announced before the hashes are recorded.
            let notifier = engine
                .notifier
                .as_ref()
                .ok_or_else(|| ReconcileError::Notify("no URL".into()))?;
            notifier.notify().await.map_err(ReconcileError::Notify)?;
        }
        if matches!(outcome, Outcome::Rolled | Outcome::Restarted) {
            let waited = engine.limiter.acquire(&key.namespace).await;
            if !waited.is_zero() {
                tracing::debug!(workload = %key, ?waited, "paced by the reload rate limit");
                if !engine.is_leader() {
                    return Ok(Outcome::NotLeader);
                }
            }
        }
        match write(engine, &api, key, &object, &planned).await {
            Ok(()) => {
                if outcome == Outcome::Notified {
                    tracing::info!(workload = %key, "{}; announced to --webhook-url", change_message(key, &planned));
                } else if outcome == Outcome::Resumed {
                    tracing::info!(workload = %key, "pause period over: resumed");
                } else if outcome == Outcome::Acknowledged {
                    tracing::info!(workload = %key, sources = ?planned.acknowledged.iter().map(ToString::to_string).collect::<Vec<_>>(), "adopted without a rollout");
                } else {
                    reloaded(engine, key, &object, &planned, queued_at).await;
                }
                return Ok(outcome);
            }
            Err(error) if is_conflict(&error) => {
                tracing::debug!(workload = %key, %error, "conflict; re-reading");
                let before = version(&object);
                refresh(engine, &api, key).await?;
                // A 422 on an object nobody changed is a real rejection, not our version test.
                if engine.store.workload(key).map(|o| version(&o)) == Some(before) {
                    if matches!(outcome, Outcome::Rolled | Outcome::Restarted) {
                        failed(engine, key, &object, &error).await;
                    }
                    return Err(error.into());
                }
            }
            Err(error) if is_not_found(&error) => {
                engine.store.remove_workload(key);
                return Ok(Outcome::Gone);
            }
            Err(error) => {
                if matches!(outcome, Outcome::Rolled | Outcome::Restarted) {
                    failed(engine, key, &object, &error).await;
                }
                return Err(error.into());
            }
        }
    }
    Err(ReconcileError::Conflicts)
}

fn version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn refresh(engine: &Engine, api: &Api<DynamicObject>, key: &WorkloadKey) -> Result<(), kube::Error> {
    match api.get_opt(&key.name).await? {
        Some(fresh) => engine.store.upsert_workload(key.clone(), to_value(&fresh)),
        None => engine.store.remove_workload(key),
    }
    Ok(())
}

fn params(engine: &Engine) -> PatchParams {
    PatchParams {
        field_manager: Some(engine.options.field_manager.clone()),
        ..Default::default()
    }
}

/// The plan's patch, applied only to the exact version it was computed from.
fn guarded(object: &Value, plan: &Plan) -> json_patch::Patch {
    let version = object
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    let mut ops = vec![PatchOperation::Test(TestOperation {
        path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
        value: version,
    })];
    ops.extend(plan.patch.0.iter().cloned());
    json_patch::Patch(ops)
}

async fn write(
    engine: &Engine,
    api: &Api<DynamicObject>,
    key: &WorkloadKey,
    object: &Value,
    plan: &Plan,
) -> Result<(), kube::Error> {
    if key.kind == WorkloadKind::Job && plan.action == Action::Roll {
        // A Job's pod template is immutable: re-create it, as Stakater does.
        return recreate_job(engine, api, key, object, plan).await;
    }
    let patched = api
        .patch(&key.name, &params(engine), &Patch::Json::<()>(guarded(object, plan)))
        .await?;
    engine.store.upsert_workload(key.clone(), to_value(&patched));
    if key.kind == WorkloadKind::CronJob && plan.action == Action::Roll {
        run_cronjob_now(engine, key, &patched).await?;
    }
    Ok(())
}

async fn recreate_job(
    engine: &Engine,
    api: &Api<DynamicObject>,
    key: &WorkloadKey,
    object: &Value,
    plan: &Plan,
) -> Result<(), kube::Error> {
    let preconditions = Preconditions {
        uid: object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: object
            .pointer("/metadata/resourceVersion")
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
                engine.store.upsert_workload(key.clone(), to_value(&created));
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                // The old Job is gone: keep the new one until it is created (retried with the
                // reconcile's backoff), rather than losing the Job.
                engine.pending_create(key, fresh);
                return Err(e);
            }
        }
    }
}

/// Creates a Job an earlier reconcile could not (after deleting its predecessor, or a
/// CronJob's run); `None` when nothing is pending.
async fn create_pending(engine: &Engine, key: &WorkloadKey) -> Option<Result<(), kube::Error>> {
    let job = engine.take_pending_create(key)?;
    let jobs: Api<DynamicObject> =
        Api::namespaced_with(engine.client.clone(), &key.namespace, &api_resource(WorkloadKind::Job));
    Some(match jobs.create(&PostParams::default(), &job).await {
        Ok(created) => {
            tracing::info!(workload = %key, "created the pending Job");
            if key.kind == WorkloadKind::Job {
                engine.store.upsert_workload(key.clone(), to_value(&created));
            }
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 && key.kind == WorkloadKind::Job => Ok(()),
        Err(e) => {
            engine.pending_create(key, job);
            Err(e)
        }
    })
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
        if let Some(map) = job.pointer_mut(labels).and_then(Value::as_object_mut) {
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
async fn run_cronjob_now(engine: &Engine, key: &WorkloadKey, cronjob: &DynamicObject) -> Result<(), kube::Error> {
    let value = serde_json::to_value(cronjob).map_err(kube::Error::SerdeError)?;
    if value.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        tracing::info!(workload = %key, "CronJob is suspended: template updated, no Job started");
        return Ok(());
    }
    let template = value.pointer("/spec/jobTemplate").cloned().unwrap_or(Value::Null);
    let mut annotations = template
        .pointer("/metadata/annotations")
        .cloned()
        .unwrap_or_else(|| json!({}));
    annotations["cronjob.kubernetes.io/instantiate"] = json!("manual");
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": format!("{}-", key.name),
            "namespace": key.namespace,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": key.name,
                "uid": value.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    let job: DynamicObject = serde_json::from_value(job).map_err(kube::Error::SerdeError)?;
    // The template is already stamped, so a retry would find nothing to do: keep the run pending.
    engine.pending_create(key, job);
    match create_pending(engine, key).await {
        Some(result) => result,
        None => Ok(()),
    }
}

fn reference(key: &WorkloadKey, object: &Value) -> ObjectReference {
    let (group, version, _) = key.kind.resource();
    ObjectReference {
        api_version: Some(if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        }),
        kind: Some(key.kind.to_string()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        uid: object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    }
}

/// Stakater's message: "Changes detected in '<res>' of type '<TYPE>' in namespace '<ns>',
/// Updated '<workload>' of type '<Kind>' in namespace '<ns>'".
fn change_message(key: &WorkloadKey, plan: &Plan) -> String {
    plan.changes
        .iter()
        .map(|c| {
            format!(
                "Changes detected in '{}' of type '{}' in namespace '{}', Updated '{}' of type '{}' in namespace '{}'",
                c.source.name,
                c.source.kind.stakater_type(),
                key.namespace,
                key.name,
                key.kind,
                key.namespace
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn reloaded(engine: &Engine, key: &WorkloadKey, object: &Value, plan: &Plan, queued_at: Option<Instant>) {
    let message = change_message(key, plan);
    let changes: Vec<String> = plan
        .changes
        .iter()
        .map(|c| {
            let what = match &c.change {
                Change::Changed { .. } => "changed",
                Change::Created { .. } => "created",
                Change::Deleted { .. } => "deleted",
            };
            format!("{} {what}", c.source)
        })
        .collect();
    tracing::info!(workload = %key, ?changes, "{message}");
    if let Some(alerts) = &engine.alerts {
        for change in &plan.changes {
            alerts.send(crate::alerts::Alert {
                source_name: change.source.name.clone(),
                source_type: change.source.kind.stakater_type(),
                namespace: key.namespace.clone(),
                workload: key.name.clone(),
                kind: key.kind.to_string(),
            });
        }
    }
    let latency = queued_at.map(|t| t.elapsed().as_secs_f64());
    engine
        .metrics
        .reload(&key.namespace, &key.kind.to_string(), true, latency);
    publish(engine, key, object, EventType::Normal, "Reloaded", &message).await;
}

/// A Kubernetes Event on the workload; failing to publish one is logged, never fatal.
async fn publish(engine: &Engine, key: &WorkloadKey, object: &Value, type_: EventType, reason: &str, message: &str) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(message, 1000)),
        action: "Reload".into(),
        secondary: None,
    };
    if let Err(error) = engine.recorder.publish(&event, &reference(key, object)).await {
        tracing::warn!(workload = %key, %error, reason, "publishing an event failed");
    }
}

async fn failed(engine: &Engine, key: &WorkloadKey, object: &Value, error: &kube::Error) {
    engine
        .metrics
        .reload(&key.namespace, &key.kind.to_string(), false, None);
    let message = format!(
        "Update for '{}' of type '{}' in namespace '{}' failed with error {}",
        key.name, key.kind, key.namespace, error
    );
    publish(engine, key, object, EventType::Warning, "ReloadFail", &message).await;
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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

    #[test]
    fn long_notes_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
