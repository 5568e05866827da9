//! `produce --max` and a whole `produce` process against the confluent-kafka peer.

use std::time::Instant;

use clap::Args;
use stockstream_pipeline::{Pace, Stats};
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use tokio::sync::watch;

use crate::{median, run_peer};

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

pub(crate) async fn kafka(args: KafkaBenchArgs) -> anyhow::Result<()> {
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
pub(crate) fn small_produce(
    args: &KafkaBenchArgs,
    lines: &std::path::Path,
    peer: &std::path::Path,
) -> anyhow::Result<()> {
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
