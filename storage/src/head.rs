//! The head: recent samples per series, in memory, in arrival order.
//!
//! Out-of-order and duplicate timestamps are accepted as they come; readers sort and keep
//! the last-arrived sample of a timestamp. A flush copies the samples, writes them as
//! blocks, then removes exactly the copied prefix of each series (samples that arrived
//! meanwhile stay).
//!
//! Samples are kept compressed: each series gathers up to [`TAIL_SAMPLES`] samples
//! (16 bytes each) in an open tail, then seals them into a chunk coded as a block
//! ([`block::encode_quick`]: ~1–2 bytes per sample on scrape data instead of 16).
//! A chunk's samples are sorted by timestamp, stably, so equal timestamps keep their
//! arrival order within it; chunks stay in arrival order. Taking a flush's marks seals
//! every tail, so a flush always removes whole chunks.

use parking_lot::Mutex;

use crate::block::{self, Sample};
use crate::index::hash::IdMap;
use crate::shard_groups::ShardGroups;

const SHARDS: usize = 16;

/// Samples a series gathers uncompressed before they are sealed into a chunk.
pub(crate) const TAIL_SAMPLES: usize = 32;

/// Bytes of allocator bookkeeping per chunk, counted by [`Head::memory_bytes`] (an
/// estimate).
const CHUNK_OVERHEAD_BYTES: usize = 16;

/// Per shard of the head, `(series ID, number of samples)` of every series with samples.
pub(crate) type HeadMarks = Vec<Vec<(u64, usize)>>;

/// Sealed samples of a series: a block of `count` samples.
struct Chunk {
    block: Box<[u8]>,
    count: usize,
}

impl Chunk {
    /// Whether the chunk's time range meets `[start_ms, end_ms]` (not when its header
    /// does not decode).
    fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        block::time_range(&self.block).is_ok_and(|(first, last)| last >= start_ms && first <= end_ms)
    }

    /// The chunk's samples. A chunk that fails to decode (memory the process wrote
    /// itself, so not expected) yields none, and an error is logged.
    fn samples(&self) -> Vec<Sample> {
        block::decode(&self.block).unwrap_or_else(|e| {
            tracing::error!(error = %e, "undecodable head chunk skipped");
            Vec::new()
        })
    }
}

/// The samples of one series in the head: sealed chunks, then the open tail.
#[derive(Default)]
struct HeadSeries {
    chunks: Vec<Chunk>,
    tail: Vec<Sample>,
    /// Samples in `chunks` and `tail`.
    count: usize,
}

impl HeadSeries {
    fn push(&mut self, mut samples: &[Sample]) {
        self.count += samples.len();
        while !samples.is_empty() {
            // The tail grows as samples come (a series with a handful of samples, as
            // under churn, holds a handful), up to TAIL_SAMPLES, and keeps its room
            // once sealed.
            let room = TAIL_SAMPLES.saturating_sub(self.tail.len()).max(1);
            let n = room.min(samples.len());
            let needed = self.tail.len() + n;
            if needed > self.tail.capacity() {
                let target = (self.tail.capacity() * 2).max(needed).clamp(4, TAIL_SAMPLES);
                self.tail.reserve_exact(target - self.tail.len());
            }
            if let [one] = samples {
                // One sample per series and request, as Prometheus sends: no copy call.
                self.tail.push(*one);
            } else {
                self.tail.extend_from_slice(&samples[..n]);
            }
            samples = &samples[n..];
            if self.tail.len() >= TAIL_SAMPLES {
                self.seal();
            }
        }
    }

    /// Moves the tail into a new chunk (nothing when the tail is empty).
    fn seal(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        // Most series hold one chunk between flushes when they are short-lived (churn):
        // room for exactly one, not the four a first push reserves.
        if self.chunks.capacity() == 0 {
            self.chunks.reserve_exact(1);
        }
        self.chunks.push(Chunk {
            block: block::encode_quick(&self.tail).into_boxed_slice(),
            count: self.tail.len(),
        });
        if self.tail.len() < TAIL_SAMPLES {
            // Sealed early, for a flush: a series this slow (or short-lived) gives its
            // room back rather than holding it next to the new chunk.
            self.tail = Vec::new();
        } else {
            self.tail.clear();
        }
    }

    /// The first `n` samples in arrival order (chunk by chunk; whole chunks, as marks
    /// fall on chunk boundaries).
    fn first(&self, n: usize) -> Vec<Sample> {
        let mut out = Vec::with_capacity(n.min(self.count));
        for c in &self.chunks {
            if out.len() >= n {
                break;
            }
            out.extend(c.samples());
        }
        if out.len() < n {
            let rest = n - out.len();
            out.extend_from_slice(&self.tail[..rest.min(self.tail.len())]);
        }
        out
    }

    /// Removes the first `n` samples in arrival order.
    fn remove_first(&mut self, n: usize) {
        let mut left = n.min(self.count);
        self.count -= left;
        let whole = self.chunks.iter().take_while(|c| {
            let fits = c.count <= left;
            if fits {
                left -= c.count;
            }
            fits
        });
        let whole = whole.count();
        self.chunks.drain(..whole);
        if left == 0 {
            return;
        }
        // A mark inside a chunk: not made by `Head::marks`, which seals the tails first.
        if let Some(c) = self.chunks.first_mut() {
            let rest = c.samples().split_off(left.min(c.count));
            *c = Chunk {
                count: rest.len(),
                block: block::encode_quick(&rest).into_boxed_slice(),
            };
        } else {
            self.tail.drain(..left.min(self.tail.len()));
        }
    }

    /// Samples with timestamps in `[start_ms, end_ms]`, chunk by chunk, then the tail.
    fn samples_in(&self, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        let keep = |t: i64| t >= start_ms && t <= end_ms;
        for c in self.chunks.iter().filter(|c| c.overlaps(start_ms, end_ms)) {
            out.extend(c.samples().into_iter().filter(|s| keep(s.0)));
        }
        out.extend(self.tail.iter().filter(|s| keep(s.0)).copied());
        out
    }

    /// Blocks holding the samples of the series that may fall in `[start_ms, end_ms]`:
    /// the chunks that overlap it as they are, then the tail's samples in it as a new
    /// block. In arrival order; samples outside the range may be included.
    fn blocks_in(&self, start_ms: i64, end_ms: i64) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .chunks
            .iter()
            .filter(|c| c.overlaps(start_ms, end_ms))
            .map(|c| c.block.to_vec())
            .collect();
        let tail: Vec<Sample> = self
            .tail
            .iter()
            .filter(|s| s.0 >= start_ms && s.0 <= end_ms)
            .copied()
            .collect();
        if !tail.is_empty() {
            out.push(block::encode_quick(&tail));
        }
        out
    }

    fn memory_bytes(&self) -> usize {
        self.tail.capacity() * std::mem::size_of::<Sample>()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self
                .chunks
                .iter()
                .map(|c| c.block.len() + CHUNK_OVERHEAD_BYTES)
                .sum::<usize>()
    }
}

/// Sharded map of series ID → samples.
pub(crate) struct Head {
    shards: Vec<Mutex<IdMap<HeadSeries>>>,
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

    fn shard(&self, id: u64) -> &Mutex<IdMap<HeadSeries>> {
        &self.shards[Self::shard_of(id)]
    }

    /// Appends samples of series `id`.
    pub(crate) fn append(&self, id: u64, samples: &[Sample]) {
        self.shard(id).lock().entry(id).or_default().push(samples);
    }

    /// Appends the samples of several series: `runs` lists (series ID, number of
    /// samples) in order and `samples` holds the runs one after the other. Takes each
    /// shard's lock once.
    pub(crate) fn append_runs(&self, runs: &[(u64, usize)], samples: &[Sample]) {
        // Where each run starts in `samples`.
        let starts: Vec<usize> = runs
            .iter()
            .scan(0usize, |at, &(_, n)| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        let groups: ShardGroups<SHARDS> = ShardGroups::new(runs.len(), |i| Self::shard_of(runs[i].0));
        for (shard, positions) in groups.iter() {
            let mut g = self.shards[shard].lock();
            for &i in positions {
                let (id, n) = runs[i];
                if let Some(run) = samples.get(starts[i]..starts[i] + n) {
                    g.entry(id).or_default().push(run);
                }
            }
        }
    }

    /// How many samples each series holds now, shard by shard: what a flush will copy
    /// with [`Head::copy_marked`], one shard at a time, so that it never holds a copy of
    /// the whole head. Seals every tail, so that each mark ends on a chunk boundary.
    pub(crate) fn marks(&self) -> HeadMarks {
        self.shards
            .iter()
            .map(|shard| {
                let mut g = shard.lock();
                g.iter_mut()
                    .filter(|(_, s)| s.count > 0)
                    .map(|(id, s)| {
                        s.seal();
                        (*id, s.count)
                    })
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
            .filter_map(|&(id, n)| g.get(&id).map(|s| (id, s.first(n))))
            .collect()
    }

    /// Removes the first `n` samples of each listed series; series left empty are
    /// removed from the head.
    pub(crate) fn remove_flushed(&self, flushed: &[(u64, usize)]) {
        for &(id, n) in flushed {
            let mut g = self.shard(id).lock();
            if let Some(s) = g.get_mut(&id) {
                s.remove_first(n);
                if s.count == 0 {
                    g.remove(&id);
                }
            }
        }
    }

    /// Samples of series `id` with timestamps in `[start_ms, end_ms]`, in arrival order
    /// (by chunk; sorted within a chunk).
    pub(crate) fn samples_in(&self, id: u64, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        let g = self.shard(id).lock();
        g.get(&id).map(|s| s.samples_in(start_ms, end_ms)).unwrap_or_default()
    }

    /// The samples of series `id` that may fall in `[start_ms, end_ms]` as blocks, in
    /// arrival order (a later block wins a shared timestamp); samples outside the range
    /// may be included.
    pub(crate) fn blocks_in(&self, id: u64, start_ms: i64, end_ms: i64) -> Vec<Vec<u8>> {
        let g = self.shard(id).lock();
        g.get(&id).map(|s| s.blocks_in(start_ms, end_ms)).unwrap_or_default()
    }

    /// Number of series with samples in the head.
    pub(crate) fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Number of samples in the head.
    pub(crate) fn sample_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().values().map(|s| s.count).sum::<usize>())
            .sum()
    }

    /// Estimated memory of the head, bytes: chunks, tails and per-series bookkeeping.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let g = s.lock();
                g.capacity() * (std::mem::size_of::<(u64, HeadSeries)>() + 1)
                    + g.values().map(HeadSeries::memory_bytes).sum::<usize>()
            })
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
        // Taking the marks sealed the tail: its chunk holds the samples sorted.
        assert_eq!(copy_all(&h, &marks), vec![(1, vec![(5, 2), (10, 1)])]);
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

    /// `n` samples one second apart from `t0`, values `v0, v0 + 1, …`.
    fn regular(t0: i64, n: usize, v0: f64) -> Vec<Sample> {
        (0..n)
            .map(|i| (t0 + i as i64 * 1_000, (v0 + i as f64).to_bits()))
            .collect()
    }

    #[test]
    fn samples_survive_sealing_bit_exact_in_order() {
        let h = Head::default();
        let mut want = regular(0, 3 * TAIL_SAMPLES + 5, 1.0);
        // Values the codec must keep bit for bit: a NaN payload, the staleness marker,
        // infinities and negative zero.
        want[3].1 = 0x7ff8_0000_dead_beef;
        want[TAIL_SAMPLES].1 = cairn_common::STALE_NAN_BITS;
        want[TAIL_SAMPLES + 1].1 = f64::INFINITY.to_bits();
        want[2 * TAIL_SAMPLES + 2].1 = (-0.0f64).to_bits();
        // Appended in uneven pieces that straddle the chunk boundaries.
        for piece in want.chunks(7) {
            h.append(9, piece);
        }
        assert_eq!(h.sample_count(), want.len());
        assert_eq!(h.samples_in(9, i64::MIN, i64::MAX), want);
        // A time range cuts across chunks and the tail.
        let (lo, hi) = (want[10].0, want[3 * TAIL_SAMPLES + 2].0);
        let cut: Vec<Sample> = want.iter().filter(|s| s.0 >= lo && s.0 <= hi).copied().collect();
        assert_eq!(h.samples_in(9, lo, hi), cut);
    }

    #[test]
    fn a_flush_removes_the_marked_chunks_and_keeps_what_came_after() {
        let h = Head::default();
        let before = regular(0, TAIL_SAMPLES + 10, 0.0);
        h.append(4, &before);
        let marks = h.marks();
        assert_eq!(
            marks.iter().flatten().copied().collect::<Vec<_>>(),
            vec![(4, before.len())]
        );
        // Enough later samples to seal new chunks after the marks.
        let after = regular(1_000_000, 2 * TAIL_SAMPLES + 3, 500.0);
        h.append(4, &after);
        assert_eq!(copy_all(&h, &marks), vec![(4, before.clone())]);
        h.remove_flushed(&[(4, before.len())]);
        assert_eq!(h.samples_in(4, i64::MIN, i64::MAX), after);
        assert_eq!(h.sample_count(), after.len());
    }

    #[test]
    fn a_duplicate_timestamp_keeps_its_arrival_order_across_chunks() {
        let h = Head::default();
        let mut first = regular(0, TAIL_SAMPLES, 0.0);
        first[5] = (5_000, 111);
        h.append(1, &first);
        h.append(1, &[(5_000, 222)]);
        // Readers keep the last-arrived sample of a timestamp.
        let got = sort_dedup(h.samples_in(1, 5_000, 5_000));
        assert_eq!(got, vec![(5_000, 222)]);
    }

    #[test]
    fn the_head_holds_regular_samples_in_far_less_than_sixteen_bytes_each() {
        let h = Head::default();
        let series = 100u64;
        let per_series = 20 * TAIL_SAMPLES;
        for id in 0..series {
            // A counter with uneven increments, as a scrape gives.
            let mut v = 1e6;
            let s: Vec<Sample> = (0..per_series)
                .map(|i| {
                    v += (i * 37 % 61) as f64;
                    (i as i64 * 15_000, f64::to_bits(v))
                })
                .collect();
            h.append(id, &s);
        }
        let per_sample = h.memory_bytes() as f64 / (series as usize * per_series) as f64;
        assert!(per_sample < 6.0, "{per_sample:.2} bytes per sample");
    }

    #[test]
    fn a_series_with_a_few_samples_holds_room_for_a_few() {
        let h = Head::default();
        for id in 0..10_000u64 {
            h.append(id, &regular(0, 3, 1.0));
            h.append(id, &regular(3_000, 2, 4.0));
        }
        // Five samples take 80 bytes; the rest is the map entry and the tail's slack.
        let per_series = h.memory_bytes() / 10_000;
        assert!(per_series < 256, "{per_series} bytes per series");
        // Taking a flush's marks seals every tail: the chunks take less than the tails
        // they replace, so a flush does not raise the head's memory under churn.
        let before = h.memory_bytes();
        let _ = h.marks();
        let after = h.memory_bytes();
        assert!(after <= before, "{before} -> {after} bytes");
        assert!(
            after / 10_000 < 200,
            "{} bytes per series after the marks",
            after / 10_000
        );
        // A tail filled in uneven pieces never holds more than TAIL_SAMPLES of room.
        let mut s = HeadSeries::default();
        s.push(&regular(0, TAIL_SAMPLES - 4, 0.0));
        s.push(&regular(1_000_000, 3, 0.0));
        assert!(s.tail.capacity() <= TAIL_SAMPLES, "{}", s.tail.capacity());
    }
}
