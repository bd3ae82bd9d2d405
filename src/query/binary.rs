//! Binary operators: arithmetic, comparisons (filtering or with `bool`), `atan2`, and the set
//! operators `and`/`or`/`unless`, between scalars and vectors, with one-to-one and
//! many-to-one/one-to-many (`group_left`/`group_right`) vector matching on `on`/`ignoring`
//! labels. Ported from Prometheus 2.42's `VectorBinop`, `VectorscalarBinop`, `VectorAnd`,
//! `VectorOr`, `VectorUnless` and `resultMetric`, including their error messages.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Labels;
use crate::query::error::QueryError;
use crate::query::eval::{
    drop_metric_name, duplicate_labelset, merge_by_labels, Evaluator, Grid, VSeries, Val,
};
use crate::query::plan::{BinOp, Binary, Card, Matching, ValueType};
use crate::query::source::METRIC_NAME;

/// `lhs op rhs` on two numbers: the value and whether a comparison holds.
fn elem(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Pow => (l.powf(r), true),
        // Rust's `%` on floats is C's fmod, like Go's math.Mod.
        BinOp::Mod => (l % r, true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, b: &Binary, grid: &Grid) -> Result<Val, QueryError> {
    let lt = b.lhs.value_type();
    let rt = b.rhs.value_type();
    match (lt, rt) {
        (ValueType::Scalar, ValueType::Scalar) => {
            let l = ev.eval_scalar(&b.lhs, grid)?;
            let r = ev.eval_scalar(&b.rhs, grid)?;
            Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&l, &r)| {
                        let (v, keep) = elem(b.op, l, r);
                        if b.op.is_comparison() {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            ))
        }
        (ValueType::Vector, ValueType::Scalar) => {
            let v = ev.eval_vector(&b.lhs, grid)?;
            let s = ev.eval_scalar(&b.rhs, grid)?;
            vector_scalar(b, v, &s, false)
        }
        (ValueType::Scalar, ValueType::Vector) => {
            let s = ev.eval_scalar(&b.lhs, grid)?;
            let v = ev.eval_vector(&b.rhs, grid)?;
            vector_scalar(b, v, &s, true)
        }
        (ValueType::Vector, ValueType::Vector) => {
            let l = ev.eval_vector(&b.lhs, grid)?;
            let r = ev.eval_vector(&b.rhs, grid)?;
            let n = grid.len();
            if b.op.is_set() {
                set_op(ev, b.op, &b.matching, l, r, n)
            } else {
                vector_vector(ev, b, l, r, n)
            }
        }
        _ => Err(QueryError::BadRequest(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}

/// Prometheus' `VectorscalarBinop`. `swap` when the scalar is on the left.
fn vector_scalar(b: &Binary, v: Vec<VSeries>, s: &[f64], swap: bool) -> Result<Val, QueryError> {
    let drop = b.op.drops_metric_name() || b.return_bool;
    let out = v
        .into_iter()
        .map(|series| {
            let vals = series
                .vals
                .iter()
                .enumerate()
                .map(|(step, x)| {
                    let x = (*x)?;
                    let (l, r) = if swap { (s[step], x) } else { (x, s[step]) };
                    let (mut value, mut keep) = elem(b.op, l, r);
                    // A comparison keeps the vector's value even when the scalar is on the left.
                    if b.op.is_comparison() && swap {
                        value = r;
                    }
                    if b.return_bool {
                        value = if keep { 1.0 } else { 0.0 };
                        keep = true;
                    }
                    keep.then_some(value)
                })
                .collect();
            VSeries {
                labels: if drop {
                    drop_metric_name(&series.labels)
                } else {
                    series.labels
                },
                vals,
            }
        })
        .collect();
    Ok(Val::Vector(merge_by_labels(out)?))
}

/// A matching signature: the `on` labels, or all labels but the `ignoring` ones and
/// `__name__`.
fn signature(labels: &Labels, m: &Matching) -> String {
    let mut sig = String::new();
    for (k, v) in labels {
        let listed = m.labels.iter().any(|l| l == k);
        let keep = if m.on {
            listed
        } else {
            !listed && k != METRIC_NAME
        };
        if keep {
            sig.push_str(k);
            sig.push('\u{ff}');
            sig.push_str(v);
            sig.push('\u{fe}');
        }
    }
    sig
}

/// Maps each series to a small integer signature id.
fn signature_ids(series: &[VSeries], m: &Matching, ids: &mut HashMap<String, usize>) -> Vec<usize> {
    series
        .iter()
        .map(|s| {
            let sig = signature(&s.labels, m);
            let next = ids.len();
            *ids.entry(sig).or_insert(next)
        })
        .collect()
}

fn format_labels(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Prometheus' `resultMetric`: the labels of `lhs op rhs` where `many` is the "many" side.
fn result_labels(many: &Labels, one: &Labels, b: &Binary) -> Labels {
    let m = &b.matching;
    let mut out: Labels = many
        .iter()
        .filter(|(k, _)| {
            if b.op.drops_metric_name() && k == METRIC_NAME {
                return false;
            }
            if m.card == Card::OneToOne {
                let listed = m.labels.iter().any(|l| l == k);
                return if m.on { listed } else { !listed };
            }
            true
        })
        .cloned()
        .collect();
    for name in &m.include {
        let v = crate::query::eval::get(one, name);
        out = crate::query::functions::set_label(&out, name, v);
    }
    if b.return_bool {
        out.retain(|(k, _)| k != METRIC_NAME);
    }
    out
}

/// Arithmetic and comparisons between two vectors (Prometheus' `VectorBinop`).
fn vector_vector(
    ev: &mut Evaluator<'_>,
    b: &Binary,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    n: usize,
) -> Result<Val, QueryError> {
    let m = &b.matching;
    // One-to-many is many-to-one with the sides swapped; values are swapped back below.
    let swapped = m.card == Card::OneToMany;
    let (many, one) = if swapped { (&rhs, &lhs) } else { (&lhs, &rhs) };
    let mut ids = HashMap::new();
    let many_sig = signature_ids(many, m, &mut ids);
    let one_sig = signature_ids(one, m, &mut ids);
    let nsig = ids.len();

    let mut out: Vec<VSeries> = Vec::new();
    let mut out_index: HashMap<Arc<Labels>, usize> = HashMap::new();
    let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
    // Per-step scratch, indexed by signature id.
    let mut one_at: Vec<Option<usize>> = vec![None; nsig];
    let mut matched: Vec<bool> = vec![false; nsig];
    let mut group_seen: HashMap<(usize, usize), ()> = HashMap::new();
    let one_side = if swapped { "left" } else { "right" };

    for step in 0..n {
        if step % 64 == 0 {
            ev.check_deadline("binary operation")?;
        }
        one_at.iter_mut().for_each(|x| *x = None);
        matched.iter_mut().for_each(|x| *x = false);
        group_seen.clear();
        for (i, s) in one.iter().enumerate() {
            if s.vals[step].is_none() {
                continue;
            }
            let sig = one_sig[i];
            if let Some(prev) = one_at[sig] {
                let matched_labels: Labels = s
                    .labels
                    .iter()
                    .filter(|(k, _)| {
                        let listed = m.labels.iter().any(|l| l == k);
                        if m.on {
                            listed
                        } else {
                            !listed && k != METRIC_NAME
                        }
                    })
                    .cloned()
                    .collect();
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    format_labels(&matched_labels),
                    one_side,
                    format_labels(&s.labels),
                    format_labels(&one[prev].labels),
                )));
            }
            one_at[sig] = Some(i);
        }
        for (li, ls) in many.iter().enumerate() {
            let Some(lv) = ls.vals[step] else { continue };
            let sig = many_sig[li];
            let Some(ri) = one_at[sig] else { continue };
            let Some(rv) = one[ri].vals[step] else {
                continue;
            };
            let (vl, vr) = if swapped { (rv, lv) } else { (lv, rv) };
            let (mut value, keep) = elem(b.op, vl, vr);
            if b.return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let oi = match pair_out.get(&(li, ri)) {
                Some(&oi) => oi,
                None => {
                    let labels = Arc::new(result_labels(&ls.labels, &one[ri].labels, b));
                    let oi = match out_index.get(&labels) {
                        Some(&oi) => oi,
                        None => {
                            ev.check_dense(out.len() + 1, n)?;
                            out_index.insert(labels.clone(), out.len());
                            out.push(VSeries {
                                labels,
                                vals: vec![None; n],
                            });
                            out.len() - 1
                        }
                    };
                    pair_out.insert((li, ri), oi);
                    oi
                }
            };
            if m.card == Card::OneToOne {
                if matched[sig] {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                matched[sig] = true;
            } else if group_seen.insert((sig, oi), ()).is_some() {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            let slot = &mut out[oi].vals[step];
            if slot.is_some() {
                return Err(duplicate_labelset());
            }
            *slot = Some(value);
        }
    }
    out.retain(|s| s.vals.iter().any(Option::is_some));
    Ok(Val::Vector(out))
}

/// `and`, `or`, `unless` (Prometheus' `VectorAnd`, `VectorOr`, `VectorUnless`).
fn set_op(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    m: &Matching,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    n: usize,
) -> Result<Val, QueryError> {
    let mut ids = HashMap::new();
    let lsig = signature_ids(&lhs, m, &mut ids);
    let rsig = signature_ids(&rhs, m, &mut ids);
    let nsig = ids.len();
    let mut left: Vec<VSeries> = lhs
        .iter()
        .map(|s| VSeries {
            labels: s.labels.clone(),
            vals: vec![None; n],
        })
        .collect();
    let mut right: Vec<VSeries> = if op == BinOp::Or {
        rhs.iter()
            .map(|s| VSeries {
                labels: s.labels.clone(),
                vals: vec![None; n],
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut in_r = vec![false; nsig];
    let mut in_l = vec![false; nsig];
    for step in 0..n {
        if step % 64 == 0 {
            ev.check_deadline("set operation")?;
        }
        in_r.iter_mut().for_each(|x| *x = false);
        in_l.iter_mut().for_each(|x| *x = false);
        let mut any_r = false;
        for (i, s) in rhs.iter().enumerate() {
            if s.vals[step].is_some() {
                in_r[rsig[i]] = true;
                any_r = true;
            }
        }
        for (i, s) in lhs.iter().enumerate() {
            let Some(v) = s.vals[step] else { continue };
            in_l[lsig[i]] = true;
            let keep = match op {
                BinOp::And => in_r[lsig[i]],
                BinOp::Unless => !any_r || !in_r[lsig[i]],
                _ => true,
            };
            if keep {
                left[i].vals[step] = Some(v);
            }
        }
        if op == BinOp::Or {
            for (i, s) in rhs.iter().enumerate() {
                let Some(v) = s.vals[step] else { continue };
                if !in_l[rsig[i]] {
                    right[i].vals[step] = Some(v);
                }
            }
        }
    }
    left.extend(right);
    Ok(Val::Vector(merge_by_labels(left)?))
}
