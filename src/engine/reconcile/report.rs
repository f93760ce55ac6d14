//! The report phase: what a write did, told in Stakater's words: Kubernetes Events on the
//! workload, Stakater's metrics, alerts, and the log line. Failing to report never fails the
//! reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use serde_json::Value;

use super::compute::Planned;
use crate::core::plan::{Change, Plan};
use crate::engine::context::Context;
use crate::metrics::Outcome;
use crate::store::WorkloadKey;

/// After a successful write.
pub(super) async fn written(ctx: &Context, key: &WorkloadKey, planned: &Planned) {
    match planned.outcome {
        Outcome::Notified => {
            tracing::info!("{}; announced to --webhook-url", change_message(key, &planned.plan));
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

async fn reloaded(ctx: &Context, key: &WorkloadKey, object: &Value, plan: &Plan) {
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
    publish(ctx, key, object, EventType::Normal, "Reloaded", &message).await;
}

/// A rollout the API server refused.
pub(super) async fn failed(ctx: &Context, key: &WorkloadKey, object: &Value, error: &kube::Error) {
    ctx.metrics.reload(&key.namespace, key.kind, false);
    let message = format!(
        "Update for '{}' of type '{}' in namespace '{}' failed with error {}",
        key.name, key.kind, key.namespace, error
    );
    publish(ctx, key, object, EventType::Warning, "ReloadFail", &message).await;
}

/// A Kubernetes Event on the workload; failing to publish one is logged, never fatal.
async fn publish(ctx: &Context, key: &WorkloadKey, object: &Value, type_: EventType, reason: &str, message: &str) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(message, 1000)),
        action: "Reload".into(),
        secondary: None,
    };
    if let Err(error) = ctx.outbound.recorder.publish(&event, &reference(key, object)).await {
        tracing::warn!(%error, reason, "publishing an event failed");
    }
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
    fn long_notes_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
