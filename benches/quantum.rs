//! The quantum collector on the largest real document (ibm_fez, 156 qubits, 568 KB): parsing a
//! changed document, building the families, and a whole collection of an unchanged file (read,
//! hash, families from the cached calibration), which is what runs on most intervals.

use std::path::PathBuf;
use std::time::Duration;

use automon::collector::quantum::{props, render_document, QuantumCollector};
use automon::collector::Collector;
use automon::config::{QuantumConfig, QuantumDeviceConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quantum/props_fez.json")
}

fn bench(c: &mut Criterion) {
    let bytes = std::fs::read(fixture()).expect("fixture");
    let mut g = c.benchmark_group("quantum");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("parse_fez", |b| {
        b.iter(|| props::parse(&bytes).expect("parse"))
    });
    g.bench_function("parse_and_render_fez", |b| {
        b.iter(|| render_document("fez", &bytes, 1.75e9).expect("render"))
    });
    let cfg = QuantumConfig {
        enabled: true,
        devices: vec![QuantumDeviceConfig {
            name: "fez".into(),
            path: Some(fixture()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut col = QuantumCollector::new(&cfg, Duration::from_secs(10)).expect("collector");
    col.collect().expect("first collection");
    g.bench_function("collect_unchanged_fez", |b| {
        b.iter(|| col.collect().expect("collect"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
