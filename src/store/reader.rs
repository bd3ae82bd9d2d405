//! Reading: series lookup against the in-memory index, samples from chunk rows (own
//! connection) merged with the head.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::index::{SeriesId, SeriesMeta};
use super::rollup::{self, RollupPoint};
use super::writer::{block_ms, key};
use super::{codec, schema, Shared, StoreError, Tier};

/// Points of one series at one tier.
#[derive(Debug, Clone, PartialEq)]
pub enum TierPoint {
    /// Raw samples.
    Raw(Vec<(i64, f64)>),
    /// Rollup buckets.
    Rollup(Vec<RollupPoint>),
}

/// One series with its data in a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    /// Series id.
    pub id: SeriesId,
    /// Name and labels.
    pub meta: SeriesMeta,
    /// The points.
    pub points: TierPoint,
}

/// A read connection plus the process' shared index and head.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    window_ms: i64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("path", &self.path).finish()
    }
}

impl Reader {
    pub(crate) fn open(
        path: &Path,
        shared: Arc<Shared>,
        window_ms: i64,
    ) -> Result<Reader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        schema::configure(&conn).map_err(|source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        Ok(Reader {
            conn,
            path: path.to_owned(),
            shared,
            window_ms,
        })
    }

    /// Ids and metadata of series accepted by `filter`, optionally only those named `name`.
    pub fn series(
        &self,
        name: Option<&str>,
        mut filter: impl FnMut(&SeriesMeta) -> bool,
    ) -> Vec<(SeriesId, SeriesMeta)> {
        let ix = match self.shared.index.read() {
            Ok(ix) => ix,
            Err(p) => p.into_inner(),
        };
        match name {
            Some(n) => ix
                .ids_for_name(n)
                .iter()
                .filter_map(|id| ix.meta(*id).map(|m| (*id, m)))
                .filter(|(_, m)| filter(m))
                .map(|(id, m)| (id, m.clone()))
                .collect(),
            None => ix
                .iter()
                .filter(|(_, m)| filter(m))
                .map(|(id, m)| (id, m.clone()))
                .collect(),
        }
    }

    /// Every metric name.
    pub fn names(&self) -> Vec<String> {
        let ix = match self.shared.index.read() {
            Ok(ix) => ix,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<String> = ix.names().map(str::to_owned).collect();
        v.sort();
        v
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Raw samples of series `id` with `start <= ts <= end`, chunks and head merged.
    pub fn raw(&self, id: SeriesId, start: i64, end: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut out = Vec::new();
        if start > end {
            return Ok(out);
        }
        let (lo, hi) = self.block_bounds(Tier::Raw, start, end, self.window_ms)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM chunks WHERE key = ?1")
            .map_err(self.sql())?;
        for w in lo..=hi {
            let blob: Option<Vec<u8>> = stmt
                .query_row([key(w, id)], |r| r.get(0))
                .optional()
                .map_err(self.sql())?;
            if let Some(blob) = blob {
                let s =
                    codec::decode_range(&blob, start..=end).map_err(|e| StoreError::Corrupt {
                        what: format!("chunk {}", key(w, id)),
                        message: e.to_string(),
                    })?;
                out.extend(s);
            }
        }
        let head = {
            let head = match self.shared.head.read() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            head.samples_in(id, start, end)
        };
        if !head.is_empty() {
            out.extend(head);
            out.sort_by_key(|s| s.0);
            out.dedup_by_key(|s| s.0);
        }
        Ok(out)
    }

    /// The blocks to look at for `[start, end]`, clamped to the blocks that exist at all, so
    /// an open-ended range costs no more than the data present. Empty range: `lo > hi`.
    fn block_bounds(
        &self,
        tier: Tier,
        start: i64,
        end: i64,
        block: i64,
    ) -> Result<(i64, i64), StoreError> {
        let q = format!("SELECT MIN(key), MAX(key) FROM {}", tier.table());
        let (min, max): (Option<i64>, Option<i64>) = self
            .conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(self.sql())?;
        match (min, max) {
            (Some(min), Some(max)) => Ok((
                start.div_euclid(block).max(min >> 32),
                end.div_euclid(block).min(max >> 32),
            )),
            _ => Ok((1, 0)),
        }
    }

    /// Rollup points of series `id` whose bucket ends in `[start, end]`.
    pub fn rollups(
        &self,
        id: SeriesId,
        tier: Tier,
        start: i64,
        end: i64,
    ) -> Result<Vec<RollupPoint>, StoreError> {
        let mut out = Vec::new();
        if tier == Tier::Raw || start > end {
            return Ok(out);
        }
        let bms = block_ms(tier, self.window_ms);
        // A bucket ending exactly at `start` lives in the block before.
        let (lo, hi) = self.block_bounds(tier, start.saturating_sub(1), end, bms)?;
        let q = format!("SELECT data FROM {} WHERE key = ?1", tier.table());
        let mut stmt = self.conn.prepare_cached(&q).map_err(self.sql())?;
        for b in lo..=hi {
            let blob: Option<Vec<u8>> = stmt
                .query_row([key(b, id)], |r| r.get(0))
                .optional()
                .map_err(self.sql())?;
            if let Some(blob) = blob {
                let pts = rollup::decode(&blob).ok_or_else(|| StoreError::Corrupt {
                    what: format!("{} {}", tier.table(), key(b, id)),
                    message: "undecodable rollup".into(),
                })?;
                out.extend(pts.into_iter().filter(|p| p.ts >= start && p.ts <= end));
            }
        }
        // Unsealed samples have no rollup yet: roll the head up on the fly so the newest
        // buckets are not missing.
        let head = {
            let head = match self.shared.head.read() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            head.samples_in(id, start, end.saturating_add(tier.resolution_ms()))
        };
        if !head.is_empty() {
            let pts = rollup::compute(&head, tier.resolution_ms());
            out = rollup::merge(out, &pts);
            out.retain(|p| p.ts >= start && p.ts <= end);
        }
        Ok(out)
    }

    /// Series matching `filter` with data at `tier` in `[start, end]`.
    pub fn select(
        &self,
        name: Option<&str>,
        filter: impl FnMut(&SeriesMeta) -> bool,
        start: i64,
        end: i64,
        tier: Tier,
    ) -> Result<Vec<SeriesData>, StoreError> {
        let mut out = Vec::new();
        for (id, meta) in self.series(name, filter) {
            let points = match tier {
                Tier::Raw => {
                    let s = self.raw(id, start, end)?;
                    if s.is_empty() {
                        continue;
                    }
                    TierPoint::Raw(s)
                }
                t => {
                    let p = self.rollups(id, t, start, end)?;
                    if p.is_empty() {
                        continue;
                    }
                    TierPoint::Rollup(p)
                }
            };
            out.push(SeriesData { id, meta, points });
        }
        Ok(out)
    }

    /// Earliest timestamp with data per tier (raw, 5m, 1h), from the oldest block present.
    pub fn oldest_per_tier(&self) -> Result<[Option<i64>; 3], StoreError> {
        let mut out = [None, None, None];
        for (i, tier) in Tier::ALL.iter().enumerate() {
            let q = format!("SELECT MIN(key) FROM {}", tier.table());
            let min: Option<i64> = self
                .conn
                .prepare_cached(&q)
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(self.sql())?;
            out[i] = min.map(|k| (k >> 32) * block_ms(*tier, self.window_ms));
        }
        Ok(out)
    }

    /// `PRAGMA integrity_check` result ("ok" when healthy).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sql())
    }
}

#[cfg(test)]
impl Reader {
    /// Row count of a table, for tests.
    pub(crate) fn conn_count(&self, table: &str) -> i64 {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(-1)
    }
}
