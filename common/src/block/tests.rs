//! Block round trips, the choice of codings, and corrupt input.

use super::*;
use proptest::prelude::*;

const STALE: u64 = crate::STALE_NAN_BITS;

fn sorted(mut s: Vec<Sample>) -> Vec<Sample> {
    s.sort_by_key(|x| x.0);
    s
}

fn layout(s: &[Sample]) -> Layout {
    let enc = encode(s);
    let (back, layout) = decode_with_layout(&enc).expect("decodes");
    assert_eq!(back, s);
    assert_eq!(layout.header_bytes + layout.ts_bytes + layout.value_bytes, enc.len());
    layout
}

#[test]
fn empty_and_single_sample_blocks() {
    assert_eq!(decode(&encode(&[])).expect("empty"), Vec::<Sample>::new());
    assert_eq!(time_range(&encode(&[])).expect("range"), (0, 0));
    let one = vec![(-5, STALE)];
    let enc = encode(&one);
    assert_eq!(decode(&enc).expect("one"), one);
    assert_eq!(time_range(&enc).expect("range"), (-5, -5));
}

#[test]
fn a_regular_constant_series_is_only_a_header_and_one_value() {
    let s: Vec<Sample> = (0..3600)
        .map(|i| (1_795_262_409_060 + i * 1000, 1f64.to_bits()))
        .collect();
    let enc = encode(&s);
    // version, flags, count (2 bytes), first timestamp (zigzag of 1.8e12: 6 bytes), span
    // 3,599,000 ms (4 bytes), then the smallest value column: decimal places, order 0,
    // exception count, base (the mantissa 1, zigzag 2), width 0: 5 bytes.
    assert_eq!(enc.len(), 1 + 1 + 2 + 6 + 4 + 5, "{enc:?}");
    let l = layout(&s);
    assert_eq!((l.ts_coding, l.ts_bytes), (TsCoding::ConstantInterval, 0));
    assert_eq!(l.value_coding, ValueCoding::DecimalBits);
    assert_eq!(
        time_range(&enc).expect("range"),
        (1_795_262_409_060, 1_795_262_409_060 + 3_599_000)
    );
}

#[test]
fn a_constant_nan_series_uses_the_constant_coding() {
    let s: Vec<Sample> = (0..500).map(|i| (i * 1000, STALE)).collect();
    let l = layout(&s);
    assert_eq!((l.value_coding, l.value_bytes), (ValueCoding::Constant, 8));
}

#[test]
fn counters_use_decimal_and_random_bits_use_xor() {
    let mut v = 1_000.0f64;
    let counter: Vec<Sample> = (0..720)
        .map(|i| {
            v += f64::from((i * 37 % 11) as u8);
            (i * 1000, v.to_bits())
        })
        .collect();
    let l = layout(&counter);
    assert!(
        matches!(
            l.value_coding,
            ValueCoding::DecimalBits | ValueCoding::DecimalVarint | ValueCoding::DecimalRuns
        ),
        "{l:?}"
    );
    // Increments of 0..=10 fit 4 bits before zstd.
    assert!(l.value_bytes < 720 * 4 / 8 + 16, "{l:?}");
    let noise: Vec<Sample> = (0..720u64)
        .map(|i| (i as i64, i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 0x7ff0_0000_0000_0001))
        .collect();
    assert_eq!(layout(&noise).value_coding, ValueCoding::Xor);
}

#[test]
fn mostly_decimal_values_keep_special_values_as_exceptions() {
    let specials = [STALE, f64::NAN.to_bits(), (-0.0f64).to_bits(), f64::INFINITY.to_bits()];
    let s: Vec<Sample> = (0..400u64)
        .map(|i| {
            let v = if i % 100 == 7 {
                specials[(i / 100) as usize]
            } else {
                (i as f64 * 0.5).to_bits()
            };
            (i as i64 * 1000, v)
        })
        .collect();
    let l = layout(&s);
    assert!(
        matches!(
            l.value_coding,
            ValueCoding::DecimalBits | ValueCoding::DecimalVarint | ValueCoding::DecimalRuns
        ),
        "{l:?}"
    );
}

#[test]
fn jittered_timestamps_use_delta_of_delta() {
    let s: Vec<Sample> = (0..300).map(|i| (i * 15_000 + (i * 7919 % 5), 0)).collect();
    let l = layout(&s);
    assert_eq!(l.ts_coding, TsCoding::DeltaOfDelta);
}

#[test]
fn unsorted_input_is_sorted_and_duplicates_are_kept() {
    let s = vec![(30, 3), (10, 1), (20, 2), (10, 4)];
    assert_eq!(
        decode(&encode(&s)).expect("decodes"),
        vec![(10, 1), (10, 4), (20, 2), (30, 3)]
    );
}

#[test]
fn repetitive_blocks_are_compressed_and_round_trip() {
    let s: Vec<Sample> = (0..5000)
        .map(|i| (i * 1000, ((i % 7) as f64 + 0.1).to_bits()))
        .collect();
    let l = layout(&s);
    assert!(l.value_zstd, "zstd should pay off on a repeating pattern: {l:?}");
    // Unpacked, the same columns are stored as they are, and decode the same.
    let unpacked = encode_unpacked(&s);
    let (back, l) = decode_with_layout(&unpacked).expect("decodes");
    assert!(!l.value_zstd && !l.ts_zstd, "{l:?}");
    assert!(unpacked.len() > encode(&s).len());
    assert_eq!(back, s);
}

#[test]
fn every_truncation_and_bit_flip_is_an_error_or_a_valid_decode() {
    let cases: Vec<Vec<Sample>> = vec![
        (0..50)
            .map(|i| (1_000 + i * 15_000, (i as f64 * 1.5).to_bits()))
            .collect(),
        (0..50)
            .map(|i| (i * i, (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect(),
        (0..300)
            .map(|i| (i * 1000 + i % 3, ((i % 7) as f64).to_bits()))
            .collect(),
    ];
    for s in cases {
        let enc = encode(&s);
        for n in 0..enc.len() {
            assert!(decode(&enc[..n]).is_err(), "truncation at {n} must fail");
        }
        for i in 0..enc.len() * 8 {
            let mut b = enc.clone();
            b[i / 8] ^= 1 << (i % 8);
            let _ = decode(&b);
            let _ = time_range(&b);
        }
    }
}

#[test]
fn unknown_version_and_flags_are_errors() {
    let mut enc = encode(&[(1, 2)]);
    enc[0] = 2;
    assert_eq!(
        decode(&enc),
        Err(CodecError::Corrupt("header", "unknown format version"))
    );
    let mut enc = encode(&[(1, 2)]);
    enc[1] |= 0x80;
    assert!(decode(&enc).is_err());
}

fn special_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(STALE),
        Just(f64::NAN.to_bits()),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just((-0.0f64).to_bits()),
        Just(0),
        (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(m, d)| (m as f64 / 10f64.powi(d as i32)).to_bits()),
    ]
}

proptest! {
    #[test]
    fn round_trips_any_bits_and_times(s in proptest::collection::vec((any::<i64>(), special_bits()), 0..400)) {
        let s = sorted(s);
        prop_assert_eq!(decode(&encode(&s)).expect("decodes"), s.clone());
        prop_assert_eq!(decode(&encode_unpacked(&s)).expect("decodes unpacked"), s.clone());
        prop_assert_eq!(decode(&encode_quick(&s)).expect("decodes quick"), s);
    }

    #[test]
    fn round_trips_scrapes(start in -2_000_000_000_000i64..4_000_000_000_000,
                           steps in proptest::collection::vec(prop_oneof![Just(1000i64), 0i64..3000], 0..600),
                           values in proptest::collection::vec(special_bits(), 601)) {
        let mut t = start;
        let mut s = vec![(t, values[0])];
        for (i, d) in steps.into_iter().enumerate() {
            t += d;
            s.push((t, values[i + 1]));
        }
        prop_assert_eq!(decode(&encode(&s)).expect("decodes"), s);
    }

    #[test]
    fn round_trips_counters_and_gauges(start in -1e9f64..1e9, decimals in 0i32..8,
                                       steps in proptest::collection::vec(-1000i64..100_000, 1..800)) {
        let scale = 10f64.powi(decimals);
        let mut m = (start * scale).round() as i64;
        let s: Vec<Sample> = steps.iter().enumerate().map(|(i, d)| {
            m += d;
            (i as i64 * 1000, (m as f64 / scale).to_bits())
        }).collect();
        prop_assert_eq!(decode(&encode_quick(&s)).expect("decodes quick"), s.clone());
        prop_assert_eq!(decode(&encode(&s)).expect("decodes"), s);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        let _ = time_range(&bytes);
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(flags in 0u8..32, count in 0u64..5000,
                                                 rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut b = vec![VERSION, flags];
        put_uvarint(&mut b, count);
        put_uvarint(&mut b, zigzag(1_000));
        put_uvarint(&mut b, count.saturating_sub(1) * 1000);
        b.extend_from_slice(&rest);
        let _ = decode(&b);
    }
}
