//! Notifications end to end in the real daemon with a real HTTP receiver: the receiver is down
//! (connection refused), then failing (500), then hanging (timeout), then up, and every
//! notification arrives exactly once per dedup key; a daemon killed with `kill -9` between
//! queueing and sending delivers after the restart, and does not page again as new.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::hook::{Hook, Mode};
use common::*;

fn config(textfiles: &Path, hook: &Hook, data_dir: Option<&Path>) -> String {
    let data = data_dir
        .map(|d| format!("data_dir = {:?}\n", d.display().to_string()))
        .unwrap_or_default();
    format!(
        r#"{data}[collectors]
default_interval = "1s"
[collectors.textfile]
directory = {dir:?}
[alerting]
evaluation_interval = "1s"
builtin_rules = false
[[alerting.rules]]
name = "TankLow"
expr = "test_level < 10"
labels = {{ severity = "critical" }}
annotations.summary = "tank {{{{ $labels.tank }}}} at {{{{ $value }}}}%"
[alerting.route]
receiver = "hook"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
[[alerting.receivers]]
name = "hook"
[[alerting.receivers.webhook]]
url = "{url}"
timeout = "1s"
[alerting.outbox]
min_backoff = "200ms"
max_backoff = "1s"
send_timeout = "1s"
"#,
        dir = textfiles.display().to_string(),
        url = hook.url("/hook"),
    )
}

/// (status, dedup key) of every accepted notification, in arrival order.
fn deliveries(hook: &Hook) -> Vec<(String, String)> {
    hook.accepted()
        .iter()
        .map(|r| {
            (
                r.json()["status"].as_str().unwrap_or_default().to_owned(),
                r.header("x-automon-dedup-key")
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn counts(d: &[(String, String)]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for k in d {
        *m.entry(k.clone()).or_default() += 1;
    }
    m
}

#[test]
fn an_outage_delays_but_neither_loses_nor_duplicates() {
    let files = tempfile::tempdir().unwrap();
    set_value(files.path(), 50.0);
    let hook = Hook::reserve();
    let d = start(&config(files.path(), &hook, None));
    set_value(files.path(), 5.0);

    // Down: connection refused, retried with backoff.
    assert!(d.eventually(Duration::from_secs(15), || {
        sample_value(
            &d.metrics(),
            "automon_notification_attempts_failed_total{integration=\"hook/webhook/0\"}",
        )
        .is_some_and(|n| n >= 2.0)
    }));
    assert_eq!(
        sample_value(
            &d.metrics(),
            "automon_notifications_queued{integration=\"hook/webhook/0\"}"
        ),
        Some(1.0)
    );
    // Up but failing, then hanging past the send timeout.
    hook.set_mode(Mode::Fail);
    hook.listen();
    assert!(
        d.eventually(Duration::from_secs(10), || hook.all().len() >= 2),
        "no retries reached the 500"
    );
    hook.set_mode(Mode::Hang);
    let before = hook.all().len();
    assert!(
        d.eventually(Duration::from_secs(10), || hook.all().len() > before),
        "no retry during the hang"
    );
    // Healthy: exactly one firing notification arrives.
    hook.set_mode(Mode::Accept);
    assert!(
        hook.wait_for(Duration::from_secs(15), |r| !r.is_empty()),
        "never delivered"
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = deliveries(&hook);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "firing");
    assert!(!got[0].1.is_empty(), "dedup key header missing");
    let body = hook.accepted()[0].json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "TankLow");
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "tank a at 5%");

    // Resolve: one resolved notification, after the firing one.
    set_value(files.path(), 80.0);
    assert!(
        hook.wait_for(Duration::from_secs(10), |r| r.len() >= 2),
        "resolution never delivered"
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = deliveries(&hook);
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        ["firing", "resolved"],
        "{got:?}"
    );
    assert!(counts(&got).values().all(|n| *n == 1), "{got:?}");
    let m = d.metrics();
    assert_eq!(
        sample_value(
            &m,
            "automon_notifications_sent_total{integration=\"hook/webhook/0\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample_value(
            &m,
            "automon_notifications_queued{integration=\"hook/webhook/0\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn a_notification_queued_before_kill_9_is_delivered_after_restart_once() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    set_value(files.path(), 5.0);
    let hook = Hook::reserve();
    let cfg = config(files.path(), &hook, Some(data.path()));
    let mut d = start(&cfg);
    // Queued, not deliverable (nothing listens).
    assert!(d.eventually(Duration::from_secs(15), || {
        sample_value(
            &d.metrics(),
            "automon_notifications_queued{integration=\"hook/webhook/0\"}",
        ) == Some(1.0)
    }));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit(Duration::from_secs(5));

    hook.listen();
    let d2 = start(&cfg);
    assert!(
        hook.wait_for(Duration::from_secs(15), |r| !r.is_empty()),
        "queued notification lost"
    );
    // The alert is still firing after the restart: it must not be paged again as new.
    std::thread::sleep(Duration::from_secs(4));
    let got = deliveries(&hook);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "firing");
    drop(d2);
}
