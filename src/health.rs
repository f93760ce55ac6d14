//! The health and metrics server (`/live`, `/ready`, `/metrics`), on Stakater's port 9090 by
//! default. Plain HTTP: it carries no secrets.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Ready when every one is true (source caches synced; webhook certificate loaded).
    pub ready: Vec<watch::Receiver<bool>>,
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/live", get(|| async { "alive" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn ready(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.iter().all(|r| *r.borrow()) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_status(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn ready_follows_the_cache_signal() {
        let (tx, rx) = watch::channel(false);
        let (cert_tx, cert_rx) = watch::channel(true);
        let router = router(Health {
            metrics: Arc::new(Metrics::new(false)),
            ready: vec![rx, cert_rx],
        });
        assert_eq!(get_status(&router, "/live").await, (StatusCode::OK, "alive".into()));
        assert_eq!(get_status(&router, "/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
        tx.send_replace(true);
        assert_eq!(get_status(&router, "/ready").await.0, StatusCode::OK);
        cert_tx.send_replace(false);
        assert_eq!(get_status(&router, "/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
        cert_tx.send_replace(true);
        let (status, body) = get_status(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("reloader_reload_executed_total"), "{body}");
    }
}
