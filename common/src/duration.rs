//! Prometheus-style durations for flags: `31d`, `1h30m`, `500ms`, `2w`, `1y`.
//! Units as in Prometheus' `model.ParseDuration`: ms, s, m, h, d (24h), w (7d), y (365d).

use std::time::Duration;

use crate::error::DurationError;

/// Parses a duration made of one or more `<integer><unit>` terms, largest unit first.
/// A bare `0` is zero. Errors: anything else.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError { input: s.to_string() };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total_ms: u64 = 0;
    let mut last_unit_ms = u64::MAX;
    if bytes.is_empty() {
        return Err(err());
    }
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let n: u64 = s[start..i].parse().map_err(|_| err())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: u64 = match &s[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(err()),
        };
        if unit_ms >= last_unit_ms {
            return Err(err());
        }
        last_unit_ms = unit_ms;
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("31d"), Ok(Duration::from_secs(31 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1y"), Ok(Duration::from_secs(365 * 86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "d", "5", "5x", "1m1h", "1.5h", "-1d", "1d ", "99999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
