//! The evaluator: walks the expression tree over a grid of evaluation timestamps.
//!
//! Every node evaluates for all steps at once and returns one dense row of values per
//! series (`None` where the series has no value at that step). Label work (dropping
//! `__name__`, grouping keys, matching signatures) then happens once per series instead of
//! once per step, and an instant query is simply a grid of one step. The per-step semantics
//! are Prometheus 2.42's (`promql/engine.go` and `functions.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::model::Labels;
use crate::query::error::QueryError;
use crate::query::plan::{At, Node, Selector};
use crate::query::source::{
    is_stale, label_value, Bucket, LabelMatcher, Point, SeriesData, Source, Tier, METRIC_NAME,
};
use crate::query::{aggregate, binary, functions, Limits};

/// The evaluation timestamps `start, start + step, ..., end` (milliseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    /// One step at `t`.
    pub fn instant(t: i64) -> Self {
        Grid {
            start: t,
            end: t,
            step: 1,
        }
    }

    pub fn len(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }

    pub fn at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// One series of an instant-vector result across the grid.
#[derive(Debug, Clone)]
pub(crate) struct VSeries {
    pub labels: Arc<Labels>,
    pub vals: Vec<Option<f64>>,
}

/// An evaluated node.
#[derive(Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<VSeries>),
    Str(String),
}

/// A series read from storage, prepared for lookups.
#[derive(Debug)]
pub(crate) struct RangeData {
    pub labels: Arc<Labels>,
    /// Raw samples, or each bucket's `last`, without stale markers.
    pub pts: Vec<Point>,
    /// Timestamps of stale markers (they end the series for instant lookups).
    pub stale: Vec<i64>,
    /// Rollup buckets with at least one sample (rollup tiers only).
    pub buckets: Option<Vec<Bucket>>,
}

impl RangeData {
    /// The sample an instant selector sees at `r`: the latest at or before `r`, not older
    /// than `lookback`, and not followed by a stale marker (Prometheus'
    /// `vectorSelectorSingle`).
    pub fn instant(&self, r: i64, lookback: i64) -> Option<Point> {
        let idx = self.pts.partition_point(|p| p.t <= r);
        let p = *self.pts.get(idx.checked_sub(1)?)?;
        if p.t < r - lookback {
            return None;
        }
        let si = self.stale.partition_point(|&s| s <= r);
        if si > 0 && self.stale[si - 1] > p.t {
            return None;
        }
        Some(p)
    }

    /// Points with `start <= t <= end` (Prometheus 2.x range selectors are closed).
    pub fn window(&self, start: i64, end: i64) -> &[Point] {
        let lo = self.pts.partition_point(|p| p.t < start);
        let hi = self.pts.partition_point(|p| p.t <= end);
        &self.pts[lo..hi.max(lo)]
    }

    /// Buckets whose end lies in `(start, end]`: a bucket ending exactly at the window
    /// start holds data from before the window.
    pub fn bucket_window(&self, start: i64, end: i64) -> Option<&[Bucket]> {
        let b = self.buckets.as_deref()?;
        let lo = b.partition_point(|x| x.t <= start);
        let hi = b.partition_point(|x| x.t <= end);
        Some(&b[lo..hi.max(lo)])
    }
}

/// A range-vector argument: a matrix selector or a subquery, evaluated.
pub(crate) struct RangeArg {
    pub series: Vec<RangeData>,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at: Option<i64>,
    /// Labels `absent_over_time` reports (from the selector's equality matchers).
    pub absent_labels: Labels,
}

impl RangeArg {
    /// `(start, end)` of the window for the step at `t`.
    pub fn window_at(&self, t: i64) -> (i64, i64) {
        let end = self.at.unwrap_or(t) - self.offset_ms;
        (end - self.range_ms, end)
    }
}

/// State of one evaluation: storage, tier, limits and counters.
pub(crate) struct Evaluator<'a> {
    pub source: &'a dyn Source,
    pub tier: Tier,
    pub limits: &'a Limits,
    pub deadline: Instant,
    pub query_start: i64,
    pub query_end: i64,
    pub lookback_ms: i64,
    pub default_subquery_step_ms: i64,
    pub points: usize,
    pub series: usize,
}

impl Evaluator<'_> {
    pub fn check_deadline(&self, during: &'static str) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout { during });
        }
        Ok(())
    }

    /// Counts points against the per-query limit.
    pub fn charge(&mut self, n: usize) -> Result<(), QueryError> {
        self.points = self.points.saturating_add(n);
        if self.points > self.limits.max_points {
            return Err(QueryError::TooManyPoints {
                limit: self.limits.max_points,
            });
        }
        Ok(())
    }

    /// Refuses to allocate a dense `series x steps` result larger than the point limit.
    pub fn check_dense(&self, series: usize, steps: usize) -> Result<(), QueryError> {
        if series.saturating_mul(steps) > self.limits.max_points {
            return Err(QueryError::TooManyPoints {
                limit: self.limits.max_points,
            });
        }
        Ok(())
    }

    fn resolve_at(&self, at: Option<At>) -> Option<i64> {
        at.map(|a| match a {
            At::Start => self.query_start,
            At::End => self.query_end,
            At::Time(t) => t,
        })
    }

    /// Lookback for instant selectors. On a rollup tier it is at least one bucket, or a
    /// query between two bucket ends would find nothing.
    pub fn lookback(&self) -> i64 {
        self.lookback_ms.max(self.tier.resolution_ms())
    }

    /// Reads series from storage and prepares them.
    pub fn fetch(
        &mut self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<RangeData>, QueryError> {
        self.check_deadline("storage read")?;
        let raw = self.source.select(matchers, start, end, self.tier)?;
        self.series = self.series.saturating_add(raw.len());
        if self.series > self.limits.max_series {
            return Err(QueryError::TooManySeries {
                limit: self.limits.max_series,
            });
        }
        self.charge(raw.iter().map(|s| s.data.len()).sum())?;
        let mut out = Vec::with_capacity(raw.len());
        for s in raw {
            let labels = Arc::new(s.labels);
            match s.data {
                SeriesData::Raw(points) => {
                    let mut stale = Vec::new();
                    let pts = if points.iter().any(|p| is_stale(p.v)) {
                        let mut pts = Vec::with_capacity(points.len());
                        for p in points {
                            if is_stale(p.v) {
                                stale.push(p.t);
                            } else {
                                pts.push(p);
                            }
                        }
                        pts
                    } else {
                        points
                    };
                    out.push(RangeData {
                        labels,
                        pts,
                        stale,
                        buckets: None,
                    });
                }
                SeriesData::Rollup(buckets) => {
                    let mut pts = Vec::with_capacity(buckets.len());
                    let mut stale = Vec::new();
                    for b in &buckets {
                        if is_stale(b.last) {
                            stale.push(b.t);
                        } else {
                            pts.push(Point { t: b.t, v: b.last });
                        }
                    }
                    let buckets = buckets.into_iter().filter(|b| b.count > 0).collect();
                    out.push(RangeData {
                        labels,
                        pts,
                        stale,
                        buckets: Some(buckets),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Smallest and largest reference time (`@` or step time, minus offset) over the grid.
    fn ref_bounds(&self, at: Option<At>, offset: i64, grid: &Grid) -> (i64, i64) {
        match self.resolve_at(at) {
            Some(t) => (t - offset, t - offset),
            None => (grid.start - offset, grid.end - offset),
        }
    }

    pub fn eval(&mut self, node: &Node, grid: &Grid) -> Result<Val, QueryError> {
        self.check_deadline("expression evaluation")?;
        let n = grid.len();
        Ok(match node {
            Node::Number(v) => Val::Scalar(vec![*v; n]),
            Node::Str(s) => Val::Str(s.clone()),
            Node::Selector(sel) => Val::Vector(self.eval_selector(sel, grid, false)?),
            Node::Matrix { .. } | Node::Subquery { .. } => {
                return Err(QueryError::BadRequest(
                    "range vector used where an instant vector or scalar is expected".into(),
                ))
            }
            Node::Call { func, args } => functions::eval_call(self, *func, args, grid)?,
            Node::Aggregate {
                op,
                param,
                grouping,
                expr,
            } => Val::Vector(aggregate::eval(
                self,
                *op,
                param.as_deref(),
                grouping,
                expr,
                grid,
            )?),
            Node::Binary(b) => binary::eval(self, b, grid)?,
            Node::Neg(e) => match self.eval(e, grid)? {
                Val::Scalar(v) => Val::Scalar(v.into_iter().map(|x| -x).collect()),
                Val::Vector(v) => {
                    let out = v
                        .into_iter()
                        .map(|s| VSeries {
                            labels: drop_metric_name(&s.labels),
                            vals: s.vals.into_iter().map(|x| x.map(|x| -x)).collect(),
                        })
                        .collect();
                    Val::Vector(check_unique_labels(out)?)
                }
                Val::Str(_) => {
                    return Err(QueryError::BadRequest("unary minus on a string".into()))
                }
            },
        })
    }

    pub fn eval_vector(&mut self, node: &Node, grid: &Grid) -> Result<Vec<VSeries>, QueryError> {
        match self.eval(node, grid)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::BadRequest(
                "expected an instant vector expression".into(),
            )),
        }
    }

    pub fn eval_scalar(&mut self, node: &Node, grid: &Grid) -> Result<Vec<f64>, QueryError> {
        match self.eval(node, grid)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::BadRequest(
                "expected a scalar expression".into(),
            )),
        }
    }

    /// An instant vector selector. With `want_ts`, each value is the sample's timestamp in
    /// seconds instead (for `timestamp()`).
    pub fn eval_selector(
        &mut self,
        sel: &Selector,
        grid: &Grid,
        want_ts: bool,
    ) -> Result<Vec<VSeries>, QueryError> {
        let lookback = self.lookback();
        let (lo, hi) = self.ref_bounds(sel.at, sel.offset_ms, grid);
        let fetched = self.fetch(&sel.matchers, lo - lookback, hi)?;
        let n = grid.len();
        self.check_dense(fetched.len(), n)?;
        let at = self.resolve_at(sel.at);
        let mut out = Vec::with_capacity(fetched.len());
        for (i, s) in fetched.into_iter().enumerate() {
            if i % 64 == 0 {
                self.check_deadline("vector selector")?;
            }
            let mut vals = vec![None; n];
            let mut any = false;
            for (step, slot) in vals.iter_mut().enumerate() {
                let r = at.unwrap_or_else(|| grid.at(step)) - sel.offset_ms;
                if let Some(p) = s.instant(r, lookback) {
                    *slot = Some(if want_ts { p.t as f64 / 1000.0 } else { p.v });
                    any = true;
                }
            }
            if any {
                out.push(VSeries {
                    labels: s.labels,
                    vals,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a matrix selector or subquery into the data its windows are cut from.
    pub fn eval_range_arg(&mut self, node: &Node, grid: &Grid) -> Result<RangeArg, QueryError> {
        match node {
            Node::Matrix { sel, range_ms } => {
                let (lo, hi) = self.ref_bounds(sel.at, sel.offset_ms, grid);
                let series = self.fetch(&sel.matchers, lo - range_ms, hi)?;
                Ok(RangeArg {
                    series,
                    range_ms: *range_ms,
                    offset_ms: sel.offset_ms,
                    at: self.resolve_at(sel.at),
                    absent_labels: absent_labels(&sel.matchers),
                })
            }
            Node::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
                at,
            } => {
                let step = step_ms.unwrap_or(self.default_subquery_step_ms).max(1);
                let (lo, hi) = self.ref_bounds(*at, *offset_ms, grid);
                // Prometheus aligns subquery steps to multiples of the step since the epoch:
                // the first is the first multiple at or after the earliest window start.
                let first = (lo - range_ms).div_euclid(step) * step;
                let first = if first < lo - range_ms {
                    first + step
                } else {
                    first
                };
                let mut series = Vec::new();
                if first <= hi {
                    let sub = Grid {
                        start: first,
                        end: hi,
                        step,
                    };
                    // Every node allocates one value per step: bound the step count first.
                    self.check_dense(1, sub.len())?;
                    for s in self.eval_vector(expr, &sub)? {
                        let pts: Vec<Point> = s
                            .vals
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| Point { t: sub.at(i), v }))
                            .collect();
                        series.push(RangeData {
                            labels: s.labels,
                            pts,
                            stale: Vec::new(),
                            buckets: None,
                        });
                    }
                }
                Ok(RangeArg {
                    series,
                    range_ms: *range_ms,
                    offset_ms: *offset_ms,
                    at: self.resolve_at(*at),
                    absent_labels: Vec::new(),
                })
            }
            _ => Err(QueryError::BadRequest(
                "expected a range vector (matrix selector or subquery)".into(),
            )),
        }
    }
}

/// `labels` without `__name__` (shared when there was none to drop).
pub(crate) fn drop_metric_name(labels: &Arc<Labels>) -> Arc<Labels> {
    if labels.iter().any(|(k, _)| k == METRIC_NAME) {
        Arc::new(
            labels
                .iter()
                .filter(|(k, _)| k != METRIC_NAME)
                .cloned()
                .collect(),
        )
    } else {
        labels.clone()
    }
}

/// Labels for `absent()`/`absent_over_time()` from a selector's matchers: each label with
/// exactly one equality matcher and no other matcher (Prometheus'
/// `createLabelsForAbsentFunction`).
pub(crate) fn absent_labels(matchers: &[LabelMatcher]) -> Labels {
    use crate::query::source::MatchOp;
    let mut set: Vec<(String, String)> = Vec::new();
    let mut remove: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !set.iter().any(|(k, _)| *k == m.name) {
            // Setting an empty value deletes the label in Prometheus' label builder.
            if !m.value.is_empty() {
                set.push((m.name.clone(), m.value.clone()));
            }
        } else {
            remove.push(&m.name);
        }
    }
    set.retain(|(k, _)| !remove.contains(&k.as_str()));
    set.sort();
    set
}

/// Errors when two series carry the same labels (Prometheus' `ContainsSameLabelset` over a
/// whole result, used after functions on range vectors and unary minus).
pub(crate) fn check_unique_labels(series: Vec<VSeries>) -> Result<Vec<VSeries>, QueryError> {
    let mut seen: HashMap<&Labels, ()> = HashMap::with_capacity(series.len());
    for s in &series {
        if seen.insert(&s.labels, ()).is_some() {
            return Err(duplicate_labelset());
        }
    }
    Ok(series)
}

pub(crate) fn duplicate_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Merges series with equal labels; two values at the same step are an error (Prometheus
/// checks each step's result vector for duplicate label sets, and joins a range query's
/// steps into series by label set).
pub(crate) fn merge_by_labels(series: Vec<VSeries>) -> Result<Vec<VSeries>, QueryError> {
    let mut index: HashMap<Arc<Labels>, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<VSeries> = Vec::with_capacity(series.len());
    for s in series {
        if !s.vals.iter().any(Option::is_some) {
            continue;
        }
        match index.get(&s.labels) {
            Some(&i) => {
                let target = &mut out[i];
                for (dst, src) in target.vals.iter_mut().zip(s.vals) {
                    if let Some(v) = src {
                        if dst.is_some() {
                            return Err(duplicate_labelset());
                        }
                        *dst = Some(v);
                    }
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The value of a label in shared labels.
pub(crate) fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    label_value(labels, name)
}
