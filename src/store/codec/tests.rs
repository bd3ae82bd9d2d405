//! Tests of the chunk codec: bit I/O, each encoding mode, edge cases, corrupt input, and
//! property tests that every sample round-trips bit-exactly.

use super::*;
use proptest::prelude::*;

/// Encodes, decodes, and compares bit-for-bit; returns the chunk.
fn round_trip(samples: &[(i64, f64)]) -> Vec<u8> {
    let enc = encode(samples);
    let dec = decode(&enc).expect("decode");
    assert_eq!(dec.len(), samples.len());
    for (i, (a, b)) in samples.iter().zip(&dec).enumerate() {
        assert_eq!(a.0, b.0, "timestamp {i}");
        assert_eq!(
            a.1.to_bits(),
            b.1.to_bits(),
            "value {i}: {} vs {}",
            a.1,
            b.1
        );
    }
    // The streaming decoder must agree with `decode`.
    let streamed: Vec<_> = Decoder::new(&enc)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed.len(), dec.len());
    enc
}

fn regular(values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (1_795_381_810_151 + 1000 * i as i64, v))
        .collect()
}

/// The value mode byte of a chunk with ≥ 1 sample.
fn mode_of(enc: &[u8]) -> u8 {
    let mut c = Cursor { data: enc, pos: 1 };
    c.uvarint().unwrap();
    c.svarint().unwrap();
    c.byte().unwrap()
}

#[test]
fn bit_io_round_trip() {
    let fields: Vec<(u64, u32)> = vec![
        (1, 1),
        (0, 0),
        (0b101, 3),
        (u64::MAX, 64),
        (0x1234_5678, 32),
        (0x1_2345_6789, 33),
        (0, 7),
        ((1 << 57) - 3, 57),
        (0x8000_0000_0000_0001, 64),
        (1, 1),
    ];
    let mut w = BitWriter {
        out: vec![0xAA],
        acc: 0,
        bits: 0,
    };
    for &(v, n) in &fields {
        w.put(v, n);
    }
    let total: u32 = fields.iter().map(|f| f.1).sum();
    let out = w.finish();
    assert_eq!(out.len(), 1 + total.div_ceil(8) as usize);
    let mut r = BitReader {
        data: &out,
        pos: 1,
        acc: 0,
        bits: 0,
    };
    for &(v, n) in &fields {
        let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
        assert_eq!(r.bits(n).unwrap(), v & mask, "field of {n} bits");
    }
    r.finish().unwrap();
    assert_eq!(r.bits(8), Err(CodecError::Truncated));
}

#[test]
fn bit_writer_masks_and_reader_rejects_trailing() {
    let mut w = BitWriter {
        out: Vec::new(),
        acc: 0,
        bits: 0,
    };
    w.put(0xFF, 3); // only the low 3 bits count
    w.put(0, 2);
    assert_eq!(w.finish(), vec![0b1110_0000]);
    let data = [0b1110_0000, 0];
    let mut r = BitReader {
        data: &data,
        pos: 0,
        acc: 0,
        bits: 0,
    };
    assert_eq!(r.bits(3).unwrap(), 0b111);
    assert!(r.finish().is_err(), "a whole unread byte is trailing data");
    let data = [0b1110_0100];
    let mut r = BitReader {
        data: &data,
        pos: 0,
        acc: 0,
        bits: 0,
    };
    r.bits(3).unwrap();
    assert!(r.finish().is_err(), "padding bits must be zero");
}

#[test]
fn varints_and_zigzag() {
    for v in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1_795_381_810_151] {
        assert_eq!(unzigzag(zigzag(v)), v);
        let mut out = Vec::new();
        put_svarint(&mut out, v);
        assert_eq!(out.len(), uvarint_len(zigzag(v)));
        assert_eq!(Cursor { data: &out, pos: 0 }.svarint().unwrap(), v);
    }
    assert_eq!(zigzag(-1), 1);
    assert_eq!(zigzag(1), 2);
    let overlong = [0xFF; 11];
    assert!(Cursor {
        data: &overlong,
        pos: 0
    }
    .uvarint()
    .is_err());
    assert_eq!(
        Cursor {
            data: &[0x80],
            pos: 0
        }
        .uvarint(),
        Err(CodecError::Truncated)
    );
}

#[test]
fn bucket_code_choice() {
    let mut hist = [0u64; 65];
    assert_eq!(BucketCode::optimal(&hist), (BucketCode::ZERO, 0));
    hist[0] = 1000;
    assert_eq!(BucketCode::optimal(&hist), (BucketCode::ZERO, 0));
    // Mostly zero with a few 5-bit and rare 40-bit values: a three-bucket code wins.
    hist[5] = 100;
    hist[40] = 3;
    let (code, bits) = BucketCode::optimal(&hist);
    assert_eq!(code.n, 3);
    assert_eq!(&code.widths[..3], &[0, 5, 40]);
    assert_eq!(bits, 1000 + 100 * (2 + 5) + 3 * (2 + 40));
    // Every value length codes and decodes under the chosen code.
    let vals = [0u64, 1, 31, 1 << 39, (1 << 40) - 1, 17];
    let mut w = BitWriter {
        out: Vec::new(),
        acc: 0,
        bits: 0,
    };
    for &v in &vals {
        code.put(&mut w, v);
    }
    let out = w.finish();
    let mut r = BitReader {
        data: &out,
        pos: 0,
        acc: 0,
        bits: 0,
    };
    for &v in &vals {
        assert_eq!(code.get(&mut r).unwrap(), v);
    }
}

#[test]
fn empty_and_single() {
    let enc = round_trip(&[]);
    assert_eq!(enc, vec![FORMAT_VERSION, 0]);
    assert_eq!(Decoder::new(&enc).unwrap().sample_count(), 0);
    round_trip(&[(0, 0.0)]);
    round_trip(&[(-5, f64::NAN)]);
    round_trip(&[(i64::MAX, -0.0)]);
    round_trip(&[(i64::MIN, 1.5)]);
}

#[test]
fn regular_constant_series_costs_no_bits_per_sample() {
    let samples = regular(&[0.0; 7200]);
    let enc = round_trip(&samples);
    assert!(enc.len() <= 20, "{} bytes", enc.len());
}

#[test]
fn decimal_gauge_uses_deltas() {
    let loads = [
        0.52, 0.61, 0.58, 0.7, 0.66, 0.59, 0.71, 0.8, 0.77, 0.62, 0.55, 0.6,
    ];
    let enc = round_trip(&regular(&loads));
    assert_eq!(mode_of(&enc), 2 << 2 | MODE_DELTA);
}

#[test]
fn decimal_counter_uses_delta_of_deltas() {
    // node_cpu_seconds_total-like: +0.97..1.00 per second.
    let vals: Vec<f64> = (0..600)
        .map(|i| (158_038 + 98 * i + (i * 7 % 3)) as f64 / 100.0)
        .collect();
    let enc = round_trip(&regular(&vals));
    assert_eq!(mode_of(&enc), 2 << 2 | MODE_DOD);
    assert!(enc.len() < 600, "{} bytes", enc.len());
}

#[test]
fn non_decimal_floats_use_xor() {
    let vals: Vec<f64> = (0..100)
        .map(|i| (i as f64).sqrt() * std::f64::consts::PI)
        .collect();
    let enc = round_trip(&regular(&vals));
    assert_eq!(mode_of(&enc), MODE_XOR);
}

#[test]
fn special_values_fall_back_to_xor() {
    let vals = [
        1.0,
        -0.0,
        f64::NAN,
        f64::from_bits(0x7FF0_0000_0000_0001), // signalling NaN
        f64::from_bits(0xFFF8_0000_DEAD_BEEF), // negative NaN with payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 3.0, // subnormal
        f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        2.5,
    ];
    let enc = round_trip(&regular(&vals));
    assert_eq!(mode_of(&enc), MODE_XOR);
    // One NaN (a Prometheus staleness marker, say) among decimals still round-trips.
    round_trip(&regular(&[
        1.0,
        2.0,
        f64::from_bits(0x7FF0_0000_0000_0002),
        3.0,
    ]));
}

#[test]
fn decimal_edges() {
    // 2^63 is exactly `i64::MAX as f64`; huge and tiny values must not be mis-scaled.
    round_trip(&regular(&[2f64.powi(63), 0.0, -(2f64.powi(63)), 1e19]));
    round_trip(&regular(&[1e-9, 2e-9, 1.7953818101620405e9, 0.1, 0.2, 0.3]));
    round_trip(&regular(&[i64::MAX as f64, i64::MIN as f64, 0.5]));
}

#[test]
fn timestamp_extremes() {
    round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
    round_trip(&[
        (i64::MIN, 1.0),
        (-1, 2.0),
        (0, 3.0),
        (i64::MAX - 1, 4.0),
        (i64::MAX, 5.0),
    ]);
    round_trip(&[
        (-3_000, 1.0),
        (-2_000, 1.0),
        (-1_000, 1.0),
        (5, 1.0),
        (1_000_000_000, 1.0),
    ]);
    // Jitter around a 15 s tick.
    let jitter: Vec<(i64, f64)> = (0..500)
        .map(|i| (15_000 * i + [0, 3, -2, 1, 7, -4][i as usize % 6], i as f64))
        .collect();
    round_trip(&jitter);
}

#[test]
fn decode_range_bounds() {
    let samples = regular(&(0..100).map(f64::from).collect::<Vec<_>>());
    let enc = encode(&samples);
    let t = |i: usize| samples[i].0;
    assert_eq!(decode_range(&enc, t(10)..t(20)).unwrap(), &samples[10..20]);
    assert_eq!(
        decode_range(&enc, t(10)..=t(20)).unwrap(),
        &samples[10..=20]
    );
    assert_eq!(decode_range(&enc, ..t(3)).unwrap(), &samples[..3]);
    assert_eq!(decode_range(&enc, t(97) + 1..).unwrap(), &samples[98..]);
    assert_eq!(decode_range(&enc, ..).unwrap(), samples);
    assert!(decode_range(&enc, t(99) + 1..).unwrap().is_empty());
    assert!(decode_range(&enc, 0..t(0)).unwrap().is_empty());
}

#[test]
fn truncated_and_corrupt_input_is_an_error() {
    let mut vals: Vec<f64> = (0..200).map(|i| (i * i) as f64 / 10.0).collect();
    let decimal = encode(&regular(&vals));
    vals[7] = f64::NAN;
    let xor = encode(&regular(&vals));
    let constant = encode(&regular(&[3.0; 50]));
    for enc in [&decimal, &xor, &constant] {
        for len in 0..enc.len() {
            assert!(
                decode(&enc[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing byte accepted");
        let mut newer = enc.clone();
        newer[0] = FORMAT_VERSION + 1;
        assert_eq!(
            decode(&newer),
            Err(CodecError::UnsupportedVersion(FORMAT_VERSION + 1))
        );
    }
    assert_eq!(decode(&[]), Err(CodecError::Truncated));
    // A count beyond the limit is rejected before anything is allocated.
    let mut huge = vec![FORMAT_VERSION];
    put_uvarint(&mut huge, MAX_CHUNK_SAMPLES as u64 + 1);
    assert!(matches!(decode(&huge), Err(CodecError::Corrupt(_))));
}

#[test]
fn decoder_yields_one_error_then_ends() {
    let enc = encode(&regular(&[1.5, 2.25, 7.0, 1e300]));
    let mut dec = Decoder::new(&enc[..enc.len() - 1]).unwrap();
    assert_eq!(dec.sample_count(), 4);
    let items: Vec<_> = dec.by_ref().collect();
    assert!(matches!(items.last(), Some(Err(_))));
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), 1);
    assert!(dec.next().is_none());
}

/// Strictly increasing timestamps: regular, jittered, with gaps, or anywhere in i64.
fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    let from_deltas = |start: i64, deltas: Vec<i64>| {
        std::iter::once(start)
            .chain(deltas.into_iter().scan(start, |t, d| {
                *t += d;
                Some(*t)
            }))
            .collect::<Vec<_>>()
    };
    let start = -(1i64 << 50)..(1i64 << 50);
    let k = n.saturating_sub(1);
    prop_oneof![
        (start.clone(), 1i64..100_000).prop_map(move |(s, step)| from_deltas(s, vec![step; k])),
        (start.clone(), prop::collection::vec(985i64..1015, k))
            .prop_map(move |(s, d)| from_deltas(s, d)),
        (
            start,
            prop::collection::vec(prop_oneof![9 => Just(15_000i64), 1 => 1i64..1 << 40], k)
        )
            .prop_map(move |(s, d)| from_deltas(s, d)),
        prop::collection::btree_set(any::<i64>(), n).prop_map(|s| s.into_iter().collect()),
    ]
}

fn decimal() -> impl Strategy<Value = f64> {
    (any::<i32>(), 0..=MAX_SCALE).prop_map(|(n, k)| f64::from(n) / POW10[k as usize])
}

fn special() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        (1u64..1 << 52).prop_map(f64::from_bits), // subnormals
        any::<u64>().prop_map(|p| f64::from_bits(0x7FF0_0000_0000_0001 | p)), // NaNs
    ]
}

fn samples_with(values: impl Strategy<Value = f64>) -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec(values, 0..300).prop_flat_map(|vals| {
        timestamps(vals.len()).prop_map(move |ts| ts.into_iter().zip(vals.clone()).collect())
    })
}

proptest! {
    #[test]
    fn any_bit_patterns_round_trip(s in samples_with(any::<u64>().prop_map(f64::from_bits))) {
        round_trip(&s);
    }

    #[test]
    fn decimals_round_trip(s in samples_with(decimal())) {
        round_trip(&s);
    }

    #[test]
    fn counters_round_trip(start in any::<i32>(), step in 0..5000i64, k in 0..=MAX_SCALE,
                           noise in prop::collection::vec(-3i64..4, 0..300)) {
        let ints = noise.iter().scan(i64::from(start), |n, e| { *n += step + e; Some(*n) });
        let vals: Vec<f64> = ints.map(|n| n as f64 / POW10[k as usize]).collect();
        round_trip(&regular(&vals));
    }

    #[test]
    fn mixed_round_trip(s in samples_with(prop_oneof![
        6 => decimal(),
        2 => special(),
        1 => any::<u64>().prop_map(f64::from_bits),
    ])) {
        round_trip(&s);
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        let _ = decode_range(&bytes, 0..1000);
    }

    #[test]
    fn bit_flips_never_panic(s in samples_with(decimal()), flip in any::<prop::sample::Index>(),
                             bit in 0..8u8) {
        let mut enc = encode(&s);
        let i = flip.index(enc.len());
        enc[i] ^= 1 << bit;
        let _ = decode(&enc);
    }
}
