//! The in-memory map of canonical series key → series ID in front of the index, bounded
//! in bytes.
//!
//! Each shard keeps two generations. New entries and hits go to the current one; when it
//! grows past half the shard's budget it becomes the previous generation and the old
//! previous one is dropped. A hit in the previous generation moves the entry back to the
//! current one. So a series written at least once per rotation stays cached, memory stays
//! under the budget, and a series unseen for two rotations (churned away) is forgotten:
//! its next write looks it up in the index (RocksDB) again.
//!
//! Sizes are estimates: key bytes plus [`ENTRY_OVERHEAD_BYTES`] per entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::index::hash::KeyMap;

const SHARDS: usize = 16;

/// Estimated bytes per entry besides the key: the key's `Vec` header (24), the entry (16),
/// the durability flag's allocation (24) and the hash table's slot and control bytes at
/// its usual load (~16).
pub(crate) const ENTRY_OVERHEAD_BYTES: u64 = 80;

/// A known series: its ID and whether a WAL record of it is durable.
struct SeriesEntry {
    id: u64,
    durable: Arc<AtomicBool>,
}

#[derive(Default)]
struct Generation {
    map: KeyMap<SeriesEntry>,
    bytes: u64,
}

impl Generation {
    /// Inserts; returns the bytes added (0 when the key was there).
    fn insert(&mut self, key: Vec<u8>, entry: SeriesEntry) -> u64 {
        let size = entry_bytes(&key);
        if self.map.insert(key, entry).is_some() {
            return 0;
        }
        self.bytes += size;
        size
    }

    /// Removes `key`; returns the entry and the bytes freed.
    fn remove(&mut self, key: &[u8]) -> Option<(Vec<u8>, SeriesEntry, u64)> {
        let (k, e) = self.map.remove_entry(key)?;
        let size = entry_bytes(&k);
        self.bytes = self.bytes.saturating_sub(size);
        Some((k, e, size))
    }
}

fn entry_bytes(key: &[u8]) -> u64 {
    key.len() as u64 + ENTRY_OVERHEAD_BYTES
}

#[derive(Default)]
struct Shard {
    current: Generation,
    previous: Generation,
}

/// Series key → (series ID, durability flag), sharded, bounded by a byte budget.
pub(crate) struct SeriesCache {
    shards: Vec<Mutex<Shard>>,
    /// Bytes one shard's current generation may reach before it rotates.
    generation_budget: u64,
    /// Estimated bytes of every shard's two generations.
    bytes: AtomicU64,
    entries: AtomicU64,
}

/// What a look-up found: the series ID and, when no WAL record of the series is known
/// to be durable yet, its durability flag.
pub(crate) type Found = (u64, Option<Arc<AtomicBool>>);

impl SeriesCache {
    /// An empty cache holding at most about `max_bytes` (at least one entry per shard).
    pub(crate) fn new(max_bytes: u64) -> Self {
        SeriesCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            generation_budget: (max_bytes / SHARDS as u64 / 2).max(1),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = xxhash_rust::xxh3::xxh3_64(key);
        &self.shards[(h % SHARDS as u64) as usize]
    }

    /// The entry of `key`, if cached.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Found> {
        let found = |e: &SeriesEntry| {
            let pending = (!e.durable.load(Ordering::Acquire)).then(|| e.durable.clone());
            (e.id, pending)
        };
        let mut shard = self.shard(key).lock();
        if let Some(e) = shard.current.map.get(key) {
            return Some(found(e));
        }
        let (key, entry, freed) = shard.previous.remove(key)?;
        let out = found(&entry);
        self.sub(freed, 1);
        self.add(&mut shard, key, entry);
        Some(out)
    }

    /// Caches `key` → `id`; returns the durability flag (set when `durable`).
    pub(crate) fn insert(&self, key: Vec<u8>, id: u64, durable: bool) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(durable));
        let entry = SeriesEntry {
            id,
            durable: flag.clone(),
        };
        let mut shard = self.shard(&key).lock();
        if let Some((_, _, freed)) = shard.previous.remove(&key) {
            self.sub(freed, 1);
        }
        self.add(&mut shard, key, entry);
        flag
    }

    /// Adds to the current generation of `shard`, rotating it first when it is full.
    fn add(&self, shard: &mut Shard, key: Vec<u8>, entry: SeriesEntry) {
        if shard.current.bytes >= self.generation_budget {
            let full = std::mem::take(&mut shard.current);
            let dropped = std::mem::replace(&mut shard.previous, full);
            self.sub(dropped.bytes, dropped.map.len() as u64);
            metrics::counter!("cairn_storage_series_cache_rotations_total").increment(1);
        }
        let added = shard.current.insert(key, entry);
        if added > 0 {
            self.bytes.fetch_add(added, Ordering::Relaxed);
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sub(&self, bytes: u64, entries: u64) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.entries.fetch_sub(entries, Ordering::Relaxed);
    }

    /// Estimated bytes held (keys and entries of both generations).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Entries held.
    pub(crate) fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        // 20-byte keys: 100 bytes per entry with the overhead.
        let mut k = vec![0u8; 16];
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn finds_what_it_holds_with_its_durability() {
        let c = SeriesCache::new(1 << 20);
        let flag = c.insert(key(1), 7, false);
        c.insert(key(2), 8, true);
        let (id, pending) = c.get(&key(1)).expect("cached");
        assert_eq!(id, 7);
        assert!(pending.is_some(), "not durable yet");
        flag.store(true, Ordering::Release);
        assert!(c.get(&key(1)).expect("cached").1.is_none());
        assert_eq!(c.get(&key(2)).map(|f| f.0), Some(8));
        assert!(c.get(&key(3)).is_none());
        assert_eq!((c.len(), c.bytes()), (2, 200));
    }

    #[test]
    fn memory_stays_within_the_budget_under_churn() {
        // 16 shards × 2 generations × 1,000 bytes: at most 32,000 bytes (+ one entry per
        // generation that crosses the line).
        let budget = 32_000;
        let c = SeriesCache::new(budget);
        for i in 0..100_000 {
            c.insert(key(i), u64::from(i), true);
            assert!(c.bytes() <= budget + 32 * 100, "{} bytes after {i} inserts", c.bytes());
        }
        assert_eq!(c.bytes(), c.len() * 100);
        // The most recent series are still there; the first ones were forgotten.
        assert_eq!(c.get(&key(99_999)).map(|f| f.0), Some(99_999));
        assert!(c.get(&key(0)).is_none());
    }

    #[test]
    fn a_series_seen_every_rotation_stays_cached() {
        // Generations of 1,000 bytes hold 10 entries of 100 bytes: a key looked up again
        // within any 10 inserts (however they fall on the shards) is never two rotations
        // old, whereas a key never looked up is gone once 11+ inserts reach its shard.
        let c = SeriesCache::new(32_000);
        c.insert(key(u32::MAX), 1, true);
        for i in 0..100_000 {
            c.insert(key(i), u64::from(i), true);
            if i % 10 == 0 {
                assert_eq!(c.get(&key(u32::MAX)).map(|f| f.0), Some(1), "lost after {i} inserts");
            }
        }
    }
}
