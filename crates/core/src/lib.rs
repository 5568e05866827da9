//! The pure heart of stockstream: the [`Bar`] record, its wire codec, the company
//! table, and the validation and cleaning every record passes before it is stored.
//! Nothing here does I/O, so all of it is tested without servers.
#![warn(missing_docs)]

pub mod alert;
/// Bars, their time and date ranges.
pub mod bar;
pub mod bar_length;
pub mod calendar;
pub mod clean;
pub mod codec;
pub mod companies;
pub mod error;
pub mod fetched;
pub mod metrics;
/// Rejected records and where they are kept.
pub mod reject;
pub mod retry;
pub mod rollup;
pub mod shown;
pub mod source;
pub mod summary;
pub mod tick;
pub mod validate;

pub use alert::{Alert, AlertQuery};
pub use bar::{Bar, DateRange, Ts, TsError};
pub use bar_length::BarLength;
pub use clean::{Cleaner, MissingPolicy};
pub use codec::{decode, encode, encode_into, encode_raw_into, RawBar};
pub use companies::{
    canonical_symbol, company_for_symbol, parse_companies, register_companies, registered_company, symbol_for_company,
    DEFAULT_COMPANIES,
};
pub use error::{BusError, Retry, StoreError};
pub use fetched::FetchedBar;
pub use metrics::now_micros;
pub use reject::{DeadLetters, Refusal, Reject, RejectKind};
pub use retry::{RetryPolicy, Retryable};
pub use source::{Item, Source, SourceRecord, WireRecord};
pub use summary::{CoMoments, SeriesSummary};
pub use tick::{Tick, WindowMark};
pub use validate::validate;
