//! `stockstream run`: the whole pipeline in one process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use stockstream_bus::memory_bus;
use stockstream_core::MissingPolicy;
use stockstream_store::{SqliteStore, Store};
use tokio::sync::watch;

use crate::cli::{PaceArgs, SourceArgs, StoreArgs};
use crate::pipeline::{consume, produce, ConsumeOptions, Item, OpenedSource, Pace, Stats};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// What to do with a missing value: fill it from the company's previous bar, or drop the row.
    #[arg(long, env = "STOCKSTREAM_MISSING", default_value = "ffill")]
    pub missing: MissingPolicy,
    /// Bars per store write.
    #[arg(long, env = "STOCKSTREAM_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,
}

/// Messages the in-process bus holds at most: the bound that makes a slow store
/// slow the producer down instead of filling memory.
pub const BUS_CAPACITY: usize = 16_384;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let OpenedSource { items: source, label, expected } = args.source.open()?;
    let store = Arc::new(SqliteStore::open(&args.store.db)?);
    let stats = Arc::new(Stats::default());
    let stop = stop_on_signal();
    let started = Instant::now();
    let progress = Progress::start(stats.clone(), expected);

    let options = ConsumeOptions {
        batch_size: args.batch_size.max(1),
        missing: args.missing,
        ..Default::default()
    };
    let result = embedded(
        source,
        store.clone(),
        stats.clone(),
        &options,
        args.pace.pace(),
        stop,
    )
    .await;
    progress.finish();
    result?;

    let total = store.count().await?;
    print_summary(&label, &stats, started.elapsed());
    println!("database   {} ({total} bars)", args.store.db.display());
    Ok(())
}

/// The embedded pipeline: source → in-process bus → SQLite, rejects into the
/// store's `rejects` table.
pub async fn embedded(
    source: Box<dyn Iterator<Item = Item> + Send>,
    store: Arc<SqliteStore>,
    stats: Arc<Stats>,
    options: &ConsumeOptions,
    pace: Pace,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (producer, mut consumer) = memory_bus(BUS_CAPACITY);
    let producing = {
        let (store, stats, stop) = (store.clone(), stats.clone(), stop.clone());
        // The producer is dropped when its source ends, which closes the bus.
        tokio::spawn(
            async move { produce(source, &producer, store.as_ref(), &stats, pace, stop).await },
        )
    };
    // The consumer is not told to stop: it drains the bus until the producer,
    // which is told, closes it. Nothing read is left behind in the channel.
    let (_never, drain) = watch::channel(false);
    let consumed = consume(&mut consumer, store.clone(), store, stats, options, drain).await;
    drop(consumer);
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
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    pub fn start(stats: Arc<Stats>, expected: Option<u64>) -> Self {
        let bar = match expected {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} bars {per_sec} eta {eta}")
                    .expect("valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} bars {per_sec}")
                    .expect("valid template"),
            ),
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                shown.set_position(Stats::get(&stats.stored) + Stats::get(&stats.rejected));
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
