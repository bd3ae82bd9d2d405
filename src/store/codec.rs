//! Compression codec for one series' samples over one time window (a *chunk*).
//!
//! A chunk is written once, when its window seals, and decoded by queries, either whole
//! ([`decode`]), as a stream that can stop early ([`Decoder`]), or for a time range
//! ([`decode_range`]). Every `(i64, f64)` sample round-trips bit-exactly: any NaN payload,
//! ±Inf, -0.0, subnormals, and any timestamps (all arithmetic on them wraps, so even
//! deltas spanning `i64::MIN..i64::MAX` survive).
//!
//! # Format, version 1
//!
//! All multi-byte header integers are LEB128 varints; signed ones are zigzag-mapped first
//! (`svarint`). Header fields in order:
//!
//! | field | present when | meaning |
//! | --- | --- | --- |
//! | `u8` version (= 1) | always | lets the format evolve; decoders reject other values |
//! | varint count | always | number of samples, at most [`MAX_CHUNK_SAMPLES`] |
//! | svarint t0 | count ≥ 1 | first timestamp (ms) |
//! | `u8` value mode | count ≥ 1 | bits 0–1: 0 = XOR, 1 = decimal deltas, 2 = decimal delta-of-deltas; bits 2–7: decimal scale `k` (0 for XOR) |
//! | first value | count ≥ 1 | XOR: 8 bytes, big-endian f64 bits; decimal: svarint `n0 = v0 · 10^k` |
//! | svarint d1 | count ≥ 2 | first timestamp delta `t1 - t0` |
//! | bucket code | count ≥ 2 | code for timestamp delta-of-deltas (see below) |
//! | svarint first value delta | count ≥ 2, mode 2 | `n1 - n0` |
//! | bucket code | count ≥ 2, mode 1 or 2 | code for the value residuals |
//!
//! Then one MSB-first bit stream, interleaved per sample so that a reader can stop at any
//! sample: for each sample `i ≥ 1`, its timestamp code (from `i ≥ 2`: zigzag of the
//! delta-of-delta), then its value code:
//! - **XOR** (Gorilla): `0` if the bits equal the previous value's; `10` + the XOR's
//!   meaningful bits if they fit the previous leading/trailing-zero window; else `11`,
//!   5 bits leading zeros (capped at 31), 6 bits meaningful length (0 means 64), the bits.
//! - **decimal**: every value is `n / 10^k` for an integer `n` (checked bit-exactly at
//!   encode time; -0.0 and NaN never pass, so such chunks use XOR). Mode 1 codes the zigzag
//!   of `n_i - n_{i-1}` for `i ≥ 1` (gauges), mode 2 the zigzag of the delta-of-delta for
//!   `i ≥ 2` (counters, whose rate is near constant). The encoder picks the smallest of
//!   XOR, mode 1 and mode 2 per chunk, counting bits exactly.
//!
//! A **bucket code** is Gorilla's variable-width buckets with widths tuned per chunk: one
//! byte `m` (1..=4) then `m` strictly increasing widths `w_0 < … < w_{m-1} ≤ 64`. A value
//! `u` goes in the first bucket `b` with `bitlen(u) ≤ w_b`, written as `b` one bits, a zero
//! bit unless `b = m - 1`, then `u` in `w_b` bits. The encoder picks the widths that
//! minimise the chunk's size (a small dynamic program over the residuals' bit lengths), so
//! with regular ticks a timestamp usually costs `0` (m = 1, w = 0: no bits at all), a
//! constant series' value likewise, and Gorilla's fixed `0 / 10 / 110 / 1110 / 1111+64`
//! scheme is one of the codes it can choose.
//!
//! The stream is padded with zero bits to a byte; extra bytes after it are an error.
//!
//! Timestamps must be strictly increasing (checked with `debug_assert!`). Deduplication is
//! the caller's job: in release builds any sequence, duplicates included, still round-trips
//! exactly, but [`decode_range`] stops at the first timestamp past the range.

use std::ops::{Bound, RangeBounds};

use thiserror::Error;

/// The format version written in the first byte of every chunk.
pub const FORMAT_VERSION: u8 = 1;

/// The most samples one chunk may hold. Bounds what a corrupt header can make a decoder
/// allocate or loop over (samples of a regular, constant series cost zero bits).
pub const MAX_CHUNK_SAMPLES: usize = 1 << 20;

/// Largest decimal scale tried: `10^9` keeps nanosecond-ish fractions while the scaled
/// integers of typical metrics stay well inside the 2^53 range where `as f64` is exact.
const MAX_SCALE: u32 = 9;
/// Most buckets in a bucket code; past four, the longer prefixes eat the gain.
const MAX_BUCKETS: usize = 4;

const MODE_XOR: u8 = 0;
const MODE_DELTA: u8 = 1;
const MODE_DOD: u8 = 2;

/// Exact powers of ten (all representable in f64) for the decimal mode.
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The chunk ends before all its samples were read.
    #[error("chunk is truncated")]
    Truncated,
    /// The chunk was written by a newer (or unknown) format version.
    #[error("unsupported chunk format version {0}")]
    UnsupportedVersion(u8),
    /// The chunk's header or bit stream is inconsistent.
    #[error("corrupt chunk: {0}")]
    Corrupt(&'static str),
}

/// Encodes `samples` (timestamps in ms, strictly increasing) into one chunk.
///
/// # Panics
/// If there are more than [`MAX_CHUNK_SAMPLES`] samples; in debug builds also if the
/// timestamps are not strictly increasing.
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    assert!(
        samples.len() <= MAX_CHUNK_SAMPLES,
        "chunk of {} samples is too large",
        samples.len()
    );
    debug_assert!(
        samples.windows(2).all(|w| w[0].0 < w[1].0),
        "chunk timestamps must be strictly increasing"
    );
    let mut out = Vec::with_capacity(32 + samples.len());
    out.push(FORMAT_VERSION);
    put_uvarint(&mut out, samples.len() as u64);
    let Some(&(t0, v0)) = samples.first() else {
        return out;
    };
    put_svarint(&mut out, t0);
    let plan = ValuePlan::choose(samples);
    match &plan {
        ValuePlan::Xor => {
            out.push(MODE_XOR);
            out.extend_from_slice(&v0.to_bits().to_be_bytes());
        }
        ValuePlan::Decimal {
            scale, dod, ints, ..
        } => {
            out.push((*scale as u8) << 2 | if *dod { MODE_DOD } else { MODE_DELTA });
            put_svarint(&mut out, ints[0]);
        }
    }
    if samples.len() < 2 {
        return out;
    }

    let d1 = samples[1].0.wrapping_sub(t0);
    put_svarint(&mut out, d1);
    let mut hist = [0u64; 65];
    let mut delta = d1;
    for w in samples[1..].windows(2) {
        let d = w[1].0.wrapping_sub(w[0].0);
        hist[bitlen(zigzag(d.wrapping_sub(delta)))] += 1;
        delta = d;
    }
    let (ts_code, _) = BucketCode::optimal(&hist);
    ts_code.write_header(&mut out);
    if let ValuePlan::Decimal {
        dod, ints, code, ..
    } = &plan
    {
        if *dod {
            put_svarint(&mut out, ints[1].wrapping_sub(ints[0]));
        }
        code.write_header(&mut out);
    }

    let mut w = BitWriter {
        out,
        acc: 0,
        bits: 0,
    };
    let mut xor = XorEncoder::new(v0.to_bits());
    let (mut delta, mut vdelta) = (d1, 0i64);
    for i in 1..samples.len() {
        if i >= 2 {
            let d = samples[i].0.wrapping_sub(samples[i - 1].0);
            ts_code.put(&mut w, zigzag(d.wrapping_sub(delta)));
            delta = d;
        }
        match &plan {
            ValuePlan::Xor => xor.put(&mut w, samples[i].1.to_bits()),
            ValuePlan::Decimal {
                dod: false,
                ints,
                code,
                ..
            } => {
                code.put(&mut w, zigzag(ints[i].wrapping_sub(ints[i - 1])));
            }
            ValuePlan::Decimal {
                dod: true,
                ints,
                code,
                ..
            } => {
                let d = ints[i].wrapping_sub(ints[i - 1]);
                if i >= 2 {
                    code.put(&mut w, zigzag(d.wrapping_sub(vdelta)));
                }
                vdelta = d;
            }
        }
    }
    w.finish()
}

/// Decodes a whole chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut dec = Decoder::new(bytes)?;
    let mut out = Vec::with_capacity(dec.sample_count());
    for s in &mut dec {
        out.push(s?);
    }
    Ok(out)
}

/// Decodes the samples whose timestamp lies in `range` (e.g. `start..end` or
/// `start..=end`), stopping at the first sample past its end. Decoding stops early, so
/// corruption after that point goes unnoticed.
pub fn decode_range(
    bytes: &[u8],
    range: impl RangeBounds<i64>,
) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut out = Vec::new();
    for s in Decoder::new(bytes)? {
        let (t, v) = s?;
        let past_end = match range.end_bound() {
            Bound::Included(&e) => t > e,
            Bound::Excluded(&e) => t >= e,
            Bound::Unbounded => false,
        };
        if past_end {
            break;
        }
        if range.contains(&t) {
            out.push((t, v));
        }
    }
    Ok(out)
}

/// A streaming decoder: an iterator over a chunk's samples, in order.
///
/// Yields `Err` once (then ends) if the chunk turns out corrupt or truncated, including
/// trailing garbage after the last sample.
pub struct Decoder<'a> {
    r: BitReader<'a>,
    count: usize,
    index: usize,
    finished: bool,
    t: i64,
    t_delta: i64,
    ts_code: BucketCode,
    values: ValueState,
}

/// Value decoding state: the previous value (or scaled integer and its delta).
enum ValueState {
    Xor {
        bits: u64,
        /// Leading zeros and meaningful bits of the last explicit window.
        window: Option<(u32, u32)>,
    },
    Decimal {
        int: i64,
        delta: i64,
        dod: bool,
        scale: usize,
        code: BucketCode,
    },
}

impl<'a> Decoder<'a> {
    /// Parses the chunk header; samples are decoded lazily as the iterator advances.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let mut c = Cursor {
            data: bytes,
            pos: 0,
        };
        let version = c.byte()?;
        if version != FORMAT_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let count = c.uvarint()?;
        if count > MAX_CHUNK_SAMPLES as u64 {
            return Err(CodecError::Corrupt("sample count too large"));
        }
        let count = count as usize;
        let mut dec = Decoder {
            r: BitReader {
                data: bytes,
                pos: 0,
                acc: 0,
                bits: 0,
            },
            count,
            index: 0,
            finished: false,
            t: 0,
            t_delta: 0,
            ts_code: BucketCode::ZERO,
            values: ValueState::Xor {
                bits: 0,
                window: None,
            },
        };
        if count >= 1 {
            dec.t = c.svarint()?;
            let mode = c.byte()?;
            let scale = (mode >> 2) as usize;
            dec.values = match mode & 3 {
                MODE_XOR if scale == 0 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c.take(8)?);
                    ValueState::Xor {
                        bits: u64::from_be_bytes(b),
                        window: None,
                    }
                }
                m @ (MODE_DELTA | MODE_DOD) if scale <= MAX_SCALE as usize => ValueState::Decimal {
                    int: c.svarint()?,
                    delta: 0,
                    dod: m == MODE_DOD,
                    scale,
                    code: BucketCode::ZERO,
                },
                _ => return Err(CodecError::Corrupt("unknown value mode")),
            };
        }
        if count >= 2 {
            dec.t_delta = c.svarint()?;
            dec.ts_code = BucketCode::read_header(&mut c)?;
            if let ValueState::Decimal {
                delta, dod, code, ..
            } = &mut dec.values
            {
                if *dod {
                    *delta = c.svarint()?;
                }
                *code = BucketCode::read_header(&mut c)?;
            }
        }
        dec.r.pos = c.pos;
        Ok(dec)
    }

    /// Total number of samples in the chunk, decoded or not (from the header).
    pub fn sample_count(&self) -> usize {
        self.count
    }

    fn value(&self) -> f64 {
        match self.values {
            ValueState::Xor { bits, .. } => f64::from_bits(bits),
            ValueState::Decimal { int, scale, .. } => from_scaled(int, scale),
        }
    }

    /// Advances the state to sample `self.index` (≥ 1).
    fn step(&mut self) -> Result<(), CodecError> {
        let r = &mut self.r;
        if self.index >= 2 {
            self.t_delta = self.t_delta.wrapping_add(unzigzag(self.ts_code.get(r)?));
        }
        self.t = self.t.wrapping_add(self.t_delta);
        match &mut self.values {
            ValueState::Xor { bits, window } => {
                if r.bit()? {
                    let (lead, sig) = if r.bit()? {
                        let lead = r.bits(5)? as u32;
                        let sig = match r.bits(6)? as u32 {
                            0 => 64,
                            s => s,
                        };
                        if lead + sig > 64 {
                            return Err(CodecError::Corrupt("XOR window exceeds 64 bits"));
                        }
                        *window = Some((lead, sig));
                        (lead, sig)
                    } else {
                        window.ok_or(CodecError::Corrupt("XOR window used before defined"))?
                    };
                    *bits ^= r.bits(sig)? << (64 - lead - sig);
                }
            }
            ValueState::Decimal {
                int,
                delta,
                dod,
                code,
                ..
            } => {
                if !*dod {
                    *delta = unzigzag(code.get(r)?);
                } else if self.index >= 2 {
                    *delta = delta.wrapping_add(unzigzag(code.get(r)?));
                }
                *int = int.wrapping_add(*delta);
            }
        }
        Ok(())
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<(i64, f64), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            if self.finished {
                return None;
            }
            self.finished = true;
            return self.r.finish().err().map(Err);
        }
        if self.index > 0 {
            if let Err(e) = self.step() {
                self.index = self.count;
                self.finished = true;
                return Some(Err(e));
            }
        }
        self.index += 1;
        Some(Ok((self.t, self.value())))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (0, Some(left + 1))
    }
}

/// How the values of a chunk are encoded, chosen by [`ValuePlan::choose`].
enum ValuePlan {
    Xor,
    Decimal {
        scale: u32,
        dod: bool,
        ints: Vec<i64>,
        code: BucketCode,
    },
}

impl ValuePlan {
    /// Picks the smallest encoding, comparing exact bit counts (header bytes included).
    fn choose(samples: &[(i64, f64)]) -> Self {
        let Some((scale, ints)) = scale_to_ints(samples) else {
            return ValuePlan::Xor;
        };
        let mut xor = XorEncoder::new(samples[0].1.to_bits());
        let mut xor_bits = BitCount(64);
        for s in &samples[1..] {
            xor.put(&mut xor_bits, s.1.to_bits());
        }
        let (mut h1, mut h2) = ([0u64; 65], [0u64; 65]);
        for (i, w) in ints.windows(2).enumerate() {
            let d = w[1].wrapping_sub(w[0]);
            h1[bitlen(zigzag(d))] += 1;
            if i >= 1 {
                h2[bitlen(zigzag(d.wrapping_sub(w[0].wrapping_sub(ints[i - 1]))))] += 1;
            }
        }
        let header = 8 * uvarint_len(zigzag(ints[0])) as u64;
        let (c1, b1) = BucketCode::optimal(&h1);
        let (c2, b2) = BucketCode::optimal(&h2);
        let d1 = ints.get(1).map_or(0, |n| n.wrapping_sub(ints[0]));
        let b1 = b1 + header + 8 * (1 + c1.n as u64);
        let b2 = b2 + header + 8 * (1 + c2.n as u64 + uvarint_len(zigzag(d1)) as u64);
        if xor_bits.0 < b1.min(b2) {
            ValuePlan::Xor
        } else if b1 <= b2 {
            ValuePlan::Decimal {
                scale,
                dod: false,
                ints,
                code: c1,
            }
        } else {
            ValuePlan::Decimal {
                scale,
                dod: true,
                ints,
                code: c2,
            }
        }
    }
}

/// Finds the smallest scale `k` at which every value is an integer `n` with
/// `n as f64 / 10^k` bit-identical to it, and returns the integers.
fn scale_to_ints(samples: &[(i64, f64)]) -> Option<(u32, Vec<i64>)> {
    let mut scale = 0;
    for s in samples {
        while to_scaled(s.1, scale).is_none() {
            scale += 1;
            if scale > MAX_SCALE {
                return None;
            }
        }
    }
    // A value exact at a smaller scale is almost always exact at a larger one too; this
    // second pass verifies it (and falls back to XOR in the rare case it is not).
    let ints = samples
        .iter()
        .map(|s| to_scaled(s.1, scale))
        .collect::<Option<Vec<_>>>()?;
    Some((scale, ints))
}

fn to_scaled(v: f64, scale: u32) -> Option<i64> {
    // `as i64` saturates and maps NaN to 0; the bit comparison rejects every such case.
    let n = (v * POW10[scale as usize]).round() as i64;
    (from_scaled(n, scale as usize).to_bits() == v.to_bits()).then_some(n)
}

fn from_scaled(n: i64, scale: usize) -> f64 {
    n as f64 / POW10[scale]
}

/// Gorilla XOR value compression state (shared by the writer and the size estimate).
struct XorEncoder {
    prev: u64,
    /// Leading and trailing zeros of the current window, if one was written.
    window: Option<(u32, u32)>,
}

impl XorEncoder {
    fn new(first: u64) -> Self {
        XorEncoder {
            prev: first,
            window: None,
        }
    }

    fn put(&mut self, s: &mut impl BitSink, bits: u64) {
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            s.put(0, 1);
            return;
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match self.window {
            Some((l, t)) if lead >= l && trail >= t => {
                s.put(0b10, 2);
                s.put(x >> t, 64 - l - t);
            }
            _ => {
                let sig = 64 - lead - trail;
                s.put(0b11, 2);
                s.put(u64::from(lead), 5);
                s.put(u64::from(sig & 63), 6);
                s.put(x >> trail, sig);
                self.window = Some((lead, trail));
            }
        }
    }
}

/// A per-chunk variable-width bucket code for unsigned integers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
struct BucketCode {
    n: u8,
    widths: [u8; MAX_BUCKETS],
}

impl BucketCode {
    /// The code of a stream whose values are all zero: no bits at all.
    const ZERO: BucketCode = BucketCode {
        n: 1,
        widths: [0; MAX_BUCKETS],
    };

    /// The code minimising the total size of values whose bit lengths have histogram
    /// `hist`, and that size in bits. Optimal widths are always lengths that occur, so a
    /// dynamic program over those (≤ 65) is cheap: `best[j][i]` is the cheapest way to code
    /// every value of length ≤ `lens[j]` with buckets `0..=i`, bucket `i` ending at `lens[j]`.
    fn optimal(hist: &[u64; 65]) -> (Self, u64) {
        let lens: Vec<u8> = (0..=64u8).filter(|&l| hist[l as usize] > 0).collect();
        let Some(&max) = lens.last() else {
            return (Self::ZERO, 0);
        };
        let mut upto = [0u64; 65]; // upto[l]: number of values with length ≤ l
        let mut sum = 0;
        for (l, &h) in hist.iter().enumerate() {
            sum += h;
            upto[l] = sum;
        }
        let total = sum;
        let m = lens.len();
        let upto = |j: usize| upto[lens[j] as usize];
        // First candidate: a single bucket, no prefix bits.
        let mut best = (
            total * u64::from(max),
            BucketCode {
                n: 1,
                widths: [max, 0, 0, 0],
            },
        );
        let mut cost = vec![[u64::MAX; MAX_BUCKETS]; m];
        let mut from = vec![[0usize; MAX_BUCKETS]; m];
        for j in 0..m {
            cost[j][0] = (1 + u64::from(lens[j])) * upto(j);
        }
        for i in 1..MAX_BUCKETS - 1 {
            for j in i..m {
                for p in i - 1..j {
                    let c = cost[p][i - 1]
                        .saturating_add((i as u64 + 1 + u64::from(lens[j])) * (upto(j) - upto(p)));
                    if c < cost[j][i] {
                        cost[j][i] = c;
                        from[j][i] = p;
                    }
                }
            }
        }
        // With n buckets, the last one (index n-1) has n-1 prefix bits and ends at `max`.
        for n in 2..=MAX_BUCKETS.min(m) {
            for (p, row) in cost.iter().enumerate().take(m - 1).skip(n - 2) {
                let c =
                    row[n - 2].saturating_add((n as u64 - 1 + u64::from(max)) * (total - upto(p)));
                if c < best.0 {
                    let mut widths = [0u8; MAX_BUCKETS];
                    widths[n - 1] = max;
                    let mut j = p;
                    for i in (0..n - 1).rev() {
                        widths[i] = lens[j];
                        j = from[j][i];
                    }
                    best = (c, BucketCode { n: n as u8, widths });
                }
            }
        }
        (best.1, best.0)
    }

    fn write_header(&self, out: &mut Vec<u8>) {
        out.push(self.n);
        out.extend_from_slice(&self.widths[..self.n as usize]);
    }

    fn read_header(c: &mut Cursor<'_>) -> Result<Self, CodecError> {
        let n = c.byte()?;
        if n == 0 || n as usize > MAX_BUCKETS {
            return Err(CodecError::Corrupt("bad bucket count"));
        }
        let mut widths = [0u8; MAX_BUCKETS];
        widths[..n as usize].copy_from_slice(c.take(n as usize)?);
        let w = &widths[..n as usize];
        if w.windows(2).any(|p| p[0] >= p[1]) || w[w.len() - 1] > 64 {
            return Err(CodecError::Corrupt("bad bucket widths"));
        }
        Ok(BucketCode { n, widths })
    }

    fn put(&self, w: &mut BitWriter, u: u64) {
        let len = bitlen(u) as u8;
        let last = self.n as u32 - 1;
        let mut b = 0;
        while self.widths[b as usize] < len {
            b += 1;
        }
        if b < last {
            w.put((1 << (b + 1)) - 2, b + 1); // b ones, then a zero
        } else {
            w.put((1 << b) - 1, b);
        }
        w.put(u, u32::from(self.widths[b as usize]));
    }

    fn get(&self, r: &mut BitReader<'_>) -> Result<u64, CodecError> {
        let mut b = 0;
        while b + 1 < self.n as usize && r.bit()? {
            b += 1;
        }
        r.bits(u32::from(self.widths[b]))
    }
}

/// Where bits go: the real writer, or a counter used to size the XOR alternative.
trait BitSink {
    fn put(&mut self, value: u64, n: u32);
}

struct BitCount(u64);

impl BitSink for BitCount {
    fn put(&mut self, _: u64, n: u32) {
        self.0 += u64::from(n);
    }
}

/// MSB-first bit writer appending to a byte vector.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    /// Pending bits in the low end of `acc` (always < 8 between calls).
    bits: u32,
}

impl BitWriter {
    #[inline]
    fn put_small(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 32);
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.bits += n;
        while self.bits >= 8 {
            self.bits -= 8;
            self.out.push((self.acc >> self.bits) as u8);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
        }
        self.out
    }
}

impl BitSink for BitWriter {
    /// Writes the low `n` (≤ 64) bits of `value`.
    #[inline]
    fn put(&mut self, value: u64, n: u32) {
        if n > 32 {
            self.put_small(value >> 32, n - 32);
            self.put_small(value, 32);
        } else {
            self.put_small(value, n);
        }
    }
}

/// MSB-first bit reader. Reading past the end is [`CodecError::Truncated`].
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load into `acc`.
    pos: usize,
    /// Loaded bits, left-aligned; bits past `bits` are zero.
    acc: u64,
    bits: u32,
}

impl BitReader<'_> {
    #[inline]
    fn refill(&mut self) {
        while self.bits <= 56 {
            let Some(&b) = self.data.get(self.pos) else {
                break;
            };
            self.acc |= u64::from(b) << (56 - self.bits);
            self.bits += 8;
            self.pos += 1;
        }
    }

    /// Reads `n` (≤ 64) bits as the low bits of the result.
    #[inline]
    fn bits(&mut self, n: u32) -> Result<u64, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let hi = self.bits(n - 32)?;
            return Ok(hi << 32 | self.bits(32)?);
        }
        if self.bits < n {
            self.refill();
            if self.bits < n {
                return Err(CodecError::Truncated);
            }
        }
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.bits -= n;
        Ok(v)
    }

    #[inline]
    fn bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.bits(1)? == 1)
    }

    /// Checks that only the zero padding of the last byte is left.
    fn finish(&self) -> Result<(), CodecError> {
        if self.pos < self.data.len() || self.bits >= 8 || self.acc != 0 {
            return Err(CodecError::Corrupt("trailing data after last sample"));
        }
        Ok(())
    }
}

/// Byte cursor over the header.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let s = self
            .data
            .get(self.pos..self.pos + n)
            .ok_or(CodecError::Truncated)?;
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(CodecError::Corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt("varint overflows 64 bits"))
    }

    fn svarint(&mut self) -> Result<i64, CodecError> {
        Ok(unzigzag(self.uvarint()?))
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

fn uvarint_len(v: u64) -> usize {
    (bitlen(v).max(1)).div_ceil(7)
}

/// Maps signed to unsigned so that small magnitudes get few significant bits.
#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[inline]
fn bitlen(u: u64) -> usize {
    (64 - u.leading_zeros()) as usize
}

#[cfg(test)]
mod tests;
