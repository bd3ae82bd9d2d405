//! Alerting self-metrics, registered in the daemon's registry.

use prometheus::{Gauge, GaugeVec, IntCounterVec, Registry};

use crate::selfmetrics::{counter_vec, gauge_vec};

/// Rule evaluation, alert state and notification delivery metrics.
pub struct AlertMetrics {
    /// `automon_rule_evaluation_duration_seconds`: the last evaluation round, all rules.
    pub round_duration: Gauge,
    /// `automon_rule_evaluations_total{rule}`.
    pub evaluations: IntCounterVec,
    /// `automon_rule_evaluation_failures_total{rule}`.
    pub evaluation_failures: IntCounterVec,
    /// `automon_alerts{state}`: alert instances by state (pending, firing).
    pub alerts: GaugeVec,
    /// `automon_notifications_sent_total{integration}`.
    pub sent: IntCounterVec,
    /// `automon_notification_attempts_failed_total{integration}`: failed attempts, retried
    /// or not.
    pub attempts_failed: IntCounterVec,
    /// `automon_notifications_failed_total{integration,reason}`: notifications given up
    /// (`permanent` error, `expired` after max_age, `unknown_integration`).
    pub failed: IntCounterVec,
    /// `automon_notifications_queued{integration}`: pending in the outbox.
    pub queued: GaugeVec,
    /// `automon_outbox_oldest_age_seconds`: age of the oldest pending notification (0 if
    /// none).
    pub oldest_age: Gauge,
}

impl AlertMetrics {
    /// Registers the metrics in `reg`.
    pub fn new(reg: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
            let _ = reg.register(Box::new(g.clone()));
            g
        };
        AlertMetrics {
            round_duration: gauge(
                "automon_rule_evaluation_duration_seconds",
                "Duration of the last rule evaluation round (all rules).",
            ),
            evaluations: counter_vec(
                reg,
                "automon_rule_evaluations_total",
                "Rule evaluations.",
                &["rule"],
            ),
            evaluation_failures: counter_vec(
                reg,
                "automon_rule_evaluation_failures_total",
                "Rule evaluations that failed.",
                &["rule"],
            ),
            alerts: gauge_vec(
                reg,
                "automon_alerts",
                "Alert instances by state.",
                &["state"],
            ),
            sent: counter_vec(
                reg,
                "automon_notifications_sent_total",
                "Notifications delivered, by receiver integration.",
                &["integration"],
            ),
            attempts_failed: counter_vec(
                reg,
                "automon_notification_attempts_failed_total",
                "Failed delivery attempts, by receiver integration.",
                &["integration"],
            ),
            failed: counter_vec(
                reg,
                "automon_notifications_failed_total",
                "Notifications given up, by receiver integration and reason.",
                &["integration", "reason"],
            ),
            queued: gauge_vec(
                reg,
                "automon_notifications_queued",
                "Notifications waiting in the outbox, by receiver integration.",
                &["integration"],
            ),
            oldest_age: gauge(
                "automon_outbox_oldest_age_seconds",
                "Age of the oldest notification waiting in the outbox.",
            ),
        }
    }
}
