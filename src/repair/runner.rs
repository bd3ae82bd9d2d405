//! The repair loop: every `check_interval` it reads the operator's controls, collects finished
//! actions, checks each rule's trigger, advances the rule's state machine
//! ([`super::engine`]) and carries out what it decides: audit rows, actions, verifications,
//! notifications. It runs on a thread of its own, and each action on another thread, so a
//! hanging action blocks neither the loop, nor other rules, nor collectors and alerting.
//!
//! What outlives one loop (a configuration reload stops it and starts the next) is in
//! [`Shared`]: the database, the targets being acted on and the results of actions that
//! finish after their loop was replaced, so a reload neither loses a result nor lets two
//! actions work on one target.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::action::{Action, ActionContext, ActionError, ActionOutput};
use super::db::{AuditEntry, Db, Event};
use super::engine::{Gate, Limits, Phase, RuleState, Skip, Step};
use super::trigger::{Hit, Inputs, Trigger};
use crate::alert::notify::{AlertInfo, AlertStatus};
use crate::alert::outbox::now_ms;
use crate::alert::rfc3339;
use crate::config::repair::{RepairConfig, RepairRuleConfig};
use crate::query::{Engine, Source};
use crate::selfmetrics::SelfMetrics;

/// How often old audit rows are pruned.
const PRUNE_EVERY_MS: i64 = 3600 * 1000;

/// Output excerpt put into a notification.
const NOTIFY_OUTPUT_MAX: usize = 1000;

/// An action that finished; its audit row is written already.
#[derive(Debug)]
pub struct Finished {
    /// Its rule.
    pub rule: String,
    /// Its attempt id.
    pub attempt: i64,
    /// Its target.
    pub target: String,
    /// `succeeded`, `failed`, `timed_out` or `refused`.
    pub event: Event,
    /// Summary or error.
    pub detail: String,
    /// Output excerpt.
    pub output: String,
}

/// Writes the audit row, metric and log line of an action's result: done by the action's
/// thread the moment it ends, so the result is on record even if no loop is there to
/// collect it (a reload that removed the rule, a shutdown).
#[allow(clippy::too_many_arguments)]
fn record_result(
    db: &Db,
    metrics: &SelfMetrics,
    attempt: i64,
    action: &'static str,
    target: &str,
    ctx: &ActionContext,
    result: Result<ActionOutput, ActionError>,
    duration_ms: i64,
) -> Finished {
    let (event, detail, output) = match result {
        Ok(out) => (Event::Succeeded, out.summary, out.output),
        Err(e @ ActionError::TimedOut { .. }) => {
            (Event::TimedOut, e.to_string(), e.output().to_owned())
        }
        Err(e @ ActionError::Refused(_)) => (Event::Refused, e.to_string(), String::new()),
        Err(e) => (Event::Failed, e.to_string(), e.output().to_owned()),
    };
    let entry = AuditEntry {
        time_ms: now_ms(),
        rule: ctx.rule.clone(),
        event: event.as_str().into(),
        attempt: Some(attempt),
        action: action.into(),
        target: target.to_owned(),
        detail: detail.clone(),
        labels: ctx.labels.clone(),
        value: Some(ctx.value),
        duration_ms: Some(duration_ms),
        output: output.clone(),
        ..AuditEntry::default()
    };
    if let Err(e) = db.record(&entry) {
        tracing::error!(error = %e, rule = %ctx.rule, "writing the repair audit trail failed");
    }
    metrics
        .repairs
        .attempts
        .with_label_values(&[&ctx.rule, event.as_str()])
        .inc();
    log_outcome(&ctx.rule, event, &detail);
    Finished {
        rule: ctx.rule.clone(),
        attempt,
        target: target.to_owned(),
        event,
        detail,
        output,
    }
}

/// State that lives as long as the daemon, across reloads.
#[derive(Clone)]
pub struct Shared {
    /// The repair database.
    pub db: Arc<Db>,
    /// Targets being acted on → the rule acting.
    pub busy: Arc<Mutex<BTreeMap<String, String>>>,
    /// Results not yet collected by a loop.
    pub finished: Arc<Mutex<Vec<Finished>>>,
    /// What the API shows.
    pub view: Arc<RwLock<View>>,
}

impl Shared {
    /// Opens the state at `path` (the database file).
    pub fn open(path: &std::path::Path) -> Result<Shared, super::db::DbError> {
        Ok(Shared {
            db: Arc::new(Db::open(path)?),
            busy: Arc::default(),
            finished: Arc::default(),
            view: Arc::default(),
        })
    }
}

/// One rule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// Name.
    pub name: String,
    /// `armed`, `running`, `verifying`, `gave_up`.
    pub state: &'static str,
    /// What triggers it.
    pub trigger: String,
    /// Whether the trigger held at the last check.
    pub trigger_holds: bool,
    /// The last trigger check's error, if it failed.
    pub trigger_error: String,
    /// Action kind.
    pub action: &'static str,
    /// What the action does.
    pub description: String,
    /// Rule-level dry run.
    pub dry_run: bool,
    /// Attempts within the window now.
    pub attempts_in_window: usize,
    /// `max_attempts`.
    pub max_attempts: u32,
    /// `window`, seconds.
    pub window_seconds: f64,
    /// `cooldown`, seconds.
    pub cooldown_seconds: f64,
    /// RFC 3339 time of the last attempt.
    pub last_attempt: Option<String>,
    /// RFC 3339 time the cooldown ends, while it runs.
    pub cooldown_until: Option<String>,
    /// RFC 3339 time it gave up, while it has.
    pub gave_up_since: Option<String>,
}

/// What the API shows: switches and rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// `repair.enabled`.
    pub enabled: bool,
    /// `repair.dry_run`.
    pub dry_run: bool,
    /// `automon repair pause` in effect.
    pub paused: bool,
    /// Actions running now.
    pub running: usize,
    /// Why repairs do not run at all, if they do not.
    pub disabled: Option<String>,
    /// Rules left out because they do not build.
    pub errors: Vec<String>,
    /// The rules in config order.
    pub rules: Vec<RuleView>,
}

/// A rule with its compiled parts and state.
pub struct RepairRule {
    /// Its configuration.
    pub cfg: RepairRuleConfig,
    /// The trigger.
    pub trigger: Trigger,
    /// The action.
    pub action: Arc<dyn Action>,
    /// Limits in ms.
    pub limits: Limits,
    /// The state machine.
    pub state: RuleState,
    /// The last hit (labels and value for the audit trail).
    pub hit: Option<Hit>,
    /// The last trigger check's error.
    pub error: Option<String>,
}

/// One generation of the loop.
pub struct Runner {
    /// Rules in config order.
    pub rules: Vec<RepairRule>,
    /// Global settings.
    pub settings: RepairConfig,
    /// Query engine for expression triggers.
    pub engine: Engine,
    /// The stored data.
    pub source: Arc<dyn Source>,
    /// Alerting's shared state: alert snapshot for alert triggers, and the queue for
    /// notifications.
    pub alerting: crate::alert::manager::Shared,
    /// Long-lived state.
    pub shared: Shared,
    /// Self-metrics.
    pub metrics: Arc<SelfMetrics>,
    /// Rules left out because they do not build, for the API.
    pub errors: Vec<String>,
    paused: bool,
    data_version: Option<(i64, u64)>,
    last_prune_ms: i64,
}

/// A running loop; stopping it saves nothing more (state is saved on every change) and
/// leaves running actions running: the next loop collects their results.
pub type Running = crate::worker::Worker;

fn skip_reason(s: Skip) -> &'static str {
    match s {
        Skip::Disabled => "disabled",
        Skip::Paused => "paused",
        Skip::Cooldown => "cooldown",
        Skip::GaveUp => "gave_up",
        Skip::Cleared => "cleared",
        Skip::TargetBusy => "target_busy",
        Skip::Concurrency => "concurrency",
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Runner {
    /// A loop over `rules`.
    pub fn new(
        rules: Vec<RepairRule>,
        settings: RepairConfig,
        engine: Engine,
        source: Arc<dyn Source>,
        alerting: crate::alert::manager::Shared,
        shared: Shared,
        metrics: Arc<SelfMetrics>,
    ) -> Runner {
        Runner {
            rules,
            settings,
            engine,
            source,
            alerting,
            shared,
            metrics,
            errors: Vec::new(),
            paused: false,
            data_version: None,
            last_prune_ms: 0,
        }
    }

    /// Starts the loop on its own thread.
    pub fn spawn(self) -> std::io::Result<Running> {
        crate::worker::Worker::spawn("repair", move |stopped| self.run(stopped))
    }

    fn run(mut self, stopped: Receiver<()>) {
        self.restore(now_ms());
        let interval = self
            .settings
            .check_interval
            .0
            .max(Duration::from_millis(100));
        loop {
            let started = Instant::now();
            self.check(now_ms());
            match stopped.recv_timeout(interval.saturating_sub(started.elapsed())) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Loads saved states; an action that was running when the daemon stopped (not merely
    /// reloaded: then it is still in `busy`) is recorded as interrupted.
    pub fn restore(&mut self, now: i64) {
        let mut saved: BTreeMap<String, RuleState> = match self.shared.db.states() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot restore repair state; rules start armed");
                BTreeMap::new()
            }
        };
        let busy_rules: Vec<String> = self
            .shared
            .busy
            .lock()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        for i in 0..self.rules.len() {
            let name = self.rules[i].cfg.name.clone();
            let Some(mut state) = saved.remove(&name) else {
                continue;
            };
            if !busy_rules.contains(&name) {
                if let Some(Step::Record(event, detail)) = state.restored() {
                    self.record(i, event, &detail, None, "", None, "", now);
                    self.count(&name, event.as_str());
                }
            }
            if let Phase::GaveUp { since_ms } = state.phase {
                let info = self.exhausted(i, since_ms, &state);
                if let Ok(mut x) = self.alerting.external.lock() {
                    x.fire(&exhausted_key(&name), info);
                }
            }
            self.rules[i].state = state;
        }
    }

    /// One check at `now`.
    pub fn check(&mut self, now: i64) {
        self.read_controls(now);
        self.collect_finished(now);
        let snapshot_lock = self.alerting.snapshot.clone();
        let snapshot = match snapshot_lock.read() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let source = self.source.clone();
        let engine = self.engine.clone();
        let inputs = Inputs {
            alerts: &snapshot,
            engine: &engine,
            source: source.as_ref(),
        };
        let gate = Gate {
            enabled: self.settings.enabled,
            paused: self.paused,
        };
        for i in 0..self.rules.len() {
            let before = self.rules[i].state.clone();
            let rule = &mut self.rules[i];
            let hit = match rule.trigger.check(now, &inputs) {
                Ok(hit) => {
                    rule.error = None;
                    hit
                }
                Err(e) => {
                    // Unknown is not "clear": no state moves on an error, so a broken query
                    // neither acts nor re-arms a rule that gave up.
                    if rule.error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(rule = %rule.cfg.name, error = %e, "repair trigger check failed");
                    }
                    rule.error = Some(e);
                    continue;
                }
            };
            if hit.is_some() {
                rule.hit = hit.clone();
            }
            let limits = rule.limits;
            let steps = rule.state.tick(now, hit.is_some(), gate, &limits);
            self.apply(i, steps, None, now, &inputs);
            if self.rules[i].state != before {
                self.save(i);
            }
        }
        drop(snapshot);
        self.publish(now);
        if now - self.last_prune_ms >= PRUNE_EVERY_MS {
            self.last_prune_ms = now;
            let cutoff = now - self.settings.audit_retention.0.as_millis() as i64;
            if let Err(e) = self.shared.db.prune(cutoff) {
                tracing::warn!(error = %e, "pruning the repair audit trail failed");
            }
        }
    }

    fn read_controls(&mut self, now: i64) {
        let version = self.shared.db.control_version().ok();
        if version.is_some() && version == self.data_version {
            return;
        }
        self.data_version = version;
        match self.shared.db.paused() {
            Ok(p) => self.paused = p,
            Err(e) => tracing::warn!(error = %e, "reading the repair pause switch failed"),
        }
        let resets = match self.shared.db.take_resets() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading repair reset requests failed");
                return;
            }
        };
        for name in resets {
            let Some(i) = self.rules.iter().position(|r| r.cfg.name == name) else {
                tracing::warn!(rule = %name, "reset requested for a repair rule that does not exist");
                continue;
            };
            let was = self.rules[i].state.phase;
            if matches!(was, Phase::Running { .. }) {
                // The running action's result still arrives and is recorded; only counts reset.
                self.rules[i].state.attempts.clear();
                self.rules[i].state.last_attempt_ms = None;
            } else {
                self.rules[i].state.rearm();
            }
            self.record(
                i,
                Event::Reset,
                "by `automon repair reset`: attempts and cooldown cleared",
                None,
                "",
                None,
                "",
                now,
            );
            if matches!(was, Phase::GaveUp { .. }) {
                self.resolve_exhausted(i, now);
            }
            self.save(i);
        }
    }

    fn collect_finished(&mut self, now: i64) {
        let done: Vec<Finished> = match self.shared.finished.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(_) => return,
        };
        for f in done {
            let Some(i) = self.rules.iter().position(|r| r.cfg.name == f.rule) else {
                continue;
            };
            let ok = f.event == Event::Succeeded;
            let limits = self.rules[i].limits;
            self.rules[i].state.finished(f.attempt, ok, now, &limits);
            if !ok && self.rules[i].cfg.notify {
                self.notify_event(i, f.attempt, f.event, &f.target, &f.detail, &f.output, now);
            }
            self.save(i);
        }
    }

    fn apply(
        &mut self,
        i: usize,
        steps: Vec<Step>,
        attempt: Option<i64>,
        now: i64,
        inputs: &Inputs<'_>,
    ) {
        for step in steps {
            match step {
                Step::Record(event, detail) => {
                    if event == Event::Skipped {
                        if let Some(why) = self.rules[i].state.noted {
                            self.metrics
                                .repairs
                                .skipped
                                .with_label_values(&[&self.rules[i].cfg.name, skip_reason(why)])
                                .inc();
                        }
                    }
                    if matches!(event, Event::Fixed | Event::NotFixed | Event::GaveUp) {
                        self.count(&self.rules[i].cfg.name.clone(), event.as_str());
                        log_outcome(&self.rules[i].cfg.name, event, &detail);
                    }
                    let detail = if event == Event::Triggered {
                        let value = self.rules[i]
                            .hit
                            .as_ref()
                            .map(|h| crate::query::value::format_sample_value(h.value))
                            .unwrap_or_default();
                        format!("{} holds (value {value})", self.rules[i].trigger.describe())
                    } else {
                        detail
                    };
                    self.record(i, event, &detail, attempt, "", None, "", now);
                }
                Step::Act => self.act(i, now, inputs),
                Step::Verify { attempt } => self.verify(i, attempt, now, inputs),
                Step::GaveUp => {
                    let info = self.exhausted(i, now, &self.rules[i].state);
                    if let Ok(mut x) = self.alerting.external.lock() {
                        x.fire(&exhausted_key(&self.rules[i].cfg.name), info);
                    }
                }
                Step::Rearmed => self.resolve_exhausted(i, now),
            }
        }
    }

    fn skip(&mut self, i: usize, why: Skip, detail: &str, now: i64) {
        if let Some(step) = self.rules[i].state.skip(why, detail) {
            self.metrics
                .repairs
                .skipped
                .with_label_values(&[&self.rules[i].cfg.name, skip_reason(why)])
                .inc();
            if let Step::Record(event, detail) = step {
                self.record(i, event, &detail, None, "", None, "", now);
            }
        }
    }

    fn act(&mut self, i: usize, now: i64, inputs: &Inputs<'_>) {
        let name = self.rules[i].cfg.name.clone();
        let hit = self.rules[i].hit.clone().unwrap_or(Hit {
            labels: BTreeMap::new(),
            value: f64::NAN,
        });
        let ctx = ActionContext {
            rule: name.clone(),
            labels: hit.labels,
            value: hit.value,
        };
        // The trigger is checked again right before acting, without `for`: the condition
        // may have cleared since the check that decided to act.
        match self.rules[i].trigger.holds_now(now, inputs) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return self.skip(
                    i,
                    Skip::Cleared,
                    "the trigger no longer held when re-checked just before acting",
                    now,
                )
            }
            Err(e) => {
                return self.skip(
                    i,
                    Skip::Cleared,
                    &format!("re-checking the trigger before acting failed: {e}"),
                    now,
                )
            }
        }
        let action = self.rules[i].action.clone();
        let kind = action.kind().as_str();
        let target = match action.target(&ctx) {
            Ok(t) => t,
            Err(e) => {
                self.rules[i].state.acted_without_running(now, true);
                self.record(i, Event::Refused, &e.to_string(), None, "", None, "", now);
                self.count(&name, Event::Refused.as_str());
                log_outcome(&name, Event::Refused, &e.to_string());
                if self.rules[i].cfg.notify {
                    self.notify_event(i, 0, Event::Refused, "", &e.to_string(), "", now);
                }
                return;
            }
        };
        let description = action.describe(&ctx);
        if self.settings.dry_run || self.rules[i].cfg.dry_run {
            self.rules[i].state.acted_without_running(now, false);
            let detail = format!("dry run: would {description}");
            self.record(i, Event::DryRun, &detail, None, &target, None, "", now);
            self.count(&name, Event::DryRun.as_str());
            tracing::info!(rule = %name, "repair dry run: would {description}");
            return;
        }
        {
            let Ok(mut busy) = self.shared.busy.lock() else {
                return;
            };
            if let Some(other) = busy.get(&target) {
                let detail = format!("{target} is busy: rule {other} is acting on it");
                drop(busy);
                return self.skip(i, Skip::TargetBusy, &detail, now);
            }
            if busy.len() >= self.settings.max_concurrent {
                let detail = format!("{} actions run already (repair.max_concurrent)", busy.len());
                drop(busy);
                return self.skip(i, Skip::Concurrency, &detail, now);
            }
            busy.insert(target.clone(), name.clone());
        }
        // The audit row comes first: an action that runs is always on record.
        let Some(attempt) = self.record(
            i,
            Event::Started,
            &description,
            None,
            &target,
            None,
            "",
            now,
        ) else {
            self.release(&target);
            return;
        };
        self.rules[i].state.started(attempt, now);
        tracing::info!(rule = %name, attempt, "repair started: {description}");
        let finished = self.shared.finished.clone();
        let busy = self.shared.busy.clone();
        let db = self.shared.db.clone();
        let metrics = self.metrics.clone();
        let thread_target = target.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("repair-{attempt}"))
            .spawn(move || {
                let t0 = Instant::now();
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| action.run(&ctx)))
                        .unwrap_or_else(|_| {
                            Err(ActionError::Failed {
                                message: "the action panicked (a bug in automon)".into(),
                                output: String::new(),
                            })
                        });
                let duration_ms = t0.elapsed().as_millis() as i64;
                let done = record_result(
                    &db,
                    &metrics,
                    attempt,
                    kind,
                    &thread_target,
                    &ctx,
                    result,
                    duration_ms,
                );
                // Released before the result is posted, so the loop that collects it can act
                // on the target again at once.
                if let Ok(mut b) = busy.lock() {
                    b.remove(&thread_target);
                }
                if let Ok(mut f) = finished.lock() {
                    f.push(done);
                }
            });
        if let Err(e) = spawned {
            self.release(&target);
            let limits = self.rules[i].limits;
            self.rules[i].state.finished(attempt, false, now, &limits);
            let detail = format!("cannot start a thread for the action: {e}");
            self.record(
                i,
                Event::Failed,
                &detail,
                Some(attempt),
                &target,
                None,
                "",
                now,
            );
            self.count(&name, Event::Failed.as_str());
        }
    }

    fn release(&self, target: &str) {
        if let Ok(mut b) = self.shared.busy.lock() {
            b.remove(target);
        }
    }

    fn verify(&mut self, i: usize, attempt: i64, now: i64, inputs: &Inputs<'_>) {
        let (holds, note) = match self.rules[i].trigger.holds_now(now, inputs) {
            Ok(h) => (h.is_some(), String::new()),
            // Not known to be fixed, so not fixed; the error says why.
            Err(e) => (true, format!(" (the check failed: {e})")),
        };
        let limits = self.rules[i].limits;
        let mut steps = self.rules[i].state.verified(attempt, holds, now, &limits);
        for s in &mut steps {
            if let Step::Record(Event::NotFixed, detail) = s {
                detail.push_str(&note);
            }
        }
        let outcome = if holds { Event::NotFixed } else { Event::Fixed };
        self.apply(i, steps, Some(attempt), now, inputs);
        if self.rules[i].cfg.notify {
            let description = self.rules[i].action.describe(&ActionContext {
                rule: self.rules[i].cfg.name.clone(),
                labels: self.rules[i]
                    .hit
                    .clone()
                    .map(|h| h.labels)
                    .unwrap_or_default(),
                value: 0.0,
            });
            self.notify_event(i, attempt, outcome, "", &description, "", now);
        }
    }

    /// Writes an audit row for rule `i`; returns its id.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        i: usize,
        event: Event,
        detail: &str,
        attempt: Option<i64>,
        target: &str,
        duration_ms: Option<i64>,
        output: &str,
        now: i64,
    ) -> Option<i64> {
        let rule = &self.rules[i];
        let (labels, value) = match &rule.hit {
            Some(h) if !matches!(event, Event::Rearmed | Event::Reset) => {
                (h.labels.clone(), Some(h.value))
            }
            _ => (BTreeMap::new(), None),
        };
        let entry = AuditEntry {
            time_ms: now,
            rule: rule.cfg.name.clone(),
            event: event.as_str().into(),
            attempt,
            action: rule.cfg.action.as_str().into(),
            target: target.to_owned(),
            detail: detail.to_owned(),
            labels,
            value,
            duration_ms,
            output: output.to_owned(),
            ..AuditEntry::default()
        };
        let written = if event == Event::Started {
            self.shared.db.record_start(&entry)
        } else {
            self.shared.db.record(&entry)
        };
        match written {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, rule = %rule.cfg.name, "writing the repair audit trail failed");
                None
            }
        }
    }

    fn count(&self, rule: &str, outcome: &str) {
        self.metrics
            .repairs
            .attempts
            .with_label_values(&[rule, outcome])
            .inc();
    }

    fn save(&self, i: usize) {
        let r = &self.rules[i];
        if let Err(e) = self.shared.db.save_state(&r.cfg.name, &r.state) {
            tracing::error!(error = %e, rule = %r.cfg.name, "saving repair state failed");
        }
    }

    fn labels(&self, i: usize, alertname: &str, severity: &str) -> BTreeMap<String, String> {
        let cfg = &self.rules[i].cfg;
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        labels.insert("severity".into(), severity.into());
        labels.extend(cfg.labels.clone());
        labels.insert("alertname".into(), alertname.into());
        labels.insert("repair".into(), cfg.name.clone());
        labels.insert("action".into(), cfg.action.as_str().into());
        labels
    }

    fn exhausted(&self, i: usize, since: i64, state: &RuleState) -> AlertInfo {
        let cfg = &self.rules[i].cfg;
        let annotations = [
            (
                "summary".to_owned(),
                format!("Auto-repair {} gave up", cfg.name),
            ),
            (
                "description".to_owned(),
                format!(
                    "{} attempts within {} did not fix {}. automon does not act on it again \
                     until the trigger has been clear for {}, or `automon repair reset {}`. \
                     `automon repair log --rule {}` shows what happened.",
                    state.attempts.len(),
                    humantime::format_duration(cfg.window.0),
                    self.rules[i].trigger.describe(),
                    humantime::format_duration(cfg.rearm_after.0),
                    cfg.name,
                    cfg.name
                ),
            ),
        ]
        .into();
        AlertInfo {
            status: AlertStatus::Firing,
            labels: self.labels(i, "AutomonRepairExhausted", "critical"),
            annotations,
            starts_at_ms: since,
            ends_at_ms: None,
            value: state.attempts.len() as f64,
            fingerprint: String::new(),
            generator_url: String::new(),
        }
    }

    fn resolve_exhausted(&self, i: usize, now: i64) {
        if let Ok(mut x) = self.alerting.external.lock() {
            x.resolve(&exhausted_key(&self.rules[i].cfg.name), now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn notify_event(
        &self,
        i: usize,
        attempt: i64,
        outcome: Event,
        target: &str,
        detail: &str,
        output: &str,
        now: i64,
    ) {
        let cfg = &self.rules[i].cfg;
        let severity = match outcome {
            Event::Fixed => "info",
            _ => "warning",
        };
        let mut labels = self.labels(i, "AutomonRepair", severity);
        labels.insert("outcome".into(), outcome.as_str().into());
        // Unique per event, so each one is its own notification.
        labels.insert(
            "attempt".into(),
            if attempt > 0 {
                attempt.to_string()
            } else {
                format!("t{now}")
            },
        );
        if !target.is_empty() {
            labels.insert("target".into(), target.into());
        }
        let summary = match outcome {
            Event::Fixed => format!("Auto-repair {}: fixed ({detail})", cfg.name),
            Event::NotFixed => format!("Auto-repair {}: acted, not fixed ({detail})", cfg.name),
            _ => format!("Auto-repair {}: {}: {detail}", cfg.name, outcome.as_str()),
        };
        let mut annotations: BTreeMap<String, String> = [("summary".to_owned(), summary)].into();
        let mut description = format!(
            "Trigger: {}. Attempts in the last {}: {} of {}.",
            self.rules[i].trigger.describe(),
            humantime::format_duration(cfg.window.0),
            self.rules[i].state.attempts.len(),
            cfg.max_attempts
        );
        if !output.is_empty() {
            description.push_str("\nOutput:\n");
            description.push_str(cut(output, NOTIFY_OUTPUT_MAX));
        }
        annotations.insert("description".into(), description);
        let info = AlertInfo {
            status: AlertStatus::Firing,
            labels,
            annotations,
            starts_at_ms: now,
            ends_at_ms: None,
            value: 1.0,
            fingerprint: String::new(),
            generator_url: String::new(),
        };
        if let Ok(mut x) = self.alerting.external.lock() {
            x.event(info);
        }
    }

    fn publish(&self, now: i64) {
        let m = &self.metrics.repairs;
        m.paused.set(if self.paused { 1.0 } else { 0.0 });
        let running = self.shared.busy.lock().map(|b| b.len()).unwrap_or_default();
        m.running.set(running as f64);
        let rules = self
            .rules
            .iter()
            .map(|r| {
                m.state
                    .with_label_values(&[&r.cfg.name])
                    .set(r.state.phase.code());
                let cooldown_end = r.state.last_attempt_ms.map(|t| t + r.limits.cooldown_ms);
                RuleView {
                    name: r.cfg.name.clone(),
                    state: r.state.phase.as_str(),
                    trigger: r.trigger.describe(),
                    trigger_holds: r.state.held,
                    trigger_error: r.error.clone().unwrap_or_default(),
                    action: r.cfg.action.as_str(),
                    description: r.action.describe(&ActionContext {
                        rule: r.cfg.name.clone(),
                        labels: r.hit.clone().map(|h| h.labels).unwrap_or_default(),
                        value: 0.0,
                    }),
                    dry_run: r.cfg.dry_run || self.settings.dry_run,
                    attempts_in_window: r.state.attempts_in_window(now, &r.limits),
                    max_attempts: r.limits.max_attempts,
                    window_seconds: r.limits.window_ms as f64 / 1000.0,
                    cooldown_seconds: r.limits.cooldown_ms as f64 / 1000.0,
                    last_attempt: r.state.last_attempt_ms.map(rfc3339),
                    cooldown_until: cooldown_end.filter(|&t| t > now).map(rfc3339),
                    gave_up_since: match r.state.phase {
                        Phase::GaveUp { since_ms } => Some(rfc3339(since_ms)),
                        _ => None,
                    },
                }
            })
            .collect();
        if let Ok(mut v) = self.shared.view.write() {
            *v = View {
                enabled: self.settings.enabled,
                dry_run: self.settings.dry_run,
                paused: self.paused,
                running,
                disabled: None,
                errors: self.errors.clone(),
                rules,
            };
        }
    }
}

fn exhausted_key(rule: &str) -> String {
    format!("repair-exhausted:{rule}")
}

fn log_outcome(rule: &str, event: Event, detail: &str) {
    match event {
        Event::Succeeded | Event::Fixed | Event::Rearmed => {
            tracing::info!(rule = %rule, "repair {}: {detail}", event.as_str())
        }
        _ => tracing::warn!(rule = %rule, "repair {}: {detail}", event.as_str()),
    }
}
