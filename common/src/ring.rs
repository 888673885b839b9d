//! Which storage nodes own a series: the jump-hash bucket of the series hash over the
//! ordered node list, plus the next `replication_factor - 1` nodes of the list.

use crate::jump_hash::jump_consistent_hash;

/// The indexes into the ordered storage-node list that hold a series with hash
/// `series_hash`, primary first. Yields `min(replication_factor, nodes)` distinct
/// indexes; `replication_factor` 0 is treated as 1.
pub fn owners(series_hash: u64, nodes: usize, replication_factor: usize) -> impl Iterator<Item = usize> {
    let nodes = nodes.max(1);
    let primary = jump_consistent_hash(series_hash, nodes as u32) as usize;
    let copies = replication_factor.clamp(1, nodes);
    (0..copies).map(move |i| (primary + i) % nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_the_next_nodes_and_distinct() {
        for hash in [0u64, 7, 0x2019_97f8_6663_13ab, u64::MAX] {
            let all: Vec<usize> = owners(hash, 5, 3).collect();
            assert_eq!(all.len(), 3);
            assert_eq!(all[1], (all[0] + 1) % 5);
            assert_eq!(all[2], (all[0] + 2) % 5);
            assert_eq!(owners(hash, 2, 5).count(), 2, "capped at node count");
        }
    }

    #[test]
    fn spreads_series_over_nodes() {
        let mut counts = [0usize; 4];
        for h in 0..40_000u64 {
            counts[owners(xxhash_rust::xxh3::xxh3_64(&h.to_le_bytes()), 4, 1)
                .next()
                .unwrap_or(0)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
