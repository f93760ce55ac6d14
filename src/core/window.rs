//! Reload windows (`reloader.stakater.com/reload-window`): when a workload may be rolled.
//!
//! Syntax of one window: `[DAYS ]HH:MM-HH:MM[ TIMEZONE]`, e.g. `Mon-Fri 02:00-04:00 Europe/Berlin`
//! or `22:00-06:00` (every day, UTC). Several windows are separated by `;`, each with its own days
//! and zone: `Mon-Fri 02:00-04:00 Europe/Berlin; Sat,Sun 00:00-24:00 UTC`. The value is open when
//! any of its windows is.
//!
//! - DAYS is a comma list of days (`Mon`…`Sun`, or the full English names, any case) and ranges
//!   `A-B`, which may wrap around the week (`Fri-Mon` is Fri, Sat, Sun, Mon). No DAYS means every
//!   day.
//! - The days name the day a window *starts*: `Fri 22:00-06:00` is open from Friday 22:00 to
//!   Saturday 06:00.
//! - An end at or before the start crosses midnight. `24:00` is accepted as an end (midnight at
//!   the end of the day, so `00:00-24:00` is a whole day). A start equal to the end (`02:00-02:00`)
//!   is an error: it could mean an empty window or a whole day.
//! - TIMEZONE is an IANA name resolved from the database bundled into the binary (the image has
//!   no `/usr/share/zoneinfo`); no zone means UTC.
//! - A window is open from its start, inclusive, to its end, exclusive.
//!
//! Windows are wall-clock times in their zone. Across daylight-saving changes a start or end that
//! falls in a gap (a local time that does not exist, e.g. 02:30 on the day Europe/Berlin springs
//! forward) resolves as jiff's `compatible` disambiguation does: moved forward by the length of
//! the gap (02:30 becomes 03:30 CEST). A start or end that falls in an overlap (a local time that
//! occurs twice, when clocks fall back) is its earlier occurrence. So on those days a window can
//! be an hour shorter or longer than its wall-clock length, and a window lying wholly in the gap
//! (`02:10-02:50` in Berlin) moves past it (03:10-03:50 CEST); one whose start is moved to or past
//! its end (`02:30-03:15`: 03:30 to 03:15) does not open that day.
//!
//! Pure: the current time is always a parameter.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use thiserror::Error;

use super::text::{quoted, truncate_chars};

/// Values longer than this are refused whole (a real schedule is a few dozen bytes).
pub const MAX_WINDOW_VALUE_LEN: usize = 256;
/// At most this many `;`-separated windows in one value.
pub const MAX_WINDOWS: usize = 16;
/// The syntax, as error messages show it.
pub const SYNTAX: &str = "[DAYS ]HH:MM-HH:MM[ TIMEZONE] separated by ';', e.g. \"Mon-Fri 02:00-04:00 Europe/Berlin\"";

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MINUTES_PER_DAY: u16 = 24 * 60;
/// Days before and after `now`'s local date whose occurrences [`ReloadWindow::state`] looks at:
/// the current occurrence starts at most a day (plus a DST shift) before `now`, and the next one
/// at most a week after, or two weeks when a DST gap swallows this week's.
const DAYS_BEFORE: i64 = 2;
const DAYS_AFTER: i64 = 15;

/// A parsed `reload-window` value: one or more windows, open when any of them is.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadWindow {
    windows: Vec<Window>,
}

/// One `[DAYS ]HH:MM-HH:MM[ TIMEZONE]` window.
#[derive(Clone, Debug, PartialEq)]
struct Window {
    days: Days,
    /// Minutes after local midnight, `0..1440`.
    start: u16,
    /// Minutes after local midnight, `0..=1440` (1440 is `24:00`); at or before `start` it is on
    /// the next day.
    end: u16,
    zone: TimeZone,
}

/// Days of the week as bits, Monday = bit 0. Never empty once parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Days(u8);

/// Whether a reload window is open at a given time, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Open now. `closes_at` is the end of the open stretch, windows that overlap or follow one
    /// another without a gap merged; for a schedule that never closes (`00:00-24:00`) it is the
    /// end of the last occurrence looked at, about two weeks ahead: check again then.
    Open { closes_at: Timestamp },
    /// Closed now; opens at `opens_at`.
    Closed { opens_at: Timestamp },
}

/// What is wrong with a `reload-window` value. Window texts are quoted at most
/// [`super::text::MAX_QUOTED`] characters long.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("the value is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("{count} windows; at most {max} are allowed")]
    TooMany { count: usize, max: usize },
    #[error("no window; expected {SYNTAX}")]
    Empty,
    #[error("an empty window between two ';'; expected {SYNTAX}")]
    EmptyWindow,
    #[error("window {window:?} has {parts} parts; expected {SYNTAX}")]
    Malformed { window: String, parts: usize },
    #[error(
        "window {window:?}: {day:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun) or a range of days (Mon-Fri); expected {SYNTAX}"
    )]
    BadDay { window: String, day: String },
    #[error(
        "window {window:?}: {times:?} is not a time range HH:MM-HH:MM (00:00 to 23:59, or 24:00 as an end); expected {SYNTAX}"
    )]
    BadTimes { window: String, times: String },
    #[error(
        "window {window:?}: start and end are both {time}: an empty window or a whole day? Use 00:00-24:00 for a whole day"
    )]
    SameStartAndEnd { window: String, time: String },
    #[error(
        "window {window:?}: {zone:?} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York); expected {SYNTAX}"
    )]
    UnknownZone { window: String, zone: String },
}

impl FromStr for ReloadWindow {
    type Err = WindowError;

    fn from_str(value: &str) -> Result<Self, WindowError> {
        if value.len() > MAX_WINDOW_VALUE_LEN {
            return Err(WindowError::TooLong {
                len: value.len(),
                max: MAX_WINDOW_VALUE_LEN,
            });
        }
        // A trailing `;` is forgiven; an empty window between two is not.
        let value = value.trim();
        let value = value.strip_suffix(';').unwrap_or(value);
        if value.trim().is_empty() {
            return Err(WindowError::Empty);
        }
        let count = value.split(';').count();
        if count > MAX_WINDOWS {
            return Err(WindowError::TooMany {
                count,
                max: MAX_WINDOWS,
            });
        }
        let windows = value.split(';').map(Window::parse).collect::<Result<_, _>>()?;
        Ok(Self { windows })
    }
}

impl Window {
    fn parse(text: &str) -> Result<Self, WindowError> {
        let text = text.trim();
        let window = quoted(text);
        let tight = tighten(text);
        let parts: Vec<&str> = tight.split_whitespace().collect();
        // DAYS never starts with a digit, the times always do, a zone never comes first.
        let (days, times, zone) = match parts[..] {
            [] => return Err(WindowError::EmptyWindow),
            [times] => (None, times, None),
            [first, second] if starts_with_digit(first) => (None, first, Some(second)),
            [days, times] => (Some(days), times, None),
            [days, times, zone] if !starts_with_digit(days) => (Some(days), times, Some(zone)),
            _ => {
                return Err(WindowError::Malformed {
                    window,
                    parts: parts.len(),
                });
            }
        };
        let days = match days {
            None => Days::ALL,
            Some(days) => Days::parse(days).map_err(|day| WindowError::BadDay {
                window: window.clone(),
                day: quoted_part(day),
            })?,
        };
        let bad_times = || WindowError::BadTimes {
            window: window.clone(),
            times: quoted_part(times),
        };
        let (start, end) = times.split_once('-').ok_or_else(bad_times)?;
        let start = parse_time(start)
            .filter(|m| *m < MINUTES_PER_DAY)
            .ok_or_else(bad_times)?;
        let end = parse_time(end).ok_or_else(bad_times)?;
        if start == end {
            return Err(WindowError::SameStartAndEnd {
                window,
                time: format_minutes(start),
            });
        }
        let zone = match zone {
            None => TimeZone::UTC,
            Some(zone) => TimeZone::get(zone).map_err(|_| WindowError::UnknownZone {
                window: window.clone(),
                zone: quoted_part(zone),
            })?,
        };
        Ok(Self { days, start, end, zone })
    }

    /// The occurrence that starts on local `date`, if the window runs that day and the
    /// occurrence is not empty (see the module's note on DST gaps).
    fn occurrence(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.days.contains(date.weekday()) {
            return None;
        }
        let start = self.local(date, self.start)?;
        let end_date = if self.end <= self.start {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = self.local(end_date, self.end)?;
        (start < end).then_some((start, end))
    }

    /// `minutes` after midnight of local `date` (1440: the next midnight), as an instant;
    /// gaps and overlaps resolved as jiff's `compatible` does.
    fn local(&self, date: Date, minutes: u16) -> Option<Timestamp> {
        let (date, minutes) = if minutes >= MINUTES_PER_DAY {
            (date.tomorrow().ok()?, minutes - MINUTES_PER_DAY)
        } else {
            (date, minutes)
        };
        // Both below 24 and 60: the conversions cannot fail.
        let hour = i8::try_from(minutes / 60).ok()?;
        let minute = i8::try_from(minutes % 60).ok()?;
        let time = Time::new(hour, minute, 0, 0).ok()?;
        let at = DateTime::from_parts(date, time);
        self.zone.to_ambiguous_timestamp(at).compatible().ok()
    }

    /// Every occurrence starting on a local date from [`DAYS_BEFORE`] days before `now`'s to
    /// [`DAYS_AFTER`] days after.
    fn occurrences(&self, now: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let today = now.to_zoned(self.zone.clone()).date();
        (-DAYS_BEFORE..=DAYS_AFTER)
            .filter_map(move |offset| today.checked_add(jiff::Span::new().days(offset)).ok())
            .filter_map(|date| self.occurrence(date))
    }
}

/// `text` with whitespace runs made one space, and none next to `,` or `-`, so `Sat, Sun` and
/// `02:00 - 04:00` read as `Sat,Sun` and `02:00-04:00`. IANA names have no spaces to lose.
fn tighten(text: &str) -> String {
    let mut tight = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !tight.is_empty();
            continue;
        }
        if space && !matches!(c, ',' | '-') && !tight.ends_with([',', '-']) {
            tight.push(' ');
        }
        space = false;
        tight.push(c);
    }
    tight
}

/// A part of a window in a message: shorter than the window it is quoted with.
fn quoted_part(part: &str) -> String {
    truncate_chars(part, 32)
}

fn starts_with_digit(text: &str) -> bool {
    text.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// `HH:MM` (or `H:MM`) as minutes after midnight, `00:00` to `24:00`.
fn parse_time(text: &str) -> Option<u16> {
    let (hour, minute) = text.split_once(':')?;
    let digits = |s: &str, max_len| !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hour, 2) || minute.len() != 2 || !digits(minute, 2) {
        return None;
    }
    let (hour, minute): (u16, u16) = (hour.parse().ok()?, minute.parse().ok()?);
    let minutes = hour * 60 + minute;
    (minute < 60 && minutes <= MINUTES_PER_DAY).then_some(minutes)
}

fn format_minutes(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl Days {
    const ALL: Days = Days(0b111_1111);

    fn bit(day: usize) -> u8 {
        1 << (day % 7)
    }

    fn contains(self, day: Weekday) -> bool {
        let index = usize::try_from(day.to_monday_zero_offset()).unwrap_or(0);
        self.0 & Self::bit(index) != 0
    }

    /// A comma list of days and wrapping ranges; the item that is not one on error.
    fn parse(text: &str) -> Result<Days, &str> {
        let mut days = 0u8;
        for item in text.split(',') {
            let (first, last) = match item.split_once('-') {
                Some((first, last)) => (day_index(first).ok_or(item)?, day_index(last).ok_or(item)?),
                None => {
                    let day = day_index(item).ok_or(item)?;
                    (day, day)
                }
            };
            let len = (last + 7 - first) % 7 + 1;
            for day in first..first + len {
                days |= Self::bit(day);
            }
        }
        Ok(Days(days))
    }
}

fn day_index(name: &str) -> Option<usize> {
    let is = |names: &[&str; 7]| names.iter().position(|n| n.eq_ignore_ascii_case(name));
    is(&DAY_NAMES).or_else(|| is(&FULL_DAY_NAMES))
}

impl fmt::Display for Days {
    /// Runs of consecutive days, around the week, in order of their first day: `Mon-Fri`,
    /// `Sat,Sun`, `Mon,Wed-Fri`, `Fri-Mon`. Every day prints as nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has = |day: usize| self.0 & Self::bit(day) != 0;
        let mut items = Vec::new();
        for first in (0..7).filter(|&d| has(d) && !has(d + 6)) {
            let len = (0..7).take_while(|&i| has(first + i)).count();
            let last = (first + len - 1) % 7;
            items.push(match len {
                1 => DAY_NAMES[first].to_string(),
                2 => format!("{},{}", DAY_NAMES[first], DAY_NAMES[last]),
                _ => format!("{}-{}", DAY_NAMES[first], DAY_NAMES[last]),
            });
        }
        f.write_str(&items.join(","))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days != Days::ALL {
            write!(f, "{} ", self.days)?;
        }
        write!(
            f,
            "{}-{} {}",
            format_minutes(self.start),
            format_minutes(self.end),
            self.zone.iana_name().unwrap_or("UTC")
        )
    }
}

impl fmt::Display for ReloadWindow {
    /// The normalised text: days as runs, times as `HH:MM`, the zone always named, windows
    /// separated by `"; "`. It parses back to an equal value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let windows: Vec<String> = self.windows.iter().map(Window::to_string).collect();
        f.write_str(&windows.join("; "))
    }
}

impl ReloadWindow {
    /// Whether the windows are open at `now`; when open, until when (overlapping and adjoining
    /// occurrences of all the windows merged), when closed, when the next one opens.
    pub fn state(&self, now: Timestamp) -> WindowState {
        let mut occurrences: Vec<(Timestamp, Timestamp)> =
            self.windows.iter().flat_map(|w| w.occurrences(now)).collect();
        occurrences.sort();
        let mut closes_at: Option<Timestamp> = None;
        for &(start, end) in &occurrences {
            match closes_at {
                // Not open yet: this occurrence opens the stretch if it holds `now`.
                None if start <= now && now < end => closes_at = Some(end),
                None => {}
                // Open: an occurrence starting before the stretch ends extends it.
                Some(until) if start <= until => closes_at = Some(until.max(end)),
                Some(_) => break,
            }
        }
        if let Some(closes_at) = closes_at {
            return WindowState::Open { closes_at };
        }
        let opens_at = occurrences
            .iter()
            .map(|(start, _)| *start)
            .find(|start| *start > now)
            // Only at the very end of jiff's range: nothing opens within it.
            .unwrap_or(Timestamp::MAX);
        WindowState::Closed { opens_at }
    }

    /// `at` for people, in the zone of the window that starts then (the first window's when none
    /// does): `Tue 02:00 CET`, as in "held until Tue 02:00 CET".
    pub fn describe(&self, at: Timestamp) -> String {
        let zone = self
            .windows
            .iter()
            .find(|w| w.occurrences(at).any(|(start, _)| start == at))
            .or(self.windows.first())
            .map_or(TimeZone::UTC, |w| w.zone.clone());
        let local = at.to_zoned(zone);
        jiff::fmt::strtime::format("%a %H:%M %Z", &local).unwrap_or_else(|_| local.to_string())
    }

    /// How many `;`-separated windows the value has.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Never true for a parsed value; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window(text: &str) -> ReloadWindow {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// An instant given as RFC 3339 / Temporal text (`2025-01-06T02:00:00Z`, or with an offset).
    fn at(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn open_until(text: &str) -> WindowState {
        WindowState::Open { closes_at: at(text) }
    }

    /// `w`'s state at each instant is the one given.
    fn check(w: &ReloadWindow, cases: &[(&str, WindowState)]) {
        for (now, want) in cases {
            assert_eq!(w.state(at(now)), *want, "{w} at {now}");
        }
    }

    fn is_open(state: WindowState) -> bool {
        matches!(state, WindowState::Open { .. })
    }

    fn closed_until(text: &str) -> WindowState {
        WindowState::Closed { opens_at: at(text) }
    }

    // 2025-01-06 is a Monday.

    #[test]
    fn a_window_crossing_midnight_runs_into_the_next_day() {
        let w = window("22:00-06:00");
        assert_eq!(w.to_string(), "22:00-06:00 UTC");
        check(
            &w,
            &[
                ("2025-01-06T23:00:00Z", open_until("2025-01-07T06:00:00Z")),
                ("2025-01-07T05:59:59Z", open_until("2025-01-07T06:00:00Z")),
                ("2025-01-07T06:00:00Z", closed_until("2025-01-07T22:00:00Z")),
                ("2025-01-07T12:00:00Z", closed_until("2025-01-07T22:00:00Z")),
            ],
        );
    }

    #[test]
    fn boundaries_start_inclusive_end_exclusive() {
        let w = window("Mon-Fri 02:00-04:00");
        check(
            &w,
            &[
                ("2025-01-06T01:59:59Z", closed_until("2025-01-06T02:00:00Z")),
                ("2025-01-06T02:00:00Z", open_until("2025-01-06T04:00:00Z")),
                ("2025-01-06T03:59:59.999Z", open_until("2025-01-06T04:00:00Z")),
                ("2025-01-06T04:00:00Z", closed_until("2025-01-07T02:00:00Z")),
            ],
        );
    }

    #[test]
    fn the_next_opening_from_inside_and_outside() {
        let w = window("Mon-Fri 02:00-04:00 UTC");
        // Friday after the window: next Monday.
        check(&w, &[("2025-01-10T05:00:00Z", closed_until("2025-01-13T02:00:00Z"))]);
        // Saturday and Sunday: Monday too.
        check(
            &w,
            &[
                ("2025-01-11T03:00:00Z", closed_until("2025-01-13T02:00:00Z")),
                ("2025-01-12T23:59:00Z", closed_until("2025-01-13T02:00:00Z")),
            ],
        );
        // Inside: when it closes; just after it closes: the next one.
        check(
            &w,
            &[
                ("2025-01-10T03:00:00Z", open_until("2025-01-10T04:00:00Z")),
                ("2025-01-10T04:00:00Z", closed_until("2025-01-13T02:00:00Z")),
            ],
        );
        // A window on one day a week, just missed: a week later.
        let w = window("Wed 10:00-11:00");
        check(&w, &[("2025-01-08T11:00:00Z", closed_until("2025-01-15T10:00:00Z"))]);
    }

    #[test]
    fn days_are_lists_and_wrapping_ranges() {
        let days = |text: &str| window(&format!("{text} 01:00-02:00")).windows[0].days;
        assert_eq!(days("Mon-Fri"), Days(0b001_1111));
        assert_eq!(days("Sat,Sun"), Days(0b110_0000));
        assert_eq!(days("Mon,Wed-Fri"), Days(0b001_1101));
        assert_eq!(days("Fri-Mon"), Days(0b111_0001));
        assert_eq!(days("sun-tue"), Days(0b100_0011));
        assert_eq!(days("Tuesday"), Days(0b000_0010));
        assert_eq!(days("Wed-Wed"), Days(0b000_0100));
        assert_eq!(days("Mon-Sun"), Days::ALL);
        // Normalised: runs, in order of their first day; every day is no days at all.
        for (text, normal) in [
            ("Mon-Fri", "Mon-Fri 01:00-02:00 UTC"),
            ("Sun,Sat", "Sat,Sun 01:00-02:00 UTC"),
            ("Mon,Wed,Thu,Fri", "Mon,Wed-Fri 01:00-02:00 UTC"),
            ("Fri-Mon", "Fri-Mon 01:00-02:00 UTC"),
            ("Mon,Fri-Sun", "Fri-Mon 01:00-02:00 UTC"),
            ("Tue,Thu,Sat", "Tue,Thu,Sat 01:00-02:00 UTC"),
            ("Mon-Sun", "01:00-02:00 UTC"),
            ("Sat-Fri", "01:00-02:00 UTC"),
        ] {
            assert_eq!(window(&format!("{text} 01:00-02:00")).to_string(), normal, "{text}");
        }
        // A wrapping range over the weekend: open on Sunday, closed on Tuesday.
        let w = window("Fri-Mon 01:00-02:00");
        assert!(matches!(w.state(at("2025-01-12T01:30:00Z")), WindowState::Open { .. }));
        check(&w, &[("2025-01-07T01:30:00Z", closed_until("2025-01-10T01:00:00Z"))]);
    }

    #[test]
    fn days_name_the_day_a_window_starts() {
        let w = window("Fri 22:00-06:00");
        // Friday night and Saturday morning are open; Saturday night is not.
        check(
            &w,
            &[
                ("2025-01-10T23:00:00Z", open_until("2025-01-11T06:00:00Z")),
                ("2025-01-11T05:00:00Z", open_until("2025-01-11T06:00:00Z")),
                ("2025-01-11T23:00:00Z", closed_until("2025-01-17T22:00:00Z")),
            ],
        );
        // Friday morning is the end of nothing: Thursday has no window.
        check(&w, &[("2025-01-10T05:00:00Z", closed_until("2025-01-10T22:00:00Z"))]);
    }

    #[test]
    fn twenty_four_hundred_ends_at_midnight() {
        let w = window("Sat 00:00-24:00");
        assert_eq!(w.to_string(), "Sat 00:00-24:00 UTC");
        check(
            &w,
            &[
                ("2025-01-11T23:59:59Z", open_until("2025-01-12T00:00:00Z")),
                ("2025-01-12T00:00:00Z", closed_until("2025-01-18T00:00:00Z")),
            ],
        );
        let w = window("22:00-24:00");
        check(&w, &[("2025-01-06T23:00:00Z", open_until("2025-01-07T00:00:00Z"))]);
        // Every day, all day: open, and "closes" at the end of what was looked at.
        let always = window("00:00-24:00");
        let now = at("2025-01-06T12:00:00Z");
        match always.state(now) {
            WindowState::Open { closes_at } => assert!(closes_at > now + jiff::SignedDuration::from_hours(24 * 14)),
            closed => panic!("{closed:?}"),
        }
    }

    #[test]
    fn zones_convert_in_winter_and_summer() {
        let w = window("Mon-Fri 02:00-04:00 Europe/Berlin");
        assert_eq!(w.to_string(), "Mon-Fri 02:00-04:00 Europe/Berlin");
        // Winter: CET, UTC+1.
        check(
            &w,
            &[
                ("2025-01-06T01:00:00Z", open_until("2025-01-06T03:00:00Z")),
                ("2025-01-06T00:59:00Z", closed_until("2025-01-06T01:00:00Z")),
            ],
        );
        // Summer: CEST, UTC+2. 2025-07-07 is a Monday.
        check(
            &w,
            &[
                ("2025-07-07T00:00:00Z", open_until("2025-07-07T02:00:00Z")),
                ("2025-07-06T23:59:00Z", closed_until("2025-07-07T00:00:00Z")),
            ],
        );
        // The local day decides: Monday 00:30 in Berlin is still Sunday in UTC.
        let w = window("Mon 00:00-01:00 Europe/Berlin");
        check(&w, &[("2025-01-05T23:30:00Z", open_until("2025-01-06T00:00:00Z"))]);
        // Names resolve from the bundled database, in any case, and print canonically.
        assert_eq!(
            window("22:00-06:00 europe/berlin").to_string(),
            "22:00-06:00 Europe/Berlin"
        );
        assert_eq!(window("22:00-06:00 utc").to_string(), "22:00-06:00 UTC");
    }

    #[test]
    fn a_dst_gap_moves_times_forward() {
        // Europe/Berlin springs forward on Sunday 2025-03-30 at 02:00 CET (01:00Z) to 03:00 CEST.
        // 02:30 does not exist: it resolves to 03:30 CEST (01:30Z); the end 05:00 CEST is 03:00Z.
        let w = window("Sun 02:30-05:00 Europe/Berlin");
        check(
            &w,
            &[
                ("2025-03-30T01:00:00Z", closed_until("2025-03-30T01:30:00Z")),
                ("2025-03-30T01:30:00Z", open_until("2025-03-30T03:00:00Z")),
            ],
        );
        // A window wholly in the gap moves past it, keeping its length.
        let w = window("Sun 02:10-02:50 Europe/Berlin");
        check(
            &w,
            &[
                ("2025-03-30T01:00:00Z", closed_until("2025-03-30T01:10:00Z")),
                ("2025-03-30T01:10:00Z", open_until("2025-03-30T01:50:00Z")),
            ],
        );
        // One whose start moves past its end (03:30 to 03:15) does not open that day.
        let w = window("Sun 02:30-03:15 Europe/Berlin");
        check(&w, &[("2025-03-30T00:00:00Z", closed_until("2025-04-06T00:30:00Z"))]);
    }

    #[test]
    fn a_dst_overlap_takes_the_earlier_time() {
        // Europe/Berlin falls back on Sunday 2025-10-26 at 03:00 CEST (01:00Z) to 02:00 CET:
        // 02:30 happens at 00:30Z and again at 01:30Z; the window starts at the first.
        let w = window("Sun 02:30-04:00 Europe/Berlin");
        check(
            &w,
            &[
                ("2025-10-26T00:30:00Z", open_until("2025-10-26T03:00:00Z")),
                ("2025-10-26T00:29:00Z", closed_until("2025-10-26T00:30:00Z")),
            ],
        );
        // An end in the overlap is its first occurrence too: 02:30 CEST, so 1.5 hours.
        let w = window("Sun 01:00-02:30 Europe/Berlin");
        check(
            &w,
            &[
                ("2025-10-25T23:00:00Z", open_until("2025-10-26T00:30:00Z")),
                ("2025-10-26T01:00:00Z", closed_until("2025-11-02T00:00:00Z")),
            ],
        );
    }

    #[test]
    fn several_windows_each_with_its_zone() {
        let w = window("Mon-Fri 02:00-04:00 Europe/Berlin; Sat,Sun 00:00-23:59 UTC");
        assert_eq!(w.len(), 2);
        assert_eq!(
            w.to_string(),
            "Mon-Fri 02:00-04:00 Europe/Berlin; Sat,Sun 00:00-23:59 UTC"
        );
        check(
            &w,
            &[
                ("2025-01-06T01:30:00Z", open_until("2025-01-06T03:00:00Z")),
                ("2025-01-11T12:00:00Z", open_until("2025-01-11T23:59:00Z")),
            ],
        );
        // Friday after the Berlin window: Saturday 00:00 UTC is next.
        check(&w, &[("2025-01-10T12:00:00Z", closed_until("2025-01-11T00:00:00Z"))]);
        // Sunday 23:59 UTC: the Berlin window opens at 01:00Z on Monday.
        check(&w, &[("2025-01-12T23:59:00Z", closed_until("2025-01-13T01:00:00Z"))]);
    }

    #[test]
    fn overlapping_and_adjoining_windows_merge() {
        let w = window("01:00-03:00; 02:00-05:00; 05:00-06:00; 07:00-08:00");
        check(
            &w,
            &[
                ("2025-01-06T01:30:00Z", open_until("2025-01-06T06:00:00Z")),
                ("2025-01-06T02:30:00Z", open_until("2025-01-06T06:00:00Z")),
                ("2025-01-06T06:00:00Z", closed_until("2025-01-06T07:00:00Z")),
            ],
        );
        // A window inside another does not shorten it.
        let w = window("01:00-05:00; 02:00-03:00");
        check(&w, &[("2025-01-06T02:30:00Z", open_until("2025-01-06T05:00:00Z"))]);
        // Consecutive nights chained through midnight.
        let w = window("Mon 12:00-24:00; Tue 00:00-06:00");
        check(&w, &[("2025-01-06T13:00:00Z", open_until("2025-01-07T06:00:00Z"))]);
    }

    #[test]
    fn openings_are_described_in_the_window_zone() {
        let w = window("Tue 02:00-04:00 Europe/Berlin");
        let WindowState::Closed { opens_at } = w.state(at("2025-01-06T12:00:00Z")) else {
            panic!("open")
        };
        assert_eq!(w.describe(opens_at), "Tue 02:00 CET");
        let w = window("Sat 00:00-01:00 UTC; Tue 02:00-04:00 America/New_York");
        assert_eq!(w.describe(at("2025-07-08T06:00:00Z")), "Tue 02:00 EDT");
        assert_eq!(w.describe(at("2025-01-11T00:00:00Z")), "Sat 00:00 UTC");
    }

    #[test]
    fn bad_values_say_what_is_wrong_and_show_the_syntax() {
        let error = |text: &str| text.parse::<ReloadWindow>().unwrap_err();
        assert_eq!(
            error("Mon-Fri 02:00-02:00"),
            WindowError::SameStartAndEnd {
                window: "Mon-Fri 02:00-02:00".into(),
                time: "02:00".into()
            }
        );
        assert!(matches!(error("Mon-Fry 02:00-04:00"), WindowError::BadDay { day, .. } if day == "Mon-Fry"));
        assert!(matches!(error("Mon,,Tue 02:00-04:00"), WindowError::BadDay { day, .. } if day.is_empty()));
        assert!(
            matches!(error("02:00-04:00 Mars/Olympus"), WindowError::UnknownZone { zone, .. } if zone == "Mars/Olympus")
        );
        for times in [
            "2-4",
            "02:00",
            "25:00-04:00",
            "02:60-04:00",
            "24:00-02:00",
            "02:00-24:01",
            "02:0-04:00",
            "-1:00-02:00",
        ] {
            let e = error(times);
            assert!(
                matches!(
                    e,
                    WindowError::BadTimes { .. } | WindowError::Malformed { .. } | WindowError::BadDay { .. }
                ),
                "{times}: {e:?}"
            );
        }
        assert!(matches!(
            error("Mon 02:00-04:00 UTC extra"),
            WindowError::Malformed { parts: 4, .. }
        ));
        assert_eq!(error(""), WindowError::Empty);
        assert_eq!(error(" ; "), WindowError::Empty);
        assert_eq!(error("01:00-02:00;;03:00-04:00"), WindowError::EmptyWindow);
        assert!(matches!(
            error("01:00-02:00 UTC Mon"),
            WindowError::Malformed { parts: 3, .. }
        ));
        let message = error("Mon-Fri 2am-4am").to_string();
        assert_eq!(
            message,
            "window \"Mon-Fri 2am-4am\": \"2am-4am\" is not a time range HH:MM-HH:MM (00:00 to 23:59, or 24:00 as an end); \
             expected [DAYS ]HH:MM-HH:MM[ TIMEZONE] separated by ';', e.g. \"Mon-Fri 02:00-04:00 Europe/Berlin\""
        );
        assert!(
            error("Mon 01:00-01:00")
                .to_string()
                .contains("Use 00:00-24:00 for a whole day")
        );
        // Spaces around `,` and `-` are forgiven too.
        assert_eq!(
            window(" Sat, Sun  00:00 - 01:00\tUTC ").to_string(),
            "Sat,Sun 00:00-01:00 UTC"
        );
        assert_eq!(window("Mon - Fri 02:00-04:00").to_string(), "Mon-Fri 02:00-04:00 UTC");
        // A trailing separator is forgiven.
        assert_eq!(window("01:00-02:00;").len(), 1);
        assert_eq!(window("7:05-9:00").to_string(), "07:05-09:00 UTC");
    }

    #[test]
    fn values_are_bounded() {
        let long = format!("01:00-02:00 {}", "x".repeat(MAX_WINDOW_VALUE_LEN));
        assert_eq!(
            long.parse::<ReloadWindow>(),
            Err(WindowError::TooLong {
                len: long.len(),
                max: MAX_WINDOW_VALUE_LEN
            })
        );
        let many = vec!["1:00-2:00"; MAX_WINDOWS + 1].join(";");
        assert_eq!(
            many.parse::<ReloadWindow>(),
            Err(WindowError::TooMany {
                count: MAX_WINDOWS + 1,
                max: MAX_WINDOWS
            })
        );
        assert_eq!(
            vec!["1:00-2:00"; MAX_WINDOWS]
                .join(";")
                .parse::<ReloadWindow>()
                .map(|w| w.len()),
            Ok(MAX_WINDOWS)
        );
        // The message quotes little of a long window.
        let long_zone = format!("01:00-02:00 {}", "Z".repeat(200));
        let message = long_zone.parse::<ReloadWindow>().unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains('…'), "{message}");
    }

    #[test]
    fn state_holds_at_the_ends_of_time() {
        let w = window("Mon 01:00-02:00 Europe/Berlin");
        for now in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
            let _ = w.state(now);
        }
    }

    fn valid_window() -> impl Strategy<Value = String> {
        let days = proptest::option::of(proptest::collection::vec(
            (0usize..7, 0usize..7, any::<bool>()).prop_map(|(a, b, range)| {
                if range {
                    format!("{}-{}", DAY_NAMES[a], DAY_NAMES[b])
                } else {
                    DAY_NAMES[a].to_string()
                }
            }),
            1..4,
        ));
        let zone = prop::sample::select(vec![
            "",
            " UTC",
            " Europe/Berlin",
            " America/New_York",
            " Australia/Lord_Howe",
        ]);
        (days, 0u16..1440, 1u16..=1440, zone).prop_filter_map("start == end", |(days, start, end, zone)| {
            (start != end).then(|| {
                let days = days.map(|d| format!("{} ", d.join(","))).unwrap_or_default();
                format!("{days}{}-{}{zone}", format_minutes(start), format_minutes(end))
            })
        })
    }

    proptest! {
        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            if let Ok(w) = text.parse::<ReloadWindow>() {
                let _ = w.state(Timestamp::UNIX_EPOCH);
            }
        }

        #[test]
        fn window_like_text_never_panics(text in "([A-Za-z,-]{0,12} )?[0-9:]{0,6}-[0-9:]{0,6}( [A-Za-z/_]{0,20})?(;.{0,20})?") {
            let _ = text.parse::<ReloadWindow>();
        }

        #[test]
        fn display_parses_back_and_state_is_consistent(
            windows in proptest::collection::vec(valid_window(), 1..4),
            seconds in 1_500_000_000i64..2_000_000_000,
        ) {
            let value = windows.join("; ");
            let w: ReloadWindow = value.parse().map_err(|e| TestCaseError::fail(format!("{value}: {e}")))?;
            let normal = w.to_string();
            let reparsed = normal.parse::<ReloadWindow>();
            prop_assert_eq!(reparsed.as_ref(), Ok(&w), "{} -> {}", value, normal);
            let now = Timestamp::from_second(seconds).map_err(|e| TestCaseError::fail(e.to_string()))?;
            match w.state(now) {
                WindowState::Open { closes_at } => {
                    prop_assert!(closes_at > now);
                    // Just before it closes it is still open, at the close it is closed.
                    let before = closes_at - jiff::SignedDuration::from_secs(1);
                    prop_assert!(is_open(w.state(before.max(now))));
                }
                WindowState::Closed { opens_at } => {
                    prop_assert!(opens_at > now);
                    prop_assert!(opens_at < now + jiff::SignedDuration::from_hours(24 * 15));
                    prop_assert!(is_open(w.state(opens_at)));
                    let before = opens_at - jiff::SignedDuration::from_secs(1);
                    prop_assert!(!is_open(w.state(before.max(now))));
                }
            }
        }
    }
}
