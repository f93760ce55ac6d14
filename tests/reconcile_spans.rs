//! The reconcile's tracing spans, read back from the JSON log: the engine's scheduler runs one
//! reconcile that rolls a Deployment, against an in-process API server that applies its patch.
//! A test binary of its own, for the global subscriber (see `span_capture`).

mod span_capture;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use reloader::core::hash::sha1_hex;
use reloader::core::keyed_hash::StampKeyRing;
use reloader::core::source::{SourceKind, SourceRef, SourceState};
use reloader::core::vocabulary::fixed::TEMPLATE_HASHES;
use reloader::core::workload::WorkloadKind;
use reloader::engine::events::EventRecorder;
use reloader::engine::{Engine, EngineOptions, Outbound};
use reloader::metrics::Metrics;
use reloader::store::{Store, WorkloadKey};
use serde_json::{Value, json};
use span_capture::Capture;
use tokio::sync::watch;

const NS: &str = "ns";

/// An API server holding one Deployment: JSON patches applied to it (the resourceVersion test
/// included), Events accepted, anything else not found. Records the patches.
#[derive(Clone)]
struct FakeApi {
    object: Arc<Mutex<Value>>,
    patches: Arc<Mutex<Vec<Value>>>,
}

impl FakeApi {
    fn answer(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        if path.ends_with("/events") && method == "POST" {
            return (201, body);
        }
        let mut object = self.object.lock().unwrap();
        if path != format!("/apis/apps/v1/namespaces/{NS}/deployments/app") {
            return (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
            );
        }
        match method {
            "GET" => (200, object.clone()),
            "PATCH" => {
                self.patches.lock().unwrap().push(body.clone());
                let patch: json_patch::Patch = serde_json::from_value(body).expect("a JSON patch");
                let mut patched = object.clone();
                json_patch::patch(&mut patched, &patch).expect("the patch applies");
                patched["metadata"]["resourceVersion"] = json!("2");
                *object = patched.clone();
                (200, patched)
            }
            _ => (
                405,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405}),
            ),
        }
    }

    fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (code, answer) = fake.answer(parts.method.as_str(), parts.uri.path(), body);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .expect("a valid response");
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, NS)
    }
}

/// A Deployment recorded with the old hash of `app-config`, which the store holds new content of.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": NS, "uid": "u1", "resourceVersion": "1",
                     "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {"selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"},
                                           "annotations": {TEMPLATE_HASHES: format!("configmap/app-config={}", sha1_hex(b"old"))}},
                              "spec": {"containers": [{"name": "c", "image": "x",
                                                       "envFrom": [{"configMapRef": {"name": "app-config"}}]}]}}}
    })
}

/// Each reconcile runs in a `reconcile{workload}` span, and its phases in spans of their own
/// inside it: `compute{attempt}`, `write{attempt}`, `report`, so a trace of a slow reconcile
/// shows which phase its time went to.
#[tokio::test]
async fn a_reconcile_that_writes_has_compute_write_and_report_spans_inside_its_reconcile_span() {
    let capture = Capture::install();

    let fake = FakeApi {
        object: Arc::new(Mutex::new(deployment())),
        patches: Arc::default(),
    };
    let client = fake.client();
    let store = Store::default();
    store.upsert_source(
        NS,
        SourceState {
            source: SourceRef::new(SourceKind::ConfigMap, "app-config"),
            annotations: Default::default(),
            hash: sha1_hex(b"new"),
            keys: Default::default(),
            changed: None,
        },
    );
    let key = WorkloadKey {
        kind: WorkloadKind::Deployment,
        namespace: NS.into(),
        name: "app".into(),
    };
    store.upsert_workload(key.clone(), deployment());
    let (_leader, leading) = watch::channel(true);
    let engine = Engine::new(
        client.clone(),
        store,
        Arc::new(Metrics::new(false)),
        EngineOptions {
            dependency: Default::default(),
            plan: Default::default(),
            stamp_keys: watch::channel(Arc::new(StampKeyRing::plain())).1,
            field_manager: "reloader".into(),
            coalesce_window: Duration::ZERO,
            default_window: None,
            clock: reloader::clock::Clock::system(),
            default_waves: None,
            wave_deadline: Duration::from_secs(600),
            eviction_client: None,
            workers: 1,
            scopes: vec![Some(NS.into())],
            namespaces_to_ignore: Default::default(),
            namespace_selector: None,
            resource_label_selector: None,
            source_kinds: vec![SourceKind::ConfigMap],
            workload_kinds: vec![WorkloadKind::Deployment],
            max_reloads_per_second: 100.0,
            max_reloads_per_second_per_namespace: 100.0,
            burst: 10,
        },
        Outbound {
            events: EventRecorder::new(client, None),
            alerts: None,
            notifier: None,
            announcer: None,
        },
        leading,
    );
    engine.scheduler.source_synced(SourceKind::ConfigMap, Some(NS));
    engine.scheduler.enqueue(key.clone());
    let (shutdown, stop) = watch::channel(false);
    let running = tokio::spawn(engine.scheduler.clone().run(engine.ctx.clone(), stop));

    // Span close lines of this workload's first reconcile, in order, the reconcile's own last
    // (one worker: a next reconcile starts after it). A close line names the closing span and
    // the spans it is in.
    let workload = key.to_string();
    let ours = |line: &Value| {
        line["fields"]["message"] == "close"
            && (line["span"]["workload"] == workload || line["spans"][0]["workload"] == workload)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let closed = loop {
        let mut closed: Vec<Value> = capture.lines().into_iter().filter(ours).collect();
        if let Some(end) = closed.iter().position(|line| line["span"]["name"] == "reconcile") {
            closed.truncate(end + 1);
            break closed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconcile span closed: {closed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    shutdown.send_replace(true);
    running.await.unwrap();

    // It wrote: the template now carries the new hash.
    let patches = fake.patches.lock().unwrap().clone();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(
        patches[0].to_string().contains(sha1_hex(b"new").as_str()),
        "{}",
        patches[0]
    );

    let (reconcile, phases) = closed.split_last().unwrap();
    assert_eq!(reconcile["span"]["name"], "reconcile", "{reconcile}");
    assert_eq!(reconcile["span"]["workload"], workload, "{reconcile}");
    assert_eq!(reconcile["spans"], json!([]), "{reconcile}");
    // Every phase span sits directly inside the reconcile span.
    for phase in phases {
        assert_eq!(phase["spans"], json!([reconcile["span"]]), "{phase}");
        assert!(phase["fields"]["time.busy"].is_string(), "{phase}");
    }
    // The roll: computed, written and reported, in that order, on the first attempt.
    let named = |name: &str| phases.iter().rposition(|p| p["span"]["name"] == name);
    let (compute, write, report) = (named("compute"), named("write"), named("report"));
    assert!(
        compute.is_some() && compute < write && write < report,
        "compute, write, report in {phases:?}"
    );
    assert_eq!(phases[compute.unwrap()]["span"]["attempt"], 1);
    assert_eq!(phases[write.unwrap()]["span"]["attempt"], 1);
}
