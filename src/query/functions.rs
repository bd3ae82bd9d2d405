//! PromQL functions: the supported set, their argument checks, and their evaluation, ported
//! from Prometheus 2.42's `promql/functions.go` so results agree to the last bit where the
//! arithmetic allows (same operation order, Kahan summation where Prometheus uses it).
//!
//! On rollup tiers, `min/max/sum/count/avg_over_time` use the matching bucket aggregates;
//! every other range function sees one point per bucket (the bucket's `last` value at its end
//! time). See the module docs of [`crate::query`] for what that approximates.

use std::sync::Arc;

use crate::model::Labels;
use crate::query::error::QueryError;
use crate::query::eval::{
    check_unique_labels, drop_metric_name, get, merge_by_labels, Evaluator, Grid, RangeArg,
    RangeData, VSeries, Val,
};
use crate::query::plan::{Node, ValueType};
use crate::query::source::{Bucket, Point};

/// Supported functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Deriv,
    PredictLinear,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    PresentOverTime,
    AbsentOverTime,
    Changes,
    Resets,
    Absent,
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sgn,
    Round,
    Clamp,
    ClampMin,
    ClampMax,
    Time,
    Vector,
    Scalar,
    Timestamp,
    LabelReplace,
    LabelJoin,
    Sort,
    SortDesc,
}

impl Func {
    /// The function for a PromQL name, if the engine supports it.
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "rate" => Func::Rate,
            "irate" => Func::Irate,
            "increase" => Func::Increase,
            "delta" => Func::Delta,
            "idelta" => Func::Idelta,
            "deriv" => Func::Deriv,
            "predict_linear" => Func::PredictLinear,
            "avg_over_time" => Func::AvgOverTime,
            "min_over_time" => Func::MinOverTime,
            "max_over_time" => Func::MaxOverTime,
            "sum_over_time" => Func::SumOverTime,
            "count_over_time" => Func::CountOverTime,
            "last_over_time" => Func::LastOverTime,
            "quantile_over_time" => Func::QuantileOverTime,
            "stddev_over_time" => Func::StddevOverTime,
            "stdvar_over_time" => Func::StdvarOverTime,
            "present_over_time" => Func::PresentOverTime,
            "absent_over_time" => Func::AbsentOverTime,
            "changes" => Func::Changes,
            "resets" => Func::Resets,
            "absent" => Func::Absent,
            "abs" => Func::Abs,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            "exp" => Func::Exp,
            "sqrt" => Func::Sqrt,
            "ln" => Func::Ln,
            "log2" => Func::Log2,
            "log10" => Func::Log10,
            "sgn" => Func::Sgn,
            "round" => Func::Round,
            "clamp" => Func::Clamp,
            "clamp_min" => Func::ClampMin,
            "clamp_max" => Func::ClampMax,
            "time" => Func::Time,
            "vector" => Func::Vector,
            "scalar" => Func::Scalar,
            "timestamp" => Func::Timestamp,
            "label_replace" => Func::LabelReplace,
            "label_join" => Func::LabelJoin,
            "sort" => Func::Sort,
            "sort_desc" => Func::SortDesc,
            _ => return None,
        })
    }

    pub fn return_type(self) -> ValueType {
        match self {
            Func::Time | Func::Scalar => ValueType::Scalar,
            _ => ValueType::Vector,
        }
    }

    /// Functions whose answer rollup buckets cannot give (they need every raw sample).
    pub fn prefers_raw(self) -> bool {
        matches!(
            self,
            Func::QuantileOverTime
                | Func::StddevOverTime
                | Func::StdvarOverTime
                | Func::Changes
                | Func::Resets
        )
    }

    /// The parser checks argument types; this checks what our evaluator additionally relies
    /// on (string arguments being literals).
    pub fn check_args(self, args: &[Node]) -> Result<(), QueryError> {
        if matches!(self, Func::LabelReplace | Func::LabelJoin)
            && args.iter().skip(1).any(|a| !matches!(a, Node::Str(_)))
        {
            return Err(QueryError::Unsupported(
                "label_replace/label_join with non-literal string arguments".into(),
            ));
        }
        Ok(())
    }
}

fn str_arg(args: &[Node], i: usize) -> Result<&str, QueryError> {
    match args.get(i) {
        Some(Node::Str(s)) => Ok(s),
        _ => Err(QueryError::BadRequest(format!(
            "expected a string literal as argument {}",
            i + 1
        ))),
    }
}

fn arg(args: &[Node], i: usize) -> Result<&Node, QueryError> {
    args.get(i)
        .ok_or_else(|| QueryError::BadRequest(format!("missing argument {}", i + 1)))
}

/// Evaluates a function call.
pub(crate) fn eval_call(
    ev: &mut Evaluator<'_>,
    func: Func,
    args: &[Node],
    grid: &Grid,
) -> Result<Val, QueryError> {
    let n = grid.len();
    Ok(match func {
        Func::Time => Val::Scalar((0..n).map(|i| grid.at(i) as f64 / 1000.0).collect()),
        Func::Vector => {
            let v = ev.eval_scalar(arg(args, 0)?, grid)?;
            Val::Vector(vec![VSeries {
                labels: Arc::new(Vec::new()),
                vals: v.into_iter().map(Some).collect(),
            }])
        }
        Func::Scalar => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let mut out = vec![f64::NAN; n];
            for (step, slot) in out.iter_mut().enumerate() {
                let mut present = input.iter().filter_map(|s| s[step]);
                if let (Some(v), None) = (present.next(), present.next()) {
                    *slot = v;
                }
            }
            Val::Scalar(out)
        }
        Func::Timestamp => {
            // For a plain selector the sample's own timestamp; for anything else the
            // evaluation time (Prometheus special-cases selectors the same way).
            let input = match arg(args, 0)? {
                Node::Selector(sel) => ev.eval_selector(sel, grid, true)?,
                other => {
                    let mut v = ev.eval_vector(other, grid)?;
                    for s in &mut v {
                        for (i, x) in s.vals.iter_mut().enumerate() {
                            if x.is_some() {
                                *x = Some(grid.at(i) as f64 / 1000.0);
                            }
                        }
                    }
                    v
                }
            };
            let out = input
                .into_iter()
                .map(|s| VSeries {
                    labels: drop_metric_name(&s.labels),
                    vals: s.vals,
                })
                .collect();
            Val::Vector(merge_by_labels(out)?)
        }
        Func::Absent => {
            let a = arg(args, 0)?;
            let input = ev.eval_vector(a, grid)?;
            let labels = match a {
                Node::Selector(sel) => crate::query::eval::absent_labels(&sel.matchers),
                _ => Vec::new(),
            };
            let vals: Vec<Option<f64>> = (0..n)
                .map(|step| {
                    if input.iter().any(|s| s.vals[step].is_some()) {
                        None
                    } else {
                        Some(1.0)
                    }
                })
                .collect();
            let mut out = Vec::new();
            if vals.iter().any(Option::is_some) {
                out.push(VSeries {
                    labels: Arc::new(labels),
                    vals,
                });
            }
            Val::Vector(out)
        }
        Func::Abs
        | Func::Ceil
        | Func::Floor
        | Func::Exp
        | Func::Sqrt
        | Func::Ln
        | Func::Log2
        | Func::Log10
        | Func::Sgn => {
            let f: fn(f64) -> f64 = match func {
                Func::Abs => f64::abs,
                Func::Ceil => f64::ceil,
                Func::Floor => f64::floor,
                Func::Exp => f64::exp,
                Func::Sqrt => f64::sqrt,
                Func::Ln => f64::ln,
                Func::Log2 => f64::log2,
                Func::Log10 => f64::log10,
                _ => sgn,
            };
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            map_values(input, |_, v| Some(f(v)))?
        }
        Func::Round => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let to_nearest = match args.get(1) {
                Some(a) => ev.eval_scalar(a, grid)?,
                None => vec![1.0; n],
            };
            map_values(input, |step, v| {
                let inverse = 1.0 / to_nearest[step];
                Some((v * inverse + 0.5).floor() / inverse)
            })?
        }
        Func::ClampMin | Func::ClampMax => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let bound = ev.eval_scalar(arg(args, 1)?, grid)?;
            let is_min = func == Func::ClampMin;
            map_values(input, |step, v| {
                Some(if is_min {
                    go_max(bound[step], v)
                } else {
                    go_min(bound[step], v)
                })
            })?
        }
        Func::Clamp => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let lo = ev.eval_scalar(arg(args, 1)?, grid)?;
            let hi = ev.eval_scalar(arg(args, 2)?, grid)?;
            map_values(input, |step, v| {
                // An empty interval yields an empty vector, as in Prometheus.
                (hi[step] >= lo[step] || hi[step].is_nan() || lo[step].is_nan())
                    .then(|| go_max(lo[step], go_min(hi[step], v)))
            })?
        }
        Func::LabelReplace => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let dst = str_arg(args, 1)?;
            let repl = str_arg(args, 2)?;
            let src = str_arg(args, 3)?;
            let re_src = str_arg(args, 4)?;
            let re = regex::Regex::new(&format!("^(?:{re_src})$")).map_err(|_| {
                QueryError::Execution(format!(
                    "invalid regular expression in label_replace(): {re_src}"
                ))
            })?;
            if !valid_label_name(dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let out = input
                .into_iter()
                .map(|s| {
                    let labels = match re.captures(get(&s.labels, src)) {
                        None => s.labels,
                        Some(caps) => {
                            let mut value = String::new();
                            caps.expand(repl, &mut value);
                            Arc::new(set_label(&s.labels, dst, &value))
                        }
                    };
                    VSeries {
                        labels,
                        vals: s.vals,
                    }
                })
                .collect();
            Val::Vector(merge_by_labels(out)?)
        }
        Func::LabelJoin => {
            let input = ev.eval_vector(arg(args, 0)?, grid)?;
            let dst = str_arg(args, 1)?;
            let sep = str_arg(args, 2)?;
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                let s = str_arg(args, i)?;
                if !valid_label_name(s) {
                    return Err(QueryError::Execution(format!(
                        "invalid source label name in label_join(): {s}"
                    )));
                }
                srcs.push(s);
            }
            if !valid_label_name(dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let out = input
                .into_iter()
                .map(|s| {
                    let joined = srcs
                        .iter()
                        .map(|name| get(&s.labels, name))
                        .collect::<Vec<_>>()
                        .join(sep);
                    VSeries {
                        labels: Arc::new(set_label(&s.labels, dst, &joined)),
                        vals: s.vals,
                    }
                })
                .collect();
            Val::Vector(merge_by_labels(out)?)
        }
        Func::Sort | Func::SortDesc => {
            let mut input = ev.eval_vector(arg(args, 0)?, grid)?;
            // Only an instant query has an order; a range query's result is sorted by
            // labels at the end, as in Prometheus.
            if n == 1 {
                let desc = func == Func::SortDesc;
                input.sort_by(|a, b| {
                    let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    // NaN sorts last in both directions.
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.total_cmp(&x),
                        _ => x.total_cmp(&y),
                    }
                });
            }
            Val::Vector(input)
        }
        _ => eval_range_function(ev, func, args, grid)?,
    })
}

impl std::ops::Index<usize> for VSeries {
    type Output = Option<f64>;
    fn index(&self, i: usize) -> &Option<f64> {
        &self.vals[i]
    }
}

/// Applies `f` to every value, drops `__name__`, and checks each step for duplicates.
fn map_values(
    input: Vec<VSeries>,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> Result<Val, QueryError> {
    let out = input
        .into_iter()
        .map(|s| VSeries {
            labels: drop_metric_name(&s.labels),
            vals: s
                .vals
                .iter()
                .enumerate()
                .map(|(i, v)| v.and_then(|v| f(i, v)))
                .collect(),
        })
        .collect();
    Ok(Val::Vector(merge_by_labels(out)?))
}

fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Prometheus' label name rule `^[a-zA-Z_][a-zA-Z0-9_]*$`.
pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `labels` with `name` set to `value`, or removed when `value` is empty (Prometheus'
/// label builder semantics).
pub(crate) fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut out: Labels = labels.iter().filter(|(k, _)| k != name).cloned().collect();
    if !value.is_empty() {
        let pos = out.partition_point(|(k, _)| k.as_str() < name);
        out.insert(pos, (name.to_owned(), value.to_owned()));
    }
    out
}

/// Functions over a range vector (matrix selector or subquery).
fn eval_range_function(
    ev: &mut Evaluator<'_>,
    func: Func,
    args: &[Node],
    grid: &Grid,
) -> Result<Val, QueryError> {
    let n = grid.len();
    // Scalar parameters: quantile_over_time(q, m) has it first, predict_linear(m, t) second.
    let (matrix_node, param) = match func {
        Func::QuantileOverTime => (arg(args, 1)?, Some(ev.eval_scalar(arg(args, 0)?, grid)?)),
        Func::PredictLinear => (arg(args, 0)?, Some(ev.eval_scalar(arg(args, 1)?, grid)?)),
        _ => (arg(args, 0)?, None),
    };
    let ra = ev.eval_range_arg(matrix_node, grid)?;
    ev.check_dense(ra.series.len(), n)?;
    let mut out = Vec::with_capacity(ra.series.len());
    for (i, s) in ra.series.iter().enumerate() {
        if i % 64 == 0 {
            ev.check_deadline("range function")?;
        }
        let mut vals = vec![None; n];
        let mut any = false;
        for (step, slot) in vals.iter_mut().enumerate() {
            let t = grid.at(step);
            let p = param.as_ref().map_or(0.0, |p| p[step]);
            if let Some(v) = apply(func, s, &ra, t, p) {
                *slot = Some(v);
                any = true;
            }
        }
        if any {
            // last_over_time keeps the metric name: it acts like an offset.
            let labels = if func == Func::LastOverTime {
                s.labels.clone()
            } else {
                drop_metric_name(&s.labels)
            };
            out.push(VSeries { labels, vals });
        }
    }
    if func == Func::AbsentOverTime {
        let vals: Vec<Option<f64>> = (0..n)
            .map(|step| (!out.iter().any(|s| s.vals[step].is_some())).then_some(1.0))
            .collect();
        let mut res = Vec::new();
        if vals.iter().any(Option::is_some) {
            res.push(VSeries {
                labels: Arc::new(ra.absent_labels.clone()),
                vals,
            });
        }
        return Ok(Val::Vector(res));
    }
    Ok(Val::Vector(check_unique_labels(out)?))
}

/// One function on one series' window at step time `t`; `None` when the window is empty or
/// too short.
fn apply(func: Func, s: &RangeData, ra: &RangeArg, t: i64, param: f64) -> Option<f64> {
    let (start, end) = ra.window_at(t);
    // Rollup aggregates answer these exactly from the buckets.
    if let Some(b) = s.bucket_window(start, end) {
        match func {
            Func::MinOverTime => return rollup_min(b),
            Func::MaxOverTime => return rollup_max(b),
            Func::SumOverTime => return rollup_sum(b),
            Func::CountOverTime => return (!b.is_empty()).then(|| count(b) as f64),
            Func::AvgOverTime => return rollup_sum(b).map(|sum| sum / count(b) as f64),
            _ => {}
        }
    }
    let w = s.window(start, end);
    if w.is_empty() {
        return None;
    }
    match func {
        Func::Rate => extrapolated_rate(w, start, end, ra.range_ms, true, true),
        Func::Increase => extrapolated_rate(w, start, end, ra.range_ms, true, false),
        Func::Delta => extrapolated_rate(w, start, end, ra.range_ms, false, false),
        Func::Irate => instant_value(w, true),
        Func::Idelta => instant_value(w, false),
        Func::Deriv => (w.len() >= 2).then(|| linear_regression(w, w[0].t).0),
        Func::PredictLinear => (w.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(w, t);
            slope * param + intercept
        }),
        Func::AvgOverTime => Some(avg_over_time(w)),
        Func::MinOverTime => Some(min_over_time(w)),
        Func::MaxOverTime => Some(max_over_time(w)),
        Func::SumOverTime => Some(sum_over_time(w)),
        Func::CountOverTime => Some(w.len() as f64),
        Func::LastOverTime => w.last().map(|p| p.v),
        Func::QuantileOverTime => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.v).collect();
            Some(quantile(param, &mut vals))
        }
        Func::StddevOverTime => Some(stdvar_over_time(w).sqrt()),
        Func::StdvarOverTime => Some(stdvar_over_time(w)),
        Func::PresentOverTime | Func::AbsentOverTime => Some(1.0),
        Func::Changes => Some(changes(w)),
        Func::Resets => Some(resets(w)),
        _ => None,
    }
}

fn count(b: &[Bucket]) -> u64 {
    b.iter().map(|b| b.count).sum()
}

fn rollup_min(b: &[Bucket]) -> Option<f64> {
    let mut it = b.iter().map(|b| b.min);
    let mut m = it.next()?;
    for v in it {
        if v < m || m.is_nan() {
            m = v;
        }
    }
    Some(m)
}

fn rollup_max(b: &[Bucket]) -> Option<f64> {
    let mut it = b.iter().map(|b| b.max);
    let mut m = it.next()?;
    for v in it {
        if v > m || m.is_nan() {
            m = v;
        }
    }
    Some(m)
}

fn rollup_sum(b: &[Bucket]) -> Option<f64> {
    if b.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for x in b {
        (sum, c) = kahan_sum_inc(x.sum, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// Prometheus' `extrapolatedRate` (2.42): the increase between the first and last sample in
/// the window, corrected for counter resets, extrapolated towards the window edges when the
/// samples come close enough to them (within 1.1 average intervals), else by half an
/// average interval; a counter is never extrapolated below zero.
pub(crate) fn extrapolated_rate(
    w: &[Point],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (w.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: the last two samples; for `irate` a drop is a counter reset.
fn instant_value(w: &[Point], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w[w.len() - 1];
    let prev = w[w.len() - 2];
    let mut result = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Kahan-Babuska summation step, as Prometheus' `kahanSumInc`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares fit of value over time (seconds relative to `intercept_time`); returns
/// `(slope, intercept)`. A constant series has slope 0 (Prometheus' `linearRegression`).
pub(crate) fn linear_regression(w: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut cxy, mut sum_x2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].v;
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan_sum_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_sum_inc(p.v, sum_y, cy);
        (sum_xy, cxy) = kahan_sum_inc(x * p.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_sum_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + cx;
    let sum_y = sum_y + cy;
    let sum_xy = sum_xy + cxy;
    let sum_x2 = sum_x2 + cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn avg_over_time(w: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for p in w {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn min_over_time(w: &[Point]) -> f64 {
    let mut m = w[0].v;
    for p in w {
        if p.v < m || m.is_nan() {
            m = p.v;
        }
    }
    m
}

fn max_over_time(w: &[Point]) -> f64 {
    let mut m = w[0].v;
    for p in w {
        if p.v > m || m.is_nan() {
            m = p.v;
        }
    }
    m
}

fn sum_over_time(w: &[Point]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w {
        (sum, c) = kahan_sum_inc(p.v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

fn stdvar_over_time(w: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn changes(w: &[Point]) -> f64 {
    let mut n = 0u64;
    let mut prev = w[0].v;
    for p in &w[1..] {
        if p.v != prev && !(p.v.is_nan() && prev.is_nan()) {
            n += 1;
        }
        prev = p.v;
    }
    n as f64
}

fn resets(w: &[Point]) -> f64 {
    let mut n = 0u64;
    let mut prev = w[0].v;
    for p in &w[1..] {
        if p.v < prev {
            n += 1;
        }
        prev = p.v;
    }
    n as f64
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; NaN sorts first;
/// `q < 0` is -Inf, `q > 1` is +Inf; no values is NaN.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if q.is_nan() {
        return f64::NAN;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter().map(|&(t, v)| Point { t: t * 1000, v }).collect()
    }

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // Samples every 10 s from t=10 to t=50 in a [0, 60] window: 1.1*10 s threshold.
        // Start: 10 s away (< 11 s) -> extrapolate 10 s; but the zero point of the counter
        // (value 10 at slope 40/40 s) is 10 s before too, so stays 10; end: 10 s -> 10 s.
        let w = pts(&[(10, 10.0), (20, 20.0), (30, 30.0), (40, 40.0), (50, 50.0)]);
        let inc = extrapolated_rate(&w, 0, 60_000, 60_000, true, false).unwrap();
        assert!((inc - 40.0 * 60.0 / 40.0).abs() < 1e-12, "{inc}");
        let rate = extrapolated_rate(&w, 0, 60_000, 60_000, true, true).unwrap();
        assert!((rate - 1.0).abs() < 1e-12);
        // Zero-point clamp: counter starting at 2 with slope 1/s, 10 s from the start: the
        // zero point is 2 s before the first sample.
        let w = pts(&[(10, 2.0), (20, 12.0), (30, 22.0)]);
        let inc = extrapolated_rate(&w, 0, 30_000, 30_000, true, false).unwrap();
        assert!((inc - 20.0 * 22.0 / 20.0).abs() < 1e-12, "{inc}");
        // delta is not clamped: 10 s each side.
        let d = extrapolated_rate(&w, 0, 30_000, 30_000, false, false).unwrap();
        assert!((d - 20.0 * 30.0 / 20.0).abs() < 1e-12, "{d}");
        // Far from the edges: half an interval each side.
        let w = pts(&[(100, 100.0), (110, 110.0)]);
        let inc = extrapolated_rate(&w, 0, 300_000, 300_000, true, false).unwrap();
        assert!((inc - 10.0 * 20.0 / 10.0).abs() < 1e-12, "{inc}");
        // A single sample gives nothing.
        assert!(extrapolated_rate(&w[..1], 0, 300_000, 300_000, true, false).is_none());
    }

    #[test]
    fn counter_resets_add_the_value_before_the_reset() {
        // 0,10,20 | reset | 5,15: increase = 20 + 15 = 35 over 40 s of samples, window
        // exactly covering them.
        let w = pts(&[(0, 0.0), (10, 10.0), (20, 20.0), (30, 5.0), (40, 15.0)]);
        let inc = extrapolated_rate(&w, 0, 40_000, 40_000, true, false).unwrap();
        assert!((inc - 35.0).abs() < 1e-12, "{inc}");
        assert_eq!(resets(&w), 1.0);
        assert_eq!(changes(&w), 4.0);
        // irate across a reset uses the value after it.
        let r = instant_value(&w[..4], true).unwrap();
        assert!((r - 0.5).abs() < 1e-12, "{r}");
        let d = instant_value(&w[..4], false).unwrap();
        assert_eq!(d, -15.0);
    }

    #[test]
    fn deriv_is_least_squares() {
        // y = 2x + 1 with noise that cancels: points (0,1), (1,4), (2,5), (3,7).
        // Least squares: slope = cov/var = (sum(x*y) - n*mx*my) / (sum(x^2) - n*mx^2)
        // mx = 1.5, my = 4.25, sum xy = 0+4+10+21 = 35, sum x2 = 14
        // slope = (35 - 4*1.5*4.25) / (14 - 4*2.25) = (35-25.5)/5 = 1.9
        let w = pts(&[(0, 1.0), (1, 4.0), (2, 5.0), (3, 7.0)]);
        let (slope, intercept) = linear_regression(&w, 0);
        assert!((slope - 1.9).abs() < 1e-12, "{slope}");
        assert!((intercept - (4.25 - 1.9 * 1.5)).abs() < 1e-12);
        // predict_linear at t=3 (intercept time) + 10 s.
        let (s, i) = linear_regression(&w, 3000);
        assert!((s * 10.0 + i - (intercept + 1.9 * 13.0)).abs() < 1e-9);
        // Constant series: slope 0.
        assert_eq!(
            linear_regression(&pts(&[(0, 3.0), (5, 3.0)]), 0),
            (0.0, 3.0)
        );
    }

    #[test]
    fn over_time_aggregates() {
        let w = pts(&[(0, 1.0), (1, f64::NAN), (2, 3.0), (3, -2.0)]);
        assert_eq!(min_over_time(&w), -2.0);
        assert_eq!(max_over_time(&w), 3.0);
        assert!(sum_over_time(&w).is_nan());
        let w = pts(&[(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]);
        assert_eq!(avg_over_time(&w), 2.5);
        assert_eq!(sum_over_time(&w), 10.0);
        assert!((stdvar_over_time(&w) - 1.25).abs() < 1e-12);
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(-1.0, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn label_helpers() {
        assert!(valid_label_name("a_1"));
        assert!(valid_label_name("_x"));
        assert!(!valid_label_name("1a"));
        assert!(!valid_label_name(""));
        assert!(!valid_label_name("a-b"));
        let l: Labels = vec![("a".into(), "1".into()), ("c".into(), "3".into())];
        assert_eq!(
            set_label(&l, "b", "2"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
                ("c".to_string(), "3".to_string())
            ]
        );
        assert_eq!(
            set_label(&l, "a", ""),
            vec![("c".to_string(), "3".to_string())]
        );
    }
}
