//! The newest alerts of every company, read with one Query: each alert is
//! kept twice in the alerts table, under its company (`Company Name`,
//! `TimeRule` = date#rule) and in the feed partition (`Company Name` =
//! [`FEED`], `TimeRule` = date#company#rule, the company in `Company`). A
//! company's name is trimmed, so no company can have the feed's name, which
//! starts with a space. A table made before the feed existed is read with a
//! Scan until `catalog rebuild` (or the first writer) fills its feed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use stockstream_core::{Alert, AlertQuery, StoreError};

use super::{alerts_of, sdk_error, DynamoStore, COMPANY, TIME_RULE};

/// The feed's partition.
const FEED: &str = " all companies";
/// The marker saying the feed holds every alert of its table.
const FEED_BUILT: &str = " feed complete";

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// An item of the feed or its marker, not an alert under its company.
fn is_feed_item(item: &HashMap<String, AttributeValue>) -> bool {
    matches!(item.get(COMPANY), Some(AttributeValue::S(c)) if c.starts_with(' '))
}

/// An alert's item under its company.
pub(super) fn company_item(a: &Alert) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (COMPANY.to_string(), text(&a.company)),
        (TIME_RULE.to_string(), text(format!("{}#{}", a.date, a.rule))),
        ("Date".to_string(), text(&a.date)),
        ("Rule".to_string(), text(&a.rule)),
        ("Symbol".to_string(), text(&a.symbol)),
        ("Message".to_string(), text(&a.message)),
        ("Values".to_string(), text(a.values.to_string())),
    ])
}

/// The same alert's item in the feed.
pub(super) fn feed_item(a: &Alert) -> HashMap<String, AttributeValue> {
    let mut item = company_item(a);
    item.insert(COMPANY.to_string(), text(FEED));
    item.insert(TIME_RULE.to_string(), text(format!("{}#{}#{}", a.date, a.company, a.rule)));
    item.insert("Company".to_string(), text(&a.company));
    item
}

impl DynamoStore {
    /// Marks an alerts table's feed as holding every alert.
    pub(super) async fn mark_feed_complete(&self) -> Result<(), StoreError> {
        self.put(HashMap::from([(COMPANY.to_string(), text(FEED_BUILT)), (TIME_RULE.to_string(), text("-"))])).await
    }

    pub(super) async fn feed_complete(&self) -> Result<bool, StoreError> {
        if self.alert_feed_complete.get().is_some() {
            return Ok(true);
        }
        let complete = self.get(FEED_BUILT, "-").await?.is_some();
        if complete {
            let _ = self.alert_feed_complete.set(());
        }
        Ok(complete)
    }

    /// The newest alerts of every company (on an alerts table): a Query of
    /// the feed, read past `limit` to the end of the last date kept, so that
    /// ties are ordered as everywhere else (by company, then rule).
    pub(super) async fn feed(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let doing = format!("cannot read DynamoDB table {}", self.table);
        if !self.feed_complete().await? {
            tracing::warn!(
                table = %self.table,
                "no feed of alerts yet: read with a Scan (`stockstream catalog rebuild` makes one)"
            );
            let mut items = Vec::new();
            self.each_item(|item| {
                if !is_feed_item(&item) {
                    items.push(item);
                }
                Ok(())
            })
            .await?;
            return Ok(alerts_of(items, &query.range, query.limit));
        }
        let (lower, upper) = (query.range.lower(), format!("{}\u{10ffff}", query.range.upper()));
        let limit = query.limit.clamp(1, 10_000);
        let mut pages = self
            .client
            .query()
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .table_name(&self.table)
            .key_condition_expression("#c = :c AND #t BETWEEN :lo AND :hi")
            .expression_attribute_names("#c", COMPANY)
            .expression_attribute_names("#t", TIME_RULE)
            .expression_attribute_values(":c", text(FEED))
            .expression_attribute_values(":lo", text(lower))
            .expression_attribute_values(":hi", text(upper))
            .scan_index_forward(false)
            .limit(limit.min(1000) as i32)
            .into_paginator()
            .items()
            .send();
        let date = |item: &HashMap<String, AttributeValue>| match item.get("Date") {
            Some(AttributeValue::S(d)) => d.clone(),
            _ => String::new(),
        };
        let mut items: Vec<HashMap<String, AttributeValue>> = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| sdk_error(&e, &doing))?;
            if items.len() >= limit && items.last().map(date) != Some(date(&item)) {
                break;
            }
            items.push(item);
        }
        Ok(alerts_of(items, &query.range, query.limit))
    }

    /// Fills an alerts table's feed from its companies' alerts (a Scan, once).
    pub(super) async fn build_feed(&self) -> Result<(), StoreError> {
        let mut feed = Vec::new();
        self.each_item(|item| {
            if !is_feed_item(&item) {
                feed.extend(alerts_of(vec![item], &Default::default(), 1).iter().map(feed_item));
            }
            Ok(())
        })
        .await?;
        self.put_all(feed).await?;
        self.mark_feed_complete().await?;
        let _ = self.alert_feed_complete.set(());
        Ok(())
    }
}
