//! `automon test-notify RECEIVER` end to end: the real binary, a real SMTP server
//! (aiosmtpd) and an in-test webhook server; what each server answered is printed, and the
//! exit code says whether everything was delivered.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

type Log = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

async fn handle(
    State(log): State<Log>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    log.lock().unwrap().push((path.clone(), headers, body));
    if path == "gone" {
        (StatusCode::NOT_FOUND, "no_service")
    } else {
        (StatusCode::OK, "accepted")
    }
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

/// Runs `automon test-notify <receiver>` with `config` off the async workers.
async fn test_notify(config: String, receiver: &str) -> (i32, String, String) {
    let receiver = receiver.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("automon.toml");
        std::fs::write(&path, config).unwrap();
        std::fs::write(dir.path().join("hmac.key"), "k3y\n").unwrap();
        let out = std::process::Command::new(common::bin())
            .args(["test-notify", &receiver, "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_notify_reports_each_servers_answer() {
    if !support::have_aiosmtpd() {
        return;
    }
    let smtp = support::Smtp::start(&[]);
    let (base, log) = server().await;
    let config = format!(
        r#"
[alerting]
external_url = "http://automon.example.com:9787"

[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.email]]
smarthost = "127.0.0.1:{port}"
tls = "none"
from = "automon@example.com"
to = ["oncall@example.com"]
[[alerting.receivers.webhook]]
url = "{base}/hook"
hmac_secret_file = "hmac.key"

[[alerting.receivers]]
name = "broken"
[[alerting.receivers.webhook]]
url = "{base}/gone"
[[alerting.receivers.email]]
smarthost = "127.0.0.1:{closed}"
tls = "none"
from = "automon@example.com"
to = ["oncall@example.com"]

[alerting.route]
receiver = "oncall"
"#,
        port = smtp.port,
        closed = support::free_port(),
    );

    let (code, out, err) = test_notify(config.clone(), "oncall").await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "oncall/email/0: ok: SMTP 250 2.0.0 Ok: queued as automon-test-1",
            "oncall/webhook/0: ok: HTTP 200 OK: accepted",
            "2 of 2 integrations delivered",
        ],
        "{out}"
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    let subject = mail[0]["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[FIRING:1] AutomonTestNotification on "),
        "{subject}"
    );
    let text = mail[0]["parts"][0]["content"].as_str().unwrap();
    assert!(text.contains("please ignore"), "{text}");
    assert!(text.contains("http://automon.example.com:9787"), "{text}");
    {
        let got = log.lock().unwrap();
        assert_eq!(got.len(), 1);
        let (path, headers, body) = &got[0];
        assert_eq!(path, "hook");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k3y");
        let sig = headers["x-automon-signature"].to_str().unwrap();
        assert_eq!(sig, automon::alert::notify::webhook::signature(&key, body));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["receiver"], "oncall");
        assert_eq!(
            v["alerts"][0]["labels"]["alertname"],
            "AutomonTestNotification"
        );
    }

    // Failures: each integration's own answer, exit 1.
    let (code, out, _) = test_notify(config.clone(), "broken").await;
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("broken/email/0: FAILED (temporary"),
        "{out}"
    );
    assert!(lines[0].contains("Connection refused"), "{out}");
    assert_eq!(
        lines[1],
        "broken/webhook/0: FAILED (permanent; the daemon would give up): HTTP 404 Not Found: no_service"
    );
    assert_eq!(lines[2], "0 of 2 integrations delivered");

    // An unknown receiver names the configured ones, exit 2 like other usage errors.
    let (code, out, err) = test_notify(config, "on-call").await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("no receiver named \"on-call\"; configured receivers: oncall, broken"),
        "{err}"
    );
}

#[tokio::test]
async fn test_notify_rejects_an_invalid_receiver_config() {
    let config = "[[alerting.receivers]]\nname = \"oncall\"\n[[alerting.receivers.email]]\n\
                  smarthost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
        .to_owned();
    let (code, _, err) = test_notify(config, "oncall").await;
    assert_eq!(code, 2);
    assert!(
        err.contains(
            ":4: alerting.receivers.0.email.0.smarthost: \"smtp.example.com\" has no port"
        ),
        "{err}"
    );
}
