//! Slack-compatible incoming webhook: `{"text": ..., "blocks": [...]}`. `text` is the
//! fallback shown in notifications and by servers without blocks (Mattermost, older
//! Rocket.Chat); the blocks are a header, one section per alert, and a context line.

use serde_json::{json, Value};

use super::{
    http, humanize, rfc3339_ms, skipped_resolved, AlertStatus, Notification, Notifier, SendFuture,
};
use crate::config::receivers::SlackConfig;

/// Slack rejects a message with more than 50 blocks; header, context and the "more" line
/// leave room for this many alerts.
pub const MAX_ALERT_BLOCKS: usize = 20;

/// Slack cuts a section's text at 3000 characters; longer is rejected.
const MAX_SECTION_CHARS: usize = 2900;

/// One `[[alerting.receivers.slack]]`.
pub struct SlackNotifier {
    client: reqwest::Client,
    url: String,
    channel: Option<String>,
    username: Option<String>,
    send_resolved: bool,
}

impl SlackNotifier {
    /// Builds the notifier from a validated config (URL already read from its file).
    pub fn new(c: &SlackConfig) -> Result<Self, String> {
        Ok(SlackNotifier {
            client: http::client(c.timeout.0, None, false)?,
            url: c.url.clone().ok_or("no url")?,
            channel: c.channel.clone(),
            username: c.username.clone(),
            send_resolved: c.send_resolved,
        })
    }

    async fn post(&self, n: &Notification) -> Result<super::Delivered, super::NotifyError> {
        let mut body = message(n);
        if let Some(obj) = body.as_object_mut() {
            if let Some(c) = &self.channel {
                obj.insert("channel".into(), json!(c));
            }
            if let Some(u) = &self.username {
                obj.insert("username".into(), json!(u));
            }
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        http::post_json(&self.client, &self.url, bytes, Default::default()).await
    }
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
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

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message without channel or username overrides.
pub fn message(n: &Notification) -> Value {
    let title = n.title();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, 150), "emoji": true}
    })];
    for a in n.alerts.iter().take(MAX_ALERT_BLOCKS) {
        let icon = match a.status {
            AlertStatus::Firing => ":red_circle:",
            AlertStatus::Resolved => ":large_green_circle:",
        };
        let name = a
            .labels
            .get("alertname")
            .map_or("(unnamed)", String::as_str);
        let mut text = format!(
            "{icon} *{}* {}",
            a.status.as_str().to_uppercase(),
            esc(name)
        );
        if let Some(s) = a.annotations.get("summary") {
            text.push_str(&format!("\n{}", esc(s)));
        }
        if let Some(d) = a.annotations.get("description") {
            text.push_str(&format!("\n_{}_", esc(d)));
        }
        text.push_str(&format!(
            "\n*Value:* {}  *Since:* {}",
            humanize(a.value),
            rfc3339_ms(a.starts_at_ms)
        ));
        if let (AlertStatus::Resolved, Some(end)) = (a.status, a.ends_at_ms) {
            text.push_str(&format!("  *Resolved:* {}", rfc3339_ms(end)));
        }
        let labels: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("`{}={}`", esc(k), esc(v)))
            .collect();
        if !labels.is_empty() {
            text.push_str(&format!("\n{}", labels.join(" ")));
        }
        if !a.generator_url.is_empty() {
            text.push_str(&format!("\n<{}|Query>", a.generator_url));
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SECTION_CHARS)}
        }));
    }
    if n.alerts.len() > MAX_ALERT_BLOCKS {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!(
                "… and {} more alerts", n.alerts.len() - MAX_ALERT_BLOCKS
            )}
        }));
    }
    let mut context = format!("automon on {}", esc(&n.host));
    if !n.external_url.is_empty() {
        context.push_str(&format!(" · <{}|{}>", n.external_url, esc(&n.external_url)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}]
    }));
    json!({"text": esc(&title), "blocks": blocks})
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
