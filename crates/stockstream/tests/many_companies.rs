//! Many companies: statistics, insights and company lists of a store of
//! 100,000 companies in bounded memory and pages. Apart from the other server
//! tests: it keeps both cores busy for a minute, and the browser tests beside
//! it measure frame rates.

mod common;

use std::process::Stdio;
use std::time::Instant;

use common::{bin, start};

async fn json(base: &str, path: &str) -> serde_json::Value {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// 100,000 companies of one bar each: `insights` and `serve` answering
/// `/api/stats` (a page at a time) and `/api/insights` each stay within
/// 200 MB, and so does `run`, its report included (it holds the indicators of
/// the 10,000 companies updated last and reads the others back when they
/// come; past 10,000 companies its statistics are read from the store at the
/// end); correlations are those of the first 100 companies by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_over_100000_companies_stay_bounded() {
    const MB: u64 = 1 << 20;
    const COMPANIES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Date,Open,High,Low,Close,Volume,Company Name\n");
    for c in 0..COMPANIES {
        csv.push_str(&format!("2024-01-02,10,11,9,10,100,C{c:05}\n"));
    }
    std::fs::write(dir.path().join("many.csv"), csv).unwrap();
    let quiet = |args: &[&str]| {
        bin().args(args).current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    };
    // The main job as users run it: report and insights included.
    let summary = std::fs::File::create(dir.path().join("run.txt")).unwrap();
    let run = bin().args(["run", "--input", "many.csv"]).current_dir(dir.path()).stdout(summary).spawn().unwrap();
    let (code, peak) = common::wait_with_peak_rss(run);
    assert_eq!(code, Some(0));
    eprintln!("run over {COMPANIES} companies, report included: peak RSS {} MB", peak / MB);
    assert!(peak <= 200 * MB, "run: peak RSS {} MB", peak / MB);
    assert_eq!(common::count(&dir.path().join("stockstream.db"), "bars"), COMPANIES as u64);
    let summary = std::fs::read_to_string(dir.path().join("run.txt")).unwrap();
    assert!(summary.lines().count() < 60, "a summary, not a line a company:\n{summary}");
    assert!(summary.contains("… and 99980 more companies"), "{summary}");
    let report = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(report.len() < 4 << 20, "report.html: {} bytes", report.len());
    assert!(report.contains("The 50 companies drawn, of 100000 counted in the insights"));
    let (code, peak) = common::wait_with_peak_rss(quiet(&["insights", "--format", "json"]));
    assert_eq!(code, Some(0));
    assert!(peak <= 200 * MB, "insights: peak RSS {} MB", peak / MB);

    let server = start(dir.path(), &["serve"]);
    let b = server.base.as_str();
    let started = Instant::now();
    let first = json(b, "/api/stats").await;
    eprintln!("/api/stats over {COMPANIES} companies: {:?} (then cached)", started.elapsed());
    let page: Vec<&str> =
        first["companies"].as_array().unwrap().iter().map(|c| c["company"].as_str().unwrap()).collect();
    assert_eq!(page, (0..100).map(|c| format!("C{c:05}")).collect::<Vec<_>>());
    assert_eq!(first["next"], "C00099");
    assert_eq!(first["names"], serde_json::json!(page), "the first 100 by name are correlated");
    let last = json(b, "/api/stats?after=C99950&limit=1000").await;
    assert_eq!(last["companies"].as_array().unwrap().len(), 49);
    assert!(last["next"].is_null());
    assert_eq!(reqwest::get(format!("{b}/api/stats?limit=1001")).await.unwrap().status(), 400);
    // Company lists come a page at a time, the next page named in a Link header.
    let r = reqwest::get(format!("{b}/api/companies")).await.unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, r#"</api/companies?after=C00999&limit=1000>; rel="next""#);
    assert_eq!(r.json::<Vec<String>>().await.unwrap().len(), 1000);
    let r = reqwest::get(format!("{b}/api/companies?after=C99990")).await.unwrap();
    assert!(r.headers().get("link").is_none(), "the last page has no next");
    assert_eq!(r.json::<Vec<String>>().await.unwrap(), (99991..100000).map(|c| format!("C{c:05}")).collect::<Vec<_>>());
    // Latest bars too: a page of companies per request, timed.
    let started = Instant::now();
    let r = reqwest::get(format!("{b}/api/latest")).await.unwrap();
    let took = started.elapsed();
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, r#"</api/latest?after=C00099&limit=100>; rel="next""#);
    let latest = r.json::<Vec<serde_json::Value>>().await.unwrap();
    eprintln!("/api/latest over {COMPANIES} companies: {took:?} for a page of {}", latest.len());
    assert_eq!(latest.len(), 100);
    assert_eq!(
        (latest[0]["bar"]["Company Name"].as_str(), latest[0]["bar"]["Close"].as_f64()),
        (Some("C00000"), Some(10.0))
    );
    let tail = json(b, "/api/latest?after=C99997&limit=1000").await;
    let names: Vec<&str> =
        tail.as_array().unwrap().iter().map(|l| l["bar"]["Company Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["C99998", "C99999"]);
    assert_eq!(reqwest::get(format!("{b}/api/latest?limit=1001")).await.unwrap().status(), 400);
    assert!(json(b, "/api/insights").await["insights"].is_array());
    // The dashboard lists the first page of companies; one beyond it, named
    // in the URL in lower case, is found and drawn all the same.
    let seen = common::in_browser("company.cjs", &format!("{b}/?company=c99999"), "many-companies");
    assert_eq!((seen["company"].as_str(), seen["loaded"].as_u64()), (Some("C99999"), Some(1)), "{seen}");
    let peak = common::proc_status_kb(server.child.id(), "VmHWM") * 1024;
    assert!(peak <= 200 * MB, "serve: peak RSS {} MB", peak / MB);
}
