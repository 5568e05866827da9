//! Our decoding of Yahoo's streamer frames equals yfinance's, field by field:
//! the frames are encoded by yfinance's `pricing_pb2` and decoded by its
//! `yfinance.live` client (`yahoo_interop.py`, run with python3; setup.sh
//! installs yfinance).

use serde_json::{Map, Value};
use stockstream_sources::yahoo_stream::{decode_frame, PricingData};

/// 32-bit float fields: protobuf writes them as a shortest decimal, and two
/// decimals can be shortest for one float (175652.62 and .63): compared as
/// the float they read back as.
const FLOATS: [&str; 10] = [
    "price",
    "change_percent",
    "day_high",
    "day_low",
    "change",
    "open_price",
    "previous_close",
    "strike_price",
    "bid",
    "ask",
];

fn floats_exact(mut dict: Map<String, Value>) -> Map<String, Value> {
    for key in FLOATS {
        if let Some(v) = dict.get_mut(key) {
            *v = Value::from(v.as_f64().unwrap() as f32 as f64);
        }
    }
    dict
}

/// Our message as protobuf's JSON mapping writes it (`MessageToDict`): fields
/// at their default left out, 64-bit integers as text, 32-bit floats widened exactly.
fn as_dict(d: &PricingData) -> Map<String, Value> {
    let mut out = Map::new();
    macro_rules! put {
        (text: $($f:ident),*) => {$(
            if !d.$f.is_empty() { out.insert(stringify!($f).into(), Value::from(d.$f.clone())); }
        )*};
        (float: $($f:ident),*) => {$(
            if d.$f != 0.0 { out.insert(stringify!($f).into(), Value::from(d.$f as f64)); }
        )*};
        (double: $($f:ident),*) => {$(
            if d.$f != 0.0 { out.insert(stringify!($f).into(), Value::from(d.$f)); }
        )*};
        (int32: $($f:ident),*) => {$(
            if d.$f != 0 { out.insert(stringify!($f).into(), Value::from(d.$f)); }
        )*};
        (int64: $($f:ident),*) => {$(
            if d.$f != 0 { out.insert(stringify!($f).into(), Value::from(d.$f.to_string())); }
        )*};
    }
    put!(text: id, currency, exchange, short_name, underlying_symbol, from_currency, last_market);
    put!(float: price, change_percent, day_high, day_low, change, open_price, previous_close, strike_price, bid, ask);
    put!(double: circulating_supply, market_cap);
    put!(int32: quote_type, market_hours);
    put!(int64: time, day_volume, expire_date, open_interest, options_type, mini_option, last_size, bid_size, ask_size,
         price_hint, vol_24hr, vol_all_currencies);
    out
}

#[test]
fn frames_encoded_by_yfinance_decode_as_yfinance_decodes_them() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/yahoo_interop.py");
    let output = std::process::Command::new("python3").arg(script).output().expect("python3 runs");
    assert!(
        output.status.success(),
        "the yfinance reference failed (scripts/setup.sh installs yfinance): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 200, "{} frames", lines.len());
    for line in &lines {
        let frame = line["frame"].as_str().unwrap();
        let theirs = line["decoded"].as_object().unwrap();
        let ours = decode_frame(frame.as_bytes()).unwrap_or_else(|r| panic!("{frame}: {}", r.reason));
        assert_eq!(floats_exact(as_dict(&ours)), floats_exact(theirs.clone()), "{frame}");
    }
    // The first frame is a plain equity trade: the tick keeps its decimals.
    let first = decode_frame(lines[0]["frame"].as_str().unwrap().as_bytes()).unwrap();
    let tick = first.tick("NVDA".into());
    assert_eq!(
        (tick.price, tick.size, tick.day_volume, tick.time_ms),
        (481.37, 100.0, Some(12345678.0), 1704207600123)
    );
}
