//! A protobuf reader for remote write 1.0 over the decompressed body, without copying:
//! labels come out as `&str` borrowed from the body, samples as `(timestamp_ms, value)`.
//!
//! Messages and field numbers (`proto/proto/prometheus_remote.proto`, from Prometheus'
//! `prompb`): `WriteRequest{1: repeated TimeSeries}`, `TimeSeries{1: repeated Label,
//! 2: repeated Sample}`, `Label{1: string name, 2: string value}`,
//! `Sample{1: double value, 2: int64 timestamp}`. Encoding rules from the protobuf
//! encoding guide (<https://protobuf.dev/programming-guides/encoding/>): a key is the
//! varint `field << 3 | wire type`; wire types 0 varint, 1 fixed 8 bytes, 2 length-
//! delimited, 5 fixed 4 bytes; a scalar field seen twice keeps its last value; unknown
//! fields (metadata, exemplars, native histograms) are skipped by wire type.
//!
//! Every length is checked against the bytes left, so a malformed body is an error that
//! names the problem and its byte offset, never a panic or an over-read. Groups (wire
//! types 3 and 4, deprecated and never sent by remote-write clients) are refused.

use crate::error::InsertError;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Reads protobuf fields from one message's bytes; `base` is the message's offset in the
/// whole body, for error messages.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

#[cold]
fn malformed(offset: usize, what: impl std::fmt::Display) -> InsertError {
    InsertError::BadRequest(format!(
        "body is not a remote-write protobuf WriteRequest: {what} at byte {offset}"
    ))
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// A base-128 varint of at most 10 bytes whose value fits 64 bits.
    #[inline]
    fn varint(&mut self) -> Result<u64, InsertError> {
        // Field keys, label lengths and most counts are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_long()
    }

    /// [`Reader::varint`] of more than one byte, or at the end of the bytes.
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, InsertError> {
        let start = self.offset();
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(malformed(start, "truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(malformed(start, "varint over 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(malformed(start, "varint over 64 bits"))
    }

    /// The next field's number and wire type.
    #[inline]
    fn key(&mut self) -> Result<(u32, u8), InsertError> {
        let start = self.offset();
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| malformed(start, format!("field key {key} too large")))?;
        let wire = (key & 7) as u8;
        if field == 0 {
            return Err(malformed(start, "field number 0"));
        }
        Ok((field, wire))
    }

    #[inline]
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], InsertError> {
        let start = self.offset();
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                malformed(
                    start,
                    format!(
                        "{what} of {n} bytes runs past its message ({} bytes left)",
                        self.buf.len() - self.pos
                    ),
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// A length-delimited field's bytes and their offset in the body.
    #[inline]
    fn len_delimited(&mut self, what: &str) -> Result<(&'a [u8], usize), InsertError> {
        let start = self.offset();
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| malformed(start, format!("{what} length {len} too large")))?;
        let at = self.offset();
        Ok((self.take(len, what)?, at))
    }

    #[inline]
    fn fixed64(&mut self) -> Result<[u8; 8], InsertError> {
        let bytes = self.take(8, "fixed64 field")?;
        let mut out = [0u8; 8];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Skips a field of `wire` type whose key was just read.
    fn skip(&mut self, field: u32, wire: u8) -> Result<(), InsertError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8, "fixed64 field").map(drop),
            LEN => self.len_delimited("length-delimited field").map(drop),
            FIXED32 => self.take(4, "fixed32 field").map(drop),
            3 | 4 => Err(malformed(
                self.offset(),
                format!("field {field} is a group (unsupported)"),
            )),
            other => Err(malformed(
                self.offset(),
                format!("field {field} has invalid wire type {other}"),
            )),
        }
    }

    /// Errors unless a known field has its expected wire type.
    #[inline]
    fn expect_wire(&self, field: u32, wire: u8, want: u8, message: &str) -> Result<(), InsertError> {
        if wire == want {
            Ok(())
        } else {
            Err(malformed(
                self.offset(),
                format!("{message} field {field} has wire type {wire}, expected {want}"),
            ))
        }
    }
}

/// One `TimeSeries` message of a `WriteRequest`: its bytes and their offset in the body.
#[derive(Clone, Copy, Debug)]
pub struct TimeSeriesBytes<'a> {
    bytes: &'a [u8],
    offset: usize,
}

/// The `TimeSeries` entries of a decompressed `WriteRequest`, in body order; other fields
/// are skipped. Yields an error (and then nothing) at the first malformed byte.
pub fn time_series(body: &[u8]) -> impl Iterator<Item = Result<TimeSeriesBytes<'_>, InsertError>> {
    let mut r = Reader::new(body, 0);
    let mut failed = false;
    std::iter::from_fn(move || {
        while !failed && !r.at_end() {
            let next = (|| {
                let (field, wire) = r.key()?;
                if field != 1 {
                    r.skip(field, wire)?;
                    return Ok(None);
                }
                r.expect_wire(field, wire, LEN, "WriteRequest")?;
                let (bytes, offset) = r.len_delimited("TimeSeries")?;
                Ok(Some(TimeSeriesBytes { bytes, offset }))
            })();
            match next {
                Ok(None) => continue,
                Ok(Some(ts)) => return Some(Ok(ts)),
                Err(e) => {
                    failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    })
}

/// Decodes one `TimeSeries`: clears `labels` and `samples` and fills them with its label
/// pairs (as received: order, duplicates and empty values kept) and its samples
/// (`(timestamp_ms, value)`, value bit-exact). Errors: malformed protobuf, a label name
/// or value that is not UTF-8.
pub fn read_series<'a>(
    ts: TimeSeriesBytes<'a>,
    labels: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<(), InsertError> {
    labels.clear();
    samples.clear();
    let text = LabelText::of(ts);
    let mut r = Reader::new(ts.bytes, ts.offset);
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect_wire(field, wire, LEN, "TimeSeries")?;
                let (bytes, offset) = r.len_delimited("Label")?;
                labels.push(read_label(bytes, offset, &text)?);
            }
            2 => {
                r.expect_wire(field, wire, LEN, "TimeSeries")?;
                let (bytes, offset) = r.len_delimited("Sample")?;
                samples.push(read_sample(bytes, offset)?);
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// Reads the samples of one `TimeSeries` (appended to `samples`) without decoding its
/// labels, and returns the bytes of its label fields, keys and lengths included, when
/// they all come before any other field, as senders write them; [`read_series`] of the
/// same entry then yields the same samples. `Ok(None)` when a label field follows another
/// field or has an unexpected wire type: the caller reads the entry with [`read_series`].
/// Errors: malformed protobuf outside the label fields, or a label field whose length
/// runs past the entry.
pub fn label_fields_and_samples<'a>(
    ts: TimeSeriesBytes<'a>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<Option<&'a [u8]>, InsertError> {
    let mut r = Reader::new(ts.bytes, ts.offset);
    let mut labels_end = 0;
    let mut in_labels = true;
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 if in_labels && wire == LEN => {
                r.len_delimited("Label")?;
                labels_end = r.pos;
            }
            1 => return Ok(None),
            2 => {
                in_labels = false;
                r.expect_wire(field, wire, LEN, "TimeSeries")?;
                let (bytes, offset) = r.len_delimited("Sample")?;
                samples.push(read_sample(bytes, offset)?);
            }
            _ => {
                in_labels = false;
                r.skip(field, wire)?;
            }
        }
    }
    Ok(Some(&ts.bytes[..labels_end]))
}

/// The label fields at the start of a `TimeSeries` (where senders put them, before the
/// samples), checked as UTF-8 in one pass instead of one check per name and value.
///
/// When those bytes, protobuf keys and lengths included, are valid UTF-8 as a whole,
/// any part of them that starts and ends on a character boundary is valid UTF-8 too;
/// `str::get` checks the two boundaries. Keys and one-byte lengths are ASCII, so they
/// never straddle a character. Otherwise (a long value's two-byte length, invalid text,
/// labels after the samples) each string is checked on its own.
struct LabelText<'a> {
    text: Option<&'a str>,
    /// Offset of `text` in the whole body.
    offset: usize,
}

impl<'a> LabelText<'a> {
    fn of(ts: TimeSeriesBytes<'a>) -> Self {
        let mut r = Reader::new(ts.bytes, ts.offset);
        let mut end = 0;
        while !r.at_end() {
            match r.key() {
                Ok((1, LEN)) if r.len_delimited("Label").is_ok() => end = r.pos,
                _ => break,
            }
        }
        LabelText {
            text: std::str::from_utf8(&ts.bytes[..end]).ok(),
            offset: ts.offset,
        }
    }

    /// `bytes`, found at `offset` in the body, as text. Errors: not UTF-8.
    #[inline]
    fn str(&self, bytes: &'a [u8], offset: usize) -> Result<&'a str, std::str::Utf8Error> {
        let within = self
            .text
            .zip(offset.checked_sub(self.offset))
            .and_then(|(text, at)| text.get(at..at + bytes.len()));
        match within {
            Some(s) => Ok(s),
            None => std::str::from_utf8(bytes),
        }
    }
}

#[inline]
fn read_label<'a>(bytes: &'a [u8], offset: usize, text: &LabelText<'a>) -> Result<(&'a str, &'a str), InsertError> {
    let mut r = Reader::new(bytes, offset);
    let (mut name, mut value) = ("", "");
    while !r.at_end() {
        let (field, wire) = r.key()?;
        let slot = match field {
            1 => &mut name,
            2 => &mut value,
            _ => {
                r.skip(field, wire)?;
                continue;
            }
        };
        r.expect_wire(field, wire, LEN, "Label")?;
        let (raw, at) = r.len_delimited("label string")?;
        *slot = text.str(raw, at).map_err(|e| {
            let what = if field == 1 { "name" } else { "value" };
            malformed(at, format!("label {what} is not UTF-8 ({e})"))
        })?;
    }
    Ok((name, value))
}

#[inline]
fn read_sample(bytes: &[u8], offset: usize) -> Result<(i64, f64), InsertError> {
    let mut r = Reader::new(bytes, offset);
    let (mut timestamp, mut value) = (0i64, 0f64);
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect_wire(field, wire, FIXED64, "Sample")?;
                value = f64::from_le_bytes(r.fixed64()?);
            }
            2 => {
                r.expect_wire(field, wire, VARINT, "Sample")?;
                // int64 is the varint of the two's-complement u64.
                timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((timestamp, value))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
