//! Component status behind `/health`: each collector's last success, last error and
//! duration, and the pipeline's liveness, summarised as `ok`, `degraded` or `failing`.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::collector::scheduler::{Outcome, Report};

/// Overall or per-component status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything works.
    Ok,
    /// Something is failing but the daemon still does useful work.
    Degraded,
    /// The daemon is not doing its job.
    Failing,
}

/// Health of one collector, as served in `/health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CollectorHealth {
    /// `ok` or `failing`.
    pub status: Status,
    /// RFC 3339 time of the last successful collection.
    pub last_success: Option<String>,
    /// RFC 3339 time of the last failure.
    pub last_error_at: Option<String>,
    /// The last failure's message (kept after recovery, to help explain flapping).
    pub last_error: Option<String>,
    /// Duration of the last completed collection in seconds.
    pub duration_seconds: Option<f64>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Informational note from the collector (e.g. a missing kernel feature).
    pub note: Option<String>,
}

/// The pipeline's liveness.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PipelineHealth {
    /// `ok`, or `failing` when the ingest task has made no progress for too long.
    pub status: Status,
    /// Seconds since the ingest task last handled a message.
    pub last_progress_seconds_ago: f64,
}

/// The `/health` document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// Overall status: `failing` if the pipeline is stalled or every collector fails,
    /// `degraded` if some collector fails, else `ok`.
    pub status: Status,
    /// Daemon version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// The pipeline.
    pub pipeline: PipelineHealth,
    /// Collectors by name.
    pub collectors: BTreeMap<String, CollectorHealth>,
}

#[derive(Debug, Default)]
struct State {
    collectors: BTreeMap<String, CollectorHealth>,
}

/// Shared, updated by the ingest task, read by `/health`, `doctor` and `STATUS=`.
#[derive(Debug)]
pub struct Health {
    started: SystemTime,
    state: RwLock<State>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            started: SystemTime::now(),
            state: RwLock::new(State::default()),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    crate::alert::rfc3339(ms)
}

impl Health {
    /// Records a collector's report.
    pub fn record(&self, r: &Report) {
        let Ok(mut st) = self.state.write() else {
            return;
        };
        let entry = st
            .collectors
            .entry(r.collector.clone())
            .or_insert_with(|| CollectorHealth {
                status: Status::Ok,
                last_success: None,
                last_error_at: None,
                last_error: None,
                duration_seconds: None,
                consecutive_failures: 0,
                note: None,
            });
        let error = match &r.outcome {
            Outcome::Success { duration, note } => {
                entry.status = Status::Ok;
                entry.last_success = Some(rfc3339(r.timestamp_ms));
                entry.duration_seconds = Some(duration.as_secs_f64());
                entry.consecutive_failures = 0;
                entry.note = note.clone();
                None
            }
            Outcome::Failed { duration, error } => {
                entry.duration_seconds = Some(duration.as_secs_f64());
                Some(error.clone())
            }
            Outcome::TimedOut { timeout } => Some(format!(
                "collection exceeded its deadline of {}",
                humantime::format_duration(*timeout)
            )),
            Outcome::StillRunning { running_for } => Some(format!(
                "skipped: the previous collection is still running after {:.1}s",
                running_for.as_secs_f64()
            )),
        };
        if let Some(e) = error {
            entry.status = Status::Failing;
            entry.last_error = Some(e);
            entry.last_error_at = Some(rfc3339(r.timestamp_ms));
            entry.consecutive_failures += 1;
        }
    }

    /// Drops a collector removed by a reload.
    pub fn forget_collector(&self, name: &str) {
        if let Ok(mut st) = self.state.write() {
            st.collectors.remove(name);
        }
    }

    /// Names of collectors that have reported at least once.
    pub fn reported(&self) -> Vec<String> {
        match self.state.read() {
            Ok(st) => st.collectors.keys().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Builds the report. `pipeline_age` is the time since the ingest task's last progress and
    /// `stall_after` the age at which it counts as stalled.
    pub fn report(&self, pipeline_age: Duration, stall_after: Duration) -> HealthReport {
        let collectors = match self.state.read() {
            Ok(st) => st.collectors.clone(),
            Err(_) => BTreeMap::new(),
        };
        let pipeline_status = if pipeline_age > stall_after {
            Status::Failing
        } else {
            Status::Ok
        };
        let failing = collectors
            .values()
            .filter(|c| c.status == Status::Failing)
            .count();
        let status = if pipeline_status == Status::Failing
            || (!collectors.is_empty() && failing == collectors.len())
        {
            Status::Failing
        } else if failing > 0 {
            Status::Degraded
        } else {
            Status::Ok
        };
        HealthReport {
            status,
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self
                .started
                .elapsed()
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            pipeline: PipelineHealth {
                status: pipeline_status,
                last_progress_seconds_ago: pipeline_age.as_secs_f64(),
            },
            collectors,
        }
    }

    /// One line for systemd's `STATUS=`.
    pub fn summary(&self) -> String {
        let Ok(st) = self.state.read() else {
            return String::new();
        };
        let total = st.collectors.len();
        let failing: Vec<&str> = st
            .collectors
            .iter()
            .filter(|(_, c)| c.status == Status::Failing)
            .map(|(n, _)| n.as_str())
            .collect();
        if failing.is_empty() {
            format!("{total} collectors ok")
        } else {
            format!(
                "{} of {total} collectors ok; failing: {}",
                total - failing.len(),
                failing.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, outcome: Outcome) -> Report {
        Report {
            collector: name.into(),
            timestamp_ms: 1_700_000_000_000,
            families: vec![],
            outcome,
        }
    }

    #[test]
    fn degraded_then_failing_then_ok() {
        let h = Health::default();
        let ok = Outcome::Success {
            duration: Duration::from_millis(3),
            note: None,
        };
        let bad = Outcome::Failed {
            duration: Duration::ZERO,
            error: "nope".into(),
        };
        h.record(&report("a", ok.clone()));
        h.record(&report("b", bad.clone()));
        let r = h.report(Duration::ZERO, Duration::from_secs(10));
        assert_eq!(r.status, Status::Degraded);
        assert_eq!(r.collectors["b"].last_error.as_deref(), Some("nope"));
        h.record(&report(
            "a",
            Outcome::TimedOut {
                timeout: Duration::from_secs(1),
            },
        ));
        assert_eq!(
            h.report(Duration::ZERO, Duration::from_secs(10)).status,
            Status::Failing
        );
        h.record(&report("a", ok.clone()));
        h.record(&report("b", ok));
        let r = h.report(Duration::ZERO, Duration::from_secs(10));
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.collectors["b"].consecutive_failures, 0);
        assert_eq!(h.summary(), "2 collectors ok");
    }

    #[test]
    fn stalled_pipeline_is_failing() {
        let h = Health::default();
        let r = h.report(Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(r.status, Status::Failing);
        assert_eq!(r.pipeline.status, Status::Failing);
    }
}
