//! `automon import`: backfills an OpenMetrics file with timestamps (what `promtool tsdb
//! create-blocks-from openmetrics` takes) into the store, then seals and compacts it.
//!
//! The file is parsed twice: once to check all of it, so a broken line does not leave half a
//! file imported, and once to write in batches of [`BATCH`] samples.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exposition::{Dialect, Event, ParseError, Parser};
use crate::store::{SeriesSamples, Store, StoreConfig, StoreError, WriteBatch, DB_FILE};

/// Samples per write batch: large enough to amortize channel and index work, small enough
/// to keep memory flat.
pub const BATCH: usize = 10_000;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// xz input, which this build does not decompress.
    #[error("{0}: compressed input is not read directly; decompress it on the fly: xz -dc {0} | automon import -")]
    Compressed(PathBuf),
    /// The input is not valid OpenMetrics.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line and problem.
        #[source]
        source: ParseError,
    },
    /// A sample without a timestamp: there is no time to store it at.
    #[error("{path}: line {line}: sample has no timestamp (import needs `name{{labels}} value timestamp` lines)")]
    NoTimestamp {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// The store failed (including: a daemon holds the database).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// Samples read from the file.
    pub samples: u64,
    /// Distinct series among them.
    pub series: u64,
    /// Samples the store refused (older than an existing sample of their series).
    pub out_of_order: u64,
    /// Earliest and latest timestamp (ms), if any sample.
    pub span_ms: Option<(i64, i64)>,
    /// Wall-clock time of the import.
    pub seconds: f64,
    /// Size of the database file (and WAL) afterwards.
    pub bytes_on_disk: u64,
}

impl ImportReport {
    /// Database bytes per imported sample.
    pub fn bytes_per_sample(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.bytes_on_disk as f64 / self.samples as f64
        }
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "samples imported: {}", self.samples)?;
        writeln!(f, "series: {}", self.series)?;
        if self.out_of_order > 0 {
            writeln!(
                f,
                "refused as out of order or duplicate: {}",
                self.out_of_order
            )?;
        }
        if let Some((a, b)) = self.span_ms {
            writeln!(
                f,
                "time span: {:.3} .. {:.3} (unix seconds)",
                a as f64 / 1000.0,
                b as f64 / 1000.0
            )?;
        }
        writeln!(f, "seconds: {:.2}", self.seconds)?;
        writeln!(f, "bytes on disk: {}", self.bytes_on_disk)?;
        writeln!(f, "bytes/sample: {:.3}", self.bytes_per_sample())
    }
}

/// Reads `path` (`-` for standard input).
pub fn read_input(path: &Path) -> Result<String, ImportError> {
    let err = |source| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(err)?;
        return Ok(s);
    }
    if path.extension().is_some_and(|e| e == "xz") {
        return Err(ImportError::Compressed(path.to_owned()));
    }
    std::fs::read_to_string(path).map_err(err)
}

fn series_hash(name: &str, labels: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    labels.hash(&mut h);
    h.finish()
}

/// Samples, series and time span of a checked input.
type Checked = (u64, u64, Option<(i64, i64)>);

/// Checks the whole input.
fn check(text: &str, path: &Path) -> Result<Checked, ImportError> {
    let mut samples = 0u64;
    let mut series = HashSet::new();
    let mut span: Option<(i64, i64)> = None;
    for ev in Parser::new(text, Dialect::OpenMetrics) {
        let ev = ev.map_err(|source| ImportError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if let Event::Sample(s) = ev {
            let Some(t) = s.timestamp_ms else {
                return Err(ImportError::NoTimestamp {
                    path: path.to_owned(),
                    line: s.line,
                });
            };
            samples += 1;
            // The label text as written identifies the series within one file.
            series.insert(series_hash(s.name, s.labels.as_str()));
            span = Some(match span {
                None => (t, t),
                Some((a, b)) => (a.min(t), b.max(t)),
            });
        }
    }
    Ok((samples, series.len() as u64, span))
}

/// Size of the database and its WAL in `dir`.
pub fn db_bytes(dir: &Path) -> u64 {
    let db = dir.join(DB_FILE);
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    [db, PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Imports `text` (read from `path`, named in errors) into the store in `dir`.
/// `on_checked` is called after validation with the sample count and time span, before
/// anything is written (for warnings about retention).
pub fn import(
    text: &str,
    path: &Path,
    dir: &Path,
    cfg: StoreConfig,
    on_checked: impl FnOnce(u64, Option<(i64, i64)>),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let (samples, series, span) = check(text, path)?;
    on_checked(samples, span);
    let store = Store::open(dir, cfg)?;
    let before = store.stats().samples_out_of_order;
    // OpenMetrics backfill files list each series' samples together: group consecutive
    // samples of one series so the writer looks each series up once per batch.
    let mut batch: Vec<SeriesSamples> = Vec::new();
    let mut in_batch = 0usize;
    let mut current_key: (String, String) = (String::new(), String::new());
    for ev in Parser::new(text, Dialect::OpenMetrics) {
        // Checked above: every event parses and every sample has a timestamp.
        let Ok(Event::Sample(s)) = ev else { continue };
        let Some(t) = s.timestamp_ms else { continue };
        let same = current_key.0 == s.name && current_key.1 == s.labels.as_str();
        match batch.last_mut() {
            Some(group) if same => group.2.push((t, s.value)),
            _ => {
                current_key = (s.name.to_owned(), s.labels.as_str().to_owned());
                batch.push((s.name.to_owned(), s.labels.to_labels(), vec![(t, s.value)]));
            }
        }
        in_batch += 1;
        if in_batch >= BATCH {
            store.write_blocking(WriteBatch {
                series: std::mem::take(&mut batch),
                ..Default::default()
            })?;
            in_batch = 0;
        }
    }
    if !batch.is_empty() {
        store.write_blocking(WriteBatch {
            series: batch,
            ..Default::default()
        })?;
    }
    store.compact()?;
    let out_of_order = store.stats().samples_out_of_order.saturating_sub(before);
    store.close()?;
    Ok(ImportReport {
        samples,
        series,
        out_of_order,
        span_ms: span,
        seconds: started.elapsed().as_secs_f64(),
        bytes_on_disk: db_bytes(dir),
    })
}

/// A warning when imported samples are older than the raw retention, which the next
/// retention run would drop.
pub fn retention_warning(span: Option<(i64, i64)>, now_ms: i64, raw: Duration) -> Option<String> {
    let (oldest, _) = span?;
    let cutoff = now_ms - raw.as_millis() as i64;
    (oldest < cutoff).then(|| {
        format!(
            "warning: some samples are older than storage.retention_raw ({}); retention will \
             drop them (and rollups past their own retention); raise the retention in the \
             config to keep them",
            humantime::format_duration(raw)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_counts_and_requires_timestamps() {
        let ok = "# TYPE a counter\na_total{x=\"1\"} 1 10\na_total{x=\"1\"} 2 11\na_total{x=\"2\"} 2 11.5\n# EOF\n";
        assert_eq!(
            check(ok, Path::new("f")).unwrap(),
            (3, 2, Some((10_000, 11_500)))
        );
        let e = check("a 1\n# EOF\n", Path::new("f")).unwrap_err();
        assert!(
            e.to_string().contains("line 1: sample has no timestamp"),
            "{e}"
        );
        assert!(check("a 1 1\n", Path::new("f")).is_err());
    }

    #[test]
    fn warns_about_retention() {
        let day = Duration::from_secs(86_400);
        assert!(retention_warning(Some((0, 1)), 2 * 86_400_000, day).is_some());
        assert!(retention_warning(Some((86_400_001, 1)), 2 * 86_400_000, day).is_none());
        assert!(retention_warning(None, 0, day).is_none());
    }
}
