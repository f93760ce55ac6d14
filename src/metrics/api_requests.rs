//! client-go's `rest_client_*` metrics: every request the Kubernetes client makes to the API
//! server, recorded by a tower layer around the client's service.

use super::{Metrics, RestDurationLabels, RestRequestLabels};

impl Metrics {
    /// One request to the API server.
    pub fn rest_request(&self, method: &str, host: &str, code: &str, took: std::time::Duration) {
        self.rest_requests
            .get_or_create(&RestRequestLabels {
                code: code.into(),
                method: method.into(),
                host: host.into(),
            })
            .inc();
        self.rest_duration
            .get_or_create(&RestDurationLabels {
                verb: method.into(),
                host: host.into(),
            })
            .observe(took.as_secs_f64());
    }
}

/// A tower layer for the Kubernetes client that records every request to the API server in
/// client-go's `rest_client_*` metrics (watches: the time to the response headers).
#[derive(Clone)]
pub struct ApiRequestMetrics {
    metrics: std::sync::Arc<Metrics>,
    host: String,
}

impl ApiRequestMetrics {
    pub fn new(metrics: std::sync::Arc<Metrics>, host: String) -> Self {
        Self { metrics, host }
    }
}

impl<S> tower::Layer<S> for ApiRequestMetrics {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured {
            inner,
            metrics: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: ApiRequestMetrics,
}

impl<S, B, R> tower::Service<hyper::Request<B>> for Measured<S>
where
    S: tower::Service<hyper::Request<B>, Response = hyper::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let started = std::time::Instant::now();
        let response = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            metrics
                .metrics
                .rest_request(&method, &metrics.host, &code, started.elapsed());
            result
        })
    }
}
