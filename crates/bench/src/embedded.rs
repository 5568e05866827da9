//! Embedded pipeline against a plain batched SQLite insert of the same rows.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use stockstream_pipeline::{embedded as run_embedded, ConsumeOptions, Pace, Stats};
use stockstream_sources::{Interval, Synthetic, SyntheticConfig};
use stockstream_store::SqliteStore;
use tokio::sync::watch;

use crate::{analytics, median};

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

pub(crate) async fn embedded(args: EmbeddedArgs) -> anyhow::Result<()> {
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
pub(crate) async fn embedded_pipeline(
    config: &SyntheticConfig,
    db: &std::path::Path,
    batch_size: usize,
) -> anyhow::Result<f64> {
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
pub(crate) async fn plain_insert(
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
