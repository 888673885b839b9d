//! The in-memory map of canonical series key → series ID in front of the index, bounded
//! in bytes.
//!
//! Keys are not kept: each entry is found by the key's 128-bit SipHash-1-3 fingerprint
//! under a key drawn at random when the cache is created. A look-up then hashes the key
//! once and reads one compact table slot, where a byte-keyed map would also read the
//! stored key (a cache miss per sample) and hold it (~200 bytes per series). SipHash is
//! a keyed pseudo-random function (Aumasson and Bernstein, "SipHash: a fast short-input
//! PRF", 2012): without the key, a client cannot craft two series with one fingerprint,
//! and two series of a node share one by chance with probability about n² / 2¹²⁹ (below
//! 10⁻²⁰ for a billion series). The index, which the cache only fronts, is keyed by the
//! whole key.
//!
//! Each shard keeps two generations. New entries and hits go to the current one; when it
//! grows past half the shard's budget it becomes the previous generation and the old
//! previous one is dropped. A hit in the previous generation moves the entry back to the
//! current one. So a series written at least once per rotation stays cached, memory stays
//! under the budget, and a series unseen for two rotations (churned away) is forgotten:
//! its next write looks it up in the index (RocksDB) again.
//!
//! An entry also remembers the last day whose per-day postings the series is known to
//! have (see [`SeriesCache::note_indexed_day`]), so a sample of that day needs no other
//! look-up on the write path.
//!
//! Sizes are estimates: [`ENTRY_BYTES`] per entry.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::index::hash::FastBuildHasher;
use crate::shard_groups::ShardGroups;

const SHARDS: usize = 16;

/// Estimated bytes per entry: the fingerprint (16), the entry (24), the hash table's
/// control byte and its slack at the usual load (~16).
pub(crate) const ENTRY_BYTES: u64 = 56;

/// `SeriesEntry::day` of an entry with no day noted.
const NO_DAY: u32 = u32::MAX;

/// A series key's keyed 128-bit fingerprint.
pub(crate) type Fingerprint = u128;

/// A known series: its ID, until a WAL record of it is known to be durable the flag the
/// commit thread sets when it is, and the last day noted as indexed ([`NO_DAY`] if none).
struct SeriesEntry {
    id: u64,
    pending: Option<Arc<AtomicBool>>,
    day: u32,
}

impl SeriesEntry {
    /// The ID, the durability flag while it is still unset (a set flag is dropped) and
    /// the noted day.
    fn found(&mut self) -> Found {
        if self.pending.as_ref().is_some_and(|f| f.load(Ordering::Acquire)) {
            self.pending = None;
        }
        Found {
            id: self.id,
            pending: self.pending.clone(),
            indexed_day: (self.day != NO_DAY).then_some(self.day),
        }
    }
}

#[derive(Default)]
struct Generation {
    map: HashMap<Fingerprint, SeriesEntry, FastBuildHasher>,
}

#[derive(Default)]
struct Shard {
    current: Generation,
    previous: Generation,
}

/// Series key → (series ID, durability flag), sharded, bounded by a byte budget.
pub(crate) struct SeriesCache {
    shards: Vec<Mutex<Shard>>,
    /// The fingerprint's SipHash key, random per cache.
    sip_key: [u64; 2],
    /// Entries one shard's current generation may hold before it rotates.
    generation_entries: usize,
    entries: AtomicU64,
}

/// What a look-up found.
#[derive(Debug)]
pub(crate) struct Found {
    /// The series ID.
    pub(crate) id: u64,
    /// When no WAL record of the series is known to be durable yet, its durability flag.
    pub(crate) pending: Option<Arc<AtomicBool>>,
    /// The latest day (days since the Unix epoch, UTC) whose per-day postings of the
    /// series were written, as noted by [`SeriesCache::note_indexed_day`].
    pub(crate) indexed_day: Option<u32>,
}

impl SeriesCache {
    /// An empty cache holding at most about `max_bytes` (at least one entry per shard).
    pub(crate) fn new(max_bytes: u64) -> Self {
        let random = RandomState::new();
        SeriesCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            sip_key: [random.hash_one(1u64), random.hash_one(2u64)],
            generation_entries: (max_bytes / SHARDS as u64 / 2 / ENTRY_BYTES).max(1) as usize,
            entries: AtomicU64::new(0),
        }
    }

    /// The fingerprint of `key` under this cache's SipHash key.
    pub(crate) fn fingerprint(&self, key: &[u8]) -> Fingerprint {
        let mut h = SipHasher13::new_with_keys(self.sip_key[0], self.sip_key[1]);
        h.write(key);
        h.finish128().as_u128()
    }

    fn shard_index(fp: Fingerprint) -> usize {
        // The high half picks the shard; the table's hash mixes both halves.
        ((fp >> 64) as u64 % SHARDS as u64) as usize
    }

    fn shard(&self, fp: Fingerprint) -> &Mutex<Shard> {
        &self.shards[Self::shard_index(fp)]
    }

    /// The entry of `key`, if cached.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Found> {
        let fp = self.fingerprint(key);
        self.get_locked(&mut self.shard(fp).lock(), fp)
    }

    /// [`SeriesCache::get`] for each of `fps` (fingerprints of keys), in their order,
    /// taking each shard's lock once. Look-ups under one lock are independent loads the
    /// processor overlaps, whereas a lock per look-up is an atomic operation that orders
    /// them one after the other: a request's series are mostly out of every processor
    /// cache, so this is what a look-up costs.
    pub(crate) fn get_many(&self, fps: &[Fingerprint]) -> Vec<Option<Found>> {
        let mut out: Vec<Option<Found>> = (0..fps.len()).map(|_| None).collect();
        let groups: ShardGroups<SHARDS> = ShardGroups::new(fps.len(), |i| Self::shard_index(fps[i]));
        for (shard, positions) in groups.iter() {
            let mut g = self.shards[shard].lock();
            for &i in positions {
                out[i] = self.get_locked(&mut g, fps[i]);
            }
        }
        out
    }

    /// The entry of `fp` in `shard` (its lock held); a hit in the previous generation
    /// moves to the current one.
    fn get_locked(&self, shard: &mut Shard, fp: Fingerprint) -> Option<Found> {
        if let Some(e) = shard.current.map.get_mut(&fp) {
            return Some(e.found());
        }
        let mut entry = shard.previous.map.remove(&fp)?;
        let out = entry.found();
        self.entries.fetch_sub(1, Ordering::Relaxed);
        self.add(shard, fp, entry);
        Some(out)
    }

    /// Caches `key` → `id`; returns the durability flag (set when `durable`).
    pub(crate) fn insert(&self, key: &[u8], id: u64, durable: bool) -> Arc<AtomicBool> {
        let fp = self.fingerprint(key);
        let flag = Arc::new(AtomicBool::new(durable));
        let entry = SeriesEntry {
            id,
            pending: (!durable).then(|| flag.clone()),
            day: NO_DAY,
        };
        let mut shard = self.shard(fp).lock();
        if shard.previous.map.remove(&fp).is_some() {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
        self.add(&mut shard, fp, entry);
        flag
    }

    /// Notes that the per-day postings of the series whose key has fingerprint `fp` are
    /// written for `day`, when its entry is cached and holds no later day. Returns whether
    /// the entry now notes `day`. Only a writer that saw those postings written (not
    /// merely queued by another writer, whose write may still fail) may note a day.
    pub(crate) fn note_indexed_day(&self, fp: Fingerprint, day: u32) -> bool {
        let mut shard = self.shard(fp).lock();
        let Shard { current, previous } = &mut *shard;
        match current.map.get_mut(&fp).or_else(|| previous.map.get_mut(&fp)) {
            Some(e) if e.day == NO_DAY || e.day <= day => {
                e.day = day;
                true
            }
            _ => false,
        }
    }

    /// Adds to the current generation of `shard`, rotating it first when it is full.
    fn add(&self, shard: &mut Shard, fp: Fingerprint, entry: SeriesEntry) {
        if shard.current.map.len() >= self.generation_entries {
            let full = std::mem::take(&mut shard.current);
            let dropped = std::mem::replace(&mut shard.previous, full);
            self.entries.fetch_sub(dropped.map.len() as u64, Ordering::Relaxed);
            metrics::counter!("cairn_storage_series_cache_rotations_total").increment(1);
        }
        if shard.current.map.insert(fp, entry).is_none() {
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Estimated bytes held (entries of both generations).
    pub(crate) fn bytes(&self) -> u64 {
        self.len() * ENTRY_BYTES
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
        let mut k = vec![0u8; 16];
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    /// A budget of `n` entries per shard generation.
    fn budget(n: u64) -> u64 {
        SHARDS as u64 * 2 * n * ENTRY_BYTES
    }

    #[test]
    fn finds_what_it_holds_with_its_durability() {
        let c = SeriesCache::new(1 << 20);
        let flag = c.insert(&key(1), 7, false);
        c.insert(&key(2), 8, true);
        let Found { id, pending, .. } = c.get(&key(1)).expect("cached");
        assert_eq!(id, 7);
        assert!(pending.is_some(), "not durable yet");
        drop(pending);
        flag.store(true, Ordering::Release);
        assert!(c.get(&key(1)).expect("cached").pending.is_none());
        // The set flag was dropped from the entry: only the caller's copy is left.
        assert_eq!(Arc::strong_count(&flag), 1);
        assert_eq!(c.get(&key(2)).map(|f| f.id), Some(8));
        assert!(c.get(&key(3)).is_none());
        assert_eq!((c.len(), c.bytes()), (2, 2 * ENTRY_BYTES));
    }

    #[test]
    fn a_batched_look_up_answers_like_single_ones_in_order() {
        let c = SeriesCache::new(budget(8));
        for i in 0..200u32 {
            c.insert(&key(i), u64::from(i) + 1000, i % 3 == 0);
        }
        // Cached and uncached keys, repeated, in no particular order; some entries are
        // in the previous generation by now.
        let asked: Vec<u32> = (0..400u32).map(|i| (i * 7919) % 260).collect();
        let singles: Vec<Option<(u64, bool)>> = asked
            .iter()
            .map(|&i| c.get(&key(i)).map(|f| (f.id, f.pending.is_some())))
            .collect();
        let fps: Vec<Fingerprint> = asked.iter().map(|&i| c.fingerprint(&key(i))).collect();
        let batched: Vec<Option<(u64, bool)>> = c
            .get_many(&fps)
            .into_iter()
            .map(|f| f.map(|f| (f.id, f.pending.is_some())))
            .collect();
        assert_eq!(batched, singles);
        assert!(batched.iter().any(Option::is_none) && batched.iter().any(Option::is_some));
        for (&i, got) in asked.iter().zip(&batched) {
            if let Some((id, pending)) = got {
                assert_eq!((*id, *pending), (u64::from(i) + 1000, i % 3 != 0));
            }
        }
        assert!(c.get_many(&[]).is_empty());
    }

    #[test]
    fn a_noted_day_only_moves_forward_and_survives_a_rotation() {
        let c = SeriesCache::new(budget(10));
        c.insert(&key(1), 1, true);
        assert_eq!(c.get(&key(1)).expect("cached").indexed_day, None);
        let fp = c.fingerprint(&key(1));
        assert!(c.note_indexed_day(fp, 20_000));
        assert!(!c.note_indexed_day(fp, 19_999), "an earlier day is not noted");
        assert!(c.note_indexed_day(fp, 20_000));
        assert_eq!(c.get(&key(1)).expect("cached").indexed_day, Some(20_000));
        assert!(c.note_indexed_day(fp, 20_001));
        assert_eq!(c.get(&key(1)).expect("cached").indexed_day, Some(20_001));
        // Noting a day of an uncached key caches nothing.
        assert!(!c.note_indexed_day(c.fingerprint(&key(2)), 20_000));
        assert!(c.get(&key(2)).is_none());
        // Moved to the previous generation by other inserts, the entry keeps its day, and
        // a note reaches it there.
        let shard_of = |k: &[u8]| (c.fingerprint(k) >> 64) as u64 % SHARDS as u64;
        let mut same_shard = (2..).filter(|&i| shard_of(&key(i)) == shard_of(&key(1)));
        for i in same_shard.by_ref().take(10) {
            c.insert(&key(i), u64::from(i), true);
        }
        assert!(c.note_indexed_day(fp, 20_002));
        assert_eq!(c.get(&key(1)).expect("still cached").indexed_day, Some(20_002));
        // A re-inserted key (found again in the index) starts without a day.
        c.insert(&key(1), 1, true);
        assert_eq!(c.get(&key(1)).expect("cached").indexed_day, None);
    }

    #[test]
    fn keys_differing_in_one_byte_or_length_are_different_series() {
        let c = SeriesCache::new(1 << 30);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..50_000u32 {
            keys.push(key(i));
        }
        // Prefixes and extensions of one key.
        let long: Vec<u8> = (0..=255u8).collect();
        for n in 0..=long.len() {
            keys.push(long[..n].to_vec());
        }
        for (id, k) in keys.iter().enumerate() {
            c.insert(k, id as u64, true);
        }
        assert_eq!(c.len(), keys.len() as u64);
        for (id, k) in keys.iter().enumerate() {
            assert_eq!(c.get(k).map(|f| f.id), Some(id as u64), "key {k:?}");
        }
    }

    #[test]
    fn fingerprints_are_keyed_per_cache() {
        // Two caches (two nodes, or one node across a restart) fingerprint one series
        // key differently: collisions cannot be precomputed.
        let (a, b) = (SeriesCache::new(1 << 20), SeriesCache::new(1 << 20));
        assert_ne!(a.fingerprint(b"__name__\0up"), b.fingerprint(b"__name__\0up"));
        assert_eq!(a.fingerprint(b"__name__\0up"), a.fingerprint(b"__name__\0up"));
    }

    #[test]
    fn memory_stays_within_the_budget_under_churn() {
        // 16 shards × 2 generations × 10 entries.
        let c = SeriesCache::new(budget(10));
        for i in 0..100_000 {
            c.insert(&key(i), u64::from(i), true);
            assert!(c.bytes() <= budget(10), "{} bytes after {i} inserts", c.bytes());
        }
        assert!(c.len() > 16 * 10, "only {} entries", c.len());
        // The most recent series are still there; the first ones were forgotten.
        assert_eq!(c.get(&key(99_999)).map(|f| f.id), Some(99_999));
        assert!(c.get(&key(0)).is_none());
    }

    #[test]
    fn a_series_seen_every_rotation_stays_cached() {
        // Generations hold 10 entries: a key looked up again within any 10 inserts
        // (however they fall on the shards) is never two rotations old, whereas a key
        // never looked up is gone once 11+ inserts reach its shard.
        let c = SeriesCache::new(budget(10));
        c.insert(&key(u32::MAX), 1, true);
        for i in 0..100_000 {
            c.insert(&key(i), u64::from(i), true);
            if i % 10 == 0 {
                assert_eq!(c.get(&key(u32::MAX)).map(|f| f.id), Some(1), "lost after {i} inserts");
            }
        }
    }
}
