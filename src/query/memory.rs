//! [`MemorySource`]: an in-memory [`Source`] for tests, benchmarks and the alerting engine's
//! unit tests. It keeps raw samples per series and can compute rollup tiers from them with
//! the same bucket contract the store follows.

use std::collections::HashMap;

use crate::model::Labels;
use crate::query::source::{
    is_stale, label_value, matches_all, Bucket, LabelMatcher, MatchOp, Point, Series, SeriesData,
    Source, SourceError, Tier, TierInfo, METRIC_NAME,
};

#[derive(Debug, Clone)]
struct MemSeries {
    labels: Labels,
    points: Vec<Point>,
    /// Buckets per rollup tier, parallel to `MemorySource::rollups`.
    rollups: Vec<Vec<Bucket>>,
}

/// Series held in memory, sorted by labels.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: Vec<MemSeries>,
    by_labels: HashMap<Labels, usize>,
    by_name: HashMap<String, Vec<usize>>,
    /// Rollup resolutions in milliseconds, ascending.
    rollups: Vec<i64>,
    oldest: HashMap<Tier, i64>,
    /// Whether `series` needs re-sorting before the next read.
    dirty: bool,
}

impl MemorySource {
    /// An empty source with only the raw tier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample. `labels` must include `__name__`; they are sorted here. Samples of
    /// a series may come in any order; equal timestamps keep the last value.
    pub fn add(&mut self, labels: &[(&str, &str)], t: i64, v: f64) {
        let mut l: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        self.add_owned(l, t, v);
    }

    /// [`MemorySource::add`] with an owned, sorted label set.
    pub fn add_owned(&mut self, labels: Labels, t: i64, v: f64) {
        let idx = self.series_index(labels);
        let pts = &mut self.series[idx].points;
        match pts.last() {
            Some(last) if last.t < t => pts.push(Point { t, v }),
            None => pts.push(Point { t, v }),
            _ => {
                let pos = pts.partition_point(|p| p.t < t);
                if pts.get(pos).is_some_and(|p| p.t == t) {
                    pts[pos].v = v;
                } else {
                    pts.insert(pos, Point { t, v });
                }
            }
        }
    }

    /// Adds a whole series at once (points need not be sorted).
    pub fn add_series(&mut self, labels: Labels, mut points: Vec<Point>) {
        points.sort_by_key(|p| p.t);
        let idx = self.series_index(labels);
        let s = &mut self.series[idx];
        if s.points.is_empty() {
            s.points = points;
        } else {
            for p in points {
                self.add_owned(self.series[idx].labels.clone(), p.t, p.v);
            }
        }
    }

    fn series_index(&mut self, mut labels: Labels) -> usize {
        labels.sort();
        if let Some(&i) = self.by_labels.get(&labels) {
            return i;
        }
        let i = self.series.len();
        let name = label_value(&labels, METRIC_NAME).to_owned();
        self.by_name.entry(name).or_default().push(i);
        self.by_labels.insert(labels.clone(), i);
        self.series.push(MemSeries {
            labels,
            points: Vec::new(),
            rollups: Vec::new(),
        });
        self.dirty = true;
        i
    }

    /// Computes rollup tiers at these resolutions (milliseconds) from the raw samples added so
    /// far, replacing earlier rollups. Call again after adding more samples.
    pub fn compute_rollups(&mut self, resolutions: &[i64]) {
        let mut res: Vec<i64> = resolutions.iter().copied().filter(|r| *r > 0).collect();
        res.sort_unstable();
        res.dedup();
        for s in &mut self.series {
            s.rollups = res.iter().map(|&r| rollup(&s.points, r)).collect();
        }
        self.rollups = res;
    }

    /// Declares that `tier` holds data only from `oldest_ms` on (for tier-choice tests).
    pub fn set_oldest(&mut self, tier: Tier, oldest_ms: Option<i64>) {
        match oldest_ms {
            Some(t) => self.oldest.insert(tier, t),
            None => self.oldest.remove(&tier),
        };
    }

    /// Sorts series by labels so reads return them in that order; called automatically by
    /// readers through [`MemorySource::sorted`].
    fn sort(&mut self) {
        if !self.dirty {
            return;
        }
        self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.by_labels.clear();
        self.by_name.clear();
        for (i, s) in self.series.iter().enumerate() {
            self.by_labels.insert(s.labels.clone(), i);
            self.by_name
                .entry(label_value(&s.labels, METRIC_NAME).to_owned())
                .or_default()
                .push(i);
        }
        self.dirty = false;
    }

    /// This source with series sorted by labels (done once after a batch of `add`s).
    pub fn sorted(mut self) -> Self {
        self.sort();
        self
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Indexes of candidate series: those with the metric name when a matcher fixes it.
    fn candidates(&self, matchers: &[LabelMatcher]) -> Vec<usize> {
        let name = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal));
        let mut idx: Vec<usize> = match name {
            Some(m) => self.by_name.get(&m.value).cloned().unwrap_or_default(),
            None => (0..self.series.len()).collect(),
        };
        // Readers of an unsorted source still get label order.
        if self.dirty {
            idx.sort_by(|&a, &b| self.series[a].labels.cmp(&self.series[b].labels));
        }
        idx
    }
}

/// Buckets `(end - res, end]` over sorted points, following the [`Bucket`] contract.
fn rollup(points: &[Point], res: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for p in points {
        // Smallest multiple of `res` at or after t.
        let end = (p.t + res - 1).div_euclid(res) * res;
        if out.last().is_none_or(|b| b.t != end) {
            out.push(Bucket {
                t: end,
                min: f64::NAN,
                max: f64::NAN,
                sum: 0.0,
                count: 0,
                last: p.v,
            });
        }
        let Some(b) = out.last_mut() else { continue };
        b.last = p.v;
        if is_stale(p.v) {
            continue;
        }
        if b.count == 0 {
            b.min = p.v;
            b.max = p.v;
        } else {
            if p.v < b.min || b.min.is_nan() {
                b.min = p.v;
            }
            if p.v > b.max || b.max.is_nan() {
                b.max = p.v;
            }
        }
        b.sum += p.v;
        b.count += 1;
    }
    out
}

impl Source for MemorySource {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        tier: Tier,
    ) -> Result<Vec<Series>, SourceError> {
        let rollup_idx = match tier {
            Tier::Raw => None,
            Tier::Rollup { resolution_ms } => Some(
                self.rollups
                    .iter()
                    .position(|&r| r == resolution_ms)
                    .ok_or_else(|| SourceError(format!("no rollup tier at {resolution_ms} ms")))?,
            ),
        };
        let mut out = Vec::new();
        for i in self.candidates(matchers) {
            let s = &self.series[i];
            if !matches_all(matchers, &s.labels) {
                continue;
            }
            let data = match rollup_idx {
                None => {
                    let lo = s.points.partition_point(|p| p.t < start_ms);
                    let hi = s.points.partition_point(|p| p.t <= end_ms);
                    if hi <= lo {
                        continue;
                    }
                    SeriesData::Raw(s.points[lo..hi].to_vec())
                }
                Some(r) => {
                    let b = s.rollups.get(r).map(Vec::as_slice).unwrap_or(&[]);
                    let lo = b.partition_point(|x| x.t < start_ms);
                    let hi = b.partition_point(|x| x.t <= end_ms);
                    if hi <= lo {
                        continue;
                    }
                    SeriesData::Rollup(b[lo..hi].to_vec())
                }
            };
            out.push(Series {
                labels: s.labels.clone(),
                data,
            });
        }
        Ok(out)
    }

    fn tiers(&self) -> Vec<TierInfo> {
        let mut out = vec![TierInfo {
            tier: Tier::Raw,
            oldest_ms: self.oldest.get(&Tier::Raw).copied(),
        }];
        for &r in &self.rollups {
            let tier = Tier::Rollup { resolution_ms: r };
            out.push(TierInfo {
                tier,
                oldest_ms: self.oldest.get(&tier).copied(),
            });
        }
        out
    }

    fn series(
        &self,
        selectors: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, SourceError> {
        let mut out: Vec<Labels> = self
            .series
            .iter()
            .filter(|s| {
                let lo = s.points.partition_point(|p| p.t < start_ms);
                s.points.get(lo).is_some_and(|p| p.t <= end_ms)
            })
            .filter(|s| selectors.is_empty() || selectors.iter().any(|m| matches_all(m, &s.labels)))
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::source::STALE_NAN;

    #[test]
    fn rollup_buckets_follow_the_contract() {
        let pts: Vec<Point> = [
            (1, 5.0),
            (2, 1.0),
            (3, f64::NAN),
            (5, 7.0),
            (6, 2.0),
            (7, STALE_NAN),
        ]
        .iter()
        .map(|&(t, v)| Point { t, v })
        .collect();
        let b = rollup(&pts, 5);
        assert_eq!(b.len(), 2);
        // (0, 5]: 5, 1, NaN, 7.
        assert_eq!(
            (b[0].t, b[0].min, b[0].max, b[0].count, b[0].last),
            (5, 1.0, 7.0, 4, 7.0)
        );
        assert!(b[0].sum.is_nan());
        // (5, 10]: 2, stale.
        assert_eq!(
            (b[1].t, b[1].min, b[1].max, b[1].sum, b[1].count),
            (10, 2.0, 2.0, 2.0, 1)
        );
        assert!(is_stale(b[1].last));
    }

    #[test]
    fn select_filters_by_matchers_and_time_and_returns_label_order() {
        let mut m = MemorySource::new();
        m.add(&[("__name__", "x"), ("i", "b")], 10, 1.0);
        m.add(&[("__name__", "x"), ("i", "a")], 20, 2.0);
        m.add(&[("__name__", "x"), ("i", "a")], 10, 3.0);
        m.add(&[("__name__", "y")], 10, 4.0);
        let m = m.sorted();
        let got = m
            .select(&[LabelMatcher::equal(METRIC_NAME, "x")], 0, 15, Tier::Raw)
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels[1].1, "a");
        assert_eq!(got[0].data, SeriesData::Raw(vec![Point { t: 10, v: 3.0 }]));
        let got = m
            .select(
                &[LabelMatcher::regex("i", "b|c").unwrap()],
                0,
                100,
                Tier::Raw,
            )
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            m.label_values("i", &[], 0, 100).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
