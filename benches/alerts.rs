//! One alerting round as the daemon runs it: 1,000 compiled rules evaluated on the real
//! store (a SQLite file, the recent data in the head) holding 10,000 series, each result run
//! through the state machine and the alerts fed to the grouper. The budget: under 1 s
//! of CPU per round.
//!
//! `cargo bench --bench alerts`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use automon::alert::group::{Entry, Grouper};
use automon::alert::notify::{AlertInfo, AlertStatus};
use automon::alert::route::Route;
use automon::alert::rule::{AlertState, Rule};
use automon::config::alerting::{RouteConfig, RuleConfig};
use automon::query::{Engine, Source};
use automon::store::{ManualClock, Store, StoreConfig, StoreSource, WriteBatch};
use criterion::{criterion_group, criterion_main, Criterion};

const T0: i64 = 1_800_000_000_000;

/// 1,000 metrics × 10 instances, 10 minutes at 15 s; even metrics are counters.
fn store(dir: &std::path::Path) -> Arc<Store> {
    let clock = Arc::new(ManualClock::new(T0 + 10 * 60_000));
    let store = Store::open(
        dir,
        StoreConfig {
            clock,
            flush_interval: Duration::from_secs(3600),
            ..StoreConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut seed: u64 = 7;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut series = Vec::new();
    for m in 0..1000 {
        let counter = m % 2 == 0;
        let name = if counter {
            format!("metric_{m}_total")
        } else {
            format!("metric_{m}")
        };
        for inst in 0..10 {
            let mut v = 0.0;
            let points = (0..=40)
                .map(|i| {
                    v = if counter { v + rnd() * 100.0 } else { rnd() };
                    (T0 + i * 15_000, v)
                })
                .collect();
            series.push((
                name.clone(),
                vec![
                    ("instance".to_string(), format!("host-{inst}")),
                    ("job".to_string(), "node".to_string()),
                ],
                points,
            ));
        }
    }
    store
        .write_blocking(WriteBatch {
            source: String::new(),
            samples: Vec::new(),
            series,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    store.flush().unwrap_or_else(|e| panic!("{e}"));
    Arc::new(store)
}

fn rules() -> Vec<Rule> {
    (0..1000)
        .map(|m| {
            let expr = if m % 2 == 0 {
                format!("rate(metric_{m}_total[5m]) > 3")
            } else {
                format!("avg by (job) (metric_{m}) > 0.5")
            };
            Rule::compile(&RuleConfig {
                name: format!("Rule{m}"),
                expr,
                labels: [("severity".to_string(), "warning".to_string())].into(),
                annotations: [(
                    "summary".to_string(),
                    "{{ $labels.instance }} at {{ $value | humanize }}".to_string(),
                )]
                .into(),
                ..RuleConfig::default()
            })
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn round(
    rules: &mut [Rule],
    engine: &Engine,
    source: &dyn Source,
    grouper: &mut Grouper,
    at: i64,
) -> usize {
    let mut entries = Vec::new();
    for r in rules.iter_mut() {
        let _ = r.eval(engine, source, at);
        for a in r.active.values() {
            if a.state == AlertState::Firing {
                let fp = a.fingerprint();
                entries.push(Entry {
                    fp,
                    info: AlertInfo {
                        status: AlertStatus::Firing,
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at_ms: a.active_at_ms,
                        ends_at_ms: None,
                        value: a.value,
                        fingerprint: String::new(),
                        generator_url: String::new(),
                    },
                });
            }
        }
    }
    grouper.update(&entries, at);
    entries.len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = store(dir.path());
    let source = StoreSource::new(store.clone());
    let engine = Engine::default();
    let mut rules = rules();
    let root =
        Route::compile(&RouteConfig::root_default(), &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let mut grouper = Grouper::new(
        root,
        BTreeMap::new(),
        Vec::new(),
        BTreeMap::new(),
        "h".into(),
        "http://h".into(),
    );
    let at = T0 + 10 * 60_000;
    let firing = round(&mut rules, &engine, &source, &mut grouper, at);
    assert!(
        firing > 100,
        "only {firing} alerts fire: the data set does not exercise the state machine"
    );
    let mut g = c.benchmark_group("alerts");
    g.sample_size(10);
    g.bench_function("round_1000_rules_10000_series_store", |b| {
        b.iter(|| black_box(round(&mut rules, &engine, &source, &mut grouper, at)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
