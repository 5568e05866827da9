//! The catalog of a table of bars (see [`crate::catalog`]): one item per
//! company in the table `<table>Catalog` (`StockMktCatalog`), all in one
//! partition so that listing the companies is one Query, never a Scan of the
//! bars. Each item holds the company's symbol, first and last dates, last
//! bar, count and running statistics (`Stats`, `Checkpoint`: 400 bytes each).
//!
//! Writers keep it as they store bars: after each batch, per company of the
//! batch, the item is read (consistently), the batch folded in (reading back
//! the stored bars when the batch is not newer than the item) and the item
//! put on condition that its `Version` is still the one read: a concurrent
//! writer's update is never lost, the loser reads again and folds again.
//! Counts, dates, last bars and statistics are exact once each writer's
//! update is in, whatever was redelivered or written twice. A table written
//! before the catalog existed (or by a catalog without statistics) gets it
//! built by the first writer (or `stockstream catalog rebuild`): the one scan
//! of the bars, once.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use futures_util::{StreamExt, TryStreamExt};
use stockstream_core::{Bar, SeriesSummary, StoreError, Ts};

use super::{bar_from_item, fatal, number, sdk_error, DynamoStore, COMPANY, DATE};
use crate::catalog::{by_company, entry_of, plan, updated_entry, CatalogEntry, Fold};

/// The catalog's partition key, and its two partitions: the companies, and
/// the marker saying the catalog covers its table.
pub(super) const CATALOG: &str = "Catalog";
const COMPANIES: &str = "companies";
/// Partitions naming each company by its name in lower case and by its
/// symbol: a lookup of `nvidia` or `NVDA` is one GetItem, never a listing.
const FOLDED: &str = "folded";
const SYMBOLS: &str = "symbols";
const META: &str = "meta";
const BUILT: &str = "built";

/// The catalog's layout, on its marker: 1 (no attribute), companies, dates,
/// last bars and counts; 2, with the running statistics.
const CATALOG_SCHEMA: u64 = 2;

static CONFLICTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Catalog updates that lost to another writer's and were folded again, in
/// this process.
pub fn catalog_conflicts() -> u64 {
    CONFLICTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Tries of one company's update that lost to concurrent writers.
const CONCURRENT_TRIES: usize = 50;

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn item_of_entry(entry: &CatalogEntry, version: u64) -> HashMap<String, AttributeValue> {
    let b = &entry.last_bar;
    let mut item = HashMap::from([
        (CATALOG.to_string(), text(COMPANIES)),
        (COMPANY.to_string(), text(&b.company)),
        ("Symbol".to_string(), text(&b.symbol)),
        ("First".to_string(), text(entry.summary.first.to_string())),
        ("Last".to_string(), text(b.ts.to_string())),
        ("Open".to_string(), number(b.open)),
        ("High".to_string(), number(b.high)),
        ("Low".to_string(), number(b.low)),
        ("Close".to_string(), number(b.close)),
        ("Volume".to_string(), number(b.volume)),
        ("Bars".to_string(), AttributeValue::N(entry.bars().to_string())),
        ("Stats".to_string(), AttributeValue::B(Blob::new(entry.summary.to_bytes()))),
        ("Version".to_string(), AttributeValue::N(version.to_string())),
    ]);
    if let Some(cp) = &entry.checkpoint {
        item.insert("Checkpoint".to_string(), AttributeValue::B(Blob::new(cp.to_bytes())));
        item.insert("CheckpointLast".to_string(), text(cp.last.to_string()));
    }
    item
}

/// An item's entry and version.
fn entry_of_item(mut item: HashMap<String, AttributeValue>) -> Result<(CatalogEntry, u64), StoreError> {
    let ts = |item: &HashMap<String, AttributeValue>, name: &str| -> Result<Ts, StoreError> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => s.parse().map_err(fatal),
            other => Err(fatal(format!("catalog attribute {name:?} is {other:?}, expected a date"))),
        }
    };
    let bytes = |item: &HashMap<String, AttributeValue>, name: &str| match item.get(name) {
        Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
        _ => None,
    };
    let (first, last) = (ts(&item, "First")?, ts(&item, "Last")?);
    let summary = bytes(&item, "Stats").ok_or_else(|| fatal("catalog item without its statistics (Stats)"))?;
    let summary = SeriesSummary::from_bytes(&summary, first, last).map_err(fatal)?;
    let checkpoint = match bytes(&item, "Checkpoint") {
        Some(cp) => Some(SeriesSummary::from_bytes(&cp, first, ts(&item, "CheckpointLast")?).map_err(fatal)?),
        None => None,
    };
    let version = match item.get("Version") {
        Some(AttributeValue::N(n)) => n.parse().map_err(fatal)?,
        _ => 0,
    };
    // The item in the layout of a bar's: its last date as `Date`.
    if let Some(last) = item.remove("Last") {
        item.insert(DATE.to_string(), last);
    }
    Ok((CatalogEntry { last_bar: bar_from_item(&item)?, summary, checkpoint }, version))
}

/// The items that find a company by its name in lower case and its symbol.
fn lookup_items(company: &str, symbol: &str) -> [HashMap<String, AttributeValue>; 2] {
    [(FOLDED, company.to_ascii_lowercase()), (SYMBOLS, symbol.to_ascii_uppercase())].map(|(partition, key)| {
        HashMap::from([
            (CATALOG.to_string(), text(partition)),
            (COMPANY.to_string(), text(key)),
            ("Name".to_string(), text(company)),
        ])
    })
}

fn conditional_check_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|x| x.code()) == Some("ConditionalCheckFailedException")
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
        let marker = self.catalog_table().await?.get(META, BUILT).await?;
        let schema = match marker.as_ref().and_then(|m| m.get("Schema")) {
            Some(AttributeValue::N(n)) => n.parse().map_err(fatal)?,
            _ => 1,
        };
        if schema > CATALOG_SCHEMA {
            return Err(StoreError::fatal(format!(
                "DynamoDB table {}Catalog has layout {schema}, written by a newer stockstream; \
                 this one reads up to layout {CATALOG_SCHEMA}: upgrade stockstream",
                self.table
            )));
        }
        // A catalog of an older layout is built again, with its statistics.
        let built = marker.is_some() && schema == CATALOG_SCHEMA;
        if built {
            let _ = self.catalog_complete.set(());
        }
        Ok(built)
    }

    /// Marks the catalog as covering its table.
    pub(super) async fn mark_catalog_built(&self) -> Result<(), StoreError> {
        let catalog = self.catalog_table().await?;
        catalog
            .put(HashMap::from([
                (CATALOG.to_string(), text(META)),
                (COMPANY.to_string(), text(BUILT)),
                ("Schema".to_string(), AttributeValue::N(CATALOG_SCHEMA.to_string())),
            ]))
            .await?;
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

    /// Folds a written batch into the catalog, one update per company.
    pub(super) async fn catalog_batch(&self, bars: &[&Bar]) -> Result<(), StoreError> {
        if !self.catalog_built().await? {
            self.build_catalog().await?;
        }
        let catalog = self.catalog_table().await?;
        // The futures made first: a closure making them inside the stream
        // trips the compiler's lifetime inference in an async trait method.
        let groups = by_company(bars.iter().copied());
        let names: Vec<&str> = groups.keys().copied().collect();
        let mut known = catalog.catalog_items_of(&names).await?;
        let updates: Vec<_> = groups
            .into_iter()
            .map(|(company, batch)| self.catalog_fold(&catalog, batch, known.remove(company)))
            .collect();
        let created: Vec<Option<[HashMap<String, AttributeValue>; 2]>> =
            futures_util::stream::iter(updates).buffer_unordered(self.concurrency).try_collect().await?;
        // New companies become findable by name in any case and by symbol.
        catalog.put_all(created.into_iter().flatten().flatten().collect()).await
    }

    /// These companies' catalog items, read consistently, 100 a request
    /// (BatchGetItem): a batch of many companies is not a GetItem each.
    async fn catalog_items_of(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let doing = format!("cannot read DynamoDB table {}", self.table);
        let mut found = HashMap::with_capacity(names.len());
        for chunk in names.chunks(100) {
            let keys = chunk
                .iter()
                .map(|name| HashMap::from([(CATALOG.to_string(), text(COMPANIES)), (COMPANY.to_string(), text(*name))]))
                .collect();
            let mut wanted =
                KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(fatal)?;
            for round in 0u32.. {
                let out = self
                    .client
                    .batch_get_item()
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e, &doing))?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    if let Some(AttributeValue::S(name)) = item.get(COMPANY) {
                        found.insert(name.clone(), item);
                    }
                }
                // Keys left unread (throttling, size): asked again after a pause.
                match out.unprocessed_keys.and_then(|mut left| left.remove(&self.table)) {
                    Some(left) if !left.keys.is_empty() && round < 8 => {
                        wanted = left;
                        tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
                    }
                    Some(left) if !left.keys.is_empty() => {
                        return Err(StoreError::transient(format!("{doing}: keys left unread after 8 rounds")));
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// One company's update: read (the item `prefetched`, first), fold, put
    /// if nobody else did meanwhile. A company new to the catalog gets the
    /// items that find it, returned for the caller to write.
    async fn catalog_fold(
        &self,
        catalog: &DynamoStore,
        batch: Vec<&Bar>,
        prefetched: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Option<[HashMap<String, AttributeValue>; 2]>, StoreError> {
        let Some(first) = batch.first() else { return Ok(None) };
        let (company, earliest) = (first.company.as_str(), first.ts);
        let mut prefetched = Some(prefetched);
        for _ in 0..CONCURRENT_TRIES {
            let item = match prefetched.take() {
                Some(item) => item,
                None => catalog.get(COMPANIES, company).await?,
            };
            let (entry, version) = match item {
                Some(item) => entry_of_item(item).map(|(e, v)| (Some(e), Some(v)))?,
                None => (None, None),
            };
            let read = match plan(entry.as_ref(), earliest) {
                Fold::Append => Vec::new(),
                Fold::After(since) => self.stored_after(company, Some(since)).await?,
                Fold::Whole => self.stored_after(company, None).await?,
            };
            let Some(updated) = updated_entry(entry.as_ref(), &batch, |_| Ok::<_, StoreError>(read))? else {
                return Ok(None);
            };
            let put = self
                .client
                .put_item()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .table_name(&catalog.table)
                .set_item(Some(item_of_entry(&updated, version.map_or(1, |v| v + 1))))
                .expression_attribute_names("#v", "Version");
            let put = match version {
                Some(v) => put
                    .condition_expression("#v = :v")
                    .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
                None => put.condition_expression("attribute_not_exists(#v)"),
            };
            match put.send().await {
                Ok(_) => return Ok(version.is_none().then(|| lookup_items(company, &updated.last_bar.symbol))),
                // Another writer's update came first: read it and fold again.
                Err(e) if conditional_check_failed(&e) => {
                    CONFLICTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                Err(e) => return Err(sdk_error(&e, &format!("cannot write to DynamoDB table {}", catalog.table))),
            }
        }
        Err(StoreError::transient(format!(
            "DynamoDB table {}: the catalog entry of {company:?} kept changing under {CONCURRENT_TRIES} tries",
            catalog.table
        )))
    }

    /// A company's stored bars newer than `after` (all for None), oldest
    /// first, read consistently: what the writers stored, not a replica's
    /// older view.
    async fn stored_after(&self, company: &str, after: Option<Ts>) -> Result<Vec<Bar>, StoreError> {
        let request = self
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#c", COMPANY)
            .expression_attribute_values(":c", text(company));
        let request = match after {
            Some(after) => request
                .key_condition_expression("#c = :c AND #d > :after")
                .expression_attribute_names("#d", DATE)
                .expression_attribute_values(":after", text(after.to_string())),
            None => request.key_condition_expression("#c = :c"),
        };
        let doing = format!("cannot query DynamoDB table {}", self.table);
        let items: Vec<_> =
            request.into_paginator().items().send().try_collect().await.map_err(|e| sdk_error(&e, &doing))?;
        items.iter().map(bar_from_item).collect()
    }

    /// Builds the catalog from the bars: the one scan of the table, for the
    /// companies' names; then each company's bars, one Query each, folded.
    /// Returns how many companies it holds.
    pub async fn build_catalog(&self) -> Result<usize, StoreError> {
        let catalog = self.catalog_table().await?;
        tracing::info!(table = %self.table, "building the catalog of the companies (one scan of the table)");
        let mut names = BTreeSet::new();
        let mut read = 0u64;
        self.each_item(|mut item| {
            read += 1;
            if read % 100_000 == 0 {
                tracing::info!(table = %self.table, bars = read, "building the catalog");
            }
            if let Some(AttributeValue::S(name)) = item.remove(COMPANY) {
                names.insert(name);
            }
            Ok(())
        })
        .await?;
        let companies = names.len();
        // A version no writer has read: a concurrent writer's update folds again.
        let version = stockstream_core::now_micros().unsigned_abs();
        let builds: Vec<_> = names
            .iter()
            .map(|name| async {
                let bars = self.stored_after(name, None).await?;
                match entry_of(&bars) {
                    Some(entry) => {
                        let [folded, symbol] = lookup_items(name, &entry.last_bar.symbol);
                        catalog.put(item_of_entry(&entry, version)).await?;
                        catalog.put(folded).await?;
                        catalog.put(symbol).await
                    }
                    None => Ok(()),
                }
            })
            .collect();
        futures_util::stream::iter(builds).buffer_unordered(self.concurrency).try_collect::<Vec<()>>().await?;
        self.mark_catalog_built().await?;
        let alerts = self.alerts_table().await?;
        if !alerts.feed_complete().await? {
            alerts.build_feed().await?;
        }
        tracing::info!(table = %self.table, bars = read, companies, "catalog built");
        Ok(companies)
    }

    /// A Query of the catalog's companies named after `after`, `limit` a page
    /// (the paginator goes on past it: the caller stops).
    fn catalog_query(
        catalog: &DynamoStore,
        after: Option<&str>,
        limit: usize,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let request = catalog
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&catalog.table)
            .expression_attribute_names("#k", CATALOG)
            .expression_attribute_values(":k", text(COMPANIES))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        match after {
            Some(after) => request
                .key_condition_expression("#k = :k AND #c > :after")
                .expression_attribute_names("#c", COMPANY)
                .expression_attribute_values(":after", text(after)),
            None => request.key_condition_expression("#k = :k"),
        }
    }

    /// A page of the catalog's entries.
    pub(super) async fn catalog_entries(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let catalog = self.catalog_for_reading().await?;
        let mut items = Self::catalog_query(&catalog, after, limit).into_paginator().items().send();
        let mut entries = Vec::new();
        while entries.len() < limit {
            match items.next().await {
                Some(item) => {
                    let item =
                        item.map_err(|e| sdk_error(&e, &format!("cannot query DynamoDB table {}", catalog.table)))?;
                    entries.push(entry_of_item(item)?.0);
                }
                None => break,
            }
        }
        Ok(entries)
    }

    /// A page of companies' names from the catalog.
    pub(super) async fn catalog_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let catalog = self.catalog_for_reading().await?;
        let request = Self::catalog_query(&catalog, after, limit)
            .expression_attribute_names("#n", COMPANY)
            .projection_expression("#n");
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

    /// The company named `name` in any case, or whose symbol it is: at most
    /// two GetItems.
    pub(super) async fn catalog_lookup(&self, name: &str) -> Result<Option<String>, StoreError> {
        let catalog = self.catalog_for_reading().await?;
        for (partition, key) in [(FOLDED, name.to_ascii_lowercase()), (SYMBOLS, name.to_ascii_uppercase())] {
            if let Some(AttributeValue::S(found)) =
                catalog.get(partition, &key).await?.and_then(|mut i| i.remove("Name"))
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Whether the catalog holds a company of exactly this name: one GetItem.
    pub(super) async fn catalog_has(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.catalog_for_reading().await?.get(COMPANIES, name).await?.is_some())
    }
}
