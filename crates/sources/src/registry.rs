//! Choosing a source by name: one registration per source. Adding a source is
//! its own file plus one line in [`SOURCES`].

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use stockstream_core::Source;

use crate::{
    CsvError, CsvOptions, CsvSource, FetchError, FinnhubFeed, JsonLinesSource, LiveSource, Synthetic, SyntheticConfig,
    SyntheticTickSource, TickConfig, TickFile, YahooDownload, YahooFeed,
};

/// Everything a source may be opened with; each source reads what it needs.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// A file to read (`csv`, `jsonl`).
    pub input: Option<PathBuf>,
    /// How to read CSV files that do not name their company.
    pub csv: CsvOptions,
    /// The synthetic market, and the symbols and dates of a download.
    pub synthetic: SyntheticConfig,
    /// Yahoo Finance's address.
    pub yahoo_url: String,
    /// Synthetic ticks per second (all symbols together).
    pub tick_rate: f64,
    /// A live feed's address, in place of its own.
    pub feed_url: Option<String>,
    /// Finnhub's API token.
    pub finnhub_token: Option<crate::args::Secret>,
    /// How live feeds reconnect.
    pub reconnect: crate::Reconnect,
    /// A live feed's ticks older than this are refused.
    pub max_tick_age: std::time::Duration,
    /// What a live feed backfills, if anything.
    pub backfill: Option<crate::BackfillPlan>,
}

/// Why a source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file that cannot be read as that source.
    #[error(transparent)]
    File(#[from] CsvError),
    /// A download that failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Options that do not fit the source.
    #[error("{0}")]
    Options(String),
}

/// Opening a source: it may download, so it is async.
pub type Opener = for<'a> fn(&'a SourceOptions) -> BoxFuture<'a, Result<Box<dyn Source>, SourceError>>;

/// How a source is opened, under the name it is chosen by.
pub struct Registration {
    /// The name after `--source`.
    pub name: &'static str,
    /// One line for `--help` and errors.
    pub help: &'static str,
    /// Opens it; a file in an unknown layout or a failed download fails here,
    /// before anything is written anywhere.
    pub open: Opener,
}

fn input(options: &SourceOptions) -> Result<&std::path::Path, SourceError> {
    options.input.as_deref().ok_or_else(|| SourceError::Options("this source reads a file: pass --input FILE".into()))
}

/// Every source, by name.
pub const SOURCES: &[Registration] = &[
    Registration {
        name: "csv",
        help: "a CSV file: the original project's layout or a yfinance layout",
        open: |o| async move { Ok(Box::new(CsvSource::open_with(input(o)?, &o.csv)?) as Box<dyn Source>) }.boxed(),
    },
    Registration {
        name: "jsonl",
        help: "wire-format JSON lines, one message per line (.jsonl, .ndjson)",
        open: |o| {
            async move {
                let mut lines = JsonLinesSource::open(input(o)?)?;
                if let Some(limit) = o.csv.max_record_bytes {
                    lines = lines.with_max_record_bytes(limit);
                }
                Ok(Box::new(lines) as Box<dyn Source>)
            }
            .boxed()
        },
    },
    Registration {
        name: "synthetic",
        help: "SYNTHETIC data: made-up prices from a random market model",
        open: |o| {
            async move {
                Ok(Box::new(Synthetic::new(o.synthetic.clone()).map_err(SourceError::Options)?) as Box<dyn Source>)
            }
            .boxed()
        },
    },
    Registration {
        name: "yahoo",
        help: "bars downloaded from Yahoo Finance's chart API",
        open: |o| {
            async move {
                let s: &SyntheticConfig = &o.synthetic;
                let download =
                    YahooDownload::fetch(&o.yahoo_url, &s.symbols, s.start, s.end, s.interval, o.csv.adjusted).await?;
                Ok(Box::new(download) as Box<dyn Source>)
            }
            .boxed()
        },
    },
    Registration {
        name: "ticks",
        help: "a file of ticks: CSV (symbol,time,price[,size,day_volume,trade_id]) or JSON lines",
        open: |o| {
            async move { Ok(Box::new(TickFile::open(input(o)?, o.csv.max_record_bytes)?) as Box<dyn Source>) }.boxed()
        },
    },
    Registration {
        name: "synthetic-ticks",
        help: "SYNTHETIC ticks: live at --tick-rate, or --rows of them at once",
        open: |o| {
            async move {
                let s = &o.synthetic;
                let config = TickConfig {
                    symbols: s.symbols.clone(),
                    rate: o.tick_rate,
                    // The first session's open (09:30 New York in winter).
                    start_ms: s.start.and_hms_opt(14, 30, 0).expect("a valid time").and_utc().timestamp_millis(),
                    seed: s.seed,
                };
                // One clock for every symbol: history from the latest resume point.
                let history = o.backfill.as_ref().map(|p| match p.resume_ms.values().max() {
                    Some(&resumed) => p.from_ms.max(resumed + p.length.millis()),
                    None => p.from_ms,
                });
                let source = SyntheticTickSource::new(config, s.rows).map_err(SourceError::Options)?;
                Ok(Box::new(source.with_history(history)) as Box<dyn Source>)
            }
            .boxed()
        },
    },
    Registration {
        name: "yahoo-live",
        help: "live prices from Yahoo Finance's streamer (WebSocket, no key)",
        open: |o| {
            async move {
                let url = o.feed_url.clone().unwrap_or_else(|| crate::yahoo_stream::DEFAULT_STREAM_URL.into());
                let feed = YahooFeed { url, symbols: o.synthetic.symbols.clone() };
                let source = LiveSource::new(feed, o.reconnect).map_err(SourceError::Options)?;
                Ok(Box::new(source.with_max_tick_age(o.max_tick_age).with_backfill(o.backfill.clone()))
                    as Box<dyn Source>)
            }
            .boxed()
        },
    },
    Registration {
        name: "finnhub",
        help: "live trades from Finnhub's WebSocket (API token: --finnhub-token or STOCKSTREAM_FINNHUB_TOKEN)",
        open: |o| {
            async move {
                let token = o.finnhub_token.clone().ok_or_else(|| {
                    SourceError::Options(
                        "Finnhub needs an API token: pass --finnhub-token or set STOCKSTREAM_FINNHUB_TOKEN".into(),
                    )
                })?;
                let url = o.feed_url.clone().unwrap_or_else(|| crate::FINNHUB_URL.into());
                let feed = FinnhubFeed { url, token: token.0, symbols: o.synthetic.symbols.clone() };
                let source = LiveSource::new(feed, o.reconnect).map_err(SourceError::Options)?;
                Ok(Box::new(source.with_max_tick_age(o.max_tick_age).with_backfill(o.backfill.clone()))
                    as Box<dyn Source>)
            }
            .boxed()
        },
    },
];

/// The source a file is read with when none is named: by its extension.
pub fn source_for_file(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson") => "jsonl",
        _ => "csv",
    }
}

/// Opens the source registered as `name`.
pub async fn open(name: &str, options: &SourceOptions) -> Result<Box<dyn Source>, SourceError> {
    let Some(registration) = SOURCES.iter().find(|r| r.name == name) else {
        let known: Vec<&str> = SOURCES.iter().map(|r| r.name).collect();
        return Err(SourceError::Options(format!("unknown source {name:?}; known: {}", known.join(", "))));
    };
    (registration.open)(options).await
}
