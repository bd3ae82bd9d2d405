//! Storage hot paths: ingest throughput through the writer thread (head log included), and
//! read latency of one series over 24 h raw and over 30 d from 5-minute rollups.

use std::sync::Arc;
use std::time::Duration;

use automon::store::{ManualClock, Store, StoreConfig, Tier, WriteBatch};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const DAY: i64 = 86_400_000;
const T0: i64 = 20_000 * DAY;

fn labels(i: usize) -> Vec<(String, String)> {
    vec![
        ("cpu".to_string(), (i % 64).to_string()),
        ("mode".to_string(), format!("m{}", i / 64)),
    ]
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::open(
        dir.path(),
        StoreConfig {
            clock: clock.clone(),
            flush_interval: Duration::from_secs(1),
            ..StoreConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let series = 1000;
    let per_batch_ts = 10;
    let names: Vec<Vec<(String, String)>> = (0..series).map(labels).collect();
    let mut tick: i64 = 0;
    let mut g = c.benchmark_group("store_ingest");
    g.throughput(Throughput::Elements((series * per_batch_ts) as u64));
    // iter_custom: the time of a run of batches *including* the flush that waits for the
    // writer, so the figure is what the writer sustains, not how fast the channel fills.
    g.bench_function("1000 series x 10 ticks, head log included", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                // Grouped per series, the form imports use: one lookup per series and batch.
                let first = tick + 1;
                tick += per_batch_ts as i64;
                let groups = names
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let points = (first..=tick)
                            .map(|t| (T0 + t * 1000, (t as f64) * 0.01 + i as f64))
                            .collect();
                        ("node_cpu_seconds_total".to_string(), l.clone(), points)
                    })
                    .collect();
                store
                    .write_blocking(WriteBatch {
                        source: String::new(),
                        samples: Vec::new(),
                        series: groups,
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            store.flush().unwrap_or_else(|e| panic!("{e}"));
            start.elapsed()
        })
    });
    g.finish();
    // Wait for the writer so the measured rate is what it sustains, not what the channel buffers.
    let t = std::time::Instant::now();
    store.flush().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("final flush after the benchmark took {:?}", t.elapsed());
    let stats = store.stats();
    eprintln!(
        "head: {} series, {} samples, {} bytes ({:.0} bytes/series)",
        stats.series,
        stats.head_samples,
        stats.head_bytes,
        stats.head_bytes as f64 / stats.series.max(1) as f64
    );
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(T0 + 31 * DAY));
    let store = Store::open(
        dir.path(),
        StoreConfig {
            clock,
            retention_raw: Duration::from_secs(40 * 86_400),
            ..StoreConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // 30 days of one counter at 15 s and one gauge at 1 s for the last day, plus 200 other
    // series so lookups are not trivially alone.
    let mut batch = Vec::new();
    for i in 0..(30 * DAY / 15_000) {
        batch.push((
            "ctr_total".to_string(),
            vec![],
            T0 + i * 15_000,
            (i * 3) as f64,
        ));
        if batch.len() >= 50_000 {
            store
                .write_blocking(WriteBatch {
                    source: String::new(),
                    samples: std::mem::take(&mut batch),
                    ..Default::default()
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    for i in 0..(DAY / 1000) {
        let t = T0 + 29 * DAY + i * 1000;
        batch.push(("gauge_1s".to_string(), vec![], t, ((i % 100) as f64) * 0.01));
        if i % 60 == 0 {
            for s in 0..200 {
                batch.push(("other".to_string(), labels(s), t, s as f64));
            }
        }
        if batch.len() >= 50_000 {
            store
                .write_blocking(WriteBatch {
                    source: String::new(),
                    samples: std::mem::take(&mut batch),
                    ..Default::default()
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    store
        .write_blocking(WriteBatch {
            source: String::new(),
            samples: batch,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    store.compact().unwrap_or_else(|e| panic!("{e}"));
    let reader = store.reader().unwrap_or_else(|e| panic!("{e}"));
    let id_of = |name: &str| {
        reader
            .series(Some(name), |_| true)
            .first()
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (ctr, gauge) = (id_of("ctr_total"), id_of("gauge_1s"));
    let end = T0 + 30 * DAY;
    let mut g = c.benchmark_group("store_read");
    g.bench_function("one series x 24h raw at 15s (5760 samples)", |b| {
        b.iter(|| {
            reader
                .raw(ctr, end - DAY, end)
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("one series x 24h raw at 1s (86400 samples)", |b| {
        b.iter(|| {
            reader
                .raw(gauge, end - DAY, end)
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("one series x 30d via 5m rollups (8640 buckets)", |b| {
        b.iter(|| {
            reader
                .rollups(ctr, Tier::FiveMinutes, end - 30 * DAY, end)
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
}

criterion_group!(benches, ingest, reads);
criterion_main!(benches);
