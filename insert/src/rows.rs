//! The decoded form every protocol produces: series with their samples, plus the
//! messages of what was rejected.

use cairn_common::Labels;

/// One series of a request with its samples; `timestamps_ms.len() == values.len()`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRows {
    /// Validated labels, sorted, with `__name__`.
    pub labels: Labels,
    /// Milliseconds since the Unix epoch, in the order received.
    pub timestamps_ms: Vec<i64>,
    /// Sample values, bit-exact as received.
    pub values: Vec<f64>,
}

/// What a protocol parser made of one request body.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Series to store.
    pub series: Vec<SeriesRows>,
    /// One message per rejected series or line, naming the problem.
    pub rejected: Vec<String>,
}

impl Parsed {
    /// Number of samples across all series.
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.values.len()).sum()
    }
}
