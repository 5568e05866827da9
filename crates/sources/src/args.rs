//! The sources' command-line options (flags, `STOCKSTREAM_*` variables, or
//! `stockstream.toml` keys of the same names) and opening the chosen source.

use std::path::PathBuf;

use std::collections::HashMap;

use chrono::NaiveDate;
use stockstream_core::{BarLength, Source};

use crate::{
    BackfillPlan, CsvOptions, Interval, SourceError, SourceOptions, SyntheticConfig, DEFAULT_BASE_URL, SOURCES,
};

/// Options of the synthetic market. The data is SYNTHETIC: made-up prices from a
/// random model, not real market history.
#[derive(clap::Args, Debug, Clone)]
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
    /// Default: 1d, or with --rows the longest that fits the bars in 10 years.
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<Interval>,
    /// Generate exactly this many bars (load tests), running past --end if needed.
    #[arg(long, env = "STOCKSTREAM_ROWS")]
    pub rows: Option<u64>,
    /// Random seed: the same seed gives the same data.
    #[arg(long, env = "STOCKSTREAM_SEED", default_value_t = 42)]
    pub seed: u64,
}

impl SyntheticArgs {
    /// The generator's configuration.
    pub fn config(&self) -> SyntheticConfig {
        SyntheticConfig {
            symbols: self.symbols.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            start: self.start,
            end: self.end,
            interval: self.interval.unwrap_or_else(|| match self.rows {
                Some(rows) => Interval::fitting(rows, self.symbols.len().max(1) as u64, 10),
                None => Interval::Day,
            }),
            rows: self.rows,
            seed: self.seed,
        }
    }
}

/// Where the records come from.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// Stream this file instead of generated data: CSV (the original project's
    /// layout or a yfinance layout) or wire-format JSON lines (`.jsonl`, `.ndjson`).
    #[arg(long, env = "STOCKSTREAM_INPUT")]
    pub input: Option<PathBuf>,
    /// The source, by name: synthetic, yahoo, csv, jsonl, ticks,
    /// synthetic-ticks, yahoo-live, finnhub (default: synthetic, or the
    /// file's kind with --input).
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
    #[arg(long, env = "STOCKSTREAM_MAX_RECORD_BYTES", default_value_t = crate::DEFAULT_MAX_RECORD_BYTES,
          value_parser = record_bytes)]
    pub max_record_bytes: usize,
    /// Yahoo Finance's address (`--source yahoo`).
    #[arg(long, env = "STOCKSTREAM_YAHOO_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Synthetic ticks per second, all symbols together (`--source synthetic-ticks`).
    #[arg(long, env = "STOCKSTREAM_TICK_RATE", default_value_t = 10.0)]
    pub tick_rate: f64,
    /// A live feed's WebSocket address in place of its own (`yahoo-live`,
    /// `finnhub`): another server speaking the same protocol.
    #[arg(long, env = "STOCKSTREAM_FEED_URL")]
    pub url: Option<String>,
    /// Finnhub's API token; never printed.
    #[arg(long, env = "STOCKSTREAM_FINNHUB_TOKEN", hide_env_values = true)]
    pub finnhub_token: Option<Secret>,
    /// A live feed silent this long (seconds) is reconnected.
    #[arg(long, env = "STOCKSTREAM_FEED_STALL", default_value_t = 30.0)]
    pub feed_stall: f64,
    /// A live feed's ticks older than this are refused (`bad_time`): `7d`,
    /// `12h`, `30m`, `90s`.
    #[arg(long, env = "STOCKSTREAM_MAX_TICK_AGE", default_value = "7d", value_parser = parse_age)]
    pub max_tick_age: std::time::Duration,
    /// A live feed's history stored before it goes live, fetched from the
    /// chart API at --base-url (synthetic ticks make theirs): `2h`, `5d`,
    /// `90m`; `0` fetches nothing, gaps after outages neither. Default: from
    /// the latest regular session's open.
    #[arg(long, env = "STOCKSTREAM_BACKFILL", value_parser = parse_age)]
    pub backfill: Option<std::time::Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub synthetic: SyntheticArgs,
}

/// A secret (an API token): its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" => Err("an empty token".into()),
            t => Ok(Secret(t.to_string())),
        }
    }
}

fn record_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 64 => Ok(n),
        _ => Err(format!("{s:?} is not a size in bytes of at least 64")),
    }
}

fn source_name(s: &str) -> Result<String, String> {
    match SOURCES.iter().find(|r| r.name == s) {
        Some(r) => Ok(r.name.to_string()),
        None => {
            let known: Vec<String> = SOURCES.iter().map(|r| format!("{} ({})", r.name, r.help)).collect();
            Err(format!("unknown source; known: {}", known.join("; ")))
        }
    }
}

impl SourceArgs {
    /// Opens the source. A file in an unknown layout or a failed download
    /// fails here, before anything is written anywhere.
    pub async fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        self.open_live(None, HashMap::new()).await
    }

    /// Where a live feed's history starts at `now_ms` (`--backfill`, or the
    /// latest regular session's open).
    pub fn backfill_from(&self, now_ms: i64) -> i64 {
        match self.backfill {
            Some(d) => now_ms - d.as_millis() as i64,
            None => crate::latest_session_open(now_ms),
        }
    }

    /// Opens the source; a live one making bars of `bar` first backfills
    /// them (unless `--backfill 0`), each symbol from its point in `resume`
    /// (upper-case symbol → Unix milliseconds) if it has one.
    pub async fn open_live(
        &self,
        bar: Option<BarLength>,
        resume: HashMap<String, i64>,
    ) -> Result<Box<dyn Source>, SourceError> {
        let backfill = match (bar.and_then(crate::chart_length), self.backfill) {
            (None, _) => None,
            (Some(_), Some(d)) if d.is_zero() => None,
            (Some(length), _) => {
                let from_ms = self.backfill_from(chrono::Utc::now().timestamp_millis());
                if length != bar.expect("some") {
                    tracing::info!(
                        "{} bars are backfilled as {length} bars, into the {length} table",
                        bar.expect("some")
                    );
                }
                Some(BackfillPlan {
                    chart_url: self.base_url.clone(),
                    length,
                    from_ms,
                    resume_ms: resume,
                    // Past the windows' lateness (5 s): the live bar of the window is
                    // stored first, the fetched one over it.
                    settle: std::time::Duration::from_secs(10),
                })
            }
        };
        let name = match (&self.source, &self.input) {
            (Some(name), _) => name.as_str(),
            (None, Some(path)) => crate::source_for_file(path),
            (None, None) => "synthetic",
        };
        let options = SourceOptions {
            input: self.input.clone(),
            csv: CsvOptions {
                symbol: self.symbol.clone(),
                company: self.company.clone(),
                adjusted: self.adjusted,
                max_record_bytes: Some(self.max_record_bytes),
            },
            synthetic: self.synthetic.config(),
            yahoo_url: self.base_url.clone(),
            tick_rate: self.tick_rate,
            feed_url: self.url.clone(),
            finnhub_token: self.finnhub_token.clone(),
            max_tick_age: self.max_tick_age,
            reconnect: crate::Reconnect {
                stall: std::time::Duration::from_secs_f64(self.feed_stall.max(0.1)),
                ..Default::default()
            },
            backfill,
        };
        crate::open(name, &options).await
    }
}

/// `7d`, `12h`, `30m`, `90s` (or a plain number of seconds).
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{text:?} is not a duration like 7d, 12h, 30m"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}
