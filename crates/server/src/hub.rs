//! The event hub: a subscriber of the analytics stage that turns accepted bars
//! and alerts into server-sent events for every client of `/api/stream`
//! (`/api/alerts` reads the alerts from the store).

use stockstream_core::now_micros;

use async_trait::async_trait;
use serde::Serialize;
use stockstream_analytics::{Alert, IndicatorRow};
use stockstream_core::metrics::Histogram;
use stockstream_core::Bar;
use stockstream_pipeline::Subscriber;
use tokio::sync::broadcast;

/// One server-sent event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// An accepted bar with its indicators.
    Bar {
        /// The bar's symbol.
        symbol: String,
        /// Open price.
        open: f64,
        /// High price.
        high: f64,
        /// Low price.
        low: f64,
        /// Volume.
        volume: f64,
        /// Its indicators (company, date and close are here).
        indicators: Box<IndicatorRow>,
        /// When the bar entered the bus (µs since the epoch), if known.
        sent_at_micros: Option<i64>,
        /// VWAP of its trades, for bars made from them.
        vwap: Option<f64>,
        /// Trades in it, for bars made from them.
        trades: Option<u64>,
    },
    /// An alert raised by the bar before it.
    Alert(Alert),
    /// A bar still forming from live ticks (its window open): it moves with
    /// every tick until it closes and comes as a `bar`.
    Forming {
        /// The bar's symbol.
        symbol: String,
        /// The company.
        company: String,
        /// The window's start.
        date: String,
        /// Open price.
        open: f64,
        /// High price.
        high: f64,
        /// Low price.
        low: f64,
        /// Latest price.
        close: f64,
        /// Volume so far.
        volume: f64,
        /// VWAP of its trades so far.
        vwap: Option<f64>,
        /// Trades so far.
        trades: Option<u64>,
        /// True: the bar is not final. False for a closed bar older than the
        /// company's newest (a filled gap), sent as an `earlier` event.
        partial: bool,
        /// When the tick that moved it entered the bus (µs since the epoch).
        sent_at_micros: Option<i64>,
    },
}

/// Live events for every subscriber of `/api/stream`.
pub struct Hub {
    events: broadcast::Sender<Event>,
    /// From entering the bus to the event going out.
    pub bus_to_event: Histogram,
    /// From a tick entering the bus to its forming bar's event going out.
    pub tick_to_event: Histogram,
    /// False when alerts come from elsewhere (a topic the server follows)
    /// rather than from the bars it is handed.
    alerts_from_bars: bool,
    /// The length of the bars it streams (`1d` unless told).
    interval: String,
    /// False for a server of a store as it is: nothing streams through it.
    streams: bool,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            events: broadcast::channel(65_536).0,
            bus_to_event: Histogram::default(),
            tick_to_event: Histogram::default(),
            alerts_from_bars: true,
            interval: "1d".into(),
            streams: true,
        }
    }
}

#[async_trait]
impl Subscriber for Hub {
    fn on_forming(&self, bar: &Bar, sent_at_micros: Option<i64>) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(Event::Forming {
            symbol: bar.symbol.clone(),
            company: bar.company.clone(),
            date: bar.ts.to_string(),
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
            vwap: bar.vwap,
            trades: bar.trades,
            partial: true,
            sent_at_micros,
        });
        if let Some(t) = sent_at_micros {
            self.tick_to_event.observe((now_micros() - t) as f64 / 1e6);
        }
    }

    fn on_earlier(&self, bar: &Bar) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(Event::Forming {
            symbol: bar.symbol.clone(),
            company: bar.company.clone(),
            date: bar.ts.to_string(),
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
            vwap: bar.vwap,
            trades: bar.trades,
            partial: false,
            sent_at_micros: None,
        });
    }

    fn on_bar(&self, bar: &Bar, row: &IndicatorRow, alerts: &[Alert], sent_at_micros: Option<i64>) {
        // Events are built only for someone to read them.
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(Event::Bar {
            symbol: bar.symbol.clone(),
            open: bar.open,
            high: bar.high,
            low: bar.low,
            volume: bar.volume,
            indicators: Box::new(row.clone()),
            sent_at_micros,
            vwap: bar.vwap,
            trades: bar.trades,
        });
        if let Some(t) = sent_at_micros {
            self.bus_to_event.observe((now_micros() - t) as f64 / 1e6);
        }
        if self.alerts_from_bars {
            for a in alerts {
                let _ = self.events.send(Event::Alert(a.clone()));
            }
        }
    }
}

impl Hub {
    /// A new client of the live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A hub whose alerts are handed to it by [`Hub::alert`] (a server
    /// following the bus reads them from the alerts topic, where the
    /// consumers that raised them published them), not raised by its bars.
    pub fn with_alerts_from_elsewhere() -> Self {
        Hub { alerts_from_bars: false, ..Hub::default() }
    }

    /// The same hub, streaming bars of `interval` (the dashboard shows them
    /// live on that interval's chart).
    pub fn streaming(mut self, interval: impl Into<String>) -> Self {
        self.interval = interval.into();
        self
    }

    /// The length of the bars it streams.
    pub fn interval(&self) -> &str {
        &self.interval
    }

    /// The same hub, serving bars of `interval` with nothing streaming
    /// (`serve` of a store, following no bus): pages say so.
    pub fn serving(mut self, interval: impl Into<String>) -> Self {
        self.interval = interval.into();
        self.streams = false;
        self
    }

    /// Whether anything streams through it.
    pub fn streams(&self) -> bool {
        self.streams
    }

    /// Sends an alert to every client.
    pub fn alert(&self, alert: Alert) {
        let _ = self.events.send(Event::Alert(alert));
    }

    /// How many clients listen.
    pub fn subscribers(&self) -> usize {
        self.events.receiver_count()
    }
}
