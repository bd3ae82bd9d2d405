//! The webhook, Slack and Alertmanager-style HTTP receivers against an in-test HTTP server
//! (axum on loopback): the exact bytes received, the headers (HMAC signature verified over
//! the raw body, bearer token, dedup key), and how failures are classified.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use automon::alert::notify::slack::SlackNotifier;
use automon::alert::notify::webhook::WebhookNotifier;
use automon::alert::notify::{Notifier, NotifyError};
use automon::config::receivers::{SlackConfig, WebhookConfig};
use automon::config::HumanDuration;
use support::sample;

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// `/status/<code>` answers with that code; `/slow` answers after 5 s; anything else 200.
async fn handle(
    State(log): State<Log>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    log.lock().unwrap().push(Received {
        path: path.clone(),
        headers,
        body,
    });
    if let Some(code) = path.strip_prefix("status/") {
        let code = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return (code, format!("answer {code}"));
    }
    if path == "slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    (StatusCode::OK, "ok".into())
}

async fn server() -> (String, Log) {
    let log: Log = Default::default();
    let app = Router::new()
        .route("/{*path}", post(handle))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
}

fn webhook(url: String) -> WebhookConfig {
    WebhookConfig {
        url: Some(url),
        timeout: HumanDuration(Duration::from_secs(2)),
        ..WebhookConfig::default()
    }
}

#[tokio::test]
async fn webhook_posts_signed_alertmanager_payload() {
    let (base, log) = server().await;
    let mut c = webhook(format!("{base}/hook"));
    c.hmac_secret = Some("s3cret-key".into());
    c.bearer_token = Some("tok-123".into());
    let n = sample();
    let d = WebhookNotifier::new(&c).unwrap().send(&n).await.unwrap();
    assert_eq!(d.detail, "HTTP 200 OK: ok");

    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "hook");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Bearer tok-123");
    assert_eq!(r.headers["x-automon-dedup-key"], "dedup-0123456789abcdef");
    assert!(r.headers["user-agent"]
        .to_str()
        .unwrap()
        .starts_with("automon/"));

    // The signature is over the exact bytes received.
    let sig = r.headers["x-automon-signature"].to_str().unwrap();
    let hex = sig.strip_prefix("sha256=").expect("sha256= prefix");
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret-key");
    ring::hmac::verify(&key, &r.body, &tag).expect("HMAC verifies");
    let wrong = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other");
    assert!(ring::hmac::verify(&wrong, &r.body, &tag).is_err());

    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["receiver"], "oncall");
    assert_eq!(v["groupKey"], "{}:{alertname=\"HostDiskFull\"}");
    assert_eq!(v["externalURL"], "http://web1:9787");
    assert_eq!(v["truncatedAlerts"], 0);
    assert_eq!(v["alerts"][1]["labels"]["device"], "sdb1");
    assert_eq!(v["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["alerts"][0]["fingerprint"], "a1a1a1a1a1a1a1a1");
}

#[tokio::test]
async fn webhook_unsigned_without_secret_and_truncated() {
    let (base, log) = server().await;
    let mut c = webhook(format!("{base}/hook"));
    c.max_alerts = 1;
    WebhookNotifier::new(&c)
        .unwrap()
        .send(&sample())
        .await
        .unwrap();
    let r = log.lock().unwrap()[0].clone();
    assert!(r.headers.get("x-automon-signature").is_none());
    assert!(r.headers.get("authorization").is_none());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(v["truncatedAlerts"], 1);
}

#[tokio::test]
async fn webhook_resolved_has_real_end_or_is_skipped() {
    let (base, log) = server().await;
    let r = support::resolved(&sample());
    let mut c = webhook(format!("{base}/hook"));
    c.send_resolved = false;
    let d = WebhookNotifier::new(&c).unwrap().send(&r).await.unwrap();
    assert!(d.detail.starts_with("not sent"));
    assert!(log.lock().unwrap().is_empty());
    c.send_resolved = true;
    WebhookNotifier::new(&c).unwrap().send(&r).await.unwrap();
    let got = log.lock().unwrap()[0].clone();
    let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["alerts"][0]["status"], "resolved");
    assert_ne!(v["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        got.headers["x-automon-dedup-key"],
        "dedup-0123456789abcdef-resolved"
    );
}

#[tokio::test]
async fn http_failures_are_classified() {
    let (base, log) = server().await;
    let send = |url: String| async move {
        WebhookNotifier::new(&webhook(url))
            .unwrap()
            .send(&sample())
            .await
    };
    for code in [500, 502, 503, 429] {
        let e = send(format!("{base}/status/{code}")).await.unwrap_err();
        assert!(matches!(e, NotifyError::Retryable(_)), "{code}: {e:?}");
        assert!(e.to_string().contains(&format!("answer {code}")), "{e}");
    }
    for code in [400, 401, 403, 404, 301] {
        let e = send(format!("{base}/status/{code}")).await.unwrap_err();
        assert!(matches!(e, NotifyError::Permanent(_)), "{code}: {e:?}");
    }
    // Timeout (the server answers after 5 s, the notifier waits 2 s).
    let e = send(format!("{base}/slow")).await.unwrap_err();
    assert!(matches!(e, NotifyError::Retryable(_)), "{e:?}");
    assert!(e.to_string().contains("timed out"), "{e}");
    // Connection refused.
    let port = support::free_port();
    let e = send(format!("http://127.0.0.1:{port}/hook"))
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::Retryable(_)), "{e:?}");
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(
        !e.to_string().contains("/hook"),
        "URLs stay out of errors: {e}"
    );
    // Exactly one request per send: the notifier itself never retries.
    assert_eq!(log.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn slack_posts_text_and_blocks_with_overrides() {
    let (base, log) = server().await;
    let c = SlackConfig {
        url: Some(format!("{base}/services/T000/B000/XXXX")),
        channel: Some("#ops".into()),
        username: Some("automon".into()),
        ..SlackConfig::default()
    };
    let d = SlackNotifier::new(&c)
        .unwrap()
        .send(&sample())
        .await
        .unwrap();
    assert_eq!(d.detail, "HTTP 200 OK: ok");
    let r = log.lock().unwrap()[0].clone();
    assert_eq!(r.path, "services/T000/B000/XXXX");
    assert_eq!(r.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["text"], "[FIRING:2] HostDiskFull on web1");
    assert_eq!(v["channel"], "#ops");
    assert_eq!(v["username"], "automon");
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 4);
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[2]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("Filesystem on sdb1 is 97% full"));

    // Slack answers 404 `no_service` for a deleted hook: permanent.
    let c = SlackConfig {
        url: Some(format!("{base}/status/404")),
        ..SlackConfig::default()
    };
    let e = SlackNotifier::new(&c)
        .unwrap()
        .send(&sample())
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
}
