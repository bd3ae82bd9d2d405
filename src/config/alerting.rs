//! Alerting settings: `[alerting]` with its route tree, receivers, inhibit rules and outbox,
//! and the alert rules (inline `[[alerting.rules]]` or `[[rules]]` in rule files).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::receivers::ReceiverConfig;
use super::HumanDuration;

/// `[alerting]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertingConfig {
    /// Evaluate rules at all. Off also stops notifications (queued ones stay in the outbox).
    pub enabled: bool,
    /// How often every rule is evaluated.
    pub evaluation_interval: HumanDuration,
    /// Load the built-in host rule set (`config/rules/host.toml`, compiled in).
    pub builtin_rules: bool,
    /// Globs of rule files; relative ones are relative to the main config file's directory.
    pub rule_files: Vec<String>,
    /// Rules written inline in the config.
    pub rules: Vec<RuleConfig>,
    /// Base URL of this automon as users reach it, for links in notifications; default
    /// `http://<hostname>:<port>`.
    pub external_url: Option<String>,
    /// The root of the route tree.
    pub route: RouteConfig,
    /// Receivers that routes refer to by name.
    pub receivers: Vec<ReceiverConfig>,
    /// Mute alerts matching a target while an alert matching a source fires.
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Delivery queue settings.
    pub outbox: OutboxConfig,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            enabled: true,
            evaluation_interval: HumanDuration(Duration::from_secs(15)),
            builtin_rules: true,
            rule_files: vec!["rules.d/*.toml".into()],
            rules: Vec::new(),
            external_url: None,
            route: RouteConfig::root_default(),
            receivers: Vec::new(),
            inhibit_rules: vec![InhibitRuleConfig {
                source_matchers: vec![r#"severity="critical""#.into()],
                target_matchers: vec![r#"severity="warning""#.into()],
                equal: vec![
                    "alertname".into(),
                    "device".into(),
                    "mountpoint".into(),
                    "collector".into(),
                ],
            }],
            outbox: OutboxConfig::default(),
        }
    }
}

/// One alert rule, Prometheus' alerting rule in TOML.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RuleConfig {
    /// The alert name (`alertname` label).
    pub name: String,
    /// PromQL; every series it returns is one alert instance.
    pub expr: String,
    /// How long the expression must hold before the alert fires (pending until then).
    #[serde(rename = "for")]
    pub for_: Option<HumanDuration>,
    /// How long the alert keeps firing after the expression stopped returning it.
    pub keep_firing_for: Option<HumanDuration>,
    /// Labels added to every alert instance (templates allowed).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, ...) with templates such as
    /// `{{ $labels.device }}` and `{{ $value | humanize }}`.
    pub annotations: BTreeMap<String, String>,
    /// Where the rule was written (`file:line`), set by the loader.
    #[serde(skip)]
    pub source: String,
}

/// A rule file: `[[rules]]` tables.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RuleFile {
    /// The rules of this file.
    pub rules: Vec<RuleConfig>,
}

/// A node of the route tree. Unset values inherit from the parent route.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RouteConfig {
    /// Receiver name; the root route's is the fallback for everything.
    pub receiver: Option<String>,
    /// Alertmanager-style matchers, all of which must match: `severity="critical"`,
    /// `team=~"db|infra"`, `env!="dev"`.
    pub matchers: Vec<String>,
    /// Labels that split alerts into groups (one notification per group); `["..."]` groups
    /// by all labels.
    pub group_by: Option<Vec<String>>,
    /// How long to wait before the first notification of a new group, to collect alerts
    /// that fire together.
    pub group_wait: Option<HumanDuration>,
    /// How long to wait before notifying about alerts added to (or resolved in) a group
    /// already notified.
    pub group_interval: Option<HumanDuration>,
    /// How long to wait before re-sending an unchanged, still firing group.
    pub repeat_interval: Option<HumanDuration>,
    /// Keep matching sibling routes after this one matched.
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Child routes, tried in order; the first that matches takes the alert.
    pub routes: Vec<RouteConfig>,
}

impl RouteConfig {
    /// Alertmanager's root defaults, grouping by alert name.
    pub fn root_default() -> Self {
        RouteConfig {
            receiver: None,
            matchers: Vec::new(),
            group_by: Some(vec!["alertname".into()]),
            group_wait: Some(HumanDuration(Duration::from_secs(30))),
            group_interval: Some(HumanDuration(Duration::from_secs(5 * 60))),
            repeat_interval: Some(HumanDuration(Duration::from_secs(4 * 3600))),
            continue_: false,
            routes: Vec::new(),
        }
    }
}

/// `[[alerting.inhibit_rules]]`: while an alert matching `source_matchers` fires, alerts
/// matching `target_matchers` with the same values of the `equal` labels are not notified.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct InhibitRuleConfig {
    /// Matchers selecting the inhibiting alerts.
    pub source_matchers: Vec<String>,
    /// Matchers selecting the inhibited alerts.
    pub target_matchers: Vec<String>,
    /// Labels that must be equal (or absent on both) between source and target.
    pub equal: Vec<String>,
}

/// `[alerting.outbox]`: how queued notifications are delivered.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct OutboxConfig {
    /// Sends in flight at once per receiver integration.
    pub concurrency: usize,
    /// First retry delay; doubles per attempt (with jitter) up to `max_backoff`.
    pub min_backoff: HumanDuration,
    /// Longest retry delay.
    pub max_backoff: HumanDuration,
    /// A notification not delivered within this age is given up, logged and counted.
    pub max_age: HumanDuration,
    /// Time limit of one send attempt.
    pub send_timeout: HumanDuration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            concurrency: 4,
            min_backoff: HumanDuration(Duration::from_secs(1)),
            max_backoff: HumanDuration(Duration::from_secs(5 * 60)),
            max_age: HumanDuration(Duration::from_secs(24 * 3600)),
            send_timeout: HumanDuration(Duration::from_secs(30)),
        }
    }
}
