//! The consume loop's decisions, tested without Kafka: the in-process bus, a
//! real SQLite store, and a wrapper that fails, stalls or revokes on command.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use stockstream_bus::{memory_bus, Consumer, MemoryConsumer, Polled, Position, Producer, Revoke};
use stockstream_core::{encode, Bar, BusError, DateRange, DeadLetters, Reject, StoreError};
use stockstream_store::{SqliteStore, Store};
use tokio::sync::watch;

use super::*;

/// What happened, in order, across the store, the dead letters and the bus.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// A store write of bars with these closes.
    Wrote(Vec<f64>),
    /// Rejects kept, by their bus offsets.
    Kept(Vec<i64>),
    /// A commit up to this offset.
    Committed(i64),
}

type Log = Arc<Mutex<Vec<Event>>>;

/// What the store does on its n-th write (counting from 1).
#[derive(Clone, Copy)]
enum OnWrite {
    /// Writes this many bars of the batch, then fails for good.
    FailAfter(usize),
    /// Fails as an outage would, this many times, then writes.
    Unavailable(usize),
    /// Revokes the bus's partition, then writes.
    Revoke,
    /// Takes this long, then writes.
    Stall(Duration),
}

/// A real SQLite store that misbehaves on command.
struct Faulty {
    inner: SqliteStore,
    writes: AtomicUsize,
    plan: Vec<(usize, OnWrite)>,
    outages_left: AtomicUsize,
    revoke: Option<Revoke>,
    log: Log,
}

#[async_trait]
impl Store for Faulty {
    async fn upsert(&self, bars: Arc<[Bar]>) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((_, action)) = self.plan.iter().find(|(at, _)| *at == n) {
            match *action {
                OnWrite::FailAfter(k) => {
                    self.inner.upsert(bars[..k].to_vec().into()).await?;
                    return Err(StoreError::fatal("disk full"));
                }
                OnWrite::Unavailable(times) => {
                    if self.outages_left.fetch_add(1, Ordering::SeqCst) < times {
                        self.writes.fetch_sub(1, Ordering::SeqCst);
                        return Err(StoreError::transient("database is locked"));
                    }
                }
                OnWrite::Revoke => self.revoke.as_ref().expect("revoke handle").revoke(),
                OnWrite::Stall(d) => tokio::time::sleep(d).await,
            }
        }
        self.log.lock().unwrap().push(Event::Wrote(bars.iter().map(|b| b.close).collect()));
        self.inner.upsert(bars).await
    }
    async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
        self.inner.range(company, range).await
    }
    async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        self.inner.newest(company, range, limit).await
    }
    async fn catalog(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<stockstream_store::CatalogEntry>, StoreError> {
        self.inner.catalog(after, limit).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
}

/// Dead letters in the same SQLite file, logged.
struct LoggedDeadLetters {
    inner: SqliteStore,
    log: Log,
}

#[async_trait]
impl DeadLetters for LoggedDeadLetters {
    async fn keep(&self, rejects: Vec<Reject>) -> Result<(), StoreError> {
        let offsets = rejects.iter().map(|r| r.source.trim_start_matches("memory@").parse().unwrap()).collect();
        self.inner.keep(rejects).await?;
        self.log.lock().unwrap().push(Event::Kept(offsets));
        Ok(())
    }
}

/// The in-process consumer, its commits logged.
struct LoggedConsumer {
    inner: MemoryConsumer,
    log: Log,
}

#[async_trait]
impl Consumer for LoggedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        self.inner.poll(max, wait).await
    }
    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError> {
        if let Some(max) = done.iter().map(|p| p.offset).max() {
            self.log.lock().unwrap().push(Event::Committed(max));
        }
        self.inner.commit(done).await
    }
    fn describe(&self, position: Position) -> String {
        self.inner.describe(position)
    }
    fn owns(&self, partition: i32) -> bool {
        self.inner.owns(partition)
    }
}

fn bar(day: u32, close: f64) -> Bar {
    Bar {
        company: "NVIDIA".into(),
        symbol: "NVDA".into(),
        ts: format!("2024-01-{day:02}").parse().unwrap(),
        open: close,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 1000.0,
        vwap: None,
        trades: None,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    sqlite: SqliteStore,
    store: Arc<Faulty>,
    dead: Arc<LoggedDeadLetters>,
    consumer: LoggedConsumer,
    log: Log,
}

/// Puts `messages` on the in-process bus (then closes it) and builds the
/// store with its plan.
async fn setup(messages: Vec<Vec<u8>>, plan: Vec<(usize, OnWrite)>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let (producer, consumer) = memory_bus(messages.len() + 1);
    for m in messages {
        producer.send(b"NVDA", m).await.unwrap();
    }
    drop(producer);
    let log = Log::default();
    let revoke = Some(consumer.revoke_handle());
    let store = Arc::new(Faulty {
        inner: sqlite.clone(),
        writes: AtomicUsize::new(0),
        plan,
        outages_left: AtomicUsize::new(0),
        revoke,
        log: log.clone(),
    });
    let dead = Arc::new(LoggedDeadLetters { inner: sqlite.clone(), log: log.clone() });
    Setup { _dir: dir, sqlite, store, dead, consumer: LoggedConsumer { inner: consumer, log: log.clone() }, log }
}

fn options(batch_size: usize) -> ConsumeOptions {
    ConsumeOptions {
        batch_size,
        flush_interval: Duration::from_secs(10),
        retry: RetryPolicy {
            limit: Duration::from_secs(10),
            first_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(5),
        },
        ..Default::default()
    }
}

async fn run(s: &mut Setup, options: &ConsumeOptions) -> Result<(), PipelineError> {
    let (_tx, stop) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    consume(&mut s.consumer, s.store.clone(), s.dead.clone(), stats, options, stop).await
}

fn messages(closes: impl IntoIterator<Item = (u32, f64)>) -> Vec<Vec<u8>> {
    closes.into_iter().map(|(day, close)| encode(&bar(day, close))).collect()
}

#[tokio::test]
async fn a_write_that_fails_after_part_of_a_batch_commits_nothing_past_it() {
    // Three batches of 10; the second write stores 4 bars, then fails for good.
    let mut s = setup(messages((1..=30).map(|i| (i, 100.0 + i as f64))), vec![(2, OnWrite::FailAfter(4))]).await;
    let err = run(&mut s, &options(10)).await.unwrap_err();
    assert!(matches!(&err, PipelineError::Store(e) if !e.is_transient()), "{err}");
    assert_eq!(s.consumer.inner.committed(), Some(9), "only the first batch may be committed");
    let commits: Vec<i64> = s
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| if let Event::Committed(o) = e { Some(*o) } else { None })
        .collect();
    assert_eq!(commits, [9]);
    // The first batch and the failed write's first 4 bars are in the store, and
    // nothing after them: a restart re-reads from offset 10 and the idempotent
    // writes absorb what is there twice.
    assert_eq!(s.sqlite.count().await.unwrap(), 14);
}

#[tokio::test]
async fn an_outage_is_retried_and_then_everything_is_committed() {
    let mut s = setup(messages((1..=30).map(|i| (i, 100.0 + i as f64))), vec![(2, OnWrite::Unavailable(3))]).await;
    run(&mut s, &options(10)).await.unwrap();
    assert_eq!(s.consumer.inner.committed(), Some(29));
    assert_eq!(s.sqlite.count().await.unwrap(), 30);
    assert_eq!(s.store.outages_left.load(Ordering::SeqCst), 4, "three failed attempts, then the write");
}

#[tokio::test]
async fn a_revoked_partition_is_not_committed_by_its_old_owner() {
    // A first batch is written and committed; the partition is then taken away
    // while the second batch is being written.
    let mut s = setup(vec![], vec![(2, OnWrite::Revoke)]).await;
    let (producer, consumer) = memory_bus(64);
    let revoke = consumer.revoke_handle();
    s.consumer.inner = consumer;
    Arc::get_mut(&mut s.store).expect("one owner").revoke = Some(revoke);
    for m in messages((1..=10).map(|i| (i, 100.0 + i as f64))) {
        producer.send(b"NVDA", m).await.unwrap();
    }
    let log = s.log.clone();
    let feeder = tokio::spawn(async move {
        // The rest only once the first batch is committed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !log.lock().unwrap().contains(&Event::Committed(9)) {
            assert!(tokio::time::Instant::now() < deadline, "the first batch was never committed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for m in messages((11..=30).map(|i| (i, 100.0 + i as f64))) {
            producer.send(b"NVDA", m).await.unwrap();
        }
    });
    let mut opts = options(10);
    opts.flush_interval = Duration::from_millis(20);
    run(&mut s, &opts).await.unwrap();
    feeder.await.unwrap();
    assert_eq!(s.consumer.inner.committed(), Some(9), "the first batch committed, nothing after the revocation");
    // Written all the same (at-least-once): the new owner's re-reads are absorbed.
    assert_eq!(s.sqlite.count().await.unwrap(), 30);
}

#[tokio::test]
async fn write_behind_keeps_bus_order() {
    // The same five identities in three batches; the first write is the slowest.
    // The store must end with the last batch's values, written last.
    let batches = (0..3).flat_map(|round| (1..=5).map(move |day| (day, 100.0 * (round + 1) as f64 + day as f64)));
    let mut s = setup(messages(batches), vec![(1, OnWrite::Stall(Duration::from_millis(300)))]).await;
    run(&mut s, &options(5)).await.unwrap();
    let writes: Vec<Vec<f64>> = s
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| if let Event::Wrote(c) = e { Some(c.clone()) } else { None })
        .collect();
    let firsts: Vec<f64> = writes.iter().map(|w| w[0]).collect();
    assert_eq!(firsts, [101.0, 201.0, 301.0], "writes in bus order");
    let stored: Vec<f64> =
        s.sqlite.range("NVIDIA", &DateRange::default()).await.unwrap().iter().map(|b| b.close).collect();
    assert_eq!(stored, [301.0, 302.0, 303.0, 304.0, 305.0]);
    assert_eq!(s.consumer.inner.committed(), Some(14));
}

#[tokio::test]
async fn rejects_reach_dead_letters_before_their_offsets_are_committed() {
    let mut all = messages((1..=12).map(|i| (i, 100.0 + i as f64)));
    all[3] = b"not json".to_vec();
    all[7] = br#"{"Date": "2024-02-30", "Company Name": "NVIDIA", "Close": 1}"#.to_vec();
    all[10] = encode(&bar(10, 5.0)); // a second (NVIDIA, 2024-01-10): the first is superseded
    let mut s = setup(all, vec![]).await;
    run(&mut s, &options(4)).await.unwrap();
    let log = s.log.lock().unwrap().clone();
    let kept: Vec<(usize, i64)> = log
        .iter()
        .enumerate()
        .flat_map(|(i, e)| match e {
            Event::Kept(offsets) => offsets.iter().map(|o| (i, *o)).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(kept.iter().map(|(_, o)| *o).collect::<Vec<_>>(), [3, 7, 10], "{log:?}");
    for (kept_at, offset) in kept {
        let committed_at = log
            .iter()
            .position(|e| matches!(e, Event::Committed(c) if *c >= offset))
            .expect("everything is committed in the end");
        assert!(kept_at < committed_at, "reject at offset {offset} kept after its commit: {log:?}");
    }
    assert_eq!(s.sqlite.rejects().await.unwrap().len(), 3);
    assert_eq!(s.consumer.inner.committed(), Some(11));
}

#[tokio::test]
async fn records_handed_over_unencoded_are_taken_as_their_wire_form_would_be() {
    use stockstream_core::RawBar;
    // The same records, once as bytes and once as records, on two buses.
    let mut records: Vec<RawBar> = (1..=6).map(|i| RawBar::from(&bar(i, 100.0 + i as f64))).collect();
    records[2].close = None; // filled from the bar before
    records[4].date = Some("2024-02-30".into()); // refused
    records[5].open = Some(-1.0); // refused
    let mut outcomes = Vec::new();
    for as_records in [false, true] {
        let mut s = setup(vec![], vec![]).await;
        let (producer, consumer) = memory_bus(16);
        for r in &records {
            match as_records {
                true => producer.send_record(b"NVDA", r.clone(), String::new()).await.unwrap(),
                false => {
                    let mut bytes = Vec::new();
                    stockstream_core::encode_raw_into(r, &mut bytes);
                    producer.send(b"NVDA", bytes).await.unwrap()
                }
            }
        }
        drop(producer);
        s.consumer.inner = consumer;
        run(&mut s, &options(10)).await.unwrap();
        let bars = s.sqlite.range("NVIDIA", &DateRange::default()).await.unwrap();
        let rejects: Vec<_> =
            s.sqlite.rejects().await.unwrap().into_iter().map(|r| (r.kind, r.reason, r.original)).collect();
        outcomes.push((bars, rejects));
    }
    assert_eq!(outcomes[0].0.len(), 4);
    assert_eq!(outcomes[0].0[2].close, 102.0, "forward filled");
    assert_eq!(outcomes[0].1.len(), 2);
    assert_eq!(outcomes[1], outcomes[0], "a record is taken as its encoded form, rejects keep the same bytes");
}

/// Two rows of one (company, date) with different prices: the last wins and
/// the first is kept in the dead letters as `superseded`, whatever the batch
/// size (before, the default batch kept the first and a batch of 1 the last).
#[tokio::test]
async fn the_last_row_of_an_identity_wins_at_any_batch_size() {
    let mut outcomes = Vec::new();
    for batch_size in [1, 2, 3, 5000] {
        let mut rows = messages((1..=6).map(|i| (i, 100.0 + i as f64)));
        rows.insert(3, encode(&bar(3, 999.0))); // right after the first day 3
        let mut s = setup(rows, vec![]).await;
        run(&mut s, &options(batch_size)).await.unwrap();
        let stored: Vec<f64> =
            s.sqlite.range("NVIDIA", &DateRange::default()).await.unwrap().iter().map(|b| b.close).collect();
        let rejects: Vec<(String, f64)> = s
            .sqlite
            .rejects()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind.clone(), stockstream_core::decode(&r.original).unwrap().close.unwrap()))
            .collect();
        outcomes.push((batch_size, stored, rejects));
    }
    for (batch_size, stored, rejects) in &outcomes {
        assert_eq!(stored, &[101.0, 102.0, 999.0, 104.0, 105.0, 106.0], "batch size {batch_size}");
        assert_eq!(rejects, &[("superseded".to_string(), 103.0)], "batch size {batch_size}");
    }
}

#[test]
fn bars_of_another_interval_are_refused_as_mixed_interval() {
    let raw = |company: &str, date: &str| stockstream_core::RawBar {
        date: Some(date.into()),
        open: Some(10.0),
        high: Some(11.0),
        low: Some(9.0),
        close: Some(10.5),
        volume: Some(100.0),
        company: Some(company.into()),
        ..Default::default()
    };
    let kind = |r: Result<Bar, Refusal>| r.map(|_| "ok".to_string()).unwrap_or_else(|e| e.kind.to_string());

    let mut daily = Acceptor::new(MissingPolicy::Ffill).expecting(Some(BarLength::Day));
    assert_eq!(kind(daily.accept_raw(&raw("Apple", "2023-04-03"))), "ok");
    let refused = daily.accept_raw(&raw("Apple", "2023-04-03T13:30:00Z")).unwrap_err();
    assert_eq!(refused.kind, RejectKind::MixedInterval);
    assert!(refused.reason.contains("an intraday time among 1d bars"), "{}", refused.reason);
    assert_eq!(kind(daily.accept_raw(&raw("Tesla", "2023-04-03T13:30:00Z"))), "mixed_interval", "a new company too");

    let mut minutes = Acceptor::new(MissingPolicy::Ffill).expecting(Some("5m".parse().unwrap()));
    assert_eq!(kind(minutes.accept_raw(&raw("Apple", "2023-04-03T13:30:00Z"))), "ok");
    assert_eq!(kind(minutes.accept_raw(&raw("Apple", "2023-04-03"))), "mixed_interval");
    let close = minutes.accept_raw(&raw("Apple", "2023-04-03T13:31:00Z")).unwrap_err();
    assert!(close.reason.contains("60 s from its bar at 2023-04-03T13:30:00Z, closer than 5m"), "{}", close.reason);
    assert_eq!(kind(minutes.accept_raw(&raw("Apple", "2023-04-03T13:40:00Z"))), "ok", "a gap is not a mix");
    assert_eq!(kind(minutes.accept_raw(&raw("Apple", "2023-04-03T13:40:00Z"))), "ok", "a redelivery is not a mix");

    let mut any = Acceptor::new(MissingPolicy::Ffill);
    assert_eq!(kind(any.accept_raw(&raw("Apple", "2023-04-03"))), "ok");
    assert_eq!(kind(any.accept_raw(&raw("Apple", "2023-04-03T13:30:00Z"))), "ok", "no interval: no check");
}

/// A consumer holding the state of 3 companies, fed 8 companies' bars day
/// after day in batches of 5: those it forgot are read back from the store
/// (the writes in flight finished first) and every alert equals those of a
/// consumer that holds every company.
#[tokio::test]
async fn a_consumer_holding_few_companies_raises_the_alerts_of_one_holding_all() {
    let first: chrono::NaiveDate = "2024-01-01".parse().unwrap();
    let mut messages = Vec::new();
    for day in 0..90u64 {
        for c in 0..8 {
            let close = 100.0 + (day as f64 * (c + 1) as f64 / 5.0).sin() * 10.0 + day as f64 * 0.05 * c as f64;
            let bar = Bar {
                company: format!("Company {c}"),
                symbol: format!("C{c}"),
                ts: stockstream_core::Ts::Date(first + chrono::Days::new(day)),
                open: close,
                high: close + 1.0,
                low: close - 1.0,
                close,
                volume: 1000.0 + ((day * 7 + c) % 13) as f64 * 400.0,
                vwap: None,
                trades: None,
            };
            messages.push(encode(&bar));
        }
    }
    #[derive(Default)]
    struct Raised(std::sync::Mutex<Vec<String>>);
    impl crate::Subscriber for Raised {
        fn on_bar(
            &self,
            _: &Bar,
            _: &stockstream_analytics::IndicatorRow,
            alerts: &[stockstream_core::Alert],
            _: Option<i64>,
        ) {
            let mut raised = self.0.lock().unwrap();
            raised.extend(alerts.iter().map(|a| format!("{} {} {} {}", a.company, a.date, a.rule, a.message)));
        }
    }
    let mut alerts = Vec::new();
    for hold in [None, Some(3)] {
        let mut s = setup(messages.clone(), Vec::new()).await;
        let raised = Arc::new(Raised::default());
        let stage = AnalyticsStage::new(vec![raised.clone()]);
        let analytics = Arc::new(match hold {
            Some(n) => stage.holding_at_most(n),
            None => stage,
        });
        let mut options = options(5);
        options.analytics = Some(analytics.clone());
        run(&mut s, &options).await.unwrap();
        assert_eq!(analytics.companies(), 8);
        let mut kept = std::mem::take(&mut *raised.0.lock().unwrap());
        kept.sort();
        alerts.push(kept);
    }
    assert!(alerts[0].len() > 10, "{:?}", alerts[0]);
    assert_eq!(alerts[1], alerts[0]);
}
