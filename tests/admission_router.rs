//! The admission router in-process (no sockets, no cluster): malformed input, every decision
//! path, and a fuzz-style property over arbitrary bytes and arbitrary reviews.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use proptest::prelude::*;
use reloader::admission::{AdmissionContext, AdmissionLimits, router};
use reloader::core::hash::sha1_hex;
use reloader::core::plan::ReloadStrategy;
use reloader::core::source::LAST_APPLIED;
use reloader::core::source::{SourceKind, SourceRef, SourceState};
use reloader::core::vocabulary::{defaults, fixed};
use reloader::scope::NamespaceScope;
use reloader::store::Store;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

const SELF: &str = "system:serviceaccount:reloader:reloader";

fn app(ready: bool) -> Router {
    app_in(ready, NamespaceScope::new(None, Default::default(), false))
}

/// The router answering for the namespaces `scope` allows.
fn app_in(ready: bool, scope: NamespaceScope) -> Router {
    app_full(ready, scope, AdmissionLimits::default())
}

fn app_with(ready: bool, limits: AdmissionLimits) -> Router {
    app_full(ready, NamespaceScope::new(None, Default::default(), false), limits)
}

fn app_full(ready: bool, scope: NamespaceScope, limits: AdmissionLimits) -> Router {
    let store = Store::default();
    store.upsert_source(
        "shop",
        SourceState {
            source: SourceRef::new(SourceKind::ConfigMap, "cfg"),
            annotations: BTreeMap::new(),
            hash: sha1_hex(b"a=1"),
            keys: Default::default(),
            changed: None,
        },
    );
    let (_tx, ready) = watch::channel(ready);
    router(AdmissionContext {
        own_username: Some(SELF.into()),
        scope: Arc::new(scope),
        limits,
        ..AdmissionContext::standalone(store, ready)
    })
}

async fn post(router: &Router, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 8 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn deployment(annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1",
                                                       "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}
    })
}

fn review(operation: &str, object: Value, old: Option<Value>, user: &str, dry_run: bool) -> Vec<u8> {
    review_in("shop", operation, object, old, user, dry_run)
}

fn review_in(
    namespace: &str,
    operation: &str,
    object: Value,
    old: Option<Value>,
    user: &str,
    dry_run: bool,
) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap_or("Deployment").to_string();
    let group = if kind == "ConfigMap" || kind == "Secret" {
        ""
    } else {
        "apps"
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b5c-uid", "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": "x"},
            "name": "web", "namespace": namespace, "operation": operation,
            "userInfo": {"username": user}, "object": object, "oldObject": old, "dryRun": dry_run
        }
    }))
    .unwrap()
}

/// The patch bytes, whichever way they were encoded (kube serializes them as a byte array,
/// which the API server accepts like base64).
fn patch_of(response: &Value) -> Option<Value> {
    let bytes = match &response["response"]["patch"] {
        Value::String(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok()?,
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().map(|b| b as u8))
            .collect::<Option<Vec<u8>>>()?,
        _ => return None,
    };
    serde_json::from_slice(&bytes).ok()
}

#[tokio::test]
async fn malformed_input_gets_a_json_error() {
    let router = app(true);
    let (status, body) = post(&router, "/mutate", b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("not an AdmissionReview"),
        "{body}"
    );
    let (status, body) = post(
        &router,
        "/validate",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "the AdmissionReview has no request");
    let (status, _) = post(&router, "/mutate", vec![b' '; 4 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn create_is_stamped_and_dry_run_gets_the_same_answer() {
    let router = app(true);
    let object = deployment(json!({defaults::AUTO: "true"}));
    let (status, body) = post(
        &router,
        "/mutate",
        review("CREATE", object.clone(), None, "alice", false),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["uid"], "0b5c-uid");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    let expected = format!("configmap/cfg={}", sha1_hex(b"a=1"));
    assert_eq!(
        patch_of(&body),
        Some(json!([{"op": "add", "path": "/spec/template/metadata/annotations",
                     "value": {fixed::TEMPLATE_HASHES: expected}}]))
    );
    let (_, dry) = post(&router, "/mutate", review("CREATE", object, None, "alice", true)).await;
    assert_eq!(dry["response"], body["response"]);
}

#[tokio::test]
async fn stamp_less_updates_keep_the_stamp_and_own_requests_are_untouched() {
    let router = app(true);
    let manifest = deployment(json!({defaults::AUTO: "true"}));
    let mut stored = manifest.clone();
    stored["spec"]["template"]["metadata"]["annotations"] = json!({fixed::TEMPLATE_HASHES: "configmap/cfg=old"});
    let (_, body) = post(
        &router,
        "/mutate",
        review("UPDATE", manifest.clone(), Some(stored.clone()), "alice", false),
    )
    .await;
    assert_eq!(
        patch_of(&body),
        Some(json!([{"op": "add", "path": "/spec/template/metadata/annotations",
                     "value": {fixed::TEMPLATE_HASHES: "configmap/cfg=old"}}])),
        "the old stamp is kept, not refreshed: the engine rolls for real changes"
    );
    let (_, own) = post(&router, "/mutate", review("CREATE", manifest, None, SELF, false)).await;
    assert_eq!(own["response"]["allowed"], true);
    assert!(own["response"].get("patch").is_none());
}

/// The webhook reads a container's image, probes and the like only as fingerprints of their
/// text: an update that changes one of them still changes the template (it rolls anyway), so
/// it is stamped with the current hashes, not given the old stamps back.
#[tokio::test]
async fn an_update_changing_only_what_no_rule_reads_is_restamped() {
    let router = app(true);
    let mut stored = deployment(json!({defaults::AUTO: "true"}));
    stored["spec"]["template"]["metadata"]["annotations"] = json!({fixed::TEMPLATE_HASHES: "configmap/cfg=old"});
    let (_, same) = post(
        &router,
        "/mutate",
        review("UPDATE", stored.clone(), Some(stored.clone()), "alice", false),
    )
    .await;
    assert_eq!(patch_of(&same), None, "an unchanged update is admitted as it is");
    let changes: [(&str, Value); 4] = [
        ("/spec/template/spec/containers/0/image", json!("web:2")),
        (
            "/spec/template/spec/containers/0/resources",
            json!({"limits": {"cpu": "1"}}),
        ),
        ("/spec/template/spec/nodeSelector", json!({"disk": "ssd"})),
        ("/spec/template/spec/containers/0/args", json!(["--verbose"])),
    ];
    for (pointer, value) in changes {
        let mut manifest = deployment(json!({defaults::AUTO: "true"}));
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        manifest.pointer_mut(parent).unwrap()[field] = value;
        let (_, body) = post(
            &router,
            "/mutate",
            review("UPDATE", manifest, Some(stored.clone()), "alice", false),
        )
        .await;
        let patch = patch_of(&body).unwrap_or(json!([]));
        let stamp = patch
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["path"] == "/spec/template/metadata/annotations")
            .unwrap_or_else(|| panic!("{pointer}: no template stamp in {patch}"));
        let record = stamp["value"][fixed::TEMPLATE_HASHES].as_str().unwrap();
        assert!(
            record.starts_with("configmap/cfg=") && record != "configmap/cfg=old",
            "{pointer}: stamped with the current hash, not the old one: {record}"
        );
        assert_eq!(patch.as_array().unwrap().len(), 1, "{pointer}: only the stamp: {patch}");
    }
}

/// `kubectl apply`'s copy of the object is not read (nor built) by the webhook; its patches
/// must still leave it alone, also when it is the object's only annotation, under either
/// strategy, for a create and for a stamp-less update.
#[tokio::test]
async fn the_applied_copy_is_never_patched() {
    for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
        let store = Store::default();
        let (_tx, ready) = watch::channel(true);
        let router = router(AdmissionContext {
            strategy,
            ..AdmissionContext::standalone(store, ready)
        });
        let mut object = deployment(json!({LAST_APPLIED: "{\"kind\":\"Deployment\"}"}));
        // Annotated on the template only; `gone` is missing, so the env-var strategy records it
        // in the object's annotations.
        object["spec"]["template"]["metadata"]["annotations"] = json!({defaults::AUTO: "true"});
        object["spec"]["template"]["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "gone"}}]);
        let mut old = object.clone();
        old["metadata"]["annotations"][LAST_APPLIED] = json!("{\"kind\":\"Deployment\",\"old\":1}");
        for (operation, old) in [("CREATE", None), ("UPDATE", Some(old))] {
            let (status, body) = post(
                &router,
                "/mutate",
                review(operation, object.clone(), old, "alice", false),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{strategy:?} {operation}");
            let patch = patch_of(&body).unwrap_or(json!([]));
            for op in patch.as_array().unwrap() {
                let path = op["path"].as_str().unwrap();
                assert!(
                    !["/metadata", "/metadata/annotations"].contains(&path) && !path.contains("last-applied"),
                    "{strategy:?} {operation}: {op}"
                );
            }
            if strategy == ReloadStrategy::EnvVars && operation == "CREATE" {
                assert!(
                    patch
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|op| op["path"].as_str().unwrap().starts_with("/metadata/annotations/")),
                    "the absent source is recorded beside the applied copy: {patch}"
                );
            }
        }
    }
}

#[tokio::test]
async fn not_ready_admits_unstamped_with_a_warning() {
    let (_, body) = post(
        &app(false),
        "/mutate",
        review("CREATE", deployment(json!({defaults::AUTO: "true"})), None, "a", false),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("patch").is_none());
    assert!(body["response"]["warnings"][0].as_str().unwrap().contains("starting"));
}

#[tokio::test]
async fn validation_denies_typos_and_bad_values_and_warns_on_soft_problems() {
    let router = app(true);
    let (_, body) = post(
        &router,
        "/validate",
        review(
            "CREATE",
            deployment(json!({"reloader.stakater.com/atuo": "true"})),
            None,
            "a",
            false,
        ),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(
        body["response"]["status"]["message"],
        "unknown annotation reloader.stakater.com/atuo: did you mean reloader.stakater.com/auto?"
    );
    let (_, body) = post(
        &router,
        "/validate",
        review("CREATE", deployment(json!({defaults::AUTO: "maybe"})), None, "a", false),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
    // A problem the object already had only warns on update.
    let old = deployment(json!({defaults::AUTO: "maybe"}));
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"x": "y"});
    let (_, body) = post(&router, "/validate", review("UPDATE", new, Some(old), "a", false)).await;
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["warnings"].as_array().unwrap().len(), 1);
    // Soft: a reload list naming a missing Secret; a match annotation no workload searches for.
    let (_, body) = post(
        &router,
        "/validate",
        review(
            "CREATE",
            deployment(json!({defaults::SECRET_RELOAD: "db"})),
            None,
            "a",
            false,
        ),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(
        body["response"]["warnings"][0],
        "Secret db does not exist yet; reloads on it start when it is created"
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cfg", "namespace": "shop", "annotations": {defaults::MATCH: "true"}}});
    let (_, body) = post(&router, "/validate", review("CREATE", cm, None, "a", false)).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(
        body["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no workload in shop has")
    );
}

/// The `match` warning asks the store about the review's namespace alone: a cluster with many
/// workloads elsewhere (some of them searching) neither changes the answer nor the cost.
#[tokio::test]
async fn a_match_review_looks_at_its_own_namespace_only() {
    use reloader::core::workload::WorkloadKind;
    use reloader::store::WorkloadKey;
    let store = Store::default();
    let key = |namespace: &str, name: &str| WorkloadKey {
        kind: WorkloadKind::Deployment,
        namespace: namespace.into(),
        name: name.into(),
    };
    let searching = |namespace: &str| {
        let mut d = deployment(json!({defaults::SEARCH: "true"}));
        d["metadata"]["namespace"] = json!(namespace);
        d
    };
    for i in 0..3000 {
        store.upsert_workload(key(&format!("team-{}", i % 30), &format!("w{i}")), searching("x"));
    }
    store.upsert_workload(key("shop", "plain"), deployment(json!({})));
    let (_tx, ready) = watch::channel(true);
    let router = router(AdmissionContext::standalone(store.clone(), ready));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cfg", "namespace": "shop", "annotations": {defaults::MATCH: "true"}}});
    let warned = |body: &Value| {
        body["response"]["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w.as_str().unwrap_or("").contains("no workload in shop has"))
        })
    };
    let before = store.visited();
    let (_, body) = post(&router, "/validate", review("CREATE", cm.clone(), None, "a", false)).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(warned(&body), "searching workloads elsewhere do not count: {body}");
    let cost = store.visited() - before;
    assert!(cost <= 1, "the review looked at {cost} workloads; shop has 1");
    // A workload of shop that searches: no warning.
    store.upsert_workload(key("shop", "searcher"), searching("shop"));
    let before = store.visited();
    let (_, body) = post(&router, "/validate", review("CREATE", cm, None, "a", false)).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(!warned(&body), "{body}");
    assert!(store.visited() - before <= 2);
}

#[tokio::test]
async fn reviews_outside_the_engines_namespaces_are_admitted_untouched_and_reveal_nothing() {
    use std::collections::BTreeSet;
    // Cluster-wide, `legacy` ignored, a selector that (so far) selected `shop` and `legacy`.
    let scope = NamespaceScope::new(None, BTreeSet::from(["legacy".to_string()]), true);
    scope.replace_selected(BTreeSet::from(["shop".to_string(), "legacy".to_string()]));
    let router = app_in(true, scope);
    // Answered in scope, these would carry a patch, a warning naming a Secret, or a denial.
    let stamped = deployment(json!({defaults::AUTO: "true", defaults::SECRET_RELOAD: "db"}));
    let typo = deployment(json!({"reloader.stakater.com/atuo": "true"}));
    for namespace in ["legacy", "unselected"] {
        for path in ["/mutate", "/validate"] {
            for object in [&stamped, &typo] {
                let (status, body) = post(
                    &router,
                    path,
                    review_in(namespace, "CREATE", object.clone(), None, "alice", false),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
                let response = &body["response"];
                assert_eq!(response["allowed"], true, "{namespace} {path}: {body}");
                assert!(response.get("patch").is_none(), "{namespace} {path}: {body}");
                assert!(response.get("warnings").is_none(), "{namespace} {path}: {body}");
                assert!(
                    response["status"].get("message").is_none(),
                    "{namespace} {path}: {body}"
                );
            }
        }
    }
    // In scope, the same reviews are answered as usual: the check above could fail.
    let (_, body) = post(
        &router,
        "/mutate",
        review("CREATE", stamped.clone(), None, "alice", false),
    )
    .await;
    assert!(patch_of(&body).is_some());
    assert!(body["response"]["warnings"][0].as_str().unwrap().contains("Secret db"));
    let (_, body) = post(&router, "/validate", review("CREATE", typo, None, "alice", false)).await;
    assert_eq!(body["response"]["allowed"], false);

    // `--namespaces`: only the listed namespaces.
    let listed = app_in(
        true,
        NamespaceScope::new(Some(BTreeSet::from(["team-a".to_string()])), Default::default(), false),
    );
    let (_, body) = post(&listed, "/mutate", review("CREATE", stamped, None, "alice", false)).await;
    assert!(body["response"].get("patch").is_none(), "{body}");
}

#[tokio::test]
async fn denials_and_warnings_are_bounded() {
    let router = app(true);
    // Fifty typos: the first few are named, the rest counted.
    let typos: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("reloader.stakater.com/atuo{i:02}"), json!("true")))
        .collect();
    let (_, body) = post(
        &router,
        "/validate",
        review("CREATE", deployment(Value::Object(typos)), None, "a", false),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(message.ends_with(" (and 46 more)"), "{message}");
    assert!(message.len() < 1200, "{}", message.len());
    // Reload lists over the limits are denied with the rule's message.
    let long = vec!["db"; 101].join(",");
    let (_, body) = post(
        &router,
        "/validate",
        review(
            "CREATE",
            deployment(json!({defaults::SECRET_RELOAD: long})),
            None,
            "a",
            false,
        ),
    )
    .await;
    assert_eq!(
        body["response"]["status"]["message"],
        "secret.reloader.stakater.com/reload: the list has 101 items; at most 100 are allowed"
    );
    // Many missing sources: at most ten warnings.
    let names = (0..40).map(|i| format!("missing-{i}")).collect::<Vec<_>>().join(",");
    let (_, body) = post(
        &router,
        "/validate",
        review(
            "CREATE",
            deployment(json!({defaults::SECRET_RELOAD: names})),
            None,
            "a",
            false,
        ),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["warnings"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn requests_over_the_in_flight_limit_are_answered_503_at_once() {
    let router = app_with(
        true,
        AdmissionLimits {
            max_in_flight: 1,
            ..AdmissionLimits::default()
        },
    );
    // A request whose body does not end until told holds the only slot; it says when its
    // body is being read (so it holds the slot).
    let (reading, is_reading) = tokio::sync::oneshot::channel::<()>();
    let (hold, held) = tokio::sync::oneshot::channel::<()>();
    let endless = futures::stream::once(async move {
        let _ = reading.send(());
        let _ = held.await;
        Ok::<_, std::convert::Infallible>(bytes::Bytes::new())
    });
    let first = tokio::spawn(
        router
            .clone()
            .oneshot(Request::post("/mutate").body(Body::from_stream(endless)).unwrap()),
    );
    is_reading.await.unwrap();
    let (status, body) = post(&router, "/validate", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "the webhook is busy; try again");
    drop(hold);
    first.await.unwrap().unwrap();
    let (status, _) = post(&router, "/validate", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the slot is free again");
}

fn fuzz_cases() -> u32 {
    std::env::var("RELOADER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

thread_local! {
    /// One runtime and one router per fuzzing thread: the cases measure the handler, not setup.
    static FUZZ: (tokio::runtime::Runtime, Router) = (
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap(),
        app(true),
    );
}

fn fuzz_post(path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    FUZZ.with(|(rt, router)| rt.block_on(post(router, path, body)))
}

/// Reviews whose objects carry arbitrary annotations (keys near our vocabulary or not, any
/// values) and arbitrary operations.
fn arbitrary_review() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just(defaults::AUTO.to_string()),
        Just(defaults::CONFIGMAP_RELOAD.to_string()),
        Just(defaults::PAUSE_PERIOD.to_string()),
        Just(fixed::TEMPLATE_HASHES.to_string()),
        "[a-z.]{0,12}/[a-z-]{0,12}",
        "reloader\\.stak[a-z]{3}\\.com/[a-z-]{1,8}",
    ];
    let value = prop_oneof![Just("true".to_string()), ".{0,20}", "[(|*.a-z]{0,10}"];
    let annotations = prop::collection::btree_map(key, value, 0..5);
    let op = prop::sample::select(vec!["CREATE", "UPDATE", "DELETE", "CONNECT"]);
    let kind = prop::sample::select(vec!["Deployment", "ConfigMap", "CronJob", "Pod"]);
    (annotations.clone(), annotations, op, kind, any::<bool>()).prop_map(|(meta, tmpl, op, kind, with_old)| {
        let mut object = deployment(json!(meta));
        object["kind"] = json!(kind);
        object["spec"]["template"]["metadata"]["annotations"] = json!(tmpl);
        let old = with_old.then(|| deployment(json!({})));
        review(op, object, old, "fuzz", false)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the server: a JSON error or a valid review comes back.
    #[test]
    fn arbitrary_bytes_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (status, body) = fuzz_post("/validate", bytes);
        prop_assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::OK, "{status}");
        prop_assert!(body.get("error").is_some() || body.get("response").is_some());
    }

    /// Arbitrary reviews always get a review back with the same uid, from both webhooks, and a
    /// denial always explains itself.
    #[test]
    fn arbitrary_reviews_get_a_review(body in arbitrary_review()) {
        for path in ["/mutate", "/validate"] {
            let (status, answer) = fuzz_post(path, body.clone());
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(&answer["response"]["uid"], "0b5c-uid");
            if answer["response"]["allowed"] == false {
                prop_assert!(!answer["response"]["status"]["message"].as_str().unwrap_or("").is_empty());
            }
        }
    }
}

/// Anyone who reaches the webhook port can post a review naming any Secret of a namespace the
/// reloader serves: under either strategy, keyed or not, the answer carries nothing derived
/// from the Secret's data in plain (its SHA-1 is an offline oracle for a weak password), and a
/// right guess planted in the review gets the same answer as a wrong one.
#[tokio::test]
async fn a_forged_review_learns_nothing_of_a_secret() {
    use reloader::core::keyed_hash::StampKeyRing;
    let password = sha1_hex(b"password=hunter2").to_string();
    let guess = sha1_hex(b"password=letmein").to_string();
    let keyed = StampKeyRing::new("a", &BTreeMap::from([("a".to_string(), vec![7u8; 32])])).unwrap();
    for keys in [keyed, StampKeyRing::plain()] {
        for strategy in [ReloadStrategy::Annotations, ReloadStrategy::EnvVars] {
            let store = Store::default();
            store.upsert_source(
                "shop",
                SourceState {
                    source: SourceRef::new(SourceKind::Secret, "db"),
                    annotations: BTreeMap::new(),
                    hash: sha1_hex(b"password=hunter2"),
                    keys: Default::default(),
                    changed: None,
                },
            );
            let (_tx, ready) = watch::channel(true);
            let router = router(AdmissionContext {
                strategy,
                stamp_keys: watch::channel(Arc::new(keys.clone())).1,
                ..AdmissionContext::standalone(store, ready)
            });
            let mut answers = Vec::new();
            for planted in [&password, &guess] {
                let mut object = deployment(json!({defaults::AUTO: "true"}));
                let container = &mut object["spec"]["template"]["spec"]["containers"][0];
                container["envFrom"] = json!([{"secretRef": {"name": "db"}}]);
                container["env"] = json!([{"name": "STAKATER_DB_SECRET", "value": planted}]);
                object["spec"]["template"]["metadata"]["annotations"] =
                    json!({fixed::TEMPLATE_HASHES: format!("secret/db={planted}")});
                let (status, body) = post(&router, "/mutate", review("CREATE", object, None, "mallory", false)).await;
                assert_eq!(status, StatusCode::OK);
                let patch = patch_of(&body).unwrap_or(json!([]));
                let text = format!("{patch} {}", body["response"]["warnings"]);
                assert!(!text.contains(&password), "{strategy:?} {keys:?}: {text}");
                answers.push(text.replace(planted.as_str(), "PLANTED"));
            }
            assert_eq!(answers[0], answers[1], "{strategy:?} {keys:?}");
        }
    }
}

/// An API server for the webhook's lookups: a LIST of ConfigMaps by name answers the one named,
/// as existing, except `slow`, which is never answered. Counts the requests.
#[derive(Clone, Default)]
struct FakeApi {
    calls: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeApi {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: axum::http::Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let query = request.uri().query().unwrap_or("").to_string();
                // fieldSelector=metadata.name%3D<name>
                let name = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("fieldSelector=metadata.name%3D"))
                    .unwrap_or("")
                    .to_string();
                fake.calls.lock().unwrap().push(name.clone());
                if name == "slow" {
                    std::future::pending::<()>().await;
                }
                let list = json!({
                    "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "1"},
                    "items": [{"metadata": {"name": name, "namespace": "shop"}, "data": {"a": "2"}}]
                });
                let response = axum::http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(list.to_string()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        kube::Client::new(service, "shop")
    }
}

/// A Deployment reading the ConfigMap `name` (which the store does not hold).
fn deployment_using(name: &str) -> Vec<u8> {
    let mut object = deployment(json!({defaults::AUTO: "true"}));
    object["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] = json!(name);
    review("CREATE", object, None, "alice", false)
}

fn warnings_of(body: &Value) -> Vec<String> {
    body["response"]["warnings"]
        .as_array()
        .map(|w| w.iter().map(|w| w.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn metric(metrics: &reloader::metrics::Metrics, line: &str) -> Option<f64> {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

/// Every review's lookups come out of one budget: one in progress at once and two in all here.
/// Over it, a review is answered at once from the cache, with a warning that the source was not
/// confirmed, and the refusal is counted; the API server never sees the lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_over_the_shared_budget_are_answered_at_once_from_the_cache() {
    let api = FakeApi::default();
    let metrics = Arc::new(reloader::metrics::Metrics::new(false));
    let (_tx, ready) = watch::channel(true);
    let router = router(AdmissionContext {
        lookup: Some(reloader::admission::lookup::SourceLookup::new(api.client(), None)),
        metrics: metrics.clone(),
        limits: AdmissionLimits {
            lookups_at_once: 1,
            lookups_per_second: 0,
            lookup_burst: 2,
            ..AdmissionLimits::default()
        },
        ..AdmissionContext::standalone(Store::default(), ready)
    });
    let refused = |reason: &str| {
        metric(
            &metrics,
            &format!("reloader_admission_lookups_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!((refused("concurrency"), refused("rate")), (Some(0.0), Some(0.0)));
    // Within the budget: looked up, found, stamped with its hash; no warning.
    let (status, body) = post(&router, "/mutate", deployment_using("fresh")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.calls(), ["fresh"]);
    let stamp = patch_of(&body).unwrap().to_string();
    assert!(
        stamp.contains("configmap/fresh=") && !stamp.contains("absent"),
        "{stamp}"
    );
    assert_eq!(warnings_of(&body), Vec::<String>::new());
    // A lookup the API server does not answer holds the one slot...
    let slow = tokio::spawn({
        let router = router.clone();
        async move { post(&router, "/mutate", deployment_using("slow")).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.calls().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow lookup never reached the API server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...so another review's lookup is refused: answered at once (a lookup may take 1.5 s),
    // from the cache (stamped absent), with the warning.
    let started = Instant::now();
    let (status, body) = post(&router, "/mutate", deployment_using("other")).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(patch_of(&body).unwrap().to_string().contains("configmap/other=absent"));
    assert_eq!(
        warnings_of(&body),
        [
            "ConfigMap other is not in the reloader's cache and was not confirmed with the API server: \
          too many lookups at once"
        ]
    );
    assert_eq!(refused("concurrency"), Some(1.0));
    // The slow one gives up at the lookup timeout, and says so.
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        warnings_of(&body),
        [
            "ConfigMap slow is not in the reloader's cache and was not confirmed with the API server: \
          the lookup timed out"
        ]
    );
    // Both tokens are spent and none come back: refused for the rate, at once.
    let started = Instant::now();
    let (_, body) = post(&router, "/mutate", deployment_using("fresh")).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(warnings_of(&body)[0].ends_with("not confirmed with the API server: too many lookups at once"));
    assert_eq!(refused("rate"), Some(1.0));
    assert_eq!(
        api.calls(),
        ["fresh", "slow"],
        "the refused lookups reached the API server"
    );
}

/// Per-key reloads: a workload reading one key of a ConfigMap and one of a Secret is stamped
/// with the hashes of those keys (`keys.<id>.<hash>`), whether its annotation or the flag turns
/// them on; without a stamp key the Secret's plain hash of its keys is left out, as its whole
/// hash is; a value that is not a switch is denied.
#[tokio::test]
async fn per_key_workloads_are_stamped_with_the_keys_they_read() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use reloader::core::dependencies::DependencyOptions;
    use reloader::core::keyed_hash::StampKeyRing;
    use reloader::core::per_key::KeySet;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cfg"},
        "data": {"DB_HOST": "db1", "DB_PORT": "5432", "LOG": "info"}}))
    .unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "db"},
        "data": {"password": "cDE=", "user": "YWRtaW4="}}))
    .unwrap();
    let (cfg, db) = (SourceState::of_config_map(&cm), SourceState::of_secret(&secret));
    let host: KeySet = ["DB_HOST"].into_iter().collect();
    let password: KeySet = ["password"].into_iter().collect();
    let cfg_stamp = format!("configmap/cfg=keys.{}.{}", host.id(), cfg.keys.subset_hash(&host));
    let reader = |annotations: Value| {
        let mut object = deployment(annotations);
        object["spec"]["template"]["spec"] = json!({
            "containers": [{"name": "web", "image": "web:1",
                            "env": [{"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DB_HOST"}}}],
                            "volumeMounts": [{"name": "db", "mountPath": "/db"}]}],
            "volumes": [{"name": "db", "secret": {"secretName": "db", "items": [{"key": "password", "path": "p"}]}}]});
        object
    };
    let keyed = StampKeyRing::new("a", &BTreeMap::from([("a".to_string(), vec![7u8; 32])])).unwrap();
    for (annotation, flag) in [(Some("true"), false), (None, true)] {
        for keys in [keyed.clone(), StampKeyRing::plain()] {
            let store = Store::default();
            store.upsert_source("shop", cfg.clone());
            store.upsert_source("shop", db.clone());
            let (_tx, ready) = watch::channel(true);
            let router = router(AdmissionContext {
                dependency: DependencyOptions {
                    per_key_reloads: flag,
                    ..Default::default()
                },
                stamp_keys: watch::channel(Arc::new(keys.clone())).1,
                ..AdmissionContext::standalone(store, ready)
            });
            let mut annotations = json!({defaults::AUTO: "true"});
            if let Some(value) = annotation {
                annotations[fixed::PER_KEY] = json!(value);
            }
            let (_, body) = post(
                &router,
                "/mutate",
                review("CREATE", reader(annotations), None, "a", false),
            )
            .await;
            let patch = patch_of(&body).unwrap();
            let stamp = patch[0]["value"][fixed::TEMPLATE_HASHES].as_str().unwrap();
            if keys.current().is_some() {
                let id = password.id();
                assert!(
                    stamp.starts_with(&format!("configmap/cfg=keys.{}.k1.a.", host.id())),
                    "{stamp}"
                );
                assert!(stamp.contains(&format!(",secret/db=keys.{id}.k1.a.")), "{stamp}");
            } else {
                assert_eq!(stamp, cfg_stamp, "{annotation:?} {flag}");
                let plain = db.keys.subset_hash(&password).to_string();
                assert!(!body.to_string().contains(&plain), "{body}");
            }
        }
    }
    let (_, body) = post(
        &app(true),
        "/validate",
        review("CREATE", reader(json!({fixed::PER_KEY: "yes"})), None, "a", false),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains(fixed::PER_KEY),
        "{body}"
    );
}

/// A review of an object of API `group` (its kind in the object).
fn review_of_group(group: &str, operation: &str, object: Value) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&review(operation, object, None, "alice", false)).unwrap();
    review["request"]["kind"]["group"] = json!(group);
    review["request"]["resource"]["group"] = json!(group);
    serde_json::to_vec(&review).unwrap()
}

#[tokio::test]
async fn extra_kinds_are_stamped_and_checked_at_their_template() {
    use reloader::core::workload::extra::register;
    register(&"router.test.io/v1/App=spec.deploy.podTemplate".parse().unwrap()).unwrap();
    let router = app(true);
    let app_object = |annotations: Value| {
        json!({
            "apiVersion": "router.test.io/v1", "kind": "App",
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"deploy": {"podTemplate": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1",
                                                 "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}}
        })
    };
    let object = app_object(json!({defaults::AUTO: "true"}));
    let (_, body) = post(&router, "/mutate", review_of_group("router.test.io", "CREATE", object)).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let expected = format!("configmap/cfg={}", sha1_hex(b"a=1"));
    assert_eq!(
        patch_of(&body),
        Some(
            json!([{"op": "add", "path": "/spec/deploy/podTemplate/metadata/annotations",
                     "value": {fixed::TEMPLATE_HASHES: expected}}])
        )
    );
    let typo = app_object(json!({"reloader.stakater.com/atuo": "true"}));
    let (_, body) = post(&router, "/validate", review_of_group("router.test.io", "CREATE", typo)).await;
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean reloader.stakater.com/auto?"),
        "{body}"
    );
    // Another group's App is no workload of ours: admitted untouched.
    let other = app_object(json!({defaults::AUTO: "true"}));
    let (_, body) = post(&router, "/mutate", review_of_group("other.test.io", "CREATE", other)).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("patch").is_none(), "{body}");
}
