//! DynamoDB writes against boto3, and Kafka to DynamoDB against the original pipeline.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use stockstream_pipeline::{ConsumeOptions, Pace, Stats};
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use tokio::sync::watch;

use crate::{median, run_peer};

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

pub(crate) async fn dynamodb(args: DynamoBenchArgs) -> anyhow::Result<()> {
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
