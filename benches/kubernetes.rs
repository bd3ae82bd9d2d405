//! Cost of one `kubernetes` collection on the recorded minikube payloads, without the network:
//! decoding the kubelet Summary (93 KB, 17 pods) and the node's PodList (129 KB, 24 pods) and
//! the Node, and converting them into families; and the quantity parser alone. Criterion
//! prints MB/s for the decoding benches (`Throughput::Bytes`).

use automon::collector::kubernetes::metrics::Families;
use automon::collector::kubernetes::{objects, quantity, summary};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/k8s/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench(c: &mut Criterion) {
    let summary_json = fixture("kubelet_stats_summary_k8s-1.35_minikube.json");
    let pods_json = fixture("kubelet_pods_k8s-1.35_minikube.json");
    let node_json = fixture("node_k8s-1.35_minikube.json");

    let mut g = c.benchmark_group("kubernetes");
    g.throughput(Throughput::Bytes(summary_json.len() as u64));
    g.bench_function("summary_decode_and_convert", |b| {
        b.iter(|| {
            let s: summary::Summary = serde_json::from_slice(&summary_json).unwrap();
            let mut out = Families::new();
            summary::summary_families(&s, "datagen-1-35", &mut out);
            out.into_vec().len()
        })
    });
    g.bench_function("summary_decode_only", |b| {
        b.iter(|| {
            let s: summary::Summary = serde_json::from_slice(&summary_json).unwrap();
            s.pods.len()
        })
    });
    g.throughput(Throughput::Bytes(pods_json.len() as u64));
    g.bench_function("pods_decode_and_convert", |b| {
        b.iter(|| {
            let p: objects::PodList = serde_json::from_slice(&pods_json).unwrap();
            let mut out = Families::new();
            objects::pod_families(&p, "datagen-1-35", &mut out);
            out.into_vec().len()
        })
    });
    g.throughput(Throughput::Bytes(node_json.len() as u64));
    g.bench_function("node_decode_and_convert", |b| {
        b.iter(|| {
            let n: objects::Node = serde_json::from_slice(&node_json).unwrap();
            let mut out = Families::new();
            objects::node_families(&n, &mut out);
            out.into_vec().len()
        })
    });
    g.finish();

    let quantities = [
        "487558164n",
        "732212Ki",
        "14",
        "1.5",
        "2Gi",
        "100m",
        "1e3",
        "1.5E-3",
        "954976684Ki",
        "250m",
    ];
    c.bench_function("quantity_parse_10", |b| {
        b.iter(|| {
            quantities
                .iter()
                .map(|q| quantity::parse_quantity(std::hint::black_box(q)).unwrap())
                .sum::<f64>()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
