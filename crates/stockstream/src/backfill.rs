//! Where a restarted live feed's history resumes: a window before what it
//! left (the newest stored bar, or the newest tick on the topic), so that a
//! window the feed saw only in part before it stopped is fetched whole.

use std::collections::HashMap;

use stockstream_bus::{KafkaSettings, KafkaTail};
use stockstream_core::fetched::{decode_fetched, is_fetched, ts_ms};
use stockstream_core::{canonical_symbol, company_for_symbol, BarLength, DateRange, Tick};
use stockstream_store::Store;

/// The sources that backfill.
pub fn backfills(source: Option<&str>) -> bool {
    matches!(source, Some("yahoo-live" | "finnhub" | "synthetic-ticks"))
}

/// Per symbol: the start of the newest bar stored of it, in the bars' table
/// or in the table its history is fetched into.
pub async fn stored_resume(
    store: &dyn Store,
    bar: BarLength,
    symbols: &[String],
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
        if let Some(at) = newest.and_then(|t| fetched.window(t)) {
            resume.insert(symbol, at.0);
        }
    }
    Ok(resume)
}

/// Per symbol: the start of the window of its newest tick or fetched bar
/// among the last messages of each partition of `topic`.
pub async fn topic_resume(
    settings: &KafkaSettings,
    topic: &str,
    bar: BarLength,
) -> anyhow::Result<HashMap<String, i64>> {
    let Some(fetched) = stockstream_sources::chart_length(bar) else { return Ok(HashMap::new()) };
    let mut newest: HashMap<String, i64> = HashMap::new();
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
        let e = newest.entry(symbol).or_insert(at);
        *e = (*e).max(at);
    }
    Ok(newest.into_iter().filter_map(|(s, t)| fetched.window(t).map(|w| (s, w.0))).collect())
}
