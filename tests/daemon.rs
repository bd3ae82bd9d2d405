//! End-to-end tests of `automon run`: the real binary, a temp config, real HTTP.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const HOST_FAMILIES: &[&str] = &[
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_disk_io_time_seconds_total",
    "node_disk_read_bytes_total",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_filefd_allocated",
    "node_timex_offset_seconds",
    "node_timex_sync_status",
    "node_vmstat_pgmajfault",
    "node_boot_time_seconds",
    "node_time_seconds",
    "node_uname_info",
    "node_context_switches_total",
    "automon_collector_success",
    "automon_collector_duration_seconds",
    "automon_config_last_reload_successful",
    "automon_config_last_reload_success_timestamp_seconds",
];

#[test]
fn metrics_contain_host_families_and_pass_promtool() {
    let d = start("");
    let body = d.metrics();
    for fam in HOST_FAMILIES {
        assert!(
            body.contains(&format!("# TYPE {fam} ")),
            "missing family {fam} in /metrics"
        );
    }
    assert_eq!(
        sample_value(&body, "automon_collector_success{collector=\"cpu\"}"),
        Some(1.0)
    );
    promtool_check_metrics(&body);
}

#[test]
fn metrics_are_gzipped_when_asked() {
    let d = start("");
    let resp = client()
        .get(d.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let bytes = resp.bytes().unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("node_load1 "));
}

fn empty_proc_config(procfs: &std::path::Path) -> String {
    format!("[paths]\nprocfs = {procfs:?}\n\n[collectors]\ndefault_interval = \"1s\"\n",)
}

#[test]
fn health_shows_a_failing_collector_as_degraded() {
    let proc_dir = tempfile::tempdir().unwrap();
    // A procfs without /proc/stat: cpu and stat fail, load works.
    std::fs::write(proc_dir.path().join("loadavg"), "0.5 0.4 0.3 1/100 42\n").unwrap();
    let cfg = format!(
        "{}\n[collectors.cpu]\nenabled = true\n",
        empty_proc_config(proc_dir.path())
    );
    let d = start(&cfg);
    let (code, h) = d.health();
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["collectors"]["cpu"]["status"], "failing");
    let err = h["collectors"]["cpu"]["last_error"].as_str().unwrap();
    assert!(err.contains("stat"), "error should name the file: {err}");
    assert_eq!(h["collectors"]["load"]["status"], "ok");
    let body = d.metrics();
    assert_eq!(
        sample_value(&body, "automon_collector_success{collector=\"cpu\"}"),
        Some(0.0)
    );
    assert_eq!(sample_value(&body, "node_load1"), Some(0.5));
}

#[test]
fn health_reports_a_collector_that_exceeds_its_deadline() {
    let proc_dir = tempfile::tempdir().unwrap();
    // Reading a FIFO with no writer blocks forever: a hung collector without running any
    // external program.
    nix::unistd::mkfifo(
        &proc_dir.path().join("loadavg"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let cfg = format!(
        "[paths]\nprocfs = {:?}\n\n[collectors]\ndefault_interval = \"1s\"\n\n[collectors.load]\ntimeout = \"300ms\"\n",
        proc_dir.path()
    );
    let d = start(&cfg);
    let ok = d.eventually(Duration::from_secs(5), || {
        let (_, h) = d.health();
        h["collectors"]["load"]["status"] == "failing"
            && h["collectors"]["load"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("deadline") || e.contains("still running"))
    });
    assert!(
        ok,
        "load collector not reported as timed out: {}",
        d.health().1
    );
    // Others keep working meanwhile, and scrapes answer promptly.
    let t = Instant::now();
    let body = d.metrics();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(
        sample_value(&body, "automon_collector_success{collector=\"load\"}"),
        Some(0.0)
    );
    assert!(body.contains("node_time_seconds"));
    // Unblock the reader so the blocking thread can end.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .open(proc_dir.path().join("loadavg"));
}

#[test]
fn systemd_notify_ready_status_and_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let d = start_with_env(
        "",
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline
        && !(seen.contains("READY=1") && seen.contains("STATUS=") && seen.contains("WATCHDOG=1"))
    {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    }
    assert!(seen.contains("READY=1"), "{seen}");
    assert!(seen.contains("STATUS=serving on"), "{seen}");
    assert!(seen.contains("WATCHDOG=1"), "{seen}");
    // READY=1 comes before any watchdog ping and after the first collection round.
    let ready_at = seen.find("READY=1").unwrap();
    assert!(seen[..ready_at].find("WATCHDOG=1").is_none());
    drop(d);
}

#[test]
fn sighup_with_broken_config_keeps_old_config_and_process() {
    let mut d = start("[collectors.load]\nenabled = true\n");
    std::fs::write(
        &d.config_path,
        "[collectors.load]\nenabled = \"maybe\"\nbogus_key = 1\n",
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    let rejected = d.eventually(Duration::from_secs(5), || {
        sample_value(&d.metrics(), "automon_config_last_reload_successful") == Some(0.0)
    });
    assert!(rejected, "reload was not rejected");
    assert!(d.child.try_wait().unwrap().is_none(), "daemon exited");
    let (code, h) = d.health();
    assert_eq!(code, 200, "{h}");
    assert!(d.metrics().contains("node_load1 "));
    assert!(d.log_contains("rejected"));

    // A valid change is picked up by SIGHUP: the load collector goes away.
    let data_dir = d.dir.path().join("data");
    std::fs::write(
        &d.config_path,
        format!("data_dir = {data_dir:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[collectors.load]\nenabled = false\n"),
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    let applied = d.eventually(Duration::from_secs(5), || {
        let m = d.metrics();
        sample_value(&m, "automon_config_last_reload_successful") == Some(1.0)
            && !m.contains("node_load1 ")
    });
    assert!(applied, "valid reload not applied");
    assert!(d.wait_exit(Duration::from_millis(10)).is_none());
}

#[test]
fn config_file_change_triggers_reload() {
    let d = start("");
    let data_dir = d.dir.path().join("data");
    std::fs::write(
        &d.config_path,
        format!("data_dir = {data_dir:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[collectors.uname]\nenabled = false\n"),
    )
    .unwrap();
    let applied = d.eventually(Duration::from_secs(10), || {
        !d.metrics().contains("node_uname_info")
    });
    assert!(applied, "config change not picked up");
}

#[test]
fn sigterm_exits_zero_promptly() {
    let mut d = start("");
    let t = Instant::now();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10)).expect("did not exit");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
}

#[test]
fn api_key_protects_metrics_but_not_health() {
    let d = start("[http]\napi_key = \"s3cret\"\n");
    assert_eq!(d.get("/metrics").0, 401);
    assert_eq!(d.get("/health").0, 200);
    let resp = client()
        .get(d.url("/metrics"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn non_loopback_listen_without_key_refuses_to_start() {
    let (out, _dir) = cli_with_config("run", "[http]\nlisten = \"0.0.0.0:0\"\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api_key_file"), "{err}");
    assert!(err.contains("allow_unauthenticated"), "{err}");
}

#[test]
fn validate_reports_file_and_line_of_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("automon.toml");
    std::fs::write(
        &cfg,
        "log_level = \"info\"\n\n[collectors.cpu]\nintervall = \"5s\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:4: collectors.cpu.intervall", cfg.display());
    assert!(err.contains(&expected), "expected {expected:?} in {err}");
    assert!(err.contains("interval"), "{err}");

    std::fs::write(&cfg, "[collectors.cpu]\ninterval = \"5s\"\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_has_no_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data-must-not-exist");
    let cfg = dir.path().join("automon.toml");
    // The port is taken by us: validate must not try to bind it.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {data:?}\n[http]\nlisten = \"{}\"\n",
            l.local_addr().unwrap()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!data.exists());
}

#[test]
fn version_and_help() {
    let out = std::process::Command::new(bin())
        .arg("version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("automon "));
    let out = std::process::Command::new(bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "validate", "doctor", "version"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn doctor_prints_a_table() {
    let (out, _dir) = cli_with_config("doctor", "[http]\nlisten = \"127.0.0.1:0\"\n");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("PASS  config"), "{table}");
    assert!(table.contains("collector cpu"), "{table}");
    assert!(table.contains("data directory"), "{table}");
    assert!(out.status.success(), "{table}");
}

/// Runs `automon <subcommand> --config <file>` with `config` (a temp `data_dir` added) and
/// returns its output; the temp dir is returned so paths stay valid.
fn cli_with_config(subcommand: &str, config: &str) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("automon.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {:?}\n{config}", dir.path().join("data")),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args([subcommand, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    (out, dir)
}
