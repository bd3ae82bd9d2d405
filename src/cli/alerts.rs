//! `automon alerts` and `automon silence add|list|expire`: read and write the alerting
//! database in the data directory directly, so they work whether or not the daemon runs
//! (the daemon re-reads silences within a second).

use std::fmt::Write as _;
use std::path::Path;

use crate::alert::db::Db;
use crate::alert::matcher::{Matcher, MatcherJson};
use crate::alert::outbox::now_ms;
use crate::alert::rfc3339;
use crate::alert::rule::AlertState;
use crate::alert::service::DB_FILE;
use crate::alert::silence::{Silence, SilenceState};

fn open(data_dir: &Path) -> Result<Db, String> {
    let path = crate::statedb::existing_file(data_dir, DB_FILE)?;
    Db::open_existing(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Renders the active alerts as a table (or JSON lines with `json`).
pub fn alerts(data_dir: &Path, json: bool) -> Result<String, String> {
    let db = open(data_dir)?;
    let (last, alerts) = db.load_alerts().map_err(|e| e.to_string())?;
    let mut out = String::new();
    let mut active: Vec<_> = alerts
        .into_iter()
        .filter(|a| a.state != AlertState::Inactive)
        .collect();
    active.sort_by(|a, b| {
        (b.state == AlertState::Firing, &a.rule, &a.labels).cmp(&(
            a.state == AlertState::Firing,
            &b.rule,
            &b.labels,
        ))
    });
    if json {
        for a in &active {
            let line = serde_json::to_string(a).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "{line}");
        }
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<8} {:<28} {:<24} {:<10} LABELS / SUMMARY",
        "STATE", "ALERT", "SINCE", "VALUE"
    );
    for a in &active {
        let labels: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<8} {:<28} {:<24} {:<10} {}",
            a.state.as_str(),
            a.rule,
            rfc3339(a.active_at_ms),
            crate::alert::template::format_g(a.value, 4),
            labels.join(",")
        );
        if let Some(summary) = a.annotations.get("summary") {
            let _ = writeln!(out, "{:<73}{summary}", "");
        }
    }
    let _ = write!(
        out,
        "{} firing, {} pending",
        active
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .count(),
        active
            .iter()
            .filter(|a| a.state == AlertState::Pending)
            .count()
    );
    if let Some(last) = last {
        let _ = write!(out, " (last evaluation {})", rfc3339(last));
    }
    out.push('\n');
    Ok(out)
}

/// Adds a silence; returns its id.
pub fn silence_add(
    data_dir: &Path,
    matchers: &[String],
    duration: std::time::Duration,
    author: &str,
    comment: &str,
) -> Result<String, String> {
    let parsed = matchers
        .iter()
        .map(|m| Matcher::parse(m).map(|m| MatcherJson::from(&m)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let now = now_ms();
    let silence = Silence {
        id: crate::alert::silence::new_id(),
        matchers: parsed,
        starts_at_ms: now,
        ends_at_ms: now + duration.as_millis() as i64,
        created_by: author.to_owned(),
        comment: comment.to_owned(),
        updated_at_ms: now,
    };
    silence.compile().map_err(|e| e.to_string())?;
    let db = open(data_dir)?;
    db.put_silence(&silence).map_err(|e| e.to_string())?;
    Ok(silence.id)
}

/// Lists silences (expired ones only with `all`).
pub fn silence_list(data_dir: &Path, all: bool) -> Result<String, String> {
    let db = open(data_dir)?;
    let now = now_ms();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:<8} {:<24} {:<12} {:<30} COMMENT",
        "ID", "STATE", "ENDS", "CREATED BY", "MATCHERS"
    );
    for s in db.silences().map_err(|e| e.to_string())? {
        let state = s.state(now);
        if state == SilenceState::Expired && !all {
            continue;
        }
        let matchers: Vec<String> = s
            .matchers
            .iter()
            .filter_map(|m| Matcher::from_parts(&m.name, &m.value, m.is_regex, m.is_equal).ok())
            .map(|m| m.to_string())
            .collect();
        let state = match state {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        };
        let _ = writeln!(
            out,
            "{:<36} {:<8} {:<24} {:<12} {:<30} {}",
            s.id,
            state,
            rfc3339(s.ends_at_ms),
            s.created_by,
            matchers.join(","),
            s.comment
        );
    }
    Ok(out)
}

/// Expires a silence now.
pub fn silence_expire(data_dir: &Path, id: &str) -> Result<(), String> {
    let db = open(data_dir)?;
    match crate::http::alerts::expire(&db, id, now_ms())? {
        true => Ok(()),
        false => Err(format!("no silence with id {id}")),
    }
}
