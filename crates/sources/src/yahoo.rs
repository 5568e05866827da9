//! Yahoo Finance's chart API (`/v8/finance/chart/{symbol}`): the same data the
//! original project downloaded with yfinance, fetched directly.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use stockstream_core::{company_for_symbol, RawBar, Refusal, Reject, RejectKind};

use crate::synthetic::Interval;

/// Yahoo Finance's chart API.
pub const DEFAULT_BASE_URL: &str = "https://query1.finance.yahoo.com";
const USER_AGENT: &str = concat!("Mozilla/5.0 (compatible; stockstream/", env!("CARGO_PKG_VERSION"), ")");
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
/// Why a download failed.
pub enum FetchError {
    #[error("Yahoo Finance has no data for symbol {symbol}: {message}")]
    /// Yahoo does not know the symbol.
    #[allow(missing_docs)] // the fields are named in the message
    UnknownSymbol { symbol: String, message: String },
    #[error("cannot reach Yahoo Finance at {base}: {message}")]
    /// Yahoo could not be reached.
    #[allow(missing_docs)] // the fields are named in the message
    Unreachable { base: String, message: String },
    #[error("Yahoo Finance answered {status} for {symbol} after {attempts} attempt(s)")]
    /// Yahoo answered with an HTTP error.
    #[allow(missing_docs)] // the fields are named in the message
    Status { symbol: String, status: u16, attempts: u32 },
    #[error("unreadable reply from Yahoo Finance for {symbol}: {message}")]
    /// Yahoo answered something that is not a chart.
    #[allow(missing_docs)] // the fields are named in the message
    Reply { symbol: String, message: String },
}

#[derive(Debug, Deserialize)]
struct Reply {
    chart: Chart,
}

#[derive(Debug, Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<ChartError>,
}

#[derive(Debug, Deserialize)]
struct ChartError {
    code: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChartResult {
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<i64>,
    indicators: Indicators,
    #[serde(default)]
    events: Option<Events>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    gmtoffset: i64,
    symbol: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Indicators {
    quote: Vec<Quote>,
    #[serde(default)]
    adjclose: Option<Vec<AdjClose>>,
}

#[derive(Debug, Deserialize, Default)]
struct Quote {
    #[serde(default)]
    open: Vec<Option<f64>>,
    #[serde(default)]
    high: Vec<Option<f64>>,
    #[serde(default)]
    low: Vec<Option<f64>>,
    #[serde(default)]
    close: Vec<Option<f64>>,
    #[serde(default)]
    volume: Vec<Option<f64>>,
}

#[derive(Debug, Deserialize)]
struct AdjClose {
    #[serde(default)]
    adjclose: Vec<Option<f64>>,
}

#[derive(Debug, Deserialize)]
struct Events {
    #[serde(default)]
    splits: Option<std::collections::BTreeMap<String, Split>>,
}

#[derive(Debug, Deserialize)]
struct Split {
    date: i64,
    #[serde(rename = "splitRatio")]
    split_ratio: Option<String>,
}

/// What one request to the chart API asks.
struct ChartQuery {
    period1: i64,
    period2: i64,
    interval: String,
    pre_post: bool,
    attempts: u32,
}

/// One fetched bar, with Yahoo's adjusted close when it sent one.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The bar as read.
    pub raw: RawBar,
    /// Yahoo's adjusted close, when sent.
    pub adj_close: Option<f64>,
}

/// A client of Yahoo Finance's chart API.
pub struct Yahoo {
    client: reqwest::Client,
    base: String,
}

impl Yahoo {
    /// A client of the API at `base`.
    pub fn new(base: &str) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| FetchError::Unreachable { base: base.into(), message: e.to_string() })?;
        Ok(Yahoo { client, base: base.trim_end_matches('/').to_string() })
    }

    /// Bars of one symbol from `start` to `end` inclusive. Bars Yahoo sends
    /// entirely empty (no trade) are left out; a partly empty one keeps its gaps
    /// for the cleaner to fill. Adjusted, a bar without a positive adjusted
    /// close is refused (`bad_adjclose`): left as it is, it would sit
    /// unadjusted between adjusted ones.
    pub async fn fetch(
        &self,
        symbol: &str,
        start: NaiveDate,
        end: NaiveDate,
        interval: Interval,
        adjusted: bool,
    ) -> Result<Vec<Result<RawBar, Reject>>, FetchError> {
        let reply = self.chart(symbol, start, end, interval).await?;
        let bars = to_bars(symbol, reply, interval)?;
        let source = format!("{} {symbol}", self.base);
        Ok(bars.into_iter().map(|f| if adjusted { adjust(f, &source) } else { Ok(f.raw) }).collect())
    }

    async fn chart(
        &self,
        symbol: &str,
        start: NaiveDate,
        end: NaiveDate,
        interval: Interval,
    ) -> Result<Reply, FetchError> {
        let period1 = start.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
        let period2 = end.succ_opt().unwrap_or(end).and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
        let query =
            ChartQuery { period1, period2, interval: interval.to_string(), pre_post: false, attempts: ATTEMPTS };
        self.chart_of(symbol, &query).await
    }

    /// Closed bars of `length` (`1m`, `5m`, `1h`) starting in `[from_ms,
    /// to_ms)`, pre- and post-market included, at most `before_ms` closed
    /// (the bar in progress is no bar yet), in one request; a failure is the
    /// caller's to retry.
    pub async fn bars_between(
        &self,
        symbol: &str,
        from_ms: i64,
        to_ms: i64,
        length: stockstream_core::BarLength,
        before_ms: i64,
    ) -> Result<Vec<Fetched>, FetchError> {
        let query = ChartQuery {
            period1: from_ms.div_euclid(1000),
            period2: (to_ms + 999).div_euclid(1000),
            interval: length.name(),
            pre_post: true,
            attempts: 1,
        };
        let reply = self.chart_of(symbol, &query).await?;
        let mut bars = to_bars(symbol, reply, Interval::Minute)?;
        bars.retain(|f| {
            let start =
                f.raw.date.as_deref().and_then(|d| d.parse().ok()).map(|t| stockstream_core::fetched::ts_ms(&t));
            start.is_some_and(|s| s >= from_ms && s < to_ms && s + length.millis() <= before_ms)
        });
        Ok(bars)
    }

    async fn chart_of(&self, symbol: &str, q: &ChartQuery) -> Result<Reply, FetchError> {
        let url = format!("{}/v8/finance/chart/{}", self.base, symbol);
        let query = [
            ("period1", q.period1.to_string()),
            ("period2", q.period2.to_string()),
            ("interval", q.interval.clone()),
            ("includePrePost", q.pre_post.to_string()),
            ("events", "div,splits".to_string()),
            ("includeAdjustedClose", "true".to_string()),
        ];
        let attempts = q.attempts.max(1);
        let mut last_status = 0;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let response = match self.client.get(&url).query(&query).send().await {
                Ok(r) => r,
                Err(e) if attempt + 1 < attempts => {
                    tracing::warn!("Yahoo Finance request for {symbol} failed, will retry: {e}");
                    continue;
                }
                Err(e) => return Err(FetchError::Unreachable { base: self.base.clone(), message: e.to_string() }),
            };
            let status = response.status();
            if status.as_u16() == 429 || status.is_server_error() {
                tracing::warn!("Yahoo Finance answered {status} for {symbol}, will retry");
                last_status = status.as_u16();
                continue;
            }
            let text = response
                .text()
                .await
                .map_err(|e| FetchError::Reply { symbol: symbol.into(), message: e.to_string() })?;
            let reply: Reply = serde_json::from_str(&text)
                .map_err(|e| FetchError::Reply { symbol: symbol.into(), message: format!("{e} (HTTP {status})") })?;
            if let Some(err) = &reply.chart.error {
                return Err(FetchError::UnknownSymbol {
                    symbol: symbol.into(),
                    message: format!(
                        "{}: {}",
                        err.code.as_deref().unwrap_or("error"),
                        err.description.as_deref().unwrap_or("no description")
                    ),
                });
            }
            return Ok(reply);
        }
        Err(FetchError::Status { symbol: symbol.into(), status: last_status, attempts })
    }
}

fn to_bars(symbol: &str, reply: Reply, interval: Interval) -> Result<Vec<Fetched>, FetchError> {
    let bad = |message: &str| FetchError::Reply { symbol: symbol.into(), message: message.into() };
    let result =
        reply.chart.result.and_then(|mut r| (!r.is_empty()).then(|| r.remove(0))).ok_or_else(|| bad("no result"))?;
    // Every number from a server is checked: a time zone is within ±18 h.
    if !(-18 * 3600..=18 * 3600).contains(&result.meta.gmtoffset) {
        return Err(bad(&format!("meta.gmtoffset {} is not a time zone's offset in seconds", result.meta.gmtoffset)));
    }
    let symbol = result.meta.symbol.clone().unwrap_or_else(|| symbol.to_string());
    let company = company_for_symbol(&symbol);
    if let Some(splits) = result.events.as_ref().and_then(|e| e.splits.as_ref()) {
        for s in splits.values() {
            tracing::info!(
                "{symbol}: split {} on {} (Yahoo's prices are split-adjusted)",
                s.split_ratio.as_deref().unwrap_or("?"),
                DateTime::<Utc>::from_timestamp(s.date, 0).map(|d| d.date_naive().to_string()).unwrap_or_default()
            );
        }
    }
    let quote = result.indicators.quote.into_iter().next().unwrap_or_default();
    let adj: Vec<Option<f64>> =
        result.indicators.adjclose.and_then(|a| a.into_iter().next()).map(|a| a.adjclose).unwrap_or_default();
    let at = |v: &Vec<Option<f64>>, i: usize| v.get(i).copied().flatten();
    let mut out = Vec::with_capacity(result.timestamp.len());
    for (i, &t) in result.timestamp.iter().enumerate() {
        let (open, high, low, close, volume) =
            (at(&quote.open, i), at(&quote.high, i), at(&quote.low, i), at(&quote.close, i), at(&quote.volume, i));
        if open.is_none() && high.is_none() && low.is_none() && close.is_none() {
            continue;
        }
        let instant = DateTime::<Utc>::from_timestamp(t, 0).ok_or_else(|| bad("timestamp out of range"))?;
        let date = if interval == Interval::Day {
            // The exchange's local date of the session.
            (instant + chrono::Duration::seconds(result.meta.gmtoffset)).date_naive().to_string()
        } else {
            stockstream_core::Ts::Instant(instant).to_string()
        };
        out.push(Fetched {
            raw: RawBar {
                date: Some(date),
                open,
                high,
                low,
                close,
                volume,
                company: Some(company.clone()),
                symbol: Some(symbol.clone()),
                vwap: None,
                trades: None,
            },
            adj_close: at(&adj, i),
        });
    }
    Ok(out)
}

/// A fetched bar scaled by its adjusted close (open, high and low alike), or
/// refused when that close is missing or not a positive number.
fn adjust(f: Fetched, source: &str) -> Result<RawBar, Reject> {
    let mut raw = f.raw;
    let Some(close) = raw.close else { return Ok(raw) };
    match f.adj_close {
        Some(adj) if adj.is_finite() && adj > 0.0 => {
            let factor = adj / close;
            for v in [&mut raw.open, &mut raw.high, &mut raw.low].into_iter().flatten() {
                *v *= factor;
            }
            raw.close = Some(adj);
            Ok(raw)
        }
        adj => {
            let shown = adj.map_or("missing".to_string(), |a| a.to_string());
            let reason = format!(
                "{} {}: adjusted close {shown}, so the bar cannot be adjusted",
                raw.symbol.as_deref().unwrap_or(""),
                raw.date.as_deref().unwrap_or("")
            );
            let mut original = Vec::new();
            stockstream_core::encode_raw_into(&raw, &mut original);
            Err(Refusal::new(RejectKind::BadAdjclose, reason).into_reject(source, original))
        }
    }
}

/// Every symbol's bars downloaded from the chart API, then streamed as a source.
pub struct YahooDownload {
    bars: Vec<Result<RawBar, Reject>>,
    base: String,
    description: String,
    interval: Interval,
}

impl YahooDownload {
    /// Downloads every symbol's bars, one symbol after the other.
    pub async fn fetch(
        base: &str,
        symbols: &[String],
        start: NaiveDate,
        end: NaiveDate,
        interval: Interval,
        adjusted: bool,
    ) -> Result<Self, FetchError> {
        let yahoo = Yahoo::new(base)?;
        let mut bars = Vec::new();
        let symbols: Vec<&str> = symbols.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
        for symbol in &symbols {
            let got = yahoo.fetch(symbol, start, end, interval, adjusted).await?;
            tracing::info!("{symbol}: {} bars from Yahoo Finance", got.len());
            bars.extend(got);
        }
        let description = format!("Yahoo Finance ({} symbols, {start}..{end}, {interval})", symbols.len());
        Ok(YahooDownload { bars, base: base.to_string(), description, interval })
    }

    /// The bars downloaded, and the rows refused.
    pub fn into_bars(self) -> Vec<Result<RawBar, Reject>> {
        self.bars
    }
}

impl stockstream_core::Source for YahooDownload {
    fn name(&self) -> &'static str {
        "yahoo"
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    fn expected(&self) -> Option<u64> {
        Some(self.bars.len() as u64)
    }

    fn interval(&self) -> Option<stockstream_core::BarLength> {
        Some(self.interval.length())
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, stockstream_core::Item> {
        use futures_util::StreamExt;
        let base = self.base;
        futures_util::stream::iter(self.bars.into_iter().map(move |bar| match bar {
            Ok(raw) => {
                let source = format!("{base} {}", raw.symbol.as_deref().unwrap_or(""));
                stockstream_core::Item::Raw(stockstream_core::SourceRecord { raw, source })
            }
            Err(reject) => stockstream_core::Item::Reject(reject),
        }))
        .boxed()
    }
}
