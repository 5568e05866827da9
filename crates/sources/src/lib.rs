//! Where bars come from: CSV files in the original project's layouts, wire-format
//! JSON lines, a synthetic market generator and Yahoo Finance downloads, each a
//! [`stockstream_core::Source`], chosen by name through [`registry`].
#![warn(missing_docs)]

pub mod args;
pub mod backfill;
pub mod bounded;
pub use stockstream_core::calendar;
pub mod csv_file;
pub mod json_lines;
pub mod live;
pub mod reader_thread;
pub mod registry;
pub mod survey;
pub mod synthetic;
pub mod synthetic_ticks;
pub mod tick_file;
pub mod yahoo;
pub mod yahoo_stream;

pub use args::{SourceArgs, SyntheticArgs};
pub use backfill::{chart_length, latest_session_open, BackfillPlan};
pub use bounded::DEFAULT_MAX_RECORD_BYTES;
pub use csv_file::{CsvError, CsvOptions, CsvSource};
pub use json_lines::JsonLinesSource;
pub use live::{FinnhubFeed, LiveSource, Reconnect, YahooFeed, FINNHUB_URL};
pub use registry::{open, source_for_file, Registration, SourceError, SourceOptions, SOURCES};
pub use synthetic::{Interval, Synthetic, SyntheticConfig};
pub use synthetic_ticks::{SyntheticTickSource, SyntheticTicks, TickConfig};
pub use tick_file::TickFile;
pub use yahoo::{FetchError, Yahoo, YahooDownload, DEFAULT_BASE_URL};
