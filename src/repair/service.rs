//! Builds and runs one generation of the repair loop from a loaded configuration; the daemon
//! stops a generation and starts the next on every reload, like alerting's.

use std::path::Path;
use std::sync::Arc;

use super::action::{self, Action};
use super::engine::{Limits, RuleState};
use super::runner::{RepairRule, Runner, Running, Shared, View};
use super::trigger::Trigger;
use crate::config::LoadedConfig;
use crate::query::{Engine, Source};
use crate::selfmetrics::SelfMetrics;

/// Why repairs could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database could not be opened.
    #[error(transparent)]
    Db(#[from] super::db::DbError),
    /// A rule does not compile (validation normally catches this first).
    #[error("repair rule {rule}: {message}")]
    Rule {
        /// The rule.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// The loop thread could not be started.
    #[error("repair: cannot start the repair thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Opens the state shared by every generation.
pub fn open_shared(data_dir: &Path) -> Result<Shared, ServiceError> {
    Ok(Shared::open(&data_dir.join(super::db::DB_FILE))?)
}

/// Compiles the rules of `loaded`. A rule that does not build (an `exec` user that needs
/// root, say) is left out and reported; the others run.
pub fn compile(loaded: &LoadedConfig, engine: &Engine) -> (Vec<RepairRule>, Vec<ServiceError>) {
    let repair = &loaded.config.repair;
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for cfg in &repair.rules {
        let err = |message: String| ServiceError::Rule {
            rule: cfg.name.clone(),
            message,
        };
        let built = Trigger::compile(cfg, engine)
            .map_err(err)
            .and_then(|trigger| {
                let action: Arc<dyn Action> =
                    action::build(cfg, repair).map_err(|e| err(e.to_string()))?;
                Ok((trigger, action))
            });
        match built {
            Ok((trigger, action)) => rules.push(RepairRule {
                cfg: cfg.clone(),
                trigger,
                action,
                limits: Limits::from_config(cfg),
                state: RuleState::default(),
                hit: None,
                error: None,
            }),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

/// Starts a generation; `None` when there are no rules (nothing to run, nothing to show but
/// the switches).
pub fn start(
    loaded: &LoadedConfig,
    shared: &Shared,
    alerting: &crate::alert::manager::Shared,
    source: Arc<dyn Source>,
    metrics: Arc<SelfMetrics>,
    engine: Engine,
) -> Result<Option<Running>, ServiceError> {
    let (rules, errors) = compile(loaded, &engine);
    let errors: Vec<String> = errors
        .into_iter()
        .map(|e| {
            tracing::error!("{e}; the rule does not run");
            e.to_string()
        })
        .collect();
    if rules.is_empty() {
        disabled(shared, None, loaded);
        if let Ok(mut v) = shared.view.write() {
            v.errors = errors;
        }
        return Ok(None);
    }
    let mut runner = Runner::new(
        rules,
        loaded.config.repair.clone(),
        engine,
        source,
        alerting.clone(),
        shared.clone(),
        metrics,
    );
    runner.errors = errors;
    Ok(Some(runner.spawn()?))
}

/// Shows in the API that no loop runs, and why.
pub fn disabled(shared: &Shared, reason: Option<&str>, loaded: &LoadedConfig) {
    if let Ok(mut v) = shared.view.write() {
        *v = View {
            enabled: loaded.config.repair.enabled,
            dry_run: loaded.config.repair.dry_run,
            paused: shared.db.paused().unwrap_or(false),
            disabled: reason.map(str::to_owned),
            ..View::default()
        };
    }
}
