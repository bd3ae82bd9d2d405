//! Repair triggers: an alert of a given name firing (narrowed by label matchers), or a PromQL
//! expression that has returned something for `for`. An expression trigger reuses the alert
//! rule state machine, so `for` means exactly what it means in an alert rule.

use std::collections::BTreeMap;

use crate::alert::manager::Snapshot;
use crate::alert::matcher::{self, Matcher};
use crate::alert::rule::{AlertState, Rule};
use crate::config::alerting::RuleConfig;
use crate::config::repair::RepairRuleConfig;
use crate::query::{Engine, Query, Source, Value};

/// What a holding trigger says.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Labels of the firing alert or of the expression's first series.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// What triggers are checked against.
pub struct Inputs<'a> {
    /// The alerting snapshot (alerts by rule).
    pub alerts: &'a Snapshot,
    /// The query engine.
    pub engine: &'a Engine,
    /// The stored data.
    pub source: &'a dyn Source,
}

/// A compiled trigger.
pub enum Trigger {
    /// An alert firing.
    Alert {
        /// Alert name.
        name: String,
        /// Extra matchers.
        matchers: Vec<Matcher>,
    },
    /// An expression held for `for`.
    Expr {
        /// The state machine that applies `for`.
        rule: Box<Rule>,
        /// The prepared query, for checks without `for`.
        query: Query,
    },
}

impl Trigger {
    /// Compiles the trigger of `cfg` (validated by the config loader already).
    pub fn compile(cfg: &RepairRuleConfig, engine: &Engine) -> Result<Trigger, String> {
        if let Some(name) = &cfg.alert {
            let matchers = matcher::parse_all(&cfg.matchers).map_err(|e| e.to_string())?;
            return Ok(Trigger::Alert {
                name: name.clone(),
                matchers,
            });
        }
        let expr = cfg.expr.clone().unwrap_or_default();
        let rule = Rule::compile(&RuleConfig {
            name: cfg.name.clone(),
            expr: expr.clone(),
            for_: Some(cfg.for_),
            ..RuleConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let query = engine.prepare(&expr).map_err(|e| e.to_string())?;
        Ok(Trigger::Expr {
            rule: Box::new(rule),
            query,
        })
    }

    /// What it watches, for the API and notifications.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Alert { name, matchers } if matchers.is_empty() => format!("alert {name}"),
            Trigger::Alert { name, matchers } => {
                let m: Vec<String> = matchers.iter().map(ToString::to_string).collect();
                format!("alert {name}{{{}}}", m.join(", "))
            }
            Trigger::Expr { rule, .. } if rule.for_ms > 0 => format!(
                "{} for {}",
                rule.expr,
                humantime::format_duration(std::time::Duration::from_millis(rule.for_ms as u64))
            ),
            Trigger::Expr { rule, .. } => rule.expr.clone(),
        }
    }

    /// The periodic check at `now`: whether the trigger holds, with `for` applied.
    pub fn check(&mut self, now: i64, inputs: &Inputs<'_>) -> Result<Option<Hit>, String> {
        match self {
            Trigger::Alert { name, matchers } => Ok(firing_alert(inputs.alerts, name, matchers)),
            Trigger::Expr { rule, .. } => {
                rule.eval(inputs.engine, inputs.source, now)
                    .map_err(|e| e.to_string())?;
                let mut firing: Vec<_> = rule
                    .active
                    .values()
                    .filter(|a| a.state == AlertState::Firing)
                    .collect();
                firing.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(firing.first().map(|a| Hit {
                    labels: a.labels.clone(),
                    value: a.value,
                }))
            }
        }
    }

    /// Whether the condition holds right now, `for` not applied: the re-check just before
    /// acting and the verification after `settle`.
    pub fn holds_now(&self, now: i64, inputs: &Inputs<'_>) -> Result<Option<Hit>, String> {
        match self {
            Trigger::Alert { name, matchers } => Ok(firing_alert(inputs.alerts, name, matchers)),
            Trigger::Expr { query, .. } => {
                let (value, _) = inputs
                    .engine
                    .instant_query(inputs.source, query, now)
                    .map_err(|e| e.to_string())?;
                Ok(match value {
                    Value::Vector(mut v) => {
                        v.sort_by(|a, b| a.labels.cmp(&b.labels));
                        v.into_iter().next().map(|s| Hit {
                            labels: s
                                .labels
                                .into_iter()
                                .filter(|(k, _)| k != "__name__")
                                .collect(),
                            value: s.v,
                        })
                    }
                    Value::Scalar { v, .. } => Some(Hit {
                        labels: BTreeMap::new(),
                        value: v,
                    }),
                    other => {
                        return Err(format!(
                            "trigger expression must return an instant vector, got {}",
                            other.result_type()
                        ))
                    }
                })
            }
        }
    }
}

/// The first firing alert named `name` matching `matchers` (in label order, so the choice is
/// stable between checks).
fn firing_alert(snapshot: &Snapshot, name: &str, matchers: &[Matcher]) -> Option<Hit> {
    snapshot
        .rules
        .iter()
        .filter(|r| r.name == name)
        .flat_map(|r| r.alerts.iter())
        .filter(|a| a.state == "firing" && matcher::matches_all(matchers, &a.labels))
        .min_by(|a, b| a.labels.cmp(&b.labels))
        .map(|a| Hit {
            labels: a.labels.clone(),
            value: a.value.parse().unwrap_or(f64::NAN),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::manager::{AlertView, RuleView};
    use crate::query::MemorySource;

    fn view(name: &str, alerts: &[(&str, &str)]) -> RuleView {
        RuleView {
            state: "firing",
            name: name.into(),
            query: "up == 0".into(),
            duration: 0.0,
            keep_firing_for: 0.0,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            alerts: alerts
                .iter()
                .map(|(instance, state)| AlertView {
                    labels: [
                        ("alertname".to_owned(), name.to_owned()),
                        ("instance".to_owned(), (*instance).to_owned()),
                    ]
                    .into(),
                    annotations: BTreeMap::new(),
                    state: if *state == "firing" {
                        "firing"
                    } else {
                        "pending"
                    },
                    active_at: String::new(),
                    value: "0".into(),
                    fingerprint: String::new(),
                    silenced_by: Vec::new(),
                    inhibited_by: Vec::new(),
                })
                .collect(),
            health: "ok",
            last_error: String::new(),
            evaluation_time: 0.0,
            last_evaluation: String::new(),
            kind: "alerting",
            source: String::new(),
        }
    }

    fn rule(
        alert: Option<&str>,
        expr: Option<&str>,
        matchers: &[&str],
        for_s: u64,
    ) -> RepairRuleConfig {
        RepairRuleConfig {
            name: "r".into(),
            alert: alert.map(Into::into),
            expr: expr.map(Into::into),
            matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
            for_: crate::config::HumanDuration(std::time::Duration::from_secs(for_s)),
            ..RepairRuleConfig::default()
        }
    }

    #[test]
    fn alert_trigger_takes_a_firing_alert_matching_the_matchers() {
        let engine = Engine::new(Default::default());
        let source = MemorySource::new();
        let snapshot = Snapshot {
            rules: vec![
                view(
                    "WebDown",
                    &[("web1", "pending"), ("web2", "firing"), ("web3", "firing")],
                ),
                view("Other", &[("web1", "firing")]),
            ],
            ..Snapshot::default()
        };
        let inputs = Inputs {
            alerts: &snapshot,
            engine: &engine,
            source: &source,
        };
        let mut t = Trigger::compile(&rule(Some("WebDown"), None, &[], 0), &engine).unwrap();
        let hit = t.check(0, &inputs).unwrap().unwrap();
        assert_eq!(hit.labels["instance"], "web2");
        let mut t = Trigger::compile(
            &rule(Some("WebDown"), None, &[r#"instance="web1""#], 0),
            &engine,
        )
        .unwrap();
        assert_eq!(t.check(0, &inputs).unwrap(), None, "web1 is only pending");
        assert_eq!(t.describe(), r#"alert WebDown{instance="web1"}"#);
    }

    #[test]
    fn expr_trigger_waits_for_its_for_but_holds_now_does_not() {
        let engine = Engine::new(Default::default());
        let mut source = MemorySource::new();
        let t0 = 1_700_000_000_000;
        for (dt, v) in [(0, 0.0), (10_000, 0.0), (20_000, 0.0), (30_000, 1.0)] {
            source.add(
                &[("__name__", "automon_probe_success"), ("probe", "web")],
                t0 + dt,
                v,
            );
        }
        let snapshot = Snapshot::default();
        let inputs = Inputs {
            alerts: &snapshot,
            engine: &engine,
            source: &source,
        };
        let mut t = Trigger::compile(
            &rule(None, Some("automon_probe_success == 0"), &[], 15),
            &engine,
        )
        .unwrap();
        assert_eq!(t.check(t0, &inputs).unwrap(), None, "pending");
        let now = t0 + 10_000;
        assert_eq!(t.check(now, &inputs).unwrap(), None, "still pending");
        assert!(t.holds_now(now, &inputs).unwrap().is_some());
        let hit = t.check(t0 + 20_000, &inputs).unwrap().unwrap();
        assert_eq!(hit.labels["probe"], "web");
        assert!(!hit.labels.contains_key("__name__"));
        assert_eq!(t.holds_now(t0 + 30_000, &inputs).unwrap(), None);
        assert_eq!(t.describe(), "automon_probe_success == 0 for 15s");
    }
}
