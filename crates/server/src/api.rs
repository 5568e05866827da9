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
    stats: Arc<crate::stats::StatsCache>,
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

impl From<crate::stats::StatsError> for ApiError {
    fn from(e: crate::stats::StatsError) -> Self {
        match e {
            crate::stats::StatsError::Store(e) => e.into(),
            crate::stats::StatsError::TooManyBars => ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!(
                    "the range holds more than {} bars: narrow it (`from`, `to`), or run `stockstream insights`",
                    crate::stats::MAX_RANGED_BARS
                ),
                parameter: Some("from"),
            },
        }
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
            format!("invalid interval {interval:?}: expected 1s, 1m, 5m, 15m, 30m, 1h or 1d"),
        ));
    };
    stockstream_store::interval_view(s.store.as_ref(), length).await.map_err(|e| {
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
/// `VWAP` and `Trades` are null where unknown (the bus omits them).
fn wire(bar: &Bar) -> serde_json::Value {
    let mut value = serde_json::from_slice(&encode(bar)).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.entry("VWAP").or_insert(serde_json::Value::Null);
        object.entry("Trades").or_insert(serde_json::Value::Null);
    }
    value
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
    let mut rows: Vec<serde_json::Value> = bars.iter().map(wire).collect();
    // A bucket made from shorter bars is still forming until its end.
    let length = p.get("interval").and_then(|i| i.parse::<stockstream_window::BarLength>().ok());
    if let (Some(length), Some(last), Some(row)) = (length, bars.last(), rows.last_mut()) {
        let end = stockstream_core::rollup::bucket_end(length, &last.ts);
        if end.is_some_and(|end| end > chrono::Utc::now().timestamp_millis()) {
            row["partial"] = json!(true);
        }
    }
    Ok(Json(serde_json::Value::Array(rows)))
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
    let bars: Vec<Bar> =
        store.catalog(p.get("after").map(String::as_str), limit).await?.into_iter().map(|e| e.last_bar).collect();
    let page: Vec<String> = bars.iter().map(|b| b.company.clone()).collect();
    let live: HashMap<String, IndicatorRow> =
        s.analytics.latest_of(&page).into_iter().map(|r| (r.company.clone(), r)).collect();
    let rows = latest_rows(store.as_ref(), bars, &live).await?;
    Ok(with_next_link(Json(rows).into_response(), "/api/latest", &page, limit, &p))
}

/// Companies whose indicators `/api/latest` reads at once.
const LATEST_READS_IN_FLIGHT: usize = 16;

/// Each company's latest bar (from the catalog) with its indicators: live
/// ones when the stream has them, else computed over the warm-up's worth of
/// bars before it, as a page of `/api/indicators` is (never the whole history).
async fn latest_rows(
    store: &dyn Store,
    latest: Vec<Bar>,
    live: &HashMap<String, IndicatorRow>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    use futures_util::TryStreamExt;
    // A few companies' reads in flight at once, answered in the page's order.
    let reads = futures_util::StreamExt::map(futures_util::stream::iter(latest), |bar| async move {
        latest_row(store, bar, live).await
    });
    futures_util::StreamExt::buffered(reads, LATEST_READS_IN_FLIGHT).try_collect().await
}

/// One company's latest bar with its indicators.
async fn latest_row(
    store: &dyn Store,
    bar: Bar,
    live: &HashMap<String, IndicatorRow>,
) -> Result<serde_json::Value, StoreError> {
    let row = match live.get(&bar.company).filter(|r| r.date == bar.ts.to_string()) {
        Some(r) => Some(r.clone()),
        None => {
            let upto = DateRange { from: None, to: Some(bar.ts) };
            indicator_rows(&store.newest(&bar.company, &upto, INDICATOR_WARM_UP + 1).await?).pop()
        }
    };
    Ok(json!({ "bar": wire(&bar), "indicators": row }))
}

/// Companies' statistics a page at a time (`limit`, default 100, and `after`
/// a name), with the return correlations and `next`, the `after` of the next
/// page (null on the last). From the catalog; with `from` or `to`, computed
/// over the range's bars (at most [`crate::stats::MAX_RANGED_BARS`]).
async fn stats(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = limit(&p, 100, 1000)?;
    let range = range(&p)?;
    let after = p.get("after").map(String::as_str);
    let (mut page, correlations) = if range == DateRange::default() {
        let correlations = s.stats.correlations(s.store.as_ref()).await?;
        (crate::stats::catalog_stats(s.store.as_ref(), after, limit + 1).await?, correlations)
    } else {
        let stats = s.stats.ranged(s.store.as_ref(), &range).await?;
        let start = after.map_or(0, |a| stats.companies.partition_point(|c| c.company.as_str() <= a));
        (stats.companies.iter().skip(start).take(limit + 1).cloned().collect(), stats)
    };
    let more = page.len() > limit;
    page.truncate(limit);
    let next = more.then(|| page.last().map(|c| c.company.clone())).flatten();
    Ok(Json(json!({
        "companies": page,
        "names": correlations.names,
        "return_correlation": correlations.return_correlation,
        "correlation_window": correlations.correlation_window,
        "next": next,
    })))
}

/// The market statistics of a store's bars in `range`, read one company at a
/// time: memory holds one company's bars and each company's statistics.
pub async fn market_stats_of(store: &dyn Store, range: &DateRange) -> Result<MarketStats, StoreError> {
    let companies = store.companies().await?;
    stats_of(store, range, MarketStatsBuilder::with_capacity(companies.len()), companies).await
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

/// Insights from the catalog's statistics; with `from` or `to`, from the
/// range's bars.
async fn insights_route(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let range = range(&p)?;
    let stats = if range == DateRange::default() {
        s.stats.market(s.store.as_ref()).await?
    } else {
        s.stats.ranged(s.store.as_ref(), &range).await?
    };
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
            crate::Event::Forming { partial: false, .. } => "earlier",
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
    let routes = stockstream_store::dynamodb_usage_by_account();
    out.push_str(
        "# HELP stockstream_dynamodb_route_requests_total DynamoDB requests answered, by route and operation.\n",
    );
    out.push_str("# TYPE stockstream_dynamodb_route_requests_total counter\n");
    for ((route, op), u) in &routes {
        let _ = writeln!(
            out,
            "stockstream_dynamodb_route_requests_total{{route=\"{route}\",operation=\"{op}\"}} {}",
            u.requests
        );
    }
    out.push_str(
        "# HELP stockstream_dynamodb_route_capacity_units_total Capacity units consumed, by route and operation.\n",
    );
    out.push_str("# TYPE stockstream_dynamodb_route_capacity_units_total counter\n");
    for ((route, op), u) in &routes {
        let kind = if stockstream_store::is_read(op) { "read" } else { "write" };
        let _ = writeln!(
            out,
            "stockstream_dynamodb_route_capacity_units_total{{route=\"{route}\",operation=\"{op}\",kind=\"{kind}\"}} {}",
            u.capacity_units
        );
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

/// What the live stream carries (bars of which length) and the lengths the
/// store's bars can be read in (stored, or made from shorter stored ones).
async fn live(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let intervals: Vec<String> =
        stockstream_store::readable_intervals(s.store.as_ref()).await?.iter().map(|l| l.name()).collect();
    Ok(Json(json!({ "interval": s.hub.interval(), "intervals": intervals, "streaming": s.hub.streams() })))
}

async fn dashboard() -> Html<&'static str> {
    Html(crate::assets::DASHBOARD_PAGE.as_str())
}

/// Counts the DynamoDB requests a route makes under its path (`/metrics`).
async fn account_route(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route: Arc<str> =
        request.extensions().get::<axum::extract::MatchedPath>().map_or("other".into(), |m| m.as_str().into());
    stockstream_store::accounted_to(route, next.run(request)).await
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
        .route_layer(axum::middleware::from_fn(account_route))
        .fallback(|| async {
            ApiError { status: StatusCode::NOT_FOUND, message: "no such route".into(), parameter: None }
        })
        .layer(axum::middleware::map_response(harden))
        // The page, its script and the JSON, gzip or brotli as the browser
        // asks, at a level that costs little per request; server-sent
        // events and the gzipped library pass as they are.
        .layer(tower_http::compression::CompressionLayer::new().quality(tower_http::CompressionLevel::Precise(4)))
        .with_state(state)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = state.limits;
    crate::assets::warm();
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
        async fn catalog(
            &self,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<stockstream_store::CatalogEntry>, StoreError> {
            self.inner.catalog(after, limit).await
        }
        async fn oldest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
            let bars = self.inner.oldest(company, range, limit).await?;
            self.bars_read.fetch_add(bars.len(), Ordering::SeqCst);
            Ok(bars)
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
            vwap: None,
            trades: None,
        }
    }

    /// Statistics come from the catalog and a window of each company's
    /// newest bars, never from whole ranges; a range's are computed once per
    /// store version and range.
    #[tokio::test]
    async fn statistics_read_the_catalog_and_a_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Arc::new(Counted {
            inner: SqliteStore::open(&path).unwrap(),
            ranges: AtomicUsize::new(0),
            bars_read: AtomicUsize::new(0),
        });
        let start: chrono::NaiveDate = "2001-01-01".parse().unwrap();
        // B starts later, so that both windows cover the same days.
        let bars = |company: &str, n: u64, slope: f64| -> Vec<Bar> {
            (3000 - n..3000)
                .map(|i| {
                    let close = 50.0 + slope * i as f64 + 5.0 * ((i * i) as f64 / 17.0).sin();
                    Bar {
                        company: company.into(),
                        ts: Ts::Date(start + chrono::Days::new(i)),
                        ..bar(company, 1, close)
                    }
                })
                .collect()
        };
        store.upsert(bars("A", 3000, 0.01).into()).await.unwrap();
        store.upsert(bars("B", 2000, -0.01).into()).await.unwrap();
        store.bars_read.store(0, Ordering::SeqCst);
        let cache = crate::stats::StatsCache::default();
        let market = cache.market(store.as_ref()).await.unwrap();
        assert_eq!(store.ranges.load(Ordering::SeqCst), 0, "a whole-range read");
        assert_eq!(store.bars_read.load(Ordering::SeqCst), 2 * crate::stats::CORRELATION_WINDOW);
        // The same numbers as over every bar.
        let exact = stockstream_analytics::market_stats(&[bars("A", 3000, 0.01), bars("B", 2000, -0.01)]);
        for (got, want) in market.companies.iter().zip(&exact.companies) {
            assert_eq!((got.bars, &got.first, &got.last), (want.bars, &want.first, &want.last));
            for (g, w) in [
                (got.trend_per_year, want.trend_per_year),
                (got.volatility, want.volatility),
                (got.max_drawdown, want.max_drawdown),
                (got.total_return, want.total_return),
                (got.ohlcv_correlation[0][3], want.ohlcv_correlation[0][3]),
            ] {
                assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{}: {g} vs {w}", got.company);
            }
        }
        // Correlations over the newest bars, as over those bars alone.
        let window = |b: Vec<Bar>| b[b.len() - crate::stats::CORRELATION_WINDOW..].to_vec();
        let windowed =
            stockstream_analytics::market_stats(&[window(bars("A", 3000, 0.01)), window(bars("B", 2000, -0.01))]);
        let (got, want) = (market.return_correlation[0][1], windowed.return_correlation[0][1]);
        assert!(want.is_finite() && (got - want).abs() < 1e-12, "{got} vs {want}");
        assert_ne!(want, exact.return_correlation[0][1], "the window is not the whole history");
        assert!(
            Arc::ptr_eq(&market, &cache.market(store.as_ref()).await.unwrap()),
            "an unchanged store is not read again"
        );

        // A range: its bars, once per version.
        let first_days = DateRange::new(None, Some("2001-01-10".parse().unwrap()));
        let ranged = cache.ranged(store.as_ref(), &first_days).await.unwrap();
        assert_eq!(ranged.companies.iter().map(|c| c.bars).sum::<usize>(), 10, "A's first days; B starts later");
        assert!(Arc::ptr_eq(&ranged, &cache.ranged(store.as_ref(), &first_days).await.unwrap()));
        let early = Bar { ts: Ts::Date(start), ..bar("C", 1, 5.0) };
        SqliteStore::open(&path).unwrap().upsert(vec![early].into()).await.unwrap();
        assert_eq!(cache.ranged(store.as_ref(), &first_days).await.unwrap().companies.len(), 2, "another writer's bar");
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
                    vwap: None,
                    trades: None,
                }
            })
            .collect();
        store.upsert(history.clone().into()).await.unwrap();
        store.bars_read.store(0, Ordering::SeqCst);
        let latest = store.catalog(None, 1).await.unwrap().pop().unwrap().last_bar;
        let rows = latest_rows(&store, vec![latest], &HashMap::new()).await.unwrap();
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
