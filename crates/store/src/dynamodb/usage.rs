//! What this process asked of DynamoDB and what the answers say it cost:
//! requests by operation and the capacity units of `ConsumedCapacity`
//! (requested as `TOTAL` on every read and write). Counted by an interceptor
//! on the client, so no request goes uncounted, paginated ones included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::ConsumedCapacity;

/// One operation's requests answered and the capacity units they consumed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct OperationUsage {
    /// Requests answered (a page of a query or a scan is a request).
    pub requests: u64,
    /// Capacity units the answers reported (read units for reads, write
    /// units for writes).
    pub capacity_units: f64,
}

static USAGE: Mutex<BTreeMap<&'static str, OperationUsage>> = Mutex::new(BTreeMap::new());

/// Usage by what it was for (a server's route) and operation.
type ByAccount = BTreeMap<(std::sync::Arc<str>, &'static str), OperationUsage>;

static BY_ACCOUNT: Mutex<ByAccount> = Mutex::new(BTreeMap::new());

tokio::task_local! {
    static ACCOUNT: std::sync::Arc<str>;
}

/// Runs `work` with every DynamoDB request it makes counted under `account`
/// too (a server's route: `/api/latest`), as well as by operation.
pub async fn accounted_to<F: std::future::Future>(account: std::sync::Arc<str>, work: F) -> F::Output {
    ACCOUNT.scope(account, work).await
}

/// DynamoDB's usage by account (see [`accounted_to`]) and operation.
pub fn dynamodb_usage_by_account() -> ByAccount {
    BY_ACCOUNT.lock().expect("usage lock").clone()
}

/// DynamoDB's usage by this process so far, by operation (`Query`, `Scan`,
/// `BatchWriteItem`, …).
pub fn dynamodb_usage() -> BTreeMap<&'static str, OperationUsage> {
    USAGE.lock().expect("usage lock").clone()
}

/// Whether an operation reads (its units are read units) or writes.
pub fn is_read(operation: &str) -> bool {
    matches!(operation, "Query" | "Scan" | "GetItem" | "BatchGetItem" | "DescribeTable")
}

fn count(operation: &'static str, capacity: &[&ConsumedCapacity]) {
    let units: f64 = capacity.iter().filter_map(|c| c.capacity_units).sum();
    let add = |entry: &mut OperationUsage| {
        entry.requests += 1;
        entry.capacity_units += units;
    };
    add(USAGE.lock().expect("usage lock").entry(operation).or_default());
    if let Ok(account) = ACCOUNT.try_with(|a| a.clone()) {
        add(BY_ACCOUNT.lock().expect("usage lock").entry((account, operation)).or_default());
    }
}

/// The client's interceptor that counts each answer.
#[derive(Debug)]
pub(crate) struct CountUsage;

impl Intercept for CountUsage {
    fn name(&self) -> &'static str {
        "CountUsage"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        if let Some(o) = output.downcast_ref::<QueryOutput>() {
            count("Query", &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
            count("Scan", &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            count("GetItem", &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
            count("PutItem", &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
            count("UpdateItem", &o.consumed_capacity.iter().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
            count("BatchGetItem", &o.consumed_capacity.iter().flatten().collect::<Vec<_>>());
        } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
            count("BatchWriteItem", &o.consumed_capacity.iter().flatten().collect::<Vec<_>>());
        } else if output.downcast_ref::<DescribeTableOutput>().is_some() {
            count("DescribeTable", &[]);
        } else if output.downcast_ref::<CreateTableOutput>().is_some() {
            count("CreateTable", &[]);
        } else {
            count("other", &[]);
        }
        Ok(())
    }
}
