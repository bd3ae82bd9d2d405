//! The query engine shared by the HTTP API and the alert rules: PromQL parsed with the
//! `promql-parser` crate and evaluated over a [`Source`] (the store, or [`MemorySource`]).
//!
//! # Semantics
//! The engine follows Prometheus 2.42 (the version Debian ships and the comparison test in
//! `tests/query_vs_prometheus.rs` runs against): range selectors are closed intervals
//! `[t - range, t]`, instant selectors look back 5 minutes and stop at stale markers,
//! `rate`/`increase`/`delta` extrapolate exactly like `extrapolatedRate`, counter resets add
//! the value before the drop, and error messages for matching errors are Prometheus' own.
//!
//! Supported: vector and matrix selectors with `=`, `!=`, `=~`, `!~`, `offset`, `@`
//! (including `start()`/`end()`), subqueries; the functions in [`functions::Func`] (`rate`,
//! `irate`, `increase`, `delta`, `idelta`, `deriv`, `predict_linear`, `avg/min/max/sum/count/
//! last/quantile/stddev/stdvar/present/absent_over_time`, `changes`, `resets`, `absent`,
//! `abs`, `ceil`, `floor`, `exp`, `sqrt`, `ln`, `log2`, `log10`, `sgn`, `round`, `clamp`,
//! `clamp_min`, `clamp_max`, `time`, `vector`, `scalar`, `timestamp`, `label_replace`,
//! `label_join`, `sort`, `sort_desc`); aggregations `sum`, `avg`, `min`, `max`, `count`,
//! `group`, `stddev`, `stdvar`, `topk`, `bottomk`, `quantile`, `count_values` with `by` or
//! `without`; arithmetic, comparison (with `bool`), `atan2` and set operators between
//! scalars and vectors with `on`/`ignoring` and `group_left`/`group_right`.
//! Everything else (histogram functions, `holt_winters`, date functions, `limitk`, `fill`
//! modifiers, ...) is rejected with [`QueryError::Unsupported`] naming the construct.
//!
//! # Tiers, and what is approximate on rollups
//! A range query runs on the coarsest tier whose resolution is at most the step and at most
//! every range window and subquery step in the expression; an instant query runs on raw
//! data. Either falls back to the finest tier that still holds data back to the earliest
//! timestamp read, when raw data has aged out. Functions that need every raw sample
//! (`quantile_over_time`, `stddev_over_time`, `stdvar_over_time`, `changes`, `resets`) keep
//! a query on raw data while raw data covers it.
//!
//! On a rollup tier (bucket `(t - res, t]` with min, max, sum, count, last):
//! * `min/max/sum/count/avg_over_time` use the bucket aggregates of the buckets whose end lies
//!   in `(t - range, t]`: exact when window edges fall on bucket ends (range query steps
//!   aligned to the resolution), otherwise the first bucket may cover up to one resolution
//!   of data before the window, or miss data in the window's last partial bucket.
//! * Instant selectors see each bucket's `last` value at the bucket's end time, with a
//!   lookback of at least one resolution: equal to raw data at aligned steps; between bucket
//!   ends the value is up to one resolution old, and a series that stopped shows up to one
//!   resolution longer.
//! * `rate`, `irate`, `increase`, `delta`, `idelta`, `deriv`, `predict_linear`,
//!   `last_over_time` and the raw-preferring functions (when forced onto a rollup) see one
//!   point per bucket, the `last` value, with Prometheus' counter-reset handling applied to
//!   those points: a reset is seen only when a bucket's last value is below the previous
//!   one, so a counter that resets and climbs back above its old value within one bucket is
//!   under-counted.
//! * Subqueries evaluate their inner expression on the same tier.

mod aggregate;
mod binary;
mod error;
mod eval;
pub(crate) mod functions;
mod memory;
pub mod params;
mod plan;
pub mod source;
pub mod value;

use std::time::{Duration, Instant};

pub use error::QueryError;
pub use memory::MemorySource;
pub use plan::{parse, Query};
pub use source::{
    is_stale, Bucket, LabelMatcher, MatchOp, Point, Series, SeriesData, Source, SourceError, Tier,
    TierInfo, STALE_NAN,
};
pub use value::{Matrix, RangeSeries, Sample, Value, Vector};

use eval::{Evaluator, Grid, Val};
use plan::{Horizon, Needs, Node, ValueType};

/// Prometheus' limit on points per series in a range query.
pub const MAX_RANGE_STEPS: i64 = 11_000;

/// Per-query limits; each violation is a distinct [`QueryError`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Samples (or rollup buckets) loaded from storage plus points returned.
    pub max_points: usize,
    /// Series loaded from storage, summed over the selectors of the expression.
    pub max_series: usize,
    /// Wall-clock budget, checked between steps of the evaluation.
    pub timeout: Duration,
}

impl Default for Limits {
    /// Prometheus' defaults: 50 million samples, 2 minutes; and 100,000 series.
    fn default() -> Self {
        Limits {
            max_points: 50_000_000,
            max_series: 100_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a query cost, for logs and self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryStats {
    /// The tier the query ran on.
    pub tier: Tier,
    /// Points counted against [`Limits::max_points`]: samples or buckets loaded from
    /// storage plus points returned.
    pub points: usize,
    /// Series loaded from storage.
    pub series_loaded: usize,
}

/// The query engine. Cheap to clone; holds only configuration.
#[derive(Debug, Clone)]
pub struct Engine {
    limits: Limits,
    lookback_delta_ms: i64,
    default_subquery_step_ms: i64,
}

impl Engine {
    /// An engine with these limits, Prometheus' 5 minute lookback delta and a 1 minute
    /// default subquery step (Prometheus' default evaluation interval).
    pub fn new(limits: Limits) -> Self {
        Engine {
            limits,
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
        }
    }

    /// Changes how far back an instant selector looks for a sample.
    pub fn with_lookback_delta(mut self, ms: i64) -> Self {
        self.lookback_delta_ms = ms.max(1);
        self
    }

    /// Changes the step of subqueries written without one (`x[1h:]`).
    pub fn with_default_subquery_step(mut self, ms: i64) -> Self {
        self.default_subquery_step_ms = ms.max(1);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses and checks an expression without evaluating it (for validating rules).
    pub fn prepare(&self, expr: &str) -> Result<Query, QueryError> {
        parse(expr)
    }

    /// Evaluates `expr` at `at_ms`.
    pub fn instant(
        &self,
        source: &dyn Source,
        expr: &str,
        at_ms: i64,
    ) -> Result<Value, QueryError> {
        let q = parse(expr)?;
        self.instant_query(source, &q, at_ms).map(|(v, _)| v)
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms`.
    pub fn range(
        &self,
        source: &dyn Source,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Matrix, QueryError> {
        let q = parse(expr)?;
        self.range_query(source, &q, start_ms, end_ms, step_ms)
            .map(|(m, _)| m)
    }

    fn evaluator<'a>(
        &'a self,
        source: &'a dyn Source,
        root: &Node,
        start: i64,
        end: i64,
        step: Option<i64>,
    ) -> Evaluator<'a> {
        let h = Horizon {
            query_start: start,
            query_end: end,
            lookback_ms: self.lookback_delta_ms,
            default_subquery_step_ms: self.default_subquery_step_ms,
        };
        let mut needs = Needs {
            min_window_ms: None,
            earliest_ms: start,
            prefers_raw: false,
        };
        plan::analyze(root, start, &h, &mut needs);
        let tier = plan::choose_tier(&source.tiers(), &needs, step);
        Evaluator {
            source,
            tier,
            limits: &self.limits,
            deadline: Instant::now() + self.limits.timeout,
            query_start: start,
            query_end: end,
            lookback_ms: self.lookback_delta_ms,
            default_subquery_step_ms: self.default_subquery_step_ms,
            points: 0,
            series: 0,
        }
    }

    fn stats(ev: &Evaluator<'_>) -> QueryStats {
        QueryStats {
            tier: ev.tier,
            points: ev.points,
            series_loaded: ev.series,
        }
    }

    /// Evaluates a prepared query at `at_ms`.
    pub fn instant_query(
        &self,
        source: &dyn Source,
        q: &Query,
        at_ms: i64,
    ) -> Result<(Value, QueryStats), QueryError> {
        check_time(at_ms)?;
        let mut ev = self.evaluator(source, &q.root, at_ms, at_ms, None);
        let grid = Grid::instant(at_ms);
        let value = match &q.root {
            node @ (Node::Matrix { .. } | Node::Subquery { .. }) => {
                let ra = ev.eval_range_arg(node, &grid)?;
                let (start, end) = ra.window_at(at_ms);
                let mut m: Matrix = ra
                    .series
                    .iter()
                    .filter_map(|s| {
                        let w = s.window(start, end);
                        (!w.is_empty()).then(|| RangeSeries {
                            labels: (*s.labels).clone(),
                            points: w.to_vec(),
                        })
                    })
                    .collect();
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                ev.charge(m.iter().map(|s| s.points.len()).sum())?;
                Value::Matrix(m)
            }
            node => match ev.eval(node, &grid)? {
                Val::Scalar(v) => Value::Scalar {
                    t: at_ms,
                    v: v.first().copied().unwrap_or(f64::NAN),
                },
                Val::Str(s) => Value::String { t: at_ms, s },
                Val::Vector(series) => {
                    let out: Vector = series
                        .into_iter()
                        .filter_map(|s| {
                            s.vals.first().copied().flatten().map(|v| Sample {
                                labels: (*s.labels).clone(),
                                t: at_ms,
                                v,
                            })
                        })
                        .collect();
                    ev.charge(out.len())?;
                    Value::Vector(out)
                }
            },
        };
        let stats = Self::stats(&ev);
        Ok((value, stats))
    }

    /// Evaluates a prepared query over a range. The result is sorted by labels.
    pub fn range_query(
        &self,
        source: &dyn Source,
        q: &Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<(Matrix, QueryStats), QueryError> {
        check_time(start_ms)?;
        check_time(end_ms)?;
        if step_ms <= 0 {
            return Err(QueryError::BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadRequest(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end_ms - start_ms) / step_ms > MAX_RANGE_STEPS {
            return Err(QueryError::BadRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        match q.root.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            ValueType::Matrix => {
                return Err(QueryError::BadRequest(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
            ValueType::String => {
                return Err(QueryError::BadRequest(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
        }
        // The last step is the last multiple of the step not after `end`, as in Prometheus.
        let end = start_ms + (end_ms - start_ms) / step_ms * step_ms;
        let grid = Grid {
            start: start_ms,
            end,
            step: step_ms,
        };
        let mut ev = self.evaluator(source, &q.root, start_ms, end_ms, Some(step_ms));
        let mut m: Matrix = match ev.eval(&q.root, &grid)? {
            Val::Scalar(v) => vec![RangeSeries {
                labels: Vec::new(),
                points: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Point { t: grid.at(i), v })
                    .collect(),
            }],
            Val::Vector(series) => series
                .into_iter()
                .map(|s| RangeSeries {
                    labels: (*s.labels).clone(),
                    points: s
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Point { t: grid.at(i), v }))
                        .collect(),
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
            Val::Str(_) => {
                return Err(QueryError::BadRequest(
                    "invalid expression type \"string\" for range query".into(),
                ))
            }
        };
        ev.charge(m.iter().map(|s| s.points.len()).sum())?;
        m.sort_by(|a, b| a.labels.cmp(&b.labels));
        let stats = Self::stats(&ev);
        Ok((m, stats))
    }
}

/// Rejects timestamps so far out that time arithmetic could overflow.
fn check_time(t: i64) -> Result<(), QueryError> {
    if !(-plan::MAX_TIME_MS..=plan::MAX_TIME_MS).contains(&t) {
        return Err(QueryError::BadRequest(format!(
            "timestamp {t} ms out of range"
        )));
    }
    Ok(())
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Limits::default())
    }
}

#[cfg(test)]
mod tests;
