//! The HTTP routes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use stockstream_analytics::{indicator_rows, insights, IndicatorRow, MarketStats, MarketStatsBuilder};
use stockstream_core::{encode, Bar, DateRange, StoreError, Ts};
use stockstream_pipeline::AnalyticsStage;
use stockstream_store::Store;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use crate::hub::Hub;

/// Renders the pipeline's counters and histograms in Prometheus' text format.
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// What every route reads.
#[derive(Clone)]
pub struct AppState {
    /// The bars.
    pub store: Arc<dyn Store>,
    /// Live events and recent alerts.
    pub hub: Arc<Hub>,
    /// Live indicators, as the pipeline computed them.
    pub analytics: Arc<AnalyticsStage>,
    /// The pipeline's counters.
    pub metrics: MetricsText,
    /// The market statistics last computed, reused while the store is unchanged.
    stats: Arc<StatsCache>,
    /// What clients may hold.
    limits: crate::Limits,
    /// One permit per client of the live event stream.
    subscribers: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(store: Arc<dyn Store>, hub: Arc<Hub>, analytics: Arc<AnalyticsStage>, metrics: MetricsText) -> Self {
        let limits = crate::Limits::default();
        let subscribers = Arc::new(tokio::sync::Semaphore::new(limits.max_subscribers));
        AppState { store, hub, analytics, metrics, stats: Arc::default(), limits, subscribers }
    }

    /// The same state within other limits.
    pub fn with_limits(mut self, limits: crate::Limits) -> Self {
        self.subscribers = Arc::new(tokio::sync::Semaphore::new(limits.max_subscribers));
        self.limits = limits;
        self
    }
}

/// Market statistics read every bar: computed once per range and store version.
/// A store that cannot tell its version (DynamoDB) is read again after
/// [`UNVERSIONED_FOR`].
#[derive(Default)]
struct StatsCache {
    last: tokio::sync::Mutex<Option<CachedStats>>,
}

struct CachedStats {
    range: (String, String),
    version: Option<u64>,
    at: std::time::Instant,
    stats: Arc<MarketStats>,
}

const UNVERSIONED_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl StatsCache {
    async fn get(&self, store: &dyn Store, range: &DateRange) -> Result<Arc<MarketStats>, ApiError> {
        // One computation at a time: concurrent requests wait for it, not repeat it.
        let mut last = self.last.lock().await;
        let version = store.version().await?;
        let key = (range.lower(), range.upper());
        if let Some(c) = last.as_ref() {
            let fresh = match version {
                Some(v) => c.version == Some(v),
                None => c.at.elapsed() < UNVERSIONED_FOR,
            };
            if fresh && c.range == key {
                return Ok(c.stats.clone());
            }
        }
        let stats = Arc::new(market_stats_of(store, range).await?);
        *last = Some(CachedStats { range: key, version, at: std::time::Instant::now(), stats: stats.clone() });
        Ok(stats)
    }
}

/// A JSON error naming what was wrong.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    parameter: Option<&'static str>,
}

impl ApiError {
    fn bad(parameter: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), parameter: Some(parameter) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.parameter {
            Some(p) => json!({ "error": self.message, "parameter": p }),
            None => json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// What a client is told of a failure inside: that it happened, not where
/// (paths, SQL and addresses stay in the server's log).
const INTERNAL: &str = "internal error; the server's log has the details";

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("request failed: {e:#}");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: INTERNAL.into(), parameter: None }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("request failed: {e}");
        match e.is_transient() {
            true => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the store is unavailable for now; try again".into(),
                parameter: None,
            },
            false => ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: INTERNAL.into(), parameter: None },
        }
    }
}

/// Every response: a content policy that keeps the dashboard to this server,
/// no content sniffing; and errors the framework answers itself (a path or
/// query that is not UTF-8, say) in the same JSON shape as the API's own.
async fn harden(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            // No inline script: the dashboard's is a file of its own. Styles
            // may be inline: Plotly.js writes its own <style> and style
            // attributes as it draws.
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    parts.headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    let plain = parts.headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
    if parts.status.is_client_error() && plain {
        let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
        let message = String::from_utf8_lossy(&text).into_owned();
        let mut json = ApiError { status: parts.status, message, parameter: None }.into_response();
        for name in [header::CONTENT_SECURITY_POLICY, header::X_CONTENT_TYPE_OPTIONS] {
            if let Some(v) = parts.headers.get(&name) {
                json.headers_mut().insert(name, v.clone());
            }
        }
        return json;
    }
    Response::from_parts(parts, body)
}

type Params = Query<HashMap<String, String>>;

fn ts_param(params: &HashMap<String, String>, name: &'static str) -> Result<Option<Ts>, ApiError> {
    params
        .get(name)
        .map(|v| v.parse::<Ts>().map_err(|e| ApiError::bad(name, format!("invalid {name}: {e}"))))
        .transpose()
}

fn range(params: &HashMap<String, String>) -> Result<DateRange, ApiError> {
    let (from, to) = (ts_param(params, "from")?, ts_param(params, "to")?);
    DateRange::checked(from, to).map_err(|e| ApiError::bad("from", e))
}

fn limit(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => Ok(n),
            _ => Err(ApiError::bad("limit", format!("invalid limit {v:?}: expected a whole number from 1 to {max}"))),
        },
    }
}

/// The store of the bars a request names with `interval` (`1m`: bars made
/// from ticks), or the served one.
async fn store_for(s: &AppState, params: &HashMap<String, String>) -> Result<Arc<dyn Store>, ApiError> {
    let Some(interval) = params.get("interval") else { return Ok(s.store.clone()) };
    let Ok(length) = interval.parse::<stockstream_window::BarLength>() else {
        return Err(ApiError::bad(
            "interval",
            format!("invalid interval {interval:?}: expected 1s, 1m, 5m, 15m, 1h or 1d"),
        ));
    };
    s.store.interval(&length.name()).await.map_err(|e| {
        tracing::debug!("no {interval} bars: {e}");
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no {interval} bars stored"),
            parameter: Some("interval"),
        }
    })
}

/// The stored company a path names (by name or symbol), or 404.
async fn company(store: &dyn Store, name: &str) -> Result<String, ApiError> {
    store.find_company(name).await?.ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("unknown company {name:?}"),
        parameter: None,
    })
}

/// A bar in the wire format, as the bus carries it.
fn wire(bar: &Bar) -> serde_json::Value {
    serde_json::from_slice(&encode(bar)).unwrap_or(serde_json::Value::Null)
}

/// The companies with bars (of `interval`), a page at a time (`limit`,
/// default 1,000, `after` a name; a `Link` header names the next page):
/// none when no bars of it are stored. With `name`: the stored company that
/// name or symbol stands for, if any.
async fn companies(State(s): State<AppState>, Query(p): Params) -> Result<Response, ApiError> {
    let limit = limit(&p, 1000, 10_000)?;
    let store = match store_for(&s, &p).await {
        Ok(store) => store,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(Json(Vec::<String>::new()).into_response()),
        Err(e) => return Err(e),
    };
    if let Some(name) = p.get("name") {
        // The company a name or symbol stands for, if stored: a lookup, not a page.
        return Ok(Json(store.find_company(name).await?.into_iter().collect::<Vec<_>>()).into_response());
    }
    let page = store.companies_page(p.get("after").map(String::as_str), limit).await?;
    Ok(with_next_link(Json(&page).into_response(), "/api/companies", &page, limit, &p))
}

/// A page of companies' answer with a `Link` to the next page (`after` its
/// last company), when the page is full.
fn with_next_link(
    mut response: Response,
    route: &str,
    page: &[String],
    limit: usize,
    p: &HashMap<String, String>,
) -> Response {
    if let (true, Some(last)) = (page.len() == limit, page.last()) {
        let mut next = form_urlencoded::Serializer::new(String::new());
        next.append_pair("after", last).append_pair("limit", &limit.to_string());
        if let Some(interval) = p.get("interval") {
            next.append_pair("interval", interval);
        }
        let link = format!("<{route}?{}>; rel=\"next\"", next.finish());
        if let Ok(value) = header::HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// Bars read before a page of indicators so that they are those of the whole history.
const INDICATOR_WARM_UP: usize = 600;

/// Which bars a request asks for: a range, narrowed by a cursor (`before` or
/// `after` a bar's date, exclusive) and a `limit` (the newest, or with
/// `after` the oldest, that many).
enum Page {
    All(DateRange),
    Newest(DateRange, usize),
    Oldest(DateRange, usize),
}

fn page(params: &HashMap<String, String>) -> Result<Page, ApiError> {
    let (mut range, limit) = (range(params)?, limit(params, usize::MAX, usize::MAX)?);
    let (before, after) = (ts_param(params, "before")?, ts_param(params, "after")?);
    if before.is_some() && after.is_some() {
        return Err(ApiError::bad("before", "give before or after, not both"));
    }
    // Exclusive cursors as inclusive bounds: bars start on whole seconds.
    let step = |t: Ts, sign: i64| match t {
        Ts::Date(d) => Ts::Date(d + chrono::Duration::days(sign)),
        Ts::Instant(i) => Ts::Instant(i + chrono::Duration::seconds(sign)),
    };
    if let Some(b) = before {
        let to = step(b, -1);
        range.to = Some(range.to.map_or(to, |t| t.min(to)));
    }
    if let Some(a) = after {
        let from = step(a, 1);
        range.from = Some(range.from.map_or(from, |f| f.max(from)));
        if limit != usize::MAX {
            return Ok(Page::Oldest(range, limit));
        }
    }
    Ok(match limit {
        usize::MAX => Page::All(range),
        limit => Page::Newest(range, limit),
    })
}

/// A page of a company's bars, oldest first, read with the limit in the query.
async fn bars_page(store: &dyn Store, company: &str, page: &Page) -> Result<Vec<Bar>, StoreError> {
    match page {
        Page::All(range) => store.range(company, range).await,
        Page::Newest(range, limit) => store.newest(company, range, *limit).await,
        Page::Oldest(range, limit) => store.oldest(company, range, *limit).await,
    }
}

async fn bars(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (page, store) = (page(&p)?, store_for(&s, &p).await?);
    let company = company(store.as_ref(), &name).await?;
    let bars = bars_page(store.as_ref(), &company, &page).await?;
    Ok(Json(bars.iter().map(wire).collect()))
}

async fn indicators(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Json<Vec<IndicatorRow>>, ApiError> {
    let (page, store) = (page(&p)?, store_for(&s, &p).await?);
    let company = company(store.as_ref(), &name).await?;
    let bars = bars_page(store.as_ref(), &company, &page).await?;
    let Some(first) = bars.first() else { return Ok(Json(Vec::new())) };
    // The indicators of a page need the bars before it: 600 more settle
    // every smoothing (EMA 26, RSI and ATR's Wilder 14) to double precision.
    let warm_up = match page {
        Page::All(_) => Vec::new(),
        Page::Newest(..) | Page::Oldest(..) => {
            let before = DateRange { from: None, to: Some(first.ts) };
            let mut earlier = store.newest(&company, &before, INDICATOR_WARM_UP + 1).await?;
            earlier.retain(|b| b.ts < first.ts);
            earlier
        }
    };
    let skip = warm_up.len();
    let series: Vec<Bar> = warm_up.into_iter().chain(bars).collect();
    Ok(Json(indicator_rows(&series)[skip..].to_vec()))
}

/// Companies' latest bars with their indicators, a page of companies at a
/// time (`limit`, default 100, at most 1000; `after` a name) with a `Link` to
/// the next: a store of 100,000 companies is never read whole by one request.
async fn latest(State(s): State<AppState>, Query(p): Params) -> Result<Response, ApiError> {
    let limit = limit(&p, 100, 1000)?;
    let store = store_for(&s, &p).await?;
    let page = store.companies_page(p.get("after").map(String::as_str), limit).await?;
    let live: HashMap<String, IndicatorRow> =
        s.analytics.latest_of(&page).into_iter().map(|r| (r.company.clone(), r)).collect();
    let rows = latest_rows(store.as_ref(), &page, &live).await?;
    Ok(with_next_link(Json(rows).into_response(), "/api/latest", &page, limit, &p))
}

/// Companies whose latest bars `/api/latest` reads at once.
const LATEST_READS_IN_FLIGHT: usize = 16;

/// Each company's latest bar with its indicators: live ones when the stream
/// has them, else computed over the warm-up's worth of bars before it, as a
/// page of `/api/indicators` is (never the whole history).
async fn latest_rows(
    store: &dyn Store,
    companies: &[String],
    live: &HashMap<String, IndicatorRow>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    use futures_util::TryStreamExt;
    // A few companies' reads in flight at once, answered in the page's order:
    // a page of 100 companies over DynamoDB is 200 Queries.
    let reads = futures_util::StreamExt::map(futures_util::stream::iter(companies.to_vec()), |company| async move {
        latest_row(store, &company, live).await
    });
    let rows: Vec<Option<serde_json::Value>> =
        futures_util::StreamExt::buffered(reads, LATEST_READS_IN_FLIGHT).try_collect().await?;
    Ok(rows.into_iter().flatten().collect())
}

/// One company's latest bar with its indicators (None: no bar).
async fn latest_row(
    store: &dyn Store,
    company: &str,
    live: &HashMap<String, IndicatorRow>,
) -> Result<Option<serde_json::Value>, StoreError> {
    let Some(bar) = store.newest(company, &DateRange::default(), 1).await?.pop() else { return Ok(None) };
    let row = match live.get(&bar.company).filter(|r| r.date == bar.ts.to_string()) {
        Some(r) => Some(r.clone()),
        None => {
            let upto = DateRange { from: None, to: Some(bar.ts) };
            indicator_rows(&store.newest(&bar.company, &upto, INDICATOR_WARM_UP + 1).await?).pop()
        }
    };
    Ok(Some(json!({ "bar": wire(&bar), "indicators": row })))
}

/// Companies' statistics a page at a time (`limit`, default 100, and `after`
/// a name), with the return correlations and `next`, the `after` of the next
/// page (null on the last).
async fn stats(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = limit(&p, 100, 1000)?;
    let stats = s.stats.get(s.store.as_ref(), &range(&p)?).await?;
    let start = match p.get("after") {
        Some(after) => stats.companies.partition_point(|c| c.company.as_str() <= after.as_str()),
        None => 0,
    };
    let page = &stats.companies[start..(start + limit).min(stats.companies.len())];
    let next = (start + page.len() < stats.companies.len()).then(|| page.last().map(|c| c.company.clone())).flatten();
    Ok(Json(json!({
        "companies": page,
        "names": stats.names,
        "return_correlation": stats.return_correlation,
        "next": next,
    })))
}

/// The market statistics of a store's bars in `range`, read one company at a
/// time: memory holds one company's bars and each company's statistics.
pub async fn market_stats_of(store: &dyn Store, range: &DateRange) -> Result<MarketStats, StoreError> {
    let companies = store.companies().await?;
    stats_of(store, range, MarketStatsBuilder::with_capacity(companies.len()), companies).await
}

/// [`market_stats_of`] keeping the distributions (`describe`, box plots) of
/// the companies in `detailed` only: what insights need of every company is
/// the summary (a run's statistics of 100,000 companies in 2/5 of the memory).
pub async fn market_summaries_of(
    store: &dyn Store,
    range: &DateRange,
    detailed: std::collections::HashSet<String>,
) -> Result<MarketStats, StoreError> {
    let companies = store.companies().await?;
    let builder = MarketStatsBuilder::with_capacity(companies.len()).summaries_but(detailed);
    stats_of(store, range, builder, companies).await
}

async fn stats_of(
    store: &dyn Store,
    range: &DateRange,
    mut builder: MarketStatsBuilder,
    companies: Vec<String>,
) -> Result<MarketStats, StoreError> {
    for company in companies {
        builder.push(&store.range(&company, range).await?);
    }
    Ok(builder.finish())
}

async fn insights_route(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let stats = s.stats.get(s.store.as_ref(), &range(&p)?).await?;
    Ok(Json(json!({ "insights": insights(&stats) })))
}

async fn alerts(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let (range, limit, store) = (range(&p)?, limit(&p, 100, 1000)?, store_for(&s, &p).await?);
    let company = match p.get("company") {
        Some(name) => Some(company(store.as_ref(), name).await?),
        None => None,
    };
    let alerts = store.alerts(&stockstream_core::AlertQuery { company, range, limit }).await?;
    Ok(Json(serde_json::to_value(alerts).map_err(anyhow::Error::from)?))
}

async fn stream(
    State(s): State<AppState>,
) -> Result<Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Ok(permit) = s.subscribers.clone().try_acquire_owned() else {
        let cap = s.limits.max_subscribers;
        tracing::warn!("live event stream: limit of {cap} subscribers reached, refusing one");
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the live event stream has its {cap} subscribers; try again later"),
            parameter: None,
        });
    };
    let events = BroadcastStream::new(s.hub.subscribe()).filter_map(move |e| {
        // The permit lives as long as the stream: a client gone frees it.
        let _held = &permit;
        // A subscriber too slow to keep up skips what it missed.
        let event = e.ok()?;
        let kind = match &event {
            crate::Event::Bar { .. } => "bar",
            crate::Event::Alert(_) => "alert",
            crate::Event::Forming { .. } => "forming",
        };
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok(SseEvent::default().event(kind).data(data)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// DynamoDB's requests and consumed capacity by operation, when this process
/// has used it.
fn dynamodb_metrics(out: &mut String) {
    use std::fmt::Write;
    let usage = stockstream_store::dynamodb_usage();
    if usage.is_empty() {
        return;
    }
    out.push_str("# HELP stockstream_dynamodb_requests_total DynamoDB requests answered, by operation.\n");
    out.push_str("# TYPE stockstream_dynamodb_requests_total counter\n");
    for (op, u) in &usage {
        let _ = writeln!(out, "stockstream_dynamodb_requests_total{{operation=\"{op}\"}} {}", u.requests);
    }
    out.push_str(
        "# HELP stockstream_dynamodb_capacity_units_total Capacity units DynamoDB reported consumed, by operation.\n",
    );
    out.push_str("# TYPE stockstream_dynamodb_capacity_units_total counter\n");
    for (op, u) in &usage {
        let kind = if stockstream_store::is_read(op) { "read" } else { "write" };
        let _ = writeln!(
            out,
            "stockstream_dynamodb_capacity_units_total{{operation=\"{op}\",kind=\"{kind}\"}} {}",
            u.capacity_units
        );
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut text = (s.metrics)();
    s.hub.bus_to_event.render(
        "stockstream_bus_to_event_seconds",
        "Time from a bar entering the bus to its server-sent event.",
        &mut text,
    );
    s.hub.tick_to_event.render(
        "stockstream_tick_to_event_seconds",
        "Time from a tick entering the bus to the server-sent event of the bar it moved.",
        &mut text,
    );
    dynamodb_metrics(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// What the live stream carries: bars of which length.
async fn live(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "interval": s.hub.interval() }))
}

async fn dashboard() -> Html<&'static str> {
    Html(crate::assets::DASHBOARD_PAGE.as_str())
}

/// Every route over this state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route(crate::assets::PLOTLY_PATH, get(crate::assets::plotly_js))
        .route("/assets/plotly-LICENSE.txt", get(crate::assets::plotly_licence))
        .route(crate::assets::DASHBOARD_JS_PATH.as_str(), get(crate::assets::dashboard_js))
        .route(crate::assets::DASHBOARD_CSS_PATH.as_str(), get(crate::assets::dashboard_css))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/companies", get(companies))
        .route("/api/bars/{company}", get(bars))
        .route("/api/indicators/{company}", get(indicators))
        .route("/api/latest", get(latest))
        .route("/api/live", get(live))
        .route("/api/stats", get(stats))
        .route("/api/insights", get(insights_route))
        .route("/api/alerts", get(alerts))
        .route("/api/stream", get(stream))
        .fallback(|| async {
            ApiError { status: StatusCode::NOT_FOUND, message: "no such route".into(), parameter: None }
        })
        .layer(axum::middleware::map_response(harden))
        .with_state(state)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = state.limits;
    crate::listen::serve_limited(listener, router(state), limits, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use stockstream_store::SqliteStore;

    use super::*;

    /// The SQLite store, counting the whole-range reads that statistics make
    /// and the bars every read returns.
    struct Counted {
        inner: SqliteStore,
        ranges: AtomicUsize,
        bars_read: AtomicUsize,
    }

    #[async_trait]
    impl Store for Counted {
        async fn upsert(&self, bars: Arc<[Bar]>) -> Result<(), StoreError> {
            self.inner.upsert(bars).await
        }
        async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
            self.ranges.fetch_add(1, Ordering::SeqCst);
            let bars = self.inner.range(company, range).await?;
            self.bars_read.fetch_add(bars.len(), Ordering::SeqCst);
            Ok(bars)
        }
        async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
            let bars = self.inner.newest(company, range, limit).await?;
            self.bars_read.fetch_add(bars.len(), Ordering::SeqCst);
            Ok(bars)
        }
        async fn version(&self) -> Result<Option<u64>, StoreError> {
            self.inner.version().await
        }
        async fn latest(&self) -> Result<Vec<Bar>, StoreError> {
            self.inner.latest().await
        }
        async fn companies(&self) -> Result<Vec<String>, StoreError> {
            self.inner.companies().await
        }
        async fn count(&self) -> Result<u64, StoreError> {
            self.inner.count().await
        }
    }

    fn bar(company: &str, day: u32, close: f64) -> Bar {
        Bar {
            company: company.into(),
            ts: format!("2024-01-{day:02}").parse().unwrap(),
            symbol: "X".into(),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }

    #[tokio::test]
    async fn statistics_are_computed_once_per_store_version_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Arc::new(Counted {
            inner: SqliteStore::open(&path).unwrap(),
            ranges: AtomicUsize::new(0),
            bars_read: AtomicUsize::new(0),
        });
        store.upsert((1..=20).map(|d| bar("A", d, 10.0 + d as f64)).collect::<Vec<_>>().into()).await.unwrap();
        let cache = StatsCache::default();
        let all = DateRange::default();
        let first = cache.get(store.as_ref(), &all).await.unwrap();
        assert_eq!(store.ranges.load(Ordering::SeqCst), 1);
        let again = cache.get(store.as_ref(), &all).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "an unchanged store is not read again");
        assert_eq!(store.ranges.load(Ordering::SeqCst), 1);

        // A write through another connection (another process) is seen.
        SqliteStore::open(&path).unwrap().upsert(vec![bar("B", 1, 5.0), bar("B", 2, 6.0)].into()).await.unwrap();
        let after = cache.get(store.as_ref(), &all).await.unwrap();
        assert_eq!(after.companies.len(), 2);
        // So is one through this connection, and another range is its own entry.
        store.upsert(vec![bar("C", 1, 5.0)].into()).await.unwrap();
        assert_eq!(cache.get(store.as_ref(), &all).await.unwrap().companies.len(), 3);
        let bars = |s: Arc<MarketStats>| s.companies.iter().map(|c| c.bars).sum::<usize>();
        assert_eq!(bars(cache.get(store.as_ref(), &all).await.unwrap()), 23);
        let first_day = DateRange::new(None, Some("2024-01-01".parse().unwrap()));
        assert_eq!(bars(cache.get(store.as_ref(), &first_day).await.unwrap()), 3);
    }

    #[tokio::test]
    async fn the_latest_rows_read_a_warm_up_not_the_whole_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Counted {
            inner: SqliteStore::open(&dir.path().join("l.db")).unwrap(),
            ranges: AtomicUsize::new(0),
            bars_read: AtomicUsize::new(0),
        };
        let start: chrono::NaiveDate = "2000-01-03".parse().unwrap();
        let history: Vec<Bar> = (0..5_000)
            .map(|i| {
                let close = 100.0 + 20.0 * (i as f64 / 37.0).sin() + i as f64 * 0.01;
                Bar {
                    company: "A".into(),
                    symbol: "A".into(),
                    ts: Ts::Date(start + chrono::Days::new(i)),
                    open: close - 0.5,
                    high: close + 1.0,
                    low: close - 1.0,
                    close,
                    volume: 1000.0 + i as f64,
                }
            })
            .collect();
        store.upsert(history.clone().into()).await.unwrap();
        store.bars_read.store(0, Ordering::SeqCst);
        let rows = latest_rows(&store, &["A".to_string()], &HashMap::new()).await.unwrap();
        assert_eq!(store.ranges.load(Ordering::SeqCst), 0, "a whole-range read");
        assert!(store.bars_read.load(Ordering::SeqCst) <= 2 * (INDICATOR_WARM_UP + 1), "read more than a warm-up");
        let whole = indicator_rows(&history).pop().unwrap();
        let got = &rows[0]["indicators"];
        for (name, want) in [("sma50", whole.sma50), ("rsi14", whole.rsi14), ("ema26", whole.ema26)] {
            let (got, want) = (got[name].as_f64().unwrap(), want.unwrap());
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "{name}: {got} over the warm-up, {want} over the whole history"
            );
        }
    }
}
