//! `automon query`: asks the running daemon's HTTP API, or, when nothing listens there, reads
//! the local database directly; then renders Prometheus' `data` object as a table, JSON or CSV.
//!
//! Both paths produce the same JSON `data` object, so rendering has one input shape and the
//! output does not depend on which path answered.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use crate::query::params::now_ms;
use crate::query::{Engine, Limits, QueryError};
use crate::store::{open_read_only, StoreError, StoreSource};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per series with its labels and value(s).
    Table,
    /// Prometheus' `data` object.
    Json,
    /// `series,timestamp,value` rows.
    Csv,
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct Request {
    /// The PromQL expression.
    pub expr: String,
    /// Range query over this span ending at `at`; `None`: instant query.
    pub since: Option<Duration>,
    /// Step of a range query; default: the span / 120, at least 1 s.
    pub step: Option<Duration>,
    /// Evaluation (or range end) time in ms; default now.
    pub at: Option<i64>,
}

/// Where to get the answer.
#[derive(Debug, Clone)]
pub struct Target {
    /// Daemon base URL (`http://host:port`); `None`: skip the daemon.
    pub url: Option<String>,
    /// API key sent as a bearer token.
    pub api_key: Option<String>,
    /// Database directory for the local path.
    pub data_dir: PathBuf,
    /// Limits of the local engine.
    pub limits: Limits,
}

/// Which path answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The daemon at this URL.
    Daemon(String),
    /// The database in `dir`, read directly; `why` says why not the daemon.
    Local {
        /// The data directory.
        dir: PathBuf,
        /// e.g. "nothing answers at http://127.0.0.1:9787 (Connection refused)".
        why: Option<String>,
    },
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Daemon(url) => write!(f, "answered by the daemon at {url}"),
            Via::Local { dir, why } => {
                write!(f, "read the database in {} directly", dir.display())?;
                match why {
                    Some(why) => write!(f, " ({why})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why a query from the command line failed.
#[derive(Debug, thiserror::Error)]
pub enum CliQueryError {
    /// The daemon answered with an error.
    #[error("{error_type}: {error}")]
    Api {
        /// Prometheus' `errorType`.
        error_type: String,
        /// The message.
        error: String,
    },
    /// The local engine failed.
    #[error("{}: {}", .0.error_type(), .0)]
    Query(#[from] QueryError),
    /// The local database could not be opened.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Talking to the daemon failed after connecting.
    #[error("daemon at {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The answer was not in the expected shape.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

/// Result of [`run`]: Prometheus' `data` object and the path that produced it.
pub type Answer = (Json, Via);

/// Evaluates `req` through the daemon if it answers at `target.url`, else locally.
pub fn run(req: &Request, target: &Target) -> Result<Answer, CliQueryError> {
    let now = now_ms();
    let end = req.at.unwrap_or(now);
    let mut form: Vec<(&str, String)> = vec![("query", req.expr.clone())];
    let path = match req.since {
        None => {
            form.push(("time", seconds(end)));
            "/api/v1/query"
        }
        Some(since) => {
            let (start, step) = range_of(end, since, req.step);
            form.push(("start", seconds(start)));
            form.push(("end", seconds(end)));
            form.push(("step", format!("{}", step as f64 / 1000.0)));
            "/api/v1/query_range"
        }
    };
    let mut why = None;
    if let Some(url) = &target.url {
        match post_form(url, path, &form, target.api_key.as_deref()) {
            Ok((_, body)) => {
                let data = api_data(&body).map_err(|e| match e {
                    CliQueryError::Shape(m) => CliQueryError::Http {
                        url: url.clone(),
                        message: m,
                    },
                    e => e,
                })?;
                return Ok((data, Via::Daemon(url.clone())));
            }
            Err(HttpError::Unreachable(e)) => {
                why = Some(format!("nothing answers at {url}: {e}"));
            }
            Err(HttpError::Other(message)) => {
                return Err(CliQueryError::Http {
                    url: url.clone(),
                    message,
                })
            }
        }
    }
    let data = local(req, &target.data_dir, &target.limits, end)?;
    Ok((
        data,
        Via::Local {
            dir: target.data_dir.clone(),
            why,
        },
    ))
}

/// Start and step (ms) of a range ending at `end`.
fn range_of(end: i64, since: Duration, step: Option<Duration>) -> (i64, i64) {
    let since_ms = since.as_millis().min(i64::MAX as u128 / 2) as i64;
    let step_ms = match step {
        Some(s) => s.as_millis().min(i64::MAX as u128 / 2) as i64,
        None => (since_ms / 120 / 1000 * 1000).max(1000),
    };
    (end - since_ms, step_ms)
}

fn seconds(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

fn local(req: &Request, dir: &Path, limits: &Limits, end: i64) -> Result<Json, CliQueryError> {
    let source = StoreSource::from_reader(open_read_only(dir)?);
    let engine = Engine::new(limits.clone());
    let value = match req.since {
        None => engine.instant(&source, &req.expr, end)?,
        Some(since) => {
            let (start, step) = range_of(end, since, req.step);
            crate::query::Value::Matrix(engine.range(&source, &req.expr, start, end, step)?)
        }
    };
    serde_json::to_value(&value).map_err(|e| CliQueryError::Shape(e.to_string()))
}

/// Extracts `data` from an API answer, or its error.
fn api_data(body: &[u8]) -> Result<Json, CliQueryError> {
    let v: Json = serde_json::from_slice(body).map_err(|e| {
        CliQueryError::Shape(format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    match v.get("status").and_then(Json::as_str) {
        Some("success") => v
            .get("data")
            .cloned()
            .ok_or_else(|| CliQueryError::Shape("no data".into())),
        Some("error") => Err(CliQueryError::Api {
            error_type: v
                .get("errorType")
                .and_then(Json::as_str)
                .unwrap_or("error")
                .to_owned(),
            error: v
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned(),
        }),
        _ => Err(CliQueryError::Shape(format!("no status in {v}"))),
    }
}

/// A failed HTTP exchange: nobody listening (fall back to the database) or anything else.
#[derive(Debug)]
enum HttpError {
    Unreachable(std::io::Error),
    Other(String),
}

/// The daemon's URL for a listen address: a wildcard address is reached on loopback.
pub fn url_for_listen(listen: &str) -> String {
    let host = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    format!("http://{host}")
}

/// A minimal HTTP/1.1 client (POST a form, read to EOF): the only client automon needs, so
/// not worth an HTTP client crate in the daemon binary.
fn post_form(
    url: &str,
    path: &str,
    form: &[(&str, String)],
    api_key: Option<&str>,
) -> Result<(u16, Vec<u8>), HttpError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        HttpError::Other("only http:// URLs are supported (https needs a proxy)".into())
    })?;
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| HttpError::Other(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| HttpError::Other(format!("{host} resolves to no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(HttpError::Unreachable)?;
    // The server bounds the query time; this only guards against a hung peer.
    let io_timeout = Some(Duration::from_secs(300));
    let other = |e: std::io::Error| HttpError::Other(e.to_string());
    stream.set_read_timeout(io_timeout).map_err(other)?;
    stream.set_write_timeout(io_timeout).map_err(other)?;
    let body = serde_urlencoded::to_string(form).map_err(|e| HttpError::Other(e.to_string()))?;
    let mut head = format!(
        "POST {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: automon/{}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Accept: application/json\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(key) = api_key {
        let _ = write!(head, "Authorization: Bearer {key}\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(other)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(other)?;
    parse_response(&raw).map_err(HttpError::Other)
}

/// Status and body of a complete HTTP/1.1 response (plain or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {}", head.lines().next().unwrap_or("")))?;
    if status == 401 {
        return Err(
            "401 Unauthorized: set http.api_key_file in the config given with --config".into(),
        );
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// `name{a="1",b="2"}` from a JSON `metric` object.
fn series_name(metric: &Json) -> String {
    let Some(map) = metric.as_object() else {
        return "{}".into();
    };
    let name = map.get("__name__").and_then(Json::as_str).unwrap_or("");
    let labels: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    if labels.is_empty() && !name.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// `[t, "v"]` → (t as written, v).
fn pair(p: &Json) -> Option<(String, String)> {
    let a = p.as_array()?;
    Some((a.first()?.to_string(), a.get(1)?.as_str()?.to_owned()))
}

/// A series name and its `(timestamp, value)` points as written in the JSON.
type Row = (String, Vec<(String, String)>);

/// (series, points) of any result type, in result order.
fn rows(data: &Json) -> Result<Vec<Row>, CliQueryError> {
    let shape = |m: &str| CliQueryError::Shape(m.to_owned());
    let result = data.get("result").ok_or_else(|| shape("no result"))?;
    match data.get("resultType").and_then(Json::as_str) {
        Some("vector") => result
            .as_array()
            .ok_or_else(|| shape("vector is not an array"))?
            .iter()
            .map(|s| {
                let p = s
                    .get("value")
                    .and_then(pair)
                    .ok_or_else(|| shape("bad sample"))?;
                Ok((series_name(s.get("metric").unwrap_or(&Json::Null)), vec![p]))
            })
            .collect(),
        Some("matrix") => result
            .as_array()
            .ok_or_else(|| shape("matrix is not an array"))?
            .iter()
            .map(|s| {
                let points = s
                    .get("values")
                    .and_then(Json::as_array)
                    .ok_or_else(|| shape("bad series"))?
                    .iter()
                    .map(|p| pair(p).ok_or_else(|| shape("bad point")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((series_name(s.get("metric").unwrap_or(&Json::Null)), points))
            })
            .collect(),
        Some(t @ ("scalar" | "string")) => {
            let p = pair(result).ok_or_else(|| shape("bad scalar"))?;
            Ok(vec![(t.to_owned(), vec![p])])
        }
        other => Err(shape(&format!("unknown resultType {other:?}"))),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Renders Prometheus' `data` object in `format`.
pub fn render(data: &Json, format: Format) -> Result<String, CliQueryError> {
    let mut out = String::new();
    match format {
        Format::Json => {
            // Written by hand to keep Prometheus' key order (`resultType` first); a
            // `serde_json::Value` map sorts its keys.
            let field = |k: &str| serde_json::to_string(data.get(k).unwrap_or(&Json::Null));
            let (t, r) = field("resultType")
                .and_then(|t| Ok((t, field("result")?)))
                .map_err(|e| CliQueryError::Shape(e.to_string()))?;
            out = format!("{{\"resultType\":{t},\"result\":{r}}}\n");
        }
        Format::Csv => {
            out.push_str("series,timestamp,value\n");
            for (series, points) in rows(data)? {
                let s = csv_field(&series);
                for (t, v) in points {
                    let _ = writeln!(out, "{s},{t},{}", csv_field(&v));
                }
            }
        }
        Format::Table => {
            let is_matrix = data.get("resultType").and_then(Json::as_str) == Some("matrix");
            let mut table: Vec<Vec<String>> = Vec::new();
            if is_matrix {
                table.push(
                    ["SERIES", "POINTS", "MIN", "MAX", "LAST"]
                        .map(String::from)
                        .into(),
                );
                for (series, points) in rows(data)? {
                    let nums: Vec<f64> =
                        points.iter().filter_map(|(_, v)| v.parse().ok()).collect();
                    let min = nums.iter().copied().fold(f64::INFINITY, f64::min);
                    let max = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let last = points.last().map(|(_, v)| v.clone()).unwrap_or_default();
                    table.push(vec![
                        series,
                        points.len().to_string(),
                        crate::query::value::format_sample_value(min),
                        crate::query::value::format_sample_value(max),
                        last,
                    ]);
                }
            } else {
                table.push(["SERIES", "TIMESTAMP", "VALUE"].map(String::from).into());
                for (series, points) in rows(data)? {
                    for (t, v) in points {
                        table.push(vec![series.clone(), t, v]);
                    }
                }
            }
            let cols = table.first().map(Vec::len).unwrap_or(0);
            let widths: Vec<usize> = (0..cols)
                .map(|c| {
                    table
                        .iter()
                        .map(|r| r[c].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in &table {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_vectors_and_matrices() {
        let v: Json = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a,b"},"value":[1.5,"1"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&v, Format::Csv).unwrap(),
            "series,timestamp,value\n\"up{job=\"\"a,b\"\"}\",1.5,1\n"
        );
        let t = render(&v, Format::Table).unwrap();
        assert!(t.starts_with("SERIES"), "{t}");
        assert!(t.contains("up{job=\"a,b\"}  1.5        1"), "{t}");
        let m: Json = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"],[2,"5"]]}]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&m, Format::Csv).unwrap(),
            "series,timestamp,value\n{},1,2\n{},2,5\n"
        );
        let t = render(&m, Format::Table).unwrap();
        assert!(t.lines().nth(1).unwrap().starts_with("{}"), "{t}");
        let s: Json = serde_json::from_str(r#"{"resultType":"scalar","result":[3,"2"]}"#).unwrap();
        assert_eq!(
            render(&s, Format::Csv).unwrap(),
            "series,timestamp,value\nscalar,3,2\n"
        );
    }

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (400, b"abcde".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn default_step_and_listen_url() {
        assert_eq!(
            range_of(10_000_000, Duration::from_secs(3600), None),
            (6_400_000, 30_000)
        );
        assert_eq!(range_of(100_000, Duration::from_secs(60), None).1, 1000);
        assert_eq!(url_for_listen("0.0.0.0:9787"), "http://127.0.0.1:9787");
        assert_eq!(url_for_listen("[::]:9787"), "http://[::1]:9787");
    }

    #[test]
    fn api_errors_are_reported() {
        let e = api_data(br#"{"status":"error","errorType":"bad_data","error":"x"}"#).unwrap_err();
        assert_eq!(e.to_string(), "bad_data: x");
    }
}
