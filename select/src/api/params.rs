//! Request parameters as Prometheus reads them (`r.FormValue`): from the URL query and,
//! for POST with `application/x-www-form-urlencoded`, from the body (the body wins), and
//! the time and duration formats of its API.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

use crate::error::SelectError;

/// All `name=value` pairs of a request, body pairs first.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Collects the pairs of a URL query string and an optional form body.
    pub fn new(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = form_body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(pairs)
    }

    /// The first value of `name`, if any and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (e.g. repeated `match[]`), body values first.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A boolean flag such as `deny_partial_response=1` / `true`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "TRUE" | "True"))
    }
}

/// An extractor: the URL query plus, for a POST with `application/x-www-form-urlencoded`,
/// the body. It reads the body, so it comes last among a handler's arguments. Errors: the
/// body cannot be read (bad_data, 400).
impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = SelectError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form_post = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let query = req.uri().query().map(str::to_string);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| SelectError::BadData(format!("cannot read the request body: {}", e.body_text())))?;
        Ok(Params::new(query.as_deref(), is_form_post.then_some(body.as_ref())))
    }
}

/// Prometheus' `minTime`/`maxTime` as its clients send them for "unbounded".
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a time parameter: Unix seconds with an optional fraction (rounded to the
/// millisecond, as Prometheus does) or RFC 3339. Returns milliseconds since the epoch.
/// Errors: anything else, as `invalid parameter "NAME": …`.
pub fn parse_time(name: &str, s: &str) -> Result<i64, SelectError> {
    let bad = || {
        SelectError::BadData(format!(
            "invalid parameter {name:?}: cannot parse {s:?} to a valid timestamp"
        ))
    };
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(bad());
        }
        let whole = secs.trunc();
        let frac_ms = ((secs - whole) * 1000.0).round();
        let ms = whole * 1000.0 + frac_ms;
        if ms.abs() > 9.0e15 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    match s {
        MIN_TIME_TEXT => return Ok(i64::MIN / 2),
        MAX_TIME_TEXT => return Ok(i64::MAX / 2),
        _ => {}
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| bad())
}

/// Parses a duration parameter (`step`, `timeout`): seconds as a float or a Prometheus
/// duration (`15s`, `1m30s`). Returns milliseconds. Errors: anything else or a value
/// that is not positive.
pub fn parse_duration_ms(name: &str, s: &str) -> Result<i64, SelectError> {
    let bad = |why: &str| {
        SelectError::BadData(format!(
            "invalid parameter {name:?}: cannot parse {s:?} to a valid duration{why}"
        ))
    };
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms > 9.0e15 {
            return Err(bad(""));
        }
        if ms <= 0.0 {
            return Err(bad(": zero or negative"));
        }
        return Ok(ms as i64);
    }
    let d = cairn_common::duration::parse_duration(s).map_err(|_| bad(""))?;
    if d.is_zero() {
        return Err(bad(": zero or negative"));
    }
    Ok(d.as_millis() as i64)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_formats() {
        assert_eq!(parse_time("time", "1700000000").ok(), Some(1_700_000_000_000));
        assert_eq!(parse_time("time", "1700000000.1235").ok(), Some(1_700_000_000_124));
        assert_eq!(parse_time("time", "2023-11-14T22:13:20Z").ok(), Some(1_700_000_000_000));
        assert_eq!(
            parse_time("time", "2023-11-14T23:13:20.5+01:00").ok(),
            Some(1_700_000_000_500)
        );
        let err = parse_time("time", "yesterday").expect_err("bad");
        assert!(err.to_string().contains("invalid parameter \"time\""), "{err}");
    }

    #[test]
    fn durations_in_both_formats() {
        assert_eq!(parse_duration_ms("step", "15").ok(), Some(15_000));
        assert_eq!(parse_duration_ms("step", "0.5").ok(), Some(500));
        assert_eq!(parse_duration_ms("step", "1m30s").ok(), Some(90_000));
        assert!(parse_duration_ms("step", "0").is_err());
        assert!(parse_duration_ms("step", "-1").is_err());
        assert!(parse_duration_ms("step", "fast").is_err());
    }

    #[test]
    fn body_values_come_before_query_values() {
        let p = Params::new(Some("query=up&match[]=a"), Some(b"query=down&match[]=b"));
        assert_eq!(p.get("query"), Some("down"));
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["b", "a"]);
    }
}
