//! Every interval from the finest stored: a reader asking for bars of one
//! length gets, company by company, the table of that length when it holds
//! the company, else the bars of the finest shorter table holding it rolled
//! up as they are read ([`stockstream_core::rollup`]). Nothing is written:
//! a rolled-up bar is always its stored bars' aggregate, revisions included.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use stockstream_core::rollup::{bucket_end, bucket_of, roll_up};
use stockstream_core::{Alert, AlertQuery, Bar, BarLength, DateRange, StoreError, Ts};

use crate::{CatalogEntry, Store};

/// Every length a table of bars may hold and a reader may ask for, shortest first.
const LENGTHS: [&str; 7] = ["1s", "1m", "5m", "15m", "30m", "1h", "1d"];

/// Whether buckets of `shorter` nest in buckets of `length`: both aligned to
/// the session's open, so a shorter length dividing half an hour (the grid
/// of the open, the close and midnight) nests in every multiple of it, and
/// hours nest in days.
fn nests(shorter: BarLength, length: BarLength) -> bool {
    let (BarLength::Fixed(short), half_hour) = (shorter, 1_800_000) else { return false };
    match length {
        BarLength::Day => half_hour % short == 0 || short == 3_600_000,
        BarLength::Fixed(long) => short < long && long % short == 0 && half_hour % short == 0,
    }
}

/// The tables of bars `store`'s backend holds, by length, shortest first.
pub async fn stored_intervals(store: &dyn Store) -> Result<Vec<(BarLength, Arc<dyn Store>)>, StoreError> {
    let mut tables = Vec::new();
    for name in LENGTHS {
        if let Some(table) = store.stored_interval(name).await? {
            tables.push((name.parse().map_err(StoreError::fatal)?, table));
        }
    }
    Ok(tables)
}

/// The lengths whose bars `store`'s backend holds or can make from shorter
/// ones it holds, shortest first.
pub async fn readable_intervals(store: &dyn Store) -> Result<Vec<BarLength>, StoreError> {
    let stored: Vec<BarLength> = stored_intervals(store).await?.into_iter().map(|(l, _)| l).collect();
    let mut readable = Vec::new();
    for name in LENGTHS {
        let length: BarLength = name.parse().map_err(StoreError::fatal)?;
        if stored.iter().any(|s| *s == length || nests(*s, length)) {
            readable.push(length);
        }
    }
    Ok(readable)
}

/// The bars of `length` a reader of `store` sees: its table of that length
/// alone when no shorter one is stored, else a view over both. An error
/// names the interval when neither is stored.
pub async fn interval_view(store: &dyn Store, length: BarLength) -> Result<Arc<dyn Store>, StoreError> {
    let (mut exact, mut shorter) = (None, Vec::new());
    for (stored, table) in stored_intervals(store).await? {
        if stored == length {
            exact = Some(table);
        } else if nests(stored, length) {
            shorter.push((stored, table));
        }
    }
    match (exact, shorter.is_empty()) {
        (Some(exact), true) => Ok(exact),
        (None, true) => Err(StoreError::fatal(format!(
            "no {length} bars stored, nor shorter bars to make them from (run with --bar {length} first)"
        ))),
        (exact, false) => Ok(Arc::new(IntervalView { length, exact, shorter })),
    }
}

/// Bars of one length: a company's own table of them, else rolled up from
/// the finest shorter table holding it.
struct IntervalView {
    length: BarLength,
    exact: Option<Arc<dyn Store>>,
    /// Finest first.
    shorter: Vec<(BarLength, Arc<dyn Store>)>,
}

/// Where a company's bars come from.
enum Source<'a> {
    Stored(&'a Arc<dyn Store>),
    RolledUp(BarLength, &'a Arc<dyn Store>),
}

impl IntervalView {
    fn tables(&self) -> impl Iterator<Item = &Arc<dyn Store>> {
        self.exact.iter().chain(self.shorter.iter().map(|(_, t)| t))
    }

    async fn source(&self, company: &str) -> Result<Option<Source<'_>>, StoreError> {
        if let Some(exact) = &self.exact {
            if exact.has_company(company).await? == Some(true) {
                return Ok(Some(Source::Stored(exact)));
            }
        }
        for (length, table) in &self.shorter {
            if table.has_company(company).await? == Some(true) {
                return Ok(Some(Source::RolledUp(*length, table)));
            }
        }
        Ok(None)
    }

    /// The shorter bars' range holding every bucket that starts in `range`.
    fn widened(&self, range: &DateRange) -> DateRange {
        let to = range.to.map(|to| match to {
            // A date takes in its whole day already.
            Ts::Date(_) => to,
            Ts::Instant(_) => match bucket_of(self.length, &to).and_then(|b| bucket_end(self.length, &b)) {
                // The last whole second before the bucket's end.
                Some(end) => chrono::DateTime::from_timestamp_millis(end - 1000).map_or(to, Ts::Instant),
                None => to,
            },
        });
        let from = range.from.map(|from| match bucket_of(self.length, &from) {
            Some(Ts::Instant(start)) => Ts::Instant(start),
            _ => from,
        });
        DateRange { from, to }
    }

    /// Rolls up a page of shorter bars read newest (`newest`) or oldest
    /// first: `limit` buckets, more shorter bars read while a page of them
    /// does not fill it, the bucket at the page's cut left out unless the
    /// range ends there.
    async fn page(
        &self,
        table: &Arc<dyn Store>,
        shorter: BarLength,
        company: &str,
        range: &DateRange,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Bar>, StoreError> {
        let wide = self.widened(range);
        let per_bucket = (self.length.millis() / shorter.millis()).max(1) as usize;
        let mut want = limit.saturating_add(1).saturating_mul(per_bucket);
        loop {
            let read = match newest {
                true => table.newest(company, &wide, want).await?,
                false => table.oldest(company, &wide, want).await?,
            };
            let whole = read.len() < want;
            let mut rolled = roll_up(&read, self.length);
            if !whole && !rolled.is_empty() {
                // The bucket at the cut may have more bars beyond the page.
                match newest {
                    true => rolled.remove(0),
                    false => rolled.pop().expect("not empty"),
                };
            }
            Self::in_range(range, &mut rolled);
            if whole || rolled.len() >= limit {
                let cut = rolled.len().saturating_sub(limit);
                return Ok(match newest {
                    true => rolled.split_off(cut),
                    false => {
                        rolled.truncate(limit);
                        rolled
                    }
                });
            }
            want = want.saturating_mul(2);
        }
    }

    fn in_range(range: &DateRange, bars: &mut Vec<Bar>) {
        bars.retain(|b| range.contains(&b.ts.to_string()));
    }
}

#[async_trait]
impl Store for IntervalView {
    async fn upsert(&self, _bars: Arc<[Bar]>) -> Result<(), StoreError> {
        Err(StoreError::fatal(format!("{} bars made from shorter ones are read, not written", self.length)))
    }

    async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
        match self.source(company).await? {
            None => Ok(Vec::new()),
            Some(Source::Stored(table)) => table.range(company, range).await,
            Some(Source::RolledUp(_, table)) => {
                let mut bars = roll_up(&table.range(company, &self.widened(range)).await?, self.length);
                Self::in_range(range, &mut bars);
                Ok(bars)
            }
        }
    }

    async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        match self.source(company).await? {
            None => Ok(Vec::new()),
            Some(Source::Stored(table)) => table.newest(company, range, limit).await,
            Some(Source::RolledUp(shorter, table)) => self.page(table, shorter, company, range, limit, true).await,
        }
    }

    async fn oldest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        match self.source(company).await? {
            None => Ok(Vec::new()),
            Some(Source::Stored(table)) => table.oldest(company, range, limit).await,
            Some(Source::RolledUp(shorter, table)) => self.page(table, shorter, company, range, limit, false).await,
        }
    }

    async fn version(&self) -> Result<Option<u64>, StoreError> {
        let mut sum = 0u64;
        for table in self.tables() {
            match table.version().await? {
                Some(v) => sum = sum.wrapping_add(v),
                None => return Ok(None),
            }
        }
        Ok(Some(sum))
    }

    /// The companies of every table, merged by name; a company's entry is
    /// its own table's, else the shorter table's with its last bar rolled
    /// up (its statistics stay those of the stored bars).
    async fn catalog(&self, after: Option<&str>, limit: usize) -> Result<Vec<CatalogEntry>, StoreError> {
        let mut merged: BTreeMap<String, (bool, CatalogEntry)> = BTreeMap::new();
        if let Some(exact) = &self.exact {
            for entry in exact.catalog(after, limit).await? {
                merged.insert(entry.company().to_string(), (true, entry));
            }
        }
        for (_, table) in &self.shorter {
            for entry in table.catalog(after, limit).await? {
                merged.entry(entry.company().to_string()).or_insert((false, entry));
            }
        }
        let mut page = Vec::with_capacity(limit.min(merged.len()));
        for (company, (own, mut entry)) in merged.into_iter().take(limit) {
            if !own {
                if let Some(last) = self.newest(&company, &DateRange::default(), 1).await?.pop() {
                    entry.last_bar = last;
                }
            }
            page.push(entry);
        }
        Ok(page)
    }

    async fn companies_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for table in self.tables() {
            names.extend(table.companies_page(after, limit).await?);
        }
        Ok(names.into_iter().take(limit).collect())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Err(StoreError::fatal(format!("{} bars made from shorter ones are not counted", self.length)))
    }

    async fn has_company(&self, name: &str) -> Result<Option<bool>, StoreError> {
        Ok(Some(self.source(name).await?.is_some()))
    }

    async fn find_company(&self, name: &str) -> Result<Option<String>, StoreError> {
        for table in self.tables() {
            if let Some(found) = table.find_company(name).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn interval(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        self.tables().next().expect("a view has a table").interval(name).await
    }

    async fn stored_interval(&self, name: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
        self.tables().next().expect("a view has a table").stored_interval(name).await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        match self.tables().next() {
            Some(table) => table.alerts(query).await,
            None => Ok(Vec::new()),
        }
    }
}
