//! The Prometheus-compatible HTTP API on the real daemon with its real SQLite store: result
//! shapes exactly as Prometheus returns them, errors with `errorType`, POST form bodies,
//! storage disabled, and the sequence of calls Grafana's Prometheus data source makes.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const CONFIG: &str = "[collectors]\ndefault_interval = \"1s\"\n";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn get(d: &common::Daemon, path_and_query: &str) -> (u16, Value) {
    let (status, body) = d.get(path_and_query);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"));
    (status, v)
}

fn post(d: &common::Daemon, path: &str, form: &[(&str, String)]) -> (u16, Value) {
    let resp = common::client()
        .post(d.url(path))
        .form(form)
        .send()
        .expect("POST");
    let status = resp.status().as_u16();
    let body = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_owned()
}

fn assert_error(status: u16, v: &Value, want_status: u16, want_type: &str, needle: &str) {
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["errorType"], want_type, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
}

/// Waits until the store answers `node_load1` (the first flush takes about a second).
fn wait_for_data(d: &common::Daemon) {
    assert!(
        d.eventually(Duration::from_secs(20), || {
            let (_, v) = get(d, "/api/v1/query?query=node_load1");
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        }),
        "no node_load1 in the store"
    );
}

fn check_sample_pair(p: &Value) {
    let a = p.as_array().expect("pair");
    assert_eq!(a.len(), 2, "{p}");
    assert!(a[0].is_number(), "{p}");
    let v = a[1].as_str().expect("value is a string");
    assert!(
        v.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&v),
        "{p}"
    );
}

#[test]
fn api_answers_in_prometheus_shapes() {
    let d = common::start(CONFIG);
    wait_for_data(&d);
    std::thread::sleep(Duration::from_secs(3));

    // Instant query.
    let (status, v) = get(&d, "/api/v1/query?query=node_load1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    assert_eq!(result[0]["metric"]["__name__"], "node_load1");
    check_sample_pair(&result[0]["value"]);
    assert_eq!(
        result[0].as_object().unwrap().len(),
        2,
        "metric and value only"
    );

    // Range query of a rate over the last 20 s.
    let end = now();
    let q = format!(
        "/api/v1/query_range?query={}&start={}&end={end}&step=1s",
        enc("rate(node_cpu_seconds_total[30s])"),
        end - 20.0
    );
    let (status, v) = get(&d, &q);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert!(!result.is_empty(), "{v}");
    for s in result {
        assert!(
            s["metric"]["__name__"].is_null(),
            "rate drops the name: {s}"
        );
        assert!(s["metric"]["cpu"].is_string() && s["metric"]["mode"].is_string());
        let values = s["values"].as_array().unwrap();
        assert!(!values.is_empty() && values.len() <= 21, "{s}");
        values.iter().for_each(check_sample_pair);
    }

    // Series, labels, label values.
    let (status, v) = get(&d, "/api/v1/series?match[]=node_load1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], serde_json::json!([{"__name__": "node_load1"}]));
    let (_, v) = get(&d, "/api/v1/labels");
    let labels: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"__name__") && labels.contains(&"cpu"),
        "{v}"
    );
    assert!(labels.windows(2).all(|w| w[0] < w[1]), "sorted: {labels:?}");
    let (_, v) = get(&d, "/api/v1/label/__name__/values");
    let names = v["data"].as_array().unwrap();
    assert!(names.contains(&"node_load1".into()), "{v}");
    assert!(names.contains(&"node_cpu_seconds_total".into()), "{v}");
    let (_, v) = get(
        &d,
        "/api/v1/label/mode/values?match[]=node_cpu_seconds_total",
    );
    assert!(
        v["data"].as_array().unwrap().contains(&"idle".into()),
        "{v}"
    );

    let (status, v) = get(&d, "/api/v1/status/buildinfo");
    assert_eq!(status, 200);
    assert_eq!(v["status"], "success");
    assert!(v["data"]["version"].is_string(), "{v}");
    let (status, v) = get(&d, "/api/v1/metadata");
    assert_eq!((status, &v["data"]), (200, &serde_json::json!({})));

    // POST form bodies (what Grafana sends).
    let (status, v) = post(
        &d,
        "/api/v1/query",
        &[
            ("query", "sum(node_load1) * 2".into()),
            ("time", format!("{}", now())),
        ],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["metric"], serde_json::json!({}));

    // Scalars and RFC 3339 times.
    let (_, v) = get(&d, "/api/v1/query?query=1%2B1&time=2026-01-01T00:00:00Z");
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType": "scalar", "result": [1767225600, "2"]})
    );

    // The duration histogram counts each endpoint.
    let metrics = d.metrics();
    for endpoint in ["query", "query_range", "series", "labels", "label_values"] {
        let line = format!("automon_query_duration_seconds_count{{endpoint=\"{endpoint}\"}}");
        assert!(
            common::sample_value(&metrics, &line).is_some_and(|n| n >= 1.0),
            "{line} missing"
        );
    }
}

#[test]
fn api_errors_are_shaped_like_prometheus() {
    let d = common::start(CONFIG);
    let (s, v) = get(&d, &format!("/api/v1/query?query={}", enc("sum(")));
    assert_error(s, &v, 400, "bad_data", "parse error");
    let (s, v) = get(
        &d,
        &format!("/api/v1/query?query={}", enc("histogram_quantile(0.9, x)")),
    );
    assert_error(s, &v, 400, "bad_data", "histogram_quantile");
    let (s, v) = get(
        &d,
        &format!(
            "/api/v1/query?query={}",
            enc("holt_winters(x[5m], 0.5, 0.5)")
        ),
    );
    assert_error(s, &v, 400, "bad_data", "holt_winters");
    let (s, v) = get(&d, "/api/v1/query");
    assert_error(s, &v, 400, "bad_data", "\"query\"");
    let (s, v) = get(&d, "/api/v1/query?query=up&time=yesterday");
    assert_error(s, &v, 400, "bad_data", "\"time\"");
    let (s, v) = get(&d, "/api/v1/query_range?query=up&start=0&end=100000&step=1");
    assert_error(
        s,
        &v,
        400,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries",
    );
    let (s, v) = get(&d, "/api/v1/query_range?query=up&start=0&end=10");
    assert_error(s, &v, 400, "bad_data", "\"step\"");
    let (s, v) = get(&d, "/api/v1/query_range?query=up&start=10&end=0&step=1");
    assert_error(
        s,
        &v,
        400,
        "bad_data",
        "end timestamp must not be before start time",
    );
    let (s, v) = get(&d, "/api/v1/series");
    assert_error(s, &v, 400, "bad_data", "match[]");
    let (s, v) = get(
        &d,
        &format!("/api/v1/series?match[]={}", enc("{a=~\".*\"}")),
    );
    assert_error(s, &v, 400, "bad_data", "non-empty matcher");
    let (s, v) = get(&d, "/api/v1/label/not-a-label/values");
    assert_error(s, &v, 400, "bad_data", "invalid label name");
    // Many-to-many matching fails during evaluation: 422 execution.
    wait_for_data(&d);
    let (s, v) = get(
        &d,
        &format!(
            "/api/v1/query?query={}",
            enc("node_cpu_seconds_total + on() node_cpu_seconds_total")
        ),
    );
    assert_error(s, &v, 422, "execution", "many");
}

#[test]
fn storage_disabled_answers_503_unavailable() {
    let d = common::start(&format!("{CONFIG}\n[storage]\nenabled = false\n"));
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=1&step=1",
        "/api/v1/series?match[]=up",
        "/api/v1/labels",
        "/api/v1/label/__name__/values",
    ] {
        let (s, v) = get(&d, path);
        assert_error(s, &v, 503, "unavailable", "storage is disabled");
    }
    // Build info still answers, so Grafana can tell what it talks to.
    let (s, _) = get(&d, "/api/v1/status/buildinfo");
    assert_eq!(s, 200);
}

/// The calls Grafana's Prometheus data source makes on "Save & test" and when a dashboard
/// and the query editor load (Grafana 10/11, POST as the default HTTP method).
#[test]
fn grafana_data_source_calls_work() {
    let d = common::start(CONFIG);
    wait_for_data(&d);
    // A rate needs two samples in its window.
    std::thread::sleep(Duration::from_secs(3));

    let (s, v) = get(&d, "/api/v1/status/buildinfo");
    assert_eq!(s, 200);
    let version = v["data"]["version"].as_str().unwrap();
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "Grafana parses a semver: {version}"
    );

    // "Save & test" runs `1+1` as an instant query.
    let t = now();
    let (s, v) = post(
        &d,
        "/api/v1/query",
        &[("query", "1+1".into()), ("time", format!("{t}"))],
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][1], "2");

    // A panel: range query with start/end/step aligned to the step.
    let end = (t / 2.0).floor() * 2.0;
    let (s, v) = post(
        &d,
        "/api/v1/query_range",
        &[
            (
                "query",
                "avg by (mode) (rate(node_cpu_seconds_total[10s]))".into(),
            ),
            ("start", format!("{}", end - 30.0)),
            ("end", format!("{end}")),
            ("step", "2".into()),
        ],
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let first = &v["data"]["result"][0];
    assert!(first["metric"]["mode"].is_string(), "{v}");
    for p in first["values"].as_array().unwrap() {
        check_sample_pair(p);
        assert_eq!(p[0].as_f64().unwrap() % 2.0, 0.0, "on the step grid: {p}");
    }

    // The query editor's metric and label browsers.
    let span = format!("start={}&end={}", (t - 3600.0) as i64, t as i64);
    let (s, v) = get(&d, &format!("/api/v1/labels?{span}"));
    assert_eq!(s, 200);
    assert!(v["data"].as_array().unwrap().contains(&"__name__".into()));
    let (s, v) = get(&d, &format!("/api/v1/label/__name__/values?{span}"));
    assert_eq!(s, 200);
    assert!(v["data"].as_array().unwrap().contains(&"node_load1".into()));
    let (s, v) = get(
        &d,
        &format!(
            "/api/v1/series?match[]={}&{span}",
            enc("node_cpu_seconds_total{mode=\"idle\"}")
        ),
    );
    assert_eq!(s, 200);
    let series = v["data"].as_array().unwrap();
    assert!(!series.is_empty(), "{v}");
    assert!(series
        .iter()
        .all(|s| s["mode"] == "idle" && s["cpu"].is_string()));
    let (s, v) = get(
        &d,
        &format!("/api/v1/label/cpu/values?match[]=node_cpu_seconds_total&{span}"),
    );
    assert_eq!(s, 200);
    assert!(!v["data"].as_array().unwrap().is_empty());
    let (s, _) = get(&d, "/api/v1/metadata");
    assert_eq!(s, 200);
}
