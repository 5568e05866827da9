//! Option groups shared by several commands.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use stockstream_sources::{Interval, SyntheticConfig};

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// SQLite database file of the embedded store.
    #[arg(long, env = "STOCKSTREAM_DB", default_value = "stockstream.db")]
    pub db: PathBuf,
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
            symbols: self
                .symbols
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
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
    let v: f64 = s
        .trim_end_matches(['x', 'X'])
        .parse()
        .map_err(|_| format!("{s:?} is not a speed like 60x"))?;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("speed {s:?} must be positive"))
    }
}

impl PaceArgs {
    pub fn pace(&self) -> crate::pipeline::Pace {
        use crate::pipeline::Pace;
        match (self.rate, self.speed) {
            (Some(r), _) if r > 0.0 => Pace::Rate(r),
            (_, Some(x)) => Pace::Speed(x),
            _ => Pace::Max,
        }
    }
}

/// `.jsonl`/`.ndjson` files hold wire messages, one per line; anything else is CSV.
fn is_json_lines(path: &std::path::Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson")
    )
}

/// Where the producer's records come from.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Stream this file instead of synthetic data: CSV in the original project's
    /// layout, or wire-format JSON lines (`.jsonl`, `.ndjson`).
    #[arg(long, env = "STOCKSTREAM_INPUT")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
}

impl SourceArgs {
    /// Opens the source. A file in an unknown layout fails here, before anything
    /// is written anywhere.
    pub fn open(&self) -> anyhow::Result<crate::pipeline::OpenedSource> {
        use crate::pipeline::{Item, OpenedSource};
        match &self.input {
            Some(path) if is_json_lines(path) => {
                let source = stockstream_sources::JsonLinesSource::open(path)?;
                let iter = source.map(|r| match r {
                    Ok(rec) => Item::Wire(rec),
                    Err(rej) => Item::Reject(rej),
                });
                Ok(OpenedSource {
                    items: Box::new(iter),
                    label: path.display().to_string(),
                    expected: None,
                })
            }
            Some(path) => {
                let source = stockstream_sources::CsvSource::open(path)?;
                let iter = source.map(|r| match r {
                    Ok(rec) => Item::Raw(rec),
                    Err(rej) => Item::Reject(rej),
                });
                Ok(OpenedSource {
                    items: Box::new(iter),
                    label: path.display().to_string(),
                    expected: None,
                })
            }
            None => {
                let config = self.synthetic.config();
                let label = format!(
                    "synthetic data (seed {}, {} symbols, {}..{}, {:?})",
                    config.seed,
                    config.symbols.len(),
                    config.start,
                    config.end,
                    config.interval
                );
                let generator =
                    stockstream_sources::Synthetic::new(config).map_err(anyhow::Error::msg)?;
                let expected = generator.expected_rows();
                Ok(OpenedSource {
                    items: Box::new(generator.map(Item::Bar)),
                    label,
                    expected,
                })
            }
        }
    }
}

/// How to reach Kafka.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of the bars; rejects go to `<topic>.dlq`.
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
        stockstream_bus::KafkaSettings {
            brokers: self.brokers.clone(),
            options: self.kafka_options.clone(),
        }
    }

    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// Creates the topic and its dead-letter topic when missing.
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        let settings = self.settings();
        stockstream_bus::ensure_topic(&settings, &self.topic, self.partitions).await?;
        stockstream_bus::ensure_topic(&settings, &self.dlq_topic(), self.partitions).await
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
    pub fn options(&self) -> crate::pipeline::ConsumeOptions {
        crate::pipeline::ConsumeOptions {
            batch_size: self.batch_size.max(1),
            flush_interval: std::time::Duration::from_millis(self.flush_ms.max(1)),
            missing: self.missing,
            ..Default::default()
        }
    }
}
