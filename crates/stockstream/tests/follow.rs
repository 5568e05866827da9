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

/// Reads server-sent events until `until` of kind `bar` came or 60 s passed:
/// (bar events, alert events).
async fn events(base: String, until: usize) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let response = reqwest::get(format!("{base}/api/stream")).await.unwrap();
    let mut body = response.bytes_stream();
    let (mut buffer, mut bars, mut alerts) = (String::new(), Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bars.len() < until {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            if block.starts_with("event: bar") {
                bars.push(value);
            } else if block.starts_with("event: alert") {
                alerts.push(value);
            }
        }
    }
    (bars, alerts)
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
    let member = |name: &str| {
        let mut args = vec!["consume", "--group", "g", "--db", db];
        args.extend(kafka);
        spawn(dir, &args, name)
    };
    let _members = [member("m1.log"), member("m2.log")];
    assert!(wait_until(Duration::from_secs(60), || Path::new(db).exists()), "no member started");

    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for i in 0..2 {
        let bind = format!("127.0.0.1:{}", stockstream_testkit::free_port());
        let mut args = vec!["serve", "--bind", bind.as_str(), "--db", db];
        args.extend(kafka);
        servers.push(spawn(dir, &args, &format!("serve{i}.log")));
        assert!(wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(&bind).is_ok()), "serve {i}");
        bases.push(format!("http://{bind}"));
    }
    // Each server assigns the partitions at their ends before serving; the
    // end offsets are resolved on the first fetch: let it happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watchers: Vec<_> = bases.iter().map(|b| tokio::spawn(events(b.clone(), 500))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2 symbols over 2024: 504 bars, at 250 a second.
    let mut produce = vec!["produce", "--symbols", "NVDA,TSLA", "--start", "2024-01-02", "--end", "2024-12-31"];
    produce.extend(["--rate", "250"]);
    produce.extend(kafka);
    let out = bin().args(&produce).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for (i, w) in watchers.into_iter().enumerate() {
        let (bars, alerts) = w.await.unwrap();
        let log = std::fs::read_to_string(dir.join(format!("serve{i}.log"))).unwrap();
        assert!(bars.len() >= 500, "serve {i} streamed {} bars:\n{log}", bars.len());
        let late = bars.iter().filter(|b| b["indicators"]["sma50"].is_number()).count();
        assert!(late > 300, "indicators computed as the bars stream: {late}");
        assert!(!alerts.is_empty(), "serve {i}: no alert from the members");
        assert!(alerts.iter().all(|a| a["rule"].is_string() && a["company"].is_string()));
    }
}
