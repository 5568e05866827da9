//! `stockstream-bench`: throughput and latency of stockstream's paths and of
//! their peers, measured side by side in one run so that the ratio survives a
//! noisy machine. It drives the same components the `stockstream` binary wires.

use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use stockstream_pipeline::{AnalyticsStage, StoredAlerts};
use stockstream_server::Hub;
use stockstream_store::SqliteStore;

mod backfill;
mod dynamodb;
mod embedded;
mod files;
mod indicators;
mod kafka;
mod live;
mod routes;
mod window;

use backfill::BackfillBenchArgs;
use dynamodb::DynamoBenchArgs;
use embedded::EmbeddedArgs;
use files::FileBenchArgs;
use indicators::IndicatorBenchArgs;
use kafka::KafkaBenchArgs;
use live::{FollowBenchArgs, ServeBenchArgs, TicksBenchArgs};
use routes::RoutesBenchArgs;
use window::WindowBenchArgs;

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
pub(crate) fn analytics(hub: Arc<Hub>, store: Arc<SqliteStore>) -> Option<Arc<AnalyticsStage>> {
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
    /// `stockstream serve`'s page-view routes over 200,000 hourly bars in
    /// SQLite and DynamoDB, whole processes, beside the statistics
    /// recomputed over every bar.
    Routes(RoutesBenchArgs),
    /// A live feed's start with 5 days of history from a local chart API,
    /// whole process, beside a plain script fetching and storing the same bars.
    Backfill(BackfillBenchArgs),
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        Target::Embedded(a) => embedded::embedded(a).await,
        Target::Kafka(a) => kafka::kafka(a).await,
        Target::Dynamodb(a) => dynamodb::dynamodb(a).await,
        Target::Serve(a) => live::serve(a).await,
        Target::Indicators(a) => indicators::indicators(a),
        Target::Window(a) => window::window(a),
        Target::Ticks(a) => live::ticks(a).await,
        Target::Follow(a) => live::follow(a).await,
        Target::IndicatorsFile(a) => files::indicators_file(a),
        Target::RunFile(a) => files::run_file(a).await,
        Target::Routes(a) => routes::routes(a).await,
        Target::Backfill(a) => backfill::backfill(a).await,
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs a peer script and reads `name=value` from its last line.
pub(crate) fn run_peer(script: &std::path::Path, args: &[&str], field: &str) -> anyhow::Result<f64> {
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

/// Runs a command to its end (its standard output to `stdout` or nowhere):
/// seconds and peak resident megabytes of that process.
pub(crate) fn whole_process(
    command: &mut std::process::Command,
    stdout: Option<&std::path::Path>,
) -> anyhow::Result<(f64, f64)> {
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
