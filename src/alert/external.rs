//! Alerts that do not come from alert rules: the repair engine's. A rule that gave up is a
//! *state* ("repair exhausted"), fed to the grouper like a rule's alert while it lasts and
//! resolved when it ends, so it is grouped, routed, silenced, repeated and resolved like any
//! alert. A repair performed is an *event*: it is routed and silenced like an alert but sent
//! at once, once, since there is nothing to wait for and nothing to resolve.

use std::collections::BTreeMap;

use super::group::Entry;
use super::notify::{AlertInfo, AlertStatus};
use super::{fingerprint, fingerprint_hex};

/// The queue between the repair engine and the alerting loop.
#[derive(Debug, Default)]
pub struct External {
    alerts: BTreeMap<String, AlertInfo>,
    events: Vec<AlertInfo>,
}

/// An alert as the grouper takes it.
pub fn entry(info: AlertInfo) -> Entry {
    let fp = fingerprint(&info.labels);
    Entry {
        fp,
        info: AlertInfo {
            fingerprint: fingerprint_hex(fp),
            ..info
        },
    }
}

impl External {
    /// Starts (or updates) the state alert `key`.
    pub fn fire(&mut self, key: &str, info: AlertInfo) {
        self.alerts.insert(key.to_owned(), info);
    }

    /// Ends the state alert `key` at `now_ms`; it is fed once more, as resolved.
    pub fn resolve(&mut self, key: &str, now_ms: i64) {
        if let Some(a) = self.alerts.get_mut(key) {
            a.status = AlertStatus::Resolved;
            a.ends_at_ms = Some(now_ms);
        }
    }

    /// Queues an event notification.
    pub fn event(&mut self, info: AlertInfo) {
        self.events.push(info);
    }

    /// The state alerts for one evaluation; resolved ones are handed out once and dropped.
    pub fn entries(&mut self) -> Vec<Entry> {
        let out = self.alerts.values().cloned().map(entry).collect();
        self.alerts.retain(|_, a| a.status == AlertStatus::Firing);
        out
    }

    /// Takes the queued events.
    pub fn take_events(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.events)
            .into_iter()
            .map(entry)
            .collect()
    }

    /// Puts events back after they could not be queued, to be tried again.
    pub fn requeue(&mut self, events: Vec<Entry>) {
        let mut back: Vec<AlertInfo> = events.into_iter().map(|e| e.info).collect();
        back.append(&mut self.events);
        self.events = back;
    }

    /// Whether events wait.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether a state alert `key` is firing.
    pub fn is_firing(&self, key: &str) -> bool {
        self.alerts
            .get(key)
            .is_some_and(|a| a.status == AlertStatus::Firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> AlertInfo {
        AlertInfo {
            status: AlertStatus::Firing,
            labels: [("alertname".to_owned(), name.to_owned())].into(),
            annotations: BTreeMap::new(),
            starts_at_ms: 1,
            ends_at_ms: None,
            value: 1.0,
            fingerprint: String::new(),
            generator_url: String::new(),
        }
    }

    #[test]
    fn state_alerts_are_fed_until_resolved_once() {
        let mut x = External::default();
        x.fire("web", info("AutomonRepairExhausted"));
        assert!(x.is_firing("web"));
        assert_eq!(x.entries().len(), 1);
        assert_eq!(x.entries().len(), 1);
        x.resolve("web", 9);
        let last = x.entries();
        assert_eq!(last[0].info.status, AlertStatus::Resolved);
        assert_eq!(last[0].info.ends_at_ms, Some(9));
        assert_eq!(last[0].info.fingerprint.len(), 16);
        assert!(x.entries().is_empty());
        assert!(!x.is_firing("web"));
    }

    #[test]
    fn events_are_taken_once() {
        let mut x = External::default();
        x.event(info("AutomonRepair"));
        assert_eq!(x.take_events().len(), 1);
        assert!(x.take_events().is_empty());
    }
}
