//! Helpers for the receiver tests: a sample notification, a real SMTP server (aiosmtpd,
//! through `smtp_server.py` beside this file), a throwaway CA made with the openssl CLI, and
//! a free loopback port.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use automon::alert::notify::{AlertInfo, AlertStatus, Notification};

/// Debian's interpreter, which is where python3-aiosmtpd installs (not a pyenv one first
/// on PATH).
pub const PYTHON: &str = "/usr/bin/python3";

/// Checks aiosmtpd is installed; `false` means skip (outside CI only: `require_tool` panics
/// in CI).
pub fn have_aiosmtpd() -> bool {
    super::common::require_tool("aiosmtpd").is_some()
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Two firing `HostDiskFull` alerts on web1, as the alert engine would hand them over.
pub fn sample() -> Notification {
    let now = automon::query::params::now_ms();
    let disk = |dev: &str, fp: &str| AlertInfo {
        status: AlertStatus::Firing,
        labels: labels(&[
            ("alertname", "HostDiskFull"),
            ("device", dev),
            ("mountpoint", "/srv"),
            ("severity", "critical"),
        ]),
        annotations: labels(&[
            ("summary", &format!("Filesystem on {dev} is 97% full")),
            ("description", "Free space: 1.2GiB of 40GiB."),
        ]),
        starts_at_ms: now - 60_000,
        ends_at_ms: None,
        value: 0.97,
        fingerprint: fp.to_owned(),
        generator_url: "http://web1:9787/api/v1/query?query=node_filesystem_avail_bytes".into(),
    };
    Notification {
        receiver: "oncall".into(),
        status: AlertStatus::Firing,
        group_key: "{}:{alertname=\"HostDiskFull\"}".into(),
        group_labels: labels(&[("alertname", "HostDiskFull")]),
        common_labels: labels(&[
            ("alertname", "HostDiskFull"),
            ("mountpoint", "/srv"),
            ("severity", "critical"),
        ]),
        common_annotations: labels(&[("description", "Free space: 1.2GiB of 40GiB.")]),
        alerts: vec![
            disk("sda1", "a1a1a1a1a1a1a1a1"),
            disk("sdb1", "b1b1b1b1b1b1b1b1"),
        ],
        external_url: "http://web1:9787".into(),
        host: "web1".into(),
        dedup_key: "dedup-0123456789abcdef".into(),
        created_ms: now,
    }
}

/// The same group after both alerts resolved.
pub fn resolved(n: &Notification) -> Notification {
    let now = automon::query::params::now_ms();
    let mut r = n.clone();
    r.status = AlertStatus::Resolved;
    for a in &mut r.alerts {
        a.status = AlertStatus::Resolved;
        a.ends_at_ms = Some(now);
    }
    r.dedup_key.push_str("-resolved");
    r
}

/// A port nothing listens on right now (bind 0, read it, close).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// A CA and a server certificate for 127.0.0.1 and localhost that it signed.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `None` when openssl is missing outside CI.
pub fn test_ca() -> Option<TestCa> {
    super::common::require_tool("openssl")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=automon test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca_args);
    let mut csr_args = vec!["req"];
    csr_args.extend(ec);
    csr_args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(d, &csr_args);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    Some(TestCa {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
        dir,
    })
}

/// A running `smtp_server.py serve`; killed on drop.
pub struct Smtp {
    pub child: Child,
    pub port: u16,
    pub out: tempfile::TempDir,
}

impl Smtp {
    pub fn start(options: &[&str]) -> Smtp {
        let out = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("serve")
            .arg(out.path())
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read READY");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("smtp_server.py said {line:?}"));
        Smtp { child, port, out }
    }

    /// The messages received so far, as `smtp_server.py` describes them, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("read out dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a raw message file with Python's email package, as `smtp_server.py` does.
pub fn parse_message(path: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .arg("parse")
        .arg(path)
        .output()
        .expect("parse message");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}
