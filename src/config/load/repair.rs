//! Validation of `[repair]`: what the types cannot say about repair rules, each error at the
//! key that causes it.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::Merged;
use crate::alert::template::Template;
use crate::config::repair::{unit_allowed, ActionKind, RepairConfig, RepairRuleConfig};

/// Keys that belong to one kind of action, with the actions they apply to: setting one on a
/// rule with another action is a mistake worth reporting (it would silently do nothing).
const ACTION_KEYS: &[(&str, &[ActionKind])] = &[
    (
        "unit",
        &[
            ActionKind::RestartUnit,
            ActionKind::ReloadUnit,
            ActionKind::StartUnit,
        ],
    ),
    ("command", &[ActionKind::Exec]),
    ("working_dir", &[ActionKind::Exec]),
    ("env", &[ActionKind::Exec]),
    ("user", &[ActionKind::Exec]),
    ("path", &[ActionKind::CleanFiles]),
    ("pattern", &[ActionKind::CleanFiles]),
    ("older_than", &[ActionKind::CleanFiles]),
    ("max_files", &[ActionKind::CleanFiles]),
    ("max_bytes", &[ActionKind::CleanFiles]),
    ("recursive", &[ActionKind::CleanFiles]),
];

/// Whether `path` lies under one of `allowed` (both absolute, compared component-wise after
/// refusing `..`, so `/var/log2` is not under `/var/log`).
pub fn path_allowed(allowed: &[std::path::PathBuf], path: &Path) -> bool {
    path.is_absolute()
        && !path.components().any(|c| c == Component::ParentDir)
        && allowed
            .iter()
            .any(|a| a.is_absolute() && path.starts_with(a))
}

impl Merged {
    pub(super) fn validate_repair(&mut self, repair: &RepairConfig) {
        let RepairConfig {
            enabled: _,
            dry_run: _,
            max_concurrent,
            allowed_units,
            allowed_paths,
            audit_retention,
            check_interval,
            rules,
        } = repair;
        if *max_concurrent == 0 {
            self.errors.push(self.error(
                "repair.max_concurrent",
                "must be greater than 0 (use `enabled = false` to stop all repairs)",
            ));
        }
        self.positive("repair.audit_retention", *audit_retention);
        self.positive("repair.check_interval", *check_interval);
        for (i, unit) in allowed_units.iter().enumerate() {
            if unit.trim().is_empty() {
                self.errors
                    .push(self.error(&format!("repair.allowed_units.{i}"), "empty unit name"));
            }
        }
        for (i, dir) in allowed_paths.iter().enumerate() {
            let key = format!("repair.allowed_paths.{i}");
            if !dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir) {
                self.errors.push(self.error(
                    &key,
                    format!("{} must be an absolute path without `..`", dir.display()),
                ));
            } else if dir == Path::new("/") {
                self.errors.push(self.error(
                    &key,
                    "\"/\" would let clean_files delete anywhere; name the directories to clean",
                ));
            }
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let key = format!("repair.rules.{i}");
            self.plugin_name(&key, &rule.name, &mut names, i, "repair rule");
            self.validate_repair_trigger(&key, rule);
            self.validate_repair_action(&key, rule, repair);
            self.validate_repair_limits(&key, rule);
        }
    }

    fn validate_repair_trigger(&mut self, key: &str, rule: &RepairRuleConfig) {
        match (&rule.alert, &rule.expr) {
            (None, None) => self.errors.push(self.error(
                key,
                "repair rule has no trigger: set `alert` (an alert name) or `expr` (PromQL)",
            )),
            (Some(_), Some(_)) => self.errors.push(self.error(
                &format!("{key}.expr"),
                "set either `alert` or `expr`, not both",
            )),
            (Some(alert), None) => {
                if alert.trim().is_empty() {
                    self.errors
                        .push(self.error(&format!("{key}.alert"), "empty alert name"));
                }
                if !rule.for_.0.is_zero() {
                    self.errors.push(self.error(
                        &format!("{key}.for"),
                        "`for` applies to `expr` triggers; an `alert` trigger waits for the \
                         alert rule's own `for`",
                    ));
                }
                for (j, m) in rule.matchers.iter().enumerate() {
                    if let Err(e) = crate::alert::matcher::Matcher::parse(m) {
                        self.errors
                            .push(self.error(&format!("{key}.matchers.{j}"), e.to_string()));
                    }
                }
            }
            (None, Some(expr)) => {
                if !rule.matchers.is_empty() {
                    self.errors.push(self.error(
                        &format!("{key}.matchers"),
                        "`matchers` narrow an `alert` trigger; put label selectors into `expr`",
                    ));
                }
                if expr.trim().is_empty() {
                    self.errors
                        .push(self.error(&format!("{key}.expr"), "empty expression"));
                } else if let Err(e) = crate::query::parse(expr) {
                    self.errors.push(
                        self.error(&format!("{key}.expr"), format!("invalid expression: {e}")),
                    );
                }
            }
        }
        for (k, v) in &rule.labels {
            if !crate::alert::rule::valid_label_name(k) || k == "__name__" {
                self.errors.push(self.error(
                    &format!("{key}.labels.{k}"),
                    "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                ));
            }
            if v.is_empty() {
                self.errors
                    .push(self.error(&format!("{key}.labels.{k}"), "empty label value"));
            }
        }
    }

    fn validate_repair_action(
        &mut self,
        key: &str,
        rule: &RepairRuleConfig,
        repair: &RepairConfig,
    ) {
        let action = rule.action;
        if action == ActionKind::Unset {
            self.errors.push(self.error(
                &format!("{key}.action"),
                "missing; one of \"restart_unit\", \"reload_unit\", \"start_unit\", \"exec\", \
                 \"clean_files\"",
            ));
            return;
        }
        let defaults = RepairRuleConfig::default();
        for (name, applies) in ACTION_KEYS {
            let set = match *name {
                "unit" => rule.unit.is_some(),
                "command" => !rule.command.is_empty(),
                "working_dir" => rule.working_dir.is_some(),
                "env" => !rule.env.is_empty(),
                "user" => rule.user.is_some(),
                "path" => rule.path.is_some(),
                "pattern" => rule.pattern.is_some(),
                "older_than" => rule.older_than.is_some(),
                "max_files" => rule.max_files != defaults.max_files,
                "max_bytes" => rule.max_bytes.is_some(),
                "recursive" => rule.recursive,
                _ => false,
            };
            if set && !applies.contains(&action) {
                self.errors.push(self.error(
                    &format!("{key}.{name}"),
                    format!(
                        "does not apply to action = {:?} (it belongs to {})",
                        action.as_str(),
                        applies
                            .iter()
                            .map(|a| format!("{:?}", a.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        match action {
            ActionKind::Unset => {}
            ActionKind::RestartUnit | ActionKind::ReloadUnit | ActionKind::StartUnit => {
                self.validate_repair_unit(key, rule, repair)
            }
            ActionKind::Exec => self.validate_repair_exec(key, rule),
            ActionKind::CleanFiles => self.validate_repair_clean(key, rule, repair),
        }
    }

    fn validate_repair_unit(&mut self, key: &str, rule: &RepairRuleConfig, repair: &RepairConfig) {
        let unit_key = format!("{key}.unit");
        let Some(unit) = &rule.unit else {
            self.errors.push(self.error(
                &unit_key,
                format!(
                    "missing; action = {:?} needs the unit, e.g. unit = \"nginx.service\"",
                    rule.action.as_str()
                ),
            ));
            return;
        };
        match Template::parse(unit) {
            Err(e) => self.errors.push(self.error(&unit_key, e.to_string())),
            Ok(t) if t.is_static() => {
                if !unit.contains('.') {
                    self.errors.push(self.error(
                        &unit_key,
                        format!("{unit:?} has no unit type; write e.g. \"{unit}.service\""),
                    ));
                } else if !unit_allowed(&repair.allowed_units, unit) {
                    self.errors.push(self.error(
                        &unit_key,
                        format!(
                            "{unit:?} is not in repair.allowed_units; add it there (and to the \
                             polkit rule /etc/polkit-1/rules.d/50-automon.rules) to let \
                             repairs act on it"
                        ),
                    ));
                }
            }
            // A templated name is only known when the trigger fires; it is checked then.
            Ok(_) => {}
        }
    }

    fn validate_repair_exec(&mut self, key: &str, rule: &RepairRuleConfig) {
        match rule.command.first() {
            None => self.errors.push(self.error(
                &format!("{key}.command"),
                "missing; action = \"exec\" needs e.g. command = [\"/usr/local/bin/fix\", \"--now\"]",
            )),
            Some(program) if !Path::new(program).is_absolute() => self.errors.push(self.error(
                &format!("{key}.command"),
                format!(
                    "program {program:?} is not an absolute path; commands run without a shell \
                     or PATH lookup, so write e.g. \"/usr/local/bin/{program}\""
                ),
            )),
            Some(_) => {}
        }
        if let Some(dir) = &rule.working_dir {
            if !dir.is_absolute() {
                self.errors.push(self.error(
                    &format!("{key}.working_dir"),
                    format!("{} is not an absolute path", dir.display()),
                ));
            }
        }
        for (j, var) in rule.env.iter().enumerate() {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                self.errors.push(self.error(
                    &format!("{key}.env.{j}"),
                    format!("{var:?} is not an environment variable name (list names only)"),
                ));
            }
        }
        if rule.user.as_deref().is_some_and(str::is_empty) {
            self.errors
                .push(self.error(&format!("{key}.user"), "is empty; remove it or name a user"));
        }
        if rule.max_output_bytes.0 == 0 {
            self.errors
                .push(self.error(&format!("{key}.max_output_bytes"), "must be greater than 0"));
        }
    }

    fn validate_repair_clean(&mut self, key: &str, rule: &RepairRuleConfig, repair: &RepairConfig) {
        match &rule.path {
            None => self.errors.push(self.error(
                &format!("{key}.path"),
                "missing; action = \"clean_files\" needs the directory to clean",
            )),
            Some(path) if !path_allowed(&repair.allowed_paths, path) => {
                self.errors.push(self.error(
                    &format!("{key}.path"),
                    format!(
                        "{} is not under any of repair.allowed_paths; add the directory there \
                         to let clean_files delete in it",
                        path.display()
                    ),
                ))
            }
            Some(_) => {}
        }
        if let Some(pattern) = &rule.pattern {
            if pattern.is_empty() || pattern.contains('/') {
                self.errors.push(self.error(
                    &format!("{key}.pattern"),
                    format!("{pattern:?}: write a file-name glob without '/', e.g. \"*.log.*\""),
                ));
            }
        }
        match rule.older_than {
            None => self.errors.push(self.error(
                &format!("{key}.older_than"),
                "missing; clean_files only deletes files older than an age, e.g. \"7d\"",
            )),
            Some(age) => self.positive(&format!("{key}.older_than"), age),
        }
        if rule.max_files == 0 {
            self.errors
                .push(self.error(&format!("{key}.max_files"), "must be greater than 0"));
        }
        if rule.max_bytes.is_some_and(|b| b.0 == 0) {
            self.errors
                .push(self.error(&format!("{key}.max_bytes"), "must be greater than 0"));
        }
    }

    fn validate_repair_limits(&mut self, key: &str, rule: &RepairRuleConfig) {
        self.positive(&format!("{key}.timeout"), rule.timeout);
        self.positive(&format!("{key}.window"), rule.window);
        self.positive(&format!("{key}.settle"), rule.settle);
        self.positive(&format!("{key}.rearm_after"), rule.rearm_after);
        if rule.max_attempts == 0 {
            self.errors.push(self.error(
                &format!("{key}.max_attempts"),
                "must be at least 1 (use dry_run = true to record without acting)",
            ));
        }
        if rule.cooldown.0 > rule.window.0 && rule.max_attempts > 1 {
            self.errors.push(self.error(
                &format!("{key}.cooldown"),
                "is longer than `window`, so more than one attempt can never fall in the \
                 window and max_attempts would never be reached; shorten it or lengthen window",
            ));
        }
    }
}
