//! Where the pipeline hands each accepted bar: indicators and alerts are updated
//! and events go out to every subscriber of `/api/stream`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use stockstream_analytics::{Alert, AlertEngine, IndicatorRow, LiveIndicators};
use stockstream_core::metrics::Histogram;
use stockstream_core::Bar;
use tokio::sync::broadcast;

/// One server-sent event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Bar {
        symbol: String,
        open: f64,
        high: f64,
        low: f64,
        volume: f64,
        indicators: Box<IndicatorRow>,
        /// When the bar entered the bus (µs since the epoch), if known.
        sent_at_micros: Option<i64>,
    },
    Alert(Alert),
}

/// Alerts kept for `/api/alerts`.
const RECENT_ALERTS: usize = 1000;

pub struct Hub {
    live: Mutex<(LiveIndicators, AlertEngine)>,
    recent: Mutex<VecDeque<Alert>>,
    events: broadcast::Sender<Event>,
    /// From entering the bus to the event going out.
    pub bus_to_event: Histogram,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            live: Mutex::new((LiveIndicators::default(), AlertEngine::default())),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_ALERTS)),
            events: broadcast::channel(65_536).0,
            bus_to_event: Histogram::default(),
        }
    }
}

pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Hub {
    /// Takes accepted bars in order; returns the alerts they raised.
    pub fn on_bars<'a>(&self, bars: impl Iterator<Item = (&'a Bar, Option<i64>)>) -> Vec<Alert> {
        let mut raised = Vec::new();
        let mut events = Vec::new();
        // Events are built only for someone to read them.
        let publish = self.events.receiver_count() > 0;
        {
            let mut live = self.live.lock().expect("hub lock");
            let (indicators, engine) = &mut *live;
            for (bar, sent_at) in bars {
                // A redelivered bar updates nothing and raises nothing.
                let Some(row) = indicators.update(bar) else { continue };
                let alerts = engine.check(bar, row);
                if !publish {
                    raised.extend(alerts);
                    continue;
                }
                events.push((
                    Event::Bar {
                        symbol: bar.symbol.clone(),
                        open: bar.open,
                        high: bar.high,
                        low: bar.low,
                        volume: bar.volume,
                        indicators: Box::new(row.clone()),
                        sent_at_micros: sent_at,
                    },
                    sent_at,
                ));
                events.extend(alerts.iter().cloned().map(|a| (Event::Alert(a), None)));
                raised.extend(alerts);
            }
        }
        if !raised.is_empty() {
            let mut recent = self.recent.lock().expect("alerts lock");
            for a in &raised {
                if recent.len() == RECENT_ALERTS {
                    recent.pop_front();
                }
                recent.push_back(a.clone());
            }
        }
        if publish {
            for (event, sent_at) in events {
                let _ = self.events.send(event);
                if let Some(t) = sent_at {
                    self.bus_to_event.observe((now_micros() - t) as f64 / 1e6);
                }
            }
        }
        raised
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.events.receiver_count()
    }

    /// The latest indicators of every company seen.
    pub fn latest(&self) -> Vec<IndicatorRow> {
        self.live.lock().expect("hub lock").0.latest()
    }

    /// The newest alerts, newest first.
    pub fn alerts(&self, limit: usize) -> Vec<Alert> {
        self.recent.lock().expect("alerts lock").iter().rev().take(limit).cloned().collect()
    }
}
