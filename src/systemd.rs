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

/// The watchdog interval systemd expects pings within, if the watchdog is enabled for us.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec))
    } else {
        None
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
