//! Kubernetes Events on workloads, written as Stakater writes them so `kubectl get events` and
//! `kubectl describe` read the same: core/v1 Events with Stakater's reasons and messages and its
//! `source.component` per source kind (`reloader-configmaps`, `reloader-secrets`,
//! `reloader-secretproviderclasspodstatuses`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::core::json::JsonAt;
use crate::core::source::SourceKind;
use crate::store::WorkloadKey;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Stakater's component for events about a source kind; `reloader` for ours about no source.
pub fn component(kind: Option<SourceKind>) -> &'static str {
    match kind {
        Some(SourceKind::ConfigMap) => "reloader-configmaps",
        Some(SourceKind::Secret) => "reloader-secrets",
        Some(SourceKind::SecretProviderClass) => "reloader-secretproviderclasspodstatuses",
        None => "reloader",
    }
}

/// The Event reference of a workload (`object`: as stored, for its uid).
pub fn workload_reference(key: &WorkloadKey, object: &Value) -> ObjectReference {
    let (group, version, _) = key.kind.resource();
    ObjectReference {
        api_version: Some(if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        }),
        kind: Some(key.kind.api_kind().to_string()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        uid: object.at("/metadata/uid").and_then(Value::as_str).map(str::to_string),
        ..Default::default()
    }
}

/// Longest note kept; the API server refuses much longer ones.
const MAX_MESSAGE: usize = 1000;

/// Events being posted in the background at most; beyond, a reconcile posts its own and waits
/// (slower, but nothing is dropped).
const MAX_IN_FLIGHT: u32 = 64;

pub struct EventRecorder {
    client: kube::Client,
    /// The pod name, Stakater's `source.host`.
    host: Option<String>,
    in_flight: Arc<Semaphore>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, host: Option<String>) -> Self {
        Self {
            client,
            host,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
        }
    }

    /// Publishes one Event about `regarding` and waits for the API server's answer.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) -> Result<(), kube::Error> {
        let (namespace, event) = self.event(regarding, type_, reason, message, component);
        create(self.client.clone(), &namespace, &event).await
    }

    /// Publishes one Event about `regarding` in the background, so the reconcile that reports a
    /// reload does not wait for a second API round trip; a failure is logged. When many are
    /// already on their way, this one is posted before returning instead.
    pub async fn post(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        let send = self.sending(regarding, type_, reason, message, component);
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    send.await;
                    drop(permit);
                });
            }
            Err(_) => send.await,
        }
    }

    /// Posts one Event about `regarding` in the background from code that cannot wait (the
    /// compute phase), whatever is already on its way: for rare Events only. Without a runtime
    /// (never, in the engine) it is logged instead.
    pub fn post_detached(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(reason, message, "no runtime to post an event from");
            return;
        };
        let send = self.sending(regarding, type_, reason, message, component);
        // Counted among those in flight when there is room, so the shutdown waits for it.
        let permit = self.in_flight.clone().try_acquire_owned().ok();
        runtime.spawn(async move {
            send.await;
            drop(permit);
        });
    }

    /// The create of one Event, a failure logged.
    fn sending(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (namespace, event) = self.event(regarding, type_, reason, message, component);
        let client = self.client.clone();
        let reason = reason.to_string();
        async move {
            if let Err(error) = create(client, &namespace, &event).await {
                tracing::warn!(%error, reason, "publishing an event failed");
            }
        }
    }

    /// Waits, at most `limit`, until every Event posted in the background has been answered
    /// (at shutdown, and in tests).
    pub async fn settled(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.in_flight.acquire_many(MAX_IN_FLIGHT)).await;
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) -> (String, Event) {
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or("reloader"),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: regarding.clone(),
            reason: Some(reason.into()),
            message: Some(truncate(message, MAX_MESSAGE)),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            source: Some(EventSource {
                component: Some(component.into()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(component.into()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| component.into())),
            ..Default::default()
        };
        (namespace, event)
    }
}

async fn create(client: kube::Client, namespace: &str, event: &Event) -> Result<(), kube::Error> {
    Api::<Event>::namespaced(client, namespace)
        .create(&PostParams::default(), event)
        .await
        .map(|_| ())
}

pub fn truncate(text: &str, max: usize) -> String {
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

    #[test]
    fn components_are_stakaters() {
        assert_eq!(component(Some(SourceKind::ConfigMap)), "reloader-configmaps");
        assert_eq!(component(Some(SourceKind::Secret)), "reloader-secrets");
    }
}
