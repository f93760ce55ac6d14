//! The report phase: what a write did, told in Stakater's words: Kubernetes Events on the
//! workload, Stakater's metrics, alerts, and the log line. Also what is wrong with the
//! workload's reloader annotations, in the validating webhook's words (the same
//! [`lint`](crate::core::annotation_rules::lint)), as a Warning Event per problem, once: the webhook fails
//! open, so this is where a typo that slipped past it is told. Failing to report never fails
//! the reconcile.

use crate::core::json::JsonAt;
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::Value;

use super::compute::Planned;
use crate::core::annotation_rules::{Finding, Severity, Subject, annotations_of, lint};
use crate::core::hold::Hold;
use crate::core::plan::{Change, Plan, SourceChange};
use crate::core::source::SourceKind;
use crate::engine::context::Context;
use crate::engine::events::{EventType, component};
use crate::metrics::{AnnotationProblem, Outcome};
use crate::store::WorkloadKey;

/// After a successful write.
pub(super) async fn written(ctx: &Context, key: &WorkloadKey, planned: &Planned) {
    match planned.outcome {
        Outcome::Notified => {
            tracing::info!(
                "{}; announced to --webhook-url",
                change_message(key, &planned.plan.changes)
            );
        }
        Outcome::Resumed => tracing::info!("pause period over: resumed"),
        Outcome::Acknowledged => {
            let sources: Vec<String> = planned.plan.acknowledged.iter().map(ToString::to_string).collect();
            tracing::info!(?sources, "adopted without a rollout");
        }
        _ => reloaded(ctx, key, &planned.object, &planned.plan).await,
    }
}

fn reference(key: &WorkloadKey, object: &Value) -> ObjectReference {
    crate::engine::events::workload_reference(key, object)
}

/// Stakater's message: "Changes detected in '<res>' of type '<TYPE>' in namespace '<ns>',
/// Updated '<workload>' of type '<Kind>' in namespace '<ns>'".
fn change_message(key: &WorkloadKey, changes: &[SourceChange]) -> String {
    changes
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

async fn reloaded(ctx: &Context, key: &WorkloadKey, object: &Value, plan: &Plan) {
    let message = change_message(key, &plan.changes);
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
    tracing::info!(?changes, "{message}");
    if let Some(alerts) = &ctx.outbound.alerts {
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
    ctx.metrics.reload(&key.namespace, key.kind, true);
    // One Event per change, as Stakater writes one per source event, each from its component;
    // posted in the background: the rollout is done, the worker moves on.
    let regarding = reference(key, object);
    for change in &plan.changes {
        let one = change_message(key, std::slice::from_ref(change));
        let component = component(Some(change.source.kind));
        ctx.outbound
            .events
            .post(&regarding, EventType::Normal, "Reloaded", &one, component)
            .await;
    }
}

/// A change held by the workload's reload window or its wave, told once per hold: a Normal
/// Event `ReloadHeld` on the workload. (A halted wave's Warning `ReloadHalted` goes on the
/// source and on the workload that failed only: see `engine::waves`.)
pub(super) async fn held(ctx: &Context, key: &WorkloadKey, object: &Value, hold: &Hold) {
    let message = hold.describe();
    tracing::info!(reason = hold.reason().as_str(), "{message}");
    publish(
        ctx,
        key,
        object,
        EventType::Normal,
        "ReloadHeld",
        &message,
        component(None),
    )
    .await;
}

/// A rollout the API server refused, told from the component of the first change it answered.
pub(super) async fn failed(
    ctx: &Context,
    key: &WorkloadKey,
    object: &Value,
    error: &kube::Error,
    first: Option<SourceKind>,
) {
    ctx.metrics.reload(&key.namespace, key.kind, false);
    let message = format!(
        "Update for '{}' of type '{}' in namespace '{}' failed with error {}",
        key.name, key.kind, key.namespace, error
    );
    publish(
        ctx,
        key,
        object,
        EventType::Warning,
        "ReloadFail",
        &message,
        component(first),
    )
    .await;
}

/// Reports each annotation problem of the workload not reported before: a Warning Event
/// with the validating webhook's message (`InvalidAnnotation` for what it denies,
/// `IneffectiveAnnotation` for what it warns about) and `reloader_annotation_problems_total`.
/// Remembered per workload uid, in memory: a resync, a relist or an unrelated change reports
/// nothing again; a problem fixed and later brought back is reported again.
pub(super) async fn annotation_problems(ctx: &Context, key: &WorkloadKey, object: Option<&Value>) {
    let Some(object) = object else {
        return;
    };
    let Some(uid) = object.at("/metadata/uid").and_then(Value::as_str) else {
        return;
    };
    if object.at("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let subject = Subject::Workload(key.kind);
    let (metadata, template) = annotations_of(subject, object);
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&metadata, &template).hash(&mut hasher);
        hasher.finish()
    };
    let mut reported = ctx.reported(key, uid);
    if reported.fingerprint == Some(fingerprint) {
        return;
    }
    let findings = lint(&ctx.options.dependency.annotations, subject, &metadata, &template);
    let current: std::collections::BTreeSet<String> = findings.iter().map(|f| f.message.clone()).collect();
    // Fixed problems are forgotten, so bringing one back reports it again.
    reported.problems.retain(|p| current.contains(p));
    let mut all_published = true;
    // The same problem at two places (metadata and template) is one problem.
    let mut seen = std::collections::BTreeSet::new();
    let new: Vec<&Finding> = findings
        .iter()
        .filter(|f| !reported.problems.contains(&f.message) && seen.insert(f.message.as_str()))
        .collect();
    for finding in new {
        let (reason, problem) = match finding.severity {
            Severity::Deny => ("InvalidAnnotation", AnnotationProblem::Invalid),
            Severity::Warn => ("IneffectiveAnnotation", AnnotationProblem::Ineffective),
        };
        tracing::warn!(annotation = %finding.key, "{}", finding.message);
        let published = publish(
            ctx,
            key,
            object,
            EventType::Warning,
            reason,
            &finding.message,
            component(None),
        )
        .await;
        if published {
            ctx.metrics.annotation_problem(subject, problem);
            reported.problems.insert(finding.message.clone());
        } else {
            all_published = false;
        }
    }
    // After a failed publish, look again next time.
    reported.fingerprint = all_published.then_some(fingerprint);
    ctx.set_reported(key, reported);
}

/// A Kubernetes Event on the workload; failing to publish one is logged, never fatal. True
/// when it was published.
async fn publish(
    ctx: &Context,
    key: &WorkloadKey,
    object: &Value,
    type_: EventType,
    reason: &str,
    message: &str,
    component: &str,
) -> bool {
    let regarding = reference(key, object);
    match ctx
        .outbound
        .events
        .publish(&regarding, type_, reason, message, component)
        .await
    {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, reason, "publishing an event failed");
            false
        }
    }
}
