//! Value column of a block: the codings and the candidates the block chooses from.
//!
//! - [`ValueCoding::Constant`]: every value has the same bits; 8 bytes (LE bits).
//! - [`ValueCoding::Xor`]: Gorilla XOR of the bit patterns ([`xor`]): works for any value.
//! - [`ValueCoding::DecimalVarint`], [`ValueCoding::DecimalBits`] and
//!   [`ValueCoding::DecimalRuns`]: decimal mantissas with delta or delta-of-delta coding
//!   ([`decimal`]), as varints, bit-packed, or sparse runs.
//!
//! The block encodes every candidate that applies and keeps the smallest after zstd.

pub(crate) mod decimal;
pub(crate) mod xor;

use crate::block::CodecError;
use decimal::Packing;

/// How the value column is coded; the value is stored in the block's flags byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueCoding {
    /// One value repeated: its 8 bytes.
    #[default]
    Constant = 0,
    /// Gorilla XOR (Pelkonen et al., VLDB 2015, §4.1.2).
    Xor = 1,
    /// Decimal mantissas, residuals as zigzag varints.
    DecimalVarint = 2,
    /// Decimal mantissas, residuals bit-packed above their minimum.
    DecimalBits = 3,
    /// Decimal mantissas, residuals as sparse runs (zero-run length, non-zero value).
    DecimalRuns = 4,
}

impl ValueCoding {
    /// The coding stored as `bits` (0..=4). Errors: any other value.
    pub(crate) fn from_bits(bits: u8) -> Result<Self, CodecError> {
        match bits {
            0 => Ok(ValueCoding::Constant),
            1 => Ok(ValueCoding::Xor),
            2 => Ok(ValueCoding::DecimalVarint),
            3 => Ok(ValueCoding::DecimalBits),
            4 => Ok(ValueCoding::DecimalRuns),
            _ => Err(CodecError::Corrupt("header", "unknown value coding")),
        }
    }
}

/// Every coding of `values` (IEEE 754 bits) worth trying, as (coding, column bytes).
pub(crate) fn candidates(values: &[u64]) -> Vec<(ValueCoding, Vec<u8>)> {
    let Some(&first) = values.first() else {
        return vec![(ValueCoding::Constant, Vec::new())];
    };
    let mut out = Vec::with_capacity(3);
    if values.iter().all(|&v| v == first) {
        out.push((ValueCoding::Constant, first.to_le_bytes().to_vec()));
    }
    if let Some(m) = decimal::mantissas(values) {
        out.push((ValueCoding::DecimalVarint, decimal::encode(&m, Packing::Varint)));
        out.push((ValueCoding::DecimalBits, decimal::encode(&m, Packing::Bits)));
        out.push((ValueCoding::DecimalRuns, decimal::encode(&m, Packing::Runs)));
    }
    if out.is_empty() {
        out.push((ValueCoding::Xor, xor::encode(values)));
    } else if out[0].0 != ValueCoding::Constant && values.len() > 1 {
        // Decimal usually wins, but XOR does on a few shapes (e.g. one value per block
        // flipping between two long decimals).
        out.push((ValueCoding::Xor, xor::encode(values)));
    }
    out
}

/// One coding of `values`, found quickly: constant when all are equal, else decimal
/// mantissas as varints when the values have them, else Gorilla XOR.
pub(crate) fn quick_candidates(values: &[u64]) -> Vec<(ValueCoding, Vec<u8>)> {
    let Some(&first) = values.first() else {
        return vec![(ValueCoding::Constant, Vec::new())];
    };
    if values.iter().all(|&v| v == first) {
        return vec![(ValueCoding::Constant, first.to_le_bytes().to_vec())];
    }
    match decimal::mantissas(values) {
        Some(m) => vec![(ValueCoding::DecimalVarint, decimal::encode(&m, Packing::Varint))],
        None => vec![(ValueCoding::Xor, xor::encode(values))],
    }
}

/// Decodes `count` values coded as `coding` into `out` (IEEE 754 bits), which is cleared
/// first (its capacity is reused). Errors: the column is truncated or corrupt.
pub(crate) fn decode_into(
    coding: ValueCoding,
    bytes: &[u8],
    count: usize,
    out: &mut Vec<u64>,
) -> Result<(), CodecError> {
    out.clear();
    match coding {
        ValueCoding::Constant => {
            if count == 0 && bytes.is_empty() {
                return Ok(());
            }
            let b: [u8; 8] = bytes
                .try_into()
                .map_err(|_| CodecError::Corrupt("values", "constant column is not 8 bytes"))?;
            if count == 0 {
                return Err(CodecError::Corrupt("values", "constant column without samples"));
            }
            out.resize(count, u64::from_le_bytes(b));
            Ok(())
        }
        ValueCoding::Xor => xor::decode_into(bytes, count, out),
        ValueCoding::DecimalVarint => decimal::decode_into(bytes, count, Packing::Varint, out),
        ValueCoding::DecimalBits => decimal::decode_into(bytes, count, Packing::Bits, out),
        ValueCoding::DecimalRuns => decimal::decode_into(bytes, count, Packing::Runs, out),
    }
}
