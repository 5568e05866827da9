//! The market statistics of [`crate::stats`], computed in one pass as bars
//! flow, in memory bounded by the number of companies, not of bars.
//!
//! Exact (to rounding, as the batch formulas): counts, first and last dates,
//! means, standard deviations, minima and maxima, the OHLCV and return
//! correlations (running co-moments), the trend (running least squares),
//! total return, maximum drawdown and volatility. Estimated: the quartiles of
//! `describe` and of the box plots, from a t-digest of each column (rank error
//! well under 1% of the bars); a box plot's whiskers and outliers come from the
//! [`EXTREMES`] lowest and highest values kept exactly, so they are exact while
//! no more than that many values lie beyond a fence (then the outliers listed
//! are the most extreme ones).

use std::collections::{BTreeMap, HashMap};

use stockstream_core::{Bar, CoMoments, SeriesSummary, Ts};
use tdigest::TDigest;

use crate::indicators::TRADING_DAYS;
use crate::stats::{BoxPlot, CompanyDetail, CompanyStats, Describe, DescribeOhlcv, MarketStats};

/// Values kept exactly at each end of a box-plotted column.
pub const EXTREMES: usize = 256;

/// Companies whose returns are correlated with each other (the first by
/// name, wherever the statistics are computed): pairs grow with the square of
/// their number.
pub const MAX_CORRELATED: usize = 100;

/// Return dates waiting for every company's return of that date; past this,
/// the oldest are counted with the companies that have them.
const PENDING_DATES: usize = 4096;

/// Centroids of each t-digest.
const DIGEST_SIZE: usize = 200;

/// One column's quartiles and extremes: exact while it holds few values (a
/// company with few bars costs a few hundred bytes), then estimated.
#[derive(Debug, Clone)]
enum Column {
    /// Up to [`EXACT_VALUES`] values, as they came.
    Exact { values: Vec<f64>, keep_extremes: bool },
    /// More: a t-digest and the extremes kept exactly.
    Digested(Box<Digested>),
}

/// Values a column keeps as they are before it summarises them.
const EXACT_VALUES: usize = 64;

/// A column of many values: quartiles estimated, lowest and highest exact.
#[derive(Debug, Clone)]
struct Digested {
    digest: TDigest,
    /// Values not yet in the digest, merged [`EXACT_VALUES`] at a time (the
    /// digest's own buffer would reserve 8 KB on its first value).
    pending: Vec<f64>,
    min: f64,
    max: f64,
    lowest: BTreeMap<OrderedF64, usize>,
    highest: BTreeMap<OrderedF64, usize>,
    kept: (usize, usize),
    keep_extremes: bool,
}

/// An f64 ordered by `total_cmp`, as a map key.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedF64(f64);

impl Eq for OrderedF64 {}

impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Column {
    fn new(keep_extremes: bool) -> Self {
        Column::Exact { values: Vec::new(), keep_extremes }
    }

    fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        match self {
            Column::Exact { values, keep_extremes } => {
                values.push(v);
                if values.len() > EXACT_VALUES {
                    *self = Column::Digested(Box::new(Digested::of(std::mem::take(values), *keep_extremes)));
                }
            }
            Column::Digested(d) => d.push(v),
        }
    }

    fn describe(&mut self, moments: &CoMoments<5>, i: usize) -> Describe {
        let count = moments.n as usize;
        let (min, q25, q50, q75, max) = match self {
            Column::Exact { values, .. } => {
                values.sort_by(f64::total_cmp);
                let q = |p| crate::stats::quantile(values, p);
                let (min, max) = (values.first().copied(), values.last().copied());
                (min.unwrap_or(f64::NAN), q(0.25), q(0.5), q(0.75), max.unwrap_or(f64::NAN))
            }
            Column::Digested(d) => (d.min, d.quantile(0.25), d.quantile(0.5), d.quantile(0.75), d.max),
        };
        Describe {
            count,
            mean: if count == 0 { f64::NAN } else { moments.mean[i] },
            std: moments.std(i),
            min: if count == 0 { f64::NAN } else { min },
            q25,
            q50,
            q75,
            max: if count == 0 { f64::NAN } else { max },
        }
    }

    fn boxplot(&mut self) -> BoxPlot {
        match self {
            Column::Exact { values, .. } => crate::stats::boxplot(values),
            Column::Digested(d) => d.boxplot(),
        }
    }
}

impl Digested {
    fn of(values: Vec<f64>, keep_extremes: bool) -> Self {
        let mut d = Digested {
            digest: TDigest::new_with_size(DIGEST_SIZE),
            pending: Vec::new(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            lowest: BTreeMap::new(),
            highest: BTreeMap::new(),
            kept: (0, 0),
            keep_extremes,
        };
        for v in values {
            d.push(v);
        }
        d
    }

    fn push(&mut self, v: f64) {
        self.pending.push(v);
        if self.pending.len() >= EXACT_VALUES {
            self.merge();
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.keep_extremes {
            keep(&mut self.lowest, &mut self.kept.0, v, false);
            keep(&mut self.highest, &mut self.kept.1, v, true);
        }
    }

    fn merge(&mut self) {
        if !self.pending.is_empty() {
            self.digest = self.digest.merge_unsorted(std::mem::take(&mut self.pending));
        }
    }

    fn quantile(&mut self, q: f64) -> f64 {
        self.merge();
        self.digest.estimate_quantile(q).unwrap_or(f64::NAN)
    }

    /// matplotlib's box plot: whiskers at the furthest values within 1.5 IQR
    /// of the box, the values beyond them listed.
    fn boxplot(&mut self) -> BoxPlot {
        let (q1, median, q3) = (self.quantile(0.25), self.quantile(0.5), self.quantile(0.75));
        let iqr = q3 - q1;
        let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let expand = |map: &BTreeMap<OrderedF64, usize>| -> Vec<f64> {
            map.iter().flat_map(|(v, n)| std::iter::repeat_n(v.0, *n)).collect()
        };
        let (low, high) = (expand(&self.lowest), expand(&self.highest));
        let mut outliers: Vec<f64> = low.iter().copied().filter(|v| *v < lo_fence).collect();
        outliers.extend(high.iter().copied().filter(|v| *v > hi_fence));
        outliers.sort_by(f64::total_cmp);
        // The kept values straddle the fence when fewer than EXTREMES lie beyond it.
        let whisker_low = low.iter().copied().find(|v| *v >= lo_fence).unwrap_or(lo_fence.max(self.min)).min(q1);
        let whisker_high =
            high.iter().rev().copied().find(|v| *v <= hi_fence).unwrap_or(hi_fence.min(self.max)).max(q3);
        BoxPlot { q1, median, q3, whisker_low, whisker_high, outliers }
    }
}

/// Keeps `v` among the [`EXTREMES`] lowest values seen in `map` (value →
/// times seen), `kept` of them; with `highest`, among the highest.
fn keep(map: &mut BTreeMap<OrderedF64, usize>, kept: &mut usize, v: f64, highest: bool) {
    if *kept >= EXTREMES {
        // The least extreme kept value gives way to a more extreme one.
        let edge = if highest { map.keys().next() } else { map.keys().next_back() };
        let Some(&edge) = edge else { return };
        if (highest && v <= edge.0) || (!highest && v >= edge.0) {
            return;
        }
        let n = map.get_mut(&edge).expect("a kept value");
        *n -= 1;
        if *n == 0 {
            map.remove(&edge);
        }
        *kept -= 1;
    }
    *map.entry(OrderedF64(v)).or_insert(0) += 1;
    *kept += 1;
}

/// Everything kept of one company.
#[derive(Debug, Clone)]
struct Company {
    symbol: String,
    summary: SeriesSummary,
    columns: [Column; 5],
    returns: Column,
    /// Its place among the correlated companies.
    correlated: Option<usize>,
}

/// Pearson correlation of returns between companies, over the dates both
/// have (pairwise complete, as pandas' `DataFrame.corr`).
#[derive(Debug, Default)]
struct ReturnCorrelation {
    /// Per pair (i < j): co-moments of (return of i, return of j).
    pairs: HashMap<(usize, usize), CoMoments<2>>,
    /// Returns of a date not yet counted, by company.
    pending: BTreeMap<Ts, Vec<(usize, f64)>>,
    /// The newest date of each correlated company.
    newest: Vec<Ts>,
}

impl ReturnCorrelation {
    fn push(&mut self, company: usize, ts: Ts, r: f64) {
        self.newest[company] = ts;
        self.pending.entry(ts).or_default().push((company, r));
        // A date is complete once every company is past it (their bars come in time order).
        let oldest_newest = self.newest.iter().min().copied();
        while let Some((&date, _)) = self.pending.first_key_value() {
            let complete = oldest_newest.is_some_and(|n| date <= n);
            if !complete && self.pending.len() <= PENDING_DATES {
                break;
            }
            let (_, returns) = self.pending.pop_first().expect("not empty");
            self.count(&returns);
        }
    }

    /// Place `company` is taken by another company, new at `ts`.
    fn forget(&mut self, company: usize, ts: Ts) {
        self.pairs.retain(|(i, j), _| *i != company && *j != company);
        self.pending.retain(|_, returns| {
            returns.retain(|(c, _)| *c != company);
            !returns.is_empty()
        });
        self.newest[company] = ts;
    }

    fn count(&mut self, returns: &[(usize, f64)]) {
        for (a, &(i, ri)) in returns.iter().enumerate() {
            for &(j, rj) in &returns[a + 1..] {
                let (key, x) = if i < j { ((i, j), [ri, rj]) } else { ((j, i), [rj, ri]) };
                self.pairs.entry(key).or_default().push(x);
            }
        }
    }

    /// The matrix; `varying[i]`: company i's returns vary (its correlation
    /// with itself is then 1, else undefined, as the batch formula gives).
    fn finish(mut self, varying: &[bool]) -> Vec<Vec<f64>> {
        let n = varying.len();
        for (_, returns) in std::mem::take(&mut self.pending) {
            self.count(&returns);
        }
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let key = (i.min(j), i.max(j));
                        match (i == j, self.pairs.get(&key)) {
                            // A company with itself: every date it has.
                            (true, _) if varying[i] => 1.0,
                            (true, _) => f64::NAN,
                            (false, Some(m)) => m.correlation(0, 1),
                            (false, None) => f64::NAN,
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// A company's statistics from its summary: everything but the
/// distributions (`detail`), which a summary cannot keep.
pub fn summary_stats(company: String, symbol: String, s: &SeriesSummary) -> CompanyStats {
    let n = s.bars();
    let slope = if s.trend.c[0][0] > 0.0 { s.trend.c[0][1] / s.trend.c[0][0] } else { f64::NAN };
    let bars_per_year = TRADING_DAYS * n as f64 / s.days as f64;
    CompanyStats {
        company,
        symbol,
        bars: n as usize,
        first: s.first.to_string(),
        last: s.last.to_string(),
        detail: None,
        ohlcv_correlation: std::array::from_fn(|i| std::array::from_fn(|j| s.ohlcv.correlation(i, j))),
        trend_per_year: slope,
        trend_pct_per_year: slope / s.trend.mean[1] * 100.0,
        total_return: s.last_close / s.first_close - 1.0,
        max_drawdown: s.max_drawdown,
        volatility: s.log_returns.std(0) * bars_per_year.sqrt(),
    }
}

/// The market statistics of the bars handed to it, one company's bars in time
/// order (a bar no newer than its company's last is left out, as a
/// redelivery).
#[derive(Debug, Default)]
pub struct RunningStats {
    /// Boxed: the vector's spare room costs a pointer a company, not a state.
    companies: Vec<(String, Box<Company>)>,
    index: HashMap<String, usize>,
    correlation: ReturnCorrelation,
    /// The company in each place of the correlation (the first
    /// [`MAX_CORRELATED`] by name so far).
    correlated: Vec<usize>,
    /// The place holding the last of them by name, once every place is taken.
    last_correlated: Option<usize>,
}

impl RunningStats {
    /// How many companies are counted.
    pub fn companies(&self) -> usize {
        self.companies.len()
    }

    /// True when `company` is counted.
    pub fn counts(&self, company: &str) -> bool {
        self.index.contains_key(company)
    }

    /// Counts one bar.
    pub fn push(&mut self, bar: &Bar) {
        let values = [bar.open, bar.high, bar.low, bar.close, bar.volume];
        let Some(&i) = self.index.get(&bar.company) else {
            let correlated = self.correlated_place(&bar.company, bar.ts);
            let mut company = Company {
                symbol: bar.symbol.clone(),
                summary: SeriesSummary::of(bar),
                columns: [0, 1, 2, 3, 4].map(|i| Column::new(i == 3)),
                returns: Column::new(true),
                correlated,
            };
            for (c, v) in company.columns.iter_mut().zip(values) {
                c.push(v);
            }
            self.index.insert(bar.company.clone(), self.companies.len());
            self.companies.push((bar.company.clone(), Box::new(company)));
            return;
        };
        let c = &mut self.companies[i].1;
        let Some(r) = c.summary.push(bar) else { return };
        c.returns.push(r);
        if let Some(k) = c.correlated {
            self.correlation.push(k, bar.ts, r);
        }
        for (col, v) in c.columns.iter_mut().zip(values) {
            col.push(v);
        }
    }

    /// A place among the correlated companies for a new one, if its name is
    /// among the first [`MAX_CORRELATED`]: a free place, or the place of the
    /// last by name, whose counts are dropped. (A company's first bar starts
    /// its returns, so a newcomer misses nothing by coming late.)
    fn correlated_place(&mut self, name: &str, ts: Ts) -> Option<usize> {
        let next = self.companies.len();
        if self.correlated.len() < MAX_CORRELATED {
            self.correlation.newest.push(ts);
            self.correlated.push(next);
            return Some(self.correlated.len() - 1);
        }
        let name_at = |place: usize| self.companies[self.correlated[place]].0.as_str();
        let last = *self.last_correlated.get_or_insert_with(|| {
            (0..self.correlated.len()).max_by(|&a, &b| name_at(a).cmp(name_at(b))).expect("places are taken")
        });
        if name >= name_at(last) {
            return None;
        }
        self.companies[self.correlated[last]].1.correlated = None;
        self.correlation.forget(last, ts);
        self.correlated[last] = next;
        self.last_correlated = None;
        Some(last)
    }

    /// The statistics of every bar counted.
    pub fn finish(mut self) -> MarketStats {
        let self_correlated: Vec<Option<usize>> = self.companies.iter().map(|(_, c)| c.correlated).collect();
        let varying: Vec<bool> = self
            .correlated
            .iter()
            .map(|&i| &self.companies[i].1.summary.simple_returns)
            .map(|r| r.n >= 2.0 && r.c[0][0] > 0.0)
            .collect();
        let return_correlation = std::mem::take(&mut self.correlation).finish(&varying);
        let mut companies = Vec::with_capacity(self.companies.len());
        for (name, mut c) in self.companies {
            let describe = DescribeOhlcv([0, 1, 2, 3, 4].map(|i| c.columns[i].describe(&c.summary.ohlcv, i)));
            let mut stats = summary_stats(name, c.symbol, &c.summary);
            stats.detail = Some(Box::new(CompanyDetail {
                describe,
                close_box: c.columns[3].boxplot(),
                return_box: c.returns.boxplot(),
            }));
            companies.push(stats);
        }
        // By name, as the store lists companies; the correlations follow.
        let mut order: Vec<usize> = (0..companies.len()).collect();
        order.sort_by(|&a, &b| companies[a].company.cmp(&companies[b].company));
        let correlated_order: Vec<usize> = order.iter().filter_map(|&i| self_correlated[i]).collect();
        let names =
            order.iter().filter(|&&i| self_correlated[i].is_some()).map(|&i| companies[i].company.clone()).collect();
        let return_correlation = correlated_order
            .iter()
            .map(|&a| correlated_order.iter().map(|&b| return_correlation[a][b]).collect())
            .collect();
        let mut slots: Vec<Option<CompanyStats>> = companies.into_iter().map(Some).collect();
        let companies = order.iter().map(|&i| slots[i].take().expect("each once")).collect();
        MarketStats { companies, names, return_correlation, correlation_window: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{market_stats, quantile, FIELDS};

    fn detail(s: &CompanyStats) -> &CompanyDetail {
        s.detail.as_deref().expect("every statistic kept")
    }

    /// Three companies over `days` days: prices from a seeded walk with fat
    /// tails, one company starting late and one ending early, bars interleaved
    /// by date as a pipeline sees them.
    fn market(days: usize) -> Vec<Vec<Bar>> {
        let mut seed = 42u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let mut out = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut price = [100.0, 20.0, 500.0];
        for d in 0..days {
            for (k, name) in ["Acme", "Bolt", "Cogs"].iter().enumerate() {
                if (k == 1 && d < days / 5) || (k == 2 && d > days * 4 / 5) {
                    continue;
                }
                let u = next();
                // Mostly small moves, now and then a large one: outliers to box.
                let step = if u < 0.02 { (next() - 0.5) * 0.4 } else { (u - 0.5) * 0.04 };
                let open = price[k];
                price[k] *= 1.0 + step;
                let close = price[k];
                out[k].push(Bar {
                    company: name.to_string(),
                    symbol: name.to_uppercase(),
                    ts: Ts::Date(start + chrono::Duration::days(d as i64)),
                    open,
                    high: open.max(close) * (1.0 + next() * 0.01),
                    low: open.min(close) * (1.0 - next() * 0.01),
                    close,
                    volume: (1e6 * (0.5 + next())).round(),
                    vwap: None,
                    trades: None,
                });
            }
        }
        out
    }

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12
    }

    /// `got` lies between the exact quantiles at `q` ± 1%.
    fn near_quantile(values: &[f64], q: f64, got: f64) -> bool {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi) = (quantile(&sorted, (q - 0.01).max(0.0)), quantile(&sorted, (q + 0.01).min(1.0)));
        lo <= got && got <= hi
    }

    #[test]
    fn one_pass_equals_the_batch_statistics() {
        let by_company = market(3000);
        let exact = market_stats(&by_company);
        let mut running = RunningStats::default();
        let longest = by_company.iter().map(Vec::len).max().unwrap();
        // Interleaved by date; a redelivered bar changes nothing.
        let mut all: Vec<&Bar> = by_company.iter().flatten().collect();
        all.sort_by_key(|b| b.ts);
        for (i, bar) in all.iter().enumerate() {
            running.push(bar);
            if i % 97 == 0 {
                running.push(bar);
            }
        }
        assert!(longest > 2000);
        let got = running.finish();
        assert_eq!(got.names, exact.names);
        for (g, e) in got.companies.iter().zip(&exact.companies) {
            assert_eq!(
                (&g.company, &g.symbol, g.bars, &g.first, &g.last),
                (&e.company, &e.symbol, e.bars, &e.first, &e.last)
            );
            for (field, values) in FIELDS.iter().zip(0..) {
                let column: Vec<f64> = by_company
                    .iter()
                    .flatten()
                    .filter(|b| b.company == g.company)
                    .map(|b| [b.open, b.high, b.low, b.close, b.volume][values])
                    .collect();
                let (gd, ed) = (&detail(g).describe[*field], &detail(e).describe[*field]);
                assert_eq!(gd.count, ed.count);
                for (a, b) in [(gd.mean, ed.mean), (gd.std, ed.std), (gd.min, ed.min), (gd.max, ed.max)] {
                    assert!(close(a, b), "{} {field}: {a} vs {b}", g.company);
                }
                for (q, v) in [(0.25, gd.q25), (0.5, gd.q50), (0.75, gd.q75)] {
                    assert!(near_quantile(&column, q, v), "{} {field} q{q}: {v} vs {}", g.company, ed.q50);
                }
            }
            for (a, b) in [
                (g.trend_per_year, e.trend_per_year),
                (g.trend_pct_per_year, e.trend_pct_per_year),
                (g.total_return, e.total_return),
                (g.max_drawdown, e.max_drawdown),
                (g.volatility, e.volatility),
            ] {
                assert!(close(a, b), "{}: {a} vs {b}", g.company);
            }
            for (ga, ea) in g.ohlcv_correlation.iter().flatten().zip(e.ohlcv_correlation.iter().flatten()) {
                assert!(close(*ga, *ea), "{}: {ga} vs {ea}", g.company);
            }
            // Fewer than EXTREMES values beyond either fence: whiskers and outliers exact
            // once the quartiles are, and here they fall between the same data.
            let company = &g.company;
            let (g, e) = (detail(g), detail(e));
            for (gb, eb) in [(&g.close_box, &e.close_box), (&g.return_box, &e.return_box)] {
                assert!(eb.outliers.len() < EXTREMES, "the test wants fewer outliers");
                let shared = gb.outliers.iter().filter(|v| eb.outliers.contains(v)).count();
                assert!(shared as f64 >= 0.9 * eb.outliers.len() as f64, "{company}: {gb:?} vs {eb:?}");
                assert!(gb.whisker_low <= gb.q1 && gb.whisker_high >= gb.q3);
            }
        }
        for (gr, er) in got.return_correlation.iter().flatten().zip(exact.return_correlation.iter().flatten()) {
            assert!(close(*gr, *er), "{gr} vs {er}");
        }
    }

    /// The companies correlated are the first [`MAX_CORRELATED`] by name,
    /// as over a store, whatever order they arrive in: here the last names
    /// come first and the first names start days later.
    #[test]
    fn the_first_companies_by_name_are_correlated_in_any_order_of_arrival() {
        let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let companies = 250usize;
        let by_company: Vec<Vec<Bar>> = (0..companies)
            .map(|c| {
                let first_day = if c < 120 { 3 } else { 0 };
                (first_day..12)
                    .map(|d| {
                        let close = 10.0 + ((c * 7 + d * d * 3 + c * d) % 11) as f64;
                        Bar {
                            company: format!("C{c:03}"),
                            symbol: format!("C{c:03}"),
                            ts: Ts::Date(start + chrono::Duration::days(d as i64)),
                            open: close,
                            high: close,
                            low: close,
                            close,
                            volume: 1.0,
                            vwap: None,
                            trades: None,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut arrivals: Vec<&Bar> = by_company.iter().flatten().collect();
        arrivals.sort_by(|a, b| a.ts.cmp(&b.ts).then(b.company.cmp(&a.company)));
        let mut running = RunningStats::default();
        for bar in arrivals {
            running.push(bar);
        }
        let (got, exact) = (running.finish(), market_stats(&by_company));
        assert_eq!(got.names, (0..MAX_CORRELATED).map(|c| format!("C{c:03}")).collect::<Vec<_>>());
        assert_eq!(got.names, exact.names);
        for (g, e) in got.return_correlation.iter().flatten().zip(exact.return_correlation.iter().flatten()) {
            assert!(close(*g, *e), "{g} vs {e}");
        }
        assert_eq!(got.companies.len(), companies);
    }

    /// A company of a few bars keeps them as they are: its quartiles are
    /// exact, and it costs a few hundred bytes, not a digest's kilobytes.
    #[test]
    fn few_bars_are_kept_exactly() {
        let by_company = market(30);
        let mut running = RunningStats::default();
        for bar in by_company.iter().flatten() {
            running.push(bar);
        }
        let (got, exact) = (running.finish(), market_stats(&by_company));
        assert_eq!(got.companies.len(), 3);
        for (g, e) in got.companies.iter().zip(&exact.companies) {
            for field in FIELDS {
                let (gd, ed) = (&detail(g).describe[field], &detail(e).describe[field]);
                assert_eq!((gd.q25, gd.q50, gd.q75, gd.min, gd.max), (ed.q25, ed.q50, ed.q75, ed.min, ed.max));
            }
            assert_eq!(detail(g).close_box, detail(e).close_box);
        }
        assert!(std::mem::size_of::<Column>() <= 40, "{}", std::mem::size_of::<Column>());
    }

    #[test]
    fn kept_extremes_are_the_most_extreme() {
        let mut c = Column::new(true);
        for i in 0..10_000 {
            c.push(((i * 7919) % 10_000) as f64);
        }
        let Column::Digested(c) = c else { panic!("10,000 values are summarised") };
        let low: Vec<f64> = c.lowest.keys().map(|k| k.0).collect();
        let high: Vec<f64> = c.highest.keys().map(|k| k.0).collect();
        assert_eq!(low, (0..EXTREMES).map(|v| v as f64).collect::<Vec<_>>());
        assert_eq!(high, ((10_000 - EXTREMES)..10_000).map(|v| v as f64).collect::<Vec<_>>());
    }
}
