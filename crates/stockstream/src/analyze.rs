//! `stockstream indicators` and `stockstream insights`: analytics over a file or
//! over the store.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use stockstream_analytics::{indicator_rows, insights, IndicatorRow, LiveIndicators};
use stockstream_core::{DateRange, MissingPolicy, Ts};
use stockstream_pipeline::Acceptor;
use stockstream_store::StoreArgs;

#[derive(Args, Debug)]
pub struct IndicatorsArgs {
    /// A CSV file in the original project's layout (daily or intraday); no store needed.
    #[arg(long, conflicts_with = "company", required_unless_present = "company")]
    pub input: Option<PathBuf>,
    /// A stored company (name or symbol).
    #[arg(long)]
    pub company: Option<String>,
    #[arg(long)]
    pub from: Option<Ts>,
    #[arg(long)]
    pub to: Option<Ts>,
    #[arg(long, value_enum, default_value_t = RowFormat::Csv)]
    pub format: RowFormat,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length: a company's table of them, else made from the
    /// finest shorter bars stored (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL", conflicts_with = "input")]
    pub interval: Option<stockstream_window::BarLength>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowFormat {
    Csv,
    Json,
}

pub async fn indicators_command(args: IndicatorsArgs) -> anyhow::Result<()> {
    match (&args.input, &args.company) {
        (Some(path), _) => indicators_of_file(path, args.format),
        (None, Some(company)) => {
            let store = crate::open_interval(&args.store, args.interval).await?;
            let range = DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?;
            let mut out = RowWriter::new(args.format, stdout())?;
            for row in indicator_rows(&store.company_bars(company, &range).await?) {
                out.row(&row)?;
            }
            out.finish()
        }
        (None, None) => anyhow::bail!("pass --input FILE or --company NAME"),
    }
}

fn stdout() -> impl Write {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Records of a file between two resets of the duplicate check: a duplicate
/// further apart makes no second row all the same (its company's indicators
/// take a bar no newer than their last once).
const FILE_BLOCK: usize = 10_000;

/// Rows handed to the writing thread at a time; at most 4 such chunks wait.
const ROWS_PER_CHUNK: usize = 4096;

/// A row for each bar of the file, in the file's order, as it is read: each
/// company's indicators carry their state from one bar to the next, so memory
/// holds their windows, not the file. Bars are cleaned and validated as the
/// consumer does; what it would refuse is logged and left out. Rows are
/// formatted on a thread of their own (a third of the work), overlapping the
/// reading and the indicators.
fn indicators_of_file(path: &std::path::Path, format: RowFormat) -> anyhow::Result<()> {
    let records = stockstream_sources::CsvSource::open(path)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<IndicatorRow>>(4);
    let writer = std::thread::Builder::new().name("indicators out".into()).spawn(move || {
        let mut out = RowWriter::new(format, stdout())?;
        for chunk in rx {
            for row in &chunk {
                out.row(row)?;
            }
        }
        out.finish()
    })?;
    let mut acceptor = Acceptor::new(MissingPolicy::Ffill);
    let mut live = LiveIndicators::default();
    let mut chunk = Vec::with_capacity(ROWS_PER_CHUNK);
    for (i, record) in records.enumerate() {
        if i % FILE_BLOCK == 0 {
            acceptor.new_batch();
        }
        if let Some(row) = acceptor.accept_record(record).and_then(|bar| live.update(&bar).cloned()) {
            chunk.push(row);
            // A writer gone (its error comes from `join`) stops the reading.
            if chunk.len() == ROWS_PER_CHUNK
                && tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(ROWS_PER_CHUNK))).is_err()
            {
                break;
            }
        }
    }
    let _ = tx.send(chunk);
    drop(tx);
    writer.join().map_err(|_| anyhow::anyhow!("the writing thread panicked"))?
}

/// Indicator rows written one at a time: CSV under a header, or one JSON array.
enum RowWriter<W: Write> {
    Csv { out: Box<csv::Writer<W>>, fields: Vec<Vec<u8>> },
    Json { out: W, first: bool },
}

impl<W: Write> RowWriter<W> {
    fn new(format: RowFormat, out: W) -> anyhow::Result<Self> {
        Ok(match format {
            RowFormat::Csv => {
                let mut out = csv::Writer::from_writer(out);
                out.write_record(IndicatorRow::COLUMNS)?;
                RowWriter::Csv { out: Box::new(out), fields: vec![Vec::new(); IndicatorRow::COLUMNS.len()] }
            }
            RowFormat::Json => {
                let mut out = out;
                out.write_all(b"[")?;
                RowWriter::Json { out, first: true }
            }
        })
    }

    fn row(&mut self, row: &IndicatorRow) -> anyhow::Result<()> {
        match self {
            // The fields' buffers are reused: no allocation a row.
            RowWriter::Csv { out, fields } => {
                for f in fields.iter_mut() {
                    f.clear();
                }
                fields[0].extend_from_slice(row.date.as_bytes());
                fields[1].extend_from_slice(row.company.as_bytes());
                // Rust's shortest exact form, written by way of ryu (formatting
                // was a third of the command's time).
                for (f, v) in fields[2..].iter_mut().zip(row.values()) {
                    match v {
                        Some(v) if v.is_finite() => stockstream_core::codec::write_number(f, v),
                        Some(v) => write!(f, "{v}")?,
                        None => {}
                    }
                }
                out.write_record(fields.iter())?;
            }
            RowWriter::Json { out, first } => {
                if !std::mem::take(first) {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, row)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            RowWriter::Csv { mut out, .. } => out.flush()?,
            RowWriter::Json { mut out, .. } => {
                out.write_all(b"]\n")?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct InsightsArgs {
    #[arg(long)]
    pub from: Option<Ts>,
    #[arg(long)]
    pub to: Option<Ts>,
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<stockstream_window::BarLength>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TextFormat {
    Text,
    Json,
}

pub async fn insights_command(args: InsightsArgs) -> anyhow::Result<()> {
    let store = crate::open_interval(&args.store, args.interval).await?;
    let range = DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?;
    let stats = stockstream_server::market_stats_of(store.as_ref(), &range).await?;
    anyhow::ensure!(!stats.companies.is_empty(), "the store holds no bars in that range");
    let found = insights(&stats);
    match args.format {
        TextFormat::Text => {
            for i in &found {
                println!("- {}", i.text);
            }
        }
        TextFormat::Json => {
            // Written as it is serialised: statistics of many companies are long.
            #[derive(serde::Serialize)]
            struct Out<'a> {
                insights: &'a [stockstream_analytics::Insight],
                stats: &'a stockstream_analytics::MarketStats,
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &Out { insights: &found, stats: &stats })?;
            std::io::Write::write_all(&mut out, b"\n")?;
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(())
}
