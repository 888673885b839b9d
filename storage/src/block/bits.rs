//! Bit- and byte-level writers and readers for the block codec. Readers never panic:
//! running past the end of the input is a [`CodecError::Truncated`].

use crate::error::CodecError;

/// Appends bits most-significant first into a byte vector.
#[derive(Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits already used in the last byte (0 = start a new byte on the next bit).
    used: u8,
}

impl BitWriter {
    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    pub(crate) fn write_bits(&mut self, v: u64, n: u8) {
        let mut left = n;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let shift = left - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            left -= take;
        }
    }

    /// Writes one bit.
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// The bytes written; the last byte is padded with zero bits.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads bits written by [`BitWriter`].
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// Reads `n` bits (n ≤ 64). Errors: fewer than `n` bits remain.
    pub(crate) fn read_bits(&mut self, n: u8) -> Result<u64, CodecError> {
        if self.pos + usize::from(n) > self.bytes.len() * 8 {
            return Err(CodecError::Truncated("values"));
        }
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.pos / 8];
            let offset = (self.pos % 8) as u8;
            let avail = 8 - offset;
            let take = avail.min(left);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(chunk);
            self.pos += usize::from(take);
            left -= take;
        }
        Ok(out)
    }

    /// Reads one bit.
    pub(crate) fn read_bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Bits not yet read (including padding).
    pub(crate) fn remaining_bits(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-maps a signed integer so that small magnitudes give small varints.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads varints and fixed-size integers from a byte slice.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    /// `what` names the section in errors.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        ByteReader { bytes, pos: 0, what }
    }

    /// Reads an unsigned LEB128 varint. Errors: truncated, or longer than 10 bytes.
    pub(crate) fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut out = 0u64;
        for i in 0..10 {
            let b = *self.bytes.get(self.pos).ok_or(CodecError::Truncated(self.what))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(out);
            }
        }
        Err(CodecError::Corrupt(self.what, "varint longer than 10 bytes"))
    }

    /// Reads `n` raw bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError::Truncated(self.what))?;
        let s = self.bytes.get(self.pos..end).ok_or(CodecError::Truncated(self.what))?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a little-endian i64.
    pub(crate) fn i64_le(&mut self) -> Result<i64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_across_byte_boundaries() {
        let mut w = BitWriter::default();
        w.write_bits(0b101, 3);
        w.write_bits(u64::MAX, 64);
        w.write_bit(false);
        w.write_bits(0x1234, 13);
        let bytes = w.finish();
        assert_eq!(bytes.len(), (3 + 64 + 1 + 13_usize).div_ceil(8));
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_bits(3).expect("3"), 0b101);
        assert_eq!(r.read_bits(64).expect("64"), u64::MAX);
        assert!(!r.read_bit().expect("1"));
        assert_eq!(r.read_bits(13).expect("13"), 0x1234);
        assert!(r.read_bits(8).is_err());
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_codes() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        for v in [i64::MIN, i64::MAX, -12345, 987] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
