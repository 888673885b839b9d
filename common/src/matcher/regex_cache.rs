//! Compiled matcher regexes, shared by every request of a process: a dashboard sends the
//! same selectors at every refresh, and compiling a regex (building its automata) costs
//! more than matching it against a node's label values.
//!
//! Bounded by entry count: when full, the cache is emptied and refills with what is
//! asked next (regexes are cheap to compile again; a bound on memory is what matters).
//! A compiled [`Regex`] is reference-counted, so a hit is a clone of a pointer.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

/// Most regexes kept.
const MAX_ENTRIES: usize = 1024;

/// Longest pattern kept, bytes: longer ones are compiled every time.
const MAX_PATTERN_BYTES: usize = 4096;

static CACHE: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The compiled regex of `pattern` (the full pattern, anchors included), from the cache
/// or compiled by `compile` and then kept. Errors: what `compile` returns; failures are
/// not kept.
pub(crate) fn get_or_compile<E>(pattern: String, compile: impl FnOnce(&str) -> Result<Regex, E>) -> Result<Regex, E> {
    if let Some(re) = lock().get(&pattern) {
        metrics::counter!("cairn_regex_cache_requests_total", "result" => "hit").increment(1);
        return Ok(re.clone());
    }
    metrics::counter!("cairn_regex_cache_requests_total", "result" => "miss").increment(1);
    let re = compile(&pattern)?;
    if pattern.len() <= MAX_PATTERN_BYTES {
        let mut cache = lock();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(pattern, re.clone());
    }
    Ok(re)
}

/// The cache, also after a panic of another thread while it held the lock (the map is
/// never left half-changed by one of the calls above).
fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Regex>> {
    CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_compiles_once_and_failures_are_not_kept() {
        let pattern = "^(?s:regex_cache_test_.*)$".to_string();
        let mut compiled = 0;
        for _ in 0..3 {
            let re = get_or_compile(pattern.clone(), |p| {
                compiled += 1;
                Regex::new(p)
            })
            .expect("valid");
            assert!(re.is_match("regex_cache_test_x"));
        }
        assert_eq!(compiled, 1);
        for _ in 0..2 {
            assert!(get_or_compile("^(?s:()$".to_string(), Regex::new).is_err());
        }
    }
}
