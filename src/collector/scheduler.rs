//! Runs one collector on its own interval with its own deadline.
//!
//! Each collection runs on a thread of a small reusable pool ([`super::threads`]). If it misses
//! its deadline the scheduler reports a timeout and keeps the job: the collector is "in flight"
//! and later ticks are reported as skipped until it returns, so a hung collector costs at most
//! one thread and never delays any other collector. A collector that panics is rebuilt from
//! its factory.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::threads::ThreadPool;
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

/// What a finished collection hands back: the collector (for the next tick), its result and
/// how long it took.
type Done = (
    Box<dyn Collector>,
    Result<Collection, CollectorError>,
    Duration,
);

/// A collection running on a pool thread; `Err` if the collector panicked.
type Job = oneshot::Receiver<Result<Done, String>>;

/// Threads that run collections. Their stacks need no more than tokio's blocking threads get.
static POOL: LazyLock<Arc<ThreadPool>> = LazyLock::new(|| {
    ThreadPool::new(
        "automon-collect",
        2 * 1024 * 1024,
        Duration::from_secs(10),
        16,
    )
});

/// Starts `collector` on a pool thread.
fn start(collector: Box<dyn Collector>) -> Result<Job, String> {
    let (tx, rx) = oneshot::channel();
    POOL.run(Box::new(move || {
        let mut collector = collector;
        let t = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collector.collect()));
        let done = match result {
            Ok(result) => Ok((collector, result, t.elapsed())),
            Err(panic) => Err(panic_message(panic.as_ref())),
        };
        // The scheduler may have stopped waiting (shutdown); nothing to do then.
        let _ = tx.send(done);
    }))
    .map_err(|e| format!("cannot start a collection thread: {e}"))?;
    Ok(rx)
}

/// The message of a panic payload, as tokio's `JoinError` would show it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => format!("panicked: {s}"),
        (_, Some(s)) => format!("panicked: {s}"),
        _ => "panicked".to_owned(),
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Longest offset of a collector's ticks after the interval boundary.
const MAX_SPREAD: Duration = Duration::from_millis(100);

/// Where in each interval a collector runs: a fixed offset after the wall-clock boundary,
/// derived from its name, below a twentieth of the interval and below [`MAX_SPREAD`].
///
/// Why: with every collector due at the same instant, each tick started ~20 collections at
/// once, so the pool needed a thread per collector and they all allocated at the same moment
/// (malloc arena lock contention, a glibc thread cache per thread). Spread over a few tens of
/// milliseconds the same work runs on a few reused threads. Timestamps still snap
/// to the boundary (see [`snap_to_tick`]), so samples of collectors with the same interval
/// keep sharing timestamps.
///
/// Only [`SLOTS`] distinct offsets: every distinct wake-up time costs the runtime a timer
/// wake and context switches, which measured more CPU than the spread saved when each
/// collector had an offset of its own.
fn tick_offset_ms(name: &str, interval: Duration) -> i64 {
    let spread = (interval / 20).min(MAX_SPREAD).as_millis() as u64;
    // FNV-1a: stable across runs and Rust versions, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ((hash % SLOTS) * spread / SLOTS) as i64
}

/// Distinct tick offsets within an interval.
const SLOTS: u64 = 4;

/// Milliseconds from `now_ms` until the next tick: the next multiple of the interval `iv_ms`
/// on the wall clock plus `offset_ms`, so that samples of every collector with the same
/// interval share timestamps (cheaper to store, nicer to query).
fn until_next_tick(now_ms: i64, iv_ms: i64, offset_ms: i64) -> i64 {
    let next = ((now_ms - offset_ms).div_euclid(iv_ms) + 1) * iv_ms + offset_ms;
    next - now_ms
}

/// The interval boundary a tick that fired at `now_ms` belongs to, whatever the offset and
/// the timer's jitter (up to half an interval late).
fn snap_to_tick(now_ms: i64, iv_ms: i64, offset_ms: i64) -> i64 {
    (now_ms - offset_ms + iv_ms / 2).div_euclid(iv_ms) * iv_ms
}

/// Runs `spec` until `cancel` fires, sending one [`Report`] per tick to `tx`. The first
/// collection happens after the collector's offset (readiness waits for it); later ones are
/// aligned to the interval, at the same offset within it.
pub async fn run(
    spec: CollectorSpec,
    tx: mpsc::Sender<super::super::pipeline::Message>,
    cancel: CancellationToken,
) {
    use super::super::pipeline::Message;

    let mut idle: Option<Box<dyn Collector>> = None;
    let mut in_flight: Option<(Job, Instant)> = None;
    let mut first = true;
    let iv_ms = spec.interval.as_millis().max(1) as i64;
    let offset_ms = tick_offset_ms(&spec.name, spec.interval);
    loop {
        let tick_ms = if first {
            // The first round is spread too, so start-up does not need a thread per
            // collector either.
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(offset_ms as u64)) => {}
            }
            now_ms()
        } else {
            let wait = until_next_tick(now_ms(), iv_ms, offset_ms);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
            snap_to_tick(now_ms(), iv_ms, offset_ms)
        };
        first = false;

        // Reclaim a collector whose overdue run has finished meanwhile.
        if let Some((mut job, started)) = in_flight.take() {
            let finished = job.try_recv();
            if !matches!(finished, Err(oneshot::error::TryRecvError::Empty)) {
                match finished {
                    Ok(Ok((c, _, _))) => idle = Some(c),
                    Ok(Err(e)) => tracing::error!(collector = %spec.name, "collector {e}"),
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
        let mut job: Job = match start(collector) {
            Ok(job) => job,
            Err(error) => {
                let report = Report {
                    collector: spec.name.clone(),
                    timestamp_ms: tick_ms,
                    families: Vec::new(),
                    outcome: Outcome::Failed {
                        duration: Duration::ZERO,
                        error,
                    },
                };
                if send(&tx, &cancel, Message::Report(report)).await.is_err() {
                    return;
                }
                continue;
            }
        };

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
            Ok(Ok(Err(panic))) => {
                // The collector panicked; it is gone and is rebuilt on the next tick.
                (
                    Outcome::Failed {
                        duration: started.elapsed(),
                        error: format!("collector {panic}"),
                    },
                    Vec::new(),
                )
            }
            Ok(Err(_closed)) => (
                // Cannot happen (the thread catches panics and always answers), but if the
                // answer is lost the collector is rebuilt like after a panic.
                Outcome::Failed {
                    duration: started.elapsed(),
                    error: "collection ended without an answer".to_owned(),
                },
                Vec::new(),
            ),
            Ok(Ok(Ok((c, result, duration)))) => {
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
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn ticks_come_at_the_offset_and_snap_to_the_boundary() {
        // 1 s interval, 37 ms offset.
        assert_eq!(until_next_tick(10_000, 1000, 37), 37);
        assert_eq!(until_next_tick(10_036, 1000, 37), 1);
        assert_eq!(until_next_tick(10_037, 1000, 37), 1000);
        assert_eq!(until_next_tick(10_500, 1000, 37), 537);
        // Fired on time, early-ish or late by up to half an interval: the same boundary.
        assert_eq!(snap_to_tick(11_037, 1000, 37), 11_000);
        assert_eq!(snap_to_tick(11_040, 1000, 37), 11_000);
        assert_eq!(snap_to_tick(11_536, 1000, 37), 11_000);
        assert_eq!(snap_to_tick(11_538, 1000, 37), 12_000);
        // Without an offset it is the plain boundary.
        assert_eq!(until_next_tick(10_250, 1000, 0), 750);
        assert_eq!(snap_to_tick(11_003, 1000, 0), 11_000);
    }

    #[test]
    fn offsets_are_stable_bounded_and_spread() {
        let names = ["cpu", "memory", "netdev", "diskstats", "filesystem", "load"];
        let offsets: Vec<i64> = names
            .iter()
            .map(|n| tick_offset_ms(n, Duration::from_secs(1)))
            .collect();
        assert!(
            offsets.iter().all(|o| [0, 12, 25, 37].contains(o)),
            "{offsets:?}"
        );
        let distinct: HashSet<i64> = offsets.iter().copied().collect();
        assert!(distinct.len() > 1, "{offsets:?}");
        assert_eq!(offsets[0], tick_offset_ms("cpu", Duration::from_secs(1)));
        // Capped for long intervals, none for very short ones.
        assert!(tick_offset_ms("cpu", Duration::from_secs(3600)) < 100);
        assert_eq!(tick_offset_ms("cpu", Duration::from_millis(10)), 0);
    }

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
