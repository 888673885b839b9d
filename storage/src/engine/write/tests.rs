//! Write-path tests: packed series, the label lists that bypass [`Labels`] and those that do not name
//! the same series, and the general path still rejects what it rejected.

use cairn_common::{Labels, MatchOp, Matcher, Tenant};
use cairn_proto::storage::{Label, Series, WriteRequest};

use crate::engine::testing::{block_on, open};

const T: Tenant = Tenant {
    account_id: 4,
    project_id: 0,
};

fn proto_series(pairs: &[(&str, &str)], t: i64, v: f64) -> Series {
    Series {
        labels: pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        timestamps_ms: vec![t],
        values: vec![v],
        samples_le: Default::default(),
        blocks: Vec::new(),
        key: Default::default(),
    }
}

#[test]
fn sorted_and_unsorted_label_lists_of_one_set_write_one_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let sorted = proto_series(&[("__name__", "up"), ("job", "a")], base, 1.0);
    // Same label set: out of order and with an empty-valued (absent) label.
    let unsorted = proto_series(&[("job", "a"), ("zone", ""), ("__name__", "up")], base + 1_000, 2.0);
    let out = block_on(e.write(T, vec![sorted])).expect("write sorted");
    assert_eq!((out.rows, out.errors.len()), (1, 0));
    let out = block_on(e.write(T, vec![unsorted])).expect("write unsorted");
    assert_eq!((out.rows, out.errors.len()), (1, 0));
    // And again in the first order, once the series is known.
    let out = block_on(e.write(
        T,
        vec![proto_series(&[("__name__", "up"), ("job", "a")], base + 2_000, 3.0)],
    ))
    .expect("write known");
    assert_eq!(out.rows, 1);

    let up = [Matcher::new(MatchOp::Equal, "__name__", "up").expect("matcher")];
    let ids = e.select_ids(T, &up, base, base + 2_000).expect("select");
    assert_eq!(ids.len(), 1);
    let id = ids.iter().next().expect("one series");
    let (labels, samples) = e.read_series(T, id, base, base + 2_000).expect("read").expect("series");
    assert_eq!(labels, Labels::from_pairs([("__name__", "up"), ("job", "a")]));
    let values: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.1)).collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
}

#[test]
fn malformed_label_lists_are_rejected_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let out = block_on(e.write(
        T,
        vec![
            proto_series(&[("", "v"), ("__name__", "up")], base, 1.0),
            proto_series(&[("__name__", "")], base, 1.0),
            proto_series(&[("job", "a"), ("instance", "b")], base, 1.0),
            proto_series(&[("__name__", "ok")], base, 1.0),
        ],
    ))
    .expect("write");
    assert_eq!(out.rows, 1);
    assert_eq!(out.errors.len(), 3, "{:?}", out.errors);
    assert!(
        out.errors[0].starts_with("series 0: a label with an empty name"),
        "{:?}",
        out.errors
    );
    assert_eq!(out.errors[1], "series 1: no labels");
    assert!(
        out.errors[2].starts_with("series 2 ") && out.errors[2].contains("no __name__ label"),
        "{:?}",
        out.errors
    );
}

/// One packed series of a test request: label pairs and samples.
type PackedSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// A request holding `listed` as `series` and `packed` in the packed form, as insert
/// nodes send it.
fn request(listed: Vec<Series>, packed: &[PackedSeries<'_>]) -> WriteRequest {
    let mut req = WriteRequest {
        series: listed,
        ..WriteRequest::default()
    };
    let mut keys = Vec::new();
    for (pairs, samples) in packed {
        let key = Labels::from_pairs(pairs.iter().copied()).canonical_key(T);
        cairn_common::packed_keys::append(&mut keys, &key[8..]);
        req.sample_counts.push(samples.len() as u32);
        req.timestamps_ms.extend(samples.iter().map(|s| s.0));
        req.values.extend(samples.iter().map(|s| s.1));
    }
    req.series_keys = keys.into();
    req
}

fn write_request(e: &crate::engine::Engine, req: &WriteRequest) -> crate::engine::WriteOutcome {
    block_on(e.start_write_request(T, req).expect("start").finish()).expect("finish")
}

#[test]
fn packed_and_listed_series_of_one_label_set_are_one_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
    let up_a: &[(&str, &str)] = &[("__name__", "up"), ("job", "a")];
    let up_b: &[(&str, &str)] = &[("__name__", "up"), ("job", "b")];
    let req = request(
        vec![proto_series(&[("job", "a"), ("__name__", "up")], base, 1.0)],
        &[
            (up_a, &[(base + 1_000, 2.0), (base + 2_000, stale)]),
            (up_b, &[(base, 5.0)]),
        ],
    );
    let out = write_request(&e, &req);
    assert_eq!((out.rows, out.errors.len()), (4, 0), "{:?}", out.errors);

    let up = [Matcher::new(MatchOp::Equal, "__name__", "up").expect("matcher")];
    let ids = e.select_ids(T, &up, base, base + 2_000).expect("select");
    assert_eq!(ids.len(), 2);
    let mut got = Vec::new();
    for id in &ids {
        let (labels, samples) = e.read_series(T, id, base, base + 2_000).expect("read").expect("series");
        got.push((labels.get("job").map(str::to_string), samples));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                Some("a".into()),
                vec![
                    (base, 1.0f64.to_bits()),
                    (base + 1_000, 2.0f64.to_bits()),
                    (base + 2_000, cairn_common::STALE_NAN_BITS)
                ]
            ),
            (Some("b".into()), vec![(base, 5.0f64.to_bits())]),
        ]
    );
}

#[test]
fn malformed_packed_series_are_rejected_and_the_rest_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let good: &[(&str, &str)] = &[("__name__", "good")];
    // Keys the insert would never send: no metric name, names out of order.
    let mut req = request(Vec::new(), &[(good, &[(base, 1.0)])]);
    let mut bad_key = Vec::new();
    for part in [&b"job"[..], b"x"] {
        cairn_common::packed_keys::append(&mut bad_key, part);
    }
    let mut keys = req.series_keys.to_vec();
    cairn_common::packed_keys::append(&mut keys, &bad_key);
    let mut unsorted = Vec::new();
    for part in [&b"job"[..], b"x", b"__name__", b"up"] {
        cairn_common::packed_keys::append(&mut unsorted, part);
    }
    cairn_common::packed_keys::append(&mut keys, &unsorted);
    req.series_keys = keys.into();
    req.sample_counts.extend([1, 1]);
    req.timestamps_ms.extend([base, base]);
    req.values.extend([2.0, 3.0]);
    let out = write_request(&e, &req);
    assert_eq!(out.rows, 1);
    assert_eq!(
        out.errors,
        vec![
            "series 1: no __name__ label".to_string(),
            "series 2: label names not strictly sorted".to_string()
        ]
    );

    // Counts that do not match the samples: the packed part is refused as a whole.
    let mut req = request(Vec::new(), &[(good, &[(base + 1, 1.0)])]);
    req.values.push(9.0);
    let out = write_request(&e, &req);
    assert_eq!(out.rows, 0);
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0].contains("add up to 1 but there are 1 timestamps and 2 values"),
        "{:?}",
        out.errors
    );

    // More counts than keys, and a truncated key list.
    let mut req = request(Vec::new(), &[(good, &[(base + 2, 1.0)])]);
    req.sample_counts.push(1);
    req.timestamps_ms.push(base + 2);
    req.values.push(1.0);
    let out = write_request(&e, &req);
    assert_eq!(out.rows, 1, "the series before the missing key is stored");
    assert!(
        out.errors[0].contains("2 sample counts but 1 series keys"),
        "{:?}",
        out.errors
    );
    let mut req = request(Vec::new(), &[(good, &[(base + 3, 1.0)])]);
    req.series_keys.truncate(req.series_keys.len() - 1);
    let out = write_request(&e, &req);
    assert_eq!(out.rows, 0);
    assert_eq!(out.errors, vec!["series 0: series_keys is truncated".to_string()]);
}

#[test]
fn a_series_is_found_on_every_day_it_was_written_the_cache_noting_the_latest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    const DAY_MS: i64 = 86_400_000;
    let day = 19_675u32;
    let at = |d: u32, s: i64| i64::from(d) * DAY_MS + s * 1000;
    let labels = [("__name__", "up"), ("job", "a")];
    let key = Labels::from_pairs(labels).canonical_key(T);
    let write = |samples: &[(i64, f64)]| {
        let mut s = proto_series(&labels, 0, 0.0);
        s.timestamps_ms = samples.iter().map(|x| x.0).collect();
        s.values = samples.iter().map(|x| x.1).collect();
        let out = block_on(e.write(T, vec![s])).expect("write");
        assert_eq!((out.rows, out.errors.len()), (samples.len() as u64, 0));
    };
    write(&[(at(day, 10), 1.0)]);
    assert_eq!(e.series.get(&key).expect("cached").indexed_day, Some(day));
    // Same day: nothing to index; next day: indexed although the cache notes a day.
    write(&[(at(day, 20), 2.0)]);
    write(&[(at(day + 1, 10), 3.0)]);
    assert_eq!(e.series.get(&key).expect("cached").indexed_day, Some(day + 1));
    // A late sample of an earlier day, and one request spanning two later days.
    write(&[(at(day - 1, 50), 4.0)]);
    write(&[(at(day + 2, 86_399), 5.0), (at(day + 3, 1), 6.0)]);
    assert_eq!(e.series.get(&key).expect("cached").indexed_day, Some(day + 3));
    let up = [Matcher::new(MatchOp::Equal, "__name__", "up").expect("matcher")];
    for d in day - 1..=day + 3 {
        let ids = e.select_ids(T, &up, at(d, 0), at(d, 86_399)).expect("select");
        assert_eq!(ids.len(), 1, "day {d}");
    }
    assert!(
        e.select_ids(T, &up, at(day + 4, 0), at(day + 4, 86_399))
            .expect("select")
            .is_empty()
    );
    // The days the cache noted take no memory beyond it: only the late day is in the
    // written set, and nothing is left in flight.
    let id = e
        .select_ids(T, &up, at(day, 0), at(day, 1))
        .expect("select")
        .iter()
        .next();
    let days = e.days_indexed.lock();
    assert_eq!(
        days.written.iter().copied().collect::<Vec<_>>(),
        [(id.expect("the series"), day - 1)]
    );
    assert!(days.in_flight.is_empty());
}

#[test]
fn a_day_claimed_by_a_write_in_flight_is_not_taken_as_indexed() {
    use crate::engine::write::{Claim, claim_day};
    use crate::index::hash::IndexedDays;
    let mut days = IndexedDays::default();
    assert_eq!(claim_day(&mut days, 7, 100), Claim::Mine);
    // Until the postings are written, another write neither writes them nor notes them.
    assert_eq!(claim_day(&mut days, 7, 100), Claim::InFlight);
    assert_eq!(claim_day(&mut days, 7, 101), Claim::Mine);
    assert_eq!(claim_day(&mut days, 8, 100), Claim::Mine);
    days.written.insert((7, 100));
    days.in_flight.remove(&(7, 100));
    assert_eq!(claim_day(&mut days, 7, 100), Claim::Done);
    // Forgotten after a failed write: the next write claims it again.
    days.in_flight.remove(&(7, 101));
    assert_eq!(claim_day(&mut days, 7, 101), Claim::Mine);
}

#[test]
fn a_write_is_cached_only_when_it_needs_no_index_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path());
    let base = 1_700_000_000_000;
    let req = |pairs: &[(&str, &str)], t: i64| request(vec![proto_series(pairs, t, 1.0)], &[]);
    let a = [("__name__", "up"), ("job", "a")];
    let b = [("__name__", "up"), ("job", "b")];
    // A new series: not cached.
    assert!(!e.prepare_write(T, &req(&a, base)).is_cached());
    let out = block_on(
        e.commit_prepared(e.prepare_write(T, &req(&a, base)))
            .expect("commit")
            .finish(),
    );
    assert_eq!(out.expect("finish").rows, 1);
    // Known, on its indexed day: cached, and committing it stores the sample.
    let known = e.prepare_write(T, &req(&a, base + 1000));
    assert!(known.is_cached());
    assert_eq!(
        block_on(e.commit_prepared(known).expect("commit").finish())
            .expect("finish")
            .rows,
        1
    );
    // Known but on another day, or beside an unknown series: not cached.
    assert!(!e.prepare_write(T, &req(&a, base + 86_400_000)).is_cached());
    let mixed = request(
        vec![proto_series(&a, base + 2000, 1.0), proto_series(&b, base, 1.0)],
        &[],
    );
    assert!(!e.prepare_write(T, &mixed).is_cached());
    let up = [Matcher::new(MatchOp::Equal, "__name__", "up").expect("matcher")];
    let id = e
        .select_ids(T, &up, base, base)
        .expect("select")
        .iter()
        .next()
        .expect("series a");
    let (_, samples) = e.read_series(T, id, base, base + 1000).expect("read").expect("series");
    assert_eq!(samples.len(), 2);
}
