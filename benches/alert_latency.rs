//! End-to-end alert latency: from the moment a rule's expression crosses its threshold
//! (`for = 0`) to the webhook receiving the notification, through the real daemon (rule
//! evaluation on the store, grouping with `group_wait = 0`, the outbox, an HTTP POST). The
//! expression is `vector(time() % P) >= P/2`, so every crossing happens at a known wall-clock
//! instant, firing at `k·P + P/2` and resolving at `k·P`, without waiting on a collector.
//! The budget is one evaluation interval + 100 ms.
//!
//! `cargo bench --bench alert_latency` (20 crossings at a 1 s interval; `ALERT_LATENCY_INTERVAL=5s`
//! for another interval). Under `cargo test --benches` it measures one crossing.

#[path = "../tests/common/hook.rs"]
#[allow(dead_code)]
mod hook;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let interval = std::env::var("ALERT_LATENCY_INTERVAL").unwrap_or_else(|_| "1s".into());
    let interval_s: f64 = humantime::parse_duration(&interval)
        .unwrap_or_else(|e| panic!("ALERT_LATENCY_INTERVAL: {e}"))
        .as_secs_f64();
    // A period of at least four intervals, so that no firing or resolved window falls
    // between two evaluations.
    let period: u64 = ((4.0 * interval_s).ceil() as u64).max(6) & !1;
    let crossings = if full { 20 } else { 1 };

    let hook = hook::Hook::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("automon.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = {data:?}
[http]
listen = "127.0.0.1:0"
[collectors]
default_interval = "1s"
[alerting]
evaluation_interval = "{interval}"
builtin_rules = false
[[alerting.rules]]
name = "Crossing"
expr = "vector(time() % {period}) >= {half}"
[alerting.route]
receiver = "hook"
group_wait = "0s"
group_interval = "100ms"
repeat_interval = "1h"
[[alerting.receivers]]
name = "hook"
[[alerting.receivers.webhook]]
url = "{url}"
"#,
            data = dir.path().join("data").display().to_string(),
            half = period / 2,
            url = hook.url("/"),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_automon"))
        .args(["run", "--config"])
        .arg(&config)
        .env("AUTOMON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[automon] {line}");
            }
        });
    }

    let mut latencies: Vec<f64> = Vec::new();
    let start = Instant::now();
    let deadline = Duration::from_secs(period * (crossings as u64 + 2) + 30);
    let mut seen = 0;
    while latencies.len() < crossings && start.elapsed() < deadline {
        let got = hook.accepted();
        for r in got.iter().skip(seen) {
            let status = r.json()["status"].as_str().unwrap_or_default().to_owned();
            let wall = r
                .wall
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            // The crossing just before arrival: firing at k·P + P/2, resolved at k·P.
            let offset = if status == "firing" {
                (period / 2) as f64
            } else {
                0.0
            };
            let p = period as f64;
            let crossing = ((wall - offset) / p).floor() * p + offset;
            // The first notification may be for a crossing before the daemon was up.
            if seen > 0 || wall - crossing < interval_s + 1.0 {
                latencies.push(wall - crossing);
            }
        }
        seen = got.len();
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        latencies.len() >= crossings,
        "only {} notifications in {:?}",
        latencies.len(),
        start.elapsed()
    );
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let budget = interval_s + 0.1;
    println!(
        "alert latency at evaluation_interval={interval}: n={} median={:.0} ms p95={:.0} ms max={:.0} ms (budget {:.0} ms)",
        latencies.len(),
        pick(0.5) * 1000.0,
        pick(0.95) * 1000.0,
        pick(1.0) * 1000.0,
        budget * 1000.0
    );
    if full {
        assert!(
            pick(1.0) <= budget,
            "slowest notification exceeded the budget"
        );
    }
}
