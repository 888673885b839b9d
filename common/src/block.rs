//! A block: the samples of one series within one partition, compressed.
//!
//! Layout, format version 1 (varints are unsigned LEB128; "zigzag" maps signed to
//! unsigned as in protobuf):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, 1 |
//! | 1 | flags: bits 0–1 timestamp coding ([`TsCoding`]), bit 2 timestamp column zstd, bits 3–5 value coding ([`ValueCoding`]), bit 6 value column zstd; bit 7 zero |
//! | varint | sample count |
//! | zigzag varint | first (smallest) timestamp, ms |
//! | varint | span: last − first timestamp, ms (wrapping u64) |
//! | | unless the timestamp coding is a constant interval: varint stored length, then (if zstd) varint raw length, then the column ([`timestamps`]) |
//! | | value column to the end: (if zstd) varint raw length, then the column ([`values`]) |
//!
//! A regular series (equal steps) has an empty timestamp column. Both codings are chosen
//! per block: every candidate that applies (timestamps: delta-of-delta or grid offsets;
//! values: constant, Gorilla XOR, decimal mantissas as varints, bit-packed or sparse
//! runs) is encoded, zstd is tried on the two with the fewest raw bytes and kept where
//! it makes the column smaller, and the smallest result is kept.
//!
//! Samples in a block are sorted by timestamp; equal timestamps are allowed and keep
//! their order. A corrupted block decodes to a [`CodecError`], never a panic.

pub(crate) mod bits;
mod compress;
pub mod read;
pub mod timestamps;
pub mod values;

use bits::{ByteReader, put_uvarint};
pub use bits::{unzigzag, zigzag};
pub use timestamps::TsCoding;
pub use values::ValueCoding;

/// A block that cannot be decoded: `.0` names the section (header, timestamps, values,
/// payload), `.1` (for `Corrupt`) what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end before the section does.
    #[error("block {0} section is truncated")]
    Truncated(&'static str),
    /// The bytes are inconsistent.
    #[error("block {0} section is corrupt: {1}")]
    Corrupt(&'static str, &'static str),
}

const VERSION: u8 = 1;
const TS_ZSTD: u8 = 1 << 2;
const VALUES_ZSTD: u8 = 1 << 6;
const UNUSED_FLAGS: u8 = 1 << 7;
/// zstd level for block columns, chosen by measurement on real scrape data (see
/// `benches/codec.rs`).
pub const ZSTD_LEVEL: i32 = 3;
/// Most samples a block may hold: a corrupt count cannot make a decode allocate more.
pub const MAX_SAMPLES: usize = 1 << 22;
/// Largest column a block may claim before compression (guards decompression).
const MAX_RAW_COLUMN_BYTES: u64 = 256 << 20;

/// One sample: timestamp in ms and the value's IEEE 754 bits.
pub type Sample = (i64, u64);

/// Encodes samples (at most [`MAX_SAMPLES`]) at the default zstd level. Samples not
/// sorted by timestamp are sorted first (stably).
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    encode_with_level(samples, ZSTD_LEVEL)
}

/// [`encode`] with zstd `level` (1..=22): for measuring the level.
pub fn encode_with_level(samples: &[Sample], level: i32) -> Vec<u8> {
    encode_columns(samples, Some(level))
}

/// [`encode`] without zstd on the columns: the smallest coding of each column, stored
/// as it is. For blocks written to a partition, whose SST blocks RocksDB compresses with
/// zstd over many neighbouring blocks at once: identical timestamp columns and alike
/// value columns of other series are then in the same window, which beats compressing
/// each column alone (`storage/src/db.rs`), and encoding skips the zstd trials.
pub fn encode_unpacked(samples: &[Sample]) -> Vec<u8> {
    encode_columns(samples, None)
}

/// [`encode_unpacked`] with fewer value codings tried: constant, else decimal mantissas
/// as varints, else Gorilla XOR. For short-lived blocks, such as the head's chunks,
/// which a flush decodes and encodes again: about a third of the encoding time, for a
/// few more bytes.
pub fn encode_quick(samples: &[Sample]) -> Vec<u8> {
    encode_with(samples, None, values::quick_candidates)
}

/// Encodes with zstd at `level` tried on the columns, or none.
fn encode_columns(samples: &[Sample], level: Option<i32>) -> Vec<u8> {
    encode_with(samples, level, values::candidates)
}

/// A function giving the value codings to try for a column: (coding, column bytes).
type ValueCandidates = fn(&[u64]) -> Vec<(ValueCoding, Vec<u8>)>;

/// Encodes with the value codings `value_candidates` gives and zstd at `level` tried on
/// the columns, or none.
fn encode_with(samples: &[Sample], level: Option<i32>, value_candidates: ValueCandidates) -> Vec<u8> {
    debug_assert!(samples.len() <= MAX_SAMPLES, "block over MAX_SAMPLES");
    let sorted;
    let samples = if samples.windows(2).all(|w| w[0].0 <= w[1].0) {
        samples
    } else {
        let mut s = samples.to_vec();
        s.sort_by_key(|x| x.0);
        sorted = s;
        &sorted
    };
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    let vs: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let first = ts.first().copied().unwrap_or(0);
    let span = ts.last().copied().unwrap_or(0).wrapping_sub(first) as u64;

    let (ts_coding, ts_packed, ts_raw) = smallest(timestamps::candidates(&ts), level);
    let (v_coding, v_packed, v_raw) = smallest(value_candidates(&vs), level);

    let mut flags = ts_coding as u8 | (v_coding as u8) << 3;
    if ts_packed.is_some() {
        flags |= TS_ZSTD;
    }
    if v_packed.is_some() {
        flags |= VALUES_ZSTD;
    }
    let mut out = Vec::with_capacity(24 + ts_raw.len() + v_raw.len());
    out.push(VERSION);
    out.push(flags);
    put_uvarint(&mut out, samples.len() as u64);
    put_uvarint(&mut out, zigzag(first));
    put_uvarint(&mut out, span);
    if ts_coding != TsCoding::ConstantInterval {
        match &ts_packed {
            Some(p) => {
                put_uvarint(&mut out, p.len() as u64);
                put_uvarint(&mut out, ts_raw.len() as u64);
                out.extend_from_slice(p);
            }
            None => {
                put_uvarint(&mut out, ts_raw.len() as u64);
                out.extend_from_slice(&ts_raw);
            }
        }
    }
    match &v_packed {
        Some(p) => {
            put_uvarint(&mut out, v_raw.len() as u64);
            out.extend_from_slice(p);
        }
        None => out.extend_from_slice(&v_raw),
    }
    out
}

/// Candidates (of each column) that get a zstd trial: the ones with the fewest raw
/// bytes. zstd rarely reorders candidates whose raw sizes differ much: trying only these
/// costs the corpus 0.3% in bytes against trying every candidate, at less than half the
/// encoding time (see `benches/codec.rs`).
const ZSTD_TRIALS: usize = 2;

/// The candidate column (coding, bytes) that takes the fewest bytes in the block, with
/// its zstd-compressed form (at `level`; none without) when that is smaller (then
/// counting its raw-length varint). Only the [`ZSTD_TRIALS`] candidates with the fewest
/// raw bytes are compressed. The
/// candidate lists are never empty; for an empty one this is the default (empty) coding.
fn smallest<C: Default>(mut candidates: Vec<(C, Vec<u8>)>, level: Option<i32>) -> (C, Option<Vec<u8>>, Vec<u8>) {
    // Stable: among equal raw sizes the candidates' own order (their preference) holds.
    candidates.sort_by_key(|c| c.1.len());
    let mut best = (C::default(), None, Vec::new());
    let mut best_len = usize::MAX;
    for (i, (coding, raw)) in candidates.into_iter().enumerate() {
        if i >= ZSTD_TRIALS && raw.len() >= best_len {
            break;
        }
        let packed = match level {
            Some(level) if i < ZSTD_TRIALS => compress::compress(&raw, level),
            _ => None,
        };
        let len = packed
            .as_ref()
            .map_or(raw.len(), |p| p.len() + bits::varint_len(raw.len() as u64));
        if len < best_len {
            best_len = len;
            best = (coding, packed, raw);
        }
    }
    best
}

/// The parsed fixed part of a block.
struct Header {
    flags: u8,
    count: usize,
    first: i64,
    span: u64,
}

fn read_header(r: &mut ByteReader<'_>) -> Result<Header, CodecError> {
    if r.take(1)?[0] != VERSION {
        return Err(CodecError::Corrupt("header", "unknown format version"));
    }
    let flags = r.take(1)?[0];
    if flags & UNUSED_FLAGS != 0 {
        return Err(CodecError::Corrupt("header", "unknown flags"));
    }
    let count = r.uvarint()?;
    if count > MAX_SAMPLES as u64 {
        return Err(CodecError::Corrupt("header", "sample count over the limit"));
    }
    let first = unzigzag(r.uvarint()?);
    let span = r.uvarint()?;
    if count == 0 && (first != 0 || span != 0) || count == 1 && span != 0 {
        return Err(CodecError::Corrupt("header", "span does not fit the count"));
    }
    Ok(Header {
        flags,
        count: count as usize,
        first,
        span,
    })
}

/// The first and last timestamps (ms) of an encoded block, read from its header only
/// (`(0, 0)` for an empty block). Errors: truncated or corrupt header.
pub fn time_range(block: &[u8]) -> Result<(i64, i64), CodecError> {
    summary(block).map(|(_, first, last)| (first, last))
}

/// The sample count and the first and last timestamps (ms) of an encoded block, read
/// from its header only. Errors: truncated or corrupt header.
pub fn summary(block: &[u8]) -> Result<(usize, i64, i64), CodecError> {
    let h = read_header(&mut ByteReader::new(block, "header"))?;
    Ok((h.count, h.first, h.first.wrapping_add(h.span as i64)))
}

/// Reads a column: stored bytes, decompressed when `zstd` (raw length first).
fn read_column<'a>(
    r: &mut ByteReader<'a>,
    stored_len: Option<usize>,
    zstd: bool,
    what: &'static str,
) -> Result<std::borrow::Cow<'a, [u8]>, CodecError> {
    if !zstd {
        return Ok(match stored_len {
            Some(n) => r.take(n)?.into(),
            None => r.take(r.remaining())?.into(),
        });
    }
    let raw_len = r.uvarint()?;
    if raw_len > MAX_RAW_COLUMN_BYTES {
        return Err(CodecError::Corrupt(what, "column length too large"));
    }
    let stored = match stored_len {
        Some(n) => r.take(n)?,
        None => r.take(r.remaining())?,
    };
    Ok(compress::decompress(stored, raw_len as usize, what)?.into())
}

/// The parts of a block: where its bytes go and which codings it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Samples in the block.
    pub samples: usize,
    /// Bytes of the fixed header (version, flags, count, first timestamp, span).
    pub header_bytes: usize,
    /// Timestamp coding.
    pub ts_coding: TsCoding,
    /// Timestamp column bytes as stored (lengths included; 0 for a constant interval).
    pub ts_bytes: usize,
    /// Whether the timestamp column is zstd-compressed.
    pub ts_zstd: bool,
    /// Value coding.
    pub value_coding: ValueCoding,
    /// Value column bytes as stored (raw length included when compressed).
    pub value_bytes: usize,
    /// Whether the value column is zstd-compressed.
    pub value_zstd: bool,
    /// Whether the timestamps strictly increase (no two samples share one; they are
    /// always sorted).
    pub unique_timestamps: bool,
}

/// Decodes a block made by [`encode`] into samples sorted by timestamp, with its layout.
/// Errors: any inconsistency (truncation, bad version or flags, counts that do not match
/// the columns, a time range that differs from the samples, timestamps out of order).
pub fn decode_with_layout(block: &[u8]) -> Result<(Vec<Sample>, Layout), CodecError> {
    let (ts, vs, layout) = decode_columns(block)?;
    Ok((ts.into_iter().zip(vs).collect(), layout))
}

/// Decodes a block made by [`encode`] into its timestamp column (ms, ascending) and its
/// value column (IEEE 754 bits), with its layout. Errors: as [`decode_with_layout`].
pub fn decode_columns(block: &[u8]) -> Result<(Vec<i64>, Vec<u64>, Layout), CodecError> {
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let layout = decode_columns_into(block, &mut ts, &mut vs)?;
    Ok((ts, vs, layout))
}

/// [`decode_columns`] into `ts` and `vs`, which are cleared first: a reader of many
/// blocks reuses their capacity. Errors: as [`decode_with_layout`].
pub fn decode_columns_into(block: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<u64>) -> Result<Layout, CodecError> {
    let mut r = ByteReader::new(block, "header");
    let h = read_header(&mut r)?;
    let header_bytes = block.len() - r.remaining();
    let ts_coding = TsCoding::from_bits(h.flags & 0b11)?;
    let value_coding = ValueCoding::from_bits((h.flags >> 3) & 0b111)?;
    let ts_zstd = h.flags & TS_ZSTD != 0;
    let value_zstd = h.flags & VALUES_ZSTD != 0;
    let ts_col = match ts_coding {
        TsCoding::ConstantInterval if ts_zstd => {
            return Err(CodecError::Corrupt("header", "zstd flag on an empty column"));
        }
        TsCoding::ConstantInterval => Default::default(),
        TsCoding::DeltaOfDelta | TsCoding::Grid => {
            let n = usize::try_from(r.uvarint()?).map_err(|_| CodecError::Corrupt("header", "bad length"))?;
            read_column(&mut r, Some(n), ts_zstd, "timestamps")?
        }
    };
    let ts_bytes = block.len() - r.remaining() - header_bytes;
    let value_bytes = r.remaining();
    let v_col = read_column(&mut r, None, value_zstd, "values")?;
    timestamps::decode_into(ts_coding, &ts_col, h.first, h.span, h.count, ts)?;
    values::decode_into(value_coding, &v_col, h.count, vs)?;
    if ts.last().is_some_and(|&l| l != h.first.wrapping_add(h.span as i64)) {
        return Err(CodecError::Corrupt("header", "time range differs from the samples"));
    }
    // One pass in the usual case: strictly increasing is sorted too.
    let unique_timestamps = crate::scan::strictly_increasing(ts);
    if !unique_timestamps && !crate::scan::non_decreasing(ts) {
        return Err(CodecError::Corrupt("timestamps", "not sorted"));
    }
    Ok(Layout {
        samples: h.count,
        header_bytes,
        ts_coding,
        ts_bytes,
        ts_zstd,
        value_coding,
        value_bytes,
        value_zstd,
        unique_timestamps,
    })
}

/// Decodes a block made by [`encode`]. Errors: as [`decode_with_layout`].
pub fn decode(block: &[u8]) -> Result<Vec<Sample>, CodecError> {
    decode_with_layout(block).map(|(s, _)| s)
}

#[cfg(test)]
mod tests;
