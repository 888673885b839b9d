//! VictoriaMetrics' JSON-line import format (`/api/v1/import`), as its `/api/v1/export`
//! writes it: one series per line,
//! `{"metric":{"__name__":"up","job":"a"},"values":[1,0.5,"NaN"],"timestamps":[1700000000000,1700000001000]}`.
//! Values are JSON numbers or the strings `"NaN"`, `"Inf"`, `"+Inf"`, `"-Inf"`;
//! timestamps are Unix milliseconds. A bad line is rejected alone.

use std::collections::HashMap;

use serde::Deserialize;

use crate::rows::{Parsed, SeriesRows};
use crate::validate::{self, Limits};

#[derive(Deserialize)]
struct Line {
    metric: HashMap<String, String>,
    values: Vec<JsonValue>,
    timestamps: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Number(f64),
    Text(String),
}

impl JsonValue {
    fn to_f64(&self) -> Option<f64> {
        match self {
            JsonValue::Number(v) => Some(*v),
            JsonValue::Text(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Inf" | "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
        }
    }
}

/// Parses a whole body of JSON lines. Blank lines are skipped. Each line that is not valid
/// JSON of the shape above, has `values` and `timestamps` of different lengths, or has
/// invalid labels is rejected with a message naming its line number.
pub fn parse(body: &[u8], limits: &Limits) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let reject = |parsed: &mut Parsed, reason: &'static str, msg: String| {
            metrics::counter!("cairn_insert_rows_rejected_total", "reason" => reason).increment(1);
            parsed.rejected.push(format!("line {line_no}: {msg}"));
        };
        let line: Line = match serde_json::from_slice(line) {
            Ok(l) => l,
            Err(e) => {
                reject(&mut parsed, "bad_json", format!("not a JSON import line: {e}"));
                continue;
            }
        };
        if line.values.len() != line.timestamps.len() {
            reject(
                &mut parsed,
                "bad_json",
                format!("{} values but {} timestamps", line.values.len(), line.timestamps.len()),
            );
            continue;
        }
        let Some(values) = line.values.iter().map(JsonValue::to_f64).collect::<Option<Vec<f64>>>() else {
            reject(
                &mut parsed,
                "bad_json",
                "a value is neither a number nor NaN/Inf/-Inf".to_string(),
            );
            continue;
        };
        match validate::labels(line.metric.iter().map(|(n, v)| (n.as_str(), v.as_str())), limits) {
            Ok(labels) if !values.is_empty() => parsed.series.push(SeriesRows {
                labels,
                timestamps_ms: line.timestamps,
                values,
            }),
            Ok(_) => {}
            Err(msg) => parsed.rejected.push(format!("line {line_no}: {msg}")),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_export_lines_with_special_values() {
        let body =
            br#"{"metric":{"__name__":"up","job":"a"},"values":[1,"NaN","Inf","-Inf",0.25],"timestamps":[1,2,3,4,5]}

{"metric":{"__name__":"x"},"values":[2],"timestamps":[10]}"#;
        let p = parse(body, &Limits::default());
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.series.len(), 2);
        let v = &p.series[0].values;
        assert!(v[1].is_nan() && v[2] == f64::INFINITY && v[3] == f64::NEG_INFINITY && v[4] == 0.25);
        assert_eq!(p.series[1].timestamps_ms, [10]);
    }

    #[test]
    fn rejects_bad_lines_alone_with_line_numbers() {
        let body = br#"{"metric":{"__name__":"ok"},"values":[1],"timestamps":[1]}
not json
{"metric":{"__name__":"short"},"values":[1,2],"timestamps":[1]}
{"metric":{"job":"noname"},"values":[1],"timestamps":[1]}"#;
        let p = parse(body, &Limits::default());
        assert_eq!(p.series.len(), 1);
        assert_eq!(p.rejected.len(), 3);
        assert!(p.rejected[0].starts_with("line 2:"), "{:?}", p.rejected);
        assert!(p.rejected[1].contains("2 values but 1 timestamps"), "{:?}", p.rejected);
        assert!(p.rejected[2].contains("no __name__"), "{:?}", p.rejected);
    }
}
