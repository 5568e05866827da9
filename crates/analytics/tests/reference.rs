//! Indicators and statistics against TA-Lib and pandas. The reference values
//! are fixtures written by `tests/fixtures/make_fixtures.py` with the real
//! libraries; every value must agree within 1e-9 relative.

use std::collections::BTreeMap;
use std::path::Path;

use stockstream_analytics::{batch, market_stats, IndicatorRow, Indicators};
use stockstream_core::{symbol_for_company, Bar};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Bars per company, in file order.
fn load(name: &str) -> Vec<Vec<Bar>> {
    let mut reader = csv::Reader::from_path(fixture(name)).unwrap();
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for row in reader.records() {
        let r = row.unwrap();
        let num = |i: usize| r[i].parse::<f64>().unwrap();
        let company = r[6].to_string();
        if !by.contains_key(&company) {
            order.push(company.clone());
        }
        by.entry(company.clone()).or_default().push(Bar {
            symbol: symbol_for_company(&company),
            company,
            ts: r[0].parse().unwrap(),
            open: num(1),
            high: num(2),
            low: num(3),
            close: num(4),
            volume: num(5),
            vwap: None,
            trades: None,
        });
    }
    order.into_iter().map(|c| by.remove(&c).unwrap()).collect()
}

fn close_enough(ours: f64, reference: f64) -> bool {
    let diff = (ours - reference).abs();
    diff <= 1e-9 * ours.abs().max(reference.abs()) || diff <= 1e-12
}

fn check_indicators(input: &str, expected: &str) {
    let rows: Vec<IndicatorRow> = load(input)
        .iter()
        .flat_map(|bars| {
            let mut ind = Indicators::default();
            bars.iter().map(|b| ind.update(b).unwrap()).collect::<Vec<_>>()
        })
        .collect();
    let mut reader = csv::Reader::from_path(fixture(expected)).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, IndicatorRow::COLUMNS);
    let references: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), references.len());
    let mut compared = 0;
    for (ours, reference) in rows.iter().zip(&references) {
        assert_eq!((ours.date.as_str(), ours.company.as_str()), (&reference[0], &reference[1]));
        for (i, value) in ours.values().iter().enumerate() {
            let column = IndicatorRow::COLUMNS[i + 2];
            let text = &reference[i + 2];
            match (value, text.is_empty()) {
                (None, true) => {}
                (Some(v), false) => {
                    let r: f64 = text.parse().unwrap();
                    assert!(
                        close_enough(*v, r),
                        "{expected} {} {}: {column} = {v}, reference {r}",
                        ours.company,
                        ours.date
                    );
                    compared += 1;
                }
                _ => panic!("{expected} {} {}: {column} is {value:?}, reference {text:?}", ours.company, ours.date),
            }
        }
    }
    assert!(compared > rows.len() * 10, "too few values compared: {compared}");
}

#[test]
fn daily_indicators_agree_with_ta_lib_and_pandas() {
    check_indicators("daily.csv", "daily_indicators.csv");
}

#[test]
fn intraday_indicators_agree_with_ta_lib_and_pandas() {
    check_indicators("intraday.csv", "intraday_indicators.csv");
}

/// The batch functions, column by column, against the same fixtures.
fn check_batch(input: &str, expected: &str) {
    let mut reader = csv::Reader::from_path(fixture(expected)).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let references: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut at = 0;
    let mut compared = 0;
    for bars in load(input) {
        let close: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let high: Vec<f64> = bars.iter().map(|b| b.high).collect();
        let low: Vec<f64> = bars.iter().map(|b| b.low).collect();
        let (line, signal, hist) = batch::macd(&close, 12, 26, 9);
        let (upper, middle, lower) = batch::bbands(&close, 20, 2.0);
        let series = [
            ("sma10", batch::sma(&close, 10)),
            ("sma30", batch::sma(&close, 30)),
            ("sma50", batch::sma(&close, 50)),
            ("ema12", batch::ema(&close, 12)),
            ("ema26", batch::ema(&close, 26)),
            ("rsi14", batch::rsi(&close, 14)),
            ("macd", line),
            ("macd_signal", signal),
            ("macd_hist", hist),
            ("bb_upper", upper),
            ("bb_middle", middle),
            ("bb_lower", lower),
            ("atr14", batch::atr(&high, &low, &close, 14)),
            ("volatility20", batch::volatility(&close, 20)),
            ("drawdown", batch::drawdown(&close)),
        ];
        for (name, values) in &series {
            let c = column(name);
            for (i, v) in values.iter().enumerate() {
                let (reference, bar) = (&references[at + i][c], &bars[i]);
                assert_eq!(&references[at + i][1], bar.company.as_str());
                if reference.is_empty() {
                    assert!(v.is_nan(), "{expected} {} {i}: batch {name} = {v}, reference empty", bar.company);
                } else {
                    let r: f64 = reference.parse().unwrap();
                    assert!(close_enough(*v, r), "{expected} {} {i}: batch {name} = {v}, reference {r}", bar.company);
                    compared += 1;
                }
            }
        }
        at += bars.len();
    }
    assert_eq!(at, references.len());
    assert!(compared > references.len() * 10, "too few values compared: {compared}");
}

#[test]
fn batch_indicators_agree_with_ta_lib_and_pandas() {
    check_batch("daily.csv", "daily_indicators.csv");
    check_batch("intraday.csv", "intraday_indicators.csv");
}

#[test]
fn vwap_agrees_with_pandas() {
    let mut reader = csv::Reader::from_path(fixture("intraday_vwap.csv")).unwrap();
    let reference: std::collections::HashMap<(String, String), f64> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            ((r[0].to_string(), r[1].to_string()), r[2].parse().unwrap())
        })
        .collect();
    let mut compared = 0;
    for bars in load("intraday.csv") {
        let column = |f: fn(&Bar) -> f64| bars.iter().map(f).collect::<Vec<f64>>();
        let days: Vec<_> = bars.iter().map(|b| b.ts.date()).collect();
        let batch =
            batch::vwap(&column(|b| b.high), &column(|b| b.low), &column(|b| b.close), &column(|b| b.volume), &days);
        let mut ind = Indicators::default();
        for (bar, batch) in bars.iter().zip(batch) {
            let expected = reference[&(bar.ts.to_string(), bar.company.clone())];
            let streaming = ind.update(bar).unwrap().session_vwap.unwrap();
            assert!(
                close_enough(streaming, expected),
                "{} {}: vwap {streaming}, pandas {expected}",
                bar.company,
                bar.ts
            );
            assert!(close_enough(batch, expected), "{} {}: batch vwap {batch}, pandas {expected}", bar.company, bar.ts);
            compared += 1;
        }
    }
    assert_eq!(compared, reference.len());
}

#[test]
fn statistics_agree_with_pandas() {
    let ours = serde_json::to_value(market_stats(&load("daily.csv"))).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("daily_stats.json")).unwrap()).unwrap();
    let mut compared = 0;
    compare(&ours, &reference, "stats", &mut compared);
    assert!(compared > 200, "too few values compared: {compared}");
}

/// Every number in `reference` must be matched in `ours` (extra fields in ours
/// are fine); strings and lengths must be equal.
fn compare(ours: &serde_json::Value, reference: &serde_json::Value, path: &str, compared: &mut usize) {
    use serde_json::Value::*;
    match (ours, reference) {
        (_, Object(r)) => {
            for (k, rv) in r {
                let ov = ours.get(k).unwrap_or_else(|| panic!("{path}.{k} missing"));
                compare(ov, rv, &format!("{path}.{k}"), compared);
            }
        }
        (Array(o), Array(r)) => {
            assert_eq!(o.len(), r.len(), "{path} length");
            for (i, (ov, rv)) in o.iter().zip(r).enumerate() {
                compare(ov, rv, &format!("{path}[{i}]"), compared);
            }
        }
        (Number(o), Number(r)) => {
            let (o, r) = (o.as_f64().unwrap(), r.as_f64().unwrap());
            assert!(close_enough(o, r), "{path}: {o} vs reference {r}");
            *compared += 1;
        }
        (o, r) => assert_eq!(o, r, "{path}"),
    }
}
