//! TA-Lib's rules, stated once: the streaming indicators and the batch kernels
//! both follow them, so that both agree with TA-Lib to the last bits.

/// TA-Lib treats |x| < 1e-8 as zero.
pub const EPSILON: f64 = 0.00000001;

/// Zero as TA-Lib judges it.
pub fn is_zero(v: f64) -> bool {
    -EPSILON < v && v < EPSILON
}

/// The smoothing factor of an EMA over `n` values: 2 / (n + 1). Every EMA is
/// seeded with the simple average of its first `n` values.
pub fn ema_k(n: usize) -> f64 {
    2.0 / (n as f64 + 1.0)
}

/// RSI from Wilder-smoothed average gain and loss (seeded with the plain
/// averages of the first `n` changes): 0 when both are zero.
pub fn rsi(gain: f64, loss: f64) -> f64 {
    let total = gain + loss;
    if is_zero(total) {
        0.0
    } else {
        100.0 * (gain / total)
    }
}

/// A standard deviation from a variance `E[x²] - mean²`: 0 below 1e-8, where
/// the subtraction has cancelled to noise.
pub fn std_from_variance(variance: f64) -> f64 {
    if variance < EPSILON {
        0.0
    } else {
        variance.sqrt()
    }
}
