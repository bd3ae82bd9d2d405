//! The store as a query source: implements [`crate::query::Source`] over readers (each with
//! its own SQLite connection), mapping the store's tiers to the engine's.

use std::sync::{Arc, Mutex};

use crate::model::Labels;
use crate::query::source::{
    matches_all, Bucket, LabelMatcher, MatchOp, Point, Series, SeriesData, Source, SourceError,
    Tier as QTier, TierInfo,
};

use super::{Reader, SeriesMeta, Store, StoreError, Tier, TierPoint};

/// Makes readers on demand.
type ReaderFactory = Arc<dyn Fn() -> Result<Reader, StoreError> + Send + Sync>;

/// A pool of readers usable from any thread.
pub struct StoreSource {
    pool: Mutex<Vec<Reader>>,
    factory: Option<ReaderFactory>,
}

impl std::fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSource")
    }
}

impl StoreSource {
    /// Readers of a running store, created as concurrent queries need them.
    pub fn new(store: Arc<Store>) -> Self {
        StoreSource {
            pool: Mutex::new(Vec::new()),
            factory: Some(Arc::new(move || store.reader())),
        }
    }

    /// A single reader (e.g. from [`super::open_read_only`]); queries take turns.
    pub fn from_reader(reader: Reader) -> Self {
        StoreSource {
            pool: Mutex::new(vec![reader]),
            factory: None,
        }
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, StoreError>,
    ) -> Result<T, SourceError> {
        let err = |e: StoreError| SourceError(e.to_string());
        loop {
            let taken = match self.pool.lock() {
                Ok(mut p) => p.pop(),
                Err(p) => p.into_inner().pop(),
            };
            let reader = match (taken, &self.factory) {
                (Some(r), _) => r,
                (None, Some(make)) => make().map_err(err)?,
                // The only reader is in use: wait for it to come back.
                (None, None) => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
            };
            let out = f(&reader).map_err(err);
            if let Ok(mut p) = self.pool.lock() {
                p.push(reader);
            }
            return out;
        }
    }
}

/// Labels with `__name__`, sorted, as the engine expects.
fn full_labels(meta: &SeriesMeta) -> Labels {
    let mut l = meta.labels.clone();
    l.push(("__name__".to_owned(), meta.name.clone()));
    l.sort();
    l
}

/// The metric name when a matcher pins it, to use the name index instead of a full scan.
fn pinned_name(matchers: &[LabelMatcher]) -> Option<&str> {
    matchers
        .iter()
        .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
        .map(|m| m.value.as_str())
}

fn store_tier(t: QTier) -> Option<Tier> {
    match t {
        QTier::Raw => Some(Tier::Raw),
        QTier::Rollup { resolution_ms } => Tier::ALL
            .into_iter()
            .find(|s| *s != Tier::Raw && s.resolution_ms() == resolution_ms),
    }
}

impl Source for StoreSource {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        tier: QTier,
    ) -> Result<Vec<Series>, SourceError> {
        let Some(st) = store_tier(tier) else {
            return Err(SourceError(format!("no such tier: {tier:?}")));
        };
        let name = pinned_name(matchers);
        let data = self.with_reader(|r| {
            r.select(
                name,
                |m| matches_all(matchers, &full_labels(m)),
                start_ms,
                end_ms,
                st,
            )
        })?;
        let mut out: Vec<Series> = data
            .into_iter()
            .map(|s| Series {
                labels: full_labels(&s.meta),
                data: match s.points {
                    TierPoint::Raw(points) => {
                        SeriesData::Raw(points.into_iter().map(|(t, v)| Point { t, v }).collect())
                    }
                    TierPoint::Rollup(points) => SeriesData::Rollup(
                        points
                            .into_iter()
                            .map(|p| Bucket {
                                t: p.ts,
                                min: p.min,
                                max: p.max,
                                sum: p.sum,
                                count: p.count as u64,
                                last: p.last,
                            })
                            .collect(),
                    ),
                },
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn tiers(&self) -> Vec<TierInfo> {
        let oldest = self
            .with_reader(|r| r.oldest_per_tier())
            .unwrap_or([None, None, None]);
        // A tier is complete from its first data on only if a coarser tier reaches further
        // back (retention cut it); otherwise nothing was dropped yet.
        let coarsest = oldest.iter().flatten().min().copied();
        Tier::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| TierInfo {
                tier: match t {
                    Tier::Raw => QTier::Raw,
                    t => QTier::Rollup {
                        resolution_ms: t.resolution_ms(),
                    },
                },
                oldest_ms: match (oldest[i], coarsest) {
                    (Some(o), Some(c)) if o > c => Some(o),
                    _ => None,
                },
            })
            .collect()
    }

    fn series(
        &self,
        selectors: &[Vec<LabelMatcher>],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Vec<Labels>, SourceError> {
        let mut out = self.with_reader(|r| {
            Ok(r.series(None, |m| {
                let l = full_labels(m);
                selectors.is_empty() || selectors.iter().any(|s| matches_all(s, &l))
            })
            .into_iter()
            .map(|(_, m)| full_labels(&m))
            .collect::<Vec<_>>())
        })?;
        out.sort();
        Ok(out)
    }
}
