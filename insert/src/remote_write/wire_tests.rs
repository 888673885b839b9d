use cairn_proto::prometheus::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
use proptest::prelude::*;
use prost::Message;

use super::*;

type Content = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

/// Everything the reader yields, owned; values as bits so NaN payloads compare.
fn read_all(body: &[u8]) -> Result<Content, InsertError> {
    let mut labels = Vec::new();
    let mut samples = Vec::new();
    let mut out = Vec::new();
    for ts in time_series(body) {
        read_series(ts?, &mut labels, &mut samples)?;
        out.push((
            labels.iter().map(|&(n, v)| (n.to_string(), v.to_string())).collect(),
            samples.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
        ));
    }
    Ok(out)
}

/// Checks [`label_fields_and_samples`] against [`read_series`] on every entry of `body`:
/// an error of the first is an error of the second; where both read an entry, their
/// samples are the same, and the label fields re-read as an entry give its labels.
fn label_fields_agree(body: &[u8]) -> Result<(), TestCaseError> {
    let (mut labels, mut samples, mut fast) = (Vec::new(), Vec::new(), Vec::new());
    for ts in time_series(body) {
        let Ok(ts) = ts else { return Ok(()) };
        fast.clear();
        let fields = label_fields_and_samples(ts, &mut fast);
        let full = read_series(ts, &mut labels, &mut samples);
        match (fields, full) {
            (Err(_), full) => prop_assert!(full.is_err(), "only the label-fields reader failed"),
            (Ok(Some(fields)), Ok(())) => {
                let bits = |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
                prop_assert_eq!(bits(&fast), bits(&samples));
                let again = TimeSeriesBytes {
                    bytes: fields,
                    offset: 0,
                };
                let (mut relabels, mut none) = (Vec::new(), Vec::new());
                read_series(again, &mut relabels, &mut none).expect("label fields re-read");
                prop_assert_eq!(&relabels, &labels);
                prop_assert!(none.is_empty());
            }
            _ => {}
        }
    }
    Ok(())
}

fn content_of(req: &WriteRequest) -> Content {
    req.timeseries
        .iter()
        .map(|ts| {
            (
                ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect(),
            )
        })
        .collect()
}

fn arb_request() -> impl Strategy<Value = WriteRequest> {
    let label = ("\\PC{0,10}", "\\PC{0,20}").prop_map(|(name, value)| Label { name, value });
    let sample = (any::<u64>(), any::<i64>()).prop_map(|(bits, timestamp)| Sample {
        value: f64::from_bits(bits),
        timestamp,
    });
    let series = (
        proptest::collection::vec(label, 0..6),
        proptest::collection::vec(sample, 0..4),
    )
        .prop_map(|(labels, samples)| TimeSeries { labels, samples });
    let metadata = ("\\PC{0,8}", "\\PC{0,8}").prop_map(|(metric_family_name, help)| MetricMetadata {
        r#type: 1,
        metric_family_name,
        help,
        unit: String::new(),
    });
    (
        proptest::collection::vec(series, 0..6),
        proptest::collection::vec(metadata, 0..2),
    )
        .prop_map(|(timeseries, metadata)| WriteRequest { timeseries, metadata })
}

/// Requests whose labels are long (two-byte lengths) or non-ASCII, where the one-pass
/// UTF-8 check of a series' labels gives way to one check per string.
fn arb_wide_request() -> impl Strategy<Value = WriteRequest> {
    let label = ("\\PC{1,40}", "\\PC{0,300}").prop_map(|(name, value)| Label { name, value });
    let series = proptest::collection::vec(label, 0..5).prop_map(|labels| TimeSeries {
        labels,
        samples: vec![Sample {
            value: 1.0,
            timestamp: 5,
        }],
    });
    proptest::collection::vec(series, 0..4).prop_map(|timeseries| WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

proptest! {
    /// Long and non-ASCII label names and values come out as sent.
    #[test]
    fn reads_long_and_non_ascii_labels(req in arb_wide_request()) {
        let body = req.encode_to_vec();
        prop_assert_eq!(read_all(&body).expect("valid body"), content_of(&req));
        label_fields_agree(&body)?;
    }

    /// Whatever prost encodes, the reader returns the same labels and bit-identical samples.
    #[test]
    fn reads_what_prost_encodes(req in arb_request()) {
        let body = req.encode_to_vec();
        prop_assert_eq!(read_all(&body).expect("valid body"), content_of(&req));
    }

    /// Random bytes never panic; when both the reader and prost accept them, they agree.
    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        label_fields_agree(&body)?;
        if let Ok(content) = read_all(&body)
            && let Ok(req) = WriteRequest::decode(body.as_slice())
        {
            prop_assert_eq!(content, content_of(&req));
        }
    }

    /// Valid bodies cut short or with one byte changed never panic; a cut body is either
    /// an error or, when cut between entries, the entries before the cut.
    #[test]
    fn damaged_bodies_never_panic(req in arb_request(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let body = req.encode_to_vec();
        if !body.is_empty() {
            if let Ok(prefix) = read_all(&body[..cut.index(body.len())]) {
                let full = content_of(&req);
                prop_assert!(full.starts_with(&prefix), "{prefix:?} is not a prefix of {full:?}");
            }
            label_fields_agree(&body[..cut.index(body.len())])?;
            let mut changed = body.clone();
            let i = flip.0.index(body.len());
            changed[i] ^= flip.1 | 1;
            let _ = read_all(&changed);
            label_fields_agree(&changed)?;
        }
    }
}

#[test]
fn skips_unknown_fields_of_every_wire_type() {
    let known = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![Sample {
                value: 1.5,
                timestamp: -7,
            }],
        }],
        metadata: vec![],
    };
    let mut body = known.encode_to_vec();
    // Field 9 of each wire type at the top level: varint, fixed64, bytes, fixed32.
    body.extend_from_slice(&[9 << 3, 0x96, 0x01]);
    body.extend_from_slice(&[9 << 3 | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    body.extend_from_slice(&[9 << 3 | 2, 2, b'h', b'i']);
    body.extend_from_slice(&[9 << 3 | 5, 1, 2, 3, 4]);
    assert_eq!(read_all(&body).expect("valid"), content_of(&known));
}

#[test]
fn malformed_bodies_are_errors_naming_the_problem() {
    let cases: [(&[u8], &str); 6] = [
        (&[0x0a, 0x05, 0x0a], "runs past its message"),
        (&[0x0a], "truncated varint"),
        (&[0x08, 0x01], "WriteRequest field 1 has wire type 0, expected 2"),
        (&[0x00, 0x01], "field number 0"),
        (&[0x13], "field 2 is a group"),
        // TimeSeries{Label{name: 0xff}}: not UTF-8.
        (&[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff], "label name is not UTF-8"),
    ];
    for (body, want) in cases {
        let err = read_all(body).expect_err("malformed");
        let msg = err.to_string();
        assert!(msg.contains("not a remote-write protobuf"), "{msg}");
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
    }
    let too_long = [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert!(
        read_all(&too_long)
            .expect_err("overflow")
            .to_string()
            .contains("over 64 bits")
    );
}

/// One `Label` message: name and value as raw bytes.
fn raw_label(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut l = vec![0x0a, name.len() as u8];
    l.extend_from_slice(name);
    l.push(0x12);
    l.push(value.len() as u8);
    l.extend_from_slice(value);
    let mut out = vec![0x0a, l.len() as u8];
    out.extend(l);
    out
}

/// A `WriteRequest` of one `TimeSeries` made of `fields`.
fn raw_request(fields: &[Vec<u8>]) -> Vec<u8> {
    let ts: Vec<u8> = fields.concat();
    let mut out = vec![0x0a, ts.len() as u8];
    out.extend(ts);
    out
}

#[test]
fn invalid_utf8_in_any_label_string_is_an_error() {
    // A valid non-ASCII name first, then a value cut inside a character (0xe2 0x82 of
    // "€"), then one with a stray continuation byte: each body is refused, whichever
    // string of the series is bad.
    let good = raw_label("é".as_bytes(), "€".as_bytes());
    for bad in [
        raw_label(b"job", &[0xe2, 0x82]),
        raw_label(b"job", &[b'a', 0x80, b'b']),
        raw_label(&[0xc3], b"x"),
    ] {
        for fields in [vec![good.clone(), bad.clone()], vec![bad.clone(), good.clone()]] {
            let err = read_all(&raw_request(&fields)).expect_err("not UTF-8");
            assert!(err.to_string().contains("is not UTF-8"), "{err}");
        }
    }
    let read = read_all(&raw_request(&[good])).expect("valid");
    assert_eq!(read[0].0, [("é".to_string(), "€".to_string())]);
}

#[test]
fn labels_after_the_samples_are_read() {
    // Sample{value: 1.0, timestamp: 7}, then Label{__name__="up"}: not prost's order, but
    // valid protobuf.
    let mut sample = vec![0x12, 11, 0x09];
    sample.extend_from_slice(&1.0f64.to_le_bytes());
    sample.extend_from_slice(&[0x10, 7]);
    let body = raw_request(&[sample, raw_label(b"__name__", b"up")]);
    let read = read_all(&body).expect("valid");
    assert_eq!(read[0].0, [("__name__".to_string(), "up".to_string())]);
    assert_eq!(read[0].1, [(7, 1.0f64.to_bits())]);
    // Its label fields do not lead the entry: no cacheable label bytes.
    let ts = time_series(&body).next().expect("one entry").expect("valid");
    assert_eq!(label_fields_and_samples(ts, &mut Vec::new()).expect("valid"), None);
}
