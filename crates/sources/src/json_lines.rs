//! JSON lines in the wire format, one message per line (a topic dump, a
//! dead-letter replay): each line is sent as is, keyed by its symbol.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use stockstream_core::{decode, symbol_for_company, Reject, WireRecord};

use crate::csv_file::CsvError;

/// Streams the lines of a file of wire messages.
pub struct JsonLinesSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    line: u64,
}

impl JsonLinesSource {
    /// Opens a file.
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|source| CsvError::Open { path: path.display().to_string(), source })?;
        Ok(Self::from_reader(path.display().to_string(), Box::new(BufReader::with_capacity(1 << 16, file))))
    }

    /// Reads lines from any reader; `name` stands for it in rejects.
    pub fn from_reader(name: String, reader: Box<dyn BufRead + Send>) -> Self {
        JsonLinesSource { name, reader, line: 0 }
    }
}

impl Iterator for JsonLinesSource {
    type Item = Result<WireRecord, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut buf = Vec::with_capacity(192);
            self.line += 1;
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    let source = format!("{}:{}", self.name, self.line);
                    let refusal = stockstream_core::Refusal::new("unreadable_row", format!("cannot read: {e}"));
                    return Some(Err(refusal.into_reject(source, Vec::new())));
                }
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
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
        assert_eq!((bad.source.as_str(), bad.kind, &bad.original[..]), ("d.jsonl:4", "undecodable", &b"nope"[..]));
    }
}
