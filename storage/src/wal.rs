//! The write-ahead log: numbered segment files `wal/NNNNNNNNNNNNNNNNNNNN.wal`.
//!
//! A segment is a sequence of records: payload length (u32 LE), checksum (low 32 bits of
//! the payload's xxh3-64, LE), payload. A payload is a type byte and a body:
//! - `1` series: series ID (u64 LE), canonical series key (the rest). Written before the
//!   first samples of a series that is not yet known to be durable, so replay can
//!   recreate it even if the index lost it.
//! - `3` samples: repeated { series ID (uvarint), count (uvarint), count × (timestamp
//!   (zigzag varint of its difference from the record's previous timestamp, the first
//!   from 0), value bits (u64 LE)) }. Varints are unsigned LEB128, as in protobuf. A
//!   remote-write batch holds one sample per series at nearly one timestamp, so a sample
//!   takes about 12 bytes: 2–3 for the series ID, 1 for the count, 1 for the timestamp,
//!   8 for the value.
//! - `2` samples, the layout before `3` (still replayed, no longer written): repeated
//!   { series ID (u64 LE), count (u32 LE), count × (timestamp i64 LE, value bits u64
//!   LE) }: 28 bytes for a run of one sample.
//!
//! Replay reads segments in order and stops reading a segment at the first record that
//! is truncated or fails its checksum (a write torn by a crash). Segments are deleted
//! once a flush has written everything they hold to blocks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_common::block::{unzigzag, zigzag};
use prost::encoding::{decode_varint, encode_varint};

use crate::block::Sample;
use crate::error::StorageError;

const REC_SERIES: u8 = 1;
/// Samples with fixed-width fields, written before [`REC_SAMPLES_VARINT`].
const REC_SAMPLES_FIXED: u8 = 2;
const REC_SAMPLES_VARINT: u8 = 3;
/// Fewest bytes of a sample in a [`REC_SAMPLES_VARINT`] record: a one-byte timestamp
/// difference and the 8-byte value. Bounds a count read from the record.
const MIN_VARINT_SAMPLE_BYTES: usize = 9;
/// Largest record replay accepts (a guard against a corrupt length).
const MAX_RECORD_BYTES: usize = 1 << 30;

/// One decoded WAL record.
#[derive(Debug, PartialEq)]
pub(crate) enum Record {
    /// A series: ID and canonical key.
    Series(u64, Vec<u8>),
    /// Samples per series ID.
    Samples(Vec<(u64, Vec<Sample>)>),
}

fn frame(out: &mut [u8], payload_start: usize) {
    let len = (out.len() - payload_start) as u32;
    let sum = xxhash_rust::xxh3::xxh3_64(&out[payload_start..]) as u32;
    out[payload_start - 8..payload_start - 4].copy_from_slice(&len.to_le_bytes());
    out[payload_start - 4..payload_start].copy_from_slice(&sum.to_le_bytes());
}

/// Appends a framed series record to `out`.
pub(crate) fn encode_series(out: &mut Vec<u8>, id: u64, key: &[u8]) {
    out.extend_from_slice(&[0u8; 8]);
    let start = out.len();
    out.push(REC_SERIES);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(key);
    frame(out, start);
}

/// Appends a framed samples record to `out`: `runs` lists (series ID, number of
/// samples) in order, and `samples` holds those samples one run after the other (its
/// length is the sum of the counts).
pub(crate) fn encode_samples(out: &mut Vec<u8>, runs: &[(u64, usize)], samples: &[Sample]) {
    debug_assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), samples.len());
    // At most 10 bytes per varint: ID and count per run, timestamp per sample.
    out.reserve(8 + 1 + 20 * runs.len() + 18 * samples.len());
    out.extend_from_slice(&[0u8; 8]);
    let start = out.len();
    out.push(REC_SAMPLES_VARINT);
    let mut rest = samples;
    let mut prev_ts = 0i64;
    for &(id, n) in runs {
        let (run, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        encode_varint(id, out);
        encode_varint(run.len() as u64, out);
        for &(t, v) in run {
            encode_varint(zigzag(t.wrapping_sub(prev_ts)), out);
            out.extend_from_slice(&v.to_le_bytes());
            prev_ts = t;
        }
    }
    frame(out, start);
}

fn le_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let (&kind, body) = p.split_first()?;
    match kind {
        REC_SERIES => Some(Record::Series(le_u64(body)?, body.get(8..)?.to_vec())),
        REC_SAMPLES_VARINT => decode_varint_samples(body).map(Record::Samples),
        REC_SAMPLES_FIXED => decode_fixed_samples(body).map(Record::Samples),
        _ => None,
    }
}

fn decode_varint_samples(mut rest: &[u8]) -> Option<Vec<(u64, Vec<Sample>)>> {
    let mut out = Vec::new();
    let mut prev_ts = 0i64;
    while !rest.is_empty() {
        let id = decode_varint(&mut rest).ok()?;
        let n = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
        if n > rest.len() / MIN_VARINT_SAMPLE_BYTES {
            return None;
        }
        let mut run = Vec::with_capacity(n);
        for _ in 0..n {
            let t = prev_ts.wrapping_add(unzigzag(decode_varint(&mut rest).ok()?));
            let v = le_u64(rest)?;
            rest = &rest[8..];
            run.push((t, v));
            prev_ts = t;
        }
        out.push((id, run));
    }
    Some(out)
}

fn decode_fixed_samples(mut rest: &[u8]) -> Option<Vec<(u64, Vec<Sample>)>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let id = le_u64(rest)?;
        let n = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
        let data = rest.get(12..12 + n.checked_mul(16)?)?;
        let s = data
            .chunks_exact(16)
            .map(|c| Some((le_u64(c)? as i64, le_u64(&c[8..])?)))
            .collect::<Option<Vec<Sample>>>()?;
        out.push((id, s));
        rest = &rest[12 + n * 16..];
    }
    Some(out)
}

/// Decodes the records of one segment's bytes. Returns the records before the first
/// damaged one and whether damage was found.
pub(crate) fn decode_segment(bytes: &[u8]) -> (Vec<Record>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 8) else {
            return (out, true);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let sum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD_BYTES {
            return (out, true);
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            return (out, true);
        };
        if xxhash_rust::xxh3::xxh3_64(payload) as u32 != sum {
            return (out, true);
        }
        match decode_payload(payload) {
            Some(r) => out.push(r),
            None => return (out, true),
        }
        pos += 8 + len;
    }
    (out, false)
}

/// Path of segment `n` in `dir`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.wal"))
}

/// The segment numbers in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let rd = fs::read_dir(dir).map_err(|e| StorageError::io(format!("list WAL directory {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| StorageError::io(format!("list WAL directory {}", dir.display()), e))?;
        let name = entry.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".wal"))
            .and_then(|s| s.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Deletes the segments numbered below `n`.
pub(crate) fn delete_segments_before(dir: &Path, n: u64) -> Result<usize, StorageError> {
    let mut deleted = 0;
    for s in list_segments(dir)?.into_iter().filter(|&s| s < n) {
        let p = segment_path(dir, s);
        fs::remove_file(&p).map_err(|e| StorageError::io(format!("delete WAL segment {}", p.display()), e))?;
        deleted += 1;
    }
    Ok(deleted)
}

/// The segment being appended to.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    number: u64,
    file: File,
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("fsync directory {}", dir.display()), e))
}

impl SegmentWriter {
    /// Creates segment `number` in `dir` (which must exist).
    pub(crate) fn create(dir: &Path, number: u64) -> Result<Self, StorageError> {
        let path = segment_path(dir, number);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("create WAL segment {}", path.display()), e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            number,
            file,
        })
    }

    /// Appends framed records; fsyncs when `sync`.
    pub(crate) fn append(&mut self, bytes: &[u8], sync: bool) -> Result<(), StorageError> {
        self.file
            .write_all(bytes)
            .map_err(|e| StorageError::io(format!("append to WAL segment {}", self.number), e))?;
        if sync {
            self.file
                .sync_data()
                .map_err(|e| StorageError::io(format!("fsync WAL segment {}", self.number), e))?;
        }
        Ok(())
    }

    /// Syncs this segment and starts the next one; returns the new segment's number.
    pub(crate) fn rotate(&mut self) -> Result<u64, StorageError> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(format!("fsync WAL segment {}", self.number), e))?;
        *self = SegmentWriter::create(&self.dir, self.number + 1)?;
        Ok(self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_detected() {
        let mut buf = Vec::new();
        encode_series(&mut buf, 7, b"key");
        encode_samples(&mut buf, &[(7, 2), (8, 0)], &[(1, 2), (-3, u64::MAX)]);
        let whole = decode_segment(&buf);
        assert_eq!(
            whole,
            (
                vec![
                    Record::Series(7, b"key".to_vec()),
                    Record::Samples(vec![(7, vec![(1, 2), (-3, u64::MAX)]), (8, vec![])]),
                ],
                false
            )
        );
        let (recs, damaged) = decode_segment(&buf[..buf.len() - 3]);
        assert_eq!(recs.len(), 1);
        assert!(damaged);
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(decode_segment(&flipped).0.len(), 1);
    }

    /// A samples record in the fixed-width layout, as builds before the varint layout
    /// wrote it, byte by byte.
    fn fixed_layout_record(runs: &[(u64, &[Sample])]) -> Vec<u8> {
        let mut out = vec![0u8; 8];
        out.push(REC_SAMPLES_FIXED);
        for (id, run) in runs {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(run.len() as u32).to_le_bytes());
            for (t, v) in run.iter() {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        frame(&mut out, 8);
        out
    }

    #[test]
    fn segments_written_in_the_fixed_layout_still_replay() {
        let a: [Sample; 2] = [
            (1_700_000_000_000, 1.5f64.to_bits()),
            (1_700_000_001_000, 0x7ff0_0000_0000_0002),
        ];
        let b: [Sample; 1] = [(-5, 0)];
        let mut buf = Vec::new();
        encode_series(&mut buf, 3, b"k");
        buf.extend(fixed_layout_record(&[(3, &a), (9, &b)]));
        encode_samples(&mut buf, &[(3, 1)], &[(1_700_000_002_000, 2.0f64.to_bits())]);
        assert_eq!(
            decode_segment(&buf),
            (
                vec![
                    Record::Series(3, b"k".to_vec()),
                    Record::Samples(vec![(3, a.to_vec()), (9, b.to_vec())]),
                    Record::Samples(vec![(3, vec![(1_700_000_002_000, 2.0f64.to_bits())])]),
                ],
                false
            )
        );
    }

    #[test]
    fn a_batch_of_one_sample_per_series_takes_about_twelve_bytes_a_sample() {
        // 1,000 series (IDs 10,000–10,999), one sample each at one timestamp, as a
        // remote-write batch reaches a node.
        let runs: Vec<(u64, usize)> = (10_000..11_000).map(|id| (id, 1)).collect();
        let samples: Vec<Sample> = (0..1_000u64)
            .map(|i| (1_800_000_000_000, (i as f64).to_bits()))
            .collect();
        let mut buf = Vec::new();
        encode_samples(&mut buf, &runs, &samples);
        // Frame 8 + type 1 + first timestamp 6; per sample: ID 2, count 1, timestamp
        // difference 1 (0), value 8.
        assert_eq!(buf.len(), 8 + 1 + 6 - 1 + 1_000 * 12);
        assert_eq!(
            decode_segment(&buf).0,
            vec![Record::Samples(
                runs.iter()
                    .map(|&(id, _)| id)
                    .zip(samples.iter().map(|&s| vec![s]))
                    .collect()
            )]
        );
    }

    #[test]
    fn a_count_larger_than_the_record_is_damage() {
        let mut out = vec![0u8; 8];
        out.push(REC_SAMPLES_VARINT);
        encode_varint(1, &mut out);
        encode_varint(u64::MAX, &mut out);
        out.extend_from_slice(&[0u8; 9]);
        frame(&mut out, 8);
        assert_eq!(decode_segment(&out), (vec![], true));
    }

    proptest! {
        /// Any runs of any timestamps (out of order, duplicate, extreme) and any value
        /// bits (NaN payloads, staleness markers, ±Inf, -0.0) round-trip bit-exact.
        #[test]
        fn samples_records_round_trip(
            runs in proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec((any::<i64>(), any::<u64>()), 0..20)),
                0..20,
            ),
            specials in proptest::collection::vec(
                prop::sample::select(vec![
                    0x7ff0_0000_0000_0002u64, // Prometheus' staleness marker
                    f64::NAN.to_bits(),
                    0xfff8_0000_dead_beef,
                    f64::INFINITY.to_bits(),
                    f64::NEG_INFINITY.to_bits(),
                    (-0.0f64).to_bits(),
                ]),
                0..6,
            ),
        ) {
            let mut runs = runs;
            if let Some((_, first)) = runs.first_mut() {
                first.extend(specials.iter().map(|&v| (i64::MIN, v)));
            }
            let index: Vec<(u64, usize)> = runs.iter().map(|(id, s)| (*id, s.len())).collect();
            let flat: Vec<Sample> = runs.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            let mut buf = Vec::new();
            encode_samples(&mut buf, &index, &flat);
            let (recs, damaged) = decode_segment(&buf);
            prop_assert!(!damaged);
            prop_assert_eq!(recs, vec![Record::Samples(runs)]);
        }
    }
}
