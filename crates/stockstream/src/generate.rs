//! `stockstream generate`: synthetic market data as CSV in the original
//! project's layout.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use stockstream_sources::{Synthetic, SyntheticArgs};

/// The data is SYNTHETIC: correlated geometric Brownian motion, not real prices.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub synthetic: SyntheticArgs,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let generator = Synthetic::new(args.synthetic.config()).map_err(anyhow::Error::msg)?;
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 16, sink));
    out.write_record(["Date", "Open", "High", "Low", "Close", "Volume", "Company Name"])?;
    let mut fields: [String; 6] = Default::default();
    for bar in generator {
        use std::fmt::Write as _;
        for f in fields.iter_mut() {
            f.clear();
        }
        let _ = write!(fields[0], "{}", bar.ts);
        for (f, v) in fields[1..].iter_mut().zip([bar.open, bar.high, bar.low, bar.close, bar.volume]) {
            let _ = write!(f, "{v}");
        }
        out.write_record(fields.iter().map(String::as_str).chain([bar.company.as_str()]))?;
    }
    out.flush().context("cannot write the generated data")?;
    Ok(())
}

/// `stockstream fetch`: market data from Yahoo Finance as CSV in the original
/// project's layout.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Symbols (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "NVDA,TSLA,META,AMZN,AAPL,NFLX,GOOGL")]
    pub symbols: Vec<String>,
    #[arg(long, default_value = "2023-04-01")]
    pub start: chrono::NaiveDate,
    #[arg(long, default_value = "2025-04-15")]
    pub end: chrono::NaiveDate,
    /// Bar length: 1d, 1h, 1m (Yahoo keeps intraday bars for a limited time).
    #[arg(long, default_value = "1d")]
    pub interval: stockstream_sources::Interval,
    /// Use the adjusted close (dividends and splits) and scale Open/High/Low alike.
    #[arg(long)]
    pub adjusted: bool,
    /// Yahoo Finance's address.
    #[arg(long, env = "STOCKSTREAM_YAHOO_URL", default_value = stockstream_sources::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn fetch(args: FetchArgs) -> anyhow::Result<()> {
    let raws = stockstream_sources::YahooDownload::fetch(
        &args.base_url,
        &args.symbols,
        args.start,
        args.end,
        args.interval,
        args.adjusted,
    )
    .await?
    .into_bars();
    // Rows refused (an adjusted close missing or not positive) are named, not written.
    let (raws, refused): (Vec<_>, Vec<_>) = raws.into_iter().partition(Result::is_ok);
    for reject in refused.into_iter().filter_map(Result::err) {
        eprintln!("refused ({}): {}", reject.kind, reject.reason);
    }
    let raws: Vec<_> = raws.into_iter().filter_map(Result::ok).collect();
    // Written only once every symbol has arrived: a failed fetch leaves no half file.
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    out.write_record(["Date", "Open", "High", "Low", "Close", "Volume", "Company Name"])?;
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in &raws {
        out.write_record([
            r.date.clone().unwrap_or_default(),
            num(r.open),
            num(r.high),
            num(r.low),
            num(r.close),
            num(r.volume),
            r.company.clone().unwrap_or_default(),
        ])?;
    }
    out.flush()?;
    if let Some(path) = &args.out {
        eprintln!("{} bars written to {}", raws.len(), path.display());
    }
    Ok(())
}
