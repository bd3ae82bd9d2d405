//! `probe`: TCP connect and HTTP(S) GET checks against configured targets, in the manner of
//! blackbox_exporter and Monit's `if failed port`.
//!
//! Every target is probed on its own thread, so one slow target costs the others nothing; each
//! probe is bounded by its own timeout, and the collection waits at most until its deadline.
//! A target that fails is `automon_probe_success 0` with the reason in the collector's
//! `/health` note, never a failed collection. DNS resolution cannot be bounded from std, so
//! a probe still stuck in it when the collection ends is reported as timed out and left to
//! finish on its own; the target is not probed again until it has.
//!
//! HTTP is a small HTTP/1.1 client on `std::net` and rustls rather than ureq: the phase
//! timings (connect, TLS handshake, time to first byte) and the certificate chain the server
//! presented need the connection itself, which ureq does not expose.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::{Collection, Collector, CollectorError};
use crate::config::{ProbeConfig, ProbeKind, ProbeTargetConfig, DEFAULT_PROBE_TIMEOUT};
use crate::model::Family;

/// Only this much of a response body is kept for `body_regex`; the rest is read and dropped.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Larger response headers are an error (a server speaking something other than HTTP).
const MAX_HEADER_BYTES: usize = 64 << 10;

/// The collector: the targets, prepared once.
pub struct ProbeCollector {
    targets: Vec<Arc<Target>>,
    /// How long one collection waits for its probes.
    wait: Duration,
}

struct Target {
    name: String,
    check: Check,
    timeout: Duration,
    /// Set while a probe thread runs, so a probe stuck in DNS is not started a second time.
    busy: AtomicBool,
}

enum Check {
    Tcp {
        address: String,
    },
    Http {
        url: Url,
        /// `None` for `http://`; an error (e.g. an unreadable `ca_file`) fails every probe of
        /// this target rather than the collector.
        tls: Option<Result<Arc<ClientConfig>, String>>,
        expected_status: Vec<u16>,
        body_regex: Option<regex::bytes::Regex>,
        headers: Vec<(String, String)>,
    },
}

/// The parts of an `http(s)://` URL a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    https: bool,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Host without brackets, for DNS and SNI.
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    path: String,
}

/// Splits an `http://` or `https://` URL; the error says what is wrong with it.
fn parse_url(url: &str) -> Result<Url, String> {
    let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
        (true, r)
    } else if let Some(r) = strip_prefix_ci(url, "http://") {
        (false, r)
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if authority.contains('@') {
        return Err(format!("{url:?}: credentials in the URL are not supported"));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '[' in the host"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, parse_port(p, url)?),
            None if after.is_empty() => (host, default_port),
            None => return Err(format!("{url:?}: unexpected {after:?} after the host")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p, url)?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(Url {
        https,
        authority: authority.to_owned(),
        host: host.to_owned(),
        port,
        path,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("{url:?}: {p:?} is not a port number"))
}

/// Checks one target's settings the way the collector will use them; the config loader calls
/// this so that `automon validate` reports what the collector would refuse.
pub fn check_target(t: &ProbeTargetConfig) -> Result<(), (&'static str, String)> {
    match t.kind {
        ProbeKind::Tcp => {
            let address = t.address.as_deref().unwrap_or_default();
            if address
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err((
                    "address",
                    format!("{address:?} is not host:port; write e.g. \"127.0.0.1:80\""),
                ));
            }
        }
        ProbeKind::Http => {
            let url = t.url.as_deref().unwrap_or_default();
            parse_url(url).map_err(|e| ("url", e))?;
        }
    }
    Ok(())
}

impl ProbeCollector {
    /// Builds the collector; `timeout` is the collection's deadline.
    pub fn new(cfg: &ProbeConfig, timeout: Duration) -> Result<Self, CollectorError> {
        // Leave the scheduler a margin to take the result before its own deadline.
        let wait = timeout.saturating_sub((timeout / 10).min(Duration::from_millis(500)));
        let targets = cfg
            .targets
            .iter()
            .map(|t| target(t, wait).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(ProbeCollector { targets, wait })
    }
}

fn target(t: &ProbeTargetConfig, wait: Duration) -> Result<Target, CollectorError> {
    let bad =
        |field: &str, e: String| CollectorError::Other(format!("probe {}: {field}: {e}", t.name));
    check_target(t).map_err(|(field, e)| bad(field, e))?;
    let check = match t.kind {
        ProbeKind::Tcp => Check::Tcp {
            address: t.address.clone().unwrap_or_default(),
        },
        ProbeKind::Http => {
            let url = parse_url(t.url.as_deref().unwrap_or_default()).map_err(|e| bad("url", e))?;
            let tls = url
                .https
                .then(|| tls_config(t.insecure_skip_verify, t.ca_file.as_deref()));
            let body_regex = t
                .body_regex
                .as_deref()
                .map(regex::bytes::Regex::new)
                .transpose()
                .map_err(|e| bad("body_regex", e.to_string()))?;
            Check::Http {
                url,
                tls,
                expected_status: t.expected_status.clone(),
                body_regex,
                headers: t
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }
        }
    };
    Ok(Target {
        name: t.name.clone(),
        check,
        timeout: t.timeout.map_or(DEFAULT_PROBE_TIMEOUT, |d| d.0).min(wait),
        busy: AtomicBool::new(false),
    })
}

fn tls_config(insecure: bool, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("ca_file {} holds no certificate", path.display()));
                }
                let (_, ignored) = roots.add_parsable_certificates(certs);
                if roots.is_empty() {
                    return Err(format!(
                        "ca_file {}: none of its {ignored} certificates is usable",
                        path.display()
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `insecure_skip_verify`: any certificate is accepted, but handshake signatures are still
/// checked, so the peer does hold the key of the certificate whose expiry is reported.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What one probe found.
#[derive(Debug, Default, Clone, PartialEq)]
struct Outcome {
    /// Why the probe failed; `None` is success.
    error: Option<String>,
    /// Seconds per phase, in order.
    phases: Vec<(&'static str, f64)>,
    status: Option<u16>,
    /// Earliest notAfter of the presented chain, Unix seconds.
    cert_expiry: Option<i64>,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Self {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }
}

/// Times phases against one deadline.
struct Clock {
    start: Instant,
    mark: Instant,
    deadline: Instant,
    phases: Vec<(&'static str, f64)>,
}

impl Clock {
    fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Clock {
            start: now,
            mark: now,
            deadline: now + timeout,
            phases: Vec::new(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases
            .push((phase, now.duration_since(self.mark).as_secs_f64()));
        self.mark = now;
    }

    /// Time left, or a timeout error naming what was under way.
    fn remaining(&self, doing: &str) -> Result<Duration, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(format!("timed out {doing}"))
        } else {
            Ok(left)
        }
    }

    fn finish(mut self, mut outcome: Outcome) -> Outcome {
        self.phases
            .push(("total", self.start.elapsed().as_secs_f64()));
        outcome.phases = self.phases;
        outcome
    }
}

fn probe(target: &Target) -> Outcome {
    let mut clock = Clock::new(target.timeout);
    let outcome = match &target.check {
        Check::Tcp { address } => connect(address, &mut clock)
            .map(|_| Outcome::default())
            .unwrap_or_else(Outcome::failed),
        Check::Http {
            url,
            tls,
            expected_status,
            body_regex,
            headers,
        } => http(url, tls.as_ref(), headers, &mut clock).map_or_else(
            |(e, partial)| Outcome {
                error: Some(e),
                ..partial
            },
            |(mut outcome, body)| {
                outcome.error = judge(outcome.status, &body, expected_status, body_regex.as_ref());
                outcome
            },
        ),
    };
    clock.finish(outcome)
}

/// Why a response is not a success, if it is not.
fn judge(
    status: Option<u16>,
    body: &[u8],
    expected: &[u16],
    body_regex: Option<&regex::bytes::Regex>,
) -> Option<String> {
    let status = status?;
    let ok = if expected.is_empty() {
        (200..300).contains(&status)
    } else {
        expected.contains(&status)
    };
    if !ok {
        let want = if expected.is_empty() {
            "2xx".to_owned()
        } else {
            format!("{expected:?}")
        };
        return Some(format!("HTTP status {status}, expected {want}"));
    }
    match body_regex {
        Some(re) if !re.is_match(body) => Some(format!("body does not match {:?}", re.as_str())),
        _ => None,
    }
}

fn connect(address: &str, clock: &mut Clock) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| format!("resolving {address}: {e}"))?
        .collect();
    clock.lap("resolve");
    let mut last = format!("{address} resolved to no address");
    for addr in addrs {
        let left = clock.remaining(&format!("connecting to {address}"))?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                clock.lap("connect");
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = format!("timed out connecting to {addr}");
            }
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}

/// A connection with or without TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Bounds the next blocking read or write by what is left of the probe's time.
    fn arm(&self, clock: &Clock, doing: &str) -> Result<(), String> {
        let left = clock.remaining(doing)?;
        let tcp = self.tcp();
        tcp.set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)))
            .map_err(|e| format!("{doing}: {e}"))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn io_error(doing: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!("timed out {doing}"),
        _ => format!("{doing}: {e}"),
    }
}

type HttpResult = Result<(Outcome, Vec<u8>), (String, Outcome)>;

/// One GET; on failure, returns what was learnt before it (e.g. the certificate expiry).
fn http(
    url: &Url,
    tls: Option<&Result<Arc<ClientConfig>, String>>,
    headers: &[(String, String)],
    clock: &mut Clock,
) -> HttpResult {
    let mut partial = Outcome::default();
    let fail = |e: String, partial: &Outcome| Err((e, partial.clone()));
    // Settings errors first: no point in connecting.
    let tls = match tls.map(Result::as_ref).transpose() {
        Ok(t) => t,
        Err(e) => return fail(e.clone(), &partial),
    };
    let address = format!("{}:{}", bracket(&url.host), url.port);
    let tcp = match connect(&address, clock) {
        Ok(t) => t,
        Err(e) => return fail(e, &partial),
    };
    let mut conn = match tls {
        None => Conn::Plain(tcp),
        Some(config) => match handshake(config, url, tcp, clock, &mut partial) {
            Ok(c) => c,
            Err(e) => return fail(e, &partial),
        },
    };
    let mut request = format!("GET {} HTTP/1.1\r\n", url.path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {}\r\n", url.authority));
    }
    request.push_str("User-Agent: automon-probe\r\nAccept: */*\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let sent = conn.arm(clock, "sending the request").and_then(|()| {
        conn.write_all(request.as_bytes())
            .and_then(|()| conn.flush())
            .map_err(|e| io_error("sending the request", &e))
    });
    if let Err(e) = sent {
        return fail(e, &partial);
    }
    match read_response(&mut conn, clock) {
        Ok((status, body)) => {
            partial.status = Some(status);
            Ok((partial, body))
        }
        Err((e, status)) => {
            partial.status = status;
            fail(e, &partial)
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn handshake(
    config: &Arc<ClientConfig>,
    url: &Url,
    mut tcp: TcpStream,
    clock: &mut Clock,
    partial: &mut Outcome,
) -> Result<Conn, String> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| format!("{:?} is not a TLS server name: {e}", url.host))?;
    let mut conn =
        ClientConnection::new(config.clone(), name).map_err(|e| format!("TLS setup: {e}"))?;
    while conn.is_handshaking() {
        let left = clock.remaining("in the TLS handshake")?;
        tcp.set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)))
            .map_err(|e| format!("TLS handshake: {e}"))?;
        conn.complete_io(&mut tcp)
            .map_err(|e| io_error("in the TLS handshake", &e))?;
    }
    partial.cert_expiry = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| not_after(c))
        .min();
    clock.lap("tls");
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// Reads status and body. The body is read to its end (Content-Length, the last chunk, or
/// the close) so that `transfer` measures it, but only its first [`MAX_BODY_BYTES`] are kept.
fn read_response(
    conn: &mut Conn,
    clock: &mut Clock,
) -> Result<(u16, Vec<u8>), (String, Option<u16>)> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let mut first = true;
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(("response headers larger than 64 KiB".to_owned(), None));
        }
        let n = read_some(conn, clock, &mut chunk, "waiting for the response")
            .map_err(|e| (e, None))?;
        if n == 0 {
            return Err((
                "connection closed before a complete response header".to_owned(),
                None,
            ));
        }
        if first {
            clock.lap("processing");
            first = false;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/")
        .and_then(|r| r.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            (
                format!("not an HTTP response: {:?}", truncate(status_line, 80)),
                None,
            )
        })?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    let mut raw = buf.split_off(header_end);
    let mut total = raw.len();
    let bodiless = status < 200 || status == 204 || status == 304;
    if !bodiless {
        loop {
            let done = match (chunked, length) {
                (true, _) => raw.ends_with(b"0\r\n\r\n"),
                (false, Some(len)) => total >= len,
                (false, None) => false,
            };
            if done {
                break;
            }
            let n = read_some(conn, clock, &mut chunk, "reading the body")
                .map_err(|e| (e, Some(status)))?;
            if n == 0 {
                if length.is_some_and(|len| total < len) {
                    return Err((
                        "connection closed before the end of the body".to_owned(),
                        Some(status),
                    ));
                }
                break;
            }
            total += n;
            if raw.len() < MAX_BODY_BYTES + 64 {
                raw.extend_from_slice(&chunk[..n]);
            }
        }
    }
    if first {
        clock.lap("processing");
    }
    clock.lap("transfer");
    let mut body = if chunked && !bodiless {
        dechunk(&raw)
    } else {
        raw
    };
    body.truncate(MAX_BODY_BYTES);
    Ok((status, body))
}

/// One read bounded by the deadline; an unclean TLS close counts as the end of the stream,
/// as many servers close without close_notify after `Connection: close`.
fn read_some(conn: &mut Conn, clock: &Clock, buf: &mut [u8], doing: &str) -> Result<usize, String> {
    conn.arm(clock, doing)?;
    match conn.read(buf) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(io_error(doing, &e)),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Decodes a chunked body as far as it is well formed.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .map(|l| l.split(';').next().unwrap_or_default().trim())
            .and_then(|s| usize::from_str_radix(s, 16).ok());
        let Some(size) = size else { break };
        raw = &raw[eol + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        raw = raw.get(take + 2..).unwrap_or_default();
    }
    out
}

/// The notAfter of a DER certificate, Unix seconds; `None` when it cannot be read.
fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = tlv(der)?;
    (tag == 0x30).then_some(())?;
    let (tag, tbs, _) = tlv(cert)?;
    (tag == 0x30).then_some(())?;
    // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity.
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2;
    rest = tlv(rest)?.2;
    let (tag, validity, _) = tlv(rest)?;
    (tag == 0x30).then_some(())?;
    let after = tlv(validity)?.2;
    let (tag, time, _) = tlv(after)?;
    asn1_time(tag, time)
}

/// One DER element: tag, contents, what follows. Single-byte tags only, as in X.509.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, b.get(start..end)?, b.get(end..)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280 restricts
/// them, to Unix seconds.
fn asn1_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s.get(..4)?.parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const P: &str = "automon_probe_";

impl Collector for ProbeCollector {
    fn collect(&mut self) -> Result<Collection, CollectorError> {
        let deadline = Instant::now() + self.wait;
        let (tx, rx) = mpsc::channel();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; self.targets.len()];
        for (i, target) in self.targets.iter().enumerate() {
            if target.busy.swap(true, Ordering::AcqRel) {
                outcomes[i] = Some(Outcome::failed(
                    "the previous probe is still running (stuck resolving the name?)",
                ));
                continue;
            }
            let (t, tx) = (target.clone(), tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("probe {}", t.name))
                .spawn(move || {
                    let outcome = probe(&t);
                    t.busy.store(false, Ordering::Release);
                    // The collection may have given up waiting; nothing to do then.
                    let _ = tx.send((i, outcome));
                });
            if let Err(e) = spawned {
                target.busy.store(false, Ordering::Release);
                outcomes[i] = Some(Outcome::failed(format!("starting the probe thread: {e}")));
            }
        }
        drop(tx);
        while outcomes.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, outcome)) => outcomes[i] = Some(outcome),
                Err(_) => break,
            }
        }
        let mut success = Family::gauge(
            format!("{P}success"),
            "1 if the probe succeeded (connected; for HTTP also the expected status and body).",
        );
        let mut duration = Family::gauge(
            format!("{P}duration_seconds"),
            "Duration of each phase of the last probe (resolve, connect, tls, processing = until the first response byte, transfer); total is the whole probe.",
        );
        let mut status = Family::gauge(
            format!("{P}http_status_code"),
            "HTTP status code of the last response (absent when none was received).",
        );
        let mut expiry = Family::gauge(
            format!("{P}tls_cert_expiry_timestamp_seconds"),
            "Earliest notAfter in the certificate chain the server presented, Unix seconds.",
        );
        let mut notes = Vec::new();
        for (target, outcome) in self.targets.iter().zip(outcomes) {
            let outcome = outcome.unwrap_or_else(|| {
                Outcome::failed("timed out: still running at the collection deadline")
            });
            let name = target.name.as_str();
            let labels = [("probe", name)];
            success.push(&labels, if outcome.error.is_none() { 1.0 } else { 0.0 });
            for (phase, secs) in &outcome.phases {
                duration.push(&[("probe", name), ("phase", phase)], *secs);
            }
            if let Some(code) = outcome.status {
                status.push(&labels, f64::from(code));
            }
            if let Some(t) = outcome.cert_expiry {
                expiry.push(&labels, t as f64);
            }
            if let Some(e) = outcome.error {
                notes.push(format!("{name}: {e}"));
            }
        }
        Ok(Collection {
            families: vec![success, duration, status, expiry],
            note: (!notes.is_empty()).then(|| format!("failing probes: {}", notes.join("; "))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://example.org/health?x=1").unwrap();
        assert_eq!(
            u,
            Url {
                https: true,
                authority: "example.org".into(),
                host: "example.org".into(),
                port: 443,
                path: "/health?x=1".into(),
            }
        );
        let u = parse_url("HTTP://127.0.0.1:8080").unwrap();
        assert_eq!((u.https, u.port, u.path.as_str()), (false, 8080, "/"));
        let u = parse_url("http://[::1]:81?q#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 81, "/?q")
        );
        assert_eq!(u.authority, "[::1]:81");
        for bad in [
            "ftp://x/",
            "http://",
            "http://u:p@host/",
            "http://h:99999/",
            "http://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tcp_addresses() {
        let t = |a: &str| ProbeTargetConfig {
            name: "x".into(),
            address: Some(a.into()),
            ..Default::default()
        };
        assert!(check_target(&t("127.0.0.1:80")).is_ok());
        assert!(check_target(&t("[::1]:22")).is_ok());
        assert!(check_target(&t("localhost")).is_err());
        assert!(check_target(&t(":80")).is_err());
        assert!(check_target(&ProbeTargetConfig::default()).is_err());
    }

    #[test]
    fn status_and_body() {
        let re = regex::bytes::Regex::new("ok").unwrap();
        assert_eq!(judge(Some(204), b"", &[], None), None);
        assert!(judge(Some(301), b"", &[], None).unwrap().contains("2xx"));
        assert_eq!(judge(Some(301), b"", &[301, 302], None), None);
        assert!(judge(Some(200), b"", &[301], None)
            .unwrap()
            .contains("[301]"));
        assert_eq!(judge(Some(200), b"all ok", &[], Some(&re)), None);
        assert!(judge(Some(200), b"down", &[], Some(&re))
            .unwrap()
            .contains("body"));
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"),
            b"Wikipedia"
        );
        assert_eq!(dechunk(b"zz\r\n"), b"");
        assert_eq!(dechunk(b"a\r\nshort"), b"short");
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    fn cert(year: i32, month: u8, day: u8) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certificate_expiry() {
        // UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5).
        assert_eq!(
            not_after(&cert(2031, 5, 17)),
            Some(days_from_civil(2031, 5, 17) * 86_400)
        );
        assert_eq!(
            not_after(&cert(2051, 1, 2)),
            Some(days_from_civil(2051, 1, 2) * 86_400)
        );
        assert_eq!(not_after(b"\x30\x03\x02\x01"), None);
        assert_eq!(not_after(b""), None);
        assert_eq!(
            asn1_time(0x17, b"491231235959Z"),
            Some(days_from_civil(2049, 12, 31) * 86_400 + 86_399)
        );
        assert_eq!(
            asn1_time(0x17, b"500101000000Z"),
            Some(days_from_civil(1950, 1, 1) * 86_400)
        );
        assert_eq!(asn1_time(0x17, b"5001010000Z"), None);
        assert_eq!(asn1_time(0x18, b"20501301000000Z"), None);
    }

    #[test]
    fn refused_port_is_a_failed_probe_not_a_failed_collection() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = ProbeConfig {
            targets: vec![ProbeTargetConfig {
                name: "down".into(),
                address: Some(format!("127.0.0.1:{port}")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut c = ProbeCollector::new(&cfg, Duration::from_secs(5)).unwrap();
        let got = c.collect().unwrap();
        assert_eq!(got.families[0].samples[0].value, 0.0);
        let note = got.note.unwrap();
        assert!(note.contains("down: connecting to 127.0.0.1"), "{note}");
    }
}
