//! The produce loop: a source's records onto the bus, paced; rows the source
//! could not read go to the dead letters.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use stockstream_bus::Producer;
use stockstream_core::{
    canonical_symbol, encode_into, symbol_for_company, DeadLetters, Item, RawBar, Reject, Source, Ts,
};
use tokio::sync::watch;

use crate::{PipelineError, RetryPolicy, Stats};

/// How the producer paces itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Pace {
    /// As fast as the bus takes them.
    #[default]
    Max,
    /// This many records per second.
    Rate(f64),
    /// Replay history this many times faster than its timestamps.
    Speed(f64),
}

/// Sends every record of `source` to the bus. Stops early, cleanly, when `stop`
/// turns true; returns once everything sent is delivered. Rows the source
/// refused are kept in `dead`, retried under `retry`.
pub async fn produce(
    source: Box<dyn Source>,
    producer: &dyn Producer,
    dead: &dyn DeadLetters,
    stats: &Stats,
    pace: Pace,
    retry: RetryPolicy,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let started = Instant::now();
    let mut pacer = Pacer::new(pace);
    let mut rejects = Vec::new();
    let live = source.live();
    let mut records = source.records();
    let mut stop_open = true;
    loop {
        if *stop.borrow() {
            tracing::info!("stop requested: producer stops reading its source");
            break;
        }
        // An item already there is taken at once; only a wait for the source
        // also listens for a signal, so a slow source never delays a stop.
        let next = match records.next().now_or_never() {
            Some(next) => next,
            None if stop_open => tokio::select! {
                biased;
                changed = stop.changed() => {
                    stop_open = changed.is_ok();
                    continue;
                }
                item = records.next() => item,
            },
            None => records.next().await,
        };
        let Some(item) = next else { break };
        let (key, ts, outgoing) = match prepare(item) {
            Prepared::Send(key, ts, outgoing) => (key, ts, outgoing),
            Prepared::Reject(r) => {
                stats.read.fetch_add(1, Ordering::Relaxed);
                rejects.push(r);
                if rejects.len() >= 1000 {
                    keep_rejects(dead, stats, std::mem::take(&mut rejects), retry).await?;
                }
                continue;
            }
        };
        if let Some(wait) = pacer.wait_for(ts, started) {
            // A stop whose sender is gone answers `changed` at once: then
            // only the pace's sleep is waited for.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = stop.changed(), if stop_open => stop_open = changed.is_ok(),
            }
            if *stop.borrow() {
                // This record was never sent, so it is not counted as read.
                break;
            }
        }
        let sending = outgoing.send(producer, &key);
        // A bus that takes nothing (its broker gone, its queue full) does
        // not hold a stop up: the record is left unsent, and not counted.
        let mut sending = std::pin::pin!(sending);
        let sent = loop {
            tokio::select! {
                biased;
                sent = &mut sending => break Some(sent),
                changed = stop.changed(), if stop_open => {
                    stop_open = changed.is_ok();
                    if *stop.borrow() {
                        break None;
                    }
                }
            }
        };
        match sent {
            Some(sent) => sent?,
            None => break,
        }
        stats.read.fetch_add(1, Ordering::Relaxed);
        stats.produced.fetch_add(1, Ordering::Relaxed);
    }
    if *stop.borrow() && live {
        drain(&mut records, producer, stats, &mut rejects).await?;
    }
    keep_rejects(dead, stats, rejects, retry).await?;
    if *stop.borrow() {
        // Stopped by a signal: what the bus has not taken within
        // `STOP_FLUSH` is reported, not waited for.
        return Ok(producer.flush_within(STOP_FLUSH).await?);
    }
    Ok(producer.flush().await?)
}

/// How long a stopped producer waits for the bus to take what it queued.
pub const STOP_FLUSH: Duration = Duration::from_secs(8);

/// Items a stopped producer still hands on from what its source already
/// holds (a live feed's ticks received before the stop, which no one sends
/// again), within `STOP_DRAIN_TIME`.
const STOP_DRAIN: usize = 4096;
const STOP_DRAIN_TIME: Duration = Duration::from_secs(2);

/// Hands on what the source holds ready, nothing it would have to wait for.
async fn drain(
    records: &mut futures_util::stream::BoxStream<'static, Item>,
    producer: &dyn Producer,
    stats: &Stats,
    rejects: &mut Vec<Reject>,
) -> Result<(), PipelineError> {
    let deadline = tokio::time::Instant::now() + STOP_DRAIN_TIME;
    for _ in 0..STOP_DRAIN {
        let Some(Some(item)) = records.next().now_or_never() else { break };
        stats.read.fetch_add(1, Ordering::Relaxed);
        match prepare(item) {
            Prepared::Reject(r) => rejects.push(r),
            Prepared::Send(key, _, outgoing) => {
                match tokio::time::timeout_at(deadline, outgoing.send(producer, &key)).await {
                    Ok(sent) => {
                        sent?;
                        stats.produced.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        stats.read.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(
                            "the bus took nothing for {} s after the stop: the rest is left",
                            STOP_DRAIN_TIME.as_secs()
                        );
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// One item, ready for the bus or for the dead letters.
enum Prepared {
    Send(String, Option<Ts>, Outgoing),
    Reject(Reject),
}

/// A bar file's rows go as records (the bus encodes them if it must);
/// everything else is encoded here.
fn prepare(item: Item) -> Prepared {
    match item {
        Item::Bar(bar) => {
            let mut bytes = Vec::with_capacity(160);
            encode_into(&bar, &mut bytes);
            Prepared::Send(bar.symbol, Some(bar.ts), Outgoing::Bytes(bytes, None))
        }
        Item::Raw(rec) => {
            let key = match (&rec.raw.symbol, &rec.raw.company) {
                (Some(s), _) => s.clone(),
                (None, Some(c)) => symbol_for_company(c),
                (None, None) => String::new(),
            };
            let ts = rec.raw.date.as_deref().and_then(|d| d.parse().ok());
            Prepared::Send(key, ts, Outgoing::Record(rec.raw, rec.source))
        }
        Item::Wire(w) => Prepared::Send(w.key, w.ts, Outgoing::Bytes(w.payload, None)),
        Item::Tick(t) => prepare_tick(t, None),
        Item::TickAt(t, origin) => prepare_tick(t, Some(origin)),
        Item::Fetched(f) => {
            let bytes = stockstream_core::fetched::encode_fetched(&f);
            // Keyed as the symbol's ticks are: one partition, one order.
            Prepared::Send(canonical_symbol(&f.bar.symbol), Some(f.bar.ts), Outgoing::Bytes(bytes, None))
        }
        Item::Reject(r) => Prepared::Reject(r),
    }
}

fn prepare_tick(t: stockstream_core::Tick, origin: Option<String>) -> Prepared {
    let bytes = serde_json::to_vec(&t).expect("a tick serialises");
    let ts = chrono::DateTime::from_timestamp_millis(t.time_ms).map(Ts::Instant);
    // Keyed by the instrument, however the tick spells it: its
    // spellings share a partition, so one member holds its window.
    Prepared::Send(canonical_symbol(&t.symbol), ts, Outgoing::Bytes(bytes, origin))
}

impl Outgoing {
    async fn send(self, producer: &dyn Producer, key: &str) -> Result<(), stockstream_core::BusError> {
        match self {
            Outgoing::Record(record, origin) => producer.send_record(key.as_bytes(), record, origin).await,
            Outgoing::Bytes(bytes, None) => producer.send(key.as_bytes(), bytes).await,
            Outgoing::Bytes(bytes, Some(origin)) => producer.send_from(key.as_bytes(), bytes, origin).await,
        }
    }
}

/// What goes onto the bus for one item.
enum Outgoing {
    /// A bar file's row, and where it was read.
    Record(RawBar, String),
    /// Encoded, and where it was read if a file was.
    Bytes(Vec<u8>, Option<String>),
}

/// Keeps rejects durably (retried under `retry` while the dead letters are unavailable).
pub(crate) async fn keep_rejects(
    dead: &dyn DeadLetters,
    stats: &Stats,
    rejects: Vec<Reject>,
    retry: RetryPolicy,
) -> Result<(), PipelineError> {
    if rejects.is_empty() {
        return Ok(());
    }
    retry.run("keeping rejected records", || dead.keep(rejects.clone())).await?;
    stats.count_rejects(&rejects);
    Ok(())
}

/// Turns a pace into sleeps.
struct Pacer {
    pace: Pace,
    sent: u64,
    first_ts: Option<i64>,
}

impl Pacer {
    fn new(pace: Pace) -> Self {
        Pacer { pace, sent: 0, first_ts: None }
    }

    fn wait_for(&mut self, ts: Option<Ts>, started: Instant) -> Option<Duration> {
        self.sent += 1;
        let due = match self.pace {
            Pace::Max => return None,
            Pace::Rate(per_s) => Duration::from_secs_f64(self.sent as f64 / per_s),
            Pace::Speed(x) => {
                let t = match ts? {
                    Ts::Date(d) => d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
                    Ts::Instant(t) => t.timestamp_millis(),
                };
                let first = *self.first_ts.get_or_insert(t);
                Duration::from_secs_f64(((t - first).max(0) as f64 / 1000.0) / x)
            }
        };
        due.checked_sub(started.elapsed()).filter(|d| *d > Duration::from_millis(1))
    }
}
