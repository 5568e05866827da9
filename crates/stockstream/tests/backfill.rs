//! A live session's history and gaps, against a local market
//! (`tests/interop/market_server.py`): Yahoo's chart API and Yahoo's
//! streamer (frames of yfinance's `pricing_pb2`) on one port, both drawing
//! on one stream of true ticks per symbol at wall-clock time. A feed is run,
//! stopped, kept down, restarted, cut off, and run again; every closed
//! minute stored must then equal the true ticks' minute: OHLC always;
//! volume, VWAP and trades where the live feed saw the whole minute (the
//! minutes stored with a trade count); none missing, none twice.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The local market, killed when dropped.
struct Market {
    child: Child,
    port: u16,
}

impl Market {
    fn start(dir: &Path) -> Market {
        let port_file = dir.join("market.port");
        let child = std::process::Command::new("python3")
            .arg(interop("market_server.py"))
            .arg(&port_file)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        assert!(wait_until(Duration::from_secs(30), || port_file.exists()), "the market server did not start");
        let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
        Market { child, port }
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// GET `path`: the JSON answered (status 200 expected).
    fn get(&self, path: &str) -> Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: market\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        serde_json::from_str(body).unwrap()
    }

    /// The reference minutes of `symbol` starting in `[from, to)` (ms), by start.
    fn minutes(&self, symbol: &str, from: i64, to: i64) -> BTreeMap<i64, Vec<f64>> {
        let got = self.get(&format!("/control/minutes?symbol={symbol}&from={from}&to={to}"));
        got.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let m: Vec<f64> = m.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                (m[0] as i64, m[1..].to_vec())
            })
            .collect()
    }
}

impl Drop for Market {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Starts `stockstream ARGS` in `dir`, its log (info) in `log`.
fn spawn(dir: &Path, args: &[&str], log: &str) -> Child {
    bin()
        .args(args)
        .env("STOCKSTREAM_LOG", "info")
        .current_dir(dir)
        .stdout(std::fs::File::create(dir.join(format!("{log}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// SIGINT, then a clean exit within 60 s.
fn interrupt(mut child: Child, dir: &Path, log: &str) {
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let ended = wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
    assert!(ended && status.success(), "{log}: {status:?}\n{text}");
}

/// Keeps the logs of `dir` among the test artifacts (`target/test-artifacts/NAME/`).
fn keep_logs(dir: &Path, name: &str) {
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&kept);
    std::fs::create_dir_all(&kept).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log" || e == "out") {
            std::fs::copy(&path, kept.join(entry.file_name())).unwrap();
        }
    }
}

fn log_text(dir: &Path, log: &str) -> String {
    std::fs::read_to_string(dir.join(log)).unwrap_or_default()
}

/// The stored 1-minute bars of `company`, by start: open, high, low, close,
/// volume, vwap (NaN when null), trades (-1 when null).
fn stored(db: &Path, table: &str, company: &str) -> BTreeMap<i64, Vec<f64>> {
    let sql = format!(
        "SELECT date, open, high, low, close, volume, COALESCE(vwap, 'nan'), COALESCE(trades, -1) FROM {table} \
         WHERE company = '{company}' ORDER BY date"
    );
    let mut out = BTreeMap::new();
    for r in rows(db, &sql) {
        let at = chrono::DateTime::parse_from_rfc3339(&r[0]).unwrap().timestamp_millis();
        let num = |s: &str| -> f64 {
            let inner = s.trim_start_matches("Real(").trim_start_matches("Integer(").trim_end_matches(')');
            inner.parse().unwrap_or(f64::NAN)
        };
        let values: Vec<f64> = r[1..].iter().map(|s| num(s)).collect();
        assert!(out.insert(at, values).is_none(), "{company} {} stored twice", r[0]);
    }
    out
}

/// Every reference minute in `[from, to)` is stored and equal; no other
/// minute is stored there. Returns the minutes the live feed made whole.
fn check_minutes(market: &Market, db: &Path, table: &str, symbol: &str, company: &str, from: i64, to: i64) -> usize {
    let expected = market.minutes(symbol, from, to);
    assert!(expected.len() as i64 >= (to - from) / 60_000 - 1, "the market has a minute of every minute");
    let stored: BTreeMap<i64, Vec<f64>> =
        stored(db, table, company).into_iter().filter(|(at, _)| *at >= from && *at < to).collect();
    let missing: Vec<String> = expected.keys().filter(|k| !stored.contains_key(k)).map(|k| text(*k)).collect();
    assert!(missing.is_empty(), "{symbol}: minutes missing: {missing:?}");
    let extra: Vec<String> = stored.keys().filter(|k| !expected.contains_key(k)).map(|k| text(*k)).collect();
    assert!(extra.is_empty(), "{symbol}: minutes stored that the market does not have: {extra:?}");
    let mut whole = 0;
    for (at, want) in &expected {
        let got = &stored[at];
        assert_eq!(got[..4], want[..4], "{symbol} {}: OHLC stored {got:?}, true {want:?}", text(*at));
        if got[6] >= 0.0 {
            // Made live: the feed saw the whole minute, so all of it is exact.
            whole += 1;
            assert_eq!(got[4], want[4], "{symbol} {}: volume stored {got:?}, true {want:?}", text(*at));
            assert_eq!(got[6], want[6], "{symbol} {}: trades stored {got:?}, true {want:?}", text(*at));
            assert!((got[5] / want[5] - 1.0).abs() < 1e-9, "{symbol} {}: VWAP {got:?}, true {want:?}", text(*at));
        } else {
            // Fetched: the chart API's minute, whose volume is the true one.
            assert_eq!(got[4], want[4], "{symbol} {}: fetched volume {got:?}, true {want:?}", text(*at));
        }
    }
    whole
}

fn text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%H:%M").to_string()
}

/// Waits until the market has seen `n` connections in all.
fn wait_connections(market: &Market, n: u64, limit: Duration) {
    let ok = wait_until_every(limit, Duration::from_millis(250), || {
        market.get("/control/log")["connections"].as_u64() >= Some(n)
    });
    assert!(ok, "the feed did not connect again: {}", market.get("/control/log"));
}

/// The scenario of a feed's life: `start(n)` starts the n-th producing
/// process, `stop` stops it. A minute running, stopped, over a minute down,
/// restarted, 20 s, its socket cut for over a minute, reconnected, two
/// minutes and a half more. Returns when the history began and when the minutes
/// compared end.
fn feed_life(market: &Market, mut start: impl FnMut(u32) -> Child, mut stop: impl FnMut(Child, u32)) -> (i64, i64) {
    let began = now_ms();
    let first = start(1);
    std::thread::sleep(Duration::from_secs(60));
    stop(first, 1);
    std::thread::sleep(Duration::from_secs(65));
    let connections = market.get("/control/log")["connections"].as_u64().unwrap();
    let second = start(2);
    wait_connections(market, connections + 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(20));
    market.get("/control/outage?seconds=65");
    wait_connections(market, connections + 2, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(150));
    let ended = now_ms();
    stop(second, 2);
    // The minutes compared: from the history's start to those closed (and
    // their gap fetched) a while before the stop.
    (began - 2 * 3_600_000, ended - 20_000 - ended % 60_000)
}

#[test]
fn history_restarts_and_outages_leave_every_minute_whole() {
    let dir = tempfile::tempdir().unwrap();
    let market = Market::start(dir.path());
    let (http, ws) = (market.http(), market.ws());
    let args = [
        "run",
        "--source",
        "yahoo-live",
        "--symbols",
        "NVDA,TSLA",
        "--bar",
        "1m",
        "--backfill",
        "2h",
        "--base-url",
        &http,
        "--url",
        &ws,
        "--feed-stall",
        "5",
        "--db",
        "live.db",
        "--no-report",
        "--no-insights",
    ];
    let d = dir.path();
    let (from, to) = feed_life(
        &market,
        |n| spawn(d, &args, &format!("run{n}.log")),
        |child, n| interrupt(child, d, &format!("run{n}.log")),
    );
    keep_logs(d, "backfill-run");
    let db = dir.path().join("live.db");
    for (symbol, company) in [("NVDA", "NVIDIA"), ("TSLA", "Tesla")] {
        let whole = check_minutes(&market, &db, "bars_1m", symbol, company, from, to);
        eprintln!("{symbol}: {} minutes compared, {whole} of them made whole by the live feed", (to - from) / 60_000);
        assert!(whole >= 1, "the live feed made no whole minute of {symbol}");
    }
    assert_eq!(count(&db, "rejects"), 0, "{:?}", rows(&db, "SELECT kind, reason FROM rejects LIMIT 5"));
    let (first, second) = (log_text(d, "run1.log"), log_text(d, "run2.log"));
    for symbol in ["NVDA", "TSLA"] {
        let filled = |l: &&str| l.contains("backfilled") && l.contains(&format!(" of {symbol} "));
        assert!(first.lines().any(|l| filled(&l)), "run 1 backfilled no {symbol}:\n{first}");
        // The restart's history, the first minute of its connection, the outage's gap.
        let lines = second.lines().filter(filled).count();
        assert!(lines >= 3, "run 2 filled {lines} gaps of {symbol}:\n{second}");
    }
    let asked = market.get("/control/log");
    assert!(
        asked["chart"].as_array().unwrap().iter().all(|c| c["interval"] == "1m" && c["prepost"] == "true"),
        "{asked}"
    );
}

#[test]
fn through_kafka_a_restarted_producer_fills_its_gap() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let market = Market::start(d);
    let (http, ws) = (market.http(), market.ws());
    let produce = [
        "produce",
        "--source",
        "yahoo-live",
        "--symbols",
        "NVDA,TSLA",
        "--bar",
        "1m",
        "--backfill",
        "2h",
        "--base-url",
        &http,
        "--url",
        &ws,
        "--feed-stall",
        "5",
        "--brokers",
        &brokers,
        "--topic",
        "market",
    ];
    let consume =
        ["consume", "--brokers", &brokers, "--topic", "market", "--group", "g", "--bar", "1m", "--db", "k.db"];
    let consumer = spawn(d, &consume, "consume.log");
    let (from, to) = feed_life(
        &market,
        |n| spawn(d, &produce, &format!("produce{n}.log")),
        |child, n| interrupt(child, d, &format!("produce{n}.log")),
    );
    // The consumer stores what was produced, then stops.
    let db = d.join("k.db");
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_secs(1));
    }
    interrupt(consumer, d, "consume.log");
    keep_logs(d, "backfill-kafka");
    for (symbol, company) in [("NVDA", "NVIDIA"), ("TSLA", "Tesla")] {
        let whole = check_minutes(&market, &db, "bars_1m", symbol, company, from, to);
        eprintln!("through Kafka, {symbol}: {whole} minutes made whole by the live feed");
        assert!(whole >= 1, "the live feed made no whole minute of {symbol}");
    }
    let second = log_text(d, "produce2.log");
    assert!(
        second.contains("backfilled") && second.contains(" of NVDA "),
        "the restarted producer backfilled nothing:\n{second}"
    );
}

/// `--bar 1s`: the history is fetched as minutes into the `1m` table (said
/// in the log), while the chart API fails at first (retried with backoff,
/// the ticks going on meanwhile); the connection's first minute is fetched
/// once closed.
#[test]
fn second_bars_backfill_minutes_and_ride_out_a_failing_chart_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let market = Market::start(d);
    market.get("/control/fail?count=3");
    let (http, ws) = (market.http(), market.ws());
    let began = now_ms();
    let args = [
        "run",
        "--source",
        "yahoo-live",
        "--symbols",
        "NVDA",
        "--bar",
        "1s",
        "--backfill",
        "10m",
        "--base-url",
        &http,
        "--url",
        &ws,
        "--db",
        "s.db",
        "--no-report",
        "--no-insights",
    ];
    let run = spawn(d, &args, "run.log");
    // Past the end of the first minute of the connection, and its fetch.
    let first_minute_end = began - began % 60_000 + 60_000;
    let db = d.join("s.db");
    // The live bars counted as they are written (the table may not exist yet).
    let live_bars = || {
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM bars_1s", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    let fetched = wait_until_every(Duration::from_secs(150), Duration::from_secs(1), || {
        let log = log_text(d, "run.log");
        now_ms() > first_minute_end + 15_000
            && log.lines().filter(|l| l.contains("backfilled") && l.contains(" of NVDA ")).count() >= 2
            && live_bars() >= 30
    });
    interrupt(run, d, "run.log");
    let log = log_text(d, "run.log");
    assert!(fetched, "the history and the first minute were not both fetched:\n{log}");
    assert!(log.contains("1s bars are backfilled as 1m bars, into the 1m table"), "{log}");
    assert!(log.contains("retried in"), "the failures were not retried:\n{log}");
    assert!(count(&db, "bars_1s") >= 30, "the live 1s bars go on");
    let whole = check_minutes(&market, &db, "bars_1m", "NVDA", "NVIDIA", began - 600_000, first_minute_end);
    assert_eq!(whole, 0, "minutes in the 1m table are fetched ones");
}

/// The dashboard of a live feed with history: candles at the first paint,
/// the VWAP line, 5m candles and a moving 5m forming candle. Screenshots in
/// `target/test-artifacts/session.png` and `session-5m.png`.
#[test]
fn the_dashboard_opens_on_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let market = Market::start(d);
    let (http, ws) = (market.http(), market.ws());
    let server = start(
        d,
        &[
            "run",
            "--serve",
            "--source",
            "yahoo-live",
            "--symbols",
            "NVDA,TSLA",
            "--bar",
            "1m",
            "--backfill",
            "2h",
            "--base-url",
            &http,
            "--url",
            &ws,
            "--no-report",
            "--no-insights",
        ],
    );
    // The connection's first minute, fetched whole once it closed, reaches
    // live views as an `earlier` event (the page puts it in its place).
    let addr = server.base.trim_start_matches("http://").to_string();
    let earlier = {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        std::thread::spawn(move || {
            write!(stream, "GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let (mut seen, mut buf, began) = (String::new(), vec![0u8; 65536], Instant::now());
            while began.elapsed() < Duration::from_secs(120) {
                if let Ok(n) = stream.read(&mut buf) {
                    seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if seen.contains("event: earlier") {
                        return true;
                    }
                    if seen.len() > 1 << 20 {
                        seen.drain(..1 << 19);
                    }
                }
            }
            false
        })
    };
    // The page is opened once the history is stored, as a trader would open
    // it a moment after the start: its first paint must show it.
    let stored = wait_until_every(Duration::from_secs(60), Duration::from_millis(500), || {
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else { return false };
        let _ = write!(s, "GET /api/bars/NVIDIA?limit=500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.matches("\"Date\"").count() >= 100
    });
    assert!(stored, "the history was not stored within 60 s");
    let seen = in_browser("session.cjs", &format!("{}/?company=NVIDIA", server.base), "session");
    let first = &seen["first"];
    eprintln!("first paint: {first}\n5m: {}", seen["fiveMinutes"]);
    assert!(first["candles"].as_u64().unwrap() >= 100, "history at the first paint: {first}");
    assert!(seen["vwap"].as_u64().unwrap() >= 1, "no VWAP line: {seen}");
    // Times in New York time by default, named on the axis; UTC when picked.
    let (exchange, utc) = (&seen["exchange"], &seen["utc"]);
    assert_eq!(exchange["title"], "New York time", "{exchange}");
    assert_eq!(utc["title"], "UTC", "{utc}");
    assert!(utc["url"].as_str().unwrap().contains("tz=utc"), "{utc}");
    for z in [exchange, utc] {
        let newest = chrono::DateTime::parse_from_rfc3339(z["newest"].as_str().unwrap()).unwrap().timestamp_millis();
        let (last, shown) = (z["last"].as_str().unwrap(), newest);
        let wall = if z == exchange {
            let day = stockstream_core::calendar::NewYorkDay::of(shown).unwrap();
            let minutes = (shown - day.midnight) / 60_000;
            format!("{} {:02}:{:02}", day.date, minutes / 60, minutes % 60)
        } else {
            chrono::DateTime::from_timestamp_millis(shown).unwrap().format("%Y-%m-%d %H:%M").to_string()
        };
        assert_eq!(&last[..16], wall, "the newest candle drawn at {last}, stored at {}", z["newest"]);
    }
    assert!(seen["after"]["url"].as_str().unwrap().contains("interval=5m"), "{seen}");
    let five = &seen["fiveMinutes"];
    assert!(five["candles"].as_u64().unwrap() >= 20, "5m candles: {five}");
    // Candles five minutes apart.
    let times: Vec<i64> = seen["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            chrono::NaiveDateTime::parse_from_str(&t[..16], "%Y-%m-%d %H:%M").unwrap().and_utc().timestamp_millis()
        })
        .collect();
    assert!(times.windows(2).all(|w| (w[1] - w[0]) % 300_000 == 0 && w[1] > w[0]), "{times:?}");
    let samples: std::collections::BTreeSet<String> =
        seen["samples"].as_array().unwrap().iter().map(|s| s.to_string()).collect();
    assert!(samples.len() >= 3, "the 5m forming candle did not move: {samples:?}");
    let log = std::fs::read_to_string(d.join("server.log")).unwrap_or_default();
    assert!(earlier.join().unwrap(), "no earlier event within 120 s of the start:\n{log}");
    drop(server);
}

/// Synthetic ticks make their history with their own model: `--backfill 30m`
/// stores every minute of the half hour before the start, made of ticks
/// (with their trade counts), before the live ones; nothing is refused.
#[test]
fn synthetic_ticks_make_their_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let began = now_ms();
    let args = [
        "run",
        "--source",
        "synthetic-ticks",
        "--symbols",
        "NVDA,TSLA",
        "--bar",
        "1m",
        "--backfill",
        "30m",
        "--tick-rate",
        "20",
        "--db",
        "syn.db",
        "--no-report",
        "--no-insights",
    ];
    let run = spawn(d, &args, "run.log");
    std::thread::sleep(Duration::from_secs(8));
    interrupt(run, d, "run.log");
    let db = d.join("syn.db");
    let (first, last) = (began - 30 * 60_000, began - began % 60_000);
    for company in ["NVIDIA", "Tesla"] {
        let bars = stored(&db, "bars_1m", company);
        let missing: Vec<String> = (first - first % 60_000 + 60_000..last)
            .step_by(60_000)
            .filter(|m| !bars.contains_key(m))
            .map(text)
            .collect();
        assert!(missing.is_empty(), "{company}: minutes of history missing: {missing:?}");
        let made = bars.range(first..last).filter(|(_, b)| b[6] >= 100.0).count();
        assert!(made >= 29, "{company}: {made} minutes of history made of 100 ticks or more: {bars:?}");
    }
    assert_eq!(count(&db, "rejects"), 0, "{:?}", rows(&db, "SELECT kind, reason FROM rejects LIMIT 5"));
}
