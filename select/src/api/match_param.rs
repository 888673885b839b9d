//! `match[]` parameters: series selectors such as `up{job="a"}` or `{__name__=~"x.*"}`,
//! parsed with `promql-parser` and turned into Cairn matchers.

use cairn_common::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::label::MatchOp as ParsedOp;
use promql_parser::parser::Expr;

use crate::error::SelectError;

/// The matcher sets of one `match[]` value. Usually one set; a selector with `or`
/// (`{a="1" or b="2"}`) gives one set per alternative. Errors: the text is not a vector
/// selector, or selects everything (every matcher matches the empty string), as Prometheus
/// refuses it.
pub fn parse(text: &str) -> Result<Vec<Vec<Matcher>>, SelectError> {
    let bad = |why: String| SelectError::BadData(format!("invalid parameter \"match[]\": {why}"));
    let expr = crate::promql::parsed::parse(text).map_err(|e| bad(format!("{text:?}: {e}")))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(bad(format!("{text:?} is not a series selector")));
    };
    let mut sets: Vec<Vec<&promql_parser::label::Matcher>> = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        sets.push(vs.matchers.matchers.iter().collect());
    } else {
        sets.extend(vs.matchers.or_matchers.iter().map(|set| set.iter().collect()));
    }
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let mut matchers = Vec::with_capacity(set.len() + 1);
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name.clone()).map_err(|e| bad(e.to_string()))?);
        }
        for m in set {
            let op = match m.op {
                ParsedOp::Equal => MatchOp::Equal,
                ParsedOp::NotEqual => MatchOp::NotEqual,
                ParsedOp::Re(_) => MatchOp::Regex,
                ParsedOp::NotRe(_) => MatchOp::NotRegex,
            };
            matchers.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| bad(e.to_string()))?);
        }
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(bad(format!(
                "{text:?}: match[] must contain at least one non-empty matcher"
            )));
        }
        out.push(matchers);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matchers() {
        let sets = parse(r#"up{job=~"a|b", instance!="x"}"#).expect("valid");
        assert_eq!(sets.len(), 1);
        let names: Vec<&str> = sets[0].iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job", "instance"]);
        assert!(sets[0][1].matches("b") && !sets[0][1].matches("ab"));
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        assert!(parse(r#"{job=~".*"}"#).is_err());
        assert!(parse("rate(up[5m])").is_err());
        assert!(parse("up{").is_err());
    }
}
