//! Crash safety: start the daemon, let it ingest, `kill -9` it at a random moment, and check
//! that the database passes `PRAGMA integrity_check` and that every sample seen after an
//! earlier kill is still there. CRASH_ITERATIONS (default 50) sets the loop count; the manual
//! script `scripts/crash-loop.sh` runs it with more.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use automon::store::{open_read_only, Tier, TierPoint};

/// Every (series, timestamp, value bits) in the database.
fn snapshot(dir: &std::path::Path) -> BTreeSet<(String, i64, u64)> {
    let reader = open_read_only(dir).expect("open read-only");
    assert_eq!(reader.integrity_check().unwrap(), "ok");
    let mut out = BTreeSet::new();
    for name in ["node_time_seconds", "node_load1", "node_cpu_seconds_total"] {
        for s in reader
            .select(Some(name), |_| true, 0, i64::MAX, Tier::Raw)
            .unwrap()
        {
            let TierPoint::Raw(points) = s.points else {
                continue;
            };
            let key = format!("{}{:?}", s.meta.name, s.meta.labels);
            for (t, v) in points {
                out.insert((key.clone(), t, v.to_bits()));
            }
        }
    }
    out
}

#[test]
fn kill_9_never_corrupts_and_keeps_flushed_samples() {
    let iterations: usize = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("automon.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {data:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[collectors]\ndefault_interval = \"100ms\"\n\
             [collectors.filesystem]\nenabled = false\n[storage]\nflush_interval = \"100ms\"\n"
        ),
    )
    .unwrap();
    let mut seen: BTreeSet<(String, i64, u64)> = BTreeSet::new();
    // A small deterministic generator: the kill moments vary but the test is reproducible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..iterations {
        let mut child = Command::new(common::bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("AUTOMON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let wait_ms = 50 + x % 900;
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !data.join("automon.db").exists() {
            continue;
        }
        let now = snapshot(&data);
        let lost: Vec<_> = seen.difference(&now).take(5).collect();
        assert!(
            lost.is_empty(),
            "iteration {i} (killed after {wait_ms} ms): samples present before are gone: {lost:?}"
        );
        seen = now;
    }
    assert!(
        seen.len() > iterations,
        "the daemon stored almost nothing: {} samples",
        seen.len()
    );
}
