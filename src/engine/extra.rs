//! Extra workload kinds (`--extra-workload-kinds`): each kind's watchers start once discovery
//! finds it served, so a CRD installed after the reloader is picked up, and one never installed
//! costs a discovery request every [`MAX_RETRY`] and nothing else. The engine's readiness never
//! waits for them (it waits for the source lists only), and the store learns of a kind's lists
//! only when its watchers start, so nothing else waits for an absent kind either.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::{Engine, watch};
use crate::core::workload::WorkloadKind;
use crate::kube_api::discover;

/// The first wait before asking discovery again; doubled each time up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
pub use crate::kube_api::DISCOVERY_MAX_RETRY as MAX_RETRY;

/// Finds `kind`'s plural through discovery, retrying while it is not served, then watches it in
/// every scope until the task is dropped. A kind that cannot be a workload (cluster-scoped) is
/// logged as an error and not watched.
pub async fn watch_when_served(engine: Arc<Engine>, kind: WorkloadKind, scopes: Vec<Option<String>>, streaming: bool) {
    let Some(extra) = kind.extra() else {
        return;
    };
    let mut delay = FIRST_RETRY;
    let mut told = false;
    let plural = loop {
        match discover(&engine.ctx.client, extra).await {
            Ok(plural) => break plural,
            Err(error) if error.retryable() => {
                if told {
                    tracing::debug!(%error, "extra workload kind still not served");
                } else {
                    tracing::warn!(
                        %error,
                        "extra workload kind not served; its watchers start when it is (discovery asked again every {}s at most)",
                        MAX_RETRY.as_secs()
                    );
                    told = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
            Err(error) => {
                tracing::error!(%error, "extra workload kind not watched");
                return;
            }
        }
    };
    tracing::info!(
        plural,
        path = extra.template_path(),
        "extra workload kind served; watching it"
    );
    let mut watchers = tokio::task::JoinSet::new();
    for scope in scopes {
        let span = tracing::info_span!("watch", %kind, scope = %scope.clone().unwrap_or_else(|| "*".into()));
        watchers.spawn(watch::watch_workloads(engine.clone(), kind, scope, streaming).instrument(span));
    }
    // Dropping this task drops the set, which aborts the watchers.
    while watchers.join_next().await.is_some() {}
}
