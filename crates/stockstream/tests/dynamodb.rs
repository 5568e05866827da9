//! The DynamoDB store through the real binary, against DynamoDB Local, with boto3
//! (the original project's client) reading what stockstream wrote.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{bin, interop, ok, python, summary, DynamoLocal, Tansu, TansuStorage};

fn ddb_args(server: &DynamoLocal) -> Vec<String> {
    ["--store", "dynamodb", "--dynamodb-endpoint", &server.endpoint(), "--region", "us-east-1"]
        .map(String::from)
        .to_vec()
}

fn with(base: &[&str], extra: &[String]) -> Vec<String> {
    base.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect()
}

fn run_ok(dir: &Path, args: &[String]) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(dir, &refs)
}

fn ddb_count(server: &DynamoLocal, table: &str) -> u64 {
    python(&interop("ddb_count.py"), &[&server.endpoint(), table]).trim().parse().unwrap()
}

/// Every company's bars as the wire JSON `query` prints.
fn dump(dir: &Path, server: &DynamoLocal) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for company in ["NVIDIA", "Tesla", "Meta", "Amazon", "Apple", "Netflix", "Google"] {
        let out = run_ok(dir, &with(&["query", "--company", company, "--format", "json"], &ddb_args(server)));
        all.extend(serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap());
    }
    all
}

#[test]
fn the_default_dataset_is_stored_once_and_a_second_run_changes_nothing() {
    let server = DynamoLocal::start();
    let dir = tempfile::tempdir().unwrap();
    let first = run_ok(dir.path(), &with(&["run"], &ddb_args(&server)));
    assert_eq!(summary(&first, "stored"), 3577, "{first}");
    assert!(first.contains("DynamoDB table StockMkt at http://127.0.0.1:"), "{first}");
    // What the writes cost, from the answers' ConsumedCapacity: a put of a
    // bar's item is at least one write unit.
    let usage = first.lines().find(|l| l.starts_with("dynamodb ")).unwrap_or_else(|| panic!("{first}"));
    let number_before = |word: &str| -> f64 {
        let words: Vec<&str> = usage.split_whitespace().collect();
        let at = words.iter().position(|w| w.trim_end_matches(',') == word).unwrap_or_else(|| panic!("{usage}"));
        words[at - 1].parse().unwrap_or_else(|_| panic!("{usage}"))
    };
    assert!(number_before("write") >= 3577.0, "{usage}");
    assert!(usage.contains("BatchWriteItem "), "{usage}");
    assert_eq!(ddb_count(&server, "StockMkt"), 3577);
    let before = dump(dir.path(), &server);
    assert_eq!(before.len(), 3577);

    let second = run_ok(dir.path(), &with(&["run"], &ddb_args(&server)));
    assert_eq!(summary(&second, "stored"), 3577);
    assert_eq!(ddb_count(&server, "StockMkt"), 3577);
    assert_eq!(dump(dir.path(), &server), before, "a second run changed the table");

    // boto3 reads the table by key and gets the values stockstream wrote, as
    // exact decimals.
    let nvda: Vec<&serde_json::Value> = before.iter().filter(|b| b["Company Name"] == "NVIDIA").collect();
    let dates: Vec<&str> = nvda.iter().take(5).map(|b| b["Date"].as_str().unwrap()).collect();
    let mut args = vec![server.endpoint(), "StockMkt".to_string(), "NVIDIA".to_string()];
    args.extend(dates.iter().map(|d| d.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let items = python(&interop("ddb_get.py"), &refs);
    for (line, ours) in items.lines().zip(&nvda) {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(item["Company Name"]["S"], "NVIDIA");
        assert_eq!(item["Symbol"]["S"], "NVDA");
        assert_eq!(item["Date"]["S"], ours["Date"]);
        for field in ["Open", "High", "Low", "Close", "Volume"] {
            let text = item[field]["N"].as_str().unwrap();
            assert_eq!(text, ours[field].to_string(), "{field} of {line}");
            assert!(text.len() < 12, "float noise in {field}: {text}");
        }
    }
}

#[test]
fn an_outage_mid_write_is_retried_and_nothing_is_lost() {
    let mut server = DynamoLocal::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let args = with(&["run", "--rows", "40000", "--interval", "1m", "--batch-size", "2000"], &ddb_args(&server));
    let child =
        bin().args(&args).current_dir(dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Let it write for a while, then take the server away for a few seconds.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(300));
        // The table may not exist yet: a failed count is just "not yet".
        let out = std::process::Command::new("python3")
            .arg(interop("ddb_count.py"))
            .args([&server.endpoint(), "StockMkt_1m"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap_or(0) > 2000 {
            break;
        }
    }
    server.kill();
    std::thread::sleep(Duration::from_secs(4));
    server.restart();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The outage may meet the bars' write or the alerts' write: either must be retried.
    let retried = stderr.lines().any(|line| line.contains("attempt 1 failed, retrying") && line.contains("DynamoDB"));
    assert!(retried, "the outage was seen and retried: {stderr}");
    assert_eq!(summary(&stdout, "stored"), 40_000);
    assert_eq!(ddb_count(&server, "StockMkt_1m"), 40_000, "nothing lost: one-minute bars in their own table");
}

#[test]
fn kafka_into_dynamodb_and_no_secret_in_the_logs() {
    let broker = Tansu::start(TansuStorage::Memory);
    let server = DynamoLocal::start();
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["produce", "--brokers", &broker.brokers(), "--topic", "ddb", "--rows", "5000", "--interval", "1h"],
    );
    let args = with(
        &[
            "consume",
            "--brokers",
            &broker.brokers(),
            "--topic",
            "ddb",
            "--group",
            "g",
            "--idle-exit",
            "3",
            "--interval",
            "1h",
        ],
        &with(&["--table", "KafkaMkt"], &ddb_args(&server)),
    );
    let out = bin()
        .args(&args)
        .current_dir(dir.path())
        .env("AWS_ACCESS_KEY_ID", "AKIASTOCKSTREAMTEST1")
        .env("AWS_SECRET_ACCESS_KEY", "s3cr3t/KEY+never+logged")
        .env("STOCKSTREAM_LOG", "debug")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(summary(&stdout, "stored"), 5000);
    assert_eq!(ddb_count(&server, "KafkaMkt_1h"), 5000);
    for secret in ["s3cr3t/KEY+never+logged", "AKIASTOCKSTREAMTEST1"] {
        assert!(!stderr.contains(secret) && !stdout.contains(secret), "{secret} appeared in the output");
    }
}

#[test]
fn a_server_not_up_yet_is_waited_for() {
    let mut server = DynamoLocal::start();
    server.kill();
    let dir = tempfile::tempdir().unwrap();
    let args = with(&["run", "--no-report", "--no-insights"], &ddb_args(&server));
    let child =
        bin().args(&args).current_dir(dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("connecting to DynamoDB: attempt 1 failed, retrying"), "the wait was seen: {stderr}");
    assert_eq!(summary(&stdout, "stored"), 3577);
    assert_eq!(ddb_count(&server, "StockMkt"), 3577);
}

/// Bars made from ticks go to the table of their length beside `StockMkt`
/// (untouched), with one window mark per symbol, and read back through
/// `query --interval` equal to the same run into SQLite.
#[test]
fn tick_bars_live_in_the_table_of_their_length() {
    let server = DynamoLocal::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.csv");
    let mut text = String::from("symbol,time,price,size\n");
    for i in 0..3000i64 {
        let symbol = ["NVDA", "TSLA", "AAPL"][(i % 3) as usize];
        text.push_str(&format!(
            "{symbol},{},{},{}\n",
            1_704_207_600_000 + i * 250,
            100.0 + (i % 37) as f64 * 0.25,
            i % 9 + 1
        ));
    }
    std::fs::write(&file, text).unwrap();
    let run =
        ["run", "--source", "ticks", "--input", file.to_str().unwrap(), "--bar", "1m", "--no-report", "--no-insights"];
    run_ok(dir.path(), &with(&run, &ddb_args(&server)));
    run_ok(dir.path(), &with(&run, &["--db".into(), dir.path().join("t.db").display().to_string()]));
    assert_eq!(ddb_count(&server, "StockMkt_1m"), 3 * 13, "12.5 minutes of ticks: 13 bars per symbol");
    assert_eq!(ddb_count(&server, "StockMkt_1m_marks"), 3);
    assert_eq!(ddb_count(&server, "StockMkt"), 0, "the daily table is left alone");
    for company in ["NVDA", "TSLA", "AAPL"] {
        let query = ["query", "--company", company, "--interval", "1m", "--format", "json"];
        let dynamo = run_ok(dir.path(), &with(&query, &ddb_args(&server)));
        let sqlite = run_ok(dir.path(), &with(&query, &["--db".into(), dir.path().join("t.db").display().to_string()]));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&dynamo).unwrap().as_array().unwrap().len(), 13);
        assert_eq!(dynamo, sqlite, "{company}");
    }
}

/// Alerts are stored in `StockMktAlerts` (partition key the company, sort key
/// date#rule) and served from there, the same as from SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_kept_in_dynamodb_and_served_from_it() {
    let server = DynamoLocal::start();
    let dir = tempfile::tempdir().unwrap();
    let run = common::HALF_YEAR_OF_TWO;
    run_ok(dir.path(), &with(&run, &ddb_args(&server)));
    let db = dir.path().join("s.db").display().to_string();
    run_ok(dir.path(), &with(&run, &["--db".into(), db.clone()]));
    // Each alert is kept under its company and in the feed, beside the feed's marker.
    let items = ddb_count(&server, "StockMktAlerts");
    assert_eq!(items % 2, 1, "{items} items");
    let count = (items - 1) / 2;
    assert!(count > 5, "{count} alerts");
    let mut answers = Vec::new();
    for store in [ddb_args(&server), vec!["--db".into(), db.clone()]] {
        let port = stockstream_testkit::free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut child = bin()
            .args(with(&["serve", "--bind", &bind], &store))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(common::wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&bind).is_ok()));
        let mut got = Vec::new();
        for query in ["limit=1000", "company=NVDA&limit=1000", "from=2024-04-01&to=2024-05-31&limit=1000", "limit=3"] {
            let body = reqwest::get(format!("http://{bind}/api/alerts?{query}")).await.unwrap().text().await.unwrap();
            got.push(serde_json::from_str::<serde_json::Value>(&body).unwrap());
        }
        let metrics = reqwest::get(format!("http://{bind}/metrics")).await.unwrap().text().await.unwrap();
        let on_dynamodb = store[0] == "--store";
        // Each request and the read units it consumed, by operation.
        let counted = metrics.lines().any(|l| {
            l.starts_with("stockstream_dynamodb_requests_total{operation=\"Query\"} ")
                && l.split(' ').nth(1).is_some_and(|n| n.parse::<u64>().unwrap() >= 2)
        });
        let units = metrics.lines().any(|l| {
            l.starts_with("stockstream_dynamodb_capacity_units_total{operation=\"Query\",kind=\"read\"} ")
                && l.split(' ').nth(1).is_some_and(|n| n.parse::<f64>().unwrap() > 0.0)
        });
        assert_eq!((counted, units), (on_dynamodb, on_dynamodb), "{metrics}");
        let _ = child.kill();
        let _ = child.wait();
        answers.push(got);
    }
    assert_eq!(answers[0][0].as_array().unwrap().len() as u64, count);
    assert!(answers[0][1].as_array().unwrap().iter().all(|a| a["company"] == "NVIDIA"));
    assert_eq!(answers[0], answers[1], "DynamoDB and SQLite serve the same alerts");
}

/// The read capacity units in a `/metrics` page, summed over operations.
fn read_units(metrics: &str) -> f64 {
    metric_sum(metrics, "stockstream_dynamodb_capacity_units_total{", "kind=\"read\"")
}

/// The DynamoDB requests in a `/metrics` page, summed over operations.
fn requests(metrics: &str) -> f64 {
    metric_sum(metrics, "stockstream_dynamodb_requests_total{", "")
}

fn metric_sum(metrics: &str, prefix: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `serve` over DynamoDB answers the company list, the latest bars and a
/// company's bars with Queries of the catalog and of one company's bars: no
/// Scan (counted in `/metrics`), and the same answers as over SQLite. A table
/// the original project's boto3 `put_item` wrote has no catalog: `serve` says
/// so and how to build it, and `catalog rebuild` builds it with exact counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_and_latest_come_from_the_catalog_without_a_scan() {
    let server = DynamoLocal::start();
    let dir = tempfile::tempdir().unwrap();
    let run = ["run", "--no-report", "--no-insights"];
    run_ok(dir.path(), &with(&run, &ddb_args(&server)));
    let db = dir.path().join("s.db").display().to_string();
    run_ok(dir.path(), &with(&run, &["--db".into(), db.clone()]));

    let serve = |store: Vec<String>| {
        let bind = format!("127.0.0.1:{}", stockstream_testkit::free_port());
        let child = bin()
            .args(with(&["serve", "--bind", &bind], &store))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, bind)
    };
    let mut answers = Vec::new();
    for store in [ddb_args(&server), vec!["--db".into(), db.clone()]] {
        let (mut child, bind) = serve(store.clone());
        assert!(common::wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&bind).is_ok()));
        let mut got = Vec::new();
        let paths = [
            "/api/companies",
            "/api/latest",
            "/api/bars/NVIDIA?limit=1",
            "/api/bars/nvda?limit=1",
            "/api/alerts?limit=50",
            "/api/companies?limit=3",
            "/api/companies?after=Google&limit=3",
            "/api/stats",
            "/api/insights",
            "/api/indicators/NVIDIA?limit=200",
            "/api/stats?after=Meta&limit=2",
        ];
        for path in paths {
            let started = std::time::Instant::now();
            let body = reqwest::get(format!("http://{bind}{path}")).await.unwrap().text().await.unwrap();
            eprintln!("{} {path}: {:?}", store[0], started.elapsed());
            got.push(serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|_| panic!("{path}: {body}")));
        }
        let metrics = reqwest::get(format!("http://{bind}/metrics")).await.unwrap().text().await.unwrap();
        if store[0] == "--store" {
            assert!(!metrics.contains("operation=\"Scan\""), "{metrics}");
            assert!(metrics.contains("stockstream_dynamodb_requests_total{operation=\"Query\"}"), "{metrics}");
            // Each route's requests counted under it: statistics read the catalog and a window.
            for route in ["/api/latest", "/api/stats", "/api/insights", "/api/bars/{company}"] {
                let line =
                    format!("stockstream_dynamodb_route_requests_total{{route=\"{route}\",operation=\"Query\"}} ");
                assert!(metrics.contains(&line), "{route} not counted:\n{metrics}");
            }
            // What one dashboard load costs: the read units and requests
            // counted while a browser opens it on a company and its watchlist.
            let seen = common::in_browser("company.cjs", &format!("http://{bind}/?company=NVIDIA"), "dynamodb-load");
            assert_eq!(
                (seen["company"].as_str(), seen["loaded"].as_u64().is_some_and(|n| n > 0)),
                (Some("NVIDIA"), true)
            );
            let after = reqwest::get(format!("http://{bind}/metrics")).await.unwrap().text().await.unwrap();
            let (units, requests) = (read_units(&after) - read_units(&metrics), requests(&after) - requests(&metrics));
            eprintln!("one dashboard load over DynamoDB: {units} read units in {requests} requests");
            assert!(units > 0.0 && units < 100.0, "{units} read units for one dashboard load:\n{after}");
            assert!(!after.contains("operation=\"Scan\""), "{after}");
        }
        let _ = child.kill();
        let _ = child.wait();
        answers.push(got);
    }
    assert_eq!(answers[0][0].as_array().unwrap().len(), 7, "{:?}", answers[0][0]);
    assert_eq!(answers[0][4].as_array().unwrap().len(), 50, "{:?}", answers[0][4]);
    assert_eq!(answers[0][5], serde_json::json!(["Amazon", "Apple", "Google"]));
    assert_eq!(answers[0][6], serde_json::json!(["Meta", "NVIDIA", "Netflix"]));
    let stats = &answers[0][7];
    assert_eq!(stats["companies"].as_array().unwrap().len(), 7, "{stats}");
    assert_eq!(stats["companies"][5]["bars"], 511, "{stats}");
    assert_eq!(stats["correlation_window"], 250, "{stats}");
    assert!(answers[0][8]["insights"].as_array().unwrap().len() > 5, "{}", answers[0][8]);
    assert_eq!(answers[0][9].as_array().unwrap().len(), 200);
    let page = &answers[0][10];
    assert_eq!(
        (page["companies"].as_array().unwrap().len(), &page["next"]),
        (2, &serde_json::json!("Netflix")),
        "{page}"
    );
    assert_eq!(answers[0], answers[1], "DynamoDB and SQLite answer alike");

    // The original project's way of writing: boto3 put_item, no catalog.
    let csv = dir.path().join("seed.csv");
    std::fs::write(
        &csv,
        "Date,Open,High,Low,Close,Volume,Company Name\n\
         2024-01-02,10,11,9,10.5,100,NVIDIA\n\
         2024-01-03,10.5,12,10,11.5,120,NVIDIA\n\
         2024-01-02,200,210,190,205,50,Tesla\n",
    )
    .unwrap();
    let seed_table = ["--table".to_string(), "SeedMkt".to_string()];
    assert_eq!(
        python(&interop("ddb_put_rows.py"), &[&server.endpoint(), "SeedMkt", csv.to_str().unwrap()]).trim(),
        "3"
    );
    // And an alerts table of an older layout: alerts under their company only.
    python(&interop("ddb_create_table.py"), &[&server.endpoint(), "SeedMktAlerts", "Company Name", "TimeRule"]);
    let alert = serde_json::json!({
        "Company Name": {"S": "NVIDIA"}, "TimeRule": {"S": "2024-01-03#rsi_overbought"}, "Date": {"S": "2024-01-03"},
        "Rule": {"S": "rsi_overbought"}, "Symbol": {"S": "NVDA"}, "Message": {"S": "RSI 14 above 70"}, "Values": {"S": "{}"},
    });
    python(&interop("ddb_put_item.py"), &[&server.endpoint(), "SeedMktAlerts", &alert.to_string()]);
    let (child, _) = serve(with(&[], &[ddb_args(&server), seed_table.to_vec()].concat()));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("SeedMkt has no catalog") && stderr.contains("stockstream catalog rebuild"), "{stderr}");
    let rebuilt =
        run_ok(dir.path(), &with(&["catalog", "rebuild"], &[ddb_args(&server), seed_table.to_vec()].concat()));
    assert!(rebuilt.contains("catalog    2 companies"), "{rebuilt}");
    let latest = run_ok(
        dir.path(),
        &with(&["query", "--company", "nvda", "--format", "csv"], &[ddb_args(&server), seed_table.to_vec()].concat()),
    );
    assert_eq!(latest.lines().count(), 3, "{latest}");
    let (mut child, bind) = serve(with(&[], &[ddb_args(&server), seed_table.to_vec()].concat()));
    assert!(common::wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&bind).is_ok()));
    let companies = reqwest::get(format!("http://{bind}/api/companies")).await.unwrap().text().await.unwrap();
    assert_eq!(companies, r#"["NVIDIA","Tesla"]"#);
    let alerts: serde_json::Value =
        reqwest::get(format!("http://{bind}/api/alerts?limit=10")).await.unwrap().json().await.unwrap();
    assert_eq!(alerts[0]["company"], "NVIDIA", "{alerts}");
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    let metrics = reqwest::get(format!("http://{bind}/metrics")).await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("operation=\"Scan\""), "{metrics}");
    let _ = child.kill();
    let _ = child.wait();
}
