//! Every record read from a file is bounded: a line that never ends (a link to
//! `/dev/zero`, a file without newlines, a quote never closed) is cut at the
//! limit, rejected with its start kept, and reading resumes at the next newline,
//! so memory stays flat whatever the input.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The longest record read by default: 1 MiB, far above any bar.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// How much of a record that is too long is kept in dead letters.
pub const KEPT_START_BYTES: usize = 4096;

/// The reason given for a record over the limit.
pub(crate) fn too_long(limit: usize) -> String {
    format!("the record is longer than {limit} bytes (--max-record-bytes); its first {KEPT_START_BYTES} bytes are kept")
}

/// Where the CSV parser stands in a record, mirrored byte by byte so that a cut
/// record can be closed the way the parser expects (`csv_core`'s default
/// dialect: `"` quotes, doubled to escape, `\r` or `\n` ends a record).
#[derive(Debug, Clone, Copy, PartialEq)]
enum CsvState {
    FieldStart,
    Field,
    Quoted,
    QuoteInQuoted,
}

/// Lines (1-based, as the CSV reader counts them) at which a record was cut.
/// `pending` lets the reader skip the lock on every row while there is none.
#[derive(Default)]
pub(crate) struct CutLines {
    pub(crate) lines: Mutex<VecDeque<u64>>,
    pub(crate) pending: AtomicBool,
}

pub(crate) type Cuts = Arc<CutLines>;

/// A reader in front of the CSV parser that cuts every record at `limit` bytes:
/// it ends the record where the parser stands (closing an open quote), notes
/// the line in `cuts`, and drops the rest of the line, its newline included.
pub(crate) struct CsvRecordGuard<R> {
    inner: R,
    limit: usize,
    state: CsvState,
    record_bytes: usize,
    line: u64,
    skipping: bool,
    inject: &'static [u8],
    cuts: Cuts,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl<R: Read> CsvRecordGuard<R> {
    pub(crate) fn new(inner: R, limit: usize, cuts: Cuts) -> Self {
        CsvRecordGuard {
            inner,
            limit: limit.max(1),
            state: CsvState::FieldStart,
            record_bytes: 0,
            line: 1,
            skipping: false,
            inject: b"",
            cuts,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    fn step(&mut self, b: u8) {
        use CsvState::*;
        let end = matches!(b, b'\n' | b'\r');
        self.state = match (self.state, b) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (FieldStart, b'"') | (QuoteInQuoted, b'"') => Quoted,
            (_, b',') => FieldStart,
            (_, _) if end => FieldStart,
            _ => Field,
        };
        if end && self.state == FieldStart {
            self.record_bytes = 0;
        }
        if b == b'\n' {
            self.line += 1;
        }
    }
}

impl<R: Read> Read for CsvRecordGuard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if !self.inject.is_empty() {
            let n = self.inject.len().min(out.len());
            out[..n].copy_from_slice(&self.inject[..n]);
            self.inject = &self.inject[n..];
            return Ok(n);
        }
        loop {
            if self.pos == self.len {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.len == 0 {
                    return Ok(0);
                }
            }
            if self.skipping {
                match self.buf[self.pos..self.len].iter().position(|&b| b == b'\n') {
                    Some(k) => {
                        self.pos += k + 1;
                        self.skipping = false;
                        continue;
                    }
                    None => {
                        self.pos = self.len;
                        continue;
                    }
                }
            }
            let n = (self.len - self.pos).min(out.len());
            for i in 0..n {
                let b = self.buf[self.pos + i];
                self.record_bytes += 1;
                if self.record_bytes > self.limit {
                    self.cuts.lines.lock().expect("cuts lock").push_back(self.line);
                    self.cuts.pending.store(true, Ordering::Release);
                    // The newline ending the line is handed over now; the real one is dropped with the rest.
                    self.inject = if self.state == CsvState::Quoted { b"\"\n" } else { b"\n" };
                    self.state = CsvState::FieldStart;
                    self.record_bytes = 0;
                    self.line += 1;
                    self.skipping = true;
                    out[..i].copy_from_slice(&self.buf[self.pos..self.pos + i]);
                    self.pos += i;
                    return if i > 0 { Ok(i) } else { self.read(out) };
                }
                self.step(b);
            }
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// The end of the input.
    End,
    /// A whole line, without its newline.
    Whole,
    /// A line over the limit: its start is in the buffer; the rest is dropped
    /// by the next call.
    TooLong,
}

/// Reads one line of at most `limit` bytes into `buf` (cleared first).
/// `skipping` carries over a line that was cut: its rest is dropped first.
pub(crate) fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
    skipping: &mut bool,
) -> io::Result<Line> {
    buf.clear();
    while *skipping {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(Line::End);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(k) => {
                reader.consume(k + 1);
                *skipping = false;
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { Line::End } else { Line::Whole });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(k) => (k, true),
            None => (available.len(), false),
        };
        if buf.len() + take > limit {
            let room = KEPT_START_BYTES.min(limit).saturating_sub(buf.len());
            buf.extend_from_slice(&available[..room.min(take)]);
            buf.truncate(KEPT_START_BYTES.min(limit));
            reader.consume(if done { take + 1 } else { take });
            *skipping = !done;
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Line::Whole);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(input: &[u8], limit: usize) -> (Vec<csv::ByteRecord>, Vec<u64>) {
        let cuts = Cuts::default();
        let guard = CsvRecordGuard::new(input, limit, cuts.clone());
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(guard);
        let rows = reader.byte_records().map(|r| r.unwrap()).collect();
        let cuts = cuts.lines.lock().unwrap().iter().copied().collect();
        (rows, cuts)
    }

    #[test]
    fn a_long_record_is_cut_and_the_next_one_read_whole() {
        let long = format!("a,{}\nb,2\n", "x".repeat(100));
        let (rows, cuts) = guarded(long.as_bytes(), 20);
        assert_eq!(cuts, vec![1]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].as_slice().len(), 19, "the cut record ends at the limit");
        assert_eq!(rows[1], csv::ByteRecord::from(vec!["b", "2"]));
        assert_eq!(
            rows[1].position().unwrap().line(),
            2,
            "lines are counted as in the file: {:?}",
            rows.iter().map(|r| r.position().unwrap().line()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_open_quote_is_closed_at_the_cut() {
        let text = format!("1,\"{}\n{}\n2,ok\n", "q".repeat(30), "still quoted");
        let (rows, cuts) = guarded(text.as_bytes(), 16);
        assert_eq!(cuts, vec![1]);
        // The cut line's rest is dropped; the next lines are records again.
        assert_eq!(rows.last().unwrap(), &csv::ByteRecord::from(vec!["2", "ok"]));
    }

    #[test]
    fn quoted_newlines_and_escaped_quotes_stay_in_one_record() {
        let text = b"1,\"a\nb \"\"c\"\" d\",e\n2,f\n";
        let (rows, cuts) = guarded(text, 64);
        assert!(cuts.is_empty());
        assert_eq!(rows[0], csv::ByteRecord::from(vec!["1", "a\nb \"c\" d", "e"]));
        assert_eq!(rows[1], csv::ByteRecord::from(vec!["2", "f"]));
    }

    #[test]
    fn lines_are_bounded_and_resynchronised() {
        let text = format!("short\n{}\nafter\nlast", "z".repeat(10_000));
        let mut reader = std::io::BufReader::with_capacity(64, text.as_bytes());
        let (mut buf, mut skipping) = (Vec::new(), false);
        let mut got = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, 5000, &mut skipping).unwrap() {
                Line::End => break,
                kind => got.push((kind, buf.len())),
            }
        }
        assert_eq!(got, vec![(Line::Whole, 5), (Line::TooLong, KEPT_START_BYTES), (Line::Whole, 5), (Line::Whole, 4)]);
    }
}
