//! `stockstream indicators` and `stockstream insights`: analytics over a file or
//! over the store.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use stockstream_analytics::{indicator_rows, insights, market_stats, IndicatorRow, MarketStats};
use stockstream_core::{Bar, DateRange, MissingPolicy, Ts};
use stockstream_pipeline::Acceptor;
use stockstream_store::Store;

use crate::cli::StoreArgs;

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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowFormat {
    Csv,
    Json,
}

pub async fn indicators_command(args: IndicatorsArgs) -> anyhow::Result<()> {
    let rows = match (&args.input, &args.company) {
        (Some(path), _) => {
            // Clean and validate as the consumer does; what it would reject is
            // reported and left out. Each company's series, in the file's order
            // of companies.
            let mut acceptor = Acceptor::new(MissingPolicy::Ffill);
            let mut by_company: Vec<Vec<Bar>> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for record in stockstream_sources::CsvSource::open(path)? {
                match record.map_err(|r| (r.source, r.reason)).and_then(|rec| {
                    acceptor.accept_raw(rec.raw).map_err(|refusal| (path.display().to_string(), refusal.reason))
                }) {
                    Ok(bar) => {
                        let next = by_company.len();
                        let i = *index.entry(bar.company.clone()).or_insert(next);
                        if i == next {
                            by_company.push(Vec::new());
                        }
                        by_company[i].push(bar);
                    }
                    Err((source, reason)) => tracing::warn!("{source}: skipped: {reason}"),
                }
            }
            by_company.iter().flat_map(|bars| indicator_rows(bars)).collect()
        }
        (None, Some(company)) => {
            let store = args.store.open_existing().await?;
            indicator_rows(
                &company_bars(
                    store.as_ref(),
                    company,
                    &DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?,
                )
                .await?,
            )
        }
        (None, None) => anyhow::bail!("pass --input FILE or --company NAME"),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        RowFormat::Csv => {
            out.write_all(IndicatorRow::COLUMNS.join(",").as_bytes())?;
            out.write_all(b"\n")?;
            for r in &rows {
                let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
                let values = r.values().map(|v| v.map(|x| x.to_string()).unwrap_or_default());
                w.write_record([r.date.clone(), r.company.clone()].into_iter().chain(values))?;
                out.write_all(&w.into_inner()?)?;
            }
        }
        RowFormat::Json => {
            serde_json::to_writer(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A company's bars by name, or by symbol when the name finds nothing.
pub async fn company_bars(store: &dyn Store, company: &str, range: &DateRange) -> anyhow::Result<Vec<Bar>> {
    match store.find_company(company).await? {
        Some(name) => Ok(store.range(&name, range).await?),
        None => {
            let known = store.companies().await?.join(", ");
            anyhow::bail!("unknown company {company:?}; stored companies: {known}")
        }
    }
}

/// Statistics of every stored company over a range.
pub async fn stored_stats(store: &dyn Store, range: &DateRange) -> anyhow::Result<MarketStats> {
    Ok(market_stats(&store.bars_by_company(range).await?))
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TextFormat {
    Text,
    Json,
}

pub async fn insights_command(args: InsightsArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing().await?;
    let stats =
        stored_stats(store.as_ref(), &DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?).await?;
    anyhow::ensure!(!stats.companies.is_empty(), "the store holds no bars in that range");
    let found = insights(&stats);
    match args.format {
        TextFormat::Text => {
            for i in &found {
                println!("- {}", i.text);
            }
        }
        TextFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "insights": found, "stats": stats }))?);
        }
    }
    Ok(())
}
