//! Helpers shared by the integration tests: run the real binary, read its
//! summary, read the SQLite store.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use stockstream_testkit::{python, DynamoLocal, Tansu, TansuStorage};

/// A `run` of two companies over the first half of 2024, stored without a
/// report or insights: the data of the API's and the stores' tests.
pub const HALF_YEAR_OF_TWO: [&str; 9] =
    ["run", "--symbols", "NVDA,TSLA", "--start", "2024-01-02", "--end", "2024-06-28", "--no-report", "--no-insights"];

pub fn interop(script: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(script)
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stockstream"));
    c.env_remove("STOCKSTREAM_CONFIG").env("STOCKSTREAM_LOG", "warn");
    c
}

pub fn stockstream(dir: &Path, args: &[&str]) -> Output {
    bin().args(args).current_dir(dir).output().expect("the stockstream binary runs")
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = stockstream(dir, args);
    assert!(
        out.status.success(),
        "stockstream {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A number from the summary line `name   value`.
pub fn summary(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {name:?} in summary:\n{stdout}"))
}

pub fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

pub fn count(db: &Path, table: &str) -> u64 {
    rows(db, &format!("SELECT COUNT(*) FROM {table}"))[0][0]
        .trim_start_matches("Integer(")
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// Asserts that a table's catalog is its bars' exactly: per company the
/// count, first and last dates and the last bar's close; as many companies.
pub fn catalog_is_exact(db: &Path, table: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let query = format!(
        "SELECT b.company || ': bars ' || b.n || ' ' || b.f || '..' || b.l || ' close ' || last.close
                || ', catalog ' || IFNULL(c.bars || ' ' || c.first || '..' || c.last || ' close ' || c.close, 'none')
         FROM (SELECT company, COUNT(*) n, MIN(date) f, MAX(date) l FROM {table} GROUP BY company) b
         JOIN {table} last ON last.company = b.company AND last.date = b.l
         LEFT JOIN {table}_catalog c ON c.company = b.company
         WHERE c.company IS NULL OR c.bars != b.n OR c.first != b.f OR c.last != b.l OR c.close != last.close"
    );
    let wrong: Vec<String> =
        conn.prepare(&query).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(wrong.is_empty(), "{table}: catalog entries that are not their bars':\n{}", wrong.join("\n"));
    let companies: i64 =
        conn.query_row(&format!("SELECT COUNT(DISTINCT company) FROM {table}"), [], |r| r.get(0)).unwrap();
    let entries: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}_catalog"), [], |r| r.get(0)).unwrap();
    assert!(companies > 0, "no bars in {table}");
    assert_eq!(entries, companies, "{table}: catalog entries of companies without bars");
}

/// Bars stored so far, of every interval (`bars`, `bars_1m`, ...), while a
/// process is still starting: 0 until the file and its schema exist.
pub fn stored_so_far(db: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open(db) else { return 0 };
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name = 'bars' OR name LIKE 'bars\\_%' ESCAPE '\\')
             AND name NOT LIKE '%\\_catalog' ESCAPE '\\'",
        )
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    tables
        .iter()
        .filter_map(|t| conn.query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get::<_, i64>(0)).ok())
        .map(|n| n as u64)
        .sum()
}

/// Polls `done` until it holds; false when `limit` passed first.
pub fn wait_until(limit: Duration, done: impl FnMut() -> bool) -> bool {
    wait_until_every(limit, Duration::from_millis(50), done)
}

/// `wait_until` for a costly check (a table scan): polled every `interval` so
/// that the check does not take the cores the system under test needs.
pub fn wait_until_every(limit: Duration, interval: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(interval);
    }
    true
}

/// A finished child's exit code (`None` when a signal ended it) and its peak
/// resident memory, from the kernel's own accounting (`wait4`).
pub fn wait_with_peak_rss(child: std::process::Child) -> (Option<i32>, u64) {
    let pid = child.id() as libc::pid_t;
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: `pid` is our own child, reaped once here; the out-pointers live on this frame.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, usage.ru_maxrss as u64 * 1024)
}

/// A memory figure of a running process from `/proc/PID/status`, in kB:
/// `VmRSS` (resident now) or `VmHWM` (peak resident).
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let value = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).unwrap();
    value.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Runs a page script of `tests/browser` in headless Chromium at `url`: what
/// it saw, after checking that the page logged no error and asked no other
/// host for anything. Its screenshot is kept as
/// `target/test-artifacts/<name>.png`.
pub fn in_browser(script: &str, url: &str, name: &str) -> serde_json::Value {
    in_browser_with(script, url, name, &[])
}

/// [`in_browser`], the script given these environment variables.
pub fn in_browser_with(script: &str, url: &str, name: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let playwright = stockstream_testkit::tools_dir().join("browser/node_modules/playwright-core");
    assert!(playwright.is_dir(), "playwright-core is not installed at {}: run scripts/setup.sh", playwright.display());
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser").join(script))
        .args([url, shot.to_str().unwrap()])
        .env("PLAYWRIGHT_CORE", &playwright)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["errors"], serde_json::json!([]), "console errors");
    assert_eq!(seen["external"], serde_json::json!([]), "requests to other hosts");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "screenshot kept");
    seen
}

/// A `stockstream serve`-like command listening on a free loopback port,
/// killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stockstream ARGS --bind …` in `dir` (its log in `server.log`) and
/// waits until it listens.
pub fn start(dir: &Path, args: &[&str]) -> Server {
    start_at(dir, args, &format!("127.0.0.1:{}", stockstream_testkit::free_port()))
}

/// [`start`] on the address `bind` (a server started again where it was).
pub fn start_at(dir: &Path, args: &[&str], bind: &str) -> Server {
    let bind = bind.to_string();
    let child = bin()
        .args(args)
        .args(["--bind", &bind])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&bind).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server did not listen: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base: format!("http://{bind}") }
}

/// What a live dashboard must show (see `tests/browser/dashboard.cjs`).
pub fn check_live_dashboard(seen: &serde_json::Value, companies: u64) {
    let (before, after) = (&seen["before"], &seen["after"]);
    assert_eq!(after["rows"], companies, "a watchlist row per company: {after}");
    assert_eq!(after["sparklines"], companies, "a sparkline per company: {after}");
    assert_ne!(before["lastCandle"], after["lastCandle"], "the last candle did not move");
    assert_ne!(before["watchlist"], after["watchlist"], "the watchlist did not change");
    assert!(after["markers"].as_u64().unwrap() > 0, "no alert on the chart: {after}");
    assert!(after["feed"].as_u64().unwrap() > 0, "no alert in the feed: {after}");
    assert!(after["status"].as_str().unwrap().starts_with("live"), "{}", after["status"]);
    // The crosshair in the middle of the chart: the legend names that bar, not the newest.
    let legend = seen["hover"]["legend"].as_str().unwrap();
    let newest = seen["hover"]["lastCandle"].as_str().unwrap().split(' ').next().unwrap();
    assert!(legend.contains(" O ") && legend.contains(" C ") && legend.contains(" V "), "{legend}");
    assert!(!legend.contains(newest), "the legend kept the newest bar ({newest}) under the crosshair: {legend}");
    let traces = |k: &str| seen[k]["traces"].as_array().unwrap().iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert!(!traces("after").iter().any(|t| t.contains("Bollinger")));
    assert!(traces("bands").iter().any(|t| t.contains("Bollinger")), "the overlay did not turn on");
    for k in ["after", "bands"] {
        let points = &seen[k]["overlayPoints"];
        assert!(points["shown"].as_u64().unwrap() > 0, "{k}: no overlay in view: {points}");
        assert_eq!(points["off"], 0, "{k}: overlay points in view cut off by the price axis: {points}");
    }
    for pane in ["RSI 14", "MACD", "volume", "SMA 10", "SMA 50"] {
        assert!(traces("after").iter().any(|t| t.contains(pane)), "no {pane}");
    }
    // In both themes, every drawn series has a colour of its own (none a
    // candle's), and the legend names every line.
    for k in ["bands", "dark"] {
        let mut colours = std::collections::BTreeMap::new();
        for p in seen[k]["palette"].as_array().unwrap() {
            colours.insert(p["name"].as_str().unwrap().to_string(), p["color"].as_str().unwrap().to_lowercase());
        }
        let distinct: std::collections::BTreeSet<&String> = colours.values().collect();
        assert_eq!(distinct.len(), colours.len(), "{k}: series share a colour: {colours:?}");
        assert!(colours.len() >= 9, "{k}: {colours:?}");
        let listed: Vec<&str> =
            seen[k]["legendSeries"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        for name in colours.keys().filter(|n| !["rising", "falling", "alerts"].contains(&n.as_str())) {
            assert!(listed.contains(&name.as_str()), "{k}: the legend does not list {name}: {listed:?}");
        }
    }
    let dark = &seen["dark"];
    assert_eq!(dark["theme"], "dark");
    assert_ne!(dark["background"], seen["bands"]["background"], "the dark theme did not apply");
    assert!(dark["url"].as_str().unwrap().contains("theme=dark"), "the URL keeps the theme: {}", dark["url"]);
}
