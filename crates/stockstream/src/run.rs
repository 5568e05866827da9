//! `stockstream run`: the whole pipeline in one process.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use stockstream_bus::{KafkaArgs, KafkaConsumer, KafkaDeadLetters, KafkaProducer, KafkaPublisher, OffsetReset};
use stockstream_core::{BarLength, DeadLetters};
use stockstream_pipeline::{
    embedded, over_bus, stop_on_signal, AnalyticsStage, ConsumeArgs, PaceArgs, Stats, StatsOfRun, StoredAlerts,
    Subscriber, WindowArgs, MAX_HELD,
};
use stockstream_server::{Hub, ServeArgs};
use stockstream_sources::SourceArgs;
use stockstream_store::{open_sqlite, Store, StoreArgs, StoreKind};

use crate::consume::KafkaAlerts;
use crate::summary::{print_latest, print_summary, Progress};

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
    #[command(flatten)]
    pub window: WindowArgs,
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
    pub server: ServeArgs,
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

/// Companies whose latest indicators the summary lists (the first by name).
const LATEST_SHOWN: usize = 20;

pub async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    if args.window.bar.is_some() && args.source.source.is_none() && args.source.input.is_some() {
        // A file run with --bar holds ticks.
        args.source.source = Some("ticks".into());
    }
    // A restarted live feed resumes its history a window before the newest bar stored.
    let resume = match args.window.bar {
        Some(bar) if crate::backfill::backfills(args.source.source.as_deref()) && !backfill_off(&args) => {
            let store = args.store.open().await?;
            let from = args.source.backfill_from(chrono::Utc::now().timestamp_millis());
            crate::backfill::stored_resume(store.as_ref(), bar, &args.source.synthetic.symbols, from).await?
        }
        _ => Default::default(),
    };
    let source = args.source.open_live(args.window.bar, resume).await?;
    let (label, expected) = (source.description(), source.expected());
    let ticks = crate::tick_options(source.as_ref(), &args.window)?;
    // Bars live in the table of their interval: ticks' bars of their length,
    // other bars of the interval asked for, or the source's own (a file's is
    // told from its dates), daily when nothing says.
    let declared = args.source.synthetic.interval.map(|i| i.length());
    let length = args.window.bar.or(declared).or(source.interval()).unwrap_or(BarLength::Day);
    let interval = length.name();
    let sqlite = match args.store.kind {
        StoreKind::Sqlite => Some(Arc::new(open_sqlite(&args.store.db).await?.for_interval(&interval).await?)),
        StoreKind::Dynamodb => None,
    };
    let store: Arc<dyn Store> = match &sqlite {
        Some(s) => s.clone(),
        None => args.store.open().await?.interval(&interval).await?,
    };
    let stats = Arc::new(Stats::default());
    let stop = stop_on_signal();
    let started = Instant::now();
    let progress = Progress::start(stats.clone(), expected, |s| Stats::get(&s.stored) + Stats::get(&s.rejected));

    let hub = Arc::new(Hub::default().streaming(interval.clone()));
    let run_stats = Arc::new(if args.no_report { StatsOfRun::default() } else { StatsOfRun::with_series() });
    let mut subscribers: Vec<Arc<dyn Subscriber>> = vec![hub.clone(), Arc::new(StoredAlerts(store.clone()))];
    if !(args.no_insights && args.no_report) {
        subscribers.push(run_stats.clone());
    }
    if args.bus == BusKind::Kafka {
        let publisher = KafkaPublisher::new(&args.kafka.settings(), &args.kafka.alerts_topic())?;
        subscribers.push(Arc::new(KafkaAlerts(publisher)));
    }
    let analytics = Arc::new(AnalyticsStage::new(subscribers).holding_at_most(MAX_HELD));
    let mut options = args.consume.options();
    options.analytics = Some(analytics.clone());
    options.interval = ticks.is_none().then_some(length);
    options.ticks = ticks;
    let server = match &args.serve {
        true => {
            let (addr, task) =
                args.server.start(store.clone(), hub.clone(), analytics.clone(), stats.clone(), stop.clone()).await?;
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
    let pace = args.pace.pace();
    let result = match args.bus {
        BusKind::Memory => {
            // Without Kafka there is no dead-letter topic: rejects go to the
            // SQLite file's `rejects` table (the store itself when it is SQLite).
            let rejects: Arc<dyn DeadLetters> = match &sqlite {
                Some(s) => s.clone(),
                None => Arc::new(open_sqlite(&args.store.db).await?),
            };
            let result = embedded(source, store.clone(), rejects, stats.clone(), &options, pace, stop.clone()).await;
            drop(options);
            result
        }
        BusKind::Kafka => {
            let kafka = &args.kafka;
            kafka.ensure_topics().await?;
            let settings = kafka.settings();
            let topic = if ticks.is_some() { kafka.ticks_topic() } else { kafka.topic.clone() };
            let producer = Box::new(KafkaProducer::new(&settings, &topic)?);
            let dead = Arc::new(KafkaDeadLetters::new(&settings, &kafka.dlq_topic())?);
            let mut consumer = KafkaConsumer::new(&settings, &topic, &args.group, OffsetReset::Earliest)?;
            options.report_every = Some(Duration::from_secs(10));
            let (store, stats, stop) = (store.clone(), stats.clone(), stop.clone());
            over_bus(source, producer, &mut consumer, store, dead, stats, options, pace, stop).await
        }
    };
    progress.finish();
    result?;

    let total = store.count().await?;
    print_summary(&label, &stats, started.elapsed());
    println!("database   {} ({total} bars)", args.store.describe());
    match length {
        BarLength::Day => println!("interval   1d"),
        other => println!("interval   {other} (query, insights, report, serve: --interval {other})"),
    }
    let (latest, _) = analytics.latest_first(LATEST_SHOWN);
    print_latest(&latest, analytics.companies());
    if server.is_none() {
        // Nothing reads the live indicators any more: their memory (up to
        // 25,000 companies') is free for the statistics the extras gather.
        drop(analytics);
    }
    finish_extras(&args, total, &run_stats, store.as_ref()).await?;
    if let Some(server) = server {
        println!("serving    until SIGINT or SIGTERM");
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
        server.await??;
    }
    Ok(())
}

fn backfill_off(args: &RunArgs) -> bool {
    args.source.backfill.is_some_and(|d| d.is_zero())
}

/// The report and insights written at the end of a run, from the statistics
/// and the reduced series counted as the bars flowed: memory bounded by the
/// number of companies at any size, and no reading the store back.
async fn finish_extras(args: &RunArgs, total: u64, run_stats: &StatsOfRun, store: &dyn Store) -> anyhow::Result<()> {
    if args.no_insights && args.no_report {
        return Ok(());
    }
    if total == 0 {
        println!("report     skipped: no bar was stored");
        return Ok(());
    }
    // Past the companies a run counts as the bars flow, the statistics are
    // read from the store's catalog, the distributions computed only for the
    // companies the report draws.
    let counted = |stats: Option<stockstream_analytics::MarketStats>, drawn: HashSet<String>| async move {
        match stats {
            Some(stats) => Ok::<_, anyhow::Error>(stats),
            None => Ok(stockstream_server::stats::catalog_summaries(store, &drawn).await?),
        }
    };
    let insights = if args.no_report {
        stockstream_analytics::insights(&counted(run_stats.take(), HashSet::new()).await?)
    } else {
        let (stats, series) = run_stats.take_with_series();
        let stats = counted(stats, series.iter().filter_map(|s| s.company().map(String::from)).collect()).await?;
        let companies = series.into_iter().filter_map(stockstream_charts::CompanySeries::reduced).collect();
        let started = Instant::now();
        let (html, charts, insights) = crate::report::build_of(companies, stats, &args.report_dir).await?;
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
