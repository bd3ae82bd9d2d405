//! The daemon's own metrics (`automon_*`, plus the standard `process_*` set), kept in a
//! `prometheus` registry and appended to `/metrics`.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use crate::collector::scheduler::Outcome;
use crate::store::StoreStats;

/// All self-metrics. Cloning handles is cheap; they are shared by reference.
pub struct SelfMetrics {
    registry: Registry,
    /// `automon_collector_success{collector}`: 1 if the last collection succeeded.
    pub collector_success: GaugeVec,
    /// `automon_collector_duration_seconds{collector}`: duration of the last collection.
    pub collector_duration: GaugeVec,
    /// `automon_collector_runs_total{collector,result}`.
    pub collector_runs: IntCounterVec,
    /// `automon_samples_collected_total`.
    pub samples_collected: IntCounter,
    /// `automon_config_last_reload_successful`.
    pub reload_successful: Gauge,
    /// `automon_config_last_reload_success_timestamp_seconds`.
    pub reload_success_timestamp: Gauge,
    /// `automon_http_requests_total{handler,code}`.
    pub http_requests: IntCounterVec,
    /// `automon_query_duration_seconds{endpoint}`: time to answer API queries, successful
    /// or not.
    pub query_duration: HistogramVec,
    /// Rule evaluation, alert and notification metrics.
    pub alerts: crate::alert::metrics::AlertMetrics,
    /// Repair attempt and state metrics.
    pub repairs: crate::repair::metrics::RepairMetrics,
    store: StoreMetrics,
}

/// A counter and the statistic it mirrors.
type CounterField = (IntCounter, fn(&StoreStats) -> u64);
/// A gauge and the statistic it mirrors.
type GaugeField = (Gauge, fn(&StoreStats) -> f64);

/// Storage metrics, copied from [`StoreStats`] snapshots.
struct StoreMetrics {
    counters: Vec<CounterField>,
    gauges: Vec<GaugeField>,
    tier_bytes: GaugeVec,
    last: std::sync::Mutex<StoreStats>,
}

impl StoreMetrics {
    fn new(reg: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)
                .unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
            let _ = reg.register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
            let _ = reg.register(Box::new(g.clone()));
            g
        };
        StoreMetrics {
            counters: vec![
                (
                    counter(
                        "automon_store_samples_ingested_total",
                        "Samples accepted by the store.",
                    ),
                    |s| s.samples_ingested,
                ),
                (
                    counter(
                        "automon_store_samples_dropped_total",
                        "Samples dropped because the storage writer was behind.",
                    ),
                    |s| s.samples_dropped,
                ),
                (
                    counter(
                        "automon_store_samples_out_of_order_total",
                        "Samples refused as older than their series' latest sample.",
                    ),
                    |s| s.samples_out_of_order,
                ),
                (
                    counter(
                        "automon_store_head_flushes_total",
                        "Head-log flushes to disk.",
                    ),
                    |s| s.head_flushes,
                ),
                (
                    counter("automon_store_chunks_written_total", "Chunk rows written."),
                    |s| s.chunks_written,
                ),
                (
                    counter(
                        "automon_store_retention_runs_total",
                        "Completed retention runs.",
                    ),
                    |s| s.retention_runs,
                ),
            ],
            gauges: vec![
                (
                    gauge(
                        "automon_store_head_flush_duration_seconds",
                        "Duration of the last head-log flush.",
                    ),
                    |s| s.last_flush_seconds,
                ),
                (
                    gauge(
                        "automon_store_file_bytes",
                        "Size of the database file and its WAL.",
                    ),
                    |s| s.file_bytes as f64,
                ),
                (
                    gauge("automon_store_series", "Series known to the store."),
                    |s| s.series as f64,
                ),
                (
                    gauge(
                        "automon_store_head_samples",
                        "Samples held in the in-memory head.",
                    ),
                    |s| s.head_samples as f64,
                ),
                (
                    gauge(
                        "automon_store_head_memory_bytes",
                        "Approximate memory used by the head.",
                    ),
                    |s| s.head_bytes as f64,
                ),
            ],
            tier_bytes: gauge_vec(
                reg,
                "automon_store_bytes",
                "Compressed bytes stored per tier (as of the last retention run).",
                &["tier"],
            ),
            last: std::sync::Mutex::new(StoreStats::default()),
        }
    }
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelfMetrics")
    }
}

/// Creating a metric with a valid constant name cannot fail; a failure here is a programming
/// error caught by the unit tests, so it is fine to fall back to an unregistered dummy.
pub(crate) fn gauge_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    let _ = reg.register(Box::new(g.clone()));
    g
}

pub(crate) fn counter_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    let _ = reg.register(Box::new(c.clone()));
    c
}

pub(crate) fn histogram_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> HistogramVec {
    // From 1 ms (one series, warm) to 2 minutes (the default query timeout).
    let buckets = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        120.0,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    let _ = reg.register(Box::new(h.clone()));
    h
}

impl SelfMetrics {
    /// Registers every self-metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let build = gauge_vec(
            &registry,
            "automon_build_info",
            "A metric with a constant '1' value labeled by version.",
            &["version"],
        );
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        let samples_collected = IntCounter::new(
            "automon_samples_collected_total",
            "Samples produced by successful collections.",
        )
        .unwrap_or_else(|e| panic!("invalid metric: {e}"));
        let _ = registry.register(Box::new(samples_collected.clone()));
        let reload_successful = Gauge::new(
            "automon_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .unwrap_or_else(|e| panic!("invalid metric: {e}"));
        let _ = registry.register(Box::new(reload_successful.clone()));
        let reload_success_timestamp = Gauge::new(
            "automon_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )
        .unwrap_or_else(|e| panic!("invalid metric: {e}"));
        let _ = registry.register(Box::new(reload_success_timestamp.clone()));
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = registry.register(Box::new(pc));
        }
        SelfMetrics {
            collector_success: gauge_vec(
                &registry,
                "automon_collector_success",
                "Whether the collector's last run succeeded.",
                &["collector"],
            ),
            collector_duration: gauge_vec(
                &registry,
                "automon_collector_duration_seconds",
                "Duration of the collector's last completed run.",
                &["collector"],
            ),
            collector_runs: counter_vec(
                &registry,
                "automon_collector_runs_total",
                "Collector runs by result (success, error, timeout, skipped).",
                &["collector", "result"],
            ),
            samples_collected,
            reload_successful,
            reload_success_timestamp,
            store: StoreMetrics::new(&registry),
            alerts: crate::alert::metrics::AlertMetrics::new(&registry),
            repairs: crate::repair::metrics::RepairMetrics::new(&registry),
            http_requests: counter_vec(
                &registry,
                "automon_http_requests_total",
                "HTTP requests by handler and status code.",
                &["handler", "code"],
            ),
            query_duration: histogram_vec(
                &registry,
                "automon_query_duration_seconds",
                "Time to evaluate API queries, by endpoint.",
                &["endpoint"],
            ),
            registry,
        }
    }

    /// Updates the per-collector metrics from one outcome.
    pub fn record_collection(&self, collector: &str, outcome: &Outcome) {
        let (success, result, duration) = match outcome {
            Outcome::Success { duration, .. } => (1.0, "success", Some(duration.as_secs_f64())),
            Outcome::Failed { duration, .. } => (0.0, "error", Some(duration.as_secs_f64())),
            Outcome::TimedOut { timeout } => (0.0, "timeout", Some(timeout.as_secs_f64())),
            Outcome::StillRunning { .. } => (0.0, "skipped", None),
        };
        self.collector_success
            .with_label_values(&[collector])
            .set(success);
        if let Some(d) = duration {
            self.collector_duration
                .with_label_values(&[collector])
                .set(d);
        }
        self.collector_runs
            .with_label_values(&[collector, result])
            .inc();
    }

    /// Drops series of a collector removed by a reload.
    pub fn forget_collector(&self, collector: &str) {
        let _ = self.collector_success.remove_label_values(&[collector]);
        let _ = self.collector_duration.remove_label_values(&[collector]);
        for r in ["success", "error", "timeout", "skipped"] {
            let _ = self.collector_runs.remove_label_values(&[collector, r]);
        }
    }

    /// Records the result of a config (re)load.
    pub fn record_reload(&self, ok: bool) {
        self.reload_successful.set(if ok { 1.0 } else { 0.0 });
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.reload_success_timestamp.set(now);
        }
    }

    /// Copies a storage statistics snapshot into the store metrics.
    pub fn record_store(&self, stats: &StoreStats) {
        let Ok(mut last) = self.store.last.lock() else {
            return;
        };
        for (c, get) in &self.store.counters {
            c.inc_by(get(stats).saturating_sub(get(&last)));
        }
        for (g, get) in &self.store.gauges {
            g.set(get(stats));
        }
        for (i, tier) in ["raw", "5m", "1h"].iter().enumerate() {
            self.store
                .tier_bytes
                .with_label_values(&[tier])
                .set(stats.tier_bytes[i] as f64);
        }
        *last = stats.clone();
    }

    /// Appends the text exposition of every self-metric.
    pub fn render(&self, out: &mut Vec<u8>) {
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, out) {
            tracing::warn!("encoding self-metrics failed: {e}");
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_collector_metrics() {
        let m = SelfMetrics::new();
        m.record_collection(
            "cpu",
            &Outcome::Success {
                duration: Duration::from_millis(2),
                note: None,
            },
        );
        m.record_reload(true);
        let mut out = Vec::new();
        m.render(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("automon_collector_success{collector=\"cpu\"} 1"));
        assert!(text.contains("automon_config_last_reload_successful 1"));
        assert!(text.contains("automon_build_info{version="));
    }
}
