//! How the Kubernetes collector reaches the API server and the kubelet: credentials from the
//! pod's service account or from a kubeconfig file, TLS trust from the cluster CA, and a
//! blocking HTTPS GET that decodes JSON.
//!
//! In-cluster semantics follow client-go's `rest.InClusterConfig`: the server is
//! `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the bearer token is
//! `/var/run/secrets/kubernetes.io/serviceaccount/token` (re-read when the file changes:
//! projected tokens rotate about hourly) and the CA is `ca.crt` beside it. A kubeconfig is
//! read as `kubectl` reads it: the current context (or a named one), its cluster's `server`,
//! `certificate-authority`/`-data`, `insecure-skip-tls-verify`, and its user's `token`,
//! `tokenFile`, `client-certificate`/`-data` and `client-key`/`-data`; relative paths are
//! relative to the kubeconfig's directory. Exec plugins, auth providers, basic auth and
//! proxies are refused with an error that names them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// The service account directory every pod gets.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Largest response accepted. A `PodList` of 110 pods (the kubelet's default maximum) is a few
/// MiB; this leaves room for nodes that run more while bounding memory.
const MAX_BODY: u64 = 64 << 20;

/// Why the API server or kubelet could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// In-cluster configuration was requested outside a pod.
    #[error(
        "not running in a pod ({0} is not set); set collectors.kubernetes.kubeconfig, or \
         api_url with token_file and ca_file"
    )]
    NotInCluster(&'static str),
    /// A credentials or CA file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig is unreadable, incomplete, or uses something not supported.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Certificates or keys that do not parse.
    #[error("{what}: {message}")]
    Pem {
        /// Which file or kubeconfig field.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The request failed before an answer (connection refused, DNS, TLS, timeout).
    #[error("GET {url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// What went wrong, with a hint for certificate errors.
        message: String,
    },
    /// The server answered with an error status.
    #[error("GET {url}: HTTP {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The `message` of the Kubernetes `Status` object, or the start of the body.
        message: String,
    },
    /// The answer was not the expected JSON.
    #[error("GET {url}: unexpected response: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// The decoder's message.
        message: String,
    },
}

/// Where the bearer token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// No token (client-certificate auth, or none).
    None,
    /// A fixed token from a kubeconfig.
    Static(String),
    /// A file that is re-read whenever its modification time or size changes, so a rotated
    /// service-account token is picked up at the next collection.
    File(PathBuf),
}

/// A token file's content with the metadata it was read at.
#[derive(Debug, Default)]
struct CachedToken {
    stamp: Option<(SystemTime, u64)>,
    token: String,
}

/// Credentials for both the API server and the kubelet (the kubelet authenticates the same
/// tokens and client certificates through the API server).
#[derive(Debug)]
pub struct Credentials {
    token: TokenSource,
    cached: CachedToken,
    client_cert: Option<ClientCert>,
}

impl Credentials {
    /// Credentials from a token source and an optional client certificate.
    pub fn new(token: TokenSource, client_cert: Option<ClientCert>) -> Self {
        Credentials {
            token,
            cached: CachedToken::default(),
            client_cert,
        }
    }

    /// The client certificate, if the kubeconfig has one.
    pub fn client_cert(&self) -> Option<ClientCert> {
        self.client_cert.clone()
    }

    /// The current bearer token, re-reading a token file that changed since the last call.
    pub fn bearer(&mut self) -> Result<Option<String>, KubeError> {
        match &self.token {
            TokenSource::None => Ok(None),
            TokenSource::Static(t) => Ok(Some(t.clone())),
            TokenSource::File(path) => {
                let io = |source| KubeError::Io {
                    path: path.clone(),
                    source,
                };
                let meta = std::fs::metadata(path).map_err(io)?;
                let stamp = meta.modified().ok().map(|m| (m, meta.len()));
                if stamp.is_none() || stamp != self.cached.stamp {
                    let text = std::fs::read_to_string(path).map_err(io)?;
                    self.cached = CachedToken {
                        stamp,
                        token: text.trim().to_owned(),
                    };
                }
                Ok(Some(self.cached.token.clone()))
            }
        }
    }
}

/// How to trust a server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Only these CA certificates.
    Roots(Vec<Certificate<'static>>),
    /// No verification at all (an explicit opt-out in the config).
    Insecure,
}

/// What the collector needs to talk to the API server: its base URL, how to trust it, and
/// whose credentials to present.
#[derive(Debug)]
pub struct ClusterConfig {
    /// `https://host:port`, without a trailing slash.
    pub server: String,
    /// Trust for the API server's certificate.
    pub trust: Trust,
    /// The CA certificates, also the default trust for the kubelet.
    pub ca: Vec<Certificate<'static>>,
    /// Credentials.
    pub credentials: Credentials,
}

/// In-cluster configuration from the environment values and the service-account files
/// (`token_file`/`ca_file` override the standard paths, `server` the environment).
pub fn in_cluster(
    service_host: Option<String>,
    service_port: Option<String>,
    server: Option<&str>,
    token_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> Result<ClusterConfig, KubeError> {
    let server = match server {
        Some(s) => s.trim_end_matches('/').to_owned(),
        None => {
            let host = service_host
                .filter(|h| !h.is_empty())
                .ok_or(KubeError::NotInCluster("KUBERNETES_SERVICE_HOST"))?;
            let port = service_port
                .filter(|p| !p.is_empty())
                .ok_or(KubeError::NotInCluster("KUBERNETES_SERVICE_PORT"))?;
            // An IPv6 service address needs brackets in a URL, as net.JoinHostPort adds.
            if host.contains(':') {
                format!("https://[{host}]:{port}")
            } else {
                format!("https://{host}:{port}")
            }
        }
    };
    let sa = Path::new(SERVICE_ACCOUNT_DIR);
    let token = token_file.map_or_else(|| sa.join("token"), Path::to_path_buf);
    let ca_path = ca_file.map_or_else(|| sa.join("ca.crt"), Path::to_path_buf);
    let ca = read_certs(&ca_path)?;
    Ok(ClusterConfig {
        server,
        trust: Trust::Roots(ca.clone()),
        ca,
        credentials: Credentials::new(TokenSource::File(token), None),
    })
}

/// Reads every certificate in a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<Certificate<'static>>, KubeError> {
    let pem = std::fs::read(path).map_err(|source| KubeError::Io {
        path: path.to_owned(),
        source,
    })?;
    certs_from_pem(&pem, &path.display().to_string())
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<Certificate<'static>>, KubeError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(KubeError::Pem {
                    what: what.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    }
    if certs.is_empty() {
        return Err(KubeError::Pem {
            what: what.to_owned(),
            message: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKey<'static>, KubeError> {
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(k),
            Ok(_) => {}
            Err(e) => {
                return Err(KubeError::Pem {
                    what: what.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    }
    Err(KubeError::Pem {
        what: what.to_owned(),
        message: "no PEM private key found".into(),
    })
}

/// The parts of a kubeconfig file automon reads. Everything else is ignored; fields that
/// would change how to authenticate but are not supported are kept so they can be refused.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Kubeconfig {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    contexts: Vec<Named<KubeContext>>,
    clusters: Vec<Named<KubeCluster>>,
    users: Vec<Named<KubeUser>>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    value: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KubeContext {
    cluster: String,
    user: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct KubeCluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    proxy_url: Option<String>,
    tls_server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct KubeUser {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml_ng::Value>,
    auth_provider: Option<serde_yaml_ng::Value>,
}

/// Reads a kubeconfig file and resolves `context` (default: its `current-context`).
pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<ClusterConfig, KubeError> {
    let err = |message: String| KubeError::Kubeconfig {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| KubeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let kc: Kubeconfig = serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_relative() {
            dir.join(p)
        } else {
            p.to_owned()
        }
    };

    let ctx_name = match context.map(str::to_owned).or(kc.current_context.clone()) {
        Some(c) if !c.is_empty() => c,
        _ => {
            return Err(err(
                "no current-context; set collectors.kubernetes.kubeconfig_context".into(),
            ))
        }
    };
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.value.as_ref())
        .ok_or_else(|| err(format!("context {ctx_name:?} not found")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.value.as_ref())
        .ok_or_else(|| {
            err(format!(
                "cluster {:?} of context {ctx_name:?} not found",
                ctx.cluster
            ))
        })?;
    let default_user = KubeUser::default();
    let user = if ctx.user.is_empty() {
        &default_user
    } else {
        kc.users
            .iter()
            .find(|u| u.name == ctx.user)
            .and_then(|u| u.value.as_ref())
            .ok_or_else(|| {
                err(format!(
                    "user {:?} of context {ctx_name:?} not found",
                    ctx.user
                ))
            })?
    };

    if cluster.server.is_empty() {
        return Err(err(format!("cluster {:?} has no server", ctx.cluster)));
    }
    if cluster.proxy_url.is_some() {
        return Err(err(format!(
            "cluster {:?} uses proxy-url, which automon does not support",
            ctx.cluster
        )));
    }
    if cluster.tls_server_name.is_some() {
        return Err(err(format!(
            "cluster {:?} uses tls-server-name, which automon does not support",
            ctx.cluster
        )));
    }
    if user.exec.is_some() {
        return Err(err(format!(
            "user {:?} authenticates with an exec plugin, which automon does not run; use a \
             service-account token (token or tokenFile) or a client certificate",
            ctx.user
        )));
    }
    if user.auth_provider.is_some() {
        return Err(err(format!(
            "user {:?} uses an auth-provider, which automon does not support; use a token or a \
             client certificate",
            ctx.user
        )));
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(err(format!(
            "user {:?} uses basic auth (username/password), which Kubernetes no longer accepts; \
             use a token or a client certificate",
            ctx.user
        )));
    }

    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            let pem = decode_b64(data, "certificate-authority-data").map_err(err)?;
            certs_from_pem(
                &pem,
                &format!("{}: certificate-authority-data", path.display()),
            )?
        }
        (None, Some(file)) => read_certs(&resolve(file))?,
        (None, None) if cluster.insecure_skip_tls_verify => Vec::new(),
        (None, None) => {
            return Err(err(format!(
                "cluster {:?} has neither certificate-authority nor certificate-authority-data \
                 (public CAs are not trusted by default)",
                ctx.cluster
            )))
        }
    };
    let trust = if cluster.insecure_skip_tls_verify {
        Trust::Insecure
    } else {
        Trust::Roots(ca.clone())
    };

    let token = match (&user.token, &user.token_file) {
        (Some(t), _) => TokenSource::Static(t.clone()),
        (None, Some(f)) => TokenSource::File(resolve(f)),
        (None, None) => TokenSource::None,
    };
    let cert_pem = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(d), _) => Some(decode_b64(d, "client-certificate-data").map_err(err)?),
        (None, Some(f)) => Some(read_file(&resolve(f))?),
        (None, None) => None,
    };
    let key_pem = match (&user.client_key_data, &user.client_key) {
        (Some(d), _) => Some(decode_b64(d, "client-key-data").map_err(err)?),
        (None, Some(f)) => Some(read_file(&resolve(f))?),
        (None, None) => None,
    };
    let client_cert = match (cert_pem, key_pem) {
        (Some(c), Some(k)) => {
            let what = format!("{}: user {:?}", path.display(), ctx.user);
            let chain = certs_from_pem(&c, &what)?;
            let key = key_from_pem(&k, &what)?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
        (None, None) => None,
        _ => {
            return Err(err(format!(
                "user {:?} has a client certificate without a key or a key without a certificate",
                ctx.user
            )))
        }
    };
    Ok(ClusterConfig {
        server: cluster.server.trim_end_matches('/').to_owned(),
        trust,
        ca,
        credentials: Credentials::new(token, client_cert),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, KubeError> {
    std::fs::read(path).map_err(|source| KubeError::Io {
        path: path.to_owned(),
        source,
    })
}

fn decode_b64(data: &str, field: &str) -> Result<Vec<u8>, String> {
    let compact: String = data.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("{field} is not base64: {e}"))
}

/// rustls needs a process-wide crypto provider when several could be compiled in; install
/// ring once (an already installed provider is kept).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A blocking HTTPS client for one server (the API server or the kubelet).
pub struct Endpoint {
    base: String,
    agent: ureq::Agent,
    insecure: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Endpoint {
    /// A client for `base` (`https://host:port`) trusting `trust`, presenting `client_cert`,
    /// giving up on a request after `timeout`.
    pub fn new(
        base: &str,
        trust: &Trust,
        client_cert: Option<ClientCert>,
        timeout: Duration,
    ) -> Self {
        install_crypto_provider();
        let mut tls = TlsConfig::builder().client_cert(client_cert);
        let insecure = matches!(trust, Trust::Insecure);
        tls = match trust {
            Trust::Roots(certs) => tls.root_certs(RootCerts::Specific(Arc::new(certs.clone()))),
            Trust::Insecure => tls.disable_verification(true),
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            // Proxies from the environment are for the outside world; the API server and the
            // kubelet are cluster-internal, as client-go's NO_PROXY defaults assume.
            .proxy(None)
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("automon/", env!("CARGO_PKG_VERSION")))
            .build();
        Endpoint {
            base: base.trim_end_matches('/').to_owned(),
            agent: config.new_agent(),
            insecure,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path_and_query` and decodes the JSON answer.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        bearer: Option<&str>,
    ) -> Result<T, KubeError> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = self.agent.get(&url).header("Accept", "application/json");
        if let Some(token) = bearer {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let mut resp = req.call().map_err(|e| KubeError::Request {
            url: url.clone(),
            message: self.describe(&e),
        })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = resp
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_string()
                .unwrap_or_default();
            return Err(KubeError::Status {
                url,
                status,
                message: status_message(&body),
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| KubeError::Request {
                url: url.clone(),
                message: e.to_string(),
            })?;
        serde_json::from_slice(&body).map_err(|e| KubeError::Decode {
            url,
            message: e.to_string(),
        })
    }

    fn describe(&self, e: &ureq::Error) -> String {
        if is_certificate_error(e) && !self.insecure {
            format!(
                "{e}: the server's certificate is not signed by the configured CA (set \
                 kubelet_ca_file / ca_file to the right CA, or kubelet_insecure_skip_tls_verify \
                 = true to opt out of verification for the kubelet)"
            )
        } else {
            e.to_string()
        }
    }
}

/// Whether the TLS handshake failed on the peer's certificate. ureq reports handshake errors
/// wrapped in an I/O error, so the rustls error is looked for there too.
fn is_certificate_error(e: &ureq::Error) -> bool {
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_)))
}

/// The `message` of a Kubernetes `Status` error body, else the body's first 200 characters.
fn status_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Status {
        message: Option<String>,
    }
    match serde_json::from_str::<Status>(body) {
        Ok(Status { message: Some(m) }) => m,
        _ => body.trim().chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["ca".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn in_cluster_uses_environment_and_service_account_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write(dir.path(), "ca.crt", &ca_pem());
        let token = write(dir.path(), "token", "abc\n");
        let cfg = in_cluster(
            Some("10.96.0.1".into()),
            Some("443".into()),
            None,
            Some(&token),
            Some(&ca),
        )
        .unwrap();
        assert_eq!(cfg.server, "https://10.96.0.1:443");
        assert_eq!(cfg.ca.len(), 1);
        let mut creds = cfg.credentials;
        assert_eq!(creds.bearer().unwrap().as_deref(), Some("abc"));

        let v6 = in_cluster(
            Some("fd00::1".into()),
            Some("443".into()),
            None,
            Some(&token),
            Some(&ca),
        )
        .unwrap();
        assert_eq!(v6.server, "https://[fd00::1]:443");
    }

    #[test]
    fn outside_a_pod_says_what_to_set() {
        let e = in_cluster(None, Some("443".into()), None, None, None).unwrap_err();
        assert!(e.to_string().contains("KUBERNETES_SERVICE_HOST"), "{e}");
        assert!(e.to_string().contains("kubeconfig"), "{e}");
    }

    #[test]
    fn rotated_token_file_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let token = write(dir.path(), "token", "first");
        let mut creds = Credentials::new(TokenSource::File(token.clone()), None);
        assert_eq!(creds.bearer().unwrap().as_deref(), Some("first"));
        // Kubernetes rotates projected tokens by swapping a symlinked directory; a new file
        // with a different length and mtime stands in for that here.
        std::fs::write(&token, "second-token").unwrap();
        std::fs::File::options()
            .append(true)
            .open(&token)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
            .unwrap();
        assert_eq!(creds.bearer().unwrap().as_deref(), Some("second-token"));
        std::fs::remove_file(&token).unwrap();
        assert!(matches!(creds.bearer(), Err(KubeError::Io { .. })));
    }

    #[test]
    fn kubeconfig_with_inline_data_and_relative_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_pem();
        let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["admin".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        write(dir.path(), "admin.crt", &cert.pem());
        write(dir.path(), "admin.key", &key.serialize_pem());
        let path = write(
            dir.path(),
            "config",
            &format!(
                r#"apiVersion: v1
kind: Config
current-context: admin@cluster
clusters:
- name: cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: {ca_b64}
- name: other
  cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: admin@cluster
  context: {{cluster: cluster, user: admin}}
- name: sa@other
  context: {{cluster: other, user: sa}}
users:
- name: admin
  user:
    client-certificate: admin.crt
    client-key: admin.key
- name: sa
  user:
    token: t0ken
"#
            ),
        );
        let cfg = from_kubeconfig(&path, None).unwrap();
        assert_eq!(cfg.server, "https://127.0.0.1:6443");
        assert!(matches!(cfg.trust, Trust::Roots(ref r) if r.len() == 1));
        assert!(cfg.credentials.client_cert.is_some());

        let mut other = from_kubeconfig(&path, Some("sa@other")).unwrap();
        assert!(matches!(other.trust, Trust::Insecure));
        assert_eq!(
            other.credentials.bearer().unwrap().as_deref(),
            Some("t0ken")
        );

        let e = from_kubeconfig(&path, Some("nope")).unwrap_err();
        assert!(e.to_string().contains("context \"nope\" not found"), "{e}");
    }

    #[test]
    fn kubeconfig_refuses_unsupported_auth_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (user, expect) in [
            (
                "exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}",
                "exec plugin",
            ),
            ("auth-provider: {name: gcp}", "auth-provider"),
            ("username: a\n    password: b", "basic auth"),
        ] {
            let path = write(
                dir.path(),
                "config",
                &format!(
                    "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://x:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n    {user}\n"
                ),
            );
            let e = from_kubeconfig(&path, None).unwrap_err();
            assert!(e.to_string().contains(expect), "{e}");
        }
    }

    #[test]
    fn kubeconfig_without_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "config",
            "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://x:6443'}\ncontexts:\n- name: c\n  context: {cluster: k, user: ''}\n",
        );
        let e = from_kubeconfig(&path, None).unwrap_err();
        assert!(e.to_string().contains("certificate-authority"), "{e}");
    }

    #[test]
    fn status_messages_come_from_the_status_object() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"x\" cannot list resource \"pods\"","reason":"Forbidden","code":403}"#;
        assert!(status_message(body).starts_with("pods is forbidden"));
        assert_eq!(status_message("Unauthorized\n"), "Unauthorized");
    }
}
