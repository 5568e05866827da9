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
use stockstream_analytics::{indicator_rows, insights, market_stats, IndicatorRow};
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
}

/// A JSON error naming what was wrong.
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
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
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

async fn companies(State(s): State<AppState>) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(s.store.companies().await?))
}

async fn bars(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (range, limit) = (range(&p)?, limit(&p, usize::MAX, usize::MAX)?);
    let company = company(s.store.as_ref(), &name).await?;
    let bars = s.store.range(&company, &range).await?;
    let newest = &bars[bars.len().saturating_sub(limit)..];
    Ok(Json(newest.iter().map(wire).collect()))
}

async fn indicators(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Json<Vec<IndicatorRow>>, ApiError> {
    let (range, limit) = (range(&p)?, limit(&p, usize::MAX, usize::MAX)?);
    let company = company(s.store.as_ref(), &name).await?;
    let rows = indicator_rows(&s.store.range(&company, &range).await?);
    Ok(Json(rows[rows.len().saturating_sub(limit)..].to_vec()))
}

async fn latest(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let live: HashMap<String, IndicatorRow> =
        s.analytics.latest().into_iter().map(|r| (r.company.clone(), r)).collect();
    let mut out = Vec::new();
    for bar in s.store.latest().await? {
        // Live indicators when the stream has them, else computed from the store.
        let row = match live.get(&bar.company).filter(|r| r.date == bar.ts.to_string()) {
            Some(r) => Some(r.clone()),
            None => indicator_rows(&s.store.range(&bar.company, &DateRange::default()).await?).pop(),
        };
        out.push(json!({ "bar": wire(&bar), "indicators": row }));
    }
    Ok(Json(serde_json::Value::Array(out)))
}

async fn stats(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let range = range(&p)?;
    let stats = market_stats(&s.store.bars_by_company(&range).await?);
    Ok(Json(serde_json::to_value(stats).map_err(anyhow::Error::from)?))
}

async fn insights_route(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let range = range(&p)?;
    let stats = market_stats(&s.store.bars_by_company(&range).await?);
    Ok(Json(json!({ "insights": insights(&stats) })))
}

async fn alerts(State(s): State<AppState>, Query(p): Params) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = limit(&p, 100, 1000)?;
    Ok(Json(serde_json::to_value(s.hub.alerts(limit)).map_err(anyhow::Error::from)?))
}

async fn stream(State(s): State<AppState>) -> Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>> {
    let events = BroadcastStream::new(s.hub.subscribe()).filter_map(|e| {
        // A subscriber too slow to keep up skips what it missed.
        let event = e.ok()?;
        let kind = match &event {
            crate::Event::Bar { .. } => "bar",
            crate::Event::Alert(_) => "alert",
        };
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok(SseEvent::default().event(kind).data(data)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut text = (s.metrics)();
    s.hub.bus_to_event.render(
        "stockstream_bus_to_event_seconds",
        "Time from a bar entering the bus to its server-sent event.",
        &mut text,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// Every route over this state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/companies", get(companies))
        .route("/api/bars/{company}", get(bars))
        .route("/api/indicators/{company}", get(indicators))
        .route("/api/latest", get(latest))
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
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
