//! Analytics as data flows and over stored ranges. Pure computation, no I/O:
//! streaming indicators with TA-Lib's definitions, statistics with pandas'
//! definitions, and insights written from those numbers.
#![warn(missing_docs)]

pub mod alerts;
pub mod batch;
pub mod indicators;
pub mod insights;
pub mod running;
pub mod series;
pub mod stats;
pub mod talib;

pub use alerts::{Alert, AlertEngine};
pub use batch::indicator_rows;
pub use indicators::{IndicatorRow, Indicators, LiveIndicators};
pub use insights::{insights, Insight};
pub use running::{summary_stats, RunningStats, MAX_CORRELATED};
pub use series::{ReducedSeries, CHART_POINTS, MAX_CHARTED};
pub use stats::{
    boxplot, company_stats, correlation, describe, market_stats, BoxPlot, CompanyDetail, CompanyStats, Describe,
    DescribeOhlcv, MarketStats, MarketStatsBuilder,
};
