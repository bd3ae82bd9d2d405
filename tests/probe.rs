//! The probe collector against real servers started here: a plain HTTP/1.1 server on a std
//! `TcpListener` (200, 500, chunked, one that answers too late), a closed port, and an HTTPS
//! server (rustls) whose CA and certificate are generated here with known expiry dates. The
//! configuration goes through the real loader; the output is linted with promtool.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use automon::collector::probe::ProbeCollector;
use automon::collector::{Collection, Collector};

/// Leaf expiry (2030-06-01) and CA expiry (2029-01-15), Unix seconds; the CA is earlier, so
/// the chain's earliest notAfter is the CA's.
const LEAF_NOT_AFTER: i64 = 1_906_502_400;
const CA_NOT_AFTER: i64 = 1_863_129_600;
const _: () = assert!(CA_NOT_AFTER < LEAF_NOT_AFTER);

fn read_head(stream: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn respond(path: &str) -> Vec<u8> {
    let (status, body) = match path {
        "/ok" => ("200 OK", "status: all ok"),
        "/fail" => ("500 Internal Server Error", "broken"),
        "/chunked" => {
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                     4\r\nheal\r\n3\r\nthy\r\n0\r\n\r\n"
                .to_vec()
        }
        _ => ("404 Not Found", "no"),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Plain HTTP: `/slow` sends nothing for 30 s, far beyond any probe timeout here.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let head = read_head(&mut stream);
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                if path == "/slow" {
                    std::thread::sleep(Duration::from_secs(30));
                }
                let _ = stream.write_all(&respond(&path));
            });
        }
    });
    addr
}

struct Pki {
    ca_pem: String,
    chain: Vec<Vec<u8>>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "automon probe test CA");
    ca_params.not_after = rcgen::date_time_ymd(2029, 1, 15);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf_params.not_after = rcgen::date_time_ymd(2030, 6, 1);
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().to_vec(), ca.der().to_vec()],
        key_der: leaf_key.serialize_der(),
    }
}

/// HTTPS answering every request like `/ok`, presenting leaf and CA.
fn https_server(pki: &Pki) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.iter().map(|c| c.clone().into()).collect(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let _ = read_head(&mut tls);
                let _ = tls.write_all(&respond("/ok"));
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn value(c: &Collection, family: &str, probe: &str) -> Option<f64> {
    let f = c.families.iter().find(|f| f.name == family)?;
    f.samples
        .iter()
        .find(|s| s.labels.iter().any(|(k, v)| k == "probe" && v == probe))
        .map(|s| s.value)
}

#[test]
fn probes_against_real_servers() {
    let http = http_server();
    let pki = pki();
    let https = https_server(&pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let refused = closed_port();
    // Keep a listener alive for the TCP success case.
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_addr = open.local_addr().unwrap();

    let toml = format!(
        r#"
[collectors.probe]
timeout = "5s"

[[collectors.probe.targets]]
name = "ok"
kind = "http"
url = "http://{http}/ok"
body_regex = "all ok"

[[collectors.probe.targets]]
name = "mismatch"
kind = "http"
url = "http://{http}/ok"
body_regex = "^nope"

[[collectors.probe.targets]]
name = "err500"
kind = "http"
url = "http://{http}/fail"

[[collectors.probe.targets]]
name = "err500-expected"
kind = "http"
url = "http://{http}/fail"
expected_status = [500, 503]

[[collectors.probe.targets]]
name = "chunked"
kind = "http"
url = "http://{http}/chunked"
body_regex = "^healthy$"

[[collectors.probe.targets]]
name = "slow"
kind = "http"
url = "http://{http}/slow"
timeout = "500ms"

[[collectors.probe.targets]]
name = "refused"
kind = "tcp"
address = "{refused}"

[[collectors.probe.targets]]
name = "open"
address = "{open_addr}"

[[collectors.probe.targets]]
name = "tls-trusted"
kind = "http"
url = "https://{https}/"
ca_file = "{ca}"
body_regex = "all ok"

[[collectors.probe.targets]]
name = "tls-untrusted"
kind = "http"
url = "https://{https}/"

[[collectors.probe.targets]]
name = "tls-insecure"
kind = "http"
url = "https://{https}/"
insecure_skip_verify = true
"#,
        ca = ca.display()
    );
    let cfg = automon::config::load::parse_str(&toml, "probe.toml").unwrap();
    assert!(cfg.collectors.probe.is_enabled());
    let specs = automon::collector::build(&cfg).unwrap();
    assert!(specs.iter().any(|s| s.name == "probe"));
    let mut collector = ProbeCollector::new(&cfg.collectors.probe, Duration::from_secs(5)).unwrap();
    let got = collector.collect().unwrap();
    let note = got.note.clone().unwrap_or_default();

    let success = |p: &str| value(&got, "automon_probe_success", p);
    let status = |p: &str| value(&got, "automon_probe_http_status_code", p);
    let expiry = |p: &str| value(&got, "automon_probe_tls_cert_expiry_timestamp_seconds", p);
    for (probe, want) in [
        ("ok", 1.0),
        ("mismatch", 0.0),
        ("err500", 0.0),
        ("err500-expected", 1.0),
        ("chunked", 1.0),
        ("slow", 0.0),
        ("refused", 0.0),
        ("open", 1.0),
        ("tls-trusted", 1.0),
        ("tls-untrusted", 0.0),
        ("tls-insecure", 1.0),
    ] {
        assert_eq!(success(probe), Some(want), "{probe}; note: {note}");
    }
    assert_eq!(status("ok"), Some(200.0));
    assert_eq!(status("mismatch"), Some(200.0));
    assert_eq!(status("err500"), Some(500.0));
    assert_eq!(status("slow"), None);
    assert_eq!(status("tls-trusted"), Some(200.0));
    assert_eq!(expiry("tls-trusted"), Some(CA_NOT_AFTER as f64));
    assert_eq!(expiry("tls-insecure"), Some(CA_NOT_AFTER as f64));
    assert_eq!(expiry("tls-untrusted"), None);
    assert_eq!(expiry("ok"), None);

    // The reasons, one per failing target; the slow one hit its own timeout, not the
    // collection's deadline, so the others were not held up.
    assert!(note.contains("mismatch: body does not match"), "{note}");
    assert!(
        note.contains("err500: HTTP status 500, expected 2xx"),
        "{note}"
    );
    assert!(
        note.contains("slow: timed out waiting for the response"),
        "{note}"
    );
    assert!(note.contains("refused: connecting to"), "{note}");
    assert!(
        note.contains("tls-untrusted: in the TLS handshake"),
        "{note}"
    );
    assert!(!note.contains("ok: "), "{note}");

    let phases: Vec<String> = got
        .families
        .iter()
        .find(|f| f.name == "automon_probe_duration_seconds")
        .unwrap()
        .samples
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .any(|(k, v)| k == "probe" && v == "tls-trusted")
        })
        .flat_map(|s| {
            s.labels
                .iter()
                .filter(|(k, _)| k == "phase")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(
        phases,
        [
            "resolve",
            "connect",
            "tls",
            "processing",
            "transfer",
            "total"
        ]
    );

    let mut text = String::new();
    for f in &got.families {
        automon::model::render_family(&mut text, f);
    }
    common::promtool_check_metrics(&text);
    drop(open);
}

#[test]
fn bad_targets_are_config_errors_with_file_line_and_key() {
    let toml = r#"
[collectors.probe]

[[collectors.probe.targets]]
name = "web"
kind = "http"
url = "ftp://example.org/"

[[collectors.probe.targets]]
name = "db"
kind = "tcp"
address = "localhost"
body_regex = "x"

[[collectors.probe.targets]]
name = "re"
kind = "http"
url = "https://example.org/"
body_regex = "("
expected_status = [42]
"#;
    let err = automon::config::load::parse_str(toml, "probe.toml")
        .unwrap_err()
        .to_string();
    for needle in [
        "probe.toml:7",
        "collectors.probe.targets.0.url",
        "probe.toml:12",
        "collectors.probe.targets.1.address",
        "collectors.probe.targets.1.body_regex",
        "collectors.probe.targets.2.body_regex",
        "collectors.probe.targets.2.expected_status.0",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
}

/// The real daemon: a service the test controls goes down and the probe sees it within a
/// couple of intervals, with the reason in /health, while the collector itself stays healthy.
#[test]
fn daemon_reports_a_service_going_down() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let refused = closed_port();
    let d = common::start(&format!(
        "[collectors.probe]\ninterval = \"1s\"\n\n\
         [[collectors.probe.targets]]\nname = \"svc\"\naddress = \"{addr}\"\n\n\
         [[collectors.probe.targets]]\nname = \"gone\"\naddress = \"{refused}\"\n"
    ));
    let value = |body: &str, key: &str| common::sample_value(body, key);
    assert!(
        d.eventually(Duration::from_secs(10), || {
            value(&d.metrics(), "automon_probe_success{probe=\"svc\"}") == Some(1.0)
        }),
        "svc never up:\n{}",
        d.metrics()
    );
    let body = d.metrics();
    assert_eq!(
        value(&body, "automon_probe_success{probe=\"gone\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&body, "automon_collector_success{collector=\"probe\"}"),
        Some(1.0)
    );
    common::promtool_check_metrics(&body);

    drop(service);
    assert!(
        d.eventually(Duration::from_secs(10), || {
            let (_, h) = d.health();
            value(&d.metrics(), "automon_probe_success{probe=\"svc\"}") == Some(0.0)
                && h["collectors"]["probe"]["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("svc: connecting to") && n.contains("gone: "))
        }),
        "outage not reported: {:?}",
        d.health()
    );
}
