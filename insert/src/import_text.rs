//! Prometheus' text exposition format (`/api/v1/import/prometheus`), as a `/metrics` page
//! writes it: `name{label="value",…} value [timestamp_ms]`, `# HELP`/`# TYPE` and comment
//! lines ignored. Samples without a timestamp get the request's time. Label values keep
//! their exact text (escapes `\\`, `\"`, `\n` undone), so `le="+Inf"` stays `+Inf`; that is
//! why this is parsed here rather than with a scrape library that re-formats values.
//! Format: <https://prometheus.io/docs/instrumenting/exposition_formats/>.

use std::collections::BTreeMap;

use crate::rows::{Parsed, SeriesRows};
use crate::validate::{self, Limits};

/// Parses a body; `default_ts_ms` stamps samples that carry no timestamp. Samples of the
/// same series are gathered into one [`SeriesRows`]. A malformed line is rejected alone
/// with its line number.
pub fn parse(body: &str, default_ts_ms: i64, limits: &Limits) -> Parsed {
    let mut parsed = Parsed::default();
    let mut by_series: BTreeMap<cairn_common::Labels, usize> = BTreeMap::new();
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (pairs, value, ts) = match parse_line(line) {
            Ok(x) => x,
            Err(msg) => {
                metrics::counter!("cairn_insert_rows_rejected_total", "reason" => "bad_text_line").increment(1);
                parsed.rejected.push(format!("line {}: {msg}", i + 1));
                continue;
            }
        };
        let labels = match validate::labels(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())), limits) {
            Ok(l) => l,
            Err(msg) => {
                parsed.rejected.push(format!("line {}: {msg}", i + 1));
                continue;
            }
        };
        let ts = ts.unwrap_or(default_ts_ms);
        let idx = *by_series.entry(labels.clone()).or_insert_with(|| {
            parsed.series.push(SeriesRows {
                labels,
                timestamps_ms: Vec::new(),
                values: Vec::new(),
            });
            parsed.series.len() - 1
        });
        parsed.series[idx].timestamps_ms.push(ts);
        parsed.series[idx].values.push(value);
    }
    parsed
}

type LinePairs = Vec<(String, String)>;

/// One sample line → label pairs (with `__name__`), value, optional timestamp.
fn parse_line(line: &str) -> Result<(LinePairs, f64, Option<i64>), String> {
    let mut pairs: LinePairs = Vec::new();
    let rest;
    if let Some(brace) = line.find('{') {
        let name = line[..brace].trim();
        if !name.is_empty() {
            pairs.push(("__name__".to_string(), name.to_string()));
        }
        let (labels, after) = parse_labels(&line[brace + 1..])?;
        pairs.extend(labels);
        rest = after;
    } else {
        let end = line.find(char::is_whitespace).ok_or("no value after the metric name")?;
        pairs.push(("__name__".to_string(), line[..end].to_string()));
        rest = &line[end..];
    }
    if let Some((_, name)) = pairs.iter().find(|(n, _)| n == "__name__")
        && !name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        && !line.starts_with('{')
    {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields.next().ok_or("no value")?;
    let value = parse_value(value_text).ok_or_else(|| format!("invalid value {value_text:?}"))?;
    let ts = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {t:?}: want integer milliseconds"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok((pairs, value, ts))
}

/// Parses `name="value",…}` (after the opening brace); returns the pairs and the text
/// after the closing brace. A bare quoted string is the metric name (Prometheus 3's
/// `{"my.metric", job="a"}`).
fn parse_labels(mut s: &str) -> Result<(LinePairs, &str), String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((out, after));
        }
        let (name, after_name) = if s.starts_with('"') {
            let (n, a) = parse_quoted(s)?;
            let a = a.trim_start();
            if !a.starts_with('=') {
                out.push(("__name__".to_string(), n));
                s = a.strip_prefix(',').unwrap_or(a);
                continue;
            }
            (n, a)
        } else {
            let end = s
                .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                .ok_or("unterminated label set")?;
            (s[..end].to_string(), &s[end..])
        };
        let after_eq = after_name
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("no '=' after label name {name:?}"))?;
        let (value, after_value) = parse_quoted(after_eq.trim_start())?;
        out.push((name, value));
        let a = after_value.trim_start();
        s = match a.strip_prefix(',') {
            Some(r) => r,
            None if a.starts_with('}') => a,
            None => return Err("expected ',' or '}' after a label value".to_string()),
        };
    }
}

/// A double-quoted string with `\\`, `\"` and `\n` escapes → (unescaped, rest).
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or("expected '\"'")?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".to_string())
}

/// A sample value: a Go-style float, including `NaN`, `+Inf`, `-Inf`, `Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_exposition_page() {
        let body = "# HELP http_requests_total Total.\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"post\",code=\"400\",} 3 1395066363000\n\
            rpc_duration_seconds_bucket{le=\"+Inf\"} 17\n\
            msg{text=\"a \\\"quoted\\\" \\\\ line\\nnext\"} NaN\n\
            up 1\n";
        let p = parse(body, 42, &Limits::default());
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.series.len(), 5);
        assert_eq!(p.series[0].timestamps_ms, [1395066363000]);
        assert_eq!(p.series[2].labels.get("le"), Some("+Inf"));
        assert_eq!(p.series[2].timestamps_ms, [42]);
        assert_eq!(p.series[3].labels.get("text"), Some("a \"quoted\" \\ line\nnext"));
        assert!(p.series[3].values[0].is_nan());
    }

    #[test]
    fn gathers_samples_of_one_series_and_reads_quoted_names() {
        let p = parse(
            "up 1 1000\nup 0 2000\n{\"my.metric\", job=\"a\"} 5 3000\n",
            0,
            &Limits::default(),
        );
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.series.len(), 2);
        assert_eq!(p.series[0].timestamps_ms, [1000, 2000]);
        assert_eq!(p.series[1].labels.metric_name(), Some("my.metric"));
    }

    #[test]
    fn rejects_malformed_lines_alone() {
        let p = parse(
            "ok 1\nbad{a=\"x\" 1\nnovalue\n9bad 1\nx 1 notatime\n",
            0,
            &Limits::default(),
        );
        assert_eq!(p.series.len(), 1);
        assert_eq!(p.rejected.len(), 4, "{:?}", p.rejected);
        assert!(p.rejected[0].starts_with("line 2:"));
    }
}
