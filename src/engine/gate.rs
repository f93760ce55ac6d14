//! The gate a rolling plan passes before it is written: its reload window and its wave
//! ([`crate::core::hold`] decides; this gathers the inputs from memory, and notes what is held
//! in [`super::held`]).

use std::time::Duration;

use crate::core::hold::{Gate, Hold, gate, instant, window_for};
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
