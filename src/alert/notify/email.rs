//! Email through an SMTP relay (lettre, tokio, rustls): STARTTLS, implicit TLS or, for a
//! relay on this host, plain; optional AUTH. One message per notification, to every
//! recipient at once, with a plain-text and an HTML part listing each alert.
//!
//! No connection pool: a notification is rare, and a pooled connection the relay closed
//! in the meantime would turn into a failed first attempt.

use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{
    humanize, rfc3339_ms, skipped_resolved, AlertInfo, AlertStatus, Delivered, Notification,
    Notifier, NotifyError, SendFuture,
};
use crate::config::receivers::{parse_smarthost, EmailConfig, SmtpTls};

/// One `[[alerting.receivers.email]]`.
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    send_resolved: bool,
}

impl EmailNotifier {
    /// Builds the notifier from a validated config (password already read).
    pub fn new(c: &EmailConfig) -> Result<Self, String> {
        let (host, port) = parse_smarthost(&c.smarthost)?;
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("from {:?}: {e}", c.from))?;
        let to =
            c.to.iter()
                .map(|t| t.parse().map_err(|e| format!("to {t:?}: {e}")))
                .collect::<Result<Vec<Mailbox>, String>>()?;
        if to.is_empty() {
            return Err("no recipients".into());
        }
        let tls = match c.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(&host, c)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(&host, c)?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(c.timeout.0));
        if let Some(h) = &c.hello {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(EmailNotifier {
            transport: b.build(),
            from,
            to,
            timeout: c.timeout.0,
            send_resolved: c.send_resolved,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        let msg = message(n, &self.from, &self.to)?;
        // lettre's timeout bounds each SMTP step but not every wait (a server that never
        // answers a failed AUTH); this bounds the whole conversation, as the Notifier
        // contract asks.
        let resp = tokio::time::timeout(self.timeout, self.transport.send(msg))
            .await
            .map_err(|_| NotifyError::Retryable("SMTP conversation timed out".into()))?
            .map_err(classify)?;
        let text: Vec<&str> = resp.message().collect();
        Ok(Delivered {
            detail: format!("SMTP {} {}", resp.code(), text.join(" ")),
        })
    }
}

impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            if self.send_resolved {
                return self.deliver(n).await;
            }
            match n.firing_only() {
                Some(f) => self.deliver(&f).await,
                None => Ok(skipped_resolved()),
            }
        })
    }
}

fn tls_parameters(host: &str, c: &EmailConfig) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(host.to_owned());
    if let Some(path) = &c.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    if c.insecure_skip_verify {
        b = b
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    b.build_rustls()
        .map_err(|e| format!("TLS setup: {}", super::http::chain(&e)))
}

/// SMTP 4xx, connection and TLS trouble may pass; 5xx (unknown user, auth refused,
/// message rejected) and a message lettre cannot write will not.
fn classify(e: lettre::transport::smtp::Error) -> NotifyError {
    let text = super::http::chain(&e);
    if e.is_permanent() || e.is_client() {
        NotifyError::Permanent(text)
    } else {
        NotifyError::Retryable(text)
    }
}

/// The message: subject from [`Notification::title`], a plain-text and an HTML part.
pub fn message(n: &Notification, from: &Mailbox, to: &[Mailbox]) -> Result<Message, NotifyError> {
    // A Message-ID lets mail clients and relays tell repeats of one notification apart.
    let mut b = Message::builder()
        .from(from.clone())
        .subject(n.title())
        .message_id(None);
    for t in to {
        b = b.to(t.clone());
    }
    b.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text_body(n)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html_body(n)),
            ),
    )
    .map_err(|e| NotifyError::Permanent(format!("cannot build the message: {e}")))
}

/// The label pairs worth listing: all but `alertname`, which heads the entry.
fn shown_labels(a: &AlertInfo) -> impl Iterator<Item = (&String, &String)> {
    a.labels.iter().filter(|(k, _)| k.as_str() != "alertname")
}

fn alert_name(a: &AlertInfo) -> &str {
    a.labels
        .get("alertname")
        .map_or("(unnamed)", String::as_str)
}

/// The plain-text part.
pub fn text_body(n: &Notification) -> String {
    let (firing, resolved) = n.counts();
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", n.title());
    let _ = writeln!(
        s,
        "{firing} firing, {resolved} resolved on {} (receiver {}).",
        n.host, n.receiver
    );
    for a in &n.alerts {
        let _ = writeln!(
            s,
            "\n[{}] {}",
            a.status.as_str().to_uppercase(),
            alert_name(a)
        );
        for (k, v) in &a.annotations {
            let _ = writeln!(s, "  {k}: {v}");
        }
        let _ = writeln!(s, "  value: {}", humanize(a.value));
        let _ = writeln!(s, "  started: {}", rfc3339_ms(a.starts_at_ms));
        if let (AlertStatus::Resolved, Some(end)) = (a.status, a.ends_at_ms) {
            let _ = writeln!(s, "  resolved: {}", rfc3339_ms(end));
        }
        let labels: Vec<String> = shown_labels(a).map(|(k, v)| format!("{k}={v:?}")).collect();
        let _ = writeln!(s, "  labels: {}", labels.join(", "));
        if !a.generator_url.is_empty() {
            let _ = writeln!(s, "  link: {}", a.generator_url);
        }
    }
    let _ = write!(s, "\n-- \nautomon on {}", n.host);
    if !n.external_url.is_empty() {
        let _ = write!(s, " · {}", n.external_url);
    }
    s.push('\n');
    s
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Only http(s) links become anchors, so a label value cannot smuggle `javascript:` in.
fn link(url: &str, text: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        format!("<a href=\"{}\">{}</a>", esc(url), esc(text))
    } else {
        esc(text)
    }
}

/// The HTML part: one table per alert, inline styles only (mail clients drop `<style>`).
pub fn html_body(n: &Notification) -> String {
    let (firing, resolved) = n.counts();
    let mut s = String::from(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif;font-size:14px\">\n",
    );
    let _ = writeln!(s, "<h2>{}</h2>", esc(&n.title()));
    let _ = writeln!(
        s,
        "<p>{firing} firing, {resolved} resolved on <b>{}</b> (receiver {}).</p>",
        esc(&n.host),
        esc(&n.receiver)
    );
    for a in &n.alerts {
        let color = match a.status {
            AlertStatus::Firing => "#c0392b",
            AlertStatus::Resolved => "#27ae60",
        };
        let _ = writeln!(
            s,
            "<h3><span style=\"color:{color}\">{}</span> {}</h3>",
            a.status.as_str().to_uppercase(),
            esc(alert_name(a))
        );
        s.push_str("<table style=\"border-collapse:collapse\" cellpadding=\"3\">\n");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(
                s,
                "<tr><td style=\"color:#666;vertical-align:top\">{}</td><td>{v}</td></tr>",
                esc(k)
            );
        };
        for (k, v) in &a.annotations {
            row(k, esc(v));
        }
        row("value", esc(&humanize(a.value)));
        row("started", esc(&rfc3339_ms(a.starts_at_ms)));
        if let (AlertStatus::Resolved, Some(end)) = (a.status, a.ends_at_ms) {
            row("resolved", esc(&rfc3339_ms(end)));
        }
        let labels: Vec<String> = shown_labels(a)
            .map(|(k, v)| format!("<code>{}=&quot;{}&quot;</code>", esc(k), esc(v)))
            .collect();
        row("labels", labels.join(" "));
        if !a.generator_url.is_empty() {
            row("link", link(&a.generator_url, "query"));
        }
        s.push_str("</table>\n");
    }
    let _ = write!(s, "<p style=\"color:#666\">automon on {}", esc(&n.host));
    if !n.external_url.is_empty() {
        let _ = write!(s, " · {}", link(&n.external_url, &n.external_url));
    }
    s.push_str("</p>\n</body></html>\n");
    s
}
