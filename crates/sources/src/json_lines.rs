//! JSON lines in the wire format, one message per line (a topic dump, a
//! dead-letter replay): each line is sent as is, keyed by its symbol.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use stockstream_core::RejectKind;

use stockstream_core::{decode, symbol_for_company, BarLength, Reject, WireRecord};

use crate::survey::Survey;

use crate::bounded::{read_line, too_long, Line, DEFAULT_MAX_RECORD_BYTES};
use crate::csv_file::CsvError;

/// Streams the lines of a file of wire messages.
pub struct JsonLinesSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    line: u64,
    limit: usize,
    /// The rest of a line cut at the limit is still to be dropped.
    skipping: bool,
    /// The bars' interval, told by a first pass over a regular file.
    interval: Option<Option<BarLength>>,
}

impl JsonLinesSource {
    /// Opens a file. A regular file is read once first, for its bars'
    /// interval (a file mixing daily and intraday bars is refused).
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let name = path.display().to_string();
        let open = || -> Result<Self, CsvError> {
            let file = File::open(path).map_err(|source| CsvError::Open { path: name.clone(), source })?;
            let regular = file.metadata().is_ok_and(|m| m.is_file());
            let lines = Self::from_reader(name.clone(), Box::new(BufReader::with_capacity(1 << 16, file)));
            Ok(Self { interval: regular.then_some(None), ..lines })
        };
        let mut lines = open()?;
        if lines.interval.is_none() {
            return Ok(lines);
        }
        let mut survey = Survey::default();
        while let Some(record) = lines.next() {
            if let Ok(WireRecord { key, ts: Some(ts), .. }) = record {
                survey.see(&format!("{name}:{}", lines.line), &key, ts);
            }
        }
        let interval = survey.interval().map_err(|message| CsvError::Layout { path: name.clone(), message })?;
        Ok(Self { interval: Some(interval), ..open()? })
    }

    /// Reads lines from any reader; `name` stands for it in rejects.
    pub fn from_reader(name: String, reader: Box<dyn BufRead + Send>) -> Self {
        JsonLinesSource { name, reader, line: 0, limit: DEFAULT_MAX_RECORD_BYTES, skipping: false, interval: None }
    }

    /// Bounds each line to `limit` bytes; a longer one is rejected with its start.
    pub fn with_max_record_bytes(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }
}

impl Iterator for JsonLinesSource {
    type Item = Result<WireRecord, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut buf = Vec::with_capacity(192);
            self.line += 1;
            match read_line(&mut self.reader, &mut buf, self.limit, &mut self.skipping) {
                Ok(Line::End) => return None,
                Ok(Line::Whole) => {}
                Ok(Line::TooLong) => {
                    let source = format!("{}:{}", self.name, self.line);
                    let refusal = stockstream_core::Refusal::new(RejectKind::RecordTooLong, too_long(self.limit));
                    return Some(Err(refusal.into_reject(source, buf)));
                }
                Err(e) => {
                    let source = format!("{}:{}", self.name, self.line);
                    let refusal =
                        stockstream_core::Refusal::new(RejectKind::UnreadableRow, format!("cannot read: {e}"));
                    return Some(Err(refusal.into_reject(source, Vec::new())));
                }
            }
            while buf.last().is_some_and(|b| *b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let source = format!("{}:{}", self.name, self.line);
            return Some(match decode(&buf) {
                Ok(raw) => {
                    let key = match (raw.symbol, raw.company) {
                        (Some(s), _) => s,
                        (None, Some(c)) => symbol_for_company(&c),
                        (None, None) => String::new(),
                    };
                    let ts = raw.date.as_deref().and_then(|d| d.parse().ok());
                    Ok(WireRecord { key, payload: buf, ts })
                }
                Err(refusal) => Err(refusal.into_reject(source, buf)),
            });
        }
    }
}

impl stockstream_core::Source for JsonLinesSource {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn description(&self) -> String {
        self.name.clone()
    }

    fn interval(&self) -> Option<BarLength> {
        self.interval.flatten()
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, stockstream_core::Item> {
        use stockstream_core::Item;
        let name = self.name.clone();
        crate::reader_thread::on_own_thread(&name, self.map(|r| r.map(Item::Wire).unwrap_or_else(Item::Reject)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_pass_through_keyed_by_symbol() {
        let text = b"{\"Date\":\"2024-01-02\",\"Close\":1,\"Company Name\":\"Tesla\"}\n\n{\"Symbol\":\"X\",\"Company Name\":\"Y\"}\r\nnope\n";
        let got: Vec<_> = JsonLinesSource::from_reader("d.jsonl".into(), Box::new(&text[..])).collect();
        assert_eq!(got.len(), 3);
        let first = got[0].as_ref().unwrap();
        assert_eq!(first.key, "TSLA");
        assert_eq!(first.payload, br#"{"Date":"2024-01-02","Close":1,"Company Name":"Tesla"}"#);
        assert_eq!(first.ts.unwrap().to_string(), "2024-01-02");
        assert_eq!(got[1].as_ref().unwrap().key, "X");
        let bad = got[2].as_ref().unwrap_err();
        assert_eq!(
            (bad.source.as_str(), bad.kind.as_str(), &bad.original[..]),
            ("d.jsonl:4", "undecodable", &b"nope"[..])
        );
    }

    #[test]
    fn a_line_over_the_limit_is_rejected_with_its_start_and_the_next_read() {
        let text = format!("{{\"Symbol\":\"{}\"}}\n{{\"Symbol\":\"B\"}}\n", "A".repeat(9000));
        let got: Vec<_> =
            JsonLinesSource::from_reader("d.jsonl".into(), Box::new(std::io::Cursor::new(text.into_bytes())))
                .with_max_record_bytes(5000)
                .collect();
        let cut = got[0].as_ref().unwrap_err();
        assert_eq!(
            (cut.kind.as_str(), cut.source.as_str(), cut.original.len()),
            ("record_too_long", "d.jsonl:1", 4096)
        );
        assert!(cut.original.starts_with(b"{\"Symbol\":\"AAA"));
        assert_eq!(got[1].as_ref().unwrap().key, "B");
        assert_eq!(got.len(), 2);
    }
}
