//! Throughput of the exposition parser: the real kube-state-metrics exposition (text format)
//! into families and as a bare event stream, and the first 100k lines of the OpenMetrics host
//! recording as `automon import` reads it. Criterion prints MB/s (`Throughput::Bytes`).

use std::io::Read;
use std::path::Path;

use automon::exposition::{parse_text, Dialect, Event, Parser};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const KSM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/exposition/kube-state-metrics_v2.19.0_k8s-1.35.prom"
);
const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/recordings/host-1s-30min.om.xz"
);

/// Samples in a stream, touching every label so that the lazy label decoding is measured too.
fn stream(input: &str, dialect: Dialect) -> usize {
    let mut samples = 0;
    for event in Parser::new(input, dialect) {
        match event {
            Ok(Event::Sample(s)) => samples += s.labels.iter().count().min(1) + 1,
            Ok(Event::Family(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    samples
}

/// The first `lines` lines of the recording plus `# EOF`, or `None` without the file.
fn recording_head(lines: usize) -> Option<String> {
    let file = std::fs::File::open(Path::new(RECORDING)).ok()?;
    let mut text = String::new();
    xz2::read::XzDecoder::new(file)
        .take(16 << 20)
        .read_to_string(&mut text)
        .ok()?;
    let end = text
        .match_indices('\n')
        .nth(lines - 1)
        .map(|(i, _)| i + 1)?;
    text.truncate(end);
    text.push_str("# EOF\n");
    Some(text)
}

fn bench(c: &mut Criterion) {
    let ksm = std::fs::read_to_string(KSM).unwrap_or_else(|e| panic!("{KSM}: {e}"));
    let mut g = c.benchmark_group("exposition");
    g.throughput(Throughput::Bytes(ksm.len() as u64));
    g.bench_function("ksm_text_to_families", |b| {
        b.iter(|| parse_text(&ksm).unwrap_or_else(|e| panic!("{e}")).len())
    });
    g.bench_function("ksm_text_stream", |b| {
        b.iter(|| stream(&ksm, Dialect::Text))
    });
    match recording_head(100_000) {
        Some(om) => {
            g.throughput(Throughput::Bytes(om.len() as u64));
            g.bench_function("recording_100k_lines_openmetrics_stream", |b| {
                b.iter(|| stream(&om, Dialect::OpenMetrics))
            });
        }
        None => eprintln!("SKIPPING the OpenMetrics bench: {RECORDING} not found"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
