//! `stockstream report`: charts (PNG, SVG) and a self-contained HTML report of
//! the stored companies.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use stockstream_core::{Bar, DateRange, Ts};
use stockstream_store::StoreArgs;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[arg(long)]
    pub from: Option<Ts>,
    #[arg(long)]
    pub to: Option<Ts>,
    /// Folder for the charts and report.html.
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length: a company's table of them, else made from the
    /// finest shorter bars stored (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<stockstream_window::BarLength>,
}

pub async fn report_command(args: ReportArgs) -> anyhow::Result<()> {
    let store = crate::open_interval(&args.store, args.interval).await?;
    let started = Instant::now();
    let bars = store.bars_by_company(&DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?).await?;
    let (html, charts, _) = build(bars, &args.out).await?;
    println!(
        "report     {} ({charts} charts, PNG and SVG, in {:.2} s)",
        html.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What drawing a report gives: its path, the number of charts, and the
/// insights it shows.
type Drawn = (PathBuf, usize, Vec<stockstream_analytics::Insight>);

/// The report of every company's bars, drawn off the async threads.
pub async fn build(bars_by_company: Vec<Vec<Bar>>, out: &Path) -> anyhow::Result<Drawn> {
    drawn(out, move |dir| stockstream_charts::build_report(bars_by_company, dir)).await
}

/// The report of series and statistics already computed (a run's), drawn off
/// the async threads.
pub async fn build_of(
    companies: Vec<stockstream_charts::CompanySeries>,
    stats: stockstream_analytics::MarketStats,
    out: &Path,
) -> anyhow::Result<Drawn> {
    drawn(out, move |dir| stockstream_charts::report_of(companies, stats, dir)).await
}

/// Runs `draw` into `out` on a blocking thread: charts take CPU for a while.
async fn drawn(
    out: &Path,
    draw: impl FnOnce(&Path) -> anyhow::Result<(stockstream_charts::Report, Vec<stockstream_analytics::Insight>)>
        + Send
        + 'static,
) -> anyhow::Result<Drawn> {
    let out = out.to_path_buf();
    let (report, insights) = tokio::task::spawn_blocking(move || draw(&out)).await??;
    Ok((report.html, report.charts.len(), insights))
}
