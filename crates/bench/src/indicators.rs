//! The indicator kernels against TA-Lib's C functions.

use std::time::Instant;

use clap::Args;

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

pub(crate) fn indicators(args: IndicatorBenchArgs) -> anyhow::Result<()> {
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
