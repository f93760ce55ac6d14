//! Kubernetes Events on workloads, written as Stakater writes them so `kubectl get events` and
//! `kubectl describe` read the same: core/v1 Events with Stakater's reasons and messages and its
//! `source.component` per source kind (`reloader-configmaps`, `reloader-secrets`,
//! `reloader-secretproviderclasspodstatuses`).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::core::source::SourceKind;

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

/// Longest note kept; the API server refuses much longer ones.
const MAX_MESSAGE: usize = 1000;

pub struct EventRecorder {
    client: kube::Client,
    /// The pod name, Stakater's `source.host`.
    host: Option<String>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, host: Option<String>) -> Self {
        Self { client, host }
    }

    /// Publishes one Event about `regarding`.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
        component: &str,
    ) -> Result<(), kube::Error> {
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
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
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
