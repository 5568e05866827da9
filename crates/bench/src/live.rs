//! Live latencies: a bar or tick to its server-sent event, embedded and over Kafka.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use stockstream_pipeline::{embedded as run_embedded, AnalyticsStage, ConsumeOptions, Pace, Stats};
use stockstream_server::Hub;
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use stockstream_store::SqliteStore;
use tokio::sync::watch;

use crate::analytics;

#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// Bars per second the producer sends.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 50_000)]
    pub rows: u64,
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

pub(crate) async fn serve(args: ServeBenchArgs) -> anyhow::Result<()> {
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

pub(crate) async fn ticks(args: TicksBenchArgs) -> anyhow::Result<()> {
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

pub(crate) async fn follow(args: FollowBenchArgs) -> anyhow::Result<()> {
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
pub(crate) async fn serve_in_process(
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
pub(crate) fn sse_client(
    addr: String,
    kind: &'static str,
    expect: usize,
) -> std::thread::JoinHandle<anyhow::Result<Vec<f64>>> {
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
pub(crate) async fn joined(client: std::thread::JoinHandle<anyhow::Result<Vec<f64>>>) -> anyhow::Result<Vec<f64>> {
    tokio::task::spawn_blocking(move || client.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
}
