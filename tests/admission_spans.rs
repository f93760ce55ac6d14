//! The webhook's tracing spans, read back from the JSON log. A test binary of its own, for the
//! global subscriber (see `span_capture`).

mod span_capture;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use reloader::admission::{AdmissionContext, router};
use reloader::core::vocabulary::defaults;
use reloader::store::Store;
use serde_json::{Value, json};
use span_capture::Capture;
use tokio::sync::watch;
use tower::ServiceExt;

async fn post(app: &axum::Router, path: &str, body: Vec<u8>) -> StatusCode {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

/// Every review runs in a `review` span that records what it was about and how it ended, so a
/// trace of a slow review shows where its time went.
#[tokio::test]
async fn every_review_has_a_span_with_what_it_was_about_and_how_it_ended() {
    let capture = Capture::install();
    let (_ready, ready) = watch::channel(true);
    let app = router(AdmissionContext::standalone(Store::default(), ready));
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "shop", "annotations": {defaults::AUTO: "true"}},
                       "spec": {"selector": {"matchLabels": {"app": "web"}},
                                "template": {"metadata": {"labels": {"app": "web"}},
                                             "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}
        }
    });
    assert_eq!(
        post(&app, "/mutate", review.to_string().into_bytes()).await,
        StatusCode::OK
    );
    assert_eq!(
        post(&app, "/validate", b"not a review".to_vec()).await,
        StatusCode::BAD_REQUEST
    );
    let text = capture.text();
    let closed: Vec<Value> = capture
        .lines()
        .into_iter()
        .filter(|line| line["fields"]["message"] == "close" && line["span"]["name"] == "review")
        .collect();
    assert_eq!(closed.len(), 2, "{text}");
    let answered = &closed[0]["span"];
    assert_eq!(answered["webhook"], "mutate", "{answered}");
    assert_eq!(answered["kind"], "Deployment", "{answered}");
    assert_eq!(answered["namespace"], "shop", "{answered}");
    assert_eq!(answered["operation"], "CREATE", "{answered}");
    assert_eq!(answered["outcome"], "allowed", "{answered}");
    // The span's own name comes last in its JSON object; the field is in the text.
    assert!(text.contains(r#""name":"web""#), "{text}");
    assert!(closed[0]["fields"]["time.busy"].is_string(), "{}", closed[0]);
    assert_eq!(closed[1]["span"]["webhook"], "validate");
}
