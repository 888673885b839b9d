//! The hash function of the in-memory maps on the write path: series-key fingerprint →
//! series ID, series ID → head samples, and the `(series ID, day)` sets of indexed days.
//!
//! The standard library's SipHash resists hash flooding but costs more than these maps,
//! looked up once per sample, can spend. Their keys are integers (fingerprints are
//! already keyed SipHash outputs, see `engine::series_cache`): they are hashed with a
//! 64 × 64 → 128-bit multiply whose halves are folded together, so every input bit
//! reaches the low bits that pick a bucket (series IDs sharing a residue modulo a shard
//! count must still spread within the shard). Each map draws a random seed when created.
//! A byte string, should one be hashed, goes through one seeded xxh3 call.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
/// Odd multiplier of the integer mix (the 64-bit golden-ratio constant, rotated).
const MUL: u64 = 0x5851_f42d_4c95_7f2d;

/// A [`Hasher`] for series keys and series IDs; see the module documentation.
#[derive(Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn mix(&mut self, x: u64) {
        let p = u128::from(self.0 ^ x).wrapping_mul(u128::from(MUL));
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    // A byte string's length prefix: the bytes that follow are hashed whole, and each
    // map here is keyed by a single byte string, so the length adds nothing.
    fn write_usize(&mut self, _len: usize) {}

    fn write_u64(&mut self, x: u64) {
        self.mix(x);
    }

    fn write_u32(&mut self, x: u32) {
        self.mix(u64::from(x));
    }

    // Series-key fingerprints: already uniform, both halves folded in.
    fn write_u128(&mut self, x: u128) {
        self.mix(x as u64 ^ (x >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FastHasher`]s from a seed drawn at random when the map is created (the
/// seed also makes the byte-string hash differ from the unseeded xxh3 that picks a
/// series shard, so the keys of one shard do not share bucket bits).
#[derive(Clone, Copy)]
pub(crate) struct FastBuildHasher {
    seed: u64,
}

impl Default for FastBuildHasher {
    fn default() -> Self {
        // Odd, so a zero seed (which would leave the integer mix without a constant)
        // cannot occur.
        FastBuildHasher {
            seed: RandomState::new().hash_one(0u64) | 1,
        }
    }
}

impl BuildHasher for FastBuildHasher {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

/// A map keyed by series IDs.
pub(crate) type IdMap<V> = HashMap<u64, V, FastBuildHasher>;

/// A set of `(series ID, day)` pairs.
pub(crate) type DaySet = HashSet<(u64, u32), FastBuildHasher>;

/// `(series ID, day)` pairs by the state of their per-day postings. A series' current
/// day is usually noted in its series-cache entry instead, so `written` holds the pairs
/// of other days (late samples, WAL replay).
#[derive(Default)]
pub(crate) struct IndexedDays {
    /// Postings written.
    pub(crate) written: DaySet,
    /// Postings being written by a write that may still fail.
    pub(crate) in_flight: DaySet,
}

impl IndexedDays {
    /// Pairs held.
    pub(crate) fn len(&self) -> usize {
        self.written.len() + self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_shard_spread_over_buckets() {
        // IDs ≡ 3 (mod 16), as in one head shard: the low 8 bits of their hashes (the
        // bucket of a 256-bucket table) must take many values, not one.
        let b = FastBuildHasher::default();
        let mut seen = std::collections::BTreeSet::new();
        for id in (3..16 * 256).step_by(16) {
            seen.insert(b.hash_one(id as u64) & 0xff);
        }
        assert!(seen.len() > 128, "only {} distinct buckets", seen.len());
    }
}
