//! Shared helpers for integration tests: start the real `automon` binary with a temporary
//! config, find its port from the log, talk HTTP to it, and require external tools.
#![allow(dead_code)]

pub mod hook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_automon"))
}

/// Returns the path of an external tool, or `None` (with a message) when it is missing and
/// we are not in CI. In CI (`CI=true`) a missing tool fails the test: a skipped test there
/// would hide a broken install step.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name} is required in CI but not installed (apt-get install the package that provides it)")
        }
        None => {
            eprintln!("SKIPPING: {name} not installed (install it, or run with CI=true to make this fail)");
            None
        }
    }
}

/// Whether a test that boots a container can run: every tool in `tools` is installed (see
/// [`require_tool`]) and we are root. Outside CI a missing piece skips the test with a
/// message; in CI (`CI=true`) it fails it.
pub fn require_root_and_tools(tools: &[&str], what: &str) -> bool {
    if !tools.iter().all(|t| require_tool(t).is_some()) {
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} needs root in CI"
        );
        eprintln!("SKIPPING: {what} needs root");
        return false;
    }
    true
}

/// A running daemon. Killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Writes `config` (TOML; `listen` and `data_dir` are filled in unless already present) and
/// starts `automon run` on port 0.
pub fn start(config: &str) -> Daemon {
    start_with_env(config, &[])
}

pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("automon.toml");
    std::fs::write(&config_path, with_defaults(config, dir.path())).expect("write config");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg("--config")
        .arg(&config_path)
        .env("AUTOMON_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn automon");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listen=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                eprintln!("[automon] {line}");
                log.lock().unwrap().push(line);
            }
        });
    }
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "automon did not report its listen address; log: {:?}",
                log.lock().unwrap()
            );
        }
    };
    let d = Daemon {
        child,
        addr,
        dir,
        config_path,
        log,
    };
    d.wait_ready();
    d
}

/// Adds `listen` on port 0 and a temp `data_dir` when the test's config has none.
fn with_defaults(config: &str, dir: &Path) -> String {
    let mut top = String::new();
    if !config.contains("data_dir") {
        top.push_str(&format!("data_dir = {:?}\n", dir.join("data")));
    }
    let mut s = format!("{top}{config}");
    if !config.contains("listen") {
        if config.contains("[http]") {
            s = s.replace("[http]", "[http]\nlisten = \"127.0.0.1:0\"");
        } else {
            s.push_str("\n[http]\nlisten = \"127.0.0.1:0\"\n");
        }
    }
    s
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until `/health` answers (the daemon logs its address before collectors finish).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log_contains("ready:") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("automon not ready");
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = client().get(self.url(path)).send().expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().unwrap_or_default())
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn health(&self) -> (u16, serde_json::Value) {
        let (status, body) = self.get("/health");
        (status, serde_json::from_str(&body).expect("health is JSON"))
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).expect("kill");
    }

    /// Waits for exit up to `timeout`, returning the exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Polls `f` until it returns true or the timeout passes.
    pub fn eventually(&self, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Value of the first sample line starting with `prefix` (name plus labels) in an exposition.
pub fn sample_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(prefix).is_some_and(|rest| {
                rest.starts_with(' ') || (!prefix.contains('{') && rest.starts_with('{'))
            })
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Path of the repository's fixture tree.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `promtool check metrics` must pass: exit 0, or exit 3 (lint warnings) only for the
/// camelCase `node_memory_*` and `node_netstat_*` names that node_exporter itself exports (they
/// mirror the field names of /proc/meminfo and of /proc/net/{netstat,snmp,snmp6}, e.g.
/// `node_netstat_Tcp_InSegs`; renaming them would break every node_exporter dashboard).
/// Any other lint warning on our output is a failure.
pub fn assert_promtool_clean(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    let unexpected: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !((l.starts_with("node_memory_") || l.starts_with("node_netstat_"))
                && l.ends_with("metric names should be written in 'snake_case' not 'camelCase'"))
        })
        .collect();
    assert!(
        (code == Some(0) || code == Some(3)) && unexpected.is_empty(),
        "promtool check metrics failed ({code:?}):\n{}",
        unexpected.join("\n")
    );
}

/// Lints an exposition with `promtool check metrics` (see [`assert_promtool_clean`]); skips
/// outside CI when promtool is missing.
pub fn promtool_check_metrics(body: &str) {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert_promtool_clean(&out);
}

/// Replaces `v.prom` in a textfile directory with `test_level{tank="a"} v`, atomically (write
/// then rename, the textfile convention), for alert tests that move a value across a threshold.
pub fn set_value(dir: &Path, v: f64) {
    let tmp = dir.join("v.prom.tmp");
    std::fs::write(
        &tmp,
        format!("# TYPE test_level gauge\ntest_level{{tank=\"a\"}} {v}\n"),
    )
    .expect("write textfile");
    std::fs::rename(&tmp, dir.join("v.prom")).expect("rename textfile");
}
