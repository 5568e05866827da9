//! The embedded pipeline end to end, through the real binary: generated and CSV
//! input, bad rows, idempotent re-runs, queries, clean shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, count, ok, rows, stockstream, summary, wait_until};
use std::time::{Duration, Instant};

#[test]
fn default_run_stores_the_default_dataset_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = ok(dir.path(), &["run"]);
    assert_eq!(summary(&first, "read"), 3577, "{first}");
    assert_eq!(summary(&first, "stored"), 3577);
    assert_eq!(summary(&first, "rejected"), 0);
    let db = dir.path().join("stockstream.db");
    assert_eq!(count(&db, "bars"), 3577);
    let per_company = rows(&db, "SELECT company, COUNT(*) FROM bars GROUP BY company ORDER BY company");
    let names: Vec<_> = per_company.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["Amazon", "Apple", "Google", "Meta", "NVIDIA", "Netflix", "Tesla"]);
    assert!(per_company.iter().all(|r| r[1] == "Integer(511)"), "{per_company:?}");

    let second = ok(dir.path(), &["run"]);
    assert_eq!(summary(&second, "stored"), 3577);
    assert_eq!(count(&db, "bars"), 3577, "a second run must not add rows");
}

/// Writes a generated CSV with bad rows mixed in; returns (path, good rows, bad rows).
fn csv_with_bad_rows(dir: &Path) -> (PathBuf, usize, usize) {
    let path = dir.join("mixed.csv");
    let generated = ok(dir, &["generate", "--symbols", "NVDA,TSLA", "--start", "2024-01-02", "--end", "2024-01-31"]);
    let mut lines: Vec<String> = generated.lines().map(String::from).collect();
    assert_eq!(lines[0], "Date,Open,High,Low,Close,Volume,Company Name");
    let good = lines.len() - 1;
    let dup = lines[5].clone();
    let bad = [
        "2024-13-45,100,110,90,105,1000,NVIDIA".to_string(), // unparseable date
        "2024-02-01,-100,110,90,105,1000,NVIDIA".to_string(), // negative price
        "2024-02-02,100,95,96,97,1000,NVIDIA".to_string(),   // high < low
        "2024-02-03,100,110,90,,1000,Apple".to_string(),     // missing close, nothing to fill from
        dup,                                                 // duplicate row
        "2024-02-05;100;110;90;105;1000;NVIDIA".to_string(), // wrong delimiter: unknown layout
        "2024-02-06,abc,110,90,105,1000,NVIDIA".to_string(), // not a number
        "2024-02-07,100,110,90,105,1000,".to_string(),       // no company
    ];
    for (i, row) in bad.iter().enumerate() {
        lines.insert(3 + i * 4, row.clone());
    }
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, good, bad.len())
}

#[test]
fn bad_rows_are_rejected_with_reasons_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, good, bad) = csv_with_bad_rows(dir.path());
    let out = ok(dir.path(), &["run", "--input", csv.to_str().unwrap(), "--db", "mixed.db"]);
    let (read, stored, rejected) = (summary(&out, "read"), summary(&out, "stored"), summary(&out, "rejected"));
    assert_eq!(read as usize, good + bad, "{out}");
    assert_eq!(stored + rejected, read, "{out}");
    assert_eq!(rejected as usize, bad, "{out}");
    let db = dir.path().join("mixed.db");
    assert_eq!(count(&db, "bars") as usize, good);
    let rejects = rows(&db, "SELECT kind, reason, original, source FROM rejects ORDER BY kind");
    let kinds: Vec<_> = rejects.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "bad_date",
            "duplicate",
            "high_below_open_close",
            "missing_company",
            "missing_value",
            "non_positive_price",
            "not_a_number",
            "wrong_field_count"
        ]
    );
    for r in &rejects {
        assert!(r[1].len() > 15, "reason too terse: {r:?}");
        assert!(!r[2].is_empty(), "original bytes kept: {r:?}");
    }
    let reason = |kind: &str| rejects.iter().find(|r| r[0] == kind).unwrap()[1].clone();
    assert!(reason("bad_date").contains("2024-13-45"), "{}", reason("bad_date"));
    assert!(reason("non_positive_price").contains("Open -100"), "{}", reason("non_positive_price"));
    assert!(reason("missing_value").contains("Close missing for Apple 2024-02-03"));
    assert!(reason("wrong_field_count").contains("row has 1 fields"));
    assert!(rejects.iter().find(|r| r[0] == "wrong_field_count").unwrap()[3].ends_with("mixed.csv:24"));
    // Refused by the consumer, not the reader: still placed by file and line.
    for r in rejects.iter().filter(|r| r[0] != "wrong_field_count" && r[0] != "not_a_number") {
        let (file, line) = r[3].rsplit_once(':').unwrap_or_default();
        assert!(file.ends_with("mixed.csv") && line.parse::<u32>().is_ok(), "placed as {:?}: {r:?}", r[3]);
    }
}

#[test]
fn missing_values_are_forward_filled_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gaps.csv");
    std::fs::write(
        &csv,
        "Date,Open,High,Low,Close,Volume,Company Name\n\
         2024-01-02,10,12,9,11,100,Meta\n\
         2024-01-03,11,13,10,,200,Meta\n\
         2024-01-04,12,,11,12.5,,Meta\n",
    )
    .unwrap();
    let filled = ok(dir.path(), &["run", "--input", "gaps.csv", "--db", "ffill.db"]);
    assert_eq!((summary(&filled, "stored"), summary(&filled, "imputed")), (3, 2), "{filled}");
    let meta = rows(&dir.path().join("ffill.db"), "SELECT close, high, volume FROM bars ORDER BY date");
    assert_eq!(meta[1][0], "Real(11.0)", "close filled from the previous bar");
    assert_eq!(meta[2][1], "Real(13.0)", "high filled from the previous bar");
    assert_eq!(meta[2][2], "Real(200.0)");

    let dropped = ok(dir.path(), &["run", "--input", "gaps.csv", "--db", "drop.db", "--missing", "drop"]);
    assert_eq!((summary(&dropped, "stored"), summary(&dropped, "rejected")), (1, 2), "{dropped}");
}

#[test]
fn a_file_that_is_not_csv_fails_cleanly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in
        [("x.json", &b"{\"Date\": \"2024-01-02\", \"Open\": 1}\n"[..]), ("x.bin", b"\x89PNG\r\n\x1a\n\0\0\xff")]
    {
        std::fs::write(dir.path().join(name), body).unwrap();
        let out = stockstream(dir.path(), &["run", "--input", name, "--db", "never.db"]);
        assert!(!out.status.success(), "{name} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains("unknown column layout"), "{err}");
        assert!(!dir.path().join("never.db").exists(), "a database was created for {name}");
    }
    let missing = stockstream(dir.path(), &["run", "--input", "nope.csv", "--db", "never.db"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open nope.csv"));
}

#[test]
fn query_reads_inclusive_ranges_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--symbols", "AAPL,NFLX", "--start", "2024-03-01", "--end", "2024-03-29"]);
    let csv = ok(
        dir.path(),
        &["query", "--company", "Apple", "--from", "2024-03-04", "--to", "2024-03-08", "--format", "csv"],
    );
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], "Date,Open,High,Low,Close,Volume,Company Name,Symbol");
    let dates: Vec<_> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(dates, ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]);
    assert!(lines[1].ends_with(",Apple,AAPL"));

    // The symbol finds the company; JSON is the wire form.
    let json = ok(dir.path(), &["query", "--company", "NFLX", "--to", "2024-03-05", "--format", "json"]);
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0]["Company Name"], "Netflix");
    assert_eq!(parsed[2]["Date"], "2024-03-05");

    let table = ok(dir.path(), &["query", "--company", "Apple"]);
    assert!(table.contains("(20 bars)"), "{table}");

    // What query writes, run reads back unchanged.
    std::fs::write(dir.path().join("back.csv"), &csv).unwrap();
    let again = ok(dir.path(), &["run", "--input", "back.csv", "--db", "back.db"]);
    assert_eq!(summary(&again, "stored"), 5);
    let original = rows(
        &dir.path().join("stockstream.db"),
        "SELECT * FROM bars WHERE company='Apple' AND date BETWEEN '2024-03-04' AND '2024-03-08' ORDER BY date",
    );
    assert_eq!(rows(&dir.path().join("back.db"), "SELECT * FROM bars ORDER BY date"), original);

    let unknown = stockstream(dir.path(), &["query", "--company", "Enron"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown company \"Enron\""));
}

#[test]
fn intraday_generation_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &["run", "--symbols", "TSLA", "--start", "2024-07-01", "--end", "2024-07-02", "--interval", "1m"],
    );
    assert_eq!(summary(&out, "stored"), 2 * 390, "{out}");
    let first = rows(&dir.path().join("stockstream.db"), "SELECT MIN(date), MAX(date) FROM bars_1m");
    assert_eq!(first[0], ["2024-07-01T13:30:00Z", "2024-07-02T19:59:00Z"]);
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stockstream"))
        .args(["run", "--rate", "2000", "--db", "term.db"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let db = dir.path().join("term.db");
    assert!(wait_until(Duration::from_secs(30), || common::stored_so_far(&db) > 100), "nothing stored");
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(sent.elapsed() < Duration::from_secs(5), "took {:?}", sent.elapsed());
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (read, stored) = (summary(&stdout, "read"), summary(&stdout, "stored"));
    assert!(read > 100 && read < 3577, "stopped mid-stream: {stdout}");
    assert_eq!(stored, read, "everything read was stored");
    assert_eq!(count(&dir.path().join("term.db"), "bars"), stored);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // `stockstream run | head -3`: the reader goes away after three lines,
    // while the report is being drawn; the lines after it meet a closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        bin().args(["run"]).current_dir(dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    drop(lines);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    // Everything was stored before the summary was printed.
    assert_eq!(count(&dir.path().join("stockstream.db"), "bars"), 3577);
}

#[test]
fn prices_are_shown_with_every_digit_they_have() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("eur.csv"),
        "Date,Open,High,Low,Close,Volume,Company Name\n\
         2017-04-19 09:00:00,1.0716,1.07296,1.07083,1.07219,100,EURUSD\n\
         2017-04-19 10:00:00,1.07219,1.0731,1.0712,1.0725,120,EURUSD\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["run", "--input", "eur.csv", "--no-report", "--no-insights"]);
    assert!(out.contains("1.0725"), "the latest close keeps its digits: {out}");
    assert!(out.contains("interval   1h (query, insights, report, serve: --interval 1h)"), "{out}");
    let table = ok(dir.path(), &["query", "--company", "EURUSD", "--interval", "1h"]);
    for value in ["1.0716", "1.07296", "1.07083", "1.07219", "1.0731", "1.0712", "1.0725"] {
        assert!(table.contains(value), "{value} in {table}");
    }
    // Whole-cent prices still read as prices.
    ok(dir.path(), &["run", "--db", "d.db", "--no-report", "--no-insights"]);
    let nvidia = ok(dir.path(), &["query", "--company", "NVDA", "--db", "d.db", "--to", "2023-04-04"]);
    assert!(
        nvidia.lines().nth(1).unwrap().split_whitespace().nth(1).unwrap().split('.').nth(1).unwrap().len() >= 2,
        "{nvidia}"
    );
}

#[test]
fn a_range_that_ends_before_it_starts_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["run", "--no-report", "--no-insights"]);
    for command in [&["query", "--company", "NVDA"][..], &["indicators", "--company", "NVDA"], &["insights"]] {
        let mut args = command.to_vec();
        args.extend(["--from", "2024-05-01", "--to", "2024-04-01"]);
        let out = stockstream(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("from 2024-05-01 is after to 2024-04-01"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn sigterm_stops_a_source_that_waits_for_input() {
    use std::io::Write;
    // A pipe fed slowly: a whole row, then half of one, and nothing more.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.csv");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let child = bin()
        .args(["run", "--input", "slow.csv", "--no-report", "--no-insights"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        pipe.write_all(
            b"Date,Open,High,Low,Close,Volume,Company Name\n2024-01-02,1,2,0.5,1.5,100,NVIDIA\n2024-01-03,1,2",
        )
        .unwrap();
        pipe.flush().unwrap();
        std::thread::sleep(Duration::from_secs(15));
    });
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(sent.elapsed() < Duration::from_secs(3), "took {:?} after SIGTERM", sent.elapsed());
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(summary(&stdout, "stored"), 1, "what was read whole is written: {stdout}");
    drop(writer);
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.db"), "these are my notes, not a database\n".repeat(200)).unwrap();
    let out = stockstream(dir.path(), &["query", "--company", "NVDA", "--db", "notes.db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("notes.db") && stderr.contains("not a database"), "{stderr}");
}

/// One instrument, however a feed spells it: ticks of `AAPL`, `aapl`, `Aapl`
/// (and `NVDA`, `NVIDIA`, `"NVDA"` quoted as CSV writers quote) in one minute
/// make one bar each, never several windows overwriting one row.
#[test]
fn ticks_of_one_instrument_in_any_case_or_alias_make_one_bar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("case.csv"),
        "symbol,time,price,size\n\
         AAPL,2024-03-04T15:00:01Z,100,10\n\
         aapl,2024-03-04T15:00:02Z,200,15\n\
         Aapl,2024-03-04T15:00:03Z,300,20\n\
         NVDA,2024-03-04T15:00:04Z,50,5\n\
         NVIDIA,2024-03-04T15:00:05Z,60,6\n\
         \"NVDA\",2024-03-04T15:00:06Z,55,4\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["run", "--source", "ticks", "--input", "case.csv", "--bar", "1m", "--no-report"]);
    assert_eq!(summary(&out, "stored"), 2, "{out}");
    let db = dir.path().join("stockstream.db");
    let bars = rows(&db, "SELECT company, symbol, open, high, low, close, volume FROM bars_1m ORDER BY company");
    let shown: Vec<String> = bars.iter().map(|r| r.join(" ")).collect();
    assert_eq!(
        shown,
        [
            "Apple AAPL Real(100.0) Real(300.0) Real(100.0) Real(300.0) Real(45.0)",
            "NVIDIA NVDA Real(50.0) Real(60.0) Real(50.0) Real(55.0) Real(15.0)",
        ]
    );
}

/// A tick refused after the bus (late, past its window) is kept with the
/// file and line it was read from, as every other reject of a file is.
#[test]
fn a_late_tick_in_a_file_is_kept_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("late.csv"),
        "symbol,time,price,size\n\
         NVDA,2024-03-04T15:00:01Z,50,5\n\
         NVDA,2024-03-04T15:03:30Z,51,5\n\
         NVDA,2024-03-04T15:00:30Z,52,5\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["run", "--source", "ticks", "--input", "late.csv", "--bar", "1m", "--no-report"]);
    assert_eq!(summary(&out, "rejected"), 1, "{out}");
    let rejects = rows(&dir.path().join("stockstream.db"), "SELECT kind, source FROM rejects");
    assert_eq!(rejects, [["late", "late.csv:4"]]);
}

/// `Apple`, `apple` and `APPLE` in a file are one company (its registered
/// name), as are unregistered names differing in case (the first spelling).
#[test]
fn company_names_in_any_case_are_one_company() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("names.csv"),
        "Date,Open,High,Low,Close,Volume,Company Name\n\
         2024-01-02,10,11,9,10,100,Apple\n\
         2024-01-03,10,11,9,10.5,100,apple\n\
         2024-01-04,10,11,9,11,100,APPLE\n\
         2024-01-02,5,6,4,5,100,Acme Corp\n\
         2024-01-03,5,6,4,5.5,100,ACME CORP\n",
    )
    .unwrap();
    ok(dir.path(), &["run", "--input", "names.csv", "--no-report"]);
    let db = dir.path().join("stockstream.db");
    let companies = rows(&db, "SELECT company, symbol, count(*) FROM bars GROUP BY company, symbol ORDER BY company");
    let shown: Vec<String> = companies.iter().map(|r| r.join(" ")).collect();
    assert_eq!(shown, ["Acme Corp ACMECORP Integer(2)", "Apple AAPL Integer(3)"]);
    let apple = ok(dir.path(), &["query", "--company", "apple", "--format", "csv"]);
    assert_eq!(apple.lines().count(), 4, "{apple}");
    assert!(apple.lines().skip(1).all(|l| l.ends_with(",Apple,AAPL")), "{apple}");
}

/// A newest-first file is put in date order (and the summary says so): its
/// indicators, alerts and insights are those of the same file in date order,
/// never computed over a time-reversed series.
#[test]
fn a_newest_first_file_is_read_in_date_order() {
    let dir = tempfile::tempdir().unwrap();
    let csv = ok(dir.path(), &["generate"]);
    let mut lines: Vec<&str> = csv.lines().collect();
    std::fs::write(dir.path().join("ordered.csv"), lines.join("\n") + "\n").unwrap();
    lines[1..].reverse();
    std::fs::write(dir.path().join("reversed.csv"), lines.join("\n") + "\n").unwrap();

    let indicators = |file: &str| ok(dir.path(), &["indicators", "--input", file, "--format", "csv"]);
    let (ordered, reversed) = (indicators("ordered.csv"), indicators("reversed.csv"));
    assert_eq!(ordered.lines().count(), 3577 + 1);
    let sorted = |text: &str| {
        let mut rows: Vec<String> = text.lines().map(String::from).collect();
        rows.sort();
        rows
    };
    assert_eq!(sorted(&reversed), sorted(&ordered), "indicators over the reversed file");

    let run = |file: &str, db: &str| ok(dir.path(), &["run", "--input", file, "--db", db, "--no-report"]);
    let out = run("reversed.csv", "reversed.db");
    assert!(out.contains("not in date order: 3577 rows sorted by date"), "{out}");
    run("ordered.csv", "ordered.db");
    let alerts = |db: &str| rows(&dir.path().join(db), "SELECT company, date, rule FROM alerts ORDER BY 1, 2, 3");
    let ordered_alerts = alerts("ordered.db");
    assert!(ordered_alerts.len() > 100, "{}", ordered_alerts.len());
    assert_eq!(alerts("reversed.db"), ordered_alerts);
    let insights = |file: &str| ok(dir.path(), &["insights", "--db", file]);
    assert_eq!(insights("reversed.db"), insights("ordered.db"));
}

/// Daily bars and one-minute bars run into one database each go to the
/// table of their interval (told from the file's dates), and a file mixing
/// the two is refused, naming the first line of each.
#[test]
fn daily_and_minute_bars_go_to_their_own_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    ok(dir.path(), &["run", "--db", "one.db", "--no-report", "--no-insights"]);
    let minutes = ["--symbols", "NVDA,TSLA", "--interval", "1m", "--start", "2023-04-03", "--end", "2023-04-04"];
    let csv = ok(dir.path(), &[&["generate"][..], &minutes].concat());
    std::fs::write(dir.path().join("minute.csv"), &csv).unwrap();
    let out = ok(dir.path(), &["run", "--input", "minute.csv", "--db", "one.db", "--no-report", "--no-insights"]);
    assert_eq!(summary(&out, "stored"), 2 * 2 * 390, "{out}");

    assert_eq!(count(&db, "bars"), 3577, "the daily table holds the daily bars only");
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM bars WHERE date LIKE '%T%'"), [["Integer(0)"]]);
    assert_eq!(count(&db, "bars_1m"), 2 * 2 * 390);
    let stored = |interval: &str| {
        let query = ["query", "--company", "NVIDIA", "--interval", interval, "--db", "one.db", "--format", "json"];
        serde_json::from_str::<Vec<serde_json::Value>>(&ok(dir.path(), &query)).unwrap().len()
    };
    assert_eq!((stored("1d"), stored("1m")), (511, 780));

    let daily = ok(dir.path(), &["generate", "--symbols", "AAPL"]);
    let mut mixed: Vec<&str> = daily.lines().take(6).collect();
    mixed.extend(csv.lines().skip(1).take(5));
    std::fs::write(dir.path().join("mixed.csv"), mixed.join("\n") + "\n").unwrap();
    let refused = common::stockstream(dir.path(), &["run", "--input", "mixed.csv", "--db", "one.db", "--no-report"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("mixes daily and intraday bars (daily from mixed.csv:2 (2023-04-03), intraday from mixed.csv:7 (2023-04-03T13:30:00Z))"),
        "{stderr}"
    );
    assert_eq!((count(&db, "bars"), count(&db, "bars_1m")), (3577, 1560), "nothing of the refused file stored");
}
