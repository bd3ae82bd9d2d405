//! Bytes on disk per stored sample: the real node_exporter recording (507 series × 1,800
//! samples at 1 s) written through the store, sealed and compacted; the whole database file
//! divided by the number of samples. Budget: ≤ 1.0 B/sample at 1 s.

mod recording;

use std::sync::Arc;

use automon::store::{ManualClock, Store, StoreConfig, WriteBatch};

fn bytes_per_sample(series: &[recording::Series], every: usize) -> (f64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        clock: Arc::new(ManualClock::new(i64::MAX / 2)),
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), cfg).unwrap();
    let mut n = 0;
    for (key, samples) in series {
        let (name, labels) = recording::split_key(key);
        let points: Vec<(i64, f64)> = samples.iter().step_by(every).copied().collect();
        n += points.len();
        let batch = WriteBatch {
            source: String::new(),
            samples: Vec::new(),
            series: vec![(name, labels, points)],
        };
        store.write_blocking(batch).unwrap();
    }
    store.compact().unwrap();
    let path = store.path().to_owned();
    store.close().unwrap();
    let mut size = std::fs::metadata(&path).unwrap().len();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    size += std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    (size as f64 / n as f64, size, n)
}

#[test]
fn database_bytes_per_sample_on_recording() {
    let Some(series) = recording::load_or_skip() else {
        return;
    };
    let (b1, size1, n1) = bytes_per_sample(&series, 1);
    let (b15, size15, n15) = bytes_per_sample(&series, 15);
    println!("1 s: {size1} bytes / {n1} samples = {b1:.3} B/sample");
    println!("15 s: {size15} bytes / {n15} samples = {b15:.3} B/sample");
    assert!(b1 <= 1.0, "{b1:.3} B/sample at 1 s exceeds the 1.0 budget");
}
