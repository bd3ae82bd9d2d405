//! Auto-repair end to end with the real binary: a TCP service goes down, the probe sees it,
//! the alert fires, the exec repair (a real program) brings the service back, and the audit
//! trail, metrics, API, CLI and a real webhook receiver show every decision: fixed, skipped
//! in the cooldown, gave up after `max_attempts` (and paged), re-armed once clear. Then bad
//! actions (missing program, hang, output flood, non-zero exit) are recorded and the daemon
//! goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::hook::Hook;
use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A rule that always triggers (`vector(1)`) and runs `command` once (then gives up), with
/// `extra` keys appended.
fn always_exec(name: &str, command: &str, extra: &str) -> String {
    format!(
        r#"
[[repair.rules]]
name = "{name}"
expr = "vector(1)"
action = "exec"
command = ["{command}"]
env = ["PATH"]
max_attempts = 1
cooldown = "1h"
window = "2h"
settle = "1s"
{extra}
"#
    )
}

/// The audit trail through the API, oldest first.
fn log(d: &Daemon) -> Vec<Value> {
    let (code, body) = d.get("/api/v1/repairs/log?limit=1000");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut rows = v["data"].as_array().cloned().unwrap_or_default();
    rows.reverse();
    rows
}

fn events(rows: &[Value], rule: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r["rule"] == rule)
        .map(|r| r["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn count(rows: &[Value], rule: &str, event: &str) -> usize {
    events(rows, rule).iter().filter(|e| *e == event).count()
}

/// Waits until `rule` has `n` rows of `event`; fails with the whole trail otherwise.
fn wait_for_event(d: &Daemon, rule: &str, event: &str, n: usize, secs: u64) {
    assert!(
        d.eventually(Duration::from_secs(secs), || count(&log(d), rule, event)
            == n),
        "{rule}: expected {n} {event} rows: {:#?}",
        log(d)
    );
}

fn rule_state(d: &Daemon, rule: &str) -> String {
    let (_, body) = d.get("/api/v1/repairs");
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["name"] == rule))
        .and_then(|r| r["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}

struct Service {
    pidfile: PathBuf,
    start: PathBuf,
}

impl Service {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }

    fn start_by_hand(&self) {
        let out = Command::new(&self.start)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn exec_repair_fixes_a_service_then_respects_cooldown_gives_up_pages_and_rearms() {
    let python = "/usr/bin/python3";
    assert!(
        Path::new(python).exists(),
        "the test service needs {python}"
    );
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let pidfile = work.path().join("service.pid");
    let service_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tcp_service.py");
    // The repair: starts the service in its own session (so it outlives the action's process
    // group, which automon kills when the action ends) and waits until it listens.
    let start_script = script(
        work.path(),
        "start-service",
        &format!(
            r#"rm -f {pid}
setsid {python} {svc} {port} {pid} </dev/null >/dev/null 2>&1 &
i=0
while [ ! -s {pid} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "service started as pid $(cat {pid}) by rule $AUTOMON_REPAIR_RULE for $AUTOMON_LABEL_ALERTNAME""#,
            pid = pidfile.display(),
            svc = service_py.display(),
        ),
    );
    let service = Service {
        pidfile: pidfile.clone(),
        start: start_script.clone(),
    };
    service.start_by_hand();
    let hook = Hook::start();
    let config = format!(
        r#"
[collectors]
default_interval = "1s"
[collectors.probe]
[[collectors.probe.targets]]
name = "svc"
kind = "tcp"
address = "127.0.0.1:{port}"
timeout = "500ms"

[alerting]
evaluation_interval = "1s"
builtin_rules = false
[[alerting.rules]]
name = "ServiceDown"
expr = 'automon_probe_success{{probe="svc"}} == 0'
for = "2s"
labels = {{ severity = "critical" }}
[alerting.route]
receiver = "oncall"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.webhook]]
url = "{hook}"

[repair]
check_interval = "250ms"
[[repair.rules]]
name = "svc"
alert = "ServiceDown"
matchers = ['severity="critical"']
action = "exec"
command = ["{start}"]
env = ["PATH"]
timeout = "20s"
cooldown = "20s"
max_attempts = 2
window = "10m"
settle = "3s"
rearm_after = "3s"
labels = {{ team = "web" }}
"#,
        hook = hook.url("/hook"),
        start = start_script.display(),
    );
    let d = start(&config);
    let probe_ok = |v: f64| {
        let d = &d;
        move || sample_value(&d.metrics(), "automon_probe_success{probe=\"svc\"}") == Some(v)
    };
    assert!(
        d.eventually(Duration::from_secs(15), probe_ok(1.0)),
        "probe never saw the service"
    );

    // Outage 1: repaired and verified fixed.
    let first_pid = service.pid();
    service.kill();
    assert!(
        d.eventually(Duration::from_secs(30), || count(&log(&d), "svc", "fixed")
            == 1),
        "no fixed repair: {:#?}",
        log(&d)
    );
    let rows = log(&d);
    assert_eq!(
        events(&rows, "svc"),
        vec!["triggered", "started", "succeeded", "fixed"],
        "{rows:#?}"
    );
    let triggered = &rows[0];
    assert_eq!(triggered["labels"]["alertname"], "ServiceDown");
    let started = rows.iter().find(|r| r["event"] == "started").unwrap();
    let attempt = started["id"].as_i64().unwrap();
    assert!(
        started["detail"]
            .as_str()
            .unwrap()
            .contains("start-service"),
        "{started}"
    );
    assert_eq!(
        started["target"],
        format!("exec:{}", start_script.display())
    );
    let succeeded = rows.iter().find(|r| r["event"] == "succeeded").unwrap();
    assert_eq!(succeeded["attempt"].as_i64(), Some(attempt));
    assert!(
        succeeded["output"]
            .as_str()
            .unwrap()
            .contains("by rule svc for ServiceDown"),
        "{succeeded}"
    );
    assert!(succeeded["durationSeconds"].as_f64().is_some());
    assert_eq!(
        rows.iter().find(|r| r["event"] == "fixed").unwrap()["attempt"].as_i64(),
        Some(attempt)
    );
    assert!(service.pid().is_some() && service.pid() != first_pid);
    assert!(d.eventually(Duration::from_secs(10), probe_ok(1.0)));

    // Outage 2 inside the cooldown: skipped with the reason, then repaired once it ends.
    service.kill();
    assert!(
        d.eventually(Duration::from_secs(15), || {
            log(&d).iter().any(|r| {
                r["event"] == "skipped"
                    && r["detail"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("cooldown"))
            })
        }),
        "no cooldown skip: {:#?}",
        log(&d)
    );
    assert!(
        d.eventually(Duration::from_secs(40), || count(&log(&d), "svc", "fixed")
            == 2),
        "second outage not repaired after the cooldown: {:#?}",
        log(&d)
    );
    // One skip row for the whole wait, not one per check.
    assert_eq!(count(&log(&d), "svc", "skipped"), 1, "{:#?}", log(&d));
    assert!(d.eventually(Duration::from_secs(10), probe_ok(1.0)));

    // Outage 3: both attempts of the window are used: give up and page.
    service.kill();
    wait_for_event(&d, "svc", "gave_up", 1, 20);
    assert_eq!(count(&log(&d), "svc", "started"), 2, "no third attempt");
    assert_eq!(rule_state(&d, "svc"), "gave_up");
    assert!(d.eventually(Duration::from_secs(5), || {
        sample_value(&d.metrics(), "automon_repair_state{rule=\"svc\"}") == Some(3.0)
    }));
    let exhausted = |status: &'static str| {
        let hook = &hook;
        move || {
            hook.accepted().iter().any(|r| {
                let j = r.json();
                j["status"] == status
                    && j["alerts"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|a| a["labels"]["alertname"] == "AutomonRepairExhausted")
                    })
            })
        }
    };
    assert!(
        hook.wait_for(Duration::from_secs(15), |_| exhausted("firing")()),
        "no 'repair exhausted' page: {:#?}",
        hook.all().iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    let page = hook
        .accepted()
        .into_iter()
        .map(|r| r.json())
        .find(|j| j["alerts"][0]["labels"]["alertname"] == "AutomonRepairExhausted")
        .unwrap();
    let labels = &page["alerts"][0]["labels"];
    assert_eq!(labels["repair"], "svc");
    assert_eq!(labels["team"], "web");
    assert_eq!(labels["severity"], "critical");
    // Each fixed repair was reported as an event too.
    assert!(hook.accepted().iter().any(|r| {
        let j = r.json();
        j["alerts"][0]["labels"]["alertname"] == "AutomonRepair"
            && j["alerts"][0]["labels"]["outcome"] == "fixed"
    }));

    // The operator fixes it; the trigger stays clear for rearm_after: re-armed, page resolved.
    service.start_by_hand();
    wait_for_event(&d, "svc", "rearmed", 1, 20);
    assert_eq!(rule_state(&d, "svc"), "armed");
    assert!(
        hook.wait_for(Duration::from_secs(15), |_| exhausted("resolved")()),
        "the page was not resolved"
    );

    let metrics = d.metrics();
    assert_eq!(
        sample_value(
            &metrics,
            "automon_repair_attempts_total{outcome=\"fixed\",rule=\"svc\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample_value(
            &metrics,
            "automon_repair_attempts_total{outcome=\"succeeded\",rule=\"svc\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample_value(
            &metrics,
            "automon_repair_skipped_total{reason=\"cooldown\",rule=\"svc\"}"
        ),
        Some(1.0)
    );

    // The CLI reads the same trail.
    let data_dir = d.dir.path().join("data");
    let out = Command::new(bin())
        .args(["repair", "log", "--rule", "svc", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("automon repair log:\n{text}");
    for word in [
        "triggered",
        "started",
        "succeeded",
        "fixed",
        "skipped",
        "gave_up",
        "rearmed",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    let out = Command::new(bin())
        .args(["repair", "status", "--config"])
        .arg(&d.config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("svc") && text.contains("armed"), "{text}");
}

#[test]
fn bad_actions_are_recorded_and_the_daemon_goes_on() {
    let work = tempfile::tempdir().unwrap();
    let hang = script(work.path(), "hang", "sleep 600 & sleep 600");
    let flood = script(
        work.path(),
        "flood",
        "i=0; while [ $i -lt 200 ]; do head -c 20000 /dev/zero | tr '\\0' 'x'; i=$((i+1)); done; echo; echo done >&2",
    );
    let broken = script(work.path(), "broken", "echo 'cannot fix this' >&2; exit 3");
    let rule = |name: &str, command: &str, extra: &str| {
        always_exec(name, command, &format!("timeout = \"2s\"\n{extra}"))
    };
    let config =
        format!(
        "[collectors]\ndefault_interval = \"1s\"\n[repair]\ncheck_interval = \"250ms\"\n{}{}{}{}{}",
        rule("missing", "/nonexistent/fix-it", ""),
        rule("hang", &hang.display().to_string(), ""),
        rule("flood", &flood.display().to_string(), "max_output_bytes = \"4KiB\""),
        rule("broken", &broken.display().to_string(), ""),
        rule("dry", &broken.display().to_string(), "dry_run = true"),
    );
    let d = start(&config);
    let done = |rule: &'static str, event: &'static str| {
        let d = &d;
        move || count(&log(d), rule, event) >= 1
    };
    for (rule, event) in [
        ("missing", "failed"),
        ("hang", "timed_out"),
        ("flood", "succeeded"),
        ("broken", "failed"),
        ("dry", "dry_run"),
    ] {
        assert!(
            d.eventually(Duration::from_secs(20), done(rule, event)),
            "{rule}: no {event}: {:#?}",
            log(&d)
        );
    }
    let rows = log(&d);
    let row = |rule: &str, event: &str| {
        rows.iter()
            .find(|r| r["rule"] == rule && r["event"] == event)
            .cloned()
            .unwrap()
    };
    assert!(
        row("missing", "failed")["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/fix-it"),
        "{rows:#?}"
    );
    let flood_out = row("flood", "succeeded")["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        flood_out.len() < 8 * 1024,
        "output not bounded: {} bytes",
        flood_out.len()
    );
    assert!(row("broken", "failed")["output"]
        .as_str()
        .unwrap()
        .contains("cannot fix this"));
    assert!(row("broken", "failed")["detail"]
        .as_str()
        .unwrap()
        .contains('3'));
    assert!(row("dry", "dry_run")["detail"]
        .as_str()
        .unwrap()
        .contains("would"));
    assert_eq!(count(&rows, "dry", "started"), 0, "a dry run must not run");
    // With one attempt allowed and the trigger still holding, the real ones give up.
    assert!(d.eventually(Duration::from_secs(10), || {
        let rows = log(&d);
        ["missing", "hang", "flood", "broken"]
            .iter()
            .all(|r| count(&rows, r, "gave_up") == 1)
    }));
    // The daemon is alive and well.
    let (code, _) = d.health();
    assert_eq!(code, 200);
    let metrics = d.metrics();
    assert_eq!(
        sample_value(
            &metrics,
            "automon_repair_attempts_total{outcome=\"timed_out\",rule=\"hang\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn pause_and_reset_from_the_cli_reach_the_running_daemon() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("ran");
    let fix = script(
        work.path(),
        "fix",
        &format!("echo run >> {}", marker.display()),
    );
    let config = format!(
        r#"
[collectors]
default_interval = "1s"
[repair]
check_interval = "250ms"
[[repair.rules]]
name = "always"
expr = "vector(1)"
action = "exec"
command = ["{fix}"]
max_attempts = 1
cooldown = "1s"
window = "1h"
settle = "500ms"
"#,
        fix = fix.display()
    );
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let d = start(&format!(
        "data_dir = {:?}\n{config}",
        data.display().to_string()
    ));
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&d.config_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(d.eventually(Duration::from_secs(15), || count(
        &log(&d),
        "always",
        "gave_up"
    ) == 1));
    let runs = || {
        std::fs::read_to_string(&marker)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(runs(), 1);

    cli(&["repair", "pause"]);
    assert!(d.eventually(Duration::from_secs(5), || {
        sample_value(&d.metrics(), "automon_repair_paused") == Some(1.0)
    }));
    cli(&["repair", "reset", "always"]);
    assert!(d.eventually(Duration::from_secs(5), || count(
        &log(&d),
        "always",
        "reset"
    ) == 1));
    assert!(d.eventually(Duration::from_secs(5), || {
        log(&d).iter().any(|r| {
            r["rule"] == "always"
                && r["event"] == "skipped"
                && r["detail"].as_str().is_some_and(|s| s.contains("paused"))
        })
    }));
    assert_eq!(runs(), 1, "acted while paused");
    cli(&["repair", "resume"]);
    assert!(
        d.eventually(Duration::from_secs(10), || runs() == 2),
        "did not act after resume"
    );
    let text = cli(&["repair", "log"]);
    assert!(
        text.contains("paused") && text.contains("resumed"),
        "{text}"
    );
    // Unknown rule: a clear error, non-zero exit.
    let out = Command::new(bin())
        .args(["repair", "reset", "nope", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&d.config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no repair rule named \"nope\""));

    // The API: bad parameters are 400 with a message, an unknown rule 404; pause works there too.
    for bad in ["limit=0", "limit=abc", "since=yesterday"] {
        let (code, body) = d.get(&format!("/api/v1/repairs/log?{bad}"));
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("\"errorType\":\"bad_data\""), "{body}");
    }
    let post = |path: &str| {
        let r = client().post(d.url(path)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (code, body) = post("/api/v1/repairs/nope/reset");
    assert_eq!(code, 404, "{body}");
    assert_eq!(post("/api/v1/repairs/pause").0, 200);
    let (_, body) = d.get("/api/v1/repairs");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        d.eventually(Duration::from_secs(5), || {
            let (_, body) = d.get("/api/v1/repairs");
            serde_json::from_str::<Value>(&body).unwrap()["data"]["paused"] == true
        }),
        "{v}"
    );
    assert_eq!(post("/api/v1/repairs/always/reset").0, 200);
    let (_, body) = d.get("/api/v1/repairs/log?rule=always&limit=1");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[test]
fn clean_files_through_the_daemon_deletes_old_files_and_nothing_outside() {
    use std::os::unix::fs::symlink;
    let work = tempfile::tempdir().unwrap();
    let allowed = work.path().join("logs");
    let outside = work.path().join("precious");
    std::fs::create_dir_all(allowed.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    let make = |p: &Path, aged: bool| {
        std::fs::write(p, vec![b'x'; 1000]).unwrap();
        if aged {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    };
    make(&allowed.join("app.log.1"), true);
    make(&allowed.join("sub/app.log.2"), true);
    make(&allowed.join("app.log"), false);
    make(&allowed.join("app.log.new"), false);
    make(&outside.join("keep.log.1"), true);
    symlink(outside.join("keep.log.1"), allowed.join("link.log.1")).unwrap();
    symlink(&outside, allowed.join("linkdir")).unwrap();
    let config = format!(
        r#"
[collectors]
default_interval = "1s"
[repair]
check_interval = "250ms"
allowed_paths = [{allowed:?}]
[[repair.rules]]
name = "logs"
expr = "vector(1)"
action = "clean_files"
path = {allowed:?}
pattern = "*.log.*"
older_than = "7d"
recursive = true
max_attempts = 1
cooldown = "1h"
window = "2h"
settle = "1s"
"#,
        allowed = allowed.display().to_string()
    );
    let d = start(&config);
    wait_for_event(&d, "logs", "succeeded", 1, 15);
    let rows = log(&d);
    let done = rows.iter().find(|r| r["event"] == "succeeded").unwrap();
    assert!(
        done["detail"].as_str().unwrap().contains("deleted 2 files"),
        "{done}"
    );
    assert!(!allowed.join("app.log.1").exists());
    assert!(!allowed.join("sub/app.log.2").exists());
    assert!(allowed.join("app.log").exists() && allowed.join("app.log.new").exists());
    assert!(
        outside.join("keep.log.1").exists(),
        "followed a symlink out of the allowlist"
    );
    assert!(
        allowed.join("link.log.1").symlink_metadata().is_ok(),
        "deleted a symlink"
    );
    assert!(allowed.join("linkdir").symlink_metadata().is_ok());
}

#[test]
fn one_action_per_target_and_the_global_limit_are_enforced() {
    let work = tempfile::tempdir().unwrap();
    let slow = script(work.path(), "slow", "sleep 3; echo slow done");
    let other = script(work.path(), "other", "sleep 3; echo other done");
    let rule = |name: &str, command: &Path| always_exec(name, &command.display().to_string(), "");
    let config = format!(
        "[collectors]\ndefault_interval = \"1s\"\n[repair]\ncheck_interval = \"250ms\"\nmax_concurrent = 1\n{}{}{}",
        rule("first", &slow),
        rule("same-target", &slow),
        rule("second-target", &other),
    );
    let d = start(&config);
    assert!(
        d.eventually(Duration::from_secs(20), || {
            let rows = log(&d);
            count(&rows, "first", "succeeded") == 1
                && count(&rows, "same-target", "succeeded") == 1
                && count(&rows, "second-target", "succeeded") == 1
        }),
        "{:#?}",
        log(&d)
    );
    let rows = log(&d);
    let skip = |rule: &str| {
        rows.iter()
            .find(|r| r["rule"] == rule && r["event"] == "skipped")
            .map(|r| r["detail"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert!(
        skip("same-target").contains("busy: rule first is acting on it"),
        "{rows:#?}"
    );
    assert!(
        skip("second-target").contains("max_concurrent"),
        "{rows:#?}"
    );
    // Never two at once: each start comes after the previous action's result.
    let timeline: Vec<&str> = rows
        .iter()
        .filter(|r| r["event"] == "started" || r["event"] == "succeeded")
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        timeline,
        [
            "started",
            "succeeded",
            "started",
            "succeeded",
            "started",
            "succeeded"
        ],
        "{rows:#?}"
    );
}
