//! A block: the samples of one series within one partition, compressed.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, 1 |
//! | 1 | flags: bit 0 set = payload is zstd-compressed |
//! | 8 | first (smallest) timestamp, ms |
//! | 8 | last (largest) timestamp, ms |
//! | varint | sample count |
//! | varint | payload length before compression |
//! | rest | payload: varint length of the timestamp column, the timestamp column ([`timestamps`]), the value column ([`values`]) |
//!
//! Samples in a block are sorted by timestamp with unique timestamps. zstd is applied only
//! when it makes the payload smaller. A corrupted block decodes to a [`CodecError`],
//! never a panic.

pub(crate) mod bits;
pub(crate) mod timestamps;
pub(crate) mod values;

use crate::error::CodecError;
use bits::{ByteReader, put_uvarint};

const VERSION: u8 = 1;
const FLAG_ZSTD: u8 = 1;
/// zstd level: fast; blocks are small and written on the flush path.
const ZSTD_LEVEL: i32 = 1;
/// Largest payload a block may claim before compression (guards decompression).
const MAX_PAYLOAD_BYTES: u64 = 256 << 20;

/// One sample: timestamp in ms and the value's IEEE 754 bits.
pub type Sample = (i64, u64);

/// Encodes samples already sorted by timestamp with unique timestamps.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    let vs: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let mut payload = Vec::with_capacity(samples.len() * 3 + 16);
    let mut ts_bytes = Vec::with_capacity(samples.len() * 2 + 16);
    timestamps::encode(&ts, &mut ts_bytes);
    put_uvarint(&mut payload, ts_bytes.len() as u64);
    payload.extend_from_slice(&ts_bytes);
    payload.extend_from_slice(&values::encode(&vs));

    let mut out = Vec::with_capacity(payload.len() + 32);
    let compressed = zstd::bulk::compress(&payload, ZSTD_LEVEL)
        .ok()
        .filter(|c| c.len() < payload.len());
    out.push(VERSION);
    out.push(if compressed.is_some() { FLAG_ZSTD } else { 0 });
    out.extend_from_slice(&ts.first().copied().unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&ts.last().copied().unwrap_or(0).to_le_bytes());
    put_uvarint(&mut out, samples.len() as u64);
    put_uvarint(&mut out, payload.len() as u64);
    out.extend_from_slice(compressed.as_deref().unwrap_or(&payload));
    out
}

/// The first and last timestamps (ms) of an encoded block, read from its header only.
pub fn time_range(block: &[u8]) -> Result<(i64, i64), CodecError> {
    let mut r = ByteReader::new(block, "header");
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(CodecError::Corrupt("header", "unknown format version"));
    }
    r.take(1)?;
    Ok((r.i64_le()?, r.i64_le()?))
}

/// Decodes a block made by [`encode`]. Errors: any inconsistency (truncation, bad
/// version, counts that do not match the columns, timestamps out of order).
pub fn decode(block: &[u8]) -> Result<Vec<Sample>, CodecError> {
    let mut r = ByteReader::new(block, "header");
    if r.take(1)?[0] != VERSION {
        return Err(CodecError::Corrupt("header", "unknown format version"));
    }
    let flags = r.take(1)?[0];
    let first = r.i64_le()?;
    let last = r.i64_le()?;
    let count = usize::try_from(r.uvarint()?).map_err(|_| CodecError::Corrupt("header", "count too large"))?;
    let raw_len = r.uvarint()?;
    if raw_len > MAX_PAYLOAD_BYTES {
        return Err(CodecError::Corrupt("header", "payload length too large"));
    }
    let decompressed;
    let payload: &[u8] = if flags & FLAG_ZSTD != 0 {
        decompressed = zstd::bulk::decompress(r.rest(), raw_len as usize)
            .map_err(|_| CodecError::Corrupt("payload", "zstd decompression failed"))?;
        &decompressed
    } else {
        r.rest()
    };
    if payload.len() as u64 != raw_len {
        return Err(CodecError::Corrupt("payload", "length differs from header"));
    }
    let mut p = ByteReader::new(payload, "payload");
    let ts_len = usize::try_from(p.uvarint()?).map_err(|_| CodecError::Corrupt("payload", "bad length"))?;
    let ts = timestamps::decode(p.take(ts_len)?, count)?;
    let vs = values::decode(p.rest(), count)?;
    if count > 0 && (ts[0] != first || ts[count - 1] != last) {
        return Err(CodecError::Corrupt("header", "time range differs from the samples"));
    }
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(CodecError::Corrupt("timestamps", "not strictly increasing"));
    }
    Ok(ts.into_iter().zip(vs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_unique(mut s: Vec<Sample>) -> Vec<Sample> {
        s.sort_by_key(|x| x.0);
        s.dedup_by_key(|x| x.0);
        s
    }

    #[test]
    fn empty_and_single_sample_blocks() {
        assert_eq!(decode(&encode(&[])).expect("empty"), Vec::<Sample>::new());
        let one = vec![(-5, cairn_common::STALE_NAN_BITS)];
        let enc = encode(&one);
        assert_eq!(decode(&enc).expect("one"), one);
        assert_eq!(time_range(&enc).expect("range"), (-5, -5));
    }

    #[test]
    fn repetitive_blocks_are_compressed_and_round_trip() {
        let s: Vec<Sample> = (0..5000).map(|i| (i * 1000, ((i % 7) as f64).to_bits())).collect();
        let enc = encode(&s);
        assert_eq!(
            enc[1] & FLAG_ZSTD,
            FLAG_ZSTD,
            "zstd should pay off on a repeating pattern"
        );
        assert_eq!(decode(&enc).expect("decodes"), s);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_valid_decode() {
        let s: Vec<Sample> = (0..50)
            .map(|i| (1_000 + i * 15_000, (i as f64 * 1.5).to_bits()))
            .collect();
        let enc = encode(&s);
        for n in 0..enc.len() {
            assert!(decode(&enc[..n]).is_err(), "truncation at {n} must fail");
        }
        for i in 0..enc.len() * 8 {
            let mut b = enc.clone();
            b[i / 8] ^= 1 << (i % 8);
            let _ = decode(&b);
        }
    }

    proptest! {
        #[test]
        fn round_trips(s in proptest::collection::vec((any::<i64>(), any::<u64>()), 0..400)) {
            let s = sorted_unique(s);
            prop_assert_eq!(decode(&encode(&s)).expect("decodes"), s);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
