//! Compares the query engine with real Prometheus on the same data: a 10 minute slice of the
//! real host recording plus synthetic series (a counter with resets, a counter that starts
//! late, a gauge with a gap) is written as OpenMetrics, loaded into Prometheus with
//! `promtool tsdb create-blocks-from openmetrics` and into a `MemorySource` with a small
//! loader below; then every supported function and operator is queried on both, as instant
//! queries at several times and as range queries. Labels must match exactly and values
//! within 1e-9 relative; where Prometheus answers with an error, we must error with the same
//! `errorType`.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package): skipped with a message
//! when missing, a failure when `CI=true`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use automon::model::Labels;
use automon::query::{Engine, MemorySource, QueryError, Value};

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/recordings/host-1s-30min.om.xz"
);

/// Length of the slice taken from the recording.
const SLICE_MS: i64 = 600_000;

/// Parses one OpenMetrics sample line `name{a="b",...} value timestamp` into sorted labels
/// (with `__name__`), the timestamp in ms exactly as promtool computes it
/// (`int64(seconds * 1000)`), and the value.
fn parse_sample(line: &str) -> Option<(Labels, i64, f64)> {
    let name_end = line.find(['{', ' '])?;
    let mut labels = Vec::new();
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // Expect a quoted value with \\, \" and \n escapes.
                    let _ = chars.next();
                    let mut value = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(c) => value.push(c),
                                None => return None,
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        rest = &body[end? + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let ts: f64 = fields.next()?.parse().ok()?;
    labels.push(("__name__".to_owned(), name.to_owned()));
    labels.sort();
    Some((labels, (ts * 1000.0) as i64, value))
}

fn format_ts(t_ms: i64) -> String {
    format!("{}.{:03}", t_ms / 1000, t_ms % 1000)
}

/// Writes the slice plus synthetic series to `path`; returns the first timestamp.
fn write_openmetrics(path: &Path) -> i64 {
    let file = std::fs::File::open(RECORDING).unwrap_or_else(|e| panic!("{RECORDING}: {e}"));
    let reader = BufReader::new(xz2::read::XzDecoder::new(file));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create om file"));
    let mut t0: Option<i64> = None;
    for line in reader.lines() {
        let line = line.expect("read recording");
        if line == "# EOF" {
            break;
        }
        if line.starts_with('#') {
            writeln!(out, "{line}").expect("write");
            continue;
        }
        let Some((_, t, _)) = parse_sample(&line) else {
            panic!("unparsable sample line: {line}")
        };
        let start = *t0.get_or_insert(t);
        if t < start + SLICE_MS {
            writeln!(out, "{line}").expect("write");
        }
    }
    let t0 = t0.expect("recording has samples");
    // A counter that climbs 3.5/s and resets every 97 s (sawtooth), one that starts 200 s in,
    // and a gauge with a 7 minute gap (longer than the 5 minute lookback).
    writeln!(out, "# TYPE automon_test_resets counter").expect("write");
    for i in 0..SLICE_MS / 1000 {
        let v = (i % 97) as f64 * 3.5 + if i % 97 == 0 { 0.0 } else { 1.25 };
        writeln!(
            out,
            "automon_test_resets_total{{kind=\"sawtooth\"}} {v} {}",
            format_ts(t0 + i * 1000)
        )
        .expect("write");
    }
    writeln!(out, "# TYPE automon_test_late counter").expect("write");
    for i in 200..SLICE_MS / 1000 {
        let v = 3.0 + 2.0 * (i - 200) as f64;
        writeln!(
            out,
            "automon_test_late_total{{kind=\"late\"}} {v} {}",
            format_ts(t0 + i * 1000)
        )
        .expect("write");
    }
    writeln!(out, "# TYPE automon_test_gappy gauge").expect("write");
    for i in (0..SLICE_MS / 1000).filter(|i| !(100..520).contains(i)) {
        let v = ((i * 7919) % 101) as f64 / 10.0;
        writeln!(
            out,
            "automon_test_gappy{{kind=\"gap\"}} {v} {}",
            format_ts(t0 + i * 1000)
        )
        .expect("write");
    }
    writeln!(out, "# EOF").expect("write");
    out.flush().expect("flush");
    t0
}

/// The loader: the same file into a `MemorySource`.
fn load(path: &Path) -> MemorySource {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("read om file");
    let mut src = MemorySource::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (labels, t, v) = parse_sample(line).unwrap_or_else(|| panic!("bad line {line}"));
        src.add_owned(labels, t, v);
    }
    src.sorted()
}

struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(prometheus: &Path, data: &Path, config: &Path) -> Prometheus {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(prometheus)
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    let p = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{}/-/ready", p.base)).send() {
            if r.status().is_success() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A normalized result for comparison.
#[derive(Debug)]
enum Norm {
    Error(String),
    Scalar(i64, f64),
    Vector(Vec<(Labels, i64, f64)>),
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
}

fn parse_value(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or_else(|_| panic!("bad value {s}")),
        None => panic!("value not a string: {v}"),
    }
}

fn parse_ts(v: &serde_json::Value) -> i64 {
    (v.as_f64().expect("timestamp") * 1000.0).round() as i64
}

fn parse_labels(v: &serde_json::Value) -> Labels {
    let mut l: Labels = v
        .as_object()
        .expect("metric object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    l.sort();
    l
}

fn from_prometheus(body: &serde_json::Value) -> Norm {
    if body["status"] != "success" {
        return Norm::Error(body["errorType"].as_str().unwrap_or("?").to_owned());
    }
    let data = &body["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => Norm::Scalar(parse_ts(&result[0]), parse_value(&result[1])),
        Some("vector") => {
            let mut v: Vec<(Labels, i64, f64)> = result
                .as_array()
                .expect("array")
                .iter()
                .map(|s| {
                    (
                        parse_labels(&s["metric"]),
                        parse_ts(&s["value"][0]),
                        parse_value(&s["value"][1]),
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::Vector(v)
        }
        Some("matrix") => {
            let mut m: Vec<(Labels, Vec<(i64, f64)>)> = result
                .as_array()
                .expect("array")
                .iter()
                .map(|s| {
                    let pts = s["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|p| (parse_ts(&p[0]), parse_value(&p[1])))
                        .collect();
                    (parse_labels(&s["metric"]), pts)
                })
                .collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::Matrix(m)
        }
        other => panic!("unexpected result type {other:?}"),
    }
}

fn from_ours(r: Result<Value, QueryError>) -> Norm {
    match r {
        Err(e) => Norm::Error(e.error_type().to_owned()),
        Ok(Value::Scalar { t, v }) => Norm::Scalar(t, v),
        Ok(Value::String { .. }) => Norm::Error("string".into()),
        Ok(Value::Vector(v)) => {
            let mut v: Vec<(Labels, i64, f64)> =
                v.into_iter().map(|s| (s.labels, s.t, s.v)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::Vector(v)
        }
        Ok(Value::Matrix(m)) => {
            let mut m: Vec<(Labels, Vec<(i64, f64)>)> = m
                .into_iter()
                .map(|s| (s.labels, s.points.into_iter().map(|p| (p.t, p.v)).collect()))
                .collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::Matrix(m)
        }
    }
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Whether Prometheus returned data (not an error, not empty): guards against a comparison
/// that passes because neither side saw any data.
fn has_data(n: &Norm) -> bool {
    match n {
        Norm::Error(_) => false,
        Norm::Scalar(..) => true,
        Norm::Vector(v) => !v.is_empty(),
        Norm::Matrix(m) => !m.is_empty(),
    }
}

/// `None` when equal, else a description of the first difference.
fn diff(ours: &Norm, theirs: &Norm) -> Option<String> {
    match (ours, theirs) {
        (Norm::Error(a), Norm::Error(b)) => (a != b).then(|| format!("errorType {a} vs {b}")),
        (Norm::Scalar(ta, a), Norm::Scalar(tb, b)) => {
            (ta != tb || !same_value(*a, *b)).then(|| format!("scalar {ta}:{a} vs {tb}:{b}"))
        }
        (Norm::Vector(a), Norm::Vector(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{} vs {} samples; ours {:?}; prometheus {:?}",
                    a.len(),
                    b.len(),
                    a.iter().map(|s| &s.0).take(5).collect::<Vec<_>>(),
                    b.iter().map(|s| &s.0).take(5).collect::<Vec<_>>()
                ));
            }
            a.iter().zip(b).find_map(|(x, y)| {
                (x.0 != y.0 || x.1 != y.1 || !same_value(x.2, y.2))
                    .then(|| format!("{x:?} vs {y:?}"))
            })
        }
        (Norm::Matrix(a), Norm::Matrix(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{} vs {} series; ours {:?}; prometheus {:?}",
                    a.len(),
                    b.len(),
                    a.iter().map(|s| &s.0).take(5).collect::<Vec<_>>(),
                    b.iter().map(|s| &s.0).take(5).collect::<Vec<_>>()
                ));
            }
            a.iter().zip(b).find_map(|(x, y)| {
                if x.0 != y.0 {
                    return Some(format!("labels {:?} vs {:?}", x.0, y.0));
                }
                if x.1.len() != y.1.len() {
                    return Some(format!(
                        "{:?}: {} vs {} points; ours {:?}..; prometheus {:?}..",
                        x.0,
                        x.1.len(),
                        y.1.len(),
                        x.1.iter().take(3).collect::<Vec<_>>(),
                        y.1.iter().take(3).collect::<Vec<_>>()
                    ));
                }
                x.1.iter().zip(&y.1).find_map(|(p, q)| {
                    (p.0 != q.0 || !same_value(p.1, q.1))
                        .then(|| format!("{:?}: {p:?} vs {q:?}", x.0))
                })
            })
        }
        _ => Some(format!("different shapes: {ours:?} vs {theirs:?}")),
    }
}

/// Queries covering every supported function and operator. `{T}` is replaced by a Unix
/// timestamp inside the data (for `@`).
const QUERIES: &[&str] = &[
    // Selectors and matchers.
    "node_load1",
    "node_cpu_seconds_total{mode!=\"idle\",cpu=\"0\"}",
    "node_cpu_seconds_total{mode=~\"user|sys.*\"}",
    "node_network_receive_bytes_total{device!~\"lo|eth.*\"}",
    "{__name__=~\"node_load.*\"}",
    "automon_test_gappy",
    "node_load1 offset 1m",
    "node_load1 @ {T}",
    "rate(node_cpu_seconds_total{cpu=\"0\"}[1m] @ {T})",
    // Range functions.
    "rate(node_cpu_seconds_total[1m])",
    "rate(node_network_receive_bytes_total[45s])",
    "irate(node_cpu_seconds_total{cpu=\"1\"}[1m])",
    "increase(node_cpu_seconds_total{mode=\"user\"}[2m])",
    "rate(automon_test_resets_total[1m])",
    "rate(automon_test_resets_total[5m])",
    "increase(automon_test_resets_total[150s])",
    "irate(automon_test_resets_total[10s])",
    "resets(automon_test_resets_total[5m])",
    "rate(automon_test_late_total[5m])",
    "increase(automon_test_late_total[3m])",
    "delta(node_memory_MemFree_bytes[1m])",
    "idelta(node_memory_MemFree_bytes[1m])",
    "deriv(node_memory_MemFree_bytes[2m])",
    "predict_linear(node_filesystem_avail_bytes[5m], 3600)",
    "rate(node_cpu_seconds_total{mode=\"system\"}[1m] offset 2m)",
    "avg_over_time(node_load1[1m])",
    "min_over_time(node_memory_MemFree_bytes[90s])",
    "max_over_time(node_memory_MemFree_bytes[90s])",
    "sum_over_time(node_load1[2m])",
    "count_over_time(automon_test_gappy[2m])",
    "last_over_time(automon_test_gappy[8m])",
    "quantile_over_time(0.9, node_load1[3m])",
    "stddev_over_time(node_load1[2m])",
    "stdvar_over_time(node_memory_MemFree_bytes[2m])",
    "present_over_time(automon_test_gappy[1m])",
    "changes(node_load1[2m])",
    "absent_over_time(automon_test_gappy[1m])",
    "absent_over_time(nonexistent{job=\"x\"}[1m])",
    // absent and elementwise functions.
    "absent(nonexistent{job=\"x\",instance=~\"y\"})",
    "absent(node_load1)",
    "clamp_min(node_load1, 0.5)",
    "clamp_max(node_load1, 0.5)",
    "clamp(node_load1, 0.2, 0.6)",
    "abs(node_load1 - 1)",
    "round(node_load1, 0.1)",
    "round(node_memory_MemFree_bytes / 1e6)",
    "ceil(node_load1)",
    "floor(node_load1 * 10)",
    "sqrt(node_memory_MemFree_bytes)",
    "exp(node_load1)",
    "ln(node_memory_MemFree_bytes)",
    "log2(node_memory_MemFree_bytes)",
    "log10(node_memory_MemFree_bytes)",
    "sgn(node_load1 - 0.5)",
    "timestamp(node_load1)",
    "timestamp(node_load1 * 1)",
    "time()",
    "vector(1)",
    "scalar(node_load1)",
    "scalar(node_cpu_seconds_total)",
    "label_replace(node_load1, \"foo\", \"x-$1\", \"__name__\", \"node_(.*)\")",
    "label_join(node_network_up, \"foo\", \"/\", \"device\", \"__name__\")",
    // Aggregations.
    "sum by (mode) (rate(node_cpu_seconds_total[1m]))",
    "avg without (cpu) (rate(node_cpu_seconds_total[1m]))",
    "min by (mode) (node_cpu_seconds_total)",
    "max by (mode) (node_cpu_seconds_total)",
    "count by (mode) (node_cpu_seconds_total)",
    "count(node_network_up)",
    "group by (device) (node_network_up)",
    "topk(3, rate(node_cpu_seconds_total[1m]))",
    "bottomk(2, node_network_mtu_bytes)",
    "topk by (mode) (1, node_cpu_seconds_total)",
    "quantile(0.9, rate(node_cpu_seconds_total[1m]))",
    "quantile by (mode) (0.5, rate(node_cpu_seconds_total[1m]))",
    "stddev by (mode) (rate(node_cpu_seconds_total[1m]))",
    "stdvar(node_load1)",
    "count_values(\"v\", node_network_up)",
    "sum(node_memory_MemFree_bytes)",
    // Binary operators.
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100",
    "1 - node_load1",
    "node_load1 > 0.5",
    "node_load1 > bool 0.5",
    "0.5 < node_load1",
    "node_load1 ^ 2 % 0.3",
    "node_load1 atan2 node_load5",
    "node_load1 > node_load5",
    "node_load1 <= bool node_load5",
    "node_network_receive_bytes_total / on(device) node_network_mtu_bytes",
    "node_network_receive_bytes_total + ignoring(foo) node_network_transmit_bytes_total",
    "node_network_mtu_bytes * on(device) group_left(operstate, address) node_network_info",
    "node_network_info * on(device) group_right(operstate) node_network_mtu_bytes",
    "node_cpu_seconds_total * on(cpu) node_cpu_seconds_total",
    "node_cpu_seconds_total * on(cpu) group_left node_cpu_seconds_total",
    "node_network_up and on(device) node_network_mtu_bytes > 1400",
    "node_network_up or node_load1",
    "node_network_mtu_bytes unless on(device) node_network_up == 0",
    "-node_load1",
    "1 + 2 * 3",
    "2 > bool 1",
    // Subqueries.
    "max_over_time(rate(node_cpu_seconds_total{cpu=\"0\"}[1m])[5m:30s])",
    "avg_over_time(node_load1[2m:10s])",
    "min_over_time(node_load1[1m:])",
    "rate(automon_test_resets_total[1m:5s])",
    "sum_over_time(node_load1[3m:20s] offset 1m)",
];

#[test]
fn engine_matches_prometheus() {
    let Some(prometheus) = common::require_tool("prometheus") else {
        return;
    };
    let Some(promtool) = common::require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let om = dir.path().join("slice.om");
    let t0 = write_openmetrics(&om);
    let data = dir.path().join("data");
    let status = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .expect("run promtool");
    assert!(status.success(), "promtool failed: {status}");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").expect("write config");
    let prom = start_prometheus(&prometheus, &data, &config);
    let src = load(&om);
    let engine = Engine::default();
    let client = reqwest::blocking::Client::new();

    let ask = |path: &str, params: &[(&str, String)]| -> serde_json::Value {
        let resp = client
            .get(format!("{}{}", prom.base, path))
            .query(params)
            .send()
            .expect("query prometheus");
        resp.json().expect("prometheus json")
    };

    // Instant times: aligned with samples, between samples, and near the ends.
    let instants = [t0 + 61_000, t0 + 299_500, t0 + 450_000, t0 + 599_000];
    // Range: every 15 s over 8 minutes, and an unaligned 7 s step.
    let ranges = [
        (t0 + 60_000, t0 + 540_000, 15_000),
        (t0 + 123_456, t0 + 599_000, 7_000),
    ];
    let at = format!("{}.{:03}", (t0 + 250_000) / 1000, (t0 + 250_000) % 1000);

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut with_data = 0;
    let mut errors = 0;
    for q in QUERIES {
        let q = q.replace("{T}", &at);
        for &t in &instants {
            let theirs = from_prometheus(&ask(
                "/api/v1/query",
                &[("query", q.clone()), ("time", format_ts(t))],
            ));
            let ours = from_ours(engine.instant(&src, &q, t));
            checked += 1;
            with_data += usize::from(has_data(&theirs));
            errors += usize::from(matches!(theirs, Norm::Error(_)));
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!("instant {q} @ {}: {d}", t - t0));
            }
        }
        for &(start, end, step) in &ranges {
            let theirs = from_prometheus(&ask(
                "/api/v1/query_range",
                &[
                    ("query", q.clone()),
                    ("start", format_ts(start)),
                    ("end", format_ts(end)),
                    ("step", format!("{}", step as f64 / 1000.0)),
                ],
            ));
            let ours = from_ours(engine.range(&src, &q, start, end, step).map(Value::Matrix));
            checked += 1;
            with_data += usize::from(has_data(&theirs));
            errors += usize::from(matches!(theirs, Norm::Error(_)));
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!(
                    "range {q} [{}..{} / {step}]: {d}",
                    start - t0,
                    end - t0
                ));
            }
        }
    }
    // Range vectors at an instant, and `@ start()/end()` in a range query.
    for q in [
        "node_load1[30s]",
        "automon_test_resets_total[20s:5s]",
        "node_load1 @ end()",
        "node_load1 @ start()",
    ] {
        let t = t0 + 299_500;
        let theirs = from_prometheus(&ask(
            "/api/v1/query",
            &[("query", q.to_owned()), ("time", format_ts(t))],
        ));
        let ours = from_ours(engine.instant(&src, q, t));
        checked += 1;
        if let Some(d) = diff(&ours, &theirs) {
            failures.push(format!("instant {q}: {d}"));
        }
        let (start, end, step) = ranges[0];
        let theirs = from_prometheus(&ask(
            "/api/v1/query_range",
            &[
                ("query", q.to_owned()),
                ("start", format_ts(start)),
                ("end", format_ts(end)),
                ("step", format!("{}", step as f64 / 1000.0)),
            ],
        ));
        let ours = from_ours(engine.range(&src, q, start, end, step).map(Value::Matrix));
        checked += 1;
        if let Some(d) = diff(&ours, &theirs) {
            failures.push(format!("range {q}: {d}"));
        }
    }
    eprintln!(
        "compared {checked} results with Prometheus ({with_data} with data, {errors} expected errors), {} differ",
        failures.len()
    );
    assert!(
        with_data * 10 >= checked * 8,
        "only {with_data} of {checked} Prometheus results had data: was the data loaded?"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} results differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
