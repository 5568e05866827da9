//! DynamoDB: the original project's table `StockMkt` (partition key
//! `Company Name`, sort key `Date`, both strings). Writes are BatchWriteItem
//! requests of 25 items, several in flight, retried with backoff; a put replaces
//! the item with the same key, which makes writes idempotent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    Select, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::{StreamExt, TryStreamExt};
use stockstream_core::{Bar, DateRange, Ts};

use crate::Store;

const COMPANY: &str = "Company Name";
const DATE: &str = "Date";
/// BatchWriteItem's limit.
const BATCH_ITEMS: usize = 25;

/// Where and how to reach the table. Credentials come from the standard AWS
/// chain (environment, profile, instance role) and are never logged.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub table: String,
    /// `http://127.0.0.1:8000` for DynamoDB Local; None for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// BatchWriteItem requests in flight at once.
    pub concurrency: usize,
    /// How long one request may keep failing (throttling, outage) before the
    /// write is given up and surfaced as an error.
    pub retry_for: Duration,
}

impl Default for DynamoSettings {
    fn default() -> Self {
        DynamoSettings {
            table: "StockMkt".into(),
            endpoint: None,
            region: None,
            concurrency: 16,
            retry_for: Duration::from_secs(120),
        }
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    concurrency: usize,
    retry_for: Duration,
}

impl DynamoStore {
    /// Connects and makes sure the table exists with the expected key schema
    /// (creating it when missing) and is ACTIVE.
    pub async fn connect(settings: &DynamoSettings) -> anyhow::Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        } else if settings.endpoint.is_some() {
            // A local endpoint needs some region; it does not matter which.
            loader =
                loader.region(aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"));
        }
        let sdk = loader.load().await;
        anyhow::ensure!(sdk.region().is_some(), "no AWS region: pass --region or set AWS_REGION");
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
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
            retry_for: settings.retry_for,
        };
        store.ensure_table().await?;
        Ok(store)
    }

    async fn ensure_table(&self) -> anyhow::Result<()> {
        // A server that cannot be reached yet (starting, or down for a moment)
        // is waited for as long as a write would wait for it.
        let started = Instant::now();
        let mut attempt = 0;
        let described = loop {
            match self.client.describe_table().table_name(&self.table).send().await {
                Err(e) if is_retryable(&e) && started.elapsed() < self.retry_for => {
                    tracing::warn!("DynamoDB not reachable yet, will retry: {}", describe_sdk_error(&e));
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        match described {
            Ok(out) => {
                let table = out.table.context("DescribeTable returned no table")?;
                check_key_schema(&self.table, table.key_schema(), table.attribute_definitions())?;
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                let created = self
                    .client
                    .create_table()
                    .table_name(&self.table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .key_schema(KeySchemaElement::builder().attribute_name(COMPANY).key_type(KeyType::Hash).build()?)
                    .key_schema(KeySchemaElement::builder().attribute_name(DATE).key_type(KeyType::Range).build()?)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(COMPANY)
                            .attribute_type(ScalarAttributeType::S)
                            .build()?,
                    )
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(DATE)
                            .attribute_type(ScalarAttributeType::S)
                            .build()?,
                    )
                    .send()
                    .await;
                match created {
                    Ok(_) => tracing::info!(table = %self.table, "created DynamoDB table"),
                    // Another process created it first.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
                    Err(e) => {
                        return Err(describe_sdk_error(&e))
                            .with_context(|| format!("cannot create DynamoDB table {}", self.table))
                    }
                }
            }
            Err(e) => {
                return Err(describe_sdk_error(&e))
                    .with_context(|| format!("cannot describe DynamoDB table {}", self.table))
            }
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
                .map_err(|e| describe_sdk_error(&e))?;
            if out.table.as_ref().and_then(|t| t.table_status.as_ref()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "table {} did not become ACTIVE within 5 minutes", self.table);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One BatchWriteItem request, retried (its unprocessed items, throttling,
    /// outages) with exponential backoff and jitter until `retry_for` runs out.
    /// Items are built from the bars again only when a whole request must be
    /// resent, so the common path does not copy them.
    async fn write_request(&self, bars: &[Bar], picks: Vec<usize>) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut items = write_requests(bars, &picks)?;
        loop {
            match self.client.batch_write_item().request_items(&self.table, items).send().await {
                Ok(out) => {
                    items = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                    if items.is_empty() {
                        return Ok(());
                    }
                    tracing::debug!(left = items.len(), "unprocessed items; retrying");
                }
                Err(e) if is_retryable(&e) => {
                    tracing::warn!("DynamoDB write failed, will retry: {}", describe_sdk_error(&e));
                    items = write_requests(bars, &picks)?;
                }
                Err(e) => return Err(describe_sdk_error(&e)).context("DynamoDB write refused"),
            }
            if started.elapsed() >= self.retry_for {
                bail!("DynamoDB write still failing after {:?}; {} items not written", self.retry_for, items.len());
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    async fn query(
        &self,
        company: &str,
        range: &DateRange,
        newest_first: bool,
        limit: Option<i32>,
    ) -> anyhow::Result<Vec<Bar>> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#c = :c AND #d BETWEEN :lo AND :hi")
            .expression_attribute_names("#c", COMPANY)
            .expression_attribute_names("#d", DATE)
            .expression_attribute_values(":c", AttributeValue::S(company.to_string()))
            .expression_attribute_values(":lo", AttributeValue::S(range.lower()))
            .expression_attribute_values(":hi", AttributeValue::S(range.upper()))
            .scan_index_forward(!newest_first)
            .set_limit(limit);
        let items: Vec<HashMap<String, AttributeValue>> = if limit.is_some() {
            request.send().await.map_err(|e| describe_sdk_error(&e))?.items.unwrap_or_default()
        } else {
            request.into_paginator().items().send().try_collect().await.map_err(|e| describe_sdk_error(&e))?
        };
        items.iter().map(bar_from_item).collect()
    }
}

fn check_key_schema(table: &str, keys: &[KeySchemaElement], attributes: &[AttributeDefinition]) -> anyhow::Result<()> {
    let key_of = |kind: KeyType| keys.iter().find(|k| k.key_type == kind).map(|k| k.attribute_name.as_str());
    let type_of = |name: &str| attributes.iter().find(|a| a.attribute_name == name).map(|a| a.attribute_type.clone());
    let ok = keys.len() == 2
        && key_of(KeyType::Hash) == Some(COMPANY)
        && key_of(KeyType::Range) == Some(DATE)
        && type_of(COMPANY) == Some(ScalarAttributeType::S)
        && type_of(DATE) == Some(ScalarAttributeType::S);
    if !ok {
        let found: Vec<String> = keys
            .iter()
            .map(|k| format!("{} ({:?}, {:?})", k.attribute_name, k.key_type, type_of(&k.attribute_name)))
            .collect();
        bail!(
            "DynamoDB table {table} has key schema [{}]; stockstream needs partition key \"{COMPANY}\" (S) and sort key \"{DATE}\" (S)",
            found.join(", ")
        );
    }
    Ok(())
}

/// Exact decimal text of a number: the shortest form that reads back as the
/// same f64 (`101.3`, never `101.30000000000001`).
fn number(v: f64) -> AttributeValue {
    AttributeValue::N(format!("{v}"))
}

fn write_requests(bars: &[Bar], picks: &[usize]) -> anyhow::Result<Vec<WriteRequest>> {
    picks
        .iter()
        .map(|&i| {
            let put = PutRequest::builder().set_item(Some(item_of(&bars[i]))).build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect()
}

fn item_of(bar: &Bar) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (COMPANY.to_string(), AttributeValue::S(bar.company.clone())),
        (DATE.to_string(), AttributeValue::S(bar.ts.to_string())),
        ("Symbol".to_string(), AttributeValue::S(bar.symbol.clone())),
        ("Open".to_string(), number(bar.open)),
        ("High".to_string(), number(bar.high)),
        ("Low".to_string(), number(bar.low)),
        ("Close".to_string(), number(bar.close)),
        ("Volume".to_string(), number(bar.volume)),
    ])
}

fn bar_from_item(item: &HashMap<String, AttributeValue>) -> anyhow::Result<Bar> {
    let text = |name: &str| -> anyhow::Result<String> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            other => bail!("item attribute {name:?} is {other:?}, expected a string"),
        }
    };
    let num = |name: &str| -> anyhow::Result<f64> {
        match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse().with_context(|| format!("attribute {name:?} = {n:?}")),
            other => bail!("item attribute {name:?} is {other:?}, expected a number"),
        }
    };
    let company = text(COMPANY)?;
    let ts: Ts = text(DATE)?.parse()?;
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

/// An error message without request details (which could carry credentials).
fn describe_sdk_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(e: &SdkError<E, R>) -> anyhow::Error {
    match e {
        SdkError::ServiceError(s) => anyhow::anyhow!(
            "{}: {}",
            s.err().code().unwrap_or("ServiceError"),
            s.err().message().unwrap_or("no message")
        ),
        SdkError::DispatchFailure(_) => anyhow::anyhow!("cannot reach DynamoDB (connection failed)"),
        SdkError::TimeoutError(_) => anyhow::anyhow!("DynamoDB request timed out"),
        SdkError::ResponseError(_) => anyhow::anyhow!("unreadable DynamoDB response"),
        SdkError::ConstructionFailure(_) => anyhow::anyhow!("invalid DynamoDB request"),
        _ => anyhow::anyhow!("DynamoDB request failed"),
    }
}

/// 50 ms doubling to 5 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let cap = (50u64 << attempt.min(7)).min(5000);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut x = (nanos as u64) ^ 0x9e37_79b9_7f4a_7c15 ^ (attempt as u64);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_millis(cap / 2 + x % (cap / 2 + 1))
}

#[async_trait]
impl Store for DynamoStore {
    async fn upsert(&self, bars: Vec<Bar>) -> anyhow::Result<()> {
        // One put per key: BatchWriteItem refuses duplicate keys in a request,
        // and the last write wins as it does in SQLite.
        let mut last: HashMap<(&str, Ts), usize> = HashMap::with_capacity(bars.len());
        for (i, b) in bars.iter().enumerate() {
            last.insert((b.company.as_str(), b.ts), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let requests: Vec<Vec<usize>> = keep.chunks(BATCH_ITEMS).map(<[usize]>::to_vec).collect();
        let bars = &bars;
        futures_util::stream::iter(requests)
            .map(|picks| self.write_request(bars, picks))
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn range(&self, company: &str, range: &DateRange) -> anyhow::Result<Vec<Bar>> {
        self.query(company, range, false, None).await
    }

    async fn latest(&self) -> anyhow::Result<Vec<Bar>> {
        let mut out = Vec::new();
        for company in self.companies().await? {
            out.extend(self.query(&company, &DateRange::default(), true, Some(1)).await?);
        }
        Ok(out)
    }

    /// A scan of the key attribute: DynamoDB keeps no list of partition keys.
    async fn companies(&self) -> anyhow::Result<Vec<String>> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .client
            .scan()
            .table_name(&self.table)
            .projection_expression("#c")
            .expression_attribute_names("#c", COMPANY)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
        let mut names: Vec<String> = items
            .into_iter()
            .filter_map(|mut i| match i.remove(COMPANY) {
                Some(AttributeValue::S(s)) => Some(s),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn count(&self) -> anyhow::Result<u64> {
        let pages: Vec<_> = self
            .client
            .scan()
            .table_name(&self.table)
            .select(Select::Count)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
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
        };
        assert_eq!(bar_from_item(&item_of(&bar)).unwrap(), bar);
    }

    #[test]
    fn key_schema_must_match_the_original_table() {
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        let attr = |n: &str, t| AttributeDefinition::builder().attribute_name(n).attribute_type(t).build().unwrap();
        let good_keys = [key(COMPANY, KeyType::Hash), key(DATE, KeyType::Range)];
        let good_attrs = [attr(COMPANY, ScalarAttributeType::S), attr(DATE, ScalarAttributeType::S)];
        assert!(check_key_schema("t", &good_keys, &good_attrs).is_ok());
        let swapped = [key(DATE, KeyType::Hash), key(COMPANY, KeyType::Range)];
        let err = check_key_schema("t", &swapped, &good_attrs).unwrap_err().to_string();
        assert!(err.contains("needs partition key \"Company Name\""), "{err}");
        let numeric = [attr(COMPANY, ScalarAttributeType::S), attr(DATE, ScalarAttributeType::N)];
        assert!(check_key_schema("t", &good_keys, &numeric).is_err());
        assert!(check_key_schema("t", &good_keys[..1], &good_attrs).is_err());
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        assert!(backoff(0) <= Duration::from_millis(50));
        assert!(backoff(3) >= Duration::from_millis(200) && backoff(3) <= Duration::from_millis(400));
        assert!(backoff(30) <= Duration::from_secs(5));
    }
}
