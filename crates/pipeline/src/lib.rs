//! The stockstream pipeline, independent of any backend: the produce loop
//! (source → bus), the consume loop (bus → decode → clean → validate → batch →
//! write-behind → commit), the analytics stage that accepted bars flow through,
//! the counters, pacing, the one retry policy and clean shutdown.
//!
//! Everything here talks to traits: [`stockstream_core::Source`],
//! [`stockstream_bus::Producer`] / [`stockstream_bus::Consumer`],
//! [`stockstream_store::Store`], [`stockstream_core::DeadLetters`] and
//! [`Subscriber`]. The command-line binary picks the backends and wires them.
#![warn(missing_docs)]

pub mod analytics;
pub mod args;
pub mod consume;
mod driver;
pub mod follow;
pub mod produce;
pub mod run;
pub mod shutdown;
pub mod stats;
pub mod ticks;

pub use analytics::{AnalyticsStage, StatsOfRun, StoredAlerts, Subscriber, MAX_COUNTED, MAX_HELD};
pub use args::{ConsumeArgs, PaceArgs, WindowArgs};
pub use consume::{consume, Acceptor, ConsumeOptions, Replaced};
pub use follow::{follow, FollowedTopics};
pub use produce::{produce, Pace};
pub use run::{embedded, over_bus, BUS_CAPACITY};
pub use shutdown::stop_on_signal;
pub use stats::Stats;
pub use stockstream_core::retry::{RetryPolicy, Retryable};
pub use ticks::TickOptions;

use stockstream_core::{BusError, StoreError};

/// Why a pipeline stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store (or the dead letters) failed for good, or stayed unavailable
    /// past the retry policy's limit. Nothing past the failed write was committed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The bus failed for good.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// A stage's task ended abnormally.
    #[error("{0}")]
    Task(String),
}
