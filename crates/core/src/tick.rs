//! A tick: one trade or quote from a live feed, before it is aggregated into
//! bars. On the bus it is one JSON object keyed by its symbol, on the topic
//! `<topic>.ticks`:
//! `{"symbol":"NVDA","time":"2024-01-02T15:00:00.123Z","price":481.5,"size":100,"day_volume":null,"trade_id":null,"source":"yahoo"}`.

use crate::reject::RejectKind;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::Refusal;

/// One trade or quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// The instrument, as the feed names it (`NVDA`); shared by a feed's
    /// ticks of one symbol, so that grouping them compares pointers.
    pub symbol: Arc<str>,
    /// Event time: Unix milliseconds, UTC (RFC 3339 text on the wire).
    #[serde(rename = "time", with = "time_text")]
    pub time_ms: i64,
    /// Price of the trade (or the last price of a quote).
    pub price: f64,
    /// Shares traded; 0 for a quote without one.
    #[serde(default)]
    pub size: f64,
    /// The session's cumulative volume, for feeds that send it (Yahoo).
    #[serde(default)]
    pub day_volume: Option<f64>,
    /// The feed's trade identifier, when it has one.
    #[serde(default)]
    pub trade_id: Option<String>,
    /// The feed it came from (`yahoo`, `finnhub`, `synthetic`); shared, like
    /// the symbol, by a feed's ticks.
    #[serde(default)]
    pub source: Arc<str>,
}

/// Where one symbol's windows stood when its bars were last stored: what a
/// consumer restarted from the bus's committed offset needs to make the same
/// bars again. Ticks it reads again up to `last_offset` whose window the
/// watermark had already retired are skipped (their bar is stored); the
/// oldest window still open starts its volume from `day_volume`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowMark {
    /// The symbol (the bus key).
    pub symbol: String,
    /// Its watermark then (latest event time less the allowed lateness), ms.
    pub watermark_ms: i64,
    /// The feed's cumulative day volume at the end of the newest retired window.
    pub day_volume: Option<f64>,
    /// The bus partition its ticks arrive on.
    pub partition: i32,
    /// The offset of its last tick taken into account.
    pub last_offset: i64,
}

/// A tick more than this far ahead of the clock is refused.
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// No tick is older than 1970-01-02 (a time of 0, -1000 or year 0 is a
/// feed's or a file's mistake, not a trade).
pub const EARLIEST_MS: i64 = 86_400_000;

impl Tick {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a tick serialises")
    }

    /// Reads the wire form; the refusal names the reason.
    pub fn decode(bytes: &[u8]) -> Result<Tick, Refusal> {
        serde_json::from_slice(bytes).map_err(|e| Refusal::new(RejectKind::BadTick, format!("not a tick: {e}")))
    }

    /// Refuses a tick no bar should take in: a price that is not a positive
    /// finite number, a negative or non-finite size or day volume, an empty
    /// symbol, a symbol too long or with control characters (as a file's
    /// symbols are checked), or a time more than a day ahead of `now_ms`.
    pub fn check(&self, now_ms: i64) -> Result<(), Refusal> {
        if self.symbol.trim().is_empty() {
            return Err(Refusal::new(
                RejectKind::MissingSymbol,
                format!("tick at {} has no symbol", time_text::format(self.time_ms)),
            ));
        }
        crate::validate::check_name("Symbol", &self.symbol, crate::validate::MAX_SYMBOL_BYTES)?;
        let at = || format!("{} at {}", self.symbol, time_text::format(self.time_ms));
        if !(self.price.is_finite() && self.price > 0.0) {
            return Err(Refusal::new(
                RejectKind::BadPrice,
                format!("{}: price {} is not a positive number", at(), self.price),
            ));
        }
        if !(self.size.is_finite() && self.size >= 0.0) {
            return Err(Refusal::new(
                RejectKind::BadSize,
                format!("{}: size {} is negative or not a number", at(), self.size),
            ));
        }
        if let Some(v) = self.day_volume.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Refusal::new(
                RejectKind::BadSize,
                format!("{}: day volume {v} is negative or not a number", at()),
            ));
        }
        if self.time_ms < EARLIEST_MS {
            return Err(Refusal::new(RejectKind::BadTime, format!("{}: dated before 1970-01-02", at())));
        }
        if self.time_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
            return Err(Refusal::new(RejectKind::FutureTime, format!("{}: more than a day ahead of the clock", at())));
        }
        Ok(())
    }
}

/// Unix milliseconds as RFC 3339 text with milliseconds; read back from that
/// text or from a number of milliseconds.
pub mod time_text {
    use super::*;

    /// `2024-01-02T15:00:00.123Z`.
    pub fn format(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| ms.to_string())
    }

    /// Serde: writes [`format`].
    pub fn serialize<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    /// Serde: reads RFC 3339 text or Unix milliseconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Time<'a> {
            Millis(i64),
            Text(&'a str),
        }
        match Time::deserialize(d)? {
            Time::Millis(ms) => Ok(ms),
            Time::Text(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|e| serde::de::Error::custom(format!("time {text:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> Tick {
        Tick {
            symbol: "NVDA".into(),
            time_ms: 1_704_207_600_123,
            price: 481.5,
            size: 100.0,
            day_volume: Some(1e6),
            trade_id: None,
            source: "test".into(),
        }
    }

    #[test]
    fn the_wire_form_reads_back_and_takes_milliseconds_too() {
        let t = tick();
        let text = String::from_utf8(t.encode()).unwrap();
        assert!(text.contains("\"time\":\"2024-01-02T15:00:00.123Z\""), "{text}");
        assert_eq!(Tick::decode(text.as_bytes()).unwrap(), t);
        let t2 = Tick::decode(br#"{"symbol":"A","time":1704207600123,"price":1.5}"#).unwrap();
        assert_eq!((t2.time_ms, t2.size, t2.day_volume), (1_704_207_600_123, 0.0, None));
        assert_eq!(Tick::decode(b"{\"symbol\":\"A\"}").unwrap_err().kind, "bad_tick");
    }

    #[test]
    fn impossible_ticks_are_refused_with_a_reason() {
        let now = 1_704_207_600_000;
        assert!(tick().check(now).is_ok());
        type Spoil = fn(&mut Tick);
        let cases: [(Spoil, &str); 11] = [
            (|t| t.time_ms = 0, "bad_time"),
            (|t| t.time_ms = -1000, "bad_time"),
            (|t| t.time_ms = -62_167_219_200_000, "bad_time"), // 0000-01-01
            (|t| t.symbol = "A".repeat(5_000).into(), "name_too_long"),
            (|t| t.symbol = "AA\0PL".into(), "control_character"),
            (|t| t.price = 0.0, "bad_price"),
            (|t| t.price = f64::NAN, "bad_price"),
            (|t| t.size = -1.0, "bad_size"),
            (|t| t.day_volume = Some(f64::INFINITY), "bad_size"),
            (|t| t.time_ms += 2 * MAX_AHEAD_MS, "future_time"),
            (|t| t.symbol = " ".into(), "missing_symbol"),
        ];
        for (spoil, kind) in cases {
            let mut t = tick();
            spoil(&mut t);
            let refusal = t.check(now).unwrap_err();
            assert_eq!(refusal.kind, kind, "{}", refusal.reason);
        }
    }
}
