//! On the real node (tools/node.sh): the reloader installed as users install it, from the
//! chart with Stakater's values file and from `kubectl apply -k manifests/`, its image running
//! as pods under their ServiceAccount, the API server calling its webhook through its Service,
//! and an app whose containers really read the Secret and ConfigMap that get rotated.
//!
//! Each test installs a cluster-wide reloader, which would roll and stamp other tests' objects:
//! so these tests are a test binary of their own (cargo runs test binaries one at a time) and
//! take turns ([`one_at_a_time`]).

mod install;
mod node;
mod pod_restarts;
mod waves;

// The cluster tests' fixture and helm (tests/support/).
use reloader_dev_support::{cluster as support, helm_cli};

/// Held for the whole of each test: only one reloader is installed at a time.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}
