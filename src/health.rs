//! The health and metrics server (`/live`, `/ready`, `/metrics`), on Stakater's port 9090 by
//! default. Plain HTTP: it carries no secrets. Served by the webhook's accept loop with the
//! webhook's bounds ([`crate::tls::ServeLimits`]): a connection cap, header-read and idle
//! timeouts, HTTP/2 stream and window limits.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::tls::{self, ServeLimits};

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

/// The bounds of the health port: the webhook's. Probes and scrapers each hold a connection or
/// two; whoever holds more waits in no queue and keeps nothing open for long.
pub fn limits() -> ServeLimits {
    ServeLimits::default()
}

/// Serves `router` (see [`router`]) on `listener` with [`limits`] until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router) {
    serve_with(listener, router, limits()).await
}

/// As [`serve`], within `limits`.
pub async fn serve_with(listener: TcpListener, router: Router, limits: ServeLimits) {
    tls::serve_plain_with(listener, router, limits).await
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

    mod bounds {
        //! The health port over real sockets: what a hostile or careless client can hold.

        use super::*;
        use std::net::SocketAddr;
        use std::time::{Duration, Instant};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpStream;

        /// Serves the health router on a free port with `limits`.
        async fn start(limits: ServeLimits) -> (SocketAddr, tokio::task::JoinHandle<()>) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = router(Health {
                metrics: Arc::new(Metrics::new(false)),
                ready: vec![],
                leader: None,
            });
            (addr, tokio::spawn(serve_with(listener, router, limits)))
        }

        /// Long enough never to be what closes a connection in these tests.
        const LONG: Duration = Duration::from_secs(30);

        /// Reads until the server closes the connection; how long that took, or `None` if it
        /// is still open after `bound`.
        async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
            let started = Instant::now();
            let mut buffer = [0u8; 1024];
            loop {
                match tokio::time::timeout_at((started + bound).into(), stream.read(&mut buffer)).await {
                    Err(_) => return None,
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => continue,
                }
            }
        }

        /// One HTTP/1.1 keep-alive exchange of `GET /live`: the status line's code.
        async fn get_live(stream: &mut TcpStream) -> std::io::Result<u16> {
            stream.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n").await?;
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            // The body ("alive") ends the answer.
            while !answer.ends_with(b"alive") {
                let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                answer.extend_from_slice(&buffer[..n]);
            }
            let text = String::from_utf8_lossy(&answer);
            Ok(text.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0))
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn headers_sent_a_byte_at_a_time_are_cut_off() {
            let (addr, _server) = start(ServeLimits {
                header_read_timeout: Duration::from_millis(300),
                idle_timeout: LONG,
                ..ServeLimits::default()
            })
            .await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            // Slowloris: one byte every 50 ms, headers never finished.
            let trickle = b"GET /live HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .chain(std::iter::repeat(&b'a'));
            let deadline = started + Duration::from_secs(5);
            let mut closed = false;
            for byte in trickle {
                if stream.write_all(&[*byte]).await.is_err() {
                    closed = true;
                    break;
                }
                // Closed by the server: the read side ends.
                if closed_within(&mut stream, Duration::from_millis(50)).await.is_some() {
                    closed = true;
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
            }
            let took = started.elapsed();
            assert!(closed, "a header trickle kept the connection open for {took:?}");
            assert!(
                took >= Duration::from_millis(250),
                "closed before the timeout: {took:?}"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_idle_keep_alive_connection_is_closed() {
            let (addr, _server) = start(ServeLimits {
                idle_timeout: Duration::from_millis(300),
                header_read_timeout: LONG,
                ..ServeLimits::default()
            })
            .await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert_eq!(get_live(&mut stream).await.unwrap(), 200);
            // Keep-alive: the same connection answers again.
            assert_eq!(get_live(&mut stream).await.unwrap(), 200);
            let took = closed_within(&mut stream, Duration::from_secs(5)).await;
            let took = took.expect("an idle keep-alive connection is still open after 5 s");
            assert!(
                took >= Duration::from_millis(250),
                "closed before the idle timeout: {took:?}"
            );
            // A connection that never sends anything goes the same way.
            let mut silent = TcpStream::connect(addr).await.unwrap();
            assert!(closed_within(&mut silent, Duration::from_secs(5)).await.is_some());
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn connections_over_the_cap_are_closed_at_once() {
            let (addr, _server) = start(ServeLimits {
                max_connections: 3,
                idle_timeout: LONG,
                header_read_timeout: LONG,
                ..ServeLimits::default()
            })
            .await;
            let mut open = Vec::new();
            for _ in 0..3 {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                assert_eq!(get_live(&mut stream).await.unwrap(), 200);
                open.push(stream);
            }
            // A fourth is accepted by the kernel, then closed by the server without an answer.
            let mut refused = TcpStream::connect(addr).await.unwrap();
            let _ = refused.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let took = closed_within(&mut refused, Duration::from_secs(5)).await;
            assert!(
                took.is_some_and(|t| t < Duration::from_secs(2)),
                "a fourth connection stayed open: {took:?}"
            );
            // The open ones still answer; closing one makes room.
            assert_eq!(get_live(&mut open[0]).await.unwrap(), 200);
            drop(open.pop());
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                if let Ok(status) = get_live(&mut stream).await {
                    assert_eq!(status, 200);
                    break;
                }
                assert!(Instant::now() < deadline, "no room after a connection closed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
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
