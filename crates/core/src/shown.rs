//! Numbers as a person reads them, the same in every human-readable output
//! (terminal tables, the report).

/// A stored price as a person reads it: at least two decimals, and every digit
/// it has (the shortest text that reads back as the same number), so that
/// 1.0716 and 1.07296 stay apart; scientific notation for magnitudes no price has.
pub fn price(x: f64) -> String {
    if x.abs() >= 1e12 {
        return format!("{x:.3e}");
    }
    let exact = format!("{x}");
    match exact.split_once('.') {
        Some((_, decimals)) if decimals.len() > 2 => exact,
        _ => format!("{x:.2}"),
    }
}

/// A computed value (an average, an index): six significant digits, at least
/// two decimals.
pub fn computed(x: f64) -> String {
    if x.abs() >= 1e12 {
        return format!("{x:.3e}");
    }
    let whole_digits = if x.abs() < 1.0 { 1 } else { x.abs().log10().floor() as usize + 1 };
    format!("{x:.*}", 6usize.saturating_sub(whole_digits).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_keep_every_digit_they_have() {
        let shown: Vec<String> = [1.0716, 1.07296, 1.07, 270.5, 1e13].into_iter().map(price).collect();
        assert_eq!(shown, ["1.0716", "1.07296", "1.07", "270.50", "1.000e13"]);
        assert_eq!(computed(1.234_567_8), "1.23457");
        assert_eq!(computed(1234.5678), "1234.57");
    }
}
