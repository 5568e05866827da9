//! Statistics over a stored range, with pandas' definitions: sample standard
//! deviation (ddof = 1), linearly interpolated quantiles, Pearson correlation on
//! pairwise complete observations.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stockstream_core::{Bar, Ts};

use crate::indicators::TRADING_DAYS;

/// `DataFrame.describe()` of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Describe {
    /// Values counted.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// 25th percentile.
    pub q25: f64,
    /// Median.
    pub q50: f64,
    /// 75th percentile.
    pub q75: f64,
    /// Largest value.
    pub max: f64,
}

/// `describe()` of Open, High, Low, Close and Volume (in [`FIELDS`]' order),
/// by name: `describe["Close"]`. Written as a map from name to [`Describe`],
/// names in alphabetical order. Held inline: many companies' statistics
/// must not cost a map each.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeOhlcv(pub [Describe; 5]);

impl std::ops::Index<&str> for DescribeOhlcv {
    type Output = Describe;

    fn index(&self, field: &str) -> &Describe {
        let i = FIELDS.iter().position(|f| *f == field).unwrap_or_else(|| panic!("no column {field:?}"));
        &self.0[i]
    }
}

impl Serialize for DescribeOhlcv {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut names: Vec<(&str, &Describe)> = FIELDS.iter().copied().zip(&self.0).collect();
        names.sort_by_key(|(name, _)| *name);
        let mut map = serializer.serialize_map(Some(names.len()))?;
        for (name, d) in names {
            map.serialize_entry(name, d)?;
        }
        map.end()
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (NaN below two values), as pandas' `std()`.
pub fn std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Quantile of sorted values with linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (sorted.len() - 1) as f64 * p;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// pandas' `describe()` of a column.
pub fn describe(values: &[f64]) -> Describe {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Describe {
        count: values.len(),
        mean: if values.is_empty() { f64::NAN } else { mean(values) },
        std: std(values),
        min: sorted.first().copied().unwrap_or(f64::NAN),
        q25: quantile(&sorted, 0.25),
        q50: quantile(&sorted, 0.5),
        q75: quantile(&sorted, 0.75),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// Box-plot statistics: quartiles, whiskers at the furthest data within 1.5 IQR
/// of the box, and the outliers beyond them (matplotlib's convention).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoxPlot {
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Lowest value within 1.5 IQR below the first quartile.
    pub whisker_low: f64,
    /// Highest value within 1.5 IQR above the third quartile.
    pub whisker_high: f64,
    /// Values beyond the whiskers.
    pub outliers: Vec<f64>,
}

/// A box plot's numbers, as matplotlib draws them.
pub fn boxplot(values: &[f64]) -> BoxPlot {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (q1, median, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.5), quantile(&sorted, 0.75));
    let iqr = q3 - q1;
    let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let inside: Vec<f64> = sorted.iter().copied().filter(|v| *v >= lo_fence && *v <= hi_fence).collect();
    BoxPlot {
        q1,
        median,
        q3,
        whisker_low: inside.first().copied().unwrap_or(q1),
        whisker_high: inside.last().copied().unwrap_or(q3),
        outliers: sorted.into_iter().filter(|v| *v < lo_fence || *v > hi_fence).collect(),
    }
}

/// Pearson correlation (NaN when either side is constant or too short).
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

/// Every statistic of one company over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyStats {
    /// The company.
    pub company: String,
    /// Its symbol.
    pub symbol: String,
    /// Bars counted.
    pub bars: usize,
    /// Date of the first bar.
    pub first: String,
    /// Date of the last bar.
    pub last: String,
    /// The distributions (`describe`, `close_box`, `return_box`), serialised
    /// in line; None where only the summary is kept (statistics of 100,000
    /// companies for their insights: 3/5 of the memory).
    #[serde(flatten)]
    pub detail: Option<Box<CompanyDetail>>,
    /// Pearson correlation of Open, High, Low, Close, Volume (in that order).
    /// Inline, not nested vectors: six allocations a company added up over
    /// 100,000 companies.
    pub ohlcv_correlation: [[f64; 5]; 5],
    /// OLS slope of Close against time in years (price units a year).
    pub trend_per_year: f64,
    /// That slope as a percentage of the mean Close.
    pub trend_pct_per_year: f64,
    /// Last close over first close, minus one.
    pub total_return: f64,
    /// Largest fall from a previous high (negative).
    pub max_drawdown: f64,
    /// Standard deviation of log returns, annualised by the bars a year.
    pub volatility: f64,
}

/// The distributions of one company's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyDetail {
    /// Open, High, Low, Close, Volume.
    pub describe: DescribeOhlcv,
    /// Box plot of closing prices.
    pub close_box: BoxPlot,
    /// Box plot of simple returns.
    pub return_box: BoxPlot,
}

/// Names of the OHLCV columns, in the order of `ohlcv_correlation`.
pub const FIELDS: [&str; 5] = ["Open", "High", "Low", "Close", "Volume"];

/// Years since the first bar (days / 365.25) of every bar.
fn years(bars: &[Bar]) -> Vec<f64> {
    let seconds = |ts: Ts| match ts {
        Ts::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp() as f64,
        Ts::Instant(t) => t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 * 1e-9,
    };
    let t0 = seconds(bars[0].ts);
    bars.iter().map(|b| (seconds(b.ts) - t0) / 86_400.0 / 365.25).collect()
}

/// Statistics of one company's bars, oldest first. `None` when there are none.
pub fn company_stats(bars: &[Bar]) -> Option<CompanyStats> {
    let first = bars.first()?;
    let columns: Vec<Vec<f64>> = vec![
        bars.iter().map(|b| b.open).collect(),
        bars.iter().map(|b| b.high).collect(),
        bars.iter().map(|b| b.low).collect(),
        bars.iter().map(|b| b.close).collect(),
        bars.iter().map(|b| b.volume).collect(),
    ];
    let close = &columns[3];
    let returns = crate::batch::returns(close).split_off(1);
    let log_returns: Vec<f64> = close.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let x = years(bars);
    let (mx, my) = (mean(&x), mean(close));
    let sxy: f64 = x.iter().zip(close).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { f64::NAN };
    let max_drawdown = crate::batch::drawdown(close).into_iter().fold(0.0f64, f64::min);
    let days: BTreeSet<_> = bars.iter().map(|b| b.ts.date()).collect();
    let bars_per_year = TRADING_DAYS * bars.len() as f64 / days.len() as f64;
    Some(CompanyStats {
        company: first.company.clone(),
        symbol: first.symbol.clone(),
        bars: bars.len(),
        first: first.ts.to_string(),
        last: bars.last().expect("not empty").ts.to_string(),
        detail: Some(Box::new(CompanyDetail {
            describe: DescribeOhlcv([0, 1, 2, 3, 4].map(|i| describe(&columns[i]))),
            close_box: boxplot(close),
            return_box: boxplot(&returns),
        })),
        ohlcv_correlation: std::array::from_fn(|i| std::array::from_fn(|j| correlation(&columns[i], &columns[j]))),
        trend_per_year: slope,
        trend_pct_per_year: slope / my * 100.0,
        total_return: close[close.len() - 1] / close[0] - 1.0,
        max_drawdown,
        volatility: std(&log_returns) * bars_per_year.sqrt(),
    })
}

/// Statistics across companies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketStats {
    /// Each company's statistics, by name.
    pub companies: Vec<CompanyStats>,
    /// The names of the companies correlated (the first `MAX_CORRELATED`
    /// with bars), in the order of `return_correlation`.
    pub names: Vec<String>,
    /// Pearson correlation of simple returns between companies, on the dates
    /// both have (pairwise complete, as pandas' `DataFrame.corr`).
    pub return_correlation: Vec<Vec<f64>>,
    /// When the correlations cover each company's newest bars only: how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_window: Option<usize>,
}

/// `bars_by_company`: each company's bars, oldest first, companies by name.
pub fn market_stats(bars_by_company: &[Vec<Bar>]) -> MarketStats {
    let mut builder = MarketStatsBuilder::default();
    for bars in bars_by_company {
        builder.push(bars);
    }
    builder.finish()
}

/// [`market_stats`] one company at a time, so that a caller reading a store
/// holds one company's bars at once, never the whole store.
#[derive(Debug, Default)]
pub struct MarketStatsBuilder {
    companies: Vec<CompanyStats>,
    /// Returns by date of the companies correlated.
    returns: Vec<BTreeMap<Ts, f64>>,
    names: Vec<String>,
    /// When set, only these companies keep their detail.
    summaries_only: Option<std::collections::HashSet<String>>,
}

impl MarketStatsBuilder {
    /// A builder for `companies` companies: their statistics (about 1 KB
    /// each) take one allocation of the right size, not a doubling vector's
    /// half again as much.
    pub fn with_capacity(companies: usize) -> Self {
        MarketStatsBuilder { companies: Vec::with_capacity(companies), ..Default::default() }
    }

    /// Keeps only the summary of each company (see [`CompanyStats::detail`])
    /// but those named in `detailed`.
    pub fn summaries_but(mut self, detailed: std::collections::HashSet<String>) -> Self {
        self.summaries_only = Some(detailed);
        self
    }

    /// Counts one company's bars, oldest first; companies come by name.
    pub fn push(&mut self, bars: &[Bar]) {
        let Some(mut stats) = company_stats(bars) else { return };
        if self.summaries_only.as_ref().is_some_and(|detailed| !detailed.contains(&stats.company)) {
            stats.detail = None;
        }
        // Pairs grow with the square of the companies: the first
        // `MAX_CORRELATED` by name are correlated, as a run's statistics do.
        if self.returns.len() < crate::running::MAX_CORRELATED {
            self.returns.push(bars.windows(2).map(|w| (w[1].ts, w[1].close / w[0].close - 1.0)).collect());
            self.names.push(stats.company.clone());
        }
        self.companies.push(stats);
    }

    /// The statistics of every company pushed.
    pub fn finish(self) -> MarketStats {
        let returns = self.returns;
        let return_correlation = returns
            .iter()
            .map(|a| {
                returns
                    .iter()
                    .map(|b| {
                        let (x, y): (Vec<f64>, Vec<f64>) =
                            a.iter().filter_map(|(ts, ra)| b.get(ts).map(|rb| (*ra, *rb))).unzip();
                        correlation(&x, &y)
                    })
                    .collect()
            })
            .collect();
        MarketStats { names: self.names, companies: self.companies, return_correlation, correlation_window: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many companies: the pairs correlated stay bounded (the first
    /// `MAX_CORRELATED`), and insights over them hold together.
    #[test]
    fn correlations_are_bounded_whatever_the_number_of_companies() {
        let bar = |company: &str, day: u32, close: f64| Bar {
            company: company.into(),
            symbol: company.into(),
            ts: format!("2024-01-{day:02}").parse().unwrap(),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
            vwap: None,
            trades: None,
        };
        let series: Vec<Vec<Bar>> = (0..1_000)
            .map(|c| (1..=4).map(|d| bar(&format!("C{c:04}"), d, 10.0 + ((c * d) % 7) as f64)).collect())
            .collect();
        let stats = market_stats(&series);
        assert_eq!(stats.companies.len(), 1_000);
        let n = crate::running::MAX_CORRELATED;
        assert_eq!((stats.names.len(), stats.return_correlation.len()), (n, n));
        assert!(stats.return_correlation.iter().all(|row| row.len() == n));
        assert_eq!(stats.names[0], "C0000");
        crate::insights(&stats); // pairs of the correlated names only
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 2.5);
        let d = describe(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((d.count, d.min, d.max, d.q75), (4, 1.0, 4.0, 3.25));
        assert!((d.std - 1.2909944487358056).abs() < 1e-15);
    }

    #[test]
    fn boxplot_whiskers_and_outliers() {
        let b = boxplot(&[1.0, 2.0, 3.0, 4.0, 5.0, 100.0]);
        assert_eq!(b.outliers, [100.0]);
        assert_eq!((b.whisker_low, b.whisker_high), (1.0, 5.0));
    }

    #[test]
    fn correlation_extremes() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-15);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-15);
        assert!(correlation(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }
}
