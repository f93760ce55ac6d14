//! The engine's clock. Reload windows are hours long; the cluster tests cannot wait for them,
//! so a test may start the clock at a chosen instant (`RELOADER_TEST_CLOCK_START`, RFC 3339),
//! from which it runs at the real pace. Nothing else may set it, and it is logged when set.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The environment variable that starts the clock elsewhere (tests only; not in `--help`).
pub const TEST_START_ENV: &str = "RELOADER_TEST_CLOCK_START";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Added to the system clock.
    offset: time::Duration,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and runs at the real pace from there.
    pub fn starting_at(start: OffsetDateTime) -> Self {
        Self {
            offset: start - OffsetDateTime::now_utc(),
        }
    }

    /// The clock [`TEST_START_ENV`] asks for; the system clock when it is unset, an error
    /// naming the variable when it is not RFC 3339.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(TEST_START_ENV) {
            Err(_) => Ok(Self::system()),
            Ok(text) => OffsetDateTime::parse(&text, &Rfc3339)
                .map(Self::starting_at)
                .map_err(|error| format!("{TEST_START_ENV}={text:?}: not an RFC 3339 time: {error}")),
        }
    }

    pub fn is_system(&self) -> bool {
        self.offset.is_zero()
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_clock_reads_its_start_and_runs_on() {
        let start = OffsetDateTime::parse("2026-01-05T01:59:50Z", &Rfc3339).unwrap();
        let clock = Clock::starting_at(start);
        let now = clock.now();
        assert!(now >= start && now - start < time::Duration::seconds(5), "{now}");
        assert!(!clock.is_system());
        assert!(Clock::system().is_system());
    }
}
