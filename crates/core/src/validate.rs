//! The rules every bar passes before it is stored. Each refusal names the rule
//! and the values that broke it.

use crate::reject::RejectKind;
use chrono::Datelike;

use crate::bar::Bar;
use crate::reject::Refusal;

/// Years a market bar can plausibly carry; anything else is a typo or garbage.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

/// Longest company name and symbol accepted: names are keys (DynamoDB allows
/// 2,048 bytes for a partition key) and appear in every log line and reason.
pub const MAX_COMPANY_BYTES: usize = 200;
/// Longest symbol accepted, in bytes.
pub const MAX_SYMBOL_BYTES: usize = 32;

/// Checks a bar against every rule (prices positive and finite, High and Low around Open and Close, volume not negative, names bounded); the first rule broken is the refusal.
pub fn validate(bar: &Bar) -> Result<(), Refusal> {
    if bar.company.trim().is_empty() {
        return Err(Refusal::new(RejectKind::MissingCompany, "Company Name is empty"));
    }
    check_name("Company Name", &bar.company, MAX_COMPANY_BYTES)?;
    check_name("Symbol", &bar.symbol, MAX_SYMBOL_BYTES)?;
    let year = bar.ts.date().year();
    if !YEARS.contains(&year) {
        return Err(Refusal::new(
            RejectKind::DateOutOfRange,
            format!("Date {} is out of range (years {}..={})", bar.ts, YEARS.start(), YEARS.end()),
        ));
    }
    for (name, v) in [("Open", bar.open), ("High", bar.high), ("Low", bar.low), ("Close", bar.close)] {
        if !v.is_finite() {
            return Err(Refusal::new(RejectKind::NonFinitePrice, format!("{name} is {v}, not a finite number")));
        }
        if v <= 0.0 {
            return Err(Refusal::new(RejectKind::NonPositivePrice, format!("{name} {v} is not a positive price")));
        }
    }
    if !bar.volume.is_finite() || bar.volume < 0.0 {
        return Err(Refusal::new(RejectKind::BadVolume, format!("Volume {} is not a count >= 0", bar.volume)));
    }
    if let Some(vwap) = bar.vwap {
        // An average of the bar's prices lies within its range (to rounding).
        let (lo, hi) = (bar.low * (1.0 - 1e-9), bar.high * (1.0 + 1e-9));
        if !vwap.is_finite() || vwap < lo || vwap > hi {
            return Err(Refusal::new(
                RejectKind::BadVwap,
                format!("VWAP {vwap} is outside the bar's range {}..{}", bar.low, bar.high),
            ));
        }
    }
    let body_low = bar.open.min(bar.close);
    if bar.low > body_low {
        return Err(Refusal::new(
            RejectKind::LowAboveOpenClose,
            format!("Low {} is above min(Open, Close) = {body_low}", bar.low),
        ));
    }
    let body_high = bar.open.max(bar.close);
    if bar.high < body_high {
        return Err(Refusal::new(
            RejectKind::HighBelowOpenClose,
            format!("High {} is below max(Open, Close) = {body_high}", bar.high),
        ));
    }
    Ok(())
}

/// A name fit to be a key and to be printed: bounded, without control characters
/// (a NUL, a newline or a terminal escape in a key is garbage or an attack).
pub fn check_name(field: &str, value: &str, max_bytes: usize) -> Result<(), Refusal> {
    let shown = || {
        let mut end = value.len().min(40);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}{}", &value[..end], if end < value.len() { "…" } else { "" })
    };
    if value.len() > max_bytes {
        return Err(Refusal::new(
            RejectKind::NameTooLong,
            format!("{field} {} is {} bytes long (at most {max_bytes})", shown(), value.len()),
        ));
    }
    // ASCII controls by bytes (the common, all-ASCII case), then C1 controls.
    let control =
        value.bytes().any(|b| b < 0x20 || b == 0x7f) || (!value.is_ascii() && value.chars().any(char::is_control));
    if control {
        return Err(Refusal::new(
            RejectKind::ControlCharacter,
            format!("{field} {} contains a control character", shown()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Bar {
        Bar {
            symbol: "AAPL".into(),
            company: "Apple".into(),
            ts: "2024-01-02".parse().unwrap(),
            open: 10.0,
            high: 12.0,
            low: 9.0,
            close: 11.0,
            volume: 100.0,
            vwap: None,
            trades: None,
        }
    }

    fn kind_of(f: impl FnOnce(&mut Bar)) -> &'static str {
        let mut b = good();
        f(&mut b);
        validate(&b).map(|_| "ok").unwrap_or_else(|r| r.kind.as_str())
    }

    #[test]
    fn accepts_a_consistent_bar_and_edge_equalities() {
        assert_eq!(kind_of(|_| {}), "ok");
        assert_eq!(kind_of(|b| (b.low, b.high) = (10.0, 11.0)), "ok");
        assert_eq!(kind_of(|b| b.volume = 0.0), "ok");
    }

    #[test]
    fn every_rule_refuses_with_its_own_kind() {
        assert_eq!(kind_of(|b| b.company = "  ".into()), "missing_company");
        assert_eq!(kind_of(|b| b.ts = "1850-01-02".parse().unwrap()), "date_out_of_range");
        assert_eq!(kind_of(|b| b.open = -1.0), "non_positive_price");
        assert_eq!(kind_of(|b| b.close = 0.0), "non_positive_price");
        assert_eq!(kind_of(|b| b.high = f64::INFINITY), "non_finite_price");
        assert_eq!(kind_of(|b| b.low = f64::NAN), "non_finite_price");
        assert_eq!(kind_of(|b| b.volume = -5.0), "bad_volume");
        assert_eq!(kind_of(|b| b.volume = f64::NAN), "bad_volume");
        assert_eq!(kind_of(|b| b.low = 10.5), "low_above_open_close");
        assert_eq!(kind_of(|b| b.high = 10.5), "high_below_open_close");
        assert_eq!(kind_of(|b| (b.high, b.low) = (8.0, 13.0)), "low_above_open_close");
        assert_eq!(kind_of(|b| b.company = "A".repeat(201)), "name_too_long");
        assert_eq!(kind_of(|b| b.symbol = "X".repeat(33)), "name_too_long");
        assert_eq!(kind_of(|b| b.company = "Ap\0ple".into()), "control_character");
        assert_eq!(kind_of(|b| b.company = "\u{1b}[31mApple".into()), "control_character");
        assert_eq!(kind_of(|b| b.symbol = "AA\nPL".into()), "control_character");
        assert_eq!(kind_of(|b| b.company = "Next\u{85}Line".into()), "control_character");
        assert_eq!(kind_of(|b| b.company = "Société Générale — Ünïcode".into()), "ok");
    }

    #[test]
    fn a_long_name_is_shown_cut_in_its_reason() {
        let mut b = good();
        b.company = "é".repeat(1 << 19);
        let r = validate(&b).unwrap_err();
        assert!(r.reason.len() < 120, "{}", r.reason);
        assert!(r.reason.ends_with("is 1048576 bytes long (at most 200)"), "{}", r.reason);
    }

    #[test]
    fn reasons_name_the_values() {
        let mut b = good();
        b.high = 10.5;
        let r = validate(&b).unwrap_err();
        assert_eq!(r.reason, "High 10.5 is below max(Open, Close) = 11");
    }
}
