//! The wire format: one JSON object per bar with the original project's field
//! names, so tools built for that layout keep working:
//! `{"Date":"2023-04-03","Open":270.2,...,"Company Name":"NVIDIA","Symbol":"NVDA"}`.

use crate::reject::RejectKind;
use std::io::Write;

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::bar::Bar;
use crate::reject::Refusal;

/// A record as it arrived, before cleaning: any field may be missing. A missing
/// value is `null` on the wire (pandas' `NaN` is read as `null` too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawBar {
    #[serde(rename = "Date", default, deserialize_with = "text")]
    /// `Date`, as written.
    pub date: Option<String>,
    #[serde(rename = "Open", default, deserialize_with = "number")]
    /// `Open`.
    pub open: Option<f64>,
    #[serde(rename = "High", default, deserialize_with = "number")]
    /// `High`.
    pub high: Option<f64>,
    #[serde(rename = "Low", default, deserialize_with = "number")]
    /// `Low`.
    pub low: Option<f64>,
    #[serde(rename = "Close", default, deserialize_with = "number")]
    /// `Close`.
    pub close: Option<f64>,
    #[serde(rename = "Volume", default, deserialize_with = "number")]
    /// `Volume`.
    pub volume: Option<f64>,
    #[serde(rename = "Company Name", default, deserialize_with = "text")]
    /// `Company Name`.
    pub company: Option<String>,
    #[serde(rename = "Symbol", default, deserialize_with = "text")]
    /// `Symbol`, when the message carries one.
    pub symbol: Option<String>,
    #[serde(rename = "VWAP", default, deserialize_with = "number")]
    /// `VWAP`, for bars made from trades.
    pub vwap: Option<f64>,
    #[serde(rename = "Trades", default, deserialize_with = "number")]
    /// `Trades`, for bars made from trades.
    pub trades: Option<f64>,
}

impl From<&Bar> for RawBar {
    fn from(b: &Bar) -> Self {
        RawBar {
            date: Some(b.ts.to_string()),
            open: Some(b.open),
            high: Some(b.high),
            low: Some(b.low),
            close: Some(b.close),
            volume: Some(b.volume),
            company: Some(b.company.clone()),
            symbol: Some(b.symbol.clone()),
            vwap: b.vwap,
            trades: b.trades.map(|t| t as f64),
        }
    }
}

/// Numbers arrive as JSON numbers, as numeric strings (some producers quote them),
/// or as null/empty for a missing value. A visitor rather than an untagged enum:
/// this is the consumer's hot path.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, a numeric string or null")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            let s = s.trim();
            if s.is_empty() || s.eq_ignore_ascii_case("nan") || s.eq_ignore_ascii_case("null") {
                return Ok(None);
            }
            s.parse::<f64>().map(Some).map_err(|_| E::custom(format!("{s:?} is not a number")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

/// Text fields; a number where text was expected is taken as its text.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

/// Decodes one wire message. Python's `json.dumps` writes `NaN` for pandas'
/// missing values, which is not JSON; such messages are read with `NaN` as null.
pub fn decode(bytes: &[u8]) -> Result<RawBar, Refusal> {
    // serde would also read a JSON array as a struct's fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
        return Err(Refusal::new(RejectKind::Undecodable, format!("not a JSON object: {head:?}")));
    }
    match serde_json::from_slice::<RawBar>(bytes) {
        Ok(raw) => Ok(raw),
        Err(first) => {
            if let Some(fixed) = replace_nan_literals(bytes) {
                if let Ok(raw) = serde_json::from_slice::<RawBar>(&fixed) {
                    return Ok(raw);
                }
            }
            let what = if first.is_data() { "unexpected field value" } else { "not a JSON object" };
            Err(Refusal::new(RejectKind::Undecodable, format!("{what}: {first}")))
        }
    }
}

/// Rewrites bare `NaN` tokens (outside strings) as `null`; `None` when there is none.
fn replace_nan_literals(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if bytes[i..].starts_with(b"NaN") {
            out.extend_from_slice(b"null");
            i += 3;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// Encodes a bar as its wire JSON, appending to `out`.
pub fn encode_into(bar: &Bar, out: &mut Vec<u8>) {
    // The text form of `Ts` never needs JSON escaping.
    let _ = write!(out, "{{\"Date\":\"{}\"", bar.ts);
    write_rest(
        out,
        [Some(bar.open), Some(bar.high), Some(bar.low), Some(bar.close), Some(bar.volume)],
        Some(&bar.company),
        Some(&bar.symbol),
        bar.vwap,
        bar.trades.map(|t| t as f64),
    );
}

/// Encodes a bar as its wire JSON.
pub fn encode(bar: &Bar) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    encode_into(bar, &mut out);
    out
}

/// Encodes a possibly incomplete record: missing values become `null`, so the
/// consumer (not the producer) decides how to clean them.
pub fn encode_raw_into(raw: &RawBar, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"Date\":");
    write_text(out, raw.date.as_deref());
    write_rest(
        out,
        [raw.open, raw.high, raw.low, raw.close, raw.volume],
        raw.company.as_deref(),
        raw.symbol.as_deref(),
        raw.vwap,
        raw.trades,
    );
}

// Hand-written rather than derived: field order is fixed, numbers print in their
// shortest exact form (101.3, never 101.30000000000001) and integral volumes
// print without a fraction, as the original project's rows do. `VWAP` and
// `Trades` are written only when known: bars of the original layout keep its
// fields.
fn write_rest(
    out: &mut Vec<u8>,
    numbers: [Option<f64>; 5],
    company: Option<&str>,
    symbol: Option<&str>,
    vwap: Option<f64>,
    trades: Option<f64>,
) {
    const NAMES: [&[u8]; 5] = [b",\"Open\":", b",\"High\":", b",\"Low\":", b",\"Close\":", b",\"Volume\":"];
    for (name, value) in NAMES.iter().zip(numbers) {
        out.extend_from_slice(name);
        match value {
            Some(v) if v.is_finite() => write_number(out, v),
            _ => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"Company Name\":");
    write_text(out, company);
    if symbol.is_some() {
        out.extend_from_slice(b",\"Symbol\":");
        write_text(out, symbol);
    }
    for (name, value) in [(&b",\"VWAP\":"[..], vwap), (b",\"Trades\":", trades)] {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            out.extend_from_slice(name);
            write_number(out, v);
        }
    }
    out.push(b'}');
}

/// `v` in its shortest exact form without an exponent, as Rust prints it, by
/// way of ryu, several times faster (less its `.0` on integers); the rare
/// number ryu puts in exponent form is printed by Rust.
pub fn write_number(out: &mut Vec<u8>, v: f64) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v);
    if text.contains('e') {
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
    }
}

fn write_text(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail"),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::Ts;

    /// A bar made from trades carries `VWAP` and `Trades` on the wire and
    /// back, cleaned and validated; others keep the original layout's fields.
    #[test]
    fn vwap_and_trades_travel_when_known() {
        let mut bar = Bar {
            symbol: "NVDA".into(),
            company: "NVIDIA".into(),
            ts: "2024-01-02T14:30:00Z".parse().unwrap(),
            open: 10.0,
            high: 11.0,
            low: 9.5,
            close: 10.5,
            volume: 1200.0,
            vwap: None,
            trades: None,
        };
        let plain = String::from_utf8(encode(&bar)).unwrap();
        assert!(!plain.contains("VWAP") && !plain.contains("Trades"), "{plain}");
        (bar.vwap, bar.trades) = (Some(10.25), Some(42));
        let wire = encode(&bar);
        assert!(String::from_utf8_lossy(&wire).ends_with(r#","VWAP":10.25,"Trades":42}"#));
        let mut cleaner = crate::Cleaner::new(crate::MissingPolicy::Ffill);
        assert_eq!(cleaner.clean(&decode(&wire).unwrap()).unwrap(), bar);
        for (bad, kind) in [(r#""Trades":-1"#, "bad_trades"), (r#""Trades":1.5"#, "bad_trades")] {
            let text = String::from_utf8_lossy(&wire).replace(r#""Trades":42"#, bad);
            assert_eq!(cleaner.clean(&decode(text.as_bytes()).unwrap()).unwrap_err().kind.as_str(), kind, "{bad}");
        }
        bar.vwap = Some(12.0);
        assert_eq!(crate::validate(&bar).unwrap_err().kind.as_str(), "bad_vwap");
    }

    /// The same text as Rust's, but where two shortest forms are equally near
    /// (an exact tie, as 1149636667324797.25): then the last digit may differ,
    /// and both read back as the same number.
    #[test]
    fn numbers_print_as_rust_prints_them() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases =
            vec![0.0, -0.0, 1.0, 101.3, 0.1, 1e15, 1e16, 1e17, 1e-5, 1e-7, 123456789.0, f64::MAX, f64::MIN_POSITIVE];
        for _ in 0..200_000 {
            let bits = next();
            // Prices and volumes as they come (cents, whole shares), and any finite f64.
            cases.push((bits % 100_000_000) as f64 / 100.0);
            cases.push((bits % 10_000_000_000) as f64);
            cases.push(f64::from_bits(bits));
        }
        for v in cases.into_iter().filter(|v| v.is_finite()) {
            let mut out = Vec::new();
            write_number(&mut out, v);
            let (ours, rust) = (String::from_utf8(out).unwrap(), v.to_string());
            assert_eq!(ours.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v:e}: {ours}");
            let differ = ours.bytes().zip(rust.bytes()).filter(|(a, b)| a != b).count();
            assert!(ours.len() == rust.len() && differ <= 1, "{v:e}: {ours}, Rust {rust}");
            if differ == 1 {
                assert_eq!(ours[..ours.len() - 1], rust[..rust.len() - 1], "{v:e}: only the last digit may differ");
            }
        }
    }

    fn nvda() -> Bar {
        Bar {
            symbol: "NVDA".into(),
            company: "NVIDIA".into(),
            ts: "2023-04-03".parse().unwrap(),
            open: 270.2,
            high: 276.0,
            low: 268.1,
            close: 274.5,
            volume: 41234500.0,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn encodes_the_documented_wire_form() {
        let json = String::from_utf8(encode(&nvda())).unwrap();
        assert_eq!(
            json,
            r#"{"Date":"2023-04-03","Open":270.2,"High":276,"Low":268.1,"Close":274.5,"Volume":41234500,"Company Name":"NVIDIA","Symbol":"NVDA"}"#
        );
    }

    #[test]
    fn round_trips_daily_and_intraday_bars() {
        let mut bar = nvda();
        for ts in ["2023-04-03", "2023-04-03T14:30:00Z", "2024-12-31T20:59:59Z"] {
            bar.ts = ts.parse::<Ts>().unwrap();
            bar.company = "Q\"uote\\d \u{e9}".into();
            bar.open = 101.3;
            bar.volume = 0.5;
            let raw = decode(&encode(&bar)).unwrap();
            assert_eq!(raw, RawBar::from(&bar));
        }
    }

    #[test]
    fn decimals_read_back_exactly() {
        // Best-effort float parsing is off by one unit in the last place for
        // some inputs; the store would then print 120.78999999999999.
        for text in ["120.78999999999999", "120.79", "0.1", "101.3", "274.5", "1e-7", "166.29"] {
            let raw = decode(format!(r#"{{"Open":{text}}}"#).as_bytes()).unwrap();
            assert_eq!(raw.open, Some(text.parse::<f64>().unwrap()), "{text}");
        }
    }

    #[test]
    fn reads_the_original_producers_messages() {
        // pandas to_dict + json.dumps: no Symbol, float volume, NaN for missing.
        let raw = decode(
            br#"{"Date": "2023-04-03", "Open": 270.2, "High": 276.0, "Low": 268.1, "Close": NaN, "Volume": 41234500.0, "Company Name": "NVIDIA"}"#,
        )
        .unwrap();
        assert_eq!(raw.close, None);
        assert_eq!(raw.volume, Some(41234500.0));
        assert_eq!(raw.symbol, None);
        assert_eq!(raw.company.as_deref(), Some("NVIDIA"));
    }

    #[test]
    fn accepts_quoted_numbers_and_ignores_unknown_fields() {
        let raw = decode(br#"{"Date":"2023-04-03","Open":"1.5","Adj Close":3,"Company Name":"X"}"#).unwrap();
        assert_eq!(raw.open, Some(1.5));
        assert_eq!(raw.high, None);
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        for bad in [&b"not json"[..], b"[1,2]", b"{\"Open\": \"abc\"}", b"", b"{\"Date\":\"NaN\"", b"\xff\xfe"] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.kind, "undecodable", "{bad:?}");
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn nan_inside_strings_is_left_alone() {
        let raw = decode(br#"{"Company Name":"NaN Corp","Close":NaN}"#).unwrap();
        assert_eq!(raw.company.as_deref(), Some("NaN Corp"));
    }
}
