//! The driver with each stage, without Kafka: the in-process bus, real
//! SQLite, and buses that behave as Kafka does where it matters (a topic
//! that never closes, messages tagged with their topic).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use stockstream_analytics::{Alert, IndicatorRow};
use stockstream_bus::{memory_bus, Consumer, MemoryConsumer, MemoryProducer, Polled, Position, Producer};
use stockstream_core::{Bar, BusError, DateRange, Item, RawBar, Source, Tick};
use stockstream_store::{SqliteStore, Store};
use stockstream_window::BarLength;
use tokio::sync::watch;

use crate::{
    embedded, follow, over_bus, AnalyticsStage, ConsumeOptions, FollowedTopics, Pace, Stats, Subscriber, TickOptions,
};

/// A source of the items it is given.
struct Items(Vec<Item>);

impl Source for Items {
    fn name(&self) -> &'static str {
        "items"
    }
    fn description(&self) -> String {
        "test items".into()
    }
    fn ticks(&self) -> bool {
        true
    }
    fn records(self: Box<Self>) -> BoxStream<'static, Item> {
        futures_util::stream::iter(self.0).boxed()
    }
}

/// A producer whose bus stays open after the run's producer is done, as a
/// Kafka topic does.
struct NeverClosing(Arc<MemoryProducer>);

#[async_trait]
impl Producer for NeverClosing {
    async fn send(&self, key: &[u8], payload: Vec<u8>) -> Result<(), BusError> {
        self.0.send(key, payload).await
    }
    async fn send_record(&self, key: &[u8], record: RawBar, origin: String) -> Result<(), BusError> {
        self.0.send_record(key, record, origin).await
    }
    async fn flush(&self) -> Result<(), BusError> {
        self.0.flush().await
    }
}

/// Twelve minutes of ticks of three symbols, a tick every 10 s, starting at
/// 2024-03-04 15:00 UTC.
fn ticks() -> Vec<Tick> {
    let start = 1_709_564_400_000i64;
    let mut out = Vec::new();
    for i in 0..72i64 {
        for (k, symbol) in ["NVDA", "TSLA", "AAPL"].iter().enumerate() {
            out.push(Tick {
                symbol: Arc::from(*symbol),
                time_ms: start + i * 10_000 + k as i64,
                price: 100.0 + (i % 7) as f64 + k as f64,
                size: 10.0 + i as f64,
                day_volume: None,
                trade_id: None,
                source: Arc::from("test"),
            });
        }
    }
    out
}

fn tick_options() -> ConsumeOptions {
    ConsumeOptions { ticks: Some(TickOptions::new(BarLength::Fixed(60_000))), ..Default::default() }
}

async fn stored(store: &SqliteStore) -> Vec<Bar> {
    let mut all = Vec::new();
    for company in store.companies().await.unwrap() {
        all.extend(store.range(&company, &DateRange::default()).await.unwrap());
    }
    all
}

/// `run --bus kafka --source ticks --input FILE`: the producer finishes, the
/// topic stays open. The run must end once the bus is drained, its windows
/// flushed, with the bars of a run over the in-process bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_run_over_a_bus_that_never_closes_ends_once_drained_with_the_embedded_bars() {
    let dir = tempfile::tempdir().unwrap();
    let items = || Box::new(Items(ticks().into_iter().map(Item::Tick).collect()));
    let (_keep_stop, stop) = watch::channel(false);

    let embedded_store = SqliteStore::open(&dir.path().join("embedded.db")).unwrap();
    let store: Arc<dyn Store> = Arc::new(embedded_store.clone());
    embedded(
        items(),
        store.clone(),
        Arc::new(embedded_store.clone()),
        Arc::default(),
        &tick_options(),
        Pace::Max,
        stop.clone(),
    )
    .await
    .unwrap();

    let bus_store = SqliteStore::open(&dir.path().join("bus.db")).unwrap();
    let (producer, mut consumer) = memory_bus(1024);
    let producer = Arc::new(producer);
    let run = over_bus(
        items(),
        Box::new(NeverClosing(producer.clone())),
        &mut consumer,
        Arc::new(bus_store.clone()),
        Arc::new(bus_store.clone()),
        Arc::new(Stats::default()),
        tick_options(),
        Pace::Max,
        stop,
    );
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run did not end once its producer was done and the bus drained")
        .unwrap();
    let expected = stored(&embedded_store).await;
    assert_eq!(expected.len(), 3 * 12, "twelve minutes of three symbols");
    assert_eq!(stored(&bus_store).await, expected);
    // Up to the earliest tick of a window still held within its grace period.
    assert!(consumer.committed().is_some_and(|c| c > 0), "nothing committed");
}

/// What a live view is handed.
#[derive(Default)]
struct Seen {
    forming: Mutex<Vec<Bar>>,
    closed: Mutex<Vec<Bar>>,
}

impl Subscriber for Seen {
    fn on_bar(&self, bar: &Bar, _row: &IndicatorRow, _alerts: &[Alert], _sent_at: Option<i64>) {
        self.closed.lock().unwrap().push(bar.clone());
    }
    fn on_forming(&self, bar: &Bar, _sent_at: Option<i64>) {
        self.forming.lock().unwrap().push(bar.clone());
    }
}

/// The in-process bus with each message tagged with one topic, as a tail of
/// several Kafka topics tags them.
struct Tagged(MemoryConsumer, Arc<str>);

#[async_trait]
impl Consumer for Tagged {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        Ok(match self.0.poll(max, wait).await? {
            Polled::Messages(mut ms) => {
                for m in &mut ms {
                    m.topic = Some(self.1.clone());
                }
                Polled::Messages(ms)
            }
            other => other,
        })
    }
    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError> {
        self.0.commit(done).await
    }
    fn describe(&self, position: Position) -> String {
        self.0.describe(position)
    }
}

/// `serve --brokers … --interval 1s`: a tick the consumers refuse must not
/// move the live view, and a quiet symbol's bar must close on wall time, not
/// stay forming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_refuses_what_the_consumers_refuse_and_closes_quiet_bars() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
    let seen = Arc::new(Seen::default());
    let analytics = Arc::new(AnalyticsStage::new(vec![seen.clone()]));
    let (producer, consumer) = memory_bus(64);
    let mut tail = Tagged(consumer, Arc::from("t.ticks"));
    let topics = FollowedTopics { bars: "t".into(), ticks: "t.ticks".into(), alerts: "t.alerts".into() };
    let mut options = TickOptions::new(BarLength::Fixed(1_000));
    options.idle_close = Duration::from_millis(300);
    let (stop_tx, stop) = watch::channel(false);
    let following = tokio::spawn(async move {
        follow(&mut tail, topics, analytics, Box::new(|_| {}), Some(options), Arc::new(store), stop).await
    });
    // Early in a second, so that the good ticks share one 1 s bar.
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000 + 100;
    let send = |symbol: &str, time_ms: i64, price: f64| {
        let tick = Tick {
            symbol: Arc::from(symbol),
            time_ms,
            price,
            size: 1.0,
            day_volume: None,
            trade_id: None,
            source: Arc::from("test"),
        };
        serde_json::to_vec(&tick).unwrap()
    };
    for bytes in [
        send("NVDA", now, 100.0),
        send("NVDA", now + 1, -5.0),              // a negative price
        send("NVDA", now + 2 * 86_400_000, 99.0), // two days ahead
        send("", now + 2, 98.0),                  // no symbol
        send("NVDA", now + 3, 101.0),
    ] {
        producer.send(b"NVDA", bytes).await.unwrap();
    }
    // The quiet symbol's bar closes within the idle time and the check's period.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.closed.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    following.await.unwrap().unwrap();
    let forming = seen.forming.lock().unwrap().clone();
    assert!(!forming.is_empty(), "no forming bar reached the live view");
    for bar in &forming {
        assert_eq!(bar.symbol, "NVDA");
        assert!(bar.low >= 100.0 && bar.high <= 101.0, "a refused tick moved the forming bar: {bar:?}");
    }
    let closed = seen.closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 1, "the quiet symbol's bar did not close on wall time: {closed:?}");
    let bar = &closed[0];
    assert_eq!((bar.open, bar.high, bar.low, bar.close, bar.volume), (100.0, 101.0, 100.0, 101.0, 2.0));
}

/// Dead letters that are always unavailable.
struct DeadLettersDown;

#[async_trait]
impl stockstream_core::DeadLetters for DeadLettersDown {
    async fn keep(&self, _rejects: Vec<stockstream_core::Reject>) -> Result<(), stockstream_core::StoreError> {
        Err(stockstream_core::StoreError::transient("dead letters unavailable"))
    }
}

/// A consumer whose commits meet a coordinator that is away, this many times.
struct CommitsRefused(MemoryConsumer, usize);

#[async_trait]
impl Consumer for CommitsRefused {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        self.0.poll(max, wait).await
    }
    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError> {
        if self.1 > 0 {
            self.1 -= 1;
            return Err(BusError::transient("waiting for the group coordinator"));
        }
        self.0.commit(done).await
    }
    fn describe(&self, position: Position) -> String {
        self.0.describe(position)
    }
}

fn short_retry() -> ConsumeOptions {
    ConsumeOptions {
        retry: crate::RetryPolicy {
            limit: Duration::from_millis(200),
            first_wait: Duration::from_millis(10),
            max_wait: Duration::from_millis(20),
        },
        ..Default::default()
    }
}

/// Keeping rejects and committing offsets follow the configured retry
/// policy: with a limit of 200 ms, an outage of either stops the consumer in
/// well under a second (the default policy would wait two minutes).
#[tokio::test]
async fn rejects_and_commits_are_retried_under_the_configured_policy() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let options = short_retry();

    let (producer, mut consumer) = memory_bus(4);
    producer.send(b"X", b"not a bar".to_vec()).await.unwrap();
    drop(producer);
    let run = crate::consume(
        &mut consumer,
        Arc::new(store.clone()),
        Arc::new(DeadLettersDown),
        Arc::default(),
        &options,
        stop.clone(),
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), run).await.expect("retried past the policy's limit");
    assert!(ended.is_err(), "the dead letters' outage was not reported");

    // A coordinator away three times: the commit is retried, then done.
    let (producer, consumer) = memory_bus(4);
    producer.send(b"X", b"not a bar either".to_vec()).await.unwrap();
    drop(producer);
    let mut refusing = CommitsRefused(consumer, 3);
    let store: Arc<SqliteStore> = Arc::new(store);
    crate::consume(&mut refusing, store.clone(), store.clone(), Arc::default(), &options, stop.clone()).await.unwrap();
    assert_eq!((refusing.1, refusing.0.committed()), (0, Some(0)), "the commit was not retried");

    // Away for good: the consumer stops at the policy's limit.
    let (producer, consumer) = memory_bus(4);
    producer.send(b"X", b"nor this".to_vec()).await.unwrap();
    drop(producer);
    let mut refusing = CommitsRefused(consumer, usize::MAX);
    let run = crate::consume(&mut refusing, store.clone(), store, Arc::default(), &options, stop);
    let ended = tokio::time::timeout(Duration::from_secs(10), run).await.expect("retried past the policy's limit");
    assert!(ended.is_err(), "the commit's failure was not reported");
}

/// A stop whose sender is gone must not end the pacing: 10 records at 50 a
/// second take about 200 ms, not nothing.
#[tokio::test]
async fn pacing_holds_when_the_stop_channel_is_closed() {
    let (producer, mut consumer) = memory_bus(64);
    let (stop_tx, stop) = watch::channel(false);
    drop(stop_tx);
    let items = Box::new(Items(ticks().into_iter().take(10).map(Item::Tick).collect()));
    let started = std::time::Instant::now();
    crate::produce(items, &producer, &DeadLettersDown, &Stats::default(), Pace::Rate(50.0), Default::default(), stop)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "10 records at 50/s sent in {took:?}: the pace was dropped");
    drop(producer);
    let mut n = 0;
    while let Polled::Messages(ms) = consumer.poll(64, Duration::from_secs(1)).await.unwrap() {
        n += ms.len();
    }
    assert_eq!(n, 10);
}

/// A fetched bar settles its window: stored over the live bar the windows
/// made of part of it, and a late tick within the grace period no longer
/// revises it. A fetched bar of another length goes to its own table; a
/// fetched bar that is not whole goes to the dead letters with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_bars_are_stored_over_the_live_ones_and_stay() {
    use stockstream_core::fetched::encode_fetched;
    use stockstream_core::{FetchedBar, Ts};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("f.db")).unwrap().for_interval("1m").await.unwrap();
    let start = 1_709_564_400_000i64; // 15:00 UTC
    let tick = |at: i64, price: f64| Tick {
        symbol: Arc::from("NVDA"),
        time_ms: start + at,
        price,
        size: 5.0,
        day_volume: None,
        trade_id: None,
        source: Arc::from("test"),
    };
    let bar = |minute: i64, close: f64| Bar {
        company: "NVIDIA".into(),
        symbol: "NVDA".into(),
        ts: Ts::Instant(chrono::DateTime::from_timestamp_millis(start + minute * 60_000).unwrap()),
        open: 90.0,
        high: 120.0,
        low: 80.0,
        close,
        volume: 1000.0,
        vwap: None,
        trades: None,
    };
    let fetched = |b: Bar, length: i64| Item::Fetched(FetchedBar { bar: b, length: BarLength::Fixed(length) });
    let mut not_whole = encode_fetched(&FetchedBar { bar: bar(3, 1.0), length: BarLength::Fixed(60_000) });
    not_whole = String::from_utf8(not_whole).unwrap().replace("\"Close\":1", "\"Close\":null").into_bytes();
    let items = vec![
        // The feed saw the second half of minute 0 only.
        Item::Tick(tick(30_000, 100.0)),
        Item::Tick(tick(50_000, 101.0)),
        // Minute 1 live, which closes minute 0 (past the 5 s lateness).
        Item::Tick(tick(66_000, 102.0)),
        // Minute 0 whole from the chart API, then a late tick for it.
        fetched(bar(0, 99.0), 60_000),
        Item::Tick(tick(70_000, 103.0)),
        Item::Tick(tick(40_000, 150.0)),
        // An hour bar of history (10:30 New York), for the 1h table.
        fetched(bar(30, 98.0), 3_600_000),
        Item::Wire(stockstream_core::WireRecord { key: "NVDA".into(), payload: not_whole, ts: None }),
    ];
    let (_keep, stop) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    embedded(
        Box::new(Items(items)),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        stats.clone(),
        &tick_options(),
        Pace::Max,
        stop,
    )
    .await
    .unwrap();
    let minutes = stored(&store).await;
    let first = minutes.iter().find(|b| b.ts.to_string() == "2024-03-04T15:00:00Z").unwrap();
    assert_eq!((first.close, first.high, first.volume, first.trades), (99.0, 120.0, 1000.0, None), "{minutes:?}");
    let second = minutes.iter().find(|b| b.ts.to_string() == "2024-03-04T15:01:00Z").unwrap();
    assert_eq!((second.open, second.close, second.trades), (102.0, 103.0, Some(2)));
    let hours = store.interval("1h").await.unwrap();
    let hour = hours.range("NVIDIA", &DateRange::default()).await.unwrap();
    assert_eq!(hour.len(), 1, "{hour:?}");
    assert_eq!((hour[0].ts.to_string().as_str(), hour[0].close), ("2024-03-04T15:30:00Z", 98.0));
    let kept = store.rejects().await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].reason.contains("Close"), "{kept:?}");
}
