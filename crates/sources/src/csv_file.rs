//! CSV input in the original project's layout
//! (`Date,Open,High,Low,Close,Volume,Company Name`), read as a stream: memory
//! stays constant whatever the file size.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use stockstream_core::{RawBar, Refusal, Reject};

/// A row read from a source, with where it came from and its original text.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub raw: RawBar,
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Layout { path: String, message: String },
}

/// The columns we read, by name, in the original project's order.
const COLUMNS: [&str; 7] = ["Date", "Open", "High", "Low", "Close", "Volume", "Company Name"];

/// Streams records out of a CSV file. Rows that cannot be read as a record come
/// out as rejects, with the row's text and the reason.
pub struct CsvSource {
    name: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// Position of each of `COLUMNS` in the file; `Symbol` is optional.
    index: [usize; 7],
    symbol: Option<usize>,
    width: usize,
    row: csv::ByteRecord,
}

impl CsvSource {
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|source| CsvError::Open { path: path.display().to_string(), source })?;
        Self::from_reader(path.display().to_string(), Box::new(BufReader::with_capacity(1 << 16, file)))
    }

    /// Reads the header and checks the layout before any row is read, so that a
    /// file which is not in a known layout fails before anything is written.
    pub fn from_reader(name: String, input: Box<dyn Read + Send>) -> Result<Self, CsvError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(input);
        let layout_err = |message: String| CsvError::Layout { path: name.clone(), message };
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(layout_err("the file is empty: expected a CSV header".into())),
            Err(e) => return Err(layout_err(format!("cannot read a CSV header: {e}"))),
        }
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = if i == 0 { f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f) } else { f };
                String::from_utf8_lossy(f).trim().to_ascii_lowercase()
            })
            .collect();
        let find = |col: &str| names.iter().position(|n| n == &col.to_ascii_lowercase());
        let mut index = [0; 7];
        let mut missing = Vec::new();
        for (slot, col) in index.iter_mut().zip(COLUMNS) {
            match find(col) {
                Some(i) => *slot = i,
                None => missing.push(col),
            }
        }
        if !missing.is_empty() {
            let shown: String = String::from_utf8_lossy(&header.as_slice()[..header.as_slice().len().min(120)]).into();
            return Err(layout_err(format!(
                "unknown column layout (missing {}): expected a header {}; found {:?}",
                missing.join(", "),
                COLUMNS.join(","),
                shown
            )));
        }
        Ok(CsvSource { symbol: find("Symbol"), width: names.len(), name, reader, index, row: csv::ByteRecord::new() })
    }

    fn refuse(&self, line: u64, kind: &'static str, reason: String) -> Reject {
        Refusal::new(kind, format!("line {line}: {reason}"))
            .into_reject(format!("{}:{line}", self.name), join_fields(&self.row))
    }

    fn record(&self, line: u64) -> Result<SourceRecord, Reject> {
        let row = &self.row;
        if row.len() != self.width {
            return Err(self.refuse(
                line,
                "wrong_field_count",
                format!("row has {} fields, the header has {}", row.len(), self.width),
            ));
        }
        let text = |i: usize| -> Result<&str, Reject> {
            std::str::from_utf8(&row[i]).map(str::trim).map_err(|_| {
                self.refuse(
                    line,
                    "invalid_utf8",
                    format!("column {} is not valid UTF-8", COLUMNS.get(i).unwrap_or(&"?")),
                )
            })
        };
        let mut numbers = [None; 5];
        for (k, slot) in numbers.iter_mut().enumerate() {
            let column = COLUMNS[k + 1];
            let t = text(self.index[k + 1])?;
            *slot = if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("null") {
                None
            } else {
                let v = t.parse::<f64>().map_err(|_| {
                    let shown: String = t.chars().take(40).collect();
                    self.refuse(line, "not_a_number", format!("{column} {shown:?} is not a number"))
                })?;
                Some(v)
            };
        }
        let opt = |t: &str| (!t.is_empty()).then(|| t.to_string());
        let [open, high, low, close, volume] = numbers;
        Ok(SourceRecord {
            raw: RawBar {
                date: opt(text(self.index[0])?),
                open,
                high,
                low,
                close,
                volume,
                company: opt(text(self.index[6])?),
                symbol: match self.symbol {
                    Some(i) => opt(text(i)?),
                    None => None,
                },
            },
            source: format!("{}:{line}", self.name),
        })
    }
}

/// The row as text again, for the dead-letter record.
fn join_fields(row: &csv::ByteRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.as_slice().len() + row.len());
    for (i, f) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(f);
    }
    out
}

impl Iterator for CsvSource {
    type Item = Result<SourceRecord, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut row = std::mem::take(&mut self.row);
            let read = self.reader.read_byte_record(&mut row);
            self.row = row;
            let line = self.row.position().map(|p| p.line()).unwrap_or(0);
            return match read {
                Ok(false) => None,
                // Blank lines carry nothing; skip them rather than reject them.
                Ok(true) if self.row.len() == 1 && self.row[0].iter().all(u8::is_ascii_whitespace) => continue,
                Ok(true) => Some(self.record(line)),
                Err(e) => {
                    let kind = "unreadable_row";
                    Some(Err(self.refuse(line, kind, format!("cannot read row: {e}"))))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Result<CsvSource, CsvError> {
        CsvSource::from_reader("t.csv".into(), Box::new(std::io::Cursor::new(text.as_bytes().to_vec())))
    }

    #[test]
    fn reads_the_original_layout() {
        let rows: Vec<_> = source(
            "\u{feff}Date,Open,High,Low,Close,Volume,Company Name\n\
             2023-04-03,270.2,276.0,268.1,274.5,41234500,NVIDIA\n\
             2023-04-04,1,2,0.5,,10,\"Tesla, Inc\"\n\
             \n",
        )
        .unwrap()
        .collect();
        assert_eq!(rows.len(), 2);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.raw.open, Some(270.2));
        assert_eq!(first.raw.company.as_deref(), Some("NVIDIA"));
        assert_eq!(first.source, "t.csv:2");
        let second = rows[1].as_ref().unwrap();
        assert_eq!(second.raw.close, None);
        assert_eq!(second.raw.company.as_deref(), Some("Tesla, Inc"));
        assert_eq!(second.source, "t.csv:3");
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let rows: Vec<_> =
            source("Company Name,Symbol,Volume,Close,Low,High,Open,Date\nApple,AAPL,5,2,1,3,1.5,2024-01-02\n")
                .unwrap()
                .collect();
        let r = &rows[0].as_ref().unwrap().raw;
        assert_eq!((r.open, r.high, r.low, r.close, r.volume), (Some(1.5), Some(3.0), Some(1.0), Some(2.0), Some(5.0)));
        assert_eq!(r.symbol.as_deref(), Some("AAPL"));
    }

    #[test]
    fn bad_rows_become_rejects_with_reasons() {
        let rows: Vec<_> = source(
            "Date,Open,High,Low,Close,Volume,Company Name\n\
             2023-04-03;1;2;0.5;1;10;NVIDIA\n\
             2023-04-03,abc,2,0.5,1,10,NVIDIA\n",
        )
        .unwrap()
        .collect();
        let a = rows[0].as_ref().unwrap_err();
        assert_eq!(a.kind, "wrong_field_count");
        assert_eq!(a.reason, "line 2: row has 1 fields, the header has 7");
        assert_eq!(a.original, b"2023-04-03;1;2;0.5;1;10;NVIDIA");
        let b = rows[1].as_ref().unwrap_err();
        assert_eq!(b.kind, "not_a_number");
        assert_eq!(b.source, "t.csv:3");
        assert!(b.reason.contains("Open \"abc\" is not a number"), "{}", b.reason);
    }

    #[test]
    fn files_that_are_not_in_the_layout_fail_up_front() {
        for text in ["", "{\"not\": \"csv\"}\n", "a,b,c\n1,2,3\n", "Date,Open,High,Low,Close,Volume\n"] {
            let err = source(text).err().unwrap_or_else(|| panic!("{text:?} accepted"));
            assert!(err.to_string().starts_with("t.csv: "), "{err}");
        }
    }
}
