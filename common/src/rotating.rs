//! A map of bounded size for caches of look-ups that requests repeat: entries live in two
//! generations. When the current one reaches half the budget it becomes the previous one
//! and the old previous is dropped; an entry found in the previous generation moves back
//! to the current one. So what is used at least once per rotation stays, and no entry
//! needs a use counter or a list. Each entry has a cost given by the caller (its bytes,
//! or 1 to bound the number of entries).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

/// A map of bounded size that forgets what was not used for two rotations; its keys are
/// hashed by `S` (the standard library's SipHash by default).
#[derive(Debug)]
pub struct Rotating<K, V, S = RandomState> {
    current: HashMap<K, (V, usize), S>,
    previous: HashMap<K, (V, usize), S>,
    current_bytes: usize,
    previous_bytes: usize,
    /// Budget of one generation: half the cache's.
    half_bytes: usize,
}

impl<K: Hash + Eq, V: Clone, S: BuildHasher + Default> Rotating<K, V, S> {
    /// The value of `key`, moved to the current generation if it was in the previous one.
    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with(key, V::clone)
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Rotating<K, V, S> {
    /// An empty map of at most `max_bytes` (each generation half of it).
    pub fn new(max_bytes: usize) -> Self {
        Rotating {
            current: HashMap::default(),
            previous: HashMap::default(),
            current_bytes: 0,
            previous_bytes: 0,
            half_bytes: max_bytes / 2,
        }
    }

    /// `f` of the value of `key` (moved to the current generation if it was in the
    /// previous one), without a copy of the value; None if the key is not held.
    pub fn with<Q, R>(&mut self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((v, _)) = self.current.get(key) {
            return Some(f(v));
        }
        let (k, (v, bytes)) = self.previous.remove_entry(key)?;
        self.previous_bytes -= bytes;
        let out = f(&v);
        self.insert(k, v, bytes);
        Some(out)
    }

    /// Keeps `value` under `key`, `bytes` being what the entry costs. An entry over the
    /// generation budget is not kept.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        if bytes > self.half_bytes {
            return;
        }
        if self.current_bytes + bytes > self.half_bytes {
            self.previous = std::mem::take(&mut self.current);
            self.previous_bytes = std::mem::replace(&mut self.current_bytes, 0);
        }
        if let Some((_, old)) = self.current.insert(key, (value, bytes)) {
            self.current_bytes -= old;
        }
        self.current_bytes += bytes;
    }

    /// The cost of every entry held, as given to [`Rotating::insert`].
    pub fn bytes(&self) -> usize {
        self.current_bytes + self.previous_bytes
    }

    /// Entries held, both generations.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_what_is_used_and_stays_in_budget() {
        // 100 bytes per generation, 10 bytes per entry: 10 entries each.
        let mut r: Rotating<u32, u32> = Rotating::new(200);
        for i in 0..10 {
            r.insert(i, i, 10);
        }
        assert_eq!(r.bytes(), 100);
        // The 11th rotates: 0..10 become the previous generation.
        r.insert(10, 10, 10);
        assert_eq!((r.current.len(), r.previous.len()), (1, 10));
        // A use moves an entry back to the current generation.
        assert_eq!(r.get(&3), Some(3));
        assert_eq!(r.bytes(), 110);
        for i in 11..20 {
            r.insert(i, i, 10);
        }
        // Rotated again: 0..10 except 3 are gone, 3 survived as a used entry.
        assert_eq!(r.get(&0), None);
        assert_eq!(r.get(&3), Some(3));
        assert!(r.bytes() <= 200);
        // Replacing an entry does not count it twice; an entry over the budget is not kept.
        let before = r.bytes();
        r.insert(3, 33, 10);
        assert_eq!(r.bytes(), before);
        r.insert(99, 99, 101);
        assert_eq!(r.get(&99), None);
    }
}
