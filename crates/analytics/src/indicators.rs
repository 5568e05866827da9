//! Streaming indicators: O(1) work per bar, O(window) memory per company. Each
//! follows TA-Lib's definition, warm-up and order of floating-point operations,
//! so that values agree with TA-Lib's to the last bits.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use serde::Serialize;
use stockstream_core::{Bar, Ts};

use crate::talib;

/// A fixed-size window of the last values.
#[derive(Debug, Clone)]
struct Window {
    values: VecDeque<f64>,
    len: usize,
}

impl Window {
    fn new(len: usize) -> Self {
        // Grown as bars come: a company of a few bars holds a few values.
        Window { values: VecDeque::new(), len }
    }

    /// Adds a value; returns the one that fell out, if any.
    fn push(&mut self, v: f64) -> Option<f64> {
        self.values.push_back(v);
        if self.values.len() > self.len {
            self.values.pop_front()
        } else {
            None
        }
    }

    fn full(&self) -> bool {
        self.values.len() == self.len
    }
}

/// Simple moving average, as TA_SMA: a running total.
#[derive(Debug, Clone)]
struct Sma {
    window: Window,
    total: f64,
}

impl Sma {
    fn new(n: usize) -> Self {
        Sma { window: Window::new(n), total: 0.0 }
    }

    fn update(&mut self, v: f64) -> Option<f64> {
        self.total += v;
        self.window.values.push_back(v);
        if self.window.values.len() < self.window.len {
            return None;
        }
        let out = self.total / self.window.len as f64;
        let oldest = self.window.values.pop_front().expect("window is full");
        self.total -= oldest;
        Some(out)
    }
}

/// Exponential moving average, as TA_EMA: seeded with the SMA of the first n
/// values, then `prev + (x - prev) * k` with k = 2 / (n + 1).
#[derive(Debug, Clone)]
struct Ema {
    n: usize,
    k: f64,
    seen: usize,
    seed_total: f64,
    value: Option<f64>,
}

impl Ema {
    fn new(n: usize) -> Self {
        Ema { n, k: talib::ema_k(n), seen: 0, seed_total: 0.0, value: None }
    }

    fn update(&mut self, v: f64) -> Option<f64> {
        self.seen += 1;
        match self.value {
            Some(prev) => self.value = Some((v - prev) * self.k + prev),
            None => {
                self.seed_total += v;
                if self.seen == self.n {
                    self.value = Some(self.seed_total / self.n as f64);
                }
            }
        }
        self.value
    }
}

/// RSI with Wilder's smoothing, as TA_RSI (first value after n changes).
#[derive(Debug, Clone)]
struct Rsi {
    n: usize,
    prev_close: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    fn new(n: usize) -> Self {
        Rsi { n, prev_close: None, changes: 0, gain: 0.0, loss: 0.0 }
    }

    fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let change = close - prev;
        let n = self.n as f64;
        self.changes += 1;
        if self.changes <= self.n {
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            if self.changes < self.n {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            self.loss /= n;
            self.gain /= n;
        }
        Some(talib::rsi(self.gain, self.loss))
    }
}

/// MACD as TA_MACD: both EMAs are seeded at the bar where the slow one is
/// (the fast one with the SMA of its last `fast` closes there); the signal is an
/// EMA of the MACD line; all three appear once the signal has warmed up.
#[derive(Debug, Clone)]
struct Macd {
    fast: usize,
    slow: usize,
    closes: Window,
    fast_value: Option<f64>,
    slow_value: Option<f64>,
    slow_total: f64,
    seen: usize,
    signal: Ema,
}

impl Macd {
    fn new(fast: usize, slow: usize, signal: usize) -> Self {
        Macd {
            fast,
            slow,
            closes: Window::new(fast),
            fast_value: None,
            slow_value: None,
            slow_total: 0.0,
            seen: 0,
            signal: Ema::new(signal),
        }
    }

    fn update(&mut self, close: f64) -> Option<(f64, f64, f64)> {
        self.seen += 1;
        self.closes.push(close);
        let (kf, ks) = (talib::ema_k(self.fast), talib::ema_k(self.slow));
        match (self.fast_value, self.slow_value) {
            (Some(f), Some(s)) => {
                self.fast_value = Some((close - f) * kf + f);
                self.slow_value = Some((close - s) * ks + s);
            }
            _ => {
                self.slow_total += close;
                if self.seen < self.slow {
                    return None;
                }
                self.slow_value = Some(self.slow_total / self.slow as f64);
                let fast_total: f64 = self.closes.values.iter().sum();
                self.fast_value = Some(fast_total / self.fast as f64);
            }
        }
        let line = self.fast_value? - self.slow_value?;
        let signal = self.signal.update(line)?;
        Some((line, signal, line - signal))
    }
}

/// Bollinger bands as TA_BBANDS with an SMA: population standard deviation from
/// running sums, `E[x²] - SMA²`, zero below TA-Lib's 1e-8.
#[derive(Debug, Clone)]
struct Bollinger {
    sma: Sma,
    squares: Window,
    total2: f64,
    k: f64,
}

impl Bollinger {
    fn new(n: usize, k: f64) -> Self {
        Bollinger { sma: Sma::new(n), squares: Window::new(n), total2: 0.0, k }
    }

    fn update(&mut self, v: f64) -> Option<(f64, f64, f64)> {
        let middle = self.sma.update(v);
        self.total2 += v * v;
        self.squares.values.push_back(v * v);
        let middle = middle?;
        let n = self.squares.len as f64;
        let mut mean2 = self.total2 / n;
        let oldest = self.squares.values.pop_front().expect("window is full");
        self.total2 -= oldest;
        mean2 -= middle * middle;
        let std = talib::std_from_variance(mean2);
        let band = self.k * std;
        Some((middle + band, middle, middle - band))
    }
}

/// Average true range with Wilder's smoothing, as TA_ATR: the SMA of the first
/// n true ranges (from the second bar), then `(prev * (n-1) + tr) / n`.
#[derive(Debug, Clone)]
struct Atr {
    n: usize,
    prev_close: Option<f64>,
    seed_total: f64,
    ranges: usize,
    value: Option<f64>,
}

impl Atr {
    fn new(n: usize) -> Self {
        Atr { n, prev_close: None, seed_total: 0.0, ranges: 0, value: None }
    }

    fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let tr = (high - low).max((high - prev).abs()).max((low - prev).abs());
        self.ranges += 1;
        match self.value {
            Some(mut v) => {
                v *= self.n as f64 - 1.0;
                v += tr;
                v /= self.n as f64;
                self.value = Some(v);
            }
            None => {
                self.seed_total += tr;
                if self.ranges == self.n {
                    self.value = Some(self.seed_total / self.n as f64);
                }
            }
        }
        self.value
    }
}

/// Sample standard deviation of the last n values in O(1) per update: the
/// window's mean and sum of squared deviations slide with it (Welford), and
/// are recomputed from the window every n updates (O(1) amortised) so that
/// rounding cannot drift, and when they collapse by 1000× (rare: a market
/// going flat). A window of equal values has exactly 0, as in pandas.
#[derive(Debug, Clone)]
pub(crate) struct RollingStd {
    window: Window,
    mean: f64,
    /// Sum of squared deviations from `mean`.
    m2: f64,
    since_refresh: usize,
    /// The largest `m2` since the last recomputation.
    m2_peak: f64,
    /// How many of the latest values are equal to the latest.
    equal_run: usize,
}

impl RollingStd {
    pub(crate) fn new(n: usize) -> Self {
        RollingStd { window: Window::new(n), mean: 0.0, m2: 0.0, since_refresh: 0, m2_peak: 0.0, equal_run: 0 }
    }

    pub(crate) fn update(&mut self, v: f64) -> Option<f64> {
        self.equal_run = if self.window.values.back() == Some(&v) { self.equal_run + 1 } else { 1 };
        if let Some(old) = self.window.push(v) {
            let before = self.mean;
            self.mean += (v - old) / self.window.len as f64;
            self.m2 += (v - old) * (v - self.mean + old - before);
        } else {
            let d = v - self.mean;
            self.mean += d / self.window.values.len() as f64;
            self.m2 += d * (v - self.mean);
        }
        self.since_refresh += 1;
        self.m2_peak = self.m2_peak.max(self.m2);
        // Also when the deviation collapses (a window turning flat): the
        // rounding left from the larger values would dominate what remains.
        if self.since_refresh >= self.window.len || self.m2 < self.m2_peak * 1e-3 {
            let values = &self.window.values;
            self.mean = values.iter().sum::<f64>() / values.len() as f64;
            self.m2 = values.iter().map(|x| (x - self.mean) * (x - self.mean)).sum();
            self.since_refresh = 0;
            self.m2_peak = self.m2;
        }
        if !self.window.full() {
            return None;
        }
        if self.equal_run >= self.window.len {
            return Some(0.0);
        }
        Some((self.m2 / (self.window.len as f64 - 1.0)).max(0.0).sqrt())
    }
}

/// One bar with every indicator; `None` while an indicator warms up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndicatorRow {
    /// The bar's date, as stored.
    pub date: String,
    /// The company.
    pub company: String,
    /// Closing price.
    pub close: f64,
    /// Simple moving average, 10 bars.
    pub sma10: Option<f64>,
    /// Simple moving average, 30 bars.
    pub sma30: Option<f64>,
    /// Simple moving average, 50 bars.
    pub sma50: Option<f64>,
    /// Exponential moving average, 12 bars.
    pub ema12: Option<f64>,
    /// Exponential moving average, 26 bars.
    pub ema26: Option<f64>,
    /// Relative strength index, 14 bars.
    pub rsi14: Option<f64>,
    /// MACD line (EMA 12 - EMA 26).
    pub macd: Option<f64>,
    /// MACD signal line (EMA 9 of the MACD line).
    pub macd_signal: Option<f64>,
    /// MACD histogram (line - signal).
    pub macd_hist: Option<f64>,
    /// Upper Bollinger band (20 bars, 2 deviations).
    pub bb_upper: Option<f64>,
    /// Middle Bollinger band (SMA 20).
    pub bb_middle: Option<f64>,
    /// Lower Bollinger band.
    pub bb_lower: Option<f64>,
    /// Average true range, 14 bars.
    pub atr14: Option<f64>,
    #[serde(rename = "return")]
    /// Simple return over the bar before.
    pub ret: Option<f64>,
    /// Annualised volatility of the last 20 log returns.
    pub volatility20: Option<f64>,
    /// Fall from the highest close so far.
    pub drawdown: Option<f64>,
    /// The session-anchored VWAP of the bars (typical price weighted by
    /// volume since the day's first bar): intraday bars only. Not the bar's
    /// own VWAP of its trades (`Bar::vwap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_vwap: Option<f64>,
}

impl IndicatorRow {
    /// Becomes a copy of `other`, reusing its own strings' memory (no
    /// allocation once they are long enough).
    pub fn assign(&mut self, other: &IndicatorRow) {
        // Destructured whole: a field added to the row must be copied here too.
        let IndicatorRow {
            date,
            company,
            close,
            sma10,
            sma30,
            sma50,
            ema12,
            ema26,
            rsi14,
            macd,
            macd_signal,
            macd_hist,
            bb_upper,
            bb_middle,
            bb_lower,
            atr14,
            ret,
            volatility20,
            drawdown,
            session_vwap,
        } = other;
        self.date.clone_from(date);
        self.company.clone_from(company);
        self.close = *close;
        self.sma10 = *sma10;
        self.sma30 = *sma30;
        self.sma50 = *sma50;
        self.ema12 = *ema12;
        self.ema26 = *ema26;
        self.rsi14 = *rsi14;
        self.macd = *macd;
        self.macd_signal = *macd_signal;
        self.macd_hist = *macd_hist;
        self.bb_upper = *bb_upper;
        self.bb_middle = *bb_middle;
        self.bb_lower = *bb_lower;
        self.atr14 = *atr14;
        self.ret = *ret;
        self.volatility20 = *volatility20;
        self.drawdown = *drawdown;
        self.session_vwap = *session_vwap;
    }

    /// The CSV columns of `stockstream indicators`, in order.
    pub const COLUMNS: [&'static str; 19] = [
        "date",
        "company",
        "close",
        "sma10",
        "sma30",
        "sma50",
        "ema12",
        "ema26",
        "rsi14",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "atr14",
        "return",
        "volatility20",
        "drawdown",
    ];

    /// Values of [`IndicatorRow::COLUMNS`] after date and company.
    pub fn values(&self) -> [Option<f64>; 17] {
        [
            Some(self.close),
            self.sma10,
            self.sma30,
            self.sma50,
            self.ema12,
            self.ema26,
            self.rsi14,
            self.macd,
            self.macd_signal,
            self.macd_hist,
            self.bb_upper,
            self.bb_middle,
            self.bb_lower,
            self.atr14,
            self.ret,
            self.volatility20,
            self.drawdown,
        ]
    }
}

/// Every indicator of one company, updated bar by bar (in time order).
#[derive(Debug, Clone)]
pub struct Indicators {
    sma10: Sma,
    sma30: Sma,
    sma50: Sma,
    ema12: Ema,
    ema26: Ema,
    rsi14: Rsi,
    macd: Macd,
    bollinger: Bollinger,
    atr14: Atr,
    log_returns: RollingStd,
    prev_close: Option<f64>,
    peak: f64,
    vwap_day: Option<chrono::NaiveDate>,
    vwap_pv: f64,
    vwap_v: f64,
    last_ts: Option<Ts>,
}

impl Default for Indicators {
    fn default() -> Self {
        Indicators {
            sma10: Sma::new(10),
            sma30: Sma::new(30),
            sma50: Sma::new(50),
            ema12: Ema::new(12),
            ema26: Ema::new(26),
            rsi14: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bollinger: Bollinger::new(20, 2.0),
            atr14: Atr::new(14),
            log_returns: RollingStd::new(20),
            prev_close: None,
            peak: f64::NEG_INFINITY,
            vwap_day: None,
            vwap_pv: 0.0,
            vwap_v: 0.0,
            last_ts: None,
        }
    }
}

/// Trading days a year, for annualising.
pub const TRADING_DAYS: f64 = 252.0;

impl Indicators {
    /// Takes the next bar. A bar not newer than the last one (a redelivery) is
    /// ignored and returns `None`, so at-least-once delivery never counts a bar twice.
    pub fn update(&mut self, bar: &Bar) -> Option<IndicatorRow> {
        let mut row = IndicatorRow::default();
        self.update_row(bar, &mut row).then_some(row)
    }

    /// As [`Indicators::update`], into `row`, whose strings are reused (a live
    /// stream keeps one row per company); false, and `row` untouched, for a
    /// redelivered bar.
    pub fn update_row(&mut self, bar: &Bar, row: &mut IndicatorRow) -> bool {
        if self.last_ts.is_some_and(|last| bar.ts <= last) {
            return false;
        }
        self.last_ts = Some(bar.ts);
        let close = bar.close;
        let (ret, log_ret) = match self.prev_close.replace(close) {
            Some(prev) => (Some(close / prev - 1.0), Some((close / prev).ln())),
            None => (None, None),
        };
        self.peak = self.peak.max(close);
        let macd = self.macd.update(close);
        let bands = self.bollinger.update(close);
        let vwap = match bar.ts {
            Ts::Date(_) => None,
            Ts::Instant(_) => {
                let day = bar.ts.date();
                if self.vwap_day != Some(day) {
                    self.vwap_day = Some(day);
                    self.vwap_pv = 0.0;
                    self.vwap_v = 0.0;
                }
                let typical = (bar.high + bar.low + bar.close) / 3.0;
                self.vwap_pv += typical * bar.volume;
                self.vwap_v += bar.volume;
                (self.vwap_v > 0.0).then(|| self.vwap_pv / self.vwap_v)
            }
        };
        let (mut date, mut company) = (std::mem::take(&mut row.date), std::mem::take(&mut row.company));
        date.clear();
        let _ = write!(date, "{}", bar.ts);
        if company != bar.company {
            company.clone_from(&bar.company);
        }
        *row = IndicatorRow {
            date,
            company,
            close,
            sma10: self.sma10.update(close),
            sma30: self.sma30.update(close),
            sma50: self.sma50.update(close),
            ema12: self.ema12.update(close),
            ema26: self.ema26.update(close),
            rsi14: self.rsi14.update(close),
            macd: macd.map(|m| m.0),
            macd_signal: macd.map(|m| m.1),
            macd_hist: macd.map(|m| m.2),
            bb_upper: bands.map(|b| b.0),
            bb_middle: bands.map(|b| b.1),
            bb_lower: bands.map(|b| b.2),
            atr14: self.atr14.update(bar.high, bar.low, close),
            ret,
            volatility20: log_ret.and_then(|r| self.log_returns.update(r)).map(|s| s * TRADING_DAYS.sqrt()),
            drawdown: Some(close / self.peak - 1.0),
            session_vwap: vwap,
        };
        true
    }
}

/// Indicators for every company of a stream, with each company's latest row.
#[derive(Debug, Default)]
pub struct LiveIndicators {
    /// Boxed: the table's spare room costs a pointer an entry, not a state.
    by_company: HashMap<String, Box<Held>>,
    /// Counts updates: when each company was last updated.
    clock: u64,
}

/// One company's indicators, its latest row, and when it was last updated.
#[derive(Debug, Default)]
struct Held {
    indicators: Indicators,
    latest: Option<IndicatorRow>,
    touched: u64,
}

impl LiveIndicators {
    /// Updates the bar's company; returns its new row (kept as the latest).
    pub fn update(&mut self, bar: &Bar) -> Option<&IndicatorRow> {
        // A key is allocated only for a company seen for the first time.
        if !self.by_company.contains_key(&bar.company) {
            self.by_company.insert(bar.company.clone(), Default::default());
        }
        self.clock += 1;
        let Held { indicators, latest, touched } =
            &mut **self.by_company.get_mut(&bar.company).expect("inserted above");
        *touched = self.clock;
        match latest {
            Some(row) => indicators.update_row(bar, row).then_some(&*row),
            None => {
                *latest = Some(indicators.update(bar)?);
                latest.as_ref()
            }
        }
    }

    /// How many companies are held.
    pub fn len(&self) -> usize {
        self.by_company.len()
    }

    /// True when no company is held.
    pub fn is_empty(&self) -> bool {
        self.by_company.is_empty()
    }

    /// Forgets the companies updated least recently until `keep` are held;
    /// returns their names.
    pub fn forget_beyond(&mut self, keep: usize) -> Vec<String> {
        let Some(excess) = self.by_company.len().checked_sub(keep).filter(|&n| n > 0) else { return Vec::new() };
        let mut ages: Vec<(u64, &String)> = self.by_company.iter().map(|(name, held)| (held.touched, name)).collect();
        ages.select_nth_unstable(excess - 1);
        let forgotten: Vec<String> = ages[..excess].iter().map(|(_, name)| (*name).clone()).collect();
        for name in &forgotten {
            self.by_company.remove(name);
        }
        forgotten
    }

    /// The latest row of every company, by company name.
    pub fn latest(&self) -> Vec<IndicatorRow> {
        let mut rows: Vec<IndicatorRow> = self.by_company.values().filter_map(|held| held.latest.clone()).collect();
        rows.sort_by(|a, b| a.company.cmp(&b.company));
        rows
    }

    /// The latest indicators of the first `limit` companies by name, and how
    /// many companies have some: a summary's worth, whatever their number.
    pub fn latest_first(&self, limit: usize) -> (Vec<IndicatorRow>, usize) {
        let mut rows: Vec<&IndicatorRow> = self.by_company.values().filter_map(|held| held.latest.as_ref()).collect();
        let total = rows.len();
        if limit < total {
            rows.select_nth_unstable_by(limit, |a, b| a.company.cmp(&b.company));
            rows.truncate(limit);
        }
        rows.sort_by(|a, b| a.company.cmp(&b.company));
        (rows.into_iter().cloned().collect(), total)
    }

    /// The latest indicators of these companies, those seen.
    pub fn latest_of(&self, companies: &[String]) -> Vec<IndicatorRow> {
        companies.iter().filter_map(|c| self.by_company.get(c)?.latest.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(i: usize, close: f64) -> Bar {
        Bar {
            symbol: "X".into(),
            company: "X".into(),
            ts: Ts::Date(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(i as i64)),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 100.0,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn warm_up_lengths_match_ta_lib() {
        let mut ind = Indicators::default();
        let rows: Vec<IndicatorRow> = (0..60).map(|i| ind.update(&bar(i, 100.0 + (i as f64).sin())).unwrap()).collect();
        let first = |f: fn(&IndicatorRow) -> Option<f64>| rows.iter().position(|r| f(r).is_some()).unwrap();
        assert_eq!(first(|r| r.sma10), 9);
        assert_eq!(first(|r| r.sma50), 49);
        assert_eq!(first(|r| r.ema26), 25);
        assert_eq!(first(|r| r.rsi14), 14);
        assert_eq!(first(|r| r.macd), 33);
        assert_eq!(first(|r| r.macd_signal), 33);
        assert_eq!(first(|r| r.bb_upper), 19);
        assert_eq!(first(|r| r.atr14), 14);
        assert_eq!(first(|r| r.ret), 1);
        assert_eq!(first(|r| r.volatility20), 20);
        assert_eq!(first(|r| r.drawdown), 0);
    }

    #[test]
    fn redelivered_bars_are_ignored() {
        let mut ind = Indicators::default();
        assert!(ind.update(&bar(0, 10.0)).is_some());
        assert!(ind.update(&bar(1, 11.0)).is_some());
        assert!(ind.update(&bar(1, 11.0)).is_none());
        assert!(ind.update(&bar(0, 10.0)).is_none());
        let row = ind.update(&bar(2, 9.9)).unwrap();
        assert!((row.drawdown.unwrap() - (9.9 / 11.0 - 1.0)).abs() < 1e-15);
    }

    #[test]
    fn live_rows_equal_fresh_rows() {
        let mut live = LiveIndicators::default();
        let mut alone: HashMap<&str, Indicators> = HashMap::new();
        for i in 0..120 {
            for (company, close) in [("Tesla", 200.0 + (i as f64).sin()), ("Meta", 500.0 - i as f64 * 0.3)] {
                let bar = Bar { company: company.into(), ..bar(i, close) };
                let expected = alone.entry(company).or_default().update(&bar);
                assert_eq!(live.update(&bar), expected.as_ref(), "{company} {i}");
                // A redelivery leaves the live row as it was.
                assert_eq!(live.update(&bar), None);
            }
        }
        let latest = live.latest();
        assert_eq!(latest.iter().map(|r| r.company.as_str()).collect::<Vec<_>>(), ["Meta", "Tesla"]);
        assert_eq!(latest[1].close, 200.0 + 119f64.sin());
    }

    #[test]
    fn sma_and_rsi_by_hand() {
        let mut s = Sma::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 4.0].iter().map(|v| s.update(*v)).collect();
        assert_eq!(out, [None, None, Some(2.0), Some(3.0)]);
        let mut r = Rsi::new(2);
        let out: Vec<_> = [1.0, 2.0, 1.0, 3.0].iter().map(|v| r.update(*v)).collect();
        // Changes +1, -1 → gain 0.5, loss 0.5 → 50; then +2 → gain 1.25, loss 0.25.
        assert_eq!(out[..3], [None, None, Some(50.0)]);
        assert!((out[3].unwrap() - 100.0 * 1.25 / 1.5).abs() < 1e-12);
    }
}
