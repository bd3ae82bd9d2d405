//! `/api/v1/repairs`: repair rules with their state, the audit trail, and the operator's
//! controls (pause, resume, reset), the same as `automon repair ...`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::api::{blocking, success, ApiError, Params};
use super::AppState;
use crate::alert::outbox::now_ms;
use crate::alert::rfc3339;
use crate::repair::db::{AuditEntry, LogFilter};
use crate::repair::runner::{RuleView, Shared};

/// Most audit rows one request returns.
const MAX_LIMIT: usize = 10_000;

fn repairs(state: &AppState) -> Result<Shared, ApiError> {
    state
        .repairs
        .clone()
        .ok_or_else(|| ApiError::internal("repairs are not available in this process"))
}

/// One audit row as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    id: i64,
    time: String,
    rule: String,
    event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<i64>,
    action: String,
    target: String,
    detail: String,
    labels: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<f64>,
    output: String,
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        EntryView {
            id: e.id,
            time: rfc3339(e.time_ms),
            rule: e.rule,
            event: e.event,
            attempt: e.attempt,
            action: e.action,
            target: e.target,
            detail: e.detail,
            labels: e.labels,
            value: e.value.map(crate::query::value::format_sample_value),
            duration_seconds: e.duration_ms.map(|d| d as f64 / 1000.0),
            output: e.output,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusData {
    enabled: bool,
    dry_run: bool,
    paused: bool,
    running: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<String>,
    errors: Vec<String>,
    rules: Vec<RuleView>,
}

/// `GET /api/v1/repairs`: the switches and every rule's state.
pub async fn status(State(state): State<AppState>) -> Response {
    let shared = match repairs(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let v = match shared.view.read() {
        Ok(v) => v.clone(),
        Err(_) => return ApiError::internal("repair state lock poisoned").into_response(),
    };
    success(StatusData {
        enabled: v.enabled,
        dry_run: v.dry_run,
        paused: v.paused,
        running: v.running,
        disabled: v.disabled,
        errors: v.errors,
        rules: v.rules,
    })
}

/// Reads `rule`, `since` and `limit` (default 100).
fn filter(params: &Params) -> Result<LogFilter, ApiError> {
    let limit = match params.get("limit") {
        None | Some("") => 100,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {s:?} is not a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    Ok(LogFilter {
        rule: params
            .get("rule")
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        since_ms: params.time("since")?,
        limit,
    })
}

/// `GET /api/v1/repairs/log?rule=&since=&limit=`: audit rows, newest first.
pub async fn log(State(state): State<AppState>, params: Params) -> Response {
    let shared = match repairs(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let f = match filter(&params) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let r = blocking(move || {
        shared
            .db
            .log(&f)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    match r {
        Ok(rows) => success(rows.into_iter().map(EntryView::from).collect::<Vec<_>>()),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/repairs/pause`.
pub async fn pause(State(state): State<AppState>) -> Response {
    set_paused(state, true).await
}

/// `POST /api/v1/repairs/resume`.
pub async fn resume(State(state): State<AppState>) -> Response {
    set_paused(state, false).await
}

async fn set_paused(state: AppState, paused: bool) -> Response {
    let shared = match repairs(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let r = blocking(move || {
        shared
            .db
            .set_paused(paused, now_ms(), "through the HTTP API")
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    match r {
        Ok(()) => success(serde_json::json!({ "paused": paused })),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/repairs/{rule}/reset`: clears the rule's attempts and cooldown and re-arms
/// it if it gave up.
pub async fn reset(State(state): State<AppState>, Path(rule): Path<String>) -> Response {
    let shared = match repairs(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let known = shared
        .view
        .read()
        .map(|v| v.rules.iter().any(|r| r.name == rule))
        .unwrap_or(false);
    if !known {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "status": "error",
                "errorType": "not_found",
                "error": format!("no repair rule named {rule:?}"),
            })),
        )
            .into_response();
    }
    let r = blocking(move || {
        shared
            .db
            .request_reset(&rule, now_ms())
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    match r {
        Ok(()) => success(serde_json::json!({ "reset": "requested" })),
        Err(e) => e.into_response(),
    }
}
