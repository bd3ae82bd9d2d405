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

/// Identifies one integration in the outbox and in metrics: `receiver/kind/index`.
pub fn integration_id(receiver: &str, kind: &str, index: usize) -> String {
    format!("{receiver}/{kind}/{index}")
}

/// Receivers could not be built.
#[derive(Debug, thiserror::Error)]
#[error("receiver {receiver}: {message}")]
pub struct NotifyBuildError {
    /// Receiver name.
    pub receiver: String,
    /// What failed.
    pub message: String,
}

/// Builds every receiver's integrations. (Placeholder until the receiver implementations
/// land: every receiver gets no integrations.)
pub fn build(
    receivers: &[crate::config::receivers::ReceiverConfig],
) -> Result<std::collections::BTreeMap<String, Vec<std::sync::Arc<dyn Notifier>>>, NotifyBuildError>
{
    Ok(receivers
        .iter()
        .map(|r| (r.name.clone(), Vec::new()))
        .collect())
}
