//! Ticks replayed from a file: JSON lines in the ticks' wire form, or CSV with
//! a header naming `symbol`, `time` (RFC 3339 or Unix milliseconds), `price`
//! and optionally `size`, `day_volume`, `trade_id` (fields may be quoted, as CSV
//! writers quote them).
//! Each line is bounded; a line that is not a tick is kept as a reject.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use stockstream_core::RejectKind;

use stockstream_core::{Item, Refusal, Source, Tick};

use crate::bounded::{read_line, too_long, Line, DEFAULT_MAX_RECORD_BYTES};
use crate::csv_file::CsvError;

/// The columns of a CSV tick file, by position.
struct Columns {
    symbol: usize,
    time: usize,
    price: usize,
    size: Option<usize>,
    day_volume: Option<usize>,
    trade_id: Option<usize>,
}

/// A file of ticks.
pub struct TickFile {
    name: String,
    reader: Box<dyn BufRead + Send>,
    line: u64,
    limit: usize,
    skipping: bool,
    /// None for JSON lines.
    csv: Option<Columns>,
    names: std::collections::HashMap<String, Arc<str>>,
}

impl TickFile {
    /// Opens a file: `.jsonl`/`.ndjson` as JSON lines, anything else as CSV
    /// with a header (checked here).
    pub fn open(path: &Path, limit: Option<usize>) -> Result<Self, CsvError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| CsvError::Open { path: shown.clone(), source })?;
        let mut file = TickFile {
            name: shown.clone(),
            reader: Box::new(BufReader::with_capacity(1 << 16, file)),
            line: 0,
            limit: limit.unwrap_or(DEFAULT_MAX_RECORD_BYTES).max(64),
            skipping: false,
            csv: None,
            names: Default::default(),
        };
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "ndjson")) {
            let mut header = Vec::new();
            file.line = 1;
            match read_line(&mut file.reader, &mut header, file.limit, &mut file.skipping) {
                Ok(Line::Whole) => {}
                _ => return Err(CsvError::Layout { path: shown, message: "no readable header line".into() }),
            }
            let text = String::from_utf8_lossy(&header);
            let names: Vec<String> = csv_fields(text.trim().as_bytes())
                .iter()
                .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase())
                .collect();
            let find = |n: &str| names.iter().position(|c| c == n);
            let need = |n: &str| {
                find(n).ok_or_else(|| CsvError::Layout {
                    path: shown.clone(),
                    message: format!(
                        "a tick file needs the columns symbol, time, price; {n:?} is missing (header: {})",
                        text.trim()
                    ),
                })
            };
            file.csv = Some(Columns {
                symbol: need("symbol")?,
                time: need("time")?,
                price: need("price")?,
                size: find("size"),
                day_volume: find("day_volume"),
                trade_id: find("trade_id"),
            });
        }
        Ok(file)
    }

    fn parse(&self, line: &[u8]) -> Result<Tick, Refusal> {
        let Some(cols) = &self.csv else { return Tick::decode(line) };
        let not_utf8 = |_| Refusal::new(RejectKind::BadTick, "a line that is not UTF-8");
        let record;
        // A CSV reader costs more to set up than a line takes to split: only
        // a line with quotes gets one.
        let fields: Vec<&str> = if line.contains(&b'"') {
            record = csv_fields(line);
            record.iter().map(|f| std::str::from_utf8(f).map(str::trim)).collect::<Result<_, _>>().map_err(not_utf8)?
        } else {
            std::str::from_utf8(line).map_err(not_utf8)?.split(',').map(str::trim).collect()
        };
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        let number = |i: usize, what: &str| -> Result<f64, Refusal> {
            field(i)
                .parse()
                .map_err(|_| Refusal::new(RejectKind::BadTick, format!("{what} {:?} is not a number", field(i))))
        };
        let optional = |i: Option<usize>, what: &str| -> Result<Option<f64>, Refusal> {
            match i.map(field).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(_) => number(i.expect("some"), what).map(Some),
            }
        };
        let time = field(cols.time);
        let time_ms = match time.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => chrono::DateTime::parse_from_rfc3339(time).map(|t| t.timestamp_millis()).map_err(|_| {
                Refusal::new(RejectKind::BadTick, format!("time {time:?} is neither RFC 3339 nor milliseconds"))
            })?,
        };
        Ok(Tick {
            symbol: field(cols.symbol).into(),
            time_ms,
            price: number(cols.price, "price")?,
            size: optional(cols.size, "size")?.unwrap_or(0.0),
            day_volume: optional(cols.day_volume, "day_volume")?,
            trade_id: cols.trade_id.map(field).filter(|s| !s.is_empty()).map(String::from),
            source: "file".into(),
        })
    }
}

/// One line's fields as CSV reads them: `"AAPL"` is `AAPL`, `"a,b"` one field.
fn csv_fields(line: &[u8]) -> csv::ByteRecord {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(line.len().max(64))
        .from_reader(line);
    let mut record = csv::ByteRecord::new();
    // A line read whole holds one record; an unterminated quote ends it.
    let _ = reader.read_byte_record(&mut record);
    record
}

impl Iterator for TickFile {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let mut buf = Vec::with_capacity(128);
            self.line += 1;
            let source = || format!("{}:{}", self.name, self.line);
            match read_line(&mut self.reader, &mut buf, self.limit, &mut self.skipping) {
                Ok(Line::End) => return None,
                Ok(Line::Whole) => {}
                Ok(Line::TooLong) => {
                    let refusal = Refusal::new(RejectKind::RecordTooLong, too_long(self.limit));
                    return Some(Item::Reject(refusal.into_reject(source(), buf)));
                }
                Err(e) => {
                    let refusal = Refusal::new(RejectKind::UnreadableRow, format!("cannot read: {e}"));
                    return Some(Item::Reject(refusal.into_reject(source(), Vec::new())));
                }
            }
            while buf.last().is_some_and(|b| *b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            return Some(match self.parse(&buf).and_then(|t| t.check(now_ms).map(|()| t)) {
                Ok(mut tick) => {
                    let shared = self.names.entry(tick.symbol.to_string()).or_insert_with(|| tick.symbol.clone());
                    tick.symbol = shared.clone();
                    Item::TickAt(tick, source())
                }
                Err(refusal) => Item::Reject(refusal.into_reject(source(), buf)),
            });
        }
    }
}

impl Source for TickFile {
    fn name(&self) -> &'static str {
        "ticks"
    }

    fn description(&self) -> String {
        format!("ticks from {}", self.name)
    }

    fn ticks(&self) -> bool {
        true
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, Item> {
        let name = self.name.clone();
        crate::reader_thread::on_own_thread(&name, *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_ticks_read_and_bad_lines_are_kept_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(
            &csv,
            "symbol,time,price,size,day_volume\nNVDA,2024-01-02T15:00:00.123Z,481.5,100,\nNVDA,1704207600200,481.6,5,1000\nNVDA,soon,1,1,\n",
        )
        .unwrap();
        let items: Vec<Item> = TickFile::open(&csv, None).unwrap().collect();
        let Item::TickAt(a, at) = &items[0] else { panic!("{:?}", items[0]) };
        assert_eq!(at, &format!("{}:2", csv.display()), "the dead letters name the file and line");
        assert_eq!((a.time_ms, a.price, a.size, a.day_volume), (1_704_207_600_123, 481.5, 100.0, None));
        let Item::TickAt(b, _) = &items[1] else { panic!() };
        assert_eq!((b.time_ms, b.day_volume), (1_704_207_600_200, Some(1000.0)));
        assert!(Arc::ptr_eq(&a.symbol, &b.symbol), "one shared name per symbol");
        let Item::Reject(r) = &items[2] else { panic!() };
        assert_eq!((r.kind.as_str(), r.source.as_str()), ("bad_tick", format!("{}:4", csv.display()).as_str()));

        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(&jsonl, "{\"symbol\":\"A\",\"time\":1704207600123,\"price\":2.5}\n{\"symbol\":\"A\"}\n")
            .unwrap();
        let items: Vec<Item> = TickFile::open(&jsonl, None).unwrap().collect();
        assert!(matches!(&items[0], Item::TickAt(t, _) if t.price == 2.5));
        assert!(matches!(&items[1], Item::Reject(r) if r.kind == "bad_tick"));

        std::fs::write(&csv, "sym,when\n").unwrap();
        let err = TickFile::open(&csv, None).err().unwrap().to_string();
        assert!(err.contains("symbol, time, price"), "{err}");
    }
}
