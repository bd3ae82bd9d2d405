//! Query engine benchmarks on `MemorySource`:
//! - `rate(node_cpu_seconds_total[5m])` and `sum by (mode) (...)` as range queries over 1 h at
//!   a 15 s step (16 CPUs x 8 modes, scraped every 15 s, and every 1 s);
//! - one alerting round: 1,000 simple rules (instant queries) over 10,000 series, the target
//!   of the alerting issue being < 1 s of CPU per round.
//!
//! Measured on the 2-core development machine (release profile):
//! | benchmark | time |
//! |---|---|
//! | `rate(node_cpu_seconds_total[5m])`, 1 h at 15 s step, 128 series scraped every 15 s | 3.8 ms |
//! | same, scraped every 1 s (301 samples per window) | 21.7 ms |
//! | `sum by (mode) (rate(...[5m]))`, 15 s / 1 s scrape | 3.5 ms / 21.4 ms |
//! | 1,000 rules over 10,000 series, parsed each round | 29 ms |
//! | 1,000 rules over 10,000 series, prepared once | 14.6 ms |
//! | parsing one rule-sized expression | 12 us |

use std::hint::black_box;

use automon::model::Labels;
use automon::query::{Engine, MemorySource, Point};
use criterion::{criterion_group, criterion_main, Criterion};

const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const HOUR: i64 = 3_600_000;
/// An arbitrary epoch-aligned start, so steps fall on whole seconds like Grafana's.
const T0: i64 = 1_795_000_000_000;

/// A small deterministic generator (no rand dependency in benches).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    l
}

/// node_cpu_seconds_total for 16 CPUs x 8 modes over `span` ms at `interval` ms.
fn cpu_source(span: i64, interval: i64) -> MemorySource {
    let mut src = MemorySource::new();
    let mut rng = Lcg(42);
    for cpu in 0..16 {
        let cpu = cpu.to_string();
        for mode in MODES {
            let mut v = rng.next() * 1e5;
            let points: Vec<Point> = (0..=span / interval)
                .map(|i| {
                    v += rng.next() * interval as f64 / 1000.0;
                    // Cumulative seconds, rounded to 10 ms like /proc/stat.
                    Point {
                        t: T0 + i * interval,
                        v: (v * 100.0).round() / 100.0,
                    }
                })
                .collect();
            src.add_series(
                labels(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", &cpu),
                    ("mode", mode),
                    ("instance", "host:9100"),
                    ("job", "node"),
                ]),
                points,
            );
        }
    }
    src.sorted()
}

/// 1,000 metrics x 10 series, 10 minutes at 15 s; even metrics are counters.
fn rules_source() -> MemorySource {
    let mut src = MemorySource::new();
    let mut rng = Lcg(7);
    for m in 0..1000 {
        let counter = m % 2 == 0;
        let name = if counter {
            format!("metric_{m}_total")
        } else {
            format!("metric_{m}")
        };
        for inst in 0..10 {
            let inst = format!("host-{inst}");
            let mut v = 0.0;
            let points: Vec<Point> = (0..=40)
                .map(|i| {
                    v = if counter {
                        v + rng.next() * 100.0
                    } else {
                        rng.next()
                    };
                    Point {
                        t: T0 + i * 15_000,
                        v,
                    }
                })
                .collect();
            src.add_series(
                labels(&[("__name__", &name), ("instance", &inst), ("job", "node")]),
                points,
            );
        }
    }
    src.sorted()
}

fn rules() -> Vec<String> {
    (0..1000)
        .map(|m| {
            if m % 2 == 0 {
                format!("rate(metric_{m}_total[5m]) > 3")
            } else {
                format!("avg by (job) (metric_{m}) > 0.9")
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::default();
    let mut g = c.benchmark_group("query");
    g.sample_size(10);

    let src15 = cpu_source(HOUR + 10 * 60_000, 15_000);
    let src1 = cpu_source(HOUR + 10 * 60_000, 1_000);
    let (start, end, step) = (T0 + 10 * 60_000, T0 + HOUR + 10 * 60_000, 15_000);
    for (name, src) in [("15s_scrape", &src15), ("1s_scrape", &src1)] {
        g.bench_function(format!("rate_cpu_1h_step15s/{name}"), |b| {
            b.iter(|| {
                let m = engine
                    .range(src, "rate(node_cpu_seconds_total[5m])", start, end, step)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(m.len(), 128);
                black_box(m)
            })
        });
        g.bench_function(format!("sum_by_mode_rate_cpu_1h_step15s/{name}"), |b| {
            b.iter(|| {
                let m = engine
                    .range(
                        src,
                        "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
                        start,
                        end,
                        step,
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(m.len(), 8);
                black_box(m)
            })
        });
    }

    let src = rules_source();
    let texts = rules();
    let at = T0 + 10 * 60_000;
    g.bench_function("rules_1000_over_10000_series/parse_each_time", |b| {
        b.iter(|| {
            for r in &texts {
                black_box(
                    engine
                        .instant(&src, r, at)
                        .unwrap_or_else(|e| panic!("{r}: {e}")),
                );
            }
        })
    });
    let prepared: Vec<_> = texts
        .iter()
        .map(|r| engine.prepare(r).unwrap_or_else(|e| panic!("{r}: {e}")))
        .collect();
    g.bench_function("rules_1000_over_10000_series/prepared", |b| {
        b.iter(|| {
            for q in &prepared {
                black_box(
                    engine
                        .instant_query(&src, q, at)
                        .unwrap_or_else(|e| panic!("{e}")),
                );
            }
        })
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            black_box(
                engine
                    .prepare(
                        "sum by (mode) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])) > 0.5",
                    )
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
