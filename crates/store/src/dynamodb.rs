//! DynamoDB: the original project's table `StockMkt` (partition key
//! `Company Name`, sort key `Date`, both strings). Writes are BatchWriteItem
//! requests of 25 items, several in flight; a put replaces the item with the
//! same key, which makes writes idempotent. An outage or throttling comes back
//! as a transient [`StoreError`] for the pipeline's retry policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ReturnConsumedCapacity,
    ScalarAttributeType, Select, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::{StreamExt, TryStreamExt};
use stockstream_core::{Alert, AlertQuery, Bar, DateRange, StoreError, Ts, WindowMark};

use crate::Store;

mod alert_feed;
mod catalog;
mod usage;
pub use catalog::catalog_conflicts;
pub use usage::{accounted_to, dynamodb_usage, dynamodb_usage_by_account, is_read, OperationUsage};

const COMPANY: &str = "Company Name";
const DATE: &str = "Date";
/// The sort key of the alerts table: the bar's date, `#`, the rule.
const TIME_RULE: &str = "TimeRule";
/// The sort key of a window mark in the marks table.
const MARK: &str = "mark";
/// BatchWriteItem's limit.
const BATCH_ITEMS: usize = 25;

/// Where and how to reach the table. Credentials come from the standard AWS
/// chain (environment, profile, instance role) and are never logged.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    /// The table (`StockMkt`).
    pub table: String,
    /// `http://127.0.0.1:8000` for DynamoDB Local; None for AWS itself.
    pub endpoint: Option<String>,
    /// The AWS region; None for the standard chain.
    pub region: Option<String>,
    /// BatchWriteItem requests in flight at once.
    pub concurrency: usize,
}

impl Default for DynamoSettings {
    fn default() -> Self {
        DynamoSettings { table: "StockMkt".into(), endpoint: None, region: None, concurrency: 16 }
    }
}

/// A DynamoDB table in the original project's layout.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    concurrency: usize,
    /// Set once the marks table is known to exist (checked once, not per write).
    marks_ready: Arc<tokio::sync::OnceCell<()>>,
    /// Set once the alerts table is known to exist.
    alerts_ready: Arc<tokio::sync::OnceCell<()>>,
    /// Set once the catalog table is known to exist.
    catalog_ready: Arc<tokio::sync::OnceCell<()>>,
    /// Set once the catalog is known to cover the table.
    catalog_complete: Arc<tokio::sync::OnceCell<()>>,
    /// Set once the alerts table's feed is known to hold every alert.
    alert_feed_complete: Arc<tokio::sync::OnceCell<()>>,
    /// Its partition and sort key.
    keys: [&'static str; 2],
}

/// A failure that is not the service's: a request that cannot be built, an
/// item that cannot be read.
fn fatal(e: impl std::fmt::Display) -> StoreError {
    StoreError::fatal(e.to_string())
}

impl DynamoStore {
    /// Connects and makes sure the table exists with the expected key schema
    /// (creating it when missing) and is ACTIVE.
    pub async fn connect(settings: &DynamoSettings) -> Result<Self, StoreError> {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let https =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        } else if settings.endpoint.is_some() {
            // A local endpoint needs some region; it does not matter which.
            loader =
                loader.region(aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(StoreError::fatal("no AWS region: pass --region or set AWS_REGION"));
        }
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(usage::CountUsage);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
            // DynamoDB Local accepts any credentials; use placeholders when the
            // chain has none rather than fail.
            let has_credentials = match sdk.credentials_provider() {
                Some(p) => aws_credential_types::provider::ProvideCredentials::provide_credentials(&p).await.is_ok(),
                None => false,
            };
            if !has_credentials {
                config =
                    config.credentials_provider(Credentials::new("local", "local", None, None, "stockstream-local"));
            }
        }
        let store = DynamoStore {
            client: Client::from_conf(config.build()),
            table: settings.table.clone(),
            concurrency: settings.concurrency.max(1),
            marks_ready: Default::default(),
            alerts_ready: Default::default(),
            catalog_ready: Default::default(),
            catalog_complete: Default::default(),
            alert_feed_complete: Default::default(),
            keys: [COMPANY, DATE],
        };
        store.ensure_bars_table().await?;
        Ok(store)
    }

    /// This table's twin for window marks (`StockMkt_1m_marks`), in the same
    /// key layout: the symbol as `Company Name`, `Date` the constant `mark`.
    async fn marks_table(&self) -> Result<DynamoStore, StoreError> {
        let marks = DynamoStore { table: format!("{}_marks", self.table), ..self.clone() };
        self.marks_ready.get_or_try_init(|| async { marks.ensure_table().await.map(drop) }).await?;
        Ok(marks)
    }

    /// This table's twin for alerts (`StockMktAlerts`): partition key
    /// `Company Name`, sort key `TimeRule` (the bar's date, `#`, the rule),
    /// and the feed of every company's alerts (`alert_feed.rs`).
    async fn alerts_table(&self) -> Result<DynamoStore, StoreError> {
        let alerts = DynamoStore { table: format!("{}Alerts", self.table), keys: [COMPANY, TIME_RULE], ..self.clone() };
        // A table made here starts with its (empty) feed complete.
        let made = || async {
            if alerts.ensure_table().await? {
                alerts.mark_feed_complete().await?;
            }
            Ok::<(), StoreError>(())
        };
        self.alerts_ready.get_or_try_init(made).await?;
        Ok(alerts)
    }

    /// The item of a key (this table's partition and sort key values), read
    /// consistently.
    async fn get(&self, partition: &str, sort: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let [hash, range] = self.keys;
        let out = self
            .client
            .get_item()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .key(hash, AttributeValue::S(partition.into()))
            .key(range, AttributeValue::S(sort.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &format!("cannot read DynamoDB table {}", self.table)))?;
        Ok(out.item)
    }

    /// Calls `on` with every item of the table, page by page: a Scan, for
    /// the commands that ask for a whole table, never for a page view.
    async fn each_item(
        &self,
        mut on: impl FnMut(HashMap<String, AttributeValue>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let doing = format!("cannot scan DynamoDB table {}", self.table);
        let mut items = self
            .client
            .scan()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            on(item.map_err(|e| sdk_error(&e, &doing))?)?;
        }
        Ok(())
    }

    /// One item put (marks and alerts are few: no batching).
    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error(&e, &format!("cannot write to DynamoDB table {}", self.table)))?;
        Ok(())
    }

    /// [`DynamoStore::ensure_table`] for a table of bars: one this call
    /// creates starts with its (empty) catalog complete.
    /// The same backend over the table of another interval's bars.
    fn of_interval(&self, name: &str) -> DynamoStore {
        DynamoStore {
            table: crate::bars_table(&self.table, name),
            marks_ready: Default::default(),
            alerts_ready: Default::default(),
            catalog_ready: Default::default(),
            catalog_complete: Default::default(),
            alert_feed_complete: Default::default(),
            ..self.clone()
        }
    }

    async fn ensure_bars_table(&self) -> Result<(), StoreError> {
        if self.ensure_table().await? {
            self.mark_catalog_built().await?;
        }
        Ok(())
    }

    /// Makes sure the table exists and is ACTIVE; true when this call created it.
    async fn ensure_table(&self) -> Result<bool, StoreError> {
        let [hash, range] = self.keys;
        let mut created_here = false;
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(out) => {
                let table = out.table.ok_or_else(|| fatal("DescribeTable returned no table"))?;
                check_key_schema(&self.table, self.keys, table.key_schema(), table.attribute_definitions())?;
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                let created = self
                    .client
                    .create_table()
                    .table_name(&self.table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(hash)
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(fatal)?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(range)
                            .key_type(KeyType::Range)
                            .build()
                            .map_err(fatal)?,
                    )
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(hash)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(fatal)?,
                    )
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(range)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(fatal)?,
                    )
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        tracing::info!(table = %self.table, "created DynamoDB table");
                        created_here = true;
                    }
                    // Another process created it first.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
                    Err(e) => return Err(sdk_error(&e, &format!("cannot create DynamoDB table {}", self.table))),
                }
            }
            Err(e) => return Err(sdk_error(&e, &format!("cannot describe DynamoDB table {}", self.table))),
        }
        // Use the table only once it is ACTIVE.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| sdk_error(&e, &format!("cannot describe DynamoDB table {}", self.table)))?;
            if out.table.as_ref().and_then(|t| t.table_status.as_ref()) == Some(&TableStatus::Active) {
                return Ok(created_here);
            }
            if Instant::now() >= deadline {
                return Err(StoreError::fatal(format!("table {} did not become ACTIVE within 5 minutes", self.table)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One BatchWriteItem request. Items the service leaves unprocessed (its
    /// partial answer under load) are resent a few times, as the protocol asks;
    /// a failed request is a [`StoreError`] that says whether to retry.
    async fn write_request(&self, mut items: Vec<WriteRequest>) -> Result<(), StoreError> {
        for round in 0..UNPROCESSED_ROUNDS {
            let out = self
                .client
                .batch_write_item()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .request_items(&self.table, items)
                .send()
                .await
                .map_err(|e| sdk_error(&e, &format!("cannot write to DynamoDB table {}", self.table)))?;
            items = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if items.is_empty() {
                return Ok(());
            }
            tracing::debug!(left = items.len(), "unprocessed items; resending");
            tokio::time::sleep(Duration::from_millis(50 << round)).await;
        }
        Err(StoreError::transient(format!(
            "DynamoDB table {} left {} items unprocessed (throttled)",
            self.table,
            items.len()
        )))
    }

    /// Puts items with BatchWriteItem requests, several in flight; of items
    /// sharing a key, the last is put (a request refuses duplicate keys).
    async fn put_all(&self, items: Vec<HashMap<String, AttributeValue>>) -> Result<(), StoreError> {
        let [hash, range] = self.keys;
        let mut by_key: HashMap<(String, String), WriteRequest> = HashMap::with_capacity(items.len());
        for item in items {
            let key = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let key = (key(hash), key(range));
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(fatal)?;
            by_key.insert(key, WriteRequest::builder().put_request(put).build());
        }
        let mut requests: Vec<Vec<WriteRequest>> = Vec::new();
        for (i, item) in by_key.into_values().enumerate() {
            if i % BATCH_ITEMS == 0 {
                requests.push(Vec::with_capacity(BATCH_ITEMS));
            }
            requests.last_mut().expect("a request").push(item);
        }
        let writes: Vec<_> = requests.into_iter().map(|items| self.write_request(items)).collect();
        futures_util::stream::iter(writes).buffer_unordered(self.concurrency).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    async fn query(
        &self,
        company: &str,
        range: &DateRange,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Bar>, StoreError> {
        let doing = format!("cannot query DynamoDB table {}", self.table);
        let request = self
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .key_condition_expression("#c = :c AND #d BETWEEN :lo AND :hi")
            .expression_attribute_names("#c", COMPANY)
            .expression_attribute_names("#d", DATE)
            .expression_attribute_values(":c", AttributeValue::S(company.to_string()))
            .expression_attribute_values(":lo", AttributeValue::S(range.lower()))
            .expression_attribute_values(":hi", AttributeValue::S(range.upper()))
            .scan_index_forward(!newest_first)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)));
        // Pages until the limit: one page holds at most 1 MB.
        let mut items = request.into_paginator().items().send();
        let mut bars = Vec::new();
        while limit.is_none_or(|l| bars.len() < l) {
            match items.next().await {
                Some(item) => bars.push(bar_from_item(&item.map_err(|e| sdk_error(&e, &doing))?)?),
                None => break,
            }
        }
        Ok(bars)
    }
}

/// Alerts from their items: within the date range, newest first, at most `limit`.
fn alerts_of(items: Vec<HashMap<String, AttributeValue>>, range: &DateRange, limit: usize) -> Vec<Alert> {
    let text = |item: &HashMap<String, AttributeValue>, name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    let (lower, upper) = (range.lower(), range.upper());
    let mut alerts: Vec<Alert> = items
        .iter()
        .map(|item| Alert {
            // A feed item names its company apart.
            company: match item.get("Company") {
                Some(AttributeValue::S(c)) => c.clone(),
                _ => text(item, COMPANY),
            },
            symbol: text(item, "Symbol"),
            date: text(item, "Date"),
            rule: text(item, "Rule"),
            message: text(item, "Message"),
            values: serde_json::from_str(&text(item, "Values")).unwrap_or(serde_json::Value::Null),
        })
        .filter(|a| a.date >= lower && a.date <= upper)
        .collect();
    alerts.sort_by(|a, b| (&b.date, &a.company, &a.rule).cmp(&(&a.date, &b.company, &b.rule)));
    alerts.truncate(limit);
    alerts
}

fn check_key_schema(
    table: &str,
    [hash, range]: [&str; 2],
    keys: &[KeySchemaElement],
    attributes: &[AttributeDefinition],
) -> Result<(), StoreError> {
    let key_of = |kind: KeyType| keys.iter().find(|k| k.key_type == kind).map(|k| k.attribute_name.as_str());
    let type_of = |name: &str| attributes.iter().find(|a| a.attribute_name == name).map(|a| a.attribute_type.clone());
    let ok = keys.len() == 2
        && key_of(KeyType::Hash) == Some(hash)
        && key_of(KeyType::Range) == Some(range)
        && type_of(hash) == Some(ScalarAttributeType::S)
        && type_of(range) == Some(ScalarAttributeType::S);
    if !ok {
        let found: Vec<String> = keys
            .iter()
            .map(|k| format!("{} ({:?}, {:?})", k.attribute_name, k.key_type, type_of(&k.attribute_name)))
            .collect();
        return Err(StoreError::fatal(format!(
            "DynamoDB table {table} has key schema [{}]; stockstream needs partition key \"{hash}\" (S) and sort key \"{range}\" (S)",
            found.join(", ")
        )));
    }
    Ok(())
}

/// Exact decimal text of a number: the shortest form that reads back as the
/// same f64 (`101.3`, never `101.30000000000001`).
fn number(v: f64) -> AttributeValue {
    AttributeValue::N(format!("{v}"))
}

fn write_requests(bars: &[Bar], picks: &[usize]) -> Result<Vec<WriteRequest>, StoreError> {
    picks
        .iter()
        .map(|&i| {
            let put = PutRequest::builder().set_item(Some(item_of(&bars[i]))).build().map_err(fatal)?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect()
}

/// A bar as an item; `VWAP` and `Trades` only when known.
fn item_of(bar: &Bar) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (COMPANY.to_string(), AttributeValue::S(bar.company.clone())),
        (DATE.to_string(), AttributeValue::S(bar.ts.to_string())),
        ("Symbol".to_string(), AttributeValue::S(bar.symbol.clone())),
        ("Open".to_string(), number(bar.open)),
        ("High".to_string(), number(bar.high)),
        ("Low".to_string(), number(bar.low)),
        ("Close".to_string(), number(bar.close)),
        ("Volume".to_string(), number(bar.volume)),
    ]);
    if let Some(vwap) = bar.vwap {
        item.insert("VWAP".to_string(), number(vwap));
    }
    if let Some(trades) = bar.trades {
        item.insert("Trades".to_string(), AttributeValue::N(trades.to_string()));
    }
    item
}

fn bar_from_item(item: &HashMap<String, AttributeValue>) -> Result<Bar, StoreError> {
    let text = |name: &str| -> Result<String, StoreError> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            other => Err(fatal(format!("item attribute {name:?} is {other:?}, expected a string"))),
        }
    };
    let num = |name: &str| -> Result<f64, StoreError> {
        match item.get(name) {
            Some(AttributeValue::N(n)) => {
                n.parse().map_err(|_| fatal(format!("attribute {name:?} = {n:?} is not a number")))
            }
            other => Err(fatal(format!("item attribute {name:?} is {other:?}, expected a number"))),
        }
    };
    let company = text(COMPANY)?;
    let ts: Ts = text(DATE)?.parse().map_err(fatal)?;
    let symbol = text("Symbol").unwrap_or_else(|_| stockstream_core::symbol_for_company(&company));
    Ok(Bar {
        symbol,
        company,
        ts,
        open: num("Open")?,
        high: num("High")?,
        low: num("Low")?,
        close: num("Close")?,
        volume: num("Volume")?,
        vwap: item.get("VWAP").map(|_| num("VWAP")).transpose()?,
        trades: match item.get("Trades") {
            Some(AttributeValue::N(n)) => {
                Some(n.parse().map_err(|_| fatal(format!("attribute \"Trades\" = {n:?} is not a count")))?)
            }
            None => None,
            other => return Err(fatal(format!("item attribute \"Trades\" is {other:?}, expected a number"))),
        },
    })
}

fn is_retryable<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "LimitExceededException"
            )
        ),
        _ => false,
    }
}

/// An SDK error as a store error, without request details (which could carry
/// credentials): transient when retrying may help.
fn sdk_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(e: &SdkError<E, R>, doing: &str) -> StoreError {
    let what = match e {
        SdkError::ServiceError(s) => {
            format!("{}: {}", s.err().code().unwrap_or("ServiceError"), s.err().message().unwrap_or("no message"))
        }
        SdkError::DispatchFailure(_) => "cannot reach DynamoDB (connection failed)".into(),
        SdkError::TimeoutError(_) => "DynamoDB request timed out".into(),
        SdkError::ResponseError(_) => "unreadable DynamoDB response".into(),
        SdkError::ConstructionFailure(_) => "invalid DynamoDB request".into(),
        _ => "DynamoDB request failed".into(),
    };
    let message = format!("{doing}: {what}");
    if is_retryable(e) {
        StoreError::transient(message)
    } else {
        StoreError::fatal(message)
    }
}

/// Rounds of resending items a BatchWriteItem left unprocessed (50 ms doubling).
const UNPROCESSED_ROUNDS: u32 = 6;

#[async_trait]
impl Store for DynamoStore {
    async fn upsert(&self, bars: Arc<[Bar]>) -> Result<(), StoreError> {
        // One put per key: BatchWriteItem refuses duplicate keys in a request,
        // and the last write wins as it does in SQLite.
        let mut last: HashMap<(&str, Ts), usize> = HashMap::with_capacity(bars.len());
        for (i, b) in bars.iter().enumerate() {
            last.insert((b.company.as_str(), b.ts), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let requests: Vec<Vec<WriteRequest>> =
            keep.chunks(BATCH_ITEMS).map(|picks| write_requests(&bars, picks)).collect::<Result<_, _>>()?;
        futures_util::stream::iter(requests)
            .map(|items| self.write_request(items))
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        self.catalog_batch(&keep.iter().map(|&i| &bars[i]).collect::<Vec<_>>()).await
    }

    async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
        self.query(company, range, false, None).await
    }

    async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        let mut bars = self.query(company, range, true, Some(limit)).await?;
        bars.reverse();
        Ok(bars)
    }

    async fn oldest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        self.query(company, range, false, Some(limit)).await
    }

    /// From the catalog: one Query.
    async fn catalog(&self, after: Option<&str>, limit: usize) -> Result<Vec<crate::CatalogEntry>, StoreError> {
        self.catalog_entries(after, limit).await
    }

    /// From the catalog: one Query (DynamoDB keeps no list of partition keys).
    async fn companies_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        self.catalog_page(after, limit).await
    }

    async fn has_company(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.catalog_has(name).await.map(Some)
    }

    async fn find_folded(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.catalog_lookup(name).await
    }

    async fn rebuild_catalog(&self) -> Result<usize, StoreError> {
        self.build_catalog().await
    }

    async fn interval(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        let store = self.of_interval(name);
        store.ensure_bars_table().await?;
        Ok(Arc::new(store))
    }

    async fn stored_interval(&self, name: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
        let store = self.of_interval(name);
        match store.client.describe_table().table_name(&store.table).send().await {
            Ok(_) => Ok(Some(Arc::new(store))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error(&e, &format!("cannot describe DynamoDB table {}", store.table))),
        }
    }

    async fn save_marks(&self, marks: Vec<WindowMark>) -> Result<(), StoreError> {
        let table = self.marks_table().await?;
        for m in marks {
            let mut item = HashMap::from([
                (COMPANY.to_string(), AttributeValue::S(m.symbol.clone())),
                (DATE.to_string(), AttributeValue::S(MARK.into())),
                ("Watermark".to_string(), AttributeValue::N(m.watermark_ms.to_string())),
                ("Partition".to_string(), AttributeValue::N(m.partition.to_string())),
                ("LastOffset".to_string(), AttributeValue::N(m.last_offset.to_string())),
            ]);
            if let Some(v) = m.day_volume {
                item.insert("DayVolume".into(), number(v));
            }
            table.put(item).await?;
        }
        Ok(())
    }

    async fn keep_alerts(&self, alerts: Vec<Alert>) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let table = self.alerts_table().await?;
        // Each alert under its company and in the feed.
        let items = alerts.iter().flat_map(|a| [alert_feed::company_item(a), alert_feed::feed_item(a)]).collect();
        table.put_all(items).await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let table = self.alerts_table().await?;
        let doing = format!("cannot read DynamoDB table {}", table.table);
        let range = query.range.clone();
        let (lower, upper) = (range.lower(), format!("{}\u{10ffff}", range.upper()));
        let mut pages = match &query.company {
            Some(company) => table
                .client
                .query()
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .table_name(&table.table)
                .key_condition_expression("#c = :c AND #t BETWEEN :lo AND :hi")
                .expression_attribute_names("#c", COMPANY)
                .expression_attribute_names("#t", TIME_RULE)
                .expression_attribute_values(":c", AttributeValue::S(company.clone()))
                .expression_attribute_values(":lo", AttributeValue::S(lower))
                .expression_attribute_values(":hi", AttributeValue::S(upper))
                .scan_index_forward(false)
                .limit(query.limit.clamp(1, 10_000) as i32)
                .into_paginator()
                .items()
                .send(),
            // Every company's: a Query of the feed.
            None => return table.feed(query).await,
        };
        let mut items = Vec::new();
        while items.len() < query.limit {
            match pages.next().await {
                Some(item) => items.push(item.map_err(|e| sdk_error(&e, &doing))?),
                None => break,
            }
        }
        Ok(alerts_of(items, &range, query.limit))
    }

    async fn mark(&self, symbol: &str) -> Result<Option<WindowMark>, StoreError> {
        let table = self.marks_table().await?;
        let Some(item) = table.get(symbol, MARK).await? else { return Ok(None) };
        let int = |name: &str| -> Result<i64, StoreError> {
            match item.get(name) {
                Some(AttributeValue::N(n)) => n.parse().map_err(fatal),
                _ => Err(fatal(format!("window mark of {symbol} has no {name}"))),
            }
        };
        let day_volume = match item.get("DayVolume") {
            Some(AttributeValue::N(n)) => Some(n.parse().map_err(fatal)?),
            _ => None,
        };
        Ok(Some(WindowMark {
            symbol: symbol.into(),
            watermark_ms: int("Watermark")?,
            day_volume,
            partition: int("Partition")? as i32,
            last_offset: int("LastOffset")?,
        }))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let pages: Vec<_> = self
            .client
            .scan()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .select(Select::Count)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(&e, &format!("cannot count DynamoDB table {}", self.table)))?;
        Ok(pages.iter().map(|p| p.count.max(0) as u64).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_exact_decimal_text() {
        for (v, text) in
            [(101.3, "101.3"), (41234500.0, "41234500"), (0.1 + 0.2, "0.30000000000000004"), (270.25, "270.25")]
        {
            assert_eq!(number(v), AttributeValue::N(text.into()));
        }
    }

    #[test]
    fn items_round_trip() {
        let bar = Bar {
            symbol: "NFLX".into(),
            company: "Netflix".into(),
            ts: "2024-01-02T14:30:00Z".parse().unwrap(),
            open: 1.5,
            high: 2.25,
            low: 1.0,
            close: 2.0,
            volume: 12345.0,
            vwap: None,
            trades: None,
        };
        assert_eq!(bar_from_item(&item_of(&bar)).unwrap(), bar);
    }

    #[test]
    fn key_schema_must_match_the_original_table() {
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        let attr = |n: &str, t| AttributeDefinition::builder().attribute_name(n).attribute_type(t).build().unwrap();
        let good_keys = [key(COMPANY, KeyType::Hash), key(DATE, KeyType::Range)];
        let good_attrs = [attr(COMPANY, ScalarAttributeType::S), attr(DATE, ScalarAttributeType::S)];
        assert!(check_key_schema("t", [COMPANY, DATE], &good_keys, &good_attrs).is_ok());
        let swapped = [key(DATE, KeyType::Hash), key(COMPANY, KeyType::Range)];
        let err = check_key_schema("t", [COMPANY, DATE], &swapped, &good_attrs).unwrap_err().to_string();
        assert!(err.contains("needs partition key \"Company Name\""), "{err}");
        let numeric = [attr(COMPANY, ScalarAttributeType::S), attr(DATE, ScalarAttributeType::N)];
        assert!(check_key_schema("t", [COMPANY, DATE], &good_keys, &numeric).is_err());
        assert!(check_key_schema("t", [COMPANY, DATE], &good_keys[..1], &good_attrs).is_err());
    }
}
