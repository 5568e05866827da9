//! Yahoo Finance's streamer, frame by frame: each WebSocket text frame is JSON
//! `{"type": "pricing", "message": BASE64}` whose payload is the protobuf
//! `PricingData` (the message `yfinance` ships as `pricing.proto`). A frame
//! becomes a [`Tick`] or a refusal naming what was wrong with it.

use base64::Engine;
use prost::Message;
use serde::Deserialize;
use stockstream_core::RejectKind;
use stockstream_core::{Refusal, Tick};

/// Yahoo's streamer.
pub const DEFAULT_STREAM_URL: &str = "wss://streamer.finance.yahoo.com/?version=2";

/// The longest frame taken: a `PricingData` is a few hundred bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// `PricingData`, field for field as in `pricing.proto`.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, Message)]
pub struct PricingData {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(float, tag = "2")]
    pub price: f32,
    /// Unix milliseconds.
    #[prost(sint64, tag = "3")]
    pub time: i64,
    #[prost(string, tag = "4")]
    pub currency: String,
    #[prost(string, tag = "5")]
    pub exchange: String,
    #[prost(int32, tag = "6")]
    pub quote_type: i32,
    #[prost(int32, tag = "7")]
    pub market_hours: i32,
    #[prost(float, tag = "8")]
    pub change_percent: f32,
    #[prost(sint64, tag = "9")]
    pub day_volume: i64,
    #[prost(float, tag = "10")]
    pub day_high: f32,
    #[prost(float, tag = "11")]
    pub day_low: f32,
    #[prost(float, tag = "12")]
    pub change: f32,
    #[prost(string, tag = "13")]
    pub short_name: String,
    #[prost(sint64, tag = "14")]
    pub expire_date: i64,
    #[prost(float, tag = "15")]
    pub open_price: f32,
    #[prost(float, tag = "16")]
    pub previous_close: f32,
    #[prost(float, tag = "17")]
    pub strike_price: f32,
    #[prost(string, tag = "18")]
    pub underlying_symbol: String,
    #[prost(sint64, tag = "19")]
    pub open_interest: i64,
    #[prost(sint64, tag = "20")]
    pub options_type: i64,
    #[prost(sint64, tag = "21")]
    pub mini_option: i64,
    #[prost(sint64, tag = "22")]
    pub last_size: i64,
    #[prost(float, tag = "23")]
    pub bid: f32,
    #[prost(sint64, tag = "24")]
    pub bid_size: i64,
    #[prost(float, tag = "25")]
    pub ask: f32,
    #[prost(sint64, tag = "26")]
    pub ask_size: i64,
    #[prost(sint64, tag = "27")]
    pub price_hint: i64,
    #[prost(sint64, tag = "28")]
    pub vol_24hr: i64,
    #[prost(sint64, tag = "29")]
    pub vol_all_currencies: i64,
    #[prost(string, tag = "30")]
    pub from_currency: String,
    #[prost(string, tag = "31")]
    pub last_market: String,
    #[prost(double, tag = "32")]
    pub circulating_supply: f64,
    #[prost(double, tag = "33")]
    pub market_cap: f64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    message: Option<&'a str>,
}

/// Reads one frame's `PricingData`.
pub fn decode_frame(frame: &[u8]) -> Result<PricingData, Refusal> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(Refusal::new(
            RejectKind::FrameTooLong,
            format!("a frame of {} bytes (at most {MAX_FRAME_BYTES})", frame.len()),
        ));
    }
    let envelope: Envelope = serde_json::from_slice(frame)
        .map_err(|e| Refusal::new(RejectKind::BadJson, format!("a frame that is not JSON: {e}")))?;
    if envelope.kind != "pricing" {
        return Err(Refusal::new(RejectKind::UnknownMessage, format!("a message of unknown type {:?}", envelope.kind)));
    }
    let text =
        envelope.message.ok_or_else(|| Refusal::new(RejectKind::BadBase64, "a pricing frame without a message"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Refusal::new(RejectKind::BadBase64, format!("a message that is not base64: {e}")))?;
    PricingData::decode(&bytes[..])
        .map_err(|e| Refusal::new(RejectKind::BadProtobuf, format!("a message that is not a PricingData: {e}")))
}

/// Widens a protobuf float to the decimal it was written from (481.37f32
/// reads as 481.37, not 481.3699951171875).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

impl PricingData {
    /// The tick it reports: its last price and size, and the session's
    /// cumulative volume (0 means Yahoo did not send one).
    pub fn tick(&self, symbol: std::sync::Arc<str>) -> Tick {
        Tick {
            symbol,
            time_ms: self.time,
            price: widen(self.price),
            size: self.last_size.max(0) as f64,
            day_volume: (self.day_volume != 0).then_some(self.day_volume as f64),
            trade_id: None,
            source: "yahoo".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &PricingData) -> Vec<u8> {
        let message = base64::engine::general_purpose::STANDARD.encode(data.encode_to_vec());
        serde_json::to_vec(&serde_json::json!({"type": "pricing", "message": message})).unwrap()
    }

    #[test]
    fn a_frame_reads_back_as_its_tick() {
        let data = PricingData {
            id: "NVDA".into(),
            price: 481.37,
            time: 1_704_207_600_123,
            day_volume: 12_345_678,
            last_size: 100,
            ..Default::default()
        };
        let decoded = decode_frame(&frame(&data)).unwrap();
        assert_eq!(decoded, data);
        let tick = decoded.tick("NVDA".into());
        assert_eq!(
            (tick.price, tick.size, tick.day_volume, tick.time_ms),
            (481.37, 100.0, Some(12_345_678.0), data.time)
        );
    }

    #[test]
    fn bad_frames_are_refused_with_what_was_wrong() {
        let cases: [(&[u8], &str); 5] = [
            (b"not json", "bad_json"),
            (br#"{"type":"heartbeat"}"#, "unknown_message"),
            (br#"{"type":"pricing","message":"***"}"#, "bad_base64"),
            (br#"{"type":"pricing","message":"/////w=="}"#, "bad_protobuf"),
            (br#"{"type":"pricing"}"#, "bad_base64"),
        ];
        for (frame, kind) in cases {
            assert_eq!(decode_frame(frame).unwrap_err().kind, kind, "{}", String::from_utf8_lossy(frame));
        }
        let long = vec![b' '; MAX_FRAME_BYTES + 1];
        assert_eq!(decode_frame(&long).unwrap_err().kind, "frame_too_long");
    }
}
