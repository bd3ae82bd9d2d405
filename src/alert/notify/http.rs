//! What the HTTP receivers (webhook, Slack, Alertmanager) share: building a client and
//! turning one POST's outcome into [`Delivered`] or a classified [`NotifyError`].

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};

use super::{Delivered, NotifyError};

/// Longest excerpt of a response body kept in [`Delivered::detail`] or an error.
const BODY_EXCERPT: usize = 512;

/// A client for one integration. Redirects are not followed: a webhook that redirects is
/// misconfigured, and following a redirect would turn the POST into a GET or send the
/// secret headers to another host.
pub(crate) fn client(
    timeout: Duration,
    ca_file: Option<&Path>,
    insecure_skip_verify: bool,
) -> Result<reqwest::Client, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("automon/", env!("CARGO_PKG_VERSION"))),
    );
    let mut b = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        // Servers drop idle keep-alive connections after 60 s or so (nginx: 75 s); reusing
        // one they are closing turns a good send into a failed attempt.
        .pool_idle_timeout(Duration::from_secs(30))
        .danger_accept_invalid_certs(insecure_skip_verify);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| format!("cannot build HTTP client: {}", chain(&e)))
}

/// POSTs `body` as JSON with `headers` and classifies the outcome: 2xx is delivered;
/// 5xx, 429 and transport failures are worth a retry; any other status is not.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<Delivered, NotifyError> {
    let resp = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(transport_error)?;
    let status = resp.status();
    // The body explains a failure (Slack's `invalid_payload`, Alertmanager's validation
    // message); reading it may itself fail, which must not hide the status.
    let text = match resp.text().await {
        Ok(t) => excerpt(&t),
        Err(e) => format!("(body unreadable: {})", chain(&e.without_url())),
    };
    classify(status, &text)
}

/// Maps a status and body excerpt to the result of a send.
pub(crate) fn classify(status: reqwest::StatusCode, body: &str) -> Result<Delivered, NotifyError> {
    let line = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    if status.is_success() {
        Ok(Delivered { detail: line })
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(NotifyError::Retryable(line))
    } else if status.is_redirection() {
        Err(NotifyError::Permanent(format!(
            "{line} (redirects are not followed; configure the final URL)"
        )))
    } else {
        Err(NotifyError::Permanent(line))
    }
}

/// A request that got no HTTP answer. Only a request that could not even be built is
/// permanent; refused connections, resets, DNS failures and timeouts may pass.
fn transport_error(e: reqwest::Error) -> NotifyError {
    // The URL may carry a secret (Slack's is one): keep it out of logs and the outbox.
    let e = e.without_url();
    let what = if e.is_timeout() {
        format!("timed out: {}", chain(&e))
    } else if e.is_connect() {
        format!("cannot connect: {}", chain(&e))
    } else {
        chain(&e)
    };
    if e.is_builder() {
        NotifyError::Permanent(what)
    } else {
        NotifyError::Retryable(what)
    }
}

/// An error with its sources, `outer: inner: innermost`, without repeats (hyper and
/// reqwest often wrap the same text).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The first [`BODY_EXCERPT`] bytes of a body on one line.
fn excerpt(text: &str) -> String {
    let t = text.trim();
    let mut end = t.len().min(BODY_EXCERPT);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = t[..end].replace(['\r', '\n'], " ");
    if end < t.len() {
        s.push_str(" …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            classify(StatusCode::OK, "ok").unwrap().detail,
            "HTTP 200 OK: ok"
        );
        assert_eq!(
            classify(StatusCode::NO_CONTENT, "").unwrap().detail,
            "HTTP 204 No Content"
        );
        for s in [500, 502, 503, 504, 429] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(classify(s, "").unwrap_err().is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 301, 302] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(!classify(s, "").unwrap_err().is_retryable(), "{s}");
        }
    }

    #[test]
    fn excerpts_are_one_line_and_bounded() {
        assert_eq!(excerpt(" a\nb \n"), "a b");
        let long = "é".repeat(600);
        let e = excerpt(&long);
        assert!(e.ends_with(" …") && e.len() <= BODY_EXCERPT + 4);
    }
}
