//! Series label sets packed for the insert → storage write (`WriteRequest.series_keys` in
//! `proto/proto/cairn_storage.proto`): per series, a little-endian u32 length, then the
//! series' canonical key without its 8-byte tenant prefix (per label in name order: name
//! and value, each a little-endian u32 length and its bytes; see
//! [`crate::Labels::canonical_key`]).
//!
//! Packing moves a request's label sets as one byte string: neither side builds a string
//! per label. The receiver checks each key with [`check_storable`] before trusting it.

use crate::METRIC_NAME;

/// Appends one series' key without its tenant prefix (`key_labels`) to `out`.
pub fn append(out: &mut Vec<u8>, key_labels: &[u8]) {
    out.extend_from_slice(&(key_labels.len() as u32).to_le_bytes());
    out.extend_from_slice(key_labels);
}

/// Iterates over the packed keys of `packed`: each item is one series' key without its
/// tenant prefix, or the message of a truncated packing (then the iteration ends).
pub fn iter(packed: &[u8]) -> PackedKeys<'_> {
    PackedKeys { rest: packed }
}

/// Iterator returned by [`iter`].
#[derive(Debug, Clone)]
pub struct PackedKeys<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PackedKeys<'a> {
    type Item = Result<&'a [u8], &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = take_prefixed(&mut self.rest).ok_or("series_keys is truncated");
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// Splits a little-endian u32 length and that many bytes off the front of `rest`.
fn take_prefixed<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let bytes = rest.get(4..4usize.checked_add(len)?)?;
    *rest = &rest[4 + len..];
    Some(bytes)
}

/// Checks that `key_labels` (a key without its tenant prefix) holds a storable label set:
/// well-formed lengths, UTF-8 names and values, names strictly ascending (so unique), no
/// empty name or value, and a `__name__` label. Errors: what is wrong, for the message
/// that rejects the series.
pub fn check_storable(key_labels: &[u8]) -> Result<(), &'static str> {
    let mut rest = key_labels;
    let mut prev: Option<&[u8]> = None;
    let mut has_name = false;
    while !rest.is_empty() {
        let (Some(name), Some(value)) = (take_prefixed(&mut rest), take_prefixed(&mut rest)) else {
            return Err("truncated series key");
        };
        if name.is_empty() {
            return Err("a label with an empty name");
        }
        if value.is_empty() {
            return Err("a label with an empty value");
        }
        if prev.is_some_and(|p| p >= name) {
            return Err("label names not strictly sorted");
        }
        if std::str::from_utf8(name).is_err() || std::str::from_utf8(value).is_err() {
            return Err("a label that is not UTF-8");
        }
        has_name |= name == METRIC_NAME.as_bytes();
        prev = Some(name);
    }
    if has_name { Ok(()) } else { Err("no __name__ label") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Labels, Tenant};

    fn key_labels(pairs: &[(&str, &str)]) -> Vec<u8> {
        Labels::from_pairs(pairs.iter().copied()).canonical_key(Tenant::default())[8..].to_vec()
    }

    #[test]
    fn packed_keys_come_back_in_order() {
        let a = key_labels(&[("__name__", "up"), ("job", "a")]);
        let b = key_labels(&[("__name__", "x")]);
        let mut packed = Vec::new();
        append(&mut packed, &a);
        append(&mut packed, &b);
        // a: 4-byte length + (4+8)+(4+2) + (4+3)+(4+1) = 34; b: 4 + (4+8)+(4+1) = 21.
        assert_eq!(packed.len(), 34 + 21);
        let got: Vec<_> = iter(&packed).collect();
        assert_eq!(got, vec![Ok(a.as_slice()), Ok(b.as_slice())]);
    }

    #[test]
    fn a_truncated_packing_is_an_error_not_a_panic() {
        let mut packed = Vec::new();
        append(&mut packed, &key_labels(&[("__name__", "up")]));
        for cut in 1..packed.len() {
            let got: Vec<_> = iter(&packed[..cut]).collect();
            assert_eq!(got, vec![Err("series_keys is truncated")], "cut at {cut}");
        }
        // A length near u32::MAX must not overflow.
        let got: Vec<_> = iter(&[0xff, 0xff, 0xff, 0xff, 1]).collect();
        assert_eq!(got, vec![Err("series_keys is truncated")]);
    }

    #[test]
    fn storable_keys_pass_and_others_name_the_problem() {
        assert_eq!(check_storable(&key_labels(&[("__name__", "up"), ("job", "a")])), Ok(()));
        let raw = |pairs: &[(&[u8], &[u8])]| {
            let mut out = Vec::new();
            for (n, v) in pairs {
                append(&mut out, n);
                append(&mut out, v);
            }
            out
        };
        assert_eq!(check_storable(&raw(&[(b"job", b"a")])), Err("no __name__ label"));
        assert_eq!(check_storable(&raw(&[])), Err("no __name__ label"));
        assert_eq!(
            check_storable(&raw(&[(b"__name__", b"up"), (b"", b"a")])),
            Err("a label with an empty name")
        );
        assert_eq!(
            check_storable(&raw(&[(b"__name__", b"up"), (b"job", b"")])),
            Err("a label with an empty value")
        );
        assert_eq!(
            check_storable(&raw(&[(b"job", b"a"), (b"__name__", b"up")])),
            Err("label names not strictly sorted")
        );
        assert_eq!(
            check_storable(&raw(&[(b"__name__", b"up"), (b"job", b"a"), (b"job", b"b")])),
            Err("label names not strictly sorted")
        );
        assert_eq!(
            check_storable(&raw(&[(b"__name__", b"up"), (b"job", b"\xff")])),
            Err("a label that is not UTF-8")
        );
        let mut truncated = raw(&[(b"__name__", b"up")]);
        truncated.pop();
        assert_eq!(check_storable(&truncated), Err("truncated series key"));
    }
}
