//! `stockstream report`: charts (PNG, SVG) and a self-contained HTML report of
//! the stored companies.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use stockstream_charts::{write_report, CompanySeries, ReportData};
use stockstream_core::{DateRange, Ts};
use stockstream_store::Store;

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
    let (html, charts) = build(store.as_ref(), &DateRange::new(args.from, args.to), &args.out).await?;
    println!(
        "report     {} ({charts} charts, PNG and SVG, in {:.2} s)",
        html.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads every company in range, draws the charts, writes the report; returns
/// the report's path and the number of charts.
pub async fn build(store: &dyn Store, range: &DateRange, out: &Path) -> anyhow::Result<(PathBuf, usize)> {
    let mut companies = Vec::new();
    for company in store.companies().await? {
        companies.extend(CompanySeries::new(store.range(&company, range).await?));
    }
    anyhow::ensure!(!companies.is_empty(), "the store holds no bars in that range");
    let stats = stockstream_analytics::market_stats(&companies.iter().map(|c| c.bars.clone()).collect::<Vec<_>>());
    let insights = stockstream_analytics::insights(&stats);
    let data = ReportData { companies, stats, insights };
    let out = out.to_path_buf();
    let report = tokio::task::spawn_blocking(move || write_report(&data, &out)).await??;
    Ok((report.html, report.charts.len()))
}
