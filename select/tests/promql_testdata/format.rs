//! A parser for Prometheus' PromQL test-script format (`promql/promqltest/testdata/*.test`):
//! `load <step>` blocks with series in expanding notation, `clear`, and `eval` commands
//! with their expected results and `expect` lines.

use cairn_common::Labels;

/// One value of a series description: a number, a staleness marker, or nothing (`_`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqValue {
    Omitted,
    Value(f64),
}

/// A series line: labels and its sequence of values, one per step.
#[derive(Debug, Clone)]
pub struct SeriesLine {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// The line holds native histogram samples (`{{...}}`), which Cairn does not support.
    pub histogram: bool,
    /// The line gives start timestamps (`metric@st ...`, an experimental Prometheus
    /// feature), which Cairn does not store.
    pub start_timestamps: bool,
}

/// What an eval expects.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub fail: bool,
    pub fail_msg: Option<String>,
    pub fail_regex: Option<String>,
    pub warn: Option<bool>,
    pub info: Option<bool>,
    pub ordered: bool,
    /// `expect range vector from S to E step D` (ms) for an instant query of a range.
    pub range_vector: Option<(i64, i64, i64)>,
    pub string: Option<String>,
}

/// One `eval`.
#[derive(Debug, Clone)]
pub struct Eval {
    pub line: usize,
    pub query: String,
    /// `Some((start, end, step))` for a range query, ms; `None` for an instant one.
    pub range: Option<(i64, i64, i64)>,
    pub at: i64,
    pub expect: Expect,
    /// Expected series lines (or a lone scalar in `scalar`).
    pub results: Vec<SeriesLine>,
    pub scalar: Option<f64>,
}

/// A command of a test file.
#[derive(Debug, Clone)]
pub enum Command {
    Load {
        step_ms: i64,
        nhcb: bool,
        series: Vec<SeriesLine>,
    },
    Clear,
    Eval(Box<Eval>),
}

/// Parses a Prometheus duration (`1h30m`, `10s`, `100ms`, bare `0` or seconds) into ms.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Some((n * 1000.0).round() as i64);
    }
    let (mut total, mut num) = (0i64, String::new());
    let b = s.as_bytes();
    let mut i = 0;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_digit() {
            num.push(c);
            i += 1;
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let (mult, len) = match (c, b.get(i + 1).map(|&x| x as char)) {
            ('m', Some('s')) => (1, 2),
            ('s', _) => (1000, 1),
            ('m', _) => (60_000, 1),
            ('h', _) => (3_600_000, 1),
            ('d', _) => (86_400_000, 1),
            ('w', _) => (7 * 86_400_000, 1),
            ('y', _) => (365 * 86_400_000, 1),
            _ => return None,
        };
        total += n * mult;
        i += len;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "stale" => return Some(f64::from_bits(cairn_common::STALE_NAN_BITS)),
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(h) = t.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    t.parse::<f64>().ok()
}

/// Expands one item of a series description (`1`, `_`, `stale`, `1+2x3`, `5x2`, `_x4`).
fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Option<()> {
    let (head, times) = match item.rfind('x') {
        Some(p) if p > 0 && item[p + 1..].chars().all(|c| c.is_ascii_digit()) && p + 1 < item.len() => {
            (&item[..p], Some(item[p + 1..].parse::<u64>().ok()?))
        }
        _ => (item, None),
    };
    if head == "_" {
        let n = times.unwrap_or(1);
        out.extend((0..n).map(|_| SeqValue::Omitted));
        return Some(());
    }
    let Some(times) = times else {
        out.push(SeqValue::Value(parse_number(head)?));
        return Some(());
    };
    // Split "a+b" / "a-b": the first sign after position 0 not part of an exponent.
    let bytes = head.as_bytes();
    let split =
        (1..bytes.len()).find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (mut v, delta) = match split {
        Some(p) => (parse_number(&head[..p])?, parse_number(&head[p..])?),
        None => (parse_number(head)?, 0.0),
    };
    out.push(SeqValue::Value(v));
    for _ in 0..times {
        v += delta;
        out.push(SeqValue::Value(v));
    }
    Some(())
}

/// Parses a label set `name{a="b", ...}` at the start of `s`; returns it and the rest.
pub fn parse_labels(s: &str) -> Option<(Labels, &str)> {
    let s = s.trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    if name_end > 0 {
        pairs.push(("__name__".into(), s[..name_end].to_string()));
    }
    let mut rest = &s[name_end..];
    if !rest.starts_with('{') {
        if pairs.is_empty() {
            return None;
        }
        return Some((Labels::from_pairs(pairs), rest));
    }
    rest = &rest[1..];
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Some((Labels::from_pairs(pairs), r));
        }
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            continue;
        }
        let (name, r) = if rest.starts_with(['"', '\'', '`']) {
            let (v, r) = parse_quoted(rest)?;
            (v, r)
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))?;
            (rest[..end].to_string(), &rest[end..])
        };
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('=') else {
            // A quoted metric name alone: `{"metric.name", a="b"}`.
            pairs.push(("__name__".into(), name));
            rest = r;
            continue;
        };
        let (value, r) = parse_quoted(r.trim_start())?;
        pairs.push((name, value));
        rest = r;
    }
}

/// A Go-style quoted string with escapes; returns it and the rest.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next()?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Some((out, &s[1 + i + 1..]));
        }
        if c == '\\' && q != '`' {
            let (_, e) = chars.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let b = u8::from_str_radix(&h, 16).ok()?;
                    out.push(char::from(b));
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        out.push(c);
    }
    None
}

/// Parses a series line `labels values...`.
pub fn parse_series_line(line: &str) -> Option<SeriesLine> {
    let (labels, rest) = parse_labels(line)?;
    let mut values = Vec::new();
    let histogram = rest.contains("{{");
    let start_timestamps = rest.starts_with("@st");
    if !histogram && !start_timestamps {
        for item in rest.split_whitespace() {
            expand_item(item, &mut values)?;
        }
    }
    Some(SeriesLine {
        labels,
        values,
        histogram,
        start_timestamps,
    })
}

/// Parses a whole test file. Errors name the line.
pub fn parse_file(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    let is_body = |l: &str| l.starts_with([' ', '\t']) && !l.trim().is_empty();
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut body = Vec::new();
        while i < lines.len() && (is_body(lines[i]) || lines[i].trim_start().starts_with('#')) {
            if !lines[i].trim_start().starts_with('#') {
                body.push(lines[i].trim());
            }
            i += 1;
        }
        let word = trimmed.split_whitespace().next().unwrap_or("");
        match word {
            "clear" => cmds.push(Command::Clear),
            "load" | "load_with_nhcb" => {
                let step = trimmed
                    .split_whitespace()
                    .nth(1)
                    .and_then(parse_duration)
                    .ok_or(format!("line {i}: bad load"))?;
                let series = body
                    .iter()
                    .map(|l| parse_series_line(l).ok_or(format!("line {i}: bad series {l:?}")))
                    .collect::<Result<_, _>>()?;
                cmds.push(Command::Load {
                    step_ms: step,
                    nhcb: word == "load_with_nhcb",
                    series,
                });
            }
            w if w.starts_with("eval") => cmds.push(Command::Eval(Box::new(parse_eval(i, trimmed, &body)?))),
            _ => return Err(format!("line {i}: unknown command {trimmed:?}")),
        }
    }
    Ok(cmds)
}

fn parse_eval(line: usize, head: &str, body: &[&str]) -> Result<Eval, String> {
    let err = |m: &str| format!("line {line}: {m}: {head:?}");
    let mut words = head.splitn(2, ' ');
    let cmd = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("").trim_start();
    let mut expect = Expect::default();
    match cmd {
        "eval" => {}
        "eval_fail" => expect.fail = true,
        "eval_warn" => expect.warn = Some(true),
        "eval_info" => expect.info = Some(true),
        "eval_ordered" => expect.ordered = true,
        _ => return Err(err("unknown eval")),
    }
    let (range, at, query) = if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, q) = r.split_once(' ').ok_or_else(|| err("no query"))?;
        (
            None,
            parse_duration(t).ok_or_else(|| err("bad time"))?,
            q.trim().to_string(),
        )
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let parts: Vec<&str> = r.splitn(6, ' ').collect();
        if parts.len() < 6 || parts[1] != "to" || parts[3] != "step" {
            return Err(err("bad range"));
        }
        let p = |s: &str| parse_duration(s).ok_or_else(|| err("bad duration"));
        (
            Some((p(parts[0])?, p(parts[2])?, p(parts[4])?)),
            0,
            parts[5].trim().to_string(),
        )
    } else {
        return Err(err("bad eval"));
    };
    let mut results = Vec::new();
    let mut scalar = None;
    for l in body {
        if let Some(e) = l.strip_prefix("expect ") {
            let e = e.trim();
            let (kind, arg) = match e.split_once(':') {
                Some((k, a)) => (k.trim(), Some(a.trim())),
                None => (e, None),
            };
            match kind.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["fail"] => expect.fail = true,
                ["fail", "msg"] => {
                    expect.fail = true;
                    expect.fail_msg = arg.map(str::to_string);
                }
                ["fail", "regex"] => {
                    expect.fail = true;
                    expect.fail_regex = arg.map(str::to_string);
                }
                ["warn", ..] => expect.warn = Some(true),
                ["no_warn"] => expect.warn = Some(false),
                ["info", ..] => expect.info = Some(true),
                ["no_info"] => expect.info = Some(false),
                ["ordered"] => expect.ordered = true,
                ["range", "vector", "from", s, "to", en, "step", st] => {
                    let p = |x: &str| parse_duration(x).ok_or_else(|| err("bad range vector"));
                    expect.range_vector = Some((p(s)?, p(en)?, p(st)?));
                }
                ["string", ..] => {
                    let s = e.trim_start_matches("string").trim();
                    expect.string = Some(parse_quoted(s).map(|x| x.0).unwrap_or_default());
                }
                _ => return Err(err(&format!("unknown expect {e:?}"))),
            }
            continue;
        }
        if let Some(v) = parse_number(l) {
            scalar = Some(v);
            continue;
        }
        if l.starts_with("expected_fail_message") || l.starts_with("expected_fail_regexp") {
            continue;
        }
        results.push(parse_series_line(l).ok_or_else(|| err(&format!("bad result {l:?}")))?);
    }
    Ok(Eval {
        line,
        query,
        range,
        at,
        expect,
        results,
        scalar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanding_notation() {
        let s = parse_series_line(r#"m{a="b"} 0+10x2 _ stale 1x1 _x2 -1-1x1"#).expect("valid");
        let v: Vec<String> = s.values.iter().map(|x| format!("{x:?}")).collect();
        assert_eq!(v.len(), 3 + 1 + 1 + 2 + 2 + 2);
        assert_eq!(s.values[1], SeqValue::Value(10.0));
        assert_eq!(s.values[3], SeqValue::Omitted);
        assert_eq!(s.values[10], SeqValue::Value(-2.0));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("0"), Some(0));
    }
}
