//! Errors of `cairn bench`.

use std::path::PathBuf;

/// Why a benchmark run could not be done or did not deliver every sample.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file (corpus, report) could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A corpus line is not a series in VictoriaMetrics' JSON-line format.
    #[error("{}: line {line}: {msg}", .path.display())]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// Flags that cannot work together or out of range.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Some requests failed for good (4xx, or 5xx/network errors after every retry).
    #[error("{0} request(s) failed for good; see the log for the first errors")]
    Failures(u64),
    /// The run was stopped (Ctrl-C) before every request was sent.
    #[error("interrupted before every request was sent")]
    Interrupted,
}
