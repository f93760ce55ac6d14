//! Wave sizes (`reloader.stakater.com/rollout-waves` on a source): how many of the workloads that
//! depend on a changed source roll in each wave.
//!
//! The value is a comma list of cumulative sizes, each a count (`1`, `10`) or a percentage of the
//! dependents (`10%`, `100%`): `1,10%,100%` rolls one workload, then up to a tenth of them in all,
//! then the rest. Every item adds at least one workload on paper (a count ≥ 1, a percentage from
//! 1% to 100%); sizes need not increase, since whether they do depends on how many dependents
//! there are: a wave that adds nobody for a given number is dropped. A list whose last wave does
//! not cover everyone ends with an implicit `100%`.
//!
//! Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::text::quoted;

/// Values longer than this are refused whole.
pub const MAX_WAVES_VALUE_LEN: usize = 256;
/// At most this many waves in one value.
pub const MAX_WAVES: usize = 32;
/// The syntax, as error messages show it.
pub const SYNTAX: &str = "a comma list of cumulative sizes, each a count or a percentage, e.g. \"1,10%,100%\"";

/// One cumulative wave size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaveSize {
    /// This many workloads in all (at least 1).
    Count(usize),
    /// This percentage of the dependents in all, rounded up (1 to 100).
    Percent(u8),
}

/// A parsed `rollout-waves` value: the cumulative sizes, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaveSizes {
    sizes: Vec<WaveSize>,
}

/// What is wrong with a `rollout-waves` value. Items are quoted at most
/// [`super::text::MAX_QUOTED`] characters long.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WaveError {
    #[error("the value is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("{count} waves; at most {max} are allowed")]
    TooMany { count: usize, max: usize },
    #[error("no waves; expected {SYNTAX}")]
    Empty,
    #[error("wave {position} is empty; expected {SYNTAX}")]
    EmptyItem { position: usize },
    #[error("wave {item:?} adds nobody: a wave is a count of at least 1 or a percentage from 1% to 100%")]
    Zero { item: String },
    #[error("wave {item:?} is over 100%")]
    OverHundred { item: String },
    #[error("wave {item:?} is too large a count")]
    TooLarge { item: String },
    #[error("wave {item:?} is not a count (10) or a percentage (10%); expected {SYNTAX}")]
    NotASize { item: String },
}

impl FromStr for WaveSizes {
    type Err = WaveError;

    fn from_str(value: &str) -> Result<Self, WaveError> {
        if value.len() > MAX_WAVES_VALUE_LEN {
            return Err(WaveError::TooLong {
                len: value.len(),
                max: MAX_WAVES_VALUE_LEN,
            });
        }
        if value.trim().is_empty() {
            return Err(WaveError::Empty);
        }
        let count = value.split(',').count();
        if count > MAX_WAVES {
            return Err(WaveError::TooMany { count, max: MAX_WAVES });
        }
        let sizes = value
            .split(',')
            .enumerate()
            .map(|(i, item)| WaveSize::parse(i + 1, item.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { sizes })
    }
}

impl WaveSize {
    fn parse(position: usize, item: &str) -> Result<Self, WaveError> {
        if item.is_empty() {
            return Err(WaveError::EmptyItem { position });
        }
        let (digits, percent) = match item.strip_suffix('%') {
            Some(digits) => (digits.trim_end(), true),
            None => (item, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WaveError::NotASize { item: quoted(item) });
        }
        let Ok(number) = digits.parse::<usize>() else {
            let item = quoted(item);
            return Err(if percent {
                WaveError::OverHundred { item }
            } else {
                WaveError::TooLarge { item }
            });
        };
        match (number, percent) {
            (0, _) => Err(WaveError::Zero { item: quoted(item) }),
            (_, false) => Ok(WaveSize::Count(number)),
            (1..=100, true) => Ok(WaveSize::Percent(u8::try_from(number).unwrap_or(100))),
            (_, true) => Err(WaveError::OverHundred { item: quoted(item) }),
        }
    }

    /// How many of `dependents` workloads this size covers in all, at most `dependents`.
    fn resolve(self, dependents: usize) -> usize {
        match self {
            WaveSize::Count(count) => count.min(dependents),
            WaveSize::Percent(percent) => {
                // Rounded up, without overflow: `dependents * percent` fits in u128.
                let covered = (dependents as u128 * u128::from(percent)).div_ceil(100);
                usize::try_from(covered).unwrap_or(dependents).min(dependents)
            }
        }
    }
}

impl WaveSizes {
    /// The sizes as written (without the implicit `100%`).
    pub fn sizes(&self) -> &[WaveSize] {
        &self.sizes
    }

    /// The cumulative number of workloads rolled by the end of each wave, for `dependents`
    /// workloads: strictly increasing (a wave that adds nobody is dropped), the first at least 1,
    /// the last `dependents`. Empty when there are no dependents.
    pub fn boundaries(&self, dependents: usize) -> Vec<usize> {
        let mut boundaries: Vec<usize> = Vec::with_capacity(self.sizes.len() + 1);
        let covered = self.sizes.iter().map(|s| s.resolve(dependents)).chain([dependents]);
        for covered in covered {
            if covered > boundaries.last().copied().unwrap_or(0) {
                boundaries.push(covered);
            }
        }
        boundaries
    }
}

impl fmt::Display for WaveSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveSize::Count(count) => write!(f, "{count}"),
            WaveSize::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl fmt::Display for WaveSizes {
    /// The normalised text: items trimmed, leading zeros dropped, `,` without spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<String> = self.sizes.iter().map(WaveSize::to_string).collect();
        f.write_str(&sizes.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn waves(text: &str) -> WaveSizes {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn counts_and_percentages_parse_and_print() {
        let w = waves(" 1, 10% ,100%");
        assert_eq!(
            w.sizes(),
            &[WaveSize::Count(1), WaveSize::Percent(10), WaveSize::Percent(100)]
        );
        assert_eq!(w.to_string(), "1,10%,100%");
        assert_eq!(waves("007,05%").to_string(), "7,5%");
        assert_eq!(waves("10 %").to_string(), "10%");
    }

    #[test]
    fn boundaries_are_cumulative_and_end_with_everyone() {
        let w = waves("1,10%,100%");
        assert_eq!(w.boundaries(0), Vec::<usize>::new());
        assert_eq!(w.boundaries(1), vec![1]);
        // 10% of 5 rounds up to 1, which adds nobody after the first wave: dropped.
        assert_eq!(w.boundaries(5), vec![1, 5]);
        assert_eq!(w.boundaries(20), vec![1, 2, 20]);
        assert_eq!(w.boundaries(101), vec![1, 11, 101]);
        // The implicit 100%.
        assert_eq!(waves("1").boundaries(10), vec![1, 10]);
        assert_eq!(waves("25%,50%").boundaries(10), vec![3, 5, 10]);
        // Counts past the dependents stop at them.
        assert_eq!(waves("5,50").boundaries(8), vec![5, 8]);
        // Sizes that do not increase add nobody.
        assert_eq!(waves("10,5,50%").boundaries(20), vec![10, 20]);
        assert_eq!(waves("100%").boundaries(7), vec![7]);
        assert_eq!(
            waves("1%").boundaries(usize::MAX),
            vec![usize::MAX.div_ceil(100), usize::MAX]
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let error = |text: &str| text.parse::<WaveSizes>().unwrap_err();
        assert_eq!(error("0"), WaveError::Zero { item: "0".into() });
        assert_eq!(error("1,0%"), WaveError::Zero { item: "0%".into() });
        assert_eq!(error("101%"), WaveError::OverHundred { item: "101%".into() });
        assert_eq!(
            error("99999999999999999999999%"),
            WaveError::OverHundred {
                item: "99999999999999999999999%".into()
            }
        );
        assert_eq!(
            error("99999999999999999999999"),
            WaveError::TooLarge {
                item: "99999999999999999999999".into()
            }
        );
        assert_eq!(error(""), WaveError::Empty);
        assert_eq!(error("  "), WaveError::Empty);
        assert_eq!(error("1,,10%"), WaveError::EmptyItem { position: 2 });
        assert_eq!(error("1,10%,"), WaveError::EmptyItem { position: 3 });
        for garbage in ["ten", "-1", "+1", "1.5", "10%%", "%", "1 0", "0x10", "½"] {
            assert!(matches!(error(garbage), WaveError::NotASize { .. }), "{garbage}");
        }
        assert_eq!(
            error("0").to_string(),
            "wave \"0\" adds nobody: a wave is a count of at least 1 or a percentage from 1% to 100%"
        );
        assert_eq!(
            error("1,x").to_string(),
            "wave \"x\" is not a count (10) or a percentage (10%); expected a comma list of cumulative sizes, \
             each a count or a percentage, e.g. \"1,10%,100%\""
        );
    }

    #[test]
    fn values_are_bounded() {
        let many = vec!["1"; MAX_WAVES + 1].join(",");
        assert_eq!(
            many.parse::<WaveSizes>(),
            Err(WaveError::TooMany {
                count: MAX_WAVES + 1,
                max: MAX_WAVES
            })
        );
        assert!(vec!["1"; MAX_WAVES].join(",").parse::<WaveSizes>().is_ok());
        let long = "1".repeat(MAX_WAVES_VALUE_LEN + 1);
        assert_eq!(
            long.parse::<WaveSizes>(),
            Err(WaveError::TooLong {
                len: MAX_WAVES_VALUE_LEN + 1,
                max: MAX_WAVES_VALUE_LEN
            })
        );
        let message = format!("{}x", "9".repeat(200))
            .parse::<WaveSizes>()
            .unwrap_err()
            .to_string();
        assert!(message.len() < 250 && message.contains('…'), "{message}");
    }

    fn size() -> impl Strategy<Value = WaveSize> {
        prop_oneof![
            (1usize..1000).prop_map(WaveSize::Count),
            (1u8..=100).prop_map(WaveSize::Percent),
        ]
    }

    proptest! {
        #[test]
        fn boundaries_increase_and_end_with_everyone(
            sizes in proptest::collection::vec(size(), 1..8),
            dependents in 0usize..2000,
        ) {
            let w = WaveSizes { sizes };
            let b = w.boundaries(dependents);
            prop_assert!(b.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", b);
            prop_assert_eq!(b.last().copied(), (dependents > 0).then_some(dependents));
            if dependents >= 1 {
                prop_assert!(b[0] >= 1);
            }
            // Display parses back.
            prop_assert_eq!(w.to_string().parse::<WaveSizes>(), Ok(w));
        }

        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            if let Ok(w) = text.parse::<WaveSizes>() {
                let _ = w.boundaries(17);
            }
        }

        #[test]
        fn list_like_text_never_panics(text in "[0-9%, ]{0,40}") {
            if let Ok(w) = text.parse::<WaveSizes>() {
                prop_assert_eq!(w.boundaries(3).last().copied(), Some(3));
            }
        }
    }
}
