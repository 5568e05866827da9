//! `stockstream query`: one company's bars from the store.

use std::io::Write;

use clap::Args;
use stockstream_core::shown::{write_bars, BarFormat};
use stockstream_core::{DateRange, Ts};
use stockstream_store::StoreArgs;

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
    #[arg(long, value_enum, default_value_t = BarFormat::Table)]
    pub format: BarFormat,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length: a company's table of them, else made from the
    /// finest shorter bars stored (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<stockstream_window::BarLength>,
}

pub async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let store = crate::open_interval(&args.store, args.interval).await?;
    let range = DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?;
    let bars = store.company_bars(&args.company, &range).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write_bars(&mut out, &bars, args.format)?;
    out.flush()?;
    Ok(())
}
