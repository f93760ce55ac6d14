//! Leader election over a `coordination.k8s.io` Lease (`--enable-ha`), with client-go's rules:
//! the holder renews every retry period and steps down when it could not renew within the renew
//! deadline; a candidate takes the Lease when nobody holds it or when the record it last saw has
//! not changed for a whole lease duration (its own clock, so clock skew between nodes does not
//! matter); every write is a `replace` with the `resourceVersion` it read, so two candidates
//! never both win.
//!
//! Hand-rolled rather than `kube-lease-manager`, which a standby sleeps through until the
//! Lease's expiry: a Lease released at a graceful stop (every rolling upgrade) was then only
//! taken over 15 s later. Here a standby reads the Lease every [`STANDBY_POLL`] at most, so it
//! leads within about that of the release; one GET of one small object per second is nothing to
//! the API server, and needs no `list`/`watch` on Leases.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// How often a standby reads the Lease at most: how soon after a release it leads.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// One replica's part in the election.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    pub lease_name: String,
    pub namespace: String,
    /// This replica (its pod name).
    pub identity: String,
    /// Who writes the Lease (per replica: see `main.rs`).
    pub field_manager: String,
    pub lease_duration: Duration,
    /// The holder steps down when it could not renew for this long (below `lease_duration`,
    /// so it stops writing before anyone else may start).
    pub renew_deadline: Duration,
    /// How often the holder renews.
    pub retry_period: Duration,
}

/// The election running: whether this replica leads, and how to give the Lease up.
pub struct Leadership {
    pub leader: watch::Receiver<bool>,
    release: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Ends the election: a held Lease is released (holder cleared), so a standby leads at its
    /// next read instead of after the Lease expires. The caller stops writing first. False when
    /// that did not finish within `timeout`.
    pub async fn release(self, timeout: Duration) -> bool {
        let _ = self.release.send(());
        tokio::time::timeout(timeout, self.task).await.is_ok()
    }
}

/// Starts the election. `leader` turns true when this replica takes the Lease, and false when it
/// loses it (another took it, or renewing failed past the deadline); a planned release leaves it
/// as it is (the caller has stopped every writer already, and the process is ending).
pub fn start(client: Client, settings: ElectionSettings) -> Leadership {
    let (leader, rx) = watch::channel(false);
    let (release, released) = oneshot::channel();
    let election = Election {
        api: Api::namespaced(client, &settings.namespace),
        settings,
        seen: None,
    };
    let task = tokio::spawn(election.run(leader, released));
    Leadership {
        leader: rx,
        release,
        task,
    }
}

/// What the Lease says to this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Nobody,
    Us,
    /// Held by another replica, which renewed within the lease duration as far as we saw.
    Other,
    /// Held by another replica that has not renewed for a whole lease duration.
    Expired,
}

fn holder_of(spec: &LeaseSpec, identity: &str, unchanged_for: Duration, default_duration: Duration) -> Holder {
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default_duration, Duration::from_secs);
    match spec.holder_identity.as_deref() {
        None | Some("") => Holder::Nobody,
        Some(holder) if holder == identity => Holder::Us,
        Some(_) if unchanged_for >= duration => Holder::Expired,
        Some(_) => Holder::Other,
    }
}

struct Election {
    api: Api<Lease>,
    settings: ElectionSettings,
    /// The Lease's resourceVersion as last read, and since when it is that one.
    seen: Option<(String, Instant)>,
}

impl Election {
    async fn run(mut self, leader: watch::Sender<bool>, mut released: oneshot::Receiver<()>) {
        let mut last_renewed: Option<Instant> = None;
        let mut wait = Duration::ZERO;
        loop {
            let leading = *leader.borrow();
            let attempt = async {
                tokio::time::sleep(wait).await;
                self.try_acquire_or_renew().await
            };
            let outcome = tokio::select! {
                biased;
                _ = &mut released => break,
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(Some(true)) => {
                    last_renewed = Some(Instant::now());
                    if !leading {
                        tracing::info!(identity = %self.settings.identity, "leading: this replica holds the Lease");
                        leader.send_replace(true);
                    }
                }
                Ok(Some(false)) => {
                    if leading {
                        tracing::warn!("another replica holds the Lease: stepping down");
                        leader.send_replace(false);
                    }
                }
                // Written by someone else since our read: read again soon; a holder keeps
                // leading until its renew deadline, as after a failed renew.
                Ok(None) => {
                    let deadline_passed = last_renewed.is_none_or(|at| at.elapsed() >= self.settings.renew_deadline);
                    if leading && deadline_passed {
                        tracing::warn!("could not renew the Lease in time: stepping down");
                        leader.send_replace(false);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "reading or writing the Lease failed");
                    let deadline_passed = last_renewed.is_none_or(|at| at.elapsed() >= self.settings.renew_deadline);
                    if leading && deadline_passed {
                        tracing::warn!(deadline = ?self.settings.renew_deadline, "could not renew the Lease in time: stepping down");
                        leader.send_replace(false);
                    }
                }
            }
            wait = if *leader.borrow() {
                self.settings.retry_period
            } else {
                self.settings.retry_period.min(STANDBY_POLL)
            };
        }
        if *leader.borrow() {
            match self.give_up().await {
                Ok(()) => tracing::info!("the Lease is released"),
                Err(error) => {
                    tracing::warn!(%error, "releasing the Lease failed; a standby takes over when it expires")
                }
            }
        }
    }

    /// Reads the Lease and takes or renews it when it may: whether this replica holds it now,
    /// `None` when another write came between the read and ours.
    async fn try_acquire_or_renew(&mut self) -> Result<Option<bool>, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let duration_seconds = i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.lease_name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&self.post_params(), &lease).await {
                Ok(_) => Ok(Some(true)),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
                Err(e) => Err(e),
            };
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let since = match &self.seen {
            Some((seen, at)) if *seen == version => *at,
            _ => {
                let at = Instant::now();
                self.seen = Some((version, at));
                at
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = holder_of(
            &spec,
            &self.settings.identity,
            since.elapsed(),
            self.settings.lease_duration,
        );
        if holder == Holder::Other {
            return Ok(Some(false));
        }
        let mut next = lease;
        let taken = next.spec.get_or_insert_with(Default::default);
        if holder != Holder::Us {
            taken.acquire_time = Some(now.clone());
            taken.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        taken.holder_identity = Some(self.settings.identity.clone());
        taken.lease_duration_seconds = Some(duration_seconds);
        taken.renew_time = Some(now);
        match self
            .api
            .replace(&self.settings.lease_name, &self.post_params(), &next)
            .await
        {
            Ok(written) => {
                let version = written.metadata.resource_version.unwrap_or_default();
                self.seen = Some((version, Instant::now()));
                Ok(Some(true))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clears the holder, if it is still this replica, so a standby takes the Lease at once.
    async fn give_up(&mut self) -> Result<(), kube::Error> {
        for _ in 0..3 {
            let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
            // As client-go leaves a released Lease.
            spec.lease_duration_seconds = Some(1);
            match self
                .api
                .replace(&self.settings.lease_name, &self.post_params(), &lease)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            field_manager: Some(self.settings.field_manager.clone()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, duration: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: duration,
            ..Default::default()
        }
    }

    #[test]
    fn who_holds_the_lease() {
        let d = Duration::from_secs(15);
        let s = Duration::from_secs;
        assert_eq!(holder_of(&spec(None, Some(15)), "a", s(0), d), Holder::Nobody);
        // A released Lease (client-go's empty holder) is free at once.
        assert_eq!(holder_of(&spec(Some(""), Some(1)), "a", s(0), d), Holder::Nobody);
        assert_eq!(holder_of(&spec(Some("a"), Some(15)), "a", s(99), d), Holder::Us);
        assert_eq!(holder_of(&spec(Some("b"), Some(15)), "a", s(14), d), Holder::Other);
        assert_eq!(holder_of(&spec(Some("b"), Some(15)), "a", s(15), d), Holder::Expired);
        // The Lease's own duration counts; ours when it has none.
        assert_eq!(holder_of(&spec(Some("b"), Some(4)), "a", s(5), d), Holder::Expired);
        assert_eq!(holder_of(&spec(Some("b"), None), "a", s(14), d), Holder::Other);
        assert_eq!(holder_of(&spec(Some("b"), Some(-3)), "a", s(14), d), Holder::Other);
    }
}
