//! The analytics stage: every accepted bar, in bus order, updates the live
//! indicators and the alert engine; what they produce goes to subscribers (the
//! server's event hub, an alert publisher, ...), which the binary chooses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stockstream_analytics::{
    Alert, AlertEngine, IndicatorRow, LiveIndicators, MarketStats, ReducedSeries, RunningStats, MAX_CHARTED,
};
use stockstream_core::{Bar, Ts};

/// Receives what the analytics stage computes.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// One accepted bar, its indicators and the alerts it raised. Called in bus
    /// order while the stage holds its state: do no I/O here.
    fn on_bar(&self, _bar: &Bar, _row: &IndicatorRow, _alerts: &[Alert], _sent_at_micros: Option<i64>) {}

    /// A bar still forming (its window open), after each tick that changed it:
    /// for live views only, never stored. Do no I/O here.
    fn on_forming(&self, _bar: &Bar, _sent_at_micros: Option<i64>) {}

    /// A closed bar older than the company's newest (a gap filled from the
    /// chart API): stored, but no news to the indicators. Do no I/O here.
    fn on_earlier(&self, _bar: &Bar) {}

    /// Every alert a polled batch raised, once per batch; may wait (to publish).
    async fn on_alerts(&self, _alerts: &[Alert]) -> Result<(), crate::PipelineError> {
        Ok(())
    }
}

/// Bars read back before a forgotten company's next bar: enough to settle
/// every indicator (as the API's pages and the live view's warm-up read).
pub const WARM_UP: usize = 600;

/// The most companies whose indicators and alert state a run or a consumer
/// holds (about 1 KB each); others are read back from the store when they come.
pub const MAX_HELD: usize = 25_000;

/// Live indicators and alerts, fed accepted bars.
#[derive(Default)]
pub struct AnalyticsStage {
    live: Mutex<Live>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    /// The most companies whose state is held (None: every company).
    hold: Option<usize>,
}

#[derive(Default)]
struct Live {
    indicators: LiveIndicators,
    engine: AlertEngine,
    /// Companies whose state was forgotten, to be read back from the store
    /// before their next bar.
    forgotten: HashSet<String>,
}

impl AnalyticsStage {
    /// A stage handing its results to these subscribers.
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        AnalyticsStage { live: Mutex::default(), subscribers, hold: None }
    }

    /// Holds the state of at most `companies` companies: past that, those
    /// updated least recently are forgotten and read back from the store
    /// when they come again (see [`AnalyticsStage::returning`]).
    pub fn holding_at_most(mut self, companies: usize) -> Self {
        self.hold = Some(companies.max(1));
        self
    }

    /// Between batches: forgets the companies updated least recently when
    /// more than the cap are held (down to nine tenths of it, so that this
    /// runs once per tenth of the cap of new companies).
    pub fn forget_excess(&self) {
        let Some(cap) = self.hold else { return };
        let mut live = self.live.lock().expect("analytics lock");
        if live.indicators.len() <= cap {
            return;
        }
        let Live { indicators, engine, forgotten } = &mut *live;
        for company in indicators.forget_beyond(cap - cap / 10) {
            engine.forget(&company);
            forgotten.insert(company);
        }
    }

    /// The forgotten companies among `bars`, each with its first bar's time:
    /// their history before it is to be handed to [`AnalyticsStage::warm`]
    /// before the bars are.
    pub fn returning(&self, bars: &[Bar]) -> Vec<(String, Ts)> {
        let live = self.live.lock().expect("analytics lock");
        if live.forgotten.is_empty() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        bars.iter()
            .filter(|b| live.forgotten.contains(&b.company) && seen.insert(b.company.as_str()))
            .map(|b| (b.company.clone(), b.ts))
            .collect()
    }

    /// Takes accepted bars in bus order (with when each entered the bus);
    /// returns the alerts they raised. A redelivered bar updates nothing.
    pub fn on_bars<'a>(&self, bars: impl Iterator<Item = (&'a Bar, Option<i64>)>) -> Vec<Alert> {
        let mut raised = Vec::new();
        let mut live = self.live.lock().expect("analytics lock");
        let Live { indicators, engine, forgotten } = &mut *live;
        for (bar, sent_at) in bars {
            if !forgotten.is_empty() {
                forgotten.remove(&bar.company);
            }
            let Some(row) = indicators.update(bar) else {
                for s in &self.subscribers {
                    s.on_earlier(bar);
                }
                continue;
            };
            let alerts = engine.check(bar, row);
            for s in &self.subscribers {
                s.on_bar(bar, row, &alerts, sent_at);
            }
            raised.extend(alerts);
        }
        raised
    }

    /// Takes bars that came before those the stage will be handed (a server
    /// that starts mid-stream reads them from the store, as does a stage for
    /// a company it forgot): the indicators and alert rules start where they
    /// stood, and no one is told of them.
    pub fn warm(&self, bars: &[Bar]) {
        let mut live = self.live.lock().expect("analytics lock");
        let Live { indicators, engine, forgotten } = &mut *live;
        for bar in bars {
            if !forgotten.is_empty() {
                forgotten.remove(&bar.company);
            }
            if let Some(row) = indicators.update(bar) {
                engine.check(bar, row);
            }
        }
    }

    /// How many companies the stage has seen: those held and those forgotten.
    pub fn companies(&self) -> usize {
        let live = self.live.lock().expect("analytics lock");
        live.indicators.len() + live.forgotten.len()
    }

    /// Hands a forming bar to every subscriber.
    pub fn forming(&self, bar: &Bar, sent_at_micros: Option<i64>) {
        for s in &self.subscribers {
            s.on_forming(bar, sent_at_micros);
        }
    }

    /// Hands a batch's alerts to every subscriber.
    pub async fn publish(&self, alerts: &[Alert]) -> Result<(), crate::PipelineError> {
        if alerts.is_empty() {
            return Ok(());
        }
        for s in &self.subscribers {
            s.on_alerts(alerts).await?;
        }
        Ok(())
    }

    /// The latest indicators of the first `limit` companies by name, and how
    /// many companies have some.
    pub fn latest_first(&self, limit: usize) -> (Vec<IndicatorRow>, usize) {
        self.live.lock().expect("analytics lock").indicators.latest_first(limit)
    }

    /// The latest indicators of these companies, those seen.
    pub fn latest_of(&self, companies: &[String]) -> Vec<IndicatorRow> {
        self.live.lock().expect("analytics lock").indicators.latest_of(companies)
    }
}

/// The market statistics of every bar the stage takes and each company's
/// series reduced for charts, in one pass and in memory bounded by the number
/// of companies: a run's insights and report at its end, without reading the
/// store back. Past [`MAX_COUNTED`] companies the statistics are given up
/// (the run reads them from the store at its end, one company at a time).
pub struct StatsOfRun(Mutex<RunTally>);

impl Default for StatsOfRun {
    fn default() -> Self {
        StatsOfRun::new()
    }
}

/// The most companies a run counts its statistics of as the bars flow.
pub const MAX_COUNTED: usize = 10_000;

struct RunTally {
    /// None once more than [`MAX_COUNTED`] companies came.
    stats: Option<RunningStats>,
    /// By company, when kept (for a report): the first [`MAX_CHARTED`].
    series: Option<HashMap<String, ReducedSeries>>,
}

impl Subscriber for StatsOfRun {
    fn on_bar(&self, bar: &Bar, row: &IndicatorRow, _alerts: &[Alert], _sent_at_micros: Option<i64>) {
        let mut tally = self.0.lock().expect("statistics lock");
        if let Some(stats) = &mut tally.stats {
            if stats.companies() >= MAX_COUNTED && !stats.counts(&bar.company) {
                tally.stats = None;
            } else {
                stats.push(bar);
            }
        }
        if let Some(by_company) = &mut tally.series {
            let room = by_company.len() < MAX_CHARTED;
            match by_company.get_mut(&bar.company) {
                Some(series) => series.push(bar, row),
                None if room => by_company.entry(bar.company.clone()).or_default().push(bar, row),
                None => {}
            }
        }
    }
}

impl StatsOfRun {
    /// Statistics only.
    pub fn new() -> Self {
        StatsOfRun(Mutex::new(RunTally { stats: Some(RunningStats::default()), series: None }))
    }

    /// Statistics and, for a report, each company's reduced series.
    pub fn with_series() -> Self {
        StatsOfRun(Mutex::new(RunTally { stats: Some(RunningStats::default()), series: Some(HashMap::new()) }))
    }

    /// The statistics so far (None past [`MAX_COUNTED`] companies); the
    /// count starts again.
    pub fn take(&self) -> Option<MarketStats> {
        self.take_with_series().0
    }

    /// The statistics (None past [`MAX_COUNTED`] companies) and every
    /// company's reduced series (by company name; none unless made
    /// [`StatsOfRun::with_series`]); the count starts again.
    pub fn take_with_series(&self) -> (Option<MarketStats>, Vec<ReducedSeries>) {
        let mut tally = self.0.lock().expect("statistics lock");
        let stats = tally.stats.replace(RunningStats::default()).map(RunningStats::finish);
        let mut series: Vec<_> = tally.series.as_mut().map(std::mem::take).unwrap_or_default().into_iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        (stats, series.into_iter().map(|(_, s)| s).collect())
    }
}

/// Keeps every alert raised in the store, beside the bars (retried like a
/// bar write): any `serve` over that store shows the history.
pub struct StoredAlerts(pub std::sync::Arc<dyn stockstream_store::Store>);

#[async_trait]
impl Subscriber for StoredAlerts {
    async fn on_alerts(&self, alerts: &[Alert]) -> Result<(), crate::PipelineError> {
        let store = &self.0;
        crate::RetryPolicy::default().run("keeping alerts", || store.keep_alerts(alerts.to_vec())).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(company: &str, day: u64, close: f64) -> Bar {
        let first: chrono::NaiveDate = "2024-01-01".parse().unwrap();
        Bar {
            symbol: company.to_uppercase(),
            company: company.into(),
            ts: Ts::Date(first + chrono::Days::new(day)),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 1000.0 + day as f64,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn a_runs_report_charts_at_most_its_cap_of_companies() {
        let stats = StatsOfRun::with_series();
        for n in 0..MAX_CHARTED + 10 {
            stats.on_bar(&bar(&format!("Company {n}"), 1, 1.0), &IndicatorRow::default(), &[], None);
        }
        let (market, series) = stats.take_with_series();
        assert_eq!(series.len(), MAX_CHARTED);
        assert_eq!(market.unwrap().companies.len(), MAX_CHARTED + 10, "the statistics count every company");
    }

    #[test]
    fn statistics_are_given_up_past_their_cap_of_companies() {
        let stats = StatsOfRun::new();
        for n in 0..MAX_COUNTED {
            stats.on_bar(&bar(&format!("C{n}"), 1, 1.0), &IndicatorRow::default(), &[], None);
        }
        stats.on_bar(&bar("C0", 2, 1.0), &IndicatorRow::default(), &[], None);
        assert!(stats.take().is_some_and(|m| m.companies.len() == MAX_COUNTED), "a company counted goes on");
        for n in 0..=MAX_COUNTED {
            stats.on_bar(&bar(&format!("C{n}"), 1, 1.0), &IndicatorRow::default(), &[], None);
        }
        assert!(stats.take().is_none(), "one more company: the store is read instead");
    }

    /// A stage holding 10 companies, fed 25 in turn: the forgotten ones come
    /// back with their history read back, and every row and alert equals those
    /// of a stage that holds every company.
    #[test]
    fn a_forgotten_company_read_back_has_the_indicators_and_alerts_of_one_never_forgotten() {
        let bounded = AnalyticsStage::new(Vec::new()).holding_at_most(10);
        let whole = AnalyticsStage::new(Vec::new());
        let mut stored: HashMap<String, Vec<Bar>> = HashMap::new();
        let (mut alerts_bounded, mut alerts_whole) = (Vec::new(), Vec::new());
        for day in 0..120u64 {
            let batch: Vec<Bar> = (0..25)
                .map(|c| bar(&format!("C{c:02}"), day, 100.0 + (day as f64 * (c + 1) as f64 / 7.0).sin() * 10.0))
                .collect();
            for (company, first) in bounded.returning(&batch) {
                let history = &stored[&company];
                let before: Vec<Bar> = history.iter().filter(|b| b.ts < first).cloned().collect();
                bounded.warm(&before[before.len().saturating_sub(WARM_UP + 1)..]);
            }
            alerts_bounded.extend(bounded.on_bars(batch.iter().map(|b| (b, None))));
            alerts_whole.extend(whole.on_bars(batch.iter().map(|b| (b, None))));
            for b in &batch {
                stored.entry(b.company.clone()).or_default().push(b.clone());
            }
            bounded.forget_excess();
            assert!(bounded.live.lock().unwrap().indicators.len() <= 10);
        }
        assert_eq!(bounded.companies(), 25);
        let key = |a: &Alert| format!("{} {} {}", a.company, a.date, a.rule);
        assert!(!alerts_whole.is_empty());
        assert_eq!(
            alerts_bounded.iter().map(key).collect::<Vec<_>>(),
            alerts_whole.iter().map(key).collect::<Vec<_>>()
        );
        let names: Vec<String> = (0..25).map(|c| format!("C{c:02}")).collect();
        let (held, all) = (bounded.latest_of(&names), whole.latest_of(&names));
        assert!(!held.is_empty());
        for row in held {
            let same = all.iter().find(|r| r.company == row.company).unwrap();
            assert_eq!(format!("{row:?}"), format!("{same:?}"));
        }
    }
}
