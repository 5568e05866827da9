//! Consuming bars: bus → decode → clean → validate → batch, run by the one
//! driver (`driver.rs`: write-behind, commits, stop and idle rules) as the
//! tick stage is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use stockstream_bus::{Consumer, Message, Position};
use stockstream_core::{decode, validate, Bar, Cleaner, DeadLetters, MissingPolicy, Refusal, Reject, Ts, WindowMark};
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
            let mut stage = BarStage { acceptor: Acceptor::new(options.missing) };
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
            Some(record) => self.acceptor.accept_raw(record),
            None => self.acceptor.accept(&m.payload),
        };
        Ok(match accepted {
            Ok(bar) => {
                batch.bars.push(bar);
                batch.sent_at.push(m.sent_at_micros);
                None
            }
            Err(refusal) => Some(refusal),
        })
    }

    fn cut(&mut self, _consumer: &dyn Consumer, read: &HashMap<i32, i64>) -> (Vec<WindowMark>, Vec<Position>) {
        // A new batch: identities seen so far no longer count as duplicates.
        self.acceptor.new_batch();
        (Vec::new(), read.iter().map(|(&partition, &offset)| Position { partition, offset }).collect())
    }

    fn imputed(&self) -> Option<u64> {
        Some(self.acceptor.imputed())
    }
}

/// The acceptance sequence every record passes, whatever reads it: decode,
/// clean (forward fill from the same company's earlier bars), validate, and
/// refuse a second record of an identity within one batch (the store write
/// would hide it).
pub struct Acceptor {
    cleaner: Cleaner,
    /// Small numbers for company names, so that checking a bar's identity
    /// against the batch allocates nothing.
    companies: HashMap<String, u32>,
    /// Identities in this batch: (company number, time).
    identities: HashSet<(u32, Ts)>,
}

impl Acceptor {
    /// An acceptor with no history, filling or dropping gaps as told.
    pub fn new(missing: MissingPolicy) -> Self {
        Acceptor { cleaner: Cleaner::new(missing), companies: HashMap::new(), identities: HashSet::new() }
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
            by_company[i].push(bar);
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
        let bar = self.cleaner.clean(raw)?;
        validate(&bar).map_err(|r| Refusal::new(r.kind, format!("{} {}: {}", bar.company, bar.ts, r.reason)))?;
        let next = self.companies.len() as u32;
        let company = match self.companies.get(&bar.company) {
            Some(n) => *n,
            None => *self.companies.entry(bar.company.clone()).or_insert(next),
        };
        if !self.identities.insert((company, bar.ts)) {
            return Err(Refusal::new(
                "duplicate",
                format!("duplicate of an earlier record for ({}, {}) in the same batch", bar.company, bar.ts),
            ));
        }
        self.cleaner.remember(&bar);
        Ok(bar)
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
