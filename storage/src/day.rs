//! UTC days: the unit of time partitions and per-day postings.
//!
//! A day number counts days since 1970-01-01 (UTC). Timestamps before 1970 are counted in
//! day 0 and timestamps past year ~5.8 million in the last day, so that every i64
//! timestamp has a day.

/// Milliseconds in a UTC day (no leap seconds, as in Unix time).
pub const DAY_MS: i64 = 86_400_000;
/// The largest day number used.
pub const MAX_DAY: u32 = i32::MAX as u32;

/// The day number of a timestamp in ms.
pub fn day_of(ts_ms: i64) -> u32 {
    ts_ms.div_euclid(DAY_MS).clamp(0, i64::from(MAX_DAY)) as u32
}

/// The first millisecond of `day`.
pub fn day_start_ms(day: u32) -> i64 {
    i64::from(day) * DAY_MS
}

/// `YYYYMMDD` of a day number (proleptic Gregorian calendar; H. Hinnant's
/// `civil_from_days`).
pub fn format_day(day: u32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

/// Inverse of [`format_day`] (H. Hinnant's `days_from_civil`); `None` for anything that
/// is not a valid `YYYYMMDD` date on or after 1970-01-01.
pub fn parse_day(s: &str) -> Option<u32> {
    if s.len() < 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (ys, rest) = s.split_at(s.len() - 4);
    let y: i64 = ys.parse().ok()?;
    let m: i64 = rest[..2].parse().ok()?;
    let d: i64 = rest[2..].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let day = u32::try_from(days).ok()?;
    (format_day(day) == s).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_day(0), "19700101");
        // 2000-03-01 is day 11017 (date -d 2000-03-01 +%s = 951868800).
        assert_eq!(format_day(day_of(951_868_800_000)), "20000301");
        // 2024-02-29 00:00:00 UTC = 1709164800.
        assert_eq!(format_day(day_of(1_709_164_800_000)), "20240229");
        assert_eq!(parse_day("20240229"), Some(19_782));
        assert_eq!(parse_day("20230229"), None);
        assert_eq!(parse_day("2024022"), None);
    }

    #[test]
    fn negative_and_huge_timestamps_clamp() {
        assert_eq!(day_of(-1), 0);
        assert_eq!(day_of(i64::MAX), MAX_DAY);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
    }

    #[test]
    fn format_and_parse_round_trip() {
        for day in (0..200_000).step_by(37) {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
    }
}
