//! An alert: a rule that fired on a bar, kept like data (stored, published,
//! served) wherever it was raised.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// An alert raised by a bar: a rule that fired, with the values that made it fire.
pub struct Alert {
    /// The company.
    pub company: String,
    /// Its symbol.
    pub symbol: String,
    /// The bar's date.
    pub date: String,
    /// `sma_cross_up`, `sma_cross_down`, `rsi_overbought`, `rsi_oversold`,
    /// `volume_spike`, `large_move`.
    pub rule: String,
    /// A sentence a person understands.
    pub message: String,
    /// The values the rule looked at.
    pub values: serde_json::Value,
}

/// Which stored alerts to read: newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// One company's (by name), or every company's.
    pub company: Option<String>,
    /// Bar dates within this range.
    pub range: crate::DateRange,
    /// At most this many.
    pub limit: usize,
}
