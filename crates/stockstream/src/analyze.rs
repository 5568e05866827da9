//! `stockstream indicators` and `stockstream insights`: analytics over a file or
//! over the store.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use stockstream_analytics::{indicator_rows, insights, market_stats, IndicatorRow};
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowFormat {
    Csv,
    Json,
}

pub async fn indicators_command(args: IndicatorsArgs) -> anyhow::Result<()> {
    let rows = match (&args.input, &args.company) {
        // Cleaned and validated as the consumer does; what it would refuse is
        // logged and left out.
        (Some(path), _) => {
            let series = Acceptor::new(MissingPolicy::Ffill).series(stockstream_sources::CsvSource::open(path)?);
            series.iter().flat_map(|bars| indicator_rows(bars)).collect()
        }
        (None, Some(company)) => {
            let store = args.store.open_existing().await?;
            let range = DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?;
            indicator_rows(&store.company_bars(company, &range).await?)
        }
        (None, None) => anyhow::bail!("pass --input FILE or --company NAME"),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        RowFormat::Csv => IndicatorRow::write_csv(&rows, &mut out)?,
        RowFormat::Json => {
            serde_json::to_writer(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
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
    let range = DateRange::checked(args.from, args.to).map_err(anyhow::Error::msg)?;
    let stats = market_stats(&store.bars_by_company(&range).await?);
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
