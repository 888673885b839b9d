//! Label validation shared by every protocol. A series that fails is rejected alone and
//! counted in `cairn_insert_rows_rejected_total{reason}`; the rest of its request is kept.

use cairn_common::{Labels, METRIC_NAME};

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

/// Checks raw `(name, value)` pairs as received and builds the series' [`Labels`].
/// Pairs with an empty value are dropped (Prometheus: an empty value is an absent label).
/// Errors (the message names the series and the problem, and the reason is counted):
/// an empty label name, a duplicate label name, no or empty `__name__`, too many labels,
/// a name or value over its length limit.
pub fn labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    limits: &Limits,
) -> Result<Labels, String> {
    let reject = |reason: &'static str, msg: String| {
        metrics::counter!("cairn_insert_rows_rejected_total", "reason" => reason).increment(1);
        Err(msg)
    };
    let shown = || {
        let mut s: String = pairs
            .clone()
            .into_iter()
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
    let mut count = 0;
    for (name, value) in pairs.clone() {
        count += 1;
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
    let mut names: Vec<&str> = pairs.clone().into_iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return reject(
            "duplicate_label_name",
            format!("series {}: duplicate label name {:?}", shown(), w[0]),
        );
    }
    let labels = Labels::from_pairs(pairs.clone());
    if labels.metric_name().is_none() {
        return reject(
            "missing_metric_name",
            format!("series {}: no {METRIC_NAME} label", shown()),
        );
    }
    Ok(labels)
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
}
