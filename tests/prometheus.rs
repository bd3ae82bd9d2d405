//! A real Prometheus server (Debian's `prometheus`) scrapes a real automon.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn prometheus_scrapes_automon() {
    let Some(prometheus) = require_tool("prometheus") else {
        return;
    };
    let d = start("[collectors]\ndefault_interval = \"1s\"\n");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: automon\n    static_configs:\n      - targets: ['{}']\n",
            d.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let _prom = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<serde_json::Value> {
        let resp = client()
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .ok()?;
        resp.json::<serde_json::Value>().ok()
    };
    let up = d.eventually(Duration::from_secs(60), || {
        query("up{job=\"automon\"} == 1")
            .is_some_and(|v| v["data"]["result"].as_array().is_some_and(|r| r.len() == 1))
    });
    assert!(up, "Prometheus never saw up{{job=\"automon\"}} == 1");
    let cpu = query("node_cpu_seconds_total{job=\"automon\",mode=\"idle\"}").unwrap();
    let series = cpu["data"]["result"].as_array().unwrap();
    assert!(!series.is_empty(), "{cpu}");
    assert_eq!(series[0]["metric"]["cpu"], "0");
}
