//! The live view on the distributed path: `produce` in one process, two
//! `consume` members in others, and two `serve --brokers` instances following
//! the topics in no group: each instance's clients get every bar (with its
//! indicators) and the alerts the members raised, as they stream.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{bin, wait_until, Tansu, TansuStorage};
use futures_util::StreamExt;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, args: &[&str], log: &str) -> Killed {
    Killed(
        bin()
            .args(args)
            .env("STOCKSTREAM_LOG", "info")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(log)).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Two `consume` members of group `g` over the SQLite file `db`, started.
fn two_members(dir: &Path, db: &str, kafka: &[&str]) -> [Killed; 2] {
    let member = |name: &str| {
        let mut args = vec!["consume", "--group", "g", "--db", db];
        args.extend(kafka);
        spawn(dir, &args, name)
    };
    let members = [member("m1.log"), member("m2.log")];
    assert!(wait_until(Duration::from_secs(60), || Path::new(db).exists()), "no member started");
    members
}

/// A `serve` over `db` following the topics, listening: it and its base URL.
fn serve_following(dir: &Path, db: &str, kafka: &[&str], log: &str) -> (Killed, String) {
    let bind = format!("127.0.0.1:{}", stockstream_testkit::free_port());
    let mut args = vec!["serve", "--bind", bind.as_str(), "--db", db];
    args.extend(kafka);
    let child = spawn(dir, &args, log);
    assert!(wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&bind).is_ok()), "{log}");
    (child, format!("http://{bind}"))
}

/// The JSON `url` answers.
fn get_json(runtime: &tokio::runtime::Runtime, url: &str) -> serde_json::Value {
    runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// Reads server-sent events until `until` of kind `bar` and at least one
/// alert came (the members' alerts follow their writes, which may come after
/// the last bar: the group may still be forming), or 60 s passed: (bar
/// events, alert events).
async fn events(stream: reqwest::Response, until: usize) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let (mut bars, mut alerts) = (Vec::new(), Vec::new());
    read_from(stream, Duration::from_secs(60), |kind, value| {
        match kind {
            "bar" => bars.push(value),
            "alert" => alerts.push(value),
            _ => {}
        }
        bars.len() < until || alerts.is_empty()
    })
    .await;
    (bars, alerts)
}

/// Hands each server-sent event of `base` (its kind and data) to `more`
/// until it answers false or `limit` passed.
async fn read_events(base: &str, limit: Duration, more: impl FnMut(&str, serde_json::Value) -> bool) {
    read_from(subscribe(base).await, limit, more).await
}

/// The server's event stream, subscribed: what the server hands on from now
/// reaches it.
async fn subscribe(base: &str) -> reqwest::Response {
    reqwest::get(format!("{base}/api/stream")).await.unwrap()
}

/// [`read_events`] over a stream already subscribed to.
async fn read_from(
    response: reqwest::Response,
    limit: Duration,
    mut more: impl FnMut(&str, serde_json::Value) -> bool,
) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await else { return };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(kind) = block.lines().find_map(|l| l.strip_prefix("event: ")) else { continue };
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            if !more(kind, serde_json::from_str(data).unwrap()) {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_instances_following_the_bus_stream_every_bar_and_the_members_alerts() {
    let broker = Tansu::start(TansuStorage::Memory);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = dir.join("shared.db");
    let db = db.to_str().unwrap();
    let kafka = ["--brokers", brokers.as_str(), "--topic", "follow"];
    let _members = two_members(dir, db, &kafka);

    let (_servers, bases): (Vec<_>, Vec<_>) =
        (0..2).map(|i| serve_following(dir, db, &kafka, &format!("serve{i}.log"))).unzip();
    // Each server follows the partitions from their ends as they were when
    // it started, and serves after that: a client subscribed now gets every
    // bar produced from now on.
    let mut watchers = Vec::new();
    for base in &bases {
        let stream = subscribe(base).await;
        watchers.push(tokio::spawn(events(stream, 504)));
    }

    // 2 symbols over 2024: 504 bars, at 250 a second.
    let mut produce = vec!["produce", "--symbols", "NVDA,TSLA", "--start", "2024-01-02", "--end", "2024-12-31"];
    produce.extend(["--rate", "250"]);
    produce.extend(kafka);
    let out = bin().args(&produce).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for (i, w) in watchers.into_iter().enumerate() {
        let (bars, alerts) = w.await.unwrap();
        let log = std::fs::read_to_string(dir.join(format!("serve{i}.log"))).unwrap();
        assert_eq!(bars.len(), 504, "serve {i} streamed {} bars:\n{log}", bars.len());
        let late = bars.iter().filter(|b| b["indicators"]["sma50"].is_number()).count();
        assert!(late > 300, "indicators computed as the bars stream: {late}");
        assert!(!alerts.is_empty(), "serve {i}: no alert from the members");
        assert!(alerts.iter().all(|a| a["rule"].is_string() && a["company"].is_string()));
    }
}

/// The dashboard on the distributed path, in headless Chromium: two `consume`
/// members and a `serve --brokers` following the topics, bars produced by
/// another process at a replay speed. The page's last candle and watchlist
/// move, an alert lands on the chart and in the feed (see
/// `check_live_dashboard`); screenshots `target/test-artifacts/distributed.png`
/// and `distributed-dark.png`. Then `serve` is restarted mid-stream: the new
/// instance shows every alert the first one streamed before it went.
#[test]
fn the_dashboard_is_live_on_the_distributed_path_and_a_restarted_serve_keeps_the_alerts() {
    let broker = Tansu::start(TansuStorage::Memory);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = dir.join("shared.db");
    let db = db.to_str().unwrap();
    let kafka = ["--brokers", brokers.as_str(), "--topic", "live"];
    let _members = two_members(dir, db, &kafka);
    let serve = |log: &str| serve_following(dir, db, &kafka, log);
    let (first, base) = serve("serve1.log");
    // The server resolves the topics' ends on its first fetch: let it happen.
    std::thread::sleep(Duration::from_secs(2));
    // Every alert the first instance streams, until it goes.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let streamed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sink, url) = (streamed.clone(), base.clone());
    runtime.spawn(async move {
        read_events(&url, Duration::from_secs(600), |kind, alert| {
            if kind == "alert" {
                sink.lock().unwrap().push(alert);
            }
            true
        })
        .await
    });

    // 2 symbols over 2024 (504 bars), 10 days of history a second: ~36 s.
    let mut produce = vec!["produce", "--symbols", "NVDA,TSLA", "--start", "2024-01-02", "--end", "2024-12-31"];
    produce.extend(["--speed", "864000x"]);
    produce.extend(kafka);
    let producer = spawn(dir, &produce, "produce.log");

    let seen = common::in_browser("dashboard.cjs", &format!("{base}/"), "distributed");
    common::check_live_dashboard(&seen, 2);

    // Restarted while bars still flow, past 50 bars of history (every
    // indicator defined): the alerts raised before are shown.
    let newest = format!("{base}/api/bars/NVIDIA?limit=1");
    let past_50_bars = wait_until(Duration::from_secs(30), || {
        let page = get_json(&runtime, &newest);
        page[0]["Date"].as_str().is_some_and(|d| d >= "2024-03-20")
    });
    assert!(past_50_bars, "the stream never reached March 2024");
    drop(first);
    let before = streamed.lock().unwrap().clone();
    let mut producer = producer;
    assert!(producer.0.try_wait().unwrap().is_none(), "the stream ended before the restart");
    let (_second, base) = serve("serve2.log");
    let (after, first_bars) = runtime.block_on(async {
        // Its first bars streamed carry indicators over the whole history
        // (warmed from the store), not over what streamed since it started.
        let mut first_bars = Vec::new();
        read_events(&base, Duration::from_secs(30), |kind, bar| {
            if kind == "bar" {
                first_bars.push(bar);
            }
            first_bars.len() < 2
        })
        .await;
        let after: Vec<serde_json::Value> =
            reqwest::get(format!("{base}/api/alerts?limit=1000")).await.unwrap().json().await.unwrap();
        (after, first_bars)
    });
    assert_eq!(first_bars.len(), 2, "the restarted serve streamed no bar");
    // Equal to the indicators over the store's whole history once the
    // consumers stored the bar: a gap between the store and the bus (bars
    // still in a consumer's batch when the server started) would differ.
    for bar in &first_bars {
        let ind = &bar["indicators"];
        let (company, date) = (ind["company"].as_str().unwrap(), ind["date"].as_str().unwrap());
        let url = format!("{base}/api/indicators/{company}?to={date}&limit=1");
        let mut stored = serde_json::Value::Null;
        let found = wait_until(Duration::from_secs(30), || {
            stored = get_json(&runtime, &url);
            stored[0]["date"] == ind["date"]
        });
        assert!(found, "{company} {date} never stored: {stored}");
        for key in ["sma50", "rsi14", "ema26", "macd_signal", "atr14"] {
            let (live, over_store) = (ind[key].as_f64(), stored[0][key].as_f64().unwrap());
            let live = live.unwrap_or_else(|| panic!("{key}: indicators without the history: {ind}"));
            // The stream's running sums and the page's differ in the last digits only.
            let close = (live - over_store).abs() <= 1e-9 * over_store.abs().max(1.0);
            assert!(close, "{key} of {company} {date} streamed: {ind}, over the store: {stored}");
        }
    }
    assert!(!before.is_empty(), "no alert streamed before the restart");
    let key = |a: &serde_json::Value| format!("{} {} {}", a["company"], a["date"], a["rule"]);
    let kept: std::collections::HashSet<_> = after.iter().map(key).collect();
    let lost: Vec<_> = before.iter().map(key).filter(|k| !kept.contains(k)).collect();
    assert!(lost.is_empty(), "the restarted serve lacks {} alerts: {lost:?}", lost.len());
    let shown = common::in_browser("dashboard.cjs", &format!("{base}/"), "distributed-restarted");
    assert!(shown["before"]["feed"].as_u64().unwrap() > 0, "the restarted dashboard shows no earlier alert");
}

/// `consume` and `serve --brokers` started together, as a deployment script
/// or a supervisor starts them: the server waits for the store its consumers
/// create, saying so, then serves.
#[test]
fn a_following_serve_started_before_its_store_waits_for_it() {
    let broker = Tansu::start(TansuStorage::Memory);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let kafka = ["--brokers", brokers.as_str(), "--topic", "early"];
    let bind = format!("127.0.0.1:{}", stockstream_testkit::free_port());
    let mut args = vec!["serve", "--bind", bind.as_str(), "--db", "early.db"];
    args.extend(kafka);
    let _server = spawn(dir, &args, "serve.log");
    let log = || std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(30), || log().contains("waiting for the store")), "{}", log());
    assert!(!dir.join("early.db").exists());

    let mut member = vec!["consume", "--group", "g", "--db", "early.db"];
    member.extend(kafka);
    let _member = spawn(dir, &member, "member.log");
    assert!(
        wait_until(Duration::from_secs(60), || std::net::TcpStream::connect(&bind).is_ok()),
        "the server never served once its store existed:\n{}",
        log()
    );
}
