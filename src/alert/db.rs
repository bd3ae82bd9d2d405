//! The alerting state database (`alerts.db` in the data directory): alert instances (so
//! state and `for` timers survive a restart), silences, the notification log (what was last
//! notified per group and integration, so a restart does not re-page) and the outbox.
//!
//! Invariant: a notification is enqueued and its notification-log entry written in one
//! transaction. After a crash either both exist (the dispatcher delivers it) or neither
//! (the group is flushed again): never "logged as sent but lost", never "sent twice as new".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::rule::Alert;
use super::silence::Silence;
use super::Fingerprint;

/// A database error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("alert state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not decode.
    #[error("alert state database: corrupt row: {0}")]
    Json(#[from] serde_json::Error),
    /// The lock is poisoned (a panic while holding it).
    #[error("alert state database: lock poisoned")]
    Poisoned,
}

/// What was last notified for one group on one integration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    /// Fingerprints notified as firing.
    pub firing: BTreeSet<Fingerprint>,
    /// Fingerprints notified as resolved.
    pub resolved: BTreeSet<Fingerprint>,
    /// When, Unix ms.
    pub sent_ms: i64,
}

/// A notification to enqueue.
#[derive(Debug, Clone)]
pub struct Enqueue {
    /// Integration id (`receiver/kind/index`).
    pub integration: String,
    /// Group key.
    pub group_key: String,
    /// Dedup key.
    pub dedup_key: String,
    /// The notification as JSON.
    pub payload: String,
    /// The log entry to record with it.
    pub nflog: NflogEntry,
}

/// An outbox row due for sending.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Integration id.
    pub integration: String,
    /// Group key.
    pub group_key: String,
    /// Dedup key.
    pub dedup_key: String,
    /// The notification as JSON.
    pub payload: String,
    /// When it was enqueued, Unix ms.
    pub created_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
}

/// Per-integration outbox figures for self-metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Pending rows per integration.
    pub pending: BTreeMap<String, u64>,
    /// Creation time of the oldest pending row, Unix ms.
    pub oldest_pending_ms: Option<i64>,
}

/// One outbox row for inspection: id, integration, dedup key, attempts, last error or answer.
pub type OutboxSummary = (i64, String, String, u32, Option<String>);

/// The database; one connection behind a mutex (operations are short).
pub struct Db {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    rule TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (rule, fingerprint)
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    ends_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nflog (
    integration TEXT NOT NULL,
    group_key TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    PRIMARY KEY (integration, group_key)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration TEXT NOT NULL,
    group_key TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    detail TEXT,
    done_ms INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, next_attempt_ms);
"#;

/// How long delivered and failed outbox rows and stale log entries are kept for inspection.
const KEEP_DONE_MS: i64 = 7 * 24 * 3600 * 1000;

impl Db {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Ok(Self::from(crate::statedb::open(path, SCHEMA)?))
    }

    /// Opens an existing database for the CLI (`automon alerts`, `automon silence`).
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
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.conn.lock().map_err(|_| DbError::Poisoned)?;
        f(&mut conn)
    }

    /// Replaces the saved alert instances and the time of the evaluation they result from.
    pub fn save_alerts<'a>(
        &self,
        eval_ms: i64,
        alerts: impl Iterator<Item = &'a Alert>,
    ) -> Result<(), DbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM alerts", [])?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR REPLACE INTO alerts (rule, fingerprint, body) VALUES (?1, ?2, ?3)",
                )?;
                for a in alerts {
                    ins.execute(params![
                        a.rule,
                        a.fingerprint() as i64,
                        serde_json::to_string(a)?
                    ])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_eval_ms', ?1)",
                params![eval_ms.to_string()],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The saved alert instances and the time of the last evaluation.
    pub fn load_alerts(&self) -> Result<(Option<i64>, Vec<Alert>), DbError> {
        self.with(|c| {
            let last: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'last_eval_ms'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let mut stmt = c.prepare("SELECT body FROM alerts ORDER BY rule, fingerprint")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let alerts = bodies
                .iter()
                .map(|b| serde_json::from_str(b))
                .collect::<Result<Vec<Alert>, _>>()?;
            Ok((last.and_then(|s| s.parse().ok()), alerts))
        })
    }

    /// Creates or replaces a silence.
    pub fn put_silence(&self, s: &Silence) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO silences (id, body, ends_ms) VALUES (?1, ?2, ?3)",
                params![s.id, serde_json::to_string(s)?, s.ends_at_ms],
            )?;
            Ok(())
        })
    }

    /// One silence by id.
    pub fn silence(&self, id: &str) -> Result<Option<Silence>, DbError> {
        self.with(|c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM silences WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    /// Every silence, newest end first.
    pub fn silences(&self) -> Result<Vec<Silence>, DbError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT body FROM silences ORDER BY ends_ms DESC, id")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(bodies
                .iter()
                .map(|b| serde_json::from_str(b))
                .collect::<Result<Vec<Silence>, _>>()?)
        })
    }

    /// SQLite's data version: changes when another connection (the CLI) commits.
    pub fn data_version(&self) -> Result<i64, DbError> {
        self.with(|c| Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?))
    }

    /// Every notification-log entry.
    pub fn nflog(&self) -> Result<BTreeMap<(String, String), NflogEntry>, DbError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT integration, group_key, body FROM nflog")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = BTreeMap::new();
            for (i, g, body) in rows {
                out.insert((i, g), serde_json::from_str(&body)?);
            }
            Ok(out)
        })
    }

    /// Enqueues notifications and records their log entries, atomically. A notification whose
    /// dedup key is already pending for the integration is not queued twice.
    pub fn enqueue(&self, items: &[Enqueue], now_ms: i64) -> Result<usize, DbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut queued = 0;
            for e in items {
                let pending: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM outbox WHERE integration = ?1 AND dedup_key = ?2 AND state = 'pending')",
                    )?
                    .query_row(params![e.integration, e.dedup_key], |r| r.get(0))?;
                if !pending && !e.payload.is_empty() {
                    tx.prepare_cached(
                        "INSERT INTO outbox (integration, group_key, dedup_key, payload, created_ms, next_attempt_ms) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    )?
                    .execute(params![e.integration, e.group_key, e.dedup_key, e.payload, now_ms])?;
                    queued += 1;
                }
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO nflog (integration, group_key, body, sent_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![e.integration, e.group_key, serde_json::to_string(&e.nflog)?, e.nflog.sent_ms])?;
            }
            tx.commit()?;
            Ok(queued)
        })
    }

    /// Rows due at `now_ms`: for each integration and group only the oldest pending row, so
    /// a group's notifications arrive in the order they were made (a resolve never overtakes
    /// its firing).
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>, DbError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT o.id, o.integration, o.group_key, o.dedup_key, o.payload, o.created_ms, o.attempts \
                 FROM outbox o \
                 WHERE o.state = 'pending' AND o.next_attempt_ms <= ?1 \
                   AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.state = 'pending' \
                               AND p.integration = o.integration AND p.group_key = o.group_key) \
                 ORDER BY o.id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![now_ms, limit as i64], |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        integration: r.get(1)?,
                        group_key: r.get(2)?,
                        dedup_key: r.get(3)?,
                        payload: r.get(4)?,
                        created_ms: r.get(5)?,
                        attempts: r.get::<_, i64>(6)? as u32,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// The earliest `next_attempt_ms` of a pending row, to sleep until.
    pub fn next_due_ms(&self) -> Result<Option<i64>, DbError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT MIN(next_attempt_ms) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Marks a row delivered.
    pub fn mark_sent(&self, id: i64, detail: &str, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET state = 'sent', detail = ?2, done_ms = ?3, attempts = attempts + 1 WHERE id = ?1",
                params![id, detail, now_ms],
            )?;
            Ok(())
        })
    }

    /// Schedules another attempt.
    pub fn mark_retry(&self, id: i64, error: &str, next_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3 WHERE id = ?1",
                params![id, error, next_ms],
            )?;
            Ok(())
        })
    }

    /// Gives a row up.
    pub fn mark_failed(&self, id: i64, error: &str, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2, done_ms = ?3 WHERE id = ?1",
                params![id, error, now_ms],
            )?;
            Ok(())
        })
    }

    /// Pending counts and the oldest pending row's age, for self-metrics.
    pub fn outbox_stats(&self) -> Result<OutboxStats, DbError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT integration, COUNT(*), MIN(created_ms) FROM outbox WHERE state = 'pending' GROUP BY integration",
            )?;
            let mut stats = OutboxStats::default();
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?;
            for row in rows {
                let (i, n, oldest) = row?;
                stats.pending.insert(i, n as u64);
                stats.oldest_pending_ms = Some(stats.oldest_pending_ms.map_or(oldest, |o: i64| o.min(oldest)));
            }
            Ok(stats)
        })
    }

    /// Rows in a state, newest first (for tests and inspection).
    pub fn outbox_rows(&self, state: &str) -> Result<Vec<OutboxSummary>, DbError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, integration, dedup_key, attempts, COALESCE(last_error, detail) FROM outbox WHERE state = ?1 ORDER BY id DESC",
            )?;
            let rows = stmt
                .query_map([state], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u32, r.get(4)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Drops finished outbox rows, expired silences and log entries older than a week.
    pub fn prune(&self, now_ms: i64) -> Result<(), DbError> {
        let cutoff = now_ms - KEEP_DONE_MS;
        self.with(|c| {
            c.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND done_ms < ?1",
                [cutoff],
            )?;
            c.execute("DELETE FROM silences WHERE ends_ms < ?1", [cutoff])?;
            c.execute("DELETE FROM nflog WHERE sent_ms < ?1", [cutoff])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(integration: &str, group: &str, key: &str) -> Enqueue {
        Enqueue {
            integration: integration.into(),
            group_key: group.into(),
            dedup_key: key.into(),
            payload: "{}".into(),
            nflog: NflogEntry {
                firing: [1].into(),
                resolved: BTreeSet::new(),
                sent_ms: 5,
            },
        }
    }

    #[test]
    fn enqueue_skips_a_pending_duplicate_and_logs() {
        let db = Db::in_memory().unwrap();
        assert_eq!(
            db.enqueue(&[item("r/webhook/0", "g", "k1")], 10).unwrap(),
            1
        );
        assert_eq!(
            db.enqueue(&[item("r/webhook/0", "g", "k1")], 11).unwrap(),
            0
        );
        assert_eq!(db.enqueue(&[item("r/email/0", "g", "k1")], 11).unwrap(), 1);
        let log = db.nflog().unwrap();
        assert_eq!(
            log[&("r/webhook/0".to_string(), "g".to_string())].firing,
            [1].into()
        );
    }

    #[test]
    fn due_returns_only_the_oldest_per_group_in_order() {
        let db = Db::in_memory().unwrap();
        db.enqueue(
            &[
                item("a", "g1", "k1"),
                item("a", "g1", "k2"),
                item("a", "g2", "k3"),
            ],
            0,
        )
        .unwrap();
        let due = db.due(0, 10).unwrap();
        let keys: Vec<_> = due.iter().map(|r| r.dedup_key.as_str()).collect();
        assert_eq!(keys, ["k1", "k3"]);
        db.mark_sent(due[0].id, "HTTP 200", 1).unwrap();
        let keys: Vec<_> = db
            .due(1, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.dedup_key)
            .collect();
        assert_eq!(keys, ["k2", "k3"]);
    }

    #[test]
    fn retry_and_failure_bookkeeping() {
        let db = Db::in_memory().unwrap();
        db.enqueue(&[item("a", "g", "k")], 0).unwrap();
        let id = db.due(0, 1).unwrap()[0].id;
        db.mark_retry(id, "connection refused", 1000).unwrap();
        assert!(db.due(999, 10).unwrap().is_empty());
        assert_eq!(db.next_due_ms().unwrap(), Some(1000));
        assert_eq!(db.due(1000, 10).unwrap()[0].attempts, 1);
        let stats = db.outbox_stats().unwrap();
        assert_eq!((stats.pending["a"], stats.oldest_pending_ms), (1, Some(0)));
        db.mark_failed(id, "gave up", 2000).unwrap();
        assert!(db.outbox_stats().unwrap().pending.is_empty());
        assert_eq!(db.outbox_rows("failed").unwrap()[0].3, 2);
    }
}
