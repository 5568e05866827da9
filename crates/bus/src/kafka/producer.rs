//! Sending to Kafka: the pipeline's producer, and the publisher of alerts
//! and dead letters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _, ProducerContext,
};
use rdkafka::ClientContext;
use stockstream_core::{BusError, DeadLetters, Reject, StoreError};

use super::{kafka_error, KafkaSettings};
use crate::Producer;

/// Counts delivery outcomes reported by librdkafka's background thread.
#[derive(Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("delivery lock");
                if first.is_none() {
                    *first = Some(format!("{e} (topic {}, partition {})", m.topic(), m.partition()));
                }
                tracing::error!("delivery failed: {e}");
            }
        }
    }
}

/// Sends to one topic: idempotent, acks=all, lz4, batched.
pub struct KafkaProducer {
    producer: Arc<BaseProducer<DeliveryCounter>>,
    topic: String,
    /// Serves delivery reports; stopped (within a poll) when the producer goes.
    polling: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// How long the polling thread waits for delivery reports before it looks
/// whether to stop: a producer dropped costs at most this.
const POLL: Duration = Duration::from_millis(10);

impl KafkaProducer {
    /// A producer for `topic`.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, BusError> {
        let mut config = settings.client_config();
        // Defaults tuned for throughput without giving up safety; a passed-through
        // option of the same name wins.
        for (k, v) in [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", "lz4"),
            ("linger.ms", "10"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
            ("queue.buffering.max.messages", "200000"),
            // Java clients' partitioner: the same key lands on the same partition
            // whichever client produced it.
            ("partitioner", "murmur2_random"),
        ] {
            if !settings.options.iter().any(|(key, _)| key == k) {
                config.set(k, v);
            }
        }
        let producer: Arc<BaseProducer<DeliveryCounter>> = Arc::new(
            config
                .create_with_context(DeliveryCounter::default())
                .map_err(|e| kafka_error(e, "cannot create a Kafka producer"))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopping) = (producer.clone(), stop.clone());
        let poller = std::thread::Builder::new()
            .name("kafka producer polling".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    polled.poll(POLL);
                }
            })
            .map_err(|e| BusError::fatal(format!("cannot start the Kafka producer's polling thread: {e}")))?;
        // An idempotent producer asks for its id after each metadata answer,
        // of a broker it learned from one and is connected to; failing that,
        // on a 500 ms timer. A first metadata request makes it learn (and
        // connect to) the brokers; the next ones, once they are up, make it
        // ask at once instead of half a second later.
        let warm = (producer.clone(), topic.to_string());
        std::thread::spawn(move || {
            for pause in [0, 5, 20, 50] {
                std::thread::sleep(Duration::from_millis(pause));
                let _ = warm.0.client().fetch_metadata(Some(&warm.1), Duration::from_secs(5));
            }
        });
        Ok(KafkaProducer { producer, topic: topic.to_string(), polling: Some((stop, poller)) })
    }

    /// Messages whose delivery was confirmed, and failed.
    pub fn delivery_counts(&self) -> (u64, u64) {
        let c = self.producer.context();
        (c.delivered.load(Ordering::Relaxed), c.failed.load(Ordering::Relaxed))
    }
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        if let Some((stop, poller)) = self.polling.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = poller.join();
        }
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, key: &[u8], payload: Vec<u8>) -> Result<(), BusError> {
        let mut record = BaseRecord::to(&self.topic).payload(&payload);
        if !key.is_empty() {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                // The local queue is full: wait for deliveries (backpressure).
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(kafka_error(e, "cannot queue a message for Kafka")),
            }
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.flush_within(Duration::from_secs(300)).await
    }

    async fn flush_within(&self, limit: Duration) -> Result<(), BusError> {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(limit))
            .await
            .map_err(|e| BusError::fatal(format!("Kafka flush panicked: {e}")))?;
        if let Err(e) = flushed {
            let waiting = self.producer.in_flight_count();
            let failed = self.producer.context().failed.load(Ordering::Relaxed);
            return Err(BusError::fatal(format!(
                "{} records were not delivered to {} within {} s ({waiting} still waiting, {failed} failed): {e}",
                waiting as u64 + failed,
                self.topic,
                limit.as_secs()
            )));
        }
        let c = self.producer.context();
        let failed = c.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = c.first_error.lock().expect("delivery lock").clone().unwrap_or_default();
            return Err(BusError::fatal(format!(
                "{failed} records were not delivered to {}; first error: {first}",
                self.topic
            )));
        }
        Ok(())
    }
}

/// Publishes records to a topic and waits for their delivery: alerts to
/// `<topic>.alerts`, and (as [`KafkaDeadLetters`]) rejects to `<topic>.dlq`.
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
}

impl KafkaPublisher {
    /// A publisher to `topic`.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, BusError> {
        let mut config = settings.client_config();
        config.set("enable.idempotence", "true").set("acks", "all").set("compression.type", "lz4");
        let producer =
            config.create().map_err(|e| kafka_error(e, &format!("cannot create a Kafka producer for {topic}")))?;
        Ok(KafkaPublisher { producer, topic: topic.to_string() })
    }

    /// Sends every record and returns once all are delivered, or the first failure.
    async fn deliver<'a>(
        &'a self,
        records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
    ) -> Result<(), BusError> {
        let sends = records.map(|r| self.producer.send(r, Duration::from_secs(60)));
        for result in futures_util::future::join_all(sends).await {
            result.map_err(|(e, _)| kafka_error(e, &format!("cannot publish to {}", self.topic)))?;
        }
        Ok(())
    }

    /// Keyed records (key, value).
    pub async fn publish(&self, records: Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        self.deliver(
            records.iter().map(|(key, value)| FutureRecord::to(&self.topic).key(key.as_bytes()).payload(&value[..])),
        )
        .await
    }
}

/// Dead letters on Kafka: each reject goes to `<topic>.dlq` with its original
/// bytes as the value and `reason`, `kind` and `source` headers. Its producer
/// is made with the first reject: a clean run pays for none.
pub struct KafkaDeadLetters {
    settings: KafkaSettings,
    topic: String,
    publisher: tokio::sync::OnceCell<KafkaPublisher>,
}

impl KafkaDeadLetters {
    /// `topic` is the dead-letter topic itself (`stock-prices.dlq`).
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, BusError> {
        Ok(KafkaDeadLetters { settings: settings.clone(), topic: topic.to_string(), publisher: Default::default() })
    }
}

#[async_trait]
impl DeadLetters for KafkaDeadLetters {
    async fn keep(&self, rejects: Vec<Reject>) -> Result<(), StoreError> {
        if rejects.is_empty() {
            return Ok(());
        }
        let publisher = self
            .publisher
            .get_or_try_init(|| async { KafkaPublisher::new(&self.settings, &self.topic) })
            .await
            .map_err(StoreError::from)?;
        let topic = &publisher.topic;
        publisher
            .deliver(rejects.iter().map(|r| {
                let headers = OwnedHeaders::new()
                    .insert(Header { key: "reason", value: Some(r.reason.as_bytes()) })
                    .insert(Header { key: "kind", value: Some(r.kind.as_str().as_bytes()) })
                    .insert(Header { key: "source", value: Some(r.source.as_bytes()) });
                let record = FutureRecord::to(topic).payload(&r.original[..]).headers(headers);
                // Keyed as the original was: its partition, its compaction.
                match &r.key {
                    Some(key) => record.key(&key[..]),
                    None => record,
                }
            }))
            .await
            .map_err(StoreError::from)
    }
}
