//! A live view's follower (`serve --brokers`): the bus's bars, ticks and
//! alerts handed to the live view as the consumers see them, through the one
//! driver and the same stages (bars accepted as a consumer accepts them,
//! ticks checked, bounded and windowed as the tick stage does, quiet symbols'
//! bars closed on wall time). Nothing is stored or committed: the consumers
//! do that.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockstream_bus::{Consumer, Message, Position};
use stockstream_core::{Alert, Bar, DateRange, MissingPolicy, Refusal, WindowMark};
use stockstream_store::Store;
use tokio::sync::watch;

use crate::consume::Acceptor;
use crate::driver::{drive, Batch, Sink, Stage};
use crate::ticks::TickStage;
use crate::{AnalyticsStage, ConsumeOptions, PipelineError, RetryPolicy, Stats, TickOptions};

/// The topics a follower reads: bars, ticks, alerts.
#[derive(Debug, Clone)]
pub struct FollowedTopics {
    /// Bars, as the consumers read them.
    pub bars: String,
    /// Ticks (made into bars of `TickOptions`' length when given).
    pub ticks: String,
    /// Alerts the consumers raised.
    pub alerts: String,
}

/// Follows `tail` (every partition of the topics, no group) until `stop`:
/// bars and closed bars from ticks go through `analytics` (indicators warmed
/// from `store` before a company's first followed bar), forming bars to its
/// subscribers, the consumers' alerts to `on_alert`.
pub async fn follow(
    tail: &mut dyn Consumer,
    topics: FollowedTopics,
    analytics: Arc<AnalyticsStage>,
    on_alert: Box<dyn Fn(Alert) + Send + Sync>,
    ticks: Option<TickOptions>,
    store: Arc<dyn Store>,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let mut stage = FollowStage {
        topics,
        acceptor: Acceptor::new(MissingPolicy::Ffill),
        ticks: ticks.map(|t| TickStage::new(t, None, RetryPolicy::default(), Some(analytics.clone()))),
        warm: Warm::new(store),
        analytics: analytics.clone(),
        on_alert,
    };
    // Small batches, cut at once: nothing is written, a batch only carries
    // bars to the analytics stage.
    let options = ConsumeOptions {
        batch_size: 1024,
        flush_interval: Duration::from_millis(50),
        analytics: Some(analytics),
        ..Default::default()
    };
    drive(&mut stage, tail, Sink::View, Arc::new(Stats::default()), &options, stop).await
}

struct FollowStage {
    topics: FollowedTopics,
    acceptor: Acceptor,
    ticks: Option<TickStage>,
    warm: Warm,
    analytics: Arc<AnalyticsStage>,
    on_alert: Box<dyn Fn(Alert) + Send + Sync>,
}

impl FollowStage {
    /// Warms the companies of the bars from `first_new` on, if they are new.
    async fn warm_from(&mut self, batch: &Batch, first_new: usize) {
        for bar in &batch.bars[first_new..] {
            self.warm.before(&self.analytics, bar).await;
        }
    }
}

impl Stage for FollowStage {
    async fn take(&mut self, m: &Message, batch: &mut Batch) -> Result<Option<Refusal>, PipelineError> {
        let Some(topic) = m.topic.as_deref() else { return Ok(None) };
        let first_new = batch.bars.len();
        let refused = if topic == self.topics.bars {
            // Each message stands alone: a redelivered identity is not a duplicate here.
            self.acceptor.new_batch();
            match self.acceptor.accept(&m.payload) {
                Ok(bar) => {
                    batch.bars.push(bar);
                    batch.sent_at.push(m.sent_at_micros);
                    None
                }
                Err(refusal) => Some(refusal),
            }
        } else if topic == self.topics.ticks {
            match &mut self.ticks {
                Some(ticks) => ticks.take(m, batch).await?,
                None => None,
            }
        } else if topic == self.topics.alerts {
            if let Ok(alert) = serde_json::from_slice::<Alert>(&m.payload) {
                (self.on_alert)(alert);
            }
            None
        } else {
            None
        };
        self.warm_from(batch, first_new).await;
        Ok(refused)
    }

    async fn on_pass(&mut self, batch: &mut Batch) -> Result<(), PipelineError> {
        let first_new = batch.bars.len();
        if let Some(ticks) = &mut self.ticks {
            ticks.on_pass(batch).await?;
        }
        self.warm_from(batch, first_new).await;
        Ok(())
    }

    fn writes_at_once(&self) -> bool {
        true
    }

    fn cut(&mut self, _consumer: &dyn Consumer, _read: &HashMap<i32, i64>) -> (Vec<WindowMark>, Vec<Position>) {
        (Vec::new(), Vec::new())
    }
}

/// The companies whose indicators were warmed from the store: the first bar
/// of each that the server follows comes with indicators over the whole
/// history, not over what streamed since it started.
struct Warm {
    store: Arc<dyn Store>,
    done: HashSet<String>,
    /// Until then a company's history is read once the store holds its first
    /// followed bar (see `CATCH_UP`).
    catch_up_until: Instant,
}

/// How long after it starts the follower waits for the consumers to store a
/// company's first followed bar before reading the bars before it: it starts
/// at the bus's latest offsets while the consumers' newest batches are still
/// in flight, and reading the store at once would miss those bars
/// (indicators over a history with a gap). Only for a company the store
/// holds bars of, and bounded, so that consumers that are down delay the live
/// view's first seconds at most.
const CATCH_UP: Duration = Duration::from_secs(5);

/// At most this many companies warmed (each costs one read); later ones start cold.
const MAX_WARMED: usize = 100_000;

impl Warm {
    fn new(store: Arc<dyn Store>) -> Self {
        Warm { store, done: HashSet::new(), catch_up_until: Instant::now() + CATCH_UP }
    }

    async fn before(&mut self, analytics: &AnalyticsStage, bar: &Bar) {
        if self.done.len() >= MAX_WARMED || !self.done.insert(bar.company.clone()) {
            return;
        }
        let upto = DateRange { from: None, to: Some(bar.ts) };
        loop {
            match self.store.newest(&bar.company, &upto, crate::analytics::WARM_UP + 1).await {
                // The consumers write in bus order: once this bar is stored,
                // every bar before it is too. A company with nothing stored
                // has no history to wait for (nobody may be storing it).
                Ok(bars) if bars.last().is_none_or(|b| b.ts == bar.ts) || Instant::now() >= self.catch_up_until => {
                    let before = bars.partition_point(|b| b.ts < bar.ts);
                    analytics.warm(&bars[..before]);
                    return;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => {
                    tracing::warn!("{}: indicators start without history: {e}", bar.company);
                    return;
                }
            }
        }
    }
}
