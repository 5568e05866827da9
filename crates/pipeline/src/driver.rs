//! The one loop that drives every consuming stage: poll the bus, hand each
//! message to a [`Stage`], cut a batch when it is due, write it behind
//! (store, then dead letters) in bus order, commit what is durable, and end
//! on a stop, an idle bus, a drained bus or a closed one. The bar acceptor
//! and the tick stage differ only in what they make of a message; the
//! follower of a live view runs the same loop with nothing to write.
//!
//! Its rules:
//! - an offset is committed only once everything up to it is durable: its bar
//!   in the store, or its reject in the dead letters;
//! - batches are written one after another in bus order (the last write of an
//!   identity wins), while the next ones are decoded;
//! - a transient store failure is retried by the [`RetryPolicy`]; a fatal one
//!   (or one that outlasts the policy) stops the loop before any commit past it;
//! - a partition the group took away is not committed by this member;
//! - a stage's held state (open windows) is flushed only when the input ended
//!   (closed, idle past `idle_exit`, or drained), never on a stop.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockstream_bus::{Consumer, Message, Polled, Position};
use stockstream_core::{now_micros, Alert, Bar, DeadLetters, Refusal, Reject, WindowMark};
use stockstream_store::Store;
use tokio::sync::watch;

use crate::produce::keep_rejects;
use crate::{AnalyticsStage, ConsumeOptions, PipelineError, RetryPolicy, Stats};

/// What a stage makes of the messages the driver hands it.
pub(crate) trait Stage: Send {
    /// Takes one message: the bars it accepts, closes or revises go to
    /// `batch.bars` (with when they entered the bus in `batch.sent_at`);
    /// returns why it is refused, if it is. Rows it sets aside go to
    /// `batch.rejects` (a source left empty is filled with this message's
    /// place). Only a failing store is an error.
    async fn take(&mut self, m: &Message, batch: &mut Batch) -> Result<Option<Refusal>, PipelineError>;

    /// Called on every pass of the loop, data or not (quiet symbols' windows
    /// close on wall time here).
    async fn on_pass(&mut self, _batch: &mut Batch) -> Result<(), PipelineError> {
        Ok(())
    }

    /// Whether bars waiting in the batch are written at once, whatever its
    /// size (closed bars from ticks: a live view waits for them).
    fn writes_at_once(&self) -> bool {
        false
    }

    /// A batch is cut: its window marks, and how far each partition may be
    /// committed once it is durable (`read`: the newest offset read of each).
    fn cut(&mut self, consumer: &dyn Consumer, read: &HashMap<i32, i64>) -> (Vec<WindowMark>, Vec<Position>) {
        let _ = consumer;
        let positions = read.iter().map(|(&partition, &offset)| Position { partition, offset }).collect();
        (Vec::new(), positions)
    }

    /// The input ended: everything the stage holds goes to `batch`.
    fn flush(&mut self, _batch: &mut Batch) {}

    /// Records completed by forward fill so far (the summary's `imputed`).
    fn imputed(&self) -> Option<u64> {
        None
    }
}

/// Where cut batches go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// Written: bars to the store, rejects to the dead letters, then committed.
    Store { store: Arc<dyn Store>, dead: Arc<dyn DeadLetters> },
    /// Nowhere: a live view follows the bus; the consumers store and commit.
    View,
}

/// A batch on its way to the store.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) bars: Vec<Bar>,
    /// When each bar's message entered the bus (µs since the epoch), beside `bars`.
    pub(crate) sent_at: Vec<Option<i64>>,
    pub(crate) rejects: Vec<Reject>,
    /// Where the windows of a tick consumer stand once these bars are stored.
    pub(crate) marks: Vec<WindowMark>,
    /// Committed once all of the above is durable.
    pub(crate) positions: Vec<Position>,
    /// When the ticks that closed these bars entered the bus (µs since the epoch).
    pub(crate) closed_by: Vec<i64>,
    /// Alerts these bars raised: published once the bars are stored, before
    /// the commit, and off the decode path (a subscriber may write them).
    pub(crate) alerts: Vec<Alert>,
}

impl Batch {
    /// Hands the bars from `first_new` on to the analytics stage, if any;
    /// their alerts go with the batch.
    fn analyse(&mut self, analytics: Option<&AnalyticsStage>, first_new: usize) {
        if let Some(stage) = analytics {
            if self.bars.len() > first_new {
                let new = self.bars[first_new..].iter().zip(self.sent_at[first_new..].iter().copied());
                self.alerts.extend(stage.on_bars(new));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.bars.is_empty() && self.rejects.is_empty() && self.marks.is_empty() && self.positions.is_empty()
    }
}

/// Why the loop ended.
#[derive(PartialEq)]
enum End {
    /// Told to stop: held state stays for a successor to rebuild.
    Stopped,
    /// Nothing more will come: held state is flushed and stored.
    InputEnded,
}

/// Drives `stage` over `consumer` until the bus closes, stays idle for
/// `idle_exit`, is drained (`until_drained`), or `stop` turns true; in every
/// case the batch in hand is written and committed first.
pub(crate) async fn drive<S: Stage>(
    stage: &mut S,
    consumer: &mut dyn Consumer,
    sink: Sink,
    stats: Arc<Stats>,
    options: &ConsumeOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let analytics = options.analytics.clone();
    let mut batch = Batch::default();
    let mut batch_started = Instant::now();
    // Messages taken since the last cut, and the newest offset read per partition.
    let mut pending = 0usize;
    let mut read: HashMap<i32, i64> = HashMap::new();
    let mut idle_since: Option<Instant> = None;
    let mut writing: VecDeque<Writing> = VecDeque::new();
    let mut reported = (Instant::now(), 0u64);
    let mut stop_open = true;
    let end = loop {
        if let Some(every) = options.report_every {
            if reported.0.elapsed() >= every {
                report(consumer, &stats, &mut reported).await;
            }
        }
        if *stop.borrow() {
            tracing::info!("stop requested: the consumer writes what it holds and commits");
            break End::Stopped;
        }
        let wait = options.flush_interval.saturating_sub(batch_started.elapsed()).max(Duration::from_millis(1));
        let room = options.batch_size.saturating_sub(pending).max(1);
        let Some(polled) = poll_unless_stopped(consumer, room, wait, &mut stop, &mut stop_open).await? else {
            continue;
        };
        match polled {
            Polled::Messages(messages) => {
                idle_since = None;
                if pending == 0 {
                    batch_started = Instant::now();
                }
                stats.consumed.fetch_add(messages.len() as u64, Ordering::Relaxed);
                pending += messages.len();
                let first_new = batch.bars.len();
                let decoding = Instant::now();
                for m in messages {
                    let newest = read.entry(m.position.partition).or_insert(m.position.offset);
                    *newest = (*newest).max(m.position.offset);
                    let kept_before = batch.rejects.len();
                    let refused = stage.take(&m, &mut batch).await?;
                    // Rows a stage set aside while taking this one (a row it
                    // replaced) are placed by the message that did it.
                    for r in &mut batch.rejects[kept_before..] {
                        if r.source.is_empty() {
                            r.source = place(consumer, &m);
                        }
                    }
                    if let Some(refusal) = refused {
                        let source = place(consumer, &m);
                        let key = m.key.clone();
                        let mut reject = refusal.into_reject(source, m.into_wire_bytes());
                        reject.key = key;
                        batch.rejects.push(reject);
                    }
                }
                stats.decode_seconds.observe(decoding.elapsed().as_secs_f64());
                analyse(analytics.as_deref(), &sink, &mut writing, consumer, &mut batch, first_new, options).await?;
            }
            Polled::Closed => break End::InputEnded,
            Polled::Idle => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if options.idle_exit.is_some_and(|limit| since.elapsed() >= limit) {
                    break End::InputEnded;
                }
                // Nothing new: commit the writes that are done. Waiting for
                // the others would hold up the messages of the next moment
                // (a live view waits for them).
                finish_written(&mut writing, consumer).await?;
                if let Some(done) = &options.until_drained {
                    if *done.borrow() && pending == 0 && consumer.lag().await == Some(0) {
                        break End::InputEnded;
                    }
                }
            }
        }
        let first_new = batch.bars.len();
        stage.on_pass(&mut batch).await?;
        analyse(analytics.as_deref(), &sink, &mut writing, consumer, &mut batch, first_new, options).await?;
        let due = pending >= options.batch_size
            || (pending > 0 && batch_started.elapsed() >= options.flush_interval)
            || (stage.writes_at_once() && !batch.bars.is_empty());
        if due {
            if writing.len() >= WRITES_IN_FLIGHT {
                if let Some(w) = writing.pop_front() {
                    w.finish(consumer).await?;
                }
            }
            (batch.marks, batch.positions) = stage.cut(consumer, &read);
            read.clear();
            if let Some(stage) = analytics.as_deref() {
                stage.forget_excess();
            }
            match &sink {
                Sink::Store { store, dead } => {
                    let after = writing.back().map(|w| w.written.clone());
                    writing.push_back(Writing::start(&mut batch, store, dead, &stats, options, after));
                }
                // A follower's bars went to the live view as they came; the
                // consumers store them and keep the rejects.
                Sink::View => batch = Batch::default(),
            }
            if let Some(imputed) = stage.imputed() {
                stats.imputed.store(imputed, Ordering::Relaxed);
            }
            pending = 0;
            batch_started = Instant::now();
        }
    };
    if end == End::InputEnded {
        let first_new = batch.bars.len();
        stage.flush(&mut batch);
        analyse(analytics.as_deref(), &sink, &mut writing, consumer, &mut batch, first_new, options).await?;
    }
    while let Some(w) = writing.pop_front() {
        w.finish(consumer).await?;
    }
    (batch.marks, batch.positions) = stage.cut(consumer, &read);
    if let Sink::Store { store, dead } = &sink {
        if !batch.is_empty() {
            Writing::start(&mut batch, store, dead, &stats, options, None).finish(consumer).await?;
        }
    }
    if let Some(imputed) = stage.imputed() {
        stats.imputed.store(imputed, Ordering::Relaxed);
    }
    Ok(())
}

/// Hands the batch's bars from `first_new` on to the analytics stage, after
/// reading back the history of the companies among them that it forgot (it
/// holds a bounded number). Their earlier bars are in the store or in a write
/// in flight: those writes finish first (and are committed), so the read
/// sees every one.
async fn analyse(
    analytics: Option<&AnalyticsStage>,
    sink: &Sink,
    writing: &mut VecDeque<Writing>,
    consumer: &mut dyn Consumer,
    batch: &mut Batch,
    first_new: usize,
    options: &ConsumeOptions,
) -> Result<(), PipelineError> {
    if let (Some(stage), Sink::Store { store, .. }) = (analytics, sink) {
        let returning = stage.returning(&batch.bars[first_new..]);
        if !returning.is_empty() {
            while let Some(w) = writing.pop_front() {
                w.finish(consumer).await?;
            }
            let read = || store.histories_before(&returning, crate::analytics::WARM_UP);
            for history in options.retry.run("reading companies' history back", read).await? {
                stage.warm(&history);
            }
        }
    }
    batch.analyse(analytics, first_new);
    Ok(())
}

/// Where a message's record was read: the file and line when the bus
/// carried them, else its place on the bus.
fn place(consumer: &dyn Consumer, m: &Message) -> String {
    match &m.origin {
        Some(origin) if !origin.is_empty() => origin.clone(),
        _ => consumer.describe(m.position),
    }
}

/// Polls the bus, unless `stop` changes first: None then, for the caller to
/// look at it again. Once the stop's sender is gone, it only polls.
async fn poll_unless_stopped(
    consumer: &mut dyn Consumer,
    room: usize,
    wait: Duration,
    stop: &mut watch::Receiver<bool>,
    stop_open: &mut bool,
) -> Result<Option<Polled>, PipelineError> {
    if !*stop_open {
        return Ok(Some(consumer.poll(room, wait).await?));
    }
    tokio::select! {
        polled = consumer.poll(room, wait) => Ok(Some(polled?)),
        changed = stop.changed() => {
            *stop_open = changed.is_ok();
            Ok(None)
        }
    }
}

/// Logs throughput and lag.
async fn report(consumer: &mut dyn Consumer, stats: &Stats, reported: &mut (Instant, u64)) {
    let consumed = stats.consumed.load(Ordering::Relaxed);
    let rate = (consumed - reported.1) as f64 / reported.0.elapsed().as_secs_f64();
    let lag = consumer.lag().await;
    if let Some(lag) = lag {
        stats.lag.store(lag, Ordering::Relaxed);
    }
    tracing::info!(
        consumed,
        stored = stats.stored.load(Ordering::Relaxed),
        rejected = stats.rejected.load(Ordering::Relaxed),
        lag = lag.map(|l| l as i64).unwrap_or(-1),
        "consuming at {rate:.0} msgs/s"
    );
    *reported = (Instant::now(), consumed);
}

/// Commits the writes at the front of `writing` that are done.
async fn finish_written(writing: &mut VecDeque<Writing>, consumer: &mut dyn Consumer) -> Result<(), PipelineError> {
    while writing.front().is_some_and(|w| w.task.is_finished()) {
        if let Some(w) = writing.pop_front() {
            w.finish(consumer).await?;
        }
    }
    Ok(())
}

/// Batches handed to the store and not yet committed: one being written, the
/// others waiting their turn, so that decoding goes on while the store works
/// (3 measured ~10% faster than 1 on the embedded pipeline, at ~3 MB).
const WRITES_IN_FLIGHT: usize = 3;

/// A batch being written in the background; its positions are committed once
/// the write is acknowledged.
struct Writing {
    task: tokio::task::JoinHandle<Result<(), PipelineError>>,
    positions: Vec<Position>,
    /// Turns true once this batch is in the store and its rejects in the dead
    /// letters: the next batch's write waits for it, so writes land in bus
    /// order (the last write wins).
    written: watch::Receiver<bool>,
    retry: RetryPolicy,
}

impl Writing {
    /// Store first (bars, then window marks, then the alerts they raised),
    /// dead letters second: an offset is committed only once everything up to
    /// it is durable somewhere.
    fn start(
        batch: &mut Batch,
        store: &Arc<dyn Store>,
        dead: &Arc<dyn DeadLetters>,
        stats: &Arc<Stats>,
        options: &ConsumeOptions,
        mut after: Option<watch::Receiver<bool>>,
    ) -> Self {
        let taken = std::mem::take(batch);
        let (written_tx, written) = watch::channel(false);
        let (retry, analytics) = (options.retry, options.analytics.clone());
        let Batch { bars, rejects, marks, positions, closed_by, alerts, .. } = taken;
        let bars: Arc<[Bar]> = bars.into();
        let (store, dead, stats) = (store.clone(), dead.clone(), stats.clone());
        let task = tokio::spawn(async move {
            if let Some(previous) = &mut after {
                // A failed previous write drops its sender: nothing after it is
                // written, and the consumer stops at that failure.
                if previous.wait_for(|done| *done).await.is_err() {
                    return Err(PipelineError::Task("not written: an earlier batch's write failed".into()));
                }
            }
            let n = bars.len() as u64;
            if n > 0 {
                let started = Instant::now();
                retry.run("store write", || store.upsert(bars.clone())).await?;
                stats.store_write_seconds.observe(started.elapsed().as_secs_f64());
                let now = now_micros();
                for sent in closed_by {
                    stats.tick_to_store_seconds.observe((now - sent) as f64 / 1e6);
                }
                stats.stored.fetch_add(n, Ordering::Relaxed);
            }
            if !marks.is_empty() {
                retry.run("keeping window marks", || store.save_marks(marks.clone())).await?;
            }
            if let Some(stage) = &analytics {
                stage.publish(&alerts).await?;
            }
            // The rejects too before the next batch starts: dead letters
            // are kept in bus order as well.
            keep_rejects(dead.as_ref(), &stats, rejects, retry).await?;
            let _ = written_tx.send(true);
            Ok(())
        });
        Writing { task, positions, written, retry }
    }

    /// Waits for the write, then commits the positions of partitions this
    /// member still owns.
    async fn finish(self, consumer: &mut dyn Consumer) -> Result<(), PipelineError> {
        self.task.await.map_err(|e| PipelineError::Task(format!("store writer failed: {e}")))??;
        let mut owned: HashMap<i32, bool> = HashMap::new();
        let mut positions = self.positions;
        positions.retain(|p| *owned.entry(p.partition).or_insert_with(|| consumer.owns(p.partition)));
        for (partition, _) in owned.iter().filter(|(_, owns)| !**owns) {
            tracing::warn!(partition, "partition revoked while its batch was written: left to its new owner to commit");
        }
        if positions.is_empty() {
            return Ok(());
        }
        // A coordinator away (a broker restarting) is waited for, as a store
        // write is, under the same policy.
        let (started, mut attempt) = (Instant::now(), 0);
        loop {
            match consumer.commit(&positions).await {
                Ok(()) => return Ok(()),
                Err(e) => match self.retry.wait_after("offset commit", &e, attempt, started) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e.into()),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
