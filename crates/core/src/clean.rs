//! Cleaning as the original project's notebook did it: a missing value is
//! forward-filled from the same company's previous bar, or the row is dropped.

use crate::reject::RejectKind;
use std::collections::HashMap;

/// Most trades a bar may count: integers beyond 2^53 are not exact in JSON.
const MAX_TRADES: f64 = 9_007_199_254_740_992.0;

use crate::bar::{Bar, Ts};
use crate::codec::RawBar;
use crate::companies::{registered_company, symbol_for_company};
use crate::reject::Refusal;
use crate::validate::{check_name, MAX_COMPANY_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
/// What to do with a record whose prices or volume are partly missing.
pub enum MissingPolicy {
    /// Fill a missing value from the company's previous accepted bar.
    #[default]
    Ffill,
    /// Drop (reject) any record with a missing value.
    Drop,
}

impl std::str::FromStr for MissingPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ffill" => Ok(MissingPolicy::Ffill),
            "drop" => Ok(MissingPolicy::Drop),
            _ => Err(format!("unknown missing-value policy {s:?} (ffill|drop)")),
        }
    }
}

const FIELDS: [&str; 5] = ["Open", "High", "Low", "Close", "Volume"];

/// Turns raw records into bars, remembering per company the last accepted values
/// (O(companies) memory) for forward-fill.
#[derive(Debug, Default)]
pub struct Cleaner {
    policy: MissingPolicy,
    /// Per company, the latest bar in time accepted so far.
    last: HashMap<String, (Ts, [f64; 5])>,
    /// Company names as read → the one name of the company and its symbol:
    /// case and aliases folded, so that `Apple`, `apple`, `APPLE` and `AAPL`
    /// are one company and never overwrite each other's bars.
    names: HashMap<String, (String, String)>,
    /// Unregistered names, lower-cased → the first spelling read.
    folded: HashMap<String, String>,
    /// Records completed by forward-fill.
    pub imputed: u64,
}

impl Cleaner {
    /// A cleaner with no history yet.
    pub fn new(policy: MissingPolicy) -> Self {
        Cleaner { policy, ..Default::default() }
    }

    /// Parses and completes a raw record. The caller validates the result and
    /// then calls [`Cleaner::remember`] if it was accepted.
    pub fn clean(&mut self, raw: &RawBar) -> Result<Bar, Refusal> {
        let Some(read_name) = raw.company.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(Refusal::new(RejectKind::MissingCompany, "Company Name is missing"));
        };
        // Checked first: the name appears in every reason below.
        check_name("Company Name", read_name, MAX_COMPANY_BYTES)?;
        let company = self.identity(read_name).0.to_string();
        let ts: Ts = match raw.date.as_deref() {
            None => return Err(Refusal::new(RejectKind::MissingDate, format!("Date is missing ({company})"))),
            Some(d) => d.parse().map_err(|e| Refusal::new(RejectKind::BadDate, format!("{e} ({company})")))?,
        };
        let mut values = [raw.open, raw.high, raw.low, raw.close, raw.volume];
        if values[..4].iter().all(Option::is_none) {
            // Nothing to complete: filling would invent the whole bar.
            return Err(Refusal::new(RejectKind::NoPrices, format!("no price at all for {company} {ts}")));
        }
        if let Some(i) = values.iter().position(Option::is_none) {
            let missing = || {
                let names: Vec<_> = (0..5).filter(|&j| values[j].is_none()).map(|j| FIELDS[j]).collect();
                names.join(", ")
            };
            // Only an earlier bar may fill a gap, never a later one.
            let earlier = self.last.get(&company).filter(|(at, _)| *at < ts).map(|(_, v)| v);
            match (self.policy, earlier) {
                (MissingPolicy::Ffill, Some(prev)) => {
                    for (v, p) in values.iter_mut().zip(prev) {
                        v.get_or_insert(*p);
                    }
                    self.imputed += 1;
                }
                (MissingPolicy::Ffill, None) => {
                    return Err(Refusal::new(
                        RejectKind::MissingValue,
                        format!("{} missing for {company} {ts} with no earlier bar to fill from", missing()),
                    ))
                }
                (MissingPolicy::Drop, _) => {
                    return Err(Refusal::new(
                        RejectKind::MissingValue,
                        format!("{} missing for {company} {ts} (dropped)", missing()),
                    ))
                }
            }
            debug_assert!(values[i].is_some());
        }
        let [open, high, low, close, volume] = values.map(|v| v.expect("filled above"));
        let symbol = match trimmed(&raw.symbol) {
            Some(mut symbol) => {
                symbol.make_ascii_uppercase();
                symbol
            }
            None => self.names[read_name].1.clone(),
        };
        let trades = match raw.trades {
            None => None,
            Some(t) if t >= 0.0 && t.fract() == 0.0 && t <= MAX_TRADES => Some(t as u64),
            Some(t) => {
                return Err(Refusal::new(
                    RejectKind::BadTrades,
                    format!("Trades {t} is not a whole count >= 0 ({company} {ts})"),
                ))
            }
        };
        Ok(Bar { symbol, company, ts, open, high, low, close, volume, vwap: raw.vwap, trades })
    }

    /// The one name and symbol of the company a file names `read_name`
    /// (looked up once per distinct name).
    fn identity(&mut self, read_name: &str) -> (&str, &str) {
        if !self.names.contains_key(read_name) {
            let one = match registered_company(read_name) {
                Some((symbol, company)) => (company, symbol),
                None => {
                    let first = self.folded.entry(read_name.to_lowercase()).or_insert_with(|| read_name.to_string());
                    (first.clone(), symbol_for_company(first))
                }
            };
            self.names.insert(read_name.to_string(), one);
        }
        let (company, symbol) = &self.names[read_name];
        (company, symbol)
    }

    /// Records an accepted bar as the source for later forward-fills, when it
    /// is the company's latest in time.
    pub fn remember(&mut self, bar: &Bar) {
        let values = [bar.open, bar.high, bar.low, bar.close, bar.volume];
        match self.last.get_mut(&bar.company) {
            Some(last) if last.0 <= bar.ts => *last = (bar.ts, values),
            Some(_) => {}
            None => {
                self.last.insert(bar.company.clone(), (bar.ts, values));
            }
        }
    }
}

/// A text field without surrounding blanks, `None` when blank. The string as
/// it came when it needs no trimming (nearly always): no copy on the hot path.
fn trimmed(text: &Option<String>) -> Option<String> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(date: &str, close: Option<f64>) -> RawBar {
        RawBar {
            date: Some(date.into()),
            open: Some(10.0),
            high: Some(12.0),
            low: Some(9.0),
            close,
            volume: Some(5.0),
            company: Some("NVIDIA".into()),
            symbol: None,
            vwap: None,
            trades: None,
        }
    }

    #[test]
    fn fills_forward_within_a_company() {
        let mut c = Cleaner::new(MissingPolicy::Ffill);
        let first = c.clean(&raw("2024-01-02", Some(11.0))).unwrap();
        assert_eq!(first.symbol, "NVDA");
        c.remember(&first);
        let second = c.clean(&raw("2024-01-03", None)).unwrap();
        assert_eq!(second.close, 11.0);
        assert_eq!(c.imputed, 1);
        // Another company has nothing to fill from.
        let mut other = raw("2024-01-03", None);
        other.company = Some("Tesla".into());
        assert_eq!(c.clean(&other).unwrap_err().kind, "missing_value");
    }

    #[test]
    fn drop_policy_refuses_and_names_the_fields() {
        let mut c = Cleaner::new(MissingPolicy::Drop);
        let first = c.clean(&raw("2024-01-02", Some(11.0))).unwrap();
        c.remember(&first);
        let mut r = raw("2024-01-03", None);
        r.volume = None;
        let refusal = c.clean(&r).unwrap_err();
        assert_eq!(refusal.kind, "missing_value");
        assert!(refusal.reason.contains("Close, Volume missing for NVIDIA 2024-01-03"), "{}", refusal.reason);
    }

    #[test]
    fn refuses_missing_identity() {
        let mut c = Cleaner::default();
        let mut r = raw("2024-01-02", Some(11.0));
        r.company = Some(" ".into());
        assert_eq!(c.clean(&r).unwrap_err().kind, "missing_company");
        assert_eq!(
            c.clean(&RawBar { company: Some("X".into()), ..Default::default() }).unwrap_err().kind,
            "missing_date"
        );
        assert_eq!(c.clean(&raw("02/01/2024", Some(1.0))).unwrap_err().kind, "bad_date");
    }

    #[test]
    fn only_an_earlier_bar_fills_and_a_bar_with_no_price_is_refused() {
        let mut c = Cleaner::new(MissingPolicy::Ffill);
        let raw = |date: &str, close: Option<f64>| RawBar {
            date: Some(date.into()),
            open: close,
            high: close,
            low: close,
            close,
            volume: Some(10.0),
            company: Some("EURUSD".into()),
            symbol: None,
            vwap: None,
            trades: None,
        };
        for (date, close) in [("2017-04-19T09:00:00Z", 1.0716), ("2017-04-19T10:00:00Z", 1.07219)] {
            let bar = c.clean(&raw(date, Some(close))).unwrap();
            c.remember(&bar);
        }
        // Nothing at all: never fabricated, whenever it is.
        for date in ["2017-01-01", "2017-04-20"] {
            let all_missing = RawBar { volume: None, ..raw(date, None) };
            assert_eq!(c.clean(&all_missing).unwrap_err().kind, "no_prices");
            assert_eq!(c.clean(&raw(date, None)).unwrap_err().kind, "no_prices");
        }
        // A gap before the latest bar cannot be filled from it.
        let gap = RawBar { open: None, ..raw("2017-01-01", Some(1.05)) };
        assert_eq!(c.clean(&gap).unwrap_err().kind, "missing_value");
        // After it, it can.
        let gap = RawBar { open: None, ..raw("2017-04-19T11:00:00Z", Some(1.073)) };
        assert_eq!(c.clean(&gap).unwrap().open, 1.07219);
        // An older bar arriving late does not become the source of fills.
        let old = c.clean(&raw("2017-04-18T09:00:00Z", Some(2.0))).unwrap();
        c.remember(&old);
        let gap = RawBar { open: None, ..raw("2017-04-19T12:00:00Z", Some(1.073)) };
        assert_eq!(c.clean(&gap).unwrap().open, 1.07219);
        assert_eq!(c.imputed, 2);
    }
}
