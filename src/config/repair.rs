//! Auto-repair settings: `[repair]` with its global limits and allowlists, and the repair rules
//! (`[[repair.rules]]`), each a trigger and one action.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, HumanDuration};

/// Default largest output excerpt kept from an `exec` repair.
pub const DEFAULT_REPAIR_MAX_OUTPUT: u64 = 64 * 1024;

/// `[repair]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RepairConfig {
    /// The kill switch: off, no rule acts (triggers are still recorded as skipped).
    pub enabled: bool,
    /// Every rule only records what it would have done.
    pub dry_run: bool,
    /// Most actions running at once, over all rules.
    pub max_concurrent: usize,
    /// Units repairs may act on: names or globs (`"nginx.service"`, `"app-*.service"`). A
    /// unit action on anything else is refused (at load time when the name is literal, at
    /// run time when it comes from the trigger's labels).
    pub allowed_units: Vec<String>,
    /// Directories `clean_files` may delete under (absolute; subdirectories included).
    pub allowed_paths: Vec<PathBuf>,
    /// How long audit rows are kept.
    pub audit_retention: HumanDuration,
    /// How often triggers are checked and finished actions collected.
    pub check_interval: HumanDuration,
    /// The rules.
    pub rules: Vec<RepairRuleConfig>,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            enabled: true,
            dry_run: false,
            max_concurrent: 2,
            allowed_units: Vec::new(),
            allowed_paths: Vec::new(),
            audit_retention: HumanDuration(Duration::from_secs(30 * 86_400)),
            check_interval: HumanDuration(Duration::from_secs(1)),
            rules: Vec::new(),
        }
    }
}

/// What a repair rule does when its trigger holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Not set (a config error).
    #[default]
    #[serde(skip)]
    Unset,
    /// `systemctl restart UNIT`, over D-Bus.
    RestartUnit,
    /// `systemctl reload UNIT`, over D-Bus.
    ReloadUnit,
    /// `systemctl start UNIT`, over D-Bus.
    StartUnit,
    /// Run a program (argv, no shell).
    Exec,
    /// Delete old files matching a pattern under an allowed directory.
    CleanFiles,
}

impl ActionKind {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Unset => "",
            ActionKind::RestartUnit => "restart_unit",
            ActionKind::ReloadUnit => "reload_unit",
            ActionKind::StartUnit => "start_unit",
            ActionKind::Exec => "exec",
            ActionKind::CleanFiles => "clean_files",
        }
    }

    /// Whether it acts on a systemd unit.
    pub fn is_unit(self) -> bool {
        matches!(
            self,
            ActionKind::RestartUnit | ActionKind::ReloadUnit | ActionKind::StartUnit
        )
    }
}

/// `[[repair.rules]]`: when the trigger holds, run the action, within the rule's limits.
///
/// The trigger is either `alert` (an alert of that name firing, optionally narrowed by
/// `matchers`) or `expr` (PromQL that must return something for `for`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RepairRuleConfig {
    /// Unique name, used in the audit trail, metrics and `automon repair reset NAME`.
    pub name: String,
    /// Trigger: the name of an alert rule; the repair triggers while that alert fires.
    pub alert: Option<String>,
    /// With `alert`: label matchers the firing alert must also match (`instance="web1"`).
    pub matchers: Vec<String>,
    /// Trigger: a PromQL expression; it holds while it returns at least one series.
    pub expr: Option<String>,
    /// With `expr`: how long it must hold before the repair acts.
    #[serde(rename = "for")]
    pub for_: HumanDuration,
    /// The action.
    pub action: ActionKind,
    /// Unit actions: the unit; may be a template over the trigger's labels
    /// (`"{{ $labels.name }}"`), checked against `repair.allowed_units` when it runs.
    pub unit: Option<String>,
    /// `exec`: program (absolute path) and arguments; no shell, no expansion.
    pub command: Vec<String>,
    /// `exec`: working directory (default `/`).
    pub working_dir: Option<PathBuf>,
    /// `exec`: names of the daemon's environment variables passed through.
    pub env: Vec<String>,
    /// `exec`: run as this user (needs the daemon to run as root).
    pub user: Option<String>,
    /// `exec`: most output (stdout and stderr together) kept in the audit trail; the rest is
    /// read and dropped.
    pub max_output_bytes: ByteSize,
    /// `clean_files`: the directory to clean; must be under one of `repair.allowed_paths`.
    pub path: Option<PathBuf>,
    /// `clean_files`: file-name glob (`"*.log.*"`); default every file.
    pub pattern: Option<String>,
    /// `clean_files`: only files last modified longer ago than this.
    pub older_than: Option<HumanDuration>,
    /// `clean_files`: also descend into subdirectories.
    pub recursive: bool,
    /// `clean_files`: most files deleted per run.
    pub max_files: u64,
    /// `clean_files`: most bytes deleted per run.
    pub max_bytes: Option<ByteSize>,
    /// How long the action may take (unit jobs, commands); it is then abandoned or killed.
    pub timeout: HumanDuration,
    /// Least time between two attempts.
    pub cooldown: HumanDuration,
    /// Most attempts within `window`; one more trigger after that and the rule gives up.
    pub max_attempts: u32,
    /// The sliding window `max_attempts` counts in.
    pub window: HumanDuration,
    /// How long after an action the trigger is checked again to tell fixed from not fixed.
    pub settle: HumanDuration,
    /// A rule that gave up re-arms after its trigger has been clear this long.
    pub rearm_after: HumanDuration,
    /// Only record what would have been done.
    pub dry_run: bool,
    /// Send a notification through the alerting receivers for each attempt's result (the
    /// "gave up" notification is always sent).
    pub notify: bool,
    /// Labels added to this rule's notifications, for routing (`severity`, `team`).
    pub labels: BTreeMap<String, String>,
}

impl Default for RepairRuleConfig {
    fn default() -> Self {
        RepairRuleConfig {
            name: String::new(),
            alert: None,
            matchers: Vec::new(),
            expr: None,
            for_: HumanDuration(Duration::ZERO),
            action: ActionKind::Unset,
            unit: None,
            command: Vec::new(),
            working_dir: None,
            env: Vec::new(),
            user: None,
            max_output_bytes: ByteSize(DEFAULT_REPAIR_MAX_OUTPUT),
            path: None,
            pattern: None,
            older_than: None,
            recursive: false,
            max_files: 1000,
            max_bytes: None,
            timeout: HumanDuration(Duration::from_secs(60)),
            cooldown: HumanDuration(Duration::from_secs(5 * 60)),
            max_attempts: 3,
            window: HumanDuration(Duration::from_secs(15 * 60)),
            settle: HumanDuration(Duration::from_secs(30)),
            rearm_after: HumanDuration(Duration::from_secs(15 * 60)),
            dry_run: false,
            notify: true,
            labels: BTreeMap::new(),
        }
    }
}

/// Whether `unit` is on the allowlist (exact names or globs with `*` and `?`).
pub fn unit_allowed(allowed: &[String], unit: &str) -> bool {
    allowed
        .iter()
        .any(|pattern| super::load::wildcard_match(pattern, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::load::wildcard_match as glob_match;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("nginx.service", "nginx.service"));
        assert!(!glob_match("nginx.service", "nginx.service2"));
        assert!(glob_match("app-*.service", "app-web.service"));
        assert!(glob_match("app-*.service", "app-.service"));
        assert!(!glob_match("app-*.service", "app-web.socket"));
        assert!(glob_match("*.log.?", "x.log.1"));
        assert!(!glob_match("*.log.?", "x.log.10"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn allowlist_takes_names_and_globs() {
        let allowed = vec!["nginx.service".to_owned(), "app-*.service".to_owned()];
        assert!(unit_allowed(&allowed, "nginx.service"));
        assert!(unit_allowed(&allowed, "app-api.service"));
        assert!(!unit_allowed(&allowed, "sshd.service"));
        assert!(!unit_allowed(&[], "nginx.service"));
    }
}
