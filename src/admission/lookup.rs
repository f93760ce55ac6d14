//! Confirming with the API server what this replica's cache does not show. The webhook answers
//! from memory, but a source created a moment before a workload may not have reached the cache
//! yet: stamped `absent`, its next change would be taken for its creation and adopted without
//! a rollout. So a name missing from the cache is looked up, with the engine's own filters (the
//! Secret types it never watches, `--resource-label-selector`), before a stamp records it
//! absent. Only names missing from the cache cost a request; the data read is hashed at once.
//!
//! Anyone who can reach the webhook can name missing sources, so every lookup takes its share of
//! one budget for all reviews ([`LookupBudget`]: so many at once, so many a second). A lookup
//! the budget refuses is not made, and is not waited for: the review is answered from the cache
//! at once, with a warning that the source was not confirmed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use tokio::time::Instant;

use super::limits::LookupBudget;
use crate::core::names::is_dns_subdomain;
use crate::core::source::{SECRET_FIELD_SELECTOR, SourceKind, SourceRef, SourceState};
use crate::metrics::LookupRefusal;

/// Lookups per review at most; the rest stay absent (a workload naming more missing sources
/// than this is waiting for them, not racing them).
pub const MAX_LOOKUPS: usize = 8;
/// All lookups of one review together, and never past the review's deadline
/// ([`super::limits::REVIEW_DEADLINE`], where the budget of a review's waits adds up).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the lookups of one review found.
#[derive(Debug, Default)]
pub struct Found {
    /// The sources that exist for the reloader.
    pub states: BTreeMap<SourceRef, SourceState>,
    /// Sources that stay absent, as the cache has them, without the API server's word.
    pub unconfirmed: BTreeMap<SourceRef, Unconfirmed>,
    /// Lookups the budget refused (each also in `unconfirmed`).
    pub refused: Vec<LookupRefusal>,
}

/// Why a source missing from the cache was not confirmed with the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unconfirmed {
    /// The lookup budget all reviews share was spent.
    Budget,
    /// More than [`MAX_LOOKUPS`] sources to look up.
    TooMany,
    /// The API server answered with an error.
    Failed,
    /// No answer within [`LOOKUP_TIMEOUT`].
    TimedOut,
}

impl Unconfirmed {
    fn reason(self) -> &'static str {
        match self {
            Unconfirmed::Budget => "too many lookups at once",
            Unconfirmed::TooMany => "too many missing sources",
            Unconfirmed::Failed => "the lookup failed",
            Unconfirmed::TimedOut => "the lookup timed out",
        }
    }
}

/// The warning for a source that stays absent without the API server's word: if it exists, its
/// next change is taken for its creation (adopted without a rollout).
pub fn unconfirmed_message(source: &SourceRef, why: Unconfirmed) -> String {
    format!(
        "{} {} is not in the reloader's cache and was not confirmed with the API server: {}",
        source.kind,
        source.name,
        why.reason()
    )
}

#[derive(Clone)]
pub struct SourceLookup {
    client: kube::Client,
    label_selector: Option<String>,
}

impl SourceLookup {
    pub fn new(client: kube::Client, label_selector: Option<String>) -> Self {
        Self { client, label_selector }
    }

    /// The states of those `missing` sources that exist for the reloader, each lookup within
    /// `budget` and all of them over by `until` (or [`LOOKUP_TIMEOUT`], if sooner). Those that
    /// cannot be looked up, or not in time, stay absent, as the cache says, and are listed
    /// as unconfirmed. Never waits for the budget: with none left, returns at once.
    pub async fn find(&self, namespace: &str, missing: &[SourceRef], budget: &LookupBudget, until: Instant) -> Found {
        let until = until.min(Instant::now() + LOOKUP_TIMEOUT);
        let mut found = Found::default();
        let mut lookups = Vec::new();
        let wanted = missing
            .iter()
            .filter(|s| s.kind != SourceKind::SecretProviderClass && is_dns_subdomain(&s.name));
        for (n, source) in wanted.enumerate() {
            if n >= MAX_LOOKUPS {
                found.unconfirmed.insert(source.clone(), Unconfirmed::TooMany);
                continue;
            }
            match budget.try_take() {
                Ok(permit) => lookups.push(async move {
                    let answer = tokio::time::timeout_at(until, self.get(namespace, source)).await;
                    drop(permit);
                    (source, answer)
                }),
                Err(refusal) => {
                    found.refused.push(refusal);
                    found.unconfirmed.insert(source.clone(), Unconfirmed::Budget);
                }
            }
        }
        if !found.refused.is_empty() {
            // Debug only: a flood of forged reviews must not become a flood of logs; the
            // metric counts refusals.
            tracing::debug!(
                namespace,
                refused = found.refused.len(),
                "lookups over the budget; stamped absent"
            );
        }
        for (source, answer) in futures::future::join_all(lookups).await {
            match answer {
                Ok(Ok(Some(state))) => {
                    found.states.insert(source.clone(), state);
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, %source, "looking up a source missing from the cache failed; stamped absent");
                    found.unconfirmed.insert(source.clone(), Unconfirmed::Failed);
                }
                Err(_) => {
                    tracing::warn!(%source, namespace, "looking up a source missing from the cache timed out; stamped absent");
                    found.unconfirmed.insert(source.clone(), Unconfirmed::TimedOut);
                }
            }
        }
        found
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
