//! Where a restarted live feed's history resumes: a window before what it
//! left (the newest stored bar, or the newest tick on the topic), so that the
//! windows the feed saw only in part before it stopped are fetched whole.

use std::collections::HashMap;

use stockstream_bus::{KafkaSettings, KafkaTail};
use stockstream_core::calendar::NewYorkDay;
use stockstream_core::fetched::{decode_fetched, is_fetched, ts_ms};
use stockstream_core::{canonical_symbol, company_for_symbol, BarLength, DateRange, Tick, Ts};
use stockstream_store::Store;

/// The sources that backfill.
pub fn backfills(source: Option<&str>) -> bool {
    matches!(source, Some("yahoo-live" | "finnhub" | "synthetic-ticks"))
}

/// Per symbol: where its history resumes. The start of the newest bar
/// stored of it (in the bars' table or the one its history is fetched into),
/// or, when the bars stored since `from_ms` have a hole in trading hours, of
/// the bar before the latest hole: a run stopped after a reconnection but
/// before that gap's fetch left it open (and the bars beside it partial).
pub async fn stored_resume(
    store: &dyn Store,
    bar: BarLength,
    symbols: &[String],
    from_ms: i64,
) -> anyhow::Result<HashMap<String, i64>> {
    let Some(fetched) = stockstream_sources::chart_length(bar) else { return Ok(HashMap::new()) };
    let mut tables = vec![store.interval(&bar.name()).await?];
    if fetched != bar {
        tables.push(store.interval(&fetched.name()).await?);
    }
    let mut resume = HashMap::new();
    for symbol in symbols.iter().map(|s| canonical_symbol(s.trim())).filter(|s| !s.is_empty()) {
        let company = company_for_symbol(&symbol);
        let mut newest = None;
        for table in &tables {
            if let Some(last) = table.newest(&company, &DateRange::new(None, None), 1).await?.pop() {
                newest = newest.max(Some(ts_ms(&last.ts)));
            }
        }
        if fetched == bar {
            let since = chrono::DateTime::from_timestamp_millis(from_ms).map(Ts::Instant);
            let stored = tables[0].range(&company, &DateRange::new(since, None)).await?;
            let starts: Vec<i64> = stored.iter().map(|b| ts_ms(&b.ts)).collect();
            if let Some(before_hole) = latest_hole(&starts, bar) {
                newest = Some(before_hole);
            }
        }
        if let Some(at) = newest.and_then(|t| window_before(fetched, t)) {
            resume.insert(symbol, at);
        }
    }
    Ok(resume)
}

/// The start of the window before the one holding `t`: a run stopped just
/// after a connection leaves two windows unsettled, the one it flushed at
/// its stop and the connection's, whose fetch was not yet due.
fn window_before(length: BarLength, t: i64) -> Option<i64> {
    let (start, _) = length.window(t)?;
    length.window(start - 1).map(|(before, _)| before)
}

/// The start of the bar before the latest hole among bars starting at
/// `starts` (ascending): a window missing between two stored ones in a
/// trading day's extended hours (04:00–20:00 New York), when the market
/// trades.
fn latest_hole(starts: &[i64], length: BarLength) -> Option<i64> {
    let trading = |t: i64| {
        NewYorkDay::of(t)
            .is_some_and(|d| d.trading && t >= d.midnight + 4 * 3_600_000 && t < d.midnight + 20 * 3_600_000)
    };
    starts.windows(2).rev().find_map(|w| {
        let next = length.window(w[0]).map_or(w[1], |(_, end)| end);
        (next < w[1] && trading(next)).then_some(w[0])
    })
}

/// Per symbol: the start of the window of its newest tick or fetched bar
/// among the last messages of each partition of `topic`, or of the window
/// before the latest hole among them (as [`stored_resume`]).
pub async fn topic_resume(
    settings: &KafkaSettings,
    topic: &str,
    bar: BarLength,
) -> anyhow::Result<HashMap<String, i64>> {
    let Some(fetched) = stockstream_sources::chart_length(bar) else { return Ok(HashMap::new()) };
    let mut windows: HashMap<String, Vec<i64>> = HashMap::new();
    for (_, payload) in KafkaTail::last_messages(settings, topic, 1_000).await? {
        let (symbol, at) = if is_fetched(&payload) {
            match decode_fetched(&payload) {
                Ok(f) => (canonical_symbol(&f.bar.symbol), f.start_ms()),
                Err(_) => continue,
            }
        } else {
            match Tick::decode(&payload) {
                Ok(t) => (canonical_symbol(&t.symbol), t.time_ms),
                Err(_) => continue,
            }
        };
        if let Some((start, _)) = fetched.window(at) {
            windows.entry(symbol).or_default().push(start);
        }
    }
    Ok(windows
        .into_iter()
        .map(|(symbol, mut starts)| {
            starts.sort_unstable();
            starts.dedup();
            let at = latest_hole(&starts, fetched).unwrap_or(*starts.last().expect("one at least"));
            (symbol, window_before(fetched, at).unwrap_or(at))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn the_latest_hole_in_trading_hours_is_where_history_resumes() {
        let minute = BarLength::Fixed(60_000);
        let run = |from: &str, n: i64| {
            let first = at(from);
            (0..n).map(move |i| first + i * 60_000)
        };
        // Thursday 2026-12-03: 10:00–10:09 and 10:20–10:29 New York.
        let mut starts: Vec<i64> = run("2026-12-03T15:00:00Z", 10).chain(run("2026-12-03T15:20:00Z", 10)).collect();
        assert_eq!(latest_hole(&starts, minute), Some(at("2026-12-03T15:09:00Z")));
        // A later hole is the one that counts.
        starts.extend(run("2026-12-03T15:40:00Z", 5));
        assert_eq!(latest_hole(&starts, minute), Some(at("2026-12-03T15:29:00Z")));
        // The night between two days (20:00–04:00) is no hole.
        let days: Vec<i64> = run("2026-12-04T00:50:00Z", 10).chain(run("2026-12-04T09:00:00Z", 10)).collect();
        assert_eq!(latest_hole(&days, minute), None);
        // Resumed a window before: a stop may leave two windows partial.
        assert_eq!(window_before(minute, at("2026-12-03T15:00:30Z")), Some(at("2026-12-03T14:59:00Z")));
        // Nor is a run without one.
        assert_eq!(latest_hole(&run("2026-12-03T15:00:00Z", 30).collect::<Vec<_>>(), minute), None);
    }
}
