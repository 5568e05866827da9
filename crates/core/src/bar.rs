use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// When a bar happened: a trading date (daily bars) or an instant (intraday bars).
///
/// Its text form is the store's sort key, so it must sort chronologically as a
/// string: `2023-04-03` for dates, `2023-04-03T14:30:00Z` (always UTC, `Z`) for
/// instants. It orders as that text does: by date, a day before its instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ts {
    /// A trading day (daily bars).
    Date(NaiveDate),
    /// An instant in UTC (intraday bars).
    Instant(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable date {0:?}: expected YYYY-MM-DD or an RFC 3339 instant")]
/// A date or time that cannot be read, with why.
pub struct TsError(pub String);

impl Ts {
    /// The trading date the bar belongs to (UTC date for instants).
    pub fn date(&self) -> NaiveDate {
        match self {
            Ts::Date(d) => *d,
            Ts::Instant(t) => t.date_naive(),
        }
    }

    /// True for an instant (intraday bar), false for a trading day.
    pub fn is_intraday(&self) -> bool {
        matches!(self, Ts::Instant(_))
    }
}

impl Ord for Ts {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |ts: &Ts| match ts {
            Ts::Date(d) => (*d, None),
            Ts::Instant(t) => (t.date_naive(), Some(*t)),
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Ts {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Ts {
    type Err = TsError;

    /// Accepts `2023-04-03`, RFC 3339 (`2023-04-03T14:30:00Z`, any offset), and the
    /// space-separated form pandas writes (`2023-04-03 14:30:00`, read as UTC, or
    /// with an offset such as `-04:00`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || TsError(s.to_string());
        if t.len() == 10 {
            return NaiveDate::parse_from_str(t, "%Y-%m-%d").map(Ts::Date).map_err(|_| err());
        }
        if t.len() < 19 {
            return Err(err());
        }
        // Normalise the date/time separator so one set of formats covers both.
        let mut norm = t.to_string();
        if norm.as_bytes()[10] == b' ' {
            norm.replace_range(10..11, "T");
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(&norm) {
            return Ok(Ts::Instant(dt.with_timezone(&Utc)));
        }
        if let Ok(dt) = DateTime::parse_from_str(&norm, "%Y-%m-%dT%H:%M:%S%.f%#z") {
            return Ok(Ts::Instant(dt.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(&norm, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|n| Ts::Instant(n.and_utc()))
            .map_err(|_| err())
    }
}

impl fmt::Display for Ts {
    /// `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SSZ` with a fraction when there is
    /// one. Written digit by digit for years 0 to 9999: this runs for every bar
    /// encoded, stored and indexed, and `write!` with padding costs several
    /// times more.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let date = self.date();
        let whole_seconds = match self {
            Ts::Date(_) => true,
            Ts::Instant(t) => t.timestamp_subsec_nanos() == 0,
        };
        if !(0..=9999).contains(&date.year()) || !whole_seconds {
            return match self {
                Ts::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
                Ts::Instant(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            };
        }
        let mut text = *b"0000-00-00T00:00:00Z";
        put_digits(&mut text[0..4], date.year() as u32);
        put_digits(&mut text[5..7], date.month());
        put_digits(&mut text[8..10], date.day());
        let len = match self {
            Ts::Date(_) => 10,
            Ts::Instant(t) => {
                put_digits(&mut text[11..13], t.hour());
                put_digits(&mut text[14..16], t.minute());
                put_digits(&mut text[17..19], t.second());
                20
            }
        };
        f.write_str(std::str::from_utf8(&text[..len]).expect("ASCII digits"))
    }
}

/// `value`'s last `out.len()` decimal digits, zero-padded.
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// One OHLCV bar. Identity is `(company, ts)`: storing the same identity twice
/// leaves one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Ticker symbol (`NVDA`).
    pub symbol: String,
    /// Company name (`NVIDIA`): with the time, the identity of a bar.
    pub company: String,
    /// When: a trading day or an instant.
    pub ts: Ts,
    /// Opening price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Closing price.
    pub close: f64,
    /// Shares traded.
    pub volume: f64,
    /// Volume-weighted average price of the trades in the bar (Σ price ×
    /// size / Σ size), for bars made from trades; None where unknown.
    pub vwap: Option<f64>,
    /// Trades (ticks) in the bar, for bars made from trades; None where unknown.
    pub trades: Option<u64>,
}

/// An inclusive range of bar times as the stores compare them: on the text form
/// of [`Ts`]. A date-only upper bound takes in every instant of that day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateRange {
    /// First time, inclusive (None: from the start).
    pub from: Option<Ts>,
    /// Last time, inclusive; a date takes in its whole day (None: to the end).
    pub to: Option<Ts>,
}

impl DateRange {
    /// A range between two optional bounds.
    pub fn new(from: Option<Ts>, to: Option<Ts>) -> Self {
        DateRange { from, to }
    }

    /// A range whose start is not after its end; otherwise a sentence saying so.
    pub fn checked(from: Option<Ts>, to: Option<Ts>) -> Result<Self, String> {
        let range = DateRange { from, to };
        match (from, to) {
            (Some(f), Some(t)) if range.lower() > range.upper() => Err(format!("from {f} is after to {t}")),
            _ => Ok(range),
        }
    }

    /// Lowest key in range, inclusive (never empty: DynamoDB refuses an empty
    /// key value).
    pub fn lower(&self) -> String {
        self.from.map(|t| t.to_string()).unwrap_or_else(|| "0000".to_string())
    }

    /// Highest key in range, inclusive. `2023-04-05` becomes `2023-04-05T99`, which
    /// sorts after every `2023-04-05T..Z` instant and before `2023-04-06`.
    pub fn upper(&self) -> String {
        match self.to {
            None => "9999-12-31T99".to_string(),
            Some(Ts::Date(d)) => format!("{}T99", d.format("%Y-%m-%d")),
            Some(t @ Ts::Instant(_)) => t.to_string(),
        }
    }

    /// Whether a stored key falls in this range.
    pub fn contains(&self, key: &str) -> bool {
        key >= self.lower().as_str() && key <= self.upper().as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates and instants order as their text does in the stores' sort keys.
    #[test]
    fn times_order_as_their_text() {
        let mut times: Vec<Ts> =
            ["2024-01-04", "2024-01-03T14:30:00Z", "2024-01-03", "2024-01-02T23:59:59Z", "2024-01-03T09:00:00Z"]
                .iter()
                .map(|t| t.parse().unwrap())
                .collect();
        times.sort();
        let mut texts: Vec<String> = times.iter().map(Ts::to_string).collect();
        let in_order = texts.clone();
        texts.sort();
        assert_eq!(in_order, texts);
    }

    #[test]
    fn parses_and_prints_every_accepted_form() {
        let cases = [
            ("2023-04-03", "2023-04-03"),
            ("2023-04-03T14:30:00Z", "2023-04-03T14:30:00Z"),
            ("2023-04-03 14:30:00", "2023-04-03T14:30:00Z"),
            ("2023-04-03T10:30:00-04:00", "2023-04-03T14:30:00Z"),
            ("2023-04-03 10:30:00-04:00", "2023-04-03T14:30:00Z"),
            ("2023-04-03T14:30:00.250Z", "2023-04-03T14:30:00.250Z"),
            (" 2023-04-03 ", "2023-04-03"),
        ];
        for (input, want) in cases {
            let ts: Ts = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ts.to_string(), want, "{input}");
            assert_eq!(ts.to_string().parse::<Ts>().unwrap(), ts);
        }
    }

    #[test]
    fn text_is_chronos_rfc_3339() {
        let start = NaiveDate::from_ymd_opt(-3, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        // Every ~38 days and ~7 hours from year -3 to beyond 10000, with seconds
        // and the odd fraction.
        for i in 0..100_000i64 {
            let t = start + chrono::Duration::seconds(i * 3_300_007) + chrono::Duration::milliseconds(i % 7 * 125);
            let by_chrono = t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(Ts::Instant(t).to_string(), by_chrono);
            assert_eq!(Ts::Date(t.date_naive()).to_string(), t.date_naive().format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn rejects_nonsense_dates() {
        for bad in ["", "2023-13-01", "2023-02-30", "04/03/2023", "yesterday", "2023-04-03T25:00:00Z"] {
            assert!(bad.parse::<Ts>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a: Ts = "2023-04-03".parse().unwrap();
        let b: Ts = "2023-04-03T14:30:00Z".parse().unwrap();
        let c: Ts = "2023-04-04".parse().unwrap();
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
    }

    #[test]
    fn date_range_bounds_include_whole_days() {
        let r = DateRange::new(Some("2023-04-03".parse().unwrap()), Some("2023-04-05".parse().unwrap()));
        assert!(r.contains("2023-04-03"));
        assert!(r.contains("2023-04-05"));
        assert!(r.contains("2023-04-05T19:59:00Z"));
        assert!(!r.contains("2023-04-02T23:59:59Z"));
        assert!(!r.contains("2023-04-06"));
        assert!(DateRange::default().contains("1970-01-01"));
    }
}
