//! Reconcile against an in-process fake API server: one object it stores and patches for real
//! (JSON patches applied, the resourceVersion test honoured), plus scripted failures that a real
//! API server cannot produce on demand. Events are accepted and recorded.

use crate::core::json::JsonAt;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::*;
use crate::core::hash::sha1_hex;
use crate::core::source::{SourceKind, SourceRef, SourceState};
use crate::core::vocabulary::fixed::TEMPLATE_HASHES;
use crate::core::workload::WorkloadKind;
use crate::engine::context::{Context, Outbound, ReconcileOptions};
use crate::engine::events::EventRecorder;
use crate::engine::pacing::{RateLimiter, WriteGate};
use crate::metrics::Metrics;
use crate::scope::NamespaceScope;
use crate::store::Store;

const NS: &str = "ns";

/// The reconcile under test, then the Events it posted in the background, answered.
async fn reconcile(key: &WorkloadKey, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let result = super::reconcile(key, ctx).await;
    ctx.outbound.events.settled(std::time::Duration::from_secs(10)).await;
    result
}

/// A request the fake API server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

#[derive(Default)]
struct FakeState {
    /// The one workload the fake serves, if it exists.
    object: Option<Value>,
    /// Answers for the next requests of a method, before the normal behaviour.
    scripted: VecDeque<(&'static str, u16)>,
    seen: Vec<Seen>,
    versions: u64,
    /// Every PATCH meets a write someone else just made.
    always_conflict: bool,
}

#[derive(Clone, Default)]
struct FakeApi(Arc<Mutex<FakeState>>);

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "reason": reason, "code": code})
}

impl FakeApi {
    fn with(object: Value) -> Self {
        let fake = Self::default();
        fake.state().object = Some(object);
        fake
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }

    /// The next request with `method` is answered `code`.
    fn fail_next(&self, method: &'static str, code: u16) {
        self.state().scripted.push_back((method, code));
    }

    /// Someone else writes the object: a new resourceVersion.
    fn touch(&self) {
        let mut state = self.state();
        state.versions += 1;
        let version = format!("other-{}", state.versions);
        if let Some(object) = state.object.as_mut() {
            object["metadata"]["resourceVersion"] = json!(version);
        }
    }

    /// Method and path of every request but Events.
    fn calls(&self) -> Vec<String> {
        self.state()
            .seen
            .iter()
            .filter(|s| !s.path.contains("/events"))
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    fn events(&self) -> Vec<Value> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.path.contains("/events") && s.method == "POST")
            .map(|s| s.body.clone())
            .collect()
    }

    fn answer(&self, seen: Seen) -> (u16, Value) {
        let mut state = self.state();
        state.seen.push(seen.clone());
        if seen.path.contains("/events") {
            return (201, seen.body);
        }
        if let Some(&(method, code)) = state.scripted.front()
            && method == seen.method
        {
            state.scripted.pop_front();
            return (code, status(code, "Scripted"));
        }
        state.versions += 1;
        let version = state.versions.to_string();
        if state.always_conflict && seen.method == "PATCH" {
            if let Some(object) = state.object.as_mut() {
                object["metadata"]["resourceVersion"] = json!(format!("other-{version}"));
            }
            return (409, status(409, "Conflict"));
        }
        match (seen.method.as_str(), state.object.as_mut()) {
            ("GET", Some(object)) => (200, object.clone()),
            ("PATCH", Some(object)) => {
                let patch: json_patch::Patch = match serde_json::from_value(seen.body) {
                    Ok(p) => p,
                    Err(_) => return (400, status(400, "BadRequest")),
                };
                let mut patched = object.clone();
                if json_patch::patch(&mut patched, &patch).is_err() {
                    return (422, status(422, "Invalid"));
                }
                patched["metadata"]["resourceVersion"] = json!(version);
                *object = patched.clone();
                (200, patched)
            }
            ("DELETE", Some(_)) => {
                state.object = None;
                (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            }
            ("POST", None) => {
                let mut created = seen.body;
                created["metadata"]["resourceVersion"] = json!(version);
                created["metadata"]["uid"] = json!(format!("uid-{version}"));
                state.object = Some(created.clone());
                (201, created)
            }
            ("POST", Some(_)) => (409, status(409, "AlreadyExists")),
            _ => (404, status(404, "NotFound")),
        }
    }

    fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (code, body) = fake.answer(seen);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .expect("a valid response");
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, NS)
    }
}

fn stamp(hash: &str) -> String {
    format!("configmap/app-config={hash}")
}

fn deployment(recorded: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": NS, "uid": "u1", "resourceVersion": "0",
                     "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {"selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}, "annotations": {TEMPLATE_HASHES: stamp(recorded)}},
                              "spec": {"containers": [{"name": "c", "image": "x",
                                                       "envFrom": [{"configMapRef": {"name": "app-config"}}]}]}}}
    })
}

fn job(recorded: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "app", "namespace": NS, "uid": "u1", "resourceVersion": "0",
                     "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {"template": {"metadata": {"annotations": {TEMPLATE_HASHES: stamp(recorded)}},
                              "spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "x",
                                                       "envFrom": [{"configMapRef": {"name": "app-config"}}]}]}}}
    })
}

struct Harness {
    fake: FakeApi,
    ctx: Context,
    key: WorkloadKey,
    leader: watch::Sender<bool>,
}

/// A workload recorded with the old hash of `app-config`, whose content is now new.
fn harness(kind: WorkloadKind, object: Value) -> Harness {
    let fake = FakeApi::with(object.clone());
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
        kind,
        namespace: NS.into(),
        name: "app".into(),
    };
    store.upsert_workload(key.clone(), object);
    let (leader, leading) = watch::channel(true);
    let ctx = Context::new(
        client.clone(),
        store,
        Arc::new(Metrics::new(false)),
        ReconcileOptions {
            dependency: Default::default(),
            plan: Default::default(),
            stamp_keys: watch::channel(Arc::new(crate::core::keyed_hash::StampKeyRing::plain())).1,
            field_manager: "reloader".into(),
            default_waves: None,
            default_window: None,
            wave_deadline: std::time::Duration::from_secs(600),
        },
        Outbound {
            events: EventRecorder::new(client, None),
            alerts: None,
            notifier: None,
            announcer: None,
        },
        Arc::new(NamespaceScope::new(None, Default::default(), false)),
        WriteGate::new(leading, Arc::new(RateLimiter::new(0.0, 0.0, 1))),
    );
    Harness { fake, ctx, key, leader }
}

fn old() -> String {
    sha1_hex(b"old").as_str().to_string()
}

fn new() -> String {
    sha1_hex(b"new").as_str().to_string()
}

fn recorded_hash(object: &Value, template: &str) -> Option<String> {
    object
        .at(&format!("{template}/metadata/annotations"))
        .and_then(|a| a.get(TEMPLATE_HASHES))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns/deployments/app";
const JOBS: &str = "/apis/batch/v1/namespaces/ns/jobs";

#[tokio::test]
async fn an_out_of_date_workload_is_patched_once_and_reported() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::Rolled);
    assert_eq!(h.fake.calls(), [format!("PATCH {DEPLOYMENT}")]);
    let stored = h.fake.state().object.clone().expect("still there");
    assert_eq!(recorded_hash(&stored, "/spec/template"), Some(stamp(&new())));
    assert_eq!(reasons(&h.fake.events()), ["Reloaded"]);
    // Up to date now: a second reconcile writes nothing.
    let again = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(again.outcome, Outcome::UpToDate);
    assert_eq!(h.fake.calls().len(), 1);
}

#[tokio::test]
async fn a_conflict_is_re_read_and_written_again() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    h.fake.fail_next("PATCH", 409);
    h.fake.touch();
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::Rolled);
    assert_eq!(
        h.fake.calls(),
        [
            format!("PATCH {DEPLOYMENT}"),
            format!("GET {DEPLOYMENT}"),
            format!("PATCH {DEPLOYMENT}")
        ]
    );
    assert_eq!(reasons(&h.fake.events()), ["Reloaded"]);
}

#[tokio::test]
async fn the_resource_version_guard_rejects_a_stale_plan_and_the_fresh_one_is_written() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    // Someone else wrote after our cache saw the object: the `test` operation fails (422).
    h.fake.touch();
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::Rolled);
    assert_eq!(
        h.fake.calls(),
        [
            format!("PATCH {DEPLOYMENT}"),
            format!("GET {DEPLOYMENT}"),
            format!("PATCH {DEPLOYMENT}")
        ]
    );
}

#[tokio::test]
async fn a_422_on_an_unchanged_object_is_a_real_failure_reported_once() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    h.fake.fail_next("PATCH", 422);
    let error = reconcile(&h.key, &h.ctx).await.expect_err("a real rejection");
    assert!(matches!(error, ReconcileError::Api(_)), "{error}");
    assert_eq!(
        h.fake.calls(),
        [format!("PATCH {DEPLOYMENT}"), format!("GET {DEPLOYMENT}")]
    );
    assert_eq!(reasons(&h.fake.events()), ["ReloadFail"]);
    let rendered = h.ctx.metrics.render();
    assert!(
        rendered.contains("reloader_reload_executed_total{success=\"false\"} 1"),
        "{rendered}"
    );
}

#[tokio::test]
async fn a_workload_deleted_meanwhile_is_gone() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    h.fake.state().object = None;
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::Gone);
    assert!(h.ctx.store.workload(&h.key).is_none(), "forgotten by the store");
    assert!(h.fake.events().is_empty());
}

#[tokio::test]
async fn leadership_lost_before_the_write_writes_nothing() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    h.leader.send_replace(false);
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::NotLeader);
    assert!(h.fake.calls().is_empty(), "{:?}", h.fake.calls());
    assert!(h.fake.events().is_empty());
}

#[tokio::test]
async fn an_up_to_date_workload_gets_no_request_at_all() {
    let h = harness(WorkloadKind::Deployment, deployment(&new()));
    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(done.outcome, Outcome::UpToDate);
    assert!(h.fake.state().seen.is_empty());
}

#[tokio::test]
async fn a_job_deleted_then_not_created_is_created_by_the_next_reconcile() {
    let h = harness(WorkloadKind::Job, job(&old()));
    h.fake.fail_next("POST", 500);
    let error = reconcile(&h.key, &h.ctx).await.expect_err("the create failed");
    assert!(matches!(error, ReconcileError::Api(_)), "{error}");
    assert_eq!(h.fake.calls(), [format!("DELETE {JOBS}/app"), format!("POST {JOBS}")]);
    assert!(h.fake.state().object.is_none(), "the old Job is gone");
    assert_eq!(reasons(&h.fake.events()), ["ReloadFail"]);

    let done = reconcile(&h.key, &h.ctx).await.expect("the pending create succeeds");
    assert_eq!(done.outcome, Outcome::Rolled);
    assert_eq!(h.fake.calls().len(), 3, "{:?}", h.fake.calls());
    let created = h.fake.state().object.clone().expect("the Job exists again");
    assert_eq!(recorded_hash(&created, "/spec/template"), Some(stamp(&new())));
    assert!(created.at("/metadata/uid").is_some_and(|u| u != "u1"));
    // Nothing more is owed.
    let again = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(again.outcome, Outcome::UpToDate);
    assert_eq!(h.fake.calls().len(), 3);
}

#[tokio::test]
async fn persistent_conflicts_give_up_after_a_bound() {
    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    h.fake.state().always_conflict = true;
    let error = reconcile(&h.key, &h.ctx).await.expect_err("never gets through");
    assert!(matches!(error, ReconcileError::Conflicts), "{error}");
    let calls = h.fake.calls();
    let patches = calls.iter().filter(|c| c.starts_with("PATCH")).count();
    let reads = calls.iter().filter(|c| c.starts_with("GET")).count();
    assert_eq!((patches, reads), (MAX_CONFLICTS as usize, MAX_CONFLICTS as usize));
    assert!(h.fake.events().is_empty(), "a conflict is not a failed reload");
}

/// Every Event request (a first report is a POST; the recorder PATCHes a repeat into a series).
fn event_requests(fake: &FakeApi, reason: &str) -> usize {
    fake.state()
        .seen
        .iter()
        .filter(|s| s.path.contains("/events") && s.body["reason"] == reason)
        .count()
}

#[tokio::test]
async fn annotation_problems_are_reported_once_each_and_again_when_they_come_back() {
    let with = |annotations: Value, uid: &str| {
        let mut d = deployment(&new());
        d["metadata"]["annotations"] = annotations;
        d["metadata"]["uid"] = json!(uid);
        d
    };
    let typo = json!({"reloader.stakater.com/auto": "true", "reloader.stakater.com/atuo": "true"});
    let h = harness(WorkloadKind::Deployment, with(typo.clone(), "u1"));
    let invalid = |h: &Harness| event_requests(&h.fake, "InvalidAnnotation");
    let counted = |h: &Harness| {
        h.ctx
            .metrics
            .render()
            .lines()
            .find_map(|l| {
                l.strip_prefix("reloader_annotation_problems_total{kind=\"Deployment\",problem=\"invalid\"} ")
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };

    let done = reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(
        done.outcome,
        Outcome::UpToDate,
        "the problem does not stop the reconcile"
    );
    let events = h.fake.events();
    assert_eq!(reasons(&events), ["InvalidAnnotation"]);
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(
        events[0]["message"],
        "unknown annotation reloader.stakater.com/atuo: did you mean reloader.stakater.com/auto?"
    );
    assert_eq!(counted(&h), "1");

    // Resyncs, an unrelated change: nothing new.
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    let mut labelled = with(typo.clone(), "u1");
    labelled["metadata"]["labels"] = json!({"team": "a"});
    h.ctx.store.upsert_workload(h.key.clone(), labelled);
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 1);
    // A second, different problem: reported; the first is not repeated.
    let two = json!({"reloader.stakater.com/atuo": "true", "reloader.stakater.com/auto": "yes"});
    h.ctx.store.upsert_workload(h.key.clone(), with(two, "u1"));
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 2);
    assert_eq!(counted(&h), "2");
    // Fixed, then brought back: reported again.
    h.ctx
        .store
        .upsert_workload(h.key.clone(), with(json!({"reloader.stakater.com/auto": "true"}), "u1"));
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 2);
    h.ctx.store.upsert_workload(h.key.clone(), with(typo.clone(), "u1"));
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 3);
    // Deleted and created again under the same name: a new object, reported again.
    h.ctx.forget_reported(&h.key);
    h.ctx.store.upsert_workload(h.key.clone(), with(typo.clone(), "u2"));
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 4);
    // Re-created while no Delete was seen (a watch gap): a new uid, reported again.
    h.ctx.store.upsert_workload(h.key.clone(), with(typo, "u3"));
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    assert_eq!(invalid(&h), 5);
    assert_eq!(counted(&h), "5");
}

#[tokio::test]
async fn ineffective_annotations_are_reported_as_such() {
    let mut d = deployment(&new());
    d["metadata"]["annotations"]["reloader.stakater.com/match"] = json!("true");
    let h = harness(WorkloadKind::Deployment, d);
    reconcile(&h.key, &h.ctx).await.expect("reconciled");
    let events = h.fake.events();
    assert_eq!(reasons(&events), ["IneffectiveAnnotation"]);
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("reloader.stakater.com/match has no effect on a Deployment"),
        "{}",
        events[0]["message"]
    );
}

/// Rollout waves through a reconcile: `app` (the harness's) comes second in the order of the
/// source's dependents, behind `aaa`; it waits while `aaa` has not rolled, and while `aaa`
/// carries the new content but is not healthy; a failed `aaa` halts it, told once on the source
/// and on `aaa`; a healthy one lets it roll.
#[tokio::test]
async fn a_wave_holds_halts_and_lets_through_as_its_members_stand() {
    use crate::core::rollout_status::RolloutStatus;
    use crate::core::vocabulary::fixed::ROLLOUT_WAVES;
    use crate::store::{IndexEntry, StoredWorkload};

    let h = harness(WorkloadKind::Deployment, deployment(&old()));
    let store = &h.ctx.store;
    let source = SourceRef::new(SourceKind::ConfigMap, "app-config");
    store.upsert_source(
        NS,
        SourceState {
            source: source.clone(),
            annotations: [(ROLLOUT_WAVES.to_string(), "1,100%".to_string())].into(),
            hash: sha1_hex(b"new"),
            keys: Default::default(),
            changed: None,
        },
    );
    let aaa = WorkloadKey {
        name: "aaa".into(),
        ..h.key.clone()
    };
    let member = |recorded: &str, status: Value| {
        let mut object = deployment(recorded);
        object["metadata"]["name"] = json!("aaa");
        object["metadata"]["uid"] = json!("u-aaa");
        object["metadata"]["generation"] = json!(2);
        object["status"] = status;
        StoredWorkload::of(WorkloadKind::Deployment, object)
    };
    let done = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                      "availableReplicas": 1});
    let failed = json!({"observedGeneration": 2, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
    store.upsert_workload(aaa.clone(), member(&old(), done.clone()));
    store.index(
        &aaa,
        IndexEntry {
            sources: [source.clone()].into(),
            dependencies: [source.clone()].into(),
            scans: false,
        },
    );
    let halted_about = |name: &str| {
        h.fake
            .events()
            .iter()
            .filter(|e| e["reason"] == "ReloadHalted" && e["involvedObject"]["name"] == name)
            .count()
    };

    // aaa has not rolled: app waits for the first wave.
    assert_eq!(
        reconcile(&h.key, &h.ctx).await.expect("reconciled").outcome,
        Outcome::Held
    );
    // aaa rolled, not healthy yet: app still waits.
    let rolling = json!({"observedGeneration": 1});
    store.upsert_workload(aaa.clone(), member(&new(), rolling));
    assert_eq!(
        reconcile(&h.key, &h.ctx).await.expect("reconciled").outcome,
        Outcome::Held
    );
    assert_eq!(halted_about("app-config"), 0);
    // aaa failed with the new content: halted, told once on the source and on aaa.
    store.upsert_workload(aaa.clone(), member(&new(), failed));
    assert_eq!(
        reconcile(&h.key, &h.ctx).await.expect("reconciled").outcome,
        Outcome::Held
    );
    assert_eq!(
        reconcile(&h.key, &h.ctx).await.expect("reconciled").outcome,
        Outcome::Held
    );
    assert_eq!((halted_about("app-config"), halted_about("aaa")), (1, 1));
    let on_source = h
        .fake
        .events()
        .into_iter()
        .find(|e| e["involvedObject"]["name"] == "app-config")
        .unwrap();
    assert_eq!(on_source["involvedObject"]["kind"], "ConfigMap");
    assert_eq!(on_source["type"], "Warning");
    let message = on_source["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("deploy/aaa failed with it (ProgressDeadlineExceeded)"),
        "{message}"
    );
    assert!(
        h.fake.calls().is_empty(),
        "nothing written while held: {:?}",
        h.fake.calls()
    );
    // aaa healthy with the new content: app rolls.
    store.upsert_workload(aaa.clone(), member(&new(), done));
    assert_eq!(
        store.depending_on(NS, &source).unwrap()[0].1.rollout(),
        &RolloutStatus::Healthy
    );
    assert_eq!(
        reconcile(&h.key, &h.ctx).await.expect("reconciled").outcome,
        Outcome::Rolled
    );
    assert_eq!(h.fake.calls(), [format!("PATCH {DEPLOYMENT}")]);
}
