//! The store's command-line options (flags, `STOCKSTREAM_*` variables, or
//! `stockstream.toml` keys of the same names) and opening the chosen backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stockstream_core::{RetryPolicy, StoreError};

use crate::{DynamoSettings, DynamoStore, SqliteStore, Store};

/// Which store, and where.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Where bars are stored: an SQLite file (no servers) or DynamoDB.
    #[arg(long = "store", env = "STOCKSTREAM_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub kind: StoreKind,
    /// SQLite database file of the embedded store (also keeps the rejects of an
    /// in-process run).
    #[arg(long, env = "STOCKSTREAM_DB", default_value = "stockstream.db")]
    pub db: PathBuf,
    /// DynamoDB table (partition key `Company Name`, sort key `Date`).
    #[arg(long, env = "STOCKSTREAM_TABLE", default_value = "StockMkt")]
    pub table: String,
    /// DynamoDB endpoint, e.g. `http://127.0.0.1:8000` for DynamoDB Local.
    #[arg(long, env = "STOCKSTREAM_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    /// AWS region (default: the standard AWS chain, e.g. `AWS_REGION`).
    #[arg(long, env = "STOCKSTREAM_REGION")]
    pub region: Option<String>,
    /// DynamoDB BatchWriteItem requests in flight at once.
    #[arg(long, env = "STOCKSTREAM_DYNAMODB_CONCURRENCY", default_value_t = 16)]
    pub dynamodb_concurrency: usize,
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// An SQLite file.
    Sqlite,
    /// An Amazon DynamoDB table.
    Dynamodb,
}

impl StoreArgs {
    /// Opens the chosen store; a missing DynamoDB table is created. A server
    /// not reachable yet is waited for under the retry policy.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self.kind {
            StoreKind::Sqlite => Arc::new(open_sqlite(&self.db).await?),
            StoreKind::Dynamodb => {
                let settings = self.dynamo();
                let store =
                    RetryPolicy::default().run("connecting to DynamoDB", || DynamoStore::connect(&settings)).await?;
                Arc::new(store)
            }
        })
    }

    /// Opens the store for reading: an SQLite file must already exist, and is
    /// opened read-only (no write access needed to it or its directory).
    pub async fn open_existing(&self) -> Result<Arc<dyn Store>, StoreError> {
        if self.kind == StoreKind::Dynamodb {
            return self.open().await;
        }
        let db = &self.db;
        if !db.exists() {
            return Err(StoreError::fatal(format!(
                "no database at {}: run `stockstream run` first or pass --db",
                db.display()
            )));
        }
        let store = RetryPolicy::default()
            .run("opening the SQLite database", || async { SqliteStore::open_read_only(db) })
            .await?;
        Ok(Arc::new(store))
    }

    /// The DynamoDB backend's settings.
    pub fn dynamo(&self) -> DynamoSettings {
        DynamoSettings {
            table: self.table.clone(),
            endpoint: self.dynamodb_endpoint.clone(),
            region: self.region.clone(),
            concurrency: self.dynamodb_concurrency,
        }
    }

    /// For summaries; never includes credentials.
    pub fn describe(&self) -> String {
        match self.kind {
            StoreKind::Sqlite => self.db.display().to_string(),
            StoreKind::Dynamodb => format!(
                "DynamoDB table {}{}",
                self.table,
                self.dynamodb_endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default()
            ),
        }
    }
}

/// Opens (or creates) an SQLite file; another process creating it at the same
/// moment holds a lock that is waited for like any write's.
pub async fn open_sqlite(path: &Path) -> Result<SqliteStore, StoreError> {
    RetryPolicy::default().run("opening the SQLite database", || async { SqliteStore::open(path) }).await
}
