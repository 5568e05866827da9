//! Property: over any series, the streaming indicators equal the batch ones.

use stockstream_analytics::{batch, IndicatorRow, Indicators};
use stockstream_core::{Bar, Ts};

/// A small deterministic generator (xorshift), so failures reproduce by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Daily bars, or for every third seed minute bars over several trading days
/// of 97 bars (VWAP resets at each new day).
fn series(seed: u64, len: usize) -> Vec<Bar> {
    let intraday = seed % 3 == 0;
    let open_at = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap().and_hms_opt(14, 30, 0).unwrap().and_utc();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut price = 10.0 + rng.next() * 500.0;
    // Some series are flat for a while: RSI and Bollinger meet their zero cases.
    let flat_from = (rng.next() * len as f64) as usize;
    (0..len)
        .map(|i| {
            let step = if i >= flat_from && i < flat_from + 30 { 0.0 } else { (rng.next() - 0.5) * 0.06 };
            let open = price;
            price *= 1.0 + step;
            let (hi, lo) = (open.max(price) * (1.0 + rng.next() * 0.01), open.min(price) * (1.0 - rng.next() * 0.01));
            Bar {
                symbol: "P".into(),
                company: "Prop".into(),
                ts: if intraday {
                    let (day, minute) = (i / 97, i % 97);
                    Ts::Instant(open_at + chrono::Duration::days(day as i64) + chrono::Duration::minutes(minute as i64))
                } else {
                    Ts::Date(chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Duration::days(i as i64))
                },
                open,
                high: hi,
                low: lo,
                close: price,
                // Some minutes trade nothing: VWAP stays empty until volume arrives.
                volume: if rng.next() < 0.05 { 0.0 } else { 1000.0 + (rng.next() * 5e4).round() },
                vwap: None,
                trades: None,
            }
        })
        .collect()
}

/// Within 1e-12 relative: the streaming versions step as TA-Lib does, one
/// value at a time, while the batch sums and smoothing run four values at a
/// time, a different rounding order (Bollinger's sums keep TA-Lib's order in
/// both: its E[x²] - mean² would magnify any difference).
fn same(stream: Option<f64>, batch: f64, what: &str, seed: u64, i: usize) {
    match stream {
        None => assert!(batch.is_nan(), "seed {seed} bar {i}: {what} streaming is empty, batch {batch}"),
        Some(v) => assert!(
            (v - batch).abs() <= 1e-12 * v.abs().max(batch.abs()) || (v - batch).abs() < 1e-12,
            "seed {seed} bar {i}: {what} streaming {v}, batch {batch}"
        ),
    }
}

/// Annualised rolling deviation of log returns by two passes over each window:
/// what the O(1) sliding one must equal.
fn exact_volatility(close: &[f64], n: usize) -> Vec<f64> {
    let r: Vec<f64> = close.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let mut out = vec![f64::NAN; close.len()];
    for i in n..=r.len() {
        let w = &r[i - n..i];
        let mean = w.iter().sum::<f64>() / n as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n as f64 - 1.0);
        out[i] = var.sqrt() * 252f64.sqrt();
    }
    out
}

#[test]
fn streaming_indicators_equal_batch_indicators() {
    for seed in 0..200u64 {
        let len = 1 + (seed as usize * 37) % 400;
        let bars = series(seed, len);
        let mut ind = Indicators::default();
        let rows: Vec<IndicatorRow> = bars.iter().map(|b| ind.update(b).unwrap()).collect();
        let close: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let high: Vec<f64> = bars.iter().map(|b| b.high).collect();
        let low: Vec<f64> = bars.iter().map(|b| b.low).collect();
        let (sma10, sma30, sma50) = (batch::sma(&close, 10), batch::sma(&close, 30), batch::sma(&close, 50));
        let (ema12, ema26, rsi) = (batch::ema(&close, 12), batch::ema(&close, 26), batch::rsi(&close, 14));
        let (line, signal, hist) = batch::macd(&close, 12, 26, 9);
        let (upper, middle, lower) = batch::bbands(&close, 20, 2.0);
        let (atr, vol, dd) =
            (batch::atr(&high, &low, &close, 14), batch::volatility(&close, 20), batch::drawdown(&close));
        let returns = batch::returns(&close);
        let exact_vol = exact_volatility(&close, 20);
        let volume: Vec<f64> = bars.iter().map(|b| b.volume).collect();
        let days: Vec<_> = bars.iter().map(|b| b.ts.date()).collect();
        let vwap = batch::vwap(&high, &low, &close, &volume, &days);
        for (i, r) in rows.iter().enumerate() {
            for (what, s, b) in [
                ("sma10", r.sma10, sma10[i]),
                ("sma30", r.sma30, sma30[i]),
                ("sma50", r.sma50, sma50[i]),
                ("ema12", r.ema12, ema12[i]),
                ("ema26", r.ema26, ema26[i]),
                ("rsi14", r.rsi14, rsi[i]),
                ("macd", r.macd, line[i]),
                ("macd_signal", r.macd_signal, signal[i]),
                ("macd_hist", r.macd_hist, hist[i]),
                ("bb_upper", r.bb_upper, upper[i]),
                ("bb_middle", r.bb_middle, middle[i]),
                ("bb_lower", r.bb_lower, lower[i]),
                ("atr14", r.atr14, atr[i]),
                ("volatility20", r.volatility20, vol[i]),
                ("drawdown", r.drawdown, dd[i]),
                ("return", r.ret, returns[i]),
                ("volatility20 (two-pass)", r.volatility20, exact_vol[i]),
            ] {
                same(s, b, what, seed, i);
            }
            if bars[i].ts.is_intraday() {
                same(r.session_vwap, vwap[i], "vwap", seed, i);
            } else {
                assert_eq!(r.session_vwap, None, "seed {seed} bar {i}: a daily bar has no VWAP");
            }
        }
    }
}
