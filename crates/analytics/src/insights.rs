//! Insights: sentences computed from the statistics, never written by hand.

use serde::Serialize;

use crate::stats::MarketStats;

#[derive(Debug, Clone, PartialEq, Serialize)]
/// One sentence computed from the statistics, with what it is about.
pub struct Insight {
    /// What the sentence is about: `strongest_trend`, `most_volatile`, ...
    pub kind: &'static str,
    /// The companies it speaks of.
    pub companies: Vec<String>,
    /// The number it rests on.
    pub value: f64,
    /// The sentence.
    pub text: String,
}

fn pct(v: f64) -> String {
    format!("{}{:.1}%", if v >= 0.0 { "+" } else { "" }, v * 100.0)
}

/// The company with the largest (or smallest) value of `f`, ignoring NaN.
fn extreme<T>(items: &[T], f: impl Fn(&T) -> f64, largest: bool) -> Option<(&T, f64)> {
    items.iter().map(|i| (i, f(i))).filter(|(_, v)| v.is_finite()).fold(None, |best, (i, v)| match best {
        Some((_, b)) if (largest && b >= v) || (!largest && b <= v) => best,
        _ => Some((i, v)),
    })
}

/// Sentences about the market: trends, volatility and correlations.
pub fn insights(stats: &MarketStats) -> Vec<Insight> {
    let c = &stats.companies;
    let mut out = Vec::new();
    let mut push = |kind, companies: Vec<String>, value: f64, text: String| {
        out.push(Insight { kind, companies, value, text });
    };
    if let Some((s, v)) = extreme(c, |s| s.trend_pct_per_year, true) {
        push("strongest_trend", vec![s.company.clone()], v, format!(
            "{} showed the strongest upward trend: its closing price rose {:.1}% of its mean a year (linear fit), a total return of {} from {} to {}.",
            s.company, v, pct(s.total_return), s.first, s.last
        ));
    }
    if let Some((s, v)) = extreme(c, |s| s.trend_pct_per_year, false) {
        let direction = if v < 0.0 { "fell" } else { "rose only" };
        push(
            "weakest_trend",
            vec![s.company.clone()],
            v,
            format!(
            "{} showed the weakest trend: its closing price {direction} {:.1}% of its mean a year (total return {}).",
            s.company, v.abs(), pct(s.total_return)
        ),
        );
    }
    if let Some((s, v)) = extreme(c, |s| s.volatility, true) {
        push(
            "most_volatile",
            vec![s.company.clone()],
            v,
            format!(
                "{} was the most volatile, with an annualised volatility of {:.1}% and a maximum drawdown of {}.",
                s.company,
                v * 100.0,
                pct(s.max_drawdown)
            ),
        );
    }
    if let Some((s, v)) = extreme(c, |s| s.volatility, false) {
        push(
            "least_volatile",
            vec![s.company.clone()],
            v,
            format!("{} was the least volatile, with an annualised volatility of {:.1}%.", s.company, v * 100.0),
        );
    }
    let n = stats.names.len();
    let pairs: Vec<(usize, usize, f64)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .map(|(i, j)| (i, j, stats.return_correlation[i][j]))
        .collect();
    if let Some((&(i, j, _), v)) = extreme(&pairs, |p| p.2, true) {
        push(
            "most_correlated_pair",
            vec![stats.names[i].clone(), stats.names[j].clone()],
            v,
            format!(
                "{} and {} moved most alike: their daily returns correlate at {:.2}.",
                stats.names[i], stats.names[j], v
            ),
        );
    }
    if let Some((&(i, j, _), v)) = extreme(&pairs, |p| p.2, false) {
        push(
            "least_correlated_pair",
            vec![stats.names[i].clone(), stats.names[j].clone()],
            v,
            format!(
                "{} and {} moved least alike: their daily returns correlate at {:.2}.",
                stats.names[i], stats.names[j], v
            ),
        );
    }
    // A correlation over fewer than two bars, or of a constant, is undefined.
    for s in c.iter().filter(|s| s.ohlcv_correlation[0][3].is_finite()) {
        let v = s.ohlcv_correlation[0][3];
        push(
            "open_close_correlation",
            vec![s.company.clone()],
            v,
            format!("{}: opening and closing prices correlate at {:.3} over {} bars.", s.company, v, s.bars),
        );
    }
    out
}
