//! Series labels and the canonical series key.

use std::fmt;

use crate::tenant::Tenant;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a value. Names and values are UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name, e.g. `job`.
    pub name: String,
    /// The label value, never empty in a stored series (an empty value means "absent").
    pub value: String,
}

/// A series' label set: sorted by name, names unique. Ordering and equality are those of
/// the sorted list, as in Prometheus' `labels.Labels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs in any order. Later duplicates of a name replace
    /// earlier ones; pairs with an empty value are dropped (Prometheus treats an empty
    /// value as an absent label).
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        // Stable sort so that the last duplicate wins after dedup below.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Labels(out)
    }

    /// Wraps labels already sorted by name with unique names and no empty values.
    /// The caller guarantees the order; `debug_assert`s check it.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(labels)
    }

    /// The value of `name`, or `None` when the series has no such label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Sets `name` to `value`; an empty `value` removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(
                i,
                Label {
                    name: name.to_string(),
                    value: value.to_string(),
                },
            ),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// The canonical series key: the tenant's 8 bytes, then for each label in name
    /// order the name and value, each as a little-endian u32 length and its bytes.
    /// Equal keys ⇔ same tenant and same label set.
    pub fn canonical_key(&self, tenant: Tenant) -> Vec<u8> {
        let size = 8 + self.0.iter().map(|l| 8 + l.name.len() + l.value.len()).sum::<usize>();
        let mut key = Vec::with_capacity(size);
        key.extend_from_slice(&tenant.to_be_bytes());
        for l in &self.0 {
            key.extend_from_slice(&(l.name.len() as u32).to_le_bytes());
            key.extend_from_slice(l.name.as_bytes());
            key.extend_from_slice(&(l.value.len() as u32).to_le_bytes());
            key.extend_from_slice(l.value.as_bytes());
        }
        key
    }

    /// 64-bit xxh3 of the canonical key: the input of the jump hash that picks the
    /// storage nodes of a series.
    pub fn series_hash(&self, tenant: Tenant) -> u64 {
        series_hash_of_key(&self.canonical_key(tenant))
    }

    /// Decodes a canonical key made by [`Labels::canonical_key`]. `None` when the bytes
    /// are not such a key (truncated, bad UTF-8).
    pub fn from_canonical_key(key: &[u8]) -> Option<(Tenant, Labels)> {
        let tenant = Tenant {
            account_id: u32::from_be_bytes(key.get(0..4)?.try_into().ok()?),
            project_id: u32::from_be_bytes(key.get(4..8)?.try_into().ok()?),
        };
        Some((tenant, Labels::from_key_labels(key.get(8..)?)?))
    }

    /// Decodes the labels part of a canonical key (the key without its 8 tenant bytes), as
    /// search answers carry it in `Series.key`. `None` when the bytes are not such a part
    /// (truncated, a name without a value, bad UTF-8).
    pub fn from_key_labels(bytes: &[u8]) -> Option<Labels> {
        let mut labels = Vec::new();
        for_each_key_label(bytes, |name, value| {
            labels.push(Label {
                name: name.to_string(),
                value: value.to_string(),
            })
        })?;
        Some(Labels(labels))
    }

    /// The labels as sent on the storage gRPC API.
    pub fn to_proto(&self) -> Vec<cairn_proto::storage::Label> {
        self.0
            .iter()
            .map(|l| cairn_proto::storage::Label {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect()
    }

    /// [`Labels::to_proto`], moving the strings instead of copying them.
    pub fn into_proto(self) -> Vec<cairn_proto::storage::Label> {
        self.0
            .into_iter()
            .map(|l| cairn_proto::storage::Label {
                name: l.name,
                value: l.value,
            })
            .collect()
    }

    /// Labels received on the storage gRPC API (sorted again; empty values dropped).
    pub fn from_proto(labels: Vec<cairn_proto::storage::Label>) -> Self {
        Labels::from_pairs(labels.into_iter().map(|l| (l.name, l.value)))
    }
}

/// The fields of the labels part of a canonical key in order (name, value, name, …):
/// `Some(Err(()))` at a length running past the end, then nothing.
struct KeyFields<'a>(&'a [u8]);

impl<'a> Iterator for KeyFields<'a> {
    type Item = Result<&'a [u8], ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let len = u32::from_le_bytes(self.0.get(0..4)?.try_into().ok()?) as usize;
            let field = self.0.get(4..4usize.checked_add(len)?)?;
            Some((field, 4 + len))
        })();
        match field {
            Some((field, used)) => {
                self.0 = &self.0[used..];
                Some(Ok(field))
            }
            None => {
                self.0 = &[];
                Some(Err(()))
            }
        }
    }
}

/// Calls `f(name, value)` for each label of the labels part of a canonical key (the key
/// without its 8 tenant bytes), in order, borrowed from it: a reader of a key that needs
/// no [`Labels`] (one string per name and value) goes through this. `None` when the bytes
/// are not such a part (truncated, a name without a value, bad UTF-8); `f` may then have
/// seen the labels before the fault.
pub fn for_each_key_label<'a>(bytes: &'a [u8], mut f: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let mut fields = KeyFields(bytes);
    while let Some(name) = fields.next() {
        let value = fields.next()?;
        f(
            std::str::from_utf8(name.ok()?).ok()?,
            std::str::from_utf8(value.ok()?).ok()?,
        );
    }
    Some(())
}

/// Orders the labels parts of two canonical keys (without the tenant bytes) as their
/// label sets order ([`Labels`]' `Ord`: label by label, name then value, a prefix
/// first), without decoding them. Bytes that are not such a part order after every
/// field that is.
pub fn cmp_key_labels(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    // A label set orders as its flat list of fields name, value, name, …, each field
    // by its bytes (UTF-8 orders as its bytes do). Keys of one query's series mostly
    // share their first fields byte for byte (length included): those are skipped whole.
    let shared = shared_fields(a, b);
    let (mut fa, mut fb) = (KeyFields(&a[shared..]), KeyFields(&b[shared..]));
    loop {
        match (fa.next(), fb.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                std::cmp::Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Length in bytes of the leading fields (length and bytes) that `a` and `b` share
/// exactly: a field boundary of both.
fn shared_fields(a: &[u8], b: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let end = a
            .get(at..at + 4)
            .and_then(|len| len.try_into().ok())
            .and_then(|len: [u8; 4]| (at + 4).checked_add(u32::from_le_bytes(len) as usize));
        match end {
            Some(end) if end <= a.len() && a.get(at..end) == b.get(at..end) => at = end,
            _ => return at,
        }
    }
}

/// Writes into `out` (cleared first) the canonical series key of labels given as borrowed
/// `(name, value)` pairs that are already sorted by name, with unique names and no empty
/// values: byte for byte what [`Labels::canonical_key`] makes of the same label set, so a
/// caller can key a series without building a [`Labels`]. `out` is reused across calls.
pub fn canonical_key_of_sorted<'a>(
    tenant: Tenant,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&tenant.to_be_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
}

/// The series hash of a canonical key (what [`Labels::series_hash`] computes): its
/// 64-bit xxh3.
pub fn series_hash_of_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// 64-bit xxh3 of [`canonical_key_of_sorted`], built in `scratch` (reused across calls):
/// equal to [`Labels::series_hash`] of the same label set and tenant.
pub fn series_hash_of_sorted<'a>(
    tenant: Tenant,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    scratch: &mut Vec<u8>,
) -> u64 {
    canonical_key_of_sorted(tenant, pairs, scratch);
    series_hash_of_key(scratch)
}

impl fmt::Display for Labels {
    /// Prometheus' notation: `name{a="1", b="2"}` with the metric name outside braces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            write!(f, "{name}")?;
        }
        write!(f, "{{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        write!(f, "}}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_labels_moved_equal_proto_labels_copied() {
        let l = Labels::from_pairs([("job", "node"), ("__name__", "up"), ("instance", "é:9100")]);
        let copied = l.to_proto();
        assert_eq!(copied.len(), 3);
        assert_eq!(l.clone().into_proto(), copied);
        assert_eq!(Labels::from_proto(l.clone().into_proto()), l);
    }

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        let pairs: Vec<_> = l.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(pairs, [("a", "1"), ("b", "3")]);
    }

    #[test]
    fn canonical_key_round_trips_and_separates_tenants() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a=b"), ("x", "é")]);
        let t = Tenant {
            account_id: 3,
            project_id: 9,
        };
        let key = l.canonical_key(t);
        assert_eq!(Labels::from_canonical_key(&key), Some((t, l.clone())));
        assert_ne!(key, l.canonical_key(Tenant::default()));
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let k1 = Labels::from_pairs([("ab", "c")]).canonical_key(t);
        let k2 = Labels::from_pairs([("a", "bc")]).canonical_key(t);
        assert_ne!(k1, k2);
        assert_eq!(Labels::from_canonical_key(&key[..key.len() - 1]), None);
    }

    proptest::proptest! {
        /// Any label set survives the canonical key, and different sets never share a key.
        #[test]
        fn canonical_key_round_trips_any_labels(
            pairs in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..8),
            other in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..8),
            account in proptest::num::u32::ANY,
        ) {
            let t = Tenant { account_id: account, project_id: 1 };
            let a = Labels::from_pairs(pairs);
            let b = Labels::from_pairs(other);
            proptest::prop_assert_eq!(Labels::from_canonical_key(&a.canonical_key(t)), Some((t, a.clone())));
            proptest::prop_assert_eq!(a == b, a.canonical_key(t) == b.canonical_key(t));
        }
    }

    proptest::proptest! {
        /// The borrowed-pair key and hash equal those of `Labels` for any label set, also
        /// when the scratch buffer held an earlier, longer key.
        #[test]
        fn borrowed_key_is_byte_identical(
            pairs in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..8),
            account in proptest::num::u32::ANY,
            project in proptest::num::u32::ANY,
        ) {
            let t = Tenant { account_id: account, project_id: project };
            let l = Labels::from_pairs(pairs);
            let sorted: Vec<(&str, &str)> = l.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            let mut scratch = vec![0xAA; 300];
            canonical_key_of_sorted(t, sorted.iter().copied(), &mut scratch);
            proptest::prop_assert_eq!(&scratch, &l.canonical_key(t));
            proptest::prop_assert_eq!(series_hash_of_sorted(t, sorted.iter().copied(), &mut scratch), l.series_hash(t));
        }
    }

    proptest::proptest! {
        /// Keys' labels parts order as their label sets do, and decode back to them. Small
        /// alphabets, so that names and values are often prefixes of one another.
        #[test]
        fn key_labels_order_as_label_sets(
            pairs in proptest::collection::vec(("[ab]{1,3}", "[ab]{0,3}"), 0..4),
            other in proptest::collection::vec(("[ab]{1,3}", "[ab]{0,3}"), 0..4),
        ) {
            let t = Tenant::default();
            let (a, b) = (Labels::from_pairs(pairs), Labels::from_pairs(other));
            let (ka, kb) = (a.canonical_key(t), b.canonical_key(t));
            proptest::prop_assert_eq!(cmp_key_labels(&ka[8..], &kb[8..]), a.cmp(&b));
            proptest::prop_assert_eq!(Labels::from_key_labels(&ka[8..]), Some(a));
        }
    }

    proptest::proptest! {
        /// Any bytes, well-formed or not, order consistently: a key equals itself, and
        /// two keys with a shared beginning order the same either way round.
        #[test]
        fn any_key_bytes_order_consistently(
            prefix in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            x in proptest::collection::vec(0u8..4, 0..12),
            y in proptest::collection::vec(0u8..4, 0..12),
        ) {
            let (a, b) = ([prefix.clone(), x].concat(), [prefix, y].concat());
            proptest::prop_assert_eq!(cmp_key_labels(&a, &a), std::cmp::Ordering::Equal);
            proptest::prop_assert_eq!(cmp_key_labels(&a, &b), cmp_key_labels(&b, &a).reverse());
        }
    }

    #[test]
    fn malformed_key_labels_are_refused() {
        let key = Labels::from_pairs([("job", "node")]).canonical_key(Tenant::default());
        let part = &key[8..];
        assert_eq!(Labels::from_key_labels(&part[..part.len() - 1]), None);
        // A name without its value.
        assert_eq!(Labels::from_key_labels(&part[..7]), None);
        assert_eq!(Labels::from_key_labels(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(Labels::from_key_labels(&[]), Some(Labels::default()));
        // A name that is not UTF-8.
        assert_eq!(Labels::from_key_labels(&[1, 0, 0, 0, 0xff, 0, 0, 0, 0]), None);
        let mut seen = Vec::new();
        assert_eq!(for_each_key_label(part, |n, v| seen.push((n, v))), Some(()));
        assert_eq!(seen, [("job", "node")]);
    }

    #[test]
    fn borrowed_key_layout_matches_the_documented_format() {
        let t = Tenant {
            account_id: 1,
            project_id: 2,
        };
        let mut key = Vec::new();
        canonical_key_of_sorted(t, [("a", "xy")], &mut key);
        assert_eq!(key, [0, 0, 0, 1, 0, 0, 0, 2, 1, 0, 0, 0, b'a', 2, 0, 0, 0, b'x', b'y']);
    }

    #[test]
    fn display_matches_prometheus_notation() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert_eq!(l.to_string(), r#"up{job="node"}"#);
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::from_pairs([("a", "1"), ("c", "3")]);
        l.set("b", "2");
        l.set("a", "");
        l.remove("c");
        assert_eq!(l, Labels::from_pairs([("b", "2")]));
    }
}
