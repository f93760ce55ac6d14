//! The gate a rolling plan passes before it is written: its reload window and its wave
//! ([`crate::core::hold`] decides; this gathers the inputs from memory), and what is held
//! now, for the held-workloads gauge and so a hold is told once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::core::hold::{Gate, Hold, HoldReason, gate, instant, window_for};
use crate::core::plan::Plan;
use crate::core::wave_gate::WaveWait;
use crate::core::workload::Workload;
use crate::engine::context::Context;
use crate::store::WorkloadKey;

/// How long a wave-held workload waits before looking again by itself, in case the event that
/// should wake it (another workload becoming healthy) was missed.
pub(super) const WAVE_LOOK_AGAIN: Duration = Duration::from_secs(10);
/// How long one waits while the members of its waves are not all known yet (at start-up, the
/// other workloads' first reconciles are moments away).
pub(super) const MEMBERS_LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Each Namespace's `reload-window` annotation (cluster-wide installs watch Namespaces).
#[derive(Default)]
pub struct NamespaceWindows(RwLock<HashMap<String, String>>);

impl NamespaceWindows {
    /// Records a Namespace's window (`None`: it has none); true when it changed.
    pub fn set(&self, namespace: &str, window: Option<String>) -> bool {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match window {
            Some(w) => map.insert(namespace.to_string(), w.clone()).as_ref() != Some(&w),
            None => map.remove(namespace).is_some(),
        }
    }

    pub fn get(&self, namespace: &str) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(namespace).cloned()
    }
}

/// The workloads held now, with what holds them.
#[derive(Default)]
pub struct Holds(Mutex<HashMap<WorkloadKey, (HoldReason, String)>>);

impl Holds {
    /// Notes `key` as held; true when this is news (not held, or held differently before),
    /// which is when it is told.
    pub(super) fn hold(&self, key: &WorkloadKey, hold: &Hold) -> bool {
        let entry = (hold.reason(), hold.describe());
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key.clone(), entry.clone()).as_ref() != Some(&entry)
    }

    /// Notes `key` as no longer held.
    pub(super) fn release(&self, key: &WorkloadKey) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key).is_some()
    }

    /// How many workloads each reason holds.
    pub fn counts(&self) -> BTreeMap<HoldReason, usize> {
        let mut counts: BTreeMap<HoldReason, usize> = HoldReason::ALL.iter().map(|r| (*r, 0)).collect();
        for (reason, _) in self.0.lock().unwrap_or_else(|e| e.into_inner()).values() {
            *counts.entry(*reason).or_default() += 1;
        }
        counts
    }
}

/// What the gate decided for one rolling plan.
pub(super) enum Passage {
    Proceed,
    /// Proceed, `reload-now` consumed.
    Override,
    /// Held; `news` when it was not held so before (tell it), `look_again` when to.
    Held {
        hold: Hold,
        news: bool,
        look_again: Duration,
    },
}

/// The gate for `plan`, computed from memory at the engine's clock.
pub(super) fn pass(ctx: &Context, key: &WorkloadKey, workload: &Workload<'_>, plan: &Plan) -> Passage {
    let now = instant(ctx.clock.now());
    let namespace = ctx.namespace_windows.get(&key.namespace);
    let window = window_for(
        &workload.annotations(),
        namespace.as_deref(),
        ctx.options.default_window.as_ref(),
    );
    let wave = super::waves::wave_hold(ctx, key, plan);
    let decided = gate(plan, workload, window.as_ref(), wave, now);
    let passage = match decided {
        Gate::Proceed => Passage::Proceed,
        Gate::Override => Passage::Override,
        Gate::Held(hold) => {
            let look_again = match (&hold, hold.ends_at()) {
                // A moment past the opening, so the window is open when it looks.
                (_, Some(at)) => {
                    Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_millis(50)
                }
                (
                    Hold::Wave {
                        wait: WaveWait::MembersUnknown,
                        ..
                    },
                    None,
                ) => MEMBERS_LOOK_AGAIN,
                (_, None) => WAVE_LOOK_AGAIN,
            };
            // Members not yet known is a moment of start-up, not news.
            let transient = matches!(
                hold,
                Hold::Wave {
                    wait: WaveWait::MembersUnknown,
                    ..
                }
            );
            let news = ctx.note_hold(key, &hold) && !transient;
            return Passage::Held { hold, news, look_again };
        }
    };
    ctx.release_hold(key);
    passage
}
