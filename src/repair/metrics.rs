//! Repair self-metrics, registered in the daemon's registry.

use prometheus::{Gauge, GaugeVec, IntCounterVec, Registry};

use crate::selfmetrics::{counter_vec, gauge_vec};

/// Repair attempts, skips and rule states.
pub struct RepairMetrics {
    /// `automon_repair_attempts_total{rule,outcome}`: finished attempts by outcome
    /// (`succeeded`, `failed`, `timed_out`, `refused`, `dry_run`, `interrupted`) and
    /// verification result (`fixed`, `not_fixed`).
    pub attempts: IntCounterVec,
    /// `automon_repair_skipped_total{rule,reason}`: triggers that did not act, by reason.
    pub skipped: IntCounterVec,
    /// `automon_repair_state{rule}`: 0 armed, 1 running, 2 verifying, 3 gave up.
    pub state: GaugeVec,
    /// `automon_repair_paused`: 1 while `automon repair pause` is in effect.
    pub paused: Gauge,
    /// `automon_repair_actions_running`: actions running now.
    pub running: Gauge,
}

impl RepairMetrics {
    /// Registers the metrics in `reg`.
    pub fn new(reg: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
            let _ = reg.register(Box::new(g.clone()));
            g
        };
        RepairMetrics {
            attempts: counter_vec(
                reg,
                "automon_repair_attempts_total",
                "Repair attempts by outcome (succeeded, failed, timed_out, refused, dry_run, \
                 interrupted) and verification (fixed, not_fixed).",
                &["rule", "outcome"],
            ),
            skipped: counter_vec(
                reg,
                "automon_repair_skipped_total",
                "Repair triggers that did not act, by reason.",
                &["rule", "reason"],
            ),
            state: gauge_vec(
                reg,
                "automon_repair_state",
                "Repair rule state: 0 armed, 1 running, 2 verifying, 3 gave up.",
                &["rule"],
            ),
            paused: gauge("automon_repair_paused", "1 while repairs are paused."),
            running: gauge(
                "automon_repair_actions_running",
                "Repair actions running now.",
            ),
        }
    }
}
