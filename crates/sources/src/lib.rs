//! Where bars come from: CSV files in the original project's layout, read as a
//! stream, and a synthetic market generator for demos and load tests.

pub mod calendar;
pub mod csv_file;
pub mod json_lines;
pub mod synthetic;
pub mod yahoo;

pub use csv_file::{CsvError, CsvOptions, CsvSource, SourceRecord};
pub use json_lines::{JsonLinesSource, WireRecord};
pub use synthetic::{Interval, Synthetic, SyntheticConfig};
pub use yahoo::{FetchError, Yahoo, DEFAULT_BASE_URL};
