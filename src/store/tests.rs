//! Store tests on real SQLite files in temp directories.

use std::sync::Arc;
use std::time::Duration;

use super::*;

const H: i64 = 3_600_000;

fn cfg(clock: Arc<ManualClock>) -> StoreConfig {
    StoreConfig {
        clock,
        // Retention only when asked, so tests are deterministic.
        retention_interval: Duration::from_secs(3600 * 24 * 365),
        flush_interval: Duration::from_millis(50),
        ..StoreConfig::default()
    }
}

type TestSample<'a> = (&'a str, &'a [(&'a str, &'a str)], i64, f64);

fn batch(source: &str, samples: &[TestSample]) -> WriteBatch {
    WriteBatch {
        source: source.into(),
        series: Vec::new(),
        samples: samples
            .iter()
            .map(|(n, l, t, v)| {
                let mut l: Labels = l
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                l.sort();
                (n.to_string(), l, *t, *v)
            })
            .collect(),
    }
}

fn raw(store: &Store, name: &str, start: i64, end: i64) -> Vec<(i64, f64)> {
    let r = store.reader().unwrap();
    let sel = r
        .select(Some(name), |_| true, start, end, Tier::Raw)
        .unwrap();
    match sel.into_iter().next().map(|s| s.points) {
        Some(TierPoint::Raw(s)) => s,
        _ => Vec::new(),
    }
}

#[test]
fn write_flush_reopen_replays_head_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock.clone())).unwrap();
    for i in 0..10 {
        store
            .write_blocking(batch(
                "c",
                &[("m", &[("a", "1")], 100 * H + i * 1000, i as f64)],
            ))
            .unwrap();
    }
    store.flush().unwrap();
    assert_eq!(raw(&store, "m", 0, i64::MAX).len(), 10);
    // Simulate a crash: the writer thread is stopped without sealing anything.
    store.close().unwrap();
    let store = Store::open(dir.path(), cfg(clock)).unwrap();
    let s = raw(&store, "m", 0, i64::MAX);
    assert_eq!(s.len(), 10);
    assert_eq!(s[9], (100 * H + 9000, 9.0));
}

#[test]
fn sealing_moves_windows_to_chunks_and_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock.clone())).unwrap();
    // 3 hours of 1-minute samples: spans two 2-hour windows.
    let start = 100 * H;
    for i in 0..180 {
        store
            .write_blocking(batch("c", &[("g", &[], start + i * 60_000, i as f64)]))
            .unwrap();
    }
    store.flush().unwrap();
    clock.set(start + 10 * H);
    std::thread::sleep(Duration::from_millis(150));
    store.flush().unwrap();
    let r = store.reader().unwrap();
    let chunks: i64 = r.conn_count("chunks");
    assert!(chunks >= 2, "chunks: {chunks}");
    assert_eq!(r.conn_count("head_log"), 0);
    assert_eq!(raw(&store, "g", 0, i64::MAX).len(), 180);
    let sel = r
        .select(Some("g"), |_| true, start, start + 3 * H, Tier::FiveMinutes)
        .unwrap();
    let TierPoint::Rollup(pts) = &sel[0].points else {
        panic!()
    };
    // Buckets are (end - 5 min, end]: the first sample sits alone in the bucket ending at it.
    assert_eq!(pts.len(), 37);
    let b = |ts, min, max, sum, count, last| RollupPoint {
        ts,
        min,
        max,
        sum,
        count,
        last,
    };
    assert_eq!(pts[0], b(start, 0.0, 0.0, 0.0, 1.0, 0.0));
    assert_eq!(pts[1], b(start + 300_000, 1.0, 5.0, 15.0, 5.0, 5.0));
    let sel = r
        .select(Some("g"), |_| true, start, start + 3 * H, Tier::OneHour)
        .unwrap();
    let TierPoint::Rollup(pts) = &sel[0].points else {
        panic!()
    };
    assert_eq!(pts.len(), 4);
    assert_eq!(pts[1].count, 60.0);
    assert_eq!(pts[1].last, 60.0);
    // Reopen: data comes from chunks now.
    drop(r);
    store.close().unwrap();
    let store = Store::open(dir.path(), cfg(clock)).unwrap();
    assert_eq!(raw(&store, "g", 0, i64::MAX).len(), 180);
}

#[test]
fn late_samples_merge_into_sealed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock.clone())).unwrap();
    store
        .write_blocking(batch("", &[("g", &[], 100 * H, 1.0)]))
        .unwrap();
    store.compact().unwrap();
    store
        .write_blocking(batch("", &[("g", &[], 100 * H + 1000, 2.0)]))
        .unwrap();
    store.flush().unwrap();
    assert_eq!(
        raw(&store, "g", 0, i64::MAX),
        vec![(100 * H, 1.0), (100 * H + 1000, 2.0)]
    );
}

#[test]
fn missing_series_gets_a_staleness_marker() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock)).unwrap();
    let t = 100 * H;
    store
        .write_blocking(batch(
            "disk",
            &[
                ("d", &[("dev", "a")], t, 1.0),
                ("d", &[("dev", "b")], t, 2.0),
            ],
        ))
        .unwrap();
    store
        .write_blocking(batch("disk", &[("d", &[("dev", "a")], t + 15_000, 1.0)]))
        .unwrap();
    store.flush().unwrap();
    let r = store.reader().unwrap();
    let sel = r
        .select(Some("d"), |m| m.labels[0].1 == "b", 0, i64::MAX, Tier::Raw)
        .unwrap();
    let TierPoint::Raw(s) = &sel[0].points else {
        panic!()
    };
    assert_eq!(s.len(), 2);
    assert!(is_stale(s[1].1));
    assert_eq!(s[1].0, t + 15_000);
}

#[test]
fn out_of_order_samples_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock)).unwrap();
    store
        .write_blocking(batch("", &[("g", &[], 100 * H + 5000, 1.0)]))
        .unwrap();
    store
        .write_blocking(batch("", &[("g", &[], 100 * H + 1000, 2.0)]))
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.stats().samples_out_of_order, 1);
    assert_eq!(raw(&store, "g", 0, i64::MAX).len(), 1);
}

#[test]
fn retention_by_age_drops_old_windows_per_tier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let store = Store::open(dir.path(), cfg(clock.clone())).unwrap();
    let day = 24 * H;
    // One sample an hour for 20 days.
    for i in 0..(20 * 24) {
        store
            .write_blocking(batch("", &[("g", &[], 1000 * day + i * H, i as f64)]))
            .unwrap();
    }
    store.compact().unwrap();
    clock.set(1020 * day);
    store.run_retention().unwrap();
    let s = raw(&store, "g", 0, i64::MAX);
    // Raw keeps 14 days (whole windows): nothing older than 14 days and 2 hours remains.
    assert!(
        s.first().unwrap().0 >= 1006 * day - 2 * H,
        "{:?}",
        s.first()
    );
    assert!(s.len() >= 14 * 24 - 2, "{}", s.len());
    // Rollups (90 d / 2 y) still cover everything.
    let r = store.reader().unwrap();
    let sel = r
        .select(Some("g"), |_| true, 0, i64::MAX, Tier::OneHour)
        .unwrap();
    let TierPoint::Rollup(p) = &sel[0].points else {
        panic!()
    };
    assert_eq!(p.iter().map(|p| p.count).sum::<f64>(), (20 * 24) as f64);
    clock.set(1200 * day);
    store.run_retention().unwrap();
    assert!(raw(&store, "g", 0, i64::MAX).is_empty());
    let sel = r
        .select(Some("g"), |_| true, 0, i64::MAX, Tier::FiveMinutes)
        .unwrap();
    assert!(sel.is_empty());
    let sel = r
        .select(Some("g"), |_| true, 0, i64::MAX, Tier::OneHour)
        .unwrap();
    assert_eq!(sel.len(), 1);
    assert_eq!(r.integrity_check().unwrap(), "ok");
}

#[test]
fn size_cap_drops_oldest_and_stays_within_five_percent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let cap = 2 * 1024 * 1024;
    let store = Store::open(
        dir.path(),
        StoreConfig {
            max_size_bytes: cap,
            ..cfg(clock.clone())
        },
    )
    .unwrap();
    // Noisy values compress badly: several MB over 200 series.
    let mut x: u64 = 1;
    for w in 0..40i64 {
        let mut samples = Vec::new();
        for t in 0..120i64 {
            for s in 0..50 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                samples.push((
                    "noise".to_string(),
                    vec![("s".to_string(), s.to_string())],
                    1000 * H + w * 2 * H + t * 60_000,
                    f64::from_bits(x >> 2),
                ));
            }
        }
        store
            .write_blocking(WriteBatch {
                source: String::new(),
                samples,
                ..Default::default()
            })
            .unwrap();
    }
    store.compact().unwrap();
    clock.set(1000 * H + 80 * H);
    store.run_retention().unwrap();
    let size = store.stats().file_bytes;
    assert!(
        size as f64 <= cap as f64 * 1.05,
        "size {size} > cap {cap} + 5%"
    );
    // The newest data survived, the oldest went first.
    let s = raw(&store, "noise", 0, i64::MAX);
    assert!(!s.is_empty());
    assert_eq!(s.last().unwrap().0, 1000 * H + 39 * 2 * H + 119 * 60_000);
    assert!(s.first().unwrap().0 > 1000 * H);
    assert_eq!(store.reader().unwrap().integrity_check().unwrap(), "ok");
}

#[test]
fn a_new_series_repeated_in_one_batch_is_created_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Store::open(dir.path(), cfg(clock)).unwrap();
    let samples: Vec<TestSample> = (0..10)
        .map(|i| ("g", &[][..], 100 * H + i * 1000, 1.0))
        .collect();
    store.write_blocking(batch("", &samples)).unwrap();
    store.flush().unwrap();
    assert_eq!(store.reader().unwrap().conn_count("series"), 1);
    assert_eq!(raw(&store, "g", 0, i64::MAX).len(), 10);
}

#[test]
fn store_source_answers_like_the_in_memory_source() {
    use crate::query::{Engine, Limits, MemorySource, Value};

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(100 * H));
    let store = Arc::new(Store::open(dir.path(), cfg(clock.clone())).unwrap());
    let mut mem = MemorySource::new();
    let start = 100 * H;
    let mut c = 0.0;
    for i in 0..(6 * 240) {
        let t = start + i * 15_000;
        // A counter with a reset every 1000 samples, and a gauge.
        c = if i % 1000 == 999 {
            0.0
        } else {
            c + (i % 7) as f64
        };
        let g = ((i % 13) as f64) * 0.5;
        store
            .write_blocking(batch(
                "c",
                &[("ctr_total", &[("k", "a")], t, c), ("gauge", &[], t, g)],
            ))
            .unwrap();
        mem.add(&[("__name__", "ctr_total"), ("k", "a")], t, c);
        mem.add(&[("__name__", "gauge")], t, g);
    }
    mem.compute_rollups(&[300_000, 3_600_000]);
    let mem = mem.sorted();
    // Seal half of it so both chunks and the head are read.
    clock.set(start + 4 * H);
    store.flush().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    store.flush().unwrap();
    let src = StoreSource::new(store.clone());
    let engine = Engine::new(Limits::default());
    for (q, step) in [
        ("rate(ctr_total[5m])", 15_000),
        ("increase(ctr_total[1h])", 3_600_000),
        ("avg_over_time(gauge[1h])", 3_600_000),
        ("max_over_time(gauge[5m])", 300_000),
        ("sum by (k) (rate(ctr_total[10m]))", 60_000),
        ("gauge", 300_000),
    ] {
        let a = engine
            .range(&src, q, start + H, start + 5 * H, step)
            .unwrap();
        let b = engine
            .range(&mem, q, start + H, start + 5 * H, step)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&Value::Matrix(a)).unwrap(),
            serde_json::to_string(&Value::Matrix(b)).unwrap(),
            "{q} step {step}"
        );
    }
    let a = engine.instant(&src, "gauge", start + 5 * H).unwrap();
    let b = engine.instant(&mem, "gauge", start + 5 * H).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let first = Store::open(dir.path(), cfg(clock.clone())).unwrap();
    let err = Store::open(dir.path(), cfg(clock.clone())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Locked { .. }), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    first.close().unwrap();
    // Released on close.
    Store::open(dir.path(), cfg(clock))
        .unwrap()
        .close()
        .unwrap();
}
