//! The Kafka bus against a real Kafka-protocol broker (Tansu), with kafka-python
//! (the original project's client) as the independent client on the other side.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, count, interop, ok, python, rows, stored_so_far, summary, wait_until, Tansu, TansuStorage};

fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<serde_json::Value> {
    let out = python(&interop("read_topic.py"), &[brokers, topic, &n.to_string()]);
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn produce(dir: &Path, brokers: &str, topic: &str, extra: &[&str]) -> String {
    let mut args = vec!["produce", "--brokers", brokers, "--topic", topic];
    args.extend_from_slice(extra);
    ok(dir, &args)
}

fn consume(dir: &Path, brokers: &str, topic: &str, group: &str, db: &str, extra: &[&str]) -> String {
    let mut args =
        vec!["consume", "--brokers", brokers, "--topic", topic, "--group", group, "--db", db, "--idle-exit", "3"];
    args.extend_from_slice(extra);
    ok(dir, &args)
}

#[test]
fn ten_thousand_bars_through_six_partitions_into_sqlite() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let gen = ["--rows", "10000", "--interval", "1m", "--seed", "7"];
    let produced = produce(dir.path(), &brokers, "bars", &[&gen[..], &["--max"]].concat());
    assert_eq!(summary(&produced, "delivered"), 10_000, "{produced}");
    assert_eq!(summary(&produced, "failed"), 0);

    let consumed = consume(dir.path(), &brokers, "bars", "g1", "k.db", &["--interval", "1m"]);
    assert_eq!(summary(&consumed, "stored"), 10_000, "{consumed}");
    assert_eq!(summary(&consumed, "rejected"), 0);
    let db = dir.path().join("k.db");
    assert_eq!(count(&db, "bars_1m"), 10_000, "exactly the distinct bars sent, in their interval's table");

    // The store holds exactly what was generated.
    let csv = ok(dir.path(), &[&["generate"][..], &gen].concat());
    let mut expected: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{}|{}|{}", f[6], f[0], f[4])
        })
        .collect();
    expected.sort();
    let mut stored: Vec<String> = rows(&db, "SELECT company, date, close FROM bars_1m")
        .into_iter()
        .map(|r| {
            format!(
                "{}|{}|{}",
                r[0],
                r[1],
                r[2].trim_start_matches("Real(").trim_end_matches(')').trim_end_matches(".0")
            )
        })
        .collect();
    stored.sort();
    assert_eq!(stored, expected);

    // An independent client reads what `produce` wrote: keyed by symbol, one
    // partition per symbol, in order, and the same records as generated.
    let messages = read_topic(&brokers, "bars", 10_000);
    let mut partitions_of: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut last_date: BTreeMap<(i64, String), String> = BTreeMap::new();
    let mut records = Vec::new();
    for m in &messages {
        let value: serde_json::Value = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
        let key = m["key"].as_str().unwrap().to_string();
        assert_eq!(value["Symbol"].as_str().unwrap(), key);
        partitions_of.entry(key.clone()).or_default().insert(m["partition"].as_i64().unwrap());
        let date = value["Date"].as_str().unwrap().to_string();
        let slot = (m["partition"].as_i64().unwrap(), key);
        if let Some(prev) = last_date.get(&slot) {
            assert!(*prev < date, "order broken in {slot:?}: {prev} then {date}");
        }
        last_date.insert(slot, date.clone());
        records.push(format!("{}|{}|{}", value["Company Name"].as_str().unwrap(), date, value["Close"]));
    }
    assert!(partitions_of.values().all(|p| p.len() == 1), "{partitions_of:?}");
    assert_eq!(partitions_of.len(), 7);
    records.sort();
    assert_eq!(records, expected);
}

#[test]
fn messages_sent_as_the_original_producer_did_are_stored() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let csv =
        ok(dir.path(), &["generate", "--symbols", "NVDA,META,NFLX", "--start", "2024-01-02", "--end", "2024-03-28"]);
    // One missing Volume, as pandas leaves it (NaN), in the middle of the data.
    // Messages without a key spread over partitions, so whether an earlier bar
    // of the company arrives before it depends on consumption order: it is
    // filled from one, or (only a later bar seen) kept as a dead letter.
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let mut f: Vec<String> = lines[40].split(',').map(String::from).collect();
    f[5] = String::new();
    lines[40] = f.join(",");
    std::fs::write(dir.path().join("seed.csv"), lines.join("\n") + "\n").unwrap();
    let rows_sent = lines.len() - 1;

    ok(dir.path(), &["produce", "--brokers", &brokers, "--topic", "seed", "--rows", "1"]); // creates the topics
    let sent =
        python(&interop("original_producer.py"), &[&brokers, "seed", dir.path().join("seed.csv").to_str().unwrap()]);
    assert_eq!(sent.trim().parse::<usize>().unwrap(), rows_sent);

    let out = consume(dir.path(), &brokers, "seed", "g", "seed.db", &[]);
    let (stored, rejected, imputed) = (summary(&out, "stored"), summary(&out, "rejected"), summary(&out, "imputed"));
    assert_eq!(stored as usize + rejected as usize, rows_sent + 1, "nothing lost: {out}");
    assert_eq!((imputed, rejected), if imputed == 1 { (1, 0) } else { (0, 1) }, "{out}");
    if rejected == 1 {
        assert!(out.contains("missing_value"), "the gap is kept with its reason: {out}");
    }
    let db = dir.path().join("seed.db");
    let symbols = rows(&db, "SELECT DISTINCT symbol FROM bars ORDER BY symbol");
    assert_eq!(symbols, [["META"], ["NFLX"], ["NVDA"]], "symbols come from the company table");
    assert_eq!(count(&db, "bars"), stored);
}

#[test]
fn bad_messages_go_to_the_dead_letter_topic_with_reasons() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["produce", "--brokers", &brokers, "--topic", "mixed", "--rows", "0"]);
    let good = |d: u32| {
        format!(
            r#"{{"Date":"2024-01-{d:02}","Open":10,"High":12,"Low":9,"Close":11,"Volume":100,"Company Name":"Tesla"}}"#
        )
    };
    let bad = [
        "this is not json".to_string(),
        r#"{"Date":"2024-01-05","Open":10,"High":12,"Company Name":"Apple"}"#.to_string(),
        r#"{"Date":"2024-01-06","Open":10,"High":8,"Low":9,"Close":11,"Volume":100,"Company Name":"Tesla"}"#
            .to_string(),
        r#"{"Date":"2024-01-05T14:30:00Z","Open":10,"High":12,"Low":9,"Close":11,"Volume":100,"Company Name":"Tesla"}"#
            .to_string(),
    ];
    let lines = [good(2), bad[0].clone(), good(3), bad[1].clone(), good(4), bad[2].clone(), bad[3].clone(), good(8)];
    std::fs::write(dir.path().join("mixed.txt"), lines.join("\n")).unwrap();
    python(&interop("send_raw.py"), &[&brokers, "mixed", dir.path().join("mixed.txt").to_str().unwrap(), "TSLA"]);

    let out = consume(dir.path(), &brokers, "mixed", "g", "mixed.db", &[]);
    assert_eq!((summary(&out, "stored"), summary(&out, "rejected")), (4, 4), "{out}");
    let dates = rows(&dir.path().join("mixed.db"), "SELECT date FROM bars ORDER BY date");
    assert_eq!(dates, [["2024-01-02"], ["2024-01-03"], ["2024-01-04"], ["2024-01-08"]]);

    let dead = read_topic(&brokers, "mixed.dlq", 4);
    let mut by_value: BTreeMap<String, (String, String)> = dead
        .iter()
        .map(|m| {
            let h = &m["headers"];
            (
                m["value"].as_str().unwrap().to_string(),
                (h["kind"].as_str().unwrap().to_string(), h["reason"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    let (kind, reason) = by_value.remove(&bad[0]).expect("not-JSON message kept as sent");
    assert_eq!(kind, "undecodable");
    assert!(reason.contains("not a JSON object"), "{reason}");
    let (kind, reason) = by_value.remove(&bad[1]).unwrap();
    assert_eq!(kind, "missing_value");
    assert!(reason.contains("Low, Close, Volume missing for Apple 2024-01-05"), "{reason}");
    let (kind, reason) = by_value.remove(&bad[2]).unwrap();
    assert_eq!(kind, "high_below_open_close");
    assert!(reason.contains("Tesla 2024-01-06: High 8 is below max(Open, Close) = 11"), "{reason}");
    // A consumer of daily bars (the default) stores no intraday bar beside them.
    let (kind, reason) = by_value.remove(&bad[3]).unwrap();
    assert_eq!(kind, "mixed_interval");
    assert!(reason.contains("Tesla 2024-01-05T14:30:00Z: an intraday time among 1d bars"), "{reason}");
    assert!(dead.iter().all(|m| m["headers"]["source"].as_str().unwrap().starts_with("mixed/")));
    assert!(dead.iter().all(|m| m["key"] == "TSLA"), "a dead letter lost its original key: {dead:?}");
}

/// Two members share the partitions; one is killed with SIGKILL mid-stream and,
/// as a supervisor would, started again. The group rebalances and the store ends
/// complete. (Tansu 0.6.0 evicts a dead member after its session times out but
/// does not ask the others to rejoin, so the partitions move at the next join;
/// Apache Kafka moves them at the eviction already.)
#[test]
fn a_group_shares_partitions_and_recovers_from_a_killed_member() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let member = |name: &str| {
        bin()
            .args(["consume", "--brokers", &brokers, "--topic", "shared", "--group", "pair", "--db", "pair.db"])
            .args(["--interval", "1m"])
            .args(["--batch-size", "100", "--flush-ms", "50"])
            .args(["--kafka-option", "session.timeout.ms=6000", "--kafka-option", "heartbeat.interval.ms=500"])
            .env("STOCKSTREAM_LOG", "info")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    // Both members join before any data flows, so each holds a share when one dies.
    let mut doomed = member("doomed");
    wait_for_assignment(&log("doomed"), |p| !p.is_empty());
    let survivor = member("survivor");
    wait_for_assignment(&log("survivor"), |p| !p.is_empty());
    let doomed_share = wait_for_assignment(&log("doomed"), |p| !p.is_empty() && p.len() < 6);
    produce(dir.path(), &brokers, "shared", &["--rows", "30000", "--interval", "1m"]);

    let db = dir.path().join("pair.db");
    assert!(wait_until(Duration::from_secs(60), || stored_so_far(&db) >= 3000), "no progress");
    let at_kill = count(&db, "bars_1m");
    assert!(at_kill < 30_000, "the stream was over before the kill ({at_kill})");
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    std::thread::sleep(Duration::from_secs(7)); // past the dead member's session
    let restarted = member("restarted");
    let taken_over = wait_for_assignment(&log("restarted"), |p| !p.is_empty());
    assert!(wait_until(Duration::from_secs(120), || stored_so_far(&db) >= 30_000), "not all stored");
    let stored = |child: std::process::Child| {
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}", out.status);
        summary(&String::from_utf8_lossy(&out.stdout), "stored")
    };
    let by_survivor = stored(survivor);
    stored(restarted);
    assert!(by_survivor > 0 && by_survivor < 30_000, "the survivor had a share, not all: {by_survivor}");
    assert!(!doomed_share.is_empty() && !taken_over.is_empty(), "{doomed_share:?} {taken_over:?}");
    assert_eq!(count(&db, "bars_1m"), 30_000, "every bar stored");
    // Two writers, one killed mid-batch and its batches read again by another:
    // the catalog's counts and last bars are the stored bars' exactly.
    common::catalog_is_exact(&db, "bars_1m");
}

/// Waits until the member's latest logged assignment satisfies `wanted`, and returns it.
fn wait_for_assignment(log: &Path, wanted: impl Fn(&[u32]) -> bool) -> Vec<u32> {
    let mut latest = Vec::new();
    let found = wait_until(Duration::from_secs(60), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().rfind(|l| l.contains("partitions assigned")) {
            let list = line.rsplit("partitions=").next().unwrap_or("").trim();
            latest = list.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect();
        }
        wanted(&latest)
    });
    assert!(found, "{}: no such assignment; latest {latest:?}", log.display());
    latest
}

#[test]
fn sigterm_commits_so_a_restart_resumes_where_it_stopped() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    produce(dir.path(), &brokers, "resume", &["--rows", "20000", "--interval", "1m"]);
    let first = bin()
        .args(["consume", "--brokers", &brokers, "--topic", "resume", "--group", "r", "--db", "r.db"])
        .args(["--interval", "1m"])
        .args(["--batch-size", "100", "--flush-ms", "20"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let db = dir.path().join("r.db");
    let started = Instant::now();
    while stored_so_far(&db) < 2000 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &first.id().to_string()]).status().unwrap().success());
    let out = first.wait_with_output().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?}", signalled.elapsed());
    assert!(out.status.success(), "{:?}", out.status);
    let first_consumed = summary(&String::from_utf8(out.stdout).unwrap(), "read");
    assert!(first_consumed < 20_000, "stopped mid-stream");

    let second = consume(dir.path(), &brokers, "resume", "r", "r.db", &["--interval", "1m"]);
    let second_consumed = summary(&second, "read");
    assert_eq!(first_consumed + second_consumed, 20_000, "no committed message was read again: {second}");
    assert_eq!(count(&db, "bars_1m"), 20_000);
}

#[test]
fn run_over_kafka_stores_the_default_dataset() {
    let broker = Tansu::start(TansuStorage::Memory);
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["run", "--bus", "kafka", "--brokers", &broker.brokers(), "--topic", "run"]);
    assert_eq!(summary(&out, "stored"), 3577, "{out}");
    assert_eq!(count(&dir.path().join("stockstream.db"), "bars"), 3577);
    // Alerts computed in the stream are produced to `<topic>.alerts`.
    let alerts = read_topic(&broker.brokers(), "run.alerts", 20);
    for m in &alerts {
        let a: serde_json::Value = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
        assert!(
            a["company"].is_string() && a["rule"].is_string() && a["date"].is_string() && a["message"].is_string(),
            "{a}"
        );
        assert_eq!(m["key"], a["symbol"]);
    }
}

#[test]
fn undelivered_records_are_counted_and_fail_the_command() {
    let mut broker = Tansu::start(TansuStorage::Memory);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let child = bin()
        .args([
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            "lost",
            "--rows",
            "3000",
            "--interval",
            "1m",
            "--rate",
            "500",
        ])
        .args(["--kafka-option", "message.timeout.ms=2000"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    broker.kill();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a produce that lost records exited 0:\n{stdout}");
    let failed = summary(&stdout, "failed");
    assert!(failed > 0, "{stdout}");
    assert_eq!(
        summary(&stdout, "delivered") + failed,
        summary(&stdout, "read"),
        "every record is delivered or counted as failed"
    );
    assert!(stderr.contains("records were not delivered to lost"), "{stderr}");
}

/// A tick file over Kafka: the producer finishes, the topic stays open. The run
/// must end by itself once the bus is drained, with the bars the embedded run
/// stores from the same file.
#[test]
fn a_tick_file_over_kafka_ends_by_itself_with_the_embedded_bars() {
    let broker = Tansu::start(TansuStorage::Memory);
    let dir = tempfile::tempdir().unwrap();
    // Twelve minutes of three symbols, a tick every 5 s.
    let mut csv = String::from("symbol,time,price,size\n");
    let start = 1_709_564_400_000i64; // 2024-03-04 15:00 UTC
    for i in 0..144i64 {
        for (k, symbol) in ["NVDA", "TSLA", "AAPL"].iter().enumerate() {
            csv += &format!("{symbol},{},{},{}\n", start + i * 5_000 + k as i64, 100 + (i * 7 + k as i64) % 13, 10 + i);
        }
    }
    std::fs::write(dir.path().join("ticks.csv"), csv).unwrap();
    let common = ["--source", "ticks", "--input", "ticks.csv", "--bar", "1m", "--no-report"];
    ok(dir.path(), &[&["run", "--db", "embedded.db"][..], &common].concat());
    let mut over_kafka = bin()
        .current_dir(dir.path())
        .args(["run", "--bus", "kafka", "--brokers", &broker.brokers(), "--topic", "t", "--db", "kafka.db"])
        .args(common)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = None;
    let ended = wait_until(Duration::from_secs(90), || {
        status = over_kafka.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        let _ = over_kafka.kill();
        panic!("`run --bus kafka --source ticks` was still running after 90 s");
    }
    assert!(status.unwrap().success());
    let sql = "SELECT company, date, open, high, low, close, volume FROM bars_1m ORDER BY company, date";
    let embedded = rows(&dir.path().join("embedded.db"), sql);
    assert_eq!(embedded.len(), 3 * 12, "twelve minutes of three symbols");
    assert_eq!(rows(&dir.path().join("kafka.db"), sql), embedded);
}
