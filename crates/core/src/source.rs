//! The one shape every source has: an async stream of records (or rows it could
//! not read), with a name and a description for the summary. CSV files, JSON
//! lines, the synthetic market and downloads all implement [`Source`]; the
//! producer loop knows nothing else about them.

use futures_core::stream::BoxStream;

use crate::{Bar, RawBar, Reject, Tick, Ts};

/// A row read from a source as it was written, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The fields as read, not yet cleaned or validated.
    pub raw: RawBar,
    /// Where it came from: `input.csv:17`.
    pub source: String,
}

/// A message already in wire form (a topic dump), sent as is.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRecord {
    /// The bus key: the symbol.
    pub key: String,
    /// The message bytes, untouched.
    pub payload: Vec<u8>,
    /// Its time, for pacing, when it has a readable one.
    pub ts: Option<Ts>,
}

/// One item a source yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A finished, valid bar (a generator's).
    Bar(Bar),
    /// A row as read, cleaned and validated by the consumer.
    Raw(SourceRecord),
    /// A message in wire form.
    Wire(WireRecord),
    /// A trade or quote of a live feed (or a replayed one), for windows to
    /// aggregate; it travels on the ticks topic.
    Tick(Tick),
    /// A tick read from a file, with its file and line for the dead letters.
    TickAt(Tick, String),
    /// A closed bar from a chart API (history, a gap's fill): it travels on
    /// the ticks topic and is stored over the live bar of its window.
    Fetched(crate::FetchedBar),
    /// A row the source could not read, kept with its reason.
    Reject(Reject),
}

/// Where records come from.
///
/// A source of two fixed bars, read as the producer reads every source:
///
/// ```
/// use futures_util::stream::{self, BoxStream, StreamExt};
/// use stockstream_core::{Bar, Item, Source};
///
/// struct TwoBars;
///
/// impl Source for TwoBars {
///     fn name(&self) -> &'static str {
///         "two"
///     }
///     fn description(&self) -> String {
///         "two bars of NVIDIA".into()
///     }
///     fn records(self: Box<Self>) -> BoxStream<'static, Item> {
///         let bar = |date: &str, close: f64| Bar {
///             company: "NVIDIA".into(),
///             symbol: "NVDA".into(),
///             ts: date.parse().unwrap(),
///             open: close,
///             high: close,
///             low: close,
///             close,
///             volume: 100.0,
///             vwap: None,
///             trades: None,
///         };
///         stream::iter([Item::Bar(bar("2024-01-02", 10.0)), Item::Bar(bar("2024-01-03", 11.0))]).boxed()
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let items: Vec<Item> = Box::new(TwoBars).records().collect().await;
/// assert_eq!(items.len(), 2);
/// # });
/// ```
pub trait Source: Send {
    /// The short name it is chosen by (`csv`, `synthetic`).
    fn name(&self) -> &'static str;

    /// For the summary: what exactly is read (`synthetic data (seed 42, ...)`).
    fn description(&self) -> String;

    /// How many records it will yield, when known in advance (progress bar).
    fn expected(&self) -> Option<u64> {
        None
    }

    /// True for a source of ticks (a live feed, synthetic ticks, a replayed
    /// tick file): they travel on the ticks topic and need `--bar`.
    fn ticks(&self) -> bool {
        false
    }

    /// The length of the bars it yields, when known: the generator's and a
    /// download's interval, or a file's, told from the gaps between its dates.
    /// Bars are stored in the table of their interval.
    fn interval(&self) -> Option<crate::BarLength> {
        None
    }

    /// True for a live feed: what it received is sent by no one again, so a
    /// stop hands on the items it already holds instead of dropping them.
    fn live(&self) -> bool {
        false
    }

    /// The records, in order; the stream ends with the source.
    fn records(self: Box<Self>) -> BoxStream<'static, Item>;
}
