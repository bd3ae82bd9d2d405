//! Throughput of the chunk codec (samples/s) on real series from the shared node_exporter
//! recording (a counter, a gauge, a constant series, a noisy float gauge, the whole file)
//! and on a synthetic series that only the XOR mode can encode.

#[path = "../tests/recording/mod.rs"]
mod recording;

use automon::store::codec;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// Real series by key; the recording is optional so the synthetic case always runs.
const REAL: [(&str, &str); 4] = [
    ("counter", "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}"),
    ("gauge", "node_load1"),
    (
        "constant",
        "node_cpu_guest_seconds_total{cpu=\"0\",mode=\"nice\"}",
    ),
    (
        "noisy_gauge",
        "node_scrape_collector_duration_seconds{collector=\"cpu\"}",
    ),
];

/// A random walk of full-precision floats: every value needs the XOR path.
fn synthetic_xor(n: usize) -> Vec<(i64, f64)> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut v = 100.0f64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v += (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            (1_795_381_810_151 + 1000 * i as i64, v)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut cases: Vec<(String, Vec<(i64, f64)>)> =
        vec![("xor_synthetic".into(), synthetic_xor(1800))];
    let mut all = Vec::new();
    match recording::load() {
        Ok(Some(series)) => {
            for (name, key) in REAL {
                if let Some((_, s)) = series.iter().find(|(k, _)| k == key) {
                    cases.push((name.into(), s.clone()));
                }
            }
            all = series.into_iter().map(|(_, s)| s).collect();
        }
        Ok(None) => eprintln!(
            "recording missing at {}: real series skipped",
            recording::PATH
        ),
        Err(e) => panic!("{e}"),
    }

    let mut g = c.benchmark_group("codec");
    for (name, samples) in &cases {
        let enc = codec::encode(samples);
        eprintln!(
            "{name}: {:.3} B/sample",
            enc.len() as f64 / samples.len() as f64
        );
        g.throughput(Throughput::Elements(samples.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), samples, |b, s| {
            b.iter(|| codec::encode(black_box(s)))
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &enc, |b, e| {
            b.iter(|| codec::decode(black_box(e)))
        });
    }
    if !all.is_empty() {
        let total: usize = all.iter().map(Vec::len).sum();
        let encoded: Vec<Vec<u8>> = all.iter().map(|s| codec::encode(s)).collect();
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function("encode/recording", |b| {
            b.iter(|| {
                all.iter()
                    .map(|s| codec::encode(black_box(s)).len())
                    .sum::<usize>()
            })
        });
        g.bench_function("decode/recording", |b| {
            b.iter(|| {
                encoded
                    .iter()
                    .map(|e| codec::decode(black_box(e)).map_or(0, |d| d.len()))
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
