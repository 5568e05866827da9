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
    huge_pages(&mut out);
    out.resize(lookback.min(len), f64::NAN);
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

pub fn sma(x: &[f64], n: usize) -> Vec<f64> {
    if n == 0 || x.len() < n {
        return nan(x.len());
    }
    let mut out = warm_up(x.len(), n - 1);
    let mut total: f64 = x[..n - 1].iter().sum();
    let inv = n as f64;
    fill(
        &mut out,
        x[n - 1..].iter().zip(x).map(|(new, old)| {
            total += new;
            let v = total / inv;
            total -= old;
            v
        }),
    );
    out
}

/// Appends every value of `values` to `out`, which has room for them: writes
/// without a capacity check per value.
fn fill(out: &mut Vec<f64>, values: impl Iterator<Item = f64>) {
    let start = out.len();
    let mut written = 0;
    for (slot, v) in out.spare_capacity_mut().iter_mut().zip(values) {
        slot.write(v);
        written += 1;
    }
    // SAFETY: the first `written` spare slots were just initialised.
    unsafe { out.set_len(start + written) };
}

/// [`fill`] for three outputs at once.
fn fill3(a: &mut Vec<f64>, b: &mut Vec<f64>, c: &mut Vec<f64>, values: impl Iterator<Item = (f64, f64, f64)>) {
    let starts = (a.len(), b.len(), c.len());
    let mut written = 0;
    let slots = a.spare_capacity_mut().iter_mut().zip(b.spare_capacity_mut()).zip(c.spare_capacity_mut());
    for (((sa, sb), sc), (va, vb, vc)) in slots.zip(values) {
        sa.write(va);
        sb.write(vb);
        sc.write(vc);
        written += 1;
    }
    // SAFETY: the first `written` spare slots of each were just initialised.
    unsafe {
        a.set_len(starts.0 + written);
        b.set_len(starts.1 + written);
        c.set_len(starts.2 + written);
    }
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
    fill(
        out,
        x[seed_at + 1..].iter().map(|v| {
            prev = prev * (1.0 - k) + v * k; // one multiply and one add on the carried path
            prev
        }),
    );
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
    let (inv, keep) = (1.0 / nf, (nf - 1.0) / nf);
    let value = |g: f64, l: f64| if (g + l).abs() < TA_EPSILON { 0.0 } else { 100.0 * (g / (g + l)) };
    out.push(value(gain, loss));
    fill(
        &mut out,
        x[n + 1..].iter().zip(&x[n..]).map(|(now, before)| {
            let change = now - before;
            // Branch-free: adding 0.0 leaves a sum as it is, so this equals
            // "if change < 0 { loss -= change } else { gain += change }".
            let falling = change < 0.0;
            // Multiplying by 1/n instead of dividing: within an ulp of TA-Lib's
            // division, and no division on the critical path.
            loss = loss * keep + if falling { -change * inv } else { 0.0 }; // the change is off the carried path
            gain = gain * keep + if falling { 0.0 } else { change * inv };
            value(gain, loss)
        }),
    );
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
    fill3(
        &mut line,
        &mut sig,
        &mut hist,
        x[first + 1..].iter().map(|v| {
            f = f * (1.0 - kf) + v * kf;
            s = s * (1.0 - ks) + v * ks;
            let m = f - s;
            g = g * (1.0 - kg) + m * kg;
            (m, g, m - g)
        }),
    );
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
    fill3(
        &mut upper,
        &mut middle,
        &mut lower,
        x[n - 1..].iter().zip(x).map(|(new, old)| {
            total += new;
            total2 += new * new;
            let mid = total / nf;
            let mut mean2 = total2 / nf;
            total -= old;
            total2 -= old * old;
            mean2 -= mid * mid;
            let std = if mean2 < TA_EPSILON { 0.0 } else { mean2.sqrt() };
            (mid + k * std, mid, mid - k * std)
        }),
    );
    (upper, middle, lower)
}

pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    let len = close.len().min(high.len()).min(low.len());
    if n == 0 || len <= n {
        return nan(close.len());
    }
    let mut out = warm_up(len, n);
    // Plain comparisons, as TA-Lib's: the NaN-aware f64::max costs more here.
    let greater = |a: f64, b: f64| if b > a { b } else { a };
    let tr = |h: f64, l: f64, prev: f64| greater(greater(h - l, (prev - h).abs()), (prev - l).abs());
    let ranges = |from: usize| {
        high[from..len].iter().zip(&low[from..len]).zip(&close[from - 1..len - 1]).map(|((h, l), p)| tr(*h, *l, *p))
    };
    let nf = n as f64;
    let mut prev = ranges(1).take(n).sum::<f64>() / nf;
    let (inv, keep) = (1.0 / nf, (nf - 1.0) / nf);
    out.push(prev);
    // prev' = keep·prev + inv·r, four steps at a time: the loop-carried path is
    // one multiply-add per four bars (keep⁴·prev + …); the other three values
    // hang off it. Same values to ~1e-15 relative (the recurrence is contractive).
    let (k2, k3, k4) = (keep * keep, keep * keep * keep, keep * keep * keep * keep);
    let start = n + 1;
    let h = &high[start..len];
    let l = &low[start..len];
    let p = &close[start - 1..len - 1];
    let quads = h.len() / 4;
    let base = out.len();
    let slots = &mut out.spare_capacity_mut()[..h.len()];
    for q in 0..quads {
        let i = q * 4;
        let r0 = tr(h[i], l[i], p[i]) * inv;
        let r1 = tr(h[i + 1], l[i + 1], p[i + 1]) * inv;
        let r2 = tr(h[i + 2], l[i + 2], p[i + 2]) * inv;
        let r3 = tr(h[i + 3], l[i + 3], p[i + 3]) * inv;
        let b1 = r0 * keep + r1;
        let b2 = b1 * keep + r2;
        slots[i].write(prev * keep + r0);
        slots[i + 1].write(prev * k2 + b1);
        slots[i + 2].write(prev * k3 + b2);
        prev = prev * k4 + (b2 * keep + r3);
        slots[i + 3].write(prev);
    }
    for i in quads * 4..h.len() {
        prev = prev * keep + tr(h[i], l[i], p[i]) * inv;
        slots[i].write(prev);
    }
    // SAFETY: every one of the `h.len()` slots was written above.
    unsafe { out.set_len(base + h.len()) };
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
