//! Every interval from the finest stored: 5m, 15m, 30m, 1h and 1d bars read
//! from stored one-minute bars equal pandas' aggregation of those minutes,
//! through `query`, the API and `indicators`.

mod common;

use std::path::Path;

use common::{interop, ok, python, start};

/// Days with their UTC offset's change, an early close (2024-07-03, 13:00;
/// 2024-11-29, 13:00), pre- and post-market minutes (08:00–17:59 New York),
/// and minutes missing here and there.
const DAYS: [(&str, i64); 4] = [("2024-07-02", 4), ("2024-07-03", 4), ("2024-11-29", 5), ("2024-12-02", 5)];
const EARLY_CLOSES: [&str; 2] = ["2024-07-03", "2024-11-29"];

fn minutes_file(dir: &Path) {
    let mut csv = String::from("Date,Open,High,Low,Close,Volume,Company Name\n");
    let mut seed = 7u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    for (company, skip) in [("NVIDIA", 17), ("Tesla", 23)] {
        let mut close = 100.0;
        for (day, behind_utc) in DAYS {
            for minute in 0..600 {
                let (h, m) = (8 + minute / 60, minute % 60);
                if minute % skip == 5 {
                    continue;
                }
                let open: f64 = close;
                close = (open * (1.0 + (next() - 0.5) * 0.004) * 100.0).round() / 100.0;
                let high = open.max(close) + (next() * 30.0).round() / 100.0;
                let low = open.min(close) - (next() * 30.0).round() / 100.0;
                let volume = (next() * 10_000.0).round();
                let utc = format!("{day}T{:02}:{m:02}:00Z", h + behind_utc);
                csv.push_str(&format!("{utc},{open},{high},{low},{close},{volume},{company}\n"));
            }
        }
    }
    std::fs::write(dir.join("minutes.csv"), csv).unwrap();
}

/// CSV rows as (date, company, [open, high, low, close, volume]).
fn bars_of(csv: &str) -> Vec<(String, String, [f64; 5])> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
    let (date, company) = (at("Date"), at("Company Name"));
    let values = ["Open", "High", "Low", "Close", "Volume"].map(at);
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[date].to_string(), f[company].to_string(), values.map(|i| f[i].parse::<f64>().unwrap()))
        })
        .collect()
}

fn nvidia_5m_bars_last(reference: &[(String, String, [f64; 5])]) -> f64 {
    reference.iter().rfind(|b| b.1 == "NVIDIA").expect("NVIDIA's bars").2[3]
}

fn assert_same_bars(ours: &[(String, String, [f64; 5])], reference: &[(String, String, [f64; 5])], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: {} bars against pandas' {}", ours.len(), reference.len());
    for (a, b) in ours.iter().zip(reference) {
        assert_eq!((&a.0, &a.1), (&b.0, &b.1), "{what}");
        for (x, y) in a.2.iter().zip(&b.2) {
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "{what} {} {}: {:?} against pandas' {:?}",
                a.0,
                a.1,
                a.2,
                b.2
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interval_is_made_from_the_stored_minutes_as_pandas_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    minutes_file(d);
    let stored = ok(d, &["run", "--input", "minutes.csv", "--no-report", "--no-insights"]);
    assert!(stored.contains("interval   1m"), "{stored}");
    let mut minutes = String::new();
    for company in ["NVIDIA", "Tesla"] {
        let csv = ok(d, &["query", "--company", company, "--interval", "1m", "--format", "csv"]);
        minutes.push_str(if minutes.is_empty() { &csv } else { csv.split_once('\n').unwrap().1 });
    }
    std::fs::write(d.join("stored-1m.csv"), &minutes).unwrap();
    let early: Vec<&str> = EARLY_CLOSES.to_vec();

    let server = start(d, &["serve", "--interval", "1m"]);
    let reference_of = |rule: &str| {
        let out = d.join(format!("pandas-{rule}.csv"));
        let mut args =
            vec![d.join("stored-1m.csv").to_str().unwrap().to_string(), rule.into(), out.to_str().unwrap().into()];
        args.extend(early.iter().map(|s| s.to_string()));
        python(&interop("resample_minutes.py"), &args.iter().map(String::as_str).collect::<Vec<_>>());
        bars_of(&std::fs::read_to_string(out).unwrap())
    };
    for rule in ["5m", "15m", "30m", "1h", "1d"] {
        let reference = reference_of(rule);
        assert!(reference.len() >= 8, "{rule}: {} bars", reference.len());
        let mut ours = Vec::new();
        // By name and by symbol in another case.
        for company in ["NVIDIA", "tsla"] {
            ours.extend(bars_of(&ok(d, &["query", "--company", company, "--interval", rule, "--format", "csv"])));
        }
        assert_same_bars(&ours, &reference, &format!("query --interval {rule}"));

        // The API, newest first page and the one before it.
        let nvidia: Vec<_> = reference.iter().filter(|b| b.1 == "NVIDIA").cloned().collect();
        let (n, k) = (nvidia.len(), (nvidia.len() / 3).min(7));
        let url = format!("{}/api/bars/nvda?interval={rule}&limit={k}", server.base);
        let page: Vec<serde_json::Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let api = |page: &[serde_json::Value]| -> Vec<(String, String, [f64; 5])> {
            page.iter()
                .map(|b| {
                    let v = |k: &str| b[k].as_f64().unwrap_or_else(|| panic!("no {k} in {b}"));
                    (
                        b["Date"].as_str().unwrap().to_string(),
                        b["Company Name"].as_str().unwrap().to_string(),
                        [v("Open"), v("High"), v("Low"), v("Close"), v("Volume")],
                    )
                })
                .collect()
        };
        assert_same_bars(&api(&page), &nvidia[n - k..], &format!("/api/bars?interval={rule}&limit={k}"));
        let before = &nvidia[n - k].0;
        let url = format!("{}/api/bars/NVIDIA?interval={rule}&limit={k}&before={before}", server.base);
        let page: Vec<serde_json::Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_same_bars(&api(&page), &nvidia[n - 2 * k..n - k], &format!("{rule} page before"));
        // Oldest first, after a bucket.
        let first = &nvidia[0].0;
        let url = format!("{}/api/bars/NVIDIA?interval={rule}&after={first}&limit={k}", server.base);
        let page: Vec<serde_json::Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_same_bars(&api(&page), &nvidia[1..=k], &format!("{rule} page after"));
    }

    // Indicators over 5m bars are those of pandas' 5m bars read as a file.
    let reference = std::fs::read_to_string(d.join("pandas-5m.csv")).unwrap();
    let nvidia_5m: String = reference
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.contains(",NVIDIA,"))
        .map(|(_, l)| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{}\n", f[..7].join(","))
        })
        .collect();
    std::fs::write(d.join("nvidia-5m.csv"), nvidia_5m).unwrap();
    let ours = ok(d, &["indicators", "--company", "NVDA", "--interval", "5m"]);
    let theirs = ok(d, &["indicators", "--input", "nvidia-5m.csv"]);
    assert!(ours.lines().count() > 400, "{} rows", ours.lines().count());
    assert_eq!(ours.lines().count(), theirs.lines().count());
    // Equal to the last bits but for the order of a sum's terms.
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        for (x, y) in a.split(',').zip(b.split(',')) {
            let close = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                _ => x == y,
            };
            assert!(close, "indicators over 5m bars made from minutes and over pandas' 5m bars, row {i}:\n{a}\n{b}");
        }
    }
    let api: Vec<serde_json::Value> =
        reqwest::get(format!("{}/api/indicators/NVIDIA?interval=5m&limit=3", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let last_rsi = ours.lines().last().unwrap().split(',').nth(8).unwrap().parse::<f64>().unwrap();
    assert!((api[2]["rsi14"].as_f64().unwrap() - last_rsi).abs() < 1e-9, "{}", api[2]);

    // Companies and latest bars of a derived interval; an unknown interval.
    let companies: Vec<String> =
        reqwest::get(format!("{}/api/companies?interval=1h", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(companies, ["NVIDIA", "Tesla"]);
    let latest: Vec<serde_json::Value> =
        reqwest::get(format!("{}/api/latest?interval=1d", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(latest[0]["bar"]["Date"], "2024-12-02", "{:?}", latest[0]);
    let r = reqwest::get(format!("{}/api/bars/NVIDIA?interval=7m", server.base)).await.unwrap();
    assert_eq!(r.status(), 400);
    let live: serde_json::Value =
        reqwest::get(format!("{}/api/live", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(live["intervals"], serde_json::json!(["1m", "5m", "15m", "30m", "1h", "1d"]), "{live}");
    // The dashboard on 5-minute bars made from the minutes.
    let seen = common::in_browser("company.cjs", &format!("{}/?company=NVIDIA&interval=5m", server.base), "rollup-5m");
    let nvidia_5m_bars = reference_of("5m").iter().filter(|b| b.1 == "NVIDIA").count() as u64;
    assert_eq!(seen["loaded"].as_u64(), Some(nvidia_5m_bars.min(200)), "{seen}");
    let last = nvidia_5m_bars_last(&reference_of("5m"));
    assert_eq!(
        seen["lastCandle"].as_str().map(|s| s.rsplit(' ').next().unwrap().parse::<f64>().unwrap()),
        Some(last),
        "{seen}"
    );
    let closed: Vec<serde_json::Value> = reqwest::get(format!("{}/api/bars/NVIDIA?interval=1h&limit=3", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(closed.iter().all(|b| b.get("partial").is_none()), "{closed:?}");
    drop(server);

    // The minute in progress: its hour is still forming.
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let minute = chrono::DateTime::from_timestamp(now, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
    let csv = format!("Date,Open,High,Low,Close,Volume,Company Name\n{minute},1,2,0.5,1.5,10,Apple\n");
    std::fs::write(d.join("now.csv"), csv).unwrap();
    ok(d, &["run", "--input", "now.csv", "--interval", "1m", "--no-report", "--no-insights"]);
    // Without --interval, a store of minutes is served as minutes.
    let server = start(d, &["serve"]);
    let live: serde_json::Value =
        reqwest::get(format!("{}/api/live", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(live["interval"], "1m", "{live}");
    let forming: Vec<serde_json::Value> =
        reqwest::get(format!("{}/api/bars/AAPL?interval=1h&limit=3", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(forming.len(), 1, "{forming:?}");
    assert_eq!(forming[0]["partial"], true, "{forming:?}");
}

/// Bars made from ticks carry their VWAP (Σ price × size / Σ size) and their
/// trades, stored, read back through `query` and the API, and rolled up
/// weighted by volume; bars of a file of the original layout have none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_from_ticks_carry_their_vwap_and_trades() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("symbol,time,price,size\n");
    // (minute, Σ price × size, Σ size, ticks)
    let mut minutes: Vec<(u32, f64, f64, u64)> = Vec::new();
    for minute in 0..10u32 {
        let (mut pv, mut size, mut ticks) = (0.0, 0.0, 0);
        for k in 0..(3 + minute % 4) {
            let price = 100.0 + f64::from(minute) * 0.5 + f64::from(k) * 0.25;
            let shares = f64::from(100 + 37 * k + minute);
            csv.push_str(&format!("nvda,2024-01-02T14:{:02}:{:02}Z,{price},{shares}\n", 30 + minute, 5 + 10 * k));
            (pv, size, ticks) = (pv + price * shares, size + shares, ticks + 1);
        }
        minutes.push((minute, pv, size, ticks));
    }
    std::fs::write(d.join("ticks.csv"), csv).unwrap();
    ok(d, &["run", "--source", "ticks", "--input", "ticks.csv", "--bar", "1m", "--no-report", "--no-insights"]);

    let query = ok(d, &["query", "--company", "NVIDIA", "--interval", "1m", "--format", "csv"]);
    let mut lines = query.lines();
    assert_eq!(lines.next(), Some("Date,Open,High,Low,Close,Volume,Company Name,Symbol,VWAP,Trades"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 10);
    for (row, (minute, pv, size, ticks)) in rows.iter().zip(&minutes) {
        assert_eq!(row[0], format!("2024-01-02T14:{:02}:00Z", 30 + minute));
        let vwap: f64 = row[8].parse().unwrap();
        assert!((vwap - pv / size).abs() < 1e-9, "{row:?}: VWAP {}", pv / size);
        assert_eq!(row[9], ticks.to_string(), "{row:?}");
        assert_eq!(row[5].parse::<f64>().unwrap(), *size);
    }
    // Five minutes: weighted by volume, trades summed.
    let five = ok(d, &["query", "--company", "nvda", "--interval", "5m", "--format", "csv"]);
    let rows: Vec<Vec<String>> = five.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(rows.len(), 2);
    for (row, part) in rows.iter().zip(minutes.chunks(5)) {
        let (pv, size, ticks) = part.iter().fold((0.0, 0.0, 0), |(a, b, c), m| (a + m.1, b + m.2, c + m.3));
        assert!((row[8].parse::<f64>().unwrap() - pv / size).abs() < 1e-9, "{row:?}");
        assert_eq!(row[9], ticks.to_string());
    }

    let server = start(d, &["serve", "--interval", "1m"]);
    let bars: Vec<serde_json::Value> =
        reqwest::get(format!("{}/api/bars/NVDA?limit=2", server.base)).await.unwrap().json().await.unwrap();
    let (_, pv, size, ticks) = minutes[9];
    assert!((bars[1]["VWAP"].as_f64().unwrap() - pv / size).abs() < 1e-9, "{:?}", bars[1]);
    assert_eq!(bars[1]["Trades"], ticks, "{:?}", bars[1]);
    let seen = common::in_browser("company.cjs", &format!("{}/?company=NVIDIA", server.base), "vwap-1m");
    assert_eq!(seen["loaded"], 10, "{seen}");
    assert!(seen["traces"].as_array().is_some_and(|t| t.iter().any(|n| n == "VWAP")), "the VWAP line is drawn: {seen}");
    drop(server);

    // A daily file in the original layout: seven columns in, eight out, and
    // the API's VWAP and Trades null.
    std::fs::write(
        d.join("daily.csv"),
        "Date,Open,High,Low,Close,Volume,Company Name\n2024-01-02,1,2,0.5,1.5,10,Tesla\n",
    )
    .unwrap();
    ok(d, &["run", "--input", "daily.csv", "--no-report", "--no-insights"]);
    let daily = ok(d, &["query", "--company", "Tesla", "--format", "csv"]);
    assert!(daily.starts_with("Date,Open,High,Low,Close,Volume,Company Name,Symbol\n"), "{daily}");
    // The store holds minutes too: served as minutes unless told otherwise.
    let server = start(d, &["serve", "--interval", "1d"]);
    let bars: Vec<serde_json::Value> =
        reqwest::get(format!("{}/api/bars/Tesla", server.base)).await.unwrap().json().await.unwrap();
    assert!(bars[0]["VWAP"].is_null() && bars[0]["Trades"].is_null() && bars[0].get("VWAP").is_some(), "{:?}", bars[0]);
}
