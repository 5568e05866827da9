//! A live view's reader: every partition from its end, no group.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use stockstream_core::BusError;

use super::consumer::owned;
use super::{blocking, kafka_error, passing, KafkaSettings};
use crate::{Consumer, Message, Polled, Position};

/// Reads topics from their ends without joining any group: every reader
/// sees every message from the moment it starts (a live view). Topics that
/// do not exist are left out.
pub struct KafkaTail {
    consumer: StreamConsumer,
    /// The topics followed, each name shared by its messages.
    topics: Vec<Arc<str>>,
}

impl KafkaTail {
    /// Assigns every partition of `topics` at its end.
    pub fn new(settings: &KafkaSettings, topics: &[String]) -> Result<(Self, Vec<String>), BusError> {
        let mut config = settings.client_config();
        // A group id librdkafka wants for a consumer; nothing joins or commits under it.
        config
            .set("group.id", "stockstream-tail")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        // A live view waits on each fetch: Kafka answers one as soon as data
        // comes (the wait bounds idle polling, 200 fetches/s), while Tansu
        // holds every fetch for its whole wait. 5 ms instead of 10 took the
        // ingestion-to-screen p99 at 10,000 bars/s on Tansu from 41-45 ms to
        // 31-50 ms, median 34 ms over 6 runs (`scripts/bench.sh follow`).
        for (key, value) in [("fetch.wait.max.ms", "5"), ("queued.max.messages.kbytes", "2048")] {
            if !settings.options.iter().any(|(k, _)| k == key) {
                config.set(key, value);
            }
        }
        let consumer: StreamConsumer = config.create().map_err(|e| kafka_error(e, "cannot create a Kafka consumer"))?;
        let mut assignment = TopicPartitionList::new();
        let mut followed = Vec::new();
        for topic in topics {
            let metadata = blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))
                .map_err(|e| kafka_error(e, &format!("cannot read the metadata of {topic}")))?;
            let Some(t) = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()) else { continue };
            if t.partitions().is_empty() {
                continue;
            }
            for p in t.partitions() {
                // The end as it is now, not as a first fetch finds it later:
                // everything produced once the tail exists is followed.
                let (_, end) = blocking(|| consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)))
                    .map_err(|e| kafka_error(e, &format!("cannot read the end of {topic}/{}", p.id())))?;
                assignment
                    .add_partition_offset(topic, p.id(), Offset::Offset(end))
                    .map_err(|e| kafka_error(e, "invalid partition"))?;
            }
            followed.push(topic.clone());
        }
        consumer.assign(&assignment).map_err(|e| kafka_error(e, "cannot assign the partitions"))?;
        let topics = followed.iter().map(|t| Arc::from(t.as_str())).collect();
        Ok((KafkaTail { consumer, topics }, followed))
    }

    /// The last `per_partition` messages of every partition of `topic` as
    /// they are now (keys and payloads; none of a topic that does not
    /// exist), read without any group: where a restarted producer left off.
    pub async fn last_messages(
        settings: &KafkaSettings,
        topic: &str,
        per_partition: i64,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, BusError> {
        let (tail, _) = KafkaTail::new(settings, &[])?;
        let consumer = &tail.consumer;
        let metadata = blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))
            .map_err(|e| kafka_error(e, &format!("cannot read the metadata of {topic}")))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()) else {
            return Ok(Vec::new());
        };
        let mut assignment = TopicPartitionList::new();
        // Per partition: the last offset to read.
        let mut last = std::collections::HashMap::new();
        for p in t.partitions() {
            let (low, end) = blocking(|| consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)))
                .map_err(|e| kafka_error(e, &format!("cannot read the end of {topic}/{}", p.id())))?;
            if end > low {
                let from = low.max(end - per_partition);
                assignment
                    .add_partition_offset(topic, p.id(), Offset::Offset(from))
                    .map_err(|e| kafka_error(e, "invalid partition"))?;
                last.insert(p.id(), end - 1);
            }
        }
        if last.is_empty() {
            return Ok(Vec::new());
        }
        consumer.assign(&assignment).map_err(|e| kafka_error(e, "cannot assign the partitions"))?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !last.is_empty() {
            let m = match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Err(_) => {
                    return Err(BusError::transient(format!("the last messages of {topic} were not read within 30 s")))
                }
                Ok(Err(e)) if passing(&e) => continue,
                Ok(Err(e)) => return Err(kafka_error(e, "Kafka consumer error")),
                Ok(Ok(m)) => m,
            };
            out.push((m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec()));
            if last.get(&m.partition()).is_some_and(|&l| m.offset() >= l) {
                last.remove(&m.partition());
            }
        }
        Ok(out)
    }

    fn owned(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Message {
        let mut message = owned(m);
        message.topic = self.topics.iter().find(|t| ***t == *m.topic()).cloned();
        message
    }
}

/// A live view's reader: nothing to commit, every partition its own.
#[async_trait]
impl Consumer for KafkaTail {
    /// A broker gone is waited for (an idle poll).
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(Polled::Idle),
            Ok(Err(e)) if passing(&e) => {
                tracing::warn!("Kafka: {e}; resuming when the cluster answers");
                return Ok(Polled::Idle);
            }
            Ok(Err(e)) => return Err(kafka_error(e, "Kafka consumer error")),
            Ok(Ok(m)) => self.owned(&m),
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => {
                    let owned = self.owned(&m);
                    batch.push(owned);
                }
                Some(Err(e)) if passing(&e) => break,
                Some(Err(e)) => return Err(kafka_error(e, "Kafka consumer error")),
                None => break,
            }
        }
        Ok(Polled::Messages(batch))
    }

    async fn commit(&mut self, _done: &[Position]) -> Result<(), BusError> {
        Ok(())
    }

    fn describe(&self, position: Position) -> String {
        format!("{}@{}", position.partition, position.offset)
    }
}
