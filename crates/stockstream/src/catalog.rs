//! `stockstream catalog rebuild`: a store's catalog of companies built from
//! its bars, once, for a store written before it kept one.

use clap::{Args, Subcommand};
use stockstream_store::StoreArgs;
use stockstream_window::BarLength;

#[derive(Args, Debug)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub action: CatalogAction,
}

#[derive(Subcommand, Debug)]
pub enum CatalogAction {
    /// Builds the catalog (companies, counts, last bars, running statistics)
    /// from the stored bars, one pass over them. A `run` or `consume` into a
    /// store without one builds it too.
    Rebuild(RebuildArgs),
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The bars of this length (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<BarLength>,
}

pub async fn catalog_command(args: CatalogArgs) -> anyhow::Result<()> {
    let CatalogAction::Rebuild(args) = args.action;
    let store = args.store.open().await?;
    let store = match args.interval {
        Some(length) => store.interval(&length.name()).await?,
        None => store,
    };
    let companies = store.rebuild_catalog().await?;
    println!("catalog    {companies} companies ({})", args.store.describe());
    Ok(())
}
