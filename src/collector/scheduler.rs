//! Runs collectors on their intervals, each with its own deadline.
//!
//! Collectors that share an interval form a group, and each tick of a group is one *round*:
//! the group's collectors are queued (those that were quickest last time first) and a thread
//! of a small reusable pool ([`super::threads`]) takes them off the queue one after another.
//! One hand-off to a thread, one wake-up back and one report message per round, instead of
//! one of each per collector: at 1 s collection the daemon spent a fifth of its CPU time in
//! context switches when every collector had its own task and thread hand-off (see
//! `docs/benchmarks.md`).
//!
//! A collector that hangs or is slow holds the rest of its round back for at most
//! [`STALL_AFTER`]: then another thread takes over the queue, so every other collector still
//! runs at its tick. A collection past its own deadline is reported as timed out; the
//! collector stays "in flight" and later ticks report it as still running until it returns,
//! so a hung collector costs one thread and is never run twice at once. A collector that
//! panics is rebuilt from its factory at the next tick.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Notify};
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

/// How long one collection may hold up the rest of its round before another thread takes
/// over the queue. Host collectors take well under a millisecond each, so a normal round
/// never reaches it; a probe waiting on the network or a hung read does.
pub const STALL_AFTER: Duration = Duration::from_millis(50);

/// A collector waiting in this round's queue.
struct Queued {
    idx: usize,
    collector: Box<dyn Collector>,
}

/// A collection a pool thread is running.
struct Running {
    idx: usize,
    started: Instant,
    /// Its deadline passed and was reported; its result is dropped when it comes.
    timed_out: bool,
}

/// A collection that ended; `result` is `Err` with the message if the collector panicked.
struct Ended {
    idx: usize,
    result: Result<Result<Collection, CollectorError>, String>,
    duration: Duration,
}

/// What the group's task and the pool threads share, under one lock taken a few times per
/// collection.
struct RoundState {
    queue: VecDeque<Queued>,
    running: Vec<Running>,
    ended: Vec<Ended>,
    /// Collectors ready for the next tick, by index; `None` while one runs, or after a panic
    /// or a failed build (then the factory makes a new one).
    idle: Vec<Option<Box<dyn Collector>>>,
}

/// One group of collectors with the same interval.
struct Group {
    state: Mutex<RoundState>,
    /// Signalled by a pool thread when it finds the queue empty, i.e. when it may have ended
    /// the round.
    done: Notify,
}

impl Group {
    /// Locks the shared state; poisoning is harmless here (a panic inside `collect` is caught
    /// outside the lock).
    fn lock(&self) -> MutexGuard<'_, RoundState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pool thread's loop: runs queued collections until the queue is empty.
    fn work(&self) {
        loop {
            let next = {
                let mut s = self.lock();
                let next = s.queue.pop_front();
                if let Some(q) = &next {
                    s.running.push(Running {
                        idx: q.idx,
                        started: Instant::now(),
                        timed_out: false,
                    });
                }
                next
            };
            let Some(Queued { idx, mut collector }) = next else {
                self.done.notify_one();
                return;
            };
            let t = Instant::now();
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collector.collect()));
            let duration = t.elapsed();
            let mut s = self.lock();
            let timed_out = match s.running.iter().position(|r| r.idx == idx) {
                Some(i) => s.running.swap_remove(i).timed_out,
                None => false,
            };
            let result = match result {
                Ok(result) => {
                    s.idle[idx] = Some(collector);
                    Ok(result)
                }
                // The collector may be left half-updated by the panic: drop it, the factory
                // builds a fresh one next tick.
                Err(panic) => Err(panic_message(panic.as_ref())),
            };
            if !timed_out {
                s.ended.push(Ended {
                    idx,
                    result,
                    duration,
                });
            }
        }
    }
}

/// Threads that run collections. Their stacks need no more than tokio's blocking threads get.
static POOL: LazyLock<Arc<ThreadPool>> = LazyLock::new(|| {
    ThreadPool::new(
        "automon-collect",
        2 * 1024 * 1024,
        Duration::from_secs(10),
        16,
    )
});

/// Starts a pool thread on `group`'s queue.
fn start_worker(group: &Arc<Group>) -> std::io::Result<()> {
    let g = Arc::clone(group);
    POOL.run(Box::new(move || g.work()))
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

/// Milliseconds from `now_ms` until the next multiple of the interval `iv_ms` on the wall
/// clock, so that samples of every collector with the same interval share timestamps
/// (cheaper to store, nicer to query).
fn until_next_tick(now_ms: i64, iv_ms: i64) -> i64 {
    ((now_ms).div_euclid(iv_ms) + 1) * iv_ms - now_ms
}

/// The interval boundary a tick that fired at `now_ms` belongs to, whatever the timer's
/// jitter (up to half an interval late).
fn snap_to_tick(now_ms: i64, iv_ms: i64) -> i64 {
    (now_ms + iv_ms / 2).div_euclid(iv_ms) * iv_ms
}

/// A report without families.
fn report(spec: &CollectorSpec, timestamp_ms: i64, outcome: Outcome) -> Report {
    Report {
        collector: spec.name.clone(),
        timestamp_ms,
        families: Vec::new(),
        outcome,
    }
}

/// The report for a collection that ended.
fn ended_report(spec: &CollectorSpec, timestamp_ms: i64, e: Ended) -> Report {
    let (outcome, families) = match e.result {
        Ok(Ok(collection)) => (
            Outcome::Success {
                duration: e.duration,
                note: collection.note,
            },
            collection.families,
        ),
        Ok(Err(error)) => (
            Outcome::Failed {
                duration: e.duration,
                error: error.to_string(),
            },
            Vec::new(),
        ),
        Err(panic) => (
            Outcome::Failed {
                duration: e.duration,
                error: format!("collector {panic}"),
            },
            Vec::new(),
        ),
    };
    Report {
        collector: spec.name.clone(),
        timestamp_ms,
        families,
        outcome,
    }
}

/// Runs a group of collectors that share `specs[0].interval` until `cancel` fires, sending
/// each round's reports (one per collector) to `tx`. The first round starts at once
/// (readiness waits for it); later ones at the interval's wall-clock boundaries.
pub async fn run(
    specs: Vec<CollectorSpec>,
    tx: mpsc::Sender<super::super::pipeline::Message>,
    cancel: CancellationToken,
) {
    let Some(interval) = specs.first().map(|s| s.interval) else {
        return;
    };
    let iv_ms = interval.as_millis().max(1) as i64;
    let group = Arc::new(Group {
        state: Mutex::new(RoundState {
            queue: VecDeque::new(),
            running: Vec::new(),
            ended: Vec::new(),
            idle: specs.iter().map(|_| None).collect(),
        }),
        done: Notify::new(),
    });
    // How long each collector took last time: the quickest go first, so one that is slow
    // holds back as few others as possible.
    let mut last = vec![Duration::ZERO; specs.len()];
    let mut first = true;
    loop {
        let tick_ms = if first {
            now_ms()
        } else {
            let wait = until_next_tick(now_ms(), iv_ms);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
            snap_to_tick(now_ms(), iv_ms)
        };
        first = false;
        let reports = round(&group, &specs, &mut last, tick_ms, &cancel).await;
        if cancel.is_cancelled() {
            // Collections still queued are not started; a running one ends on its own.
            group.lock().queue.clear();
            return;
        }
        if !reports.is_empty() && send(&tx, &cancel, reports).await.is_err() {
            return;
        }
    }
}

/// One round: queues every collector that is not still running from an earlier round,
/// starts a thread on the queue and waits until each collection has ended or passed its
/// deadline. Reports of collections that ended are sent as soon as the round stalls, so a
/// slow collector does not hold back the others' fresh values either.
async fn round(
    group: &Arc<Group>,
    specs: &[CollectorSpec],
    last: &mut [Duration],
    tick_ms: i64,
    cancel: &CancellationToken,
) -> Vec<Report> {
    let mut reports = Vec::with_capacity(specs.len());
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| last[i]);
    // Take the idle collectors; build missing ones outside the lock (a factory may read
    // files).
    let mut to_queue = Vec::with_capacity(specs.len());
    {
        let mut s = group.lock();
        for &idx in &order {
            match s.running.iter().find(|r| r.idx == idx) {
                Some(r) => reports.push(report(
                    &specs[idx],
                    tick_ms,
                    Outcome::StillRunning {
                        running_for: r.started.elapsed(),
                    },
                )),
                None => to_queue.push((idx, s.idle[idx].take())),
            }
        }
    }
    let mut queue = VecDeque::with_capacity(to_queue.len());
    for (idx, collector) in to_queue {
        let collector = match collector {
            Some(c) => c,
            None => match (specs[idx].factory)() {
                Ok(c) => c,
                Err(e) => {
                    reports.push(report(
                        &specs[idx],
                        tick_ms,
                        Outcome::Failed {
                            duration: Duration::ZERO,
                            error: format!("cannot start collector: {e}"),
                        },
                    ));
                    continue;
                }
            },
        };
        queue.push_back(Queued { idx, collector });
    }
    if queue.is_empty() {
        return reports;
    }
    group.lock().queue = queue;
    if let Err(e) = start_worker(group) {
        let mut s = group.lock();
        for q in std::mem::take(&mut s.queue) {
            reports.push(report(
                &specs[q.idx],
                tick_ms,
                Outcome::Failed {
                    duration: Duration::ZERO,
                    error: format!("cannot start a collection thread: {e}"),
                },
            ));
            s.idle[q.idx] = Some(q.collector);
        }
        return reports;
    }

    loop {
        let now = Instant::now();
        let (in_progress, spawn, wake_at) = {
            let mut s = group.lock();
            for e in std::mem::take(&mut s.ended) {
                last[e.idx] = e.duration;
                let idx = e.idx;
                reports.push(ended_report(&specs[idx], tick_ms, e));
            }
            // Checked only while the round waits: a polling period below every deadline
            // keeps a timeout from being reported much later than it happened.
            let mut wake_at = now + STALL_AFTER;
            for r in s.running.iter_mut() {
                let timeout = specs[r.idx].timeout;
                if !r.timed_out && now >= r.started + timeout {
                    r.timed_out = true;
                    reports.push(report(
                        &specs[r.idx],
                        tick_ms,
                        Outcome::TimedOut { timeout },
                    ));
                }
                if now < r.started + STALL_AFTER {
                    wake_at = wake_at.min(r.started + STALL_AFTER);
                }
                if !r.timed_out {
                    wake_at = wake_at.min(r.started + timeout);
                }
            }
            // Every running collection has stalled: nobody would take the queue soon.
            let spawn = !s.queue.is_empty()
                && !s.running.is_empty()
                && s.running.iter().all(|r| now >= r.started + STALL_AFTER);
            let in_progress = !s.queue.is_empty() || s.running.iter().any(|r| !r.timed_out);
            (in_progress, spawn, wake_at)
        };
        if spawn {
            if let Err(e) = start_worker(group) {
                // The queue is still served by the stalled thread once it returns.
                tracing::warn!("cannot start another collection thread: {e}");
            }
        }
        if !in_progress || cancel.is_cancelled() {
            return reports;
        }
        tokio::select! {
            _ = cancel.cancelled() => return reports,
            _ = group.done.notified() => {}
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
}

async fn send(
    tx: &mpsc::Sender<super::super::pipeline::Message>,
    cancel: &CancellationToken,
    reports: Vec<Report>,
) -> Result<(), ()> {
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        r = tx.send(super::super::pipeline::Message::Reports(reports)) => r.map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Message;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ticks_come_at_the_boundary_and_snap_to_it() {
        assert_eq!(until_next_tick(10_000, 1000), 1000);
        assert_eq!(until_next_tick(10_250, 1000), 750);
        assert_eq!(until_next_tick(10_999, 1000), 1);
        // Fired on time, a little early or late by up to half an interval: the same boundary.
        assert_eq!(snap_to_tick(11_000, 1000), 11_000);
        assert_eq!(snap_to_tick(11_003, 1000), 11_000);
        assert_eq!(snap_to_tick(10_998, 1000), 11_000);
        assert_eq!(snap_to_tick(11_499, 1000), 11_000);
        assert_eq!(snap_to_tick(11_500, 1000), 12_000);
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

    /// Records the thread each collection ran on.
    struct ThreadSpy(Arc<Mutex<Vec<std::thread::ThreadId>>>);
    impl Collector for ThreadSpy {
        fn collect(&mut self) -> Result<Collection, CollectorError> {
            if let Ok(mut v) = self.0.lock() {
                v.push(std::thread::current().id());
            }
            Ok(Collection::default())
        }
    }

    struct Panicking;
    impl Collector for Panicking {
        fn collect(&mut self) -> Result<Collection, CollectorError> {
            panic!("on purpose")
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

    /// The next message's reports, one by one, across messages.
    struct Reports {
        rx: mpsc::Receiver<Message>,
        pending: VecDeque<Report>,
    }

    impl Reports {
        fn new(rx: mpsc::Receiver<Message>) -> Self {
            Reports {
                rx,
                pending: VecDeque::new(),
            }
        }

        async fn next(&mut self) -> Report {
            loop {
                if let Some(r) = self.pending.pop_front() {
                    return r;
                }
                match self.rx.recv().await {
                    Some(Message::Reports(r)) => self.pending.extend(r),
                    Some(_) => continue,
                    None => panic!("channel closed"),
                }
            }
        }

        /// The next whole message.
        async fn next_message(&mut self) -> Vec<Report> {
            assert!(self.pending.is_empty());
            loop {
                match self.rx.recv().await {
                    Some(Message::Reports(r)) => return r,
                    Some(_) => continue,
                    None => panic!("channel closed"),
                }
            }
        }
    }

    fn start(
        specs: Vec<CollectorSpec>,
    ) -> (Reports, CancellationToken, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(specs, tx, cancel.clone()));
        (Reports::new(rx), cancel, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_collector_times_out_then_is_skipped_until_it_returns() {
        let (mut rx, cancel, task) = start(vec![spec(
            "sleepy",
            100,
            30,
            Arc::new(|| Ok(Box::new(Sleepy(Duration::from_millis(250))) as Box<dyn Collector>)),
        )]);
        let first = rx.next().await;
        assert!(
            matches!(first.outcome, Outcome::TimedOut { .. }),
            "{first:?}"
        );
        let second = rx.next().await;
        assert!(
            matches!(second.outcome, Outcome::StillRunning { .. }),
            "{second:?}"
        );
        // Eventually the old run returns and the collector runs (and times out) again,
        // rather than a second thread being started while the first still hangs.
        let mut saw_rerun = false;
        for _ in 0..10 {
            if matches!(rx.next().await.outcome, Outcome::TimedOut { .. }) {
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
        let (mut rx, cancel, task) = start(vec![spec(
            "failing",
            1000,
            500,
            Arc::new(|| Ok(Box::new(Failing) as Box<dyn Collector>)),
        )]);
        match rx.next().await.outcome {
            Outcome::Failed { error, .. } => assert_eq!(error, "boom"),
            o => panic!("unexpected {o:?}"),
        }
        cancel.cancel();
        let _ = task.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_runs_on_one_thread_and_arrives_as_one_message() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let specs = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let seen = seen.clone();
                spec(
                    name,
                    200,
                    150,
                    Arc::new(move || Ok(Box::new(ThreadSpy(seen.clone())) as Box<dyn Collector>)),
                )
            })
            .collect();
        let (mut rx, cancel, task) = start(specs);
        for _ in 0..2 {
            let round = rx.next_message().await;
            let mut names: Vec<&str> = round.iter().map(|r| r.collector.as_str()).collect();
            names.sort_unstable();
            assert_eq!(names, ["a", "b", "c"]);
            assert!(round.iter().all(|r| r.outcome.is_success()), "{round:?}");
            assert!(round
                .windows(2)
                .all(|w| w[0].timestamp_ms == w[1].timestamp_ms));
        }
        cancel.cancel();
        let _ = task.await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        // Each round's three collections on one thread.
        assert!(seen[..3].iter().all(|t| *t == seen[0]), "{seen:?}");
        assert!(seen[3..].iter().all(|t| *t == seen[3]), "{seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_collector_does_not_hold_back_the_rest_of_its_round() {
        // "hung" is first in the queue (no durations known yet: spec order), and its deadline
        // is far beyond the stall threshold: "fast" must be taken over by another thread and
        // reported long before "hung" times out.
        let (mut rx, cancel, task) = start(vec![
            spec(
                "hung",
                60_000,
                2_000,
                Arc::new(|| Ok(Box::new(Sleepy(Duration::from_secs(4))) as Box<dyn Collector>)),
            ),
            spec(
                "fast",
                60_000,
                2_000,
                Arc::new(|| Ok(Box::new(Failing) as Box<dyn Collector>)),
            ),
        ]);
        let first = rx.next().await;
        assert_eq!(first.collector, "fast");
        assert!(matches!(first.outcome, Outcome::Failed { .. }), "{first:?}");
        let second = rx.next().await;
        assert_eq!(second.collector, "hung");
        assert!(
            matches!(second.outcome, Outcome::TimedOut { .. }),
            "{second:?}"
        );
        cancel.cancel();
        let _ = task.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_collector_is_reported_and_rebuilt() {
        let built = Arc::new(AtomicUsize::new(0));
        let b = built.clone();
        let (mut rx, cancel, task) = start(vec![spec(
            "panicky",
            1000,
            900,
            Arc::new(move || {
                b.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Panicking) as Box<dyn Collector>)
            }),
        )]);
        for _ in 0..2 {
            match rx.next().await.outcome {
                Outcome::Failed { error, .. } => {
                    assert_eq!(error, "collector panicked: on purpose")
                }
                o => panic!("unexpected {o:?}"),
            }
        }
        cancel.cancel();
        let _ = task.await;
        assert!(built.load(Ordering::SeqCst) >= 2);
    }
}
