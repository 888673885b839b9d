//! zstd for block columns: frames without content size, checksum or dictionary ID (the
//! block header stores the raw length and RocksDB checksums its own blocks), with one
//! compression and one decompression context per thread.

use std::cell::RefCell;

use zstd::bulk::{Compressor, Decompressor};
use zstd::zstd_safe::CParameter;

use crate::block::CodecError;
use crate::block::bits::varint_len;

/// Inputs shorter than this are never compressed: a zstd frame's own overhead (about a
/// dozen bytes with its literal table) cannot be won back.
const MIN_INPUT_BYTES: usize = 24;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `raw` compressed at zstd `level`, or `None` when compression fails or does not make
/// the input smaller by at least the varint that records the raw length.
pub(crate) fn compress(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    if raw.len() < MIN_INPUT_BYTES {
        return None;
    }
    let out = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut c = Compressor::new(level).ok()?;
            c.set_parameter(CParameter::ContentSizeFlag(false)).ok()?;
            c.set_parameter(CParameter::ChecksumFlag(false)).ok()?;
            c.set_parameter(CParameter::DictIdFlag(false)).ok()?;
            *slot = Some((level, c));
        }
        slot.as_mut()?.1.compress(raw).ok()
    })?;
    (out.len() + varint_len(raw.len() as u64) < raw.len()).then_some(out)
}

/// Decompresses a column made by [`compress`] that must expand to exactly `raw_len`
/// bytes. Errors: not a valid zstd frame, or another length.
pub(crate) fn decompress(stored: &[u8], raw_len: usize, what: &'static str) -> Result<Vec<u8>, CodecError> {
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Decompressor::new().ok();
        }
        slot.as_mut()?.decompress(stored, raw_len).ok()
    });
    match out {
        Some(v) if v.len() == raw_len => Ok(v),
        Some(_) => Err(CodecError::Corrupt(what, "decompressed length differs from the header")),
        None => Err(CodecError::Corrupt(what, "zstd decompression failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_only_when_it_pays_and_round_trips() {
        let zeros = vec![0u8; 4000];
        let c = compress(&zeros, 3).expect("4000 zero bytes compress");
        assert!(c.len() < 40, "{} bytes", c.len());
        assert_eq!(decompress(&c, zeros.len(), "values").expect("round trip"), zeros);
        assert!(decompress(&c, zeros.len() - 1, "values").is_err());
        assert!(decompress(&c[..c.len() - 1], zeros.len(), "values").is_err());
        assert_eq!(compress(&[1, 2, 3], 3), None);
        // 256 distinct bytes have nothing to squeeze.
        let distinct: Vec<u8> = (0..=255).collect();
        assert_eq!(compress(&distinct, 3), None);
    }
}
