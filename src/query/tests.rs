//! Engine tests against hand-computed results: every function and operator, counter resets,
//! extrapolation, staleness, vector matching errors, limits and error classification.

use std::time::Duration;

use super::*;
use crate::model::Labels;

const S: i64 = 1000;

/// `(metric, labels, [(seconds, value)])`.
type SeriesSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// Builds a source from series specs.
fn source(series: &[SeriesSpec<'_>]) -> MemorySource {
    let mut m = MemorySource::new();
    for (name, labels, points) in series {
        let mut l: Vec<(&str, &str)> = labels.to_vec();
        l.push(("__name__", name));
        for &(t, v) in points.iter() {
            m.add(&l, t * S, v);
        }
    }
    m.sorted()
}

fn show(l: &Labels) -> String {
    let name = l
        .iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.as_str());
    let rest: Vec<String> = l
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{}{{{}}}", name.unwrap_or(""), rest.join(","))
}

fn engine() -> Engine {
    Engine::default()
}

/// Instant query -> sorted `(labels, value)`.
fn vector(src: &MemorySource, q: &str, t: i64) -> Vec<(String, f64)> {
    match engine().instant(src, q, t * S) {
        Ok(Value::Vector(v)) => {
            let mut out: Vec<(String, f64)> = v.iter().map(|s| (show(&s.labels), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: {other:?}"),
    }
}

fn one(src: &MemorySource, q: &str, t: i64) -> f64 {
    let v = vector(src, q, t);
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1
}

fn scalar(src: &MemorySource, q: &str, t: i64) -> f64 {
    match engine().instant(src, q, t * S) {
        Ok(Value::Scalar { v, .. }) => v,
        other => panic!("{q}: {other:?}"),
    }
}

fn err(src: &MemorySource, q: &str, t: i64) -> QueryError {
    match engine().instant(src, q, t * S) {
        Ok(v) => panic!("{q} succeeded: {v:?}"),
        Err(e) => e,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn assert_vec(got: Vec<(String, f64)>, want: &[(&str, f64)]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
        assert_eq!(gl, wl, "got {got:?}");
        assert!(
            close(*gv, *wv) || (gv.is_nan() && wv.is_nan()),
            "{gl}: {gv} != {wv}"
        );
    }
}

/// Counter 0,10,20,30 then a reset to 5,15,25 at 10 s intervals; a gauge; a small
/// metric set for aggregation and matching.
fn data() -> MemorySource {
    source(&[
        (
            "c_total",
            &[("job", "a")],
            &[
                (0, 0.0),
                (10, 10.0),
                (20, 20.0),
                (30, 30.0),
                (40, 5.0),
                (50, 15.0),
                (60, 25.0),
            ],
        ),
        (
            "g",
            &[],
            &[
                (0, 1.0),
                (1, 4.0),
                (2, 5.0),
                (3, 7.0),
                (10, 2.0),
                (20, 9.0),
                (30, 3.0),
            ],
        ),
        ("m", &[("job", "j1"), ("inst", "1")], &[(100, 1.0)]),
        ("m", &[("job", "j1"), ("inst", "2")], &[(100, 2.0)]),
        ("m", &[("job", "j2"), ("inst", "3")], &[(100, 4.0)]),
        ("info", &[("job", "j1"), ("owner", "alice")], &[(100, 1.0)]),
        ("info", &[("job", "j2"), ("owner", "bob")], &[(100, 1.0)]),
        ("x", &[("i", "a")], &[(100, 1.0)]),
        ("x", &[("i", "b")], &[(100, 2.0)]),
        ("x", &[("i", "c")], &[(100, 2.0)]),
        ("x", &[("i", "d")], &[(100, 1.0)]),
    ])
}

#[test]
fn selectors_matchers_lookback_and_staleness() {
    let src = source(&[
        ("up", &[("job", "a")], &[(0, 1.0), (60, 2.0)]),
        ("up", &[("job", "b")], &[(0, 3.0), (60, STALE_NAN)]),
    ]);
    assert_vec(
        vector(&src, "up", 30),
        &[("up{job=\"a\"}", 1.0), ("up{job=\"b\"}", 3.0)],
    );
    // The stale marker at 60 s ends job="b"; job="a" is visible for 5 minutes after 60 s.
    assert_vec(vector(&src, "up", 60), &[("up{job=\"a\"}", 2.0)]);
    assert_vec(vector(&src, "up", 360), &[("up{job=\"a\"}", 2.0)]);
    assert_vec(vector(&src, "up", 361), &[]);
    assert_vec(
        vector(&src, "up{job!=\"a\"}", 30),
        &[("up{job=\"b\"}", 3.0)],
    );
    assert_vec(
        vector(&src, "up{job=~\"a|c\"}", 30),
        &[("up{job=\"a\"}", 1.0)],
    );
    assert_vec(
        vector(&src, "up{job!~\"a\"}", 30),
        &[("up{job=\"b\"}", 3.0)],
    );
    assert_vec(
        vector(&src, "{__name__=~\"u.\",job=\"a\"}", 30),
        &[("up{job=\"a\"}", 1.0)],
    );
    // Regexes are anchored.
    assert_vec(vector(&src, "up{job=~\"\"}", 30), &[]);
    // Range vectors skip stale markers.
    assert_eq!(one(&src, "count_over_time(up{job=\"b\"}[2m])", 60), 1.0);
}

#[test]
fn rate_increase_with_counter_reset_and_extrapolation() {
    let src = data();
    // Window [0, 60] holds all 7 samples: 25 - 0 + 30 (reset) = 55 over exactly 60 s.
    assert!(close(one(&src, "increase(c_total[1m])", 60), 55.0));
    assert!(close(one(&src, "rate(c_total[1m])", 60), 55.0 / 60.0));
    // Window [5, 55]: samples 10..50 = 10,20,30,5,15 -> 15 - 10 + 30 = 35 over 40 s;
    // 5 s to each edge (< 1.1 * 10 s) -> extrapolated to 50 s: 35 * 50 / 40.
    assert!(close(one(&src, "increase(c_total[50s])", 55), 43.75));
    assert!(close(one(&src, "rate(c_total[50s])", 55), 43.75 / 50.0));
    // Labels lose the metric name.
    assert_eq!(vector(&src, "rate(c_total[1m])", 60)[0].0, "{job=\"a\"}");
    // irate: last two samples; across the reset the value after it counts.
    assert!(close(one(&src, "irate(c_total[1m])", 60), 1.0));
    assert!(close(one(&src, "irate(c_total[1m])", 40), 0.5));
    assert!(close(one(&src, "idelta(c_total[1m])", 40), -25.0));
    // delta ignores resets: 25 - 0 over the full window.
    assert!(close(one(&src, "delta(c_total[1m])", 60), 25.0));
    assert!(close(one(&src, "resets(c_total[1m])", 60), 1.0));
    assert!(close(one(&src, "changes(c_total[1m])", 60), 6.0));
    // One sample in the window: no rate.
    assert_vec(vector(&src, "rate(c_total[5s])", 60), &[]);
}

#[test]
fn deriv_and_predict_linear_are_least_squares() {
    let src = data();
    // g at 0..3 s: 1, 4, 5, 7 -> slope 1.9 (see functions::tests), intercept at t=0: 1.4.
    assert!(close(one(&src, "deriv(g[3s])", 3), 1.9));
    // predict_linear uses the evaluation time as intercept: value at 3 s + 10 s.
    assert!(close(
        one(&src, "predict_linear(g[3s], 10)", 3),
        1.4 + 1.9 * 13.0
    ));
}

#[test]
fn over_time_functions() {
    let src = data();
    // g in [0, 30]: 1, 4, 5, 7, 2, 9, 3.
    assert!(close(one(&src, "avg_over_time(g[30s])", 30), 31.0 / 7.0));
    assert_eq!(one(&src, "min_over_time(g[30s])", 30), 1.0);
    assert_eq!(one(&src, "max_over_time(g[30s])", 30), 9.0);
    assert_eq!(one(&src, "sum_over_time(g[30s])", 30), 31.0);
    assert_eq!(one(&src, "count_over_time(g[30s])", 30), 7.0);
    assert_eq!(one(&src, "last_over_time(g[30s])", 30), 3.0);
    assert_eq!(vector(&src, "last_over_time(g[30s])", 30)[0].0, "g{}");
    // Sorted: 1 2 3 4 5 7 9; q=0.5 -> rank 3 -> 4; q=0.25 -> rank 1.5 -> 2.5.
    assert_eq!(one(&src, "quantile_over_time(0.5, g[30s])", 30), 4.0);
    assert_eq!(one(&src, "quantile_over_time(0.25, g[30s])", 30), 2.5);
    let mean = 31.0 / 7.0;
    let var = [1.0, 4.0, 5.0, 7.0, 2.0, 9.0, 3.0]
        .iter()
        .map(|v: &f64| (v - mean).powi(2))
        .sum::<f64>()
        / 7.0;
    assert!(close(one(&src, "stdvar_over_time(g[30s])", 30), var));
    assert!(close(one(&src, "stddev_over_time(g[30s])", 30), var.sqrt()));
    assert_eq!(one(&src, "present_over_time(g[30s])", 30), 1.0);
    assert_vec(vector(&src, "absent_over_time(g[30s])", 30), &[]);
    assert_vec(
        vector(&src, "absent_over_time(nope{job=\"x\",a=~\"b\"}[30s])", 30),
        &[("{job=\"x\"}", 1.0)],
    );
}

#[test]
fn absent_takes_labels_from_equality_matchers() {
    let src = data();
    assert_vec(vector(&src, "absent(m)", 100), &[]);
    assert_vec(
        vector(
            &src,
            "absent(nope{job=\"x\",a=~\"y\",b=\"1\",b=\"2\",c!=\"z\"})",
            100,
        ),
        &[("{job=\"x\"}", 1.0)],
    );
    assert_vec(
        vector(&src, "absent(sum(nope{job=\"x\"}))", 100),
        &[("{}", 1.0)],
    );
}

#[test]
fn elementwise_functions() {
    let src = data();
    assert_vec(
        vector(&src, "clamp_min(m, 2)", 100),
        &[
            ("{inst=\"1\",job=\"j1\"}", 2.0),
            ("{inst=\"2\",job=\"j1\"}", 2.0),
            ("{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
    assert_vec(
        vector(&src, "clamp_max(m, 2)", 100),
        &[
            ("{inst=\"1\",job=\"j1\"}", 1.0),
            ("{inst=\"2\",job=\"j1\"}", 2.0),
            ("{inst=\"3\",job=\"j2\"}", 2.0),
        ],
    );
    assert_vec(vector(&src, "clamp(m, 3, 2)", 100), &[]);
    assert_eq!(one(&src, "abs(-m{inst=\"3\"})", 100), 4.0);
    assert_eq!(one(&src, "round(m{inst=\"3\"} / 3)", 100), 1.0);
    assert_eq!(one(&src, "round(m{inst=\"3\"} / 3, 0.5)", 100), 1.5);
    assert_eq!(one(&src, "round(vector(2.5))", 100), 3.0);
    assert_eq!(one(&src, "round(vector(-2.5))", 100), -2.0);
    assert_eq!(one(&src, "ceil(vector(1.2))", 100), 2.0);
    assert_eq!(one(&src, "floor(vector(1.8))", 100), 1.0);
    assert_eq!(one(&src, "sqrt(vector(16))", 100), 4.0);
    assert_eq!(one(&src, "sgn(vector(-3))", 100), -1.0);
    assert_eq!(one(&src, "log2(vector(8))", 100), 3.0);
    assert_eq!(one(&src, "timestamp(g)", 35), 30.0);
    assert_eq!(one(&src, "timestamp(g offset 10s)", 35), 20.0);
    assert_eq!(scalar(&src, "time()", 100), 100.0);
    assert!(scalar(&src, "scalar(m)", 100).is_nan());
    assert_eq!(scalar(&src, "scalar(m{inst=\"2\"})", 100), 2.0);
    assert_vec(vector(&src, "vector(7)", 100), &[("{}", 7.0)]);
    assert_vec(
        vector(
            &src,
            "label_replace(m{inst=\"1\"}, \"foo\", \"$1-x\", \"job\", \"j(.*)\")",
            100,
        ),
        &[("m{foo=\"1-x\",inst=\"1\",job=\"j1\"}", 1.0)],
    );
    assert_vec(
        vector(
            &src,
            "label_join(m{inst=\"1\"}, \"foo\", \"/\", \"job\", \"inst\")",
            100,
        ),
        &[("m{foo=\"j1/1\",inst=\"1\",job=\"j1\"}", 1.0)],
    );
    // Sorting is visible in instant results.
    match engine().instant(&src, "sort_desc(m)", 100 * S) {
        Ok(Value::Vector(v)) => {
            let vals: Vec<f64> = v.iter().map(|s| s.v).collect();
            assert_eq!(vals, vec![4.0, 2.0, 1.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn aggregations_with_by_and_without() {
    let src = data();
    assert_vec(
        vector(&src, "sum by (job) (m)", 100),
        &[("{job=\"j1\"}", 3.0), ("{job=\"j2\"}", 4.0)],
    );
    assert_vec(
        vector(&src, "sum without (inst) (m)", 100),
        &[("{job=\"j1\"}", 3.0), ("{job=\"j2\"}", 4.0)],
    );
    assert_vec(vector(&src, "sum(m)", 100), &[("{}", 7.0)]);
    assert_vec(
        vector(&src, "avg by (job) (m)", 100),
        &[("{job=\"j1\"}", 1.5), ("{job=\"j2\"}", 4.0)],
    );
    assert_vec(
        vector(&src, "count by (job) (m)", 100),
        &[("{job=\"j1\"}", 2.0), ("{job=\"j2\"}", 1.0)],
    );
    assert_vec(vector(&src, "max(m)", 100), &[("{}", 4.0)]);
    assert_vec(vector(&src, "min(m)", 100), &[("{}", 1.0)]);
    assert_vec(
        vector(&src, "group by (job) (m)", 100),
        &[("{job=\"j1\"}", 1.0), ("{job=\"j2\"}", 1.0)],
    );
    assert_vec(vector(&src, "quantile(0.5, m)", 100), &[("{}", 2.0)]);
    assert!(close(one(&src, "stdvar(m)", 100), 14.0 / 9.0));
    assert!(close(one(&src, "stddev(m)", 100), (14.0f64 / 9.0).sqrt()));
    assert_vec(
        vector(&src, "count_values(\"v\", m)", 100),
        &[("{v=\"1\"}", 1.0), ("{v=\"2\"}", 1.0), ("{v=\"4\"}", 1.0)],
    );
    // `by (__name__)` keeps the name; `without` always drops it.
    assert_vec(vector(&src, "sum by (__name__) (m)", 100), &[("m{}", 7.0)]);
}

#[test]
fn topk_and_bottomk_ties_follow_prometheus_heap() {
    let src = data();
    // x: a=1, b=2, c=2, d=1 (in label order). Ties keep the earlier series.
    assert_vec(vector(&src, "topk(1, x)", 100), &[("x{i=\"b\"}", 2.0)]);
    assert_vec(
        vector(&src, "topk(2, x)", 100),
        &[("x{i=\"b\"}", 2.0), ("x{i=\"c\"}", 2.0)],
    );
    assert_vec(vector(&src, "bottomk(1, x)", 100), &[("x{i=\"a\"}", 1.0)]);
    // bottomk(2): a, b enter; c (2) does not beat the top (2); d (1) replaces b.
    assert_vec(
        vector(&src, "bottomk(2, x)", 100),
        &[("x{i=\"a\"}", 1.0), ("x{i=\"d\"}", 1.0)],
    );
    assert_vec(vector(&src, "topk(0, x)", 100), &[]);
    assert_vec(
        vector(&src, "topk by (job) (1, m)", 100),
        &[
            ("m{inst=\"2\",job=\"j1\"}", 2.0),
            ("m{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
    // Instant results come best first.
    match engine().instant(&src, "topk(3, m)", 100 * S) {
        Ok(Value::Vector(v)) => {
            let vals: Vec<f64> = v.iter().map(|s| s.v).collect();
            assert_eq!(vals, vec![4.0, 2.0, 1.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scalar_and_vector_arithmetic_and_comparisons() {
    let src = data();
    assert_vec(
        vector(&src, "m * 2", 100),
        &[
            ("{inst=\"1\",job=\"j1\"}", 2.0),
            ("{inst=\"2\",job=\"j1\"}", 4.0),
            ("{inst=\"3\",job=\"j2\"}", 8.0),
        ],
    );
    // Filtering comparisons keep the name and the vector's value, on either side.
    assert_vec(
        vector(&src, "m > 1", 100),
        &[
            ("m{inst=\"2\",job=\"j1\"}", 2.0),
            ("m{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
    assert_vec(
        vector(&src, "1 < m", 100),
        &[
            ("m{inst=\"2\",job=\"j1\"}", 2.0),
            ("m{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
    assert_vec(
        vector(&src, "m > bool 1", 100),
        &[
            ("{inst=\"1\",job=\"j1\"}", 0.0),
            ("{inst=\"2\",job=\"j1\"}", 1.0),
            ("{inst=\"3\",job=\"j2\"}", 1.0),
        ],
    );
    assert_eq!(scalar(&src, "2 > bool 1", 100), 1.0);
    assert_eq!(scalar(&src, "2 ^ 3 - 10 % 4", 100), 6.0);
    assert_eq!(scalar(&src, "-(1 + 2) * 2", 100), -6.0);
    assert!(close(
        scalar(&src, "1 atan2 1", 100),
        std::f64::consts::FRAC_PI_4
    ));
    assert_vec(
        vector(&src, "-m{inst=\"1\"}", 100),
        &[("{inst=\"1\",job=\"j1\"}", -1.0)],
    );
}

#[test]
fn vector_matching() {
    let src = data();
    // One-to-one on all labels but the name.
    assert_vec(
        vector(&src, "m / m", 100),
        &[
            ("{inst=\"1\",job=\"j1\"}", 1.0),
            ("{inst=\"2\",job=\"j1\"}", 1.0),
            ("{inst=\"3\",job=\"j2\"}", 1.0),
        ],
    );
    // on(): result keeps only the matching labels.
    assert_vec(
        vector(&src, "m{inst=\"3\"} + on(job) info", 100),
        &[("{job=\"j2\"}", 5.0)],
    );
    assert_vec(
        vector(&src, "m{inst=\"3\"} + ignoring(inst, owner) info", 100),
        &[("{job=\"j2\"}", 5.0)],
    );
    // Many-to-one must be explicit.
    let e = err(&src, "m * on(job) info", 100);
    assert!(
        e.to_string()
            .contains("many-to-one matching must be explicit"),
        "{e}"
    );
    assert_eq!(e.error_type(), "execution");
    // Many-to-many is an error naming the group.
    let e = err(&src, "m * on(job) group_left m", 100);
    assert!(
        e.to_string().contains(
            "found duplicate series for the match group {job=\"j1\"} on the right hand-side"
        ),
        "{e}"
    );
    // group_left copies labels from the one side.
    assert_vec(
        vector(&src, "m * on(job) group_left(owner) info", 100),
        &[
            ("{inst=\"1\",job=\"j1\",owner=\"alice\"}", 1.0),
            ("{inst=\"2\",job=\"j1\",owner=\"alice\"}", 2.0),
            ("{inst=\"3\",job=\"j2\",owner=\"bob\"}", 4.0),
        ],
    );
    assert_vec(
        vector(&src, "info * on(job) group_right(owner) m", 100),
        &[
            ("{inst=\"1\",job=\"j1\",owner=\"alice\"}", 1.0),
            ("{inst=\"2\",job=\"j1\",owner=\"alice\"}", 2.0),
            ("{inst=\"3\",job=\"j2\",owner=\"bob\"}", 4.0),
        ],
    );
    // Comparisons between vectors keep the left value; bool gives 0/1 without the name.
    assert_vec(
        vector(&src, "m >= on(job) group_left info * 2", 100),
        &[
            ("m{inst=\"2\",job=\"j1\"}", 2.0),
            ("m{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
    assert_vec(
        vector(&src, "m{job=\"j2\"} == bool on(job) info", 100),
        &[("{job=\"j2\"}", 0.0)],
    );
    // Set operators.
    assert_vec(
        vector(&src, "m and on(job) info{owner=\"alice\"}", 100),
        &[
            ("m{inst=\"1\",job=\"j1\"}", 1.0),
            ("m{inst=\"2\",job=\"j1\"}", 2.0),
        ],
    );
    assert_vec(
        vector(&src, "m unless on(job) info{owner=\"alice\"}", 100),
        &[("m{inst=\"3\",job=\"j2\"}", 4.0)],
    );
    assert_vec(
        vector(&src, "m{job=\"j2\"} or on(job) info", 100),
        &[
            ("info{job=\"j1\",owner=\"alice\"}", 1.0),
            ("m{inst=\"3\",job=\"j2\"}", 4.0),
        ],
    );
}

#[test]
fn duplicate_label_sets_are_errors() {
    let src = source(&[
        ("a_total", &[("k", "1")], &[(0, 0.0), (10, 1.0)]),
        ("b_total", &[("k", "1")], &[(0, 0.0), (10, 1.0)]),
    ]);
    let e = err(&src, "rate({__name__=~\"a_total|b_total\"}[1m])", 10);
    assert!(e.to_string().contains("same labelset"), "{e}");
    let e = err(&src, "{__name__=~\"a_total|b_total\"} * 2", 10);
    assert!(e.to_string().contains("same labelset"), "{e}");
}

#[test]
fn offset_at_and_subqueries() {
    let src = data();
    assert_eq!(one(&src, "g offset 10s", 25), 2.0);
    assert_eq!(one(&src, "g offset 10s", 35), 9.0);
    assert_eq!(one(&src, "g @ 10", 100), 2.0);
    assert_eq!(one(&src, "g @ 20 offset 10s", 100), 2.0);
    assert_eq!(one(&src, "max_over_time(g[15s] @ 20)", 100), 9.0);
    // Subquery steps at 0, 10, 20, 30 (aligned to the step): g = 1, 2, 9, 3.
    assert_eq!(one(&src, "max_over_time(g[30s:10s])", 30), 9.0);
    assert_eq!(one(&src, "count_over_time(g[30s:10s])", 30), 4.0);
    assert_eq!(one(&src, "sum_over_time(g[30s:10s])", 30), 15.0);
    // Steps at 10 and 20 only: window [5, 25].
    assert_eq!(one(&src, "count_over_time(g[20s:10s])", 25), 2.0);
    // A subquery at an instant is a range vector result.
    match engine().instant(&src, "g[20s:10s]", 30 * S) {
        Ok(Value::Matrix(m)) => {
            assert_eq!(m.len(), 1);
            let ts: Vec<i64> = m[0].points.iter().map(|p| p.t / S).collect();
            assert_eq!(ts, vec![10, 20, 30]);
        }
        other => panic!("{other:?}"),
    }
    match engine().instant(&src, "g[20s]", 30 * S) {
        Ok(Value::Matrix(m)) => {
            let got: Vec<(i64, f64)> = m[0].points.iter().map(|p| (p.t / S, p.v)).collect();
            assert_eq!(got, vec![(10, 2.0), (20, 9.0), (30, 3.0)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_queries() {
    let src = data();
    let m = engine().range(&src, "g", 0, 30 * S, 10 * S).unwrap();
    assert_eq!(m.len(), 1);
    let got: Vec<(i64, f64)> = m[0].points.iter().map(|p| (p.t / S, p.v)).collect();
    assert_eq!(got, vec![(0, 1.0), (10, 2.0), (20, 9.0), (30, 3.0)]);
    // A scalar becomes one series without labels; the last step is the last multiple.
    let m = engine().range(&src, "time()", 0, 25 * S, 10 * S).unwrap();
    assert_eq!(m[0].labels, Vec::<(String, String)>::new());
    let got: Vec<f64> = m[0].points.iter().map(|p| p.v).collect();
    assert_eq!(got, vec![0.0, 10.0, 20.0]);
    // @ start() / end().
    let m = engine()
        .range(&src, "g @ end()", 0, 30 * S, 10 * S)
        .unwrap();
    assert!(m[0].points.iter().all(|p| p.v == 3.0));
    let m = engine()
        .range(&src, "g @ start()", 0, 30 * S, 10 * S)
        .unwrap();
    assert!(m[0].points.iter().all(|p| p.v == 1.0));
    // Sorted by labels.
    let m = engine().range(&src, "m", 100 * S, 100 * S, S).unwrap();
    let names: Vec<String> = m.iter().map(|s| show(&s.labels)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Invalid parameters.
    for (q, s, e, step) in [
        ("g", 0, 10, 0),
        ("g", 10, 0, 1),
        ("g[1m]", 0, 10, 1),
        ("\"s\"", 0, 10, 1),
        ("g", 0, 20_000, 1),
    ] {
        let e = engine().range(&src, q, s * S, e * S, step * S).unwrap_err();
        assert_eq!(e.error_type(), "bad_data", "{q}: {e}");
        assert_eq!(e.http_status(), 400);
    }
}

#[test]
fn limits_and_error_classification() {
    let src = data();
    let tight = |limits: Limits| Engine::new(limits);
    let e = tight(Limits {
        max_points: 3,
        ..Limits::default()
    })
    .instant(&src, "g[1m]", 30 * S)
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManyPoints { limit: 3 }), "{e}");
    assert_eq!(e.http_status(), 422);
    let e = tight(Limits {
        max_series: 2,
        ..Limits::default()
    })
    .instant(&src, "m", 100 * S)
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManySeries { limit: 2 }), "{e}");
    let e = tight(Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    })
    .instant(&src, "m", 100 * S)
    .unwrap_err();
    assert!(matches!(e, QueryError::Timeout { .. }), "{e}");
    assert_eq!(e.error_type(), "timeout");
    assert_eq!(e.http_status(), 503);
    // A range query's output counts too: 4 series x 100 steps.
    let e = tight(Limits {
        max_points: 100,
        ..Limits::default()
    })
    .range(&src, "x", 0, 200 * S, S)
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManyPoints { .. }), "{e}");

    let e = err(&src, "histogram_quantile(0.9, rate(x[5m]))", 100);
    assert!(
        matches!(&e, QueryError::Unsupported(m) if m.contains("histogram_quantile")),
        "{e}"
    );
    assert_eq!(e.error_type(), "bad_data");
    let e = err(&src, "sum(", 100);
    assert!(matches!(e, QueryError::Parse(_)), "{e}");
    assert_eq!(e.http_status(), 400);
    let e = err(
        &src,
        "label_replace(m, \"1bad\", \"\", \"job\", \"(.*)\")",
        100,
    );
    assert_eq!(e.error_type(), "execution", "{e}");
    // Absurd times are errors, never overflows.
    for q in ["m @ 1e17", "rate(m[100000000y])", "m offset 100000000y"] {
        assert_eq!(err(&src, q, 100).error_type(), "bad_data", "{q}");
    }
    assert!(engine().instant(&src, "m", i64::MAX).is_err());
    let e = err(&src, "max_over_time(vector(1)[10000y:1ms])", 100);
    assert!(matches!(e, QueryError::TooManyPoints { .. }), "{e}");
    assert!(engine().range(&src, "m", i64::MIN, 0, 1).is_err());
}

#[test]
fn rollup_tiers_are_chosen_and_use_bucket_aggregates() {
    // Three hours at 60 s: a counter growing 1/s and a gauge equal to the minute index.
    let mut src = MemorySource::new();
    for i in 0..=180i64 {
        src.add(&[("__name__", "c_total")], i * 60 * S, (i * 60) as f64);
        src.add(&[("__name__", "g")], i * 60 * S, i as f64);
    }
    let mut src = src.sorted();
    src.compute_rollups(&[300 * S, 3600 * S]);
    let hour = 3600 * S;
    let eng = engine();
    let q = parse("sum_over_time(g[1h])").unwrap();
    let (m, stats) = eng.range_query(&src, &q, hour, 3 * hour, hour).unwrap();
    assert_eq!(
        stats.tier,
        Tier::Rollup {
            resolution_ms: hour
        }
    );
    // Buckets (t-1h, t]: minutes 1..=60 sum to 1830; 61..=120 to 5430; 121..=180 to 9030.
    let got: Vec<f64> = m[0].points.iter().map(|p| p.v).collect();
    assert_eq!(got, vec![1830.0, 5430.0, 9030.0]);
    let q = parse("avg_over_time(g[1h])").unwrap();
    let (m, _) = eng.range_query(&src, &q, hour, 3 * hour, hour).unwrap();
    let got: Vec<f64> = m[0].points.iter().map(|p| p.v).collect();
    assert_eq!(got, vec![30.5, 90.5, 150.5]);
    // rate over bucket `last` values: exactly 1/s.
    let q = parse("rate(c_total[1h])").unwrap();
    let (m, _) = eng.range_query(&src, &q, 2 * hour, 3 * hour, hour).unwrap();
    assert!(m[0].points.iter().all(|p| close(p.v, 1.0)), "{m:?}");
    // Plain selectors at aligned steps equal raw values.
    let q = parse("g").unwrap();
    let (m, stats) = eng
        .range_query(&src, &q, hour, 3 * hour, 5 * 60 * S)
        .unwrap();
    assert_eq!(
        stats.tier,
        Tier::Rollup {
            resolution_ms: 300 * S
        }
    );
    assert!(m[0].points.iter().all(|p| p.v == (p.t / (60 * S)) as f64));
    // A 15 s step stays raw; so does an instant query, and quantile_over_time.
    let q = parse("rate(c_total[5m])").unwrap();
    let (_, stats) = eng.range_query(&src, &q, hour, 2 * hour, 15 * S).unwrap();
    assert_eq!(stats.tier, Tier::Raw);
    let q = parse("quantile_over_time(0.5, g[1h])").unwrap();
    let (_, stats) = eng.range_query(&src, &q, hour, 3 * hour, hour).unwrap();
    assert_eq!(stats.tier, Tier::Raw);
    // Raw retention passed: an instant query falls back to the finest covering rollup.
    src.set_oldest(Tier::Raw, Some(2 * hour));
    let q = parse("g").unwrap();
    let (v, stats) = eng.instant_query(&src, &q, hour).unwrap();
    assert_eq!(
        stats.tier,
        Tier::Rollup {
            resolution_ms: 300 * S
        }
    );
    assert!(matches!(v, Value::Vector(ref s) if s[0].v == 60.0), "{v:?}");
}

#[test]
fn results_serialize_like_prometheus() {
    let src = data();
    let v = engine().instant(&src, "sum by (job) (m)", 100 * S).unwrap();
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(
        json,
        r#"{"resultType":"vector","result":[{"metric":{"job":"j1"},"value":[100,"3"]},{"metric":{"job":"j2"},"value":[100,"4"]}]}"#
    );
}
