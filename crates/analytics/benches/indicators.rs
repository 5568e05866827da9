//! Each indicator over 10M closes (batch), and the per-bar streaming update.
//! `cargo bench -p stockstream-analytics`; `stockstream bench indicators` puts
//! the same batch work beside TA-Lib's C functions in one run.

use criterion::{criterion_group, criterion_main, Criterion};
use stockstream_analytics::batch::{self, test_series};
use stockstream_analytics::Indicators;
use stockstream_core::{Bar, Ts};

const N: usize = 10_000_000;

fn batch_indicators(c: &mut Criterion) {
    let [close, high, low] = test_series(N);
    let mut g = c.benchmark_group("batch_10M");
    g.sample_size(10);
    g.bench_function("sma30", |b| b.iter(|| batch::sma(&close, 30)));
    g.bench_function("ema26", |b| b.iter(|| batch::ema(&close, 26)));
    g.bench_function("rsi14", |b| b.iter(|| batch::rsi(&close, 14)));
    g.bench_function("macd", |b| b.iter(|| batch::macd(&close, 12, 26, 9)));
    g.bench_function("bbands20", |b| b.iter(|| batch::bbands(&close, 20, 2.0)));
    g.bench_function("atr14", |b| b.iter(|| batch::atr(&high, &low, &close, 14)));
    g.bench_function("return", |b| b.iter(|| batch::returns(&close)));
    g.bench_function("volatility20", |b| b.iter(|| batch::volatility(&close, 20)));
    g.bench_function("drawdown", |b| b.iter(|| batch::drawdown(&close)));
    // Minute bars: 390 to a trading day.
    let volume: Vec<f64> = (0..N).map(|i| 1000.0 + (i * 31 % 500) as f64).collect();
    let day: Vec<u32> = (0..N).map(|i| (i / 390) as u32).collect();
    g.bench_function("vwap", |b| b.iter(|| batch::vwap(&high, &low, &close, &volume, &day)));
    g.finish();
}

fn streaming_update(c: &mut Criterion) {
    let [close, ..] = test_series(100_000);
    let bars: Vec<Bar> = close
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar {
            symbol: "B".into(),
            company: "Bench".into(),
            ts: Ts::Date(chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(i as i64)),
            open: c,
            high: c * 1.01,
            low: c * 0.99,
            close: c,
            volume: 1000.0,
            vwap: None,
            trades: None,
        })
        .collect();
    let mut g = c.benchmark_group("streaming");
    g.throughput(criterion::Throughput::Elements(bars.len() as u64));
    g.bench_function("every_indicator_per_bar_100k", |b| {
        b.iter(|| {
            let mut ind = Indicators::default();
            bars.iter().filter_map(|bar| ind.update(bar)).count()
        })
    });
    g.finish();
}

criterion_group!(benches, batch_indicators, streaming_update);
criterion_main!(benches);
