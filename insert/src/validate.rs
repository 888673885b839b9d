//! Label validation shared by every protocol. A series that fails is rejected alone and
//! counted in `cairn_insert_rows_rejected_total{reason}`; the rest of its request is kept.

use cairn_common::{Label, Labels, METRIC_NAME};

/// Limits set by `--max-labels-per-series`, `--max-label-name-bytes`,
/// `--max-label-value-bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most labels a series may have, `__name__` included.
    pub max_labels_per_series: usize,
    /// Longest label name, bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value, bytes.
    pub max_label_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_labels_per_series: 60,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
        }
    }
}

/// Why a series was rejected: the `reason` label of `cairn_insert_rows_rejected_total` and
/// a message naming the series and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Counter label, e.g. `duplicate_label_name`.
    pub reason: &'static str,
    /// Message for the client, e.g. `series {__name__="up", a="1", a="2"}: duplicate label name "a"`.
    pub message: String,
}

impl Rejection {
    /// Counts the rejection in `cairn_insert_rows_rejected_total{reason}` and returns its
    /// message.
    pub fn count(self) -> String {
        metrics::counter!("cairn_insert_rows_rejected_total", "reason" => self.reason).increment(1);
        self.message
    }
}

/// Checks raw `(name, value)` pairs as received and builds the series' [`Labels`].
/// Pairs with an empty value are dropped (Prometheus: an empty value is an absent label).
/// Errors (the message names the series and the problem, and the reason is counted):
/// an empty label name, a duplicate label name, no or empty `__name__`, too many labels,
/// a name or value over its length limit.
pub fn labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    limits: &Limits,
) -> Result<Labels, String> {
    let received: Vec<(&str, &str)> = pairs.into_iter().collect();
    let mut sorted = Vec::with_capacity(received.len());
    sorted_pairs(&received, &mut sorted, limits).map_err(Rejection::count)?;
    Ok(Labels::from_sorted(
        sorted
            .iter()
            .map(|&(name, value)| Label {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
    ))
}

/// The allocation-free form of [`labels`]: checks `received` (pairs in the order sent)
/// by the same rules and, when they pass, leaves in `sorted` (cleared first, reused across
/// series) the series' labels sorted by name with empty values dropped. Nothing is
/// counted: the caller decides when a rejection counts (see [`Rejection::count`]).
pub fn sorted_pairs<'a>(
    received: &[(&'a str, &'a str)],
    sorted: &mut Vec<(&'a str, &'a str)>,
    limits: &Limits,
) -> Result<(), Rejection> {
    let reject = |reason: &'static str, message: String| Err(Rejection { reason, message });
    let shown = || {
        let mut s: String = received
            .iter()
            .map(|(n, v)| format!("{n}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        if s.len() > 200 {
            let mut cut = 200;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        format!("{{{s}}}")
    };
    for &(name, value) in received {
        if name.is_empty() {
            return reject("empty_label_name", format!("series {}: empty label name", shown()));
        }
        if name.len() > limits.max_label_name_bytes {
            return reject(
                "label_name_too_long",
                format!(
                    "series {}: label name of {} bytes over the limit of {} (--max-label-name-bytes)",
                    shown(),
                    name.len(),
                    limits.max_label_name_bytes
                ),
            );
        }
        if value.len() > limits.max_label_value_bytes {
            return reject(
                "label_value_too_long",
                format!(
                    "series {}: value of label {name:?} is {} bytes, over the limit of {} (--max-label-value-bytes)",
                    shown(),
                    value.len(),
                    limits.max_label_value_bytes
                ),
            );
        }
    }
    let count = received.len();
    if count > limits.max_labels_per_series {
        return reject(
            "too_many_labels",
            format!(
                "series {}: {count} labels, over the limit of {} (--max-labels-per-series)",
                shown(),
                limits.max_labels_per_series
            ),
        );
    }
    sorted.clear();
    sorted.extend_from_slice(received);
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return reject(
            "duplicate_label_name",
            format!("series {}: duplicate label name {:?}", shown(), w[0].0),
        );
    }
    sorted.retain(|&(_, value)| !value.is_empty());
    if !sorted.iter().any(|&(name, _)| name == METRIC_NAME) {
        return reject(
            "missing_metric_name",
            format!("series {}: no {METRIC_NAME} label", shown()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<Labels, String> {
        labels(pairs.iter().copied(), &Limits::default())
    }

    #[test]
    fn accepts_a_normal_series_and_drops_empty_values() {
        let l = check(&[("job", "a"), ("__name__", "up"), ("x", "")]).expect("valid");
        assert_eq!(l, Labels::from_pairs([("__name__", "up"), ("job", "a")]));
    }

    #[test]
    fn rejects_each_kind_with_a_message_naming_it() {
        let long = "v".repeat(5000);
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("__name__", "up"), ("", "x")], "empty label name"),
            (
                vec![("__name__", "up"), ("a", "1"), ("a", "2")],
                "duplicate label name \"a\"",
            ),
            (vec![("job", "a")], "no __name__ label"),
            (
                vec![("__name__", "up"), ("a", long.as_str())],
                "--max-label-value-bytes",
            ),
        ];
        for (pairs, want) in cases {
            let err = check(&pairs).expect_err("must be rejected");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        let many: Vec<(String, String)> = (0..61).map(|i| (format!("l{i}"), "v".to_string())).collect();
        let err = labels(many.iter().map(|(n, v)| (n.as_str(), v.as_str())), &Limits::default()).expect_err("too many");
        assert!(err.contains("--max-labels-per-series"), "{err}");
    }

    #[test]
    fn sorted_pairs_sorts_and_reuses_the_buffer() {
        let mut sorted = vec![("stale", "entry")];
        let received = [("job", "a"), ("__name__", "up"), ("x", ""), ("instance", "h:1")];
        sorted_pairs(&received, &mut sorted, &Limits::default()).expect("valid");
        assert_eq!(sorted, [("__name__", "up"), ("instance", "h:1"), ("job", "a")]);
        let err = sorted_pairs(
            &[("__name__", "up"), ("a", "1"), ("a", "")],
            &mut sorted,
            &Limits::default(),
        )
        .expect_err("duplicate");
        assert_eq!(err.reason, "duplicate_label_name");
        assert_eq!(
            err.message,
            r#"series {__name__="up", a="1", a=""}: duplicate label name "a""#
        );
        let err = sorted_pairs(&[("__name__", ""), ("a", "1")], &mut sorted, &Limits::default())
            .expect_err("empty name value");
        assert_eq!(err.reason, "missing_metric_name");
    }
}
