//! The head: recent samples per series, in memory, in arrival order.
//!
//! Out-of-order and duplicate timestamps are accepted as they come; readers sort and keep
//! the last-arrived sample of a timestamp. A flush copies the samples, writes them as
//! blocks, then removes exactly the copied prefix of each series (samples that arrived
//! meanwhile stay).

use parking_lot::Mutex;

use crate::block::Sample;
use crate::index::hash::IdMap;

const SHARDS: usize = 16;

/// Per shard of the head, `(series ID, number of samples)` of every series with samples.
pub(crate) type HeadMarks = Vec<Vec<(u64, usize)>>;

/// Sharded map of series ID → samples.
pub(crate) struct Head {
    shards: Vec<Mutex<IdMap<Vec<Sample>>>>,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            shards: (0..SHARDS).map(|_| Mutex::new(IdMap::default())).collect(),
        }
    }
}

impl Head {
    fn shard_of(id: u64) -> usize {
        (id % SHARDS as u64) as usize
    }

    fn shard(&self, id: u64) -> &Mutex<IdMap<Vec<Sample>>> {
        &self.shards[Self::shard_of(id)]
    }

    /// Appends samples of series `id`.
    pub(crate) fn append(&self, id: u64, samples: &[Sample]) {
        self.shard(id).lock().entry(id).or_default().extend_from_slice(samples);
    }

    /// Appends the samples of several series: `runs` lists (series ID, number of
    /// samples) in order and `samples` holds the runs one after the other. Takes each
    /// shard's lock once.
    pub(crate) fn append_runs(&self, runs: &[(u64, usize)], samples: &[Sample]) {
        // Counting sort of the runs by shard: `order` lists (run start, run index)
        // shard after shard.
        let mut counts = [0usize; SHARDS + 1];
        for &(id, _) in runs {
            counts[Self::shard_of(id) + 1] += 1;
        }
        for i in 1..=SHARDS {
            counts[i] += counts[i - 1];
        }
        let ends: [usize; SHARDS] = std::array::from_fn(|i| counts[i + 1]);
        let mut order = vec![(0usize, 0usize); runs.len()];
        let mut start = 0;
        for (i, &(id, n)) in runs.iter().enumerate() {
            let slot = &mut counts[Self::shard_of(id)];
            order[*slot] = (start, i);
            *slot += 1;
            start += n;
        }
        let mut from = 0;
        for (shard, &end) in self.shards.iter().zip(&ends) {
            if from == end {
                continue;
            }
            let mut g = shard.lock();
            for &(start, i) in &order[from..end] {
                let (id, n) = runs[i];
                if let Some(run) = samples.get(start..start + n) {
                    g.entry(id).or_default().extend_from_slice(run);
                }
            }
            from = end;
        }
    }

    /// How many samples each series holds now, shard by shard: what a flush will copy
    /// with [`Head::copy_marked`], one shard at a time, so that it never holds a copy of
    /// the whole head.
    pub(crate) fn marks(&self) -> HeadMarks {
        self.shards
            .iter()
            .map(|shard| {
                let g = shard.lock();
                g.iter()
                    .filter(|(_, s)| !s.is_empty())
                    .map(|(id, s)| (*id, s.len()))
                    .collect()
            })
            .collect()
    }

    /// A copy of the first `n` samples (in arrival order) of each `(id, n)` of `marks`,
    /// which are the marks of shard `shard` taken by [`Head::marks`].
    pub(crate) fn copy_marked(&self, shard: usize, marks: &[(u64, usize)]) -> Vec<(u64, Vec<Sample>)> {
        let Some(shard) = self.shards.get(shard) else {
            return Vec::new();
        };
        let g = shard.lock();
        marks
            .iter()
            .filter_map(|&(id, n)| g.get(&id).map(|s| (id, s[..n.min(s.len())].to_vec())))
            .collect()
    }

    /// Removes the first `n` samples of each listed series; series left empty are
    /// removed from the head.
    pub(crate) fn remove_flushed(&self, flushed: &[(u64, usize)]) {
        for &(id, n) in flushed {
            let mut g = self.shard(id).lock();
            if let Some(s) = g.get_mut(&id) {
                s.drain(..n.min(s.len()));
                if s.is_empty() {
                    g.remove(&id);
                }
            }
        }
    }

    /// Samples of series `id` with timestamps in `[start_ms, end_ms]`, in arrival order.
    pub(crate) fn samples_in(&self, id: u64, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        let g = self.shard(id).lock();
        g.get(&id)
            .map(|s| {
                s.iter()
                    .filter(|(t, _)| *t >= start_ms && *t <= end_ms)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of series with samples in the head.
    pub(crate) fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Number of samples in the head.
    pub(crate) fn sample_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().values().map(Vec::len).sum::<usize>())
            .sum()
    }
}

/// Sorts samples by timestamp and keeps, for each timestamp, the one that comes last in
/// the input (input order = precedence: older blocks, newer blocks, then the head in
/// arrival order).
pub(crate) fn sort_dedup(mut s: Vec<Sample>) -> Vec<Sample> {
    // Stable sort keeps precedence among equal timestamps.
    s.sort_by_key(|x| x.0);
    let mut out: Vec<Sample> = Vec::with_capacity(s.len());
    for x in s {
        match out.last_mut() {
            Some(last) if last.0 == x.0 => *last = x,
            _ => out.push(x),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_dedup_keeps_the_last_arrived_sample_per_timestamp() {
        let s = vec![(3, 30), (1, 10), (3, 31), (2, 20), (1, 11)];
        assert_eq!(sort_dedup(s), vec![(1, 11), (2, 20), (3, 31)]);
    }

    /// Every marked prefix, shard after shard.
    fn copy_all(h: &Head, marks: &HeadMarks) -> Vec<(u64, Vec<Sample>)> {
        (0..marks.len()).flat_map(|i| h.copy_marked(i, &marks[i])).collect()
    }

    #[test]
    fn remove_flushed_keeps_later_arrivals() {
        let h = Head::default();
        h.append(1, &[(10, 1), (5, 2)]);
        let marks = h.marks();
        h.append(1, &[(7, 3)]);
        h.append(2, &[(8, 4)]);
        // Samples that arrive after the marks are not part of the flush.
        assert_eq!(copy_all(&h, &marks), vec![(1, vec![(10, 1), (5, 2)])]);
        h.remove_flushed(&[(1, 2)]);
        assert_eq!(h.samples_in(1, i64::MIN, i64::MAX), vec![(7, 3)]);
        h.remove_flushed(&[(1, 1), (2, 1)]);
        assert_eq!(h.series_count(), 0);
    }

    #[test]
    fn append_runs_splits_samples_by_series_across_shards() {
        let h = Head::default();
        // Series 1 and 17 share a shard; 2 is in another. Runs in request order.
        h.append(17, &[(1, 100)]);
        let runs = [(1, 2), (2, 1), (17, 0), (1, 1), (17, 2)];
        let samples = [(10, 1), (11, 2), (20, 3), (12, 4), (30, 5), (31, 6)];
        h.append_runs(&runs, &samples);
        let all = |id| h.samples_in(id, i64::MIN, i64::MAX);
        assert_eq!(all(1), vec![(10, 1), (11, 2), (12, 4)]);
        assert_eq!(all(2), vec![(20, 3)]);
        assert_eq!(all(17), vec![(1, 100), (30, 5), (31, 6)]);
        assert_eq!(h.sample_count(), 7);
    }
}
