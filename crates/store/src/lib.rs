//! Where bars are kept. Two backends side by side behind one trait: SQLite
//! (embedded default) and DynamoDB. Writes are idempotent upserts keyed by a
//! bar's identity `(company, date)`, which makes at-least-once delivery store
//! every bar once. Every error is a [`StoreError`] that names the file or table
//! and says whether trying again may help.
#![warn(missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;
use stockstream_core::{company_for_symbol, Alert, AlertQuery, Bar, DateRange, StoreError, Ts, WindowMark};

pub mod args;
pub mod catalog;
pub mod dynamodb;
pub mod rollup;
pub mod sqlite;

pub use args::{open_sqlite, StoreArgs, StoreKind};
pub use catalog::CatalogEntry;
pub use dynamodb::{
    accounted_to, catalog_conflicts, dynamodb_usage, dynamodb_usage_by_account, is_read, DynamoSettings, DynamoStore,
    OperationUsage,
};
pub use rollup::{interval_view, readable_intervals, stored_intervals};
pub use sqlite::SqliteStore;

/// The table holding bars of an interval: the daily table itself for `1d`
/// (the original project's layout), `<base>_<interval>` for the others, so
/// that bars of different lengths never overwrite each other.
pub fn bars_table(base: &str, interval: &str) -> String {
    match interval {
        "1d" | "" => base.to_string(),
        other => format!("{base}_{other}"),
    }
}

#[async_trait]
/// Where bars are kept.
///
/// Every write is an upsert by `(company, date)`: writing a bar again
/// changes nothing, and the last write of an identity wins.
///
/// ```
/// use std::sync::Arc;
/// use stockstream_core::{Bar, DateRange};
/// use stockstream_store::{SqliteStore, Store};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(&dir.path().join("doc.db")).unwrap();
/// let bar = |close: f64| Bar {
///     company: "Tesla".into(),
///     symbol: "TSLA".into(),
///     ts: "2024-01-02".parse().unwrap(),
///     open: close,
///     high: close,
///     low: close,
///     close,
///     volume: 1.0,
///     vwap: None,
///     trades: None,
/// };
/// store.upsert(Arc::from(vec![bar(240.0)])).await.unwrap();
/// store.upsert(Arc::from(vec![bar(241.5)])).await.unwrap();
/// let stored = store.company_bars("tsla", &DateRange::default()).await.unwrap();
/// assert_eq!(stored.iter().map(|b| b.close).collect::<Vec<_>>(), [241.5]);
/// # });
/// ```
pub trait Store: Send + Sync {
    /// Inserts or replaces these bars; returns once they are durable.
    /// Shared, so that a retried write needs no copy.
    async fn upsert(&self, bars: Arc<[Bar]>) -> Result<(), StoreError>;

    /// One company's bars within an inclusive range, oldest first.
    async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError>;

    /// A company's newest `limit` bars within an inclusive range, oldest first:
    /// the limit is applied by the backend, not after reading the whole range.
    async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError>;

    /// Each company's newest `limit` bars before its time (exclusive), oldest
    /// first: the history a stage reads back before a company's next bar. One
    /// call for many companies (SQLite answers them under one lock).
    async fn histories_before(&self, wanted: &[(String, Ts)], limit: usize) -> Result<Vec<Vec<Bar>>, StoreError> {
        let mut out = Vec::with_capacity(wanted.len());
        for (company, before) in wanted {
            let mut bars = self.newest(company, &DateRange { from: None, to: Some(*before) }, limit + 1).await?;
            bars.retain(|b| b.ts < *before);
            let extra = bars.len().saturating_sub(limit);
            bars.drain(..extra);
            out.push(bars);
        }
        Ok(out)
    }

    /// A company's oldest `limit` bars within an inclusive range, oldest first
    /// (a page forward); backends push the limit into their query.
    async fn oldest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        let mut bars = self.range(company, range).await?;
        bars.truncate(limit);
        Ok(bars)
    }

    /// A number that changes whenever the stored bars change, when the backend
    /// can tell without reading them; `None` when it cannot.
    async fn version(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// A page of the catalog: at most `limit` companies' entries (last bar,
    /// count, running statistics) named after `after` (from the first when
    /// None), by name.
    async fn catalog(&self, after: Option<&str>, limit: usize) -> Result<Vec<CatalogEntry>, StoreError>;

    /// Every company with at least one bar, sorted.
    async fn companies(&self) -> Result<Vec<String>, StoreError> {
        self.companies_page(None, usize::MAX).await
    }

    /// At most `limit` companies named after `after` (all when None), sorted:
    /// a page of [`Store::companies`].
    async fn companies_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.catalog(after, limit).await?.into_iter().map(|e| e.last_bar.company).collect())
    }

    /// How many bars are stored.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Builds the store's catalog from its bars (the one pass over them),
    /// for a store written before it kept one; how many companies it holds.
    async fn rebuild_catalog(&self) -> Result<usize, StoreError> {
        Err(StoreError::fatal("this store keeps no catalog"))
    }

    /// Whether a company of exactly this name is stored, by a point lookup;
    /// None for a store that cannot tell without listing them all.
    async fn has_company(&self, _name: &str) -> Result<Option<bool>, StoreError> {
        Ok(None)
    }

    /// The stored company a name or a symbol names (case-insensitive), if any:
    /// its likely spellings looked up first (the name as given, the registered
    /// company, upper case), then the name folded to lower case or as a symbol.
    async fn find_company(&self, name: &str) -> Result<Option<String>, StoreError> {
        let by_symbol = company_for_symbol(name);
        let registered = stockstream_core::registered_company(name).map(|(_, company)| company);
        let mut spellings: Vec<String> = Vec::new();
        for spelling in [Some(name.to_string()), registered, Some(by_symbol.clone()), Some(name.to_uppercase())] {
            if let Some(s) = spelling.filter(|s| !spellings.contains(s)) {
                spellings.push(s);
            }
        }
        for spelling in spellings {
            match self.has_company(&spelling).await? {
                Some(true) => return Ok(Some(spelling)),
                Some(false) => {}
                None => break,
            }
        }
        self.find_folded(name).await
    }

    /// The stored company named `name` in any (ASCII) case, or whose symbol
    /// `name` is: one lookup in the catalog, never a listing.
    async fn find_folded(&self, _name: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// A company's bars in range, by name or by symbol; an unknown company is
    /// an error listing the stored ones.
    async fn company_bars(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
        match self.find_company(company).await? {
            Some(name) => self.range(&name, range).await,
            None => {
                // A few names, not a store's thousands.
                let mut known = self.companies_page(None, 21).await?;
                let more = if known.len() > 20 { ", …" } else { "" };
                known.truncate(20);
                Err(StoreError::fatal(format!(
                    "unknown company {company:?}; stored companies: {}{more}",
                    known.join(", ")
                )))
            }
        }
    }

    /// The same backend's bars of another interval (`1m`, `5m`; `1d` is the
    /// daily table). A writer creates its table; a reader is told when none
    /// is stored.
    async fn interval(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        Err(StoreError::fatal(format!("this store keeps one interval, not {name}")))
    }

    /// The same backend's bars of another interval when a table of them
    /// exists (never created): what a reader looks for.
    async fn stored_interval(&self, _name: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
        Ok(None)
    }

    /// Keeps where these symbols' windows stand, after their bars are stored
    /// and before the bus offsets are committed.
    async fn save_marks(&self, _marks: Vec<WindowMark>) -> Result<(), StoreError> {
        Err(StoreError::fatal("this store keeps no window marks"))
    }

    /// Where a symbol's windows stood when its bars were last stored.
    async fn mark(&self, _symbol: &str) -> Result<Option<WindowMark>, StoreError> {
        Ok(None)
    }

    /// Keeps alerts beside the bars that raised them; keeping one again
    /// replaces it (its identity: company, bar date, rule).
    async fn keep_alerts(&self, _alerts: Vec<Alert>) -> Result<(), StoreError> {
        Err(StoreError::fatal("this store keeps no alerts"))
    }

    /// Stored alerts, newest first.
    async fn alerts(&self, _query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        Ok(Vec::new())
    }

    /// Every stored company's bars in range, one list per company, by name.
    async fn bars_by_company(&self, range: &DateRange) -> Result<Vec<Vec<Bar>>, StoreError> {
        let mut all = Vec::new();
        for company in self.companies().await? {
            all.push(self.range(&company, range).await?);
        }
        Ok(all)
    }
}
