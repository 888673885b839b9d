//! Samples in the fixed-width form of `Series.samples_le` (`proto/proto/cairn_storage.proto`):
//! 16 bytes per sample, the timestamp (ms) as a little-endian i64, then the value's
//! IEEE 754 bits as a little-endian u64. Encoding and decoding are one pass with no work
//! per sample beyond a copy, and values travel bit-exactly (NaN payloads included).

/// Bytes per sample.
pub const SAMPLE_BYTES: usize = 16;

/// Appends `samples` (timestamp ms, value bits) to `out`.
pub fn append(out: &mut Vec<u8>, samples: &[(i64, u64)]) {
    out.reserve(samples.len() * SAMPLE_BYTES);
    for &(t, v) in samples {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Decodes `bytes` into timestamps (ms) and values. Errors: a length that is not a
/// multiple of [`SAMPLE_BYTES`].
pub fn decode(bytes: &[u8]) -> Result<(Vec<i64>, Vec<f64>), String> {
    if !bytes.len().is_multiple_of(SAMPLE_BYTES) {
        return Err(format!(
            "samples_le holds {} bytes, not a multiple of {SAMPLE_BYTES}",
            bytes.len()
        ));
    }
    let n = bytes.len() / SAMPLE_BYTES;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for s in bytes.chunks_exact(SAMPLE_BYTES) {
        let (t, v) = s.split_at(8);
        // `chunks_exact` gives 16 bytes: both halves are 8 bytes long.
        ts.push(i64::from_le_bytes(t.try_into().unwrap_or_default()));
        vs.push(f64::from_bits(u64::from_le_bytes(v.try_into().unwrap_or_default())));
    }
    Ok((ts, vs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bit_exactly() {
        let samples = [
            (-5, 1.5f64.to_bits()),
            (0, crate::STALE_NAN_BITS),
            (1_700_000_000_000, (-0.0f64).to_bits()),
            (i64::MAX, 0x7ff8_dead_beef_0001), // a NaN with a payload
            (i64::MIN, f64::NEG_INFINITY.to_bits()),
        ];
        let mut out = vec![9u8];
        append(&mut out, &samples);
        assert_eq!(out.len(), 1 + 5 * SAMPLE_BYTES);
        // By hand: -5 as a little-endian i64 is fb ff ff ff ff ff ff ff.
        assert_eq!(&out[1..9], &[0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let (ts, vs) = decode(&out[1..]).expect("decode");
        assert_eq!(ts, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        assert_eq!(vs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), samples.map(|s| s.1));
    }

    #[test]
    fn a_truncated_column_is_an_error() {
        let mut out = Vec::new();
        append(&mut out, &[(1, 2)]);
        out.pop();
        let err = decode(&out).expect_err("15 bytes");
        assert!(err.contains("15 bytes"), "{err}");
        assert_eq!(decode(&[]), Ok((vec![], vec![])));
    }
}
