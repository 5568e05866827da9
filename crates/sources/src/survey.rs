//! One pass over a bar file before it is read for good: is each company's
//! series in date order, and what interval are its bars? Bars go to the table
//! of their interval, so a file that mixes daily dates with intraday times is
//! refused here, naming the first line of each. Memory: one date per company.

use std::collections::HashMap;

use stockstream_core::{BarLength, Ts};

/// What one pass over a file found.
#[derive(Debug, Default)]
pub struct Survey {
    /// Each company's latest date so far (lower-cased name).
    last: HashMap<String, Ts>,
    /// The first row dated before its company's previous row.
    pub out_of_order: Option<String>,
    /// Rows seen.
    pub rows: usize,
    first_daily: Option<String>,
    first_intraday: Option<String>,
    /// The smallest gap between two intraday bars of one company, and where.
    closest: Option<(i64, String)>,
}

impl Survey {
    /// Takes one row: where it is, its company, its date.
    pub fn see(&mut self, source: &str, company: &str, ts: Ts) {
        let place = || format!("{source} ({ts})");
        match ts {
            Ts::Date(_) if self.first_daily.is_none() => self.first_daily = Some(place()),
            Ts::Instant(_) if self.first_intraday.is_none() => self.first_intraday = Some(place()),
            _ => {}
        }
        let company = company.trim().to_lowercase();
        match self.last.get_mut(&company) {
            Some(prev) if ts < *prev => {
                if self.out_of_order.is_none() {
                    self.out_of_order = Some(format!("{source}: {company} {ts} after {prev}"));
                }
            }
            Some(prev) => {
                if let (Ts::Instant(a), Ts::Instant(b)) = (*prev, ts) {
                    let gap = (b - a).num_milliseconds();
                    if gap > 0 && self.closest.as_ref().is_none_or(|(g, _)| gap < *g) {
                        self.closest = Some((gap, format!("{source}: {company} {ts} after {prev}")));
                    }
                }
                *prev = ts;
            }
            None => {
                self.last.insert(company, ts);
            }
        }
    }

    /// The bars' interval: daily for dates, the closest gap between one
    /// company's bars for instants (`None` when no company has two). A file
    /// with both is refused, naming the first line of each.
    pub fn interval(&self) -> Result<Option<BarLength>, String> {
        match (&self.first_daily, &self.first_intraday, &self.closest) {
            (Some(daily), Some(intraday), _) => Err(format!(
                "mixes daily and intraday bars (daily from {daily}, intraday from {intraday}): \
                 each interval is stored in its own table, so split the file by interval"
            )),
            (Some(_), None, _) => Ok(Some(BarLength::Day)),
            (None, Some(_), Some((gap, place))) => BarLength::of_spacing(*gap).map(Some).ok_or_else(|| {
                format!("intraday bars {} s apart ({place}): not a bar length that divides a day", *gap as f64 / 1e3)
            }),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(rows: &[(&str, &str)]) -> Survey {
        let mut s = Survey::default();
        for (i, (company, date)) in rows.iter().enumerate() {
            s.see(&format!("f.csv:{}", i + 2), company, date.parse().unwrap());
        }
        s
    }

    #[test]
    fn daily_dates_are_daily_and_instants_take_their_closest_gap() {
        let daily = survey(&[("A", "2024-01-02"), ("A", "2024-01-03")]);
        assert_eq!(daily.interval(), Ok(Some(BarLength::Day)));
        let minutes = survey(&[
            ("A", "2024-01-02T14:30:00Z"),
            ("B", "2024-01-02T14:30:00Z"),
            ("A", "2024-01-02T14:35:00Z"),
            ("B", "2024-01-02T14:31:00Z"),
            ("A", "2024-01-03T14:30:00Z"),
        ]);
        assert_eq!(minutes.interval().unwrap().unwrap().name(), "1m");
        assert_eq!(survey(&[("A", "2024-01-02T14:30:00Z")]).interval(), Ok(None));
        let days_apart = survey(&[("A", "2024-01-02T00:00:00Z"), ("A", "2024-01-03T00:00:00Z")]);
        assert_eq!(days_apart.interval().unwrap().unwrap().name(), "24h", "instants a day apart stay instants");
    }

    #[test]
    fn a_file_mixing_dates_and_instants_is_refused_naming_the_first_of_each() {
        let mixed = survey(&[
            ("A", "2023-04-03"),
            ("A", "2023-04-04"),
            ("B", "2023-04-03T13:30:00Z"),
            ("B", "2023-04-03T13:31:00Z"),
        ]);
        let err = mixed.interval().unwrap_err();
        assert!(err.contains("daily from f.csv:2 (2023-04-03)"), "{err}");
        assert!(err.contains("intraday from f.csv:4 (2023-04-03T13:30:00Z)"), "{err}");
        let odd = survey(&[("A", "2024-01-02T14:30:00Z"), ("A", "2024-01-02T14:37:00Z")]);
        assert!(odd.interval().unwrap_err().contains("420 s apart (f.csv:3"), "{:?}", odd.interval());
    }

    #[test]
    fn out_of_order_is_the_first_row_before_its_companys_previous() {
        let s = survey(&[("A", "2024-01-03"), ("B", "2024-01-01"), ("a", "2024-01-02"), ("A", "2024-01-01")]);
        assert_eq!(s.out_of_order.as_deref(), Some("f.csv:4: a 2024-01-02 after 2024-01-03"));
    }
}
