//! The alerting loop: evaluates every rule each `evaluation_interval` on the store, writes
//! `ALERTS`/`ALERTS_FOR_STATE`, saves alert state, feeds the grouper and flushes due groups
//! into the outbox. It runs on a thread of its own: evaluation is CPU work that must not
//! occupy the async workers that serve `/metrics` and `/health`.
//!
//! A configuration reload stops the loop (which saves its state) and starts a new one that
//! restores it, the same path as a restart, so both behave alike.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use super::db::Db;
use super::external::External;
use super::group::{Entry, Grouper, Muted};
use super::notify::{AlertInfo, AlertStatus};
use super::outbox::now_ms;
use super::rule::{AlertState, Rule};
use super::silence::ActiveSilences;
use super::{fingerprint_hex, rfc3339};
use crate::model::Labels;
use crate::query::{Engine, Source};
use crate::selfmetrics::SelfMetrics;
use crate::store::{Store, WriteBatch};

/// Longest the loop sleeps, so silences added by the CLI take effect within a second.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// One alert as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing` (resolved ones are not listed).
    pub state: &'static str,
    /// RFC 3339.
    pub active_at: String,
    /// The value, formatted as Prometheus does.
    pub value: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Silences muting it.
    pub silenced_by: Vec<String>,
    /// Alerts inhibiting it.
    pub inhibited_by: Vec<String>,
}

/// One rule as the API shows it (Prometheus' `/api/v1/rules` shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// `inactive`, `pending` or `firing`: the most severe of its alerts.
    pub state: &'static str,
    /// Alert name.
    pub name: String,
    /// Expression.
    pub query: String,
    /// `for`, seconds.
    pub duration: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for: f64,
    /// Labels as written.
    pub labels: BTreeMap<String, String>,
    /// Annotations as written.
    pub annotations: BTreeMap<String, String>,
    /// Its pending and firing alerts.
    pub alerts: Vec<AlertView>,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: &'static str,
    /// The last evaluation's error.
    pub last_error: String,
    /// Seconds the last evaluation took.
    pub evaluation_time: f64,
    /// RFC 3339 time of the last evaluation.
    pub last_evaluation: String,
    /// Always `alerting`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where it was written.
    #[serde(skip)]
    pub source: String,
}

/// What the API reads; replaced after every evaluation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Rules in config order.
    pub rules: Vec<RuleView>,
    /// Evaluation interval, seconds.
    pub interval_s: f64,
    /// Whether alerting runs at all (and why not).
    pub disabled: Option<String>,
}

/// State shared between the loop, the dispatcher and the API; lives as long as the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The state database.
    pub db: Arc<Db>,
    /// Rules and alerts for the API.
    pub snapshot: Arc<RwLock<Snapshot>>,
    /// Wakes the outbox dispatcher.
    pub outbox_wake: Arc<Notify>,
    /// Alerts and events from the repair engine.
    pub external: Arc<Mutex<External>>,
}

/// Everything one generation of the loop runs with.
pub struct Manager {
    /// Compiled rules, in config order.
    pub rules: Vec<Rule>,
    /// The query engine.
    pub engine: Engine,
    /// The data rules are evaluated on.
    pub source: Arc<dyn Source>,
    /// Where `ALERTS` series are written.
    pub store: Option<Arc<Store>>,
    /// Grouping and notification decisions.
    pub grouper: Grouper,
    /// Evaluation interval.
    pub interval: Duration,
    /// Shared state.
    pub shared: Shared,
    /// Self-metrics.
    pub metrics: Arc<SelfMetrics>,
    /// Base URL for links.
    pub external_url: String,
}

/// A running loop; stopping it saves its state.
pub type Running = crate::worker::Worker;

impl Manager {
    /// Starts the loop on its own thread.
    pub fn spawn(self) -> std::io::Result<Running> {
        crate::worker::Worker::spawn("alerting", move |stopped| self.run(stopped))
    }

    fn run(mut self, stopped: Receiver<()>) {
        let now = now_ms();
        self.restore(now);
        let interval_ms = self.interval.as_millis().max(1) as i64;
        let mut next_eval = now;
        loop {
            let now = now_ms();
            let eval_due = now >= next_eval;
            let flush_due = self.grouper.next_flush_ms().is_some_and(|t| t <= now);
            // One read of the silences serves the evaluation's API snapshot and the flush.
            let events_due = self.shared.external.lock().is_ok_and(|x| x.has_events());
            let silences = if eval_due || flush_due || events_due {
                self.silences(now)
            } else {
                ActiveSilences::default()
            };
            if eval_due {
                self.evaluate(now, &silences);
                // Missed rounds (a suspended host) are skipped, not replayed.
                next_eval += interval_ms * ((now - next_eval) / interval_ms + 1);
            }
            self.flush(now, &silences);
            if events_due {
                self.send_events(now, &silences);
            }
            let wake_at = self
                .grouper
                .next_flush_ms()
                .map_or(next_eval, |f| f.min(next_eval));
            let sleep = Duration::from_millis((wake_at - now_ms()).max(0) as u64).min(MAX_SLEEP);
            match stopped.recv_timeout(sleep) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.save(now_ms());
    }

    fn restore(&mut self, now: i64) {
        let (last_eval, saved) = match self.shared.db.load_alerts() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot restore alert state; starting fresh");
                return;
            }
        };
        let Some(last_eval) = last_eval else { return };
        let mut by_rule: BTreeMap<String, Vec<super::rule::Alert>> = BTreeMap::new();
        for a in saved {
            by_rule.entry(a.rule.clone()).or_default().push(a);
        }
        let mut restored = 0;
        for rule in &mut self.rules {
            if let Some(alerts) = by_rule.remove(&rule.name) {
                restored += alerts.len();
                rule.restore(alerts, last_eval, now);
            }
        }
        if restored > 0 {
            tracing::info!(alerts = restored, "alert state restored");
        }
    }

    fn save(&self, now: i64) {
        let alerts = self.rules.iter().flat_map(|r| r.active.values());
        if let Err(e) = self.shared.db.save_alerts(now, alerts) {
            tracing::error!(error = %e, "saving alert state failed");
        }
    }

    /// One evaluation round at `now`.
    pub fn evaluate(&mut self, now: i64, silences: &ActiveSilences) {
        let started = Instant::now();
        let m = &self.metrics.alerts;
        for rule in &mut self.rules {
            m.evaluations.with_label_values(&[&rule.name]).inc();
            if let Err(e) = rule.eval(&self.engine, self.source.as_ref(), now) {
                m.evaluation_failures.with_label_values(&[&rule.name]).inc();
                tracing::warn!(rule = %rule.name, error = %e, "rule evaluation failed");
            }
        }
        m.round_duration.set(started.elapsed().as_secs_f64());

        let mut samples: Vec<(String, Labels, i64, f64)> = Vec::new();
        let (mut pending, mut firing) = (0u64, 0u64);
        let mut entries: Vec<Entry> = Vec::new();
        for rule in &self.rules {
            let generator_url = self.generator_url(&rule.expr);
            for a in rule.active.values() {
                let state = match a.state {
                    AlertState::Pending => {
                        pending += 1;
                        "pending"
                    }
                    AlertState::Firing => {
                        firing += 1;
                        "firing"
                    }
                    AlertState::Inactive => "",
                };
                if !state.is_empty() {
                    let mut with_state = a.labels.clone();
                    with_state.insert("alertstate".into(), state.into());
                    samples.push(("ALERTS".into(), with_state.into_iter().collect(), now, 1.0));
                    samples.push((
                        "ALERTS_FOR_STATE".into(),
                        a.labels.clone().into_iter().collect(),
                        now,
                        (a.active_at_ms / 1000) as f64,
                    ));
                }
                let status = match a.state {
                    AlertState::Firing => AlertStatus::Firing,
                    AlertState::Inactive if a.fired_at_ms.is_some() => AlertStatus::Resolved,
                    _ => continue,
                };
                let fp = a.fingerprint();
                entries.push(Entry {
                    fp,
                    info: AlertInfo {
                        status,
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                        ends_at_ms: a.resolved_at_ms.filter(|_| status == AlertStatus::Resolved),
                        value: a.value,
                        fingerprint: fingerprint_hex(fp),
                        generator_url: generator_url.clone(),
                    },
                });
            }
        }
        if let Ok(mut x) = self.shared.external.lock() {
            entries.extend(x.entries());
        }
        m.alerts.with_label_values(&["pending"]).set(pending as f64);
        m.alerts.with_label_values(&["firing"]).set(firing as f64);

        if let Some(store) = &self.store {
            let batch = WriteBatch {
                // Series of alerts that ended get a staleness marker from the store, as
                // Prometheus writes for ALERTS.
                source: "alerting".into(),
                samples,
                series: Vec::new(),
            };
            if let Err(e) = store.write_blocking(batch) {
                tracing::warn!(error = %e, "writing ALERTS series failed");
            }
        }
        self.save(now);
        self.grouper.update(&entries, now);
        self.publish(now, &entries, silences);
    }

    fn generator_url(&self, expr: &str) -> String {
        let q: String = serde_urlencoded::to_string([("query", expr)]).unwrap_or_default();
        format!(
            "{}/api/v1/query?{q}",
            self.external_url.trim_end_matches('/')
        )
    }

    fn silences(&self, now: i64) -> ActiveSilences {
        match self.shared.db.silences() {
            Ok(s) => ActiveSilences::new(&s, now),
            Err(e) => {
                tracing::error!(error = %e, "reading silences failed; none applied");
                ActiveSilences::default()
            }
        }
    }

    /// Flushes due groups into the outbox.
    pub fn flush(&mut self, now: i64, silences: &ActiveSilences) {
        if self.grouper.next_flush_ms().is_none_or(|t| t > now) {
            return;
        }
        let items = self.grouper.flush_due(now, silences);
        match self.shared.db.enqueue(&items, now) {
            Ok(queued) => {
                self.grouper.commit(&items, now);
                if queued > 0 {
                    self.shared.outbox_wake.notify_one();
                }
            }
            // Not committed: the same flush is tried again on the next pass.
            Err(e) => tracing::error!(error = %e, "writing notifications to the outbox failed"),
        }
    }

    /// Queues the repair engine's events in the outbox (sent at once, not grouped).
    fn send_events(&mut self, now: i64, silences: &ActiveSilences) {
        let events = match self.shared.external.lock() {
            Ok(mut x) => x.take_events(),
            Err(_) => return,
        };
        let items = self.grouper.events(&events, now, silences);
        match self.shared.db.enqueue(&items, now) {
            Ok(queued) => {
                if queued > 0 {
                    self.shared.outbox_wake.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "writing repair notifications to the outbox failed");
                if let Ok(mut x) = self.shared.external.lock() {
                    x.requeue(events);
                }
            }
        }
    }

    fn publish(&self, now: i64, entries: &[Entry], silences: &ActiveSilences) {
        let firing: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.info.status == AlertStatus::Firing)
            .collect();
        let rules = self
            .rules
            .iter()
            .map(|rule| {
                let mut alerts: Vec<AlertView> = rule
                    .active
                    .values()
                    .filter(|a| a.state != AlertState::Inactive)
                    .map(|a| {
                        let fp = a.fingerprint();
                        let Muted {
                            silenced_by,
                            inhibited_by,
                        } = if a.state == AlertState::Firing {
                            self.grouper.muted(&a.labels, fp, &firing, silences, now)
                        } else {
                            Muted::default()
                        };
                        AlertView {
                            labels: a.labels.clone(),
                            annotations: a.annotations.clone(),
                            state: a.state.as_str(),
                            active_at: rfc3339(a.active_at_ms),
                            value: crate::query::value::format_sample_value(a.value),
                            fingerprint: fingerprint_hex(fp),
                            silenced_by,
                            inhibited_by,
                        }
                    })
                    .collect();
                alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
                let state = if alerts.iter().any(|a| a.state == "firing") {
                    "firing"
                } else if alerts.is_empty() {
                    "inactive"
                } else {
                    "pending"
                };
                RuleView {
                    state,
                    name: rule.name.clone(),
                    query: rule.expr.clone(),
                    duration: rule.for_ms as f64 / 1000.0,
                    keep_firing_for: rule.keep_firing_for_ms as f64 / 1000.0,
                    labels: rule.raw_labels.clone(),
                    annotations: rule.raw_annotations.clone(),
                    alerts,
                    health: match (&rule.last_eval_ms, &rule.last_error) {
                        (None, _) => "unknown",
                        (Some(_), None) => "ok",
                        (Some(_), Some(_)) => "err",
                    },
                    last_error: rule.last_error.clone().unwrap_or_default(),
                    evaluation_time: rule.last_duration_s,
                    last_evaluation: rule.last_eval_ms.map(rfc3339).unwrap_or_default(),
                    kind: "alerting",
                    source: rule.source.clone(),
                }
            })
            .collect();
        if let Ok(mut s) = self.shared.snapshot.write() {
            *s = Snapshot {
                rules,
                interval_s: self.interval.as_secs_f64(),
                disabled: None,
            };
        }
    }
}
