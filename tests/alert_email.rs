//! The issue's "done when", end to end: an operator configures an email receiver and a rule,
//! `automon test-notify` succeeds, and the real daemon mails when the rule fires and when it
//! resolves, through a real SMTP server (Debian's python3-aiosmtpd).

mod common;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use support::Smtp;

fn wait_subjects(smtp: &Smtp, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let subjects: Vec<String> = smtp
            .messages()
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or_default().to_owned())
            .collect();
        if subjects.len() >= n || Instant::now() > deadline {
            return subjects;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn email_on_firing_and_on_resolution() {
    if !support::have_aiosmtpd() {
        return;
    }
    let smtp = Smtp::start(&[]);
    let files = tempfile::tempdir().unwrap();
    set_value(files.path(), 50.0);
    let config = format!(
        r#"[collectors]
default_interval = "1s"
[collectors.textfile]
directory = {dir:?}
[alerting]
evaluation_interval = "1s"
builtin_rules = false
external_url = "http://web1.example.com:9787"
[[alerting.rules]]
name = "TankLow"
expr = "test_level < 10"
labels = {{ severity = "critical" }}
annotations.summary = "tank {{{{ $labels.tank }}}} at {{{{ $value }}}}%"
[alerting.route]
receiver = "oncall"
group_wait = "1s"
group_interval = "2s"
[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.email]]
smarthost = "127.0.0.1:{port}"
tls = "none"
from = "automon@web1.example.com"
to = ["oncall@example.com"]
"#,
        dir = files.path().display().to_string(),
        port = smtp.port,
    );
    let d = start(&config);

    // The operator's first step.
    let out = std::process::Command::new(bin())
        .args(["test-notify", "oncall", "--config"])
        .arg(&d.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("oncall/email/0: ok: SMTP 250"), "{text}");
    let subjects = wait_subjects(&smtp, 1);
    assert!(
        subjects[0].contains("AutomonTestNotification"),
        "{subjects:?}"
    );

    set_value(files.path(), 5.0);
    let subjects = wait_subjects(&smtp, 2);
    assert_eq!(
        subjects.get(1).map(String::as_str),
        Some(
            format!(
                "[FIRING:1] TankLow on {}",
                automon::alert::service::hostname()
            )
            .as_str()
        ),
        "{subjects:?}"
    );
    let firing = &smtp.messages()[1];
    let body = firing["parts"][0]["content"].as_str().unwrap_or_default();
    assert!(body.contains("summary: tank a at 5%"), "{body}");
    assert!(
        body.contains("link: http://web1.example.com:9787/api/v1/query?query=test_level"),
        "{body}"
    );

    set_value(files.path(), 80.0);
    let subjects = wait_subjects(&smtp, 3);
    assert!(
        subjects
            .get(2)
            .is_some_and(|s| s.starts_with("[RESOLVED] TankLow")),
        "{subjects:?}"
    );
    // Nothing more: no repeat, no duplicate.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 3);
    let m = d.metrics();
    assert_eq!(
        sample_value(
            &m,
            "automon_notifications_sent_total{integration=\"oncall/email/0\"}"
        ),
        Some(2.0)
    );
}
