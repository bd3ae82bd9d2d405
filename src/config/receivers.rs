//! Receiver settings: `[[alerting.receivers]]`, each a name and any number of integrations.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::HumanDuration;

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

/// How the SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587 or 25).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Tls,
    /// No encryption: only for a relay on this host, or with `allow_plaintext = true`.
    None,
}

/// `[[alerting.receivers.email]]`: mail through an SMTP relay.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct EmailConfig {
    /// The relay as `host:port`, e.g. `"smtp.example.com:587"`.
    pub smarthost: String,
    /// `starttls` (default), `tls` (implicit TLS) or `none`.
    pub tls: SmtpTls,
    /// Allow `tls = "none"` (and with it a password in clear) to a relay that is not on
    /// loopback. Off, because anyone on the path could read the alerts and the password.
    pub allow_plaintext: bool,
    /// Sender address, e.g. `"automon <automon@example.com>"`.
    pub from: String,
    /// Recipients; at least one.
    pub to: Vec<String>,
    /// SMTP AUTH user; set together with a password.
    pub username: Option<String>,
    /// SMTP AUTH password inline; prefer `password_file`.
    pub password: Option<String>,
    /// File holding the SMTP AUTH password (relative to the config file naming it).
    pub password_file: Option<PathBuf>,
    /// Name sent with EHLO; default this host's name.
    pub hello: Option<String>,
    /// PEM file of CA certificates trusted for the relay, in addition to the built-in roots
    /// (for a relay with a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and host name. For labs and tests only: it lets anyone on the
    /// path read the mail and the password.
    pub insecure_skip_verify: bool,
    /// Limit of each SMTP step, and of the whole send.
    pub timeout: HumanDuration,
    /// Also mail when alerts resolve.
    pub send_resolved: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smarthost: String::new(),
            tls: SmtpTls::Starttls,
            allow_plaintext: false,
            from: String::new(),
            to: Vec::new(),
            username: None,
            password: None,
            password_file: None,
            hello: None,
            ca_file: None,
            insecure_skip_verify: false,
            timeout: HumanDuration(Duration::from_secs(30)),
            send_resolved: true,
        }
    }
}

/// `[[alerting.receivers.webhook]]`: POST of Alertmanager's webhook JSON (version "4").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebhookConfig {
    /// Where to POST, `http://` or `https://`.
    pub url: Option<String>,
    /// File holding the URL, for URLs that carry a token.
    pub url_file: Option<PathBuf>,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Key of the `X-Automon-Signature: sha256=<hex HMAC-SHA256 of the body>` header.
    pub hmac_secret: Option<String>,
    /// File holding the HMAC key.
    pub hmac_secret_file: Option<PathBuf>,
    /// Limit of the whole request.
    pub timeout: HumanDuration,
    /// Most alerts in one payload (0: all); the rest are counted in `truncatedAlerts`.
    pub max_alerts: usize,
    /// PEM file of extra CA certificates trusted for an `https://` URL.
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (labs and tests only).
    pub insecure_skip_verify: bool,
    /// Also POST when alerts resolve.
    pub send_resolved: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: None,
            url_file: None,
            bearer_token: None,
            bearer_token_file: None,
            hmac_secret: None,
            hmac_secret_file: None,
            timeout: HumanDuration(Duration::from_secs(10)),
            max_alerts: 0,
            ca_file: None,
            insecure_skip_verify: false,
            send_resolved: true,
        }
    }
}

/// `[[alerting.receivers.slack]]`: a Slack-compatible incoming webhook (Slack, Mattermost,
/// Rocket.Chat).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct SlackConfig {
    /// The incoming-webhook URL; it is a secret, so prefer `url_file`.
    pub url: Option<String>,
    /// File holding the webhook URL.
    pub url_file: Option<PathBuf>,
    /// Post to this channel instead of the webhook's default (where the server allows it).
    pub channel: Option<String>,
    /// Post under this name instead of the webhook's default.
    pub username: Option<String>,
    /// Limit of the whole request.
    pub timeout: HumanDuration,
    /// Also post when alerts resolve.
    pub send_resolved: bool,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            url: None,
            url_file: None,
            channel: None,
            username: None,
            timeout: HumanDuration(Duration::from_secs(10)),
            send_resolved: true,
        }
    }
}

/// `[[alerting.receivers.alertmanager]]`: one Alertmanager instance; list one table per
/// instance of an HA pair, as Prometheus does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `"http://alertmanager:9093"`; alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    /// Firing alerts are re-sent at least this often; each claims to end after four of these,
    /// so Alertmanager resolves them by itself if automon stops.
    pub resend_interval: HumanDuration,
    /// Sent as `Authorization: Bearer <token>` (for a proxy in front).
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Basic-auth user (Alertmanager's `--web.config.file` basic_auth_users).
    pub username: Option<String>,
    /// Basic-auth password inline; prefer `password_file`.
    pub password: Option<String>,
    /// File holding the basic-auth password.
    pub password_file: Option<PathBuf>,
    /// Limit of the whole request.
    pub timeout: HumanDuration,
    /// PEM file of extra CA certificates trusted for an `https://` URL.
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (labs and tests only).
    pub insecure_skip_verify: bool,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            url: String::new(),
            resend_interval: HumanDuration(Duration::from_secs(60)),
            bearer_token: None,
            bearer_token_file: None,
            username: None,
            password: None,
            password_file: None,
            timeout: HumanDuration(Duration::from_secs(10)),
            ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

/// Splits an SMTP `smarthost` into host and port: `"smtp.example.com:587"`,
/// `"127.0.0.1:25"`, `"[::1]:25"`. The port is required because 25, 465 and 587 each imply a
/// different kind of connection, and guessing the wrong one fails in a confusing way.
pub fn parse_smarthost(s: &str) -> Result<(String, u16), String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(
            "is required: the SMTP relay as host:port, e.g. \"smtp.example.com:587\"".into(),
        );
    }
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && !p.contains(']') => (h, p),
        _ => {
            return Err(format!(
            "{t:?} has no port; write host:port, e.g. \"{t}:587\" (STARTTLS) or \"{t}:465\" (tls)"
        ))
        }
    };
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host = bracketed.unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['[', ']']) {
        return Err(format!("{t:?} has no valid host; write host:port"));
    }
    // `::1:25` is itself an IPv6 address: only brackets make the port unambiguous.
    if host.contains(':') && (bracketed.is_none() || host.parse::<std::net::Ipv6Addr>().is_err()) {
        return Err(format!(
            "{t:?}: an IPv6 host goes in brackets, e.g. \"[::1]:25\""
        ));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{t:?}: port {port:?} is not a number from 1 to 65535"))?;
    Ok((host.to_owned(), port))
}

/// Whether `host` (a name or an IP literal) is this host: `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    h.eq_ignore_ascii_case("localhost")
        || h.to_ascii_lowercase().ends_with(".localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smarthost_forms() {
        assert_eq!(
            parse_smarthost("smtp.example.com:587"),
            Ok(("smtp.example.com".into(), 587))
        );
        assert_eq!(
            parse_smarthost("127.0.0.1:25"),
            Ok(("127.0.0.1".into(), 25))
        );
        assert_eq!(parse_smarthost("[::1]:2525"), Ok(("::1".into(), 2525)));
        assert!(parse_smarthost("").is_err());
        assert!(parse_smarthost("smtp.example.com")
            .unwrap_err()
            .contains("no port"));
        assert!(parse_smarthost("smtp.example.com:smtp").is_err());
        assert!(parse_smarthost("smtp.example.com:0").is_err());
        assert!(parse_smarthost("::1:25").unwrap_err().contains("brackets"));
        assert!(parse_smarthost("[::1]").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "a.localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.example.com",
            "10.0.0.1",
            "::2",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    /// Errors of `toml` with a root route to its first receiver appended (the route is
    /// required once receivers exist, and is not what these tests are about).
    fn errors(toml: &str) -> Vec<String> {
        let toml = with_route(toml);
        match crate::config::parse_str(&toml, "/etc/automon/automon.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn with_route(toml: &str) -> String {
        let first = toml
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned());
        match first {
            Some(name) if !toml.contains("[alerting.route]") => {
                format!("{toml}\n[alerting.route]\nreceiver = {name:?}\n")
            }
            _ => toml.to_owned(),
        }
    }

    #[test]
    fn valid_receivers_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp_pass"), "s3cret\n").unwrap();
        std::fs::write(
            dir.path().join("hook"),
            "https://hooks.slack.com/services/T/B/X\n",
        )
        .unwrap();
        let main = dir.path().join("automon.toml");
        std::fs::write(
            &main,
            r##"
[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.email]]
smarthost = "smtp.example.com:587"
from = "automon <automon@example.com>"
to = ["oncall@example.com", "Ops <ops@example.com>"]
username = "automon"
password_file = "smtp_pass"
[[alerting.receivers.slack]]
url_file = "hook"
channel = "#ops"
[[alerting.receivers.webhook]]
url = "https://example.com/hook"
hmac_secret = "k"
max_alerts = 10
[[alerting.receivers.alertmanager]]
url = "http://am:9093"
resend_interval = "30s"
[alerting.route]
receiver = "oncall"
"##,
        )
        .unwrap();
        let loaded = crate::config::load(&crate::config::ConfigSource::Explicit(main)).unwrap();
        let r = &loaded.config.alerting.receivers[0];
        assert_eq!(r.email[0].password.as_deref(), Some("s3cret"));
        assert_eq!(r.email[0].tls, SmtpTls::Starttls);
        assert_eq!(
            r.slack[0].url.as_deref(),
            Some("https://hooks.slack.com/services/T/B/X")
        );
        assert_eq!(r.alertmanager[0].resend_interval.0, Duration::from_secs(30));
        assert_eq!(loaded.secret_files.len(), 2);
    }

    #[test]
    fn receiver_errors_name_line_and_key() {
        let e = errors(
            r##"[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.email]]
from = "not an address"
to = ["ok@example.com", "bad@"]
username = "u"
[[alerting.receivers.email]]
smarthost = "mail.example.com:25"
tls = "none"
from = "a@example.com"
to = ["b@example.com"]
[[alerting.receivers.webhook]]
url = "ftp://example.com/x"
[[alerting.receivers.slack]]
channel = "#x"
[[alerting.receivers.alertmanager]]
url = "http://am:9093"
resend_interval = "100ms"
bearer_token = "t"
username = "u"
password = "p"
"##,
        );
        let want = [
            "/etc/automon/automon.toml:3: alerting.receivers.0.email.0.smarthost: is required",
            "/etc/automon/automon.toml:4: alerting.receivers.0.email.0.from: \"not an address\" is not an email address",
            "/etc/automon/automon.toml:5: alerting.receivers.0.email.0.to.1: \"bad@\" is not an email address",
            "/etc/automon/automon.toml:6: alerting.receivers.0.email.0.username: is set without `password_file`",
            "/etc/automon/automon.toml:9: alerting.receivers.0.email.1.tls: tls = \"none\" to mail.example.com",
            "/etc/automon/automon.toml:13: alerting.receivers.0.webhook.0.url: scheme \"ftp\" is not http or https",
            "/etc/automon/automon.toml:14: alerting.receivers.0.slack.0.url: is required (or `url_file`",
            "/etc/automon/automon.toml:18: alerting.receivers.0.alertmanager.0.resend_interval: must be at least 1s",
            "/etc/automon/automon.toml:19: alerting.receivers.0.alertmanager.0.bearer_token: set either",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "no {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn plaintext_smtp_is_fine_on_loopback_or_with_opt_in() {
        let ok = |extra: &str, host: &str| {
            errors(&format!(
                "[[alerting.receivers]]\nname = \"r\"\n[[alerting.receivers.email]]\n\
                 smarthost = \"{host}:25\"\ntls = \"none\"\nfrom = \"a@example.com\"\n\
                 to = [\"b@example.com\"]\n{extra}"
            ))
        };
        assert!(ok("", "127.0.0.1").is_empty());
        assert!(ok("", "localhost").is_empty());
        assert!(ok("", "[::1]").is_empty());
        assert!(ok("allow_plaintext = true\n", "mail.lan").is_empty());
        assert_eq!(ok("", "mail.lan").len(), 1);
    }

    #[test]
    fn secret_inline_and_file_both_set_is_an_error() {
        let e = errors(
            "[[alerting.receivers]]\nname = \"r\"\n[[alerting.receivers.webhook]]\n\
             url = \"http://x/\"\nbearer_token = \"a\"\nbearer_token_file = \"/nonexistent\"\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("alerting.receivers.0.webhook.0.bearer_token_file: both"));
        let e = errors(
            "[[alerting.receivers]]\nname = \"r\"\n[[alerting.receivers.slack]]\n\
             url_file = \"/nonexistent/hook\"\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("slack.0.url_file: secret file /nonexistent/hook cannot be read"));
    }

    #[test]
    fn typos_in_integrations_get_suggestions() {
        let e = errors(
            "[[alerting.receivers]]\nname = \"r\"\n[[alerting.receivers.email]]\n\
             smarthost = \"127.0.0.1:25\"\ntls = \"starttls\"\nfrom = \"a@example.com\"\n\
             to = [\"b@example.com\"]\npasword_file = \"x\"\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].contains(":8: alerting.receivers.0.email.0.pasword_file: unknown key (did you mean `password_file`?)"),
            "{e:#?}"
        );
        let e = errors(
            "[[alerting.receivers]]\nname = \"r\"\n[[alerting.receivers.email]]\n\
             smarthost = \"127.0.0.1:25\"\ntls = \"ssl\"\nfrom = \"a@example.com\"\n\
             to = [\"b@example.com\"]\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains(":5: alerting.receivers.0.email.0.tls: unknown variant `ssl`")),
            "{e:#?}"
        );
    }
}
