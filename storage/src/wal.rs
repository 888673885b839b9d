//! The write-ahead log: numbered segment files `wal/NNNNNNNNNNNNNNNNNNNN.wal`.
//!
//! A segment is a sequence of records: payload length (u32 LE), checksum (low 32 bits of
//! the payload's xxh3-64, LE), payload. A payload is a type byte and a body:
//! - `1` series: series ID (u64 LE), canonical series key (the rest). Written before the
//!   first samples of a series that is not yet known to be durable, so replay can
//!   recreate it even if the index lost it.
//! - `2` samples: repeated { series ID (u64 LE), count (u32 LE), count × (timestamp i64
//!   LE, value bits u64 LE) }.
//!
//! Replay reads segments in order and stops reading a segment at the first record that
//! is truncated or fails its checksum (a write torn by a crash). Segments are deleted
//! once a flush has written everything they hold to blocks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::block::Sample;
use crate::error::StorageError;

const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;
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
    out.reserve(8 + 1 + 12 * runs.len() + 16 * samples.len());
    out.extend_from_slice(&[0u8; 8]);
    let start = out.len();
    out.push(REC_SAMPLES);
    let mut rest = samples;
    for &(id, n) in runs {
        let (run, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(run.len() as u32).to_le_bytes());
        for (t, v) in run {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
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
        REC_SAMPLES => {
            let mut rest = body;
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
            Some(Record::Samples(out))
        }
        _ => None,
    }
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
}
