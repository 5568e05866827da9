//! The fault suite: crashes, restarts, outages and signals injected into real
//! processes over real servers (Tansu, DynamoDB Local), each scenario ending with
//! an exact comparison of what was sent with what was stored: nothing missing,
//! no identity twice, no value changed, every reject accounted for.
//!
//! Each scenario prints one row of the table
//! `scenario | sent | stored | rejected | lost | duplicated` (see `--nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, interop, ok, python, stored_so_far, summary, DynamoLocal, Tansu, TansuStorage};

const ROWS: usize = 40_000;

/// The consumers' group session: a killed member is evicted once it has passed.
/// Tansu 0.6.0 then waits for the next join to move its partitions, so a
/// restarted member is started after it, as a supervisor with a back-off would.
const SESSION: Duration = Duration::from_secs(6);

/// Messages every scenario slips into the topic beside the good bars, as a
/// careless or hostile producer would: each must end in the dead-letter topic.
const HOSTILE: [&str; 5] = [
    "not json at all",
    r#"{"Date":"2024-02-30","Open":1,"High":2,"Low":0.5,"Close":1.5,"Volume":10,"Company Name":"Apple"}"#,
    r#"{"Date":"2024-03-01","Open":10,"High":8,"Low":7,"Close":9,"Volume":10,"Company Name":"Tesla"}"#,
    r#"{"Date":"2024-03-01","Open":1,"High":2,"Low":0.5,"Close":1.5,"Volume":-3,"Company Name":"Meta"}"#,
    r#"{"Date":"2024-03-01","Open":"NaN","High":2,"Low":0.5,"Close":1.5,"Volume":10}"#,
];

type Identity = (String, String);
type Values = [f64; 5];

/// What a scenario sent: the generated bars, by identity.
struct Sent {
    bars: BTreeMap<Identity, Values>,
    generate_args: Vec<String>,
}

fn sent(dir: &Path, rows: usize, seed: u64) -> Sent {
    let generate_args: Vec<String> =
        ["--rows", &rows.to_string(), "--interval", "1m", "--seed", &seed.to_string()].map(String::from).to_vec();
    let csv = ok(dir, &[&["generate"][..], &generate_args.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    let mut bars = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let values = [1, 2, 3, 4, 5].map(|i| f[i].parse::<f64>().unwrap());
        bars.insert((f[6].to_string(), normalise_date(f[0])), values);
    }
    assert_eq!(bars.len(), rows, "generated identities are distinct");
    Sent { bars, generate_args }
}

/// `2023-04-03 14:30:00` (CSV) and `2023-04-03T14:30:00Z` (wire) name one instant.
fn normalise_date(d: &str) -> String {
    d.replace(' ', "T").trim_end_matches('Z').to_string()
}

/// Where the bars end up.
enum Backend {
    Sqlite(PathBuf),
    Dynamo(String),
}

impl Backend {
    fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite(db) => vec!["--db".into(), db.display().to_string()],
            Backend::Dynamo(endpoint) => {
                ["--store", "dynamodb", "--dynamodb-endpoint", endpoint, "--region", "us-east-1"]
                    .map(String::from)
                    .to_vec()
            }
        }
    }

    /// Bars stored so far; 0 while the store is not there yet (or down).
    fn progress(&self) -> u64 {
        match self {
            Backend::Sqlite(db) => stored_so_far(db),
            Backend::Dynamo(endpoint) => {
                let out = Command::new("python3").arg(interop("ddb_count.py")).args([endpoint, "StockMkt"]).output();
                out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
            }
        }
    }

    /// Every stored bar, read back through `stockstream query`.
    fn stored(&self, dir: &Path) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        for company in ["NVIDIA", "Tesla", "Meta", "Amazon", "Apple", "Netflix", "Google"] {
            let mut args =
                vec!["query".to_string(), "--company".into(), company.into(), "--format".into(), "json".into()];
            args.extend(self.args());
            let out = ok(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
            all.extend(serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap());
        }
        all
    }
}

/// The comparison every scenario ends with.
#[derive(Debug, PartialEq)]
struct Outcome {
    sent: usize,
    stored: usize,
    rejected: usize,
    lost: usize,
    duplicated: usize,
    altered: usize,
}

fn compare(sent: &Sent, stored: &[serde_json::Value], dead_letters: &[String]) -> Outcome {
    let mut seen: BTreeMap<Identity, usize> = BTreeMap::new();
    let mut altered = 0;
    for bar in stored {
        let id = (bar["Company Name"].as_str().unwrap().to_string(), normalise_date(bar["Date"].as_str().unwrap()));
        let values = ["Open", "High", "Low", "Close", "Volume"].map(|f| bar[f].as_f64().unwrap());
        if sent.bars.get(&id) != Some(&values) {
            altered += 1;
        }
        *seen.entry(id).or_default() += 1;
    }
    // A dead letter may be published twice (at least once); each original counts once.
    let distinct_dead: BTreeSet<&String> = dead_letters.iter().collect();
    let rejected = HOSTILE.iter().filter(|h| distinct_dead.contains(&h.to_string())).count();
    Outcome {
        sent: sent.bars.len() + HOSTILE.len(),
        stored: stored.len(),
        rejected,
        lost: sent.bars.keys().filter(|id| !seen.contains_key(*id)).count() + (HOSTILE.len() - rejected),
        duplicated: seen.values().filter(|&&n| n > 1).count(),
        altered,
    }
}

fn assert_nothing_lost(scenario: &str, outcome: &Outcome) {
    println!(
        "| {scenario} | {} | {} | {} | {} | {} |",
        outcome.sent, outcome.stored, outcome.rejected, outcome.lost, outcome.duplicated
    );
    let expected = Outcome {
        sent: outcome.sent,
        stored: outcome.sent - HOSTILE.len(),
        rejected: HOSTILE.len(),
        lost: 0,
        duplicated: 0,
        altered: 0,
    };
    assert_eq!(outcome, &expected, "{scenario}");
}

fn dead_letters(brokers: &str, topic: &str) -> Vec<String> {
    let out = python(&interop("read_topic.py"), &[brokers, &format!("{topic}.dlq"), "all"]);
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].as_str().unwrap().to_string())
        .collect()
}

fn send_hostile(dir: &Path, brokers: &str, topic: &str) {
    let file = dir.join("hostile.jsonl");
    std::fs::write(&file, HOSTILE.join("\n")).unwrap();
    python(&interop("send_raw.py"), &[brokers, topic, &file.display().to_string()]);
}

fn produce(dir: &Path, brokers: &str, topic: &str, sent: &Sent, extra: &[&str]) -> Child {
    bin()
        .args(["produce", "--brokers", brokers, "--topic", topic])
        .args(&sent.generate_args)
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn consumer(dir: &Path, brokers: &str, topic: &str, backend: &Backend, name: &str) -> Child {
    bin()
        .args(["consume", "--brokers", brokers, "--topic", topic, "--group", "faults"])
        .args(["--batch-size", "500", "--flush-ms", "50"])
        .args(["--kafka-option", &format!("session.timeout.ms={}", SESSION.as_millis())])
        .args(["--kafka-option", "heartbeat.interval.ms=500"])
        .args(backend.args())
        .env("STOCKSTREAM_LOG", "info")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap()
}

fn finished(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
}

/// SIGTERM, then the exit within 5 s, with status 0.
fn terminated(child: Child) -> String {
    let signalled = Instant::now();
    sigterm(&child);
    let out = finished(child);
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?} to stop", signalled.elapsed());
    out
}

/// Polls `done` until it holds; false when `limit` passed first.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The end of a member's log, for a failure message.
fn log_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A number in [0, 1) that differs from run to run (printed, so a failing run
/// can be told apart).
fn random_fraction() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    (bits % 10_000) as f64 / 10_000.0
}

/// Scenario 1: the consumer is killed with SIGKILL three times at random points
/// mid-stream and started again each time; the last run drains the topic.
fn killed_three_times(backend: Backend, scenario: &str) {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let sent = sent(dir.path(), ROWS, 21);
    finished(produce(dir.path(), &brokers, "crash", &sent, &[]));
    send_hostile(dir.path(), &brokers, "crash");

    let mut target = 0u64;
    for kill in 1..=3 {
        let mut member = consumer(dir.path(), &brokers, "crash", &backend, &format!("member{kill}"));
        target += (ROWS as f64 * (0.05 + 0.2 * random_fraction())) as u64;
        println!("kill {kill} once {target} bars are stored");
        let name = format!("member{kill}");
        assert!(
            wait_until(Duration::from_secs(120), || backend.progress() >= target),
            "no progress before kill {kill}:\n{}",
            log_tail(dir.path(), &name)
        );
        member.kill().unwrap();
        member.wait().unwrap();
        assert!(backend.progress() < ROWS as u64, "the stream was over before kill {kill}");
        std::thread::sleep(SESSION + Duration::from_secs(1));
    }
    let last = consumer(dir.path(), &brokers, "crash", &backend, "last");
    assert!(
        wait_until(Duration::from_secs(180), || backend.progress() >= ROWS as u64),
        "the last member did not drain the topic:\n{}",
        log_tail(dir.path(), "last")
    );
    let summary_text = terminated(last);
    assert!(summary(&summary_text, "read") > 0, "the last member had work left: {summary_text}");
    assert_nothing_lost(scenario, &compare(&sent, &backend.stored(dir.path()), &dead_letters(&brokers, "crash")));
}

#[test]
fn consumer_killed_three_times_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_three_times(Backend::Sqlite(dir.path().join("crash.db")), "SIGKILL consumer ×3, Kafka → SQLite");
}

#[test]
fn consumer_killed_three_times_into_dynamodb() {
    let server = DynamoLocal::start();
    killed_three_times(Backend::Dynamo(server.endpoint()), "SIGKILL consumer ×3, Kafka → DynamoDB");
}
