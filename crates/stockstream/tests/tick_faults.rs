//! The tick consumer over Kafka (Tansu), SIGKILLed three times mid-window
//! while ticks still arrive, restarted each time as a supervisor would: the
//! 1-minute bars it stores equal, bar for bar and value for value, those of a
//! consumer that ran without a stop over the same topic. The ticks come out
//! of order, late within the grace period (revisions), too late (dead
//! letters), duplicated, with a feed's cumulative day volume on some symbols.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{bin, rows, wait_until, Tansu, TansuStorage};

const TICKS: usize = 30_000;
/// See `faults.rs`: a killed member is evicted after the session; the next
/// one is started after that, as a supervisor with a back-off would.
const SESSION: Duration = Duration::from_secs(6);
const SYMBOLS: [&str; 7] = ["NVDA", "TSLA", "META", "AMZN", "AAPL", "NFLX", "GOOGL"];

/// A recorded-shaped tick file: 7 symbols, a tick every 100 ms of event time.
fn write_ticks(path: &Path) {
    let mut seed = 0x5eed_u64;
    let mut rand = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let t0: i64 = 1_704_207_600_000;
    let mut price = [100.0f64; 7];
    let mut day_volume = [0u64; 7];
    let mut text = String::from("symbol,time,price,size,day_volume\n");
    for i in 0..TICKS {
        let s = i % 7;
        let mut time = t0 + i as i64 * 100;
        match rand() {
            r if r < 0.05 => time -= (rand() * 4_000.0) as i64,
            r if r < 0.06 => time -= 10_000 + (rand() * 40_000.0) as i64,
            r if r < 0.07 => time -= 130_000 + (rand() * 60_000.0) as i64,
            _ => {}
        }
        price[s] = ((price[s] * (1.0 + (rand() - 0.5) * 0.002)) * 100.0).round() / 100.0;
        let size = (rand() * 500.0).round() + 1.0;
        day_volume[s] += size as u64;
        // Three symbols carry a feed's cumulative volume, the others sizes only.
        let dv = if s < 3 { day_volume[s].to_string() } else { String::new() };
        let line = format!("{},{time},{},{size},{dv}\n", SYMBOLS[s], price[s]);
        text.push_str(&line);
        if rand() < 0.005 {
            text.push_str(&line);
        }
    }
    std::fs::write(path, text).unwrap();
}

fn consumer(dir: &Path, brokers: &str, group: &str, db: &Path, name: &str, idle_exit: bool) -> Child {
    let mut c = bin();
    c.args(["consume", "--bar", "1m", "--brokers", brokers, "--topic", "live", "--group", group])
        .args(["--batch-size", "200", "--flush-ms", "50", "--db", db.to_str().unwrap()])
        .args(["--kafka-option", &format!("session.timeout.ms={}", SESSION.as_millis())])
        .args(["--kafka-option", "heartbeat.interval.ms=500"])
        .env("STOCKSTREAM_LOG", "info")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap());
    if idle_exit {
        c.args(["--idle-exit", "8"]);
    }
    c.spawn().unwrap()
}

fn bars(db: &Path) -> Vec<Vec<String>> {
    rows(db, "SELECT symbol, date, open, high, low, close, volume FROM bars_1m ORDER BY symbol, date")
}

fn stored(db: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open(db) else { return 0 };
    conn.query_row("SELECT COUNT(*) FROM bars_1m", [], |r| r.get::<_, i64>(0)).map(|n| n as u64).unwrap_or(0)
}

fn finished(child: Child, dir: &Path, name: &str) {
    let out = child.wait_with_output().unwrap();
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    assert!(out.status.success(), "{name}: {:?}\n{}\n{log}", out.status, String::from_utf8_lossy(&out.stdout));
}

#[test]
fn tick_consumer_killed_three_times_mid_window_stores_the_bars_of_an_uninterrupted_run() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let (dir, file) = (dir.path(), dir.path().join("ticks.csv"));
    write_ticks(&file);
    let crash_db = dir.join("crash.db");

    // Ticks arrive while the members work (2,000 a second: 15 s of feed).
    let producer = bin()
        .args(["produce", "--source", "ticks", "--input", file.to_str().unwrap()])
        .args(["--brokers", &brokers, "--topic", "live", "--rate", "2000"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut target = 0;
    for kill in 1..=3 {
        let name = format!("member{kill}");
        let mut member = consumer(dir, &brokers, "crash", &crash_db, &name, false);
        target += 8 + kill * 3;
        assert!(
            wait_until(Duration::from_secs(120), || stored(&crash_db) >= target),
            "no bars before kill {kill}: {}",
            std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap()
        );
        member.kill().unwrap();
        member.wait().unwrap();
        println!("kill {kill} with {} bars stored", stored(&crash_db));
        std::thread::sleep(SESSION + Duration::from_secs(1));
    }
    finished(producer, dir, "producer");
    let last = consumer(dir, &brokers, "crash", &crash_db, "last", true);
    finished(last, dir, "last");

    // The same topic, read by a member that never stops.
    let whole_db = dir.join("whole.db");
    finished(consumer(dir, &brokers, "whole", &whole_db, "whole", true), dir, "whole");

    let (whole, crashed) = (bars(&whole_db), bars(&crash_db));
    assert!(whole.len() > 300, "{} bars", whole.len());
    let differing: Vec<_> = whole.iter().zip(&crashed).filter(|(a, b)| a != b).take(5).collect();
    assert_eq!(crashed.len(), whole.len(), "bars stored after the crashes vs. without");
    assert!(differing.is_empty(), "bars differ after the crashes: {differing:?}");
    println!("| SIGKILL tick consumer ×3, Kafka → SQLite 1m bars | {TICKS} ticks | {} bars | equal |", whole.len());
}
