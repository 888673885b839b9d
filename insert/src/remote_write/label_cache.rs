//! The insert's cache of label sets as remote-write senders encode them: the bytes of a
//! `TimeSeries`' label fields → the series' canonical key and series hash.
//!
//! A remote-write sender repeats every series' whole label set in each request (once per
//! series and request), encoded the same way each time. A hit spares the series'
//! decoding, UTF-8 check, validation, sorting, key building and hashing: the entry holds
//! what those produced. A hit needs the received bytes to equal the kept ones byte for
//! byte (and the tenant to be the same), so an answer from the cache is the answer the
//! full path gives: the limits are fixed for the life of the process, and a rejected
//! label set is never kept. Entries are found by a seeded 64-bit xxh3 of the bytes; two
//! label sets with one hash only cost a miss.
//!
//! Memory is bounded by `--label-cache-max-bytes`: 16 shards, each a [`Rotating`] map of
//! two generations, so a label set sent at least once per rotation stays and churned
//! series are forgotten. An entry costs its bytes plus [`ENTRY_OVERHEAD_BYTES`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};

use cairn_common::Tenant;
use cairn_common::rotating::Rotating;

const SHARDS: usize = 16;

/// Estimated bytes an entry costs beyond its label bytes and key: the map slot (hash,
/// entry, control byte and slack) and the allocation's header.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Hashes the maps' keys, which are seeded xxh3 outputs already, by passing them on:
/// the map's bucket and control bits are their low and high bits, the shard is picked by
/// bits 32–35.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; any other input still gets a hash.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard = Rotating<u64, Entry, BuildHasherDefault<PassThrough>>;

/// A kept label set: the label fields as received followed by the canonical key without
/// its tenant prefix, in one allocation.
struct Entry {
    tenant: Tenant,
    bytes: Box<[u8]>,
    /// Length of the label fields at the start of `bytes`.
    fields_len: u32,
    series_hash: u64,
}

impl Entry {
    fn matches(&self, tenant: Tenant, fields: &[u8]) -> bool {
        self.tenant == tenant && self.bytes.get(..self.fields_len as usize) == Some(fields)
    }
}

/// Label fields → (series hash, canonical key without tenant), sharded, bounded in bytes.
/// A budget of 0 keeps nothing.
pub struct LabelCache {
    shards: Vec<Mutex<Shard>>,
    seed: u64,
    /// All ones; zero in tests that make every look-up hash collide.
    hash_mask: u64,
    enabled: bool,
}

impl LabelCache {
    /// An empty cache of at most about `max_bytes` (0: the cache is off).
    pub fn new(max_bytes: usize) -> Self {
        LabelCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Rotating::new(max_bytes / SHARDS)))
                .collect(),
            seed: RandomState::new().hash_one(0u64),
            hash_mask: u64::MAX,
            enabled: max_bytes > 0,
        }
    }

    fn hash(&self, tenant: Tenant, fields: &[u8]) -> u64 {
        let seed = self.seed ^ u64::from_be_bytes(tenant.to_be_bytes());
        xxhash_rust::xxh3::xxh3_64_with_seed(fields, seed) & self.hash_mask
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// When `fields` (a `TimeSeries`' label fields as received) of `tenant` are kept,
    /// calls `f` with the series hash and the canonical key without its tenant prefix and
    /// returns true; false (and `f` is not called) otherwise.
    pub fn with(&self, tenant: Tenant, fields: &[u8], f: impl FnOnce(u64, &[u8])) -> bool {
        if !self.enabled {
            return false;
        }
        let hash = self.hash(tenant, fields);
        let mut shard = self.shard(hash).lock().unwrap_or_else(PoisonError::into_inner);
        shard
            .with(&hash, |e| {
                let hit = e.matches(tenant, fields);
                if hit {
                    f(e.series_hash, &e.bytes[e.fields_len as usize..]);
                }
                hit
            })
            .unwrap_or(false)
    }

    /// Keeps the label set whose label fields are `fields`: `series_hash` and
    /// `key_labels` are what the full path made of them (a valid label set). Replaces a
    /// label set with the same look-up hash. Fields over 4 GiB are not kept.
    pub fn insert(&self, tenant: Tenant, fields: &[u8], series_hash: u64, key_labels: &[u8]) {
        let Ok(fields_len) = u32::try_from(fields.len()) else {
            return;
        };
        if !self.enabled {
            return;
        }
        let mut bytes = Vec::with_capacity(fields.len() + key_labels.len());
        bytes.extend_from_slice(fields);
        bytes.extend_from_slice(key_labels);
        let cost = bytes.len() + ENTRY_OVERHEAD_BYTES;
        let entry = Entry {
            tenant,
            bytes: bytes.into_boxed_slice(),
            fields_len,
            series_hash,
        };
        let hash = self.hash(tenant, fields);
        self.shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash, entry, cost);
    }

    /// Bytes held (the estimate the budget counts) and entries, over all shards.
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(bytes, entries), s| {
            let s = s.lock().unwrap_or_else(PoisonError::into_inner);
            (bytes + s.bytes(), entries + s.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(cache: &LabelCache, tenant: Tenant, fields: &[u8]) -> Option<(u64, Vec<u8>)> {
        let mut out = None;
        cache.with(tenant, fields, |h, k| out = Some((h, k.to_vec())));
        out
    }

    #[test]
    fn answers_only_the_same_bytes_of_the_same_tenant() {
        let cache = LabelCache::new(1 << 20);
        let t0 = Tenant::default();
        let t1 = Tenant {
            account_id: 1,
            project_id: 0,
        };
        assert_eq!(kept(&cache, t0, b"fields-a"), None);
        cache.insert(t0, b"fields-a", 7, b"key-a");
        assert_eq!(kept(&cache, t0, b"fields-a"), Some((7, b"key-a".to_vec())));
        assert_eq!(kept(&cache, t1, b"fields-a"), None);
        assert_eq!(kept(&cache, t0, b"fields-b"), None);
        assert_eq!(kept(&cache, t0, b"fields-"), None);
        let (bytes, entries) = cache.usage();
        assert_eq!(entries, 1);
        assert_eq!(bytes, b"fields-a".len() + b"key-a".len() + ENTRY_OVERHEAD_BYTES);
    }

    #[test]
    fn label_sets_whose_hashes_collide_are_told_apart() {
        let cache = LabelCache {
            hash_mask: 0,
            ..LabelCache::new(1 << 20)
        };
        let t0 = Tenant::default();
        let t1 = Tenant {
            account_id: 1,
            project_id: 0,
        };
        cache.insert(t0, b"fields-a", 1, b"key-a");
        assert_eq!(kept(&cache, t0, b"fields-b"), None);
        assert_eq!(kept(&cache, t1, b"fields-a"), None);
        assert_eq!(kept(&cache, t0, b"fields-a"), Some((1, b"key-a".to_vec())));
        // One hash, one entry: the later label set replaces the earlier.
        cache.insert(t1, b"fields-a", 2, b"key-a1");
        assert_eq!(kept(&cache, t0, b"fields-a"), None);
        assert_eq!(kept(&cache, t1, b"fields-a"), Some((2, b"key-a1".to_vec())));
        assert_eq!(cache.usage().1, 1);
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = LabelCache::new(0);
        cache.insert(Tenant::default(), b"f", 1, b"k");
        assert_eq!(kept(&cache, Tenant::default(), b"f"), None);
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn stays_within_its_budget() {
        let budget = 64 << 10;
        let cache = LabelCache::new(budget);
        for i in 0..10_000u32 {
            let fields = format!("fields-{i}");
            cache.insert(Tenant::default(), fields.as_bytes(), u64::from(i), b"some key bytes");
        }
        let (bytes, entries) = cache.usage();
        assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
        assert!(entries > 100, "only {entries} entries kept");
        // The most recent label sets are kept.
        assert_eq!(
            kept(&cache, Tenant::default(), b"fields-9999").map(|(h, _)| h),
            Some(9999)
        );
    }
}
