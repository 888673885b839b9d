//! Label and ordering functions: `label_replace`, `label_join`, `sort`, `sort_desc`,
//! `sort_by_label`, `sort_by_label_desc`. They keep the metric name.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use super::{check_unique, string, vector};
use crate::promql::error::{QueryError, exec};
use crate::promql::eval::Evaluator;
use crate::promql::value::{Sample, Val};

/// Natural order of two strings: runs of digits compare by number, the rest bytewise.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ai, mut bi) = (a.as_bytes(), b.as_bytes());
    loop {
        match (ai.first(), bi.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = ai.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = bi.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&ai[..na], &bi[..nb]);
                let ta: &[u8] = &da[da.iter().take_while(|&&c| c == b'0').count()..];
                let tb: &[u8] = &db[db.iter().take_while(|&&c| c == b'0').count()..];
                let o = ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(na.cmp(&nb));
                if o != Ordering::Equal {
                    return o;
                }
                ai = &ai[na..];
                bi = &bi[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                ai = &ai[1..];
                bi = &bi[1..];
            }
        }
    }
}

/// Value order with NaN last, ascending or descending.
fn by_value(a: f64, b: f64, desc: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if desc => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Evaluates the function if it belongs here; `None` otherwise.
pub(super) fn eval(ev: &mut Evaluator<'_>, name: &str, args: Vec<Val>, _t: i64) -> Result<Option<Val>, QueryError> {
    let out = match name {
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            if ev.is_range {
                ev.warn(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                        .to_string(),
                );
            }
            let mut v = vector(&args, 0)?;
            match name {
                "sort" => v.sort_by(|a, b| by_value(a.v, b.v, false)),
                "sort_desc" => v.sort_by(|a, b| by_value(a.v, b.v, true)),
                _ => {
                    let names: Vec<String> = (1..args.len()).map(|i| string(&args, i)).collect::<Result<_, _>>()?;
                    let desc = name == "sort_by_label_desc";
                    v.sort_by(|a, b| {
                        let mut o = Ordering::Equal;
                        for n in &names {
                            o = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                            if o != Ordering::Equal {
                                break;
                            }
                        }
                        let o = o.then_with(|| a.labels.cmp(&b.labels));
                        if desc { o.reverse() } else { o }
                    });
                }
            }
            v
        }
        "label_replace" => {
            let (dst, repl, src, re) = (
                string(&args, 1)?,
                string(&args, 2)?,
                string(&args, 3)?,
                string(&args, 4)?,
            );
            let regex = Regex::new(&format!("^(?s:{re})$"))
                .map_err(|_| exec(format!("invalid regular expression in label_replace(): {re}")))?;
            if dst.is_empty() {
                return Err(exec(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let mut v = vector(&args, 0)?;
            for s in &mut v {
                let src_val = s.labels.get(&src).unwrap_or("").to_string();
                if let Some(caps) = regex.captures(&src_val) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    Arc::make_mut(&mut s.labels).set(&dst, &res);
                    if dst == cairn_common::METRIC_NAME {
                        s.drop = false;
                    }
                }
            }
            check_unique(v)?
        }
        "label_join" => {
            let (dst, sep) = (string(&args, 1)?, string(&args, 2)?);
            if dst.is_empty() {
                return Err(exec(format!("invalid destination label name in label_join(): {dst}")));
            }
            let srcs: Vec<String> = (3..args.len()).map(|i| string(&args, i)).collect::<Result<_, _>>()?;
            let mut v: Vec<Sample> = vector(&args, 0)?;
            for s in &mut v {
                let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                let joined = joined.join(&sep);
                Arc::make_mut(&mut s.labels).set(&dst, &joined);
                if dst == cairn_common::METRIC_NAME {
                    s.drop = false;
                }
            }
            check_unique(v)?
        }
        _ => return Ok(None),
    };
    Ok(Some(Val::Vector(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }
}
