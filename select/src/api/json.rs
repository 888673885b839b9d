//! The Prometheus API's JSON shapes, written by hand so that numbers come out exactly as
//! Prometheus writes them: timestamps as seconds with up to three decimals
//! (`1435781451.781`), sample values as strings in Go's shortest form (`"1e-07"`,
//! `"+Inf"`, `"NaN"`), cf. Prometheus' `util/jsonutil` `MarshalTimestamp`/`MarshalFloat`.

use std::fmt::Write;

use cairn_common::Labels;

use crate::promql::Value;

/// Appends a timestamp in milliseconds as Prometheus' seconds notation.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    let (sign, t) = if t_ms < 0 {
        ("-", t_ms.unsigned_abs())
    } else {
        ("", t_ms as u64)
    };
    let frac = t % 1000;
    if frac == 0 {
        let _ = write!(out, "{sign}{}", t / 1000);
    } else {
        let _ = write!(out, "{sign}{}.{frac:03}", t / 1000);
    }
}

/// A sample value as Prometheus writes it (without the quotes): Go's `strconv.FormatFloat`
/// with `'f'`, or `'e'` for magnitudes under 1e-6 or from 1e21 up, shortest round-trip.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1e-7` / `1.5e21`; Go writes `1e-07` / `1.5e+21`.
        let s = format!("{v:e}");
        let Some((mantissa, exp)) = s.split_once('e') else {
            return s;
        };
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    format!("{v}")
}

/// Appends a JSON string literal, escaped as serde_json escapes it (`"`, `\\` and the
/// control characters below U+0020; nothing else).
pub fn write_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Label names and values almost never need escaping: copied as they are.
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(s).to_string());
    }
}

/// Appends a label set as a JSON object, names in sorted order.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Writes the labels part of a canonical key as a JSON object, as [`write_labels`] writes
/// the same label set. The caller checks the key first
/// ([`cairn_common::labels::for_each_key_label`]): of bytes that are not such a part, the
/// labels before the fault are written.
pub fn write_key_labels(out: &mut String, key: &[u8]) {
    out.push('{');
    let mut first = true;
    let _ = cairn_common::labels::for_each_key_label(key, |name, value| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        write_str(out, name);
        out.push(':');
        write_str(out, value);
    });
    out.push('}');
}

fn write_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t_ms);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

/// The `data` object of a query answer: `{"resultType":…,"result":…}`.
pub fn write_query_data(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t_ms, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(out, *t_ms, *v);
        }
        Value::String { t_ms, v } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            write_timestamp(out, *t_ms);
            out.push(',');
            write_str(out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(out, s.t_ms, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (t, v)) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// A whole success answer: `{"status":"success","isPartial":…,"data":DATA[,"warnings":…][,"infos":…]}`.
/// `data` is already JSON.
pub fn success(data: &str, is_partial: bool, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str(r#"{"status":"success","isPartial":"#);
    out.push_str(if is_partial { "true" } else { "false" });
    out.push_str(r#","data":"#);
    out.push_str(data);
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            let _ = write!(out, r#","{key}":"#);
            out.push_str(&serde_json::Value::from(list.to_vec()).to_string());
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_written_as_its_label_set() {
        let labels = Labels::from_pairs([("__name__", "up"), ("path", "a\"b\\c\n"), ("z", "é")]);
        let key = labels.canonical_key(cairn_common::Tenant::default());
        let (mut from_labels, mut from_key) = (String::new(), String::new());
        write_labels(&mut from_labels, &labels);
        write_key_labels(&mut from_key, &key[8..]);
        assert_eq!(from_key, from_labels);
        assert_eq!(from_key, r#"{"__name__":"up","path":"a\"b\\c\n","z":"é"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&from_key).expect("JSON");
        assert_eq!(parsed["path"], "a\"b\\c\n");
    }

    #[test]
    fn timestamps_as_prometheus_writes_them() {
        let mut s = String::new();
        for t in [1_435_781_451_781, 1_435_781_451_000, 1_435_781_451_050, -1_500, 7] {
            write_timestamp(&mut s, t);
            s.push(' ');
        }
        assert_eq!(s, "1435781451.781 1435781451 1435781451.050 -1.500 0.007 ");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "node_exporter",
            "say \"hi\"",
            "C:\\path",
            "tab\there\nline",
            "\u{0}\u{1f}\u{7f}",
            "ünïcødé ✓ \u{2028}",
            "</script>",
        ] {
            let mut out = String::new();
            write_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).expect("serializes"), "{text:?}");
            assert_eq!(serde_json::from_str::<String>(&out).expect("parses"), text);
        }
    }

    #[test]
    fn values_as_go_formats_them() {
        let cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e-7, "1e-07"),
            (1.5e21, "1.5e+21"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-0.0, "-0"),
        ];
        for (v, want) in cases {
            assert_eq!(format_value(v), want, "{v:?}");
        }
    }
}
