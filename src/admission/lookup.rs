//! Confirming with the API server what this replica's cache does not show. The webhook answers
//! from memory, but a source created a moment before a workload may not have reached the cache
//! yet: stamped `absent`, its next change would be taken for its creation and adopted without
//! a rollout. So a name missing from the cache is looked up, with the engine's own filters (the
//! Secret types it never watches, `--resource-label-selector`), before a stamp records it
//! absent. Only names missing from the cache cost a request; the data read is hashed at once.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;

use crate::core::names::is_dns_subdomain;
use crate::core::source::{SECRET_FIELD_SELECTOR, SourceKind, SourceRef, SourceState};

/// Lookups per review at most; the rest stay absent (a workload naming more missing sources
/// than this is waiting for them, not racing them).
pub const MAX_LOOKUPS: usize = 8;
/// All lookups of one review together; well inside the webhook's timeout.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct SourceLookup {
    client: kube::Client,
    label_selector: Option<String>,
}

impl SourceLookup {
    pub fn new(client: kube::Client, label_selector: Option<String>) -> Self {
        Self { client, label_selector }
    }

    /// The states of those `missing` sources that exist for the reloader. Any that cannot be
    /// read in time stay absent, as the cache says.
    pub async fn find(&self, namespace: &str, missing: &[SourceRef]) -> BTreeMap<SourceRef, SourceState> {
        let lookups = missing
            .iter()
            .filter(|s| s.kind != SourceKind::SecretProviderClass && is_dns_subdomain(&s.name))
            .take(MAX_LOOKUPS)
            .map(|source| self.one(namespace, source));
        match tokio::time::timeout(LOOKUP_TIMEOUT, futures::future::join_all(lookups)).await {
            Ok(found) => found.into_iter().flatten().map(|s| (s.source.clone(), s)).collect(),
            Err(_) => {
                tracing::warn!(
                    namespace,
                    "looking up sources missing from the cache timed out; stamped absent"
                );
                BTreeMap::new()
            }
        }
    }

    async fn one(&self, namespace: &str, source: &SourceRef) -> Option<SourceState> {
        match self.get(namespace, source).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, %source, "looking up a source missing from the cache failed; stamped absent");
                None
            }
        }
    }

    /// The state of one ConfigMap or Secret as the engine would see it (`None` when it does
    /// not exist, or the engine's filters leave it out). SecretProviderClasses are not looked
    /// up (`None`).
    pub async fn get(&self, namespace: &str, source: &SourceRef) -> Result<Option<SourceState>, kube::Error> {
        let name = format!("metadata.name={}", source.name);
        let mut params = ListParams::default();
        if let Some(selector) = &self.label_selector {
            params = params.labels(selector);
        }
        match source.kind {
            SourceKind::ConfigMap => Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
                .list(&params.fields(&name))
                .await
                .map(|list| list.items.first().map(SourceState::of_config_map)),
            SourceKind::Secret => Api::<Secret>::namespaced(self.client.clone(), namespace)
                .list(&params.fields(&format!("{name},{SECRET_FIELD_SELECTOR}")))
                .await
                .map(|list| list.items.first().map(SourceState::of_secret)),
            SourceKind::SecretProviderClass => Ok(None),
        }
    }

    /// Every ConfigMap and Secret of `namespace` as the engine sees them (its filters applied).
    pub async fn all(&self, namespace: &str) -> Result<Vec<SourceState>, kube::Error> {
        let mut params = ListParams::default();
        if let Some(selector) = &self.label_selector {
            params = params.labels(selector);
        }
        let configmaps = Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .list(&params)
            .await?;
        let secrets = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .list(&params.clone().fields(SECRET_FIELD_SELECTOR))
            .await?;
        Ok(configmaps
            .items
            .iter()
            .map(SourceState::of_config_map)
            .chain(secrets.items.iter().map(SourceState::of_secret))
            .collect())
    }
}
