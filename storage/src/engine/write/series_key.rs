//! The canonical series key of proto labels, built without a [`Labels`] when the labels
//! already form a storable label set.
//!
//! [`Labels`]: cairn_common::Labels

use cairn_common::{METRIC_NAME, Tenant};
use cairn_proto::storage::Label;

/// Appends to `out` the canonical series key (the layout of
/// `cairn_common::Labels::canonical_key`: tenant's 8 bytes, then per label the name and
/// the value, each as a little-endian u32 length and its bytes) of `labels` for `tenant`
/// and returns `true`, when `labels` are strictly sorted by name (so names are unique),
/// have no empty name or value, and include `__name__`: then the key equals that of
/// `Labels::from_proto(labels)`. Otherwise returns `false`, leaving bytes the caller
/// truncates; the general path then sorts, drops empty values and reports errors.
pub(super) fn append_if_storable(tenant: Tenant, labels: &[Label], out: &mut Vec<u8>) -> bool {
    out.extend_from_slice(&tenant.to_be_bytes());
    let mut prev: Option<&str> = None;
    let mut has_name = false;
    for l in labels {
        if l.name.is_empty() || l.value.is_empty() || prev.is_some_and(|p| p >= l.name.as_str()) {
            return false;
        }
        has_name |= l.name == METRIC_NAME;
        prev = Some(&l.name);
        out.reserve(8 + l.name.len() + l.value.len());
        out.extend_from_slice(&(l.name.len() as u32).to_le_bytes());
        out.extend_from_slice(l.name.as_bytes());
        out.extend_from_slice(&(l.value.len() as u32).to_le_bytes());
        out.extend_from_slice(l.value.as_bytes());
    }
    has_name
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_common::Labels;

    fn proto(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn key(tenant: Tenant, pairs: &[(&str, &str)]) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        append_if_storable(tenant, &proto(pairs), &mut out).then(|| out[6..].to_vec())
    }

    #[test]
    fn sorted_labels_give_the_canonical_key() {
        let t = Tenant {
            account_id: 3,
            project_id: 9,
        };
        let pairs = [("__name__", "up"), ("instance", "a:1"), ("job", "node")];
        let expected = Labels::from_pairs(pairs).canonical_key(t);
        assert_eq!(key(t, &pairs), Some(expected.clone()));
        // By hand: tenant 3/9 big-endian, then "__name__" (8 bytes) = "up" (2 bytes)...
        assert_eq!(&expected[..8], &[0, 0, 0, 3, 0, 0, 0, 9]);
        assert_eq!(&expected[8..20], b"\x08\0\0\0__name__");
        assert_eq!(&expected[20..26], b"\x02\0\0\0up");
    }

    #[test]
    fn other_label_lists_take_the_general_path() {
        let t = Tenant::default();
        // Unsorted, duplicate name, empty value, empty name, no metric name, no labels.
        assert_eq!(key(t, &[("job", "x"), ("__name__", "up")]), None);
        assert_eq!(key(t, &[("__name__", "up"), ("job", "x"), ("job", "y")]), None);
        assert_eq!(key(t, &[("__name__", "up"), ("job", "")]), None);
        assert_eq!(key(t, &[("", "v"), ("__name__", "up")]), None);
        assert_eq!(key(t, &[("job", "x")]), None);
        assert_eq!(key(t, &[]), None);
    }
}
