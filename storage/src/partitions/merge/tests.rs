//! Merge planning and the per-series merge on a real RocksDB.

use super::*;
use crate::block::Sample;
use crate::partitions::{NewBlock, Partitions};

const DAY: u32 = 19_000;

fn t0() -> i64 {
    i64::from(DAY) * crate::day::DAY_MS
}

fn blk(id: u64, s: &[Sample]) -> NewBlock {
    NewBlock {
        day: DAY,
        id,
        first_ts: s[0].0,
        samples: s.len(),
        bytes: crate::block::encode(s),
    }
}

/// `n` samples one second apart from `start`, value = index + `v0`.
fn run(start: i64, n: usize, v0: u64) -> Vec<Sample> {
    (0..n).map(|i| (start + i as i64 * 1000, i as u64 + v0)).collect()
}

fn open() -> (tempfile::TempDir, Partitions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, names) = crate::db::open(dir.path()).expect("db");
    (dir, Partitions::new(db, &names))
}

fn merge(p: &Partitions, id: u64) -> CompactStats {
    p.merge(&[(DAY, id)]).expect("merge")
}

#[test]
fn merging_keeps_the_latest_sample_per_timestamp_and_outranks_its_inputs_only() {
    let (_dir, p) = open();
    let t0 = t0();
    p.write(&[blk(1, &[(t0, 1), (t0 + 10, 2)]), blk(2, &[(t0, 9)])], 2)
        .expect("w1");
    p.write(&[blk(1, &[(t0 + 10, 3), (t0 + 20, 4)])], 4).expect("w2");
    let stats = merge(&p, 1);
    assert_eq!(
        (stats.series, stats.blocks_in, stats.blocks_out, stats.samples),
        (1, 2, 1, 3)
    );
    // Output under the largest input sequence number made odd: 4 | 1.
    let merged = vec![(t0, 1), (t0 + 10, 3), (t0 + 20, 4)];
    assert_eq!(p.read(1, t0, t0 + 100).expect("read"), vec![(5, merged.clone())]);
    // A single block: nothing to merge.
    assert_eq!(merge(&p, 2), CompactStats::default());
    // A later flush (seq 6) still wins over the merged block.
    p.write(&[blk(1, &[(t0 + 10, 7)])], next_flush_seq(5)).expect("w3");
    let blocks = p.read(1, t0, t0 + 100).expect("read");
    assert_eq!(blocks, vec![(5, merged), (6, vec![(t0 + 10, 7)])]);
}

#[test]
fn final_blocks_stay_unless_a_late_sample_overlaps_them() {
    let (_dir, p) = open();
    let t0 = t0();
    // A final block (3600 samples) from an earlier merge, then three small flushes after it.
    p.write(&[blk(1, &run(t0, FINAL_SAMPLES, 0))], 1).expect("final");
    let after = t0 + FINAL_SAMPLES as i64 * 1000;
    for (i, seq) in [2u64, 4, 6].into_iter().enumerate() {
        p.write(&[blk(1, &run(after + i as i64 * 300_000, 300, 0))], seq)
            .expect("flush");
    }
    let stats = merge(&p, 1);
    assert_eq!((stats.blocks_in, stats.blocks_out, stats.samples), (3, 1, 900));
    let blocks = p.read(1, t0, after + 3_600_000).expect("read");
    assert_eq!(blocks.iter().map(|b| b.1.len()).collect::<Vec<_>>(), [3600, 900]);
    // A late sample inside the final block's range: the final block is merged with it.
    p.write(&[blk(1, &[(t0 + 500, 42)])], 8).expect("late");
    let stats = merge(&p, 1);
    assert_eq!((stats.blocks_in, stats.blocks_out, stats.samples), (3, 1, 4501));
    let all: Vec<Sample> = p
        .read(1, t0, after + 3_600_000)
        .expect("read")
        .into_iter()
        .flat_map(|b| b.1)
        .collect();
    assert_eq!(all.len(), 4501);
    assert_eq!(all[0], (t0, 0));
    assert_eq!(all[1], (t0 + 500, 42));
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn output_blocks_are_even_and_never_span_a_final_block_left_in_place() {
    let s = run(0, 9000, 0);
    let sizes: Vec<usize> = chunks(&s, &[]).iter().map(|c| c.len()).collect();
    assert_eq!(sizes, [4500, 4500]);
    let sizes: Vec<usize> = chunks(&s, &[1_000_000, 2_000_000, 20_000_000])
        .iter()
        .map(|c| c.len())
        .collect();
    // Cuts before the samples at 1,000 s and 2,000 s; the last barrier is past the end.
    assert_eq!(sizes, [1000, 1000, 7000]);
    let s = run(0, 20_000, 0);
    let sizes: Vec<usize> = chunks(&s, &[3_000_000]).iter().map(|c| c.len()).collect();
    // 17,000 samples after the cut need three blocks: 5,667 + 5,667 + 5,666.
    assert_eq!(sizes, [3000, 5667, 5667, 5666]);
    assert!(chunks(&[], &[5]).is_empty());
}

#[test]
fn unmerged_lists_flushed_blocks_per_series() {
    let (_dir, p) = open();
    let t0 = t0();
    p.write(&[blk(1, &run(t0 + 5000, 10, 0)), blk(2, &run(t0, FINAL_SAMPLES, 0))], 2)
        .expect("w1");
    p.write(&[blk(4, &run(t0, FINAL_SAMPLES, 0))], 3).expect("merged final");
    p.write(&[blk(1, &run(t0, 3, 0))], 4).expect("w2");
    p.write(&[blk(3, &run(t0, 3, 0))], 5).expect("merged tail");
    let u = p.unmerged(DAY).expect("scan");
    let unmerged = |samples, oldest_ms| Unmerged { samples, oldest_ms };
    // Series 2's flushed block counts even though it is large; merged blocks do not.
    assert_eq!(u, vec![(1, unmerged(13, t0)), (2, unmerged(FINAL_SAMPLES as u64, t0))]);
}
