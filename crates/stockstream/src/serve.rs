//! `stockstream serve`: the REST API, live events and dashboard over a store;
//! with `--brokers`, live from the bus as well.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use stockstream_bus::{FollowArgs, KafkaTail};
use stockstream_pipeline::{follow, stop_on_signal, AnalyticsStage, FollowedTopics, Stats, TickOptions};
use stockstream_server::{Hub, ServeArgs};
use stockstream_store::{Store, StoreArgs};
use stockstream_window::BarLength;

#[derive(Args, Debug)]
pub struct ServeCommandArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bars of this length: a company's table of them, else made from the
    /// finest shorter bars stored (default: the shortest interval stored, the
    /// daily table when following the bus); when following the bus, its
    /// ticks make forming bars of it.
    #[arg(long, env = "STOCKSTREAM_INTERVAL")]
    pub interval: Option<BarLength>,
    #[command(flatten)]
    pub follow: FollowArgs,
}

pub async fn serve_command(mut args: ServeCommandArgs) -> anyhow::Result<()> {
    if args.interval.is_none() && args.follow.follow().is_none() {
        args.interval = finest_stored(&args.store).await?;
    }
    let store = match args.follow.follow() {
        // Started with its consumers (a deployment script, a supervisor), a
        // following server waits for the store they create.
        Some(_) => wait_for_store(&args.store, args.interval).await?,
        None => crate::open_interval(&args.store, args.interval).await?,
    };
    // A store must list its companies without a scan: one that cannot (a
    // DynamoDB table written before its catalog) is refused here, with how
    // to build the catalog, not on every request. One name is enough to know.
    store.companies_page(None, 1).await?;
    let stop = stop_on_signal();
    let interval = args.interval.map(|b| b.name()).unwrap_or_else(|| "1d".into());
    let (hub, analytics) = match args.follow.follow() {
        None => (Arc::new(Hub::default().serving(interval)), Arc::new(AnalyticsStage::default())),
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

/// The shortest interval whose own table holds bars, when it is not the
/// daily table: a store of one-minute bars is served as such, not as the
/// empty daily table beside them.
async fn finest_stored(store: &StoreArgs) -> anyhow::Result<Option<BarLength>> {
    let opened = store.open_existing().await?;
    for (length, table) in stockstream_store::stored_intervals(opened.as_ref()).await? {
        if !table.companies_page(None, 1).await?.is_empty() {
            return Ok((length != BarLength::Day).then_some(length));
        }
    }
    Ok(None)
}

/// How long a following server waits for its store to appear.
const STORE_WAIT: Duration = Duration::from_secs(120);

/// The store, once it can be opened: waited for up to `STORE_WAIT`, saying so
/// every 10 s.
async fn wait_for_store(store: &StoreArgs, interval: Option<BarLength>) -> anyhow::Result<Arc<dyn Store>> {
    let started = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        match crate::open_interval(store, interval).await {
            Ok(opened) => return Ok(opened),
            Err(e) if started.elapsed() < STORE_WAIT => {
                if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!("waiting for the store ({e}); its consumers create it");
                    said = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.context(format!("no store after waiting {} s", STORE_WAIT.as_secs()))),
        }
    }
}
