//! Outbound webhooks. Reload alerts to Slack, Teams, Google Chat or a raw webhook (Stakater
//! §4.4), sent by their own task so a slow or failing endpoint never holds up a reload, and
//! retried with backoff; and Stakater's `--webhook-url` notifications.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use thiserror::Error;
use tokio::sync::mpsc;

use crate::config::{AlertSettings, AlertSink};
use crate::core::redact;
use crate::metrics::{AlertResult, Metrics};

/// Why the outbound webhooks cannot be set up.
#[derive(Debug, Error)]
pub enum SetupError {
    /// `proxy` and `url` are redacted ([`redact::url`]): the message is logged.
    #[error("ALERT_WEBHOOK_PROXY {proxy:?}: {source}")]
    Proxy {
        proxy: String,
        source: hyper::http::uri::InvalidUri,
    },
    #[error("--webhook-url {url:?}: {source}")]
    Url {
        url: String,
        source: hyper::http::uri::InvalidUri,
    },
    #[error("loading CA certificates: {0}")]
    Roots(#[source] std::io::Error),
}

/// Why a `--webhook-url` announcement was not delivered.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Send(#[from] hyper_util::client::legacy::Error),
    #[error("the webhook answered {0}")]
    Status(hyper::StatusCode),
}

/// Attempts per alert: the first plus retries after 1 s, 2 s and 4 s.
const ATTEMPTS: u32 = 4;
/// Alerts waiting to be sent; beyond this, new ones are dropped and counted.
const BACKLOG: usize = 1024;

/// What was reloaded, for the alert text.
#[derive(Clone, Debug)]
pub struct Alert {
    pub source_name: String,
    pub source_type: &'static str,
    pub namespace: String,
    pub workload: String,
    pub kind: String,
}

/// Stakater's text, `*`-emphasised, with the optional `ALERT_ADDITIONAL_INFO` prefix.
pub fn message(alert: &Alert, additional_info: Option<&str>) -> String {
    let text = format!(
        "Reloader detected changes in *{}* of type *{}* in namespace *{}*. Hence reloaded *{}* of type *{}* in namespace *{}*",
        alert.source_name, alert.source_type, alert.namespace, alert.workload, alert.kind, alert.namespace
    );
    match additional_info {
        Some(info) => format!("{info} : {text}"),
        None => text,
    }
}

/// The request body and content type for a sink.
pub fn body(sink: AlertSink, text: &str) -> (&'static str, Vec<u8>) {
    match sink {
        AlertSink::Slack => (
            "application/json",
            json!({"attachments": [{"color": "good", "author_name": "Reloader", "text": text}]})
                .to_string()
                .into_bytes(),
        ),
        AlertSink::Teams | AlertSink::GChat => ("application/json", json!({"text": text}).to_string().into_bytes()),
        AlertSink::Raw => ("text/plain", text.replace('*', "").into_bytes()),
    }
}

/// Which statuses count as delivered, per sink, as in Stakater. Redirects never do.
pub fn delivered(sink: AlertSink, status: u16) -> bool {
    match sink {
        AlertSink::Teams | AlertSink::GChat => status == 200,
        AlertSink::Slack | AlertSink::Raw => status < 300,
    }
}

/// The handle the engine sends alerts through; `send` never waits.
#[derive(Clone)]
pub struct Alerts {
    tx: mpsc::Sender<Alert>,
    metrics: std::sync::Arc<Metrics>,
}

impl Alerts {
    pub fn send(&self, alert: Alert) {
        if self.tx.try_send(alert).is_err() {
            self.metrics.alert(AlertResult::Dropped);
            tracing::warn!("alert backlog full; alert dropped");
        }
    }
}

/// Starts the sender task. Fails only on an unusable proxy URL or TLS setup.
pub fn start(settings: AlertSettings, metrics: std::sync::Arc<Metrics>) -> Result<Alerts, SetupError> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    let http = http_connector();
    match settings.proxy.clone() {
        None => spawn(rx, settings, http, metrics.clone())?,
        Some(proxy) => {
            let uri = proxy.parse().map_err(|source| SetupError::Proxy {
                proxy: redact::url(&proxy),
                source,
            })?;
            spawn(rx, settings, Tunnel::new(uri, http), metrics.clone())?
        }
    }
    Ok(Alerts { tx, metrics })
}

type HttpsClient<C> = Client<hyper_rustls::HttpsConnector<C>, Full<Bytes>>;

fn https_client<C>(connector: C) -> Result<HttpsClient<C>, SetupError>
where
    C: tower::Service<hyper::Uri> + Clone + Send + Sync + 'static,
    hyper_rustls::HttpsConnector<C>: Connect + Clone + Send + Sync + 'static,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(SetupError::Roots)?
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http
}

/// Stakater's `--webhook-url` mode: a reload is announced with a fixed body instead of made.
pub struct Notifier {
    url: String,
    client: HttpsClient<HttpConnector>,
}

impl Notifier {
    pub fn new(url: &str) -> Result<Self, SetupError> {
        url.parse::<hyper::Uri>().map_err(|source| SetupError::Url {
            url: redact::url(url),
            source,
        })?;
        Ok(Self {
            url: url.to_string(),
            client: https_client(http_connector())?,
        })
    }

    /// POSTs `{"webhook":"update successful"}`; any status below 300 counts as delivered.
    pub async fn notify(&self) -> Result<(), NotifyError> {
        let request = Request::post(self.url.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"webhook":"update successful"}"#)))?;
        let response = tokio::time::timeout(Duration::from_secs(15), self.client.request(request))
            .await
            .map_err(|_| NotifyError::Timeout)??;
        if response.status().as_u16() < 300 {
            Ok(())
        } else {
            Err(NotifyError::Status(response.status()))
        }
    }
}

/// Stakater's `--webhook-url` meaning: one announcement per changed ConfigMap or Secret,
/// whatever depends on it, and nothing written to the cluster. Sent by its own task, so a slow
/// endpoint never holds a watcher up; not retried, as in Stakater.
#[derive(Clone)]
pub struct SourceAnnouncer {
    tx: mpsc::Sender<(String, &'static str, String)>,
}

impl SourceAnnouncer {
    pub fn start(notifier: Notifier) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, &'static str, String)>(BACKLOG);
        tokio::spawn(async move {
            while let Some((name, type_, namespace)) = rx.recv().await {
                // Stakater's line, without the URL (it may carry a token).
                tracing::info!(
                    "Changes detected in '{name}' of type '{type_}' in namespace '{namespace}', Sending webhook"
                );
                if let Err(error) = notifier.notify().await {
                    tracing::warn!(%error, "--webhook-url: the announcement failed");
                }
            }
        });
        Self { tx }
    }

    /// Queues one announcement; never waits (a full backlog drops it, logged).
    pub fn announce(&self, name: &str, type_: &'static str, namespace: &str) {
        if self
            .tx
            .try_send((name.to_string(), type_, namespace.to_string()))
            .is_err()
        {
            tracing::warn!("--webhook-url backlog full; announcement dropped");
        }
    }
}

fn spawn<C>(
    rx: mpsc::Receiver<Alert>,
    settings: AlertSettings,
    connector: C,
    metrics: std::sync::Arc<Metrics>,
) -> Result<(), SetupError>
where
    C: tower::Service<hyper::Uri> + Clone + Send + Sync + 'static,
    hyper_rustls::HttpsConnector<C>: Connect + Clone + Send + Sync + 'static,
{
    let client = https_client(connector)?;
    tokio::spawn(run(rx, settings, client, metrics));
    Ok(())
}

async fn run<C>(
    mut rx: mpsc::Receiver<Alert>,
    settings: AlertSettings,
    client: Client<C, Full<Bytes>>,
    metrics: std::sync::Arc<Metrics>,
) where
    C: Connect + Clone + Send + Sync + 'static,
{
    while let Some(alert) = rx.recv().await {
        let text = message(&alert, settings.additional_info.as_deref());
        let (content_type, payload) = body(settings.sink, &text);
        let mut outcome = AlertResult::Failed;
        for attempt in 1..=ATTEMPTS {
            let request = Request::post(settings.webhook_url.as_str())
                .header("content-type", content_type)
                .body(Full::new(Bytes::from(payload.clone())));
            let request = match request {
                Ok(r) => r,
                Err(error) => {
                    tracing::error!(%error, "ALERT_WEBHOOK_URL is not a valid URL; alert dropped");
                    break;
                }
            };
            match tokio::time::timeout(Duration::from_secs(15), client.request(request)).await {
                Ok(Ok(response)) if delivered(settings.sink, response.status().as_u16()) => {
                    outcome = AlertResult::Sent;
                    break;
                }
                Ok(Ok(response)) => {
                    tracing::warn!(status = %response.status(), attempt, "alert endpoint refused the alert");
                }
                Ok(Err(error)) => tracing::warn!(%error, attempt, "sending an alert failed"),
                Err(_) => tracing::warn!(attempt, "sending an alert timed out"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
            }
        }
        metrics.alert(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            source_name: "db".into(),
            source_type: "SECRET",
            namespace: "shop".into(),
            workload: "api".into(),
            kind: "Deployment".into(),
        }
    }

    #[test]
    fn stakater_message_and_prefix() {
        assert_eq!(
            message(&alert(), None),
            "Reloader detected changes in *db* of type *SECRET* in namespace *shop*. Hence reloaded *api* of type *Deployment* in namespace *shop*"
        );
        assert!(message(&alert(), Some("prod")).starts_with("prod : Reloader detected"));
    }

    #[test]
    fn bodies_per_sink() {
        let text = "a *b*";
        let (ct, slack) = body(AlertSink::Slack, text);
        assert_eq!(ct, "application/json");
        let slack: serde_json::Value = serde_json::from_slice(&slack).unwrap();
        assert_eq!(
            slack,
            json!({"attachments": [{"color": "good", "author_name": "Reloader", "text": "a *b*"}]})
        );
        let (_, teams) = body(AlertSink::Teams, text);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&teams).unwrap(),
            json!({"text": "a *b*"})
        );
        assert_eq!(body(AlertSink::Raw, text), ("text/plain", b"a b".to_vec()));
    }

    /// Setup errors are logged and printed at exit: they name the URL without its secrets.
    #[tokio::test]
    async fn setup_errors_show_urls_redacted() {
        let Err(error) = Notifier::new("https://bot:pa55word@alerts.example.com/x y?token=t0ken") else {
            panic!("a URL with a space is invalid");
        };
        let shown = error.to_string();
        assert!(
            shown.starts_with("--webhook-url \"https://<redacted>@alerts.example.com/x y?<redacted>\""),
            "{shown}"
        );
        let Err(error) = Notifier::new("https://hooks.slack.com/services/T0AAA/B0BBB/slack Secret") else {
            panic!("a URL with a space is invalid");
        };
        assert!(!error.to_string().contains("T0AAA"), "{error}");
        assert!(!error.to_string().contains("Secret"), "{error}");
        let settings = AlertSettings {
            sink: AlertSink::Slack,
            webhook_url: "https://hooks.slack.com/services/T0AAA/B0BBB/slackSecret".into(),
            proxy: Some("http://proxyuser:pr0xyPass@proxy.internal:3128/ x".into()),
            additional_info: None,
        };
        let Err(error) = start(settings, std::sync::Arc::new(Metrics::new(false))) else {
            panic!("a proxy URL with a space is invalid");
        };
        let shown = error.to_string();
        assert!(shown.contains("proxy.internal:3128"), "{shown}");
        for secret in ["proxyuser", "pr0xyPass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn delivery_rules() {
        assert!(delivered(AlertSink::Slack, 204));
        assert!(!delivered(AlertSink::Slack, 302));
        assert!(!delivered(AlertSink::Teams, 204));
        assert!(delivered(AlertSink::GChat, 200));
        assert!(!delivered(AlertSink::Raw, 500));
    }
}
