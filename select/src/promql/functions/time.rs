//! Calendar functions over Unix seconds in UTC: `day_of_month`, `day_of_week`,
//! `day_of_year`, `days_in_month`, `hour`, `minute`, `month`, `year`. With no argument they
//! read `vector(time())`. They drop the metric name.

use super::{check_unique, vector};
use crate::promql::error::QueryError;
use crate::promql::value::{Sample, Val};

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian): `(year, month, day)`.
/// The era-based conversion of H. Hinnant's "chrono-compatible low-level date algorithms".
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn component(name: &str, secs: f64) -> f64 {
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let doy = {
        let cum: u32 = (1..m).map(|mm| days_in_month(y, mm)).sum();
        cum + d
    };
    (match name {
        "day_of_month" => d as i64,
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_year" => doy as i64,
        "days_in_month" => days_in_month(y, m) as i64,
        "hour" => sod / 3600,
        "minute" => (sod % 3600) / 60,
        "month" => m as i64,
        _ => y,
    }) as f64
}

/// Evaluates the function if it belongs here; `None` otherwise.
pub(super) fn eval(name: &str, args: &[Val], t: i64) -> Result<Option<Val>, QueryError> {
    if !matches!(
        name,
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year"
    ) {
        return Ok(None);
    }
    let input = if args.is_empty() {
        vec![Sample {
            labels: Default::default(),
            t,
            v: t as f64 / 1000.0,
            drop: false,
        }]
    } else {
        vector(args, 0)?
    };
    let out = input
        .into_iter()
        .map(|s| Sample {
            labels: s.labels,
            t,
            drop: true,
            v: if s.v.is_finite() { component(name, s.v) } else { s.v },
        })
        .collect();
    Ok(Some(Val::Vector(check_unique(out)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_components_of_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-02-29 is day 11016.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2024-12-31T23:59:00Z = 1735689540.
        assert_eq!(component("day_of_year", 1_735_689_540.0), 366.0);
        assert_eq!(component("minute", 1_735_689_540.0), 59.0);
        // 1970-01-01 was a Thursday (4).
        assert_eq!(component("day_of_week", 0.0), 4.0);
        assert_eq!(component("days_in_month", 951_782_400.0), 29.0); // 2000-02-29
    }
}
