//! Consuming bars: bus → decode → clean → validate → batch, run by the one
//! driver (`driver.rs`: write-behind, commits, stop and idle rules) as the
//! tick stage is.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stockstream_core::RejectKind;

use stockstream_bus::{Consumer, Message, Position};
use stockstream_core::{
    decode, encode, validate, Bar, BarLength, Cleaner, DeadLetters, MissingPolicy, Refusal, Reject, Ts, WindowMark,
};
use stockstream_store::Store;
use tokio::sync::watch;

use crate::driver::{drive, Batch, Sink, Stage};
use crate::ticks::TickStage;
use crate::{AnalyticsStage, PipelineError, RetryPolicy, Stats};

/// How the consume loop batches, when it returns, and what it feeds.
#[derive(Clone)]
pub struct ConsumeOptions {
    /// Bars per store write.
    pub batch_size: usize,
    /// A partial batch is written after this long.
    pub flush_interval: Duration,
    /// What to do with a missing value.
    pub missing: MissingPolicy,
    /// Return once the bus has been idle this long (None: run until stopped).
    pub idle_exit: Option<Duration>,
    /// Return once this turns true and nothing is left to consume (lag 0): used
    /// when the producer runs in the same process and has finished.
    pub until_drained: Option<watch::Receiver<bool>>,
    /// Log throughput and lag this often.
    pub report_every: Option<Duration>,
    /// Indicators and alerts, updated as bars are accepted.
    pub analytics: Option<Arc<AnalyticsStage>>,
    /// How store and dead-letter writes are retried.
    pub retry: RetryPolicy,
    /// The messages are ticks, aggregated into bars so (None: they are bars).
    pub ticks: Option<crate::TickOptions>,
    /// The bars' interval: the table they are stored in holds this one only,
    /// and a bar of another is refused as `mixed_interval` (None: any).
    pub interval: Option<BarLength>,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            batch_size: 5000,
            flush_interval: Duration::from_millis(200),
            missing: MissingPolicy::Ffill,
            idle_exit: None,
            until_drained: None,
            report_every: None,
            analytics: None,
            retry: RetryPolicy::default(),
            ticks: None,
            interval: None,
        }
    }
}

/// Consumes until the bus closes, the bus stays idle for `idle_exit`, is
/// drained (`until_drained`), or `stop` turns true; in every case the batch in
/// hand is written and committed first. Bars are accepted as
/// [`Acceptor`] says; with `options.ticks`, ticks are aggregated into bars.
pub async fn consume(
    consumer: &mut dyn Consumer,
    store: Arc<dyn Store>,
    dead: Arc<dyn DeadLetters>,
    stats: Arc<Stats>,
    options: &ConsumeOptions,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let sink = Sink::Store { store: store.clone(), dead };
    match options.ticks {
        Some(ticks) => {
            let mut stage = TickStage::new(ticks, Some(store), options.retry, options.analytics.clone());
            drive(&mut stage, consumer, sink, stats, options, stop).await
        }
        None => {
            let mut stage = BarStage { acceptor: Acceptor::new(options.missing).expecting(options.interval) };
            drive(&mut stage, consumer, sink, stats, options, stop).await
        }
    }
}

/// Bars off the bus, accepted one by one; a batch is cut by size or time.
pub(crate) struct BarStage {
    pub(crate) acceptor: Acceptor,
}

impl Stage for BarStage {
    async fn take(&mut self, m: &Message, batch: &mut Batch) -> Result<Option<Refusal>, PipelineError> {
        let accepted = match &m.record {
            Some(record) => self.acceptor.accept_replacing(record),
            None => decode(&m.payload).and_then(|raw| self.acceptor.accept_replacing(&raw)),
        };
        let (bar, replaced) = match accepted {
            Ok(accepted) => accepted,
            Err(refusal) => return Ok(Some(refusal)),
        };
        // The last row of an identity wins, as its upsert would; the row it
        // replaces is kept in the dead letters, at any batch size. A row equal
        // to the one it follows is a duplicate (refused within a batch, as
        // before; across batches a redelivery, written again).
        let earlier = match replaced {
            Some(Replaced::InBatch(slot)) if batch.bars[slot] == bar => {
                return Ok(Some(Refusal::new(
                    RejectKind::Duplicate,
                    format!("duplicate of an earlier record for ({}, {}) in the same batch", bar.company, bar.ts),
                )));
            }
            Some(Replaced::InBatch(slot)) => std::mem::replace(&mut batch.bars[slot], bar),
            Some(Replaced::Stored(earlier)) if earlier != bar => {
                batch.bars.push(bar);
                batch.sent_at.push(m.sent_at_micros);
                earlier
            }
            None | Some(Replaced::Stored(_)) => {
                batch.bars.push(bar);
                batch.sent_at.push(m.sent_at_micros);
                return Ok(None);
            }
        };
        batch.rejects.push(superseded(&earlier));
        Ok(None)
    }

    fn cut(&mut self, _consumer: &dyn Consumer, read: &HashMap<i32, i64>) -> (Vec<WindowMark>, Vec<Position>) {
        // A new batch: identities seen so far are in the store from now on.
        self.acceptor.new_batch();
        (Vec::new(), read.iter().map(|(&partition, &offset)| Position { partition, offset }).collect())
    }

    fn imputed(&self) -> Option<u64> {
        Some(self.acceptor.imputed())
    }
}

/// The reject of a row that a later row of its identity replaced: the
/// earlier row as it was accepted, and what replaced it.
/// (Its source, left empty, is the place of the row that replaced it.)
fn superseded(earlier: &Bar) -> Reject {
    let reason = format!(
        "({}, {}) was replaced by a later row of the same company and date: the last row wins",
        earlier.company, earlier.ts
    );
    Refusal::new(RejectKind::Superseded, reason).into_reject(String::new(), encode(earlier))
}

/// Which earlier bar an accepted bar replaces (same company and date).
#[derive(Debug)]
pub enum Replaced {
    /// The bar at this place among the bars accepted since the last
    /// [`Acceptor::new_batch`] (new identities only, in order).
    InBatch(usize),
    /// The company's previous bar, accepted in an earlier batch (stored).
    Stored(Bar),
}

/// The acceptance sequence every record passes, whatever reads it: decode,
/// clean (forward fill from the same company's earlier bars), validate, and
/// tell a second record of an identity from a new one: the last row of an
/// identity wins.
pub struct Acceptor {
    cleaner: Cleaner,
    /// Small numbers for company names, so that checking a bar's identity
    /// against the batch allocates nothing.
    companies: HashMap<String, u32>,
    /// Identities in this batch: (company number, time) → place among the
    /// batch's new identities.
    identities: HashMap<(u32, Ts), usize>,
    /// Each company's latest accepted bar, by company number.
    last: Vec<Bar>,
    /// The stream's interval, when it has one.
    interval: Option<BarLength>,
}

impl Acceptor {
    /// An acceptor with no history, filling or dropping gaps as told.
    pub fn new(missing: MissingPolicy) -> Self {
        Acceptor {
            cleaner: Cleaner::new(missing),
            companies: HashMap::new(),
            identities: HashMap::new(),
            last: Vec::new(),
            interval: None,
        }
    }

    /// Refuses bars of another interval than `interval` as `mixed_interval`.
    pub fn expecting(mut self, interval: Option<BarLength>) -> Self {
        self.interval = interval;
        self
    }

    /// The accepted bars of a file's records, one series per company in the
    /// order the companies first appear. What the consumer would refuse is
    /// logged with where it came from and left out.
    pub fn series(
        mut self,
        records: impl IntoIterator<Item = Result<stockstream_core::SourceRecord, Reject>>,
    ) -> Vec<Vec<Bar>> {
        let mut by_company: Vec<Vec<Bar>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for bar in records.into_iter().filter_map(|record| self.accept_record(record)) {
            let next = by_company.len();
            let i = *index.entry(bar.company.clone()).or_insert(next);
            if i == next {
                by_company.push(Vec::new());
            }
            // The last row of an identity wins.
            match by_company[i].last_mut() {
                Some(last) if last.ts == bar.ts => *last = bar,
                _ => by_company[i].push(bar),
            }
        }
        by_company
    }

    /// A file's record, accepted; or None, its refusal logged with where it came from.
    pub fn accept_record(&mut self, record: Result<stockstream_core::SourceRecord, Reject>) -> Option<Bar> {
        let accepted = record.map_err(|r| (r.source, r.reason)).and_then(|rec| {
            let source = rec.source;
            self.accept_raw(&rec.raw).map_err(|refusal| (source, refusal.reason))
        });
        match accepted {
            Ok(bar) => Some(bar),
            Err((source, reason)) => {
                tracing::warn!("{source}: skipped: {reason}");
                None
            }
        }
    }

    /// Decodes a wire message, then accepts it as [`Acceptor::accept_raw`] does.
    pub fn accept(&mut self, payload: &[u8]) -> Result<Bar, Refusal> {
        self.accept_raw(&decode(payload)?)
    }

    /// Cleans and validates one record.
    pub fn accept_raw(&mut self, raw: &stockstream_core::RawBar) -> Result<Bar, Refusal> {
        self.accept_replacing(raw).map(|(bar, _)| bar)
    }

    /// Cleans and validates one record, and says which earlier bar of the
    /// same identity it replaces: one of this batch, or the company's
    /// previous bar if it is of the same date.
    pub fn accept_replacing(&mut self, raw: &stockstream_core::RawBar) -> Result<(Bar, Option<Replaced>), Refusal> {
        let bar = self.cleaner.clean(raw)?;
        validate(&bar).map_err(|r| Refusal::new(r.kind, format!("{} {}: {}", bar.company, bar.ts, r.reason)))?;
        let (company, known) = match self.companies.get(&bar.company) {
            Some(&n) => {
                self.check_interval(&bar, Some(&self.last[n as usize]))?;
                (n, true)
            }
            None => {
                self.check_interval(&bar, None)?;
                let n = self.companies.len() as u32;
                self.companies.insert(bar.company.clone(), n);
                self.last.push(bar.clone());
                (n, false)
            }
        };
        let next_slot = self.identities.len();
        let replaced = match self.identities.entry((company, bar.ts)) {
            Entry::Occupied(slot) => Some(Replaced::InBatch(*slot.get())),
            Entry::Vacant(slot) => {
                slot.insert(next_slot);
                let last = &self.last[company as usize];
                (known && last.ts == bar.ts).then(|| Replaced::Stored(last.clone()))
            }
        };
        self.cleaner.remember(&bar);
        self.last[company as usize].clone_from(&bar);
        Ok((bar, replaced))
    }

    /// A bar must have its stream's form (a date for daily bars, an instant
    /// for shorter ones) and be no closer to its company's previous bar than
    /// the interval: bars of two intervals never share a table.
    fn check_interval(&self, bar: &Bar, previous: Option<&Bar>) -> Result<(), Refusal> {
        let Some(interval) = self.interval else { return Ok(()) };
        let refuse =
            |why: String| Err(Refusal::new(RejectKind::MixedInterval, format!("{} {}: {why}", bar.company, bar.ts)));
        if !interval.fits(&bar.ts) {
            let what = if bar.ts.is_intraday() { "an intraday time" } else { "a daily date" };
            return refuse(format!("{what} among {interval} bars (each interval has its own table)"));
        }
        if let (BarLength::Fixed(length), Some(previous)) = (interval, previous) {
            if let (Ts::Instant(then), Ts::Instant(now)) = (previous.ts, bar.ts) {
                let gap = (now - then).num_milliseconds().abs();
                if gap > 0 && gap < length {
                    let (seconds, at) = (gap as f64 / 1e3, previous.ts);
                    return refuse(format!("{seconds} s from its bar at {at}, closer than {interval} bars are"));
                }
            }
        }
        Ok(())
    }

    /// Starts a new batch: identities seen so far no longer count as duplicates.
    pub fn new_batch(&mut self) {
        self.identities.clear();
    }

    /// Records completed by forward fill so far.
    pub fn imputed(&self) -> u64 {
        self.cleaner.imputed
    }
}

#[cfg(test)]
mod tests;
