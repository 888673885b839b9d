//! Engine tests: durability across a crash, flush, retention, merge rules, validation.

use cairn_common::{MatchOp, Matcher, Tenant};

use super::testing::{block_on, open, series};
use super::*;
use crate::block::Sample;
use crate::day::{DAY_MS, day_of};
use cairn_proto::storage::Series;

const T: Tenant = Tenant {
    account_id: 1,
    project_id: 2,
};

fn name_eq(name: &str) -> Vec<Matcher> {
    vec![Matcher::new(MatchOp::Equal, "__name__", name).expect("matcher")]
}

/// Every series matching `name` in the range: (job, samples as (ts, bits)).
fn read_all(e: &Engine, name: &str, start: i64, end: i64) -> Vec<(String, Vec<Sample>)> {
    let ids = e.select_ids(T, &name_eq(name), start, end).expect("select");
    let mut out = Vec::new();
    for id in &ids {
        if let Some((labels, s)) = e.read_series(T, id, start, end).expect("read") {
            out.push((labels.get("job").unwrap_or("").to_string(), s));
        }
    }
    out.sort();
    out
}

fn bits(s: &[(i64, f64)]) -> Vec<Sample> {
    s.iter().map(|(t, v)| (*t, v.to_bits())).collect()
}

/// Samples including the values that must survive bit-exactly.
fn special_samples(base: i64) -> Vec<(i64, f64)> {
    vec![
        (base, 1.5),
        (base + 15_000, -0.0),
        (base + 30_000, f64::from_bits(cairn_common::STALE_NAN_BITS)),
        (base + 45_000, f64::INFINITY),
        (base + 60_000, f64::from_bits(0x7ff8_0000_dead_beef)),
    ]
}

#[test]
fn acknowledged_writes_survive_a_crash_through_wal_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 1_700_000_000_000;
    let a = special_samples(base);
    let b: Vec<(i64, f64)> = (0..100).map(|i| (base + i * 1000, i as f64)).collect();
    {
        let e = open(dir.path());
        let out = block_on(e.write(T, vec![series("up", "a", &a), series("up", "b", &b)])).expect("write");
        assert_eq!(out.rows, 105);
        // A second write to an existing series after the first one.
        block_on(e.write(T, vec![series("up", "a", &[(base + 75_000, 7.0)])])).expect("write 2");
        // Dropped without a flush: only the WAL holds the samples.
    }
    let e = open(dir.path());
    let mut want_a = bits(&a);
    want_a.push((base + 75_000, 7.0f64.to_bits()));
    let got = read_all(&e, "up", base - 1, base + DAY_MS);
    assert_eq!(got, vec![("a".to_string(), want_a), ("b".to_string(), bits(&b))]);
    // New writes after replay continue with fresh series IDs.
    block_on(e.write(T, vec![series("up", "c", &[(base, 3.0)])])).expect("write after replay");
    assert_eq!(read_all(&e, "up", base - 1, base + DAY_MS).len(), 3);
}

#[test]
fn flushed_blocks_are_read_back_after_reopen_and_the_wal_is_trimmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Spans two UTC days: 2023-11-14 and 2023-11-15.
    let base = 19_675 * DAY_MS - 30_000;
    let a = special_samples(base);
    {
        let e = open(dir.path());
        block_on(e.write(T, vec![series("up", "a", &a)])).expect("write");
        let stats = e.flush().expect("flush");
        assert_eq!((stats.series, stats.samples, stats.blocks), (1, 5, 2));
        assert_eq!(e.head_samples(), 0);
        assert!(stats.wal_segments_deleted >= 1);
        // After the flush, more samples go to the head; the read merges both.
        block_on(e.write(T, vec![series("up", "a", &[(base + 90_000, 9.0)])])).expect("write 2");
        e.flush().expect("flush 2");
    }
    let wal_files = crate::wal::list_segments(&dir.path().join("wal")).expect("list");
    assert_eq!(wal_files.len(), 1, "only the segment started by the last flush remains");
    let e = open(dir.path());
    let mut want = bits(&a);
    want.push((base + 90_000, 9.0f64.to_bits()));
    assert_eq!(
        read_all(&e, "up", base, base + DAY_MS),
        vec![("a".to_string(), want.clone())]
    );
    // A range inside the second day only: per-day postings and blocks still find it,
    // and the samples are cut to the range.
    let second_day = 19_675 * DAY_MS;
    assert_eq!(
        read_all(&e, "up", second_day, second_day + 50_000),
        vec![("a".to_string(), want[2..5].to_vec())]
    );
    assert!(read_all(&e, "up", base - 10 * DAY_MS, base - 9 * DAY_MS).is_empty());
}

#[test]
fn out_of_order_and_duplicate_timestamps_keep_one_sample_the_latest_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    block_on(e.write(
        T,
        vec![series("m", "a", &[(base + 2000, 2.0), (base, 0.0), (base + 1000, 1.0)])],
    ))
    .expect("w1");
    e.flush().expect("flush");
    // Rewrites of flushed timestamps (block vs block, and head vs block).
    block_on(e.write(T, vec![series("m", "a", &[(base + 1000, 10.0), (base + 1000, 11.0)])])).expect("w2");
    e.flush().expect("flush 2");
    block_on(e.write(T, vec![series("m", "a", &[(base, 100.0)])])).expect("w3");
    let want = bits(&[(base, 100.0), (base + 1000, 11.0), (base + 2000, 2.0)]);
    assert_eq!(
        read_all(&e, "m", base - 1, base + 10_000),
        vec![("a".to_string(), want.clone())]
    );
    // Merging the day's two blocks keeps the same answer (the later flush still wins).
    let merged = e.compact(now_ms()).expect("compact");
    assert_eq!((merged.series, merged.blocks_in, merged.blocks_out), (1, 2, 1));
    assert_eq!(
        read_all(&e, "m", base - 1, base + 10_000),
        vec![("a".to_string(), want.clone())]
    );
    drop(e);
    let e = open(dir.path());
    assert_eq!(
        read_all(&e, "m", base - 1, base + 10_000),
        vec![("a".to_string(), want)]
    );
}

#[test]
fn partitions_older_than_retention_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(&EngineOptions {
        data_dir: dir.path().to_path_buf(),
        retention: Duration::from_secs(3 * 86_400),
        wal_sync: WalSync::Never,
        series_cache_bytes: DEFAULT_SERIES_CACHE_BYTES,
        index_cache_bytes: crate::engine::DEFAULT_INDEX_CACHE_BYTES,
    })
    .expect("open");
    let now = now_ms();
    let today = day_of(now);
    // Within the 3-day retention now; its day ends 2 days (minus a bit) before "now".
    let old = (i64::from(today) - 2) * DAY_MS + 1000;
    let recent = now - 60_000;
    let out = block_on(e.write(
        T,
        vec![series("r", "old", &[(old, 1.0)]), series("r", "new", &[(recent, 2.0)])],
    ))
    .expect("write");
    assert_eq!(out.rows, 2);
    e.flush().expect("flush");
    assert_eq!(e.partitions.days(), vec![today - 2, day_of(recent)]);
    // Two days later, day `today - 2` ended more than 3 days before "now".
    let dropped = e.apply_retention(now + 2 * DAY_MS).expect("retention");
    assert_eq!(dropped, vec![today - 2]);
    assert_eq!(e.partitions.days(), vec![day_of(recent)]);
    assert!(read_all(&e, "r", old - 1, old + 1).is_empty());
    // The recent day is kept until it expires too.
    assert_eq!(read_all(&e, "r", recent, recent).len(), 1);
    // Samples older than the retention are not accepted at all.
    let too_old = now - 4 * DAY_MS;
    let out = block_on(e.write(T, vec![series("r", "x", &[(too_old, 1.0)])])).expect("write old");
    assert_eq!(out.rows, 0);
}

#[test]
fn malformed_series_are_reported_and_valid_ones_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let mut mismatched = series("m", "bad", &[(base, 1.0)]);
    mismatched.values.push(2.0);
    let no_name = Series {
        labels: cairn_common::Labels::from_pairs([("job", "x")]).to_proto(),
        timestamps_ms: vec![base],
        values: vec![1.0],
        samples_le: Default::default(),
        blocks: Vec::new(),
        key: Default::default(),
    };
    let out = block_on(e.write(T, vec![mismatched, series("m", "good", &[(base, 1.0)]), no_name])).expect("write");
    assert_eq!(out.rows, 1);
    assert_eq!(out.errors.len(), 2);
    assert!(out.errors[0].contains("1 timestamps but 2 values"), "{:?}", out.errors);
    assert!(out.errors[1].contains("__name__"), "{:?}", out.errors);
    assert_eq!(read_all(&e, "m", base, base).len(), 1);
}

#[test]
fn tenants_are_isolated_and_index_lookups_are_sorted_and_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let other = Tenant {
        account_id: 9,
        project_id: 0,
    };
    block_on(e.write(
        T,
        vec![series("up", "b", &[(base, 1.0)]), series("up", "a", &[(base, 1.0)])],
    ))
    .expect("w");
    block_on(e.write(other, vec![series("up", "z", &[(base, 1.0)])])).expect("w other");
    let all = [name_eq("up")];
    let labels = e.series_labels(T, &all, base, base, 0).expect("series");
    let mut jobs: Vec<_> = labels.iter().map(|l| l.get("job").unwrap_or("")).collect();
    jobs.sort_unstable();
    assert_eq!(jobs, ["a", "b"]);
    let first = e.series_labels(T, &all, base, base, 1).expect("limited");
    assert_eq!(first.iter().map(|l| l.get("job")).collect::<Vec<_>>(), [Some("a")]);
    assert_eq!(e.series_labels(T, &all, base, base, 1).expect("limited").len(), 1);
    assert_eq!(
        e.label_names(T, &[], base, base, 0).expect("names"),
        ["__name__", "job"]
    );
    assert_eq!(
        e.label_values(T, "job", &[], base, base, 0).expect("values"),
        ["a", "b"]
    );
    assert_eq!(e.label_values(other, "job", &[], base, base, 0).expect("values"), ["z"]);
    // Per-day restriction: nothing on a day without samples.
    assert!(
        e.label_values(T, "job", &[], base + 5 * DAY_MS, base + 5 * DAY_MS, 0)
            .expect("v")
            .is_empty()
    );
}

#[test]
fn repeated_index_lookups_see_series_written_since() {
    // The look-ups are cached; each write that adds postings must show in the next one.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let up = [name_eq("up")];
    let jobs = |start: i64, end: i64| {
        let mut jobs: Vec<String> = e
            .series_labels(T, &up, start, end, 0)
            .expect("series")
            .iter()
            .map(|l| l.get("job").unwrap_or("").to_string())
            .collect();
        jobs.sort_unstable();
        jobs
    };
    block_on(e.write(T, vec![series("up", "a", &[(base, 1.0)])])).expect("w");
    for _ in 0..2 {
        assert_eq!(jobs(base, base), ["a"]);
        assert_eq!(e.label_values(T, "job", &[], base, base, 0).expect("values"), ["a"]);
    }
    // A new series on the same day.
    block_on(e.write(T, vec![series("up", "b", &[(base + 1, 1.0)])])).expect("w");
    assert_eq!(jobs(base, base), ["a", "b"]);
    assert_eq!(
        e.label_values(T, "job", &[], base, base, 0).expect("values"),
        ["a", "b"]
    );
    // An existing series' first sample of the next day.
    let next = base + DAY_MS;
    assert!(jobs(next, next).is_empty());
    assert!(e.label_values(T, "job", &[], next, next, 0).expect("values").is_empty());
    block_on(e.write(T, vec![series("up", "a", &[(next, 1.0)])])).expect("w");
    assert_eq!(jobs(next, next), ["a"]);
    assert_eq!(e.label_values(T, "job", &[], next, next, 0).expect("values"), ["a"]);
    // Both days: the union, sorted and unique.
    assert_eq!(
        e.label_values(T, "job", &[], base, next, 0).expect("values"),
        ["a", "b"]
    );
}

#[test]
fn cached_label_values_answer_only_what_a_full_look_up_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let cached = |start: i64, end: i64, limit: usize| e.cached_label_values(T, "job", &[], start, end, limit);
    block_on(e.write(
        T,
        vec![series("up", "a", &[(base, 1.0)]), series("up", "c", &[(base, 1.0)])],
    ))
    .expect("w");
    // Nothing kept before a full look-up; then the same answer, limits applied.
    assert_eq!(cached(base, base, 0), None);
    assert_eq!(
        e.label_values(T, "job", &[], base, base, 0).expect("values"),
        ["a", "c"]
    );
    assert_eq!(
        cached(base, base, 0).as_deref(),
        Some(&["a".to_string(), "c".to_string()][..])
    );
    assert_eq!(cached(base, base, 1).as_deref(), Some(&["a".to_string()][..]));
    // A new series changes the postings: the kept values are no longer answered.
    block_on(e.write(T, vec![series("up", "b", &[(base + 1, 1.0)])])).expect("w");
    assert_eq!(cached(base, base, 0), None);
    assert_eq!(
        e.label_values(T, "job", &[], base, base, 0).expect("values"),
        ["a", "b", "c"]
    );
    assert_eq!(cached(base, base, 0).map(|v| v.len()), Some(3));
    // Ranges over several days, selectors and an empty name take the full look-up.
    assert_eq!(cached(base, base + DAY_MS, 0), None);
    assert_eq!(e.cached_label_values(T, "", &[], base, base, 0), None);
}

#[test]
fn cached_label_values_of_selected_series_answer_only_what_a_full_look_up_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let up = [name_eq("up")];
    let cached =
        |selectors: &[Vec<Matcher>], limit: usize| e.cached_label_values(T, "job", selectors, base, base, limit);
    block_on(e.write(
        T,
        vec![
            series("up", "a", &[(base, 1.0)]),
            series("up", "c", &[(base, 1.0)]),
            series("down", "z", &[(base, 1.0)]),
        ],
    ))
    .expect("w");
    // Nothing cached before a full look-up (selection and keys); then the same answer.
    assert_eq!(cached(&up, 0), None);
    assert_eq!(
        e.label_values(T, "job", &up, base, base, 0).expect("values"),
        ["a", "c"]
    );
    assert_eq!(cached(&up, 0).as_deref(), Some(&["a".to_string(), "c".to_string()][..]));
    assert_eq!(cached(&up, 1).as_deref(), Some(&["a".to_string()][..]));
    assert_eq!(
        e.cached_label_values(T, "instance", &up, base, base, 0),
        Some(Vec::new()),
        "a label the series lack"
    );
    // Two selectors: both selections must be cached.
    let both = [name_eq("up"), name_eq("down")];
    assert_eq!(cached(&both, 0), None);
    assert_eq!(
        e.label_values(T, "job", &both, base, base, 0).expect("values"),
        ["a", "c", "z"]
    );
    assert_eq!(cached(&both, 0).map(|v| v.len()), Some(3));
    // A new series makes the cached selection stale.
    block_on(e.write(T, vec![series("up", "b", &[(base + 1, 1.0)])])).expect("w");
    assert_eq!(cached(&up, 0), None);
    assert_eq!(
        e.label_values(T, "job", &up, base, base, 0).expect("values"),
        ["a", "b", "c"]
    );
    assert_eq!(cached(&up, 0).map(|v| v.len()), Some(3));
}

#[test]
fn cached_label_values_leave_large_selections_to_the_full_look_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let many: Vec<_> = (0..=super::search::CACHED_LABEL_VALUES_MAX_SERIES)
        .map(|i| series("many", &format!("j{i}"), &[(base, 1.0)]))
        .collect();
    block_on(e.write(T, many)).expect("w");
    let sel = [name_eq("many")];
    let full = e.label_values(T, "job", &sel, base, base, 0).expect("values");
    assert_eq!(full.len() as u64, super::search::CACHED_LABEL_VALUES_MAX_SERIES + 1);
    assert_eq!(e.cached_label_values(T, "job", &sel, base, base, 0), None);
}

#[test]
fn cached_label_names_answer_only_what_a_full_look_up_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let mut odd = series("odd", "o", &[(base, 1.0)]);
    odd.labels.push(cairn_proto::storage::Label {
        name: "zone".into(),
        value: "z1".into(),
    });
    block_on(e.write(T, vec![series("up", "a", &[(base, 1.0)]), odd])).expect("w");
    let up = [name_eq("up")];
    let two_days = (base, base + DAY_MS);
    for (selectors, start, end) in [
        (&[][..], base, base),
        (&[][..], two_days.0, two_days.1),
        (&up[..], base, base),
    ] {
        assert_eq!(
            e.cached_label_names(T, selectors, start, end, 0),
            None,
            "nothing cached yet"
        );
        let full = e.label_names(T, selectors, start, end, 0).expect("names");
        assert_eq!(e.cached_label_names(T, selectors, start, end, 0), Some(full.clone()));
        assert_eq!(
            e.cached_label_names(T, selectors, start, end, 1),
            Some(full[..1].to_vec())
        );
    }
    assert_eq!(
        e.label_names(T, &[], base, base, 0).expect("names"),
        ["__name__", "job", "zone"]
    );
    assert_eq!(
        e.cached_label_names(T, &up, base, base, 0).expect("cached"),
        ["__name__", "job"]
    );
    // A new series makes what was kept stale.
    block_on(e.write(T, vec![series("up", "b", &[(base + 1, 1.0)])])).expect("w");
    assert_eq!(e.cached_label_names(T, &[], base, base, 0), None);
    assert_eq!(e.cached_label_names(T, &up, base, base, 0), None);
}
