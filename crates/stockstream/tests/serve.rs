//! The server over real HTTP: every endpoint, every error path, and the live
//! event stream while a pipeline runs.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{in_browser, ok, start, Server};
use futures_util::StreamExt;
use serde_json::Value;

async fn get(base: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn json(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn error(base: &str, path: &str, status: u16, parameter: Option<&str>) {
    let (got, body) = get(base, path).await;
    assert_eq!(got, status, "{path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    if let Some(p) = parameter {
        assert_eq!(v["parameter"], p, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_error_path() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &common::HALF_YEAR_OF_TWO);
    let server = start(dir.path(), &["serve"]);
    let b = server.base.as_str();

    assert_eq!(get(b, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(json(b, "/api/companies").await, serde_json::json!(["NVIDIA", "Tesla"]));
    assert_eq!(json(b, "/api/companies?name=nvda").await, serde_json::json!(["NVIDIA"]), "by symbol");
    assert_eq!(json(b, "/api/companies?name=tesla").await, serde_json::json!(["Tesla"]), "in any case");
    assert_eq!(json(b, "/api/companies?name=Enron").await, serde_json::json!([]));
    assert_eq!(json(b, "/api/companies?limit=1").await, serde_json::json!(["NVIDIA"]));
    assert_eq!(json(b, "/api/companies?after=NVIDIA").await, serde_json::json!(["Tesla"]));

    let bars = json(b, "/api/bars/NVDA?from=2024-03-01&to=2024-03-08&limit=3").await;
    let dates: Vec<&str> = bars.as_array().unwrap().iter().map(|v| v["Date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2024-03-06", "2024-03-07", "2024-03-08"], "the newest within range");
    assert_eq!(bars[0]["Company Name"], "NVIDIA");
    assert_eq!(json(b, "/api/bars/nvidia").await.as_array().unwrap().len(), 124);
    error(b, "/api/bars/Enron", 404, None).await;
    error(b, "/api/bars/NVDA?from=yesterday", 400, Some("from")).await;
    error(b, "/api/bars/NVDA?to=2024-13-01", 400, Some("to")).await;
    error(b, "/api/bars/NVDA?limit=0", 400, Some("limit")).await;
    error(b, "/api/bars/NVDA?limit=ten", 400, Some("limit")).await;
    error(b, "/api/bars/NVDA?from=2024-05-01&to=2024-04-01", 400, Some("from")).await;

    let latest = json(b, "/api/latest").await;
    assert_eq!(latest.as_array().unwrap().len(), 2);
    for l in latest.as_array().unwrap() {
        assert_eq!(l["bar"]["Date"], "2024-06-28");
        assert!(l["indicators"]["sma50"].is_number() && l["indicators"]["rsi14"].is_number(), "{l}");
    }

    // Pages: the newest before a cursor, the oldest after one, read with the limit.
    let page =
        |v: &Value| v.as_array().unwrap().iter().map(|b| b["Date"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(page(&json(b, "/api/bars/NVDA?before=2024-03-06&limit=2").await), ["2024-03-04", "2024-03-05"]);
    assert_eq!(page(&json(b, "/api/bars/NVDA?after=2024-03-06&limit=2").await), ["2024-03-07", "2024-03-08"]);
    assert_eq!(page(&json(b, "/api/bars/NVDA?after=2024-06-27").await), ["2024-06-28"]);
    error(b, "/api/bars/NVDA?before=2024-03-06&after=2024-03-01", 400, Some("before")).await;
    error(b, "/api/bars/NVDA?before=soon", 400, Some("before")).await;
    // A page of indicators is the whole history's: equal to the same rows read at once.
    let whole = json(b, "/api/indicators/NVDA").await;
    let paged = json(b, "/api/indicators/NVDA?before=2024-06-01&limit=5").await;
    let at = whole.as_array().unwrap().iter().position(|r| r["date"] == paged[0]["date"]).unwrap();
    // (Equal to rounding: the batch kernels sum in another order over a shorter series.)
    for (p, w) in paged.as_array().unwrap().iter().zip(&whole.as_array().unwrap()[at..at + 5]) {
        for (key, value) in p.as_object().unwrap() {
            match (value.as_f64(), w[key].as_f64()) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{key}: {a} vs {b}"),
                _ => assert_eq!(value, &w[key], "{key}"),
            }
        }
    }
    assert!(paged[0]["sma50"].is_number());

    let rows = json(b, "/api/indicators/TSLA?from=2024-06-03").await;
    assert_eq!(rows[0]["date"], "2024-06-03");
    assert!(rows[0]["sma10"].is_null() && rows[9]["sma10"].is_number());
    assert_eq!(json(b, "/api/indicators/TSLA?limit=1").await[0]["date"], "2024-06-28");
    error(b, "/api/indicators/Enron", 404, None).await;
    error(b, "/api/indicators/TSLA?from=x", 400, Some("from")).await;

    let stats = json(b, "/api/stats").await;
    assert_eq!(stats["names"], serde_json::json!(["NVIDIA", "Tesla"]));
    assert_eq!(json(b, "/api/stats?from=2024-06-01").await["companies"][0]["bars"], 19, "June 2024 less Juneteenth");
    error(b, "/api/stats?to=soon", 400, Some("to")).await;

    // The API reads the catalog: every company's statistics as the CLI
    // computes them over all bars; return correlations over the newest 250
    // bars of each company, and said so.
    let insights = json(b, "/api/insights").await;
    let cli: Value = serde_json::from_str(&ok(dir.path(), &["insights", "--format", "json"])).unwrap();
    let (api, cli) = (insights["insights"].as_array().unwrap(), cli["insights"].as_array().unwrap());
    let correlated =
        |i: &&Value| i["kind"].as_str().unwrap().contains("correlat") && i["kind"] != "open_close_correlation";
    let apart = |all: &[Value]| -> (Vec<Value>, Vec<Value>) { all.iter().cloned().partition(|i| !correlated(&i)) };
    let ((api_own, api_pairs), (cli_own, cli_pairs)) = (apart(api), apart(cli));
    assert!(api_own.len() > 5, "{api_own:?}");
    // Folded bar by bar, summed over all bars: the same to 1e-9.
    let same = |a: &Value, c: &Value| {
        let (x, y) = (a["value"].as_f64().unwrap(), c["value"].as_f64().unwrap());
        (&a["kind"], &a["companies"], &a["text"]) == (&c["kind"], &c["companies"], &c["text"])
            && (x - y).abs() <= 1e-9 * y.abs().max(1.0)
    };
    assert!(
        api_own.len() == cli_own.len() && api_own.iter().zip(&cli_own).all(|(a, c)| same(a, c)),
        "the API says what the CLI says of each company:\n{api_own:?}\n{cli_own:?}"
    );
    assert_eq!(api_pairs.len(), cli_pairs.len(), "{api_pairs:?} {cli_pairs:?}");
    assert!(
        api_pairs.iter().all(|i| i["text"].as_str().unwrap().ends_with("over their last 250 bars.")),
        "{api_pairs:?}"
    );
    error(b, "/api/insights?from=x", 400, Some("from")).await;

    // Alerts are read from the store: this server started after the run that raised them.
    let all = json(b, "/api/alerts?limit=1000").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len() as u64, common::count(&dir.path().join("stockstream.db"), "alerts"));
    assert!(all.len() > 5, "{} alerts", all.len());
    let dates: Vec<&str> = all.iter().map(|a| a["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(json(b, "/api/alerts?limit=5").await.as_array().unwrap()[..], all[..5]);
    let tesla = json(b, "/api/alerts?company=TSLA&limit=1000").await;
    assert!(!tesla.as_array().unwrap().is_empty() && tesla.as_array().unwrap().iter().all(|a| a["company"] == "Tesla"));
    let june = json(b, "/api/alerts?from=2024-06-01&limit=1000").await;
    let june = june.as_array().unwrap();
    assert_eq!(june.len(), dates.iter().filter(|d| **d >= "2024-06-01").count());
    error(b, "/api/alerts?company=Enron", 404, None).await;
    error(b, "/api/bars/NVDA?interval=1m", 404, Some("interval")).await;
    error(b, "/api/bars/NVDA?interval=7x", 400, Some("interval")).await;
    error(b, "/api/alerts?limit=abc", 400, Some("limit")).await;
    error(b, "/api/alerts?limit=5000", 400, Some("limit")).await;

    let (status, metrics) = get(b, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "# TYPE stockstream_records_stored_total counter",
        "# TYPE stockstream_store_write_seconds histogram",
        "# TYPE stockstream_bus_to_event_seconds histogram",
        "stockstream_consumer_lag 0",
    ] {
        assert!(metrics.contains(needle), "metrics lack {needle:?}");
    }
    error(b, "/api/nothing", 404, None).await;
    // Not UTF-8, in the path and in the query: the same JSON errors.
    error(b, "/api/bars/%FF%FE", 400, None).await;
    error(b, "/api/bars/NVDA?from=%FF", 400, None).await;
    let r = reqwest::get(format!("{b}/")).await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let script_src = csp.split(';').find(|d| d.trim().starts_with("script-src")).unwrap_or_default();
    assert_eq!(script_src.trim(), "script-src 'self'", "inline script allowed: {csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    let (status, page) = get(b, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>stockstream</title>") && !page.contains("<script>"), "{page}");
    // The page's own script, a versioned file, cached for a year.
    let script =
        page.split("<script src=\"").filter_map(|s| s.split('"').next()).find(|s| s.starts_with("/assets/dashboard-"));
    let script = script.expect("the page names its script");
    let code = reqwest::get(format!("{b}{script}")).await.unwrap();
    assert_eq!(code.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(code.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(code.text().await.unwrap().contains("new EventSource(\"/api/stream\")"));
    assert!(
        page.contains(r#"<script src="/assets/plotly-3.0.1.min.js" async"#),
        "the page loads the library from here"
    );
    assert!(!page.contains("http://") && !page.contains("https://"), "the dashboard refers to another host");
    let library = reqwest::get(format!("{b}/assets/plotly-3.0.1.min.js")).await.unwrap();
    assert_eq!(library.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(library.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(library.text().await.unwrap().starts_with("/**\n* plotly.js v3.0.1"));
    let (status, licence) = get(b, "/assets/plotly-LICENSE.txt").await;
    assert_eq!(status, 200);
    assert!(licence.contains("The MIT License") && licence.contains("Plotly, Inc."), "{licence}");
    let daily_only = serde_json::json!({ "interval": "1d", "intervals": ["1d"], "streaming": false });
    assert_eq!(json(b, "/api/live").await, daily_only, "daily bars make no shorter ones");
    // No bars of an interval: no companies, and an error that keeps the file's name to the log.
    assert_eq!(json(b, "/api/companies?interval=1m").await, serde_json::json!([]));
    let (_, missing) = get(b, "/api/bars/NVDA?interval=1m").await;
    assert!(missing.contains("no 1m bars stored") && !missing.contains(".db"), "{missing}");
}

/// Reads server-sent events until `done` says so and then until none came for
/// a second (what the last batch's writer still publishes); returns (event,
/// data) pairs.
async fn read_events(
    url: &str,
    mut done: impl FnMut(&[(String, Value)]) -> bool,
    within: Duration,
) -> Vec<(String, Value)> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let (mut buffer, mut events) = (String::new(), Vec::new());
    let deadline = Instant::now() + within;
    let mut settling = false;
    loop {
        settling = settling || done(&events);
        let chunk = if settling {
            match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                Ok(chunk) => chunk.unwrap().unwrap(),
                Err(_) => return events,
            }
        } else {
            tokio::time::timeout_at(deadline.into(), stream.next())
                .await
                .expect("events stopped coming")
                .unwrap()
                .unwrap()
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !kind.is_empty() {
                events.push((kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_streamed_bar_arrives_with_its_indicators() {
    let dir = tempfile::tempdir().unwrap();
    let range = ["--symbols", "NVDA,TSLA,AAPL", "--start", "2024-01-02", "--end", "2024-04-30"];
    let expected: Vec<String> = ok(dir.path(), &[&["generate"][..], &range].concat())
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{} {} {}", f[6], f[0], f[4])
        })
        .collect();
    let args =
        [&["run", "--serve", "--wait-for-subscriber", "--rate", "300", "--no-report", "--no-insights"][..], &range]
            .concat();
    let server = start(dir.path(), &args);
    let n = expected.len();
    let events = read_events(
        &format!("{}/api/stream", server.base),
        |e| e.iter().filter(|(k, _)| k == "bar").count() >= n,
        Duration::from_secs(60),
    )
    .await;
    let got: Vec<String> = events
        .iter()
        .filter(|(k, _)| k == "bar")
        .map(|(_, v)| {
            let ind = &v["indicators"];
            assert!(ind["close"].is_number() && ind["drawdown"].is_number(), "{v}");
            assert!(v["sent_at_micros"].is_number(), "{v}");
            format!(
                "{} {} {}",
                ind["company"].as_str().unwrap(),
                ind["date"].as_str().unwrap(),
                ind["close"].as_f64().unwrap()
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "every bar once");
    assert!(
        got == expected,
        "every bar, in order: first difference at {:?}",
        got.iter().zip(&expected).position(|(a, b)| a != b)
    );
    // Indicators warm up per company: the 50th bar of each has its SMA 50.
    let nvidia: Vec<&Value> =
        events.iter().filter(|(k, v)| k == "bar" && v["symbol"] == "NVDA").map(|(_, v)| v).collect();
    assert!(nvidia[48]["indicators"]["sma50"].is_null() && nvidia[49]["indicators"]["sma50"].is_number());
    let alerts: Vec<&Value> = events.iter().filter(|(k, _)| k == "alert").map(|(_, v)| v).collect();
    for a in &alerts {
        assert!(
            a["company"].is_string() && a["rule"].is_string() && a["message"].is_string() && a["date"].is_string(),
            "{a}"
        );
    }
    let stored = json(&server.base, "/api/alerts?limit=1000").await;
    assert_eq!(stored.as_array().unwrap().len(), alerts.len(), "the alert feed holds what was streamed");
    let mut child = server;
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The dashboard in headless Chromium while `run --serve` streams: the chart's
/// last candle and the watchlist move, an alert lands on the chart and in the
/// feed, the crosshair shows its bar, an overlay turns on, the dark theme
/// applies; no console error, nothing from another host. Screenshots:
/// `target/test-artifacts/dashboard.png` and `dashboard-dark.png`.
#[test]
fn the_dashboard_moves_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "run",
            "--serve",
            "--wait-for-subscriber",
            "--rate",
            "40",
            "--no-report",
            "--no-insights",
            "--start",
            "2024-01-02",
        ],
    );
    let seen = in_browser("dashboard.cjs", &format!("{}/", server.base), "dashboard");
    common::check_live_dashboard(&seen, 7);
}

/// With 7 companies × 10 years of daily bars stored: the first drawing of the
/// chart (the library cached, as on every visit after the first) within 1 s,
/// the page's first paint within 1 s even on a first visit, which transfers at
/// most 1.6 MB; the URL's company
/// and theme applied; history loaded a page at a time as the view zooms out
/// to all of it; the picker offers the daily interval alone, and an hourly
/// one named in the URL says none is stored.
#[test]
fn a_long_history_opens_within_a_second_and_pages_in_as_it_comes_into_view() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--rows", "17640", "--start", "2015-01-02", "--no-report", "--no-insights"]);
    let server = start(dir.path(), &["serve"]);
    let seen = in_browser("history.cjs", &format!("{}/?company=tesla&theme=dark", server.base), "history");
    eprintln!("first visit: {}; library cached: {}", seen["first"], seen["cached"]);
    let fastest =
        seen["cached"].as_array().unwrap().iter().map(|t| t["chart"].as_f64().unwrap()).fold(f64::MAX, f64::min);
    assert!(fastest < 1000.0, "the chart took {fastest} ms with the library cached: {}", seen["cached"]);
    assert!(seen["first"]["paint"].as_f64().unwrap() < 1000.0, "first paint: {}", seen["first"]);
    // Compressed: Plotly gzipped once, the page, its script and the JSON as
    // the browser asks (4.7 MB uncompressed).
    let bytes = seen["first"]["bytes"].as_f64().unwrap();
    assert!(bytes > 100_000.0 && bytes <= 1_600_000.0, "a cold visit took {bytes} bytes: {}", seen["first"]);
    let opened = &seen["opened"];
    assert_eq!(opened["company"], "Tesla", "the URL's company, as stored");
    assert_eq!(opened["theme"], "dark");
    assert_eq!(opened["url"], "?company=Tesla&interval=1d&theme=dark&overlays=sma10%2Csma50&tz=exchange&follow=1");
    assert_eq!(opened["loaded"], 200, "a first page, not the whole history");
    let zoomed: Vec<u64> = seen["zoomed"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert!(zoomed.contains(&700) && zoomed.contains(&1200), "pages of 500: {zoomed:?}");
    assert_eq!(zoomed.last(), Some(&2520), "the whole history once zoomed out: {zoomed:?}");
    let drawn = seen["paged"]["candles"].as_u64().unwrap();
    assert!(drawn <= 450, "zoomed out, bars are merged into at most 450 candles: {drawn}");
    let picked = &seen["picked"];
    assert_eq!(picked["offered"], serde_json::json!(["1d"]), "daily bars make no shorter ones: {picked}");
    assert!(picked["url"].as_str().unwrap().contains("interval=1h"), "{picked}");
    assert_eq!(picked["message"], "no 1h bars stored for tesla", "the company as the URL names it");
}

/// A raw HTTP/1.1 exchange: the status line of the answer to `request`.
fn status_line(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = vec![0; 64];
    let n = s.read(&mut got).unwrap_or(0);
    String::from_utf8_lossy(&got[..n]).lines().next().unwrap_or("(nothing)").to_string()
}

/// Under `ulimit -n 128`, 150 sockets that each send half a request: /healthz
/// answers throughout, the cap is logged, every half-sent connection and an idle
/// keep-alive one are closed within the header timeout, the event stream has
/// its own cap, and memory stays flat.
#[test]
fn half_sent_connections_cannot_starve_the_server() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--no-report", "--no-insights", "--db", "s.db"]);
    let addr = format!("127.0.0.1:{}", stockstream_testkit::free_port());
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 128 && exec "$0" serve --db s.db --bind "$1" --header-timeout 3 --max-subscribers 2"#)
        .arg(env!("CARGO_BIN_EXE_stockstream"))
        .arg(&addr)
        .current_dir(dir.path())
        .env_remove("STOCKSTREAM_CONFIG")
        .env("STOCKSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(common::wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&addr).is_ok()), "{}", log());
    let healthz = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    let started = Instant::now();
    let mut half_sent: Vec<std::net::TcpStream> = (0..150)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    for _ in 0..8 {
        assert_eq!(status_line(&addr, healthz), "HTTP/1.1 200 OK", "{}", log());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(log().contains("connection limit of 64 reached"), "{}", log());

    // An idle keep-alive connection, after a whole exchange.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).unwrap() > 0);

    // The event stream's own cap.
    let streams: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            s
        })
        .collect();
    // Refused once the two are subscribed (each answered with its headers).
    for mut s in streams.iter() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    let refused = status_line(&addr, "GET /api/stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(refused, "HTTP/1.1 503 Service Unavailable", "{}", log());
    assert!(log().contains("limit of 2 subscribers reached"), "{}", log());

    // Every half-sent connection is closed: evicted, or timed out at 3 s.
    for s in &mut half_sent {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let closed = matches!(s.read(&mut buf), Ok(0) | Err(_)) && started.elapsed() < Duration::from_secs(15);
        assert!(closed, "a half-sent connection is still open after {:?}", started.elapsed());
    }
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0, "the idle connection is closed");
    assert_eq!(status_line(&addr, healthz), "HTTP/1.1 200 OK");
    let peak = common::proc_status_kb(child.id(), "VmHWM") / 1024;
    assert!(peak < 100, "peak RSS {peak} MB");
    drop(streams);
    let _ = child.kill();
    let _ = child.wait();
}

/// A failure inside (here: the table gone from under the server) is a 500
/// whose body says so and no more: the path and the SQL stay in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_keeps_its_internals_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--symbols", "NVDA", "--no-report", "--no-insights", "--db", "gone.db"]);
    let server = start(dir.path(), &["serve", "--db", "gone.db"]);
    assert_eq!(get(&server.base, "/api/companies").await.0, 200);
    let conn = rusqlite::Connection::open(dir.path().join("gone.db")).unwrap();
    conn.execute_batch("DROP TABLE bars_catalog").unwrap();
    drop(conn);
    let (status, body) = get(&server.base, "/api/companies").await;
    assert_eq!(status, 500, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "internal error; the server's log has the details");
    assert!(!body.contains("gone.db") && !body.contains("bars") && !body.contains("SQL"), "{body}");
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("gone.db") && log.contains("no such table: bars_catalog"), "the log has the details: {log}");
}

/// With `run --serve` on live synthetic ticks at 1,000 a second, the forming
/// candle moves between ticks in a real browser: its label (open, high, low,
/// close, volume), the chart's forming candle and the watchlist's last price
/// change many times within one bar, and the page keeps drawing frames. The
/// screenshot is kept in `target/test-artifacts/forming.png`.
#[test]
fn the_forming_candle_moves_between_ticks_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "run",
            "--serve",
            "--source",
            "synthetic-ticks",
            "--backfill",
            "0",
            "--tick-rate",
            "1000",
            "--bar",
            "1m",
            "--no-report",
            "--no-insights",
        ],
    );
    let seen = in_browser("forming.cjs", &format!("{}/", server.base), "forming");
    let samples = seen["samples"].as_array().unwrap();
    let distinct =
        |key: &str| samples.iter().map(|s| s[key].to_string()).collect::<std::collections::BTreeSet<_>>().len();
    // Sampled 30 times in 3 s: the label changes every frame, so with most
    // samples (one bar may close in between); the chart is redrawn after a
    // pause twice as long as its last drawing took, a few times a second here.
    assert!(distinct("label") >= 10, "the forming label did not move: {samples:?}");
    eprintln!("chart drawings seen in 3 s at 1,000 ticks/s: {}", distinct("forming"));
    assert!(distinct("forming") >= 5, "the forming candle did not move: {samples:?}");
    assert!(distinct("close") >= 5, "the watchlist's last prices did not move: {samples:?}");
    assert!(samples.iter().all(|s| s["label"].as_str().unwrap().starts_with("forming ")), "{samples:?}");
    assert!(samples.last().unwrap()["status"].as_str().unwrap().contains("ticks received"));
    // Candles as wide as a bar, the forming one alone in the first minute too.
    let narrowest = samples.iter().map(|s| s["candleWidth"].as_f64().unwrap()).fold(f64::INFINITY, f64::min);
    assert!(narrowest >= 4.0, "a candle drawn {narrowest} px wide: {samples:?}");
    // Smooth: frames keep coming while 1,000 ticks a second arrive.
    let frames = &seen["frames"];
    eprintln!("frames at 1,000 ticks/s: {frames}");
    assert!(frames["count"].as_u64().unwrap() >= 30, "fewer than 10 frames a second: {frames}");
    assert!(frames["max"].as_f64().unwrap() < 1000.0, "the page froze for a second: {frames}");
    terminated_cleanly(server, dir.path());
}

/// Clients of the event stream that go away while events flow (a closed
/// tab, a dropped phone connection) never end the server: writing to their
/// sockets raised SIGPIPE, and the server died of it.
#[test]
fn clients_that_leave_mid_stream_do_not_end_the_server() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        dir.path(),
        &[
            "run",
            "--serve",
            "--source",
            "synthetic-ticks",
            "--backfill",
            "0",
            "--tick-rate",
            "2000",
            "--bar",
            "1s",
            "--no-report",
            "--no-insights",
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    for _ in 0..40 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        // Gone at once, as a closed tab's connection goes (a reset, not a goodbye).
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        use std::os::fd::AsRawFd;
        // SAFETY: a valid socket and option of the right size.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(server.child.try_wait().unwrap().is_none(), "the server ended: {:?}", server.child.try_wait());
    terminated_cleanly(server, dir.path());
}

/// SIGTERM, then an exit with status 0 (the server's log in the message if not).
fn terminated_cleanly(mut server: Server, dir: &Path) {
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(status.success(), "{status:?} after SIGTERM:\n{log}");
}

/// Navigation over two years of daily bars in a real browser: six and more
/// drags towards the oldest bar keep the view's width and stop at that bar
/// (the time axis never flips), drags back move it again, the wheel out
/// shows the whole history and no more, and a double-click, the home button
/// or the follow button return to the newest bars (the button and the URL
/// say whether the view follows them); the status does not claim "live"
/// when nothing streams, and a lost stream is said over the chart until it
/// is back; `?company=nvda` opens NVIDIA, an unknown company is said with
/// those there are. Screenshots: `target/test-artifacts/navigation.png` and
/// `navigation-offline.png`.
#[test]
fn navigation_stays_on_the_bars_and_returns_to_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--rows", "3528", "--start", "2023-04-03", "--no-report", "--no-insights"]);
    let newest = common::rows(&dir.path().join("stockstream.db"), "SELECT MAX(date) FROM bars")[0][0].clone();
    let server = start(dir.path(), &["serve"]);
    let base = server.base.clone();
    // The server stopped and started again when the page says so.
    let signal = dir.path().join("outage");
    let outage = {
        let (signal, dir) = (signal.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let says = |word: &str| std::fs::read_to_string(&signal).is_ok_and(|s| s == word);
            assert!(common::wait_until(Duration::from_secs(120), || says("ready")), "the page never got ready");
            let bind = server.base.trim_start_matches("http://").to_string();
            drop(server);
            assert!(common::wait_until(Duration::from_secs(60), || says("seen")), "the page never saw the outage");
            common::start_at(&dir, &["serve"], &bind)
        })
    };
    let seen = common::in_browser_with(
        "navigation.cjs",
        &format!("{base}/?company=NVIDIA"),
        "navigation",
        &[("OUTAGE_FILE", signal.to_str().unwrap())],
    );
    let _server = outage.join().unwrap();
    let day = |text: &str| chrono::NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").unwrap();
    // Plotly gives `2024-06-11`, `2024-06-11 16:48` or `2024-06-11 16:48:07.5`.
    let at = |text: &str| {
        let full = format!("{text}{}", &" 00:00:00"[(text.len().min(19) - 10).min(9)..]);
        chrono::NaiveDateTime::parse_from_str(&full[..19], "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp() as f64
    };
    let span = |r: &Value| {
        let r: Vec<&str> = r.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        (at(r[0]), at(r[1]), r[0].to_string(), r[1].to_string())
    };
    let (oldest, newest) = (chrono::NaiveDate::from_ymd_opt(2023, 4, 3).unwrap(), day(&newest));
    let (a0, b0, ..) = span(&seen["opened"]);
    let width = b0 - a0;
    let older = seen["older"].as_array().unwrap();
    assert!(older.len() >= 6, "{older:?}");
    for r in older {
        let (a, b, ta, tb) = span(r);
        assert!(b > a, "the axis flipped: {ta} .. {tb}");
        assert!((b - a - width).abs() <= 86_400.0 * 3.0, "the view's width changed: {ta} .. {tb} ({older:?})");
        assert!(day(&ta) >= oldest.pred_opt().unwrap(), "the view went before the oldest bar: {ta}");
    }
    let (last_a, _, last_ta, _) = span(older.last().unwrap());
    assert!(day(&last_ta) <= oldest.succ_opt().unwrap(), "the drags did not reach the oldest bar: {last_ta}");
    let (back_a, _, back_ta, _) = span(seen["back"].as_array().unwrap().last().unwrap());
    assert!(back_a > last_a + width, "dragging back did not move the view: {back_ta}");
    let (wa, wb, wta, wtb) = span(&seen["wheeled"]);
    assert!(
        wb > wa && day(&wta) >= oldest.pred_opt().unwrap() && day(&wta) <= oldest.succ_opt().unwrap(),
        "wheeled out: {wta} .. {wtb}"
    );
    assert!(
        day(&wtb) >= newest && (day(&wtb) - newest).num_days() <= 31,
        "wheeled out: {wta} .. {wtb}, newest {newest}"
    );
    assert_eq!(seen["loaded"], 504, "every bar loaded once the view holds them all");
    // Nothing streams from a store served as it is: the page does not say "live".
    assert_eq!(seen["seen"]["status"], "connected · nothing streaming", "{}", seen["seen"]);
    let (by_symbol, unknown) = (&seen["bySymbol"], &seen["unknown"]);
    assert_eq!(by_symbol["company"], "NVIDIA", "?company=nvda: {by_symbol}");
    assert!(by_symbol["url"].as_str().unwrap().contains("company=NVIDIA"), "{by_symbol}");
    assert_eq!(by_symbol["interval"], serde_json::json!(["1d"]), "a store served as it is: nothing called live");
    assert_eq!(
        unknown["message"],
        "no company \"nosuch\" is stored; there are Amazon, Apple, Google, Meta, NVIDIA, Netflix, Tesla",
        "{unknown}"
    );
    assert!(!unknown["picker"].as_array().unwrap().iter().any(|c| c == "nosuch"), "{unknown}");
    let (offline, online) = (&seen["offline"], &seen["online"]);
    assert_eq!(offline["stale"], true, "the lost stream is not shown: {offline}");
    assert!(offline["banner"].as_str().unwrap().starts_with("reconnecting"), "{offline}");
    assert_eq!(online["stale"], false, "the stream came back: {online}");
    assert_eq!(online["networkErrors"], serde_json::json!([]), "errors besides the failed requests: {online}");
    assert_eq!(online["status"], "connected · nothing streaming", "{online}");
    assert_eq!(seen["dragged"]["pressed"], "false", "{}", seen["dragged"]);
    assert!(seen["dragged"]["url"].as_str().unwrap().contains("follow=0"), "{}", seen["dragged"]);
    for state in ["afterHome", "afterFollow"] {
        assert_eq!(seen[state]["pressed"], "true", "{state}: {}", seen[state]);
        assert!(seen[state]["url"].as_str().unwrap().contains("follow=1"), "{state}: {}", seen[state]);
    }
    for (before, after) in [("beforeDouble", "doubled"), ("beforeHome", "homed"), ("beforeFollow", "followed")] {
        let (_, bb, _, tbb) = span(&seen[before]);
        let (_, ab, ta, tb) = span(&seen[after]);
        assert!(day(&tbb) < newest, "{before}: the drag left the newest bars: {tbb}");
        assert!(
            ab > bb && day(&tb) >= newest && (day(&tb) - newest).num_days() <= 31,
            "{after}: {ta} .. {tb}, newest {newest}"
        );
    }
}
