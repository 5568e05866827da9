//! A producer and a consumer in one process: over the in-process bus (the
//! embedded pipeline) or over any other bus (Kafka).

use std::sync::Arc;

use stockstream_bus::{memory_bus, Consumer, Producer};
use stockstream_core::{DeadLetters, Source};
use stockstream_store::Store;
use tokio::sync::watch;

use crate::{consume, produce, ConsumeOptions, Pace, PipelineError, Stats};

/// Messages the in-process bus holds at most: the bound that makes a slow store
/// slow the producer down instead of filling memory.
pub const BUS_CAPACITY: usize = 16_384;

/// The embedded pipeline: source → in-process bus → store.
pub async fn embedded(
    source: Box<dyn Source>,
    store: Arc<dyn Store>,
    dead: Arc<dyn DeadLetters>,
    stats: Arc<Stats>,
    options: &ConsumeOptions,
    pace: Pace,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let (producer, mut consumer) = memory_bus(BUS_CAPACITY);
    let producing = {
        let (dead, stats, stop, retry) = (dead.clone(), stats.clone(), stop.clone(), options.retry);
        // The producer is dropped when its source ends, which closes the bus.
        tokio::spawn(async move { produce(source, &producer, dead.as_ref(), &stats, pace, retry, stop).await })
    };
    // The consumer is not told to stop: it drains the bus until the producer,
    // which is told, closes it. Nothing read is left behind in the channel.
    let (_never, drain) = watch::channel(false);
    let consumed = consume(&mut consumer, store, dead, stats, options, drain).await;
    drop(consumer);
    let produced = producing.await.map_err(|e| PipelineError::Task(format!("producer failed: {e}")))?;
    consumed?;
    produced
}

/// Producer and consumer in one process over a shared bus (Kafka): the
/// consumer returns once the producer is done and the group has committed
/// everything.
#[allow(clippy::too_many_arguments)]
pub async fn over_bus(
    source: Box<dyn Source>,
    producer: Box<dyn Producer>,
    consumer: &mut dyn Consumer,
    store: Arc<dyn Store>,
    dead: Arc<dyn DeadLetters>,
    stats: Arc<Stats>,
    mut options: ConsumeOptions,
    pace: Pace,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let (done_tx, done_rx) = watch::channel(false);
    let producing = {
        let (dead, stats, stop, retry) = (dead.clone(), stats.clone(), stop.clone(), options.retry);
        tokio::spawn(async move {
            let result = produce(source, producer.as_ref(), dead.as_ref(), &stats, pace, retry, stop).await;
            let _ = done_tx.send(true);
            result
        })
    };
    options.until_drained = Some(done_rx);
    let consumed = consume(consumer, store, dead, stats, &options, stop).await;
    let produced = producing.await.map_err(|e| PipelineError::Task(format!("producer failed: {e}")))?;
    consumed?;
    produced
}
