//! Generic webhook: POSTs Alertmanager's webhook payload (version "4"), so any consumer
//! written for Alertmanager (prometheus-msteams, incident tools, a small script) works.
//!
//! Headers: `Content-Type: application/json`; `X-Automon-Dedup-Key: <dedup key>`, the same
//! on every retry of one notification, so a consumer can drop repeats (delivery is at least
//! once); `Authorization: Bearer <token>` with `bearer_token`; and with `hmac_secret`,
//! `X-Automon-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256 of the exact body
//! bytes under that key (GitHub's `X-Hub-Signature-256` scheme): the consumer recomputes
//! it over the raw body before parsing it and compares in constant time.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde::Serialize;

use super::{
    http, rfc3339_ms, skipped_resolved, AlertStatus, Notification, Notifier, SendFuture,
    GO_ZERO_TIME,
};
use crate::config::receivers::WebhookConfig;

/// Header carrying the notification's dedup key.
pub const DEDUP_HEADER: &str = "x-automon-dedup-key";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-automon-signature";

/// One `[[alerting.receivers.webhook]]`.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: String,
    bearer_token: Option<String>,
    hmac_key: Option<ring::hmac::Key>,
    max_alerts: usize,
    send_resolved: bool,
}

impl WebhookNotifier {
    /// Builds the notifier from a validated config (secrets already read).
    pub fn new(c: &WebhookConfig) -> Result<Self, String> {
        let url = c.url.clone().ok_or("no url")?;
        Ok(WebhookNotifier {
            client: http::client(c.timeout.0, c.ca_file.as_deref(), c.insecure_skip_verify)?,
            url,
            bearer_token: c.bearer_token.clone(),
            hmac_key: c
                .hmac_secret
                .as_ref()
                .map(|s| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.as_bytes())),
            max_alerts: c.max_alerts,
            send_resolved: c.send_resolved,
        })
    }

    async fn post(&self, n: &Notification) -> Result<super::Delivered, super::NotifyError> {
        let body = payload_bytes(n, self.max_alerts);
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&n.dedup_key) {
            headers.insert(HeaderName::from_static(DEDUP_HEADER), v);
        }
        if let Some(token) = &self.bearer_token {
            let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                super::NotifyError::Permanent("bearer token is not a valid header value".into())
            })?;
            headers.insert(AUTHORIZATION, v);
        }
        if let Some(key) = &self.hmac_key {
            let v = HeaderValue::from_str(&signature(key, &body))
                .map_err(|_| super::NotifyError::Permanent("bad signature header".into()))?;
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), v);
        }
        http::post_json(&self.client, &self.url, body, headers).await
    }
}

impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            if self.send_resolved {
                return self.post(n).await;
            }
            match n.firing_only() {
                Some(f) => self.post(&f).await,
                None => Ok(skipped_resolved()),
            }
        })
    }
}

/// `sha256=<lowercase hex of HMAC-SHA256(key, body)>`.
pub fn signature(key: &ring::hmac::Key, body: &[u8]) -> String {
    let tag = ring::hmac::sign(key, body);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Alertmanager's webhook message, version 4.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<Alert<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

/// The JSON body, at most `max_alerts` alerts (0: all), the rest counted in
/// `truncatedAlerts`.
pub fn payload_bytes(n: &Notification, max_alerts: usize) -> Vec<u8> {
    let keep = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let p = Payload {
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: n.alerts.len() - keep,
        status: n.status.as_str(),
        receiver: &n.receiver,
        group_labels: &n.group_labels,
        common_labels: &n.common_labels,
        common_annotations: &n.common_annotations,
        external_url: &n.external_url,
        alerts: n.alerts[..keep]
            .iter()
            .map(|a| Alert {
                status: a.status.as_str(),
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: rfc3339_ms(a.starts_at_ms),
                ends_at: match (a.status, a.ends_at_ms) {
                    (AlertStatus::Resolved, Some(ms)) => rfc3339_ms(ms),
                    _ => GO_ZERO_TIME.to_owned(),
                },
                generator_url: &a.generator_url,
                fingerprint: &a.fingerprint,
            })
            .collect(),
    };
    // Maps of strings and plain fields cannot fail to serialize.
    serde_json::to_vec(&p).unwrap_or_default()
}
