//! What operators see: the `Reloaded` Event on the workload and alerts delivered to a webhook,
//! retried when the endpoint fails.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, eventually};

#[derive(Clone, Default)]
struct Sink {
    bodies: Arc<Mutex<Vec<Value>>>,
}

/// Fails the first delivery with a 500, accepts the rest.
async fn hook(State(sink): State<Sink>, body: String) -> StatusCode {
    let mut bodies = sink.bodies.lock().unwrap();
    bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    if bodies.len() == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

#[tokio::test]
async fn reloads_emit_an_event_and_a_retried_slack_alert() {
    let f = Fixture::new("alerts").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;

    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let router = Router::new().route("/hook", post(hook)).with_state(sink.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let reloader = Reloader::start_with(
        crate::support::kubeconfig(),
        &f.ns.name,
        &[],
        &[
            ("ALERT_ON_RELOAD", "true"),
            ("ALERT_SINK", "slack"),
            ("ALERT_WEBHOOK_URL", &url),
            ("ALERT_ADDITIONAL_INFO", "test-cluster"),
        ],
    );
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("app", 2).await;

    let bodies = eventually("a delivered alert", || async {
        let bodies = sink.bodies.lock().unwrap().clone();
        (bodies.len() >= 2).then_some(bodies)
    })
    .await;
    let expected = format!(
        "test-cluster : Reloader detected changes in *cfg* of type *CONFIGMAP* in namespace *{ns}*. \
         Hence reloaded *app* of type *Deployment* in namespace *{ns}*",
        ns = f.ns.name
    );
    let slack = json!({"attachments": [{"color": "good", "author_name": "Reloader", "text": expected}]});
    assert_eq!(bodies, vec![slack.clone(), slack], "one failed attempt, one retry");
    eventually("the alert counted as sent", || async {
        (reloader.metric("reloader_alerts_total{result=\"sent\"}") == 1.0).then_some(())
    })
    .await;

    let events: Api<Event> = Api::namespaced(f.client.clone(), &f.ns.name);
    let reloaded = eventually("a Reloaded event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| e.reason.as_deref() == Some("Reloaded"))
    })
    .await;
    assert_eq!(reloaded.involved_object.kind.as_deref(), Some("Deployment"));
    assert_eq!(reloaded.involved_object.name.as_deref(), Some("app"));
    assert_eq!(reloaded.type_.as_deref(), Some("Normal"));
    let note = reloaded.message.unwrap_or_default();
    assert!(
        note.starts_with("Changes detected in 'cfg' of type 'CONFIGMAP'"),
        "{note}"
    );
    // What `kubectl get events` shows as the source, as for Stakater's events.
    assert_eq!(
        reloaded.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("reloader-configmaps")
    );
    server.abort();
}

#[derive(Clone, Default)]
struct Posts(Arc<Mutex<Vec<String>>>);

/// A local `--webhook-url` endpoint recording every POST body; with the flag to pass.
async fn notify_endpoint() -> (Posts, String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let posts = Posts::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("--webhook-url=http://{}/notify", listener.local_addr().unwrap());
    let router = Router::new().route("/notify", post(record)).with_state(posts.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    (posts, url, server)
}

async fn record(State(posts): State<Posts>, body: String) -> StatusCode {
    posts.0.lock().unwrap().push(body);
    StatusCode::OK
}

#[tokio::test]
async fn webhook_url_per_workload_announces_each_change_once_and_rolls_nothing() {
    let f = Fixture::new("notify").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let (posts, url, server) = notify_endpoint().await;

    let mut first = Reloader::start(&f.ns.name, &[&url, "--webhook-url-per-workload"]);
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    eventually("the announcement", || async {
        (posts.0.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    assert_eq!(posts.0.lock().unwrap()[0], r#"{"webhook":"update successful"}"#);
    first.settle(3.0).await;
    first.kill();
    // Restarting announces nothing again, and nothing ever rolled.
    let second = Reloader::start(&f.ns.name, &[&url, "--webhook-url-per-workload"]);
    second.settle(1.0).await;
    assert_eq!(second.metric("reloader_reconciles_total{outcome=\"up_to_date\"}"), 1.0);
    assert_eq!(posts.0.lock().unwrap().len(), 1);
    assert_eq!(f.revisions("app").await, 1);
    server.abort();
}

/// `--webhook-url` as Stakater means it: one POST per changed ConfigMap or Secret, whether or
/// not anything uses it, and nothing written to any workload.
#[tokio::test]
async fn webhook_url_announces_each_changed_source_and_writes_nothing() {
    let f = Fixture::new("notify-src").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    f.config_map("unused", json!({"k": "v1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let (posts, url, server) = notify_endpoint().await;
    let reloader = Reloader::start(&f.ns.name, &[&url]);
    reloader.wait_ready().await;
    let count = || posts.0.lock().unwrap().len();
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    eventually("one announcement", || async { (count() == 1).then_some(()) }).await;
    f.set_config_map("unused", json!({"k": "v2"})).await;
    eventually("a second one, for a source nothing uses", || async {
        (count() == 2).then_some(())
    })
    .await;
    // A change that is not a data change announces nothing.
    f.config_maps
        .patch(
            "cfg",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    f.set_secret("db", json!({"password": "q"})).await;
    eventually("the Secret's", || async { (count() == 3).then_some(()) }).await;
    assert!(
        posts
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|b| b == r#"{"webhook":"update successful"}"#)
    );
    // Nothing written to the workload: no stamp, no record, one revision.
    let d = f.deployments.get("app").await.unwrap();
    assert!(
        !d.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(reloader::core::vocabulary::fixed::ACKNOWLEDGED_HASHES)
    );
    assert_eq!(f.template_hashes("app").await, None);
    assert_eq!(f.revisions("app").await, 1);
    assert_eq!(count(), 3);
    server.abort();
}

/// Stakater's `reloader-meta-info` ConfigMap, written at start in `RELOADER_NAMESPACE`.
#[tokio::test]
async fn the_meta_info_configmap_is_published_as_stakater_does() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let f = Fixture::new("meta").await;
    let reloader = Reloader::start_with(
        crate::support::kubeconfig(),
        &f.ns.name,
        &["--reload-on-create=true"],
        &[
            ("RELOADER_NAMESPACE", &f.ns.name),
            ("RELOADER_DEPLOYMENT_NAME", "reloader"),
        ],
    );
    reloader.wait_ready().await;
    let api: Api<ConfigMap> = Api::namespaced(f.client.clone(), &f.ns.name);
    let cm = eventually("the meta info ConfigMap", || async {
        api.get_opt("reloader-meta-info").await.ok()?
    })
    .await;
    assert_eq!(
        cm.metadata
            .labels
            .unwrap_or_default()
            .get("reloader.stakater.com/meta-info")
            .map(String::as_str),
        Some("reloader")
    );
    let data = cm.data.unwrap_or_default();
    let options: serde_json::Value = serde_json::from_str(&data["reloaderOptions"]).unwrap();
    assert_eq!(options["reloadOnCreate"], true);
    assert_eq!(options["reloadStrategy"], "annotations");
    let deployment: serde_json::Value = serde_json::from_str(&data["deploymentInfo"]).unwrap();
    assert_eq!(deployment["name"], "reloader");
    assert_eq!(deployment["namespace"], json!(f.ns.name));
    assert!(data["buildInfo"].contains("\"releaseVersion\""));
}
