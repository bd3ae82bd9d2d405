//! The email receiver against a real SMTP server: Debian's python3-aiosmtpd, started by each
//! test on loopback. Messages are checked as Python's email package parses them (headers,
//! multipart structure, decoded bodies), and failures by how they are classified.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use automon::alert::notify::email::EmailNotifier;
use automon::alert::notify::{Notifier, NotifyError};
use automon::config::receivers::{EmailConfig, SmtpTls};
use automon::config::HumanDuration;
use support::{sample, Smtp};

fn config(port: u16, tls: SmtpTls) -> EmailConfig {
    EmailConfig {
        smarthost: format!("127.0.0.1:{port}"),
        tls,
        from: "automon <automon@web1.example.com>".into(),
        to: vec![
            "oncall@example.com".into(),
            "Ops Team <ops@example.com>".into(),
        ],
        hello: Some("web1.example.com".into()),
        timeout: HumanDuration(Duration::from_secs(10)),
        ..EmailConfig::default()
    }
}

fn send(c: &EmailConfig) -> Result<String, NotifyError> {
    let n = EmailNotifier::new(c).expect("build notifier");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(n.send(&sample())).map(|d| d.detail)
}

/// What every received sample must look like, whatever the transport.
fn check_message(m: &serde_json::Value) {
    assert_eq!(m["subject"], "[FIRING:2] HostDiskFull on web1");
    assert_eq!(m["from"], "automon <automon@web1.example.com>");
    assert_eq!(m["to"], "oncall@example.com, Ops Team <ops@example.com>");
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_ne!(m["date"], "None");
    assert_ne!(m["message_id"], "None");
    assert_eq!(m["mail_from"], "automon@web1.example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "ops@example.com"])
    );
    let parts = m["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{m:#}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[1]["content_type"], "text/html");
    let text = parts[0]["content"].as_str().unwrap();
    for want in [
        "2 firing, 0 resolved on web1",
        "[FIRING] HostDiskFull",
        "summary: Filesystem on sda1 is 97% full",
        "summary: Filesystem on sdb1 is 97% full",
        "value: 970m",
        "labels: device=\"sdb1\", mountpoint=\"/srv\", severity=\"critical\"",
        "link: http://web1:9787/api/v1/query?query=node_filesystem_avail_bytes",
        "started: ",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    let html = parts[1]["content"].as_str().unwrap();
    assert!(
        html.contains("<h2>[FIRING:2] HostDiskFull on web1</h2>"),
        "{html}"
    );
    assert!(html.contains(
        "<a href=\"http://web1:9787/api/v1/query?query=node_filesystem_avail_bytes\">query</a>"
    ));
    assert_eq!(html.matches("<table").count(), 2);
}

fn wait_messages(s: &Smtp, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = s.messages();
        if m.len() >= n || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plain_smtp_to_aiosmtpd_cli() {
    if !support::have_aiosmtpd() {
        return;
    }
    // The stock command line an operator would use, delivering into a Maildir.
    let maildir = tempfile::tempdir().unwrap();
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir(maildir.path().join(sub)).unwrap();
    }
    let port = support::free_port();
    let mut child = Command::new(support::PYTHON)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    support::wait_port(port, &mut child);
    let result = send(&config(port, SmtpTls::None));
    let new_dir = maildir.path().join("new");
    let files: Vec<PathBuf> = std::fs::read_dir(&new_dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let detail = result.expect("delivered");
    assert!(detail.starts_with("SMTP 250 "), "{detail}");
    assert_eq!(files.len(), 1, "{files:?}");
    let mut m = support::parse_message(&files[0]);
    // The Maildir keeps no envelope; these are what the message itself says.
    m["mail_from"] = "automon@web1.example.com".into();
    m["rcpt_tos"] = serde_json::json!(["oncall@example.com", "ops@example.com"]);
    check_message(&m);
}

#[test]
fn starttls_with_private_ca_and_auth() {
    if !support::have_aiosmtpd() {
        return;
    }
    let Some(ca) = support::test_ca() else { return };
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let s = Smtp::start(&["--starttls", cert, key, "--auth", "automon:pa55 word"]);
    let mut c = config(s.port, SmtpTls::Starttls);
    c.ca_file = Some(ca.ca.clone());
    c.username = Some("automon".into());
    c.password = Some("pa55 word".into());
    let detail = send(&c).expect("delivered");
    assert!(
        detail.starts_with("SMTP 250 2.0.0 Ok: queued as automon-test-1"),
        "{detail}"
    );
    let m = wait_messages(&s, 1);
    assert_eq!(m.len(), 1);
    check_message(&m[0]);
    assert_eq!(m[0]["tls"], true);
    assert_eq!(m[0]["login"], "automon");
    assert_eq!(m[0]["helo"], "web1.example.com");

    // A wrong password is refused with 535: permanent, retrying cannot help.
    c.password = Some("wrong".into());
    let e = send(&c).unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("535"), "{e}");
    assert_eq!(s.messages().len(), 1);
}

#[test]
fn starttls_refuses_an_unknown_ca_unless_told_not_to_verify() {
    if !support::have_aiosmtpd() {
        return;
    }
    let Some(ca) = support::test_ca() else { return };
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let s = Smtp::start(&["--starttls", cert, key]);
    let mut c = config(s.port, SmtpTls::Starttls);
    let e = send(&c).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(s.messages().is_empty());
    c.insecure_skip_verify = true;
    send(&c).expect("delivered without verification");
    assert_eq!(wait_messages(&s, 1).len(), 1);
}

#[test]
fn implicit_tls() {
    if !support::have_aiosmtpd() {
        return;
    }
    let Some(ca) = support::test_ca() else { return };
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let s = Smtp::start(&["--tls", cert, key]);
    let mut c = config(s.port, SmtpTls::Tls);
    c.ca_file = Some(ca.ca.clone());
    let detail = send(&c).expect("delivered");
    assert!(detail.starts_with("SMTP 250 "), "{detail}");
    let m = wait_messages(&s, 1);
    check_message(&m[0]);
    assert_eq!(m[0]["tls"], true);
}

#[test]
fn smtp_replies_are_classified() {
    if !support::have_aiosmtpd() {
        return;
    }
    let s = Smtp::start(&["--reject", "550", "5.1.1 No such mailbox"]);
    let e = send(&config(s.port, SmtpTls::None)).unwrap_err();
    assert!(matches!(e, NotifyError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("No such mailbox"), "{e}");
    drop(s);

    let s = Smtp::start(&["--reject", "451", "4.3.0 Try again later"]);
    let e = send(&config(s.port, SmtpTls::None)).unwrap_err();
    assert!(matches!(e, NotifyError::Retryable(_)), "{e:?}");
    assert!(e.to_string().contains("Try again later"), "{e}");
    drop(s);

    // Nothing listening: worth a retry.
    let e = send(&config(support::free_port(), SmtpTls::None)).unwrap_err();
    assert!(matches!(e, NotifyError::Retryable(_)), "{e:?}");
}

#[test]
fn resolved_only_is_skipped_when_send_resolved_is_off() {
    if !support::have_aiosmtpd() {
        return;
    }
    let s = Smtp::start(&[]);
    let mut c = config(s.port, SmtpTls::None);
    c.send_resolved = false;
    let n = EmailNotifier::new(&c).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let d = rt.block_on(n.send(&support::resolved(&sample()))).unwrap();
    assert!(d.detail.starts_with("not sent"), "{}", d.detail);
    assert!(s.messages().is_empty());
    c.send_resolved = true;
    let n = EmailNotifier::new(&c).unwrap();
    rt.block_on(n.send(&support::resolved(&sample()))).unwrap();
    let m = wait_messages(&s, 1);
    assert_eq!(m[0]["subject"], "[RESOLVED] HostDiskFull on web1");
}
