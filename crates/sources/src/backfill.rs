//! History before a live feed, and the gaps its outages leave, fetched from
//! the chart API as closed bars (`Item::Fetched`) that travel with the ticks.
//!
//! - At the start, each symbol's bars from its resume point to the window in
//!   progress are fetched (one attempt each, four at a time) before the feed
//!   connects; the bar in progress is left to the live ticks.
//! - The first tick of a symbol on each connection opens a gap: from the
//!   window of its previous tick (or the end of the history) to the end of
//!   this tick's window, which the feed saw only in part. It is fetched once
//!   that window has closed and settled, and stored over the partial bars.
//! - A failed fetch is logged and retried with backoff (1 s doubling to 60 s)
//!   while the ticks go on; nothing stops the feed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use stockstream_core::calendar::NewYorkDay;
use stockstream_core::{BarLength, Cleaner, FetchedBar, Item, MissingPolicy};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::yahoo::{FetchError, Yahoo};

/// What a live source backfills, and from where.
#[derive(Debug, Clone)]
pub struct BackfillPlan {
    /// The chart API's address (`--base-url`).
    pub chart_url: String,
    /// The length of the bars fetched: the bar's, or `1m` for bars shorter
    /// than the chart API's finest.
    pub length: BarLength,
    /// Where history starts for a symbol with no resume point.
    pub from_ms: i64,
    /// Per symbol (upper case): where its history resumes, after a restart.
    pub resume_ms: HashMap<String, i64>,
    /// How long after a window closes its fetch is due (the API's bar of a
    /// minute just closed may still be forming).
    pub settle: Duration,
}

/// Fetches in flight at once.
const CONCURRENT: usize = 4;
/// Gaps waiting per symbol; one more is merged into the latest.
const GAPS_PER_SYMBOL: usize = 4;
/// The chart API's 1-minute bars span at most 7 days a request and reach 30 days back.
const SPAN_MS: i64 = 7 * 86_400_000;
const REACH_MS: i64 = 30 * 86_400_000;
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// The length a bar of `bar` is backfilled at: the chart API's own
/// intraday intervals as they are; shorter or odd ones at `1m` (into the
/// `1m` table); daily bars not at all (a live feed's day is today's).
pub fn chart_length(bar: BarLength) -> Option<BarLength> {
    const CHART_INTERVALS_MS: [i64; 6] = [60_000, 120_000, 300_000, 900_000, 1_800_000, 3_600_000];
    match bar {
        BarLength::Fixed(ms) if CHART_INTERVALS_MS.contains(&ms) => Some(bar),
        BarLength::Fixed(_) => Some(BarLength::Fixed(60_000)),
        BarLength::Day => None,
    }
}

/// The latest regular session's open at or before `now_ms` (the default
/// start of the history): today's once it has opened, else the last
/// trading day's.
pub fn latest_session_open(now_ms: i64) -> i64 {
    let mut day = NewYorkDay::of(now_ms).expect("a time in range");
    for _ in 0..15 {
        if day.trading && day.open <= now_ms {
            return day.open;
        }
        day = NewYorkDay::of(day.midnight - 1).expect("a time in range");
    }
    day.open
}

/// A stretch of one symbol's bars to fetch.
#[derive(Debug)]
struct Gap {
    symbol: Arc<str>,
    from_ms: i64,
    to_ms: i64,
    due: Instant,
    wait: Duration,
}

/// The connection's side of the backfill: it fetches the history, tells the
/// worker of each gap, and knows where each symbol's next gap starts.
pub(crate) struct Filler {
    length: BarLength,
    settle: Duration,
    gaps: mpsc::Sender<Gap>,
    /// Per symbol: where a new connection's gap starts.
    resume: HashMap<Arc<str>, i64>,
    /// Symbols with a tick on this connection.
    seen: HashSet<Arc<str>>,
}

impl Filler {
    /// Fetches every symbol's history (one attempt each; a failure is left
    /// to the worker's retries), sends it on `items`, and starts the worker.
    pub(crate) async fn start(plan: BackfillPlan, symbols: &[Arc<str>], items: mpsc::Sender<Item>) -> Option<Filler> {
        let yahoo = match Yahoo::new(&plan.chart_url) {
            Ok(y) => Arc::new(y),
            Err(e) => {
                tracing::warn!("no backfill: {e}");
                return None;
            }
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let in_progress = plan.length.window(now_ms).map_or(now_ms, |(start, _)| start);
        let reach = now_ms - REACH_MS;
        let mut resume = HashMap::new();
        let mut first = Vec::new();
        for symbol in symbols {
            let mut from = plan.resume_ms.get(&**symbol).copied().unwrap_or(plan.from_ms);
            if from < reach {
                tracing::warn!("{symbol}: the chart API's bars reach 30 days back; the history starts there");
                from = reach;
            }
            resume.insert(symbol.clone(), in_progress);
            if from < in_progress {
                first.push(Gap {
                    symbol: symbol.clone(),
                    from_ms: from,
                    to_ms: in_progress,
                    due: Instant::now(),
                    wait: FIRST_WAIT,
                });
            }
        }
        let length = plan.length;
        let mut failed = Vec::new();
        let mut fetches = futures_util::stream::iter(first)
            .map(|gap| {
                let yahoo = yahoo.clone();
                async move {
                    let got = fetch_gap(&yahoo, length, &gap).await;
                    (gap, got)
                }
            })
            .buffered(CONCURRENT);
        while let Some((gap, got)) = fetches.next().await {
            match got {
                Ok(fetched) => {
                    for item in fetched {
                        if items.send(item).await.is_err() {
                            return None;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("{e}: the history of {} is retried in {} s", gap.symbol, FIRST_WAIT.as_secs());
                    failed.push(Gap { due: Instant::now() + FIRST_WAIT, ..gap });
                }
            }
        }
        drop(fetches);
        let (gaps, queued) = mpsc::channel(symbols.len().max(1) * GAPS_PER_SYMBOL);
        tokio::spawn(work(yahoo, length, queued, failed, items));
        Some(Filler { length, settle: plan.settle, gaps, resume, seen: HashSet::new() })
    }

    /// A new connection: each symbol's first tick on it opens a gap.
    pub(crate) fn connected(&mut self) {
        self.seen.clear();
    }

    /// A tick the feed passed on; false once the worker is gone (the reader
    /// stopped reading).
    pub(crate) async fn on_tick(&mut self, symbol: &Arc<str>, time_ms: i64) -> bool {
        let Some((start, end)) = self.length.window(time_ms) else { return true };
        if self.seen.insert(symbol.clone()) {
            let from = self.resume.get(symbol).copied().unwrap_or(start);
            if from < end {
                let closes_in = Duration::from_millis((end - chrono::Utc::now().timestamp_millis()).max(0) as u64);
                let gap = Gap {
                    symbol: symbol.clone(),
                    from_ms: from,
                    to_ms: end,
                    due: Instant::now() + closes_in + self.settle,
                    wait: FIRST_WAIT,
                };
                if self.gaps.send(gap).await.is_err() {
                    return false;
                }
            }
        }
        // Should the connection end now, this window was seen in part.
        match self.resume.get_mut(symbol) {
            Some(at) => *at = (*at).max(start),
            None => {
                self.resume.insert(symbol.clone(), start);
            }
        }
        true
    }
}

/// The worker: fetches gaps once due, four at a time, retrying failures with
/// backoff, until the reader stops reading.
async fn work(
    yahoo: Arc<Yahoo>,
    length: BarLength,
    mut queued: mpsc::Receiver<Gap>,
    mut waiting: Vec<Gap>,
    items: mpsc::Sender<Item>,
) {
    let mut running = FuturesUnordered::new();
    let mut queue_open = true;
    loop {
        let now = Instant::now();
        while running.len() < CONCURRENT {
            let Some(i) = waiting.iter().position(|g| g.due <= now) else { break };
            let gap = waiting.swap_remove(i);
            let yahoo = yahoo.clone();
            running.push(async move {
                let got = fetch_gap(&yahoo, length, &gap).await;
                (gap, got)
            });
        }
        let next_due = waiting.iter().map(|g| g.due).min();
        tokio::select! {
            gap = queued.recv(), if queue_open => match gap {
                Some(gap) => add(&mut waiting, gap),
                None => queue_open = false,
            },
            Some((gap, got)) = running.next(), if !running.is_empty() => match got {
                Ok(fetched) => {
                    for item in fetched {
                        if items.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "{e}: the bars of {} {} are retried in {} s",
                        gap.symbol,
                        span_text(gap.from_ms, gap.to_ms),
                        gap.wait.as_secs()
                    );
                    let wait = (gap.wait * 2).min(LONGEST_WAIT);
                    add(&mut waiting, Gap { due: Instant::now() + gap.wait, wait, ..gap });
                }
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or(now + LONGEST_WAIT)), if next_due.is_some() => {}
            _ = items.closed() => return,
        }
        if !queue_open && waiting.is_empty() && running.is_empty() {
            return;
        }
    }
}

/// Queues a gap; past [`GAPS_PER_SYMBOL`] of its symbol it is merged into
/// the latest, so that a flapping feed holds a bounded number.
fn add(waiting: &mut Vec<Gap>, gap: Gap) {
    let mut same: Vec<usize> = (0..waiting.len()).filter(|&i| waiting[i].symbol == gap.symbol).collect();
    if same.len() < GAPS_PER_SYMBOL {
        waiting.push(gap);
        return;
    }
    same.sort_by_key(|&i| waiting[i].to_ms);
    let latest = &mut waiting[*same.last().expect("some")];
    latest.from_ms = latest.from_ms.min(gap.from_ms);
    latest.to_ms = latest.to_ms.max(gap.to_ms);
    latest.due = latest.due.max(gap.due);
}

/// The closed bars of one gap, in spans the API serves, as items: a bar
/// the API sent incomplete or invalid goes to the dead letters with why.
async fn fetch_gap(yahoo: &Yahoo, length: BarLength, gap: &Gap) -> Result<Vec<Item>, FetchError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut items = Vec::new();
    let mut from = gap.from_ms;
    let mut cleaner = Cleaner::new(MissingPolicy::Drop);
    while from < gap.to_ms {
        let to = (from + SPAN_MS).min(gap.to_ms);
        for f in yahoo.bars_between(&gap.symbol, from, to, length, now_ms).await? {
            let mut raw = f.raw;
            // A minute without a trade has no volume in the API's reply.
            raw.volume.get_or_insert(0.0);
            let checked = cleaner.clean(&raw).and_then(|bar| stockstream_core::validate(&bar).map(|()| bar));
            items.push(match checked {
                Ok(bar) => Item::Fetched(FetchedBar { bar, length }),
                Err(refusal) => {
                    let mut original = Vec::new();
                    stockstream_core::encode_raw_into(&raw, &mut original);
                    let refusal = stockstream_core::Refusal::new(
                        refusal.kind,
                        format!("a fetched bar of {}: {}", gap.symbol, refusal.reason),
                    );
                    Item::Reject(refusal.into_reject(format!("chart API {}", gap.symbol), original))
                }
            });
        }
        from = to;
    }
    let bars = items.iter().filter(|i| matches!(i, Item::Fetched(_))).count();
    tracing::info!(
        "backfilled {bars} bar{} of {} {}",
        if bars == 1 { "" } else { "s" },
        gap.symbol,
        span_text(gap.from_ms, gap.to_ms)
    );
    Ok(items)
}

/// `10:02–10:38` in New York time, with the dates when the span is not
/// within one day.
fn span_text(from_ms: i64, to_ms: i64) -> String {
    let clock = |ms: i64| match NewYorkDay::of(ms) {
        Some(day) => {
            let minutes = (ms - day.midnight) / 60_000;
            (day.date, format!("{:02}:{:02}", minutes / 60, minutes % 60))
        }
        None => (chrono::NaiveDate::MIN, "?".into()),
    };
    let ((d1, t1), (d2, t2)) = (clock(from_ms), clock(to_ms));
    if d1 == d2 || (to_ms - from_ms <= 86_400_000 && t2 == "00:00") {
        format!("{t1}–{t2}")
    } else {
        format!("{d1} {t1}–{d2} {t2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn history_starts_at_the_latest_session_open() {
        // Thursday 2026-12-03 at 11:00 New York: that morning's open.
        assert_eq!(latest_session_open(at("2026-12-03T16:00:00Z")), at("2026-12-03T14:30:00Z"));
        // Before Friday's open, the session of Thursday.
        assert_eq!(latest_session_open(at("2026-12-04T13:00:00Z")), at("2026-12-03T14:30:00Z"));
        // Saturday: Friday's.
        assert_eq!(latest_session_open(at("2026-12-05T16:00:00Z")), at("2026-12-04T14:30:00Z"));
        // The Friday after Thanksgiving opens; Thanksgiving does not.
        assert_eq!(latest_session_open(at("2026-11-26T18:00:00Z")), at("2026-11-25T14:30:00Z"));
    }

    #[test]
    fn bars_shorter_than_a_minute_are_backfilled_as_minutes() {
        let length = |s: &str| chart_length(s.parse().unwrap()).map(|l| l.name());
        assert_eq!(length("1s").as_deref(), Some("1m"));
        assert_eq!(length("10m").as_deref(), Some("1m"));
        assert_eq!(length("5m").as_deref(), Some("5m"));
        assert_eq!(length("1h").as_deref(), Some("1h"));
        assert_eq!(length("1d"), None);
    }

    #[test]
    fn spans_read_in_new_york_time() {
        assert_eq!(span_text(at("2026-12-03T15:02:00Z"), at("2026-12-03T15:38:00Z")), "10:02–10:38");
        assert_eq!(
            span_text(at("2026-12-02T20:00:00Z"), at("2026-12-03T14:31:00Z")),
            "2026-12-02 15:00–2026-12-03 09:31"
        );
    }

    #[test]
    fn a_symbol_holds_a_bounded_number_of_gaps() {
        let mut waiting = Vec::new();
        let symbol: Arc<str> = "NVDA".into();
        for i in 0..10 {
            let gap = Gap {
                symbol: symbol.clone(),
                from_ms: i * 1000,
                to_ms: i * 1000 + 500,
                due: Instant::now(),
                wait: FIRST_WAIT,
            };
            add(&mut waiting, gap);
        }
        assert_eq!(waiting.len(), GAPS_PER_SYMBOL);
        let latest = waiting.iter().max_by_key(|g| g.to_ms).unwrap();
        assert_eq!((latest.from_ms, latest.to_ms), (3000, 9500));
    }
}
