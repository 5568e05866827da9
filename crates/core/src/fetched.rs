//! A bar fetched from a chart API (history before a live feed, a gap after
//! an outage): it rides the ticks topic beside the ticks of its symbol, as
//! the bar's wire JSON plus `"Interval"` (`"1m"`), and is stored as it is,
//! over any bar the live feed made of the same window.

use std::io::Write;

use crate::{codec, BarLength, Cleaner, MissingPolicy, Refusal, RejectKind};
use crate::{Bar, Ts};

/// A closed bar of `length`, as a chart API gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedBar {
    /// The bar.
    pub bar: Bar,
    /// Its length: the table it is stored in.
    pub length: BarLength,
}

impl FetchedBar {
    /// The window's start, Unix milliseconds.
    pub fn start_ms(&self) -> i64 {
        ts_ms(&self.bar.ts)
    }
}

/// An instant's (or a date's midnight UTC) Unix milliseconds.
pub fn ts_ms(ts: &Ts) -> i64 {
    match ts {
        Ts::Instant(t) => t.timestamp_millis(),
        Ts::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis(),
    }
}

/// The wire form: the bar's JSON with `"Interval"` first.
///
/// ```
/// use stockstream_core::fetched::{decode_fetched, encode_fetched, is_fetched, FetchedBar};
/// use stockstream_core::{Bar, BarLength};
///
/// let bar = Bar {
///     company: "NVIDIA".into(), symbol: "NVDA".into(), ts: "2024-01-02T14:30:00Z".parse().unwrap(),
///     open: 10.0, high: 11.0, low: 9.5, close: 10.5, volume: 1200.0, vwap: None, trades: None,
/// };
/// let fetched = FetchedBar { bar, length: BarLength::Fixed(60_000) };
/// let wire = encode_fetched(&fetched);
/// assert!(wire.starts_with(br#"{"Interval":"1m","Date":"2024-01-02T14:30:00Z""#));
/// assert!(is_fetched(&wire));
/// assert_eq!(decode_fetched(&wire).unwrap(), fetched);
/// ```
pub fn encode_fetched(f: &FetchedBar) -> Vec<u8> {
    let mut out = Vec::with_capacity(180);
    let _ = write!(out, "{{\"Interval\":\"{}\",", f.length);
    let mut bar = Vec::with_capacity(160);
    codec::encode_into(&f.bar, &mut bar);
    out.extend_from_slice(&bar[1..]);
    out
}

/// True for a fetched bar's wire form (a tick's starts otherwise).
pub fn is_fetched(bytes: &[u8]) -> bool {
    bytes.starts_with(b"{\"Interval\":")
}

/// Reads a fetched bar back: every field present and valid, its time on the
/// grid of its length, or the refusal names why not.
pub fn decode_fetched(bytes: &[u8]) -> Result<FetchedBar, Refusal> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "Interval")]
        interval: String,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::new(RejectKind::Undecodable, format!("not a fetched bar: {e}")))?;
    let length: BarLength =
        head.interval.parse().map_err(|e: String| Refusal::new(RejectKind::Undecodable, format!("Interval: {e}")))?;
    let raw = codec::decode(bytes)?;
    let bar = Cleaner::new(MissingPolicy::Drop).clean(&raw)?;
    crate::validate(&bar)?;
    let start = ts_ms(&bar.ts);
    let on_grid = match length {
        BarLength::Day => !bar.ts.is_intraday(),
        _ => bar.ts.is_intraday() && length.window(start).is_some_and(|(s, _)| s == start),
    };
    if !on_grid {
        return Err(Refusal::new(
            RejectKind::BadDate,
            format!("{} {}: not the start of a {length} bar", bar.symbol, bar.ts),
        ));
    }
    Ok(FetchedBar { bar, length })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_reason() {
        let off_grid = br#"{"Interval":"1m","Date":"2024-01-02T14:30:30Z","Open":1,"High":1,"Low":1,"Close":1,"Volume":1,"Company Name":"NVIDIA","Symbol":"NVDA"}"#;
        assert!(decode_fetched(off_grid).unwrap_err().reason.contains("not the start of a 1m bar"));
        let bad_length = br#"{"Interval":"7x","Date":"2024-01-02T14:30:00Z"}"#;
        assert!(decode_fetched(bad_length).unwrap_err().reason.contains("Interval"));
        let no_close = br#"{"Interval":"1m","Date":"2024-01-02T14:30:00Z","Open":1,"High":1,"Low":1,"Volume":1,"Company Name":"NVIDIA"}"#;
        assert_eq!(decode_fetched(no_close).unwrap_err().kind, RejectKind::MissingValue);
        let high_low = br#"{"Interval":"1m","Date":"2024-01-02T14:30:00Z","Open":1,"High":0.5,"Low":1,"Close":1,"Volume":1,"Company Name":"NVIDIA"}"#;
        assert!(decode_fetched(high_low).is_err());
    }
}
