//! The process collector in the real daemon: a real child process with a distinctive name
//! appears in its group (count 1, CPU and memory), disappears when killed (count 0, the CPU
//! counter holds), and the exposition passes `promtool check metrics`.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::*;

/// Kills the sleeper even if an assertion fails.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn process_group_follows_a_real_process() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of sleep under a name nothing else on the machine has; longer than the kernel's
    // 15-byte comm, so the match goes through the cut comm / argv[0].
    let sleeper = dir.path().join("automon-test-sleeper");
    std::fs::copy("/bin/sleep", &sleeper).unwrap();
    let d = start(
        "[collectors.process]\nenabled = true\ninterval = \"200ms\"\n\n\
         [[collectors.process.groups]]\nname = \"sleeper\"\ncomm = [\"automon-test-sleeper\"]\n\n\
         [[collectors.process.groups]]\nname = \"by_args\"\n\
         cmdline = \"automon-test-sleeper 3141\"\n\n\
         [[collectors.process.groups]]\nname = \"nothing\"\ncomm = [\"no-such-process-xyz\"]\n",
    );
    let count = |body: &str, group: &str| {
        sample_value(
            body,
            &format!("automon_process_num_procs{{group=\"{group}\"}}"),
        )
    };
    assert!(
        d.eventually(Duration::from_secs(10), || count(&d.metrics(), "sleeper")
            == Some(0.0)),
        "{}",
        d.metrics()
    );
    let child = Sleeper(Command::new(&sleeper).arg("3141").spawn().unwrap());
    let mut body = String::new();
    assert!(
        d.eventually(Duration::from_secs(10), || {
            body = d.metrics();
            count(&body, "sleeper") == Some(1.0) && count(&body, "by_args") == Some(1.0)
        }),
        "{body}"
    );
    assert_eq!(count(&body, "nothing"), Some(0.0));
    let rss = sample_value(
        &body,
        "automon_process_resident_memory_bytes{group=\"sleeper\"}",
    )
    .unwrap();
    assert!(rss > 0.0, "{body}");
    assert_eq!(
        sample_value(&body, "automon_process_threads{group=\"sleeper\"}"),
        Some(1.0)
    );
    let started = sample_value(
        &body,
        "automon_process_oldest_start_time_seconds{group=\"sleeper\"}",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Start times come in clock ticks after boot: a few ticks of slack, nothing more.
    assert!((started - now).abs() < 60.0, "started {started}, now {now}");
    assert!(body.contains("automon_process_cpu_seconds_total{group=\"sleeper\",mode=\"user\"}"));
    promtool_check_metrics(&body);

    let user_before = sample_value(
        &body,
        "automon_process_cpu_seconds_total{group=\"sleeper\",mode=\"user\"}",
    )
    .unwrap();
    drop(child);
    assert!(
        d.eventually(Duration::from_secs(10), || {
            body = d.metrics();
            count(&body, "sleeper") == Some(0.0)
        }),
        "{body}"
    );
    let user_after = sample_value(
        &body,
        "automon_process_cpu_seconds_total{group=\"sleeper\",mode=\"user\"}",
    )
    .unwrap();
    assert!(user_after >= user_before, "{user_before} -> {user_after}");
    assert_eq!(
        sample_value(
            &body,
            "automon_process_oldest_start_time_seconds{group=\"sleeper\"}"
        ),
        None
    );
    let (_, h) = d.health();
    assert_eq!(h["collectors"]["process"]["status"], "ok", "{h}");
    promtool_check_metrics(&body);
}
