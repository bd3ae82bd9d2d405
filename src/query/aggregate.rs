//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without`, ported from
//! Prometheus 2.42's `aggregation()`. Group keys are computed once per input series; the
//! per-step loop then only touches numbers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Labels;
use crate::query::error::QueryError;
use crate::query::eval::{Evaluator, Grid, VSeries};
use crate::query::functions::{quantile, valid_label_name};
use crate::query::plan::{AggOp, Grouping, Node};
use crate::query::source::METRIC_NAME;

/// The labels of the group a series belongs to.
fn group_labels(labels: &Labels, grouping: &Grouping) -> Labels {
    match grouping {
        Grouping::By(names) => labels
            .iter()
            .filter(|(k, _)| names.iter().any(|n| n == k))
            .cloned()
            .collect(),
        Grouping::Without(names) => labels
            .iter()
            .filter(|(k, _)| k != METRIC_NAME && !names.iter().any(|n| n == k))
            .cloned()
            .collect(),
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    count: u64,
    value: f64,
    mean: f64,
}

pub(crate) fn eval(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    param: Option<&Node>,
    grouping: &Grouping,
    expr: &Node,
    grid: &Grid,
) -> Result<Vec<VSeries>, QueryError> {
    let n = grid.len();
    let (scalar_param, label_param) = match (op, param) {
        (AggOp::CountValues, Some(Node::Str(s))) => (None, Some(s.clone())),
        (_, Some(p)) => (Some(ev.eval_scalar(p, grid)?), None),
        _ => (None, None),
    };
    let input = ev.eval_vector(expr, grid)?;
    if op == AggOp::CountValues {
        let label = label_param.unwrap_or_default();
        return count_values(ev, &input, grouping, &label, n);
    }

    // Group index per input series, groups in order of first appearance.
    let mut group_of = Vec::with_capacity(input.len());
    let mut groups: Vec<Arc<Labels>> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in &input {
        let key = group_labels(&s.labels, grouping);
        let g = match index.get(&key) {
            Some(&g) => g,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Arc::new(key));
                groups.len() - 1
            }
        };
        group_of.push(g);
    }

    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        let k = scalar_param.unwrap_or_default();
        return top_bottom_k(
            ev,
            op == AggOp::Topk,
            &input,
            &group_of,
            groups.len(),
            &k,
            n,
        );
    }

    ev.check_dense(groups.len(), n)?;
    let mut out: Vec<VSeries> = groups
        .iter()
        .map(|labels| VSeries {
            labels: labels.clone(),
            vals: vec![None; n],
        })
        .collect();
    let mut acc = vec![Acc::default(); groups.len()];
    let mut members: Vec<Vec<f64>> = if op == AggOp::Quantile {
        vec![Vec::new(); groups.len()]
    } else {
        Vec::new()
    };
    for step in 0..n {
        if step % 64 == 0 {
            ev.check_deadline("aggregation")?;
        }
        acc.iter_mut().for_each(|a| *a = Acc::default());
        members.iter_mut().for_each(Vec::clear);
        for (si, s) in input.iter().enumerate() {
            let Some(v) = s.vals[step] else { continue };
            let g = group_of[si];
            let a = &mut acc[g];
            if a.count == 0 {
                // The first sample initializes the group, as in Prometheus.
                a.count = 1;
                a.value = match op {
                    AggOp::Stddev | AggOp::Stdvar => 0.0,
                    AggOp::Group => 1.0,
                    _ => v,
                };
                a.mean = v;
                if op == AggOp::Quantile {
                    members[g].push(v);
                }
                continue;
            }
            match op {
                AggOp::Sum => a.value += v,
                AggOp::Avg => {
                    a.count += 1;
                    let skip = a.mean.is_infinite()
                        && ((v.is_infinite() && (a.mean > 0.0) == (v > 0.0))
                            || (!v.is_infinite() && !v.is_nan()));
                    if !skip {
                        // Dividing each side by the count avoids overflow (Prometheus).
                        let c = a.count as f64;
                        a.mean += v / c - a.mean / c;
                    }
                }
                AggOp::Max => {
                    if a.value < v || a.value.is_nan() {
                        a.value = v;
                    }
                }
                AggOp::Min => {
                    if a.value > v || a.value.is_nan() {
                        a.value = v;
                    }
                }
                AggOp::Count | AggOp::Group => a.count += 1,
                AggOp::Stddev | AggOp::Stdvar => {
                    a.count += 1;
                    let delta = v - a.mean;
                    a.mean += delta / a.count as f64;
                    a.value += delta * (v - a.mean);
                }
                AggOp::Quantile => members[g].push(v),
                AggOp::Topk | AggOp::Bottomk | AggOp::CountValues => {}
            }
        }
        for (g, a) in acc.iter().enumerate() {
            if a.count == 0 {
                continue;
            }
            let v = match op {
                AggOp::Avg => a.mean,
                AggOp::Count => a.count as f64,
                AggOp::Stdvar => a.value / a.count as f64,
                AggOp::Stddev => (a.value / a.count as f64).sqrt(),
                AggOp::Quantile => {
                    let q = scalar_param.as_ref().map_or(f64::NAN, |p| p[step]);
                    quantile(q, &mut members[g])
                }
                _ => a.value,
            };
            out[g].vals[step] = Some(v);
        }
    }
    out.retain(|s| s.vals.iter().any(Option::is_some));
    Ok(out)
}

/// `count_values("label", v)`: the value becomes a label, so groups differ per step.
fn count_values(
    ev: &mut Evaluator<'_>,
    input: &[VSeries],
    grouping: &Grouping,
    label: &str,
    n: usize,
) -> Result<Vec<VSeries>, QueryError> {
    if !valid_label_name(label) {
        return Err(QueryError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let grouping = match grouping {
        Grouping::By(names) => {
            let mut names = names.clone();
            names.push(label.to_owned());
            Grouping::By(names)
        }
        w => w.clone(),
    };
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<VSeries> = Vec::new();
    for step in 0..n {
        if step % 64 == 0 {
            ev.check_deadline("aggregation")?;
        }
        for s in input {
            let Some(v) = s.vals[step] else { continue };
            let with_value =
                crate::query::functions::set_label(&s.labels, label, &format_go_float(v));
            let key = group_labels(&with_value, &grouping);
            let idx = match index.get(&key) {
                Some(&i) => i,
                None => {
                    ev.check_dense(out.len() + 1, n)?;
                    index.insert(key.clone(), out.len());
                    out.push(VSeries {
                        labels: Arc::new(key),
                        vals: vec![None; n],
                    });
                    out.len() - 1
                }
            };
            let slot = &mut out[idx].vals[step];
            *slot = Some(slot.unwrap_or(0.0) + 1.0);
        }
    }
    Ok(out)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A binary heap with exactly the sift-up/sift-down steps of Go's `container/heap`, so that
/// among equal values the same series survive as in Prometheus.
struct GoHeap {
    items: Vec<(f64, usize)>,
    /// topk keeps a min-heap (smallest on top), bottomk a max-heap; NaN is always "less".
    top: bool,
}

impl GoHeap {
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].0, self.items[j].0);
        if a.is_nan() {
            return true;
        }
        if self.top {
            a < b
        } else {
            a > b
        }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if i == j || !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    fn push(&mut self, x: (f64, usize)) {
        self.items.push(x);
        let last = self.items.len() - 1;
        self.up(last);
    }

    fn pop(&mut self) {
        let n = self.items.len() - 1;
        self.items.swap(0, n);
        self.down(0, n);
        self.items.pop();
    }
}

fn top_bottom_k(
    ev: &mut Evaluator<'_>,
    top: bool,
    input: &[VSeries],
    group_of: &[usize],
    ngroups: usize,
    k_param: &[f64],
    n: usize,
) -> Result<Vec<VSeries>, QueryError> {
    // Output: the selected input series themselves, labels unchanged.
    let mut out_idx: Vec<Option<usize>> = vec![None; input.len()];
    let mut out: Vec<VSeries> = Vec::new();
    let mut heaps: Vec<GoHeap> = (0..ngroups)
        .map(|_| GoHeap {
            items: Vec::new(),
            top,
        })
        .collect();
    for step in 0..n {
        if step % 64 == 0 {
            ev.check_deadline("aggregation")?;
        }
        let kf = k_param.get(step).copied().unwrap_or(f64::NAN);
        // Prometheus' convertibleToInt64: NaN and out-of-range values are errors.
        if !(kf <= i64::MAX as f64 && kf >= i64::MIN as f64) {
            return Err(QueryError::Execution(format!(
                "Scalar value {kf} overflows int64"
            )));
        }
        let k = kf as i64;
        if k < 1 {
            continue;
        }
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        heaps.iter_mut().for_each(|h| h.items.clear());
        for (si, s) in input.iter().enumerate() {
            let Some(v) = s.vals[step] else { continue };
            let h = &mut heaps[group_of[si]];
            if h.items.is_empty() {
                h.items.push((v, si));
                continue;
            }
            let head = h.items[0].0;
            let better = if top { head < v } else { head > v };
            if h.items.len() < k || better || head.is_nan() {
                if h.items.len() == k {
                    if h.items.len() == 1 {
                        h.items[0] = (v, si);
                        continue;
                    }
                    h.pop();
                }
                h.push((v, si));
            }
        }
        for h in &mut heaps {
            // Best first, like Prometheus' reverse sort of the heap (order matters only for
            // the output order of an instant query).
            h.items.sort_by(|a, b| {
                let o = a.0.total_cmp(&b.0);
                if top {
                    o.reverse()
                } else {
                    o
                }
            });
            for &(v, si) in &h.items {
                let idx = match out_idx[si] {
                    Some(i) => i,
                    None => {
                        ev.check_dense(out.len() + 1, n)?;
                        out_idx[si] = Some(out.len());
                        out.push(VSeries {
                            labels: input[si].labels.clone(),
                            vals: vec![None; n],
                        });
                        out.len() - 1
                    }
                };
                out[idx].vals[step] = Some(v);
            }
        }
    }
    Ok(out)
}
