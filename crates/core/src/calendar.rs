//! The NYSE calendar: which days the market trades and when, in UTC.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// Full-day closures outside the regular holiday rules (national days of mourning,
/// weather, 9/11).
const SPECIAL_CLOSURES: &[(i32, u32, u32)] = &[
    (2001, 9, 11),
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11),
    (2007, 1, 2),
    (2012, 10, 29),
    (2012, 10, 30),
    (2018, 12, 5),
    (2025, 1, 9),
];

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

/// The n-th (1-based) given weekday of a month.
fn nth_weekday(y: i32, m: u32, wd: Weekday, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(y, m, wd, n as u8).expect("exists in every month")
}

fn last_weekday(y: i32, m: u32, wd: Weekday) -> NaiveDate {
    let mut d = nth_weekday(y, m, wd, 4);
    while let Some(next) = d.checked_add_signed(Duration::days(7)).filter(|n| n.month() == m) {
        d = next;
    }
    d
}

/// Easter Sunday (anonymous Gregorian algorithm).
fn easter(y: i32) -> NaiveDate {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(y, month as u32, day as u32)
}

/// A fixed-date holiday moves to Friday when on Saturday, Monday when on Sunday.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d - Duration::days(1),
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

/// Whether the NYSE is closed all day for a holiday on this date.
pub fn is_holiday(d: NaiveDate) -> bool {
    let y = d.year();
    // New Year's Day on a Saturday is not moved back into the old year.
    let new_year = ymd(y, 1, 1);
    let new_year_observed = (new_year.weekday() != Weekday::Sat).then(|| observed(new_year));
    let mut days = vec![
        nth_weekday(y, 1, Weekday::Mon, 3),
        nth_weekday(y, 2, Weekday::Mon, 3),
        easter(y) - Duration::days(2),
        last_weekday(y, 5, Weekday::Mon),
        observed(ymd(y, 7, 4)),
        nth_weekday(y, 9, Weekday::Mon, 1),
        nth_weekday(y, 11, Weekday::Thu, 4),
        observed(ymd(y, 12, 25)),
    ];
    days.extend(new_year_observed);
    if y >= 2022 {
        days.push(observed(ymd(y, 6, 19)));
    }
    days.contains(&d) || SPECIAL_CLOSURES.iter().any(|&(yy, m, dd)| ymd(yy, m, dd) == d)
}

/// A weekday that is not an NYSE holiday.
pub fn is_trading_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(d)
}

/// Trading days from `start` to `end`, inclusive.
pub fn trading_days(start: NaiveDate, end: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    start.iter_days().take_while(move |d| *d <= end).filter(|d| is_trading_day(*d))
}

/// Hours New York is behind UTC on a date: US daylight saving runs from the
/// second Sunday of March to the first Sunday of November.
fn new_york_behind_utc_hours(d: NaiveDate) -> i64 {
    let y = d.year();
    let dst = d >= nth_weekday(y, 3, Weekday::Sun, 2) && d < nth_weekday(y, 11, Weekday::Sun, 1);
    if dst {
        4
    } else {
        5
    }
}

/// The regular session's opening instant (09:30 New York) of a date, in UTC.
pub fn session_open_utc(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(9, 30, 0).expect("valid time")) + Duration::hours(new_york_behind_utc_hours(d))
}

/// Length of the regular session (09:30–16:00).
pub const SESSION_SECONDS: i64 = 6 * 3600 + 30 * 60;

/// Length of a session that closes early (09:30–13:00).
const EARLY_SESSION_SECONDS: i64 = 3 * 3600 + 30 * 60;

/// Whether the NYSE closes at 13:00 on this trading day: the eve of
/// Independence Day (when the 4th falls Tuesday to Friday), the day after
/// Thanksgiving, and Christmas Eve on a weekday.
pub fn is_early_close(d: NaiveDate) -> bool {
    let y = d.year();
    let eve_of_fourth = ymd(y, 7, 3);
    let christmas_eve = ymd(y, 12, 24);
    let after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4) + Duration::days(1);
    is_trading_day(d) && (d == eve_of_fourth || d == after_thanksgiving || d == christmas_eve)
}

/// The regular session's closing instant of a date, in UTC: 16:00 New York,
/// 13:00 on an early close.
pub fn session_close_utc(d: NaiveDate) -> NaiveDateTime {
    let length = if is_early_close(d) { EARLY_SESSION_SECONDS } else { SESSION_SECONDS };
    session_open_utc(d) + Duration::seconds(length)
}

/// A New York calendar day's boundaries, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewYorkDay {
    /// The date in New York.
    pub date: NaiveDate,
    /// Whether the exchange trades that day.
    pub trading: bool,
    /// Midnight that starts it.
    pub midnight: i64,
    /// The regular session's open (09:30).
    pub open: i64,
    /// The regular session's close (16:00, or 13:00 on an early close).
    pub close: i64,
    /// Midnight that ends it.
    pub next_midnight: i64,
}

impl NewYorkDay {
    /// The New York day an instant (Unix milliseconds) falls in.
    pub fn of(time_ms: i64) -> Option<NewYorkDay> {
        let guess = chrono::DateTime::from_timestamp_millis(time_ms - 5 * 3_600_000)?.date_naive();
        // The offset of the day guessed 5 hours back; an instant of the
        // 4-hour part of the next day moves there.
        let local =
            |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight") + Duration::hours(new_york_behind_utc_hours(d));
        let date = match local(guess + Duration::days(1)).and_utc().timestamp_millis() <= time_ms {
            true => guess + Duration::days(1),
            false => guess,
        };
        let ms = |t: NaiveDateTime| t.and_utc().timestamp_millis();
        Some(NewYorkDay {
            date,
            trading: is_trading_day(date),
            midnight: ms(local(date)),
            open: ms(session_open_utc(date)),
            close: ms(session_close_utc(date)),
            next_midnight: ms(local(date + Duration::days(1))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nyse_holidays_2023_to_2025() {
        let holidays: Vec<_> = ymd(2023, 1, 1)
            .iter_days()
            .take_while(|d| d.year() <= 2025)
            .filter(|d| is_holiday(*d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
            .map(|d| d.to_string())
            .collect();
        let expected = [
            "2023-01-02",
            "2023-01-16",
            "2023-02-20",
            "2023-04-07",
            "2023-05-29",
            "2023-06-19",
            "2023-07-04",
            "2023-09-04",
            "2023-11-23",
            "2023-12-25",
            "2024-01-01",
            "2024-01-15",
            "2024-02-19",
            "2024-03-29",
            "2024-05-27",
            "2024-06-19",
            "2024-07-04",
            "2024-09-02",
            "2024-11-28",
            "2024-12-25",
            "2025-01-01",
            "2025-01-09",
            "2025-01-20",
            "2025-02-17",
            "2025-04-18",
            "2025-05-26",
            "2025-06-19",
            "2025-07-04",
            "2025-09-01",
            "2025-11-27",
            "2025-12-25",
        ];
        assert_eq!(holidays, expected);
    }

    #[test]
    fn default_range_has_the_expected_trading_days() {
        // 2023-04-03..=2025-04-15: 532 weekdays less 21 holidays (2023-04-07 through 2025-02-17).
        assert_eq!(trading_days(ymd(2023, 4, 3), ymd(2025, 4, 15)).count(), 511);
    }

    #[test]
    fn early_closes_2023_to_2025() {
        let early: Vec<_> = ymd(2023, 1, 1)
            .iter_days()
            .take_while(|d| d.year() <= 2025)
            .filter(|d| is_early_close(*d))
            .map(|d| d.to_string())
            .collect();
        // NYSE's published early closes (13:00) of those years.
        let expected = [
            "2023-07-03",
            "2023-11-24",
            "2024-07-03",
            "2024-11-29",
            "2024-12-24",
            "2025-07-03",
            "2025-11-28",
            "2025-12-24",
        ];
        assert_eq!(early, expected);
        assert_eq!(session_close_utc(ymd(2024, 11, 29)).to_string(), "2024-11-29 18:00:00");
        assert_eq!(session_close_utc(ymd(2024, 11, 27)).to_string(), "2024-11-27 21:00:00");
    }

    #[test]
    fn new_york_days_run_midnight_to_midnight_local() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp_millis();
        let day = NewYorkDay::of(at("2024-07-02T03:59:59Z")).unwrap();
        assert_eq!(day.date, ymd(2024, 7, 1), "23:59:59 in New York");
        assert_eq!(day.next_midnight, at("2024-07-02T04:00:00Z"));
        assert_eq!(NewYorkDay::of(at("2024-07-02T04:00:00Z")).unwrap().date, ymd(2024, 7, 2));
        let winter = NewYorkDay::of(at("2024-01-02T04:59:00Z")).unwrap();
        assert_eq!(
            (winter.date, winter.open, winter.close),
            (ymd(2024, 1, 1), at("2024-01-01T14:30:00Z"), at("2024-01-01T21:00:00Z"))
        );
        assert!(!winter.trading, "New Year's Day");
    }

    #[test]
    fn session_opens_at_half_past_nine_new_york() {
        assert_eq!(session_open_utc(ymd(2024, 1, 2)).to_string(), "2024-01-02 14:30:00");
        assert_eq!(session_open_utc(ymd(2024, 7, 1)).to_string(), "2024-07-01 13:30:00");
        assert_eq!(session_open_utc(ymd(2024, 3, 11)).to_string(), "2024-03-11 13:30:00");
        assert_eq!(session_open_utc(ymd(2024, 11, 4)).to_string(), "2024-11-04 14:30:00");
    }
}
