//! `stockstream serve`: the REST API, live events and dashboard over a store.

use std::sync::Arc;

use clap::Args;
use stockstream_pipeline::{stop_on_signal, AnalyticsStage, Stats};
use stockstream_server::{Hub, ServeArgs};
use stockstream_store::StoreArgs;

#[derive(Args, Debug)]
pub struct ServeCommandArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length, made from ticks with `--bar` (default: the daily table).
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<stockstream_window::BarLength>,
}

pub async fn serve_command(args: ServeCommandArgs) -> anyhow::Result<()> {
    let store = crate::open_interval(&args.store, args.interval).await?;
    let stop = stop_on_signal();
    let (hub, analytics) = (Arc::new(Hub::default()), Arc::new(AnalyticsStage::default()));
    let (addr, server) = args.serve.start(store, hub, analytics, Arc::new(Stats::default()), stop).await?;
    println!("serving    http://{addr}/ (store {})", args.store.describe());
    server.await?
}
