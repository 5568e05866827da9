//! `stockstream query`: one company's bars from the store.

use std::io::Write;

use clap::{Args, ValueEnum};
use stockstream_core::{encode, Bar, DateRange, Ts};

use crate::cli::StoreArgs;
use stockstream_core::shown::price;

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Company name (`NVIDIA`) or its symbol (`NVDA`).
    #[arg(long)]
    pub company: String,
    /// First date, inclusive (YYYY-MM-DD or an RFC 3339 instant).
    #[arg(long)]
    pub from: Option<Ts>,
    /// Last date, inclusive: a date takes in the whole day.
    #[arg(long)]
    pub to: Option<Ts>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing().await?;
    let bars = crate::analyze::company_bars(
        store.as_ref(),
        &args.company,
        &DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?,
    )
    .await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write_bars(&mut out, &bars, args.format)?;
    out.flush()?;
    Ok(())
}

pub fn write_bars(out: &mut impl Write, bars: &[Bar], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["Date", "Open", "High", "Low", "Close", "Volume", "Company Name", "Symbol"])?;
            for b in bars {
                w.write_record([
                    b.ts.to_string(),
                    b.open.to_string(),
                    b.high.to_string(),
                    b.low.to_string(),
                    b.close.to_string(),
                    b.volume.to_string(),
                    b.company.clone(),
                    b.symbol.clone(),
                ])?;
            }
            w.flush()?;
        }
        Format::Json => {
            out.write_all(b"[")?;
            for (i, b) in bars.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                out.write_all(&encode(b))?;
            }
            out.write_all(b"]\n")?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<22} {:>10} {:>10} {:>10} {:>10} {:>14}  Company",
                "Date", "Open", "High", "Low", "Close", "Volume"
            )?;
            for b in bars {
                writeln!(
                    out,
                    "{:<22} {:>10} {:>10} {:>10} {:>10} {:>14}  {}",
                    b.ts.to_string(),
                    price(b.open),
                    price(b.high),
                    price(b.low),
                    price(b.close),
                    b.volume,
                    b.company
                )?;
            }
            writeln!(out, "({} bars)", bars.len())?;
        }
    }
    Ok(())
}
