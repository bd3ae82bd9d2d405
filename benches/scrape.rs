//! Hot paths of a scrape and a collection round: rendering `/metrics` from the cache, and
//! running every host collector once against the real `/proc` and `/sys`.

use std::time::Duration;

use automon::collector::scheduler::{Outcome, Report};
use automon::collector::{self, CollectorSpec};
use automon::config::Config;
use automon::pipeline::{handle_reports, NullSink, Shared};
use criterion::{criterion_group, criterion_main, Criterion};

fn host_specs() -> Vec<CollectorSpec> {
    collector::build(&Config::default()).unwrap_or_else(|e| panic!("build: {e:?}"))
}

fn filled_cache() -> Shared {
    let shared = Shared::default();
    let mut sink = NullSink;
    for spec in host_specs() {
        let mut c = (spec.factory)().unwrap_or_else(|e| panic!("{e}"));
        if let Ok(collection) = c.collect() {
            handle_reports(
                &shared,
                &mut sink,
                vec![Report {
                    collector: spec.name.clone(),
                    timestamp_ms: 0,
                    families: collection.families,
                    outcome: Outcome::Success {
                        duration: Duration::from_millis(1),
                        note: None,
                    },
                }],
            );
        }
    }
    shared
}

fn bench(c: &mut Criterion) {
    let shared = filled_cache();
    let size = automon::http::render_metrics(&shared).len();
    c.bench_function(&format!("render_metrics ({size} bytes)"), |b| {
        b.iter(|| automon::http::render_metrics(&shared))
    });

    let specs = host_specs();
    let mut collectors: Vec<_> = specs
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                (s.factory)().unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect();
    c.bench_function("collect_all_host_collectors", |b| {
        b.iter(|| {
            for (_, c) in collectors.iter_mut() {
                let _ = c.collect();
            }
        })
    });
    for (name, coll) in collectors.iter_mut() {
        c.bench_function(&format!("collect/{name}"), |b| b.iter(|| coll.collect()));
    }

    let families = {
        let mut all = Vec::new();
        for (_, c) in collectors.iter_mut() {
            if let Ok(col) = c.collect() {
                all.extend(col.families);
            }
        }
        all
    };
    c.bench_function("render_families_text", |b| {
        b.iter(|| {
            let mut s = String::with_capacity(64 * 1024);
            for f in &families {
                automon::model::render_family(&mut s, f);
            }
            s
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
