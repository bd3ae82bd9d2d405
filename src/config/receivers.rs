//! Receiver settings: `[[alerting.receivers]]`, each a name and any number of integrations.

use serde::Deserialize;

/// A named receiver; a route sends its groups to it, and it fans out to its integrations.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReceiverConfig {
    /// Unique name that routes refer to.
    pub name: String,
    /// Email integrations.
    pub email: Vec<EmailConfig>,
    /// Generic JSON webhooks (Alertmanager webhook payload, version 4).
    pub webhook: Vec<WebhookConfig>,
    /// Slack-compatible incoming webhooks.
    pub slack: Vec<SlackConfig>,
    /// Prometheus Alertmanager instances (`POST /api/v2/alerts`).
    pub alertmanager: Vec<AlertmanagerConfig>,
}

/// SMTP email settings (filled in by the receivers work).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct EmailConfig {}

/// Webhook settings (filled in by the receivers work).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebhookConfig {}

/// Slack settings (filled in by the receivers work).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SlackConfig {}

/// Alertmanager settings (filled in by the receivers work).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertmanagerConfig {}
