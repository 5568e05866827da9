//! Option groups shared by several commands.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use stockstream_sources::{Interval, SyntheticConfig};

/// Alerts published to `<topic>.alerts`: a subscriber of the analytics stage.
pub struct KafkaAlerts(pub stockstream_bus::KafkaPublisher);

#[async_trait::async_trait]
impl stockstream_pipeline::Subscriber for KafkaAlerts {
    async fn on_alerts(&self, alerts: &[stockstream_analytics::Alert]) -> Result<(), stockstream_core::BusError> {
        let records = alerts.iter().filter_map(|a| Some((a.symbol.clone(), serde_json::to_vec(a).ok()?))).collect();
        self.0.publish(records).await
    }
}

#[derive(Args, Debug, Clone)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Sqlite,
    Dynamodb,
}

impl StoreArgs {
    /// Opens the chosen store; a missing DynamoDB table is created. A server
    /// not reachable yet is waited for under the pipeline's retry policy.
    pub async fn open(&self) -> anyhow::Result<std::sync::Arc<dyn stockstream_store::Store>> {
        Ok(match self.kind {
            StoreKind::Sqlite => std::sync::Arc::new(open_sqlite(&self.db).await?),
            StoreKind::Dynamodb => {
                let settings = self.dynamo();
                let store = stockstream_pipeline::RetryPolicy::default()
                    .run("connecting to DynamoDB", || stockstream_store::DynamoStore::connect(&settings))
                    .await?;
                std::sync::Arc::new(store)
            }
        })
    }

    /// Opens the store for reading: an SQLite file must already exist, and is
    /// opened read-only (no write access needed to it or its directory).
    pub async fn open_existing(&self) -> anyhow::Result<std::sync::Arc<dyn stockstream_store::Store>> {
        if self.kind == StoreKind::Dynamodb {
            return self.open().await;
        }
        if !self.db.exists() {
            anyhow::bail!("no database at {}: run `stockstream run` first or pass --db", self.db.display());
        }
        let policy = stockstream_pipeline::RetryPolicy::default();
        let db = &self.db;
        let store = policy
            .run("opening the SQLite database", || async { stockstream_store::SqliteStore::open_read_only(db) })
            .await?;
        Ok(std::sync::Arc::new(store))
    }

    pub fn dynamo(&self) -> stockstream_store::DynamoSettings {
        stockstream_store::DynamoSettings {
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
pub async fn open_sqlite(path: &std::path::Path) -> anyhow::Result<stockstream_store::SqliteStore> {
    let policy = stockstream_pipeline::RetryPolicy::default();
    Ok(policy.run("opening the SQLite database", || async { stockstream_store::SqliteStore::open(path) }).await?)
}

/// Options of the synthetic market. The data is SYNTHETIC: made-up prices from a
/// random model, not real market history.
#[derive(Args, Debug, Clone)]
pub struct SyntheticArgs {
    /// Symbols to generate (comma-separated).
    #[arg(
        long,
        env = "STOCKSTREAM_SYMBOLS",
        value_delimiter = ',',
        default_value = "NVDA,TSLA,META,AMZN,AAPL,NFLX,GOOGL"
    )]
    pub symbols: Vec<String>,
    /// First trading day.
    #[arg(long, env = "STOCKSTREAM_START", default_value = "2023-04-03")]
    pub start: NaiveDate,
    /// Last trading day (inclusive).
    #[arg(long, env = "STOCKSTREAM_END", default_value = "2025-04-15")]
    pub end: NaiveDate,
    /// Bar length: 1d, or intraday 1h, 1m, 1s (inside NYSE market hours).
    #[arg(long, env = "STOCKSTREAM_INTERVAL", default_value = "1d")]
    pub interval: Interval,
    /// Generate exactly this many bars (load tests), running past --end if needed.
    #[arg(long, env = "STOCKSTREAM_ROWS")]
    pub rows: Option<u64>,
    /// Random seed: the same seed gives the same data.
    #[arg(long, env = "STOCKSTREAM_SEED", default_value_t = 42)]
    pub seed: u64,
}

impl SyntheticArgs {
    pub fn config(&self) -> SyntheticConfig {
        SyntheticConfig {
            symbols: self.symbols.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            start: self.start,
            end: self.end,
            interval: self.interval,
            rows: self.rows,
            seed: self.seed,
        }
    }
}

/// How fast the producer sends.
#[derive(Args, Debug, Clone, Default)]
pub struct PaceArgs {
    /// Send at most this many records per second.
    #[arg(long, env = "STOCKSTREAM_RATE", conflicts_with = "speed")]
    pub rate: Option<f64>,
    /// Replay history this many times faster than its timestamps (`60x`).
    #[arg(long, env = "STOCKSTREAM_SPEED", value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// As fast as possible (the default).
    #[arg(long, conflicts_with_all = ["rate", "speed"])]
    pub max: bool,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim_end_matches(['x', 'X']).parse().map_err(|_| format!("{s:?} is not a speed like 60x"))?;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("speed {s:?} must be positive"))
    }
}

impl PaceArgs {
    pub fn pace(&self) -> stockstream_pipeline::Pace {
        use stockstream_pipeline::Pace;
        match (self.rate, self.speed) {
            (Some(r), _) if r > 0.0 => Pace::Rate(r),
            (_, Some(x)) => Pace::Speed(x),
            _ => Pace::Max,
        }
    }
}

/// Where the producer's records come from.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Stream this file instead of generated data: CSV (the original project's
    /// layout or a yfinance layout) or wire-format JSON lines (`.jsonl`, `.ndjson`).
    #[arg(long, env = "STOCKSTREAM_INPUT")]
    pub input: Option<PathBuf>,
    /// The source, by name: synthetic, yahoo, csv, jsonl (default: synthetic,
    /// or the file's kind with --input).
    #[arg(long, env = "STOCKSTREAM_SOURCE", value_parser = source_name)]
    pub source: Option<String>,
    /// Symbol of a single-ticker CSV (default: its file name, `NVDA.csv`).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Company of a single-ticker CSV (default: from the symbol).
    #[arg(long)]
    pub company: Option<String>,
    /// Use `Adj Close` as the close and scale Open/High/Low by the same factor.
    #[arg(long)]
    pub adjusted: bool,
    /// The longest record read from a file, in bytes; a longer one goes to
    /// dead letters with its start and reading resumes at the next line.
    #[arg(long, env = "STOCKSTREAM_MAX_RECORD_BYTES", default_value_t = stockstream_sources::DEFAULT_MAX_RECORD_BYTES,
          value_parser = record_bytes)]
    pub max_record_bytes: usize,
    /// Yahoo Finance's address (`--source yahoo`).
    #[arg(long, env = "STOCKSTREAM_YAHOO_URL", default_value = stockstream_sources::DEFAULT_BASE_URL)]
    pub base_url: String,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
}

fn record_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 64 => Ok(n),
        _ => Err(format!("{s:?} is not a size in bytes of at least 64")),
    }
}

fn source_name(s: &str) -> Result<String, String> {
    match stockstream_sources::SOURCES.iter().find(|r| r.name == s) {
        Some(r) => Ok(r.name.to_string()),
        None => {
            let known: Vec<String> =
                stockstream_sources::SOURCES.iter().map(|r| format!("{} ({})", r.name, r.help)).collect();
            Err(format!("unknown source; known: {}", known.join("; ")))
        }
    }
}

impl SourceArgs {
    /// Opens the source. A file in an unknown layout or a failed download
    /// fails here, before anything is written anywhere.
    pub async fn open(&self) -> anyhow::Result<Box<dyn stockstream_core::Source>> {
        let name = match (&self.source, &self.input) {
            (Some(name), _) => name.as_str(),
            (None, Some(path)) => stockstream_sources::source_for_file(path),
            (None, None) => "synthetic",
        };
        let options = stockstream_sources::SourceOptions {
            input: self.input.clone(),
            csv: stockstream_sources::CsvOptions {
                symbol: self.symbol.clone(),
                company: self.company.clone(),
                adjusted: self.adjusted,
                max_record_bytes: Some(self.max_record_bytes),
            },
            synthetic: self.synthetic.config(),
            yahoo_url: self.base_url.clone(),
        };
        Ok(stockstream_sources::open(name, &options).await?)
    }
}

/// How to reach Kafka.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of the bars; rejects go to `<topic>.dlq`, alerts to `<topic>.alerts`.
    #[arg(long, env = "STOCKSTREAM_TOPIC", default_value = "stock-prices")]
    pub topic: String,
    /// Partitions of a topic created because it was missing.
    #[arg(long, env = "STOCKSTREAM_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,
    /// A librdkafka setting passed through as is, e.g. `security.protocol=SASL_SSL`
    /// or `sasl.mechanism=PLAIN` (repeatable).
    #[arg(long = "kafka-option", env = "STOCKSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

impl KafkaArgs {
    pub fn settings(&self) -> stockstream_bus::KafkaSettings {
        stockstream_bus::KafkaSettings { brokers: self.brokers.clone(), options: self.kafka_options.clone() }
    }

    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    pub fn alerts_topic(&self) -> String {
        format!("{}.alerts", self.topic)
    }

    /// Creates the topic and its dead-letter topic when missing.
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        let settings = self.settings();
        stockstream_bus::ensure_topic(&settings, &self.topic, self.partitions).await?;
        stockstream_bus::ensure_topic(&settings, &self.dlq_topic(), self.partitions).await?;
        Ok(stockstream_bus::ensure_topic(&settings, &self.alerts_topic(), self.partitions).await?)
    }
}

/// Consumer-side options.
#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// What to do with a missing value: fill it from the company's previous bar, or drop the row.
    #[arg(long, env = "STOCKSTREAM_MISSING", default_value = "ffill")]
    pub missing: stockstream_core::MissingPolicy,
    /// Bars per store write.
    #[arg(long, env = "STOCKSTREAM_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,
    /// A partial batch is written after this many milliseconds.
    #[arg(long, env = "STOCKSTREAM_FLUSH_MS", default_value_t = 200)]
    pub flush_ms: u64,
}

impl ConsumeArgs {
    pub fn options(&self) -> stockstream_pipeline::ConsumeOptions {
        stockstream_pipeline::ConsumeOptions {
            batch_size: self.batch_size.max(1),
            flush_interval: std::time::Duration::from_millis(self.flush_ms.max(1)),
            missing: self.missing,
            ..Default::default()
        }
    }
}
