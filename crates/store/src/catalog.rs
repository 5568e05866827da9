//! The catalog of a table of bars: one entry per company with its symbol, its
//! last bar and the [`SeriesSummary`] of all its stored bars (count, first
//! and last dates, the running statistics), kept by the writers as they store
//! bars. Companies, latest bars and statistics are read from it, never from a
//! pass over the bars.
//!
//! An entry is the summary of the company's stored bars up to its last date,
//! and a checkpoint: the summary just before the earliest bar of the last
//! batch folded in. A writer, once a batch is stored, folds it into each of
//! its companies' entries:
//! - bars all newer than the entry's last: folded onto it (the common case);
//! - else, bars newer than the checkpoint (a revision or a redelivery of the
//!   last batch): the stored bars after the checkpoint are read back and
//!   folded onto it;
//! - else (a bar older than that): the company's stored bars are read back
//!   and folded from the first.
//!
//! Reading back the stored bars, not trusting the batch, is what makes the
//! entry exact whatever was written before: a redelivered bar, a bar another
//! writer stored meanwhile, a crashed writer's bars.

use std::collections::BTreeMap;

use stockstream_core::{Bar, SeriesSummary, Ts};

/// One company's entry in a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// The company's newest stored bar (its name and symbol too).
    pub last_bar: Bar,
    /// The summary of every stored bar of the company.
    pub summary: SeriesSummary,
    /// The summary before the last batch folded in, for a revision of it.
    pub checkpoint: Option<SeriesSummary>,
}

impl CatalogEntry {
    /// The company's name.
    pub fn company(&self) -> &str {
        &self.last_bar.company
    }

    /// Bars stored.
    pub fn bars(&self) -> u64 {
        self.summary.bars()
    }
}

/// Which stored bars a batch's fold must read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    /// None: the batch's bars are all newer than the entry's last.
    Append,
    /// Those newer than this date (the checkpoint's last), onto the checkpoint.
    After(Ts),
    /// All of the company's.
    Whole,
}

/// How a batch whose earliest bar is `earliest` is folded into `entry`.
pub(crate) fn plan(entry: Option<&CatalogEntry>, earliest: Ts) -> Fold {
    match entry {
        None => Fold::Append,
        Some(e) if earliest > e.summary.last => Fold::Append,
        Some(CatalogEntry { checkpoint: Some(cp), .. }) if earliest > cp.last => Fold::After(cp.last),
        Some(_) => Fold::Whole,
    }
}

/// The entry after folding `bars` (oldest first, one per date, the stored
/// ones the plan asked for or the batch's own for an append) into `start`
/// (the entry's summary, its checkpoint, or nothing), `earliest` being the
/// batch's earliest date: the checkpoint becomes the summary just before it.
pub(crate) fn fold<B: std::borrow::Borrow<Bar>>(
    start: Option<SeriesSummary>,
    last_bar: Option<&Bar>,
    bars: &[B],
    earliest: Ts,
) -> Option<CatalogEntry> {
    let mut summary = start;
    let mut checkpoint = summary.clone();
    let mut last_bar = last_bar.cloned();
    for bar in bars.iter().map(std::borrow::Borrow::borrow) {
        match &mut summary {
            Some(s) => {
                if bar.ts < earliest {
                    s.push(bar);
                    checkpoint = Some(s.clone());
                } else {
                    s.push(bar);
                }
            }
            None => {
                summary = Some(SeriesSummary::of(bar));
                if bar.ts < earliest {
                    checkpoint = summary.clone();
                }
            }
        }
        if last_bar.as_ref().is_none_or(|l| bar.ts >= l.ts) {
            last_bar = Some(bar.clone());
        }
    }
    Some(CatalogEntry { last_bar: last_bar?, summary: summary?, checkpoint })
}

/// A batch's bars by company, oldest first, the last of a date kept (as the
/// store keeps it).
pub(crate) fn by_company<'a>(bars: impl IntoIterator<Item = &'a Bar>) -> BTreeMap<&'a str, Vec<&'a Bar>> {
    let mut out: BTreeMap<&'a str, Vec<&'a Bar>> = BTreeMap::new();
    for bar in bars {
        out.entry(bar.company.as_str()).or_default().push(bar);
    }
    for list in out.values_mut() {
        // Stable: of equal dates the later in the batch stays after; keep it.
        list.sort_by_key(|b| b.ts);
        let mut kept: Vec<&Bar> = Vec::with_capacity(list.len());
        for bar in list.drain(..) {
            match kept.last_mut() {
                Some(last) if last.ts == bar.ts => *last = bar,
                _ => kept.push(bar),
            }
        }
        *list = kept;
    }
    out
}

/// Folds one company's stored batch into its entry, reading back what the
/// plan needs with `read_after` (the company's stored bars newer than a date,
/// or all of them for None, oldest first).
pub(crate) fn updated_entry<E>(
    entry: Option<&CatalogEntry>,
    batch: &[&Bar],
    read_after: impl FnOnce(Option<Ts>) -> Result<Vec<Bar>, E>,
) -> Result<Option<CatalogEntry>, E> {
    let Some(earliest) = batch.first().map(|b| b.ts) else { return Ok(entry.cloned()) };
    Ok(match plan(entry, earliest) {
        Fold::Append => fold(entry.map(|e| e.summary.clone()), entry.map(|e| &e.last_bar), batch, earliest),
        Fold::After(since) => {
            let cp = entry.and_then(|e| e.checkpoint.clone());
            fold(cp, None, &read_after(Some(since))?, earliest)
        }
        Fold::Whole => fold(None, None, &read_after(None)?, earliest),
    })
}

/// Entries for every company of `bars` (oldest first, one company), as a
/// rebuild makes them.
pub(crate) fn entry_of(bars: &[Bar]) -> Option<CatalogEntry> {
    let last = bars.last()?;
    fold(None, None, bars, last.ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(day: u32, close: f64) -> Bar {
        Bar {
            company: "Tesla".into(),
            symbol: "TSLA".into(),
            ts: Ts::Date(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day.into())),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
            vwap: None,
            trades: None,
        }
    }

    /// The stored bars of one company, as a map the test keeps beside the
    /// entry: every way of folding must end equal to a fold of all of them.
    #[test]
    fn every_plan_ends_at_the_fold_of_all_stored_bars() {
        let mut stored: BTreeMap<Ts, Bar> = BTreeMap::new();
        let mut entry: Option<CatalogEntry> = None;
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut plans = [0usize; 3];
        for round in 0..400 {
            // Mostly the next days, now and then a revision or an old day.
            let newest = stored
                .keys()
                .next_back()
                .map_or(0, |t| (t.date() - chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()).num_days() as u32);
            let batch: Vec<Bar> = (0..1 + next(3))
                .map(|_| {
                    let day = match next(10) {
                        0 => next(newest as u64 + 1) as u32,
                        1 => newest,
                        _ => newest + 1 + next(2) as u32,
                    };
                    bar(day, 10.0 + next(1000) as f64 / 10.0 + round as f64 * 1e-3)
                })
                .collect();
            for b in &batch {
                stored.insert(b.ts, b.clone());
            }
            let grouped = by_company(&batch);
            let list = &grouped["Tesla"];
            plans[match plan(entry.as_ref(), list[0].ts) {
                Fold::Append => 0,
                Fold::After(_) => 1,
                Fold::Whole => 2,
            }] += 1;
            entry = updated_entry(entry.as_ref(), list, |after| {
                Ok::<_, ()>(stored.values().filter(|b| after.is_none_or(|a| b.ts > a)).cloned().collect())
            })
            .unwrap();
            let all: Vec<Bar> = stored.values().cloned().collect();
            let want = entry_of(&all).unwrap();
            let got = entry.as_ref().unwrap();
            assert_eq!((got.bars(), &got.last_bar), (want.bars(), &want.last_bar), "round {round}");
            let (g, w) = (&got.summary, &want.summary);
            for (a, b) in [
                (g.ohlcv.mean[3], w.ohlcv.mean[3]),
                (g.trend.c[0][1], w.trend.c[0][1]),
                (g.max_drawdown, w.max_drawdown),
            ] {
                assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "round {round}: {a} vs {b}");
            }
        }
        assert!(plans.iter().all(|&n| n > 10), "each plan taken: {plans:?}");
    }

    #[test]
    fn the_last_bar_of_a_date_in_a_batch_is_kept() {
        let batch = [bar(3, 1.0), bar(2, 2.0), bar(3, 4.0)];
        let grouped = by_company(&batch);
        let closes: Vec<f64> = grouped["Tesla"].iter().map(|b| b.close).collect();
        assert_eq!(closes, [2.0, 4.0]);
    }
}
