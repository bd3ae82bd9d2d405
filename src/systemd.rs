//! Every interaction with systemd in one place: `READY=1`, `STATUS=`, `WATCHDOG=1`,
//! `STOPPING=1`, the watchdog interval, and whether stderr is connected to the journal.
//!
//! Failing to notify is logged and never fatal: the daemon must run the same with or without
//! systemd.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// Tells systemd start-up is complete, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the one-line status shown by `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Feeds the watchdog.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Announces a reload in progress (`RELOADING=1`) so `systemctl reload` reports it.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Reload finished.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Announces shutdown.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog interval systemd expects pings within, if the watchdog is enabled for us:
/// `WATCHDOG_USEC` set, and `WATCHDOG_PID` either unset or our pid (as `sd_watchdog_enabled(3)`
/// defines it; the sd-notify crate insists on `WATCHDOG_PID`, which is stricter than systemd).
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    match pid {
        None => Some(Duration::from_micros(usec)),
        Some(p) if p.trim().parse::<u32>().ok() == Some(me) => Some(Duration::from_micros(usec)),
        Some(_) => None,
    }
}

/// Whether stderr is the journal stream systemd connected us to (`JOURNAL_STREAM` names the
/// device and inode of that stream; compare so that a redirected stderr is honoured).
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// Whether the system was booted with systemd (for `doctor`).
pub fn booted() -> bool {
    sd_notify::booted().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_env() {
        let us = Some(Duration::from_secs(1));
        assert_eq!(parse_watchdog(Some("1000000"), None, 7), us);
        assert_eq!(parse_watchdog(Some("1000000"), Some("7"), 7), us);
        assert_eq!(parse_watchdog(Some("1000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("x"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }
}
