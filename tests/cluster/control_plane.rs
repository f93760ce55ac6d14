//! The control plane itself: Deployments really roll out, and the apiserver really calls a
//! webhook served over HTTPS by the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{TestNamespace, client, eventually, wait_for, webhook_tls};

const REVISION: &str = "deployment.kubernetes.io/revision";

fn rolled_out(d: Option<&Deployment>) -> bool {
    let Some(d) = d else { return false };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else { return false };
    s.observed_generation == d.metadata.generation
        && s.replicas == Some(want)
        && s.updated_replicas == Some(want)
        && s.ready_replicas == Some(want)
        && s.available_replicas == Some(want)
}

#[tokio::test]
async fn deployment_rolls_out_on_a_template_change() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "rollout").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}
            }
        }
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    wait_for(&deployments, "web", "first rollout", rolled_out).await;

    let change = json!({"spec": {"template": {"metadata": {"annotations": {"example.com/config": "v2"}}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    wait_for(&deployments, "web", "second rollout", rolled_out).await;

    // The new ReplicaSet is fully ready and the old one is scaled to zero, with its pods gone.
    let (old, new) = eventually("old ReplicaSet drained", || async {
        let list = replica_sets.list(&ListParams::default()).await.ok()?;
        let by_revision = |r: &str| {
            list.items
                .iter()
                .find(|rs| rs.annotations().get(REVISION).map(String::as_str) == Some(r))
                .cloned()
        };
        let (old, new) = (by_revision("1")?, by_revision("2")?);
        let status = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
        (list.items.len() == 2 && status(&old).replicas == 0 && status(&new).ready_replicas == Some(2))
            .then_some((old, new))
    })
    .await;
    assert_eq!(old.spec.and_then(|s| s.replicas), Some(0));
    let new_spec = new.spec.expect("a ReplicaSet spec");
    assert_eq!(new_spec.replicas, Some(2));
    let annotations = new_spec.template.and_then(|t| t.metadata).and_then(|m| m.annotations);
    assert_eq!(
        annotations
            .as_ref()
            .and_then(|a| a.get("example.com/config"))
            .map(String::as_str),
        Some("v2")
    );
}

const DENIAL: &str = "the test webhook says no";

async fn validate(
    State(calls): State<Arc<AtomicUsize>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let request: AdmissionRequest<DynamicObject> = review.try_into().expect("a request");
    let response = AdmissionResponse::from(&request);
    let deny = request
        .object
        .as_ref()
        .is_some_and(|o| o.labels().get("deny").map(String::as_str) == Some("yes"));
    Json(if deny { response.deny(DENIAL) } else { response }.into_review())
}

/// Deletes the webhook configuration even when the test fails.
struct WebhookGuard(String);

impl Drop for WebhookGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        crate::support::clean_up(crate::support::kubeconfig().to_path_buf(), |client| async move {
            let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
            let _ = api.delete(&name, &DeleteParams::default()).await;
        });
    }
}

#[tokio::test]
async fn apiserver_calls_a_webhook_served_by_the_test() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "webhook").await;
    let tls = webhook_tls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/validate", post(validate))
        .with_state(calls.clone());
    let config = reloader::tls::server_config(&tls.serving).unwrap();
    let server = tokio::spawn(reloader::tls::serve(listener, config, router));

    let name = format!("reloader-test-{}", ns.name);
    let _guard = WebhookGuard(name.clone());
    let configuration: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": "validate.reloader-test.example.com",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/validate"),
                "caBundle": base64_encode(tls.ca_pem.as_bytes()),
            },
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}},
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5
        }]
    }))
    .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await
        .unwrap();

    // The apiserver picks the configuration up asynchronously: retry until it is enforced.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let denied = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"deny": "yes"}}})).unwrap()
    };
    let message = eventually("denial by the webhook", || {
        let config_maps = config_maps.clone();
        async move {
            let name = crate::support::unique_name("denied");
            match config_maps.create(&PostParams::default(), &denied(&name)).await {
                Ok(_) => None,
                Err(kube::Error::Api(status)) => Some(status.message),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
    })
    .await;
    assert!(message.contains(DENIAL), "{message}");
    let before = calls.load(Ordering::SeqCst);
    assert!(before > 0);

    let allowed: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "allowed"}})).unwrap();
    config_maps.create(&PostParams::default(), &allowed).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "the allowed create went through the webhook"
    );
    server.abort();
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
