//! Grouping and notification decisions, Alertmanager's dispatcher and notification pipeline
//! in one synchronous state machine: alerts are put into groups per route, a group is flushed
//! `group_wait` after it appears and every `group_interval` after that; at a flush, silenced
//! and inhibited alerts are left out and, per receiver integration, the notification log
//! decides whether anything new is to be said (new firing alerts, new resolutions, or
//! `repeat_interval` passed). What is to be said becomes outbox rows.
//!
//! Time is a parameter, so `for`, grouping and repeats are tested without sleeping.

use std::collections::{BTreeMap, BTreeSet};

use super::db::{Enqueue, NflogEntry};
use super::matcher::{self, Matcher};
use super::notify::{AlertInfo, AlertStatus, Notification};
use super::route::Route;
use super::silence::ActiveSilences;
use super::Fingerprint;
use crate::config::alerting::InhibitRuleConfig;

/// What the grouping needs to know about one integration of a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationInfo {
    /// `receiver/kind/index`.
    pub id: String,
    /// Whether resolutions are sent.
    pub send_resolved: bool,
    /// Re-send firing alerts at least this often (Alertmanager integrations), ms.
    pub resend_ms: Option<i64>,
}

/// A compiled inhibit rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

impl InhibitRule {
    /// Compiles one; the error names the offending key relative to the rule.
    pub fn compile(cfg: &InhibitRuleConfig) -> Result<InhibitRule, (String, String)> {
        let parse = |list: &[String], key: &str| {
            list.iter()
                .enumerate()
                .map(|(i, m)| Matcher::parse(m).map_err(|e| (format!("{key}.{i}"), e.to_string())))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(InhibitRule {
            source: parse(&cfg.source_matchers, "source_matchers")?,
            target: parse(&cfg.target_matchers, "target_matchers")?,
            equal: cfg.equal.clone(),
        })
    }
}

/// One alert as the grouping holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Fingerprint.
    pub fp: Fingerprint,
    /// The alert as receivers see it.
    pub info: AlertInfo,
}

#[derive(Debug)]
struct Group {
    route: usize,
    labels: BTreeMap<String, String>,
    alerts: BTreeMap<Fingerprint, Entry>,
    next_flush_ms: i64,
}

/// The grouping state.
pub struct Grouper {
    routes: Vec<Route>,
    root: Route,
    integrations: BTreeMap<String, Vec<IntegrationInfo>>,
    inhibit: Vec<InhibitRule>,
    groups: BTreeMap<String, Group>,
    nflog: BTreeMap<(String, String), NflogEntry>,
    host: String,
    external_url: String,
}

/// Why a flush left an alert out, for the alerts API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Muted {
    /// Silence ids muting it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of alerts inhibiting it.
    pub inhibited_by: Vec<String>,
}

fn flatten(route: &Route, out: &mut Vec<Route>) {
    let mut copy = route.clone();
    copy.routes.clear();
    out.push(copy);
    for c in &route.routes {
        flatten(c, out);
    }
}

impl Grouper {
    /// A grouper over a compiled route tree. `nflog` is the persisted notification log.
    pub fn new(
        root: Route,
        integrations: BTreeMap<String, Vec<IntegrationInfo>>,
        inhibit: Vec<InhibitRule>,
        nflog: BTreeMap<(String, String), NflogEntry>,
        host: String,
        external_url: String,
    ) -> Grouper {
        let mut routes = Vec::new();
        flatten(&root, &mut routes);
        Grouper {
            routes,
            root,
            integrations,
            inhibit,
            groups: BTreeMap::new(),
            nflog,
            host,
            external_url,
        }
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Feeds the alerts of one evaluation: firing ones and resolved ones that had fired.
    /// Alerts a group holds that are no longer fed at all (their rule was removed) are
    /// resolved now.
    pub fn update(&mut self, alerts: &[Entry], now_ms: i64) {
        let mut seen: BTreeSet<(String, Fingerprint)> = BTreeSet::new();
        for e in alerts {
            let routes: Vec<String> = self
                .root
                .matching(&e.info.labels)
                .iter()
                .map(|r| r.key.clone())
                .collect();
            for key in routes {
                let Some(idx) = self.routes.iter().position(|r| r.key == key) else {
                    continue;
                };
                let route = &self.routes[idx];
                let labels = route.group_labels(&e.info.labels);
                let gkey = route.group_key(&labels);
                // A resolved alert the group already dropped (after notifying it) is not
                // re-added on later evaluations.
                let known = self
                    .groups
                    .get(&gkey)
                    .is_some_and(|g| g.alerts.contains_key(&e.fp));
                if e.info.status == AlertStatus::Resolved && !known {
                    continue;
                }
                let wait = route.group_wait.as_millis() as i64;
                let group = self.groups.entry(gkey.clone()).or_insert_with(|| Group {
                    route: idx,
                    labels,
                    alerts: BTreeMap::new(),
                    next_flush_ms: now_ms + wait,
                });
                group.alerts.insert(e.fp, e.clone());
                seen.insert((gkey, e.fp));
            }
        }
        for (gkey, group) in self.groups.iter_mut() {
            for (fp, entry) in group.alerts.iter_mut() {
                if entry.info.status == AlertStatus::Firing && !seen.contains(&(gkey.clone(), *fp))
                {
                    entry.info.status = AlertStatus::Resolved;
                    entry.info.ends_at_ms = Some(now_ms);
                }
            }
        }
    }

    /// Earliest time a group is due, to sleep until.
    pub fn next_flush_ms(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }

    /// Why an alert with these labels would be muted now.
    pub fn muted(
        &self,
        labels: &BTreeMap<String, String>,
        fp: Fingerprint,
        firing: &[&Entry],
        silences: &ActiveSilences,
        now_ms: i64,
    ) -> Muted {
        Muted {
            silenced_by: silences.silenced_by(labels, now_ms),
            inhibited_by: self.inhibited_by(labels, fp, firing),
        }
    }

    fn inhibited_by(
        &self,
        labels: &BTreeMap<String, String>,
        fp: Fingerprint,
        firing: &[&Entry],
    ) -> Vec<String> {
        let mut by = Vec::new();
        for rule in &self.inhibit {
            if !matcher::matches_all(&rule.target, labels) {
                continue;
            }
            for src in firing {
                if src.fp == fp || !matcher::matches_all(&rule.source, &src.info.labels) {
                    continue;
                }
                let equal = rule
                    .equal
                    .iter()
                    .all(|l| labels.get(l) == src.info.labels.get(l));
                if equal {
                    by.push(src.info.fingerprint.clone());
                }
            }
        }
        by.sort();
        by.dedup();
        by
    }

    /// Flushes every due group: returns the outbox rows to write. The caller writes them with
    /// [`super::db::Db::enqueue`] and then calls [`Grouper::commit`]; if writing fails, the
    /// grouper state is unchanged and the next flush tries again.
    pub fn flush_due(&self, now_ms: i64, silences: &ActiveSilences) -> Vec<Enqueue> {
        let firing: Vec<&Entry> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.values())
            .filter(|e| e.info.status == AlertStatus::Firing)
            .collect();
        let mut out = Vec::new();
        for (gkey, group) in &self.groups {
            if group.next_flush_ms > now_ms {
                continue;
            }
            let route = &self.routes[group.route];
            let unmuted: Vec<&Entry> = group
                .alerts
                .values()
                .filter(|e| {
                    let m = self.muted(&e.info.labels, e.fp, &firing, silences, now_ms);
                    m.silenced_by.is_empty() && m.inhibited_by.is_empty()
                })
                .collect();
            let firing_set: BTreeSet<Fingerprint> = unmuted
                .iter()
                .filter(|e| e.info.status == AlertStatus::Firing)
                .map(|e| e.fp)
                .collect();
            let resolved_set: BTreeSet<Fingerprint> = unmuted
                .iter()
                .filter(|e| e.info.status == AlertStatus::Resolved)
                .map(|e| e.fp)
                .collect();
            let Some(integrations) = self.integrations.get(&route.receiver) else {
                continue;
            };
            for integ in integrations {
                let repeat = route.repeat_interval.as_millis() as i64;
                let repeat = integ.resend_ms.map_or(repeat, |r| r.min(repeat));
                let entry = self.nflog.get(&(integ.id.clone(), gkey.clone()));
                if !needs_update(
                    entry,
                    &firing_set,
                    &resolved_set,
                    integ.send_resolved,
                    repeat,
                    now_ms,
                ) {
                    continue;
                }
                let alerts: Vec<&Entry> = unmuted
                    .iter()
                    .copied()
                    .filter(|e| integ.send_resolved || e.info.status == AlertStatus::Firing)
                    .collect();
                let nflog = NflogEntry {
                    firing: firing_set.clone(),
                    resolved: resolved_set.clone(),
                    sent_ms: now_ms,
                };
                if alerts.is_empty() {
                    // Nothing to say (only resolutions, and this integration does not send
                    // them): record that, so the next flush does not ask again.
                    out.push(Enqueue {
                        integration: integ.id.clone(),
                        group_key: gkey.clone(),
                        dedup_key: String::new(),
                        payload: String::new(),
                        nflog,
                    });
                    continue;
                }
                let n = self.notification(&route.receiver, gkey, &group.labels, &alerts, now_ms);
                out.push(Enqueue {
                    integration: integ.id.clone(),
                    group_key: gkey.clone(),
                    dedup_key: n.dedup_key.clone(),
                    payload: serde_json::to_string(&n).unwrap_or_default(),
                    nflog,
                });
            }
        }
        out
    }

    /// Notifications for events (a repair performed): routed and silenced like alerts, but
    /// neither grouped nor repeated: each goes out now, once, to every integration of the
    /// receiver of each matching route. An event's labels must be unique to it (the repair
    /// engine adds the attempt), which makes its group key and dedup key unique too.
    pub fn events(&self, events: &[Entry], now_ms: i64, silences: &ActiveSilences) -> Vec<Enqueue> {
        let mut out = Vec::new();
        for e in events {
            if !silences.silenced_by(&e.info.labels, now_ms).is_empty() {
                continue;
            }
            for route in self.root.matching(&e.info.labels) {
                let Some(integrations) = self.integrations.get(&route.receiver) else {
                    continue;
                };
                let labels = route.group_labels(&e.info.labels);
                let gkey = format!("{}/event:{}", route.group_key(&labels), e.info.fingerprint);
                let n = self.notification(&route.receiver, &gkey, &labels, &[e], now_ms);
                let payload = serde_json::to_string(&n).unwrap_or_default();
                for integ in integrations {
                    out.push(Enqueue {
                        integration: integ.id.clone(),
                        group_key: gkey.clone(),
                        dedup_key: n.dedup_key.clone(),
                        payload: payload.clone(),
                        nflog: NflogEntry {
                            firing: [e.fp].into(),
                            resolved: BTreeSet::new(),
                            sent_ms: now_ms,
                        },
                    });
                }
            }
        }
        out
    }

    /// Records a successful [`Grouper::flush_due`]: log entries, dropped resolutions, next
    /// flush times.
    pub fn commit(&mut self, written: &[Enqueue], now_ms: i64) {
        for e in written {
            self.nflog.insert(
                (e.integration.clone(), e.group_key.clone()),
                e.nflog.clone(),
            );
        }
        let routes = &self.routes;
        self.groups.retain(|_, g| {
            if g.next_flush_ms > now_ms {
                return true;
            }
            let route = &routes[g.route];
            g.alerts.retain(|_, e| e.info.status == AlertStatus::Firing);
            let mut interval = route.group_interval.as_millis() as i64;
            if let Some(integs) = self.integrations.get(&route.receiver) {
                for i in integs {
                    if let Some(r) = i.resend_ms {
                        interval = interval.min(r);
                    }
                }
            }
            g.next_flush_ms = now_ms + interval.max(1);
            !g.alerts.is_empty()
        });
    }

    fn notification(
        &self,
        receiver: &str,
        group_key: &str,
        group_labels: &BTreeMap<String, String>,
        alerts: &[&Entry],
        now_ms: i64,
    ) -> Notification {
        let mut infos: Vec<AlertInfo> = alerts.iter().map(|e| e.info.clone()).collect();
        infos.sort_by(|a, b| {
            (a.status, a.starts_at_ms, &a.fingerprint).cmp(&(
                b.status,
                b.starts_at_ms,
                &b.fingerprint,
            ))
        });
        let status = if infos.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        let common = |get: &dyn Fn(&AlertInfo) -> &BTreeMap<String, String>| {
            let mut it = infos.iter();
            let mut acc = it.next().map(|a| get(a).clone()).unwrap_or_default();
            for a in it {
                acc.retain(|k, v| get(a).get(k) == Some(v));
            }
            acc
        };
        let common_labels = common(&|a| &a.labels);
        let common_annotations = common(&|a| &a.annotations);
        let mut key_input: BTreeMap<String, String> = BTreeMap::new();
        key_input.insert("group".into(), group_key.to_owned());
        key_input.insert("receiver".into(), receiver.to_owned());
        for a in &infos {
            key_input.insert(format!("a:{}", a.fingerprint), a.status.as_str().to_owned());
        }
        Notification {
            receiver: receiver.to_owned(),
            status,
            group_key: group_key.to_owned(),
            group_labels: group_labels.clone(),
            common_labels,
            common_annotations,
            alerts: infos,
            external_url: self.external_url.clone(),
            host: self.host.clone(),
            dedup_key: super::fingerprint_hex(super::fingerprint(&key_input)),
            created_ms: now_ms,
        }
    }
}

/// Alertmanager's decision (`DedupStage.needsUpdate`).
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    // Everything resolved: say so once if something was notified as firing.
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.sent_ms <= now_ms - repeat_ms
}

#[cfg(test)]
mod tests;
