//! The route tree: which receiver gets an alert and how it is grouped, with Alertmanager's
//! matching rules (depth first; the first matching child wins unless it says `continue`; a
//! route none of whose children match takes the alert itself).

use std::collections::BTreeMap;
use std::time::Duration;

use super::matcher::{self, Matcher};
use crate::config::alerting::RouteConfig;

/// How a route splits alerts into groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `["..."]`: every label, one group per alert.
    All,
    /// These labels.
    Labels(Vec<String>),
}

/// A compiled route, with inherited settings resolved.
#[derive(Debug, Clone)]
pub struct Route {
    /// Stable id built from the matchers on the path from the root (`{}` for the root, then
    /// `{}/{severity="critical"}` ...), the prefix of group keys, as in Alertmanager.
    pub key: String,
    /// Receiver name.
    pub receiver: String,
    /// Matchers of this node.
    pub matchers: Vec<Matcher>,
    /// Grouping.
    pub group_by: GroupBy,
    /// Wait before a new group's first notification.
    pub group_wait: Duration,
    /// Wait between notifications of a group.
    pub group_interval: Duration,
    /// Wait before repeating an unchanged notification.
    pub repeat_interval: Duration,
    /// Keep matching siblings.
    pub continue_: bool,
    /// Children.
    pub routes: Vec<Route>,
}

/// A route problem: the key (relative to `alerting.route`) and the message.
pub type RouteError = (String, String);

impl Route {
    /// Compiles the tree. `receivers` are the configured receiver names. Every problem is
    /// returned.
    pub fn compile(cfg: &RouteConfig, receivers: &[&str]) -> Result<Route, Vec<RouteError>> {
        let mut errors = Vec::new();
        let defaults = RouteConfig::root_default();
        let root = Self::compile_node(cfg, None, &defaults, "", receivers, &mut errors);
        if errors.is_empty() {
            Ok(root)
        } else {
            Err(errors)
        }
    }

    fn compile_node(
        cfg: &RouteConfig,
        parent: Option<&Route>,
        defaults: &RouteConfig,
        path: &str,
        receivers: &[&str],
        errors: &mut Vec<RouteError>,
    ) -> Route {
        let key_of = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        let matchers: Vec<Matcher> = cfg
            .matchers
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match Matcher::parse(m) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push((key_of(&format!("matchers.{i}")), e.to_string()));
                    None
                }
            })
            .collect();
        let receiver = match (&cfg.receiver, parent) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => p.receiver.clone(),
            (None, None) => String::new(),
        };
        if !receiver.is_empty() && !receivers.contains(&receiver.as_str()) {
            let known = if receivers.is_empty() {
                "none are configured; add [[alerting.receivers]]".to_owned()
            } else {
                format!("configured: {}", receivers.join(", "))
            };
            errors.push((
                key_of("receiver"),
                format!("unknown receiver {receiver:?} ({known})"),
            ));
        }
        if parent.is_none() && receiver.is_empty() && !receivers.is_empty() {
            errors.push((
                key_of("receiver"),
                "the root route needs a receiver: it gets every alert no child route takes".into(),
            ));
        }
        let group_by = match (&cfg.group_by, parent) {
            (Some(labels), _) if labels.iter().any(|l| l == "...") => GroupBy::All,
            (Some(labels), _) => GroupBy::Labels(labels.clone()),
            (None, Some(p)) => p.group_by.clone(),
            (None, None) => GroupBy::Labels(defaults.group_by.clone().unwrap_or_default()),
        };
        let pick = |own: Option<crate::config::HumanDuration>,
                    inherited: Option<Duration>,
                    default: Option<crate::config::HumanDuration>| {
            own.map(|d| d.0)
                .or(inherited)
                .or(default.map(|d| d.0))
                .unwrap_or_default()
        };
        let group_wait = pick(
            cfg.group_wait,
            parent.map(|p| p.group_wait),
            defaults.group_wait,
        );
        let group_interval = pick(
            cfg.group_interval,
            parent.map(|p| p.group_interval),
            defaults.group_interval,
        );
        let repeat_interval = pick(
            cfg.repeat_interval,
            parent.map(|p| p.repeat_interval),
            defaults.repeat_interval,
        );
        if group_interval.is_zero() {
            errors.push((key_of("group_interval"), "must be greater than 0".into()));
        }
        if repeat_interval.is_zero() {
            errors.push((key_of("repeat_interval"), "must be greater than 0".into()));
        }
        let own_key = format!(
            "{{{}}}",
            matchers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let key = match parent {
            Some(p) => format!("{}/{own_key}", p.key),
            None => own_key,
        };
        let mut route = Route {
            key,
            receiver,
            matchers,
            group_by,
            group_wait,
            group_interval,
            repeat_interval,
            continue_: cfg.continue_,
            routes: Vec::new(),
        };
        let children: Vec<Route> = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Self::compile_node(
                    c,
                    Some(&route),
                    defaults,
                    &key_of(&format!("routes.{i}")),
                    receivers,
                    errors,
                )
            })
            .collect();
        route.routes = children;
        route
    }

    /// The routes that take an alert with these labels.
    pub fn matching(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        if !matcher::matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let found = child.matching(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.continue_ {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The group labels of an alert on this route.
    pub fn group_labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }

    /// The group key of an alert on this route: route key plus group labels.
    pub fn group_key(&self, group_labels: &BTreeMap<String, String>) -> String {
        let inner: Vec<String> = group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}:{{{}}}", self.key, inner.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tree() -> RouteConfig {
        RouteConfig {
            receiver: Some("default".into()),
            routes: vec![
                RouteConfig {
                    receiver: Some("pager".into()),
                    matchers: vec![r#"severity="critical""#.into()],
                    group_wait: Some(HumanDuration(Duration::from_secs(5))),
                    continue_: true,
                    ..Default::default()
                },
                RouteConfig {
                    receiver: Some("db".into()),
                    matchers: vec!["team=~db|storage".into()],
                    group_by: Some(vec!["...".into()]),
                    ..Default::default()
                },
                RouteConfig {
                    receiver: Some("never".into()),
                    matchers: vec!["team=~db.*".into()],
                    ..Default::default()
                },
            ],
            ..RouteConfig::root_default()
        }
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let r = Route::compile(&tree(), &["default", "pager", "db", "never"]).unwrap();
        let names = |l: &[(&str, &str)]| -> Vec<String> {
            r.matching(&labels(l))
                .iter()
                .map(|r| r.receiver.clone())
                .collect()
        };
        assert_eq!(
            names(&[("severity", "critical"), ("team", "db")]),
            ["pager", "db"]
        );
        assert_eq!(names(&[("team", "db")]), ["db"]);
        assert_eq!(names(&[("team", "web")]), ["default"]);
    }

    #[test]
    fn settings_inherit() {
        let r = Route::compile(&tree(), &["default", "pager", "db", "never"]).unwrap();
        let pager = &r.routes[0];
        assert_eq!(pager.group_wait, Duration::from_secs(5));
        assert_eq!(pager.group_interval, Duration::from_secs(300));
        assert_eq!(pager.group_by, GroupBy::Labels(vec!["alertname".into()]));
        assert_eq!(r.routes[1].group_by, GroupBy::All);
        assert_eq!(pager.key, r#"{}/{severity="critical"}"#);
        let gl = pager.group_labels(&labels(&[("alertname", "X"), ("severity", "critical")]));
        assert_eq!(
            pager.group_key(&gl),
            r#"{}/{severity="critical"}:{alertname="X"}"#
        );
    }

    #[test]
    fn unknown_receivers_and_bad_matchers_are_reported() {
        let mut cfg = tree();
        cfg.routes[1].matchers.push("bad".into());
        let errs = Route::compile(&cfg, &["default", "pager", "db"]).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["routes.1.matchers.1", "routes.2.receiver"]);
        assert!(errs[1].1.contains("unknown receiver \"never\""));
    }
}
