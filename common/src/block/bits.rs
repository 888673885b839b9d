//! Bit- and byte-level writers and readers for the block codec. Readers never panic:
//! running past the end of the input is a [`CodecError::Truncated`].

use crate::block::CodecError;

/// Appends bits most-significant first into a byte vector.
#[derive(Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits in the low `pending` bits (fewer than 8 between calls).
    acc: u128,
    pending: u32,
}

impl BitWriter {
    /// A writer whose buffer starts with room for `bytes` bytes.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            ..BitWriter::default()
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    pub(crate) fn write_bits(&mut self, v: u64, n: u8) {
        if n == 0 {
            return;
        }
        let n = u32::from(n.min(64));
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        self.acc = (self.acc << n) | u128::from(v);
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
    }

    /// Writes one bit.
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// The bytes written; the last byte is padded with zero bits.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            self.bytes.push((self.acc << (8 - self.pending)) as u8);
        }
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
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u8) -> Result<u64, CodecError> {
        let n = usize::from(n);
        if n == 0 {
            return Ok(0);
        }
        let first = self.pos / 8;
        // Up to 57 bits lie within the 8 bytes from the one holding the first bit: one
        // load, where those 8 bytes exist (all but the column's last few bytes).
        if n <= 57
            && let Some(chunk) = self.bytes.get(first..first + 8)
        {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_be_bytes(word) << (self.pos % 8);
            self.pos += n;
            return Ok(w >> (64 - n));
        }
        if n > 64 || self.pos + n > self.bytes.len() * 8 {
            return Err(CodecError::Truncated("values"));
        }
        // The n bits lie within the 9 bytes from the one holding the first bit.
        let end = (first + 9).min(self.bytes.len());
        let mut window = [0u8; 16];
        window[..end - first].copy_from_slice(&self.bytes[first..end]);
        let w = u128::from_be_bytes(window) << (self.pos % 8);
        self.pos += n;
        Ok((w >> (128 - n)) as u64)
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
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
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

    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

/// Appends `values` as runs: a varint count of non-zero values, then for each a varint
/// count of the zeros before it and its zigzag varint; zeros after the last non-zero
/// value are implied by the length the reader is given. Small for mostly-zero sequences.
pub(crate) fn put_sparse(out: &mut Vec<u8>, values: &[i64]) {
    put_uvarint(out, values.iter().filter(|&&v| v != 0).count() as u64);
    let mut zeros = 0u64;
    for &v in values {
        if v == 0 {
            zeros += 1;
        } else {
            put_uvarint(out, zeros);
            put_uvarint(out, zigzag(v));
            zeros = 0;
        }
    }
}

/// Bytes [`put_sparse`] appends for `values`.
pub(crate) fn sparse_len(values: &[i64]) -> usize {
    let mut zeros = 0u64;
    let mut len = 0;
    let mut pairs = 0u64;
    for &v in values {
        if v == 0 {
            zeros += 1;
        } else {
            len += varint_len(zeros) + varint_len(zigzag(v));
            zeros = 0;
            pairs += 1;
        }
    }
    len + varint_len(pairs)
}

/// A column word that a signed value read from the bytes becomes: itself, or its
/// two's-complement bits.
pub(crate) trait FromSigned: Copy {
    const ZERO: Self;
    fn from_signed(v: i64) -> Self;
}

impl FromSigned for i64 {
    const ZERO: Self = 0;
    fn from_signed(v: i64) -> Self {
        v
    }
}

impl FromSigned for u64 {
    const ZERO: Self = 0;
    fn from_signed(v: i64) -> Self {
        v as u64
    }
}

/// Reads what [`put_sparse`] wrote for `n` values, appending them to `out`. Errors: more
/// runs than fit in `n`, or truncation.
pub(crate) fn read_sparse<T: FromSigned>(r: &mut ByteReader<'_>, n: usize, out: &mut Vec<T>) -> Result<(), CodecError> {
    let end = out.len() + n;
    let pairs = r.uvarint()?;
    if pairs > n as u64 || pairs.saturating_mul(2) > r.remaining() as u64 {
        return Err(CodecError::Corrupt(r.what, "more runs than values"));
    }
    for _ in 0..pairs {
        let zeros = r.uvarint()?;
        if zeros >= (end - out.len()) as u64 {
            return Err(CodecError::Corrupt(r.what, "run past the end"));
        }
        out.resize(out.len() + zeros as usize, T::ZERO);
        out.push(T::from_signed(unzigzag(r.uvarint()?)));
    }
    out.resize(end, T::ZERO);
    Ok(())
}

/// Bytes of `v` as an unsigned LEB128 varint.
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
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
    fn sparse_runs_round_trip_and_stay_in_bounds() {
        let v = [0i64, 0, 5, 0, -3, 0, 0, 0];
        let mut out = Vec::new();
        put_sparse(&mut out, &v);
        // Two runs: (2 zeros, 5 → zigzag 10), (1 zero, −3 → zigzag 5).
        assert_eq!(out, vec![2, 2, 10, 1, 5]);
        assert_eq!(sparse_len(&v), 5);
        let mut back: Vec<i64> = Vec::new();
        read_sparse(&mut ByteReader::new(&out, "values"), v.len(), &mut back).expect("reads");
        assert_eq!(back, v);
        let mut back: Vec<i64> = Vec::new();
        assert!(read_sparse(&mut ByteReader::new(&out, "values"), 4, &mut back).is_err());
    }

    #[test]
    fn varint_lengths() {
        for (v, n) in [(0u64, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(out.len(), n);
        }
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
