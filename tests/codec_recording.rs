//! Compression of real node_exporter data (507 series × 1,800 samples at 1 s) with the
//! chunk codec: every series must round-trip bit-exactly, and the 1 s figure must stay
//! within the storage budget.

mod recording;

use automon::store::codec;

/// Encodes each series as one chunk, checks the round trip, returns (bytes, samples).
fn measure(series: &[recording::Series], every: usize) -> (usize, usize) {
    let (mut bytes, mut samples) = (0, 0);
    for (key, all) in series {
        let chunk: Vec<(i64, f64)> = all.iter().copied().step_by(every).collect();
        let enc = codec::encode(&chunk);
        let dec = codec::decode(&enc).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(dec.len(), chunk.len(), "{key}");
        for (a, b) in chunk.iter().zip(&dec) {
            assert!(
                a.0 == b.0 && a.1.to_bits() == b.1.to_bits(),
                "{key}: {a:?} != {b:?}"
            );
        }
        bytes += enc.len();
        samples += chunk.len();
    }
    (bytes, samples)
}

#[test]
fn compression_on_recording() {
    let Some(series) = recording::load_or_skip() else {
        return;
    };
    assert_eq!(series.len(), 507);
    for (every, label) in [(1, "1 s"), (15, "15 s")] {
        let (bytes, samples) = measure(&series, every);
        let per = bytes as f64 / samples as f64;
        println!("{label}: {bytes} bytes / {samples} samples = {per:.3} B/sample");
        if every == 1 {
            assert_eq!(samples, 507 * 1800);
            assert!(
                per <= 0.80,
                "1 s chunks take {per:.3} B/sample, budget is 0.80"
            );
        }
    }
}
