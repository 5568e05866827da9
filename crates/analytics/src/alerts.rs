//! Alerts computed as bars flow: moving-average crossings, RSI extremes,
//! volume spikes and large moves. Each names company, date, rule and values.

use std::collections::{HashMap, VecDeque};

use stockstream_core::Bar;

use crate::indicators::IndicatorRow;

pub use stockstream_core::Alert;

/// Thresholds of the rules.
pub const RSI_HIGH: f64 = 70.0;
/// RSI below this: oversold.
pub const RSI_LOW: f64 = 30.0;
/// Volume above this multiple of its recent average: a volume spike.
pub const VOLUME_FACTOR: f64 = 1.5;
/// Bars in the recent volume average.
pub const VOLUME_WINDOW: usize = 10;
/// A move of the close larger than this fraction: a large move.
pub const LARGE_MOVE: f64 = 0.05;

/// What the rules need of the previous bar.
#[derive(Debug, Clone, Copy)]
struct Previous {
    sma10: Option<f64>,
    sma50: Option<f64>,
    rsi14: Option<f64>,
}

#[derive(Debug, Default)]
struct CompanyState {
    prev: Option<Previous>,
    volumes: VecDeque<f64>,
}

/// Rule state per company; feed it each bar with its indicators, in order.
#[derive(Debug, Default)]
pub struct AlertEngine {
    by_company: HashMap<String, CompanyState>,
}

impl AlertEngine {
    /// Forgets a company's rule state (its history is read back before its next bar).
    pub fn forget(&mut self, company: &str) {
        self.by_company.remove(company);
    }

    /// Checks one bar and its indicators against every rule; returns the alerts it raised.
    pub fn check(&mut self, bar: &Bar, row: &IndicatorRow) -> Vec<Alert> {
        let state = match self.by_company.get_mut(&bar.company) {
            Some(s) => s,
            None => self.by_company.entry(bar.company.clone()).or_default(),
        };
        let mut out = Vec::new();
        let mut alert = |rule: &str, message: String, values: serde_json::Value| {
            out.push(Alert {
                company: bar.company.clone(),
                symbol: bar.symbol.clone(),
                date: row.date.clone(),
                rule: rule.to_string(),
                message,
                values,
            });
        };
        if let (Some(prev), Some(s10), Some(s50)) = (&state.prev, row.sma10, row.sma50) {
            if let (Some(p10), Some(p50)) = (prev.sma10, prev.sma50) {
                // Built only for an alert: most bars cross nothing.
                let values = || serde_json::json!({ "sma10": s10, "sma50": s50, "close": row.close });
                if p10 <= p50 && s10 > s50 {
                    alert(
                        "sma_cross_up",
                        format!("{}: SMA 10 ({s10:.2}) crossed above SMA 50 ({s50:.2}) on {}", bar.company, row.date),
                        values(),
                    );
                } else if p10 >= p50 && s10 < s50 {
                    alert(
                        "sma_cross_down",
                        format!("{}: SMA 10 ({s10:.2}) crossed below SMA 50 ({s50:.2}) on {}", bar.company, row.date),
                        values(),
                    );
                }
            }
        }
        if let Some(rsi) = row.rsi14 {
            let prev_rsi = state.prev.as_ref().and_then(|p| p.rsi14);
            // On entering the zone, not on every bar inside it.
            if rsi > RSI_HIGH && prev_rsi.is_none_or(|p| p <= RSI_HIGH) {
                alert(
                    "rsi_overbought",
                    format!("{}: RSI 14 at {rsi:.1}, above {RSI_HIGH} on {}", bar.company, row.date),
                    serde_json::json!({ "rsi14": rsi }),
                );
            } else if rsi < RSI_LOW && prev_rsi.is_none_or(|p| p >= RSI_LOW) {
                alert(
                    "rsi_oversold",
                    format!("{}: RSI 14 at {rsi:.1}, below {RSI_LOW} on {}", bar.company, row.date),
                    serde_json::json!({ "rsi14": rsi }),
                );
            }
        }
        if state.volumes.len() == VOLUME_WINDOW {
            let average = state.volumes.iter().sum::<f64>() / VOLUME_WINDOW as f64;
            if average > 0.0 && bar.volume > VOLUME_FACTOR * average {
                alert(
                    "volume_spike",
                    format!(
                        "{}: volume {:.0} is {:.1}× its {VOLUME_WINDOW}-bar average on {}",
                        bar.company,
                        bar.volume,
                        bar.volume / average,
                        row.date
                    ),
                    serde_json::json!({ "volume": bar.volume, "average": average }),
                );
            }
            state.volumes.pop_front();
        }
        state.volumes.push_back(bar.volume);
        if let Some(r) = row.ret {
            if r.abs() > LARGE_MOVE {
                alert(
                    "large_move",
                    format!("{}: moved {:+.1}% on {}", bar.company, r * 100.0, row.date),
                    serde_json::json!({ "return": r, "close": row.close }),
                );
            }
        }
        state.prev = Some(Previous { sma10: row.sma10, sma50: row.sma50, rsi14: row.rsi14 });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Indicators;
    use stockstream_core::Ts;

    fn bar(i: i64, close: f64, volume: f64) -> Bar {
        Bar {
            symbol: "X".into(),
            company: "X".into(),
            ts: Ts::Date(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(i)),
            open: close,
            high: close,
            low: close,
            close,
            volume,
            vwap: None,
            trades: None,
        }
    }

    fn rules(closes: &[(f64, f64)]) -> Vec<String> {
        let (mut ind, mut engine) = (Indicators::default(), AlertEngine::default());
        closes
            .iter()
            .enumerate()
            .flat_map(|(i, (c, v))| {
                let b = bar(i as i64, *c, *v);
                let row = ind.update(&b).unwrap();
                engine.check(&b, &row).into_iter().map(|a| a.rule).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn each_rule_fires_once_when_its_condition_starts() {
        // 60 bars falling slowly, then a rally: SMA10 crosses above SMA50 once.
        let mut series: Vec<(f64, f64)> = (0..60).map(|i| (100.0 - i as f64 * 0.1, 1000.0)).collect();
        series.extend((0..15).map(|i| (94.0 + i as f64 * 1.0, 1000.0)));
        let fired = rules(&series);
        assert_eq!(fired.iter().filter(|r| **r == "sma_cross_up").count(), 1, "{fired:?}");
        assert!(fired.iter().any(|r| r == "rsi_oversold") && fired.iter().any(|r| r == "rsi_overbought"), "{fired:?}");
        assert!(!fired.iter().any(|r| r == "sma_cross_down"));
        assert!(!fired.iter().any(|r| r == "volume_spike") && !fired.iter().any(|r| r == "large_move"));
    }

    #[test]
    fn volume_spikes_and_large_moves() {
        let mut series: Vec<(f64, f64)> = (0..12).map(|_| (100.0, 1000.0)).collect();
        series.push((100.0, 1600.0)); // 1.6× the average
        series.push((106.0, 1000.0)); // +6%
        series.push((106.0, 1400.0)); // below 1.5× (average now 1060)
        let fired = rules(&series);
        // RSI 14 appears on the last bar, at 100 after the jump.
        assert_eq!(fired, ["volume_spike", "large_move", "rsi_overbought"]);
    }
}
