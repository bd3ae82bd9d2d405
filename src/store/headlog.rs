//! Encoding of one head-log row: the samples received during one flush interval, as
//! `(series id, timestamp, value)` triples with varint ids and delta timestamps, deflated.
//! Rows are short-lived (deleted when their windows seal), so simplicity beats density.

use std::io::{Read, Write};

use super::index::SeriesId;
use super::varint;

/// Encodes samples into a row BLOB.
pub fn encode(samples: &[(SeriesId, i64, f64)]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(samples.len() * 12 + 8);
    varint::put(&mut raw, samples.len() as u64);
    let mut prev_ts = 0i64;
    for &(id, ts, v) in samples {
        varint::put(&mut raw, u64::from(id));
        varint::put(&mut raw, varint::zigzag(ts.wrapping_sub(prev_ts)));
        raw.extend_from_slice(&v.to_bits().to_le_bytes());
        prev_ts = ts;
    }
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(&raw);
    enc.finish().unwrap_or_default()
}

/// Decodes a row BLOB; `None` when corrupt.
pub fn decode(blob: &[u8]) -> Option<Vec<(SeriesId, i64, f64)>> {
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(blob)
        .read_to_end(&mut raw)
        .ok()?;
    let mut pos = 0;
    let n = varint::get(&raw, &mut pos)? as usize;
    // Each sample takes at least 10 bytes: bound the allocation by the data present.
    let mut out = Vec::with_capacity(n.min(raw.len() / 10 + 1));
    let mut prev_ts = 0i64;
    for _ in 0..n {
        let id = SeriesId::try_from(varint::get(&raw, &mut pos)?).ok()?;
        let ts = prev_ts.wrapping_add(varint::unzigzag(varint::get(&raw, &mut pos)?));
        let bytes: [u8; 8] = raw.get(pos..pos + 8)?.try_into().ok()?;
        pos += 8;
        out.push((id, ts, f64::from_bits(u64::from_le_bytes(bytes))));
        prev_ts = ts;
    }
    (pos == raw.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = vec![(1, 1000, 1.5), (70000, 999, f64::NAN), (2, -5, -0.0)];
        let d = decode(&encode(&s)).unwrap();
        assert_eq!(d.len(), 3);
        for (a, b) in s.iter().zip(&d) {
            assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
        }
        assert_eq!(decode(&encode(&[])).unwrap().len(), 0);
        assert!(decode(b"garbage").is_none());
    }
}
