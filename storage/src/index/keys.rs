//! Key layouts of the index column families.
//!
//! Postings key: `scope` (u32 BE: a day number, or [`ALL_DAYS`]) | tenant (8 bytes, as in
//! the canonical series key) | label-name length (u32 BE) | name | value. The scope comes
//! first so that one day's postings of every tenant form one key range (retention
//! deletes it with one range delete). The empty name with the empty value holds every
//! series of the tenant in the scope.

use cairn_common::Tenant;

/// Scope of the postings that cover all time (no day restriction).
pub(crate) const ALL_DAYS: u32 = u32::MAX;

/// The postings key of `(scope, tenant, name, value)`.
pub(crate) fn postings_key(scope: u32, tenant: Tenant, name: &str, value: &str) -> Vec<u8> {
    let mut k = name_prefix(scope, tenant, name);
    k.extend_from_slice(value.as_bytes());
    k
}

/// The prefix shared by every value of `name` in `(scope, tenant)`.
pub(crate) fn name_prefix(scope: u32, tenant: Tenant, name: &str) -> Vec<u8> {
    let mut k = tenant_prefix(scope, tenant);
    k.reserve(4 + name.len());
    k.extend_from_slice(&(name.len() as u32).to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// The prefix of every postings key of `(scope, tenant)`.
pub(crate) fn tenant_prefix(scope: u32, tenant: Tenant) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + 32);
    k.extend_from_slice(&scope.to_be_bytes());
    k.extend_from_slice(&tenant.to_be_bytes());
    k
}

/// Splits the part of a postings key after the tenant prefix into name and value.
/// `None` when the bytes are not such a key.
pub(crate) fn split_name_value(rest: &[u8]) -> Option<(&str, &str)> {
    let len = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
    let value = std::str::from_utf8(rest.get(4 + len..)?).ok()?;
    Some((name, value))
}

/// The smallest byte string greater than every string starting with `prefix`, or
/// `None` when `prefix` is all `0xff`.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.last_mut() {
        if *last < 0xff {
            *last += 1;
            return Some(s);
        }
        s.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_value_split_back() {
        let t = Tenant {
            account_id: 1,
            project_id: 2,
        };
        let k = postings_key(7, t, "job", "node");
        assert_eq!(split_name_value(&k[12..]), Some(("job", "node")));
        assert!(k.starts_with(&name_prefix(7, t, "job")));
        // A longer name that shares the first bytes must not share the name prefix.
        assert!(!postings_key(7, t, "jobs", "x").starts_with(&name_prefix(7, t, "job")));
    }

    #[test]
    fn successor_carries() {
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[0, 5]), Some(vec![0, 6]));
    }
}
