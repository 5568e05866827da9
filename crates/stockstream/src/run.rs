//! `stockstream run`: the whole pipeline in one process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use stockstream_bus::memory_bus;
use stockstream_bus::{KafkaConsumer, KafkaDeadLetters, KafkaProducer, KafkaPublisher, OffsetReset};
use stockstream_core::DeadLetters;
use stockstream_server::Hub;
use stockstream_store::{SqliteStore, Store};
use tokio::sync::watch;

use crate::cli::{ConsumeArgs, KafkaArgs, PaceArgs, SourceArgs, StoreArgs, StoreKind};
use crate::pipeline::{consume, produce, ConsumeOptions, Item, OpenedSource, Pace, Stats};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub consume: ConsumeArgs,
    /// The bus: in-process (no servers) or a Kafka cluster.
    #[arg(long, env = "STOCKSTREAM_BUS", value_enum, default_value_t = BusKind::Memory)]
    pub bus: BusKind,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Serve the API and live dashboard while the pipeline streams (and after,
    /// until SIGINT/SIGTERM).
    #[arg(long)]
    pub serve: bool,
    #[command(flatten)]
    pub server: crate::serve::ServeArgs,
    /// With --serve: start streaming once a client listens to /api/stream.
    #[arg(long, requires = "serve")]
    pub wait_for_subscriber: bool,
    /// Do not print insights at the end.
    #[arg(long)]
    pub no_insights: bool,
    /// Do not write the report at the end.
    #[arg(long)]
    pub no_report: bool,
    /// Folder of the report written at the end.
    #[arg(long, env = "STOCKSTREAM_REPORT_DIR", default_value = "report")]
    pub report_dir: PathBuf,
    /// Consumer group (Kafka bus).
    #[arg(long, env = "STOCKSTREAM_GROUP", default_value = "stockstream")]
    pub group: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    Memory,
    Kafka,
}

/// Messages the in-process bus holds at most: the bound that makes a slow store
/// slow the producer down instead of filling memory.
pub const BUS_CAPACITY: usize = 16_384;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let OpenedSource { items: source, label, expected } = args.source.open().await?;
    let sqlite = match args.store.kind {
        StoreKind::Sqlite => Some(Arc::new(SqliteStore::open(&args.store.db)?)),
        StoreKind::Dynamodb => None,
    };
    let store: Arc<dyn Store> = match &sqlite {
        Some(s) => s.clone(),
        None => args.store.open().await?,
    };
    let stats = Arc::new(Stats::default());
    let stop = stop_on_signal();
    let started = Instant::now();
    let progress = Progress::start(stats.clone(), expected, |s| Stats::get(&s.stored) + Stats::get(&s.rejected));

    let mut options = args.consume.options();
    let hub = Arc::new(Hub::default());
    options.hub = Some(hub.clone());
    let server = match &args.serve {
        true => {
            let (addr, task) =
                crate::serve::start(args.server.bind, store.clone(), hub.clone(), stats.clone(), stop.clone()).await?;
            println!("serving    http://{addr}/");
            if args.wait_for_subscriber {
                println!("waiting    for a subscriber to /api/stream");
                while hub.subscribers() == 0 && !*stop.borrow() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Some(task)
        }
        false => None,
    };
    let result = match args.bus {
        BusKind::Memory => {
            // Without Kafka there is no dead-letter topic: rejects go to the
            // SQLite file's `rejects` table (the store itself when it is SQLite).
            let rejects: Arc<dyn DeadLetters> = match &sqlite {
                Some(s) => s.clone(),
                None => Arc::new(SqliteStore::open(&args.store.db)?),
            };
            embedded(source, store.clone(), rejects, stats.clone(), &options, args.pace.pace(), stop.clone()).await
        }
        BusKind::Kafka => {
            let pace = args.pace.pace();
            over_kafka(&args.kafka, &args.group, pace, source, store.clone(), stats.clone(), options, stop.clone())
                .await
        }
    };
    progress.finish();
    result?;

    let total = store.count().await?;
    print_summary(&label, &stats, started.elapsed());
    println!("database   {} ({total} bars)", args.store.describe());
    print_latest(&hub.latest());
    finish_extras(&args, store.as_ref(), total).await?;
    if let Some(server) = server {
        println!("serving    until SIGINT or SIGTERM");
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
        server.await??;
    }
    Ok(())
}

/// The report and insights written at the end of a run.
async fn finish_extras(args: &RunArgs, store: &dyn Store, total: u64) -> anyhow::Result<()> {
    if args.no_insights && args.no_report {
        return Ok(());
    }
    if total == 0 {
        println!("report     skipped: no bar was stored");
        return Ok(());
    }
    // Statistics and charts need every stored value in memory: above a limit,
    // leave them to `stockstream insights` and `report` rather than grow without bound.
    if total > INSIGHTS_LIMIT {
        println!("insights   skipped: {total} bars stored (more than {INSIGHTS_LIMIT}); run `stockstream insights` / `report`");
        return Ok(());
    }
    // Loaded once for both the report and the insights.
    let bars = store.bars_by_company(&stockstream_core::DateRange::default()).await?;
    let insights = if args.no_report {
        stockstream_analytics::insights(&stockstream_analytics::market_stats(&bars))
    } else {
        let started = Instant::now();
        let (html, charts, insights) = crate::report::build(bars, &args.report_dir).await?;
        println!("report     {} ({charts} charts, in {:.2} s)", html.display(), started.elapsed().as_secs_f64());
        insights
    };
    if !args.no_insights {
        println!("insights");
        for i in insights {
            println!("- {}", i.text);
        }
    }
    Ok(())
}

/// The embedded pipeline: source → in-process bus → SQLite, rejects into the
/// store's `rejects` table.
pub async fn embedded(
    source: Box<dyn Iterator<Item = Item> + Send>,
    store: Arc<dyn Store>,
    dead: Arc<dyn DeadLetters>,
    stats: Arc<Stats>,
    options: &ConsumeOptions,
    pace: Pace,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (producer, mut consumer) = memory_bus(BUS_CAPACITY);
    let producing = {
        let (dead, stats, stop) = (dead.clone(), stats.clone(), stop.clone());
        // The producer is dropped when its source ends, which closes the bus.
        tokio::spawn(async move { produce(source, &producer, dead.as_ref(), &stats, pace, stop).await })
    };
    // The consumer is not told to stop: it drains the bus until the producer,
    // which is told, closes it. Nothing read is left behind in the channel.
    let (_never, drain) = watch::channel(false);
    let consumed = consume(&mut consumer, store, dead, stats, options, drain).await;
    drop(consumer);
    let produced = producing.await?;
    consumed?;
    produced
}

/// Producer and consumer in one process over a Kafka cluster. The consumer
/// returns once the producer is done and the group has committed everything.
#[allow(clippy::too_many_arguments)]
pub async fn over_kafka(
    kafka: &KafkaArgs,
    group: &str,
    pace: Pace,
    source: Box<dyn Iterator<Item = Item> + Send>,
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    mut options: ConsumeOptions,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    kafka.ensure_topics().await?;
    let settings = kafka.settings();
    let producer = KafkaProducer::new(&settings, &kafka.topic)?;
    let dead = Arc::new(KafkaDeadLetters::new(&settings, &kafka.dlq_topic())?);
    let mut consumer = KafkaConsumer::new(&settings, &kafka.topic, group, OffsetReset::Earliest)?;
    options.alerts = Some(Arc::new(KafkaPublisher::new(&settings, &kafka.alerts_topic())?));
    let (done_tx, done_rx) = watch::channel(false);
    let producing = {
        let (dead, stats, stop) = (dead.clone(), stats.clone(), stop.clone());
        tokio::spawn(async move {
            let result = produce(source, &producer, dead.as_ref(), &stats, pace, stop).await;
            let _ = done_tx.send(true);
            result
        })
    };
    options.until_drained = Some(done_rx);
    options.report_every = Some(Duration::from_secs(10));
    let consumed = consume(&mut consumer, store, dead, stats, &options, stop).await;
    let produced = producing.await?;
    consumed?;
    produced
}

/// A watch that turns true on SIGINT or SIGTERM: stages stop taking new work,
/// write what they hold, commit and return.
pub fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = ctrl_c.await;
                    let _ = tx.send(true);
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::warn!("signal received: draining, flushing and committing");
        let _ = tx.send(true);
    });
    rx
}

/// Bars above which `run` does not compute insights at its end.
const INSIGHTS_LIMIT: u64 = 2_000_000;

/// Two decimals, or scientific notation for magnitudes no price has.
fn price(x: f64) -> String {
    if x.abs() >= 1e12 {
        format!("{x:.3e}")
    } else {
        format!("{x:.2}")
    }
}

/// The last indicators of each company, as computed while the bars flowed.
fn print_latest(rows: &[stockstream_analytics::IndicatorRow]) {
    if rows.is_empty() {
        return;
    }
    let f = |v: Option<f64>| v.map(price).unwrap_or_else(|| "-".into());
    println!(
        "latest     {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "company/date", "close", "sma10", "sma50", "ema12", "rsi14"
    );
    for r in rows {
        println!(
            "           {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}",
            format!("{} {}", r.company, &r.date[..10.min(r.date.len())]),
            price(r.close),
            f(r.sma10),
            f(r.sma50),
            f(r.ema12),
            f(r.rsi14)
        );
    }
}

pub fn print_summary(label: &str, stats: &Stats, elapsed: Duration) {
    let get = Stats::get;
    let secs = elapsed.as_secs_f64();
    let done = get(&stats.stored) + get(&stats.rejected);
    println!("source     {label}");
    println!("read       {}", get(&stats.read).max(get(&stats.consumed)));
    println!("stored     {}", get(&stats.stored));
    println!("rejected   {}", get(&stats.rejected));
    for (kind, n) in stats.rejected_by_kind() {
        println!("  {kind:<28}{n}");
    }
    println!("imputed    {}", get(&stats.imputed));
    println!("elapsed    {secs:.2} s");
    println!("rate       {:.0} bars/s", done as f64 / secs.max(1e-9));
}

/// A progress bar on a terminal; nothing otherwise.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// `done` reads how far the work is from the counters.
    pub fn start(stats: Arc<Stats>, expected: Option<u64>, done: fn(&Stats) -> u64) -> Self {
        let bar = match expected {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} bars {per_sec} eta {eta}").expect("valid template"),
            ),
            None => ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{spinner} {pos} bars {per_sec}").expect("valid template")),
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                shown.set_position(done(&stats));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
