//! A batch's items grouped by the shard of a sharded in-memory map (the head, the series
//! cache), so that a batch takes each shard's lock once instead of once per item.

/// The positions `0..len` of a batch grouped by shard: shard after shard, and within a
/// shard in batch order (a stable counting sort).
pub(crate) struct ShardGroups<const N: usize> {
    order: Vec<usize>,
    /// Where each shard's positions end in `order`.
    ends: [usize; N],
}

impl<const N: usize> ShardGroups<N> {
    /// Groups `len` items; `shard_of(i)` is the shard of item `i`, below `N` (it is
    /// called twice per item).
    pub(crate) fn new(len: usize, shard_of: impl Fn(usize) -> usize) -> Self {
        let mut counts = [0usize; N];
        for i in 0..len {
            counts[shard_of(i)] += 1;
        }
        let mut ends = [0usize; N];
        let mut total = 0;
        for (end, count) in ends.iter_mut().zip(counts) {
            total += count;
            *end = total;
        }
        let mut next: [usize; N] = std::array::from_fn(|s| ends[s] - counts[s]);
        let mut order = vec![0usize; len];
        for i in 0..len {
            let slot = &mut next[shard_of(i)];
            order[*slot] = i;
            *slot += 1;
        }
        ShardGroups { order, ends }
    }

    /// Each shard that holds items, with their positions in batch order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &[usize])> {
        let starts = std::iter::once(0).chain(self.ends);
        starts
            .zip(self.ends)
            .enumerate()
            .filter(|(_, (start, end))| start < end)
            .map(|(shard, (start, end))| (shard, &self.order[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_come_shard_by_shard_in_batch_order() {
        let shards = [3, 0, 3, 1, 0, 3];
        let g: ShardGroups<4> = ShardGroups::new(shards.len(), |i| shards[i]);
        let groups: Vec<(usize, Vec<usize>)> = g.iter().map(|(s, p)| (s, p.to_vec())).collect();
        assert_eq!(groups, [(0, vec![1, 4]), (1, vec![3]), (3, vec![0, 2, 5])]);
        let empty: ShardGroups<4> = ShardGroups::new(0, |_| 0);
        assert_eq!(empty.iter().count(), 0);
    }
}
