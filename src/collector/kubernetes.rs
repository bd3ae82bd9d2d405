//! `kubernetes` collector: what this node is doing, from the kubelet's Summary API
//! (`/stats/summary`: node, pod and container CPU, memory, filesystems, network, PSI) and from
//! the API server (the pods bound to this node and the node object: phases, restarts, waiting
//! and terminated reasons, requests and limits, conditions, capacity, allocatable).
//!
//! Off by default. Credentials come from the pod's service account or a kubeconfig file
//! ([`client`]); both servers are verified against the cluster CA unless the config opts out
//! for the kubelet (`kubelet_insecure_skip_tls_verify`). If either server cannot be asked the
//! whole collection fails, which marks the collector failed in `/health` and in
//! `automon_collector_success`; nothing else in the daemon notices. Fields missing from an
//! answer are normal (older kubelets omit whole blocks) and only skip their series.

pub mod client;
pub mod metrics;
pub mod objects;
pub mod quantity;
pub mod summary;

use std::time::Duration;

use self::client::{ClusterConfig, Endpoint, KubeError, Trust};
use self::metrics::Families;
use super::{Collection, Collector, CollectorError};
use crate::config::KubernetesConfig;

/// The kubelet's authenticated port.
pub const KUBELET_PORT: u16 = 10250;

/// What the collector takes from the process environment, passed in explicitly so tests can
/// run the in-cluster path without changing the test process's environment.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `NODE_NAME` (set from `spec.nodeName` through the downward API in a DaemonSet).
    pub node_name: Option<String>,
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// The host name, the last resort for the node name.
    pub hostname: Option<String>,
}

impl Environment {
    /// Reads the real environment and host name.
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Environment {
            node_name: var("NODE_NAME"),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok()),
        }
    }
}

/// Connections made on the first collection and kept afterwards.
#[derive(Debug)]
struct Connected {
    cluster: ClusterConfig,
    api: Option<Endpoint>,
    kubelet: Option<Endpoint>,
}

/// Collects the Kubernetes node's usage and state.
#[derive(Debug)]
pub struct KubernetesCollector {
    cfg: KubernetesConfig,
    env: Environment,
    node: String,
    timeout: Duration,
    connected: Option<Connected>,
}

impl KubernetesCollector {
    /// A collector for the process's environment; `timeout` bounds each request.
    pub fn new(cfg: &KubernetesConfig, timeout: Duration) -> Result<Self, CollectorError> {
        Self::with_environment(cfg, timeout, Environment::from_process())
    }

    /// A collector with an explicit environment. Does no I/O: credentials are read on the
    /// first collection, so a missing token file is a failed collection (reported in
    /// `/health` and retried at the next tick), not a daemon that refuses to start.
    pub fn with_environment(
        cfg: &KubernetesConfig,
        timeout: Duration,
        env: Environment,
    ) -> Result<Self, CollectorError> {
        let node = cfg
            .node_name
            .clone()
            .or_else(|| env.node_name.clone())
            .or_else(|| env.hostname.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                CollectorError::Other(
                    "no node name: set collectors.kubernetes.node_name or NODE_NAME".into(),
                )
            })?;
        Ok(KubernetesCollector {
            cfg: cfg.clone(),
            env,
            node,
            timeout,
            connected: None,
        })
    }

    /// The node this collector reports on.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn connect(&self) -> Result<Connected, KubeError> {
        let c = &self.cfg;
        let mut cluster = match &c.kubeconfig {
            Some(path) => client::from_kubeconfig(path, c.kubeconfig_context.as_deref())?,
            None => client::in_cluster(
                self.env.service_host.clone(),
                self.env.service_port.clone(),
                // With the API server off only the token and CA matter: a kubelet-only setup
                // on a host (no KUBERNETES_SERVICE_HOST) must not fail for lack of a server.
                c.api_url
                    .as_deref()
                    .or((!c.api_enabled).then_some("https://api-server-not-used")),
                c.token_file.as_deref(),
                c.ca_file.as_deref(),
            )?,
        };
        if let (Some(url), Some(_)) = (&c.api_url, &c.kubeconfig) {
            cluster.server = url.trim_end_matches('/').to_owned();
        }
        let client_cert = cluster.credentials.client_cert();
        let api = c.api_enabled.then(|| {
            Endpoint::new(
                &cluster.server,
                &cluster.trust,
                client_cert.clone(),
                self.timeout,
            )
        });
        let kubelet = if c.kubelet_enabled {
            let trust = if c.kubelet_insecure_skip_tls_verify {
                Trust::Insecure
            } else {
                match &c.kubelet_ca_file {
                    Some(path) => Trust::Roots(client::read_certs(path)?),
                    None => Trust::Roots(cluster.ca.clone()),
                }
            };
            let url = c
                .kubelet_url
                .clone()
                .unwrap_or_else(|| format!("https://{}:{KUBELET_PORT}", self.node));
            Some(Endpoint::new(&url, &trust, client_cert, self.timeout))
        } else {
            None
        };
        Ok(Connected {
            cluster,
            api,
            kubelet,
        })
    }
}

/// `spec.nodeName=<node>` for a query string: `=` must be percent-encoded inside a value.
/// Node names are DNS subdomains (lower-case letters, digits, `-`, `.`), which need no
/// escaping; anything else is escaped anyway so a strange name cannot change the query.
fn node_selector(node: &str) -> String {
    format!("spec.nodeName%3D{}", escape(node))
}

/// Percent-encodes all but unreserved URL characters.
fn escape(node: &str) -> String {
    let mut out = String::new();
    for b in node.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Collector for KubernetesCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        if self.connected.is_none() {
            let connected = self
                .connect()
                .map_err(|e| CollectorError::Other(e.to_string()))?;
            self.connected = Some(connected);
        }
        let node = self.node.clone();
        let Some(conn) = self.connected.as_mut() else {
            return Err(CollectorError::Other("not connected".into()));
        };
        let token = conn
            .cluster
            .credentials
            .bearer()
            .map_err(|e| CollectorError::Other(e.to_string()))?;
        let token = token.as_deref();

        let mut out = Families::new();
        let mut errors: Vec<String> = Vec::new();
        if let Some(kubelet) = &conn.kubelet {
            match kubelet.get_json::<summary::Summary>("/stats/summary", token) {
                Ok(s) => summary::summary_families(&s, &node, &mut out),
                Err(e) => errors.push(format!("kubelet: {e}")),
            }
        }
        if let Some(api) = &conn.api {
            let pods_path = format!("/api/v1/pods?fieldSelector={}", node_selector(&node));
            match api.get_json::<objects::PodList>(&pods_path, token) {
                Ok(pods) => objects::pod_families(&pods, &node, &mut out),
                Err(e) => errors.push(format!("API server: {e}")),
            }
            let node_path = format!("/api/v1/nodes/{}", escape(&node));
            match api.get_json::<objects::Node>(&node_path, token) {
                Ok(n) => objects::node_families(&n, &mut out),
                Err(e) => errors.push(format!("API server: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(CollectorError::Other(errors.join("; ")));
        }
        Ok(Collection {
            note: out.note(),
            families: out.into_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_precedence() {
        let env = Environment {
            node_name: Some("from-env".into()),
            hostname: Some("host".into()),
            ..Default::default()
        };
        let mut cfg = KubernetesConfig::default();
        let t = Duration::from_secs(1);
        let c = KubernetesCollector::with_environment(&cfg, t, env.clone()).unwrap();
        assert_eq!(c.node(), "from-env");
        cfg.node_name = Some("from-config".into());
        let c = KubernetesCollector::with_environment(&cfg, t, env).unwrap();
        assert_eq!(c.node(), "from-config");
        cfg.node_name = None;
        let env = Environment {
            hostname: Some("host".into()),
            ..Default::default()
        };
        let c = KubernetesCollector::with_environment(&cfg, t, env).unwrap();
        assert_eq!(c.node(), "host");
        assert!(KubernetesCollector::with_environment(&cfg, t, Environment::default()).is_err());
    }

    #[test]
    fn selector_escapes_everything_but_dns_characters() {
        assert_eq!(node_selector("minikube"), "spec.nodeName%3Dminikube");
        assert_eq!(
            node_selector("ip-10-0-0-1.ec2.internal"),
            "spec.nodeName%3Dip-10-0-0-1.ec2.internal"
        );
        assert_eq!(node_selector("a&b=c"), "spec.nodeName%3Da%26b%3Dc");
    }

    #[test]
    fn kubelet_only_needs_no_service_environment() {
        let cfg = KubernetesConfig {
            node_name: Some("n".into()),
            api_enabled: false,
            token_file: Some("/nonexistent/token".into()),
            ca_file: Some("/nonexistent/ca.crt".into()),
            ..Default::default()
        };
        let mut c = KubernetesCollector::with_environment(
            &cfg,
            Duration::from_secs(1),
            Environment::default(),
        )
        .unwrap();
        // Fails on the CA file, not on the missing KUBERNETES_SERVICE_HOST.
        let e = c.collect().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
    }

    #[test]
    fn missing_service_account_fails_the_collection_not_the_build() {
        let cfg = KubernetesConfig {
            node_name: Some("n".into()),
            ..Default::default()
        };
        let mut c = KubernetesCollector::with_environment(
            &cfg,
            Duration::from_secs(1),
            Environment::default(),
        )
        .unwrap();
        let e = c.collect().unwrap_err().to_string();
        assert!(e.contains("KUBERNETES_SERVICE_HOST"), "{e}");
    }
}
