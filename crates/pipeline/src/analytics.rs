//! The analytics stage: every accepted bar, in bus order, updates the live
//! indicators and the alert engine; what they produce goes to subscribers (the
//! server's event hub, an alert publisher, ...), which the binary chooses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stockstream_analytics::{
    Alert, AlertEngine, IndicatorRow, LiveIndicators, MarketStats, ReducedSeries, RunningStats, MAX_CHARTED,
};
use stockstream_core::Bar;

/// Receives what the analytics stage computes.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// One accepted bar, its indicators and the alerts it raised. Called in bus
    /// order while the stage holds its state: do no I/O here.
    fn on_bar(&self, _bar: &Bar, _row: &IndicatorRow, _alerts: &[Alert], _sent_at_micros: Option<i64>) {}

    /// A bar still forming (its window open), after each tick that changed it:
    /// for live views only, never stored. Do no I/O here.
    fn on_forming(&self, _bar: &Bar, _sent_at_micros: Option<i64>) {}

    /// Every alert a polled batch raised, once per batch; may wait (to publish).
    async fn on_alerts(&self, _alerts: &[Alert]) -> Result<(), crate::PipelineError> {
        Ok(())
    }
}

/// Live indicators and alerts, fed accepted bars.
#[derive(Default)]
pub struct AnalyticsStage {
    live: Mutex<(LiveIndicators, AlertEngine)>,
    subscribers: Vec<Arc<dyn Subscriber>>,
}

impl AnalyticsStage {
    /// A stage handing its results to these subscribers.
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        AnalyticsStage { live: Mutex::default(), subscribers }
    }

    /// Takes accepted bars in bus order (with when each entered the bus);
    /// returns the alerts they raised. A redelivered bar updates nothing.
    pub fn on_bars<'a>(&self, bars: impl Iterator<Item = (&'a Bar, Option<i64>)>) -> Vec<Alert> {
        let mut raised = Vec::new();
        let mut live = self.live.lock().expect("analytics lock");
        let (indicators, engine) = &mut *live;
        for (bar, sent_at) in bars {
            let Some(row) = indicators.update(bar) else { continue };
            let alerts = engine.check(bar, row);
            for s in &self.subscribers {
                s.on_bar(bar, row, &alerts, sent_at);
            }
            raised.extend(alerts);
        }
        raised
    }

    /// Takes bars that came before those the stage will be handed (a server
    /// that starts mid-stream reads them from the store): the indicators and
    /// alert rules start where they stood, and no one is told of them.
    pub fn warm(&self, bars: &[Bar]) {
        let mut live = self.live.lock().expect("analytics lock");
        let (indicators, engine) = &mut *live;
        for bar in bars {
            if let Some(row) = indicators.update(bar) {
                engine.check(bar, row);
            }
        }
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
        self.live.lock().expect("analytics lock").0.latest_first(limit)
    }

    /// The latest indicators of these companies, those seen.
    pub fn latest_of(&self, companies: &[String]) -> Vec<IndicatorRow> {
        self.live.lock().expect("analytics lock").0.latest_of(companies)
    }
}

/// The market statistics of every bar the stage takes and each company's
/// series reduced for charts, in one pass and in memory bounded by the number
/// of companies: a run's insights and report at its end, without reading the
/// store back.
#[derive(Default)]
pub struct StatsOfRun(Mutex<RunTally>);

#[derive(Default)]
struct RunTally {
    stats: RunningStats,
    /// By company, when kept (for a report): the first [`MAX_CHARTED`].
    series: Option<HashMap<String, ReducedSeries>>,
}

impl Subscriber for StatsOfRun {
    fn on_bar(&self, bar: &Bar, row: &IndicatorRow, _alerts: &[Alert], _sent_at_micros: Option<i64>) {
        let mut tally = self.0.lock().expect("statistics lock");
        tally.stats.push(bar);
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
    /// Statistics and, for a report, each company's reduced series.
    pub fn with_series() -> Self {
        StatsOfRun(Mutex::new(RunTally { series: Some(HashMap::new()), ..Default::default() }))
    }

    /// The statistics so far; the count starts again.
    pub fn take(&self) -> MarketStats {
        self.take_with_series().0
    }

    /// The statistics and every company's reduced series (by company name;
    /// none unless made [`StatsOfRun::with_series`]);
    /// the count starts again.
    pub fn take_with_series(&self) -> (MarketStats, Vec<ReducedSeries>) {
        let tally = std::mem::take(&mut *self.0.lock().expect("statistics lock"));
        let mut series: Vec<_> = tally.series.unwrap_or_default().into_iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        (tally.stats.finish(), series.into_iter().map(|(_, s)| s).collect())
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

    #[test]
    fn a_runs_report_charts_at_most_its_cap_of_companies() {
        let stats = StatsOfRun::with_series();
        for n in 0..MAX_CHARTED + 10 {
            let bar = Bar {
                symbol: format!("S{n}"),
                company: format!("Company {n}"),
                ts: "2024-01-02".parse().unwrap(),
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
            };
            stats.on_bar(&bar, &IndicatorRow::default(), &[], None);
        }
        let (market, series) = stats.take_with_series();
        assert_eq!(series.len(), MAX_CHARTED);
        assert_eq!(market.companies.len(), MAX_CHARTED + 10, "the statistics count every company");
    }
}
