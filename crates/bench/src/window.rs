//! The window stage against pandas' groupby of the same ticks.

use std::time::Instant;

use clap::Args;

use crate::run_peer;

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

pub(crate) fn window(args: WindowBenchArgs) -> anyhow::Result<()> {
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
