//! Synthetic trades: the synthetic market's model (per-company drift,
//! volatility, price level and daily volume) sampled trade by trade, at any
//! rate, for any symbols. Deterministic for a seed. The data is made up; it only looks like a market.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockstream_core::calendar::SESSION_SECONDS;
use stockstream_core::Tick;

use crate::synthetic::{model_for, Model};

/// What the generator makes.
#[derive(Debug, Clone)]
pub struct TickConfig {
    /// Symbols, each with the synthetic market's model for it.
    pub symbols: Vec<String>,
    /// Ticks per second of event time, all symbols together.
    pub rate: f64,
    /// Event time of the first tick, Unix milliseconds.
    pub start_ms: i64,
    /// Random seed: the same seed gives the same ticks.
    pub seed: u64,
}

/// An endless iterator of ticks, symbols in turn, evenly spaced in event time.
pub struct SyntheticTicks {
    config: TickConfig,
    models: Vec<Model>,
    /// Each symbol's name, shared by its ticks, and the source's.
    names: Vec<Arc<str>>,
    source: Arc<str>,
    /// Event time of each symbol's previous tick.
    last_ms: Vec<i64>,
    rng: ChaCha8Rng,
    emitted: u64,
    /// Ticks emitted before the current rate was set, and when it was.
    rate_base: (u64, i64),
    /// One trading year, in milliseconds of session time.
    year_ms: f64,
}

impl SyntheticTicks {
    /// A generator; fails without symbols or a positive rate.
    pub fn new(config: TickConfig) -> Result<Self, String> {
        if config.symbols.is_empty() {
            return Err("no symbols to generate ticks for".into());
        }
        if !(config.rate.is_finite() && config.rate > 0.0) {
            return Err(format!("tick rate {} is not a positive number", config.rate));
        }
        let models: Vec<Model> = config.symbols.iter().map(|s| model_for(s.trim())).collect();
        Ok(SyntheticTicks {
            names: models.iter().map(|m| Arc::from(m.symbol.as_str())).collect(),
            source: "synthetic".into(),
            last_ms: vec![config.start_ms; models.len()],
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            models,
            emitted: 0,
            rate_base: (0, config.start_ms),
            year_ms: 252.0 * SESSION_SECONDS as f64 * 1000.0,
            config,
        })
    }

    /// From the next tick on, `rate` ticks a second of event time, the next
    /// one at `at_ms`: history is made sparser than the live feed, in the
    /// same model, one price path.
    pub fn set_rate(&mut self, rate: f64, at_ms: i64) {
        self.config.rate = rate;
        self.rate_base = (self.emitted, at_ms);
    }

    /// A standard normal draw (Box–Muller, one value used: ticks are cheap).
    fn normal(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl Iterator for SyntheticTicks {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        let n = self.models.len();
        let i = (self.emitted % n as u64) as usize;
        let (base, base_ms) = self.rate_base;
        let time_ms = base_ms + ((self.emitted - base) as f64 * 1000.0 / self.config.rate) as i64;
        self.emitted += 1;
        let dt = ((time_ms - self.last_ms[i]).max(1) as f64) / self.year_ms;
        self.last_ms[i] = time_ms;
        let z = self.normal();
        let m = &mut self.models[i];
        let sd = m.vol * dt.sqrt();
        m.price *= ((m.drift - 0.5 * m.vol * m.vol) * dt + sd * z).exp();
        let price = ((m.price * 100.0).round() / 100.0).max(0.01);
        // A day's volume spread over the day's ticks, in round lots and odd ones.
        let per_tick = m.daily_volume * dt * 252.0;
        let size = (per_tick * (0.5 * self.normal()).exp()).round().max(1.0);
        // Like the feeds' trades, no trade id (a tick is its time, price and
        // size) unless a symbol trades more than once a millisecond: then two
        // distinct trades could look alike, and a sequence number tells them apart.
        let trade_id = (self.config.rate > 1000.0 * n as f64).then(|| (self.emitted - 1).to_string());
        Some(Tick {
            symbol: self.names[i].clone(),
            time_ms,
            price,
            size,
            day_volume: None,
            trade_id,
            source: self.source.clone(),
        })
    }
}

/// Synthetic ticks as a source: `limit` ticks as fast as they are taken
/// (replays, benchmarks), or, without a limit, an endless feed stamped with
/// the clock and paced to it (demos of the live view).
pub struct SyntheticTickSource {
    config: TickConfig,
    limit: Option<u64>,
    /// A live feed's history starts here (Unix milliseconds).
    history_from: Option<i64>,
}

/// Ticks of history generated at most: a long history is made of sparser
/// ticks (bars from a few ticks each), not of more.
const MAX_HISTORY_TICKS: f64 = 200_000.0;

impl SyntheticTickSource {
    /// A source; fails as [`SyntheticTicks::new`] does. A live feed (no
    /// limit) starts now, whatever `config.start_ms` says.
    pub fn new(mut config: TickConfig, limit: Option<u64>) -> Result<Self, String> {
        if limit.is_none() {
            config.start_ms = chrono::Utc::now().timestamp_millis();
        }
        SyntheticTicks::new(config.clone())?;
        Ok(SyntheticTickSource { config, limit, history_from: None })
    }

    /// A live feed that first makes its history from `from_ms` on, in the
    /// same model, as fast as it is taken; then goes on live.
    pub fn with_history(mut self, from_ms: Option<i64>) -> Self {
        if self.limit.is_none() {
            self.history_from = from_ms.filter(|&f| f < self.config.start_ms);
        }
        self
    }
}

impl stockstream_core::Source for SyntheticTickSource {
    fn name(&self) -> &'static str {
        "synthetic-ticks"
    }

    fn description(&self) -> String {
        let c = &self.config;
        let how = match self.limit {
            Some(n) => format!("{n} ticks"),
            None => "live, paced to the clock".into(),
        };
        format!("SYNTHETIC ticks ({how}, {} a second, {} symbols, seed {})", c.rate, c.symbols.len(), c.seed)
    }

    fn expected(&self) -> Option<u64> {
        self.limit
    }

    fn ticks(&self) -> bool {
        true
    }

    fn records(self: Box<Self>) -> futures_util::stream::BoxStream<'static, stockstream_core::Item> {
        use futures_util::StreamExt;
        use stockstream_core::Item;
        let live_rate = self.config.rate;
        let mut ticks = SyntheticTicks::new(self.config).expect("checked in new");
        if let Some(from) = self.history_from {
            let now = chrono::Utc::now().timestamp_millis();
            let seconds = (now - from).max(1) as f64 / 1000.0;
            ticks.set_rate(live_rate.min(MAX_HISTORY_TICKS / seconds), from);
            tracing::info!("synthetic ticks: history from {} on", stockstream_core::tick::time_text::format(from));
        }
        let live = self.history_from.is_none();
        match self.limit {
            Some(n) => crate::reader_thread::on_own_thread("synthetic ticks", ticks.take(n as usize).map(Item::Tick)),
            None => futures_util::stream::unfold((ticks, live), move |(mut ticks, mut live)| async move {
                let mut tick = ticks.next()?;
                let now = chrono::Utc::now().timestamp_millis();
                if !live && tick.time_ms >= now {
                    // History made: the live feed goes on from here.
                    live = true;
                    ticks.set_rate(live_rate, tick.time_ms);
                    tick = ticks.next()?;
                }
                let ahead = tick.time_ms - now;
                if ahead > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(ahead as u64)).await;
                }
                Some((Item::Tick(tick), (ticks, live)))
            })
            .boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: f64) -> TickConfig {
        TickConfig { symbols: vec!["NVDA".into(), "AAPL".into()], rate, start_ms: 1_704_205_800_000, seed: 7 }
    }

    #[test]
    fn ticks_are_evenly_spaced_reproducible_and_priced_like_the_model() {
        let ticks: Vec<Tick> = SyntheticTicks::new(config(100.0)).unwrap().take(20_000).collect();
        assert_eq!(ticks[1].time_ms - ticks[0].time_ms, 10);
        assert_eq!(ticks[19_999].time_ms - ticks[0].time_ms, 199_990);
        assert_eq!(ticks, SyntheticTicks::new(config(100.0)).unwrap().take(20_000).collect::<Vec<_>>());
        let nvda: Vec<f64> = ticks.iter().filter(|t| &*t.symbol == "NVDA").map(|t| t.price).collect();
        // 200 s of NVDA at 50% a year moves well under 5% and not at all in a straight line.
        assert!(ticks[0].trade_id.is_none());
        assert!(nvda.iter().all(|p| (p / 278.0 - 1.0).abs() < 0.05), "{:?}", &nvda[..5]);
        assert!(nvda.windows(2).any(|w| w[1] > w[0]) && nvda.windows(2).any(|w| w[1] < w[0]));
        assert!(ticks.iter().all(|t| t.check(t.time_ms).is_ok()));
    }

    #[test]
    fn above_a_tick_per_millisecond_and_symbol_ticks_carry_a_sequence_number() {
        let ticks: Vec<Tick> = SyntheticTicks::new(config(10_000.0)).unwrap().take(100).collect();
        assert_eq!(ticks[0].time_ms, ticks[1].time_ms);
        assert_eq!((ticks[0].trade_id.as_deref(), ticks[99].trade_id.as_deref()), (Some("0"), Some("99")));
    }

    #[test]
    fn a_rate_must_be_positive() {
        assert!(SyntheticTicks::new(config(0.0)).is_err());
        assert!(SyntheticTicks::new(TickConfig { symbols: vec![], ..config(1.0) }).is_err());
    }
}
