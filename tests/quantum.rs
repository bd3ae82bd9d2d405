//! The quantum collector in the real daemon, against a real HTTPS endpoint: a TLS server with a
//! certificate from a CA generated here serves recorded IBM calibration documents
//! (`tests/fixtures/quantum`, see its README) and checks the bearer token. A device quantum
//! computers publish cannot run here; this endpoint stands in for the vendor API.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// A test CA and a server certificate for 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "automon test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_der: leaf.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    }
}

/// What the server saw: one `Authorization` header value (or "") per request.
type Seen = Arc<Mutex<Vec<String>>>;

/// Serves `body` at `GET /v1/props` over HTTPS to requests bearing `token`; 401 otherwise.
fn serve(pki: &Pki, token: &str, body: Vec<u8>) -> (String, Seen) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.cert_der.clone().into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/v1/props", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let expected = format!("Bearer {token}");
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut request_line = String::new();
                let mut auth = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {
                            if let Some((k, v)) = line.split_once(':') {
                                if k.eq_ignore_ascii_case("authorization") {
                                    auth = v.trim().to_string();
                                }
                            }
                        }
                    }
                }
                seen.lock().unwrap().push(auth.clone());
                let (status, payload): (&str, &[u8]) =
                    if !request_line.starts_with("GET /v1/props ") {
                        ("404 Not Found", b"not found")
                    } else if auth != expected {
                        ("401 Unauthorized", b"bad token")
                    } else {
                        ("200 OK", &body)
                    };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(payload);
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.conn.complete_io(&mut tls.sock);
            }
        });
    }
    (url, seen)
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join("quantum").join(name)
}

#[test]
fn https_and_file_devices_in_the_daemon() {
    let pki = pki();
    let (url, seen) = serve(
        &pki,
        "s3cret",
        std::fs::read(fixture("props_hanoi.json")).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let lab = dir.path().join("lab.json");
    std::fs::copy(fixture("props_burlington.json"), &lab).unwrap();

    let d = start(&format!(
        "[collectors.quantum]\nenabled = true\ninterval = \"1s\"\n\n\
         [[collectors.quantum.devices]]\nname = \"hanoi\"\nurl = {url:?}\n\
         bearer_token_file = {:?}\nca_file = {:?}\n\n\
         [[collectors.quantum.devices]]\nname = \"lab\"\npath = {:?}\n",
        token.display().to_string(),
        ca.display().to_string(),
        lab.display().to_string(),
    ));
    let body = d.metrics();
    // Hand-checked: hanoi qubit 5 T1 is 91.54500172086323 us; burlington qubit 0 T1 is
    // 101.25901768767605 "µs".
    let t1 = sample_value(
        &body,
        "automon_quantum_qubit_t1_seconds{device=\"hanoi\",qubit=\"5\"}",
    )
    .unwrap_or_else(|| panic!("no hanoi T1 in\n{body}"));
    assert!((t1 - 91.54500172086323e-6).abs() < 1e-18, "{t1}");
    let t1 = sample_value(
        &body,
        "automon_quantum_qubit_t1_seconds{device=\"lab\",qubit=\"0\"}",
    )
    .unwrap();
    assert!((t1 - 101.25901768767605e-6).abs() < 1e-18, "{t1}");
    assert_eq!(
        sample_value(
            &body,
            "automon_quantum_device_gates_non_operational{device=\"hanoi\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample_value(
            &body,
            "automon_quantum_calibration_timestamp_seconds{device=\"hanoi\"}"
        ),
        Some(1_740_600_794.0)
    );
    promtool_check_metrics(&body);
    assert!(seen.lock().unwrap().iter().all(|a| a == "Bearer s3cret"));

    // The token rotates on disk to one the server refuses: the next fetch uses it, the device
    // goes down with the reason in /health and its values leave /metrics.
    std::fs::write(&token, "expired").unwrap();
    assert!(
        d.eventually(Duration::from_secs(10), || {
            let (_, h) = d.health();
            h["collectors"]["quantum"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("hanoi: GET") && n.contains("401"))
        }),
        "401 not reported: {:?}",
        d.health()
    );
    let body = d.metrics();
    assert!(!body.contains("automon_quantum_qubit_t1_seconds{device=\"hanoi\""));
    assert_eq!(
        sample_value(&body, "automon_quantum_up{device=\"hanoi\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample_value(&body, "automon_quantum_up{device=\"lab\"}"),
        Some(1.0)
    );
    assert!(seen.lock().unwrap().iter().any(|a| a == "Bearer expired"));

    // The lab file is truncated mid-write as well: every device fails, so does the collector.
    std::fs::write(&lab, "{\"backend_name\": \"ibmq_burl").unwrap();
    assert!(
        d.eventually(Duration::from_secs(10), || {
            let (_, h) = d.health();
            let q = &h["collectors"]["quantum"];
            q["status"] == "failing"
                && q["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("lab: malformed document"))
        }),
        "malformed document not reported: {:?}",
        d.health()
    );
    assert!(!d.metrics().contains("automon_quantum_qubit"));
    assert_eq!(
        sample_value(
            &d.metrics(),
            "automon_collector_success{collector=\"quantum\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = pki();
    let (url, seen) = serve(&pki, "t", b"{}".to_vec());
    let d = start(&format!(
        "[collectors.quantum]\nenabled = true\ninterval = \"1s\"\n\n\
         [[collectors.quantum.devices]]\nname = \"q\"\nurl = {url:?}\n"
    ));
    let (_, h) = d.health();
    let q = &h["collectors"]["quantum"];
    assert_eq!(q["status"], "failing", "{h}");
    let e = q["last_error"].as_str().unwrap();
    assert!(
        e.contains("q: GET") && e.to_lowercase().contains("certificate"),
        "{e}"
    );
    // The handshake failed before any request was sent.
    assert!(seen.lock().unwrap().is_empty());
}

/// The example rules in `config/rules/quantum.toml`: every expression is accepted by
/// automon's query engine and by `promtool check rules`, and evaluated over a week of
/// calibrations built from the real hanoi document, the ones that should fire do.
#[test]
fn example_rules_check_and_fire_on_real_calibrations() {
    use automon::query::{Engine, Limits, MemorySource, Value};

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/rules/quantum.toml");
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rules = doc["rules"].as_array().unwrap();
    let engine = Engine::new(Limits::default());
    let mut json_rules = Vec::new();
    let mut exprs = std::collections::BTreeMap::new();
    for r in rules {
        let name = r["name"].as_str().unwrap();
        let expr = r["expr"].as_str().unwrap();
        engine
            .prepare(expr)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for key in ["for", "labels", "annotations"] {
            assert!(r.get(key).is_some(), "{name} has no {key}");
        }
        json_rules.push(serde_json::json!({
            "alert": name,
            "expr": expr,
            "for": r["for"].as_str().unwrap(),
            "labels": serde_json::to_value(&r["labels"]).unwrap(),
            "annotations": serde_json::to_value(&r["annotations"]).unwrap(),
        }));
        exprs.insert(name.to_string(), expr.to_string());
    }
    if let Some(promtool) = require_tool("promtool") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("quantum.rules.json");
        let groups = serde_json::json!({"groups": [{"name": "quantum", "rules": json_rules}]});
        std::fs::write(&file, groups.to_string()).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A week of hourly collections of the hanoi document; in the last hour T1 halves.
    let text = automon::collector::quantum::render_document(
        "hanoi",
        &std::fs::read(fixture("props_hanoi.json")).unwrap(),
        1_740_600_794.0 + 3600.0,
    )
    .unwrap();
    let families = automon::exposition::parse_text(&text).unwrap();
    let hour = 3_600_000;
    let end = 1_740_600_794_000 + 8 * 24 * hour;
    let mut src = MemorySource::new();
    for f in &families {
        for s in &f.samples {
            let mut labels = s.labels.clone();
            labels.push(("__name__".into(), s.name.clone()));
            labels.sort();
            for h in (0..8 * 24).rev() {
                let t = end - h * hour;
                let v = match s.name.as_str() {
                    "automon_quantum_device_t1_median_seconds" if h == 0 => s.value / 2.0,
                    // The same document all week: its age grows with the clock.
                    "automon_quantum_calibration_age_seconds" => {
                        (t - 1_740_600_794_000) as f64 / 1e3
                    }
                    _ => s.value,
                };
                src.add_owned(labels.clone(), t, v);
            }
        }
    }
    let fired = |name: &str| -> Vec<(String, f64)> {
        match engine.instant(&src, &exprs[name], end).unwrap() {
            Value::Vector(v) => v
                .iter()
                .map(|s| {
                    let device = s
                        .labels
                        .iter()
                        .find(|(k, _)| k == "device")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (device, s.v)
                })
                .collect(),
            other => panic!("{name}: {other:?}"),
        }
    };
    // hanoi has two cx gates with gate_error 1.
    assert_eq!(fired("QuantumBrokenCoupler"), [("hanoi".to_string(), 2.0)]);
    assert_eq!(fired("QuantumCoherenceT1Dropped").len(), 1);
    assert!(fired("QuantumCoherenceT2Dropped").is_empty());
    // Median cx error 0.63% is under the 2% threshold.
    assert!(fired("QuantumTwoQubitErrorHigh").is_empty());
    // No new document all week: at `end` the calibration is 8 days old.
    assert_eq!(fired("QuantumCalibrationStale").len(), 1);
    assert!(fired("QuantumCalibrationFeedDown").is_empty());
}
