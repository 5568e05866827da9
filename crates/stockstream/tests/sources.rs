//! yfinance CSV layouts and `fetch` against a local server that replays Yahoo
//! Finance chart-API replies (no test touches the network).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{ok, rows, stockstream, summary};

const DAY: i64 = 86_400;
/// 2024-06-07 13:30 UTC, a Friday's open in New York.
const T0: i64 = 1_717_767_000;

fn chart(symbol: &str, timestamps: &[i64], closes: &[Option<f64>], adj: &[Option<f64>], splits: &str) -> String {
    let series = |f: &dyn Fn(f64) -> f64| {
        closes
            .iter()
            .map(|c| c.map(|c| format!("{}", f(c))).unwrap_or_else(|| "null".into()))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"chart":{{"result":[{{"meta":{{"currency":"USD","symbol":"{symbol}","gmtoffset":-14400,"timezone":"EDT","exchangeTimezoneName":"America/New_York","dataGranularity":"1d"}},
        "timestamp":[{}],"events":{{"splits":{{{splits}}}}},
        "indicators":{{"quote":[{{"open":[{}],"high":[{}],"low":[{}],"close":[{}],"volume":[{}]}}],
        "adjclose":[{{"adjclose":[{}]}}]}}}}],"error":null}}}}"#,
        timestamps.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
        series(&|c| c - 1.0),
        series(&|c| c + 2.0),
        series(&|c| c - 2.0),
        series(&|c| c),
        series(&|_| 1000.0),
        adj.iter().map(|c| c.map(|c| c.to_string()).unwrap_or_else(|| "null".into())).collect::<Vec<_>>().join(","),
    )
}

/// Serves canned replies by symbol; a reply list is used in turn (the last one
/// repeats). Records each request's path and User-Agent.
struct Replay {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

fn replay(replies: HashMap<&'static str, Vec<(u16, String)>>) -> Replay {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut served: HashMap<String, usize> = HashMap::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut agent = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("user-agent:") {
                    agent = v.trim().to_string();
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push((path.clone(), agent));
            let symbol = path.split('?').next().unwrap().rsplit('/').next().unwrap().to_string();
            let (status, body) = match replies.get(symbol.as_str()) {
                Some(list) => {
                    let n = served.entry(symbol).or_default();
                    let reply = list[(*n).min(list.len() - 1)].clone();
                    *n += 1;
                    reply
                }
                None => (404, r#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#.to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Replay { port, seen }
}

fn yahoo() -> Replay {
    let nvda = chart(
        "NVDA",
        &[T0, T0 + 3 * DAY, T0 + 4 * DAY, T0 + 5 * DAY],
        // A null-filled bar, then the 10:1 split day.
        &[Some(1208.88), None, Some(121.79), Some(120.91)],
        &[Some(120.87), None, Some(121.77), Some(120.89)],
        &format!(
            r#""{}":{{"date":{},"numerator":10,"denominator":1,"splitRatio":"10:1"}}"#,
            T0 + 3 * DAY,
            T0 + 3 * DAY
        ),
    );
    let tsla = chart("TSLA", &[T0, T0 + 3 * DAY], &[Some(177.48), Some(173.79)], &[Some(177.48), Some(173.79)], "");
    replay(HashMap::from([
        ("NVDA", vec![(200, nvda)]),
        // Rate-limited once, then served.
        ("TSLA", vec![(429, "Too Many Requests".into()), (200, tsla)]),
    ]))
}

#[test]
fn fetch_writes_the_original_layout_and_retries_a_rate_limit() {
    let server = yahoo();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let out = ok(
        dir.path(),
        &[
            "fetch",
            "--symbols",
            "NVDA,TSLA",
            "--start",
            "2024-06-07",
            "--end",
            "2024-06-12",
            "--base-url",
            &base,
            "--out",
            "y.csv",
        ],
    );
    assert!(out.is_empty());
    let csv = std::fs::read_to_string(dir.path().join("y.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "Date,Open,High,Low,Close,Volume,Company Name",
            "2024-06-07,1207.88,1210.88,1206.88,1208.88,1000,NVIDIA",
            "2024-06-11,120.79,123.79,119.79,121.79,1000,NVIDIA",
            "2024-06-12,119.91,122.91,118.91,120.91,1000,NVIDIA",
            "2024-06-07,176.48,179.48,175.48,177.48,1000,Tesla",
            "2024-06-10,172.79,175.79,171.79,173.79,1000,Tesla",
        ],
        "the null-filled bar is left out; dates are New York's"
    );
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|(p, _)| p.contains("/TSLA")).count(), 2, "the 429 was retried");
    assert!(seen.iter().all(|(p, agent)| p.starts_with("/v8/finance/chart/") && agent.contains("stockstream")));
    assert!(seen[0].0.contains("interval=1d") && seen[0].0.contains("period1=1717718400"), "{}", seen[0].0);

    // What fetch wrote, run reads.
    let stored = ok(dir.path(), &["run", "--input", "y.csv", "--no-insights"]);
    assert_eq!(summary(&stored, "stored"), 5, "{stored}");
}

#[test]
fn fetch_adjusted_scales_the_bar() {
    let server = yahoo();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let csv = ok(dir.path(), &["fetch", "--symbols", "NVDA", "--adjusted", "--base-url", &base]);
    let first: Vec<f64> = csv.lines().nth(1).unwrap().split(',').skip(1).take(4).map(|v| v.parse().unwrap()).collect();
    let factor = 120.87 / 1208.88;
    assert!((first[3] - 120.87).abs() < 1e-9 && (first[0] - 1207.88 * factor).abs() < 1e-9, "{first:?}");
}

#[test]
fn unknown_symbols_and_no_network_fail_clearly() {
    let server = yahoo();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let out = stockstream(dir.path(), &["fetch", "--symbols", "NVDA,NOPE", "--base-url", &base, "--out", "n.csv"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Yahoo Finance has no data for symbol NOPE: Not Found: No data found, symbol may be delisted"),
        "{err}"
    );
    assert!(!dir.path().join("n.csv").exists(), "no half-written file");

    let closed = format!("http://127.0.0.1:{}", stockstream_testkit::free_port());
    let out = stockstream(dir.path(), &["fetch", "--symbols", "NVDA", "--base-url", &closed]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot reach Yahoo Finance at {closed}")), "{err}");
}

#[test]
fn run_streams_straight_from_yahoo() {
    let server = yahoo();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let out = ok(
        dir.path(),
        &[
            "run",
            "--source",
            "yahoo",
            "--symbols",
            "NVDA,TSLA",
            "--start",
            "2024-06-07",
            "--end",
            "2024-06-12",
            "--base-url",
            &base,
        ],
    );
    assert_eq!(summary(&out, "stored"), 5, "{out}");
    assert!(out.contains("source     Yahoo Finance (2 symbols"), "{out}");
}

#[test]
fn yfinance_files_are_read_by_their_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nvda.csv"),
        "Date,Open,High,Low,Close,Adj Close,Volume\n\
         2023-04-03 00:00:00-04:00,270.2,276.0,268.1,274.5,274.1,41234500\n\
         2023-04-04 00:00:00-04:00,274.0,275.0,270.0,273.0,272.6,31234500\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wide.csv"),
        "Price,Close,Close,High,High,Low,Low,Open,Open,Volume,Volume\n\
         Ticker,AAPL,BRK-B,AAPL,BRK-B,AAPL,BRK-B,AAPL,BRK-B,AAPL,BRK-B\n\
         Date,,,,,,,,,,\n\
         2023-04-03,166.2,310.5,166.3,311,164.5,308,164.8,309,56976200,3000000\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["run", "--input", "nvda.csv", "--no-insights"]);
    assert_eq!(summary(&out, "stored"), 2, "{out}");
    let db = dir.path().join("stockstream.db");
    assert_eq!(rows(&db, "SELECT company, symbol, date FROM bars ORDER BY date")[0], ["NVIDIA", "NVDA", "2023-04-03"]);

    // The company table grows by configuration.
    std::fs::write(
        dir.path().join("stockstream.toml"),
        "companies = [\"BRK-B=Berkshire Hathaway\"]\ndb = \"wide.db\"\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["run", "--input", "wide.csv", "--no-insights"]);
    assert_eq!(summary(&out, "stored"), 2, "{out}");
    let companies = rows(&dir.path().join("wide.db"), "SELECT company, symbol FROM bars ORDER BY company");
    assert_eq!(companies, [["Apple", "AAPL"], ["Berkshire Hathaway", "BRK-B"]]);
}

/// Runs a copy of the binary as the unprivileged user `nobody` (the test runs
/// as root, who may read anything) from `cwd`.
fn as_nobody(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("stockstream");
    std::fs::copy(env!("CARGO_BIN_EXE_stockstream"), &bin).unwrap();
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("STOCKSTREAM_CONFIG")
        .output()
        .expect("setpriv (util-linux) runs the binary as nobody")
}

#[test]
fn a_config_file_is_optional_but_an_unreadable_one_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    // A working directory `nobody` cannot search: no file can be there for it.
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = as_nobody(closed.path(), &["generate", "--rows", "3", "--symbols", "NVDA"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);

    // A file that is there but cannot be read is an error naming it.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = open.path().join("stockstream.toml");
    std::fs::write(&config, "batch-size = 10\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(open.path(), &["generate", "--rows", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stockstream.toml") && stderr.contains("Permission denied"), "{stderr}");
}

#[test]
fn a_mistyped_key_in_the_config_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stockstream.toml"), "batch-sise = 500\n").unwrap();
    let out = stockstream(dir.path(), &["run", "--no-report"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"batch-sise\"") && stderr.contains("stockstream.toml"), "{stderr}");
    assert!(!dir.path().join("stockstream.db").exists(), "nothing ran");
}

/// A database the user may only read, in a directory it cannot write, is read;
/// one it may not read at all is an error naming the file.
#[test]
fn a_read_only_database_is_read_and_an_unreadable_one_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--no-report", "--no-insights", "--db", "ro.db", "--symbols", "NVDA,TSLA"]);
    let db = dir.path().join("ro.db");
    assert!(!dir.path().join("ro.db-shm").exists(), "a clean stop leaves no shared-memory file");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = as_nobody(dir.path(), &["query", "--db", "ro.db", "--company", "NVIDIA", "--from", "2025-04-14"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("NVIDIA") && stdout.contains("(2 bars)"), "{stdout}");
    assert!(!dir.path().join("ro.db-shm").exists(), "nothing was written beside it");

    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(dir.path(), &["query", "--db", "ro.db", "--company", "NVIDIA"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ro.db") && stderr.contains("unable to open"), "{stderr}");
}

/// Every number from the server is checked: a `gmtoffset` no time zone has
/// fails the fetch with a message (it panicked, exit 101), and an adjusted
/// close that is missing or zero refuses its row (`bad_adjclose`) instead of
/// leaving it unadjusted between adjusted ones, or writing an all-zero bar.
#[test]
fn a_hostile_chart_answer_is_refused_not_believed() {
    let days = [T0, T0 + 3 * DAY, T0 + 4 * DAY, T0 + 5 * DAY];
    let closes = [Some(10.0), Some(11.5), Some(12.0), Some(13.0)];
    let odd = chart("NVDA", &days, &closes, &[Some(5.0), None, Some(6.0), Some(0.0)], "");
    let zone = chart("TSLA", &days[..1], &closes[..1], &closes[..1], "").replace("-14400", "9223372036854775807");
    let server = replay(HashMap::from([("NVDA", vec![(200, odd)]), ("TSLA", vec![(200, zone)])]));
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);

    let out = stockstream(dir.path(), &["fetch", "--symbols", "TSLA", "--base-url", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gmtoffset 9223372036854775807"));

    let out = stockstream(dir.path(), &["fetch", "--symbols", "NVDA", "--adjusted", "--base-url", &base]);
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    let closes: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(4).unwrap()).collect();
    assert_eq!(closes, ["5", "6"], "only the rows with a positive adjusted close: {csv}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("refused (bad_adjclose)").count(), 2, "{err}");

    // Streamed by `run`, the refused rows are kept in the dead letters.
    let out = ok(dir.path(), &["run", "--source", "yahoo", "--symbols", "NVDA", "--adjusted", "--base-url", &base]);
    assert_eq!(summary(&out, "rejected"), 2, "{out}");
    let kinds = rows(&dir.path().join("stockstream.db"), "SELECT kind FROM rejects");
    assert_eq!(kinds, [["bad_adjclose"], ["bad_adjclose"]]);
}
