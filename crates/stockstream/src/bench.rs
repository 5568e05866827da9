//! `stockstream bench`: throughput of a pipeline and of its plain baseline,
//! measured side by side in one run so that the ratio survives a noisy machine.

use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use stockstream_store::SqliteStore;
use tokio::sync::watch;

use crate::pipeline::{ConsumeOptions, Item, Pace, Stats};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Subcommand, Debug)]
pub enum Target {
    /// Generated bars → in-process bus → SQLite, against a plain batched SQLite
    /// insert of the same rows.
    Embedded(EmbeddedArgs),
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
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        Target::Embedded(a) => embedded(a).await,
    }
}

async fn embedded(args: EmbeddedArgs) -> anyhow::Result<()> {
    let config = SyntheticConfig {
        rows: Some(args.rows),
        interval: args.interval,
        ..Default::default()
    };
    let dir = tempfile::tempdir()?;

    // The whole pipeline, as `run` does it.
    let store = Arc::new(SqliteStore::open(&dir.path().join("pipeline.db"))?);
    let stats = Arc::new(Stats::default());
    let source = Box::new(
        Synthetic::new(config.clone())
            .map_err(anyhow::Error::msg)?
            .map(Item::Bar),
    );
    let options = ConsumeOptions {
        batch_size: args.batch_size,
        ..Default::default()
    };
    let (_keep_open, stop) = watch::channel(false);
    let started = Instant::now();
    crate::run::embedded(source, store, stats.clone(), &options, Pace::Max, stop).await?;
    let pipeline_secs = started.elapsed().as_secs_f64();
    let stored = Stats::get(&stats.stored);
    anyhow::ensure!(
        stored == args.rows,
        "pipeline stored {stored} of {} bars",
        args.rows
    );

    // The baseline: the same bars, already in memory, in a plain prepared INSERT
    // inside transactions of the same size. No bus, no codec, no validation.
    let bars: Vec<_> = Synthetic::new(config)
        .map_err(anyhow::Error::msg)?
        .collect();
    let path = dir.path().join("plain.db");
    let batch_size = args.batch_size;
    let plain_secs = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let mut conn = rusqlite::Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE bars (company TEXT NOT NULL, date TEXT NOT NULL, symbol TEXT NOT NULL,
             open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
             volume REAL NOT NULL, PRIMARY KEY (company, date)) WITHOUT ROWID",
        )?;
        let started = Instant::now();
        for chunk in bars.chunks(batch_size) {
            let tx = conn.transaction()?;
            {
                let mut st =
                    tx.prepare_cached("INSERT INTO bars VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
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
    .await??;

    let rate = |secs: f64| args.rows as f64 / secs;
    println!(
        "bench embedded: {} bars, interval {:?}, batch {}",
        args.rows, args.interval, args.batch_size
    );
    println!("pipeline (generate → bus → decode/validate → SQLite)  {pipeline_secs:>8.3} s  {:>10.0} bars/s", rate(pipeline_secs));
    println!(
        "plain batched SQLite insert                          {plain_secs:>8.3} s  {:>10.0} bars/s",
        rate(plain_secs)
    );
    println!(
        "ratio pipeline/plain                                 {:>8.2}  (target >= 0.50)",
        plain_secs / pipeline_secs
    );
    Ok(())
}
