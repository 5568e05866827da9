//! Where bars are kept. Two backends side by side behind one trait: SQLite
//! (embedded default) and DynamoDB. Writes are idempotent upserts keyed by a
//! bar's identity `(company, date)`, which makes at-least-once delivery store
//! every bar once.

use async_trait::async_trait;
use stockstream_core::{company_for_symbol, Bar, DateRange};

pub mod dynamodb;
pub mod sqlite;

pub use dynamodb::{DynamoSettings, DynamoStore};
pub use sqlite::SqliteStore;

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts or replaces these bars; returns once they are durable.
    async fn upsert(&self, bars: Vec<Bar>) -> anyhow::Result<()>;

    /// One company's bars within an inclusive range, oldest first.
    async fn range(&self, company: &str, range: &DateRange) -> anyhow::Result<Vec<Bar>>;

    /// The newest bar of every company, by company name.
    async fn latest(&self) -> anyhow::Result<Vec<Bar>>;

    /// Every company with at least one bar, sorted.
    async fn companies(&self) -> anyhow::Result<Vec<String>>;

    /// How many bars are stored.
    async fn count(&self) -> anyhow::Result<u64>;

    /// The stored company a name or a symbol names (case-insensitive), if any.
    async fn find_company(&self, name: &str) -> anyhow::Result<Option<String>> {
        let by_symbol = company_for_symbol(name);
        Ok(self.companies().await?.into_iter().find(|c| c.eq_ignore_ascii_case(name) || *c == by_symbol))
    }

    /// Every stored company's bars in range, one list per company, by name.
    async fn bars_by_company(&self, range: &DateRange) -> anyhow::Result<Vec<Vec<Bar>>> {
        let mut all = Vec::new();
        for company in self.companies().await? {
            all.push(self.range(&company, range).await?);
        }
        Ok(all)
    }
}
