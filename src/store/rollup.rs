//! Rollup points (min, max, sum, count, last per bucket), computed from raw samples when a
//! window seals, and their BLOB encoding: five codec streams sharing bucket timestamps.

use super::codec;
use super::is_stale;
use super::varint;

/// One bucket of a rollup tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupPoint {
    /// Bucket end (ms, inclusive); the bucket covers `(ts - resolution, ts]`, the query
    /// engine's convention.
    pub ts: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of values.
    pub sum: f64,
    /// Number of samples (staleness markers excluded).
    pub count: f64,
    /// Value of the latest sample; the staleness marker if the series ended in this bucket.
    pub last: f64,
}

/// End of the bucket holding `ts`.
pub fn bucket_end(ts: i64, res_ms: i64) -> i64 {
    (ts - 1).div_euclid(res_ms) * res_ms + res_ms
}

/// Buckets `samples` (sorted) at `res_ms`. Staleness markers are not values: they only mark
/// `last` so that the series still ends.
pub fn compute(samples: &[(i64, f64)], res_ms: i64) -> Vec<RollupPoint> {
    let mut out: Vec<RollupPoint> = Vec::new();
    for &(ts, v) in samples {
        let b = bucket_end(ts, res_ms);
        let stale = is_stale(v);
        match out.last_mut() {
            Some(p) if p.ts == b => {
                if stale {
                    p.last = v;
                    continue;
                }
                p.min = p.min.min(v);
                p.max = p.max.max(v);
                p.sum += v;
                p.count += 1.0;
                p.last = v;
            }
            _ if stale => {}
            _ => out.push(RollupPoint {
                ts: b,
                min: v,
                max: v,
                sum: v,
                count: 1.0,
                last: v,
            }),
        }
    }
    out
}

/// Merges `new` into `old` (both sorted); a bucket present in both combines, with `new`
/// taken as the later data for `last`.
pub fn merge(old: Vec<RollupPoint>, new: &[RollupPoint]) -> Vec<RollupPoint> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.ts == b.ts => {
                out.push(RollupPoint {
                    ts: a.ts,
                    min: a.min.min(b.min),
                    max: a.max.max(b.max),
                    sum: a.sum + b.sum,
                    count: a.count + b.count,
                    last: b.last,
                });
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.ts < b.ts => {
                out.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                out.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Encodes points (sorted by ts).
pub fn encode(points: &[RollupPoint]) -> Vec<u8> {
    let mut out = vec![1u8];
    let fields: [fn(&RollupPoint) -> f64; 5] =
        [|p| p.min, |p| p.max, |p| p.sum, |p| p.count, |p| p.last];
    for f in fields {
        let col: Vec<(i64, f64)> = points.iter().map(|p| (p.ts, f(p))).collect();
        let blob = codec::encode(&col);
        varint::put(&mut out, blob.len() as u64);
        out.extend_from_slice(&blob);
    }
    out
}

/// Decodes [`encode`] output; `None` when corrupt.
pub fn decode(data: &[u8]) -> Option<Vec<RollupPoint>> {
    if data.first() != Some(&1) {
        return None;
    }
    let mut pos = 1;
    let mut cols: Vec<Vec<(i64, f64)>> = Vec::with_capacity(5);
    for _ in 0..5 {
        let len = varint::get(data, &mut pos)? as usize;
        let blob = data.get(pos..pos.checked_add(len)?)?;
        pos += len;
        cols.push(codec::decode(blob).ok()?);
    }
    if pos != data.len() || cols.iter().any(|c| c.len() != cols[0].len()) {
        return None;
    }
    Some(
        (0..cols[0].len())
            .map(|i| RollupPoint {
                ts: cols[0][i].0,
                min: cols[0][i].1,
                max: cols[1][i].1,
                sum: cols[2][i].1,
                count: cols[3][i].1,
                last: cols[4][i].1,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::STALE_NAN_BITS;

    #[test]
    fn compute_merge_round_trip() {
        let s: Vec<(i64, f64)> = (0..20).map(|i| (i * 60_000, i as f64)).collect();
        let pts = compute(&s, 300_000);
        // (−5 min, 0], (0, 5 min], (5, 10], (10, 15], (15, 20]
        assert_eq!(pts.len(), 5);
        assert_eq!(
            pts[0],
            RollupPoint {
                ts: 0,
                min: 0.0,
                max: 0.0,
                sum: 0.0,
                count: 1.0,
                last: 0.0
            }
        );
        assert_eq!(
            pts[1],
            RollupPoint {
                ts: 300_000,
                min: 1.0,
                max: 5.0,
                sum: 15.0,
                count: 5.0,
                last: 5.0
            }
        );
        assert_eq!(decode(&encode(&pts)).unwrap(), pts);
        let merged = merge(
            pts[..2].to_vec(),
            &compute(&[(1, 10.0), (900_000, 1.0)], 300_000),
        );
        assert_eq!(merged[1].max, 10.0);
        assert_eq!(merged[1].count, 6.0);
        assert_eq!(merged.len(), 3);
        let stale = compute(
            &[
                (0, 1.0),
                (0, 1.0),
                (1, 2.0),
                (2, f64::from_bits(STALE_NAN_BITS)),
            ],
            300_000,
        );
        assert_eq!(stale[1].count, 1.0);
        assert!(is_stale(stale[1].last));
    }
}
