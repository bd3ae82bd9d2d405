//! Alertmanager: `POST <url>/api/v2/alerts` with the alerts as Prometheus sends them, so a
//! fleet's automons feed one Alertmanager that groups, silences and routes centrally.
//!
//! Alertmanager forgets an alert whose `endsAt` has passed, and considers it resolved. A
//! firing alert is therefore sent with `endsAt` = now + 4 × `resend_interval` (Prometheus'
//! rule) and re-sent at least every `resend_interval` ([`Notifier::resend_interval`]): if
//! automon dies, Alertmanager resolves its alerts by itself within four intervals instead
//! of paging forever. A resolved alert is sent with its real `endsAt`.
//!
//! Each configured URL is its own integration with its own outbox entries, as Prometheus
//! sends to every Alertmanager of an HA pair separately: one instance being down neither
//! blocks the other nor makes the healthy one receive duplicates from retries.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde::Serialize;

use super::{http, now_ms, rfc3339_ms, AlertStatus, Notification, Notifier, SendFuture};
use crate::config::receivers::AlertmanagerConfig;

/// One `[[alerting.receivers.alertmanager]]`.
pub struct AlertmanagerNotifier {
    client: reqwest::Client,
    endpoint: String,
    authorization: Option<HeaderValue>,
    resend_interval: Duration,
}

impl AlertmanagerNotifier {
    /// Builds the notifier from a validated config (secrets already read).
    pub fn new(c: &AlertmanagerConfig) -> Result<Self, String> {
        let authorization = match (&c.bearer_token, &c.username, &c.password) {
            (Some(t), _, _) => Some(format!("Bearer {t}")),
            (None, Some(u), Some(p)) => Some(format!("Basic {}", base64(&format!("{u}:{p}")))),
            _ => None,
        }
        .map(|v| {
            let mut v = HeaderValue::from_str(&v)
                .map_err(|_| "credentials are not a valid header value".to_owned())?;
            v.set_sensitive(true);
            Ok::<_, String>(v)
        })
        .transpose()?;
        Ok(AlertmanagerNotifier {
            client: http::client(c.timeout.0, c.ca_file.as_deref(), c.insecure_skip_verify)?,
            endpoint: endpoint(&c.url),
            authorization,
            resend_interval: c.resend_interval.0,
        })
    }
}

impl Notifier for AlertmanagerNotifier {
    fn kind(&self) -> &'static str {
        "alertmanager"
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let body = body_bytes(n, now_ms(), self.resend_interval);
            let mut headers = HeaderMap::new();
            if let Some(v) = &self.authorization {
                headers.insert(AUTHORIZATION, v.clone());
            }
            http::post_json(&self.client, &self.endpoint, body, headers).await
        })
    }

    fn resend_interval(&self) -> Option<Duration> {
        Some(self.resend_interval)
    }
}

/// `<url>/api/v2/alerts`, keeping a path prefix (`http://proxy/alertmanager`).
pub fn endpoint(url: &str) -> String {
    format!("{}/api/v2/alerts", url.trim_end_matches('/'))
}

/// One alert of Alertmanager's `postableAlerts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

/// The JSON array for `now_ms`: firing alerts end 4 × `resend` from now, resolved ones when
/// they resolved.
pub fn body_bytes(n: &Notification, now_ms: i64, resend: Duration) -> Vec<u8> {
    let valid_for = i64::try_from(resend.as_millis().saturating_mul(4)).unwrap_or(i64::MAX);
    let alerts: Vec<PostableAlert<'_>> = n
        .alerts
        .iter()
        .map(|a| {
            let ends = match (a.status, a.ends_at_ms) {
                (AlertStatus::Resolved, Some(end)) => end,
                // A resolved alert without an end time ends now: the best that is known.
                (AlertStatus::Resolved, None) => now_ms,
                (AlertStatus::Firing, _) => now_ms.saturating_add(valid_for),
            };
            // Alertmanager rejects an alert that ends before it starts (clock steps).
            let ends = ends.max(a.starts_at_ms);
            PostableAlert {
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: rfc3339_ms(a.starts_at_ms),
                ends_at: rfc3339_ms(ends),
                generator_url: &a.generator_url,
            }
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap_or_default()
}

/// Standard base64 with padding, for the basic-auth header.
fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, x)| n | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i), o);
        }
    }

    #[test]
    fn endpoint_keeps_prefix() {
        assert_eq!(endpoint("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(endpoint("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(endpoint("https://x/am/"), "https://x/am/api/v2/alerts");
    }
}
