//! Library side of `automon test-notify RECEIVER`: send one clearly marked test notification
//! through each integration of a configured receiver and report exactly what each server
//! answered. It is the first thing an operator runs after configuring a receiver, so every
//! answer is shown as the server gave it, failures included.

use std::fmt;

use crate::alert::notify::{
    build_receiver, integration_id, test_notification, Delivered, NotifyBuildError, NotifyError,
};
use crate::config::Config;

/// What one integration answered.
#[derive(Debug)]
pub struct Outcome {
    /// `oncall/email/0`.
    pub id: String,
    /// `email`, `webhook`, ...
    pub kind: &'static str,
    /// The server's answer, or why there was none.
    pub result: Result<Delivered, NotifyError>,
}

/// Why nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum TestNotifyError {
    /// No receiver of that name.
    #[error("no receiver named {name:?}; configured receivers: {}", list(.known))]
    UnknownReceiver {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The receiver has no integration to send through.
    #[error("receiver {0:?} has no integrations; add [[alerting.receivers.email]], .webhook, .slack or .alertmanager tables to it")]
    NoIntegrations(String),
    /// An integration could not be set up.
    #[error("cannot set up {0}")]
    Build(#[from] NotifyBuildError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none (add [[alerting.receivers]] to the config)".to_owned()
    } else {
        names.join(", ")
    }
}

/// This host's name, as notifications name it.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `alerting.external_url`, else `http://<host>:<port of http.listen>`.
pub fn external_url(cfg: &Config, host: &str) -> String {
    if let Some(u) = &cfg.alerting.external_url {
        return u.clone();
    }
    let port = cfg
        .http
        .listen
        .parse::<std::net::SocketAddr>()
        .map_or(9787, |a| a.port());
    format!("http://{host}:{port}")
}

/// Sends the test notification through every integration of `receiver`, one after the
/// other, in config order.
pub async fn run(cfg: &Config, receiver: &str) -> Result<Vec<Outcome>, TestNotifyError> {
    let Some(rc) = cfg.alerting.receivers.iter().find(|r| r.name == receiver) else {
        return Err(TestNotifyError::UnknownReceiver {
            name: receiver.to_owned(),
            known: cfg
                .alerting
                .receivers
                .iter()
                .map(|r| r.name.clone())
                .collect(),
        });
    };
    let notifiers = build_receiver(rc)?;
    if notifiers.is_empty() {
        return Err(TestNotifyError::NoIntegrations(receiver.to_owned()));
    }
    let host = host_name();
    let n = test_notification(receiver, &host, &external_url(cfg, &host));
    let mut index: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut out = Vec::new();
    for notifier in notifiers {
        let kind = notifier.kind();
        let i = index.entry(kind).or_default();
        let id = integration_id(receiver, kind, *i);
        *i += 1;
        let result = notifier.send(&n).await;
        out.push(Outcome { id, kind, result });
    }
    Ok(out)
}

/// The report, one line per integration and a summary.
pub struct Report<'a>(pub &'a [Outcome]);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ok = 0;
        for o in self.0 {
            match &o.result {
                Ok(d) => {
                    ok += 1;
                    writeln!(f, "{}: ok: {}", o.id, d.detail)?;
                }
                Err(NotifyError::Retryable(e)) => writeln!(
                    f,
                    "{}: FAILED (temporary; the daemon would retry): {e}",
                    o.id
                )?,
                Err(NotifyError::Permanent(e)) => writeln!(
                    f,
                    "{}: FAILED (permanent; the daemon would give up): {e}",
                    o.id
                )?,
            }
        }
        writeln!(f, "{ok} of {} integrations delivered", self.0.len())
    }
}
