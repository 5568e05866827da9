//! What a command prints on the terminal: the progress bar while it works, the
//! summary and the latest indicators at its end.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use stockstream_core::shown::{computed, price};
use stockstream_pipeline::Stats;

/// The last indicators, as computed while the bars flowed, of the companies
/// in `rows` (the first by name), and how many more of `companies` there are.
pub fn print_latest(rows: &[stockstream_analytics::IndicatorRow], companies: usize) {
    if rows.is_empty() {
        return;
    }
    let f = |v: Option<f64>| v.map(computed).unwrap_or_else(|| "-".into());
    println!(
        "latest     {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "company/date", "close", "sma10", "sma50", "ema12", "rsi14"
    );
    for r in rows {
        println!(
            "           {:<22} {:>10} {:>10} {:>10} {:>10} {:>7}",
            format!("{} {}", r.company, &r.date[..10.min(r.date.len())]),
            price(r.close),
            f(r.sma10),
            f(r.sma50),
            f(r.ema12),
            r.rsi14.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
        );
    }
    if companies > rows.len() {
        println!("           … and {} more companies (query --company NAME)", companies - rows.len());
    }
}

/// Counters of a finished pipeline.
pub fn print_summary(label: &str, stats: &Stats, elapsed: Duration) {
    let get = Stats::get;
    let secs = elapsed.as_secs_f64();
    let done = get(&stats.stored) + get(&stats.rejected);
    println!("source     {label}");
    println!("read       {}", get(&stats.read).max(get(&stats.consumed)));
    println!("stored     {}", get(&stats.stored));
    println!("rejected   {}", get(&stats.rejected));
    for (kind, n) in stats.rejected_by_kind() {
        println!("  {kind:<28}{n}");
    }
    println!("imputed    {}", get(&stats.imputed));
    println!("elapsed    {secs:.2} s");
    println!("rate       {:.0} bars/s", done as f64 / secs.max(1e-9));
    print_dynamodb_usage();
}

/// DynamoDB's requests and capacity units, when the command used it:
/// `dynamodb   1200 requests, 0.0 read units, 40000.0 write units (BatchWriteItem 1200, ...)`.
pub fn print_dynamodb_usage() {
    let usage = stockstream_store::dynamodb_usage();
    if usage.is_empty() {
        return;
    }
    let units = |read: bool| -> f64 {
        usage.iter().filter(|(op, _)| stockstream_store::is_read(op) == read).map(|(_, u)| u.capacity_units).sum()
    };
    let requests: u64 = usage.values().map(|u| u.requests).sum();
    let by_operation: Vec<String> = usage.iter().map(|(op, u)| format!("{op} {}", u.requests)).collect();
    println!(
        "dynamodb   {requests} requests, {:.1} read units, {:.1} write units ({})",
        units(true),
        units(false),
        by_operation.join(", ")
    );
}

/// A progress bar on a terminal; nothing otherwise.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// `done` reads how far the work is from the counters.
    pub fn start(stats: Arc<Stats>, expected: Option<u64>, done: fn(&Stats) -> u64) -> Self {
        let bar = match expected {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} bars {per_sec} eta {eta}").expect("valid template"),
            ),
            None => ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{spinner} {pos} bars {per_sec}").expect("valid template")),
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                shown.set_position(done(&stats));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress { bar, ticker }
    }

    /// Clears the bar.
    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
