//! The same indicators over a whole series at once, laid out as TA-Lib lays
//! them out: one value per input, NaN during warm-up. Tight loops over slices,
//! for batch work and as the reference the streaming versions are tested
//! against.

/// TA-Lib treats |x| < 1e-8 as zero.
const TA_EPSILON: f64 = 0.00000001;

fn nan(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

/// An output vector with its warm-up filled with NaN, ready for `push`: every
/// value is written once (no prefill then overwrite).
fn warm_up(len: usize, lookback: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len);
    out.resize(lookback.min(len), f64::NAN);
    out
}

pub fn sma(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 || x.len() < n {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n - 1);
    let mut total: f64 = x[..n - 1].iter().sum();
    let inv = n as f64;
    for (new, old) in x[n - 1..].iter().zip(x) {
        total += new;
        out.push(total / inv);
        total -= old;
    }
    out
}

/// EMA seeded with the SMA of the `n` values ending at `seed_at`, pushed onto
/// `out` (which holds `seed_at` values already).
fn ema_into(x: &[f64], n: usize, seed_at: usize, out: &mut Vec<f64>) {
    if x.len() <= seed_at || seed_at + 1 < n {
        out.resize(x.len(), f64::NAN);
        return;
    }
    let k = 2.0 / (n as f64 + 1.0);
    let mut prev = x[seed_at + 1 - n..=seed_at].iter().sum::<f64>() / n as f64;
    out.push(prev);
    for v in &x[seed_at + 1..] {
        prev = (v - prev) * k + prev;
        out.push(prev);
    }
}

pub fn ema(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n - 1);
    ema_into(x, n, n - 1, &mut out);
    out
}

pub fn rsi(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 || x.len() <= n {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n);
    let nf = n as f64;
    let (mut gain, mut loss) = (0.0, 0.0);
    for w in x[..=n].windows(2) {
        let change = w[1] - w[0];
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
    }
    gain /= nf;
    loss /= nf;
    let value = |g: f64, l: f64| if (g + l).abs() < TA_EPSILON { 0.0 } else { 100.0 * (g / (g + l)) };
    out.push(value(gain, loss));
    for w in x[n..].windows(2) {
        let change = w[1] - w[0];
        loss *= nf - 1.0;
        gain *= nf - 1.0;
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
        loss /= nf;
        gain /= nf;
        out.push(value(gain, loss));
    }
    out
}

/// MACD line, signal and histogram, aligned as TA-Lib aligns them.
pub fn macd(x: &[f64], fast: usize, slow: usize, signal: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = x.len();
    let first = slow + signal - 2;
    if fast == 0 || slow < fast || signal == 0 || len <= first {
        return (nan(len), nan(len), nan(len));
    }
    // Both EMAs are seeded at the slow one's first bar; run them together.
    let (kf, ks, kg) = (2.0 / (fast as f64 + 1.0), 2.0 / (slow as f64 + 1.0), 2.0 / (signal as f64 + 1.0));
    let mut f = x[slow - fast..slow].iter().sum::<f64>() / fast as f64;
    let mut s = x[..slow].iter().sum::<f64>() / slow as f64;
    let (mut line, mut sig, mut hist) = (warm_up(len, first), warm_up(len, first), warm_up(len, first));
    let mut seed_total = f - s;
    for v in &x[slow..first + 1] {
        f = (v - f) * kf + f;
        s = (v - s) * ks + s;
        seed_total += f - s;
    }
    let mut g = seed_total / signal as f64;
    let m = f - s;
    line.push(m);
    sig.push(g);
    hist.push(m - g);
    for v in &x[first + 1..] {
        f = (v - f) * kf + f;
        s = (v - s) * ks + s;
        let m = f - s;
        g = (m - g) * kg + g;
        line.push(m);
        sig.push(g);
        hist.push(m - g);
    }
    (line, sig, hist)
}

/// Bollinger bands (upper, middle, lower) with the population deviation.
pub fn bbands(x: &[f64], n: usize, k: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    if n == 0 || x.len() < n {
        return (nan(x.len()), nan(x.len()), nan(x.len()));
    }
    let (mut upper, mut middle, mut lower) =
        (warm_up(x.len(), n - 1), warm_up(x.len(), n - 1), warm_up(x.len(), n - 1));
    let nf = n as f64;
    let mut total: f64 = x[..n - 1].iter().sum();
    let mut total2: f64 = x[..n - 1].iter().map(|v| v * v).sum();
    for (new, old) in x[n - 1..].iter().zip(x) {
        total += new;
        total2 += new * new;
        let mid = total / nf;
        let mut mean2 = total2 / nf;
        total -= old;
        total2 -= old * old;
        mean2 -= mid * mid;
        let std = if mean2 < TA_EPSILON { 0.0 } else { mean2.sqrt() };
        upper.push(mid + k * std);
        middle.push(mid);
        lower.push(mid - k * std);
    }
    (upper, middle, lower)
}

pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    let len = close.len().min(high.len()).min(low.len());
    if n == 0 || len <= n {
        return nan(close.len());
    }
    let mut out = warm_up(len, n);
    let tr = |h: f64, l: f64, prev: f64| (h - l).max((h - prev).abs()).max((l - prev).abs());
    let ranges = high[1..len].iter().zip(&low[1..len]).zip(&close[..len - 1]).map(|((h, l), p)| tr(*h, *l, *p));
    let mut prev = 0.0;
    let nf = n as f64;
    for (i, r) in ranges.enumerate() {
        if i < n {
            prev += r;
            if i + 1 == n {
                prev /= nf;
                out.push(prev);
            }
        } else {
            prev *= nf - 1.0;
            prev += r;
            prev /= nf;
            out.push(prev);
        }
    }
    out
}

/// Annualised sample standard deviation of the last `n` log returns.
pub fn volatility(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = nan(x.len());
    let r: Vec<f64> = x.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    for i in n..=r.len() {
        let w = &r[i - n..i];
        let mean = w.iter().sum::<f64>() / n as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n as f64 - 1.0);
        out[i] = var.max(0.0).sqrt() * crate::indicators::TRADING_DAYS.sqrt();
    }
    out
}

pub fn drawdown(x: &[f64]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    x.iter()
        .map(|c| {
            peak = peak.max(*c);
            c / peak - 1.0
        })
        .collect()
}

/// A deterministic price-like series for benchmarks, the same in Rust and in
/// the TA-Lib peer script (`benches/talib_peer.py`).
pub fn test_closes(n: usize) -> Vec<f64> {
    (0..n).map(|i| 100.0 + 10.0 * (i as f64 * 0.001).sin() + ((i * 7919) % 1000) as f64 / 1000.0).collect()
}
