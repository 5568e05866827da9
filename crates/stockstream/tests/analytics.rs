//! `indicators` and `insights` through the real binary.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, stockstream};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analytics/tests/fixtures").join(name)
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// Equal row sets (ordered by company and date; a file streams in its own order).
fn same_table(ours: &[Vec<String>], reference: &[Vec<String>]) {
    let sorted = |t: &[Vec<String>]| {
        let mut rows = t[1..].to_vec();
        rows.sort_by(|a, b| (&a[1], &a[0]).cmp(&(&b[1], &b[0])));
        [vec![t[0].clone()], rows].concat()
    };
    let (ours, reference) = (sorted(ours), sorted(reference));
    assert_eq!(ours.len(), reference.len());
    assert_eq!(ours[0], reference[0], "header");
    for (o, r) in ours.iter().zip(&reference).skip(1) {
        assert_eq!(o[..2], r[..2]);
        for (a, b) in o.iter().zip(r).skip(2) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!((x - y).abs() <= 1e-9 * x.abs().max(y.abs()) + 1e-12, "{o:?} vs {r:?}"),
                _ => assert_eq!(a, b, "{o:?} vs {r:?}"),
            }
        }
    }
}

#[test]
fn indicators_from_a_file_and_from_the_store_match_ta_lib() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("daily.csv");
    let reference = parse_csv(&std::fs::read_to_string(fixture("daily_indicators.csv")).unwrap());
    let from_file = parse_csv(&ok(dir.path(), &["indicators", "--input", input.to_str().unwrap()]));
    assert_eq!(
        from_file[0].join(","),
        "date,company,close,sma10,sma30,sma50,ema12,ema26,rsi14,macd,macd_signal,macd_hist,bb_upper,bb_middle,bb_lower,atr14,return,volatility20,drawdown"
    );
    same_table(&from_file, &reference);
    // The same rows as JSON, in the file's order.
    let file_json: Vec<serde_json::Value> =
        serde_json::from_str(&ok(dir.path(), &["indicators", "--input", input.to_str().unwrap(), "--format", "json"]))
            .unwrap();
    assert_eq!(file_json.len(), from_file.len() - 1);
    for (row, csv) in file_json.iter().zip(&from_file[1..]) {
        assert_eq!((row["date"].as_str(), row["company"].as_str()), (Some(csv[0].as_str()), Some(csv[1].as_str())));
    }

    ok(dir.path(), &["run", "--input", input.to_str().unwrap(), "--no-insights"]);
    let from_store = parse_csv(&ok(dir.path(), &["indicators", "--company", "TSLA"]));
    let tesla: Vec<Vec<String>> =
        reference.iter().enumerate().filter(|(i, r)| *i == 0 || r[1] == "Tesla").map(|(_, r)| r.clone()).collect();
    same_table(&from_store, &tesla);

    let json: Vec<serde_json::Value> = serde_json::from_str(&ok(
        dir.path(),
        &["indicators", "--company", "Apple", "--from", "2024-06-03", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(json[0]["date"], "2024-06-03");
    // A range starts its indicators afresh: warm-up from the first bar in it.
    assert!(json[0]["sma10"].is_null() && json[9]["sma10"].is_number());
}

#[test]
fn insights_are_computed_from_the_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let run = ok(dir.path(), &["run"]);
    let text = ok(dir.path(), &["insights"]);
    let from_run: Vec<&str> = run.lines().skip_while(|l| *l != "insights").skip(1).collect();
    assert_eq!(from_run, text.lines().collect::<Vec<_>>(), "run ends with the same insights");
    // Without a report, they come from the statistics counted as the bars
    // flowed, not from the store: the same sentences.
    let streamed = tempfile::tempdir().unwrap();
    let run = ok(streamed.path(), &["run", "--no-report"]);
    let from_stream: Vec<&str> = run.lines().skip_while(|l| *l != "insights").skip(1).collect();
    assert_eq!(from_stream, text.lines().collect::<Vec<_>>(), "one pass gives the same insights");

    let json: serde_json::Value = serde_json::from_str(&ok(dir.path(), &["insights", "--format", "json"])).unwrap();
    let companies = json["stats"]["companies"].as_array().unwrap();
    assert_eq!(companies.len(), 7);
    let best = companies
        .iter()
        .max_by(|a, b| a["trend_pct_per_year"].as_f64().unwrap().total_cmp(&b["trend_pct_per_year"].as_f64().unwrap()))
        .unwrap();
    let most_volatile = companies
        .iter()
        .max_by(|a, b| a["volatility"].as_f64().unwrap().total_cmp(&b["volatility"].as_f64().unwrap()))
        .unwrap();
    let insight = |kind: &str| json["insights"].as_array().unwrap().iter().find(|i| i["kind"] == kind).unwrap().clone();
    assert_eq!(insight("strongest_trend")["companies"][0], best["company"]);
    assert_eq!(insight("most_volatile")["companies"][0], most_volatile["company"]);
    assert!(insight("strongest_trend")["text"].as_str().unwrap().starts_with(best["company"].as_str().unwrap()));

    // Other data, other sentences.
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), &["run", "--seed", "7", "--no-insights"]);
    assert_ne!(ok(other.path(), &["insights"]), text);

    let empty = stockstream(dir.path(), &["insights", "--db", "none.db"]);
    assert!(!empty.status.success());
}
