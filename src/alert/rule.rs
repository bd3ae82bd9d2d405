//! Alert rules and their state machine, with Prometheus' semantics: every series the
//! expression returns is one alert instance; it is `pending` until the expression has held
//! for `for`, then `firing`; when the expression stops returning it, it stays firing for
//! `keep_firing_for`, then becomes `inactive` (resolved) and is forgotten 15 minutes later.
//!
//! Evaluation is a pure function of the query result and the time, so the state machine is
//! tested without clocks or a store.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::template::{Data, Template, TemplateError};
use super::{fingerprint, Fingerprint};
use crate::config::alerting::RuleConfig;
use crate::query::{self, Engine, Query, QueryError, Source, Value};

/// How long a resolved alert is kept, so its resolution can still be notified.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// State of an alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Resolved (kept for a while so the resolution is notified).
    Inactive,
    /// The expression holds, but not yet for `for`.
    Pending,
    /// The expression has held for `for`.
    Firing,
}

impl AlertState {
    /// `inactive`, `pending` or `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// Final labels: the series' labels (without `__name__`), the rule's labels, `alertname`.
    pub labels: BTreeMap<String, String>,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Current state.
    pub state: AlertState,
    /// When the expression first returned this instance (Unix ms).
    pub active_at_ms: i64,
    /// When it started firing.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// Last evaluation that returned it (for `keep_firing_for`).
    pub last_seen_ms: i64,
    /// The expression's value at the last evaluation that returned it.
    pub value: f64,
}

impl Alert {
    /// Fingerprint of the labels.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }
}

/// A rule that failed to compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The rule has no name.
    #[error("rule has no `name`")]
    NoName,
    /// The name is not a valid label value for `alertname`... or empty expr.
    #[error("rule has no `expr`")]
    NoExpr,
    /// The expression does not parse.
    #[error("invalid expr: {0}")]
    Expr(String),
    /// A template does not parse.
    #[error("{key}: {source}")]
    Template {
        /// `labels.x` or `annotations.y`.
        key: String,
        /// The parse error.
        source: TemplateError,
    },
    /// A label name is invalid.
    #[error("labels.{0}: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)")]
    LabelName(String),
}

/// One result series after templating: labels, annotations, value.
type Instance = (BTreeMap<String, String>, BTreeMap<String, String>, f64);

/// A compiled rule with its alert instances.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `alertname`.
    pub name: String,
    /// The expression as written.
    pub expr: String,
    query: Query,
    /// `for`, ms.
    pub for_ms: i64,
    /// `keep_firing_for`, ms.
    pub keep_firing_for_ms: i64,
    labels: Vec<(String, Template)>,
    annotations: Vec<(String, Template)>,
    /// The rule's labels as written (for the rules API).
    pub raw_labels: BTreeMap<String, String>,
    /// The rule's annotations as written.
    pub raw_annotations: BTreeMap<String, String>,
    /// Where the rule was written.
    pub source: String,
    /// Alert instances by fingerprint.
    pub active: HashMap<Fingerprint, Alert>,
    /// Health of the last evaluation: `None` ok, else the error.
    pub last_error: Option<String>,
    /// Time of the last evaluation, ms.
    pub last_eval_ms: Option<i64>,
    /// Duration of the last evaluation, seconds.
    pub last_duration_s: f64,
}

/// Whether `name` is a valid Prometheus label name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Checks a rule without building it (config validation): returns every problem.
pub fn check(cfg: &RuleConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if cfg.name.trim().is_empty() {
        problems.push(("name".to_owned(), RuleError::NoName.to_string()));
    }
    if cfg.expr.trim().is_empty() {
        problems.push(("expr".to_owned(), RuleError::NoExpr.to_string()));
    } else if let Err(e) = query::parse(&cfg.expr) {
        problems.push(("expr".to_owned(), format!("invalid expression: {e}")));
    }
    for (k, v) in &cfg.labels {
        if !valid_label_name(k) || k == "__name__" {
            problems.push((
                format!("labels.{k}"),
                "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)".into(),
            ));
        }
        if let Err(e) = Template::parse(v) {
            problems.push((format!("labels.{k}"), e.to_string()));
        }
    }
    for (k, v) in &cfg.annotations {
        if let Err(e) = Template::parse(v) {
            problems.push((format!("annotations.{k}"), e.to_string()));
        }
    }
    problems
}

impl Rule {
    /// Compiles a rule from its config.
    pub fn compile(cfg: &RuleConfig) -> Result<Rule, RuleError> {
        if cfg.name.trim().is_empty() {
            return Err(RuleError::NoName);
        }
        if cfg.expr.trim().is_empty() {
            return Err(RuleError::NoExpr);
        }
        let query = query::parse(&cfg.expr).map_err(|e| RuleError::Expr(e.to_string()))?;
        let templates = |map: &BTreeMap<String, String>, kind: &str| {
            map.iter()
                .map(|(k, v)| {
                    Template::parse(v)
                        .map(|t| (k.clone(), t))
                        .map_err(|source| RuleError::Template {
                            key: format!("{kind}.{k}"),
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        for k in cfg.labels.keys() {
            if !valid_label_name(k) {
                return Err(RuleError::LabelName(k.clone()));
            }
        }
        Ok(Rule {
            name: cfg.name.clone(),
            expr: cfg.expr.clone(),
            query,
            for_ms: cfg.for_.map_or(0, |d| d.0.as_millis() as i64),
            keep_firing_for_ms: cfg.keep_firing_for.map_or(0, |d| d.0.as_millis() as i64),
            labels: templates(&cfg.labels, "labels")?,
            annotations: templates(&cfg.annotations, "annotations")?,
            raw_labels: cfg.labels.clone(),
            raw_annotations: cfg.annotations.clone(),
            source: cfg.source.clone(),
            active: HashMap::new(),
            last_error: None,
            last_eval_ms: None,
            last_duration_s: 0.0,
        })
    }

    /// Runs the query at `now_ms` and advances the state machine.
    pub fn eval(
        &mut self,
        engine: &Engine,
        source: &dyn Source,
        now_ms: i64,
    ) -> Result<(), QueryError> {
        let started = std::time::Instant::now();
        let result = engine.instant_query(source, &self.query, now_ms);
        self.last_eval_ms = Some(now_ms);
        let outcome = match result {
            Ok((value, _)) => {
                let samples: Vec<(BTreeMap<String, String>, f64)> = match value {
                    Value::Vector(v) => v
                        .into_iter()
                        .map(|s| (s.labels.into_iter().collect(), s.v))
                        .collect(),
                    Value::Scalar { v, .. } => vec![(BTreeMap::new(), v)],
                    other => {
                        let e = QueryError::BadRequest(format!(
                            "rule expression must return an instant vector or scalar, got {}",
                            other.result_type()
                        ));
                        self.last_error = Some(e.to_string());
                        self.last_duration_s = started.elapsed().as_secs_f64();
                        return Err(e);
                    }
                };
                match self.apply(samples, now_ms) {
                    Ok(()) => Ok(()),
                    Err(message) => Err(QueryError::BadRequest(message)),
                }
            }
            Err(e) => Err(e),
        };
        self.last_error = outcome.as_ref().err().map(ToString::to_string);
        self.last_duration_s = started.elapsed().as_secs_f64();
        outcome
    }

    /// Advances the state machine with the expression's result at `now_ms`: pairs of the
    /// series' labels (including `__name__`, which is dropped) and value.
    pub fn apply(
        &mut self,
        samples: Vec<(BTreeMap<String, String>, f64)>,
        now_ms: i64,
    ) -> Result<(), String> {
        let mut seen: HashMap<Fingerprint, Instance> = HashMap::with_capacity(samples.len());
        for (mut series, value) in samples {
            series.remove("__name__");
            let data = Data {
                labels: &series,
                value,
            };
            let mut labels = series.clone();
            for (k, t) in &self.labels {
                labels.insert(k.clone(), t.expand(&data));
            }
            labels.insert("alertname".into(), self.name.clone());
            let annotations: BTreeMap<String, String> = self
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), t.expand(&data)))
                .collect();
            let fp = fingerprint(&labels);
            if seen.insert(fp, (labels, annotations, value)).is_some() {
                // Prometheus refuses the whole result rather than pick one at random.
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
        }

        for (fp, (labels, annotations, value)) in seen.iter() {
            match self.active.get_mut(fp) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = *value;
                    a.annotations = annotations.clone();
                    a.last_seen_ms = now_ms;
                }
                _ => {
                    self.active.insert(
                        *fp,
                        Alert {
                            rule: self.name.clone(),
                            labels: labels.clone(),
                            annotations: annotations.clone(),
                            state: AlertState::Pending,
                            active_at_ms: now_ms,
                            fired_at_ms: None,
                            resolved_at_ms: None,
                            last_seen_ms: now_ms,
                            value: *value,
                        },
                    );
                }
            }
        }

        let keep_firing_for = self.keep_firing_for_ms;
        self.active.retain(|fp, a| {
            if seen.contains_key(fp) {
                return true;
            }
            if a.state == AlertState::Firing
                && keep_firing_for > 0
                && now_ms - a.last_seen_ms < keep_firing_for
            {
                return true;
            }
            match a.state {
                AlertState::Pending => false,
                AlertState::Inactive => a
                    .resolved_at_ms
                    .is_some_and(|r| now_ms - r < RESOLVED_RETENTION_MS),
                AlertState::Firing => {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(now_ms);
                    true
                }
            }
        });

        for a in self.active.values_mut() {
            if a.state == AlertState::Pending && now_ms - a.active_at_ms >= self.for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(now_ms);
            }
        }
        Ok(())
    }

    /// Alerts restored from the state database after a restart. A pending alert's `for`
    /// timer resumes where it stopped: the time the daemon was down does not count.
    pub fn restore(&mut self, alerts: Vec<Alert>, last_eval_ms: i64, now_ms: i64) {
        let downtime = (now_ms - last_eval_ms).max(0);
        for mut a in alerts {
            if a.state == AlertState::Pending {
                a.active_at_ms += downtime;
            }
            self.active.insert(a.fingerprint(), a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use std::time::Duration;

    fn rule(for_s: u64, keep_s: u64) -> Rule {
        let cfg = RuleConfig {
            name: "DiskFull".into(),
            expr: "disk_used > 0.9".into(),
            for_: Some(HumanDuration(Duration::from_secs(for_s))),
            keep_firing_for: Some(HumanDuration(Duration::from_secs(keep_s))),
            labels: [("severity".to_string(), "critical".to_string())].into(),
            annotations: [(
                "summary".to_string(),
                "{{ $labels.device }} is {{ $value | humanizePercentage }} full".to_string(),
            )]
            .into(),
            source: String::new(),
        };
        Rule::compile(&cfg).expect("compiles")
    }

    fn sample(device: &str, v: f64) -> (BTreeMap<String, String>, f64) {
        (
            [
                ("__name__".to_string(), "disk_used".to_string()),
                ("device".to_string(), device.to_string()),
            ]
            .into(),
            v,
        )
    }

    fn states(r: &Rule) -> Vec<(String, AlertState)> {
        let mut v: Vec<_> = r
            .active
            .values()
            .map(|a| (a.labels["device"].clone(), a.state))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn pending_then_firing_after_for() {
        let mut r = rule(60, 0);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Pending)]);
        r.apply(vec![sample("sda", 0.95)], 45_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Pending)]);
        r.apply(vec![sample("sda", 0.96)], 60_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Firing)]);
        let a = r.active.values().next().unwrap();
        assert_eq!(a.fired_at_ms, Some(60_000));
        assert_eq!(a.active_at_ms, 0);
        assert_eq!(a.labels["alertname"], "DiskFull");
        assert_eq!(a.labels["severity"], "critical");
        assert!(!a.labels.contains_key("__name__"));
        assert_eq!(a.annotations["summary"], "sda is 96% full");
    }

    #[test]
    fn pending_that_clears_is_forgotten_and_restarts_its_timer() {
        let mut r = rule(60, 0);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        r.apply(vec![], 30_000).unwrap();
        assert!(r.active.is_empty());
        r.apply(vec![sample("sda", 0.95)], 45_000).unwrap();
        r.apply(vec![sample("sda", 0.95)], 90_000).unwrap();
        assert_eq!(
            states(&r),
            [("sda".into(), AlertState::Pending)],
            "timer restarted at 45 s"
        );
        r.apply(vec![sample("sda", 0.95)], 105_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Firing)]);
    }

    #[test]
    fn firing_resolves_then_is_forgotten() {
        let mut r = rule(0, 0);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        assert_eq!(
            states(&r),
            [("sda".into(), AlertState::Firing)],
            "for=0 fires at once"
        );
        r.apply(vec![], 15_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Inactive)]);
        assert_eq!(
            r.active.values().next().unwrap().resolved_at_ms,
            Some(15_000)
        );
        r.apply(vec![], 15_000 + RESOLVED_RETENTION_MS).unwrap();
        assert!(r.active.is_empty());
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut r = rule(0, 60);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        r.apply(vec![], 30_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Firing)]);
        r.apply(vec![], 59_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Firing)]);
        r.apply(vec![], 60_000).unwrap();
        assert_eq!(states(&r), [("sda".into(), AlertState::Inactive)]);
    }

    #[test]
    fn a_resolved_alert_that_returns_starts_over() {
        let mut r = rule(30, 0);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        r.apply(vec![sample("sda", 0.95)], 30_000).unwrap();
        r.apply(vec![], 45_000).unwrap();
        r.apply(vec![sample("sda", 0.95)], 60_000).unwrap();
        let a = r.active.values().next().unwrap();
        assert_eq!((a.state, a.active_at_ms), (AlertState::Pending, 60_000));
    }

    #[test]
    fn one_instance_per_label_set() {
        let mut r = rule(0, 0);
        r.apply(vec![sample("sda", 0.95), sample("sdb", 0.99)], 0)
            .unwrap();
        assert_eq!(states(&r).len(), 2);
        r.apply(vec![sample("sdb", 0.99)], 15_000).unwrap();
        assert_eq!(
            states(&r),
            [
                ("sda".into(), AlertState::Inactive),
                ("sdb".into(), AlertState::Firing)
            ]
        );
    }

    #[test]
    fn duplicate_label_sets_are_an_error() {
        let cfg = RuleConfig {
            name: "X".into(),
            expr: "up".into(),
            labels: [("device".to_string(), "same".to_string())].into(),
            ..Default::default()
        };
        let mut r = Rule::compile(&cfg).unwrap();
        let err = r
            .apply(vec![sample("sda", 1.0), sample("sdb", 1.0)], 0)
            .unwrap_err();
        assert!(err.contains("same labelset"));
    }

    #[test]
    fn restore_resumes_the_for_timer() {
        let mut r = rule(60, 0);
        r.apply(vec![sample("sda", 0.95)], 0).unwrap();
        let saved: Vec<Alert> = r.active.values().cloned().collect();
        // Down from 30 s (last evaluation) to 1000 s.
        let mut r2 = rule(60, 0);
        r2.restore(saved, 30_000, 1_000_000);
        r2.apply(vec![sample("sda", 0.95)], 1_000_000).unwrap();
        assert_eq!(
            states(&r2),
            [("sda".into(), AlertState::Pending)],
            "30 s of 60 s spent"
        );
        r2.apply(vec![sample("sda", 0.95)], 1_030_000).unwrap();
        assert_eq!(states(&r2), [("sda".into(), AlertState::Firing)]);
    }

    #[test]
    fn check_reports_every_problem() {
        let cfg = RuleConfig {
            name: String::new(),
            expr: "rate(x[5m]".into(),
            labels: [("bad-name".to_string(), "{{ $nope }}".to_string())].into(),
            annotations: [("summary".to_string(), "{{ $value | humanise }}".to_string())].into(),
            ..Default::default()
        };
        let keys: Vec<String> = check(&cfg).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "name",
                "expr",
                "labels.bad-name",
                "labels.bad-name",
                "annotations.summary"
            ]
        );
    }
}
