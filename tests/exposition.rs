//! The exposition parser on real data: the kube-state-metrics exposition in
//! `tests/fixtures/exposition` (text format) and the head of the OpenMetrics host recording in
//! `shared/data/recordings`; plus a property test that any family the renderer writes parses
//! back to itself.

use std::io::{BufRead, BufReader};
use std::path::Path;

use automon::exposition::{parse_openmetrics, parse_text, Dialect, Event, MetricType, Parser};
use automon::model::{render_family, Family, MetricKind, Sample};
use proptest::prelude::*;

const KSM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/exposition/kube-state-metrics_v2.19.0_k8s-1.35.prom"
);
const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/recordings/host-1s-30min.om.xz"
);

fn find<'f>(families: &'f [Family], name: &str) -> &'f Family {
    families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn value_of(family: &Family, labels: &[(&str, &str)]) -> f64 {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    family
        .samples
        .iter()
        .find(|s| s.labels == want)
        .unwrap_or_else(|| panic!("no sample {labels:?} in {}", family.name))
        .value
}

#[test]
fn parses_kube_state_metrics() {
    let text = std::fs::read_to_string(KSM).unwrap();
    let families = parse_text(&text).unwrap_or_else(|e| panic!("{e}"));
    // 231 HELP/TYPE pairs, of which 168 have samples (the others are dropped, as in expfmt);
    // 1698 sample lines.
    assert_eq!(families.len(), 168);
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    assert_eq!(samples, 1698);
    assert!(families.iter().all(|f| !f.help.is_empty()));
    let counters: Vec<&str> = families
        .iter()
        .filter(|f| f.kind == MetricKind::Counter)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(counters, ["kube_pod_container_status_restarts_total"]);

    let csr = find(&families, "kube_certificatesigningrequest_created");
    assert_eq!(csr.kind, MetricKind::Gauge);
    assert_eq!(csr.help, "[STABLE] Unix creation timestamp");
    assert_eq!(
        value_of(
            csr,
            &[
                ("certificatesigningrequest", "csr-w7r2t"),
                ("signer_name", "kubernetes.io/kube-apiserver-client-kubelet"),
            ]
        ),
        1_782_468_732.0
    );
    let capacity = find(&families, "kube_node_status_capacity");
    assert_eq!(
        value_of(
            capacity,
            &[
                ("node", "datagen-1-35"),
                ("resource", "memory"),
                ("unit", "byte")
            ]
        ),
        8_216_887_296.0
    );
    let requests = find(&families, "kube_pod_container_resource_requests");
    assert_eq!(
        value_of(
            requests,
            &[
                ("container", "kube-apiserver"),
                ("namespace", "kube-system"),
                ("node", "datagen-1-35"),
                ("pod", "kube-apiserver-datagen-1-35"),
                ("resource", "cpu"),
                ("uid", "091e4cfe-bbaf-4634-99c2-2627b3b25e5e"),
                ("unit", "core"),
            ]
        ),
        0.25
    );
    // Label values with blanks in them.
    let cron = find(&families, "kube_cronjob_info");
    assert!(cron.samples[0]
        .labels
        .contains(&("schedule".to_owned(), "* * * * *".to_owned())));
}

#[test]
fn kube_state_metrics_round_trips_through_the_renderer() {
    let text = std::fs::read_to_string(KSM).unwrap();
    let families = parse_text(&text).unwrap();
    let mut rendered = String::new();
    for f in &families {
        render_family(&mut rendered, f);
    }
    assert_eq!(parse_text(&rendered).unwrap(), families);
}

/// The first `lines` lines of the recording, or `None` (with a message) when the shared data
/// is not there. In CI (`CI=true`) a missing recording fails instead: a skipped test would
/// hide that the check never ran.
fn recording_head(lines: usize) -> Option<String> {
    let path = Path::new(RECORDING);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "{}: {e} (the OpenMetrics recording is required in CI)",
                path.display()
            )
        }
        Err(e) => {
            eprintln!("SKIPPING: {}: {e}", path.display());
            return None;
        }
    };
    let mut reader = BufReader::new(xz2::read::XzDecoder::new(file));
    let mut text = String::new();
    for _ in 0..lines {
        if reader.read_line(&mut text).unwrap() == 0 {
            break;
        }
    }
    Some(text)
}

#[test]
fn parses_the_head_of_the_openmetrics_recording() {
    let Some(mut text) = recording_head(20_000) else {
        return;
    };
    // A cut file has no `# EOF`, which OpenMetrics requires.
    let err = parse_openmetrics(&text).unwrap_err();
    assert_eq!(err.line, 20_001, "{err}");
    text.push_str("# EOF\n");

    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}"));
    let summary: Vec<(&str, MetricKind, usize)> = families
        .iter()
        .map(|f| (f.name.as_str(), f.kind, f.samples.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("go_gc_duration_seconds", MetricKind::Summary, 12_600),
            ("go_goroutines", MetricKind::Gauge, 1_800),
            ("go_info", MetricKind::Gauge, 1_800),
            // A gauge and a counter sharing the OpenMetrics family name, as client_golang
            // writes `go_memstats_alloc_bytes` and `go_memstats_alloc_bytes_total`.
            ("go_memstats_alloc_bytes", MetricKind::Gauge, 1_800),
            ("go_memstats_alloc_bytes", MetricKind::Counter, 1_800),
            ("go_memstats_buck_hash_sys_bytes", MetricKind::Gauge, 188),
        ]
    );
    let gc = &families[0];
    assert_eq!(
        gc.help,
        "A summary of the pause duration of garbage collection cycles."
    );
    assert_eq!(
        gc.samples[0],
        Sample {
            name: "go_gc_duration_seconds".into(),
            labels: vec![("quantile".into(), "0".into())],
            value: 0.0,
            timestamp_ms: Some(1_795_381_810_151),
        }
    );
    assert_eq!(gc.samples[1].value, 2.046e-05);
    assert_eq!(gc.samples[1].timestamp_ms, Some(1_795_381_811_151));
    let total = &families[4].samples[0];
    assert_eq!(total.name, "go_memstats_alloc_bytes_total");
    assert_eq!(
        (total.value, total.timestamp_ms),
        (1.807616e6, Some(1_795_381_810_151))
    );
    // Every sample carries a timestamp, one second apart per series.
    assert!(families
        .iter()
        .flat_map(|f| &f.samples)
        .all(|s| s.timestamp_ms.is_some_and(|t| t % 1000 == 151)));
}

#[test]
fn streams_the_head_of_the_recording_without_building_families() {
    let Some(mut text) = recording_head(20_000) else {
        return;
    };
    text.push_str("# EOF\n");
    let mut families = Vec::new();
    let mut samples = 0usize;
    let mut last_line = 0;
    for event in Parser::new(&text, Dialect::OpenMetrics) {
        match event.unwrap_or_else(|e| panic!("{e}")) {
            Event::Family(meta) => families.push((meta.name, meta.kind)),
            Event::Sample(s) => {
                samples += 1;
                assert!(s.line > last_line);
                last_line = s.line;
            }
        }
    }
    assert_eq!(samples, 19_988);
    assert_eq!(
        families[4],
        ("go_memstats_alloc_bytes", MetricType::Counter)
    );
}

/// Values compare equal, with NaN equal to NaN (the text format has one NaN).
fn same_families(a: &[Family], b: &[Family]) -> bool {
    let same_sample = |x: &Sample, y: &Sample| {
        x.name == y.name
            && x.labels == y.labels
            && x.timestamp_ms == y.timestamp_ms
            && (x.value == y.value || (x.value.is_nan() && y.value.is_nan()))
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.help == y.help
                && x.kind == y.kind
                && x.samples.len() == y.samples.len()
                && x.samples
                    .iter()
                    .zip(&y.samples)
                    .all(|(s, t)| same_sample(s, t))
        })
}

fn family_strategy() -> impl Strategy<Value = Family> {
    let kind = prop_oneof![
        Just(MetricKind::Counter),
        Just(MetricKind::Gauge),
        Just(MetricKind::Untyped),
    ];
    // The text format skips blanks before HELP text, so generated help does not start with one.
    let help = "([^ \t\r][^\r]{0,30})?";
    let value = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
    ];
    let labels = proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}", 0..4)
        .prop_map(|m| {
            m.into_iter()
                .filter(|(k, _)| k != "__name__")
                .collect::<Vec<_>>()
        });
    let sample = (labels, value, proptest::option::of(any::<i64>()));
    (kind, help, proptest::collection::vec(sample, 1..5)).prop_map(|(kind, help, samples)| {
        let mut f = Family::new("placeholder", help, kind);
        for (labels, value, timestamp_ms) in samples {
            f.samples.push(Sample {
                name: String::new(),
                labels,
                value,
                timestamp_ms,
            });
        }
        f
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rendered_families_parse_back(
        names in proptest::collection::btree_set("[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", 1..5),
        families in proptest::collection::vec(family_strategy(), 5),
    ) {
        let families: Vec<Family> = names
            .into_iter()
            .zip(families)
            .map(|(name, mut f)| {
                f.name = name.clone();
                for s in &mut f.samples {
                    s.name = name.clone();
                }
                f
            })
            .collect();
        let mut text = String::new();
        for f in &families {
            render_family(&mut text, f);
        }
        let parsed = parse_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(same_families(&parsed, &families), "{text}\n{parsed:?}");
    }
}
