//! Write-path tests: the label lists that bypass [`Labels`] and those that do not name
//! the same series, and the general path still rejects what it rejected.

use cairn_common::{Labels, MatchOp, Matcher, Tenant};
use cairn_proto::storage::{Label, Series};

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
