//! Reading a corpus in VictoriaMetrics' JSON-line format: one series per line,
//! `{"metric":{…labels…},"values":[…],"timestamps":[…]}`, values as JSON numbers or the
//! strings "NaN", "Inf", "-Inf"; zstd-compressed when the file name ends in `.zst`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::error::BenchError;

/// One series of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusSeries {
    /// Labels including `__name__`, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Unix milliseconds, as in the file.
    pub timestamps: Vec<i64>,
    /// One value per timestamp.
    pub values: Vec<f64>,
}

/// A whole corpus in memory.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Series in file order.
    pub series: Vec<CorpusSeries>,
}

#[derive(Deserialize)]
struct Line {
    metric: BTreeMap<String, String>,
    values: Vec<Value>,
    timestamps: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Number(f64),
    Text(String),
}

impl Corpus {
    /// Reads the file at `path`. Errors: the file cannot be read or decompressed, a line
    /// is not valid JSON of the shape above, a value string is not NaN/Inf/-Inf, or the
    /// value and timestamp counts differ.
    pub fn load(path: &Path) -> Result<Corpus, BenchError> {
        let io_err = |e| BenchError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "zst") {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(io_err)?)
        } else {
            Box::new(file)
        };
        Corpus::parse(BufReader::new(reader), path)
    }

    /// Parses JSON lines from `reader`; `path` only names the source in errors.
    pub fn parse(reader: impl BufRead, path: &Path) -> Result<Corpus, BenchError> {
        let mut series = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| BenchError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |msg: String| BenchError::Corpus {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            };
            let parsed: Line = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            if parsed.values.len() != parsed.timestamps.len() {
                return Err(bad(format!(
                    "{} values but {} timestamps",
                    parsed.values.len(),
                    parsed.timestamps.len()
                )));
            }
            let values = parsed
                .values
                .into_iter()
                .map(|v| match v {
                    Value::Number(f) => Ok(f),
                    Value::Text(s) => parse_special(&s).ok_or_else(|| bad(format!("value {s:?} is not a number"))),
                })
                .collect::<Result<Vec<f64>, _>>()?;
            series.push(CorpusSeries {
                labels: parsed.metric.into_iter().collect(),
                timestamps: parsed.timestamps,
                values,
            });
        }
        Ok(Corpus { series })
    }
}

/// The special values VictoriaMetrics writes as strings; plain decimal strings too.
fn parse_special(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Inf" | "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_special_strings() {
        let text = r#"{"metric":{"job":"node","__name__":"up","instance":"a:9100"},"values":[1,"NaN","Inf","-Inf",0.5],"timestamps":[1,2,3,4,5]}"#;
        let c = Corpus::parse(text.as_bytes(), Path::new("t")).expect("parse");
        assert_eq!(c.series.len(), 1);
        let s = &c.series[0];
        assert_eq!(
            s.labels.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["__name__", "instance", "job"]
        );
        assert_eq!(s.timestamps, [1, 2, 3, 4, 5]);
        assert_eq!(s.values[0], 1.0);
        assert!(s.values[1].is_nan());
        assert_eq!(s.values[2], f64::INFINITY);
        assert_eq!(s.values[3], f64::NEG_INFINITY);
        assert_eq!(s.values[4], 0.5);
    }

    #[test]
    fn rejects_mismatched_counts_with_line_number() {
        let text = "\n{\"metric\":{},\"values\":[1],\"timestamps\":[1,2]}";
        let err = Corpus::parse(text.as_bytes(), Path::new("c.jsonl")).expect_err("must fail");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn rejects_unknown_value_string() {
        let text = r#"{"metric":{},"values":["abc"],"timestamps":[1]}"#;
        assert!(Corpus::parse(text.as_bytes(), Path::new("c")).is_err());
    }
}
