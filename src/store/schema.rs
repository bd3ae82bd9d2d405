//! Schema and versioned migrations, run at open. `PRAGMA user_version` holds the version.

use rusqlite::Connection;

/// Newest schema version this build knows.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- No UNIQUE index on (name, labels): the single writer checks its in-memory index before
-- inserting, and the index would duplicate every label string on disk.
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL
);
-- key = (window_index << 32) | series_id
CREATE TABLE chunks (key INTEGER PRIMARY KEY, data BLOB NOT NULL);
-- key = (day_index << 32) | series_id
CREATE TABLE rollup_5m (key INTEGER PRIMARY KEY, data BLOB NOT NULL);
-- key = (32-day block index << 32) | series_id
CREATE TABLE rollup_1h (key INTEGER PRIMARY KEY, data BLOB NOT NULL);
-- One row per flush: samples not yet sealed into chunks, replayed at start-up.
CREATE TABLE head_log (seq INTEGER PRIMARY KEY, max_window INTEGER NOT NULL, data BLOB NOT NULL);
";

/// Connection settings every connection uses.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 1 MiB of page cache per connection instead of SQLite's 2 MiB default: chunk reads are
    // point lookups by key, and the daemon's resident memory matters more than cache hits.
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(())
}

/// Brings the database to [`VERSION`]. Returns the version found before, or an error when the
/// file is newer than this build.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(MigrateError::TooNew(found));
    }
    if found == 0 {
        // auto_vacuum must be chosen before the first table exists.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let tx = conn.transaction()?;
        tx.execute_batch(V1)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        tx.commit()?;
    } else {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    Ok(found)
}

/// Migration failure.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// SQLite error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Database newer than this build.
    #[error("schema version {0} is newer than supported")]
    TooNew(i64),
}
