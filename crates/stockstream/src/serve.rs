//! `stockstream serve`: the REST API, live events and dashboard over a store;
//! with `--brokers`, live from the bus as well.

use std::sync::Arc;

use clap::Args;
use stockstream_bus::{FollowArgs, KafkaTail};
use stockstream_pipeline::{follow, stop_on_signal, AnalyticsStage, FollowedTopics, Stats, TickOptions};
use stockstream_server::{Hub, ServeArgs};
use stockstream_store::StoreArgs;
use stockstream_window::BarLength;

#[derive(Args, Debug)]
pub struct ServeCommandArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length, made from ticks with `--bar` (default: the daily
    /// table); when following the bus, its ticks make forming bars of it.
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<BarLength>,
    #[command(flatten)]
    pub follow: FollowArgs,
}

pub async fn serve_command(args: ServeCommandArgs) -> anyhow::Result<()> {
    let store = crate::open_interval(&args.store, args.interval).await?;
    let stop = stop_on_signal();
    let interval = args.interval.map(|b| b.name()).unwrap_or_else(|| "1d".into());
    let (hub, analytics) = match args.follow.follow() {
        None => (Arc::new(Hub::default().streaming(interval)), Arc::new(AnalyticsStage::default())),
        Some((settings, [bars, ticks, alerts])) => {
            let hub = Arc::new(Hub::with_alerts_from_elsewhere().streaming(interval));
            let analytics = Arc::new(AnalyticsStage::new(vec![hub.clone()]));
            let (mut tail, followed) = KafkaTail::new(&settings, &[bars.clone(), ticks.clone(), alerts.clone()])?;
            println!("following  {} on {} (latest offsets, no group)", followed.join(", "), settings.brokers);
            let topics = FollowedTopics { bars, ticks, alerts };
            let tick_options = args.interval.map(TickOptions::new);
            let (following, store, stop) = (analytics.clone(), store.clone(), stop.clone());
            let alerts_to = hub.clone();
            tokio::spawn(async move {
                let on_alert = Box::new(move |alert| alerts_to.alert(alert));
                if let Err(e) = follow(&mut tail, topics, following, on_alert, tick_options, store, stop).await {
                    tracing::error!("following the bus stopped: {e}");
                }
            });
            (hub, analytics)
        }
    };
    let (addr, server) = args.serve.start(store, hub, analytics, Arc::new(Stats::default()), stop).await?;
    println!("serving    http://{addr}/ (store {})", args.store.describe());
    server.await?
}
