//! The bus between producer and consumer. Two backends side by side behind one
//! pair of traits: an in-process bounded channel (embedded default) and Kafka.
#![warn(missing_docs)]

use std::time::Duration;

use async_trait::async_trait;
use stockstream_core::{encode_raw_into, BusError, RawBar};

pub mod args;
pub mod kafka;
pub mod memory;

pub use args::{FollowArgs, KafkaArgs};
pub use kafka::{
    ensure_topic, ensure_topics, KafkaConsumer, KafkaDeadLetters, KafkaProducer, KafkaPublisher, KafkaSettings,
    KafkaTail, OffsetReset,
};
pub use memory::{memory_bus, MemoryConsumer, MemoryProducer, Revoke};

/// Where a message sits in its topic: what the consumer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The partition (0 on the in-process bus).
    pub partition: i32,
    /// The message's offset in its partition.
    pub offset: i64,
}

/// One message as the consumer receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The key (the symbol), if any.
    pub key: Option<Vec<u8>>,
    /// The message bytes (empty when `record` carries the message).
    pub payload: Vec<u8>,
    /// A bar record handed over as it is: the in-process bus's messages never
    /// leave the process, so they are not encoded (see [`Producer::send_record`]).
    pub record: Option<RawBar>,
    /// Where it sits.
    pub position: Position,
    /// Where the record was read, when the bus knows (`file.csv:17`: the
    /// in-process bus hands it over with the record).
    pub origin: Option<String>,
    /// Its topic, where one reader follows several (a live view's tail);
    /// None where the consumer reads one.
    pub topic: Option<std::sync::Arc<str>>,
    /// When the message entered the bus, in µs since the epoch, if known.
    pub sent_at_micros: Option<i64>,
}

impl Message {
    /// The message in the wire format: its bytes, or its record encoded.
    pub fn wire_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.record {
            Some(record) => encoded(record).into(),
            None => self.payload.as_slice().into(),
        }
    }

    /// [`Message::wire_bytes`], owned (a reject keeps them).
    pub fn into_wire_bytes(self) -> Vec<u8> {
        match &self.record {
            Some(record) => encoded(record),
            None => self.payload,
        }
    }
}

fn encoded(record: &RawBar) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(160);
    encode_raw_into(record, &mut bytes);
    bytes
}

/// What a poll found.
#[derive(Debug)]
pub enum Polled {
    /// At least one message, in bus order.
    Messages(Vec<Message>),
    /// Nothing arrived within the wait.
    Idle,
    /// No more messages will ever come (every producer of an in-process bus is
    /// gone). A Kafka topic never closes.
    Closed,
}

/// Sends messages onto the bus.
///
/// The in-process bus, as the embedded pipeline uses it:
///
/// ```
/// use std::time::Duration;
/// use stockstream_bus::{memory_bus, Consumer, Polled, Producer};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (producer, mut consumer) = memory_bus(16);
/// producer.send(b"NVDA", br#"{"Date":"2024-01-02"}"#.to_vec()).await.unwrap();
/// producer.flush().await.unwrap();
/// let Polled::Messages(messages) = consumer.poll(10, Duration::from_secs(1)).await.unwrap() else {
///     panic!("nothing polled")
/// };
/// assert_eq!((messages[0].key.as_deref(), messages[0].position.offset), (Some(&b"NVDA"[..]), 0));
/// consumer.commit(&[messages[0].position]).await.unwrap();
/// # });
/// ```
#[async_trait]
pub trait Producer: Send + Sync {
    /// Queues one message. Waits while the bus is full: a slow consumer slows the
    /// producer, nothing is dropped and nothing grows without bound.
    async fn send(&self, key: &[u8], payload: Vec<u8>) -> Result<(), BusError>;

    /// Queues one bar record as [`Producer::send`] does, in the wire format
    /// (the original project's JSON); a bus within one process may hand the
    /// record over as it is, with where it was read (`origin`) for the
    /// dead letters.
    async fn send_record(&self, key: &[u8], record: RawBar, origin: String) -> Result<(), BusError> {
        let _ = origin;
        self.send(key, encoded(&record)).await
    }

    /// [`Producer::send`] of a message read from a file at `origin`; a bus
    /// within one process keeps the place for the dead letters.
    async fn send_from(&self, key: &[u8], payload: Vec<u8>, origin: String) -> Result<(), BusError> {
        let _ = origin;
        self.send(key, payload).await
    }

    /// Waits until every queued message is delivered, or fails naming how many
    /// were not.
    async fn flush(&self) -> Result<(), BusError>;

    /// [`Producer::flush`], waiting at most `limit` (a stop asked for by a
    /// person or a supervisor: the bus may be gone); what is not delivered
    /// by then is counted in the error.
    async fn flush_within(&self, limit: Duration) -> Result<(), BusError> {
        let _ = limit;
        self.flush().await
    }
}

/// Takes messages off the bus and commits what is stored.
#[async_trait]
pub trait Consumer: Send {
    /// Up to `max` messages, waiting at most `wait` for the first.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError>;

    /// Records that every message up to and including these positions is
    /// stored; called only after the store has acknowledged them.
    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError>;

    /// Names a message's place for rejects and logs: `topic/partition@offset`.
    fn describe(&self, position: Position) -> String;

    /// Whether this member still owns `partition`: after a rebalance took it
    /// away, its new owner reads from the last commit, and this member must
    /// not commit over it.
    fn owns(&self, _partition: i32) -> bool {
        true
    }

    /// Messages not yet committed, where the backend can tell.
    async fn lag(&mut self) -> Option<u64> {
        None
    }
}
