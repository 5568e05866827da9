//! Numbers as a person reads them, the same in every human-readable output
//! (terminal tables, the report).

use std::io::Write;

use crate::{encode, Bar};

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

/// How [`write_bars`] lays bars out.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BarFormat {
    /// Aligned columns for a terminal.
    Table,
    /// CSV in the original project's layout, with the symbol (and `VWAP`,
    /// `Trades` for bars made from trades).
    Csv,
    /// A JSON array of wire-format bars.
    Json,
}

/// Writes bars in a format.
pub fn write_bars(out: &mut impl Write, bars: &[Bar], format: BarFormat) -> std::io::Result<()> {
    match format {
        BarFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let csv_error = |e: csv::Error| std::io::Error::other(e.to_string());
            // Bars made from trades carry two more columns, empty where unknown.
            let traded = bars.iter().any(|b| b.vwap.is_some() || b.trades.is_some());
            let mut header = vec!["Date", "Open", "High", "Low", "Close", "Volume", "Company Name", "Symbol"];
            if traded {
                header.extend(["VWAP", "Trades"]);
            }
            w.write_record(&header).map_err(csv_error)?;
            for b in bars {
                let mut row = vec![
                    b.ts.to_string(),
                    b.open.to_string(),
                    b.high.to_string(),
                    b.low.to_string(),
                    b.close.to_string(),
                    b.volume.to_string(),
                    b.company.clone(),
                    b.symbol.clone(),
                ];
                if traded {
                    row.push(b.vwap.map(|v| v.to_string()).unwrap_or_default());
                    row.push(b.trades.map(|t| t.to_string()).unwrap_or_default());
                }
                w.write_record(&row).map_err(csv_error)?;
            }
            w.flush()?;
        }
        BarFormat::Json => {
            out.write_all(b"[")?;
            for (i, b) in bars.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                out.write_all(&encode(b))?;
            }
            out.write_all(b"]\n")?;
        }
        BarFormat::Table => {
            writeln!(
                out,
                "{:<22} {:>10} {:>10} {:>10} {:>10} {:>14}  Company",
                "Date", "Open", "High", "Low", "Close", "Volume"
            )?;
            for b in bars {
                writeln!(
                    out,
                    "{:<22} {:>10} {:>10} {:>10} {:>10} {:>14}  {}",
                    b.ts.to_string(),
                    price(b.open),
                    price(b.high),
                    price(b.low),
                    price(b.close),
                    b.volume,
                    b.company
                )?;
            }
            writeln!(out, "({} bars)", bars.len())?;
        }
    }
    Ok(())
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
