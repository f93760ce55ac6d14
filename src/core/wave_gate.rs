//! Rollout waves: when a source with waves (`reloader.stakater.com/rollout-waves: 1,10%,100%`,
//! or `--rollout-waves`) changes, its dependents roll a wave at a time, each wave only once every
//! workload of the waves before it carries the new content and is healthy
//! ([`super::rollout_status`]); a failed one halts the rest, which keep the old content until the
//! source changes again (the fix), which starts over from the first wave.
//!
//! Nothing here is remembered: the gate is a function of what the cluster shows, which members
//! carry the source's current content (their stamps) and how their rollouts are doing, so a
//! restarted reloader or a new leader resumes exactly where the waves were, rolls nothing twice
//! and skips no gate.
//!
//! The members are the workloads of the source's namespace that depend on it, in a stable order:
//! those annotated `reloader.stakater.com/first-wave: "true"` first, then by kind, then by name.
//! Wave `j` holds the members at positions below its boundary (the cumulative sizes,
//! [`super::waves::WaveSizes::boundaries`]). The current wave is the first whose members are not
//! all current and healthy; its members may roll, the others wait; a current member of it that
//! failed halts every member.
//!
//! Pure: the members' state is a parameter.

use std::fmt;

use super::rollout_status::RolloutHealth;
use super::workload::WorkloadKind;

/// One dependent of the source, as the gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub kind: WorkloadKind,
    pub name: String,
    /// Annotated `reloader.stakater.com/first-wave: "true"`.
    pub first_wave: bool,
    /// Its record for the source equals the source's current content.
    pub carries_current: bool,
    pub health: RolloutHealth,
}

impl Member {
    /// `workload` as a member of `source`'s waves: whether its record for the source is the
    /// source's `current` content (as [`super::plan::assess`] compares; `per_key_default`:
    /// `--per-key-reloads`), and its `health`.
    pub fn of(
        workload: &super::workload::Workload<'_>,
        source: &super::source::SourceRef,
        current: Option<&super::source::SourceState>,
        per_key_default: bool,
        strategy: super::plan::ReloadStrategy,
        stamping: super::plan::Stamping<'_>,
        health: RolloutHealth,
    ) -> Self {
        Self {
            kind: workload.kind,
            name: workload.name().to_string(),
            first_wave: workload.annotation(super::vocabulary::fixed::FIRST_WAVE) == Some("true"),
            carries_current: super::plan::carries(workload, source, current, per_key_default, strategy, stamping),
            health,
        }
    }

    /// The member's place in the waves' order.
    fn order(&self) -> (bool, WorkloadKind, &str) {
        (!self.first_wave, self.kind, &self.name)
    }

    fn done(&self) -> bool {
        self.carries_current && self.health == RolloutHealth::Healthy
    }

    /// `deploy/api`, as people name it.
    pub fn label(&self) -> String {
        label(self.kind, &self.name)
    }
}

/// A workload as people name it: `deploy/api`.
pub fn label(kind: WorkloadKind, name: &str) -> String {
    format!("{}/{}", short_kind(kind), name)
}

/// The short name of a kind, as `kubectl` accepts it (`deploy/api`).
pub fn short_kind(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment => "deploy",
        WorkloadKind::StatefulSet => "sts",
        WorkloadKind::DaemonSet => "ds",
        WorkloadKind::CronJob => "cronjob",
        WorkloadKind::Job => "job",
        WorkloadKind::Rollout => "rollout",
        WorkloadKind::DeploymentConfig => "dc",
        WorkloadKind::Extra(extra) => extra.short(),
    }
}

/// Why a workload that would roll for a source with waves waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaveWait {
    /// Wave `wave` (1-based) of `waves` is not done: `pending` are its members (and the earlier
    /// waves') not yet rolled with the current content, or not yet healthy.
    Waiting {
        wave: usize,
        waves: usize,
        pending: Vec<String>,
    },
    /// `failed` (`deploy/api`) carries the current content and failed (`reason`, e.g.
    /// `ProgressDeadlineExceeded`): nothing else rolls until the source changes again.
    Halted { failed: String, reason: String },
    /// Some workload of the namespace has not been read or evaluated yet, so the members are
    /// not all known: no wave is computed before they are (at start-up, mostly).
    MembersUnknown,
}

/// At most this many pending members are named in [`WaveWait::describe`].
const NAMED: usize = 5;

impl WaveWait {
    /// One line for people: Events, logs and `reloader explain`.
    pub fn describe(&self) -> String {
        match self {
            WaveWait::Waiting { wave, waves, pending } => {
                let mut names = pending.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
                if pending.len() > NAMED {
                    names.push_str(&format!(" and {} more", pending.len() - NAMED));
                }
                format!("waiting for wave {wave} of {waves} to roll out healthy ({names})")
            }
            WaveWait::Halted { failed, reason } => {
                format!(
                    "rollout halted: {failed} failed ({reason}); the rest keep the content before until the source changes again"
                )
            }
            WaveWait::MembersUnknown => "waiting until every workload of the namespace has been read".into(),
        }
    }
}

impl fmt::Display for WaveWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether `asking` (one of `members`, by kind and name) may roll now: `None` when it may (it is
/// in the current wave, or every wave is done), else why it waits. `boundaries` are the waves'
/// cumulative sizes for `members.len()`, strictly increasing, the last one all of them; a
/// workload missing from `members` is placed after all of them. The order `members` come in does
/// not matter.
pub fn wave_wait(boundaries: &[usize], members: &[Member], asking: (WorkloadKind, &str)) -> Option<WaveWait> {
    let mut order: Vec<&Member> = members.iter().collect();
    order.sort_by(|a, b| a.order().cmp(&b.order()));
    let n = order.len();
    // The first wave not done, and where it ends.
    let (wave, end) = boundaries
        .iter()
        .map(|b| (*b).min(n))
        .enumerate()
        .find(|(_, end)| !order[..*end].iter().all(|m| m.done()))?;
    let failed = order[..end].iter().find_map(|m| match &m.health {
        RolloutHealth::Failed(reason) if m.carries_current => Some((m, reason)),
        _ => None,
    });
    if let Some((failed, reason)) = failed {
        return Some(WaveWait::Halted {
            failed: failed.label(),
            reason: reason.clone(),
        });
    }
    let position = order
        .iter()
        .position(|m| m.kind == asking.0 && m.name == asking.1)
        .unwrap_or(n);
    if position < end {
        return None;
    }
    Some(WaveWait::Waiting {
        wave: wave + 1,
        waves: boundaries.len(),
        pending: order[..end].iter().filter(|m| !m.done()).map(|m| m.label()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(name: &str, carries_current: bool, health: RolloutHealth) -> Member {
        Member {
            kind: WorkloadKind::Deployment,
            name: name.into(),
            first_wave: false,
            carries_current,
            health,
        }
    }

    fn ask(boundaries: &[usize], members: &[Member], name: &str) -> Option<WaveWait> {
        wave_wait(boundaries, members, (WorkloadKind::Deployment, name))
    }

    use RolloutHealth::{Healthy, Progressing};

    #[test]
    fn waves_open_one_after_another() {
        // 1,50%,100% of four: boundaries 1, 2, 4.
        let b = [1, 2, 4];
        let mut members: Vec<Member> = ["a", "b", "c", "d"].iter().map(|n| member(n, false, Healthy)).collect();
        assert_eq!(ask(&b, &members, "a"), None);
        assert_eq!(
            ask(&b, &members, "b"),
            Some(WaveWait::Waiting {
                wave: 1,
                waves: 3,
                pending: vec!["deploy/a".into()]
            })
        );
        // a rolled, not healthy yet: still wave 1.
        members[0].carries_current = true;
        members[0].health = Progressing("0 of 1 ready".into());
        assert!(matches!(
            ask(&b, &members, "b"),
            Some(WaveWait::Waiting { wave: 1, .. })
        ));
        members[0].health = Healthy;
        assert_eq!(ask(&b, &members, "b"), None);
        assert!(matches!(
            ask(&b, &members, "c"),
            Some(WaveWait::Waiting { wave: 2, .. })
        ));
        members[1].carries_current = true;
        assert_eq!(ask(&b, &members, "c"), None);
        assert_eq!(ask(&b, &members, "d"), None);
    }

    #[test]
    fn first_wave_members_come_first_then_kind_then_name() {
        let mut canary = member("zz", false, Healthy);
        canary.first_wave = true;
        let mut sts = member("aa", false, Healthy);
        sts.kind = WorkloadKind::StatefulSet;
        let members = vec![member("b", false, Healthy), sts, canary, member("a", false, Healthy)];
        // Order: deploy/zz (first wave), deploy/a, deploy/b, sts/aa.
        let allowed: Vec<bool> = [
            (WorkloadKind::Deployment, "zz"),
            (WorkloadKind::Deployment, "a"),
            (WorkloadKind::Deployment, "b"),
            (WorkloadKind::StatefulSet, "aa"),
        ]
        .iter()
        .map(|asking| wave_wait(&[1, 2, 4], &members, *asking).is_none())
        .collect();
        assert_eq!(allowed, [true, false, false, false]);
    }

    #[test]
    fn a_failure_halts_everything_until_the_source_changes_again() {
        let b = [1, 3, 6];
        let failed = RolloutHealth::Failed("ProgressDeadlineExceeded".into());
        let mut members: Vec<Member> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|n| member(n, false, Healthy))
            .collect();
        members[0] = member("a", true, failed.clone());
        let halted = Some(WaveWait::Halted {
            failed: "deploy/a".into(),
            reason: "ProgressDeadlineExceeded".into(),
        });
        for name in ["b", "c", "f"] {
            assert_eq!(ask(&b, &members, name), halted, "{name}");
        }
        // The fix: a changes again, nothing carries the new content: wave 1 starts over, and
        // a (failed with the content before) may roll.
        members[0].carries_current = false;
        assert_eq!(ask(&b, &members, "a"), None);
        assert!(matches!(
            ask(&b, &members, "b"),
            Some(WaveWait::Waiting { wave: 1, .. })
        ));
        // A failed member that does not carry the current content (it failed with another)
        // halts nothing, even in a later wave.
        members[0] = member("a", true, Healthy);
        members[4] = member("e", false, failed);
        assert_eq!(ask(&b, &members, "b"), None);
    }

    #[test]
    fn an_unknown_asker_waits_behind_everyone() {
        let members = vec![member("a", false, Healthy), member("b", true, Healthy)];
        assert!(ask(&[1, 2], &members, "zz").is_some());
        let done = vec![member("a", true, Healthy), member("b", true, Healthy)];
        assert_eq!(ask(&[1, 2], &done, "zz"), None);
    }

    #[test]
    fn descriptions_name_what_is_awaited() {
        let waiting = WaveWait::Waiting {
            wave: 2,
            waves: 3,
            pending: (0..7).map(|i| format!("deploy/w{i}")).collect(),
        };
        assert_eq!(
            waiting.describe(),
            "waiting for wave 2 of 3 to roll out healthy (deploy/w0, deploy/w1, deploy/w2, deploy/w3, deploy/w4 and 2 more)"
        );
        let halted = WaveWait::Halted {
            failed: "deploy/api".into(),
            reason: "ProgressDeadlineExceeded".into(),
        };
        assert!(
            halted
                .to_string()
                .contains("deploy/api failed (ProgressDeadlineExceeded)")
        );
    }

    /// Cumulative boundaries for `n` members from up to four arbitrary cut points.
    fn boundaries(n: usize, cuts: &[usize]) -> Vec<usize> {
        let mut b: Vec<usize> = cuts.iter().map(|c| 1 + c % n).collect();
        b.push(n);
        b.sort_unstable();
        b.dedup();
        b
    }

    fn health_strategy() -> impl Strategy<Value = RolloutHealth> {
        prop_oneof![
            Just(Healthy),
            Just(Progressing("rolling".into())),
            Just(RolloutHealth::Failed("ProgressDeadlineExceeded".into())),
        ]
    }

    fn members_strategy() -> impl Strategy<Value = Vec<Member>> {
        proptest::collection::vec((any::<bool>(), 0..3usize, any::<bool>(), health_strategy()), 1..12).prop_map(
            |specs| {
                specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (first_wave, kind, carries_current, health))| Member {
                        kind: [
                            WorkloadKind::Deployment,
                            WorkloadKind::StatefulSet,
                            WorkloadKind::DaemonSet,
                        ][kind],
                        name: format!("w{i}"),
                        first_wave,
                        carries_current,
                        health,
                    })
                    .collect()
            },
        )
    }

    proptest! {
        /// Rolling whatever the gate allows, in any order, with rollouts becoming healthy in any
        /// order: what has rolled is always within the current wave, every member rolls in the
        /// end, and a failure stops every further roll.
        #[test]
        fn rolled_members_never_pass_the_current_wave(
            n in 1..10usize,
            cuts in proptest::collection::vec(0..100usize, 0..4),
            picks in proptest::collection::vec(0..1000usize, 0..200),
            fail_at in proptest::option::of(0..10usize),
        ) {
            let b = boundaries(n, &cuts);
            let mut members: Vec<Member> = (0..n).map(|i| member(&format!("w{i:02}"), false, Healthy)).collect();
            let mut steps = picks.into_iter();
            let mut halted = false;
            loop {
                // Invariant: the rolled members are within the first wave not done.
                let rolled = members.iter().filter(|m| m.carries_current).count();
                let done_prefix = b.iter().find(|end| !members[..**end].iter().all(Member::done)).copied().unwrap_or(n);
                prop_assert!(members.iter().enumerate().all(|(i, m)| !m.carries_current || i < done_prefix),
                    "rolled beyond wave ending at {done_prefix}: {members:?}");
                prop_assert!(rolled <= done_prefix);
                let allowed: Vec<usize> = (0..n)
                    .filter(|i| !members[*i].carries_current && ask(&b, &members, &members[*i].name.clone()).is_none())
                    .collect();
                let rolling: Vec<usize> = (0..n)
                    .filter(|i| members[*i].carries_current && members[*i].health != Healthy)
                    .collect();
                if halted {
                    prop_assert!(allowed.is_empty(), "rolled past a failure: {members:?}");
                    break;
                }
                if allowed.is_empty() && rolling.is_empty() {
                    break;
                }
                let pick = steps.next().unwrap_or(0);
                let choices = allowed.len() + rolling.len();
                let choice = pick % choices;
                if choice < allowed.len() {
                    let i = allowed[choice];
                    members[i].carries_current = true;
                    members[i].health = Progressing("rolling".into());
                } else {
                    let i = rolling[choice - allowed.len()];
                    if fail_at == Some(i) {
                        members[i].health = RolloutHealth::Failed("ProgressDeadlineExceeded".into());
                        halted = true;
                    } else {
                        members[i].health = Healthy;
                    }
                }
            }
            if !halted {
                prop_assert!(members.iter().all(Member::done), "stuck: {members:?}");
            }
        }

        /// The answer depends on the members, not on the order they are found in (a restarted
        /// reloader reads its store in another order): same members, same answers.
        #[test]
        fn the_order_members_come_in_does_not_matter(
            members in members_strategy(),
            cuts in proptest::collection::vec(0..100usize, 0..4),
            rotate in 0..12usize,
        ) {
            let b = boundaries(members.len(), &cuts);
            let mut shuffled = members.clone();
            shuffled.reverse();
            shuffled.rotate_left(rotate % members.len());
            for m in &members {
                let asking = (m.kind, m.name.as_str());
                prop_assert_eq!(wave_wait(&b, &members, asking), wave_wait(&b, &shuffled, asking));
            }
        }

        /// When every other member carries the current content and is healthy, nothing waits.
        #[test]
        fn a_fully_rolled_set_gates_nothing(
            members in members_strategy(),
            cuts in proptest::collection::vec(0..100usize, 0..4),
            asker in 0..12usize,
        ) {
            let b = boundaries(members.len(), &cuts);
            let asker = asker % members.len();
            let members: Vec<Member> = members
                .into_iter()
                .enumerate()
                .map(|(i, mut m)| {
                    m.carries_current = i != asker;
                    m.health = Healthy;
                    m
                })
                .collect();
            let asking = (members[asker].kind, members[asker].name.as_str());
            prop_assert_eq!(wave_wait(&b, &members, asking), None);
        }

        /// Whoever may roll is in the current wave: never more than its boundary.
        #[test]
        fn never_more_may_roll_than_the_current_wave_holds(
            members in members_strategy(),
            cuts in proptest::collection::vec(0..100usize, 0..4),
        ) {
            let b = boundaries(members.len(), &cuts);
            let may: usize = members
                .iter()
                .filter(|m| m.carries_current || wave_wait(&b, &members, (m.kind, m.name.as_str())).is_none())
                .count();
            let mut order = members.clone();
            order.sort_by(|x, y| x.order().cmp(&y.order()));
            let end = b.iter().find(|end| !order[..**end].iter().all(Member::done)).copied();
            if let Some(end) = end {
                let beyond_rolled = order[end..].iter().filter(|m| m.carries_current).count();
                prop_assert!(may <= end + beyond_rolled, "{may} may roll, wave ends at {end}");
            }
        }
    }
}
