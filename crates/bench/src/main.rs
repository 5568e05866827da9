//! `stockstream-bench`: throughput and latency of stockstream's paths and of
//! their peers, measured side by side in one run so that the ratio survives a
//! noisy machine. It drives the same components the `stockstream` binary wires.

use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use stockstream_pipeline::{embedded as run_embedded, AnalyticsStage, ConsumeOptions, Pace, Stats, StoredAlerts};
use stockstream_server::Hub;
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use stockstream_store::{SqliteStore, Store};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(name = "stockstream-bench", about = "stockstream beside its peers, in one run")]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: Target,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench(BenchArgs::parse()).await
}

/// The analytics stage as `run` wires it: the server's event hub subscribed,
/// and every alert kept in the store.
fn analytics(hub: Arc<Hub>, store: Arc<SqliteStore>) -> Option<Arc<AnalyticsStage>> {
    Some(Arc::new(AnalyticsStage::new(vec![hub, Arc::new(StoredAlerts(store))])))
}

#[derive(Subcommand, Debug)]
pub enum Target {
    /// Generated bars → in-process bus → SQLite, against a plain batched SQLite
    /// insert of the same rows.
    Embedded(EmbeddedArgs),
    /// `produce --max` against the confluent-kafka peer, the same JSON lines to the
    /// same broker, alternating runs.
    Kafka(KafkaBenchArgs),
    /// DynamoDB: the write path against boto3 BatchWriteItem with threads, and the
    /// whole pipeline CSV → Kafka → DynamoDB against the original project's
    /// approach (kafka-python, one put_item per message).
    Dynamodb(DynamoBenchArgs),
    /// Latency from a bar entering the bus to its server-sent event reaching a
    /// client, at a steady rate.
    Serve(ServeBenchArgs),
    /// Batch indicators over 10M closes against TA-Lib's C functions (through the
    /// ta-lib wheel) on the same closes.
    Indicators(IndicatorBenchArgs),
    /// The windowing stage over synthetic ticks of 7 symbols held in memory, one
    /// core, against pandas grouping the same ticks into one-minute bars.
    Window(WindowBenchArgs),
    /// Live ticks at a steady rate through the embedded pipeline as `run --bar
    /// --serve` wires it: latency from a tick entering the bus to its forming
    /// bar's server-sent event at a client, and from the tick that closes a bar
    /// to that bar in SQLite.
    Ticks(TicksBenchArgs),
    /// Ingestion to screen on the distributed path, whole processes:
    /// `stockstream produce` → Kafka → `stockstream serve --brokers` following
    /// the topic → a client of its event stream, at each rate.
    Follow(FollowBenchArgs),
    /// `stockstream indicators --input` of a CSV of one-minute bars, whole
    /// process (time and peak memory), beside pandas + TA-Lib + `to_csv` on the
    /// same file.
    IndicatorsFile(FileBenchArgs),
    /// `stockstream run --input` of a CSV of one-minute bars into SQLite, whole
    /// process, against pandas + sqlite3 on the same file.
    RunFile(FileBenchArgs),
}

#[derive(Args, Debug)]
pub struct FileBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Runs of each side, alternating; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The peer script (default: the one beside the benchmarked crate).
    #[arg(long)]
    pub peer: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct FollowBenchArgs {
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Bars per second, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub rates: Vec<f64>,
    /// Seconds of bars per run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Args, Debug)]
pub struct TicksBenchArgs {
    /// Ticks per second, 7 symbols together.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 100_000)]
    pub ticks: u64,
    /// Bar length.
    #[arg(long, default_value = "1s")]
    pub bar: stockstream_window::BarLength,
}

#[derive(Args, Debug)]
pub struct WindowBenchArgs {
    #[arg(long, default_value_t = 3_000_000)]
    pub ticks: usize,
    /// Runs of each; the best is kept.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    #[arg(long, default_value = "crates/bench/peers/window_pandas.py")]
    pub peer: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct IndicatorBenchArgs {
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: usize,
    /// Runs of each; the best is kept.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    #[arg(long, default_value = "crates/analytics/benches/talib_peer.py")]
    pub peer: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// Bars per second the producer sends.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 50_000)]
    pub rows: u64,
}

#[derive(Args, Debug)]
pub struct DynamoBenchArgs {
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub dynamodb_endpoint: String,
    /// Bars for stockstream's runs (and the write-path peer).
    #[arg(long, default_value_t = 50_000)]
    pub rows: u64,
    /// Bars for the original project's pipeline (it is slow: about 300 bars/s).
    #[arg(long, default_value_t = 10_000)]
    pub peer_rows: u64,
    /// boto3 peer threads.
    #[arg(long, default_value_t = 16)]
    pub threads: usize,
    /// stockstream's BatchWriteItem requests in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Rounds of the write-path comparison; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Skip the end-to-end part (write path only).
    #[arg(long)]
    pub write_only: bool,
    /// Folder holding ddb_batch_peer.py and seed_pipeline.py.
    #[arg(long, env = "STOCKSTREAM_PEERS")]
    pub peers: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct KafkaBenchArgs {
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Folder holding the peer script kafka_produce_peer.py (confluent-kafka producer).
    #[arg(long, env = "STOCKSTREAM_PEERS")]
    pub peers: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct EmbeddedArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Bar interval of the generated data (intraday keeps dates realistic at high row counts).
    #[arg(long, default_value = "1m")]
    pub interval: Interval,
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Rounds, alternating pipeline and plain insert; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        Target::Embedded(a) => embedded(a).await,
        Target::Kafka(a) => kafka(a).await,
        Target::Dynamodb(a) => dynamodb(a).await,
        Target::Serve(a) => serve(a).await,
        Target::Indicators(a) => indicators(a),
        Target::Window(a) => window(a),
        Target::Ticks(a) => ticks(a).await,
        Target::Follow(a) => follow(a).await,
        Target::IndicatorsFile(a) => indicators_file(a),
        Target::RunFile(a) => run_file(a).await,
    }
}

async fn embedded(args: EmbeddedArgs) -> anyhow::Result<()> {
    let config = SyntheticConfig { rows: Some(args.rows), interval: args.interval, ..Default::default() };
    let dir = tempfile::tempdir()?;
    let bars: Arc<Vec<stockstream_core::Bar>> =
        Arc::new(Synthetic::new(config.clone()).map_err(anyhow::Error::msg)?.collect());
    let (mut pipeline, mut plain) = (Vec::new(), Vec::new());
    for round in 0..args.repeat.max(1) {
        pipeline
            .push(embedded_pipeline(&config, &dir.path().join(format!("pipeline{round}.db")), args.batch_size).await?);
        plain.push(plain_insert(bars.clone(), &dir.path().join(format!("plain{round}.db")), args.batch_size).await?);
        println!(
            "round {}: pipeline {:.3} s, plain insert {:.3} s, ratio {:.2}",
            round + 1,
            pipeline[round],
            plain[round],
            plain[round] / pipeline[round]
        );
    }
    let (pipeline_secs, plain_secs) = (median(pipeline), median(plain));
    let rate = |secs: f64| args.rows as f64 / secs;
    println!(
        "bench embedded: {} bars, interval {}, batch {}, median of {}",
        args.rows, args.interval, args.batch_size, args.repeat
    );
    println!(
        "pipeline (generate → bus → decode/validate/indicators → SQLite)  {pipeline_secs:>8.3} s  {:>10.0} bars/s",
        rate(pipeline_secs)
    );
    println!(
        "plain batched SQLite insert                                     {plain_secs:>8.3} s  {:>10.0} bars/s",
        rate(plain_secs)
    );
    println!(
        "ratio pipeline/plain                                            {:>8.2}  (target >= 0.50)",
        plain_secs / pipeline_secs
    );
    Ok(())
}

/// The whole pipeline, as `run` does it (indicators and alerts included).
async fn embedded_pipeline(config: &SyntheticConfig, db: &std::path::Path, batch_size: usize) -> anyhow::Result<f64> {
    let store = Arc::new(SqliteStore::open(db)?);
    let stats = Arc::new(Stats::default());
    let source = Box::new(Synthetic::new(config.clone()).map_err(anyhow::Error::msg)?);
    let options =
        ConsumeOptions { batch_size, analytics: analytics(Arc::default(), store.clone()), ..Default::default() };
    let (_keep_open, stop) = watch::channel(false);
    let started = Instant::now();
    run_embedded(source, store.clone(), store, stats.clone(), &options, Pace::Max, stop).await?;
    let secs = started.elapsed().as_secs_f64();
    let rows = config.rows.unwrap_or_default();
    anyhow::ensure!(Stats::get(&stats.stored) == rows, "pipeline stored {} of {rows} bars", Stats::get(&stats.stored));
    Ok(secs)
}

/// The baseline: the same bars, already in memory, in a plain prepared INSERT
/// inside transactions of the same size, into the store's own schema. No bus,
/// no codec, no validation.
async fn plain_insert(
    bars: Arc<Vec<stockstream_core::Bar>>,
    db: &std::path::Path,
    batch_size: usize,
) -> anyhow::Result<f64> {
    let path = db.to_path_buf();
    drop(SqliteStore::open(&path)?);
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let mut conn = rusqlite::Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let started = Instant::now();
        for chunk in bars.chunks(batch_size) {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO bars (company, date, symbol, open, high, low, close, volume)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for b in chunk {
                    st.execute(rusqlite::params![
                        b.company,
                        b.ts.to_string(),
                        b.symbol,
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume
                    ])?;
                }
            }
            tx.commit()?;
        }
        Ok(started.elapsed().as_secs_f64())
    })
    .await?
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs a peer script and reads `name=value` from its last line.
fn run_peer(script: &std::path::Path, args: &[&str], field: &str) -> anyhow::Result<f64> {
    let out = std::process::Command::new("python3").arg(script).args(args).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "peer {} failed: {}{}",
        script.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("peer printed no {field}: {stdout}"))
}

async fn kafka(args: KafkaBenchArgs) -> anyhow::Result<()> {
    use stockstream_bus::{ensure_topic, KafkaDeadLetters, KafkaProducer, KafkaSettings};
    let peer_script = args.peers.join("kafka_produce_peer.py");
    anyhow::ensure!(peer_script.is_file(), "peer script {} not found (--peers)", peer_script.display());
    let dir = tempfile::tempdir()?;
    let lines = dir.path().join("bars.jsonl");
    {
        use std::io::Write;
        let config = SyntheticConfig { rows: Some(args.rows), interval: Interval::Minute, ..Default::default() };
        let mut out = std::io::BufWriter::new(std::fs::File::create(&lines)?);
        let mut buf = Vec::with_capacity(256);
        for bar in Synthetic::new(config).map_err(anyhow::Error::msg)? {
            buf.clear();
            stockstream_core::encode_into(&bar, &mut buf);
            buf.push(b'\n');
            out.write_all(&buf)?;
        }
        out.flush()?;
    }
    let settings = KafkaSettings::new(args.brokers.clone());
    let run_id = std::process::id();
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for i in 0..args.repeat {
        let (our_topic, peer_topic) = (format!("bench-ours-{run_id}-{i}"), format!("bench-peer-{run_id}-{i}"));
        for t in [&our_topic, &peer_topic, &format!("{our_topic}.dlq")] {
            ensure_topic(&settings, t, args.partitions).await?;
        }
        let rate = run_peer(&peer_script, &[lines.to_str().unwrap(), &args.brokers, &peer_topic], "messages_per_s")?;
        peer.push(rate);

        let producer = KafkaProducer::new(&settings, &our_topic)?;
        let dead = KafkaDeadLetters::new(&settings, &format!("{our_topic}.dlq"))?;
        let stats = Stats::default();
        let source = Box::new(stockstream_sources::JsonLinesSource::open(&lines)?);
        let (_keep, stop) = watch::channel(false);
        let started = Instant::now();
        stockstream_pipeline::produce(source, &producer, &dead, &stats, Pace::Max, Default::default(), stop).await?;
        let secs = started.elapsed().as_secs_f64();
        let (delivered, failed) = producer.delivery_counts();
        anyhow::ensure!(delivered == args.rows && failed == 0, "delivered {delivered}, failed {failed}");
        ours.push(args.rows as f64 / secs);
        println!("run {}: stockstream {:>9.0} msgs/s   confluent-kafka peer {:>9.0} msgs/s", i + 1, ours[i], peer[i]);
    }
    let (o, p) = (median(ours), median(peer));
    println!(
        "bench kafka: {} JSON lines to {} ({} partitions), median of {}",
        args.rows, args.brokers, args.partitions, args.repeat
    );
    println!("stockstream produce --max   {o:>10.0} msgs/s");
    println!("confluent-kafka peer        {p:>10.0} msgs/s");
    println!("ratio                       {:>10.2}  (target >= 1.5)", o / p);
    small_produce(&args, &lines, &peer_script)
}

/// A command's fixed cost: `produce` of 100 records, whole process (start,
/// topic check, producer id, send, flush, exit), beside the peer script doing
/// the same, whole process too.
fn small_produce(args: &KafkaBenchArgs, lines: &std::path::Path, peer: &std::path::Path) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let product = std::env::current_exe()?.with_file_name("stockstream");
    anyhow::ensure!(product.is_file(), "{} not built (cargo build --release -p stockstream)", product.display());
    let small = lines.with_file_name("small.jsonl");
    let text = std::fs::read_to_string(lines)?;
    std::fs::write(&small, text.lines().take(100).map(|l| format!("{l}\n")).collect::<String>())?;
    let topic = format!("bench-small-{}", std::process::id());
    let timed = |command: &mut Command| -> anyhow::Result<f64> {
        let started = Instant::now();
        let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        anyhow::ensure!(status.success(), "{command:?} failed");
        Ok(started.elapsed().as_secs_f64())
    };
    // The first run creates the topics; then each side runs `repeat` × 3 times, in turn.
    let ours_cmd = || {
        let mut c = Command::new(&product);
        c.args(["produce", "--brokers", &args.brokers, "--topic", &topic, "--input", small.to_str().unwrap()]);
        c.env("STOCKSTREAM_LOG", "warn");
        c
    };
    timed(&mut ours_cmd())?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.repeat * 3 {
        ours.push(timed(&mut ours_cmd())?);
        theirs.push(timed(Command::new("python3").arg(peer).args([small.to_str().unwrap(), &args.brokers, &topic]))?);
    }
    let (o, p) = (median(ours), median(theirs));
    println!("bench produce of 100 records, whole process, median of {}:", args.repeat * 3);
    println!("stockstream produce         {o:>10.3} s  (target < 0.3 s)");
    println!("confluent-kafka peer script {p:>10.3} s");
    println!("ratio (peer / ours)         {:>10.2}", p / o);
    Ok(())
}

async fn dynamodb(args: DynamoBenchArgs) -> anyhow::Result<()> {
    use stockstream_store::{DynamoSettings, DynamoStore, Store};
    let dir = tempfile::tempdir()?;
    let run_id = std::process::id();
    let config = SyntheticConfig { rows: Some(args.rows), interval: Interval::Minute, ..Default::default() };
    let bars: Vec<_> = Synthetic::new(config).map_err(anyhow::Error::msg)?.collect();
    let write_csv = |path: &std::path::Path, bars: &[stockstream_core::Bar]| -> anyhow::Result<()> {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(file, "Date,Open,High,Low,Close,Volume,Company Name")?;
        for b in bars {
            writeln!(file, "{},{},{},{},{},{},{}", b.ts, b.open, b.high, b.low, b.close, b.volume, b.company)?;
        }
        Ok(file.flush()?)
    };
    let (all_csv, peer_csv) = (dir.path().join("all.csv"), dir.path().join("peer.csv"));
    write_csv(&all_csv, &bars)?;
    write_csv(&peer_csv, &bars[..(args.peer_rows as usize).min(bars.len())])?;
    let settings = |table: String| DynamoSettings {
        table,
        endpoint: Some(args.dynamodb_endpoint.clone()),
        region: Some("us-east-1".into()),
        concurrency: args.concurrency,
    };
    let batch = ConsumeOptions::default().batch_size;

    // 1. The write path alone: the same bars, already in memory. DynamoDB Local
    // is a JVM: warm it up first, then alternate the two sides.
    let warm = DynamoStore::connect(&settings(format!("BenchWarm{run_id}"))).await?;
    for chunk in bars.chunks(batch) {
        warm.upsert(chunk.to_vec().into()).await?;
    }
    let (mut ours, mut peers) = (Vec::new(), Vec::new());
    for round in 0..args.repeat {
        let store = DynamoStore::connect(&settings(format!("BenchWrite{run_id}x{round}"))).await?;
        let started = Instant::now();
        for chunk in bars.chunks(batch) {
            store.upsert(chunk.to_vec().into()).await?;
        }
        ours.push(args.rows as f64 / started.elapsed().as_secs_f64());
        anyhow::ensure!(store.count().await? == args.rows, "write path lost bars");
        peers.push(run_peer(
            &args.peers.join("ddb_batch_peer.py"),
            &[
                all_csv.to_str().unwrap(),
                &args.dynamodb_endpoint,
                &format!("BenchWritePeer{run_id}x{round}"),
                &args.threads.to_string(),
            ],
            "items_per_s",
        )?);
        println!(
            "write round {}: stockstream {:.0} items/s, boto3 peer {:.0} items/s",
            round + 1,
            ours[round],
            peers[round]
        );
    }
    let (ours_write, peer_write) = (median(ours), median(peers));
    println!(
        "write path, {} bars: stockstream {ours_write:.0} items/s ({} in flight), boto3 peer {peer_write:.0} items/s ({} threads), ratio {:.2}",
        args.rows, args.concurrency, args.threads, ours_write / peer_write
    );
    if args.write_only {
        return Ok(());
    }
    // 2. End to end: CSV → Kafka → DynamoDB.
    use stockstream_bus::{ensure_topic, KafkaConsumer, KafkaDeadLetters, KafkaProducer, KafkaSettings, OffsetReset};
    let kafka = KafkaSettings::new(args.brokers.clone());
    let topic = format!("bench-e2e-{run_id}");
    for t in [topic.clone(), format!("{topic}.dlq")] {
        ensure_topic(&kafka, &t, 6).await?;
    }
    let e2e_store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(DynamoStore::connect(&settings(format!("BenchE2E{run_id}"))).await?);
    let stats = Arc::new(Stats::default());
    let source = Box::new(stockstream_sources::CsvSource::open(&all_csv)?);
    let producer = Box::new(KafkaProducer::new(&kafka, &topic)?);
    let mut consumer = KafkaConsumer::new(&kafka, &topic, "bench", OffsetReset::Earliest)?;
    let dead = Arc::new(KafkaDeadLetters::new(&kafka, &format!("{topic}.dlq"))?);
    let (_keep, stop) = watch::channel(false);
    let started = Instant::now();
    let (store, options) = (e2e_store.clone(), ConsumeOptions::default());
    stockstream_pipeline::over_bus(source, producer, &mut consumer, store, dead, stats, options, Pace::Max, stop)
        .await?;
    let ours_e2e = args.rows as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(e2e_store.count().await? == args.rows, "pipeline lost bars");

    let peer_topic = format!("bench-original-{run_id}");
    ensure_topic(&kafka, &peer_topic, 1).await?;
    let peer_e2e = run_peer(
        &args.peers.join("seed_pipeline.py"),
        &[
            peer_csv.to_str().unwrap(),
            &args.brokers,
            &args.dynamodb_endpoint,
            &peer_topic,
            &format!("BenchOriginal{run_id}"),
        ],
        "rows_per_s",
    )?;

    println!("bench dynamodb: DynamoDB at {}, Kafka at {}", args.dynamodb_endpoint, args.brokers);
    println!("write path, {} bars:", args.rows);
    println!("  stockstream DynamoStore ({} requests in flight)    {ours_write:>9.0} items/s", args.concurrency);
    println!("  boto3 BatchWriteItem, {} threads                   {peer_write:>9.0} items/s", args.threads);
    println!("  ratio                                               {:>9.2}  (target >= 2)", ours_write / peer_write);
    println!("end to end, CSV -> Kafka -> DynamoDB:");
    println!("  stockstream run --bus kafka --store dynamodb ({} bars) {ours_e2e:>9.0} bars/s", args.rows);
    println!("  original pipeline, kafka-python + put_item ({} bars)  {peer_e2e:>9.0} bars/s", args.peer_rows);
    println!("  ratio                                               {:>9.2}  (target >= 25)", ours_e2e / peer_e2e);
    Ok(())
}

async fn serve(args: ServeBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("serve.db"))?);
    let stats = Arc::new(Stats::default());
    let hub = Arc::new(Hub::default());
    let analytics = analytics(hub.clone(), store.clone());
    let (stop_tx, stop) = watch::channel(false);
    let (addr, server) = serve_in_process(store.clone(), hub.clone(), analytics.clone(), stop.clone()).await?;

    // The client: an HTTP subscriber to /api/stream, timing each bar event.
    let rows = args.rows as usize;
    let client = sse_client(addr.to_string(), "bar", rows);
    while hub.subscribers() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let config = SyntheticConfig { rows: Some(args.rows), interval: Interval::Minute, ..Default::default() };
    let source = Box::new(Synthetic::new(config).map_err(anyhow::Error::msg)?);
    let options = ConsumeOptions { analytics, ..Default::default() };
    let started = Instant::now();
    run_embedded(source, store.clone(), store, stats.clone(), &options, Pace::Rate(args.rate), stop).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = joined(client).await?;
    let _ = stop_tx.send(true);
    server.await??;
    anyhow::ensure!(latencies.len() == rows, "the client saw {} of {rows} bars", latencies.len());
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "bench serve: {rows} bars at {:.0} bars/s (achieved {:.0}), bus → SSE client",
        args.rate,
        rows as f64 / elapsed
    );
    println!(
        "latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms  (target p99 <= 2 ms)",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    let e = &hub.bus_to_event;
    println!(
        "  of which bus -> event handed to the server: p50 {:.3} ms, p99 {:.3} ms (quantiles within 9%)",
        e.quantile(0.5).unwrap_or(f64::NAN) * 1000.0,
        e.quantile(0.99).unwrap_or(f64::NAN) * 1000.0
    );
    Ok(())
}

async fn ticks(args: TicksBenchArgs) -> anyhow::Result<()> {
    use stockstream_sources::{SyntheticTickSource, TickConfig};
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("ticks.db"))?.for_interval(&args.bar.name()).await?);
    let stats = Arc::new(Stats::default());
    let hub = Arc::new(Hub::default());
    let analytics = analytics(hub.clone(), store.clone());
    let (stop_tx, stop) = watch::channel(false);
    let (addr, server) = serve_in_process(store.clone(), hub.clone(), analytics.clone(), stop.clone()).await?;

    // The client: an HTTP subscriber to /api/stream, timing each forming bar.
    let n = args.ticks as usize;
    let client = sse_client(addr.to_string(), "forming", n);
    while hub.subscribers() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let config = TickConfig {
        symbols: ["NVDA", "TSLA", "META", "AMZN", "AAPL", "NFLX", "GOOGL"].map(String::from).to_vec(),
        rate: args.rate,
        start_ms: 1_704_205_800_000,
        seed: 42,
    };
    let source = Box::new(SyntheticTickSource::new(config, Some(args.ticks)).map_err(anyhow::Error::msg)?);
    let mut options = ConsumeOptions { analytics, ..Default::default() };
    options.ticks = Some(stockstream_pipeline::TickOptions::new(args.bar));
    let started = Instant::now();
    run_embedded(source, store.clone(), store.clone(), stats.clone(), &options, Pace::Rate(args.rate), stop).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = joined(client).await?;
    let _ = stop_tx.send(true);
    server.await??;
    anyhow::ensure!(
        latencies.len() as f64 >= 0.99 * n as f64,
        "the client saw {} forming bars of {n} ticks",
        latencies.len()
    );
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let stored = stockstream_store::Store::count(store.as_ref()).await?;
    println!(
        "bench ticks: {n} ticks of 7 symbols at {:.0} ticks/s (achieved {:.0}), {} bars, {stored} stored",
        args.rate,
        n as f64 / elapsed,
        args.bar.name()
    );
    println!(
        "tick -> SSE forming event at a client: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} events (target p99 <= 2 ms)",
        q(0.5),
        q(0.99),
        q(1.0),
        latencies.len()
    );
    let e = &hub.tick_to_event;
    println!(
        "  of which tick -> event handed to the server: p50 {:.3} ms, p99 {:.3} ms (quantiles within 9%)",
        e.quantile(0.5).unwrap_or(f64::NAN) * 1000.0,
        e.quantile(0.99).unwrap_or(f64::NAN) * 1000.0
    );
    let h = &stats.tick_to_store_seconds;
    let ms = |p: f64| h.quantile(p).map_or(f64::NAN, |s| s * 1000.0);
    println!(
        "tick closing a bar -> bar in SQLite: p50 {:.1} ms, p99 {:.1} ms over {} bars (batches every {} ms; quantiles within 9%)",
        ms(0.5),
        ms(0.99),
        h.count(),
        options.flush_interval.as_millis()
    );
    Ok(())
}

async fn follow(args: FollowBenchArgs) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let product = std::env::current_exe()?.with_file_name("stockstream");
    anyhow::ensure!(product.is_file(), "{} not built (cargo build --release -p stockstream)", product.display());
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("follow.db");
    SqliteStore::open(&db)?;
    let settings = stockstream_bus::KafkaSettings::new(args.brokers.clone());
    println!("bench follow: produce -> Kafka ({}) -> serve --brokers -> SSE client, whole processes", args.brokers);
    for rate in &args.rates {
        let topic = format!("bench-follow-{}-{rate}", std::process::id());
        let names = [topic.clone(), format!("{topic}.ticks"), format!("{topic}.alerts"), format!("{topic}.dlq")];
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        stockstream_bus::ensure_topics(&settings, &refs, 6).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let bind = format!("127.0.0.1:{port}");
        let mut serve = Command::new(&product)
            .args([
                "serve",
                "--bind",
                &bind,
                "--db",
                db.to_str().unwrap(),
                "--brokers",
                &args.brokers,
                "--topic",
                &topic,
            ])
            .env("STOCKSTREAM_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(&bind).is_err() {
            anyhow::ensure!(started.elapsed().as_secs() < 30, "serve did not listen");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The end offsets are resolved on the first fetch.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let rows = (rate * args.seconds as f64) as usize;
        let client = sse_client(bind.clone(), "bar", rows);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let produced = Command::new(&product)
            .args(["produce", "--brokers", &args.brokers, "--topic", &topic, "--rate", &rate.to_string()])
            .args(["--rows", &rows.to_string(), "--interval", "1m"])
            .env("STOCKSTREAM_LOG", "warn")
            .stdout(Stdio::null())
            .status()?;
        let latencies = joined(client).await?;
        let _ = serve.kill();
        let _ = serve.wait();
        anyhow::ensure!(produced.success(), "produce failed");
        anyhow::ensure!(latencies.len() == rows, "the client saw {} of {rows} bars", latencies.len());
        let mut l = latencies;
        l.sort_by(f64::total_cmp);
        let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
        println!(
            "{rate:>7.0} bars/s: p50 {:6.1} ms, p99 {:6.1} ms, max {:6.1} ms over {} bars (target p99 <= 50 ms at 10,000 bars/s)",
            q(0.5),
            q(0.99),
            q(1.0),
            l.len()
        );
    }
    Ok(())
}

/// The server as `run --serve` starts it, over `store`, until `stop` turns true.
async fn serve_in_process(
    store: Arc<SqliteStore>,
    hub: Arc<Hub>,
    analytics: Option<Arc<AnalyticsStage>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = stockstream_server::AppState::new(store, hub, analytics.expect("a stage"), Arc::new(String::new));
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    Ok((addr, tokio::spawn(stockstream_server::serve(listener, state, shutdown))))
}

/// A client of `/api/stream` at `addr` on a thread of its own, as a browser
/// on another host would be (not sharing the pipeline's workers, and light:
/// it reads only each event's send time). Returns, for each event of `kind`,
/// the milliseconds from its send time to the arrival of the chunk carrying
/// it; it stops after `expect` of them or 2 s without data.
fn sse_client(addr: String, kind: &'static str, expect: usize) -> std::thread::JoinHandle<anyhow::Result<Vec<f64>>> {
    use futures_util::StreamExt;
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async move {
            let response = reqwest::get(format!("http://{addr}/api/stream")).await?;
            let mut body = response.bytes_stream();
            let (mut buffer, mut latencies) = (String::new(), Vec::with_capacity(expect));
            let prefix = format!("event: {kind}\n");
            let wait = std::time::Duration::from_secs(2);
            while latencies.len() < expect {
                let Ok(Some(Ok(chunk))) = tokio::time::timeout(wait, body.next()).await else { break };
                let arrived = stockstream_core::now_micros();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                let mut start = 0;
                while let Some(end) = buffer[start..].find("\n\n") {
                    let block = &buffer[start..start + end];
                    start += end + 2;
                    if !block.starts_with(&prefix) {
                        continue;
                    }
                    let sent = block.split("\"sent_at_micros\":").nth(1).and_then(|rest| {
                        rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<i64>().ok())
                    });
                    if let Some(sent) = sent {
                        latencies.push((arrived - sent) as f64 / 1000.0);
                    }
                }
                buffer.drain(..start);
            }
            anyhow::Ok(latencies)
        })
    })
}

/// Waits for a client thread without blocking the runtime.
async fn joined(client: std::thread::JoinHandle<anyhow::Result<Vec<f64>>>) -> anyhow::Result<Vec<f64>> {
    tokio::task::spawn_blocking(move || client.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
}

fn indicators_file(args: FileBenchArgs) -> anyhow::Result<()> {
    let peer = args.peer.clone().unwrap_or_else(|| "crates/analytics/benches/indicators_file_peer.py".into());
    file_versus_peer(
        &args,
        "indicators --input",
        "CSV out",
        ("stockstream indicators", 8.0),
        ("pandas + TA-Lib + to_csv", &peer),
        |product, input, out| {
            let mut command = std::process::Command::new(product);
            command.args(["indicators", "--input", input]);
            (command, Some(out.with_extension("csv")))
        },
    )?;
    Ok(())
}

async fn run_file(args: FileBenchArgs) -> anyhow::Result<()> {
    let peer = args.peer.clone().unwrap_or_else(|| "crates/pipeline/benches/run_file_peer.py".into());
    let (_, peer_secs) = file_versus_peer(
        &args,
        "run --input",
        "into SQLite, summary, insights and report included",
        ("stockstream run", 2.0),
        ("pandas + sqlite3 executemany", &peer),
        |product, input, out| {
            let db = out.with_extension("db");
            let _ = std::fs::remove_file(&db);
            let mut command = std::process::Command::new(product);
            let report = out.with_extension("report");
            command.args([
                "run",
                "--input",
                input,
                "--db",
                db.to_str().unwrap(),
                "--report-dir",
                report.to_str().unwrap(),
            ]);
            (command, None)
        },
    )?;
    // The floor under any pipeline that stores these bars: SQLite's upserts of
    // as many bars, already in memory, through the store, nothing else running.
    let config = SyntheticConfig { rows: Some(args.rows), interval: Interval::Minute, ..Default::default() };
    let bars: Vec<stockstream_core::Bar> = Synthetic::new(config).map_err(anyhow::Error::msg)?.collect();
    let mut alone = Vec::new();
    for _ in 0..args.repeat {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("alone.db"))?;
        let started = Instant::now();
        for chunk in bars.chunks(ConsumeOptions::default().batch_size) {
            store.upsert(chunk.to_vec().into()).await?;
        }
        alone.push(started.elapsed().as_secs_f64());
    }
    let alone = median(alone);
    println!(
        "{:<30} {alone:>8.2} s  (SQLite upserts of the bars alone, in memory: at most {:.2}x the peer for any pipeline storing them)",
        "store writes alone",
        peer_secs / alone
    );
    Ok(())
}

/// A command of the product over a generated file of one-minute bars, whole
/// process, against a peer script `peer IN OUT` on the same file: runs
/// alternate, the medians of time and peak memory are reported; returns the
/// medians of time, ours and the peer's.
fn file_versus_peer(
    args: &FileBenchArgs,
    what: &str,
    detail: &str,
    (ours_name, target): (&str, f64),
    (peer_name, peer): (&str, &std::path::Path),
    ours: impl Fn(&std::path::Path, &str, &std::path::Path) -> (std::process::Command, Option<std::path::PathBuf>),
) -> anyhow::Result<(f64, f64)> {
    let product = std::env::current_exe()?.with_file_name("stockstream");
    anyhow::ensure!(product.is_file(), "{} not built (cargo build --release -p stockstream)", product.display());
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("bars.csv");
    let rows = args.rows.to_string();
    let made = std::process::Command::new(&product)
        .args(["generate", "--rows", &rows, "--interval", "1m", "--out", input.to_str().unwrap()])
        .status()?;
    anyhow::ensure!(made.success(), "generate failed");
    let input = input.to_str().unwrap();
    let (ours_out, peer_out) = (dir.path().join("ours"), dir.path().join("peer.out"));
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..args.repeat {
        let (mut command, stdout) = ours(&product, input, &ours_out);
        command.env("STOCKSTREAM_LOG", "warn");
        let o = whole_process(&mut command, stdout.as_deref())?;
        let _ = std::fs::remove_file(&peer_out);
        let mut command = std::process::Command::new("python3");
        command.arg(peer).args([input, peer_out.to_str().unwrap()]);
        let t = whole_process(&mut command, None)?;
        println!(
            "run {}: stockstream {:.2} s, {:.0} MB peak   {peer_name} {:.2} s, {:.0} MB peak",
            i + 1,
            o.0,
            o.1,
            t.0,
            t.1
        );
        mine.push(o);
        theirs.push(t);
    }
    let median_of = |v: &[(f64, f64)], k: usize| median(v.iter().map(|r| if k == 0 { r.0 } else { r.1 }).collect());
    let (o, t) = (median_of(&mine, 0), median_of(&theirs, 0));
    println!("bench {what}: {} one-minute bars of 7 companies, {detail}, median of {}", args.rows, args.repeat);
    println!("{ours_name:<30} {o:>8.2} s  {:>5.0} MB peak (target < 100 MB)", median_of(&mine, 1));
    println!("{peer_name:<30} {t:>8.2} s  {:>5.0} MB peak", median_of(&theirs, 1));
    println!("{:<30} {:>8.2}x (target >= {target})", "ratio", t / o);
    Ok((o, t))
}

/// Runs a command to its end (its standard output to `stdout` or nowhere):
/// seconds and peak resident megabytes of that process.
fn whole_process(command: &mut std::process::Command, stdout: Option<&std::path::Path>) -> anyhow::Result<(f64, f64)> {
    use std::process::Stdio;
    let out = match stdout {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let child = command.stdout(out).stderr(Stdio::inherit()).spawn()?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; wait4 fills it for this child only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{command:?} failed");
    Ok((secs, usage.ru_maxrss as f64 / 1024.0))
}

fn indicators(args: IndicatorBenchArgs) -> anyhow::Result<()> {
    use stockstream_analytics::batch;
    let [close, high, low] = batch::test_series(args.rows);
    let best = |f: &dyn Fn() -> usize| {
        (0..args.repeat.max(1))
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let ours: Vec<(&str, f64)> = vec![
        ("sma30", best(&|| batch::sma(&close, 30).len())),
        ("ema26", best(&|| batch::ema(&close, 26).len())),
        ("rsi14", best(&|| batch::rsi(&close, 14).len())),
        ("macd", best(&|| batch::macd(&close, 12, 26, 9).0.len())),
        ("bbands20", best(&|| batch::bbands(&close, 20, 2.0).0.len())),
        ("atr14", best(&|| batch::atr(&high, &low, &close, 14).len())),
    ];
    let out = std::process::Command::new("python3")
        .arg(&args.peer)
        .args([args.rows.to_string(), args.repeat.to_string()])
        .output()?;
    anyhow::ensure!(out.status.success(), "TA-Lib peer failed: {}", String::from_utf8_lossy(&out.stderr));
    let peer: std::collections::HashMap<String, f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect();
    println!("bench indicators: {} closes, best of {}", args.rows, args.repeat);
    println!("{:<10} {:>12} {:>12} {:>18}", "indicator", "stockstream", "TA-Lib (C)", "speed vs TA-Lib");
    for (name, secs) in ours {
        let t = peer.get(name).copied().unwrap_or(f64::NAN);
        println!("{name:<10} {:>10.1} ms {:>10.1} ms {:>17.2}x", secs * 1e3, t * 1e3, t / secs);
    }
    Ok(())
}

fn window(args: WindowBenchArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use stockstream_window::{WindowConfig, Windows};
    let symbols = ["NVDA", "TSLA", "META", "AMZN", "AAPL", "NFLX", "GOOGL"].map(String::from).to_vec();
    let config = stockstream_sources::TickConfig { symbols, rate: 1000.0, start_ms: 1_704_205_800_000, seed: 42 };
    let ticks: Vec<_> =
        stockstream_sources::SyntheticTicks::new(config).map_err(anyhow::Error::msg)?.take(args.ticks).collect();
    let (mut best, mut bars) = (f64::INFINITY, 0);
    for _ in 0..args.repeat.max(1) {
        let started = Instant::now();
        let mut windows = Windows::new(WindowConfig::minutes());
        let mut out = Vec::new();
        for tick in &ticks {
            windows.push(tick, &mut out);
        }
        windows.flush(&mut out);
        best = best.min(started.elapsed().as_secs_f64());
        bars = std::hint::black_box(out).len();
    }
    let file = tempfile::NamedTempFile::new()?;
    let mut w = std::io::BufWriter::new(file.as_file());
    writeln!(w, "symbol,time_ms,price,size")?;
    for t in &ticks {
        writeln!(w, "{},{},{},{}", t.symbol, t.time_ms, t.price, t.size)?;
    }
    w.flush()?;
    drop(w);
    let path = file.path().display().to_string();
    let peer = run_peer(&args.peer, &[&path, &args.repeat.to_string()], "seconds")?;
    let n = args.ticks as f64;
    println!("bench window: {} ticks of 7 symbols into 1m bars ({bars} bars), best of {}", args.ticks, args.repeat);
    println!("stockstream  {:>8.1} M ticks/s", n / best / 1e6);
    println!("pandas       {:>8.1} M ticks/s  (groupby + Grouper(freq=1min) + agg)", n / peer / 1e6);
    println!("ratio        {:>8.2}x", peer / best);
    Ok(())
}
