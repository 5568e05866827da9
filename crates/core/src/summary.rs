//! One company's statistics kept in one pass over its bars in time order:
//! counts, means and co-moments of Open, High, Low, Close and Volume, the
//! trend (running least squares of the close against time), simple and log
//! returns, drawdown, first and last. Small enough (400 bytes) to be stored
//! beside the bars in the store's catalog and folded forward as bars are
//! written; the analytics crate turns it into a company's statistics.

use crate::{Bar, Ts};

/// Running mean and co-moments of several columns (Welford's updates).
#[derive(Debug, Clone, PartialEq)]
pub struct CoMoments<const N: usize> {
    /// Values counted.
    pub n: f64,
    /// Running means.
    pub mean: [f64; N],
    /// Sums of products of deviations from the running means.
    pub c: [[f64; N]; N],
}

impl<const N: usize> Default for CoMoments<N> {
    fn default() -> Self {
        CoMoments { n: 0.0, mean: [0.0; N], c: [[0.0; N]; N] }
    }
}

impl<const N: usize> CoMoments<N> {
    /// Counts one row.
    pub fn push(&mut self, x: [f64; N]) {
        self.n += 1.0;
        let before = self.mean;
        for (m, v) in self.mean.iter_mut().zip(x) {
            *m += (v - *m) / self.n;
        }
        for i in 0..N {
            for j in 0..N {
                self.c[i][j] += (x[i] - before[i]) * (x[j] - self.mean[j]);
            }
        }
    }

    /// Sample standard deviation of column `i` (NaN below two values).
    pub fn std(&self, i: usize) -> f64 {
        if self.n < 2.0 {
            return f64::NAN;
        }
        (self.c[i][i] / (self.n - 1.0)).sqrt()
    }

    /// Pearson correlation of columns `i` and `j` (NaN below two values).
    pub fn correlation(&self, i: usize, j: usize) -> f64 {
        if self.n < 2.0 {
            return f64::NAN;
        }
        self.c[i][j] / (self.c[i][i] * self.c[j][j]).sqrt()
    }

    fn words(&self, out: &mut Vec<f64>) {
        out.push(self.n);
        out.extend(self.mean);
        out.extend(self.c.iter().flatten());
    }

    fn from_words(words: &mut impl Iterator<Item = f64>) -> Option<Self> {
        let n = words.next()?;
        let mut mean = [0.0; N];
        for m in &mut mean {
            *m = words.next()?;
        }
        let mut c = [[0.0; N]; N];
        for v in c.iter_mut().flatten() {
            *v = words.next()?;
        }
        Some(CoMoments { n, mean, c })
    }
}

/// Years from `first` to `ts` (days / 365.25): the trend's time axis.
pub fn years_since(first: Ts, ts: Ts) -> f64 {
    let seconds = |ts: Ts| match ts {
        Ts::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp() as f64,
        Ts::Instant(t) => t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 * 1e-9,
    };
    (seconds(ts) - seconds(first)) / 86_400.0 / 365.25
}

/// What one company's bars, in time order, add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    /// Date of the first bar.
    pub first: Ts,
    /// Date of the last bar.
    pub last: Ts,
    /// Close of the first bar.
    pub first_close: f64,
    /// Close of the last bar.
    pub last_close: f64,
    /// Open, High, Low, Close, Volume.
    pub ohlcv: CoMoments<5>,
    /// Years since the first bar against the close.
    pub trend: CoMoments<2>,
    /// Log returns from one bar to the next.
    pub log_returns: CoMoments<1>,
    /// Simple returns from one bar to the next.
    pub simple_returns: CoMoments<1>,
    /// Highest close so far.
    pub peak: f64,
    /// Largest fall from a previous high (0 or negative).
    pub max_drawdown: f64,
    /// Distinct trading days (several for intraday bars of one day: one).
    pub days: u64,
}

/// The version of [`SeriesSummary::to_bytes`]' layout, its first word.
const LAYOUT: f64 = 1.0;

impl SeriesSummary {
    /// The summary of one bar.
    pub fn of(bar: &Bar) -> Self {
        let mut s = SeriesSummary {
            first: bar.ts,
            last: bar.ts,
            first_close: bar.close,
            last_close: bar.close,
            ohlcv: CoMoments::default(),
            trend: CoMoments::default(),
            log_returns: CoMoments::default(),
            simple_returns: CoMoments::default(),
            peak: bar.close,
            max_drawdown: 0.0,
            days: 1,
        };
        s.ohlcv.push([bar.open, bar.high, bar.low, bar.close, bar.volume]);
        s.trend.push([0.0, bar.close]);
        s
    }

    /// Bars counted.
    pub fn bars(&self) -> u64 {
        self.ohlcv.n as u64
    }

    /// Counts a bar newer than the last; returns its simple return. A bar no
    /// newer than the last is left out (a redelivery) and None returned.
    pub fn push(&mut self, bar: &Bar) -> Option<f64> {
        if bar.ts <= self.last {
            return None;
        }
        let r = bar.close / self.last_close - 1.0;
        self.simple_returns.push([r]);
        self.log_returns.push([(bar.close / self.last_close).ln()]);
        if bar.ts.date() != self.last.date() {
            self.days += 1;
        }
        self.last = bar.ts;
        self.last_close = bar.close;
        self.ohlcv.push([bar.open, bar.high, bar.low, bar.close, bar.volume]);
        self.trend.push([years_since(self.first, bar.ts), bar.close]);
        self.peak = self.peak.max(bar.close);
        self.max_drawdown = self.max_drawdown.min(bar.close / self.peak - 1.0);
        Some(r)
    }

    /// The summary of bars in time order (None for none).
    pub fn of_bars<'a>(bars: impl IntoIterator<Item = &'a Bar>) -> Option<Self> {
        let mut bars = bars.into_iter();
        let mut s = SeriesSummary::of(bars.next()?);
        for bar in bars {
            s.push(bar);
        }
        Some(s)
    }

    /// Its numbers as little-endian f64 words (400 bytes), the first and last
    /// dates left to the caller: the catalog keeps them as keys of their own.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut words = vec![LAYOUT];
        self.ohlcv.words(&mut words);
        self.trend.words(&mut words);
        self.log_returns.words(&mut words);
        self.simple_returns.words(&mut words);
        words.extend([self.first_close, self.last_close, self.peak, self.max_drawdown, self.days as f64]);
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Reads [`SeriesSummary::to_bytes`] back; an error says why it cannot.
    pub fn from_bytes(bytes: &[u8], first: Ts, last: Ts) -> Result<Self, String> {
        if bytes.len() % 8 != 0 {
            return Err(format!("a summary of {} bytes (not whole 8-byte words)", bytes.len()));
        }
        let mut words = bytes.chunks_exact(8).map(|w| f64::from_le_bytes(w.try_into().expect("8 bytes")));
        match words.next() {
            Some(LAYOUT) => {}
            Some(other) => return Err(format!("a summary of layout {other}; this stockstream reads layout {LAYOUT}")),
            None => return Err("an empty summary".into()),
        }
        let short = || format!("a summary of {} bytes is cut short", bytes.len());
        let ohlcv = CoMoments::from_words(&mut words).ok_or_else(short)?;
        let trend = CoMoments::from_words(&mut words).ok_or_else(short)?;
        let log_returns = CoMoments::from_words(&mut words).ok_or_else(short)?;
        let simple_returns = CoMoments::from_words(&mut words).ok_or_else(short)?;
        let mut next = || words.next().ok_or_else(short);
        Ok(SeriesSummary {
            first,
            last,
            ohlcv,
            trend,
            log_returns,
            simple_returns,
            first_close: next()?,
            last_close: next()?,
            peak: next()?,
            max_drawdown: next()?,
            days: next()? as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(day: u32, close: f64) -> Bar {
        Bar {
            company: "Tesla".into(),
            symbol: "TSLA".into(),
            ts: format!("2024-01-{day:02}").parse().unwrap(),
            open: close - 1.0,
            high: close + 2.0,
            low: close - 2.0,
            close,
            volume: 1000.0 * day as f64,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn a_summary_survives_its_bytes_and_refuses_other_layouts() {
        let bars: Vec<Bar> = (1..=9).map(|d| bar(d, 100.0 + (d * d) as f64)).collect();
        let s = SeriesSummary::of_bars(&bars).unwrap();
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), 400);
        assert_eq!(SeriesSummary::from_bytes(&bytes, s.first, s.last).unwrap(), s);
        assert_eq!((s.bars(), s.days, s.last_close), (9, 9, 181.0));
        let mut newer = bytes.clone();
        newer[..8].copy_from_slice(&2.0f64.to_le_bytes());
        assert!(SeriesSummary::from_bytes(&newer, s.first, s.last).unwrap_err().contains("layout 2"));
        assert!(SeriesSummary::from_bytes(&bytes[..80], s.first, s.last).unwrap_err().contains("cut short"));
    }

    #[test]
    fn an_older_bar_is_not_counted() {
        let mut s = SeriesSummary::of(&bar(5, 10.0));
        assert_eq!(s.push(&bar(4, 12.0)), None);
        assert_eq!(s.push(&bar(6, 11.0)), Some(0.10000000000000009));
        assert_eq!((s.bars(), s.peak), (2, 11.0));
    }
}
