//! How long a bar is, and the name its table is kept under.

use std::str::FromStr;

use chrono::DateTime;

use crate::calendar::{NewYorkDay, SESSION_SECONDS};

const MS_PER_DAY: i64 = 86_400_000;
const HALF_HOUR_MS: i64 = 1_800_000;

/// How long a bar is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarLength {
    /// A fixed number of milliseconds (1s, 1m, 5m, 15m, 30m, 1h), aligned to
    /// the regular session's open.
    Fixed(i64),
    /// One trading day: the exchange's regular session (New York, 09:30–16:00).
    Day,
}

impl BarLength {
    /// The window `[start, end)` holding an instant (Unix milliseconds), or
    /// `None` when a daily bar has no session then. Intraday windows are
    /// aligned to the regular session's open (09:30 New York) as Yahoo and
    /// TradingView draw them, and never straddle the open or the close: the
    /// minutes before the open fall in windows counted back from it, those
    /// after the close in windows counted on from it.
    pub fn window(self, time_ms: i64) -> Option<(i64, i64)> {
        match self {
            // Lengths that divide half an hour fall on the session's grid
            // whatever the day: the epoch's grid is the same.
            BarLength::Fixed(len) if HALF_HOUR_MS % len == 0 => {
                let start = time_ms.div_euclid(len) * len;
                Some((start, start + len))
            }
            BarLength::Fixed(len) => {
                let day = NewYorkDay::of(time_ms)?;
                let (from, to, anchor) = if time_ms < day.open {
                    (day.midnight, day.open, day.open)
                } else if time_ms < day.close {
                    (day.open, day.close, day.open)
                } else {
                    (day.close, day.next_midnight, day.close)
                };
                let start = anchor + (time_ms - anchor).div_euclid(len) * len;
                Some((start.max(from), (start + len).min(to)))
            }
            BarLength::Day => {
                let day = NewYorkDay::of(time_ms)?;
                (day.trading && (day.open..day.close).contains(&time_ms)).then_some((day.open, day.close))
            }
        }
    }

    /// The name a bar of this length is stored under: `1m`, `5m`, `1d`.
    pub fn name(self) -> String {
        match self {
            BarLength::Day => "1d".into(),
            BarLength::Fixed(ms) if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
            BarLength::Fixed(ms) if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
            BarLength::Fixed(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
            BarLength::Fixed(ms) => format!("{ms}ms"),
        }
    }

    /// The window's length in milliseconds (a daily session's for `Day`).
    pub fn millis(self) -> i64 {
        match self {
            BarLength::Fixed(ms) => ms,
            BarLength::Day => SESSION_SECONDS * 1000,
        }
    }
}

impl FromStr for BarLength {
    type Err = String;

    /// `1s`, `1m`, `5m`, `15m`, `1h`, `1d`, or any whole number of seconds,
    /// minutes or hours that divides a day.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a bar length like 1s, 1m, 5m, 15m, 30m, 1h or 1d");
        if s == "1d" {
            return Ok(BarLength::Day);
        }
        let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let ms = match unit {
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        } * n;
        if ms <= 0 || MS_PER_DAY % ms != 0 {
            return Err(bad());
        }
        Ok(BarLength::Fixed(ms))
    }
}

/// The New York date of an instant within a regular session (a daily
/// window's start, or any of its ticks): the offset is 4 or 5 hours, and
/// 09:30–16:00 local never straddles a UTC midnight guessed 5 hours back.
pub fn session_date(time_ms: i64) -> Option<chrono::NaiveDate> {
    DateTime::from_timestamp_millis(time_ms - 5 * 3_600_000).map(|d| d.date_naive())
}

impl BarLength {
    /// The length of bars `ms` apart, when it is one a table can be named
    /// for (a whole number of seconds that divides a day).
    pub fn of_spacing(ms: i64) -> Option<BarLength> {
        (ms > 0 && ms % 1000 == 0 && MS_PER_DAY % ms == 0).then_some(BarLength::Fixed(ms))
    }

    /// True when a bar dated `ts` has this length's form: daily bars are
    /// dated by a day (`2023-04-03`), shorter ones by an instant.
    pub fn fits(self, ts: &crate::Ts) -> bool {
        ts.is_intraday() == matches!(self, BarLength::Fixed(_))
    }
}

impl std::fmt::Display for BarLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
