//! CSV input, read as a stream (memory stays constant whatever the file size),
//! in the layouts people have on disk, detected from the header:
//! - the original project's layout, `Date,Open,High,Low,Close,Volume,Company Name`;
//! - yfinance's single-ticker layout, `Date,Open,High,Low,Close,Adj Close,Volume`
//!   (the company comes from the options or the file name);
//! - yfinance's multi-level layouts, header rows `Price` and `Ticker` (in either
//!   order) then `Date`: one ticker (newer yfinance) or many (the wide layout,
//!   one column per field and ticker).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use stockstream_core::RejectKind;

use stockstream_core::{company_for_symbol, BarLength, RawBar, Refusal, Reject, SourceRecord, Ts};

use crate::survey::Survey;

use crate::bounded::{too_long, CsvRecordGuard, Cuts, DEFAULT_MAX_RECORD_BYTES, KEPT_START_BYTES};

/// A file that cannot be read as a source at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// It cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Its header is in no layout it knows.
    #[error("{path}: {message}")]
    Layout {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// How to read files that do not name their company.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Symbol of a single-ticker file (default: the file name, `NVDA.csv`).
    pub symbol: Option<String>,
    /// Company of a single-ticker file (default: from the symbol).
    pub company: Option<String>,
    /// Use `Adj Close` as the close and scale Open/High/Low by the same factor.
    pub adjusted: bool,
    /// The longest record read (default [`DEFAULT_MAX_RECORD_BYTES`]); a longer
    /// one is rejected with its start and reading resumes at the next line.
    pub max_record_bytes: Option<usize>,
}

/// The columns of the original layout, by name, in its order.
const COLUMNS: [&str; 7] = ["Date", "Open", "High", "Low", "Close", "Volume", "Company Name"];
const FIELDS: [&str; 5] = ["Open", "High", "Low", "Close", "Volume"];

/// Where one ticker's values sit in a row.
#[derive(Debug, Clone)]
struct TickerColumns {
    /// Open, High, Low, Close, Volume.
    fields: [usize; 5],
    adj_close: Option<usize>,
    /// A fixed symbol and company, or columns holding them.
    symbol: Named,
    company: Named,
}

#[derive(Debug, Clone)]
enum Named {
    Fixed(Option<String>),
    Column(usize),
}

/// Streams records out of a CSV file. Rows that cannot be read as a record come
/// out as rejects, with the row's text and the reason.
pub struct CsvSource {
    name: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    date: usize,
    tickers: Vec<TickerColumns>,
    /// Dates carry a time of day (yfinance writes midnight for daily bars).
    yfinance: bool,
    adjusted: bool,
    width: usize,
    row: csv::ByteRecord,
    pending: VecDeque<Result<SourceRecord, Reject>>,
    /// Lines where the guard in front of the parser cut a record too long.
    cuts: Cuts,
    limit: usize,
    /// Rows read ahead and put in date order (`pending` holds them all): a
    /// file that was not in date order.
    sorted: Option<usize>,
    /// The bars' interval, when a pass over the file told it.
    interval: Option<BarLength>,
}

/// A file not in date order is sorted in memory up to this many rows (about
/// 60 MB); a longer one is refused, naming its first row out of order.
pub const MAX_SORTED_ROWS: usize = 250_000;

fn clean_name(f: &[u8], first: bool) -> String {
    let f = if first { f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f) } else { f };
    String::from_utf8_lossy(f).trim().to_string()
}

impl CsvSource {
    /// Opens a file, reading the company from its name when it has none.
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        Self::open_with(path, &CsvOptions::default())
    }

    /// Opens a file with options for files that do not name their company.
    pub fn open_with(path: &Path, options: &CsvOptions) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|source| CsvError::Open { path: path.display().to_string(), source })?;
        let mut options = options.clone();
        if options.symbol.is_none() && options.company.is_none() {
            // `NVDA.csv` names its ticker.
            options.symbol = path.file_stem().and_then(|s| s.to_str()).map(|s| s.to_ascii_uppercase());
        }
        let open = || -> Result<Self, CsvError> {
            let file =
                File::open(path).map_err(|source| CsvError::Open { path: path.display().to_string(), source })?;
            Self::from_reader_with(
                path.display().to_string(),
                Box::new(BufReader::with_capacity(1 << 16, file)),
                &options,
            )
        };
        // A pipe or a device is read once, as it comes.
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Self::from_reader_with(
                path.display().to_string(),
                Box::new(BufReader::with_capacity(1 << 16, file)),
                &options,
            );
        }
        drop(file);
        // Indicators, alerts and statistics follow each company's bars in
        // time: a file in another order (newest first) is put in date order,
        // or refused, never read as it is.
        let survey = survey(open()?);
        let interval =
            survey.interval().map_err(|message| CsvError::Layout { path: path.display().to_string(), message })?;
        let rows = survey.rows;
        let mut source = match survey.out_of_order {
            None => open()?,
            Some(_) if rows <= MAX_SORTED_ROWS => {
                let mut source = open()?;
                let mut all: Vec<Result<SourceRecord, Reject>> = source.by_ref().collect();
                // Rows refused as read first, then the rest by date (stable:
                // a date's rows keep their order).
                all.sort_by_key(|r| r.as_ref().ok().map(|rec| rec.raw.date.as_deref().and_then(|d| d.parse::<Ts>().ok())));
                tracing::warn!("{}: not in date order; {rows} rows sorted by date", path.display());
                source.sorted = Some(rows);
                source.pending = all.into();
                source
            }
            Some(first) => {
                return Err(CsvError::Layout {
                    path: path.display().to_string(),
                    message: format!(
                        "not in date order ({first}); a file of {rows} rows is more than the {MAX_SORTED_ROWS} sorted in memory: sort it by date first"
                    ),
                })
            }
        };
        source.interval = interval;
        Ok(source)
    }

    /// Rows sorted into date order when the file was not in it.
    pub fn sorted(&self) -> Option<usize> {
        self.sorted
    }

    /// Reads from any reader; `name` stands for it in rejects.
    pub fn from_reader(name: String, input: Box<dyn Read + Send>) -> Result<Self, CsvError> {
        Self::from_reader_with(name, input, &CsvOptions::default())
    }

    /// Reads the header and checks the layout before any row is read, so that a
    /// file which is not in a known layout fails before anything is written.
    pub fn from_reader_with(name: String, input: Box<dyn Read + Send>, options: &CsvOptions) -> Result<Self, CsvError> {
        let limit = options.max_record_bytes.unwrap_or(DEFAULT_MAX_RECORD_BYTES);
        let cuts = Cuts::default();
        let guarded: Box<dyn Read + Send> = Box::new(CsvRecordGuard::new(input, limit, cuts.clone()));
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(guarded);
        let layout_err = |message: String| CsvError::Layout { path: name.clone(), message };
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(layout_err("the file is empty: expected a CSV header".into())),
            Err(e) => return Err(layout_err(format!("cannot read a CSV header: {e}"))),
        }
        if cut_in(&cuts, &header) {
            return Err(layout_err(format!("the header is longer than {limit} bytes: not a CSV file?")));
        }
        let names: Vec<String> = header.iter().enumerate().map(|(i, f)| clean_name(f, i == 0)).collect();
        let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let find = |col: &str| lower.iter().position(|n| n == &col.to_ascii_lowercase());
        let shown = || String::from_utf8_lossy(&header.as_slice()[..header.as_slice().len().min(120)]).into_owned();

        let mut source = CsvSource {
            name: name.clone(),
            reader,
            date: 0,
            tickers: Vec::new(),
            yfinance: false,
            adjusted: options.adjusted,
            width: names.len(),
            row: csv::ByteRecord::new(),
            pending: VecDeque::new(),
            cuts,
            limit,
            sorted: None,
            interval: None,
        };
        if matches!(lower.first().map(String::as_str), Some("price" | "ticker")) {
            source.read_multi_level(&names, options).map_err(layout_err)?;
            return Ok(source);
        }
        let date = find("Date").or_else(|| find("Datetime"));
        let fields: Vec<Option<usize>> = FIELDS.iter().map(|f| find(f)).collect();
        let company = find("Company Name");
        match (date, fields.iter().all(Option::is_some), company) {
            (Some(date), true, Some(company)) => {
                source.date = date;
                source.tickers.push(TickerColumns {
                    fields: std::array::from_fn(|i| fields[i].expect("checked")),
                    adj_close: find("Adj Close"),
                    symbol: find("Symbol").map(Named::Column).unwrap_or(Named::Fixed(None)),
                    company: Named::Column(company),
                });
            }
            (Some(date), true, None) => {
                // yfinance's single-ticker layout: the company comes from outside.
                let (symbol, company) = single_ticker_names(options).ok_or_else(|| {
                    layout_err("a single-ticker file without a Company Name column: pass --symbol or --company".into())
                })?;
                source.date = date;
                source.yfinance = true;
                source.tickers.push(TickerColumns {
                    fields: std::array::from_fn(|i| fields[i].expect("checked")),
                    adj_close: find("Adj Close"),
                    symbol: Named::Fixed(Some(symbol)),
                    company: Named::Fixed(Some(company)),
                });
            }
            _ => {
                let missing: Vec<&str> = COLUMNS.iter().copied().filter(|c| find(c).is_none()).collect();
                return Err(layout_err(format!(
                    "unknown column layout (missing {}): expected a header {} or a yfinance layout; found {:?}",
                    missing.join(", "),
                    COLUMNS.join(","),
                    shown()
                )));
            }
        }
        Ok(source)
    }

    /// The `Price`/`Ticker` header rows of yfinance's multi-level CSV, then its
    /// `Date,,,` row.
    fn read_multi_level(&mut self, first: &[String], options: &CsvOptions) -> Result<(), String> {
        let mut second = csv::ByteRecord::new();
        if !self.reader.read_byte_record(&mut second).map_err(|e| format!("cannot read the second header row: {e}"))? {
            return Err("a Price/Ticker header without data".into());
        }
        let second: Vec<String> = second.iter().map(|f| clean_name(f, false)).collect();
        let (prices, tickers) = match first[0].to_ascii_lowercase().as_str() {
            "price" => (first.to_vec(), second),
            _ => (second, first.to_vec()),
        };
        if !prices[0].eq_ignore_ascii_case("price") || !tickers[0].eq_ignore_ascii_case("ticker") {
            return Err(format!("expected header rows Price and Ticker, found {:?} and {:?}", first[0], tickers[0]));
        }
        self.width = prices.len().max(tickers.len());
        self.yfinance = true;
        let mut order: Vec<String> = Vec::new();
        let mut columns: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        for (i, (p, t)) in prices.iter().zip(&tickers).enumerate().skip(1) {
            if t.is_empty() {
                continue;
            }
            if !order.contains(t) {
                order.push(t.clone());
            }
            columns.insert((p.to_ascii_lowercase(), t.clone()), i);
        }
        if order.is_empty() {
            return Err("the Ticker header row names no ticker".into());
        }
        let single = order.len() == 1;
        for t in order {
            let col = |f: &str| columns.get(&(f.to_ascii_lowercase(), t.clone())).copied();
            let fields: Vec<Option<usize>> = FIELDS.iter().map(|f| col(f)).collect();
            if let Some(missing) = FIELDS.iter().zip(&fields).find(|(_, c)| c.is_none()) {
                return Err(format!("ticker {t} has no {} column", missing.0));
            }
            let company = match &options.company {
                // A company given for a one-ticker file names that ticker.
                Some(c) if single => c.clone(),
                _ => company_for_symbol(&t),
            };
            self.tickers.push(TickerColumns {
                fields: std::array::from_fn(|i| fields[i].expect("checked")),
                adj_close: col("Adj Close"),
                symbol: Named::Fixed(Some(t.clone())),
                company: Named::Fixed(Some(company)),
            });
        }
        Ok(())
    }

    fn refuse(&self, line: u64, kind: RejectKind, reason: String) -> Reject {
        Refusal::new(kind, format!("line {line}: {reason}"))
            .into_reject(format!("{}:{line}", self.name), join_fields(&self.row))
    }

    fn text(&self, line: u64, i: usize) -> Result<&str, Reject> {
        std::str::from_utf8(self.row.get(i).unwrap_or_default())
            .map(str::trim)
            .map_err(|_| self.refuse(line, RejectKind::InvalidUtf8, format!("column {} is not valid UTF-8", i + 1)))
    }

    fn number(&self, line: u64, i: usize, column: &str) -> Result<Option<f64>, Reject> {
        let t = self.text(line, i)?;
        if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        t.parse::<f64>().map(Some).map_err(|_| {
            let shown: String = t.chars().take(40).collect();
            self.refuse(line, RejectKind::NotANumber, format!("{column} {shown:?} is not a number"))
        })
    }

    /// The records of the current row: one per ticker.
    fn records(&mut self, line: u64) {
        if self.row.len() != self.width {
            let reject = self.refuse(
                line,
                RejectKind::WrongFieldCount,
                format!("row has {} fields, the header has {}", self.row.len(), self.width),
            );
            self.pending.push_back(Err(reject));
            return;
        }
        for t in 0..self.tickers.len() {
            let record = self.record(line, t);
            self.pending.push_back(record);
        }
    }

    fn record(&self, line: u64, t: usize) -> Result<SourceRecord, Reject> {
        let cols = &self.tickers[t];
        let mut values = [None; 5];
        for (k, slot) in values.iter_mut().enumerate() {
            *slot = self.number(line, cols.fields[k], FIELDS[k])?;
        }
        if self.adjusted {
            if let (Some(adj_col), Some(close)) = (cols.adj_close, values[3]) {
                if let Some(adj) = self.number(line, adj_col, "Adj Close")? {
                    let factor = adj / close;
                    for v in values[..3].iter_mut().flatten() {
                        *v *= factor;
                    }
                    values[3] = Some(adj);
                }
            }
        }
        let opt = |t: &str| (!t.is_empty()).then(|| t.to_string());
        let named = |n: &Named| -> Result<Option<String>, Reject> {
            match n {
                Named::Fixed(v) => Ok(v.clone()),
                Named::Column(i) => Ok(opt(self.text(line, *i)?)),
            }
        };
        let mut date = opt(self.text(line, self.date)?);
        if self.yfinance {
            date = date.map(|d| daily_date(&d));
        }
        let [open, high, low, close, volume] = values;
        Ok(SourceRecord {
            raw: RawBar {
                date,
                open,
                high,
                low,
                close,
                volume,
                company: named(&cols.company)?,
                symbol: named(&cols.symbol)?,
                vwap: None,
                trades: None,
            },
            source: format!("{}:{line}", self.name),
        })
    }
}

/// Symbol and company of a single-ticker file.
fn single_ticker_names(options: &CsvOptions) -> Option<(String, String)> {
    match (&options.symbol, &options.company) {
        (Some(s), Some(c)) => Some((s.clone(), c.clone())),
        (Some(s), None) => Some((s.clone(), company_for_symbol(s))),
        (None, Some(c)) => Some((stockstream_core::symbol_for_company(c), c.clone())),
        (None, None) => None,
    }
}

/// yfinance writes daily bars at local midnight (`2023-04-03 00:00:00-04:00`):
/// that is the trading date. Other times are intraday instants.
fn daily_date(d: &str) -> String {
    let t = d.trim();
    if t.len() >= 19 && &t[10..19] == " 00:00:00" || t.len() >= 19 && &t[10..19] == "T00:00:00" {
        t[..10].to_string()
    } else {
        t.to_string()
    }
}

/// Whether the guard cut `row`: a cut noted on one of its lines. Cuts of
/// earlier rows were taken by them, so only the first cut can be this row's.
fn cut_in(cuts: &Cuts, row: &csv::ByteRecord) -> bool {
    if !cuts.pending.load(std::sync::atomic::Ordering::Acquire) {
        return false;
    }
    let mut lines = cuts.lines.lock().expect("cuts lock");
    let first = row.position().map(|p| p.line()).unwrap_or(1);
    while lines.front().is_some_and(|&cut| cut < first) {
        lines.pop_front();
    }
    let Some(&cut) = lines.front() else {
        cuts.pending.store(false, std::sync::atomic::Ordering::Release);
        return false;
    };
    let last = first + row.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
    let ours = (first..=last).contains(&cut);
    if ours {
        lines.pop_front();
        cuts.pending.store(!lines.is_empty(), std::sync::atomic::Ordering::Release);
    }
    ours
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

/// One pass over the rows: their order and interval (see [`Survey`]).
fn survey(rows: CsvSource) -> Survey {
    let mut survey = Survey::default();
    for rec in rows.flatten() {
        survey.rows += 1;
        let (Some(date), Some(company)) =
            (rec.raw.date.as_deref(), rec.raw.company.as_deref().or(rec.raw.symbol.as_deref()))
        else {
            continue;
        };
        // A row without any price is refused whatever its date: it says
        // nothing of the file's order or interval.
        let raw = &rec.raw;
        if [raw.open, raw.high, raw.low, raw.close].iter().all(Option::is_none) {
            continue;
        }
        if let Ok(ts) = date.parse::<Ts>() {
            survey.see(&rec.source, company, ts);
        }
    }
    survey
}

impl Iterator for CsvSource {
    type Item = Result<SourceRecord, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(r);
            }
            if self.sorted.is_some() {
                return None;
            }
            let mut row = std::mem::take(&mut self.row);
            let read = self.reader.read_byte_record(&mut row);
            self.row = row;
            let line = self.row.position().map(|p| p.line()).unwrap_or(0);
            match read {
                Ok(false) => return None,
                Ok(true) if cut_in(&self.cuts, &self.row) => {
                    let mut start = join_fields(&self.row);
                    start.truncate(KEPT_START_BYTES);
                    let reject =
                        Refusal::new(RejectKind::RecordTooLong, format!("line {line}: {}", too_long(self.limit)))
                            .into_reject(format!("{}:{line}", self.name), start);
                    return Some(Err(reject));
                }
                // Blank lines carry nothing; skip them rather than reject them.
                Ok(true) if self.row.len() == 1 && self.row[0].iter().all(u8::is_ascii_whitespace) => continue,
                // yfinance's `Date,,,,` row under its multi-level header.
                Ok(true)
                    if self.yfinance
                        && matches!(
                            self.text(line, 0).map(|t| t.to_ascii_lowercase()).as_deref(),
                            Ok("date" | "datetime")
                        )
                        && self.row.iter().skip(1).all(|f| f.is_empty()) =>
                {
                    continue
                }
                Ok(true) => self.records(line),
                Err(e) => {
                    return Some(Err(self.refuse(line, RejectKind::UnreadableRow, format!("cannot read row: {e}"))))
                }
            }
        }
    }
}

impl stockstream_core::Source for CsvSource {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn description(&self) -> String {
        match self.sorted {
            Some(rows) => format!("{} (not in date order: {rows} rows sorted by date)", self.name),
            None => self.name.clone(),
        }
    }

    fn interval(&self) -> Option<BarLength> {
        self.interval
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, stockstream_core::Item> {
        use stockstream_core::Item;
        let name = self.name.clone();
        crate::reader_thread::on_own_thread(&name, self.map(|r| r.map(Item::Raw).unwrap_or_else(Item::Reject)))
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

    fn yf(text: &str, options: CsvOptions) -> Vec<RawBar> {
        CsvSource::from_reader_with("yf.csv".into(), Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), &options)
            .unwrap()
            .map(|r| r.unwrap().raw)
            .collect()
    }

    #[test]
    fn yfinance_single_ticker_with_adjusted_close() {
        let text = "Date,Open,High,Low,Close,Adj Close,Volume\n\
                    2023-04-03 00:00:00-04:00,100,110,90,105,52.5,1000\n\
                    2023-04-04 00:00:00-04:00,105,106,100,101,50.5,900\n";
        let plain = yf(text, CsvOptions { symbol: Some("NVDA".into()), ..Default::default() });
        assert_eq!(plain[0].date.as_deref(), Some("2023-04-03"), "midnight local time is the trading date");
        assert_eq!((plain[0].company.as_deref(), plain[0].symbol.as_deref()), (Some("NVIDIA"), Some("NVDA")));
        assert_eq!(plain[0].close, Some(105.0));
        let adjusted = yf(text, CsvOptions { symbol: Some("NVDA".into()), adjusted: true, ..Default::default() });
        assert_eq!(
            (adjusted[0].open, adjusted[0].high, adjusted[0].low, adjusted[0].close),
            (Some(50.0), Some(55.0), Some(45.0), Some(52.5))
        );
        assert_eq!(adjusted[0].volume, Some(1000.0));
        let err = CsvSource::from_reader("t.csv".into(), Box::new(std::io::Cursor::new(text.as_bytes().to_vec())))
            .err()
            .unwrap();
        assert!(err.to_string().contains("pass --symbol or --company"), "{err}");
    }

    #[test]
    fn yfinance_newer_single_ticker_and_intraday() {
        let text = "Price,Close,High,Low,Open,Volume\n\
                    Ticker,TSLA,TSLA,TSLA,TSLA,TSLA\n\
                    Datetime,,,,,\n\
                    2023-04-03 09:30:00-04:00,194.5,195,193,194,120000\n";
        let bars = yf(text, CsvOptions::default());
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].date.as_deref(), Some("2023-04-03 09:30:00-04:00"));
        let ts: stockstream_core::Ts = bars[0].date.as_deref().unwrap().parse().unwrap();
        assert_eq!(ts.to_string(), "2023-04-03T13:30:00Z");
        assert_eq!((bars[0].open, bars[0].close), (Some(194.0), Some(194.5)));
        assert_eq!(bars[0].company.as_deref(), Some("Tesla"));
    }

    #[test]
    fn yfinance_wide_multi_ticker_in_both_header_orders() {
        let by_price = "Price,Close,Close,High,High,Low,Low,Open,Open,Volume,Volume\n\
                        Ticker,AAPL,NVDA,AAPL,NVDA,AAPL,NVDA,AAPL,NVDA,AAPL,NVDA\n\
                        Date,,,,,,,,,,\n\
                        2023-04-03,166.2,27.9,166.3,28.0,164.5,27.1,164.8,27.2,56976200,500000000\n\
                        2023-04-04,165.6,,166.8,,165.1,,166.6,,46278300,\n";
        let bars = yf(by_price, CsvOptions::default());
        assert_eq!(bars.len(), 4);
        assert_eq!((bars[0].symbol.as_deref(), bars[0].close, bars[0].open), (Some("AAPL"), Some(166.2), Some(164.8)));
        assert_eq!(
            (bars[1].company.as_deref(), bars[1].close, bars[1].volume),
            (Some("NVIDIA"), Some(27.9), Some(5e8))
        );
        assert_eq!(bars[3].close, None, "a missing value stays missing for the cleaner");
        let by_ticker = "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT,META,META,META,META,META\n\
                         Price,Open,High,Low,Close,Volume,Open,High,Low,Close,Volume\n\
                         Date,,,,,,,,,,\n\
                         2023-04-03 00:00:00+00:00,1,2,0.5,1.5,10,3,4,2.5,3.5,20\n";
        let bars = yf(by_ticker, CsvOptions::default());
        assert_eq!(bars.len(), 2);
        assert_eq!(
            (bars[1].company.as_deref(), bars[1].close, bars[1].date.as_deref()),
            (Some("Meta"), Some(3.5), Some("2023-04-03"))
        );
        assert_eq!(bars[0].company.as_deref(), Some("MSFT"), "an unknown ticker names itself");
    }
}
