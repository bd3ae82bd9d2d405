//! Repair actions, one file each, behind [`Action`]. An action does one thing once: it never
//! retries and never decides whether it should run (cooldowns, limits, allowlists of the
//! engine, dry runs are the engine's business); it only refuses what it must not do (a unit
//! or path outside the allowlist, which a templated name can only reveal at run time).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::repair::ActionKind;

/// What the trigger said when an action runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionContext {
    /// The repair rule's name.
    pub rule: String,
    /// Labels of what triggered it (the alert's, or the expression's first series).
    pub labels: BTreeMap<String, String>,
    /// The trigger's value.
    pub value: f64,
}

/// What a successful run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionOutput {
    /// One line for the audit trail and notifications (`restarted nginx.service`,
    /// `deleted 12 files, 340 MB`).
    pub summary: String,
    /// Bounded excerpt of what it printed or did, for the audit trail.
    pub output: String,
}

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Refused before doing anything: not on an allowlist, a name that renders empty.
    #[error("refused: {0}")]
    Refused(String),
    /// It ran and failed (non-zero exit, a failed unit job, a delete that failed).
    #[error("{message}")]
    Failed {
        /// What went wrong, one line.
        message: String,
        /// Bounded excerpt of its output.
        output: String,
    },
    /// It did not finish within its timeout (a command is killed, a unit job abandoned).
    #[error("timed out after {}", humantime::format_duration(*after))]
    TimedOut {
        /// The timeout.
        after: Duration,
        /// Bounded excerpt of its output so far.
        output: String,
    },
}

impl ActionError {
    /// The output excerpt that goes with the error, if any.
    pub fn output(&self) -> &str {
        match self {
            ActionError::Refused(_) => "",
            ActionError::Failed { output, .. } | ActionError::TimedOut { output, .. } => output,
        }
    }
}

/// An action could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionBuildError(pub String);

/// One repair action, configured.
pub trait Action: Send + Sync + std::fmt::Debug {
    /// Which kind it is.
    fn kind(&self) -> ActionKind;

    /// What it acts on (`unit:nginx.service`, `path:/var/log/app`): the engine never runs two
    /// actions on one target at once. It may depend on the trigger's labels; an error is a
    /// refusal, recorded as such.
    fn target(&self, ctx: &ActionContext) -> Result<String, ActionError>;

    /// What it would do, in words, for the audit trail and dry runs
    /// (`restart nginx.service`, `run /usr/local/bin/fix --now`).
    fn describe(&self, ctx: &ActionContext) -> String;

    /// Runs once, blocking the calling thread, bounded by its own timeout; never retries.
    fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError>;
}

pub mod clean_files;
pub mod exec;
pub mod unit;

/// Builds the action of `rule`.
pub fn build(
    rule: &crate::config::repair::RepairRuleConfig,
    repair: &crate::config::repair::RepairConfig,
) -> Result<std::sync::Arc<dyn Action>, ActionBuildError> {
    Ok(match rule.action {
        ActionKind::Unset => return Err(ActionBuildError("no action configured".into())),
        ActionKind::RestartUnit | ActionKind::ReloadUnit | ActionKind::StartUnit => {
            std::sync::Arc::new(unit::UnitAction::new(rule, repair)?)
        }
        ActionKind::Exec => std::sync::Arc::new(exec::ExecAction::new(rule)?),
        ActionKind::CleanFiles => std::sync::Arc::new(clean_files::CleanFiles::new(rule, repair)?),
    })
}
