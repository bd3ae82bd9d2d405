//! The HTTP surface (axum): `/metrics`, `/health`, an index page, and the
//! Prometheus-compatible query API under `/api/v1/` ([`api`]).
//!
//! Architecture Invariant: handlers here read pre-computed state (the cache, the health map);
//! none waits on a collector, so scrapes and health checks answer while collectors hang. The
//! query API does its work on blocking threads, never on the async workers.

pub mod alerts;
pub mod api;
mod auth;
pub mod repairs;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::health::Status;
use crate::pipeline::Shared;

/// Content type of the Prometheus text exposition format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// Cache, health, self-metrics, progress.
    pub shared: Shared,
    /// The API key, if any; swapped by a config reload.
    pub api_key: Arc<RwLock<Option<String>>>,
    /// Pipeline age beyond which `/health` reports it stalled.
    pub stall_after: Duration,
    /// The query engine and its data source, for `/api/v1/`.
    pub query: api::QueryApi,
    /// Alerting state for `/api/v1/alerts`, `/rules` and `/silences`; `None` in tests that
    /// serve only metrics.
    pub alerting: Option<crate::alert::manager::Shared>,
    /// Repair state for `/api/v1/repairs` (absent in tests that serve no repairs).
    pub repairs: Option<crate::repair::runner::Shared>,
}

/// Request limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Requests in flight at once.
    pub max_concurrent: usize,
}

/// Builds the router with auth, limits and compression.
pub fn router(state: AppState, limits: Limits) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/v1/repairs", get(repairs::status))
        .route("/api/v1/repairs/log", get(repairs::log))
        .route("/api/v1/repairs/pause", post(repairs::pause))
        .route("/api/v1/repairs/resume", post(repairs::resume))
        .route("/api/v1/repairs/{rule}/reset", post(repairs::reset))
        .route("/api/v1/rules", get(alerts::rules))
        .route(
            "/api/v1/silences",
            get(alerts::list_silences).post(alerts::post_silence),
        )
        .route(
            "/api/v1/silences/{id}",
            get(alerts::get_silence).delete(alerts::delete_silence),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(CompressionLayer::new().gzip(true))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(ConcurrencyLimitLayer::new(limits.max_concurrent.max(1)))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // A fixed set of label values: arbitrary paths must not create new series.
    let handler = match req.uri().path() {
        "/metrics" => "/metrics",
        "/health" => "/health",
        "/" => "/",
        "/api/v1/query" => "/api/v1/query",
        "/api/v1/query_range" => "/api/v1/query_range",
        "/api/v1/series" => "/api/v1/series",
        "/api/v1/labels" => "/api/v1/labels",
        "/api/v1/status/buildinfo" => "/api/v1/status/buildinfo",
        "/api/v1/metadata" => "/api/v1/metadata",
        p if p.starts_with("/api/v1/label/") && p.ends_with("/values") => {
            "/api/v1/label/:name/values"
        }
        _ => "other",
    };
    let resp = next.run(req).await;
    state
        .shared
        .metrics
        .http_requests
        .with_label_values(&[handler, resp.status().as_str()])
        .inc();
    resp
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        concat!(
            "<html><head><title>automon</title></head><body><h1>automon ",
            env!("CARGO_PKG_VERSION"),
            "</h1><ul><li><a href=\"/metrics\">/metrics</a></li>",
            "<li><a href=\"/health\">/health</a></li></ul></body></html>\n"
        ),
    )
}

/// Renders the exposition: self-metrics first, then each collector's cached text.
pub fn render_metrics(shared: &Shared) -> Vec<u8> {
    let parts = shared.cache.snapshot();
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 8192);
    shared.metrics.render(&mut body);
    for p in parts {
        body.extend_from_slice(p.as_bytes());
    }
    body
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = render_metrics(&state.shared);
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    resp
}

async fn health(State(state): State<AppState>) -> Response {
    let report = state
        .shared
        .health
        .report(state.shared.progress.age(), state.stall_after);
    let code = if report.status == Status::Failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(report)).into_response()
}
