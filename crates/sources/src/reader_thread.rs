//! File sources read and parse on a thread of their own: reading overlaps with
//! the stages after it, and a stop never waits for a read that blocks (a pipe
//! fed slowly).

use futures_util::stream::{BoxStream, StreamExt};
use stockstream_core::Item;
use stockstream_core::RejectKind;
use tokio::sync::mpsc;

/// Items sent to the pipeline at most at once.
const CHUNK: usize = 512;
/// Chunks waiting for the pipeline at most: the bound that makes a slow
/// pipeline slow the reader down.
const CHUNKS_AHEAD: usize = 4;

/// Runs `items` on a thread of its own and streams what it yields, in order.
/// Items go out one by one while the pipeline waits for them (a slow input is
/// seen at once), in chunks while it is busy (a fast one costs little). When the
/// stream is dropped the thread stops at its next item; a thread still blocked
/// in a read ends with the process.
pub fn on_own_thread(name: &str, items: impl Iterator<Item = Item> + Send + 'static) -> BoxStream<'static, Item> {
    let (tx, rx) = mpsc::channel::<Vec<Item>>(CHUNKS_AHEAD);
    let spawned = std::thread::Builder::new().name(format!("read {name}")).spawn(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for item in items {
            chunk.push(item);
            // An empty channel means the pipeline is waiting: hand over now.
            let due = chunk.len() == CHUNK || tx.capacity() == tx.max_capacity();
            if due && tx.blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    if let Err(e) = spawned {
        let reject =
            stockstream_core::Refusal::new(RejectKind::UnreadableRow, format!("cannot start a reader thread: {e}"));
        return futures_util::stream::iter([Item::Reject(reject.into_reject(name.to_string(), Vec::new()))]).boxed();
    }
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) })
        .flat_map(futures_util::stream::iter)
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(i: usize) -> Item {
        Item::Wire(stockstream_core::WireRecord { key: i.to_string(), payload: Vec::new(), ts: None })
    }

    #[tokio::test]
    async fn every_item_arrives_in_order() {
        let got: Vec<Item> = on_own_thread("test", (0..10_000).map(bar)).collect().await;
        assert_eq!(got, (0..10_000).map(bar).collect::<Vec<_>>());
    }

    /// The first item arrives while the source is still blocked on the
    /// second: items are handed on one by one, not in batches.
    #[tokio::test]
    async fn a_slow_source_is_seen_item_by_item() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let slow = (0..3).map(move |i| {
            if i > 0 {
                released.recv_timeout(std::time::Duration::from_secs(30)).expect("released");
            }
            bar(i)
        });
        let mut stream = on_own_thread("slow", slow);
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await;
        assert_eq!(first.expect("the first item waited for the others"), Some(bar(0)));
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(stream.collect::<Vec<_>>().await, [bar(1), bar(2)]);
    }
}
