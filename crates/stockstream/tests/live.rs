//! Live feeds against local servers speaking their protocols
//! (`tests/interop/feed_server.py`: Yahoo's frames encoded by yfinance's
//! `pricing_pb2`, Finnhub's JSON): subscription, reconnects after a refused
//! upgrade, a closed socket and a stall, resubscription, bad frames kept with
//! their bytes and reason, and the stored bars equal to the windows of the
//! ticks yfinance's decoder reads in the same frames.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use stockstream_core::Tick;
use stockstream_window::{BarLength, Output, WindowConfig, Windows};

struct FeedServer {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl FeedServer {
    fn start(protocol: &str, dir: &Path) -> FeedServer {
        let (port_file, log) = (dir.join("port"), dir.join("feed.json"));
        let child = std::process::Command::new("python3")
            .arg(interop("feed_server.py"))
            .args([protocol, port_file.to_str().unwrap(), log.to_str().unwrap()])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        assert!(wait_until(Duration::from_secs(20), || port_file.exists()), "the feed server did not start");
        std::thread::sleep(Duration::from_millis(50));
        let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
        FeedServer { child, port, log }
    }

    fn log(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.log).unwrap_or_else(|_| "{}".into())).unwrap_or_default()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `stockstream run` on a live source until the feed server has played
/// every scene, then stops it with SIGINT; returns (stdout, stderr).
fn run_live(dir: &Path, server: &FeedServer, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let mut child = bin()
        .args(["run", "--bar", "1m", "--url", &url, "--feed-stall", "2", "--no-report", "--no-insights"])
        // No chart API here: nothing to backfill from.
        .args(["--backfill", "0"])
        // The feed replays ticks of 2024-01-02: older than the default week.
        .args(["--max-tick-age", "36500d"])
        .args(args)
        .env("STOCKSTREAM_LOG", "info")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Done once the client has read the last frames: what it read is handed
    // on at the stop, not dropped.
    let done = wait_until(Duration::from_secs(90), || server.log()["done"] == true);
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = wait_output(&mut child, Duration::from_secs(30));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(done, "the feed's scenes did not all play: {}\n{stderr}", server.log());
    assert!(out.status.success(), "the run did not stop cleanly on SIGINT: {stderr}\n{stdout}");
    (stdout, stderr)
}

fn wait_output(child: &mut Child, limit: Duration) -> std::process::Output {
    let ended = wait_until(limit, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
        panic!("the run did not stop within {limit:?} of SIGINT");
    }
    let mut out = std::process::Output { status: child.wait().unwrap(), stdout: Vec::new(), stderr: Vec::new() };
    use std::io::Read;
    child.stdout.take().unwrap().read_to_end(&mut out.stdout).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut out.stderr).unwrap();
    out
}

/// The 1-minute bars of the ticks the server sent, by the window stage
/// itself (checked against pandas in its own tests): (symbol, start, o, h, l, c, v).
fn expected_bars(good: &[Value]) -> Vec<(String, String, String, String, String, String, String)> {
    let config = WindowConfig { length: BarLength::Fixed(60_000), allowed_lateness_ms: 5_000, grace_ms: 60_000 };
    let mut windows = Windows::new(config);
    let mut out = Vec::new();
    let mut names: std::collections::HashMap<String, Arc<str>> = Default::default();
    for t in good {
        let symbol = t["symbol"].as_str().unwrap().to_string();
        let name = names.entry(symbol.clone()).or_insert_with(|| symbol.as_str().into()).clone();
        let day_volume = t.get("day_volume").and_then(Value::as_f64).filter(|v| *v > 0.0);
        let tick = Tick {
            symbol: name,
            time_ms: t["time"].as_i64().unwrap(),
            price: t["price"].as_f64().unwrap(),
            size: t["size"].as_f64().unwrap(),
            day_volume,
            trade_id: None,
            source: "reference".into(),
        };
        windows.push(&tick, &mut out);
    }
    windows.flush(&mut out);
    let mut bars: Vec<_> = out
        .iter()
        .map(Output::bar)
        .map(|b| {
            let start = chrono::DateTime::from_timestamp_millis(b.start_ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
            (b.symbol.to_string(), start.to_string(), b.open, b.high, b.low, b.close, b.volume)
        })
        .map(|(s, d, o, h, l, c, v)| (s, d, o.to_string(), h.to_string(), l.to_string(), c.to_string(), v.to_string()))
        .collect();
    bars.sort();
    bars.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    bars
}

fn stored_bars(db: &Path) -> Vec<(String, String, String, String, String, String, String)> {
    let mut bars: Vec<_> =
        rows(db, "SELECT symbol, date, open, high, low, close, volume FROM bars_1m ORDER BY symbol, date")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), num(&r[2]), num(&r[3]), num(&r[4]), num(&r[5]), num(&r[6])))
            .collect();
    bars.sort();
    bars
}

/// SQLite's `Real(481.5)` as Rust prints the number.
fn num(cell: &str) -> String {
    let inner = cell.trim_start_matches("Real(").trim_start_matches("Integer(").trim_end_matches(')');
    inner.parse::<f64>().unwrap().to_string()
}

fn check_rejects(db: &Path, log: &Value) {
    let kept = rows(db, "SELECT kind, original, reason FROM rejects ORDER BY id");
    let bad = log["bad"].as_array().unwrap();
    assert_eq!(kept.len(), bad.len(), "one reject per bad frame: {kept:?}");
    for (k, b) in kept.iter().zip(bad) {
        assert_eq!(k[0], b["kind"].as_str().unwrap(), "{k:?}");
        assert_eq!(k[1], b["frame"].as_str().unwrap(), "the frame's bytes are kept");
        assert!(!k[2].is_empty());
    }
}

#[test]
fn yahoo_streamer_subscribes_reconnects_and_its_ticks_become_the_right_bars() {
    let dir = tempfile::tempdir().unwrap();
    let server = FeedServer::start("yahoo", dir.path());
    let db = dir.path().join("live.db");
    let (_stdout, stderr) = run_live(
        dir.path(),
        &server,
        &["--source", "yahoo-live", "--symbols", "NVDA,TSLA", "--db", db.to_str().unwrap()],
        &[],
    );
    let log = server.log();
    let conns = log["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 4, "refused upgrade, closed socket, stall: three reconnects; {log}");
    assert_eq!(conns[0]["refused"], true);
    for c in &conns[1..] {
        let first = c["received"][0]["text"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(first).unwrap(), serde_json::json!({"subscribe": ["NVDA", "TSLA"]}));
    }
    // Subscribed again 15 s later on the connection that lived long enough.
    let last = &conns[3]["received"];
    let gap = last[1]["at"].as_f64().unwrap() - last[0]["at"].as_f64().unwrap();
    assert!((14.0..17.0).contains(&gap), "resubscribed after {gap:.1} s");
    assert_eq!(last[1]["text"], last[0]["text"]);
    for why in ["connection failed", "the server closed the connection", "no frame for 2 s"] {
        assert!(stderr.contains(why) && stderr.contains("reconnecting in"), "no reconnect log for {why:?}:\n{stderr}");
    }

    check_rejects(&db, &log);
    let good = log["good"].as_array().unwrap();
    assert_eq!(good.len(), 180);
    let expected = expected_bars(good);
    assert!(expected.len() >= 8, "{expected:?}");
    assert_eq!(stored_bars(&db), expected);
}

#[test]
fn finnhub_trades_need_a_token_that_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    // Without a token: a clear error, before connecting anywhere.
    let out = stockstream(dir.path(), &["run", "--source", "finnhub", "--bar", "1m", "--url", "ws://127.0.0.1:9/"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("STOCKSTREAM_FINNHUB_TOKEN"));

    let server = FeedServer::start("finnhub", dir.path());
    let db = dir.path().join("live.db");
    let token = "tok-7f3a9c";
    let args = ["--source", "finnhub", "--symbols", "AAPL,MSFT", "--db", db.to_str().unwrap()];
    let (stdout, stderr) = run_live(dir.path(), &server, &args, &[("STOCKSTREAM_FINNHUB_TOKEN", token)]);
    assert!(!stdout.contains(token) && !stderr.contains(token), "the token was printed:\n{stdout}\n{stderr}");
    let log = server.log();
    let conns = log["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2, "{log}");
    for c in conns {
        assert_eq!(c["path"], format!("/?token={token}"));
        let subs: Vec<Value> = c["received"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r["text"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(
            subs,
            [
                serde_json::json!({"type": "subscribe", "symbol": "AAPL"}),
                serde_json::json!({"type": "subscribe", "symbol": "MSFT"})
            ]
        );
    }
    assert!(stderr.contains("the server closed the connection"), "{stderr}");
    check_rejects(&db, &log);
    let good = log["good"].as_array().unwrap();
    assert_eq!(good.len(), 200);
    assert_eq!(stored_bars(&db), expected_bars(good));

    // The readers take the bar length: the 1-minute bars, not the (empty) daily table.
    let db = db.to_str().unwrap();
    let report = ok(dir.path(), &["report", "--interval", "1m", "--db", db, "--out", "r"]);
    assert!(report.contains("report.html"), "{report}");
    let html = std::fs::read_to_string(dir.path().join("r/report.html")).unwrap();
    assert!(html.contains("Apple") && html.contains("MSFT"), "the report shows the tick bars' companies");
    let csv = ok(dir.path(), &["query", "--company", "AAPL", "--interval", "1m", "--format", "csv", "--db", db]);
    assert_eq!(csv.lines().count(), 1 + stored_bars(Path::new(db)).iter().filter(|b| b.0 == "AAPL").count());
    let daily = stockstream(dir.path(), &["query", "--company", "AAPL", "--db", db]);
    assert!(!daily.status.success(), "no daily bars were stored");
}
