//! The ingest side of the data flow: collectors' reports arrive over one bounded channel, and
//! the ingest task updates the latest-value cache (served by `/metrics`), collector health and
//! self-metrics, then hands each batch to the storage seam ([`Sink`]).
//!
//! Architecture Invariant: only the ingest task writes the cache; readers take a cheap
//! snapshot of pre-rendered text, so a scrape never waits on a collector.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::collector::scheduler::{Outcome, Report};
use crate::health::Health;
use crate::model::{render_family, Batch};
use crate::selfmetrics::SelfMetrics;

/// Capacity of the channel from collectors to ingest. Bounded, so a stalled ingest pushes back
/// on collectors (and stops the watchdog) instead of growing memory.
pub const CHANNEL_CAPACITY: usize = 256;

/// What flows to the ingest task.
#[derive(Debug)]
pub enum Message {
    /// The results of one round of a group of collectors (see
    /// [`crate::collector::scheduler`]).
    Reports(Vec<Report>),
    /// Proof of life from the heartbeat task; it keeps the watchdog fed when every
    /// collector has a long interval.
    Heartbeat,
    /// A collector was removed by a reload: drop its cached values and health entry.
    Forget(String),
}

/// Where batches go after the cache: the storage seam. The storage issue plugs its writer in
/// here; until then the daemon runs with [`NullSink`].
pub trait Sink: Send + 'static {
    /// Accepts the batches of one round of collections. Must not block for long: hand off to
    /// a writer thread, in one hand-off per call. The batches are moved in so that a writer on
    /// another thread can take their strings without copying them.
    fn accept(&mut self, batches: Vec<Batch>);
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn accept(&mut self, _batches: Vec<Batch>) {}
}

/// Latest values of every collector, pre-rendered in the text exposition format.
#[derive(Debug, Default)]
pub struct Cache {
    rendered: RwLock<BTreeMap<String, Arc<str>>>,
}

impl Cache {
    /// Replaces a collector's rendered text.
    fn set(&self, collector: &str, text: Arc<str>) {
        if let Ok(mut m) = self.rendered.write() {
            m.insert(collector.to_owned(), text);
        }
    }

    fn remove(&self, collector: &str) {
        if let Ok(mut m) = self.rendered.write() {
            m.remove(collector);
        }
    }

    /// A snapshot of every collector's text, in collector-name order.
    pub fn snapshot(&self) -> Vec<Arc<str>> {
        match self.rendered.read() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Monotonic time of the ingest task's last progress, for the watchdog.
#[derive(Debug)]
pub struct Progress {
    origin: Instant,
    last_ms: AtomicI64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            origin: Instant::now(),
            last_ms: AtomicI64::new(0),
        }
    }
}

impl Progress {
    /// Records progress now.
    pub fn touch(&self) {
        self.last_ms
            .store(self.origin.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    /// Time since the last recorded progress.
    pub fn age(&self) -> std::time::Duration {
        let now = self.origin.elapsed().as_millis() as i64;
        let last = self.last_ms.load(Ordering::Relaxed);
        std::time::Duration::from_millis((now - last).max(0) as u64)
    }
}

/// Shared handles the ingest task updates.
#[derive(Clone, Default)]
pub struct Shared {
    /// Latest values.
    pub cache: Arc<Cache>,
    /// Component status.
    pub health: Arc<Health>,
    /// Daemon self-metrics.
    pub metrics: Arc<SelfMetrics>,
    /// Liveness for the watchdog.
    pub progress: Arc<Progress>,
}

/// Runs until every sender is dropped.
pub async fn ingest(mut rx: mpsc::Receiver<Message>, shared: Shared, mut sink: Box<dyn Sink>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            Message::Heartbeat => {}
            Message::Forget(name) => {
                shared.cache.remove(&name);
                shared.health.forget_collector(&name);
                shared.metrics.forget_collector(&name);
            }
            Message::Reports(reports) => handle_reports(&shared, sink.as_mut(), reports),
        }
        shared.progress.touch();
    }
}

/// Applies one round's reports (see [`apply_report`]), then hands all their batches to the
/// sink at once. Public for benchmarks.
pub fn handle_reports(shared: &Shared, sink: &mut dyn Sink, reports: Vec<Report>) {
    let mut batches = Vec::with_capacity(2 * reports.len());
    for report in reports {
        apply_report(shared, &mut batches, report);
    }
    sink.accept(batches);
}

/// Applies one report: health, self-metrics, cache; adds its batches for the sink to
/// `batches`.
fn apply_report(shared: &Shared, batches: &mut Vec<Batch>, report: Report) {
    shared.health.record(&report);
    shared
        .metrics
        .record_collection(&report.collector, &report.outcome);
    // The store also gets the collector's success, so alert rules can say "collector
    // failing" (the self-metrics registry is only rendered on /metrics). A source of its own
    // keeps it from being marked stale when the collector's data is.
    let success = matches!(report.outcome, Outcome::Success { .. });
    batches.push(Batch {
        collector: format!("{}#health", report.collector),
        timestamp_ms: report.timestamp_ms,
        families: vec![crate::model::Family {
            name: "automon_collector_success".into(),
            help: String::new(),
            kind: crate::model::MetricKind::Gauge,
            samples: vec![crate::model::Sample {
                name: "automon_collector_success".into(),
                labels: vec![("collector".into(), report.collector.clone())],
                value: if success { 1.0 } else { 0.0 },
                timestamp_ms: None,
            }],
        }],
    });
    match &report.outcome {
        Outcome::Success { .. } => {
            let mut text = String::with_capacity(4096);
            for f in &report.families {
                render_family(&mut text, f);
            }
            shared.cache.set(&report.collector, Arc::from(text));
            let samples: usize = report.families.iter().map(|f| f.samples.len()).sum();
            shared.metrics.samples_collected.inc_by(samples as u64);
            batches.push(Batch {
                collector: report.collector,
                timestamp_ms: report.timestamp_ms,
                families: report.families,
            });
        }
        // Values from a failed or late collection are not served as if fresh: node_exporter
        // also omits a failed collector's metrics and reports success 0.
        Outcome::Failed { .. } | Outcome::TimedOut { .. } | Outcome::StillRunning { .. } => {
            shared.cache.remove(&report.collector);
        }
    }
}
