//! `stockstream serve`: the REST API, live events and dashboard over a store;
//! with `--brokers`, live from the bus as well.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use stockstream_bus::{FollowArgs, KafkaTail};
use stockstream_core::{Alert, Bar, DateRange, MissingPolicy, Tick};
use stockstream_pipeline::ticks::bar_of;
use stockstream_pipeline::{stop_on_signal, Acceptor, AnalyticsStage, Stats, TickOptions};
use stockstream_server::{Hub, ServeArgs};
use stockstream_store::{Store, StoreArgs};
use stockstream_window::{BarLength, Windows};

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
        Some((settings, topics)) => {
            let hub = Arc::new(Hub::with_alerts_from_elsewhere().streaming(interval));
            let analytics = Arc::new(AnalyticsStage::new(vec![hub.clone()]));
            let (tail, followed) = KafkaTail::new(&settings, &topics)?;
            println!("following  {} on {} (latest offsets, no group)", followed.join(", "), settings.brokers);
            let ticks = args.interval.map(TickOptions::new);
            let warm = Warm::new(store.clone());
            tokio::spawn(follow(tail, topics, analytics.clone(), hub.clone(), ticks, warm));
            (hub, analytics)
        }
    };
    let (addr, server) = args.serve.start(store, hub, analytics, Arc::new(Stats::default()), stop).await?;
    println!("serving    http://{addr}/ (store {})", args.store.describe());
    server.await?
}

/// The companies whose indicators were warmed from the store: the first bar
/// of each that the server follows comes with indicators over the whole
/// history, not over what streamed since it started.
struct Warm {
    store: Arc<dyn Store>,
    done: HashSet<String>,
    /// Until then a company's history is read once the store holds its first
    /// followed bar (see `CATCH_UP`).
    catch_up_until: Instant,
}

/// How long after it starts the server waits for the consumers to store a
/// company's first followed bar before reading the bars before it: the
/// server starts at the bus's latest offsets while the consumers' newest
/// batches are still in flight, and reading the store at once would miss
/// those bars (indicators over a history with a gap). Only for a company the
/// store holds bars of, and bounded, so that consumers that are down delay
/// the live view's first seconds at most.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Bars read before a company's first followed bar: enough to settle every
/// indicator (as the API's pages read).
const WARM_UP: usize = 600;

/// At most this many companies warmed (each costs one read); later ones start cold.
const MAX_WARMED: usize = 100_000;

impl Warm {
    fn new(store: Arc<dyn Store>) -> Self {
        Warm { store, done: HashSet::new(), catch_up_until: Instant::now() + CATCH_UP }
    }

    async fn before(&mut self, analytics: &AnalyticsStage, bar: &Bar) {
        if self.done.len() >= MAX_WARMED || !self.done.insert(bar.company.clone()) {
            return;
        }
        let upto = DateRange { from: None, to: Some(bar.ts) };
        loop {
            match self.store.newest(&bar.company, &upto, WARM_UP + 1).await {
                // The consumers write in bus order: once this bar is stored,
                // every bar before it is too. A company with nothing stored
                // has no history to wait for (nobody may be storing it).
                Ok(bars) if bars.last().is_none_or(|b| b.ts == bar.ts) || Instant::now() >= self.catch_up_until => {
                    let before = bars.partition_point(|b| b.ts < bar.ts);
                    analytics.warm(&bars[..before]);
                    return;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => {
                    tracing::warn!("{}: indicators start without history: {e}", bar.company);
                    return;
                }
            }
        }
    }
}

/// Hands what the bus carries to the live view: bars (accepted as a consumer
/// would, with their indicators), forming and closed bars made from ticks
/// (when a length is given), and the alerts the consumers raised. Nothing is
/// stored: the consumers do that.
async fn follow(
    tail: KafkaTail,
    [bars, ticks, alerts]: [String; 3],
    analytics: Arc<AnalyticsStage>,
    hub: Arc<Hub>,
    tick_options: Option<TickOptions>,
    mut warm: Warm,
) {
    let mut acceptor = Acceptor::new(MissingPolicy::Ffill);
    let mut windows = tick_options.map(|o| Windows::new(o.window));
    let mut out = Vec::new();
    loop {
        let (topic, m) = match tail.next().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!("following the bus stopped: {e}");
                return;
            }
        };
        if topic == bars {
            // Each message stands alone: a redelivered identity is not a duplicate here.
            acceptor.new_batch();
            if let Ok(bar) = acceptor.accept(&m.payload) {
                warm.before(&analytics, &bar).await;
                analytics.on_bars(std::iter::once((&bar, m.sent_at_micros)));
            }
        } else if topic == alerts {
            if let Ok(alert) = serde_json::from_slice::<Alert>(&m.payload) {
                hub.alert(alert);
            }
        } else if topic == ticks {
            let (Some(windows), Some(options)) = (windows.as_mut(), tick_options) else { continue };
            let Ok(tick) = Tick::decode(&m.payload) else { continue };
            // Bounded like the consumers' windows: no new symbol past the cap.
            if windows.symbols() >= options.max_symbols && windows.standing(&tick.symbol).is_none() {
                continue;
            }
            windows.push(&tick, &mut out);
            let closed: Vec<_> = out.drain(..).map(|o| bar_of(o.bar(), options.window.length)).collect();
            for bar in &closed {
                warm.before(&analytics, bar).await;
            }
            analytics.on_bars(closed.iter().map(|b| (b, m.sent_at_micros)));
            if let Some(forming) = windows.bar_at(&tick.symbol, tick.time_ms).filter(|b| b.partial) {
                analytics.forming(&bar_of(&forming, options.window.length), m.sent_at_micros);
            }
        }
    }
}
