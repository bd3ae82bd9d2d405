//! Unit tests of the payloads the receivers write; the sends themselves are tested against
//! real servers in `tests/receivers.rs`, `tests/email.rs` and `tests/alertmanager.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Two disk alerts firing and one memory alert resolved on web1.
fn sample() -> Notification {
    let disk = |dev: &str, fp: &str| AlertInfo {
        status: AlertStatus::Firing,
        labels: labels(&[
            ("alertname", "HostDiskFull"),
            ("device", dev),
            ("severity", "critical"),
        ]),
        annotations: labels(&[("summary", "Disk <almost> full & \"busy\"")]),
        starts_at_ms: 1_700_000_000_123,
        ends_at_ms: None,
        value: 0.9712,
        fingerprint: fp.to_owned(),
        generator_url: "http://web1:9787/api/v1/query?query=x".into(),
    };
    Notification {
        receiver: "oncall".into(),
        status: AlertStatus::Firing,
        group_key: "{}:{alertname=\"HostDiskFull\"}".into(),
        group_labels: labels(&[("alertname", "HostDiskFull")]),
        common_labels: labels(&[("alertname", "HostDiskFull"), ("severity", "critical")]),
        common_annotations: BTreeMap::new(),
        alerts: vec![
            disk("sda1", "00000000000000a1"),
            disk("sdb1", "00000000000000b1"),
            AlertInfo {
                status: AlertStatus::Resolved,
                labels: labels(&[("alertname", "HostMemoryLow"), ("severity", "warning")]),
                annotations: BTreeMap::new(),
                starts_at_ms: 1_699_999_000_000,
                ends_at_ms: Some(1_700_000_100_000),
                value: 12.0,
                fingerprint: "00000000000000c1".into(),
                generator_url: String::new(),
            },
        ],
        external_url: "http://web1:9787".into(),
        host: "web1".into(),
        dedup_key: "dk-1".into(),
        created_ms: 1_700_000_200_000,
    }
}

#[test]
fn titles_name_status_alerts_and_host() {
    let n = sample();
    assert_eq!(
        n.title(),
        "[FIRING:2, RESOLVED:1] HostDiskFull, HostMemoryLow on web1"
    );
    let f = n.firing_only().unwrap();
    assert_eq!(f.title(), "[FIRING:2] HostDiskFull on web1");
    let mut r = n.clone();
    r.status = AlertStatus::Resolved;
    r.alerts.retain(|a| a.status == AlertStatus::Resolved);
    assert_eq!(r.title(), "[RESOLVED] HostMemoryLow on web1");
    assert!(r.firing_only().is_none());
    let mut many = n.clone();
    for name in ["A", "B"] {
        let mut a = many.alerts[0].clone();
        a.labels.insert("alertname".into(), name.into());
        many.alerts.push(a);
    }
    assert!(many
        .title()
        .contains("HostDiskFull, HostMemoryLow and 2 more"));
}

#[test]
fn humanize_like_prometheus() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (0.9712, "971.2m"),
        (12.5, "12.5"),
        (999.0, "999"),
        (1234.0, "1.234k"),
        (1.5e9, "1.5G"),
        (-2.0, "-2"),
        (0.000_002_5, "2.5µ"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
    ];
    for (v, s) in cases {
        assert_eq!(humanize(v), s, "{v}");
    }
}

#[test]
fn times_are_rfc3339_utc_with_millis() {
    assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
}

/// Every key of a real Alertmanager webhook body, with its JSON type, recursively.
fn shape(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{path}.{k}");
                out.push(format!("{p}:{}", kind(v)));
                // Label and annotation maps hold free-form keys.
                if !matches!(
                    k.as_str(),
                    "labels" | "annotations" | "groupLabels" | "commonLabels" | "commonAnnotations"
                ) {
                    shape(v, &p, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                shape(first, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn webhook_body_has_every_key_of_alertmanagers() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alertmanager/webhook_v4_firing_prometheus-msteams.json"
    ))
    .unwrap();
    let real: Value = serde_json::from_str(&fixture).unwrap();
    let ours: Value = serde_json::from_slice(&webhook::payload_bytes(&sample(), 0)).unwrap();
    let (mut want, mut got) = (Vec::new(), Vec::new());
    shape(&real, "", &mut want);
    shape(&ours, "", &mut got);
    for key in &want {
        assert!(got.contains(key), "missing {key} in {ours:#}");
    }
    // What newer Alertmanagers add, which the fixture predates.
    for key in [
        ".truncatedAlerts:number",
        ".alerts[].status:string",
        ".alerts[].fingerprint:string",
        ".alerts[].generatorURL:string",
    ] {
        assert!(got.iter().any(|g| g == key), "missing {key}");
    }
    assert_eq!(ours["version"], "4");
    assert_eq!(ours["status"], "firing");
    assert_eq!(ours["receiver"], "oncall");
    assert_eq!(ours["externalURL"], "http://web1:9787");
    assert_eq!(ours["groupKey"], "{}:{alertname=\"HostDiskFull\"}");
    assert_eq!(ours["truncatedAlerts"], 0);
    let alerts = ours["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0]["endsAt"], real["alerts"][0]["endsAt"]);
    assert_eq!(alerts[0]["startsAt"], "2023-11-14T22:13:20.123Z");
    assert_eq!(alerts[0]["labels"]["device"], "sda1");
    assert_eq!(alerts[2]["status"], "resolved");
    assert_eq!(alerts[2]["endsAt"], "2023-11-14T22:15:00.000Z");
}

#[test]
fn webhook_max_alerts_truncates_and_counts() {
    let v: Value = serde_json::from_slice(&webhook::payload_bytes(&sample(), 2)).unwrap();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(v["truncatedAlerts"], 1);
    let v: Value = serde_json::from_slice(&webhook::payload_bytes(&sample(), 10)).unwrap();
    assert_eq!(v["truncatedAlerts"], 0);
}

#[test]
fn hmac_signature_matches_rfc4231_vector() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
    assert_eq!(
        webhook::signature(&key, b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn slack_message_has_fallback_and_blocks() {
    let v = slack::message(&sample());
    assert_eq!(
        v["text"],
        "[FIRING:2, RESOLVED:1] HostDiskFull, HostMemoryLow on web1"
    );
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    // Header, three alerts, context.
    assert_eq!(blocks.len(), 5);
    let first = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(first.contains("*FIRING* HostDiskFull"), "{first}");
    assert!(first.contains("Disk &lt;almost&gt; full &amp;"), "{first}");
    assert!(first.contains("`device=sda1`"), "{first}");
    assert!(first.contains("<http://web1:9787/api/v1/query?query=x|Query>"));
    assert!(blocks[3]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("RESOLVED"));
    assert_eq!(blocks[4]["type"], "context");
}

#[test]
fn slack_blocks_stay_under_slacks_limit() {
    let mut n = sample();
    let a = n.alerts[0].clone();
    n.alerts = vec![a; 60];
    let v = slack::message(&n);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), slack::MAX_ALERT_BLOCKS + 3);
    assert!(blocks.len() <= 50);
    assert!(blocks[blocks.len() - 2]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("40 more"));
}

#[test]
fn alertmanager_firing_alerts_end_four_resend_intervals_ahead() {
    let now = 1_700_000_300_000;
    let body = alertmanager::body_bytes(&sample(), now, Duration::from_secs(60));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0]["endsAt"], rfc3339_ms(now + 240_000));
    assert_eq!(a[0]["startsAt"], "2023-11-14T22:13:20.123Z");
    assert_eq!(a[0]["labels"]["device"], "sda1");
    assert_eq!(
        a[0]["generatorURL"],
        "http://web1:9787/api/v1/query?query=x"
    );
    assert_eq!(a[2]["endsAt"], rfc3339_ms(1_700_000_100_000));
    // Only the keys Alertmanager's postableAlert knows.
    let keys: Vec<&String> = a[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "annotations",
            "endsAt",
            "generatorURL",
            "labels",
            "startsAt"
        ]
    );
}

#[test]
fn email_bodies_list_each_alert() {
    let n = sample();
    let text = email::text_body(&n);
    assert!(text.starts_with("[FIRING:2, RESOLVED:1] HostDiskFull, HostMemoryLow on web1\n"));
    assert!(text.contains("2 firing, 1 resolved on web1"));
    assert!(text.contains("[FIRING] HostDiskFull\n  summary: Disk <almost> full"));
    assert!(text.contains("  value: 971.2m\n  started: 2023-11-14T22:13:20.123Z\n"));
    assert!(text.contains("labels: device=\"sdb1\", severity=\"critical\""));
    assert!(text.contains("link: http://web1:9787/api/v1/query?query=x"));
    assert!(text.contains("[RESOLVED] HostMemoryLow"));
    assert!(text.contains("resolved: 2023-11-14T22:15:00.000Z"));
    let html = email::html_body(&n);
    assert!(html.contains("Disk &lt;almost&gt; full &amp; &quot;busy&quot;"));
    assert!(html.contains("<a href=\"http://web1:9787/api/v1/query?query=x\">query</a>"));
    assert!(!html.contains("<almost>"));
    assert_eq!(html.matches("<table").count(), 3);
}

#[test]
fn email_links_only_for_http() {
    let mut n = sample();
    n.alerts[0].generator_url = "javascript:alert(1)".into();
    let html = email::html_body(&n);
    assert!(!html.contains("href=\"javascript"));
}

#[test]
fn test_notification_is_marked_and_unique() {
    let a = test_notification("oncall", "web1", "http://web1:9787/");
    assert_eq!(a.alerts.len(), 1);
    assert_eq!(a.alerts[0].labels["alertname"], TEST_ALERT_NAME);
    assert!(a.alerts[0].annotations["summary"].contains("please ignore"));
    assert_eq!(a.external_url, "http://web1:9787");
    assert_eq!(a.title(), "[FIRING:1] AutomonTestNotification on web1");
    std::thread::sleep(Duration::from_millis(2));
    let b = test_notification("oncall", "web1", "http://web1:9787/");
    assert_ne!(a.dedup_key, b.dedup_key);
}

#[test]
fn integration_ids_and_build_order() {
    assert_eq!(integration_id("oncall", "email", 0), "oncall/email/0");
    let cfg = crate::config::parse_str(
        r#"
[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.alertmanager]]
url = "http://127.0.0.1:9093"
[[alerting.receivers.slack]]
url = "http://127.0.0.1:1/hook"
[[alerting.receivers.webhook]]
url = "http://127.0.0.1:1/a"
[[alerting.receivers.webhook]]
url = "http://127.0.0.1:1/b"
[[alerting.receivers.email]]
smarthost = "127.0.0.1:25"
tls = "none"
from = "automon@example.com"
to = ["a@example.com"]
[[alerting.receivers]]
name = "empty"
[alerting.route]
receiver = "oncall"
"#,
        "t.toml",
    )
    .unwrap();
    let built = build(&cfg.alerting.receivers).unwrap();
    let kinds: Vec<&str> = built["oncall"].iter().map(|n| n.kind()).collect();
    assert_eq!(
        kinds,
        ["email", "webhook", "webhook", "slack", "alertmanager"]
    );
    assert!(built["empty"].is_empty());
    assert_eq!(
        built["oncall"][4].resend_interval(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(built["oncall"][0].resend_interval(), None);
}

#[test]
fn email_headers_cannot_be_injected_through_labels() {
    let mut n = sample();
    n.alerts[0]
        .labels
        .insert("alertname".into(), "Disk\r\nBcc: evil@example.com".into());
    n.host = "web1\nX-Injected: 1".into();
    let from: lettre::message::Mailbox = "a@example.com".parse().unwrap();
    let to: lettre::message::Mailbox = "b@example.com".parse().unwrap();
    let msg = email::message(&n, &from, &[to]).unwrap();
    let raw = String::from_utf8(msg.formatted()).unwrap();
    let headers = raw.split("\r\n\r\n").next().unwrap();
    for line in headers.lines() {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("X-Injected:"),
            "injected header {line:?} in:\n{headers}"
        );
    }
    assert!(headers.contains("Subject: "), "{headers}");
}
