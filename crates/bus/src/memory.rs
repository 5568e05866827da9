//! The embedded bus: a bounded in-process channel. One partition; offsets count
//! messages from zero.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use stockstream_core::{BusError, RawBar};
use tokio::sync::mpsc;

use crate::{Consumer, Message, Polled, Position, Producer};

/// A connected producer/consumer pair holding at most `capacity` messages in
/// flight.
pub fn memory_bus(capacity: usize) -> (MemoryProducer, MemoryConsumer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (MemoryProducer { tx, next_offset: Mutex::new(0) }, MemoryConsumer { rx, committed: None, revoked: Arc::default() })
}

/// The sending end of the in-process bus.
pub struct MemoryProducer {
    tx: mpsc::Sender<Message>,
    /// The next message's offset: taken and the message enqueued under this
    /// lock, so that offsets are in queue order whatever the senders do.
    next_offset: Mutex<i64>,
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn send(&self, key: &[u8], payload: Vec<u8>) -> Result<(), BusError> {
        self.queue(key, payload, None, None).await
    }

    /// The record as it is: encoding it for the consumer to decode again
    /// took a third of the embedded pipeline's time.
    async fn send_record(&self, key: &[u8], record: RawBar, origin: String) -> Result<(), BusError> {
        self.queue(key, Vec::new(), Some(record), Some(origin)).await
    }

    async fn send_from(&self, key: &[u8], payload: Vec<u8>, origin: String) -> Result<(), BusError> {
        self.queue(key, payload, None, Some(origin)).await
    }

    async fn flush(&self) -> Result<(), BusError> {
        // A message handed to the channel is delivered.
        Ok(())
    }
}

impl MemoryProducer {
    async fn queue(
        &self,
        key: &[u8],
        payload: Vec<u8>,
        record: Option<RawBar>,
        origin: Option<String>,
    ) -> Result<(), BusError> {
        // Room first (the wait), then the offset and the enqueueing at once:
        // an offset taken before the wait could reach the queue after a later one.
        let permit = self
            .tx
            .reserve()
            .await
            .map_err(|_| BusError::fatal("the in-process bus is closed: its consumer has stopped"))?;
        let mut next = self.next_offset.lock().expect("offset lock");
        let message = Message {
            key: Some(key.to_vec()),
            payload,
            record,
            position: Position { partition: 0, offset: *next },
            sent_at_micros: Some(stockstream_core::now_micros()),
            topic: None,
            origin,
        };
        *next += 1;
        permit.send(message);
        Ok(())
    }
}

/// The receiving end of the in-process bus.
pub struct MemoryConsumer {
    rx: mpsc::Receiver<Message>,
    committed: Option<i64>,
    revoked: Arc<AtomicBool>,
}

/// Takes the in-process bus's one partition away from its consumer, as a
/// group rebalance takes a Kafka partition away from a member.
#[derive(Clone)]
pub struct Revoke(Arc<AtomicBool>);

impl Revoke {
    /// From now on the consumer no longer owns partition 0.
    pub fn revoke(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl MemoryConsumer {
    /// The last offset committed, if any.
    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// A handle that revokes the partition (a rebalance, for tests of what the
    /// consume loop commits).
    pub fn revoke_handle(&self) -> Revoke {
        Revoke(self.revoked.clone())
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled, BusError> {
        let first = match tokio::time::timeout(wait, self.rx.recv()).await {
            Err(_) => return Ok(Polled::Idle),
            Ok(None) => return Ok(Polled::Closed),
            Ok(Some(m)) => m,
        };
        let mut batch = Vec::with_capacity(max.min(4096));
        batch.push(first);
        while batch.len() < max {
            match self.rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        Ok(Polled::Messages(batch))
    }

    async fn commit(&mut self, done: &[Position]) -> Result<(), BusError> {
        if let Some(max) = done.iter().map(|p| p.offset).max() {
            self.committed = Some(self.committed.map_or(max, |c| c.max(max)));
        }
        Ok(())
    }

    fn describe(&self, position: Position) -> String {
        format!("memory@{}", position.offset)
    }

    fn owns(&self, _partition: i32) -> bool {
        !self.revoked.load(Ordering::SeqCst)
    }

    async fn lag(&mut self) -> Option<u64> {
        Some(self.rx.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_then_closes() {
        let (producer, mut consumer) = memory_bus(4);
        let sender = tokio::spawn(async move {
            for i in 0..10u8 {
                producer.send(b"k", vec![i]).await.unwrap();
            }
        });
        let mut got = Vec::new();
        loop {
            match consumer.poll(3, Duration::from_secs(5)).await.unwrap() {
                Polled::Messages(ms) => {
                    assert!(ms.len() <= 3);
                    got.extend(ms.iter().map(|m| (m.payload[0], m.position.offset)));
                }
                Polled::Idle => panic!("idle while the producer is sending"),
                Polled::Closed => break,
            }
        }
        sender.await.unwrap();
        assert_eq!(got, (0..10u8).map(|i| (i, i as i64)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_bus_makes_the_producer_wait() {
        let (producer, mut consumer) = memory_bus(2);
        producer.send(b"k", vec![1]).await.unwrap();
        producer.send(b"k", vec![2]).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(100), producer.send(b"k", vec![3])).await;
        assert!(third.is_err(), "a third message fitted into a bus of two");
        assert!(matches!(consumer.poll(1, Duration::from_secs(1)).await.unwrap(), Polled::Messages(_)));
        tokio::time::timeout(Duration::from_secs(1), producer.send(b"k", vec![3])).await.unwrap().unwrap();
    }

    /// Many senders on both of a runtime's threads through a small bus, so
    /// that most of them wait for room: offsets must still come in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offsets_arrive_in_order_whatever_the_senders() {
        let (producer, mut consumer) = memory_bus(4);
        let producer = Arc::new(producer);
        let senders: Vec<_> = (0..8)
            .map(|s| {
                let producer = producer.clone();
                tokio::spawn(async move {
                    for i in 0..2_000u32 {
                        producer.send(&[s], i.to_le_bytes().to_vec()).await.unwrap();
                    }
                })
            })
            .collect();
        drop(producer);
        let mut offsets = Vec::new();
        while let Polled::Messages(ms) = consumer.poll(64, Duration::from_secs(5)).await.unwrap() {
            offsets.extend(ms.iter().map(|m| m.position.offset));
        }
        for s in senders {
            s.await.unwrap();
        }
        assert_eq!(offsets.len(), 16_000);
        let out_of_order = offsets.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert_eq!(out_of_order, 0, "offsets out of queue order");
    }

    #[tokio::test]
    async fn idle_when_nothing_comes_and_commit_tracks_the_highest_offset() {
        let (producer, mut consumer) = memory_bus(2);
        assert!(matches!(consumer.poll(1, Duration::from_millis(20)).await.unwrap(), Polled::Idle));
        drop(producer);
        assert!(matches!(consumer.poll(1, Duration::from_millis(20)).await.unwrap(), Polled::Closed));
        consumer.commit(&[Position { partition: 0, offset: 5 }, Position { partition: 0, offset: 3 }]).await.unwrap();
        assert_eq!(consumer.committed(), Some(5));
    }
}
