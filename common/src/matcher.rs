//! Label matchers as PromQL defines them: `=`, `!=`, `=~`, `!~`. Regular expressions are
//! anchored at both ends (Prometheus: `^(?:re)$`), and a missing label matches as the
//! empty string.

mod regex_cache;

use regex::Regex;

use crate::error::MatcherError;
use crate::labels::Labels;

/// The four matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One matcher, with its regex compiled once (and kept for the process's later matchers
/// of the same regex, see `matcher/regex_cache.rs`).
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name the matcher tests.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The value or the (unanchored, as written) regex.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher. Errors: [`MatcherError::Regex`] when `op` is a regex operator and
    /// `value` does not compile.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex_cache::get_or_compile(format!("^(?s:{value})$"), |pattern| {
                    Regex::new(pattern)
                        .or_else(|e| Regex::new(&format!("^(?s:{})$", escape_literal_braces(&value))).map_err(|_| e))
                })
                .map_err(|e| MatcherError::Regex {
                    name: name.clone(),
                    regex: value.clone(),
                    reason: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher { name, op, value, regex })
    }

    /// Whether a label value satisfies the matcher; pass `""` for an absent label.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether a series' labels satisfy the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether the matcher accepts the empty string, i.e. also matches series that do
    /// not have the label at all (such matchers cannot select series on their own).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// The matcher as sent on the storage gRPC API.
    pub fn to_proto(&self) -> cairn_proto::storage::Matcher {
        use cairn_proto::storage::matcher::Op;
        let op = match self.op {
            MatchOp::Equal => Op::Equal,
            MatchOp::NotEqual => Op::NotEqual,
            MatchOp::Regex => Op::Regex,
            MatchOp::NotRegex => Op::NotRegex,
        };
        cairn_proto::storage::Matcher {
            op: op as i32,
            name: self.name.clone(),
            value: self.value.clone(),
        }
    }

    /// A matcher received on the storage gRPC API. Errors: a bad regex. An unknown
    /// operator number is treated as `=`, the proto3 default.
    pub fn from_proto(m: &cairn_proto::storage::Matcher) -> Result<Self, MatcherError> {
        use cairn_proto::storage::matcher::Op;
        let op = match Op::try_from(m.op).unwrap_or(Op::Equal) {
            Op::Equal => MatchOp::Equal,
            Op::NotEqual => MatchOp::NotEqual,
            Op::Regex => MatchOp::Regex,
            Op::NotRegex => MatchOp::NotRegex,
        };
        Matcher::new(op, m.name.clone(), m.value.clone())
    }
}

/// Go's RE2 reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,5}`) as a
/// literal brace; Rust's regex refuses it. Escapes such braces so Prometheus' regexes
/// (e.g. `a{b}`) mean the same here.
fn escape_literal_braces(re: &str) -> String {
    let bytes = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && i + 1 < bytes.len() {
            out.push_str(&re[i..i + 2]);
            i += 2;
            continue;
        }
        if c == b'{' && !starts_repetition(&re[i + 1..]) {
            out.push_str("\\{");
        } else {
            // Push the whole UTF-8 character starting here.
            let len = re[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&re[i..i + len]);
            i += len;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether `rest` (the text after a `{`) is `N}`, `N,}` or `N,M}`.
fn starts_repetition(rest: &str) -> bool {
    let Some(end) = rest.find('}') else { return false };
    let body = &rest[..end];
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body, None),
    };
    !lo.is_empty() && lo.bytes().all(|b| b.is_ascii_digit()) && hi.is_none_or(|h| h.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "job", v).expect("valid matcher")
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        assert!(m(MatchOp::Regex, "no.*").matches("node"));
        assert!(!m(MatchOp::Regex, "ode").matches("node"));
        assert!(m(MatchOp::Regex, "a|b").matches("b"));
        assert!(!m(MatchOp::Regex, "a|b").matches("ab"));
        assert!(m(MatchOp::Regex, ".*").matches("x\ny"));
        assert!(m(MatchOp::NotRegex, "a.*").matches("b"));
    }

    #[test]
    fn absent_label_matches_as_empty_string() {
        let labels = Labels::from_pairs([("__name__", "up")]);
        assert!(m(MatchOp::Equal, "").matches_labels(&labels));
        assert!(m(MatchOp::NotEqual, "x").matches_labels(&labels));
        assert!(!m(MatchOp::Regex, ".+").matches_labels(&labels));
        assert!(m(MatchOp::Regex, ".*").matches_empty());
    }

    #[test]
    fn literal_braces_mean_what_they_mean_in_go() {
        assert!(m(MatchOp::Regex, "a{b}").matches("a{b}"));
        assert!(m(MatchOp::Regex, "a{2}").matches("aa"));
        assert!(m(MatchOp::Regex, "x{").matches("x{"));
    }

    #[test]
    fn bad_regex_is_an_error_naming_it() {
        let err = Matcher::new(MatchOp::Regex, "job", "(").expect_err("must fail");
        assert!(err.to_string().contains("\"(\""), "{err}");
    }

    #[test]
    fn proto_round_trip() {
        for op in [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex] {
            let a = m(op, "x.*");
            let b = Matcher::from_proto(&a.to_proto()).expect("valid");
            assert_eq!(a, b);
        }
    }
}
