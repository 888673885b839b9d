//! Parsed queries kept by their text. A dashboard sends the same queries at every
//! refresh, and parsing one compiles each of its regex matchers into an automaton, which
//! costs more than the rest of a small query's evaluation; a query seen before is cloned
//! from here instead (a clone shares the compiled regexes).
//!
//! Bounded: a [`Rotating`] map of two generations of at most [`GENERATION_ENTRIES`]
//! queries each. Queries longer than [`MAX_CACHED_QUERY_BYTES`] and queries that do not
//! parse are not kept.

use std::sync::{LazyLock, Mutex};

use cairn_common::rotating::Rotating;
use promql_parser::parser::{self, Expr};

/// Most queries in one generation.
const GENERATION_ENTRIES: usize = 1024;

/// Longest query text kept, bytes.
const MAX_CACHED_QUERY_BYTES: usize = 4096;

/// Each query costs 1: the budget is a number of queries.
static PARSED: LazyLock<Mutex<Rotating<String, Expr>>> =
    LazyLock::new(|| Mutex::new(Rotating::new(2 * GENERATION_ENTRIES)));

/// The expression of `query`, as `promql_parser::parser::parse` gives it. Errors: the
/// parser's message.
pub fn parse(query: &str) -> Result<Expr, String> {
    if query.len() > MAX_CACHED_QUERY_BYTES {
        return parser::parse(query);
    }
    if let Some(expr) = PARSED.lock().ok().and_then(|mut kept| kept.get(query)) {
        return Ok(expr);
    }
    let expr = parser::parse(query)?;
    if let Ok(mut kept) = PARSED.lock() {
        kept.insert(query.to_string(), expr.clone(), 1);
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_query_is_the_parsed_one_and_errors_stay_errors() {
        let q = r#"sum by (job) (rate({__name__=~"process_.*", job!~"a|b"}[5m]))"#;
        let first = parse(q).expect("valid");
        let again = parse(q).expect("valid");
        assert_eq!(first, parser::parse(q).expect("valid"));
        assert_eq!(again, first);
        assert_eq!(again.to_string(), first.to_string());
        for _ in 0..2 {
            assert!(parse("sum(").is_err());
        }
    }

    #[test]
    fn many_queries_stay_within_two_generations_and_still_parse_right() {
        for i in 0..(3 * GENERATION_ENTRIES) {
            let q = format!("up{{job=\"j{i}\"}}");
            assert_eq!(parse(&q).expect("valid").to_string(), q);
        }
        let kept = PARSED.lock().expect("lock");
        assert!(kept.len() <= 2 * GENERATION_ENTRIES);
    }
}
