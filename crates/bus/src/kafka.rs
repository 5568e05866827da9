//! The Kafka backend, over librdkafka (`rdkafka`): any Kafka-protocol cluster.
//! Producer: idempotent, acks=all, lz4, batched. Consumer: a consumer-group member
//! that commits only what the caller says is stored. Dead letters: `<topic>.dlq`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _, ProducerContext,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use stockstream_core::{BusError, DeadLetters, Reject, StoreError};

use crate::{Consumer, Message, Polled, Position, Producer};

/// How to reach the cluster: bootstrap brokers plus any librdkafka setting passed
/// through as is (TLS, SASL, timeouts: `security.protocol=SASL_SSL`, ...).
#[derive(Debug, Clone, Default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// librdkafka settings passed through as they are.
    pub options: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Brokers and no other setting.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings { brokers: brokers.into(), options: Vec::new() }
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

/// Creates the topic with `partitions` partitions when it does not exist
/// (brokers may not auto-create topics). An existing topic is left as it is.
pub async fn ensure_topic(settings: &KafkaSettings, topic: &str, partitions: i32) -> Result<(), BusError> {
    ensure_topics(settings, &[topic], partitions).await
}

/// Creates the topics that are missing, with one admin client and one
/// metadata request (a command's fixed cost: each client costs a connection
/// and a round trip).
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> =
        settings.client_config().create().map_err(|e| kafka_error(e, "cannot create a Kafka admin client"))?;
    // Fail fast and clearly when the cluster cannot be reached at all.
    let client = admin.inner();
    let metadata = blocking(|| client.fetch_metadata(None, Duration::from_secs(10)))
        .map_err(|e| kafka_error(e, &format!("cannot reach Kafka at {}", settings.brokers)))?;
    let missing: Vec<NewTopic> = topics
        .iter()
        .filter(|t| !metadata.topics().iter().any(|m| m.name() == **t && m.error().is_none()))
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    if missing.is_empty() {
        dispose(admin);
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let names: Vec<&str> = missing.iter().map(|t| t.name).collect();
    let results = admin
        .create_topics(&missing, &options)
        .await
        .map_err(|e| kafka_error(e, &format!("cannot create topics {names:?} on {}", settings.brokers)))?;
    dispose(admin);
    for r in results {
        match r {
            Ok(topic) => tracing::info!(topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(BusError::fatal(format!("cannot create topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// Drops a client whose work is done on a thread of its own: its polling
/// thread notices the stop only after a poll of up to 100 ms, which no
/// command needs to wait for.
fn dispose<T: Send + 'static>(client: T) {
    std::thread::spawn(move || drop(client));
}

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

/// Where a consumer group starts when it has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// From the oldest message kept.
    #[default]
    Earliest,
    /// From messages produced after it joined.
    Latest,
}

/// A consumer-group member of one topic.
pub struct KafkaConsumer {
    consumer: StreamConsumer<GroupEvents>,
    topic: String,
    /// The group session: a member silent that long is out of the group.
    session: Duration,
    stranded: Stranded,
}

/// A member that owns no partition while messages wait and nobody commits
/// them is stranded: Tansu 0.6.0 leaves the partitions of members that
/// crashed right after a restart with them until a member joins again, so the
/// member joins again. Only after a join completed with nothing for it (not
/// while a join is under way, which a new join would only prolong), and only
/// if the group's commits stood still for a session: a member idle because the
/// group has more members than partitions sees the others commit, and stays.
/// A join that has not completed after [`JOIN_PATIENCE`] sessions (a broker
/// restarted under it may never answer it) is started again.
#[derive(Default)]
struct Stranded {
    /// The group's committed offsets at the last look, summed.
    committed: Option<i64>,
    last_look: Option<std::time::Instant>,
}

/// Sessions a join may take before it is taken for lost and started again.
const JOIN_PATIENCE: u32 = 3;

/// librdkafka's 45 s group session leaves a crashed member's partitions
/// unread that long; 10 s is Kafka's own consumer default.
const DEFAULT_SESSION: &str = "10000";

/// Logs the partitions this member gains and loses as the group rebalances, so
/// an operator (and the fault tests) can see how the work is spread.
#[derive(Default)]
pub struct GroupEvents {
    /// When the group last handed this member an assignment (possibly empty):
    /// a join that completed.
    last_assign: Mutex<Option<std::time::Instant>>,
    /// Since when a join is under way (a revocation, or a join of ours), until
    /// an assignment ends it.
    joining_since: Mutex<Option<std::time::Instant>>,
}

impl GroupEvents {
    fn joining(&self) {
        *self.joining_since.lock().expect("join time") = Some(std::time::Instant::now());
    }
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| {
            list.elements().iter().map(|e| e.partition().to_string()).collect::<Vec<_>>().join(",")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                *self.last_assign.lock().expect("assign time") = Some(std::time::Instant::now());
                *self.joining_since.lock().expect("join time") = None;
                tracing::info!(partitions = %partitions(list), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                self.joining();
                tracing::info!(partitions = %partitions(list), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!("group rebalance failed: {e}"),
        }
    }
}

impl KafkaConsumer {
    /// Joins `group` and subscribes to `topic`.
    pub fn new(settings: &KafkaSettings, topic: &str, group: &str, reset: OffsetReset) -> Result<Self, BusError> {
        let mut config = settings.client_config();
        config
            .set("group.id", group)
            // Offsets are committed by hand, only after the store acknowledged.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", if reset == OffsetReset::Latest { "latest" } else { "earliest" })
            .set("enable.partition.eof", "false");
        // Some brokers (Tansu among them) hold a fetch for its whole wait even
        // when data is there: a short wait keeps throughput and latency up.
        // librdkafka prefetches up to 64 MB by default (135 MB peak RSS over
        // 200k bars); 2 MB measured 74 MB at the same throughput (~27k msgs/s).
        let defaults = [
            ("fetch.wait.max.ms", "10"),
            ("queued.max.messages.kbytes", "2048"),
            ("session.timeout.ms", DEFAULT_SESSION),
            ("heartbeat.interval.ms", "1000"),
        ];
        for (key, value) in defaults {
            if !settings.options.iter().any(|(k, _)| k == key) {
                config.set(key, value);
            }
        }
        let session_ms = config.get("session.timeout.ms").and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let consumer: StreamConsumer<GroupEvents> = config
            .create_with_context(GroupEvents::default())
            .map_err(|e| kafka_error(e, "cannot create a Kafka consumer"))?;
        consumer.subscribe(&[topic]).map_err(|e| kafka_error(e, &format!("cannot subscribe to {topic}")))?;
        consumer.context().joining();
        Ok(KafkaConsumer {
            consumer,
            topic: topic.to_string(),
            session: Duration::from_millis(session_ms),
            stranded: Stranded::default(),
        })
    }

    /// Joins the group again when this member is stranded (see [`Stranded`]);
    /// looks at most once per session.
    fn rejoin_if_stranded(&mut self) {
        let owns_nothing = self.consumer.assignment().is_ok_and(|a| a.count() == 0);
        let events = self.consumer.context();
        let assigned_at = *events.last_assign.lock().expect("assign time");
        let joining_since = *events.joining_since.lock().expect("join time");
        let now = std::time::Instant::now();
        if let Some(since) = joining_since.filter(|_| owns_nothing) {
            if now - since >= self.session * JOIN_PATIENCE {
                tracing::warn!(
                    "the group's join for {} has not completed in {} s: joining the group again",
                    self.topic,
                    (now - since).as_secs()
                );
                self.join_again();
            }
            return;
        }
        let Some(assigned_at) = assigned_at.filter(|_| owns_nothing) else {
            self.stranded = Stranded::default();
            return;
        };
        let looked_lately = self.stranded.last_look.is_some_and(|t| now - t < self.session);
        if now - assigned_at < self.session || looked_lately {
            return;
        }
        self.stranded.last_look = Some(now);
        let Some((waiting, committed)) = blocking(|| self.group_position()) else { return };
        let stalled = self.stranded.committed == Some(committed);
        self.stranded.committed = Some(committed);
        if waiting > 0 && stalled {
            tracing::warn!(
                "this member owns no partition of {} while {waiting} messages wait and the group commits none: joining the group again",
                self.topic
            );
            self.join_again();
        }
    }

    /// Leaves the group and joins it again; the next look waits for this join
    /// to complete (or to be lost).
    fn join_again(&mut self) {
        self.consumer.context().joining();
        self.stranded = Stranded::default();
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.subscribe(&[&self.topic]) {
            tracing::warn!("cannot subscribe to {} again: {e}", self.topic);
        }
    }

    /// Messages of the topic the group has not committed, and the sum of its
    /// committed offsets, over every partition.
    fn group_position(&self) -> Option<(u64, i64)> {
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(5)).ok()?;
        let mut all = TopicPartitionList::new();
        for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
            all.add_partition(&self.topic, p.id());
        }
        self.uncommitted(all)
    }

    /// Over `partitions`: the messages after the group's committed offsets (from
    /// the oldest kept where none is committed), and the sum of those offsets.
    fn uncommitted(&self, partitions: TopicPartitionList) -> Option<(u64, i64)> {
        let timeout = Duration::from_secs(5);
        let committed = self.consumer.committed_offsets(partitions, timeout).ok()?;
        let (mut waiting, mut sum) = (0u64, 0i64);
        for e in committed.elements() {
            let (low, high) = self.consumer.fetch_watermarks(e.topic(), e.partition(), timeout).ok()?;
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            waiting += (high - at).max(0) as u64;
            sum += at;
        }
        Some((waiting, sum))
    }
}

/// A message read from Kafka, copied out of librdkafka's buffer.
fn owned(m: &rdkafka::message::BorrowedMessage<'_>) -> Message {
    Message {
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        record: None,
        position: Position { partition: m.partition(), offset: m.offset() },
        sent_at_micros: m.timestamp().to_millis().map(|ms| ms * 1000),
        topic: None,
        origin: None,
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => {
                self.rejoin_if_stranded();
                return Ok(Polled::Idle);
            }
            Ok(Err(e)) if passing(&e) => {
                // A broker gone or restarting: librdkafka reconnects and the
                // fetch resumes from the last position on its own.
                tracing::warn!("Kafka: {e}; resuming when the cluster answers");
                return Ok(Polled::Idle);
            }
            Ok(Err(e)) => return Err(kafka_error(e, "Kafka consumer error")),
            Ok(Ok(m)) => owned(&m),
        };
        let mut batch = vec![first];
        // Take what is already fetched, without waiting; an error is left for
        // the next poll so that the batch in hand is processed first.
        while batch.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => {
                    let owned = owned(&m);
                    batch.push(owned);
                }
                Some(Err(e)) if passing(&e) => break,
                Some(Err(e)) => return Err(kafka_error(e, "Kafka consumer error")),
                None => break,
            }
        }
        Ok(Polled::Messages(batch))
    }

    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for p in done {
            let e = next.entry(p.partition).or_insert(p.offset + 1);
            *e = (*e).max(p.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next {
            tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(|e| kafka_error(e, "invalid offset to commit"))?;
        }
        // Synchronous: when this returns, a restarted consumer resumes after
        // these messages. A coordinator away (a broker restarting) is a
        // transient error: the caller retries it under its policy.
        match blocking(|| self.consumer.commit(&tpl, CommitMode::Sync)) {
            // The group moved these partitions while the batch was being
            // written: the batch is stored, and the partitions' new owner
            // reads the uncommitted messages again (idempotent writes absorb
            // them).
            Err(KafkaError::ConsumerCommit(code)) if lost_to_rebalance(code) => {
                tracing::warn!("offsets not committed, the group is rebalancing ({code}): the new owner re-reads them");
                Ok(())
            }
            other => other.map_err(|e| kafka_error(e, "Kafka offset commit failed")),
        }
    }

    fn describe(&self, position: Position) -> String {
        format!("{}/{}@{}", self.topic, position.partition, position.offset)
    }

    fn owns(&self, partition: i32) -> bool {
        // When the assignment cannot be read, commit and let the broker judge.
        self.consumer.assignment().map_or(true, |a| a.find_partition(&self.topic, partition).is_some())
    }

    async fn lag(&mut self) -> Option<u64> {
        blocking(|| {
            let assignment = self.consumer.assignment().ok()?;
            if assignment.count() == 0 {
                return None;
            }
            self.uncommitted(assignment).map(|(waiting, _)| waiting)
        })
    }
}

/// A consumer error that librdkafka recovers from by itself (connections lost,
/// brokers restarting), as opposed to a fatal one or a refusal (authorization).
fn passing(e: &KafkaError) -> bool {
    match e {
        KafkaError::MessageConsumption(code) => !matches!(
            code,
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::Authentication
        ),
        _ => false,
    }
}

/// A Kafka error as a bus error: transient when the cluster is unreachable,
/// busy or moving leaders, fatal otherwise.
fn kafka_error(e: KafkaError, doing: &str) -> BusError {
    use RDKafkaErrorCode::*;
    let transient = matches!(
        e.rdkafka_error_code(),
        Some(
            AllBrokersDown
                | BrokerTransportFailure
                | MessageTimedOut
                | RequestTimedOut
                | OperationTimedOut
                | BrokerNotAvailable
                | LeaderNotAvailable
                | NotLeaderForPartition
                | NotCoordinator
                | CoordinatorNotAvailable
                | CoordinatorLoadInProgress
                | WaitingForCoordinator
                | NetworkException
                | RebalanceInProgress
                | QueueFull
        )
    );
    let message = format!("{doing}: {e}");
    let error = if transient { BusError::transient(message) } else { BusError::fatal(message) };
    error.caused_by(e)
}

fn lost_to_rebalance(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::AssignmentLost
    )
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

/// Runs a blocking librdkafka call from async code: on a multi-threaded
/// runtime its worker hands its other tasks on first
/// (`tokio::task::block_in_place`, which panics on a current-thread runtime);
/// on a current-thread runtime, or none, the call just blocks.
fn blocking<R>(call: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::blocking;

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_call_on_a_current_thread_runtime_does_not_panic() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocking_call_on_a_multi_threaded_runtime_runs() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }

    #[test]
    fn a_blocking_call_outside_any_runtime_runs() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }
}
