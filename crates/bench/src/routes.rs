//! `serve`'s page-view routes over a large store, whole processes: bars
//! loaded by `stockstream run --input`, then `stockstream serve` over SQLite
//! and over DynamoDB, each route's first request and its median over a few
//! more, beside the same statistics recomputed over every bar (the ranged
//! path, which reads them all). DynamoDB's requests come from `/metrics`.

use std::time::{Duration, Instant};

use clap::Args;
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};

use crate::median;

#[derive(Args, Debug)]
pub struct RoutesBenchArgs {
    /// Bars of the 7 companies.
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Their length: hourly bars, or one-minute bars (`1m`), which adds the
    /// pages of hourly, daily and 5-minute bars made from them.
    #[arg(long, default_value = "1h", value_parser = ["1h", "1m"])]
    pub interval: String,
    /// DynamoDB Local (none: SQLite only).
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Requests of each route after the first; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
}

const ROUTES: [&str; 6] = [
    "/api/companies",
    "/api/latest",
    "/api/bars/NVIDIA?limit=1",
    "/api/indicators/NVIDIA?limit=200",
    "/api/stats",
    "/api/insights",
];

/// Pages of bars made from one-minute bars as they are read.
const ROLLUPS: [&str; 3] = [
    "/api/bars/NVIDIA?interval=1h&limit=500",
    "/api/bars/NVIDIA?interval=1d&limit=500",
    "/api/bars/NVIDIA?interval=5m&limit=500",
];

/// Statistics recomputed over every bar: a range that holds them all.
const RECOMPUTED: &str = "/api/insights?from=1900-01-01";

pub(crate) async fn routes(args: RoutesBenchArgs) -> anyhow::Result<()> {
    let product = std::env::current_exe()?.with_file_name("stockstream");
    anyhow::ensure!(product.is_file(), "{} not built (cargo build --release -p stockstream)", product.display());
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("bars.csv");
    {
        use std::io::Write;
        let interval = if args.interval == "1m" { Interval::Minute } else { Interval::Hour };
        let config = SyntheticConfig { rows: Some(args.rows), interval, ..Default::default() };
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(file, "Date,Open,High,Low,Close,Volume,Company Name")?;
        for b in Synthetic::new(config).map_err(anyhow::Error::msg)? {
            writeln!(file, "{},{},{},{},{},{},{}", b.ts, b.open, b.high, b.low, b.close, b.volume, b.company)?;
        }
        file.flush()?;
    }
    let db = dir.path().join("routes.db").display().to_string();
    let mut stores = vec![("SQLite", vec!["--db".to_string(), db])];
    if let Some(endpoint) = &args.dynamodb_endpoint {
        let table = format!("Routes{}", std::process::id());
        stores.push((
            "DynamoDB",
            ["--store", "dynamodb", "--dynamodb-endpoint", endpoint, "--region", "us-east-1", "--table", &table]
                .map(String::from)
                .to_vec(),
        ));
    }
    println!(
        "serve's routes over {} {} bars of 7 companies (first request; median of {} more)",
        args.rows, args.interval, args.repeat
    );
    for (name, store) in stores {
        let started = Instant::now();
        let status = std::process::Command::new(&product)
            .args(["run", "--input", csv.to_str().unwrap(), "--no-report", "--no-insights"])
            .args(&store)
            .env("STOCKSTREAM_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "run into {name} failed");
        println!("{name}: loaded in {:.1} s", started.elapsed().as_secs_f64());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let bind = format!("127.0.0.1:{port}");
        let mut server = std::process::Command::new(&product)
            .args(["serve", "--bind", &bind, "--interval", &args.interval])
            .args(&store)
            .env("STOCKSTREAM_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let up = Instant::now();
        while std::net::TcpStream::connect(&bind).is_err() {
            anyhow::ensure!(up.elapsed() < Duration::from_secs(60), "serve did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let client = reqwest::Client::new();
        let get = |path: String| {
            let client = client.clone();
            async move {
                let started = Instant::now();
                let response = client.get(path.clone()).send().await?;
                anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
                response.bytes().await?;
                Ok::<f64, anyhow::Error>(started.elapsed().as_secs_f64() * 1e3)
            }
        };
        let base = format!("http://{bind}");
        let metrics = || async { client.get(format!("{base}/metrics")).send().await?.text().await };
        // Past 200,000 bars the recomputed statistics are refused (413).
        let (rollups, recomputed) = match args.interval.as_str() {
            "1m" => (&ROLLUPS[..], None),
            _ => (&[][..], Some(&RECOMPUTED)),
        };
        for route in ROUTES.iter().chain(rollups).chain(recomputed) {
            let first = get(format!("{base}{route}")).await?;
            let mut again = Vec::new();
            for _ in 0..args.repeat {
                again.push(get(format!("{base}{route}")).await?);
            }
            let note = if *route == RECOMPUTED { "  (every bar read: the statistics recomputed)" } else { "" };
            println!("  {name:8} {route:36} first {first:9.1} ms   then {:7.1} ms{note}", median(again));
        }
        let text = metrics().await?;
        let scans = text.lines().filter(|l| l.contains("operation=\"Scan\"")).count();
        let route_units = |route: &str| -> f64 {
            text.lines()
                .filter(|l| {
                    l.starts_with("stockstream_dynamodb_route_capacity_units_total{")
                        && l.contains(&format!("route=\"{route}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        if name == "DynamoDB" {
            println!("  DynamoDB Scans by serve: {scans}");
            for route in [
                "/api/companies",
                "/api/latest",
                "/api/bars/{company}",
                "/api/indicators/{company}",
                "/api/stats",
                "/api/insights",
            ] {
                println!("  read units of {route}, all its requests: {:.1}", route_units(route));
            }
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    Ok(())
}
