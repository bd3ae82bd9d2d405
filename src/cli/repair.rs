//! `automon repair status|log|pause|resume|reset`: read and write the repair database in the
//! data directory directly, so they work whether or not the daemon runs (the daemon reads
//! the pause switch and reset requests within a check interval).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::alert::outbox::now_ms;
use crate::alert::rfc3339;
use crate::config::Config;
use crate::repair::db::{Db, LogFilter, DB_FILE};
use crate::repair::engine::{Limits, Phase, RuleState};

fn open(data_dir: &Path) -> Result<Db, String> {
    let path = crate::statedb::existing_file(data_dir, DB_FILE)?;
    Db::open_existing(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rules of `config` with their saved state, as a table.
pub fn status(data_dir: &Path, config: &Config) -> Result<String, String> {
    let db = open(data_dir)?;
    let paused = db.paused().map_err(|e| e.to_string())?;
    let states: BTreeMap<String, RuleState> = db.states().map_err(|e| e.to_string())?;
    let now = now_ms();
    let r = &config.repair;
    let mut out = String::new();
    let switches = match (r.enabled, paused, r.dry_run) {
        (false, _, _) => "disabled (repair.enabled = false)",
        (true, true, _) => "PAUSED (`automon repair resume` resumes)",
        (true, false, true) => "enabled, dry run",
        (true, false, false) => "enabled",
    };
    let _ = writeln!(out, "repairs: {switches}");
    if r.rules.is_empty() {
        let _ = writeln!(out, "no repair rules configured");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<24} {:<10} {:<9} {:<25} ACTION",
        "RULE", "STATE", "ATTEMPTS", "LAST ATTEMPT"
    );
    for rule in &r.rules {
        let limits = Limits::from_config(rule);
        let state = states.get(&rule.name).cloned().unwrap_or_default();
        let phase = match state.phase {
            Phase::GaveUp { since_ms } => format!("gave_up since {}", rfc3339(since_ms)),
            p => p.as_str().to_owned(),
        };
        let action = match (&rule.unit, rule.command.first(), &rule.path) {
            (Some(u), _, _) => format!("{} {u}", rule.action.as_str()),
            (_, Some(c), _) => format!("exec {c}"),
            (_, _, Some(p)) => format!("clean_files {}", p.display()),
            _ => rule.action.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:<9} {:<25} {action}{}",
            rule.name,
            phase,
            format!(
                "{}/{}",
                state.attempts_in_window(now, &limits),
                rule.max_attempts
            ),
            state
                .last_attempt_ms
                .map(rfc3339)
                .unwrap_or_else(|| "-".into()),
            if rule.dry_run || r.dry_run {
                " (dry run)"
            } else {
                ""
            },
        );
    }
    Ok(out)
}

/// The audit trail, newest first (JSON lines with `json`).
pub fn log(data_dir: &Path, filter: &LogFilter, json: bool) -> Result<String, String> {
    let db = open(data_dir)?;
    let mut rows = db.log(filter).map_err(|e| e.to_string())?;
    let mut out = String::new();
    if json {
        for row in &rows {
            let line = serde_json::to_string(row).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "{line}");
        }
        return Ok(out);
    }
    // Oldest first reads as a story.
    rows.reverse();
    let _ = writeln!(
        out,
        "{:<24} {:<20} {:<11} {:<8} DETAIL",
        "TIME", "RULE", "EVENT", "ATTEMPT"
    );
    for row in &rows {
        let mut detail = row.detail.clone();
        if !row.target.is_empty() && !detail.contains(&row.target) {
            detail = format!("[{}] {detail}", row.target);
        }
        if let Some(d) = row.duration_ms {
            let _ = write!(detail, " ({:.1}s)", d as f64 / 1000.0);
        }
        let _ = writeln!(
            out,
            "{:<24} {:<20} {:<11} {:<8} {detail}",
            rfc3339(row.time_ms),
            row.rule,
            row.event,
            row.attempt
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
        );
        if !row.output.is_empty() {
            for line in row.output.lines().take(20) {
                let _ = writeln!(out, "{:>24} | {line}", "");
            }
        }
    }
    Ok(out)
}

/// Pauses or resumes every repair rule.
pub fn set_paused(data_dir: &Path, paused: bool, who: &str) -> Result<(), String> {
    open(data_dir)?
        .set_paused(paused, now_ms(), &format!("by {who} with the CLI"))
        .map_err(|e| e.to_string())
}

/// Asks the daemon to reset `rule`, which must be in `config`.
pub fn reset(data_dir: &Path, config: &Config, rule: &str) -> Result<(), String> {
    if !config.repair.rules.iter().any(|r| r.name == rule) {
        let names: Vec<&str> = config
            .repair
            .rules
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        return Err(format!(
            "no repair rule named {rule:?} in the configuration (rules: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    open(data_dir)?
        .request_reset(rule, now_ms())
        .map_err(|e| e.to_string())
}
