//! `stockstream report`: charts (PNG, SVG) and a self-contained HTML report of
//! the stored companies.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use stockstream_charts::{write_report, CompanySeries, ReportData};
use stockstream_core::{DateRange, Ts};

use crate::cli::StoreArgs;

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
}

pub async fn report_command(args: ReportArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing().await?;
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

/// Draws the charts and writes the report from every company's bars; returns
/// the report's path, the number of charts, and the insights it shows.
pub async fn build(
    bars_by_company: Vec<Vec<stockstream_core::Bar>>,
    out: &Path,
) -> anyhow::Result<(PathBuf, usize, Vec<stockstream_analytics::Insight>)> {
    let stats = stockstream_analytics::market_stats(&bars_by_company);
    let companies: Vec<CompanySeries> = bars_by_company.into_iter().filter_map(CompanySeries::new).collect();
    anyhow::ensure!(!companies.is_empty(), "the store holds no bars in that range");
    let insights = stockstream_analytics::insights(&stats);
    let data = ReportData { companies, stats, insights };
    let out = out.to_path_buf();
    let (report, data) = tokio::task::spawn_blocking(move || write_report(&data, &out).map(|r| (r, data))).await??;
    Ok((report.html, report.charts.len(), data.insights))
}
