//! Receivers: what a notification is, and the [`Notifier`] trait each integration (email,
//! webhook, Slack, Alertmanager) implements in a file of its own.
//!
//! A [`Notification`] is plain data (serde) because the outbox stores it as JSON before any
//! send is attempted: what a receiver gets after a restart is byte-for-byte what it would have
//! got before.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether an alert (or a whole notification) is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The alert's condition holds (after its `for`).
    Firing,
    /// The alert stopped firing.
    Resolved,
}

impl AlertStatus {
    /// `"firing"` or `"resolved"`, as Alertmanager writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert inside a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    /// Firing or resolved at the time the notification was made.
    pub status: AlertStatus,
    /// All labels: the rule's result labels, the rule's `labels`, `alertname`.
    pub labels: BTreeMap<String, String>,
    /// Annotations with templates already expanded.
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (pending → firing transition's `active_at`), Unix ms.
    pub starts_at_ms: i64,
    /// When it resolved, Unix ms; `None` while firing.
    pub ends_at_ms: Option<i64>,
    /// The expression's value at the last evaluation.
    pub value: f64,
    /// Stable hash of `labels` (16 hex digits), Alertmanager's fingerprint role.
    pub fingerprint: String,
    /// Link to the expression in automon's API (`<external_url>/api/v1/query?query=...`).
    pub generator_url: String,
}

/// One notification to one receiver: a group of alerts, Alertmanager style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The receiver's configured name.
    pub receiver: String,
    /// `Firing` if any alert in it fires, else `Resolved`.
    pub status: AlertStatus,
    /// Identifies the group: route path and the `group_by` label values.
    pub group_key: String,
    /// The `group_by` labels and their values.
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert of the group shares.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert of the group shares.
    pub common_annotations: BTreeMap<String, String>,
    /// The alerts, firing first, then by start time.
    pub alerts: Vec<AlertInfo>,
    /// Base URL of this automon (config `alerting.external_url`), for links.
    pub external_url: String,
    /// The host the alerts come from (its hostname), for subjects and texts.
    pub host: String,
    /// Stable across retries and restarts: hash of group key and each alert's fingerprint
    /// and status. Receivers that deduplicate (webhook consumers) can key on it.
    pub dedup_key: String,
    /// When the notification was made, Unix ms.
    pub created_ms: i64,
}

/// What the far side answered to a successful send, for logs and `automon test-notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// E.g. `HTTP 200 OK: {"ok":true}` or `SMTP 250 2.0.0 Ok: queued as 1234`.
    pub detail: String,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying: connection refused, timeout, HTTP 5xx or 429, SMTP 4xx.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: HTTP 4xx (but 429), SMTP 5xx, a payload the server rejects. The
    /// outbox gives up on it at once and counts the failure.
    #[error("{0}")]
    Permanent(String),
}

impl NotifyError {
    /// True for [`NotifyError::Retryable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Retryable(_))
    }
}

/// The future a [`Notifier`] returns; boxed so the trait stays object safe.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Delivered, NotifyError>> + Send + 'a>>;

/// One configured integration of a receiver (one email config, one webhook URL, ...).
///
/// Implementations send exactly once per call and never retry internally: the outbox owns
/// retries, backoff and giving up, so every attempt is visible and counted.
pub trait Notifier: Send + Sync {
    /// `email`, `webhook`, `slack` or `alertmanager`.
    fn kind(&self) -> &'static str;

    /// Sends `n`. Must finish within the notifier's own timeout.
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a>;

    /// For receivers that forget alerts they stop hearing about (Alertmanager): firing alerts
    /// are re-sent at least this often, whatever the route's `repeat_interval`.
    fn resend_interval(&self) -> Option<Duration> {
        None
    }

    /// Whether this integration is told about resolutions (`send_resolved`).
    fn send_resolved(&self) -> bool {
        true
    }
}

pub mod alertmanager;
pub mod email;
mod http;
pub mod slack;
pub mod webhook;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::receivers::ReceiverConfig;

/// A receiver integration that could not be built from a valid config (a CA file that
/// changed since validation, an address lettre rejects, a TLS setup that fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{integration}: {message}")]
pub struct NotifyBuildError {
    /// The integration, as [`integration_id`] names it.
    pub integration: String,
    /// What went wrong.
    pub message: String,
}

/// The name under which the outbox, logs and metrics know one integration:
/// `oncall/email/0` is the first `[[alerting.receivers.email]]` of receiver `oncall`.
pub fn integration_id(receiver: &str, kind: &str, index: usize) -> String {
    format!("{receiver}/{kind}/{index}")
}

/// Every receiver's integrations, by receiver name, in config order within a receiver:
/// email, webhook, slack, then alertmanager tables.
pub fn build(
    receivers: &[ReceiverConfig],
) -> Result<BTreeMap<String, Vec<Arc<dyn Notifier>>>, NotifyBuildError> {
    receivers
        .iter()
        .map(|r| Ok((r.name.clone(), build_receiver(r)?)))
        .collect()
}

/// One receiver's integrations, in the order [`build`] gives them.
pub fn build_receiver(r: &ReceiverConfig) -> Result<Vec<Arc<dyn Notifier>>, NotifyBuildError> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    let err = |kind: &str, i: usize| {
        let id = integration_id(&r.name, kind, i);
        move |message: String| NotifyBuildError {
            integration: id,
            message,
        }
    };
    for (i, c) in r.email.iter().enumerate() {
        out.push(Arc::new(
            email::EmailNotifier::new(c).map_err(err("email", i))?,
        ));
    }
    for (i, c) in r.webhook.iter().enumerate() {
        out.push(Arc::new(
            webhook::WebhookNotifier::new(c).map_err(err("webhook", i))?,
        ));
    }
    for (i, c) in r.slack.iter().enumerate() {
        out.push(Arc::new(
            slack::SlackNotifier::new(c).map_err(err("slack", i))?,
        ));
    }
    for (i, c) in r.alertmanager.iter().enumerate() {
        out.push(Arc::new(
            alertmanager::AlertmanagerNotifier::new(c).map_err(err("alertmanager", i))?,
        ));
    }
    Ok(out)
}

/// The `alertname` of the clearly marked message `automon test-notify` sends.
pub const TEST_ALERT_NAME: &str = "AutomonTestNotification";

/// A one-alert firing notification that says it is a test, for `automon test-notify`.
pub fn test_notification(receiver: &str, host: &str, external_url: &str) -> Notification {
    let now = now_ms();
    let labels: BTreeMap<String, String> = [
        ("alertname", TEST_ALERT_NAME),
        ("severity", "none"),
        ("instance", host),
        ("test", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let annotations: BTreeMap<String, String> = [
        (
            "summary",
            format!("Test notification from automon on {host}: please ignore"),
        ),
        (
            "description",
            format!(
                "`automon test-notify {receiver}` sent this to check that the receiver \
                 {receiver:?} delivers. No action is needed."
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let base = external_url.trim_end_matches('/');
    let group_key = format!("{{}}:{{alertname=\"{TEST_ALERT_NAME}\"}}");
    Notification {
        receiver: receiver.to_owned(),
        status: AlertStatus::Firing,
        group_labels: [("alertname".to_owned(), TEST_ALERT_NAME.to_owned())].into(),
        common_labels: labels.clone(),
        common_annotations: annotations.clone(),
        alerts: vec![AlertInfo {
            status: AlertStatus::Firing,
            fingerprint: format!("{:016x}", fnv1a(format!("{labels:?}").as_bytes())),
            labels,
            annotations,
            starts_at_ms: now,
            ends_at_ms: None,
            value: 1.0,
            generator_url: format!("{base}/api/v1/alerts"),
        }],
        external_url: base.to_owned(),
        host: host.to_owned(),
        // Unique per run: a test is a deliberate new message, never a duplicate to drop.
        dedup_key: format!(
            "test-{:016x}",
            fnv1a(format!("{group_key}{now}").as_bytes())
        ),
        group_key,
        created_ms: now,
    }
}

/// Now as Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// FNV-1a, for the test notification's made-up fingerprint and dedup key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds, as Alertmanager writes times.
pub fn rfc3339_ms(ms: i64) -> String {
    super::rfc3339(ms)
}

/// Go's zero time, which Alertmanager's webhook payload gives firing alerts as `endsAt`.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A value as people read it, Prometheus' `humanize` (SI prefixes, four significant digits),
/// with the micro sign that mail clients render where Prometheus writes `u`.
pub fn humanize(v: f64) -> String {
    // The prefix is the only letter `u` can be: digits, `.`, `e`, `Inf` and `NaN` hold none.
    super::template::humanize(v).replacen('u', "µ", 1)
}

impl Notification {
    /// Alerts firing and resolved in this notification.
    pub fn counts(&self) -> (usize, usize) {
        let firing = self
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count();
        (firing, self.alerts.len() - firing)
    }

    /// The distinct alert names, in first-seen order.
    pub fn alert_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for a in &self.alerts {
            let name = a
                .labels
                .get("alertname")
                .map_or("(unnamed)", String::as_str);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// One line for subjects and chat: `[FIRING:2] HostDiskFull on web1`,
    /// `[RESOLVED] HostDiskFull on web1`; three or more names are shortened.
    pub fn title(&self) -> String {
        let (firing, resolved) = self.counts();
        let status = match self.status {
            AlertStatus::Firing if resolved > 0 => {
                format!("[FIRING:{firing}, RESOLVED:{resolved}]")
            }
            AlertStatus::Firing => format!("[FIRING:{firing}]"),
            AlertStatus::Resolved => "[RESOLVED]".to_owned(),
        };
        let names = self.alert_names();
        let names = match names.len() {
            0 => "(no alerts)".to_owned(),
            1 | 2 => names.join(", "),
            n => format!("{}, {} and {} more", names[0], names[1], n - 2),
        };
        format!("{status} {names} on {}", self.host)
    }

    /// The notification with resolved alerts left out, for integrations configured with
    /// `send_resolved = false`; `None` when nothing would remain.
    pub fn firing_only(&self) -> Option<Notification> {
        let alerts: Vec<AlertInfo> = self
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .cloned()
            .collect();
        if alerts.is_empty() {
            return None;
        }
        Some(Notification {
            alerts,
            status: AlertStatus::Firing,
            ..self.clone()
        })
    }
}

/// What a notifier with `send_resolved = false` answers for a notification of resolved
/// alerts only: nothing was sent, on purpose.
pub(crate) fn skipped_resolved() -> Delivered {
    Delivered {
        detail: "not sent: only resolved alerts and send_resolved = false".into(),
    }
}

#[cfg(test)]
mod tests;
