//! A synthetic market: correlated geometric Brownian motion, one drift and
//! volatility per company, consistent OHLC and volume, deterministic for a seed.
//! The data is made up; it only looks like a market.

use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockstream_core::{company_for_symbol, Bar, Ts};

use crate::calendar::{session_open_utc, trading_days, SESSION_SECONDS};

/// Bar length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One bar a trading day.
    Day,
    /// One bar an hour, within market hours.
    Hour,
    /// One bar a minute, within market hours.
    Minute,
    /// One bar a second, within market hours.
    Second,
}

impl Interval {
    /// Bars per regular session.
    fn bars_per_day(self) -> i64 {
        match self {
            Interval::Day => 1,
            // 09:30, 10:30, ..., 15:30: the last hour bar is half an hour long.
            Interval::Hour => 7,
            Interval::Minute => SESSION_SECONDS / 60,
            Interval::Second => SESSION_SECONDS,
        }
    }

    /// The longest interval whose `rows` bars of `symbols` companies fit in
    /// `years` of trading days (one second if none does).
    pub fn fitting(rows: u64, symbols: u64, years: u64) -> Interval {
        [Interval::Day, Interval::Hour, Interval::Minute]
            .into_iter()
            .find(|i| rows <= years * 252 * symbols * i.bars_per_day() as u64)
            .unwrap_or(Interval::Second)
    }

    /// The bar length its bars are stored under.
    pub fn length(self) -> stockstream_core::BarLength {
        match self {
            Interval::Day => stockstream_core::BarLength::Day,
            other => stockstream_core::BarLength::Fixed(other.seconds() * 1000),
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Interval::Day => SESSION_SECONDS,
            Interval::Hour => 3600,
            Interval::Minute => 60,
            Interval::Second => 1,
        }
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Interval::Day => "1d",
            Interval::Hour => "1h",
            Interval::Minute => "1m",
            Interval::Second => "1s",
        })
    }
}

impl std::str::FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1d" => Ok(Interval::Day),
            "1h" => Ok(Interval::Hour),
            "1m" => Ok(Interval::Minute),
            "1s" => Ok(Interval::Second),
            _ => Err(format!("unknown interval {s:?} (1d|1h|1m|1s)")),
        }
    }
}

#[derive(Debug, Clone)]
/// What the synthetic market generates.
pub struct SyntheticConfig {
    /// Symbols, each with its own drift and volatility.
    pub symbols: Vec<String>,
    /// First trading day.
    pub start: NaiveDate,
    /// Last trading day (inclusive).
    pub end: NaiveDate,
    /// Bar length.
    pub interval: Interval,
    /// Stop after exactly this many bars, running past `end` if needed.
    pub rows: Option<u64>,
    /// Random seed: the same seed gives the same data.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    /// The original project's universe and range.
    fn default() -> Self {
        SyntheticConfig {
            symbols: stockstream_core::DEFAULT_COMPANIES.iter().map(|(s, _)| s.to_string()).collect(),
            start: NaiveDate::from_ymd_opt(2023, 4, 3).expect("valid"),
            end: NaiveDate::from_ymd_opt(2025, 4, 15).expect("valid"),
            interval: Interval::Day,
            rows: None,
            seed: 42,
        }
    }
}

/// Per-company model: annual drift and volatility, starting price, daily volume,
/// correlation with the common market factor.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) symbol: String,
    company: String,
    pub(crate) drift: f64,
    pub(crate) vol: f64,
    pub(crate) price: f64,
    pub(crate) daily_volume: f64,
    market_corr: f64,
}

pub(crate) fn model_for(symbol: &str) -> Model {
    let known: &[(&str, f64, f64, f64, f64, f64)] = &[
        ("NVDA", 0.60, 0.50, 278.0, 45e6, 0.65),
        ("TSLA", 0.08, 0.58, 194.0, 120e6, 0.55),
        ("META", 0.45, 0.38, 211.0, 20e6, 0.70),
        ("AMZN", 0.25, 0.33, 102.0, 55e6, 0.75),
        ("AAPL", 0.15, 0.24, 166.0, 60e6, 0.70),
        ("NFLX", 0.52, 0.36, 345.0, 6e6, 0.50),
        ("GOOGL", 0.20, 0.30, 104.0, 30e6, 0.72),
    ];
    let upper = symbol.to_ascii_uppercase();
    let (drift, vol, price, daily_volume, market_corr) = match known.iter().find(|k| k.0 == upper) {
        Some(&(_, d, v, p, vol, c)) => (d, v, p, vol, c),
        None => {
            // Unknown symbols still get stable, distinct parameters.
            let h = upper.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
            let unit = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65535.0;
            (-0.1 + 0.6 * unit(0), 0.2 + 0.4 * unit(16), 20.0 + 380.0 * unit(32), 1e6 + 49e6 * unit(48), 0.6)
        }
    };
    Model { symbol: upper.clone(), company: company_for_symbol(&upper), drift, vol, price, daily_volume, market_corr }
}

/// An endless-until-done iterator of bars: every symbol at each time step.
pub struct Synthetic {
    config: SyntheticConfig,
    models: Vec<Model>,
    rng: ChaCha8Rng,
    spare_normal: Option<f64>,
    days: Box<dyn Iterator<Item = NaiveDate> + Send>,
    day: Option<NaiveDate>,
    step_in_day: i64,
    next_symbol: usize,
    step_ts: Option<Ts>,
    step_market: f64,
    emitted: u64,
}

/// The longest span `--rows` may cover, in trading years.
const MAX_YEARS: u64 = 30;

/// The last date a generated bar may carry.
const LAST_DATE: (i32, u32, u32) = (2999, 12, 31);

impl Synthetic {
    /// A generator; fails on a configuration that yields nothing, or `rows`
    /// spanning more than 30 trading years.
    pub fn new(config: SyntheticConfig) -> Result<Self, String> {
        if config.symbols.is_empty() {
            return Err("no symbols to generate".into());
        }
        if config.rows.is_none() && config.end < config.start {
            return Err(format!("--end {} is before --start {}", config.end, config.start));
        }
        if let Some(rows) = config.rows {
            // Prices compound over the span: decades of made-up drift reach
            // prices no market has (1e118 after 570 years).
            let per_day = config.symbols.len() as u64 * config.interval.bars_per_day() as u64;
            let years = rows / per_day / 252;
            if years > MAX_YEARS {
                return Err(format!(
                    "{rows} bars of {} for {} symbols span {years} years (at most {MAX_YEARS}): use a shorter --interval ({}) or fewer --rows",
                    config.interval,
                    config.symbols.len(),
                    Interval::fitting(rows, config.symbols.len() as u64, MAX_YEARS)
                ));
            }
        }
        let end = if config.rows.is_some() {
            NaiveDate::from_ymd_opt(LAST_DATE.0, LAST_DATE.1, LAST_DATE.2).expect("valid")
        } else {
            config.end
        };
        let days = Box::new(trading_days(config.start, end));
        let models = config.symbols.iter().map(|s| model_for(s.trim())).collect();
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Ok(Synthetic {
            config,
            models,
            rng,
            spare_normal: None,
            days,
            day: None,
            step_in_day: 0,
            next_symbol: 0,
            step_ts: None,
            step_market: 0.0,
            emitted: 0,
        })
    }

    /// How many bars this configuration yields, when known without generating.
    pub fn expected_rows(&self) -> Option<u64> {
        if let Some(rows) = self.config.rows {
            return Some(rows);
        }
        let days = trading_days(self.config.start, self.config.end).count() as u64;
        Some(days * self.config.interval.bars_per_day() as u64 * self.models.len() as u64)
    }

    /// Standard normal draw (Box–Muller, both values used).
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]: ln is finite
        let u2: f64 = self.rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Moves to the next time step; `false` when the calendar is exhausted.
    fn advance_step(&mut self) -> bool {
        if self.day.is_none() || self.step_in_day >= self.config.interval.bars_per_day() {
            match self.days.next() {
                Some(d) => {
                    self.day = Some(d);
                    self.step_in_day = 0;
                }
                None => return false,
            }
        }
        let day = self.day.expect("set above");
        self.step_ts = Some(match self.config.interval {
            Interval::Day => Ts::Date(day),
            i => Ts::Instant((session_open_utc(day) + Duration::seconds(self.step_in_day * i.seconds())).and_utc()),
        });
        self.step_in_day += 1;
        self.step_market = self.normal();
        true
    }

    fn bar_for(&mut self, i: usize, ts: Ts) -> Bar {
        let interval = self.config.interval;
        // Year fraction of one bar: a session is 1/252 of a trading year.
        let seconds = if interval == Interval::Hour && self.step_in_day == 7 { 1800 } else { interval.seconds() };
        let dt = seconds as f64 / SESSION_SECONDS as f64 / 252.0;
        let (drift, vol, corr, price, daily_volume) = {
            let m = &self.models[i];
            (m.drift, m.vol, m.market_corr, m.price, m.daily_volume)
        };
        let idio = self.normal();
        let z = corr * self.step_market + (1.0 - corr * corr).sqrt() * idio;
        let sd = vol * dt.sqrt();
        let gap = if interval == Interval::Day { 0.15 * sd * self.normal() } else { 0.0 };
        let open = price * gap.exp();
        let close = open * ((drift - 0.5 * vol * vol) * dt + sd * z).exp();
        let wick_up = (0.5 * sd * self.normal().abs()).exp();
        let wick_down = (-0.5 * sd * self.normal().abs()).exp();
        let cents = |v: f64| ((v * 100.0).round() / 100.0).max(0.01);
        let (open_c, close_c) = (cents(open), cents(close));
        let high = cents(open.max(close) * wick_up).max(open_c).max(close_c);
        let low = cents(open.min(close) * wick_down).min(open_c).min(close_c);
        // Busier on big moves, as real markets are.
        let activity = (0.3 * self.normal()).exp() * (1.0 + 0.5 * (close / open).ln().abs() / sd);
        let volume = (daily_volume * dt * 252.0 * activity).round().max(1.0);
        let m = &mut self.models[i];
        m.price = close;
        Bar {
            symbol: m.symbol.clone(),
            company: m.company.clone(),
            ts,
            open: open_c,
            high,
            low,
            close: close_c,
            volume,
            vwap: None,
            trades: None,
        }
    }
}

impl Iterator for Synthetic {
    type Item = Bar;

    fn next(&mut self) -> Option<Bar> {
        if self.config.rows.is_some_and(|r| self.emitted >= r) {
            return None;
        }
        if self.next_symbol == 0 && !self.advance_step() {
            return None;
        }
        let ts = self.step_ts.expect("a step is current");
        let bar = self.bar_for(self.next_symbol, ts);
        self.next_symbol = (self.next_symbol + 1) % self.models.len();
        self.emitted += 1;
        Some(bar)
    }
}

impl stockstream_core::Source for Synthetic {
    fn name(&self) -> &'static str {
        "synthetic"
    }

    fn interval(&self) -> Option<stockstream_core::BarLength> {
        Some(self.config.interval.length())
    }

    fn description(&self) -> String {
        let c = &self.config;
        format!("synthetic data (seed {}, {} symbols, {}..{}, {})", c.seed, c.symbols.len(), c.start, c.end, c.interval)
    }

    fn expected(&self) -> Option<u64> {
        self.expected_rows()
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, stockstream_core::Item> {
        crate::reader_thread::on_own_thread("synthetic", self.map(stockstream_core::Item::Bar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockstream_core::validate;

    #[test]
    fn default_dataset_is_the_original_universe_over_trading_days() {
        let bars: Vec<Bar> = Synthetic::new(SyntheticConfig::default()).unwrap().collect();
        assert_eq!(bars.len(), 511 * 7);
        assert_eq!(bars[0].ts.to_string(), "2023-04-03");
        assert_eq!(bars.last().unwrap().ts.to_string(), "2025-04-15");
        let companies: std::collections::BTreeSet<_> = bars.iter().map(|b| b.company.as_str()).collect();
        assert_eq!(companies.len(), 7);
        assert!(companies.contains("NVIDIA") && companies.contains("Google"));
        for b in &bars {
            validate(b).unwrap_or_else(|r| panic!("{b:?}: {r}"));
        }
        assert!(!bars.iter().any(|b| b.ts.to_string() == "2025-01-09"), "closed for a national day of mourning");
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let take = |seed| -> Vec<Bar> {
            Synthetic::new(SyntheticConfig { seed, ..Default::default() }).unwrap().take(200).collect()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn returns_are_correlated_and_companies_differ() {
        let bars: Vec<Bar> = Synthetic::new(SyntheticConfig::default()).unwrap().collect();
        let series = |sym: &str| -> Vec<f64> {
            let closes: Vec<f64> = bars.iter().filter(|b| b.symbol == sym).map(|b| b.close).collect();
            closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
        };
        let (a, b) = (series("AMZN"), series("GOOGL"));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        let corr = cov / (va * vb).sqrt();
        assert!(corr > 0.3 && corr < 0.8, "correlation {corr}");
        let sd = |v: &[f64]| (v.iter().map(|x| (x - mean(v)).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(sd(&series("TSLA")) > 1.5 * sd(&series("AAPL")), "TSLA is more volatile than AAPL");
    }

    #[test]
    fn intraday_bars_stay_inside_market_hours() {
        let cfg = SyntheticConfig {
            symbols: vec!["NVDA".into()],
            start: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            interval: Interval::Hour,
            ..Default::default()
        };
        let ts: Vec<String> = Synthetic::new(cfg.clone()).unwrap().map(|b| b.ts.to_string()).collect();
        assert_eq!(ts.first().unwrap(), "2024-07-01T13:30:00Z");
        assert_eq!(ts.last().unwrap(), "2024-07-01T19:30:00Z");
        assert_eq!(ts.len(), 7);
        let minutes = Synthetic::new(SyntheticConfig { interval: Interval::Minute, ..cfg }).unwrap().count();
        assert_eq!(minutes, 390);
    }

    #[test]
    fn rows_runs_past_the_end_and_stops_exactly() {
        let cfg = SyntheticConfig { rows: Some(10_001), interval: Interval::Minute, ..Default::default() };
        let bars: Vec<Bar> = Synthetic::new(cfg).unwrap().collect();
        assert_eq!(bars.len(), 10_001);
        for b in &bars {
            validate(b).unwrap();
        }
        let daily_forever = SyntheticConfig { rows: Some(10_000_000), ..Default::default() };
        assert!(Synthetic::new(daily_forever).is_err());
    }

    #[test]
    fn rows_get_an_interval_that_fits_them_or_a_clear_refusal() {
        assert_eq!(Interval::fitting(1_000, 7, 10), Interval::Day);
        assert_eq!(Interval::fitting(1_000_000, 7, 10), Interval::Minute);
        assert_eq!(Interval::fitting(100_000_000, 7, 10), Interval::Second);
        let config = |rows, interval| SyntheticConfig { rows: Some(rows), interval, ..Default::default() };
        let e = Synthetic::new(config(1_000_000, Interval::Day)).err().unwrap();
        assert!(e.contains("span 566 years") && e.contains("(1m)"), "{e}");
        let last = Synthetic::new(config(1_000_000, Interval::Minute)).unwrap().last().unwrap();
        assert!(last.ts.to_string().starts_with("202"), "{}", last.ts);
        assert!(last.close < 1e5, "{}", last.close);
    }
}
