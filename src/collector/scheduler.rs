//! Runs one collector on its own interval with its own deadline.
//!
//! Each collection runs on a blocking thread. If it misses its deadline the scheduler reports a
//! timeout and keeps the join handle: the collector is "in flight" and later ticks are reported
//! as skipped until it returns, so a hung collector costs at most one thread and never delays
//! any other collector. A collector that panics is rebuilt from its factory.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Collection, Collector, CollectorError, CollectorSpec};
use crate::model::Family;

/// How one scheduled collection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Collected; `note` is informational (e.g. a missing kernel feature).
    Success {
        /// How long it took.
        duration: Duration,
        /// Informational note.
        note: Option<String>,
    },
    /// The collector returned an error.
    Failed {
        /// How long it took.
        duration: Duration,
        /// The error, for operators.
        error: String,
    },
    /// The collection did not finish within the deadline.
    TimedOut {
        /// The deadline that was exceeded.
        timeout: Duration,
    },
    /// The tick was skipped because an earlier collection is still running past its deadline.
    StillRunning {
        /// How long the earlier collection has been running.
        running_for: Duration,
    },
}

impl Outcome {
    /// Whether the collection produced fresh values.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }
}

/// One report from a collector's scheduler to the ingest task.
#[derive(Debug, Clone)]
pub struct Report {
    /// Collector name.
    pub collector: String,
    /// The tick this collection belongs to, in ms since the epoch.
    pub timestamp_ms: i64,
    /// The families collected (empty unless the outcome is a success).
    pub families: Vec<Family>,
    /// How the collection ended.
    pub outcome: Outcome,
}

type Job = JoinHandle<(
    Box<dyn Collector>,
    Result<Collection, CollectorError>,
    Duration,
)>;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Time until the next multiple of `interval` on the wall clock, so that samples of every
/// collector with the same interval share timestamps (cheaper to store, nicer to query).
fn until_next_boundary(interval: Duration) -> Duration {
    let iv = interval.as_millis().max(1) as i64;
    let now = now_ms();
    let next = (now / iv + 1) * iv;
    Duration::from_millis((next - now) as u64)
}

/// Runs `spec` until `cancel` fires, sending one [`Report`] per tick to `tx`. The first
/// collection happens immediately (readiness waits for it); later ones are aligned to the
/// interval.
pub async fn run(
    spec: CollectorSpec,
    tx: mpsc::Sender<super::super::pipeline::Message>,
    cancel: CancellationToken,
) {
    use super::super::pipeline::Message;

    let mut idle: Option<Box<dyn Collector>> = None;
    let mut in_flight: Option<(Job, Instant)> = None;
    let mut first = true;
    loop {
        let tick_ms = if first {
            now_ms()
        } else {
            let wait = until_next_boundary(spec.interval);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let iv = spec.interval.as_millis().max(1) as i64;
            // Snap to the boundary we slept to, whatever the timer's jitter.
            (now_ms() + iv / 2) / iv * iv
        };
        first = false;

        // Reclaim a collector whose overdue run has finished meanwhile.
        if let Some((job, started)) = in_flight.take() {
            if job.is_finished() {
                match job.await {
                    Ok((c, _, _)) => idle = Some(c),
                    Err(e) => tracing::error!(collector = %spec.name, "collector task failed: {e}"),
                }
            } else {
                let report = Report {
                    collector: spec.name.clone(),
                    timestamp_ms: tick_ms,
                    families: Vec::new(),
                    outcome: Outcome::StillRunning {
                        running_for: started.elapsed(),
                    },
                };
                in_flight = Some((job, started));
                if send(&tx, &cancel, Message::Report(report)).await.is_err() {
                    return;
                }
                continue;
            }
        }

        let collector = match idle.take() {
            Some(c) => c,
            None => match (spec.factory)() {
                Ok(c) => c,
                Err(e) => {
                    let report = Report {
                        collector: spec.name.clone(),
                        timestamp_ms: tick_ms,
                        families: Vec::new(),
                        outcome: Outcome::Failed {
                            duration: Duration::ZERO,
                            error: format!("cannot start collector: {e}"),
                        },
                    };
                    if send(&tx, &cancel, Message::Report(report)).await.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };

        let started = Instant::now();
        let mut job: Job = tokio::task::spawn_blocking(move || {
            let mut collector = collector;
            let t = Instant::now();
            let result = collector.collect();
            (collector, result, t.elapsed())
        });

        let outcome_and_families = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(spec.timeout, &mut job) => r,
        };
        let (outcome, families) = match outcome_and_families {
            Err(_elapsed) => {
                in_flight = Some((job, started));
                (
                    Outcome::TimedOut {
                        timeout: spec.timeout,
                    },
                    Vec::new(),
                )
            }
            Ok(Err(join_error)) => {
                // The collector panicked; it is gone and is rebuilt on the next tick.
                (
                    Outcome::Failed {
                        duration: started.elapsed(),
                        error: format!("collector panicked: {join_error}"),
                    },
                    Vec::new(),
                )
            }
            Ok(Ok((c, result, duration))) => {
                idle = Some(c);
                match result {
                    Ok(collection) => (
                        Outcome::Success {
                            duration,
                            note: collection.note,
                        },
                        collection.families,
                    ),
                    Err(e) => (
                        Outcome::Failed {
                            duration,
                            error: e.to_string(),
                        },
                        Vec::new(),
                    ),
                }
            }
        };
        let report = Report {
            collector: spec.name.clone(),
            timestamp_ms: tick_ms,
            families,
            outcome,
        };
        if send(&tx, &cancel, Message::Report(report)).await.is_err() {
            return;
        }
    }
}

async fn send(
    tx: &mpsc::Sender<super::super::pipeline::Message>,
    cancel: &CancellationToken,
    msg: super::super::pipeline::Message,
) -> Result<(), ()> {
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        r = tx.send(msg) => r.map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Message;
    use std::sync::Arc;

    struct Sleepy(Duration);
    impl Collector for Sleepy {
        fn collect(&mut self) -> Result<Collection, CollectorError> {
            std::thread::sleep(self.0);
            Ok(Collection::default())
        }
    }

    struct Failing;
    impl Collector for Failing {
        fn collect(&mut self) -> Result<Collection, CollectorError> {
            Err(CollectorError::Other("boom".into()))
        }
    }

    fn spec(
        name: &str,
        interval_ms: u64,
        timeout_ms: u64,
        f: super::super::Factory,
    ) -> CollectorSpec {
        CollectorSpec {
            name: name.into(),
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            factory: f,
        }
    }

    async fn next_report(rx: &mut mpsc::Receiver<Message>) -> Report {
        loop {
            match rx.recv().await {
                Some(Message::Report(r)) => return r,
                Some(_) => continue,
                None => panic!("channel closed"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_collector_times_out_then_is_skipped_until_it_returns() {
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let s = spec(
            "sleepy",
            100,
            30,
            Arc::new(|| Ok(Box::new(Sleepy(Duration::from_millis(250))) as Box<dyn Collector>)),
        );
        let task = tokio::spawn(run(s, tx, cancel.clone()));
        let first = next_report(&mut rx).await;
        assert!(
            matches!(first.outcome, Outcome::TimedOut { .. }),
            "{first:?}"
        );
        let second = next_report(&mut rx).await;
        assert!(
            matches!(second.outcome, Outcome::StillRunning { .. }),
            "{second:?}"
        );
        // Eventually the old run returns and the collector runs (and times out) again,
        // rather than a second thread being started while the first still hangs.
        let mut saw_rerun = false;
        for _ in 0..10 {
            if matches!(next_report(&mut rx).await.outcome, Outcome::TimedOut { .. }) {
                saw_rerun = true;
                break;
            }
        }
        assert!(saw_rerun);
        cancel.cancel();
        let _ = task.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failure_is_reported_with_message() {
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let s = spec(
            "failing",
            1000,
            500,
            Arc::new(|| Ok(Box::new(Failing) as Box<dyn Collector>)),
        );
        let task = tokio::spawn(run(s, tx, cancel.clone()));
        let r = next_report(&mut rx).await;
        match r.outcome {
            Outcome::Failed { error, .. } => assert_eq!(error, "boom"),
            o => panic!("unexpected {o:?}"),
        }
        cancel.cancel();
        let _ = task.await;
    }
}
