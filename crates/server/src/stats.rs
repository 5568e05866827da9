//! Statistics for `/api/stats` and `/api/insights`, read from the store's
//! catalog: each company's running statistics are kept there as bars are
//! written, so a page of statistics is a page of the catalog, never a pass
//! over the bars. Return correlations need the bars themselves: they cover
//! each correlated company's newest [`CORRELATION_WINDOW`] bars, one Query
//! each. A request with `from`/`to` is computed over the bars of the range,
//! at most [`MAX_RANGED_BARS`] of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use stockstream_analytics::{summary_stats, CompanyStats, MarketStats, MarketStatsBuilder, MAX_CORRELATED};
use stockstream_core::{DateRange, StoreError};
use stockstream_store::Store;

/// Newest bars of each company its return correlations cover (a trading
/// year of daily bars).
pub const CORRELATION_WINDOW: usize = 250;

/// Bars a request for statistics over a range may read.
pub const MAX_RANGED_BARS: usize = 200_000;

/// Catalog entries read a page at a time.
const CATALOG_PAGE: usize = 1000;

/// Companies' bars read at once for the correlations.
const READS_IN_FLIGHT: usize = 16;

/// A store that cannot tell its version (DynamoDB) is read again after this.
const UNVERSIONED_FOR: Duration = Duration::from_secs(10);

/// Why statistics could not be given.
#[derive(Debug)]
pub(crate) enum StatsError {
    /// The store failed.
    Store(StoreError),
    /// The range holds more bars than a request may read.
    TooManyBars,
}

impl From<StoreError> for StatsError {
    fn from(e: StoreError) -> Self {
        StatsError::Store(e)
    }
}

/// Computed statistics, kept while the store is unchanged.
struct Cached {
    key: String,
    version: Option<u64>,
    at: Instant,
    stats: Arc<MarketStats>,
}

/// The last statistics of each kind: the correlations, the whole market (for
/// insights) and the last range asked for.
#[derive(Default)]
pub(crate) struct StatsCache {
    correlations: tokio::sync::Mutex<Option<Cached>>,
    market: tokio::sync::Mutex<Option<Cached>>,
    ranged: tokio::sync::Mutex<Option<Cached>>,
}

/// `slot`'s statistics when still fresh for `key`, else `compute`d and kept.
/// One computation at a time: concurrent requests wait for it, not repeat it.
async fn cached<F>(
    slot: &tokio::sync::Mutex<Option<Cached>>,
    store: &dyn Store,
    key: String,
    compute: F,
) -> Result<Arc<MarketStats>, StatsError>
where
    F: std::future::Future<Output = Result<MarketStats, StatsError>>,
{
    let mut last = slot.lock().await;
    let version = store.version().await?;
    if let Some(c) = last.as_ref() {
        let fresh = match version {
            Some(v) => c.version == Some(v),
            None => c.at.elapsed() < UNVERSIONED_FOR,
        };
        if fresh && c.key == key {
            return Ok(c.stats.clone());
        }
    }
    let stats = Arc::new(compute.await?);
    *last = Some(Cached { key, version, at: Instant::now(), stats: stats.clone() });
    Ok(stats)
}

impl StatsCache {
    /// The return correlations of the first [`MAX_CORRELATED`] companies by
    /// name over their newest [`CORRELATION_WINDOW`] bars (as `names` and
    /// `return_correlation`; no companies).
    pub(crate) async fn correlations(&self, store: &dyn Store) -> Result<Arc<MarketStats>, StatsError> {
        cached(&self.correlations, store, String::new(), async {
            let names = store.companies_page(None, MAX_CORRELATED).await?;
            let reads = futures_util::stream::iter(names)
                .map(|name| async move { store.newest(&name, &DateRange::default(), CORRELATION_WINDOW).await })
                .buffered(READS_IN_FLIGHT);
            let windows: Vec<_> = reads.try_collect().await?;
            let mut builder = MarketStatsBuilder::with_capacity(windows.len());
            for bars in &windows {
                builder.push(bars);
            }
            let mut stats = builder.finish();
            stats.companies.clear();
            stats.correlation_window = Some(CORRELATION_WINDOW);
            Ok(stats)
        })
        .await
    }

    /// Every company's statistics from the catalog, with the correlations.
    pub(crate) async fn market(&self, store: &dyn Store) -> Result<Arc<MarketStats>, StatsError> {
        let correlations = self.correlations(store).await?;
        cached(&self.market, store, String::new(), async {
            Ok(MarketStats { companies: all_catalog_stats(store).await?, ..(*correlations).clone() })
        })
        .await
    }

    /// Statistics over the bars of a range, at most [`MAX_RANGED_BARS`] read.
    pub(crate) async fn ranged(&self, store: &dyn Store, range: &DateRange) -> Result<Arc<MarketStats>, StatsError> {
        let key = format!("{}..{}", range.lower(), range.upper());
        cached(&self.ranged, store, key, async {
            let mut builder = MarketStatsBuilder::default();
            let mut budget = MAX_RANGED_BARS;
            let mut after: Option<String> = None;
            loop {
                let names = store.companies_page(after.as_deref(), CATALOG_PAGE).await?;
                for name in &names {
                    let bars = store.oldest(name, range, budget + 1).await?;
                    budget = budget.checked_sub(bars.len()).ok_or(StatsError::TooManyBars)?;
                    builder.push(&bars);
                }
                if names.len() < CATALOG_PAGE {
                    break;
                }
                after = names.last().cloned();
            }
            Ok(builder.finish())
        })
        .await
    }
}

/// A page of companies' statistics from the catalog (no distributions: a
/// summary keeps none).
pub(crate) async fn catalog_stats(
    store: &dyn Store,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<CompanyStats>, StoreError> {
    Ok(store
        .catalog(after, limit)
        .await?
        .into_iter()
        .map(|e| summary_stats(e.last_bar.company, e.last_bar.symbol, &e.summary))
        .collect())
}

/// Every company's statistics from the catalog, read a page at a time.
async fn all_catalog_stats(store: &dyn Store) -> Result<Vec<CompanyStats>, StoreError> {
    let mut companies = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = catalog_stats(store, after.as_deref(), CATALOG_PAGE).await?;
        let full = page.len() == CATALOG_PAGE;
        after = page.last().map(|c| c.company.clone());
        companies.extend(page);
        if !full {
            return Ok(companies);
        }
    }
}

/// Every company's statistics from the catalog, page by page, with the
/// distributions of those in `detailed` computed from their bars, and return
/// correlations over all bars of the first [`MAX_CORRELATED`] companies: what
/// a run's report and insights need when it counted too many companies to
/// keep their statistics as the bars flowed.
pub async fn catalog_summaries(
    store: &dyn Store,
    detailed: &std::collections::HashSet<String>,
) -> Result<MarketStats, StoreError> {
    let mut companies = all_catalog_stats(store).await?;
    for stats in companies.iter_mut().filter(|c| detailed.contains(&c.company)) {
        let bars = store.range(&stats.company, &DateRange::default()).await?;
        if let Some(detail) = stockstream_analytics::company_stats(&bars) {
            *stats = detail;
        }
    }
    let mut correlated = MarketStatsBuilder::default();
    for name in store.companies_page(None, MAX_CORRELATED).await? {
        correlated.push(&store.range(&name, &DateRange::default()).await?);
    }
    Ok(MarketStats { companies, ..correlated.finish() })
}
