//! The Prometheus-compatible HTTP API (`/api/v1/...`): instant and range queries, series,
//! label names and values, build info and (empty) metadata, in exactly Prometheus' JSON
//! shapes, so Grafana's Prometheus data source and other Prometheus clients work unchanged.
//!
//! Parameters come from the URL and, for POST, from an `application/x-www-form-urlencoded`
//! body (Grafana posts), body values first as Go's `ParseForm` does.
//!
//! Architecture Invariant: no handler evaluates a query or touches SQLite on an async worker;
//! every engine or store call runs under `spawn_blocking`, so `/metrics` and `/health` keep
//! answering while a heavy query runs.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::AppState;
use crate::query::params::{now_ms, parse_duration, parse_selector, parse_time};
use crate::query::{Engine, LabelMatcher, QueryError, Source, SourceError};

/// What the API needs besides the shared daemon state.
#[derive(Clone)]
pub struct QueryApi {
    /// The store as a query source; `None` when storage is disabled.
    pub source: Option<Arc<dyn Source>>,
    /// The engine with the configured limits; swapped by a config reload.
    pub engine: Arc<RwLock<Engine>>,
}

impl QueryApi {
    /// An API over `source` (or none) with `engine`.
    pub fn new(source: Option<Arc<dyn Source>>, engine: Engine) -> Self {
        QueryApi {
            source,
            engine: Arc::new(RwLock::new(engine)),
        }
    }

    fn source(&self) -> Result<Arc<dyn Source>, ApiError> {
        self.source.clone().ok_or_else(|| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_type: "unavailable",
            message: "storage is disabled ([storage] enabled = false), so there is no data to \
                      query; /metrics still serves the latest values"
                .into(),
        })
    }

    /// The engine, with its timeout shortened to the request's `timeout` parameter if given.
    fn engine(&self, timeout: Option<Duration>) -> Engine {
        let engine = match self.engine.read() {
            Ok(e) => e.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match timeout {
            Some(t) if t < engine.limits().timeout => {
                let mut limits = engine.limits().clone();
                limits.timeout = t;
                Engine::new(limits)
            }
            _ => engine,
        }
    }
}

/// An error in Prometheus' shape: `{"status":"error","errorType":...,"error":...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "bad_data",
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: message.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError {
            status: StatusCode::from_u16(e.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_type: e.error_type(),
            message: e.to_string(),
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        ApiError::internal(format!("storage error: {e}"))
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'a str,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: "error",
            error_type: self.error_type,
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

#[derive(Serialize)]
struct Success<T> {
    status: &'static str,
    data: T,
}

pub(crate) fn success<T: Serialize>(data: T) -> Response {
    Json(Success {
        status: "success",
        data,
    })
    .into_response()
}

/// Request parameters: URL query plus form body, in Go's `ParseForm` order.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = match req.uri().query() {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::bad_data(format!("invalid query string: {e}")))?,
            None => Vec::new(),
        };
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && is_form {
            let body = Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError {
                    status: e.status(),
                    error_type: "bad_data",
                    message: format!("reading the request body: {}", e.body_text()),
                })?;
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiError::bad_data(format!("invalid form body: {e}")))?;
            pairs.splice(0..0, form);
        }
        Ok(Params(pairs))
    }
}

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_data(format!(
                "invalid parameter \"{name}\": missing or empty"
            ))),
        }
    }

    pub(crate) fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    /// Every `match[]` selector, parsed.
    fn selectors(&self) -> Result<Vec<Vec<LabelMatcher>>, ApiError> {
        self.0
            .iter()
            .filter(|(k, _)| k == "match[]")
            .map(|(_, v)| {
                parse_selector(v)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))
            })
            .collect()
    }

    /// `start` and `end`, defaulting to all time as in Prometheus.
    fn span(&self) -> Result<(i64, i64), ApiError> {
        Ok((
            self.time("start")?.unwrap_or(i64::MIN / 2),
            self.time("end")?.unwrap_or(i64::MAX / 2),
        ))
    }
}

/// Runs blocking work (the engine, SQLite) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

/// Answers and records how long it took under `endpoint`.
fn finish<T: Serialize>(
    state: &AppState,
    endpoint: &str,
    started: Instant,
    r: Result<T, ApiError>,
) -> Response {
    state
        .shared
        .metrics
        .query_duration
        .with_label_values(&[endpoint])
        .observe(started.elapsed().as_secs_f64());
    match r {
        Ok(data) => success(data),
        Err(e) => e.into_response(),
    }
}

/// `/api/v1/query`: `query`, `time` (default now), `timeout`.
pub async fn query(State(state): State<AppState>, params: Params) -> Response {
    let started = Instant::now();
    let r = async {
        let source = state.query.source()?;
        let expr = params.required("query")?.to_owned();
        let at = params.time("time")?.unwrap_or_else(now_ms);
        let engine = state.query.engine(params.duration("timeout")?);
        blocking(move || Ok(engine.instant(&*source, &expr, at)?)).await
    }
    .await;
    finish(&state, "query", started, r)
}

/// `/api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`.
pub async fn query_range(State(state): State<AppState>, params: Params) -> Response {
    let started = Instant::now();
    let r = async {
        let source = state.query.source()?;
        let expr = params.required("query")?.to_owned();
        let start = params
            .time("start")?
            .ok_or_else(|| ApiError::bad_data("invalid parameter \"start\": missing"))?;
        let end = params
            .time("end")?
            .ok_or_else(|| ApiError::bad_data("invalid parameter \"end\": missing"))?;
        let step = params
            .duration("step")?
            .ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": missing"))?;
        let step_ms = step.as_millis() as i64;
        let engine = state.query.engine(params.duration("timeout")?);
        blocking(move || {
            let m = engine.range(&*source, &expr, start, end, step_ms)?;
            Ok(crate::query::Value::Matrix(m))
        })
        .await
    }
    .await;
    finish(&state, "query_range", started, r)
}

fn label_map(labels: crate::model::Labels) -> BTreeMap<String, String> {
    labels.into_iter().collect()
}

/// `/api/v1/series`: `match[]` (at least one), `start`, `end`.
pub async fn series(State(state): State<AppState>, params: Params) -> Response {
    let started = Instant::now();
    let r = async {
        let source = state.query.source()?;
        let selectors = params.selectors()?;
        if selectors.is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let (start, end) = params.span()?;
        blocking(move || {
            let all = source.series(&selectors, start, end)?;
            Ok(all.into_iter().map(label_map).collect::<Vec<_>>())
        })
        .await
    }
    .await;
    finish(&state, "series", started, r)
}

/// `/api/v1/labels`: `match[]` (optional), `start`, `end`.
pub async fn labels(State(state): State<AppState>, params: Params) -> Response {
    let started = Instant::now();
    let r = async {
        let source = state.query.source()?;
        let selectors = params.selectors()?;
        let (start, end) = params.span()?;
        blocking(move || Ok(source.label_names(&selectors, start, end)?)).await
    }
    .await;
    finish(&state, "labels", started, r)
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `/api/v1/label/<name>/values`: `match[]` (optional), `start`, `end`.
pub async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    let started = Instant::now();
    let r = async {
        let source = state.query.source()?;
        if !valid_label_name(&name) {
            return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
        }
        let selectors = params.selectors()?;
        let (start, end) = params.span()?;
        blocking(move || Ok(source.label_values(&name, &selectors, start, end)?)).await
    }
    .await;
    finish(&state, "label_values", started, r)
}

/// `/api/v1/status/buildinfo`, which Grafana reads on "Save & test".
///
/// `version` is the Prometheus version whose API and PromQL semantics automon follows
/// (see `query/mod.rs`), not automon's own: clients such as Grafana enable features by
/// comparing it with Prometheus releases, and automon's 0.x would turn them all off.
/// automon's own version is in `revision` and `automonVersion`.
pub async fn buildinfo() -> Response {
    success(serde_json::json!({
        "version": "2.42.0",
        "revision": concat!("automon-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "automon",
        "buildDate": "",
        "goVersion": "",
        "application": "automon",
        "automonVersion": env!("CARGO_PKG_VERSION"),
    }))
}

/// `/api/v1/metadata`: automon does not keep HELP/TYPE metadata in the store; an empty
/// object is what Prometheus returns for a target-less server, and Grafana accepts it.
pub async fn metadata() -> Response {
    success(serde_json::json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_checked() {
        assert!(valid_label_name("__name__"));
        assert!(valid_label_name("job_2"));
        assert!(!valid_label_name("2job"));
        assert!(!valid_label_name(""));
        assert!(!valid_label_name("a-b"));
    }

    #[test]
    fn query_errors_keep_prometheus_classification() {
        let e = ApiError::from(QueryError::Unsupported("function holt_winters".into()));
        assert_eq!((e.status.as_u16(), e.error_type), (400, "bad_data"));
        let e = ApiError::from(QueryError::Timeout { during: "x" });
        assert_eq!((e.status.as_u16(), e.error_type), (503, "timeout"));
    }
}
