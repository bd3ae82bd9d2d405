//! The Alertmanager receiver against Debian's real `prometheus-alertmanager`, started on
//! loopback by the test: a firing alert appears in its `/api/v2/alerts` with our labels and
//! an `endsAt` four resend intervals ahead, and a resolve makes it disappear from the active
//! alerts.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use automon::alert::notify::alertmanager::AlertmanagerNotifier;
use automon::alert::notify::{Notifier, NotifyError};
use automon::config::receivers::AlertmanagerConfig;
use automon::config::HumanDuration;
use support::sample;

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Option<Alertmanager> {
    let bin = common::require_tool("prometheus-alertmanager")?;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = support::free_port();
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("alertmanager exited: {status}");
        }
        assert!(Instant::now() < deadline, "alertmanager not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(Alertmanager {
        child,
        url,
        _dir: dir,
    })
}

async fn active_alerts(url: &str) -> Vec<serde_json::Value> {
    reqwest::get(format!("{url}/api/v2/alerts"))
        .await
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap()
}

fn config(url: &str) -> AlertmanagerConfig {
    AlertmanagerConfig {
        url: url.to_owned(),
        resend_interval: HumanDuration(Duration::from_secs(60)),
        ..AlertmanagerConfig::default()
    }
}

#[tokio::test]
async fn firing_then_resolved_in_a_real_alertmanager() {
    let Some(am) = start().await else { return };
    let notifier = AlertmanagerNotifier::new(&config(&am.url)).unwrap();
    assert_eq!(notifier.resend_interval(), Some(Duration::from_secs(60)));
    let n = sample();
    let before = automon::query::params::now_ms();
    let d = notifier.send(&n).await.unwrap();
    assert!(d.detail.starts_with("HTTP 200"), "{}", d.detail);

    let alerts = active_alerts(&am.url).await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let sdb = alerts
        .iter()
        .find(|a| a["labels"]["device"] == "sdb1")
        .expect("sdb1 alert");
    assert_eq!(sdb["labels"]["alertname"], "HostDiskFull");
    assert_eq!(sdb["labels"]["mountpoint"], "/srv");
    assert_eq!(sdb["labels"]["severity"], "critical");
    assert_eq!(
        sdb["annotations"]["summary"],
        "Filesystem on sdb1 is 97% full"
    );
    assert_eq!(sdb["status"]["state"], "active");
    assert_eq!(
        sdb["generatorURL"],
        "http://web1:9787/api/v1/query?query=node_filesystem_avail_bytes"
    );
    assert_eq!(sdb["receivers"][0]["name"], "blackhole");
    // endsAt is four resend intervals after the send.
    let ends = humantime::parse_rfc3339_weak(sdb["endsAt"].as_str().unwrap()).unwrap();
    let ends_ms = ends
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        ends_ms >= before + 240_000 && ends_ms <= automon::query::params::now_ms() + 240_000,
        "endsAt {} not 4m after the send",
        sdb["endsAt"]
    );

    // Resolve: Alertmanager stops listing them as active.
    let d = notifier.send(&support::resolved(&n)).await.unwrap();
    assert!(d.detail.starts_with("HTTP 200"), "{}", d.detail);
    let alerts = active_alerts(&am.url).await;
    assert!(alerts.is_empty(), "still active after resolve: {alerts:#?}");
}

#[tokio::test]
async fn alertmanager_rejects_are_permanent_and_down_is_retryable() {
    let Some(am) = start().await else { return };
    let notifier = AlertmanagerNotifier::new(&config(&am.url)).unwrap();
    // Alertmanager refuses an alert without labels (400): fixing it needs a code change,
    // not a retry.
    let mut n = sample();
    n.alerts[0].labels.clear();
    let e = notifier.send(&n).await.unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().starts_with("HTTP 400"), "{e}");
    drop(am);

    let down = AlertmanagerNotifier::new(&config(&format!(
        "http://127.0.0.1:{}",
        support::free_port()
    )))
    .unwrap();
    let e = down.send(&sample()).await.unwrap_err();
    assert!(matches!(e, NotifyError::Retryable(_)), "{e:?}");
}
