//! The catalog of a table of bars: one item per company in the table
//! `<table>Catalog` (`StockMktCatalog`), all in one partition so that listing
//! the companies is one Query, never a Scan of the bars. Each item holds the
//! company's symbol, first and last dates, the last bar and a count of bars.
//!
//! Writers keep it as they store bars: after each batch, one UpdateItem per
//! company of the batch, conditional on the last date so that concurrent
//! consumers never move it back. The first and last dates and the last bar
//! are exact. The count adds each batch's bars, so a bar written again (a
//! redelivery, a second run of one file) counts again; a rebuild makes it
//! exact. A table written before the catalog existed gets it built by the
//! first writer (or `stockstream catalog rebuild`): the one scan of the
//! bars, once.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use futures_util::{StreamExt, TryStreamExt};
use stockstream_core::{Bar, StoreError, Ts};

use super::{bar_from_item, number, sdk_error, DynamoStore, COMPANY, DATE};

/// The catalog's partition key, and its two partitions: the companies, and
/// the marker saying the catalog covers its table.
pub(super) const CATALOG: &str = "Catalog";
const COMPANIES: &str = "companies";
const META: &str = "meta";
const BUILT: &str = "built";

/// What one company's bars in a batch (or the whole table, for a rebuild) add.
struct Summary<'a> {
    first: Ts,
    last: &'a Bar,
    count: u64,
}

fn summaries<'a>(bars: impl Iterator<Item = &'a Bar>) -> HashMap<&'a str, Summary<'a>> {
    let mut by_company: HashMap<&str, Summary> = HashMap::new();
    for bar in bars {
        let s = by_company.entry(&bar.company).or_insert(Summary { first: bar.ts, last: bar, count: 0 });
        s.first = s.first.min(bar.ts);
        if bar.ts >= s.last.ts {
            s.last = bar;
        }
        s.count += 1;
    }
    by_company
}

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DynamoStore {
    /// This table's catalog table (created when missing).
    pub(super) async fn catalog_table(&self) -> Result<DynamoStore, StoreError> {
        let catalog = DynamoStore { table: format!("{}Catalog", self.table), keys: [CATALOG, COMPANY], ..self.clone() };
        self.catalog_ready.get_or_try_init(|| async { catalog.ensure_table().await.map(drop) }).await?;
        Ok(catalog)
    }

    /// Whether the catalog covers its table (its marker is there).
    pub(super) async fn catalog_built(&self) -> Result<bool, StoreError> {
        if self.catalog_complete.get().is_some() {
            return Ok(true);
        }
        let built = self.catalog_table().await?.get(META, BUILT).await?.is_some();
        if built {
            let _ = self.catalog_complete.set(());
        }
        Ok(built)
    }

    /// Marks the catalog as covering its table.
    pub(super) async fn mark_catalog_built(&self) -> Result<(), StoreError> {
        let catalog = self.catalog_table().await?;
        catalog.put(HashMap::from([(CATALOG.to_string(), text(META)), (COMPANY.to_string(), text(BUILT))])).await?;
        let _ = self.catalog_complete.set(());
        Ok(())
    }

    /// The catalog for reading: an error saying how to build it when the
    /// table has none.
    async fn catalog_for_reading(&self) -> Result<DynamoStore, StoreError> {
        if !self.catalog_built().await? {
            return Err(StoreError::fatal(format!(
                "DynamoDB table {} has no catalog of its companies yet: build it once with \
                 `stockstream catalog rebuild --store dynamodb` (any `run` or `consume` into the table builds it too)",
                self.table
            )));
        }
        self.catalog_table().await
    }

    /// Counts a written batch in the catalog (`bars` holds each identity once).
    pub(super) async fn catalog_batch(&self, bars: &[&Bar]) -> Result<(), StoreError> {
        if !self.catalog_built().await? {
            self.build_catalog().await?;
        }
        let catalog = self.catalog_table().await?;
        // The futures made first: a closure making them inside the stream
        // trips the compiler's lifetime inference in an async trait method.
        let updates: Vec<_> = summaries(bars.iter().copied())
            .into_iter()
            .map(|(company, s)| catalog.catalog_update(company, s))
            .collect();
        futures_util::stream::iter(updates).buffer_unordered(self.concurrency).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    /// One company's update: the last bar unless a newer one is there, the
    /// count added, the first date moved back if this batch starts earlier.
    async fn catalog_update(&self, company: &str, s: Summary<'_>) -> Result<(), StoreError> {
        let doing = format!("cannot write to DynamoDB table {}", self.table);
        let last = s.last;
        let newest = self
            .client
            .update_item()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .key(CATALOG, text(COMPANIES))
            .key(COMPANY, text(company))
            .update_expression(
                "SET Symbol = :symbol, #first = if_not_exists(#first, :first), #last = :last, \
                 #open = :open, High = :high, Low = :low, #close = :close, Volume = :volume ADD Bars :count",
            )
            .condition_expression("attribute_not_exists(#last) OR #last <= :last")
            .expression_attribute_names("#first", "First")
            .expression_attribute_names("#last", "Last")
            .expression_attribute_names("#open", "Open")
            .expression_attribute_names("#close", "Close")
            .expression_attribute_values(":symbol", text(&last.symbol))
            .expression_attribute_values(":first", text(s.first.to_string()))
            .expression_attribute_values(":last", text(last.ts.to_string()))
            .expression_attribute_values(":open", number(last.open))
            .expression_attribute_values(":high", number(last.high))
            .expression_attribute_values(":low", number(last.low))
            .expression_attribute_values(":close", number(last.close))
            .expression_attribute_values(":volume", number(last.volume))
            .expression_attribute_values(":count", AttributeValue::N(s.count.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let stored = match newest {
            Ok(out) => out.attributes,
            // A newer bar is there already (another consumer's): only count.
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                self.client
                    .update_item()
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .table_name(&self.table)
                    .key(CATALOG, text(COMPANIES))
                    .key(COMPANY, text(company))
                    .update_expression("SET #first = if_not_exists(#first, :first) ADD Bars :count")
                    .expression_attribute_names("#first", "First")
                    .expression_attribute_values(":first", text(s.first.to_string()))
                    .expression_attribute_values(":count", AttributeValue::N(s.count.to_string()))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e, &doing))?
                    .attributes
            }
            Err(e) => return Err(sdk_error(&e, &doing)),
        };
        let stored_first = match stored.as_ref().and_then(|a| a.get("First")) {
            Some(AttributeValue::S(first)) => first.parse::<Ts>().ok(),
            _ => None,
        };
        if stored_first.is_some_and(|f| s.first < f) {
            // Older bars than the catalog knew (a backfill): the first date moves back.
            let moved = self
                .client
                .update_item()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .table_name(&self.table)
                .key(CATALOG, text(COMPANIES))
                .key(COMPANY, text(company))
                .update_expression("SET #first = :first")
                .condition_expression("#first > :first")
                .expression_attribute_names("#first", "First")
                .expression_attribute_values(":first", text(s.first.to_string()))
                .send()
                .await;
            match moved {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(sdk_error(&e, &doing)),
            }
        }
        Ok(())
    }

    /// Builds the catalog from the bars: the one scan of the table. Counts are
    /// exact afterwards. Returns how many companies it holds.
    pub async fn build_catalog(&self) -> Result<usize, StoreError> {
        let catalog = self.catalog_table().await?;
        tracing::info!(table = %self.table, "building the catalog of the companies (one scan of the table)");
        // Per company: symbol, first date, last bar, count.
        let mut by_company: HashMap<String, (Ts, Bar, u64)> = HashMap::new();
        let mut read = 0u64;
        self.each_item(|item| {
            let bar = bar_from_item(&item)?;
            read += 1;
            if read % 100_000 == 0 {
                tracing::info!(table = %self.table, bars = read, "building the catalog");
            }
            match by_company.get_mut(&bar.company) {
                Some((first, last, count)) => {
                    *first = (*first).min(bar.ts);
                    if bar.ts >= last.ts {
                        *last = bar;
                    }
                    *count += 1;
                }
                None => {
                    by_company.insert(bar.company.clone(), (bar.ts, bar, 1));
                }
            }
            Ok(())
        })
        .await?;
        let companies = by_company.len();
        let items = by_company
            .into_iter()
            .map(|(company, (first, last, count))| {
                HashMap::from([
                    (CATALOG.to_string(), text(COMPANIES)),
                    (COMPANY.to_string(), text(company)),
                    ("Symbol".to_string(), text(&last.symbol)),
                    ("First".to_string(), text(first.to_string())),
                    ("Last".to_string(), text(last.ts.to_string())),
                    ("Open".to_string(), number(last.open)),
                    ("High".to_string(), number(last.high)),
                    ("Low".to_string(), number(last.low)),
                    ("Close".to_string(), number(last.close)),
                    ("Volume".to_string(), number(last.volume)),
                    ("Bars".to_string(), AttributeValue::N(count.to_string())),
                ])
            })
            .collect();
        catalog.put_all(items).await?;
        self.mark_catalog_built().await?;
        let alerts = self.alerts_table().await?;
        if !alerts.feed_complete().await? {
            alerts.build_feed().await?;
        }
        tracing::info!(table = %self.table, bars = read, companies, "catalog built");
        Ok(companies)
    }

    /// The catalog's items, by company name.
    async fn catalog_items(&self) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let catalog = self.catalog_for_reading().await?;
        catalog
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&catalog.table)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", CATALOG)
            .expression_attribute_values(":k", text(COMPANIES))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(&e, &format!("cannot query DynamoDB table {}", catalog.table)))
    }

    /// A page of companies from the catalog: a Query from after `after`.
    pub(super) async fn catalog_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let catalog = self.catalog_for_reading().await?;
        let mut request = catalog
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&catalog.table)
            .expression_attribute_names("#k", CATALOG)
            .expression_attribute_names("#c", COMPANY)
            .expression_attribute_values(":k", text(COMPANIES))
            .projection_expression("#c")
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        request = match after {
            Some(after) => request
                .key_condition_expression("#k = :k AND #c > :after")
                .expression_attribute_values(":after", text(after)),
            None => request.key_condition_expression("#k = :k"),
        };
        let mut items = request.into_paginator().items().send();
        let mut names = Vec::new();
        while names.len() < limit {
            match items.next().await {
                Some(item) => match item
                    .map_err(|e| sdk_error(&e, &format!("cannot query DynamoDB table {}", catalog.table)))?
                    .remove(COMPANY)
                {
                    Some(AttributeValue::S(name)) => names.push(name),
                    _ => continue,
                },
                None => break,
            }
        }
        Ok(names)
    }

    /// Whether the catalog holds a company of exactly this name: one GetItem.
    pub(super) async fn catalog_has(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.catalog_for_reading().await?.get(COMPANIES, name).await?.is_some())
    }

    /// Every company, from the catalog: its names only, page by page (the
    /// whole items of 100,000 companies took 230 MB at once).
    pub(super) async fn catalog_companies(&self) -> Result<Vec<String>, StoreError> {
        self.catalog_page(None, usize::MAX).await
    }

    /// Every company's last bar, from the catalog.
    pub(super) async fn catalog_latest(&self) -> Result<Vec<Bar>, StoreError> {
        self.catalog_items()
            .await?
            .into_iter()
            .map(|mut item| {
                // The item in the layout of a bar's: its last date as `Date`.
                if let Some(last) = item.remove("Last") {
                    item.insert(DATE.to_string(), last);
                }
                bar_from_item(&item)
            })
            .collect()
    }
}
