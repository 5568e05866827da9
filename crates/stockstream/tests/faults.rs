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

use common::{
    bin, interop, ok, python, stored_so_far, summary, wait_until, wait_until_every, DynamoLocal, Tansu, TansuStorage,
};

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
                let out = Command::new("python3").arg(interop("ddb_count.py")).args([endpoint, "StockMkt_1m"]).output();
                out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
            }
        }
    }

    /// Waits until `target` bars are stored. DynamoDB's count is a full scan by
    /// a Python client: polled once a second, as a tighter loop would take a
    /// core from the consumer under test on a two-core machine.
    fn reaches(&self, target: u64, limit: Duration) -> bool {
        let interval = match self {
            Backend::Sqlite(_) => Duration::from_millis(50),
            Backend::Dynamo(_) => Duration::from_secs(1),
        };
        wait_until_every(limit, interval, || self.progress() >= target)
    }

    /// Every stored bar, read back through `stockstream query`.
    fn stored(&self, dir: &Path) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        for company in ["NVIDIA", "Tesla", "Meta", "Amazon", "Apple", "Netflix", "Google"] {
            let mut args =
                ["query", "--company", company, "--interval", "1m", "--format", "json"].map(String::from).to_vec();
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
        .args(["consume", "--brokers", brokers, "--topic", topic, "--group", "faults", "--interval", "1m"])
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

/// The end of a member's log, for a failure message.
fn log_tail(dir: &Path, name: &str) -> String {
    let text = full_log(dir, name);
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
        let name = format!("member{kill}");
        let mut member = consumer(dir.path(), &brokers, "crash", &backend, &name);
        target += (ROWS as f64 * (0.05 + 0.2 * random_fraction())) as u64;
        println!("kill {kill} once {target} bars are stored");
        assert!(
            backend.reaches(target, Duration::from_secs(120)),
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
        backend.reaches(ROWS as u64, Duration::from_secs(300)),
        "the last member did not drain the topic:\n{}",
        log_tail(dir.path(), "last")
    );
    let summary_text = terminated(last);
    assert!(summary(&summary_text, "read") > 0, "the last member had work left: {summary_text}");
    assert_nothing_lost(scenario, &compare(&sent, &backend.stored(dir.path()), &dead_letters(&brokers, "crash")));
    match &backend {
        Backend::Dynamo(endpoint) => catalog_matches_the_bars(endpoint),
        Backend::Sqlite(db) => common::catalog_is_exact(db, "bars_1m"),
    }
}

/// The DynamoDB catalog after members were killed mid-stream: each company's
/// count, first and last dates and last close are the stored bars' (read
/// with boto3), exactly.
fn catalog_matches_the_bars(endpoint: &str) {
    let lines = python(&interop("ddb_catalog_check.py"), &[endpoint, "StockMkt_1m"]);
    let mut companies = 0;
    for line in lines.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let (catalog, stored) = (&row["catalog"], &row["stored"]);
        for field in ["first", "last", "close", "bars"] {
            assert_eq!(catalog[field], stored[field], "{field}: {row}");
        }
        companies += 1;
    }
    assert!(companies >= 7, "{lines}");
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

/// The comparison can fail: a member that commits a batch before writing it and
/// then dies loses exactly that batch, and the comparison says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comparison_catches_a_consumer_that_commits_before_writing() {
    use stockstream_bus::{Consumer, KafkaConsumer, KafkaSettings, OffsetReset, Polled};
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let sent = sent(dir.path(), 5000, 5);
    finished(produce(dir.path(), &brokers, "careless", &sent, &[]));
    send_hostile(dir.path(), &brokers, "careless");

    let settings = KafkaSettings::new(brokers.clone());
    let mut careless = KafkaConsumer::new(&settings, "careless", "faults", OffsetReset::Earliest).unwrap();
    let taken = loop {
        match careless.poll(500, Duration::from_secs(30)).await.unwrap() {
            Polled::Messages(m) => break m,
            Polled::Idle => continue,
            Polled::Closed => panic!("a Kafka topic never closes"),
        }
    };
    careless.commit(&taken.iter().map(|m| m.position).collect::<Vec<_>>()).await.unwrap();
    drop(careless); // dies before the write

    let backend = Backend::Sqlite(dir.path().join("careless.db"));
    let mut args = vec!["consume", "--brokers", &brokers, "--topic", "careless", "--group", "faults"];
    args.extend(["--idle-exit", "3", "--interval", "1m"]);
    let store_args = backend.args();
    args.extend(store_args.iter().map(String::as_str));
    ok(dir.path(), &args);
    let outcome = compare(&sent, &backend.stored(dir.path()), &dead_letters(&brokers, "careless"));
    println!("careless member took {} messages: {outcome:?}", taken.len());
    assert!(!taken.is_empty());
    assert_eq!(outcome.lost, taken.len(), "each message committed before its write is reported lost");
    assert_eq!((outcome.duplicated, outcome.altered), (0, 0));
}

/// Scenario 2: the broker (Tansu with its SQLite storage) is killed mid-stream and
/// started again 3 s later; the producer retries and the consumer resumes.
#[test]
fn broker_restarted_mid_stream() {
    let mut broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite(dir.path().join("restart.db"));
    let sent = sent(dir.path(), ROWS, 33);
    let producer = produce(dir.path(), &brokers, "restart", &sent, &["--rate", "8000"]);
    let member = consumer(dir.path(), &brokers, "restart", &backend, "member");
    assert!(
        backend.reaches(5000, Duration::from_secs(60)),
        "no progress before the restart:\n{}",
        log_tail(dir.path(), "member")
    );
    broker.kill();
    let at_kill = backend.progress();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    let produced = finished(producer);
    assert_eq!((summary(&produced, "delivered"), summary(&produced, "failed")), (ROWS as u64, 0), "{produced}");
    send_hostile(dir.path(), &brokers, "restart");
    assert!(
        backend.reaches(ROWS as u64, Duration::from_secs(300)),
        "the consumer did not resume:\n{}",
        log_tail(dir.path(), "member")
    );
    assert!(at_kill < ROWS as u64, "the stream was over before the restart");
    // The hostile messages come last: once they are dead letters, all is read.
    assert!(
        wait_until(Duration::from_secs(60), || dead_letters(&brokers, "restart").len() >= HOSTILE.len()),
        "dead letters missing"
    );
    terminated(member);
    assert_nothing_lost(
        "Tansu broker killed and restarted mid-stream",
        &compare(&sent, &backend.stored(dir.path()), &dead_letters(&brokers, "restart")),
    );
}

/// Scenario 3: DynamoDB Local (with its data on disk) goes away for 10 s twice
/// while a Kafka consumer writes to it. The first time the consumer rides it out
/// with retries; the second time it is killed during the outage, and what it
/// had read but not written must still be on the topic for its successor, so it
/// cannot have committed past what DynamoDB acknowledged.
#[test]
fn dynamodb_outages_while_consuming_from_kafka() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let mut server = DynamoLocal::start_persistent();
    let backend = Backend::Dynamo(server.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let sent = sent(dir.path(), ROWS, 44);
    finished(produce(dir.path(), &brokers, "outage", &sent, &[]));
    send_hostile(dir.path(), &brokers, "outage");

    let mut member = consumer(dir.path(), &brokers, "outage", &backend, "member");
    assert!(backend.reaches(8000, Duration::from_secs(120)), "{}", log_tail(dir.path(), "member"));
    server.kill();
    std::thread::sleep(Duration::from_secs(10));
    server.restart();
    assert!(backend.reaches(20_000, Duration::from_secs(120)), "{}", log_tail(dir.path(), "member"));
    // The outage may meet the bars' write or the alerts' write: either is retried.
    let retried = full_log(dir.path(), "member")
        .lines()
        .any(|line| line.contains("attempt 1 failed, retrying") && line.contains("DynamoDB"));
    assert!(retried, "the outage was retried");

    server.kill();
    std::thread::sleep(Duration::from_secs(5));
    member.kill().unwrap();
    member.wait().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    server.restart();
    let stored_before = backend.progress();
    assert!(stored_before < ROWS as u64, "the stream was over before the second outage");
    std::thread::sleep(SESSION + Duration::from_secs(1));
    let successor = consumer(dir.path(), &brokers, "outage", &backend, "successor");
    assert!(
        backend.reaches(ROWS as u64, Duration::from_secs(300)),
        "the successor did not finish:\n{}",
        log_tail(dir.path(), "successor")
    );
    terminated(successor);
    assert_nothing_lost(
        "DynamoDB Local down 10 s twice (consumer killed during the second)",
        &compare(&sent, &backend.stored(dir.path()), &dead_letters(&brokers, "outage")),
    );
}

fn full_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Scenario 4 (produce; `run` and `consume` have theirs in embedded.rs and
/// kafka.rs): SIGTERM mid-stream stops reading, delivers what was read, exits 0
/// within 5 s, and the topic holds exactly what it reports delivered.
#[test]
fn sigterm_during_produce_delivers_what_was_read() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let sent = sent(dir.path(), ROWS, 55);
    let producer = produce(dir.path(), &brokers, "term", &sent, &["--rate", "4000"]);
    std::thread::sleep(Duration::from_secs(3));
    let out = terminated(producer);
    let (read, delivered) = (summary(&out, "read"), summary(&out, "delivered"));
    assert!(delivered > 0 && read < ROWS as u64, "stopped mid-stream: {out}");
    assert_eq!((delivered, summary(&out, "failed")), (read, 0), "{out}");
    let on_topic = python(&interop("read_topic.py"), &[&brokers, "term", "all"]).lines().count() as u64;
    assert_eq!(on_topic, delivered, "every delivered record is on the topic, once");
}

/// The broker is killed while `produce` streams, then the producer gets
/// SIGTERM: it stops within 10 s (the records the bus never took are not
/// waited for), says how many were not delivered, and fails.
#[test]
fn sigterm_with_the_broker_gone_stops_promptly_and_counts_what_was_not_delivered() {
    let mut broker = Tansu::start(TansuStorage::Memory);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let sent = sent(dir.path(), ROWS, 66);
    let producer = produce(dir.path(), &brokers, "gone", &sent, &["--rate", "2000"]);
    std::thread::sleep(Duration::from_secs(3));
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    let signalled = Instant::now();
    sigterm(&producer);
    let out = producer.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(took < Duration::from_secs(10), "took {took:?} to stop:\n{stdout}\n{stderr}");
    assert!(!out.status.success(), "records were lost, yet it exited 0:\n{stdout}");
    assert!(stderr.contains("not delivered"), "{stderr}");
    let (read, delivered) = (summary(&stdout, "read"), summary(&stdout, "delivered"));
    assert!(delivered < read && read < ROWS as u64, "{stdout}");
}

/// Holds SQLite's write lock for 8 s once the process has stored 20,000 bars,
/// and checks that it stalled without growing.
fn stall_and_measure(db: &Path, pid: u32, rows: u64, what: &str) {
    assert!(wait_until(Duration::from_secs(60), || stored_so_far(db) >= 20_000), "no progress");
    let lock = rusqlite::Connection::open(db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (rss_early, stored_early) = (common::proc_status_kb(pid, "VmRSS") as f64 / 1024.0, stored_so_far(db));
    std::thread::sleep(Duration::from_secs(7));
    let (rss_late, stored_late) = (common::proc_status_kb(pid, "VmRSS") as f64 / 1024.0, stored_so_far(db));
    lock.execute_batch("COMMIT").unwrap();
    println!(
        "stalled store ({what}): RSS {rss_early:.1} MB after 1 s, {rss_late:.1} MB after 8 s; {stored_late} stored"
    );
    assert_eq!(stored_late, stored_early, "the store was stalled");
    assert!(stored_late < rows, "the stream was over before the stall");
    assert!(rss_late < rss_early + 8.0, "memory grew while the store was stalled: {rss_early:.1} → {rss_late:.1} MB");
}

/// Scenario 6: the store stalls (another writer holds SQLite's write lock for
/// 8 s) while a large file streams in. The pipeline waits; memory does not grow
/// (the bus is bounded, the file is not read ahead); then everything is stored.
#[test]
fn a_stalled_store_stops_the_pipeline_not_the_memory() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 400_000u64;
    ok(dir.path(), &["generate", "--rows", &rows.to_string(), "--interval", "1m", "--out", "big.csv"]);
    let db = dir.path().join("stall.db");
    let run = bin()
        .args(["run", "--input", "big.csv", "--db", "stall.db", "--no-report", "--no-insights"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    stall_and_measure(&db, run.id(), rows, "run, in-process bus");
    let out = finished(run);
    assert_eq!(summary(&out, "stored"), rows, "{out}");
    assert_eq!(stored_so_far(&db), rows);
}

/// Scenario 6 over Kafka: the consumer's prefetch is bounded too.
#[test]
fn a_stalled_store_stops_the_consumer_not_the_memory() {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let rows = 200_000u64;
    ok(
        dir.path(),
        &["produce", "--brokers", &brokers, "--topic", "stall", "--rows", &rows.to_string(), "--interval", "1m"],
    );
    let backend = Backend::Sqlite(dir.path().join("stall.db"));
    let member = consumer(dir.path(), &brokers, "stall", &backend, "member");
    let Backend::Sqlite(db) = &backend else { unreachable!() };
    stall_and_measure(db, member.id(), rows, "consume from Kafka");
    assert!(backend.reaches(rows, Duration::from_secs(120)), "{}", log_tail(dir.path(), "member"));
    terminated(member);
}

/// Scenario 7: TLS and SASL settings reach librdkafka, from flags and from the
/// config file, and a password passed that way appears nowhere in the output.
#[test]
fn kafka_security_settings_pass_through_and_secrets_stay_out_of_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2-never-printed";
    let missing_ca = dir.path().join("no-such-ca.pem").display().to_string();
    let settings = [
        "security.protocol=SASL_SSL".to_string(),
        "sasl.mechanism=PLAIN".into(),
        "sasl.username=stockstream".into(),
        format!("sasl.password={secret}"),
        format!("ssl.ca.location={missing_ca}"),
    ];
    let flags: Vec<String> = settings.iter().flat_map(|s| ["--kafka-option".to_string(), s.clone()]).collect();
    let config = dir.path().join("stockstream.toml");
    let quoted: Vec<String> = settings.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(&config, format!("kafka-options = [{}]\n", quoted.join(", "))).unwrap();

    let produce = ["produce", "--brokers", "127.0.0.1:9", "--topic", "secure", "--rows", "10"];
    for (how, extra, env) in [("flags", flags.clone(), None), ("config file", Vec::new(), Some(&config))] {
        let mut cmd = bin();
        cmd.args(produce).args(&extra).env("STOCKSTREAM_LOG", "debug").current_dir(dir.path());
        if let Some(config) = env {
            cmd.env("STOCKSTREAM_CONFIG", config);
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{how}: {text}");
        // librdkafka (built with TLS) took the settings and failed on the CA file.
        assert!(text.contains("ssl.ca.location failed"), "{how}: the TLS setting reached the client: {text}");
        assert!(!text.contains(secret), "{how}: the password appeared in the output: {text}");
    }
}

/// Bars stored of one company so far.
fn stored_of(db: &Path, company: &str) -> u64 {
    let Ok(conn) = rusqlite::Connection::open(db) else { return 0 };
    conn.query_row("SELECT COUNT(*) FROM bars_1m WHERE company = ?1", [company], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// Three members of one group SIGKILLed one after another, each ~1.5 s after
/// it started, then a fourth started at once, as systemd or Kubernetes restart
/// a crashed process — on the defaults, as users run it. The topic holds
/// EURUSD (5,000) and Google (2,148) records before the crashes, and as many
/// again arrive once the fourth runs: it must read every partition within a
/// minute (a kafka-python consumer with a 6 s session does, on the same broker).
#[test]
fn a_member_restarted_right_after_crashes_reads_every_partition() {
    restarted_right_after_crashes(&[]);
}

/// The same with static membership: every incarnation under one `--instance-id`.
#[test]
fn a_static_member_restarted_right_after_crashes_reads_every_partition() {
    restarted_right_after_crashes(&["--instance-id", "member-a"]);
}

fn restarted_right_after_crashes(extra: &[&str]) {
    let broker = Tansu::start(TansuStorage::Sqlite);
    let brokers = broker.brokers();
    let dir = tempfile::tempdir().unwrap();
    let produce_batch = |start: &str| {
        for (symbol, rows) in [("EURUSD", 5000), ("GOOGL", 2148)] {
            let file = format!("{symbol}-{start}.csv");
            let args =
                ["generate", "--symbols", symbol, "--interval", "1m", "--start", start, "--rows", &rows.to_string()];
            std::fs::write(dir.path().join(&file), ok(dir.path(), &args)).unwrap();
            let produced = ok(dir.path(), &["produce", "--brokers", &brokers, "--topic", "restarts", "--input", &file]);
            assert_eq!(summary(&produced, "delivered"), rows, "{produced}");
        }
    };
    produce_batch("2023-04-03");
    let db = dir.path().join("restarts.db");
    let member = |name: &str| {
        bin()
            .args(["consume", "--brokers", &brokers, "--topic", "restarts", "--group", "restarts", "--interval", "1m"])
            .args(["--db", &db.display().to_string()])
            .args(extra)
            .env("STOCKSTREAM_LOG", "info")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    for crash in 1..=3 {
        let mut crashed = member(&format!("crashed{crash}"));
        std::thread::sleep(Duration::from_millis(1500));
        crashed.kill().unwrap();
        crashed.wait().unwrap();
    }
    let started = Instant::now();
    let restarted = member("restarted");
    produce_batch("2024-04-01");
    let everything =
        wait_until(Duration::from_secs(60), || stored_of(&db, "EURUSD") == 10_000 && stored_of(&db, "Google") == 4296);
    let (eurusd, google) = (stored_of(&db, "EURUSD"), stored_of(&db, "Google"));
    println!("restarted member: EURUSD {eurusd}/10000, Google {google}/4296 after {:?}", started.elapsed());
    assert!(
        everything,
        "EURUSD {eurusd}/10000, Google {google}/4296 after 60 s:\n{}",
        full_log(dir.path(), "restarted")
    );
    terminated(restarted);
}
