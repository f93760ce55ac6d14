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
    /// Leadership under HA: as in Stakater, `/live` fails once this replica has led and lost
    /// it, so the pod restarts clean. `None` without HA.
    pub leader: Option<watch::Receiver<bool>>,
}

/// Turns false for good when `leader` goes from true to false.
pub fn lost_leadership(mut leader: watch::Receiver<bool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(true);
    tokio::spawn(async move {
        if leader.wait_for(|l| *l).await.is_err() {
            return;
        }
        if leader.wait_for(|l| !*l).await.is_ok() {
            tracing::warn!("lost leadership: /live now fails, as Stakater's does");
            tx.send_replace(false);
            tx.closed().await;
        }
    });
    rx
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn live(State(h): State<Health>) -> impl IntoResponse {
    match &h.leader {
        Some(alive) if !*alive.borrow() => (StatusCode::INTERNAL_SERVER_ERROR, "lost leadership"),
        _ => (StatusCode::OK, "alive"),
    }
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
            leader: None,
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

    #[tokio::test]
    async fn live_fails_once_leadership_is_lost_as_in_stakater() {
        let (leader, rx) = watch::channel(false);
        let router = router(Health {
            metrics: Arc::new(Metrics::new(false)),
            ready: vec![],
            leader: Some(lost_leadership(rx)),
        });
        let live = || async { get_status(&router, "/live").await.0 };
        assert_eq!(live().await, StatusCode::OK, "a standby is alive");
        leader.send_replace(true);
        assert_eq!(live().await, StatusCode::OK);
        // Leadership lasts seconds in life; here, let the follower see it first.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        leader.send_replace(false);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while live().await == StatusCode::OK {
            assert!(tokio::time::Instant::now() < deadline, "/live never failed");
            tokio::task::yield_now().await;
        }
        assert_eq!(live().await, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
