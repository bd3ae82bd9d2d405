//! Metric storage: the only module that touches SQLite.
//!
//! Samples are packed per series into compressed chunks over fixed windows ([`codec`]).
//! One writer thread owns the read-write connection and takes batches from a bounded channel;
//! recent samples live in an in-memory head (compact blocks, shared with readers) and reach
//! disk every flush interval as one head-log row; when a window is complete, its samples are
//! sealed into chunk rows and rollups, and the head-log rows are dropped, in one transaction.
//! Readers use their own connections.
//!
//! Layout on disk (see [`schema`]): `series` (id, name, labels), `chunks` (raw tier),
//! `rollup_5m` and `rollup_1h` (min, max, sum, count, last per bucket), `head_log`, `meta`.
//! Chunk keys are `(block_index << 32) | series_id`: ordinary rowid tables, because large
//! BLOBs in `WITHOUT ROWID` tables waste space.

pub mod codec;
mod fxhash;
mod head;
mod headlog;
mod index;
mod reader;
mod rollup;
mod schema;
mod source;
mod varint;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use index::{SeriesId, SeriesIndex, SeriesMeta};
pub use reader::{Reader, SeriesData, TierPoint};
pub use rollup::RollupPoint;
pub use source::StoreSource;
pub use writer::StoreStats;

use crate::model::{Batch, Labels};

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the staleness marker (not just any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Storage tiers: raw samples and two rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Every sample.
    Raw,
    /// 5-minute buckets.
    FiveMinutes,
    /// 1-hour buckets.
    OneHour,
}

impl Tier {
    /// All tiers, finest first.
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::FiveMinutes, Tier::OneHour];

    /// Bucket width in ms (0 for raw).
    pub fn resolution_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::FiveMinutes => 300_000,
            Tier::OneHour => 3_600_000,
        }
    }

    /// Table name.
    fn table(self) -> &'static str {
        match self {
            Tier::Raw => "chunks",
            Tier::FiveMinutes => "rollup_5m",
            Tier::OneHour => "rollup_1h",
        }
    }

    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::FiveMinutes => "5m",
            Tier::OneHour => "1h",
        }
    }
}

/// Where time comes from; tests substitute a manual clock to exercise retention.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::collector::scheduler::now_ms()
    }
}

/// A clock moved by hand, for retention and sealing tests.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: i64) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(ms))
    }

    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Storage settings.
#[derive(Clone)]
pub struct StoreConfig {
    /// Width of a raw chunk window.
    pub window: Duration,
    /// How often the head is written to the head log (the most a crash can lose).
    pub flush_interval: Duration,
    /// How long after a window ends before it is sealed, for late samples.
    pub seal_grace: Duration,
    /// Retention of raw samples.
    pub retention_raw: Duration,
    /// Retention of 5-minute rollups.
    pub retention_5m: Duration,
    /// Retention of 1-hour rollups.
    pub retention_1h: Duration,
    /// Cap on the database size in bytes; the oldest data goes first.
    pub max_size_bytes: u64,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Capacity of the channel into the writer, in messages: one per round of a collector
    /// group (every collector sharing an interval), or one per batch of an import.
    pub channel_capacity: usize,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("window", &self.window)
            .field("flush_interval", &self.flush_interval)
            .field("retention_raw", &self.retention_raw)
            .field("retention_5m", &self.retention_5m)
            .field("retention_1h", &self.retention_1h)
            .field("max_size_bytes", &self.max_size_bytes)
            .finish()
    }
}

const DAY: u64 = 86_400;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            window: Duration::from_secs(2 * 3600),
            flush_interval: Duration::from_secs(1),
            seal_grace: Duration::from_secs(60),
            retention_raw: Duration::from_secs(14 * DAY),
            retention_5m: Duration::from_secs(90 * DAY),
            retention_1h: Duration::from_secs(730 * DAY),
            max_size_bytes: 1 << 30,
            retention_interval: Duration::from_secs(60),
            channel_capacity: 64,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored BLOB could not be decoded.
    #[error("corrupt data in {what}: {message}")]
    Corrupt {
        /// Which table/key.
        what: String,
        /// Details.
        message: String,
    },
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer automon.
    #[error("database schema version {found} is newer than this automon supports ({supported}); upgrade automon or move the data directory away")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version known here.
        supported: i64,
    },
    /// The writer thread has stopped.
    #[error("the storage writer has stopped")]
    WriterGone,
    /// Another process (a running daemon, an import) has the database open for writing.
    #[error("database in {dir} is in use by another automon process{holder} (stop the daemon first, e.g. `systemctl stop automon`, or use another data directory)")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// `" (pid N)"` when the lock file names the holder, else empty.
        holder: String,
    },
}

/// Lock file beside the database: one writer per data directory, across processes.
pub const LOCK_FILE: &str = "automon.lock";

/// Takes the data directory's writer lock (`flock`, released by the kernel when the process
/// dies, so a crash never leaves a stale lock). SQLite alone would let a second process write
/// too, but the series index lives in the writer's memory: two writers would hand out the
/// same series ids.
fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, StoreError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            // The pid is only for the error message of whoever comes second.
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = write!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Err(StoreError::Locked {
                dir: dir.to_owned(),
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            })
        }
        Err((_, errno)) => Err(io(std::io::Error::from(errno))),
    }
}

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "automon.db";

/// State shared by the writer and every reader of this process.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) index: RwLock<SeriesIndex>,
    pub(crate) head: RwLock<head::Head>,
    pub(crate) stats: writer::SharedStats,
}

/// An open store: the writer thread plus a factory for readers.
pub struct Store {
    path: PathBuf,
    shared: Arc<Shared>,
    tx: std::sync::mpsc::SyncSender<writer::Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
    window_ms: i64,
    /// Held for the store's lifetime; dropped after the writer thread has stopped.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the database in `dir`, replays the head log
    /// and starts the writer thread.
    pub fn open(dir: &Path, cfg: StoreConfig) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        let shared = Arc::new(Shared::default());
        let window_ms = cfg.window.as_millis().max(1) as i64;
        let w = writer::Writer::open(&path, cfg.clone(), shared.clone())?;
        let (tx, rx) = std::sync::mpsc::sync_channel(cfg.channel_capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("automon-store".into())
            .spawn(move || w.run(rx))
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Store {
            path,
            shared,
            tx,
            thread: Some(thread),
            window_ms,
            _lock: lock,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sink for the ingest pipeline.
    pub fn sink(&self) -> StoreSink {
        StoreSink {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Queues a batch, waiting if the writer is behind (for bulk import).
    pub fn write_blocking(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.tx
            .send(writer::Msg::Write(vec![batch]))
            .map_err(|_| StoreError::WriterGone)
    }

    fn request(
        &self,
        make: impl FnOnce(std::sync::mpsc::SyncSender<Result<(), String>>) -> writer::Msg,
    ) -> Result<(), StoreError> {
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(make(ack_tx))
            .map_err(|_| StoreError::WriterGone)?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt {
                what: "writer".into(),
                message,
            }),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Writes everything received so far to the head log and waits for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.request(writer::Msg::Flush)
    }

    /// Seals every window in the head into chunks now (used after an import), then reclaims
    /// free space.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.request(writer::Msg::SealAll)
    }

    /// Runs retention (age and size cap) to completion now.
    pub fn run_retention(&self) -> Result<(), StoreError> {
        self.request(writer::Msg::Retention)
    }

    /// A reader with its own connection.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::open(&self.path, self.shared.clone(), self.window_ms)
    }

    /// Current statistics (for self-metrics).
    pub fn stats(&self) -> StoreStats {
        self.shared.stats.snapshot()
    }

    /// Flushes and stops the writer.
    pub fn close(mut self) -> Result<(), StoreError> {
        let r = self.flush();
        let _ = self.tx.send(writer::Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        r
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (ack, _rx) = std::sync::mpsc::sync_channel(1);
            let _ = self.tx.send(writer::Msg::Flush(ack));
            let _ = self.tx.send(writer::Msg::Stop);
            let _ = t.join();
        }
    }
}

/// Opens an existing database for reading only, without a writer: the head log is replayed
/// into memory so recent samples are visible (for `automon query` while the daemon is down).
pub fn open_read_only(dir: &Path) -> Result<Reader, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database here"),
        });
    }
    let shared = Arc::new(Shared::default());
    let window_ms = writer::load_read_only(&path, &shared)?;
    Reader::open(&path, shared, window_ms)
}

/// One series' samples in a [`WriteBatch`]: name, labels, `(timestamp ms, value)` pairs.
pub type SeriesSamples = (String, Labels, Vec<(i64, f64)>);

/// Samples to write: series given by name and labels (without `__name__`).
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    /// Source of the batch (collector name); series it reported before but not now get a
    /// staleness marker. Empty: no staleness tracking (imports).
    pub source: String,
    /// Samples as (name, labels, timestamp ms, value).
    pub samples: Vec<(String, Labels, i64, f64)>,
    /// Samples grouped by series as (name, labels, [(timestamp ms, value)]): the cheap form
    /// for bulk writes (imports), one series lookup per group instead of per sample.
    pub series: Vec<SeriesSamples>,
}

impl WriteBatch {
    /// Converts a collector batch; samples with their own timestamp keep it. Takes the batch
    /// so that names and labels move rather than being copied (about 600 samples a second
    /// at 1 s collection, each a name and a few label strings).
    pub fn from_batch(b: Batch) -> Self {
        let n = b.families.iter().map(|f| f.samples.len()).sum();
        let mut samples = Vec::with_capacity(n);
        for f in b.families {
            for s in f.samples {
                samples.push((
                    s.name,
                    s.labels,
                    s.timestamp_ms.unwrap_or(b.timestamp_ms),
                    s.value,
                ));
            }
        }
        WriteBatch {
            source: b.collector,
            samples,
            series: Vec::new(),
        }
    }
}

/// The pipeline's storage seam: hands batches to the writer without blocking the ingest task.
pub struct StoreSink {
    tx: std::sync::mpsc::SyncSender<writer::Msg>,
    shared: Arc<Shared>,
}

impl crate::pipeline::Sink for StoreSink {
    fn accept(&mut self, batches: Vec<Batch>) {
        if batches.is_empty() {
            return;
        }
        let wbs: Vec<WriteBatch> = batches.into_iter().map(WriteBatch::from_batch).collect();
        if let Err(std::sync::mpsc::TrySendError::Full(writer::Msg::Write(wbs))) =
            self.tx.try_send(writer::Msg::Write(wbs))
        {
            // The writer is far behind (a stalled disk): dropping keeps /metrics fresh and
            // memory bounded; the loss is counted and logged rather than silent.
            for wb in wbs {
                let n = wb.samples.len() as u64;
                self.shared.stats.dropped(n);
                tracing::warn!(collector = %wb.source, samples = n, "storage writer is behind; batch dropped");
            }
        }
    }
}
