//! `/api/v1/alerts` and `/api/v1/rules` in Prometheus' shapes, and `/api/v1/silences`
//! (list, create or update, get, expire) with Alertmanager's silence fields.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{blocking, success, ApiError};
use super::AppState;
use crate::alert::manager::{AlertView, RuleView, Shared};
use crate::alert::matcher::MatcherJson;
use crate::alert::outbox::now_ms;
use crate::alert::rfc3339;
use crate::alert::silence::{new_id, Silence, SilenceState};

fn alerting(state: &AppState) -> Result<Shared, ApiError> {
    state
        .alerting
        .clone()
        .ok_or_else(|| ApiError::internal("alerting is not available in this process"))
}

#[derive(Serialize)]
struct AlertsData {
    alerts: Vec<AlertView>,
}

/// `GET /api/v1/alerts`: pending and firing alerts.
pub async fn alerts(State(state): State<AppState>) -> Response {
    let Ok(shared) = alerting(&state) else {
        return success(AlertsData { alerts: Vec::new() });
    };
    let alerts = shared
        .snapshot
        .read()
        .map(|s| {
            s.rules
                .iter()
                .flat_map(|r| r.alerts.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    success(AlertsData { alerts })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleGroup {
    name: String,
    file: String,
    rules: Vec<RuleView>,
    interval: f64,
    evaluation_time: f64,
    last_evaluation: String,
}

#[derive(Serialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

/// `GET /api/v1/rules`: rules grouped by the file they come from.
pub async fn rules(State(state): State<AppState>) -> Response {
    let Ok(shared) = alerting(&state) else {
        return success(RulesData { groups: Vec::new() });
    };
    let Ok(snapshot) = shared.snapshot.read().map(|s| s.clone()) else {
        return ApiError::internal("alerting state unavailable").into_response();
    };
    let mut groups: Vec<RuleGroup> = Vec::new();
    for rule in snapshot.rules {
        let file = rule
            .source
            .rsplit_once(':')
            .map_or(rule.source.as_str(), |(f, _)| f)
            .to_owned();
        let idx = match groups.iter().position(|g| g.file == file) {
            Some(i) => i,
            None => {
                let name = std::path::Path::new(&file)
                    .file_stem()
                    .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
                groups.push(RuleGroup {
                    name,
                    file: file.clone(),
                    rules: Vec::new(),
                    interval: snapshot.interval_s,
                    evaluation_time: 0.0,
                    last_evaluation: String::new(),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[idx];
        g.evaluation_time += rule.evaluation_time;
        if rule.last_evaluation > g.last_evaluation {
            g.last_evaluation.clone_from(&rule.last_evaluation);
        }
        g.rules.push(rule);
    }
    success(RulesData { groups })
}

/// A silence as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceView {
    id: String,
    matchers: Vec<MatcherJson>,
    starts_at: String,
    ends_at: String,
    updated_at: String,
    created_by: String,
    comment: String,
    status: SilenceStatus,
}

#[derive(Serialize)]
struct SilenceStatus {
    state: SilenceState,
}

fn view(s: Silence, now: i64) -> SilenceView {
    SilenceView {
        status: SilenceStatus {
            state: s.state(now),
        },
        id: s.id,
        matchers: s.matchers,
        starts_at: rfc3339(s.starts_at_ms),
        ends_at: rfc3339(s.ends_at_ms),
        updated_at: rfc3339(s.updated_at_ms),
        created_by: s.created_by,
        comment: s.comment,
    }
}

/// `GET /api/v1/silences`: every silence (expired ones for a week).
pub async fn list_silences(State(state): State<AppState>) -> Response {
    let shared = match alerting(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let r = blocking(move || {
        shared
            .db
            .silences()
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    let now = now_ms();
    match r {
        Ok(list) => success(list.into_iter().map(|s| view(s, now)).collect::<Vec<_>>()),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/silences/{id}`.
pub async fn get_silence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let shared = match alerting(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let r = blocking(move || {
        shared
            .db
            .silence(&id)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    match r {
        Ok(Some(s)) => success(view(s, now_ms())),
        Ok(None) => not_found(),
        Err(e) => e.into_response(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"status": "error", "errorType": "not_found", "error": "no silence with this id"})),
    )
        .into_response()
}

/// Body of `POST /api/v1/silences`: Alertmanager's fields; `startsAt` defaults to now, and
/// `duration` (e.g. `"2h"`) may stand in for `endsAt`. With an `id`, that silence is updated.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<MatcherJson>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// Turns a request into a silence, checking it.
pub fn silence_from_request(p: PostSilence, now: i64) -> Result<Silence, String> {
    let parse = |s: &str| crate::query::params::parse_time(s);
    let starts = match &p.starts_at {
        Some(s) => parse(s).map_err(|e| format!("startsAt: {e}"))?,
        None => now,
    };
    let ends = match (&p.ends_at, &p.duration) {
        (Some(_), Some(_)) => return Err("give endsAt or duration, not both".into()),
        (Some(e), None) => parse(e).map_err(|e| format!("endsAt: {e}"))?,
        (None, Some(d)) => {
            let d = crate::config::parse_duration(d).map_err(|e| format!("duration: {e}"))?;
            starts + d.as_millis() as i64
        }
        (None, None) => return Err("endsAt or duration is required".into()),
    };
    if ends <= now {
        return Err("endsAt is in the past; the silence would never apply".into());
    }
    let silence = Silence {
        id: p.id.filter(|i| !i.is_empty()).unwrap_or_else(new_id),
        matchers: p.matchers,
        starts_at_ms: starts,
        ends_at_ms: ends,
        created_by: p.created_by,
        comment: p.comment,
        updated_at_ms: now,
    };
    silence.compile().map_err(|e| e.to_string())?;
    Ok(silence)
}

/// `POST /api/v1/silences`: creates (or, with `id`, updates) a silence; answers its id.
pub async fn post_silence(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let shared = match alerting(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let req: PostSilence = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return ApiError::bad_data(format!("invalid silence: {e}")).into_response(),
    };
    let now = now_ms();
    let silence = match silence_from_request(req, now) {
        Ok(s) => s,
        Err(e) => return ApiError::bad_data(format!("invalid silence: {e}")).into_response(),
    };
    let r = blocking(move || {
        if let Some(old) = shared.db.silence(&silence.id).map_err(|e| ApiError::internal(e.to_string()))? {
            if old.state(now) == SilenceState::Expired {
                return Err(ApiError::bad_data("silence has expired; create a new one"));
            }
        }
        shared
            .db
            .put_silence(&silence)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::info!(id = %silence.id, created_by = %silence.created_by, comment = %silence.comment, "silence set");
        Ok(silence.id)
    })
    .await;
    match r {
        Ok(id) => success(BTreeMap::from([("silenceID", id)])),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/v1/silences/{id}`: expires the silence now (it stays listed as expired).
pub async fn delete_silence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let shared = match alerting(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let r = blocking(move || expire(&shared.db, &id, now_ms()).map_err(ApiError::internal)).await;
    match r {
        Ok(true) => success(serde_json::Value::Null),
        Ok(false) => not_found(),
        Err(e) => e.into_response(),
    }
}

/// Expires silence `id` at `now`; false if there is no such silence.
pub fn expire(db: &crate::alert::db::Db, id: &str, now: i64) -> Result<bool, String> {
    let Some(mut s) = db.silence(id).map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    if s.state(now) != SilenceState::Expired {
        s.ends_at_ms = now;
        s.starts_at_ms = s.starts_at_ms.min(now);
        s.updated_at_ms = now;
        db.put_silence(&s).map_err(|e| e.to_string())?;
    }
    Ok(true)
}
