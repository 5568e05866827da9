//! Insights: sentences computed from the statistics, never written by hand.

use serde::Serialize;

use crate::stats::{CompanyStats, MarketStats};

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

/// Bars a company needs before its trend or volatility is spoken of: a year's
/// trend fitted to fewer than a month of trading days, or an annualised
/// volatility from fewer than 20 returns, says more about the noise than the
/// company.
pub const MIN_BARS: usize = 21;

/// The company with the largest (or smallest) value of `f`, ignoring NaN.
fn extreme<T>(items: &[T], f: impl Fn(&T) -> f64, largest: bool) -> Option<(&T, f64)> {
    items.iter().map(|i| (i, f(i))).filter(|(_, v)| v.is_finite()).fold(None, |best, (i, v)| match best {
        Some((_, b)) if (largest && b >= v) || (!largest && b <= v) => best,
        _ => Some((i, v)),
    })
}

/// An item and the value it is ranked by.
type Ranked<'a, T> = (&'a T, f64);

/// The most and the least of `f` over `items`: a superlative needs two or more
/// to compare, and two different ones to name (all equal says nothing).
fn most_and_least<T>(items: &[T], f: impl Fn(&T) -> f64) -> Option<(Ranked<'_, T>, Ranked<'_, T>)> {
    let most = extreme(items, &f, true)?;
    let least = extreme(items, &f, false)?;
    (items.iter().filter(|i| f(i).is_finite()).count() >= 2 && !std::ptr::eq(most.0, least.0)).then_some((most, least))
}

/// "rose 12.3%" or "fell 4.5%": the verb follows the sign.
fn moved(v: f64) -> String {
    format!("{} {:.1}%", if v < 0.0 { "fell" } else { "rose" }, v.abs())
}

/// Companies given an insight of their own (the first by name).
pub const MAX_COMPANY_INSIGHTS: usize = 20;

/// Sentences about the market: trends, volatility and correlations. A company
/// with fewer than [`MIN_BARS`] bars is left out of them; superlatives compare
/// two or more companies, and one company alone is described, not ranked.
pub fn insights(stats: &MarketStats) -> Vec<Insight> {
    let c: Vec<&CompanyStats> = stats.companies.iter().filter(|s| s.bars >= MIN_BARS).collect();
    let mut out = Vec::new();
    let mut push = |kind, companies: Vec<String>, value: f64, text: String| {
        out.push(Insight { kind, companies, value, text });
    };
    let trend = |s: &&CompanyStats| s.trend_pct_per_year;
    if let Some(((up, v), (down, w))) = most_and_least(&c, trend) {
        let rank = if v > 0.0 { "the strongest upward trend" } else { "the mildest decline" };
        push("strongest_trend", vec![up.company.clone()], v, format!(
            "{} showed {rank}: its closing price {} of its mean a year (linear fit), a total return of {} from {} to {}.",
            up.company, moved(v), pct(up.total_return), up.first, up.last
        ));
        let rank = if w < 0.0 { "the steepest decline" } else { "the weakest trend" };
        push(
            "weakest_trend",
            vec![down.company.clone()],
            w,
            format!(
                "{} showed {rank}: its closing price {} of its mean a year (total return {}).",
                down.company,
                moved(w),
                pct(down.total_return)
            ),
        );
    } else if let [one] = c[..] {
        if one.trend_pct_per_year.is_finite() {
            push(
                "trend",
                vec![one.company.clone()],
                one.trend_pct_per_year,
                format!(
                    "{}'s closing price {} of its mean a year (linear fit), a total return of {} from {} to {}.",
                    one.company,
                    moved(one.trend_pct_per_year),
                    pct(one.total_return),
                    one.first,
                    one.last
                ),
            );
        }
    }
    let volatility = |s: &&CompanyStats| s.volatility;
    if let Some(((most, v), (least, w))) = most_and_least(&c, volatility) {
        push(
            "most_volatile",
            vec![most.company.clone()],
            v,
            format!(
                "{} was the most volatile, with an annualised volatility of {:.1}% and a maximum drawdown of {}.",
                most.company,
                v * 100.0,
                pct(most.max_drawdown)
            ),
        );
        push(
            "least_volatile",
            vec![least.company.clone()],
            w,
            format!("{} was the least volatile, with an annualised volatility of {:.1}%.", least.company, w * 100.0),
        );
    } else if let [one] = c[..] {
        if one.volatility.is_finite() {
            push(
                "volatility",
                vec![one.company.clone()],
                one.volatility,
                format!(
                    "{} had an annualised volatility of {:.1}% and a maximum drawdown of {}.",
                    one.company,
                    one.volatility * 100.0,
                    pct(one.max_drawdown)
                ),
            );
        }
    }
    let eligible = |name: &str| c.iter().any(|s| s.company == name);
    let n = stats.names.len();
    let pairs: Vec<(usize, usize, f64)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .filter(|&(i, j)| eligible(&stats.names[i]) && eligible(&stats.names[j]))
        .map(|(i, j)| (i, j, stats.return_correlation[i][j]))
        .filter(|p| p.2.is_finite())
        .collect();
    let names = |&(i, j, _): &(usize, usize, f64)| (stats.names[i].clone(), stats.names[j].clone());
    let over = stats.correlation_window.map(|n| format!(" over their last {n} bars")).unwrap_or_default();
    if let Some(((most, v), (least, w))) = most_and_least(&pairs, |p| p.2) {
        let (a, b) = names(most);
        push(
            "most_correlated_pair",
            vec![a.clone(), b.clone()],
            v,
            format!("{a} and {b} moved most alike: their daily returns correlate at {v:.2}{over}."),
        );
        let (a, b) = names(least);
        push(
            "least_correlated_pair",
            vec![a.clone(), b.clone()],
            w,
            format!("{a} and {b} moved least alike: their daily returns correlate at {w:.2}{over}."),
        );
    } else if let [pair] = pairs[..] {
        let (a, b) = names(&pair);
        push(
            "return_correlation",
            vec![a.clone(), b.clone()],
            pair.2,
            format!("{a} and {b}: their daily returns correlate at {:.2}{over}.", pair.2),
        );
    }
    // A correlation of a constant is undefined.
    // One line a company: for the first companies by name only, so that a
    // store of 100,000 companies gives a page of insights, not 100,000 lines.
    for s in c.iter().filter(|s| s.ohlcv_correlation[0][3].is_finite()).take(MAX_COMPANY_INSIGHTS) {
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

#[cfg(test)]
mod tests {
    use stockstream_core::Bar;

    use super::*;
    use crate::stats::market_stats;

    /// `n` daily bars whose close moves by `step` a day, with a wobble.
    fn bars(company: &str, n: usize, start: f64, step: f64) -> Vec<Bar> {
        let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        (0..n)
            .map(|i| {
                let close = start + step * i as f64 + if i % 2 == 0 { 0.3 } else { -0.3 };
                Bar {
                    company: company.into(),
                    symbol: "X".into(),
                    ts: stockstream_core::Ts::Date(day0 + chrono::Duration::days(i as i64)),
                    open: close,
                    high: close + 1.0,
                    low: close - 1.0,
                    close,
                    volume: 1.0,
                    vwap: None,
                    trades: None,
                }
            })
            .collect()
    }

    fn kinds(found: &[Insight]) -> Vec<&'static str> {
        found.iter().map(|i| i.kind).collect()
    }

    #[test]
    fn one_company_is_described_not_ranked() {
        let found = insights(&market_stats(&[bars("NVIDIA", 60, 100.0, -1.0)]));
        assert_eq!(kinds(&found), ["trend", "volatility", "open_close_correlation"]);
        assert!(found[0].text.starts_with("NVIDIA's closing price fell "), "{}", found[0].text);
        assert!(found.iter().all(|i| !i.text.contains("rose -") && !i.text.contains("fell -")), "{found:?}");
    }

    #[test]
    fn too_few_bars_say_nothing() {
        let found = insights(&market_stats(&[bars("A", MIN_BARS - 1, 10.0, 1.0), bars("B", 1, 10.0, 0.0)]));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn superlatives_name_two_companies_and_words_follow_the_sign() {
        let found = insights(&market_stats(&[bars("Fall", 60, 100.0, -1.0), bars("Crash", 60, 100.0, -1.5)]));
        let text = |kind: &str| found.iter().find(|i| i.kind == kind).map(|i| i.text.clone()).unwrap_or_default();
        assert!(text("strongest_trend").starts_with("Fall showed the mildest decline: its closing price fell "));
        assert!(text("weakest_trend").starts_with("Crash showed the steepest decline: its closing price fell "));
        let (most, least) = (text("most_volatile"), text("least_volatile"));
        assert!(most.starts_with("Crash") && least.starts_with("Fall"), "{most} / {least}");
        // One pair is a correlation, not the most and the least alike at once.
        assert!(kinds(&found).contains(&"return_correlation"), "{found:?}");
        assert!(!kinds(&found).contains(&"most_correlated_pair"));
        // A one-bar company in the same market is left out.
        let with_one_bar = insights(&market_stats(&[bars("Fall", 60, 100.0, -1.0), bars("Tiny", 1, 5.0, 0.0)]));
        assert!(with_one_bar.iter().all(|i| !i.companies.contains(&"Tiny".to_string())), "{with_one_bar:?}");
        assert_eq!(kinds(&with_one_bar)[..2], ["trend", "volatility"]);
    }
}
