//! The `kubernetes` collector against HTTPS servers that stand in for the kubelet and the API
//! server (neither can run here). They serve real recorded payloads from
//! `tests/fixtures/k8s/` (see its PROVENANCE.md) on the real paths, with certificates from a
//! CA generated per test, and answer 401 unless the request carries the expected bearer
//! token. Output is compared with `tests/fixtures/k8s/golden.prom` (regenerate after an
//! intended change with `UPDATE_GOLDEN=1 cargo test --test kubernetes` and review the diff)
//! and linted by `promtool check metrics`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automon::collector::kubernetes::{summary, Environment, KubernetesCollector};
use automon::collector::Collector;
use automon::config::KubernetesConfig;
use automon::model::render_family;

const NODE: &str = "datagen-1-35";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.test-token";

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("k8s").join(name)
}

/// Distinct CA names, so that two test CAs are told apart by name as real ones are.
fn next_id() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A CA and a server certificate it signed for 127.0.0.1.
struct Pki {
    ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("automon test CA {}", next_id()),
    );
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

/// An HTTPS server on 127.0.0.1 serving fixed bodies by exact path and query.
struct Server {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(pki: &Pki, routes: HashMap<String, Vec<u8>>) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(
                    pki.cert_der.clone(),
                )],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tokens = Arc::new(Mutex::new(vec![TOKEN.to_owned()]));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, tokens, stop) = (seen.clone(), tokens.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(tcp) = conn else { continue };
                    // A client that gives up on the certificate closes the connection; that
                    // is an expected outcome of some tests, not a server failure.
                    let _ = handle(tcp, &config, &routes, &seen, &tokens);
                }
            })
        };
        Server {
            addr,
            seen,
            tokens,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    routes: &HashMap<String, Vec<u8>>,
    seen: &Mutex<Vec<Seen>>,
    tokens: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        authorization: authorization.clone(),
    });
    let authorized = tokens
        .lock()
        .unwrap()
        .iter()
        .any(|t| authorization.as_deref() == Some(&format!("Bearer {t}")));
    let (status, body): (&str, Vec<u8>) = if !authorized {
        (
            "401 Unauthorized",
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_vec(),
        )
    } else {
        match routes.get(&path) {
            Some(b) => ("200 OK", b.clone()),
            None => (
                "404 Not Found",
                format!(r#"{{"kind":"Status","message":"no route for {path}","code":404}}"#)
                    .into_bytes(),
            ),
        }
    };
    write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    tls.write_all(&body)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn kubelet_routes() -> HashMap<String, Vec<u8>> {
    HashMap::from([(
        "/stats/summary".to_owned(),
        std::fs::read(fixture("kubelet_stats_summary_k8s-1.35_minikube.json")).unwrap(),
    )])
}

fn api_routes() -> HashMap<String, Vec<u8>> {
    HashMap::from([
        (
            format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}"),
            std::fs::read(fixture("kubelet_pods_k8s-1.35_minikube.json")).unwrap(),
        ),
        (
            format!("/api/v1/nodes/{NODE}"),
            std::fs::read(fixture("node_k8s-1.35_minikube.json")).unwrap(),
        ),
    ])
}

/// A service-account directory (token + ca.crt) as the kubelet mounts it into a pod.
struct ServiceAccount {
    dir: tempfile::TempDir,
}

impl ServiceAccount {
    fn new(ca_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        ServiceAccount { dir }
    }
    fn token(&self) -> PathBuf {
        self.dir.path().join("token")
    }
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

/// In-cluster configuration: the API server from the environment values, as in a pod.
fn in_cluster(
    sa: &ServiceAccount,
    api: &Server,
    kubelet: &Server,
) -> (KubernetesConfig, Environment) {
    let cfg = KubernetesConfig {
        enabled: true,
        token_file: Some(sa.token()),
        ca_file: Some(sa.ca()),
        kubelet_url: Some(kubelet.url()),
        ..Default::default()
    };
    let env = Environment {
        node_name: Some(NODE.to_owned()),
        service_host: Some("127.0.0.1".to_owned()),
        service_port: Some(api.addr.port().to_string()),
        hostname: Some("not-the-node".to_owned()),
    };
    (cfg, env)
}

fn render(families: &[automon::model::Family]) -> String {
    let mut out = String::new();
    for f in families {
        render_family(&mut out, f);
    }
    out
}

fn collector(cfg: &KubernetesConfig, env: Environment) -> KubernetesCollector {
    KubernetesCollector::with_environment(cfg, Duration::from_secs(10), env).unwrap()
}

#[test]
fn recorded_payloads_give_the_golden_metrics() {
    let pki = pki();
    let kubelet = Server::start(&pki, kubelet_routes());
    let api = Server::start(&pki, api_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    let (cfg, env) = in_cluster(&sa, &api, &kubelet);
    let collection = collector(&cfg, env).collect().unwrap();
    assert_eq!(collection.note, None);
    let text = render(&collection.families);

    let golden = fixture("golden.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert!(
        text == want,
        "output differs from {} (UPDATE_GOLDEN=1 to regenerate, then review the diff)",
        golden.display()
    );
    common::promtool_check_metrics(&text);

    // The real paths, each with the service account's token.
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert_eq!(
        kubelet.seen(),
        vec![Seen {
            path: "/stats/summary".into(),
            authorization: bearer.clone()
        }]
    );
    assert_eq!(
        api.seen(),
        vec![
            Seen {
                path: format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}"),
                authorization: bearer.clone()
            },
            Seen {
                path: format!("/api/v1/nodes/{NODE}"),
                authorization: bearer
            },
        ]
    );
}

/// Values checked by hand against the recorded JSON, so the golden file is not the only
/// judge of the conversion.
#[test]
fn hand_checked_values() {
    let pki = pki();
    let kubelet = Server::start(&pki, kubelet_routes());
    let api = Server::start(&pki, api_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    let (cfg, env) = in_cluster(&sa, &api, &kubelet);
    let text = render(&collector(&cfg, env).collect().unwrap().families);
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} missing"))
            .parse::<f64>()
            .unwrap()
    };
    // node.cpu.usageCoreNanoSeconds 62148052000, usageNanoCores 573081903.
    assert_eq!(
        value(r#"node_cpu_usage_seconds_total{node="datagen-1-35"}"#),
        62.148052
    );
    assert_eq!(
        value(r#"automon_kube_node_cpu_usage_cores{node="datagen-1-35"}"#),
        0.573081903
    );
    // capacity memory 8024304Ki, cpu "14", ephemeral-storage 954976684Ki.
    assert_eq!(
        value(r#"kube_node_status_capacity{node="datagen-1-35",resource="memory",unit="byte"}"#),
        8024304.0 * 1024.0
    );
    assert_eq!(
        value(r#"kube_node_status_allocatable{node="datagen-1-35",resource="cpu",unit="core"}"#),
        14.0
    );
    assert_eq!(
        value(r#"kube_node_status_condition{condition="Ready",node="datagen-1-35",status="true"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"kube_node_status_condition{condition="MemoryPressure",node="datagen-1-35",status="false"}"#
        ),
        1.0
    );
    // e2e-container-creating: 2 restarts, last terminated Completed.
    assert_eq!(
        value(
            r#"kube_pod_container_status_restarts_total{container="alpine",namespace="scraper",pod="e2e-container-creating"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            r#"kube_pod_container_status_last_terminated_reason{container="alpine",namespace="scraper",pod="e2e-container-creating",reason="Completed"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"kube_pod_status_phase{namespace="scraper",phase="Failed",pod="e2e-failjob-64h4g"}"#
        ),
        1.0
    );
    // kube-controller-manager: container usageCoreNanoSeconds 1877547000, workingSet 66174976.
    assert_eq!(
        value(
            r#"container_cpu_usage_seconds_total{container="kube-controller-manager",namespace="kube-system",pod="kube-controller-manager-datagen-1-35"}"#
        ),
        1.877547
    );
    assert_eq!(
        value(
            r#"container_memory_working_set_bytes{container="kube-controller-manager",namespace="kube-system",pod="kube-controller-manager-datagen-1-35"}"#
        ),
        66174976.0
    );
    // Pod PSI: cpu some total 171305 us... of the container; the pod's is 168398 (full).
    assert_eq!(
        value(
            r#"automon_kube_pod_pressure_cpu_stalled_seconds_total{namespace="kube-system",pod="kube-controller-manager-datagen-1-35"}"#
        ),
        0.168398
    );
    // No pod UIDs anywhere.
    assert!(!text.contains("uid="));
    assert!(!text.contains("e9afcd8d3c942968802548f9a24d942a"));
}

#[test]
fn rotated_token_is_used_at_the_next_collection() {
    let pki = pki();
    let kubelet = Server::start(&pki, kubelet_routes());
    let api = Server::start(&pki, api_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    let (cfg, env) = in_cluster(&sa, &api, &kubelet);
    let mut c = collector(&cfg, env);
    c.collect().unwrap();

    // The kubelet rotates the projected token; the servers accept only the new one from now.
    let rotated = "rotated-token-with-another-length";
    for s in [&kubelet, &api] {
        *s.tokens.lock().unwrap() = vec![rotated.to_owned()];
    }
    std::fs::write(sa.token(), rotated).unwrap();
    c.collect().unwrap();
    let last = kubelet.seen().pop().unwrap();
    assert_eq!(last.authorization, Some(format!("Bearer {rotated}")));
}

#[test]
fn a_rejected_token_fails_the_collection_with_the_servers_message() {
    let pki = pki();
    let kubelet = Server::start(&pki, kubelet_routes());
    let api = Server::start(&pki, api_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    std::fs::write(sa.token(), "wrong").unwrap();
    let (cfg, env) = in_cluster(&sa, &api, &kubelet);
    let e = collector(&cfg, env).collect().unwrap_err().to_string();
    assert!(
        e.contains("kubelet") && e.contains("HTTP 401: Unauthorized"),
        "{e}"
    );
    assert!(e.contains("API server"), "{e}");
}

#[test]
fn kubelet_certificate_from_another_ca_is_refused_unless_opted_out() {
    let cluster = pki();
    // A kubelet with its own self-signed CA (the kubeadm/minikube default without
    // serverTLSBootstrap): the cluster CA does not vouch for it.
    let own = pki();
    let kubelet = Server::start(&own, kubelet_routes());
    let api = Server::start(&cluster, api_routes());
    let sa = ServiceAccount::new(&cluster.ca_pem);
    let (mut cfg, env) = in_cluster(&sa, &api, &kubelet);

    let e = collector(&cfg, env.clone())
        .collect()
        .unwrap_err()
        .to_string();
    assert!(e.contains("kubelet") && e.contains("certificate"), "{e}");
    assert!(e.contains("kubelet_insecure_skip_tls_verify"), "{e}");
    assert!(!e.contains("API server"), "the API server was fine: {e}");
    // The token never reached a server that could not prove who it is.
    assert!(kubelet.seen().is_empty());

    // Its CA given explicitly: verified and accepted.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("kubelet-ca.crt");
    std::fs::write(&ca, &own.ca_pem).unwrap();
    cfg.kubelet_ca_file = Some(ca);
    collector(&cfg, env.clone()).collect().unwrap();

    // The explicit opt-out.
    cfg.kubelet_ca_file = None;
    cfg.kubelet_insecure_skip_tls_verify = true;
    collector(&cfg, env).collect().unwrap();
}

#[test]
fn unreachable_kubelet_fails_the_collection() {
    let pki = pki();
    let api = Server::start(&pki, api_routes());
    let kubelet = Server::start(&pki, kubelet_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    let (mut cfg, env) = in_cluster(&sa, &api, &kubelet);
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    cfg.kubelet_url = Some(format!("https://{closed}"));
    let e = collector(&cfg, env).collect().unwrap_err().to_string();
    assert!(
        e.contains("kubelet") && e.contains(&closed.to_string()),
        "{e}"
    );
}

#[test]
fn kubeconfig_with_token_and_ca_file() {
    let pki = pki();
    let api = Server::start(&pki, api_routes());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: ca.crt\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: automon\nusers:\n- name: automon\n  user:\n    token: {TOKEN}\n",
            api.url()
        ),
    )
    .unwrap();
    let cfg = KubernetesConfig {
        enabled: true,
        node_name: Some(NODE.to_owned()),
        kubeconfig: Some(kubeconfig),
        kubelet_enabled: false,
        ..Default::default()
    };
    let collection = collector(&cfg, Environment::default()).collect().unwrap();
    let text = render(&collection.families);
    assert!(text.contains("kube_pod_status_phase{"), "{text}");
    assert!(!text.contains("container_cpu_usage_seconds_total"));
}

/// Every block of the Summary is optional: removing any one of them, at any depth of the
/// node and of a pod, still converts (with fewer series) and never fails.
#[test]
fn summary_with_any_block_missing_still_converts() {
    let text =
        std::fs::read_to_string(fixture("kubelet_stats_summary_k8s-1.35_minikube.json")).unwrap();
    let full: serde_json::Value = serde_json::from_str(&text).unwrap();
    let count = |v: &serde_json::Value| {
        let s: summary::Summary = serde_json::from_value(v.clone()).unwrap();
        let mut out = automon::collector::kubernetes::metrics::Families::new();
        summary::summary_families(&s, NODE, &mut out);
        out.into_vec()
            .iter()
            .map(|f| f.samples.len())
            .sum::<usize>()
    };
    let all = count(&full);
    let mut paths: Vec<Vec<String>> = Vec::new();
    fn walk(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                path.push(k.clone());
                out.push(path.clone());
                walk(child, path, out);
                path.pop();
            }
        }
    }
    walk(&full["node"], &mut vec!["node".into()], &mut paths);
    walk(
        &full["pods"][0],
        &mut vec!["pods".into(), "0".into()],
        &mut paths,
    );
    assert!(paths.len() > 50, "{}", paths.len());
    for path in &paths {
        let mut v = full.clone();
        let mut target = &mut v;
        for p in &path[..path.len() - 1] {
            target = match p.parse::<usize>() {
                Ok(i) => &mut target[i],
                Err(_) => &mut target[p.as_str()],
            };
        }
        target
            .as_object_mut()
            .unwrap()
            .remove(&path[path.len() - 1]);
        assert!(count(&v) <= all, "{path:?}");
    }
    assert_eq!(count(&serde_json::json!({})), 0);
    assert!(
        count(&serde_json::json!({"pods": [{"podRef": {"name": "p", "namespace": "n"}}]})) == 0
    );
}

/// The real daemon with the collector on: its metrics reach /metrics and /health says ok;
/// with the kubelet unreachable, /health marks only this collector failed and the host
/// collectors go on.
#[test]
fn daemon_serves_kubernetes_metrics_and_survives_an_unreachable_kubelet() {
    let pki = pki();
    let kubelet = Server::start(&pki, kubelet_routes());
    let api = Server::start(&pki, api_routes());
    let sa = ServiceAccount::new(&pki.ca_pem);
    let config = |kubelet_url: &str| {
        format!(
            "[collectors.kubernetes]\nenabled = true\napi_url = \"{}\"\ntoken_file = {:?}\nca_file = {:?}\nkubelet_url = \"{kubelet_url}\"\n",
            api.url(),
            sa.token(),
            sa.ca(),
        )
    };
    {
        let d = common::start_with_env(&config(&kubelet.url()), &[("NODE_NAME", NODE)]);
        let metrics = d.metrics();
        assert!(metrics.contains(
            r#"kube_node_status_condition{condition="Ready",node="datagen-1-35",status="true"} 1"#
        ));
        assert!(metrics.contains("container_memory_working_set_bytes{"));
        assert!(metrics.contains(r#"automon_collector_success{collector="kubernetes"} 1"#));
        let (_, health) = d.health();
        assert_eq!(
            health["collectors"]["kubernetes"]["status"], "ok",
            "{health}"
        );
    }
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = common::start_with_env(
        &config(&format!("https://{closed}")),
        &[("NODE_NAME", NODE)],
    );
    let (code, health) = d.health();
    assert_eq!(
        health["collectors"]["kubernetes"]["status"], "failing",
        "{health}"
    );
    let error = health["collectors"]["kubernetes"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("kubelet"), "{health}");
    assert_eq!(health["collectors"]["cpu"]["status"], "ok", "{health}");
    assert_eq!(
        code, 200,
        "one failed collector degrades, it does not fail the daemon: {health}"
    );
    let metrics = d.metrics();
    assert!(metrics.contains(r#"automon_collector_success{collector="kubernetes"} 0"#));
    assert!(metrics.contains("node_cpu_seconds_total{"));
    assert!(
        !metrics.contains("kube_pod_status_phase"),
        "values of a failed run are not served"
    );
}
