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

use crate::backfill::{BackfillPlan, Filler};
use crate::bounded::KEPT_START_BYTES;
use crate::yahoo_stream::decode_frame;

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
    max_tick_age: Duration,
    backfill: Option<BackfillPlan>,
}

/// A live feed's ticks older than this are refused (`bad_time`): a trade a
/// week old is a feed's mistake, not news.
pub const DEFAULT_MAX_TICK_AGE: Duration = Duration::from_secs(7 * 86_400);

impl<F: Feed> LiveSource<F> {
    /// A source reading `feed`, reconnecting as `reconnect` says; an address
    /// that no connection could ever reach (`ws://127.0.0.1:99999`,
    /// `ws://exa mple.com/`, `http://…`) is refused here, not retried forever.
    pub fn new(feed: F, reconnect: Reconnect) -> Result<Self, String> {
        check_url(&feed.url()).map_err(|why| format!("{}: {why}", redact_userinfo(&feed.shown_url())))?;
        Ok(LiveSource { feed, reconnect, max_tick_age: DEFAULT_MAX_TICK_AGE, backfill: None })
    }

    /// Refuses ticks older than `age` (`--max-tick-age`).
    pub fn with_max_tick_age(mut self, age: Duration) -> Self {
        self.max_tick_age = age;
        self
    }

    /// Fetches the history before connecting, and each outage's gap after
    /// (see [`crate::backfill`]).
    pub fn with_backfill(mut self, plan: Option<BackfillPlan>) -> Self {
        self.backfill = plan;
        self
    }
}

/// Why `url` is no WebSocket address, if it is not.
fn check_url(url: &str) -> Result<(), String> {
    use tokio_tungstenite::tungstenite::http::Uri;
    let uri: Uri = url.parse().map_err(|e| format!("not a valid address ({e})"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        other => return Err(format!("the scheme is {other:?}, not ws or wss")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the address names no host".into());
    }
    let authority = uri.authority().map_or("", |a| a.as_str());
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some((_, port)) = authority.rsplit_once(':').filter(|(_, p)| !p.contains(']')) {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!("port {port} is not a port (1-65535)"));
        }
    }
    Ok(())
}

/// An address with any `user:password@` replaced by `***@`: logs and
/// summaries never show a credential.
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The longest message the socket reads (16 MiB): longer, the connection is
/// dropped and made again.
const MAX_SOCKET_MESSAGE: usize = 16 << 20;

/// Rejected frames are kept whole up to this size, else by their start.
const MAX_KEPT_FRAME: usize = 64 * 1024;

/// Finnhub sends trades in batches (1,400 trades are 80 KB): frames up to
/// 1 MiB are read.
pub const FINNHUB_MAX_FRAME_BYTES: usize = 1 << 20;

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
        let LiveSource { feed, reconnect, max_tick_age, backfill } = *self;
        tokio::spawn(async move {
            let filler = match backfill {
                Some(plan) => {
                    let symbols: Vec<Arc<str>> =
                        feed.symbols().iter().map(|s| Arc::from(s.to_ascii_uppercase())).collect();
                    match Filler::start(plan, &symbols, tx.clone()).await {
                        Some(filler) => Some(filler),
                        None if tx.is_closed() => return,
                        None => None,
                    }
                }
                None => None,
            };
            connection_loop(feed, reconnect, max_tick_age, filler, tx).await
        });
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

async fn connection_loop<F: Feed>(
    mut feed: F,
    reconnect: Reconnect,
    max_age: Duration,
    mut filler: Option<Filler>,
    tx: mpsc::Sender<Item>,
) {
    let mut wait = reconnect.initial;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (ended, got_frames) = connect_once(&mut feed, &reconnect, max_age, &mut filler, &tx).await;
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
async fn connect_once<F: Feed>(
    feed: &mut F,
    reconnect: &Reconnect,
    max_age: Duration,
    filler: &mut Option<Filler>,
    tx: &mpsc::Sender<Item>,
) -> (Ended, bool) {
    // The socket takes messages up to `MAX_SOCKET_MESSAGE`, so that one
    // longer than a feed reads is refused on its own (its start kept) and
    // the connection goes on; past this bound the connection is dropped.
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_SOCKET_MESSAGE)).max_frame_size(Some(MAX_SOCKET_MESSAGE));
    let connecting = tokio_tungstenite::connect_async_with_config(feed.url(), Some(config), false);
    let mut socket = match tokio::time::timeout(reconnect.stall, connecting).await {
        Ok(Ok((socket, _))) => socket,
        // The error may quote the address, which may carry a token: not shown.
        Ok(Err(e)) => return (Ended::Lost(format!("connection failed: {}", redact(&e.to_string(), feed))), false),
        Err(_) => return (Ended::Lost("connection timed out".into()), false),
    };
    tracing::info!(feed = feed.name(), url = %feed.shown_url(), "connected");
    if let Some(filler) = filler.as_mut() {
        filler.connected();
    }
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
    // A stall is judged by data frames: a server that only pings is stalled.
    let mut last_data = tokio::time::Instant::now();
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
            next = tokio::time::timeout_at(last_data + reconnect.stall, socket.next()) => next,
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
        last_data = tokio::time::Instant::now();
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
            let recent = |tick: Tick| {
                if tick.time_ms < now_ms.saturating_sub(max_age.as_millis() as i64) {
                    let at = stockstream_core::tick::time_text::format(tick.time_ms);
                    return Err(Refusal::new(
                        RejectKind::BadTime,
                        format!("{} at {at}: older than --max-tick-age ({} s)", tick.symbol, max_age.as_secs()),
                    ));
                }
                Ok(tick)
            };
            let item = match result.and_then(|t| t.check(now_ms).map(|()| t)).and_then(recent).and_then(subscribed) {
                Ok(tick) => {
                    if let Some(filler) = filler.as_mut() {
                        if !filler.on_tick(&tick.symbol, tick.time_ms).await {
                            let _ = socket.close(None).await;
                            return (Ended::ReaderGone, got_frames);
                        }
                    }
                    Item::Tick(tick)
                }
                Err(refusal) => {
                    // A frame too long to read is kept by its start.
                    let kept =
                        if bytes.len() > MAX_KEPT_FRAME { bytes[..KEPT_START_BYTES].to_vec() } else { bytes.clone() };
                    Item::Reject(refusal.into_reject(format!("{}#{frame_no}", feed.name()), kept))
                }
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
        redact_userinfo(&self.url)
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
        redact_userinfo(&self.url)
    }

    fn subscriptions(&self) -> Vec<String> {
        self.symbols.iter().map(|s| serde_json::json!({ "type": "subscribe", "symbol": s }).to_string()).collect()
    }

    fn read(&mut self, frame: &[u8], out: &mut Vec<Result<Tick, Refusal>>) {
        if frame.len() > FINNHUB_MAX_FRAME_BYTES {
            out.push(Err(Refusal::new(
                RejectKind::FrameTooLong,
                format!("a frame of {} bytes (at most {FINNHUB_MAX_FRAME_BYTES})", frame.len()),
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

    #[test]
    fn an_address_no_connection_could_reach_is_refused_at_start() {
        let feed = |url: &str| YahooFeed { url: url.into(), symbols: vec!["NVDA".into()] };
        for bad in ["ws://127.0.0.1:99999/", "ws://exa mple.com/", "http://127.0.0.1:9/", "ws:///path"] {
            let refused = LiveSource::new(feed(bad), Reconnect::default()).err();
            assert!(refused.is_some(), "{bad} accepted");
        }
        assert!(LiveSource::new(feed("wss://streamer.finance.yahoo.com/?version=2"), Reconnect::default()).is_ok());
        assert!(LiveSource::new(feed("ws://user:pw@127.0.0.1:8080/"), Reconnect::default()).is_ok());
        assert!(LiveSource::new(feed("ws://user:pw@[::1]/"), Reconnect::default()).is_ok());
        let why = LiveSource::new(feed("ws://user:secret@127.0.0.1:99999/"), Reconnect::default()).err().unwrap();
        assert!(!why.contains("secret"), "{why}");
        assert_eq!(redact_userinfo("ws://user:pw@host:1/p?q=a@b"), "ws://***@host:1/p?q=a@b");
        assert_eq!(redact_userinfo("wss://host/p"), "wss://host/p");
        assert_eq!(feed("ws://u:pw@h/").shown_url(), "ws://***@h/");
    }

    /// A server that only pings keeps no feed alive: after `stall` without a
    /// data frame the client connects again.
    #[tokio::test]
    async fn a_server_that_only_pings_is_a_stall() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                    for _ in 0..100 {
                        if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
        });
        let feed = YahooFeed { url: format!("ws://{addr}/"), symbols: vec!["NVDA".into()] };
        let reconnect = Reconnect {
            stall: Duration::from_millis(600),
            initial: Duration::from_millis(50),
            max: Duration::from_millis(50),
        };
        let mut records = Box::new(LiveSource::new(feed, reconnect).unwrap()).records();
        let _ = tokio::time::timeout(Duration::from_secs(4), records.next()).await;
        let n = connections.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n >= 2, "{n} connection(s): pings alone kept a silent feed alive");
    }

    /// Frames too long for the feed are refused by their start and the
    /// connection goes on; a Finnhub batch of 1,400 trades (about 80 KB) is read.
    #[tokio::test]
    async fn a_long_frame_is_kept_by_its_start_and_the_feed_goes_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let batch: Vec<serde_json::Value> = (0..1_400)
                .map(|i| serde_json::json!({"s": "AAPL", "p": 100.0 + i as f64, "t": now, "v": 1.0}))
                .collect();
            let batch = serde_json::json!({"type": "trade", "data": batch}).to_string();
            assert!(batch.len() > 64 * 1024, "{} bytes", batch.len());
            ws.send(Message::text(batch)).await.unwrap();
            ws.send(Message::text(format!("{{\"type\":\"trade\",\"data\":[],\"pad\":\"{}\"}}", "x".repeat(2 << 20))))
                .await
                .unwrap();
            ws.send(Message::text(format!(r#"{{"type":"trade","data":[{{"s":"AAPL","p":7.0,"t":{now},"v":1.0}}]}}"#)))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let feed = FinnhubFeed { url: format!("ws://{addr}/"), token: "t".into(), symbols: vec!["AAPL".into()] };
        let mut records = Box::new(LiveSource::new(feed, Reconnect::default()).unwrap()).records();
        let mut items = Vec::new();
        while items.len() < 1_402 {
            match tokio::time::timeout(Duration::from_secs(10), records.next()).await {
                Ok(Some(item)) => items.push(item),
                other => panic!("{} items, then {:?}", items.len(), other.map(|i| i.map(|_| ()))),
            }
        }
        assert!(items[..1_400].iter().all(|i| matches!(i, Item::Tick(_))));
        match &items[1_400] {
            Item::Reject(r) => assert_eq!((r.kind, r.original.len()), (RejectKind::FrameTooLong, KEPT_START_BYTES)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&items[1_401], Item::Tick(t) if t.price == 7.0), "the feed went on after the long frame");
    }

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
        let source = Box::new(LiveSource::new(feed, Reconnect::default()).unwrap());
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
