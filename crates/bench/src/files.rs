//! Whole processes over a file of one-minute bars, beside the script a user would write.

use std::time::Instant;

use clap::Args;
use stockstream_pipeline::ConsumeOptions;
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use stockstream_store::{SqliteStore, Store};

use crate::{median, whole_process};

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

pub(crate) fn indicators_file(args: FileBenchArgs) -> anyhow::Result<()> {
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

pub(crate) async fn run_file(args: FileBenchArgs) -> anyhow::Result<()> {
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
pub(crate) fn file_versus_peer(
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
