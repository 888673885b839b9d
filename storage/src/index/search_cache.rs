//! Caches of the index look-ups that searches repeat: a dashboard asks the same
//! selectors every few seconds, and between two refreshes the index rarely changes.
//!
//! - **Selections**: `(tenant, scopes, matchers)` → the matching series IDs.
//! - **Label names and values**: `(scope, tenant)` → the label names, and
//!   `(scope, tenant, name)` → the values of a label.
//! - **Series keys**: series ID → canonical key. A series ID names one key for the whole
//!   life of the process (IDs are handed out by a counter and never reused), so these
//!   entries are never stale.
//!
//! Selections, label names and label values depend on the postings, which change when a series is
//! created, when a series' first sample of a day is indexed, and when retention drops
//! days. Each of those writes bumps the index generation *after* it is applied; an entry
//! records the generation read *before* its look-up started and is used only while the
//! generation is unchanged. An entry computed while a write was going on is therefore
//! dropped at its next use, never served stale. This is the same trade as
//! VictoriaMetrics' tag filters cache, which is reset when new series are registered.
//!
//! Memory is bounded by a byte budget: each cache is a [`Rotating`] map of two
//! generations, so what is used often stays.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_common::rotating::Rotating;
use cairn_common::{MatchOp, Matcher, Tenant};
use parking_lot::Mutex;
use roaring::RoaringTreemap;

/// Bytes counted per entry on top of its key and value: hash table slot, `Arc` and
/// allocation headers.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Default budget of all three caches together, bytes.
pub const DEFAULT_INDEX_CACHE_BYTES: u64 = 32 << 20;

/// What a selection is keyed by: the tenant, the postings scopes and the matchers as
/// text (name, operator, value of each, in the request's order).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SelectionKey {
    tenant: Tenant,
    scopes: Vec<u32>,
    matchers: String,
}

impl SelectionKey {
    pub(crate) fn new(tenant: Tenant, matchers: &[Matcher], scopes: &[u32]) -> Self {
        let mut text = String::with_capacity(matchers.iter().map(|m| m.name.len() + m.value.len() + 4).sum());
        for m in matchers {
            // Names hold no NUL; the value is last and its length comes first, so no
            // two lists of matchers give the same text.
            text.push_str(&m.name);
            text.push('\0');
            text.push_str(match m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Regex => "=~",
                MatchOp::NotRegex => "!~",
            });
            text.push('\0');
            text.push_str(&m.value.len().to_string());
            text.push('\0');
            text.push_str(&m.value);
        }
        SelectionKey {
            tenant,
            scopes: scopes.to_vec(),
            matchers: text,
        }
    }

    fn bytes(&self) -> usize {
        self.matchers.len() + 4 * self.scopes.len()
    }
}

/// The index generation an entry was computed under, and the entry.
type Stamped<T> = (u64, Arc<T>);

/// What lists of label names and of label values are keyed by: postings scope, tenant,
/// and the label whose values are listed (`None` for the list of label names).
type StringsKey = (u32, Tenant, Option<String>);

/// The search caches of one index; see the module documentation.
#[derive(Debug)]
pub(crate) struct SearchCache {
    generation: AtomicU64,
    selections: Mutex<Rotating<SelectionKey, Stamped<RoaringTreemap>>>,
    strings: Mutex<Rotating<StringsKey, Stamped<Vec<String>>>>,
    keys: Mutex<Rotating<u64, Bytes>>,
}

/// Memory of the search caches, bytes (estimates: keys, values and a fixed overhead per
/// entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SearchCacheUsage {
    /// Selections, label names and label values.
    pub(crate) postings_bytes: u64,
    /// Series keys.
    pub(crate) keys_bytes: u64,
    /// Entries of all three caches.
    pub(crate) entries: u64,
}

impl SearchCache {
    /// Caches within `max_bytes` in all: a quarter for selections, a quarter for label
    /// names and values, half for series keys. 0 keeps nothing.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        SearchCache {
            generation: AtomicU64::new(0),
            selections: Mutex::new(Rotating::new(max / 4)),
            strings: Mutex::new(Rotating::new(max / 4)),
            keys: Mutex::new(Rotating::new(max / 2)),
        }
    }

    /// The generation to stamp a look-up that starts now with.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks every selection, label names and label values entry as stale. Call after an index write
    /// that changes postings has been applied.
    pub(crate) fn postings_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached series IDs of `key`, if computed under the current generation.
    pub(crate) fn selection(&self, key: &SelectionKey) -> Option<Arc<RoaringTreemap>> {
        let (generation, ids) = self.selections.lock().get(key)?;
        (generation == self.generation()).then_some(ids)
    }

    /// Keeps the series IDs of `key`, computed by a look-up that started at `generation`.
    pub(crate) fn keep_selection(&self, key: SelectionKey, generation: u64, ids: Arc<RoaringTreemap>) {
        let bytes = key.bytes() + ids.serialized_size() + ENTRY_OVERHEAD_BYTES;
        self.selections.lock().insert(key, (generation, ids), bytes);
    }

    /// The cached values of label `name` in `(scope, tenant)` (with `name` `None`: its
    /// label names), if computed under the current generation.
    pub(crate) fn strings(&self, scope: u32, tenant: Tenant, name: Option<&str>) -> Option<Arc<Vec<String>>> {
        let (generation, values) = self.strings.lock().get(&(scope, tenant, name.map(str::to_string)))?;
        (generation == self.generation()).then_some(values)
    }

    /// Keeps the values of label `name` in `(scope, tenant)` (with `name` `None`: its label
    /// names), read by a look-up that started at `generation`.
    pub(crate) fn keep_strings(
        &self,
        scope: u32,
        tenant: Tenant,
        name: Option<&str>,
        generation: u64,
        values: Arc<Vec<String>>,
    ) {
        let bytes = name.map_or(0, str::len)
            + values
                .iter()
                .map(|v| v.len() + std::mem::size_of::<String>())
                .sum::<usize>()
            + ENTRY_OVERHEAD_BYTES;
        self.strings
            .lock()
            .insert((scope, tenant, name.map(str::to_string)), (generation, values), bytes);
    }

    /// The canonical keys of `ids` that are cached, in their order (`None` where not).
    pub(crate) fn keys(&self, ids: &[u64]) -> Vec<Option<Bytes>> {
        let mut keys = self.keys.lock();
        ids.iter().map(|id| keys.get(id)).collect()
    }

    /// Keeps the canonical key of each `(id, key)`.
    pub(crate) fn keep_keys(&self, found: impl IntoIterator<Item = (u64, Bytes)>) {
        let mut keys = self.keys.lock();
        for (id, key) in found {
            let bytes = key.len() + 8 + ENTRY_OVERHEAD_BYTES;
            keys.insert(id, key, bytes);
        }
    }

    /// What the caches hold now.
    pub(crate) fn usage(&self) -> SearchCacheUsage {
        let (s, v, k) = (self.selections.lock(), self.strings.lock(), self.keys.lock());
        SearchCacheUsage {
            postings_bytes: (s.bytes() + v.bytes()) as u64,
            keys_bytes: k.bytes() as u64,
            entries: (s.len() + v.len() + k.len()) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).expect("matcher")
    }

    #[test]
    fn a_postings_change_makes_selections_and_values_stale_but_not_keys() {
        let c = SearchCache::new(1 << 20);
        let t = Tenant::default();
        let key = SelectionKey::new(t, &[m(MatchOp::Equal, "job", "a")], &[7]);
        let g = c.generation();
        let ids: RoaringTreemap = [1u64, 2, 3].into_iter().collect();
        c.keep_selection(key.clone(), g, Arc::new(ids.clone()));
        c.keep_strings(7, t, Some("job"), g, Arc::new(vec!["a".into()]));
        c.keep_strings(7, t, None, g, Arc::new(vec!["job".into()]));
        c.keep_keys([(1, Bytes::from_static(b"key-1"))]);
        assert_eq!(c.selection(&key).as_deref(), Some(&ids));
        assert_eq!(c.strings(7, t, Some("job")).as_deref(), Some(&vec!["a".to_string()]));
        assert_eq!(c.strings(7, t, None).as_deref(), Some(&vec!["job".to_string()]));
        assert_eq!(c.strings(8, t, None), None);
        c.postings_changed();
        assert_eq!(c.selection(&key), None);
        assert_eq!(c.strings(7, t, Some("job")), None);
        assert_eq!(c.strings(7, t, None), None);
        assert_eq!(c.keys(&[1, 2]), [Some(Bytes::from_static(b"key-1")), None]);
        // A look-up that started before the change is stale as soon as it is kept.
        c.keep_selection(key.clone(), g, Arc::new(ids));
        assert_eq!(c.selection(&key), None);
    }

    #[test]
    fn selection_keys_tell_matchers_scopes_and_tenants_apart() {
        let t = Tenant::default();
        let other = Tenant {
            account_id: 1,
            project_id: 0,
        };
        let a = [m(MatchOp::Equal, "job", "a")];
        let keys = [
            SelectionKey::new(t, &a, &[1]),
            SelectionKey::new(t, &a, &[2]),
            SelectionKey::new(other, &a, &[1]),
            SelectionKey::new(t, &[m(MatchOp::NotEqual, "job", "a")], &[1]),
            SelectionKey::new(t, &[m(MatchOp::Equal, "jo", "ba")], &[1]),
            // A value holding what would be the separator and the next matcher.
            SelectionKey::new(t, &[m(MatchOp::Equal, "job", "a\x00env\x00=\x001\x00b")], &[1]),
            SelectionKey::new(t, &[m(MatchOp::Equal, "job", "a"), m(MatchOp::Equal, "env", "b")], &[1]),
        ];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(i == j, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let c = SearchCache::new(0);
        let key = SelectionKey::new(Tenant::default(), &[], &[1]);
        c.keep_selection(key.clone(), c.generation(), Arc::new(RoaringTreemap::new()));
        c.keep_keys([(1, Bytes::from_static(b"k"))]);
        assert_eq!(c.selection(&key), None);
        assert_eq!(c.keys(&[1]), [None]);
        assert_eq!(c.usage(), SearchCacheUsage::default());
    }
}
