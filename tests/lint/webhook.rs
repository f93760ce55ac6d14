//! One implementation: every object of the rules corpus goes through the validating webhook
//! (the in-process router, its cache holding the corpus' sources and workloads), and the
//! webhook's denial and warnings must be exactly `lint`'s errors and warnings for that object
//! (`lint` told to look sources up "in the cluster", so its missing-source message is the
//! webhook's).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use reloader::admission::{AdmissionContext, router};
use reloader::core::annotation_rules::{Rule, Subject};
use reloader::core::hash::sha1_hex;
use reloader::core::source::{SourceRef, SourceState};
use reloader::core::vocabulary::AnnotationKeys;
use reloader::lint::{Input, Level, LintOptions, analyse};
use reloader::store::{Store, WorkloadKey};
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::corpus;

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

#[tokio::test]
async fn lint_says_exactly_what_the_validating_webhook_says() {
    let bytes = std::fs::read(corpus("rules.yaml")).unwrap();
    let (documents, errors) = reloader::manifests::parse(&bytes);
    assert!(errors.is_empty());
    let options = LintOptions {
        annotations: AnnotationKeys::default(),
        namespace: "default".into(),
        strict: false,
    };
    let report = analyse(
        vec![Input {
            name: "rules.yaml".into(),
            bytes: bytes.clone(),
        }],
        &options,
    )
    .finish(Some(&BTreeSet::new()));

    // The webhook's cache: the corpus' sources and workloads.
    let store = Store::default();
    let objects: Vec<Value> = documents.iter().map(|d| d.value.clone()).collect();
    for o in &objects {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let api = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        match Subject::of(group_of(api), kind) {
            Some(Subject::Source(source_kind)) => {
                let state = SourceState {
                    source: SourceRef::new(source_kind, &name),
                    annotations: serde_json::from_value(o["metadata"]["annotations"].clone()).unwrap_or_default(),
                    hash: sha1_hex(name.as_bytes()),
                    keys: Default::default(),
                    changed: None,
                };
                let _ = store.upsert_source(&ns, state);
            }
            Some(Subject::Workload(kind)) => {
                let _ = store.upsert_workload(
                    WorkloadKey {
                        kind,
                        namespace: ns,
                        name,
                    },
                    o.clone(),
                );
            }
            None => {}
        }
    }
    let (_keep, ready) = watch::channel(true);
    let app = router(AdmissionContext::standalone(store, ready));

    let mut compared = 0;
    for o in &objects {
        let api = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("default");
        let mine: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.object.kind == kind && p.object.name == name && p.object.namespace == ns)
            .collect();
        // The API server refuses non-string annotations before any webhook sees them.
        if mine.iter().any(|p| p.rule == Rule::NotAString) || Subject::of(group_of(api), kind).is_none() {
            continue;
        }
        let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "lint-parity", "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": "x"},
                "name": name, "namespace": ns, "operation": "CREATE",
                "userInfo": {"username": "someone"}, "object": o
            }
        });
        let response = app
            .clone()
            .oneshot(
                Request::post("/validate")
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&review).unwrap()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let body: Value =
            serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
        let response = &body["response"];
        let errors: Vec<String> = mine
            .iter()
            .filter(|p| p.level == Level::Error)
            .map(|p| p.message.clone())
            .collect();
        let mut warnings: Vec<String> = mine
            .iter()
            .filter(|p| p.level == Level::Warning)
            // A denied object gets no cache-based warnings from the webhook.
            .filter(|p| errors.is_empty() || !matches!(p.rule, Rule::MissingSource | Rule::MatchWithoutSearch))
            .map(|p| p.message.clone())
            .collect();
        let mut warned: Vec<String> = serde_json::from_value(response["warnings"].clone()).unwrap_or_default();
        warnings.sort();
        warned.sort();
        assert_eq!(
            response["allowed"].as_bool(),
            Some(errors.is_empty()),
            "{kind} {ns}/{name}: {body}"
        );
        // The denial names the first few errors, joined with "; ", and counts the rest (the
        // webhook bounds what it says).
        const NAMED: usize = 4;
        let denial = response["status"]["message"].as_str().unwrap_or_default();
        let named = errors.iter().filter(|e| denial.contains(e.as_str())).count();
        assert_eq!(
            named,
            errors.len().min(NAMED),
            "{kind} {ns}/{name}: {denial:?} vs {errors:?}"
        );
        if errors.len() > NAMED {
            let more = format!(" (and {} more)", errors.len() - NAMED);
            assert!(denial.ends_with(&more), "{kind} {ns}/{name}: {denial:?}");
        }
        assert_eq!(warned, warnings, "{kind} {ns}/{name}: warnings");
        compared += 1;
    }
    assert!(compared >= 9, "only {compared} objects compared");
}
