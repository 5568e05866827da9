//! The same indicators over a whole series at once, laid out as TA-Lib lays
//! them out: one value per input, NaN during warm-up. Tight loops over slices,
//! for batch work and as the reference the streaming versions are tested
//! against.

use crate::talib;

fn nan(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

/// An output vector with its warm-up filled with NaN. `vec![0.0; len]` is
/// calloc: fresh pages from the kernel, already zero, not written twice.
fn warm_up(len: usize, lookback: usize) -> Vec<f64> {
    let mut out = vec![0.0; len];
    huge_pages(&mut out);
    out[..lookback.min(len)].fill(f64::NAN);
    out
}

/// Asks the kernel for transparent huge pages under a large buffer before it is
/// touched (as numpy does): one fault per 2 MiB instead of per 4 KiB, which is
/// most of the cost of filling a fresh 80 MB output.
fn huge_pages(v: &mut Vec<f64>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity() * std::mem::size_of::<f64>();
        if bytes < 2 * HUGE {
            return;
        }
        let start = v.as_mut_ptr() as usize;
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        let len = (start + bytes - aligned) & !(HUGE - 1);
        // SAFETY: the range lies inside the vector's own allocation; madvise
        // only changes how the kernel backs it.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// Each indicator is compiled twice, for the baseline x86-64 and with AVX2,
/// and the wider one is picked at run time when the CPU has it (as numpy picks
/// its loops): the loops without a carried value run on twice as many lanes.
/// The arithmetic is the same (no fused multiply-add), so are the results.
macro_rules! with_avx2 {
    ($($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $kernel:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn wide($($arg: $ty),*) -> $ret {
                    $kernel($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { wide($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    )*};
}

with_avx2! {
    /// Simple moving average, as TA_SMA.
    pub fn sma(x: &[f64], n: usize) -> Vec<f64> = sma_kernel;
    /// Exponential moving average seeded with the SMA of the first `n`, as TA_EMA.
    pub fn ema(x: &[f64], n: usize) -> Vec<f64> = ema_kernel;
    /// Relative strength index with Wilder's smoothing, as TA_RSI.
    pub fn rsi(x: &[f64], n: usize) -> Vec<f64> = rsi_kernel;
    /// MACD line, signal and histogram, aligned as TA-Lib aligns them.
    pub fn macd(x: &[f64], fast: usize, slow: usize, signal: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) = macd_kernel;
    /// Bollinger bands (upper, middle, lower) with the population deviation.
    pub fn bbands(x: &[f64], n: usize, k: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) = bbands_kernel;
    /// Average true range with Wilder's smoothing, as TA_ATR.
    pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> = atr_kernel;
}

#[inline(always)]
fn sma_kernel(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 || x.len() < n {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n - 1);
    let scale = 1.0 / n as f64;
    let mut total: f64 = x[..n].iter().sum();
    out[n - 1] = total * scale;
    let (new, old) = (&x[n..], &x[..x.len() - n]);
    for (from, [buf]) in blocks([&mut out], n) {
        let (new, old) = (&new[from..from + buf.len()], &old[from..from + buf.len()]);
        total = running_total(total, buf.len(), |i| new[i] - old[i], |i, t| buf[i] = t * scale);
    }
    out
}

/// Values are computed a block at a time into buffers that stay in L1: loops
/// without a carried value (the inputs of a recurrence) vectorise, and while a
/// block's recurrence runs the next block's loads are already in flight.
const BLOCK: usize = 32;

/// The outputs from `from` onwards (all of one length), cut into blocks of at
/// most [`BLOCK`] values, each with its offset from `from`.
#[inline(always)]
fn blocks<const K: usize>(outs: [&mut [f64]; K], from: usize) -> impl Iterator<Item = (usize, [&mut [f64]; K])> {
    let mut chunks = outs.map(|o| o[from..].chunks_mut(BLOCK));
    let mut at = 0;
    std::iter::from_fn(move || {
        let next = chunks.each_mut().map(Iterator::next);
        if next.iter().any(Option::is_none) {
            return None;
        }
        let bufs = next.map(Option::unwrap);
        let start = at;
        at += bufs[0].len();
        Some((start, bufs))
    })
}

/// The running total of `step(0..len)` from `total`, handed to `emit(i, total)`
/// after each step. Four steps at a time: the loop-carried path is one add per
/// four values (total + the block's prefix sums), not one or two per value.
#[inline(always)]
fn running_total(mut total: f64, len: usize, step: impl Fn(usize) -> f64, mut emit: impl FnMut(usize, f64)) -> f64 {
    let quads = len / 4;
    for q in 0..quads {
        let i = q * 4;
        let d0 = step(i);
        let p1 = d0 + step(i + 1);
        let p2 = p1 + step(i + 2);
        let p3 = p2 + step(i + 3);
        emit(i, total + d0);
        emit(i + 1, total + p1);
        emit(i + 2, total + p2);
        total += p3;
        emit(i + 3, total);
    }
    for i in quads * 4..len {
        total += step(i);
        emit(i, total);
    }
    total
}

/// The first-order recurrence y' = keep·y + r of EMAs and Wilder's smoothing,
/// stepped four values at a time: its loop-carried path is one multiply-add per
/// four values (keep⁴·y + …), the other three hang off it. The same values as
/// one step at a time to ~1e-15 relative (the recurrence is contractive).
/// `T` is `f64`, or a [`Pair`] for two recurrences side by side in one register.
struct Smoother<T> {
    y: T,
    /// keep, keep², keep³, keep⁴
    keep: [T; 4],
}

impl<T: Copy + std::ops::Add<Output = T> + std::ops::Mul<Output = T>> Smoother<T> {
    fn new(y: T, keep: T) -> Self {
        Smoother { y, keep: [keep, keep * keep, keep * keep * keep, keep * keep * keep * keep] }
    }

    /// out[i] = y after adding r[i].
    #[inline(always)]
    fn run(&mut self, r: &[T], out: &mut [T]) {
        let [k1, k2, k3, k4] = self.keep;
        let mut y = self.y;
        let whole = r.len() / 4 * 4;
        let (out, out_rest) = out.split_at_mut(whole);
        for (r, o) in r.chunks_exact(4).zip(out.chunks_exact_mut(4)) {
            let b1 = r[0] * k1 + r[1];
            let b2 = b1 * k1 + r[2];
            o[0] = y * k1 + r[0];
            o[1] = y * k2 + b1;
            o[2] = y * k3 + b2;
            y = y * k4 + (b2 * k1 + r[3]);
            o[3] = y;
        }
        for (r, o) in r[whole..].iter().zip(out_rest) {
            y = y * k1 + *r;
            *o = y;
        }
        self.y = y;
    }
}

/// Two values computed lane by lane (one SSE register).
#[derive(Clone, Copy, Default)]
struct Pair(f64, f64);

impl std::ops::Add for Pair {
    type Output = Pair;
    fn add(self, other: Pair) -> Pair {
        Pair(self.0 + other.0, self.1 + other.1)
    }
}

impl std::ops::Mul for Pair {
    type Output = Pair;
    fn mul(self, other: Pair) -> Pair {
        Pair(self.0 * other.0, self.1 * other.1)
    }
}

#[inline(always)]
fn ema_kernel(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 || x.len() < n {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n - 1);
    let k = talib::ema_k(n);
    let seed = x[..n].iter().sum::<f64>() / n as f64;
    out[n - 1] = seed;
    let mut ema = Smoother::new(seed, 1.0 - k);
    let rest = &x[n..];
    let mut r = [0.0; BLOCK];
    for (from, [buf]) in blocks([&mut out], n) {
        for (r, v) in r.iter_mut().zip(&rest[from..from + buf.len()]) {
            *r = v * k;
        }
        ema.run(&r[..buf.len()], buf);
    }
    out
}

#[inline(always)]
fn rsi_kernel(x: &[f64], n: usize) -> Vec<f64> {
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
    let value = talib::rsi;
    out[n] = value(gain, loss);
    // Multiplying by 1/n instead of dividing: within an ulp of TA-Lib's
    // division, and no division on the carried path.
    let (inv, keep) = (1.0 / nf, (nf - 1.0) / nf);
    // Gains and losses side by side.
    let mut averages = Smoother::new(Pair(gain, loss), Pair(keep, keep));
    let (now, before) = (&x[n + 1..], &x[n..x.len() - 1]);
    let (mut moves, mut smoothed) = ([Pair::default(); BLOCK], [Pair::default(); BLOCK]);
    for (from, [buf]) in blocks([&mut out], n + 1) {
        let count = buf.len();
        let changes = now[from..from + count].iter().zip(&before[from..from + count]).map(|(a, b)| a - b);
        for (step, change) in moves.iter_mut().zip(changes) {
            // Adding 0.0 leaves a sum as it is: the same as adding to one side.
            *step = if change < 0.0 { Pair(0.0, -change * inv) } else { Pair(change * inv, 0.0) };
        }
        averages.run(&moves[..count], &mut smoothed[..count]);
        for (v, average) in buf.iter_mut().zip(&smoothed) {
            *v = value(average.0, average.1);
        }
    }
    out
}

#[inline(always)]
fn macd_kernel(x: &[f64], fast: usize, slow: usize, signal: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = x.len();
    let first = slow + signal - 2;
    if fast == 0 || slow < fast || signal == 0 || len <= first {
        return (nan(len), nan(len), nan(len));
    }
    // Both EMAs are seeded at the slow one's first bar; run them together.
    let (kf, ks, kg) = (talib::ema_k(fast), talib::ema_k(slow), talib::ema_k(signal));
    let mut f = x[slow - fast..slow].iter().sum::<f64>() / fast as f64;
    let mut s = x[..slow].iter().sum::<f64>() / slow as f64;
    let (mut line, mut sig, mut hist) = (warm_up(len, first), warm_up(len, first), warm_up(len, first));
    let mut seed_total = f - s;
    for v in &x[slow..first + 1] {
        f = (v - f) * kf + f;
        s = (v - s) * ks + s;
        seed_total += f - s;
    }
    let g = seed_total / signal as f64;
    let m = f - s;
    (line[first], sig[first], hist[first]) = (m, g, m - g);
    // The fast and slow EMAs side by side.
    let mut emas = Smoother::new(Pair(f, s), Pair(1.0 - kf, 1.0 - ks));
    let mut signal_ema = Smoother::new(g, 1.0 - kg);
    let rest = &x[first + 1..];
    let (mut steps, mut both, mut rg) = ([Pair::default(); BLOCK], [Pair::default(); BLOCK], [0.0; BLOCK]);
    for (from, [line, sig, hist]) in blocks([&mut line, &mut sig, &mut hist], first + 1) {
        let count = line.len();
        for (step, v) in steps.iter_mut().zip(&rest[from..from + count]) {
            *step = Pair(v * kf, v * ks);
        }
        emas.run(&steps[..count], &mut both[..count]);
        for ((m, rg), fs) in line.iter_mut().zip(&mut rg).zip(&both) {
            *m = fs.0 - fs.1;
            *rg = *m * kg;
        }
        signal_ema.run(&rg[..count], sig);
        for ((h, m), g) in hist.iter_mut().zip(line.iter()).zip(sig.iter()) {
            *h = m - g;
        }
    }
    (line, sig, hist)
}

#[inline(always)]
fn bbands_kernel(x: &[f64], n: usize, k: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    if n == 0 || x.len() < n {
        return (nan(x.len()), nan(x.len()), nan(x.len()));
    }
    let (mut upper, mut middle, mut lower) =
        (warm_up(x.len(), n - 1), warm_up(x.len(), n - 1), warm_up(x.len(), n - 1));
    let nf = n as f64;
    // The window's sum and sum of squares one value at a time, in TA-Lib's
    // order: E[x²] - mean² cancels in a near-flat window, where any other
    // rounding order shows (~1e-6 of a band), so these stay exactly TA-Lib's.
    let mut total: f64 = x[..n - 1].iter().sum();
    let mut total2: f64 = x[..n - 1].iter().map(|v| v * v).sum();
    let (new, old) = (&x[n - 1..], &x[..x.len() + 1 - n]);
    let (mut sums, mut squares) = ([0.0; BLOCK], [0.0; BLOCK]);
    for (from, [up, mid, low]) in blocks([&mut upper, &mut middle, &mut lower], n - 1) {
        let count = up.len();
        let window_ends = new[from..from + count].iter().zip(&old[from..from + count]);
        for ((sum, square), (new, old)) in sums.iter_mut().zip(&mut squares).zip(window_ends) {
            total += new;
            total2 += new * new;
            (*sum, *square) = (total, total2);
            total -= old;
            total2 -= old * old;
        }
        // The rest vectorises.
        for ((((up, mid), low), sum), square) in up.iter_mut().zip(mid).zip(low).zip(&sums).zip(&squares) {
            let m = sum / nf;
            let var = square / nf - m * m;
            let std = talib::std_from_variance(var);
            (*up, *mid, *low) = (m + k * std, m, m - k * std);
        }
    }
    (upper, middle, lower)
}

#[inline(always)]
fn atr_kernel(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    let len = close.len().min(high.len()).min(low.len());
    if n == 0 || len <= n {
        return nan(close.len());
    }
    let mut out = warm_up(len, n);
    // Plain comparisons, as TA-Lib's: the NaN-aware f64::max costs more here.
    let greater = |a: f64, b: f64| if b > a { b } else { a };
    let tr = |h: &f64, l: &f64, prev: &f64| greater(greater(h - l, (prev - h).abs()), (prev - l).abs());
    let ranges = |from: usize, to: usize| high[from..to].iter().zip(&low[from..to]).zip(&close[from - 1..to - 1]);
    let nf = n as f64;
    let first = ranges(1, n + 1).map(|((h, l), p)| tr(h, l, p)).sum::<f64>() / nf;
    out[n] = first;
    let (inv, keep) = (1.0 / nf, (nf - 1.0) / nf);
    let mut average = Smoother::new(first, keep);
    let start = n + 1;
    let mut r = [0.0; BLOCK];
    for (from, [buf]) in blocks([&mut out], start) {
        for (r, ((h, l), p)) in r.iter_mut().zip(ranges(start + from, start + from + buf.len())) {
            *r = tr(h, l, p) * inv;
        }
        average.run(&r[..buf.len()], buf);
    }
    out
}

/// Annualised sample standard deviation of the last `n` log returns, with the
/// streaming indicator's O(1) rolling deviation.
pub fn volatility(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = warm_up(x.len(), 1);
    let mut std = crate::indicators::RollingStd::new(n);
    for (v, w) in out.iter_mut().skip(1).zip(x.windows(2)) {
        *v = std.update((w[1] / w[0]).ln()).map_or(f64::NAN, |s| s * crate::indicators::TRADING_DAYS.sqrt());
    }
    out
}

/// The simple return of each value over the one before.
pub fn returns(x: &[f64]) -> Vec<f64> {
    let mut out = warm_up(x.len(), 1);
    for (r, w) in out.iter_mut().skip(1).zip(x.windows(2)) {
        *r = w[1] / w[0] - 1.0;
    }
    out
}

/// VWAP of intraday bars: the typical price (H+L+C)/3 weighted by volume,
/// accumulated over each run of equal `day`s (a trading day); NaN while the
/// day has traded no volume.
pub fn vwap<D: PartialEq>(high: &[f64], low: &[f64], close: &[f64], volume: &[f64], day: &[D]) -> Vec<f64> {
    let len = close.len().min(high.len()).min(low.len()).min(volume.len()).min(day.len());
    let (mut pv, mut v) = (0.0, 0.0);
    let mut out = warm_up(close.len(), 0);
    out[len..].fill(f64::NAN);
    for i in 0..len {
        if i == 0 || day[i] != day[i - 1] {
            (pv, v) = (0.0, 0.0);
        }
        pv += (high[i] + low[i] + close[i]) / 3.0 * volume[i];
        v += volume[i];
        out[i] = if v > 0.0 { pv / v } else { f64::NAN };
    }
    out
}

/// The fall of each value from the highest value before it (0 at a new high).
pub fn drawdown(x: &[f64]) -> Vec<f64> {
    let mut out = warm_up(x.len(), 0);
    let mut peak = f64::NEG_INFINITY;
    for (d, c) in out.iter_mut().zip(x) {
        peak = peak.max(*c);
        *d = c / peak - 1.0;
    }
    out
}

/// A deterministic price-like series for benchmarks, `[close, high, low]`, the
/// same as the TA-Lib peer script's (`benches/talib_peer.py`) and held in
/// memory as numpy holds its arrays (huge pages), so both read alike.
pub fn test_series(n: usize) -> [Vec<f64>; 3] {
    let mut close = warm_up(n, 0);
    for (i, c) in close.iter_mut().enumerate() {
        *c = 100.0 + 10.0 * (i as f64 * 0.001).sin() + ((i * 7919) % 1000) as f64 / 1000.0;
    }
    let scaled = |factor: f64| {
        let mut v = warm_up(n, 0);
        for (v, c) in v.iter_mut().zip(&close) {
            *v = c * factor;
        }
        v
    };
    let (high, low) = (scaled(1.01), scaled(0.99));
    [close, high, low]
}

/// Every indicator of one company's bars in time order, as whole series by the
/// kernels above: what `indicators`, the report and the API show. A bar not
/// newer than the one before is left out, as the streaming indicators leave
/// out a redelivered bar; VWAP is for intraday bars only.
pub fn indicator_rows(bars: &[stockstream_core::Bar]) -> Vec<crate::IndicatorRow> {
    use stockstream_core::Ts;
    let mut kept: Vec<&stockstream_core::Bar> = Vec::with_capacity(bars.len());
    for b in bars {
        if kept.last().is_none_or(|last| b.ts > last.ts) {
            kept.push(b);
        }
    }
    let column = |f: fn(&stockstream_core::Bar) -> f64| kept.iter().map(|b| f(b)).collect::<Vec<f64>>();
    let (close, high, low, volume) = (column(|b| b.close), column(|b| b.high), column(|b| b.low), column(|b| b.volume));
    let days: Vec<_> = kept.iter().map(|b| b.ts.date()).collect();
    let (sma10, sma30, sma50) = (sma(&close, 10), sma(&close, 30), sma(&close, 50));
    let (ema12, ema26, rsi14) = (ema(&close, 12), ema(&close, 26), rsi(&close, 14));
    let (macd_line, macd_signal, macd_hist) = macd(&close, 12, 26, 9);
    let (bb_upper, bb_middle, bb_lower) = bbands(&close, 20, 2.0);
    let atr14 = atr(&high, &low, &close, 14);
    let (ret, vol, dd) = (returns(&close), volatility(&close, 20), drawdown(&close));
    let vw = vwap(&high, &low, &close, &volume, &days);
    let at = |v: &[f64], i: usize| Some(v[i]).filter(|x| !x.is_nan());
    kept.iter()
        .enumerate()
        .map(|(i, b)| crate::IndicatorRow {
            date: b.ts.to_string(),
            company: b.company.clone(),
            close: close[i],
            sma10: at(&sma10, i),
            sma30: at(&sma30, i),
            sma50: at(&sma50, i),
            ema12: at(&ema12, i),
            ema26: at(&ema26, i),
            rsi14: at(&rsi14, i),
            macd: at(&macd_line, i),
            macd_signal: at(&macd_signal, i),
            macd_hist: at(&macd_hist, i),
            bb_upper: at(&bb_upper, i),
            bb_middle: at(&bb_middle, i),
            bb_lower: at(&bb_lower, i),
            atr14: at(&atr14, i),
            ret: at(&ret, i),
            volatility20: at(&vol, i),
            drawdown: at(&dd, i),
            session_vwap: match b.ts {
                Ts::Date(_) => None,
                Ts::Instant(_) => at(&vw, i),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build and the baseline one give the same bits (the public
    /// functions take the AVX2 one on a CPU that has it).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_builds_give_identical_values() {
        let [close, high, low] = test_series(10_007);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let same = |a: &[f64], b: &[f64], what: &str| assert_eq!(bits(a), bits(b), "{what}");
        same(&sma(&close, 30), &sma_kernel(&close, 30), "sma");
        same(&ema(&close, 26), &ema_kernel(&close, 26), "ema");
        same(&rsi(&close, 14), &rsi_kernel(&close, 14), "rsi");
        same(&atr(&high, &low, &close, 14), &atr_kernel(&high, &low, &close, 14), "atr");
        let (wide, base) = (macd(&close, 12, 26, 9), macd_kernel(&close, 12, 26, 9));
        for (w, b, what) in [(&wide.0, &base.0, "macd"), (&wide.1, &base.1, "signal"), (&wide.2, &base.2, "hist")] {
            same(w, b, what);
        }
        let (wide, base) = (bbands(&close, 20, 2.0), bbands_kernel(&close, 20, 2.0));
        for (w, b, what) in [(&wide.0, &base.0, "upper"), (&wide.1, &base.1, "middle"), (&wide.2, &base.2, "lower")] {
            same(w, b, what);
        }
        assert!(std::arch::is_x86_feature_detected!("avx2"), "this check needs a CPU with AVX2");
    }
}
