//! A live feed's start with history: `stockstream run --source yahoo-live
//! --backfill 5d` of 7 symbols against a local chart API and streamer
//! (`tests/interop/market_server.py --bars-only`), whole process, timed from
//! its start to its connecting to the feed (history fetched and on the bus:
//! the first live tick follows) and to the whole history stored; beside the floor: a plain script making
//! the same requests and inserting the same bars into SQLite.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{median, run_peer};

#[derive(clap::Args, Debug)]
pub struct BackfillBenchArgs {
    /// Days of one-minute bars (pre- and post-market included).
    #[arg(long, default_value_t = 5)]
    pub days: u32,
    /// Symbols backfilled.
    #[arg(long, default_value = "NVDA,TSLA,META,AMZN,AAPL,NFLX,GOOGL")]
    pub symbols: String,
    /// Runs of each, alternating.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value = "crates/stockstream/tests/interop/market_server.py")]
    pub market: PathBuf,
    #[arg(long, default_value = "crates/sources/benches/backfill_peer.py")]
    pub peer: PathBuf,
}

struct Market(Child, u16);

impl Drop for Market {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

pub(crate) async fn backfill(args: BackfillBenchArgs) -> anyhow::Result<()> {
    let product = std::env::current_exe()?.with_file_name("stockstream");
    anyhow::ensure!(product.is_file(), "{} not built (cargo build --release -p stockstream)", product.display());
    let dir = tempfile::tempdir()?;
    let port_file = dir.path().join("port");
    let child = Command::new("python3").arg(&args.market).arg(&port_file).arg("--bars-only").spawn()?;
    let started = Instant::now();
    while !port_file.exists() {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the market server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let market = Market(child, std::fs::read_to_string(&port_file)?.trim().parse()?);
    let base = format!("http://127.0.0.1:{}", market.1);
    let symbols: Vec<&str> = args.symbols.split(',').collect();
    println!(
        "bench backfill: {} symbols x {} days of 1m bars from a local chart API, whole process, {} runs each",
        symbols.len(),
        args.days,
        args.runs
    );
    let (mut ours_first, mut ours_all, mut peers) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        // The floor: the same requests, the same bars into SQLite.
        let to = now_ms();
        let from = to - i64::from(args.days) * 86_400_000;
        let peer_db = dir.path().join(format!("peer{run}.db"));
        let p1 = (from / 1000).to_string();
        let p2 = (to / 1000).to_string();
        peers.push(run_peer(&args.peer, &[&base, &args.symbols, &p1, &p2, peer_db.to_str().unwrap()], "seconds")?);
        // The chart API sends the minute in progress too; a backfill leaves
        // it to the live ticks. Compared: the closed minutes.
        let in_progress = to - to % 60_000;
        let bars: u64 = rusqlite::Connection::open(&peer_db)?.query_row(
            "SELECT COUNT(*) FROM bars WHERE t < ?1",
            [in_progress / 1000],
            |r| r.get(0),
        )?;
        let before = chrono::DateTime::from_timestamp_millis(in_progress).expect("now").format("%Y-%m-%dT%H:%M:%SZ");
        let ours_sql = format!("SELECT COUNT(*) FROM bars_1m WHERE date < '{before}'");

        let db = dir.path().join(format!("ours{run}.db"));
        let started = Instant::now();
        let mut ours = Command::new(&product)
            .args(["run", "--source", "yahoo-live", "--bar", "1m", "--symbols", &args.symbols])
            .args(["--backfill", &format!("{}d", args.days), "--base-url", &base])
            .args(["--url", &format!("ws://127.0.0.1:{}/", market.1), "--db", db.to_str().unwrap()])
            .args(["--no-report", "--no-insights"])
            .env("STOCKSTREAM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // The feed connects once the history is fetched and on the bus; its
        // first tick follows within the streamer's 250 ms.
        let log = ours.stderr.take().expect("piped");
        let connected = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(log).lines();
            let at = lines.by_ref().map_while(Result::ok).find(|l| l.contains("connected")).map(|_| started.elapsed());
            lines.for_each(drop);
            at
        });
        let mut all = None;
        while all.is_none() {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "the run did not store its history in 300 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let Ok(conn) = rusqlite::Connection::open(&db) else { continue };
            if conn.query_row(&ours_sql, [], |r| r.get::<_, u64>(0)).unwrap_or(0) >= bars {
                all = Some(started.elapsed().as_secs_f64());
            }
        }
        unsafe { libc::kill(ours.id() as libc::pid_t, libc::SIGINT) };
        ours.wait()?;
        let first = connected.join().expect("the log reader").map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
        let all = all.expect("set");
        println!(
            "  run {}: {bars} bars; peer {:.3} s; stockstream connected to the feed {first:.3} s, history stored {all:.3} s",
            run + 1,
            peers[run]
        );
        ours_first.push(first);
        ours_all.push(all);
    }
    let (peer, all, first) = (median(peers), median(ours_all), median(ours_first));
    println!(
        "history stored: stockstream {all:.3} s (whole process), peer {peer:.3} s: {:.2}x the floor (medians)",
        all / peer
    );
    println!("feed connected (the first live tick follows within 250 ms): {first:.3} s after the start (median)");
    Ok(())
}
