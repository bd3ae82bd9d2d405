//! The writer thread: owns the read-write connection. It resolves series ids, appends to the
//! head, writes one head-log row per flush interval, seals complete windows into chunks and
//! rollups, and runs retention in small steps between batches so ingest never waits long.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use super::head::Head;
use super::index::{labels_from_json, labels_to_json, SeriesId, SeriesMeta};
use super::{
    codec, headlog, rollup, schema, Shared, StoreConfig, StoreError, Tier, WriteBatch,
    STALE_NAN_BITS,
};

/// Messages to the writer.
pub(crate) enum Msg {
    /// One round of collections (one batch per source), or one batch of an import.
    Write(Vec<WriteBatch>),
    Flush(SyncSender<Result<(), String>>),
    SealAll(SyncSender<Result<(), String>>),
    Retention(SyncSender<Result<(), String>>),
    Stop,
}

/// Width of a rollup tier's storage block: one row per series holds this much time.
pub(crate) fn block_ms(tier: Tier, window_ms: i64) -> i64 {
    match tier {
        Tier::Raw => window_ms,
        Tier::FiveMinutes => 86_400_000,
        Tier::OneHour => 32 * 86_400_000,
    }
}

/// Row key of `(block, series)`.
pub(crate) fn key(block: i64, id: SeriesId) -> i64 {
    (block << 32) | i64::from(id)
}

/// Counters shared with the rest of the process (self-metrics).
#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    ingested: AtomicU64,
    dropped: AtomicU64,
    out_of_order: AtomicU64,
    flushes: AtomicU64,
    flush_seconds_bits: AtomicU64,
    chunks_written: AtomicU64,
    retention_runs: AtomicU64,
    bytes: [AtomicU64; 3],
    file_bytes: AtomicU64,
    series: AtomicU64,
    head_samples: AtomicU64,
    head_bytes: AtomicU64,
}

impl SharedStats {
    pub(crate) fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            samples_ingested: self.ingested.load(Ordering::Relaxed),
            samples_dropped: self.dropped.load(Ordering::Relaxed),
            samples_out_of_order: self.out_of_order.load(Ordering::Relaxed),
            head_flushes: self.flushes.load(Ordering::Relaxed),
            last_flush_seconds: f64::from_bits(self.flush_seconds_bits.load(Ordering::Relaxed)),
            chunks_written: self.chunks_written.load(Ordering::Relaxed),
            retention_runs: self.retention_runs.load(Ordering::Relaxed),
            tier_bytes: [
                self.bytes[0].load(Ordering::Relaxed),
                self.bytes[1].load(Ordering::Relaxed),
                self.bytes[2].load(Ordering::Relaxed),
            ],
            file_bytes: self.file_bytes.load(Ordering::Relaxed),
            series: self.series.load(Ordering::Relaxed),
            head_samples: self.head_samples.load(Ordering::Relaxed),
            head_bytes: self.head_bytes.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of storage statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// Samples accepted into the head.
    pub samples_ingested: u64,
    /// Samples dropped because the writer was behind.
    pub samples_dropped: u64,
    /// Samples refused as older than the series' last one.
    pub samples_out_of_order: u64,
    /// Head-log flushes.
    pub head_flushes: u64,
    /// Duration of the last flush.
    pub last_flush_seconds: f64,
    /// Chunk rows written.
    pub chunks_written: u64,
    /// Completed retention runs.
    pub retention_runs: u64,
    /// BLOB bytes per tier (raw, 5m, 1h), as of the last retention run.
    pub tier_bytes: [u64; 3],
    /// Database file plus WAL size in bytes.
    pub file_bytes: u64,
    /// Known series.
    pub series: u64,
    /// Samples in the head.
    pub head_samples: u64,
    /// Approximate head memory in bytes.
    pub head_bytes: u64,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(sql(path))?;
    schema::configure(&conn).map_err(sql(path))?;
    Ok(conn)
}

fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn meta_set(conn: &Connection, key: &str, v: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, v],
    )?;
    Ok(())
}

fn load_index(conn: &Connection, shared: &Shared) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT id, name, labels FROM series")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut ix = match shared.index.write() {
        Ok(ix) => ix,
        Err(p) => p.into_inner(),
    };
    for row in rows {
        let (id, name, labels) = row?;
        let (Ok(id), Some(labels)) = (SeriesId::try_from(id), labels_from_json(&labels)) else {
            tracing::warn!(id, "skipping unreadable series row");
            continue;
        };
        ix.insert(id, SeriesMeta { name, labels });
    }
    shared
        .stats
        .series
        .store(ix.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Replays head-log rows into the head, skipping windows already sealed.
fn replay(
    conn: &Connection,
    shared: &Shared,
    window_ms: i64,
    watermark: Option<i64>,
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare("SELECT seq, data FROM head_log ORDER BY seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut head = match shared.head.write() {
        Ok(h) => h,
        Err(p) => p.into_inner(),
    };
    let mut n = 0;
    for row in rows {
        let (seq, blob) = row?;
        let Some(samples) = headlog::decode(&blob) else {
            tracing::error!(seq, "head log row is corrupt; skipping it");
            continue;
        };
        for (id, ts, v) in samples {
            let w = ts.div_euclid(window_ms);
            if watermark.is_some_and(|wm| w <= wm) {
                continue;
            }
            if head.push(id, w, ts, v) {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Loads index and head for a writer-less reader; returns the window width.
pub(crate) fn load_read_only(path: &Path, shared: &Shared) -> Result<i64, StoreError> {
    let conn = open_conn(path)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql(path))?;
    if version > schema::VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: schema::VERSION,
        });
    }
    let window_ms = meta_get(&conn, "window_ms")
        .map_err(sql(path))?
        .unwrap_or(7_200_000);
    let watermark = meta_get(&conn, "sealed_through").map_err(sql(path))?;
    load_index(&conn, shared).map_err(sql(path))?;
    replay(&conn, shared, window_ms, watermark).map_err(sql(path))?;
    Ok(window_ms)
}

/// Retention progress, stepped between batches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RetentionPhase {
    Age(usize),
    SizeCap,
    Vacuum,
}

pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    cfg: StoreConfig,
    shared: Arc<Shared>,
    window_ms: i64,
    watermark: Option<i64>,
    /// Samples since the last flush (head-log row to be).
    pending: Vec<(SeriesId, i64, f64)>,
    /// Samples for already-sealed windows, merged into chunks at the next flush.
    late: Vec<(SeriesId, i64, f64)>,
    /// Series each source reported last time, for staleness markers.
    last_seen: HashMap<String, (i64, Vec<SeriesId>)>,
    last_flush: Instant,
    next_retention: Instant,
    retention: Option<RetentionPhase>,
    retention_waiters: Vec<SyncSender<Result<(), String>>>,
}

impl Writer {
    pub(crate) fn open(
        path: &Path,
        cfg: StoreConfig,
        shared: Arc<Shared>,
    ) -> Result<Writer, StoreError> {
        let mut conn = open_conn(path)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::MigrateError::TooNew(found) => StoreError::TooNew {
                found,
                supported: schema::VERSION,
            },
            schema::MigrateError::Sqlite(source) => StoreError::Sqlite {
                path: path.to_owned(),
                source,
            },
        })?;
        let configured = cfg.window.as_millis().max(1) as i64;
        // The window width is part of every chunk key: once data exists it cannot change.
        let window_ms = match meta_get(&conn, "window_ms").map_err(sql(path))? {
            Some(w) => {
                if w != configured {
                    tracing::warn!(
                        stored = w,
                        configured,
                        "storage window differs from the database's; keeping the database's"
                    );
                }
                w
            }
            None => {
                meta_set(&conn, "window_ms", configured).map_err(sql(path))?;
                configured
            }
        };
        let watermark = meta_get(&conn, "sealed_through").map_err(sql(path))?;
        load_index(&conn, &shared).map_err(sql(path))?;
        let replayed = replay(&conn, &shared, window_ms, watermark).map_err(sql(path))?;
        if replayed > 0 {
            tracing::info!(samples = replayed, "replayed the head log");
        }
        let mut w = Writer {
            conn,
            path: path.to_owned(),
            shared,
            window_ms,
            watermark,
            pending: Vec::new(),
            late: Vec::new(),
            last_seen: HashMap::new(),
            last_flush: Instant::now(),
            next_retention: Instant::now() + Duration::from_secs(5).min(cfg.retention_interval),
            retention: None,
            retention_waiters: Vec::new(),
            cfg,
        };
        w.update_sizes();
        Ok(w)
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
        loop {
            // While retention is active, only peek at the channel between its steps.
            let timeout = if self.retention.is_some() {
                Duration::ZERO
            } else {
                self.cfg
                    .flush_interval
                    .saturating_sub(self.last_flush.elapsed())
            };
            match rx.recv_timeout(timeout) {
                Ok(Msg::Write(bs)) => {
                    for b in bs {
                        self.write(b);
                    }
                }
                Ok(Msg::Flush(ack)) => {
                    let r = self.flush().map_err(|e| e.to_string());
                    let _ = ack.send(r);
                }
                Ok(Msg::SealAll(ack)) => {
                    let r = self
                        .flush()
                        .and_then(|_| self.seal(i64::MAX))
                        .and_then(|_| self.vacuum_all())
                        .map_err(|e| e.to_string());
                    self.update_sizes();
                    let _ = ack.send(r);
                }
                Ok(Msg::Retention(ack)) => {
                    self.retention_waiters.push(ack);
                    if self.retention.is_none() {
                        self.retention = Some(RetentionPhase::Age(0));
                    }
                }
                Ok(Msg::Stop) => {
                    if let Err(e) = self.flush() {
                        tracing::error!("final flush failed: {e}");
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush();
                    return;
                }
            }
            if self.last_flush.elapsed() >= self.cfg.flush_interval {
                if let Err(e) = self.flush() {
                    tracing::error!("storage flush failed: {e}");
                }
                if let Err(e) = self.seal_due() {
                    tracing::error!("sealing windows failed: {e}");
                }
            }
            if self.retention.is_none() && Instant::now() >= self.next_retention {
                self.retention = Some(RetentionPhase::Age(0));
            }
            if self.retention.is_some() {
                self.retention_step();
            }
        }
    }

    /// Ids of the given series, creating the unknown ones.
    fn resolve(&mut self, keys: &[(&str, &[(String, String)])]) -> Vec<Option<SeriesId>> {
        let mut ids: Vec<Option<SeriesId>> = {
            let ix = match self.shared.index.read() {
                Ok(ix) => ix,
                Err(p) => p.into_inner(),
            };
            keys.iter().map(|(n, l)| ix.get(n, l)).collect()
        };
        for (i, (name, labels)) in keys.iter().enumerate() {
            if ids[i].is_some() {
                continue;
            }
            // An earlier entry of this batch may have created the series already.
            let known = match self.shared.index.read() {
                Ok(ix) => ix.get(name, labels),
                Err(p) => p.into_inner().get(name, labels),
            };
            ids[i] = match known {
                Some(id) => Some(id),
                None => match self.create_series(name, labels) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        tracing::error!(series = %name, "cannot create series: {e}");
                        None
                    }
                },
            };
        }
        ids
    }

    /// Routes one sample: the head (and the next head-log row), or the late list when its
    /// window is already sealed. Returns whether it was accepted.
    fn accept(&mut self, head: &mut Head, id: SeriesId, ts: i64, v: f64) -> bool {
        let w = ts.div_euclid(self.window_ms);
        if self.watermark.is_some_and(|wm| w <= wm) {
            self.late.push((id, ts, v));
            true
        } else if head.push(id, w, ts, v) {
            self.pending.push((id, ts, v));
            true
        } else {
            self.shared
                .stats
                .out_of_order
                .fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn write(&mut self, b: WriteBatch) {
        let keys: Vec<(&str, &[(String, String)])> = b
            .samples
            .iter()
            .map(|(n, l, _, _)| (n.as_str(), l.as_slice()))
            .chain(b.series.iter().map(|(n, l, _)| (n.as_str(), l.as_slice())))
            .collect();
        let ids = self.resolve(&keys);
        drop(keys);
        let shared = self.shared.clone();
        let mut head = match shared.head.write() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        let mut accepted = 0u64;
        let mut max_ts = i64::MIN;
        let (sample_ids, series_ids) = ids.split_at(b.samples.len());
        for ((_, _, ts, v), id) in b.samples.iter().zip(sample_ids) {
            let Some(id) = *id else { continue };
            max_ts = max_ts.max(*ts);
            accepted += u64::from(self.accept(&mut head, id, *ts, *v));
        }
        for ((_, _, points), id) in b.series.iter().zip(series_ids) {
            let Some(id) = *id else { continue };
            for &(ts, v) in points {
                max_ts = max_ts.max(ts);
                accepted += u64::from(self.accept(&mut head, id, ts, v));
            }
        }
        if !b.source.is_empty() && max_ts != i64::MIN {
            let now: Vec<SeriesId> = ids.iter().flatten().copied().collect();
            let stale_at = max_ts;
            if let Some((_, before)) = self.last_seen.get(&b.source) {
                let present: HashSet<SeriesId> = now.iter().copied().collect();
                for id in before.iter().filter(|id| !present.contains(id)) {
                    // The series ended: a staleness marker stops queries from extending it.
                    let w = stale_at.div_euclid(self.window_ms);
                    let stale = f64::from_bits(STALE_NAN_BITS);
                    if head.push(*id, w, stale_at, stale) {
                        self.pending.push((*id, stale_at, stale));
                    }
                }
            }
            self.last_seen.insert(b.source, (stale_at, now));
        }
        self.shared
            .stats
            .ingested
            .fetch_add(accepted, Ordering::Relaxed);
        self.shared
            .stats
            .head_samples
            .store(head.len() as u64, Ordering::Relaxed);
    }

    fn create_series(
        &mut self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<SeriesId, StoreError> {
        let json = labels_to_json(labels);
        self.conn
            .execute(
                "INSERT INTO series (name, labels) VALUES (?1, ?2)",
                params![name, json],
            )
            .map_err(sql(&self.path))?;
        let id = self.conn.last_insert_rowid();
        let id = SeriesId::try_from(id).map_err(|_| StoreError::Corrupt {
            what: "series".into(),
            message: format!("id {id} out of range"),
        })?;
        let mut ix = match self.shared.index.write() {
            Ok(ix) => ix,
            Err(p) => p.into_inner(),
        };
        ix.insert(
            id,
            SeriesMeta {
                name: name.to_owned(),
                labels: labels.to_vec(),
            },
        );
        self.shared
            .stats
            .series
            .store(ix.len() as u64, Ordering::Relaxed);
        Ok(id)
    }

    /// One transaction: the head-log row for pending samples, and late samples merged into
    /// their (already sealed) chunks.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() && self.late.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path))?;
        if !self.pending.is_empty() {
            let max_window = self
                .pending
                .iter()
                .map(|(_, ts, _)| ts.div_euclid(self.window_ms))
                .max()
                .unwrap_or(0);
            tx.execute(
                "INSERT INTO head_log (max_window, data) VALUES (?1, ?2)",
                params![max_window, headlog::encode(&self.pending)],
            )
            .map_err(sql(&path))?;
        }
        let mut late: HashMap<(SeriesId, i64), Vec<(i64, f64)>> = HashMap::new();
        for &(id, ts, v) in &self.late {
            late.entry((id, ts.div_euclid(self.window_ms)))
                .or_default()
                .push((ts, v));
        }
        let mut written = 0;
        for ((id, w), mut samples) in late {
            samples.sort_by_key(|s| s.0);
            merge_samples(&tx, Tier::Raw, key(w, id), &samples).map_err(|e| map_merge(&path, e))?;
            write_rollups(&tx, id, &samples, self.window_ms).map_err(|e| map_merge(&path, e))?;
            written += 1;
        }
        tx.commit().map_err(sql(&path))?;
        self.pending.clear();
        self.late.clear();
        let st = &self.shared.stats;
        if let Ok(head) = self.shared.head.read() {
            st.head_bytes
                .store(head.memory_bytes() as u64, Ordering::Relaxed);
        }
        st.flushes.fetch_add(1, Ordering::Relaxed);
        st.chunks_written.fetch_add(written, Ordering::Relaxed);
        st.flush_seconds_bits
            .store(started.elapsed().as_secs_f64().to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// Seals windows that ended more than the grace period ago.
    fn seal_due(&mut self) -> Result<(), StoreError> {
        let now = self.cfg.clock.now_ms();
        let due = (now - self.cfg.seal_grace.as_millis() as i64).div_euclid(self.window_ms) - 1;
        let has_due = {
            let head = match self.shared.head.read() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            head.min_window().is_some_and(|m| m <= due)
        };
        if has_due {
            self.seal(due)?;
        }
        Ok(())
    }

    /// Moves every head window `<= upto` into chunks and rollups, advances the watermark and
    /// drops the head-log rows that are now fully sealed, in one transaction. The caller has
    /// flushed, so every head sample is in the head log.
    fn seal(&mut self, upto: i64) -> Result<(), StoreError> {
        let taken = {
            let mut head = match self.shared.head.write() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            head.take_upto(upto)
        };
        if taken.is_empty() {
            return Ok(());
        }
        let sealed_max = taken.iter().map(|t| t.1).max().unwrap_or(upto).min(upto);
        let new_wm = self.watermark.map_or(sealed_max, |w| w.max(sealed_max));
        let path = self.path.clone();
        let window_ms = self.window_ms;
        let result = (|| -> Result<u64, MergeError> {
            let tx = self.conn.unchecked_transaction()?;
            // Rollups per series over all its sealed windows at once: one read-modify-write
            // per rollup block instead of one per window.
            let mut per_series: HashMap<SeriesId, Vec<(i64, f64)>> = HashMap::new();
            for (id, w, samples) in &taken {
                merge_samples(&tx, Tier::Raw, key(*w, *id), samples)?;
                per_series
                    .entry(*id)
                    .or_default()
                    .extend_from_slice(samples);
            }
            for (id, mut samples) in per_series {
                samples.sort_by_key(|s| s.0);
                write_rollups(&tx, id, &samples, window_ms)?;
            }
            meta_set(&tx, "sealed_through", new_wm)?;
            tx.execute("DELETE FROM head_log WHERE max_window <= ?1", [new_wm])?;
            tx.commit()?;
            Ok(taken.len() as u64)
        })();
        match result {
            Ok(n) => {
                self.watermark = Some(new_wm);
                self.shared
                    .stats
                    .chunks_written
                    .fetch_add(n, Ordering::Relaxed);
                if let Ok(head) = self.shared.head.read() {
                    self.shared
                        .stats
                        .head_samples
                        .store(head.len() as u64, Ordering::Relaxed);
                    self.shared
                        .stats
                        .head_bytes
                        .store(head.memory_bytes() as u64, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                // Nothing was committed: keep the samples queryable and retry next time.
                if let Ok(mut head) = self.shared.head.write() {
                    head.restore(taken);
                }
                Err(map_merge(&path, e))
            }
        }
    }

    fn retention_step(&mut self) {
        let Some(phase) = self.retention else { return };
        let next = match self.retention_phase(phase) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("retention failed: {e}");
                None
            }
        };
        self.retention = next;
        if next.is_none() {
            self.update_sizes();
            self.shared
                .stats
                .retention_runs
                .fetch_add(1, Ordering::Relaxed);
            self.next_retention = Instant::now() + self.cfg.retention_interval;
            for w in self.retention_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
    }

    /// Does a bounded amount of work and returns the next phase (None when done).
    fn retention_phase(
        &mut self,
        phase: RetentionPhase,
    ) -> Result<Option<RetentionPhase>, StoreError> {
        const STEP_ROWS: i64 = 500;
        let path = self.path.clone();
        let now = self.cfg.clock.now_ms();
        match phase {
            RetentionPhase::Age(i) => {
                let Some(&tier) = Tier::ALL.get(i) else {
                    return Ok(Some(RetentionPhase::SizeCap));
                };
                let keep = match tier {
                    Tier::Raw => self.cfg.retention_raw,
                    Tier::FiveMinutes => self.cfg.retention_5m,
                    Tier::OneHour => self.cfg.retention_1h,
                };
                let block = block_ms(tier, self.window_ms);
                // Blocks that end before the cutoff: every sample in them is too old.
                let cutoff_block = (now - keep.as_millis() as i64).div_euclid(block);
                let deleted = self
                    .conn
                    .execute(
                        &format!(
                            "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE key < ?1 ORDER BY key LIMIT ?2)",
                            t = tier.table()
                        ),
                        params![key(cutoff_block, 0), STEP_ROWS],
                    )
                    .map_err(sql(&path))?;
                Ok(Some(if deleted as i64 >= STEP_ROWS {
                    RetentionPhase::Age(i)
                } else {
                    RetentionPhase::Age(i + 1)
                }))
            }
            RetentionPhase::SizeCap => {
                let used = self.used_bytes().map_err(sql(&path))?;
                if used <= self.cfg.max_size_bytes {
                    return Ok(Some(RetentionPhase::Vacuum));
                }
                // Oldest data first: the oldest raw window, then rollups when raw is gone.
                for tier in Tier::ALL {
                    let t = tier.table();
                    let min: Option<i64> = self
                        .conn
                        .query_row(&format!("SELECT MIN(key) FROM {t}"), [], |r| r.get(0))
                        .map_err(sql(&path))?;
                    if let Some(min) = min {
                        let block = min >> 32;
                        self.conn
                            .execute(
                                &format!("DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE key >= ?1 AND key < ?2 LIMIT ?3)"),
                                params![key(block, 0), key(block + 1, 0), STEP_ROWS],
                            )
                            .map_err(sql(&path))?;
                        tracing::info!(
                            tier = tier.as_str(),
                            block,
                            "size cap reached; dropped oldest data"
                        );
                        return Ok(Some(RetentionPhase::SizeCap));
                    }
                }
                Ok(Some(RetentionPhase::Vacuum))
            }
            RetentionPhase::Vacuum => {
                let freed = self.vacuum_step(200).map_err(sql(&path))?;
                if freed == 0 {
                    let _ = self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                    Ok(None)
                } else {
                    Ok(Some(RetentionPhase::Vacuum))
                }
            }
        }
    }

    /// Frees up to `pages` pages; one result row per freed page.
    fn vacuum_step(&self, pages: u32) -> rusqlite::Result<usize> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while rows.next()?.is_some() {
            n += 1;
        }
        // Zero freed pages means done, whether the free list is empty or (auto_vacuum not
        // incremental, e.g. a database created elsewhere) cannot shrink this way.
        Ok(n)
    }

    fn vacuum_all(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        while self.vacuum_step(1000).map_err(sql(&path))? > 0 {}
        let _ = self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
        Ok(())
    }

    /// Bytes in use (file size minus free pages).
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    fn update_sizes(&mut self) {
        for (i, tier) in Tier::ALL.iter().enumerate() {
            let q = format!(
                "SELECT COALESCE(SUM(length(data)), 0) FROM {}",
                tier.table()
            );
            if let Ok(b) = self.conn.query_row(&q, [], |r| r.get::<_, i64>(0)) {
                self.shared.stats.bytes[i].store(b as u64, Ordering::Relaxed);
            }
        }
        let mut file = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        file += std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        self.shared.stats.file_bytes.store(file, Ordering::Relaxed);
    }
}

/// Errors inside merge helpers.
#[derive(Debug, thiserror::Error)]
enum MergeError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Corrupt(String),
}

fn map_merge(path: &Path, e: MergeError) -> StoreError {
    match e {
        MergeError::Sqlite(source) => StoreError::Sqlite {
            path: path.to_owned(),
            source,
        },
        MergeError::Corrupt(message) => StoreError::Corrupt {
            what: path.display().to_string(),
            message,
        },
    }
}

/// The BLOB stored under `k` in `tier`'s table, if any.
fn read_blob(conn: &Connection, tier: Tier, k: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row(
        &format!("SELECT data FROM {} WHERE key = ?1", tier.table()),
        [k],
        |r| r.get(0),
    )
    .optional()
}

/// Read-modify-write of one raw chunk: existing samples plus `new` (sorted), new values
/// winning on equal timestamps.
fn merge_samples(
    conn: &Connection,
    tier: Tier,
    k: i64,
    new: &[(i64, f64)],
) -> Result<(), MergeError> {
    let existing = read_blob(conn, tier, k)?;
    let merged = match existing {
        None => new.to_vec(),
        Some(blob) => {
            let old =
                codec::decode(&blob).map_err(|e| MergeError::Corrupt(format!("chunk {k}: {e}")))?;
            merge_sorted(&old, new)
        }
    };
    let merged = &merged[..merged.len().min(codec::MAX_CHUNK_SAMPLES)];
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (key, data) VALUES (?1, ?2)",
            tier.table()
        ),
        params![k, codec::encode(merged)],
    )?;
    Ok(())
}

fn merge_sorted(old: &[(i64, f64)], new: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].0.cmp(&new[j].0) {
            std::cmp::Ordering::Less => {
                out.push(old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(new[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&old[i..]);
    out.extend_from_slice(&new[j..]);
    out
}

/// Read-modify-write of one rollup block with new points.
fn merge_rollup(
    conn: &Connection,
    tier: Tier,
    k: i64,
    points: &[rollup::RollupPoint],
) -> Result<(), MergeError> {
    if points.is_empty() {
        return Ok(());
    }
    let existing = read_blob(conn, tier, k)?;
    let merged = match existing {
        None => points.to_vec(),
        Some(blob) => {
            let old =
                rollup::decode(&blob).ok_or_else(|| MergeError::Corrupt(format!("rollup {k}")))?;
            rollup::merge(old, points)
        }
    };
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (key, data) VALUES (?1, ?2)",
            tier.table()
        ),
        params![k, rollup::encode(&merged)],
    )?;
    Ok(())
}

/// Block of a rollup bucket: by its end minus one, so a bucket ending exactly on a block
/// boundary stays in the block holding its samples.
pub(crate) fn rollup_block(bucket_end: i64, tier: Tier, window_ms: i64) -> i64 {
    (bucket_end - 1).div_euclid(block_ms(tier, window_ms))
}

/// Rolls `samples` (sorted, one series) up into every rollup tier.
fn write_rollups(
    conn: &Connection,
    id: SeriesId,
    samples: &[(i64, f64)],
    window_ms: i64,
) -> Result<(), MergeError> {
    for tier in [Tier::FiveMinutes, Tier::OneHour] {
        let points = rollup::compute(samples, tier.resolution_ms());
        let mut by_block: HashMap<i64, Vec<rollup::RollupPoint>> = HashMap::new();
        for p in points {
            by_block
                .entry(rollup_block(p.ts, tier, window_ms))
                .or_default()
                .push(p);
        }
        for (b, pts) in by_block {
            merge_rollup(conn, tier, key(b, id), &pts)?;
        }
    }
    Ok(())
}
