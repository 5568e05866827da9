//! Live market feeds over WebSocket: Yahoo Finance's streamer and Finnhub's
//! trades. One connection loop serves both: connect, subscribe (again every so
//! often when the feed asks for it), read frames into ticks; a closed socket,
//! a failed upgrade or a stall (no frame for `stall`) reconnects with
//! exponential backoff and a log line. Frames the feed's decoder refuses
//! become rejects with their bytes; the stream goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stockstream_core::RejectKind;

use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use stockstream_core::{Item, Refusal, Source, Tick};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::yahoo_stream::{decode_frame, MAX_FRAME_BYTES};

/// Finnhub's trades WebSocket.
pub const FINNHUB_URL: &str = "wss://ws.finnhub.io";

/// One feed's protocol: where to connect, what to send, how to read a frame.
///
/// Finnhub's, reading one frame of trades:
///
/// ```
/// use stockstream_sources::live::{Feed, FinnhubFeed};
///
/// let mut feed = FinnhubFeed { url: "wss://ws.finnhub.io".into(), token: "secret".into(), symbols: vec!["AAPL".into()] };
/// assert_eq!(feed.subscriptions(), [r#"{"symbol":"AAPL","type":"subscribe"}"#]);
/// assert!(!feed.shown_url().contains("secret"));
/// let mut ticks = Vec::new();
/// feed.read(br#"{"type":"trade","data":[{"s":"AAPL","p":187.5,"t":1704207600000,"v":100}]}"#, &mut ticks);
/// let tick = ticks.pop().unwrap().unwrap();
/// assert_eq!((&*tick.symbol, tick.price, tick.size), ("AAPL", 187.5, 100.0));
/// ```
pub trait Feed: Send + 'static {
    /// The source's name (`yahoo-live`).
    fn name(&self) -> &'static str;
    /// The address to connect to, secrets included.
    fn url(&self) -> String;
    /// The address as shown in logs and summaries: no secret.
    fn shown_url(&self) -> String;
    /// The symbols subscribed to: ticks of any other are refused
    /// (`unsubscribed`), so a feed creates state only for what it was asked.
    fn symbols(&self) -> &[String];
    /// Text messages that subscribe to the symbols.
    fn subscriptions(&self) -> Vec<String>;
    /// Subscribe again this often (Yahoo forgets a quiet subscription).
    fn resubscribe_every(&self) -> Option<Duration> {
        None
    }
    /// Reads one frame: its ticks, or why it is refused.
    fn read(&mut self, frame: &[u8], out: &mut Vec<Result<Tick, Refusal>>);
}

/// How a live connection waits and retries.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// No frame for this long: the connection is taken as dead.
    pub stall: Duration,
    /// First wait before reconnecting; doubled per failure up to `max`.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect { stall: Duration::from_secs(30), initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

/// A live feed as a [`Source`]: endless, until the reader stops reading.
pub struct LiveSource<F: Feed> {
    feed: F,
    reconnect: Reconnect,
}

impl<F: Feed> LiveSource<F> {
    /// A source reading `feed`, reconnecting as `reconnect` says.
    pub fn new(feed: F, reconnect: Reconnect) -> Self {
        LiveSource { feed, reconnect }
    }
}

/// Items buffered between the connection and the pipeline: a slow pipeline
/// slows the reading of the socket, it does not grow memory.
const BUFFERED: usize = 4096;

impl<F: Feed> Source for LiveSource<F> {
    fn name(&self) -> &'static str {
        self.feed.name()
    }

    fn description(&self) -> String {
        format!("{} ({})", self.feed.name(), self.feed.shown_url())
    }

    fn ticks(&self) -> bool {
        true
    }

    fn live(&self) -> bool {
        true
    }

    fn records(self: Box<Self>) -> BoxStream<'static, Item> {
        let (tx, rx) = mpsc::channel(BUFFERED);
        tokio::spawn(connection_loop(self.feed, self.reconnect, tx));
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
    }
}

/// Why a connection ended.
enum Ended {
    /// The reader stopped reading: the source is done.
    ReaderGone,
    /// Reconnect, saying why.
    Lost(String),
}

async fn connection_loop<F: Feed>(mut feed: F, reconnect: Reconnect, tx: mpsc::Sender<Item>) {
    let mut wait = reconnect.initial;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (ended, got_frames) = connect_once(&mut feed, &reconnect, &tx).await;
        let why = match ended {
            Ended::ReaderGone => return,
            Ended::Lost(why) => why,
        };
        if got_frames {
            // The feed worked: the next failure starts the backoff again.
            wait = reconnect.initial;
            attempt = 1;
        }
        tracing::warn!(feed = feed.name(), url = %feed.shown_url(), attempt, "{why}: reconnecting in {:.1} s", wait.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tx.closed() => return,
        }
        wait = (wait * 2).min(reconnect.max);
    }
}

/// One connection, from the upgrade to its end; true in second place once a
/// frame was read.
async fn connect_once<F: Feed>(feed: &mut F, reconnect: &Reconnect, tx: &mpsc::Sender<Item>) -> (Ended, bool) {
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
    let connecting = tokio_tungstenite::connect_async_with_config(feed.url(), Some(config), false);
    let mut socket = match tokio::time::timeout(reconnect.stall, connecting).await {
        Ok(Ok((socket, _))) => socket,
        // The error may quote the address, which may carry a token: not shown.
        Ok(Err(e)) => return (Ended::Lost(format!("connection failed: {}", redact(&e.to_string(), feed))), false),
        Err(_) => return (Ended::Lost("connection timed out".into()), false),
    };
    tracing::info!(feed = feed.name(), url = %feed.shown_url(), "connected");
    let mut got_frames = false;
    let mut resubscribe =
        feed.resubscribe_every().map(|every| tokio::time::interval_at(tokio::time::Instant::now(), every));
    let mut decoded = Vec::new();
    // One shared name per subscribed symbol, as the windows expect; found
    // whatever the case the feed sends it in. Bounded by the subscription.
    let names: HashMap<String, Arc<str>> =
        feed.symbols().iter().map(|s| (s.to_ascii_uppercase(), Arc::from(s.to_ascii_uppercase()))).collect();
    let mut upper = String::new();
    let mut frame_no = 0u64;
    let subscribe_now = resubscribe.is_none();
    if subscribe_now {
        for s in feed.subscriptions() {
            if let Err(e) = socket.send(Message::text(s)).await {
                return (Ended::Lost(format!("subscribing failed: {e}")), false);
            }
        }
    }
    loop {
        let next = tokio::select! {
            _ = tx.closed() => {
                let _ = socket.close(None).await;
                return (Ended::ReaderGone, got_frames);
            }
            _ = async { resubscribe.as_mut().expect("checked").tick().await }, if resubscribe.is_some() => {
                for s in feed.subscriptions() {
                    if let Err(e) = socket.send(Message::text(s)).await {
                        return (Ended::Lost(format!("subscribing failed: {e}")), got_frames);
                    }
                }
                continue;
            }
            next = tokio::time::timeout(reconnect.stall, socket.next()) => next,
        };
        let frame = match next {
            Err(_) => {
                return (Ended::Lost(format!("no frame for {} s", reconnect.stall.as_secs())), got_frames);
            }
            Ok(None) => return (Ended::Lost("the server closed the connection".into()), got_frames),
            Ok(Some(Err(e))) => return (Ended::Lost(format!("connection error: {e}")), got_frames),
            Ok(Some(Ok(frame))) => frame,
        };
        let bytes: Vec<u8> = match frame {
            Message::Text(text) => text.as_bytes().to_vec(),
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Close(_) => return (Ended::Lost("the server closed the connection".into()), got_frames),
            // Pings are answered by the library; pongs need nothing.
            _ => continue,
        };
        got_frames = true;
        frame_no += 1;
        feed.read(&bytes, &mut decoded);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for result in decoded.drain(..) {
            // Checked here too, so that a refused tick is kept with its frame.
            let subscribed = |mut tick: Tick| {
                upper.clear();
                upper.extend(tick.symbol.chars().map(|c| c.to_ascii_uppercase()));
                match names.get(&upper) {
                    Some(name) => {
                        tick.symbol = name.clone();
                        Ok(tick)
                    }
                    None => Err(Refusal::new(
                        RejectKind::Unsubscribed,
                        format!(
                            "a tick of {:?}, which is not among the {} symbols subscribed to",
                            tick.symbol,
                            names.len()
                        ),
                    )),
                }
            };
            let item = match result.and_then(|t| t.check(now_ms).map(|()| t)).and_then(subscribed) {
                Ok(tick) => Item::Tick(tick),
                Err(refusal) => Item::Reject(refusal.into_reject(format!("{}#{frame_no}", feed.name()), bytes.clone())),
            };
            if tx.send(item).await.is_err() {
                let _ = socket.close(None).await;
                return (Ended::ReaderGone, got_frames);
            }
        }
    }
}

/// An error's text with the feed's secret-bearing address replaced by the shown one.
fn redact<F: Feed>(text: &str, feed: &F) -> String {
    text.replace(&feed.url(), &feed.shown_url())
}

/// Yahoo Finance's streamer: `{"subscribe": [symbols]}` every 15 s; frames
/// `{"type":"pricing","message":BASE64}` of protobuf `PricingData`.
pub struct YahooFeed {
    /// The streamer's address.
    pub url: String,
    /// Symbols to subscribe to.
    pub symbols: Vec<String>,
}

impl Feed for YahooFeed {
    fn name(&self) -> &'static str {
        "yahoo-live"
    }

    fn symbols(&self) -> &[String] {
        &self.symbols
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn shown_url(&self) -> String {
        self.url.clone()
    }

    fn subscriptions(&self) -> Vec<String> {
        vec![serde_json::json!({ "subscribe": self.symbols }).to_string()]
    }

    fn resubscribe_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(15))
    }

    fn read(&mut self, frame: &[u8], out: &mut Vec<Result<Tick, Refusal>>) {
        out.push(decode_frame(frame).map(|p| {
            let symbol: Arc<str> = p.id.as_str().into();
            p.tick(symbol)
        }));
    }
}

/// Finnhub's trades: `{"type":"subscribe","symbol":S}` per symbol; frames
/// `{"type":"trade","data":[{"s","p","t","v"}]}` and `{"type":"ping"}`.
pub struct FinnhubFeed {
    /// The WebSocket's address, without the token.
    pub url: String,
    /// The API token: sent in the address, never shown.
    pub token: String,
    /// Symbols to subscribe to.
    pub symbols: Vec<String>,
}

#[derive(Deserialize)]
struct FinnhubFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Vec<FinnhubTrade>,
    #[serde(default)]
    msg: Option<String>,
}

#[derive(Deserialize)]
struct FinnhubTrade {
    s: String,
    p: f64,
    t: i64,
    #[serde(default)]
    v: f64,
}

impl Feed for FinnhubFeed {
    fn name(&self) -> &'static str {
        "finnhub"
    }

    fn symbols(&self) -> &[String] {
        &self.symbols
    }

    fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}token={}", self.url, self.token)
    }

    fn shown_url(&self) -> String {
        self.url.clone()
    }

    fn subscriptions(&self) -> Vec<String> {
        self.symbols.iter().map(|s| serde_json::json!({ "type": "subscribe", "symbol": s }).to_string()).collect()
    }

    fn read(&mut self, frame: &[u8], out: &mut Vec<Result<Tick, Refusal>>) {
        if frame.len() > MAX_FRAME_BYTES {
            out.push(Err(Refusal::new(
                RejectKind::FrameTooLong,
                format!("a frame of {} bytes (at most {MAX_FRAME_BYTES})", frame.len()),
            )));
            return;
        }
        let parsed: FinnhubFrame = match serde_json::from_slice(frame) {
            Ok(f) => f,
            Err(e) => {
                out.push(Err(Refusal::new(RejectKind::BadJson, format!("a frame that is not a Finnhub message: {e}"))));
                return;
            }
        };
        match parsed.kind.as_str() {
            "trade" => out.extend(parsed.data.into_iter().map(|t| {
                Ok(Tick {
                    symbol: t.s.into(),
                    time_ms: t.t,
                    price: t.p,
                    size: t.v,
                    day_volume: None,
                    trade_id: None,
                    source: "finnhub".into(),
                })
            })),
            "ping" => {}
            "error" => out.push(Err(Refusal::new(
                RejectKind::FeedError,
                format!("the feed reported: {}", parsed.msg.unwrap_or_default()),
            ))),
            other => {
                out.push(Err(Refusal::new(RejectKind::UnknownMessage, format!("a message of unknown type {other:?}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Finnhub-speaking server on loopback that sends one frame of trades
    /// of symbols subscribed to, in another case, and not subscribed to, then
    /// closes: only the subscribed symbols become ticks, under one name each.
    #[tokio::test]
    async fn ticks_of_symbols_never_subscribed_to_are_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let mut data: Vec<serde_json::Value> =
                (0..200).map(|i| serde_json::json!({"s": format!("X{i}"), "p": 1.0, "t": now, "v": 1.0})).collect();
            data.push(serde_json::json!({"s": "AAPL", "p": 10.0, "t": now, "v": 1.0}));
            data.push(serde_json::json!({"s": "aapl", "p": 11.0, "t": now, "v": 1.0}));
            let frame = serde_json::json!({"type": "trade", "data": data}).to_string();
            ws.send(Message::text(frame)).await.unwrap();
            let _ = ws.close(None).await;
        });
        let feed = FinnhubFeed { url: format!("ws://{addr}/"), token: "t".into(), symbols: vec!["AAPL".into()] };
        let source = Box::new(LiveSource::new(feed, Reconnect::default()));
        let mut records = source.records();
        let mut items = Vec::new();
        while items.len() < 202 {
            match tokio::time::timeout(Duration::from_secs(10), records.next()).await {
                Ok(Some(item)) => items.push(item),
                other => panic!("{} items arrived, then {:?}", items.len(), other.map(|i| i.map(|_| ()))),
            }
        }
        let ticks: Vec<&Tick> =
            items.iter().filter_map(|i| if let Item::Tick(t) = i { Some(t) } else { None }).collect();
        assert_eq!(ticks.iter().map(|t| t.price).collect::<Vec<_>>(), [10.0, 11.0]);
        assert!(ticks.iter().all(|t| &*t.symbol == "AAPL") && Arc::ptr_eq(&ticks[0].symbol, &ticks[1].symbol));
        let refused = items.iter().filter(|i| matches!(i, Item::Reject(r) if r.kind == "unsubscribed")).count();
        assert_eq!(refused, 200);
    }

    #[test]
    fn finnhub_frames_become_ticks_pings_nothing_and_the_rest_refusals() {
        let mut feed = FinnhubFeed { url: FINNHUB_URL.into(), token: "secret".into(), symbols: vec!["AAPL".into()] };
        assert_eq!(feed.url(), "wss://ws.finnhub.io?token=secret");
        assert!(!feed.shown_url().contains("secret"));
        let mut out = Vec::new();
        feed.read(br#"{"type":"trade","data":[{"s":"AAPL","p":190.5,"t":1704207600123,"v":10,"c":["1"]},{"s":"MSFT","p":370.1,"t":1704207600200,"v":0.5}]}"#, &mut out);
        feed.read(br#"{"type":"ping"}"#, &mut out);
        feed.read(br#"{"type":"news"}"#, &mut out);
        feed.read(b"not json", &mut out);
        feed.read(br#"{"type":"error","msg":"Invalid API key"}"#, &mut out);
        let ticks: Vec<&Tick> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ticks.len(), 2);
        assert_eq!(
            (&*ticks[0].symbol, ticks[0].time_ms, ticks[0].price, ticks[0].size),
            ("AAPL", 1704207600123, 190.5, 10.0)
        );
        let kinds: Vec<&str> = out.iter().filter_map(|r| r.as_ref().err()).map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["unknown_message", "bad_json", "feed_error"]);
    }
}
