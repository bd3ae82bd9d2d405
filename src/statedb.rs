//! The small state databases beside the time-series store (`alerts.db`, `repairs.db`): how
//! they are opened, and how the CLI finds them. Both are written a few times per evaluation,
//! never per sample, so every commit is made durable (`synchronous=FULL`): a queued
//! notification or an audit row of an action that ran must survive power loss.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

fn init(conn: Connection, schema: &str) -> rusqlite::Result<Connection> {
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
    )?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// Opens (creating) the database at `path` with `schema` applied.
pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    init(Connection::open(path)?, schema)
}

/// Opens an existing database (the CLI must not create one where no daemon runs).
pub fn open_existing(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    init(conn, schema)
}

/// An in-memory database, for tests.
pub fn in_memory(schema: &str) -> rusqlite::Result<Connection> {
    init(Connection::open_in_memory()?, schema)
}

/// `data_dir/file` if it exists, else an error that says why it might not.
pub fn existing_file(data_dir: &Path, file: &str) -> Result<PathBuf, String> {
    let path = data_dir.join(file);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: the daemon has not run with this data directory (set --data-dir or data_dir)",
            path.display()
        ))
    }
}
