//! The server: REST over the store, server-sent events of bars and alerts as
//! they flow, Prometheus metrics, and the live dashboard (served from here, with
//! no request to any other host).
#![warn(missing_docs)]

mod api;
pub mod args;
mod assets;
mod hub;
pub mod listen;
pub mod stats;

pub use api::{market_stats_of, router, serve, AppState, MetricsText};
pub use args::ServeArgs;
pub use hub::{Event, Hub};
pub use listen::Limits;
