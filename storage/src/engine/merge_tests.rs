//! Merging the current day: a day of 1 s samples flushed every 5 minutes ends up in
//! large blocks that read back bit-exactly, and late samples into merged ranges are kept.

use cairn_common::{MatchOp, Matcher, Tenant};

use super::testing::{block_on, open, series};
use super::*;
use crate::block::Sample;
use crate::day::DAY_MS;

const T: Tenant = Tenant {
    account_id: 0,
    project_id: 0,
};
/// 2022-01-08 00:00 UTC (day 19,000).
const T0: i64 = 19_000 * DAY_MS;
const FLUSH_MS: i64 = 300_000;

/// The value of series `s` at second `i`: decimal steps, with a NaN, a staleness marker,
/// -0.0 and +Inf in every 1,000 samples so that bit-exactness is checked too.
fn value(s: usize, i: i64) -> f64 {
    match i % 1000 {
        7 => f64::from_bits(0x7ff8_0000_0000_0001 + s as u64),
        8 => f64::from_bits(cairn_common::STALE_NAN_BITS),
        9 => -0.0,
        10 => f64::INFINITY,
        _ => (i * (s as i64 + 1)) as f64 * 0.1,
    }
}

fn id_of(e: &Engine, job: &str) -> u64 {
    let m = vec![Matcher::new(MatchOp::Equal, "job", job).expect("matcher")];
    let ids = e.select_ids(T, &m, T0, T0 + DAY_MS).expect("select");
    assert_eq!(ids.len(), 1, "{job}");
    ids.iter().next().expect("one id")
}

/// Sample counts of the blocks of series `job` over the whole day.
fn block_sizes(e: &Engine, job: &str) -> Vec<usize> {
    let blocks = e.partitions.read(id_of(e, job), T0, T0 + DAY_MS).expect("read");
    blocks.iter().map(|b| b.1.len()).collect()
}

fn read(e: &Engine, job: &str) -> Vec<Sample> {
    let (_, s) = e
        .read_series(T, id_of(e, job), T0, T0 + DAY_MS)
        .expect("read")
        .expect("series exists");
    s
}

/// Writes flush window `k` (data time `[T0 + k × 5 min, T0 + (k + 1) × 5 min)`): every
/// second for the `fast` series, every 15 s for `slow`; then flushes and merges with
/// "now" at the window's end.
fn write_window(e: &Engine, k: i64, fast: &[&str]) {
    let start = T0 + k * FLUSH_MS;
    let mut batch = Vec::new();
    for (s, job) in fast.iter().enumerate() {
        let samples: Vec<(i64, f64)> = (0..300)
            .map(|j| {
                let i = k * 300 + j;
                (T0 + i * 1000, value(s, i))
            })
            .collect();
        batch.push(series("m", job, &samples));
    }
    let slow: Vec<(i64, f64)> = (0..20).map(|j| (start + j * 15_000, (k * 20 + j) as f64)).collect();
    batch.push(series("m", "slow", &slow));
    block_on(e.write(T, batch)).expect("write");
    e.flush().expect("flush");
    e.compact(start + FLUSH_MS).expect("merge");
}

#[test]
fn a_day_of_five_minute_flushes_merges_into_final_blocks_that_read_back_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let fast = ["a", "b", "c"];
    for k in 0..18 {
        write_window(&e, k, &fast);
    }
    // After 18 flushes: the first 12 (3,600 samples) form one final block; the next 6
    // flush blocks wait. The slow series merged its 13 oldest blocks at the 13th flush
    // (the oldest was then more than an hour old); 5 newer blocks wait.
    assert_eq!(block_sizes(&e, "a"), [3600, 300, 300, 300, 300, 300, 300]);
    assert_eq!(block_sizes(&e, "slow"), [260, 20, 20, 20, 20, 20]);
    for k in 18..288 {
        write_window(&e, k, &fast);
    }
    for job in fast {
        assert_eq!(block_sizes(&e, job), vec![3600; 24], "{job}");
    }
    // The slow series merges every 13th flush: its tail grows by 260 samples a time and
    // is final at the 14th merge (3,640 samples, flush 182); merges at flushes 195, 208,
    // ..., 286 leave a 2,080-sample tail and the last two flush blocks.
    assert_eq!(block_sizes(&e, "slow"), [3640, 2080, 20, 20]);
    // Once they are an hour old, the remaining blocks merge.
    let merged = e.compact(T0 + DAY_MS + 2 * 3_600_000).expect("merge");
    assert_eq!((merged.series, merged.blocks_in, merged.blocks_out), (1, 3, 1));
    assert_eq!(block_sizes(&e, "slow"), [3640, 2120]);

    for (s, job) in fast.iter().enumerate() {
        let want: Vec<Sample> = (0..86_400).map(|i| (T0 + i * 1000, value(s, i).to_bits())).collect();
        assert!(read(&e, job) == want, "{job} does not read back bit-exactly");
    }
    let slow = read(&e, "slow");
    assert_eq!(slow.len(), 5760);
    assert!(
        slow.iter()
            .enumerate()
            .all(|(i, &(t, v))| t == T0 + i as i64 * 15_000 && v == (i as f64).to_bits())
    );
    // After a restart nothing is left to merge, and the data reads the same.
    drop(e);
    let e = open(dir.path());
    assert_eq!(e.compact(T0 + 10 * DAY_MS).expect("merge"), CompactStats::default());
    assert_eq!(block_sizes(&e, "a"), vec![3600; 24]);
}

#[test]
fn a_late_sample_into_a_merged_range_is_kept_and_merged_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    for k in 0..24 {
        write_window(&e, k, &["a"]);
    }
    assert_eq!(block_sizes(&e, "a"), [3600, 3600]);
    // Late: a rewrite of second 1,000 and a new sample between seconds 4,000 and 4,001.
    let late = [(T0 + 1_000_000, 123.0), (T0 + 4_000_500, 456.0)];
    block_on(e.write(T, vec![series("m", "a", &late)])).expect("late write");
    e.flush().expect("flush");
    // Before the merge the later flush wins on read.
    let mut want: Vec<Sample> = (0..7200).map(|i| (T0 + i * 1000, value(0, i).to_bits())).collect();
    want[1000].1 = 123f64.to_bits();
    want.insert(4001, (T0 + 4_000_500, 456f64.to_bits()));
    assert!(read(&e, "a") == want);
    // The late block is old, so it is due: both final blocks it overlaps are rewritten
    // with it (3 blocks into 1). The slow series' 11 flush blocks since its merge at the
    // 13th flush are due too and merge with its 260-sample tail (12 into 1).
    let merged = e.compact(T0 + 3 * 3_600_000).expect("merge");
    assert_eq!((merged.series, merged.blocks_in, merged.blocks_out), (2, 15, 2));
    assert_eq!(block_sizes(&e, "a"), [7201]);
    assert!(read(&e, "a") == want);
    drop(e);
    let e = open(dir.path());
    assert!(read(&e, "a") == want);
}

#[test]
fn force_merge_merges_everything_flushed_whether_due_or_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let now = now_ms();
    // 100 s of recent samples, all in today's partition.
    let base = (now - 100_000).max(crate::day::day_start_ms(crate::day::day_of(now)));
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (base + i * 1000, i as f64)).collect();
    for part in samples.chunks(25) {
        block_on(e.write(T, vec![series("fresh", "x", part)])).expect("write");
        e.flush().expect("flush");
    }
    // Recent and small: not due yet.
    assert_eq!(e.compact(now).expect("merge"), CompactStats::default());
    block_on(e.write(T, vec![series("fresh", "x", &[(base + 100_000, 100.0)])])).expect("write");
    let (flushed, merged) = e.force_merge().expect("force merge");
    assert_eq!(flushed.samples, 1);
    assert_eq!(
        (merged.series, merged.blocks_in, merged.blocks_out, merged.samples),
        (1, 5, 1, 101)
    );
    assert!(merged.bytes_out < merged.bytes_in);
}
