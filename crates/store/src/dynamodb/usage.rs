//! What this process asked of DynamoDB and what the answers say it cost:
//! requests by operation and the capacity units of `ConsumedCapacity`
//! (requested as `TOTAL` on every read and write). Counted by an interceptor
//! on the client, so no request goes uncounted, paginated ones included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
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

/// DynamoDB's usage by this process so far, by operation (`Query`, `Scan`,
/// `BatchWriteItem`, …).
pub fn dynamodb_usage() -> BTreeMap<&'static str, OperationUsage> {
    USAGE.lock().expect("usage lock").clone()
}

/// Whether an operation reads (its units are read units) or writes.
pub fn is_read(operation: &str) -> bool {
    matches!(operation, "Query" | "Scan" | "GetItem" | "DescribeTable")
}

fn count(operation: &'static str, capacity: &[&ConsumedCapacity]) {
    let units: f64 = capacity.iter().filter_map(|c| c.capacity_units).sum();
    let mut usage = USAGE.lock().expect("usage lock");
    let entry = usage.entry(operation).or_default();
    entry.requests += 1;
    entry.capacity_units += units;
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
