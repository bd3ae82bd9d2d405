//! `repairs.db`: the audit trail (one row per decision), each rule's state (so attempt counts,
//! cooldowns and "gave up" survive restarts and reloads: a counter that resets whenever the
//! daemon restarts is one of Monit's known problems), and the operator's controls (pause,
//! reset requests), which the CLI writes and the engine reads within a check interval.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// File name in the data directory.
pub const DB_FILE: &str = "repairs.db";

/// Longest output excerpt stored with one row.
pub const OUTPUT_MAX: usize = 64 * 1024;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("repair database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not parse.
    #[error("repair database: corrupt value: {0}")]
    Json(#[from] serde_json::Error),
    /// A thread panicked holding the connection.
    #[error("repair database: connection lock poisoned")]
    Poisoned,
}

/// What happened, one word per decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The trigger started to hold.
    Triggered,
    /// The rule would have acted but did not; `detail` says why.
    Skipped,
    /// Dry run: what would have run.
    DryRun,
    /// The action started.
    Started,
    /// The action finished successfully.
    Succeeded,
    /// The action failed.
    Failed,
    /// The action did not finish in time.
    TimedOut,
    /// The action refused (a unit or path outside the allowlist).
    Refused,
    /// After the settle time the trigger no longer held.
    Fixed,
    /// After the settle time the trigger still held.
    NotFixed,
    /// `max_attempts` were used up within `window`; the rule stopped acting.
    GaveUp,
    /// The trigger stayed clear for `rearm_after`; the rule acts again.
    Rearmed,
    /// `automon repair reset`: attempts and cooldown cleared, re-armed.
    Reset,
    /// `automon repair pause`.
    Paused,
    /// `automon repair resume`.
    Resumed,
    /// The daemon stopped while the action ran; its result is unknown.
    Interrupted,
}

impl Event {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Triggered => "triggered",
            Event::Skipped => "skipped",
            Event::DryRun => "dry_run",
            Event::Started => "started",
            Event::Succeeded => "succeeded",
            Event::Failed => "failed",
            Event::TimedOut => "timed_out",
            Event::Refused => "refused",
            Event::Fixed => "fixed",
            Event::NotFixed => "not_fixed",
            Event::GaveUp => "gave_up",
            Event::Rearmed => "rearmed",
            Event::Reset => "reset",
            Event::Paused => "paused",
            Event::Resumed => "resumed",
            Event::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Event> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Row id (the attempt id of a `started` row).
    pub id: i64,
    /// Unix ms.
    pub time_ms: i64,
    /// The repair rule (`*` for global events such as pause).
    pub rule: String,
    /// What happened (an [`Event`] word).
    pub event: String,
    /// The attempt this row belongs to (the id of its `started` row).
    pub attempt: Option<i64>,
    /// Action kind (`restart_unit`, `exec`, `clean_files`).
    pub action: String,
    /// What it acts on (`unit:nginx.service`).
    pub target: String,
    /// Reason, summary or error, one line.
    pub detail: String,
    /// The trigger's labels.
    pub labels: BTreeMap<String, String>,
    /// The trigger's value.
    pub value: Option<f64>,
    /// How long the action ran, ms.
    pub duration_ms: Option<i64>,
    /// Output excerpt.
    pub output: String,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only this rule.
    pub rule: Option<String>,
    /// Only rows at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// The repair database.
pub struct Db {
    conn: Mutex<Connection>,
    /// Control writes through this connection (the HTTP API's), which `data_version` does
    /// not count.
    own_control_writes: AtomicU64,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    rule TEXT NOT NULL,
    event TEXT NOT NULL,
    attempt INTEGER,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL,
    duration_ms INTEGER,
    output TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_rule_time ON audit (rule, time_ms);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);
CREATE TABLE IF NOT EXISTS rule_state (rule TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS control (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resets (rule TEXT PRIMARY KEY, requested_ms INTEGER NOT NULL);
"#;

fn excerpt(s: &str) -> &str {
    if s.len() <= OUTPUT_MAX {
        return s;
    }
    let mut end = OUTPUT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Db {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Ok(Self::from(crate::statedb::open(path, SCHEMA)?))
    }

    /// Opens an existing database (the CLI must not create one where no daemon runs).
    pub fn open_existing(path: &Path) -> Result<Db, DbError> {
        Ok(Self::from(crate::statedb::open_existing(path, SCHEMA)?))
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Db, DbError> {
        Ok(Self::from(crate::statedb::in_memory(SCHEMA)?))
    }

    fn from(conn: Connection) -> Db {
        Db {
            conn: Mutex::new(conn),
            own_control_writes: AtomicU64::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.conn.lock().map_err(|_| DbError::Poisoned)?;
        f(&mut conn)
    }

    /// Appends a row; returns its id.
    pub fn record(&self, e: &AuditEntry) -> Result<i64, DbError> {
        self.insert(e, false)
    }

    /// Appends the `started` row of an attempt, whose id becomes its attempt id.
    pub fn record_start(&self, e: &AuditEntry) -> Result<i64, DbError> {
        self.insert(e, true)
    }

    fn insert(&self, e: &AuditEntry, own_attempt: bool) -> Result<i64, DbError> {
        let labels = serde_json::to_string(&e.labels)?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO audit (time_ms, rule, event, attempt, action, target, detail, labels, \
                 value, duration_ms, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    e.time_ms,
                    e.rule,
                    e.event,
                    e.attempt,
                    e.action,
                    e.target,
                    e.detail,
                    labels,
                    e.value.filter(|v| v.is_finite()),
                    e.duration_ms,
                    excerpt(&e.output),
                ],
            )?;
            let id = tx.last_insert_rowid();
            if own_attempt {
                tx.execute("UPDATE audit SET attempt = id WHERE id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// Rows matching `filter`, newest first.
    pub fn log(&self, filter: &LogFilter) -> Result<Vec<AuditEntry>, DbError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit } as i64;
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, time_ms, rule, event, attempt, action, target, detail, labels, value, \
                 duration_ms, output FROM audit \
                 WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR time_ms >= ?2) \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![filter.rule, filter.since_ms, limit], |r| {
                let labels: String = r.get(8)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    time_ms: r.get(1)?,
                    rule: r.get(2)?,
                    event: r.get(3)?,
                    attempt: r.get(4)?,
                    action: r.get(5)?,
                    target: r.get(6)?,
                    detail: r.get(7)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    value: r.get(9)?,
                    duration_ms: r.get(10)?,
                    output: r.get(11)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Deletes rows older than `cutoff_ms`.
    pub fn prune(&self, cutoff_ms: i64) -> Result<usize, DbError> {
        self.with(|c| Ok(c.execute("DELETE FROM audit WHERE time_ms < ?1", [cutoff_ms])?))
    }

    /// Saves one rule's state.
    pub fn save_state<T: Serialize>(&self, rule: &str, state: &T) -> Result<(), DbError> {
        let body = serde_json::to_string(state)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO rule_state (rule, body) VALUES (?1, ?2) \
                 ON CONFLICT (rule) DO UPDATE SET body = excluded.body",
                params![rule, body],
            )?;
            Ok(())
        })
    }

    /// Every saved rule state (rules since removed from the config included).
    pub fn states<T: for<'de> Deserialize<'de>>(&self) -> Result<BTreeMap<String, T>, DbError> {
        let raw: Vec<(String, String)> = self.with(|c| {
            let mut stmt = c.prepare("SELECT rule, body FROM rule_state")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let mut out = BTreeMap::new();
        for (rule, body) in raw {
            match serde_json::from_str(&body) {
                Ok(s) => {
                    out.insert(rule, s);
                }
                // A state from an older version is dropped, not fatal: the rule starts armed.
                Err(e) => {
                    tracing::warn!(rule = %rule, error = %e, "ignoring unreadable repair state")
                }
            }
        }
        Ok(out)
    }

    /// Pauses or resumes every rule, recording who asked in the audit trail in the same
    /// transaction.
    pub fn set_paused(&self, paused: bool, now_ms: i64, detail: &str) -> Result<(), DbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO control (key, value) VALUES ('paused', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [if paused { "1" } else { "0" }],
            )?;
            tx.execute(
                "INSERT INTO audit (time_ms, rule, event, action, target, detail, labels, output) \
                 VALUES (?1, '*', ?2, '', '', ?3, '{}', '')",
                params![
                    now_ms,
                    if paused {
                        Event::Paused
                    } else {
                        Event::Resumed
                    }
                    .as_str(),
                    detail
                ],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        self.own_control_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether repairs are paused.
    pub fn paused(&self) -> Result<bool, DbError> {
        self.with(|c| {
            let v: Option<String> = c
                .query_row("SELECT value FROM control WHERE key = 'paused'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(v.as_deref() == Some("1"))
        })
    }

    /// Asks the engine to reset `rule` (it records the reset when it applies it).
    pub fn request_reset(&self, rule: &str, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO resets (rule, requested_ms) VALUES (?1, ?2) \
                 ON CONFLICT (rule) DO UPDATE SET requested_ms = excluded.requested_ms",
                params![rule, now_ms],
            )?;
            Ok(())
        })?;
        self.own_control_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the pending reset requests.
    pub fn take_resets(&self) -> Result<Vec<String>, DbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let rules = {
                let mut stmt = tx.prepare("SELECT rule FROM resets ORDER BY requested_ms")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<Result<Vec<String>, _>>()?
            };
            tx.execute("DELETE FROM resets", [])?;
            tx.commit()?;
            Ok(rules)
        })
    }

    /// Changes whenever the controls may have changed: another connection (the CLI)
    /// committed, or this one (the HTTP API) wrote a control. The engine re-reads the
    /// controls only then.
    pub fn control_version(&self) -> Result<(i64, u64), DbError> {
        let other: i64 =
            self.with(|c| Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?))?;
        Ok((other, self.own_control_writes.load(Ordering::Relaxed)))
    }
}

/// Parses a stored event word.
pub fn parse_event(s: &str) -> Option<Event> {
    Event::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rule: &str, event: Event, t: i64) -> AuditEntry {
        AuditEntry {
            time_ms: t,
            rule: rule.into(),
            event: event.as_str().into(),
            action: "exec".into(),
            target: "exec:/bin/true".into(),
            labels: [("job".to_owned(), "web".to_owned())].into(),
            value: Some(1.0),
            ..AuditEntry::default()
        }
    }

    #[test]
    fn rows_round_trip_newest_first_and_filter() {
        let db = Db::in_memory().unwrap();
        let a = db.record(&row("web", Event::Triggered, 10)).unwrap();
        let b = db.record_start(&row("web", Event::Started, 11)).unwrap();
        db.record(&row("disk", Event::Triggered, 12)).unwrap();
        assert!(b > a);
        let all = db.log(&LogFilter::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].rule, "disk");
        assert_eq!(all[2].labels["job"], "web");
        let web = db
            .log(&LogFilter {
                rule: Some("web".into()),
                ..LogFilter::default()
            })
            .unwrap();
        assert_eq!(web.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(web[0].attempt, Some(b), "a started row is its own attempt");
        assert_eq!(web[1].attempt, None);
        let since = db
            .log(&LogFilter {
                since_ms: Some(11),
                limit: 1,
                ..LogFilter::default()
            })
            .unwrap();
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].time_ms, 12);
        assert_eq!(db.prune(12).unwrap(), 2);
        assert_eq!(db.log(&LogFilter::default()).unwrap().len(), 1);
    }

    #[test]
    fn huge_output_is_cut_at_a_char_boundary() {
        let db = Db::in_memory().unwrap();
        let mut e = row("web", Event::Failed, 1);
        e.output = "é".repeat(OUTPUT_MAX);
        db.record(&e).unwrap();
        let got = &db.log(&LogFilter::default()).unwrap()[0];
        assert!(got.output.len() <= OUTPUT_MAX && got.output.len() > OUTPUT_MAX - 2);
    }

    #[test]
    fn controls_pause_and_reset_requests() {
        let db = Db::in_memory().unwrap();
        assert!(!db.paused().unwrap());
        db.set_paused(true, 5, "by alice").unwrap();
        assert!(db.paused().unwrap());
        let log = db.log(&LogFilter::default()).unwrap();
        assert_eq!(log[0].event, "paused");
        assert_eq!(log[0].rule, "*");
        let v = db.control_version().unwrap();
        db.request_reset("web", 6).unwrap();
        assert_ne!(
            db.control_version().unwrap(),
            v,
            "own writes change the version"
        );
        db.request_reset("web", 7).unwrap();
        assert_eq!(db.take_resets().unwrap(), vec!["web".to_owned()]);
        assert!(db.take_resets().unwrap().is_empty());
        assert_eq!(parse_event("not_fixed"), Some(Event::NotFixed));
        assert_eq!(parse_event("nope"), None);
    }

    #[test]
    fn states_round_trip() {
        let db = Db::in_memory().unwrap();
        db.save_state("web", &vec![1, 2, 3]).unwrap();
        db.save_state("web", &vec![4]).unwrap();
        let s: BTreeMap<String, Vec<i32>> = db.states().unwrap();
        assert_eq!(s["web"], vec![4]);
    }
}
