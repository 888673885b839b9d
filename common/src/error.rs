//! Errors of the shared types. Each names the offending input so that an HTTP 400 or a
//! CLI message can show it as it is.

use thiserror::Error;

/// A tenant string that is not `accountID` or `accountID:projectID` (u32 each).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid tenant {input:?}: want accountID or accountID:projectID, each a 32-bit unsigned integer")]
pub struct TenantError {
    /// The text as received.
    pub input: String,
}

/// A label matcher that cannot be used.
#[derive(Debug, Error)]
pub enum MatcherError {
    /// The regular expression of a `=~` or `!~` matcher does not compile.
    #[error("invalid regex {regex:?} in matcher for label {name:?}: {reason}")]
    Regex {
        /// The label name of the matcher.
        name: String,
        /// The expression as given.
        regex: String,
        /// What the regex compiler said.
        reason: String,
    },
}

/// A duration that is not a Prometheus duration such as `31d`, `1h30m` or `500ms`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: want a number and a unit (ms, s, m, h, d, w, y), e.g. 31d or 1h30m")]
pub struct DurationError {
    /// The text as received.
    pub input: String,
}
