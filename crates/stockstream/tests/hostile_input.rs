//! The kept corpus of nasty inputs (`fuzz/nasty/`, also the fuzzers' seeds): no
//! panic, each record accepted sanely or rejected with a reason, a file in no
//! known layout refused before anything is written. The same checks run under
//! the fuzzers (`scripts/fuzz.sh`).

mod common;

use std::path::{Path, PathBuf};

use common::{count, rows, stockstream, summary};
use stockstream_testkit::hostile::{check_csv, check_json, Taken};

fn nasty(kind: &str) -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/nasty").join(kind);
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    files
}

const fn taken(accepted: usize, rejected: usize) -> Taken {
    Taken { accepted, rejected, refused: false }
}
const REFUSED: Taken = Taken { accepted: 0, rejected: 0, refused: true };

/// What each nasty CSV file must give. A file added to the corpus must be added here.
const CSV: &[(&str, Taken)] = &[
    ("berkshire-a-and-b.csv", taken(2, 0)),
    ("binary-garbage.csv", REFUSED),
    ("bom.csv", taken(2, 0)),
    ("control-characters.csv", taken(0, 2)),
    ("crlf-and-empty-lines.csv", taken(2, 0)),
    ("dates-out-of-range.csv", taken(0, 10)),
    ("decimal-commas.csv", taken(0, 1)),
    ("empty.csv", REFUSED),
    ("five-decimal-prices.csv", taken(4, 0)),
    ("header-only.csv", taken(0, 0)),
    // 1e308 prices, a 30-digit volume and 1e-21 prices are numbers; 1e400 and 1e999 are not.
    ("huge-numbers.csv", taken(3, 2)),
    // A row with no price is refused, never filled from a later bar.
    ("imputation-back-in-time.csv", taken(2, 1)),
    ("inconsistent-ohlc.csv", taken(0, 2)),
    ("invalid-utf8.csv", taken(0, 2)),
    // A first bar with a gap has nothing to fill from; a later one is forward-filled.
    // A row with no price at all is refused (`no_prices`), never filled in.
    ("missing-values.csv", taken(1, 2)),
    ("nan-infinity.csv", taken(0, 5)),
    ("negative-and-zero.csv", taken(0, 3)),
    ("one-mb-field.csv", taken(0, 2)),
    ("only-blank-lines.csv", REFUSED),
    ("quoted-newline-company.csv", taken(1, 1)),
    ("script-comment-company.csv", taken(1, 0)),
    ("semicolons.csv", REFUSED),
    ("tabs.csv", REFUSED),
    // The open quote swallows the rest of the file into one field, which is refused.
    ("unbalanced-quotes.csv", taken(0, 1)),
    // Cut at 1 MiB, its start kept; the line after the cut is a row of its own.
    ("unclosed-quote-over-the-limit.csv", taken(2, 2)),
    ("wrong-column-counts.csv", taken(1, 2)),
];

#[test]
fn every_nasty_csv_gives_what_it_should() {
    let files = nasty("csv");
    assert_eq!(
        files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        CSV.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    for ((name, path), (_, expected)) in files.iter().zip(CSV) {
        assert_eq!(&check_csv(&std::fs::read(path).unwrap()), expected, "{name}");
    }
}

#[test]
fn every_nasty_wire_message_is_taken_or_rejected_with_a_reason() {
    let accepted = ["good.json", "number-as-text.json"];
    let files = nasty("json");
    assert!(files.len() >= 25, "the corpus is there");
    for (name, path) in files {
        let expected = if accepted.contains(&name.as_str()) { taken(1, 0) } else { taken(0, 1) };
        assert_eq!(check_json(&std::fs::read(&path).unwrap()), expected, "{name}");
    }
}

/// The whole `run` over each nasty file: exit 0 with every row stored or kept as
/// a reject with its reason, or a clean refusal naming the file, never a panic.
#[test]
fn run_takes_every_nasty_csv_without_losing_a_row() {
    let dir = tempfile::tempdir().unwrap();
    for ((name, path), (_, expected)) in nasty("csv").iter().zip(CSV) {
        let db = dir.path().join(format!("{name}.db"));
        let out = stockstream(
            dir.path(),
            &["run", "--input", &path.display().to_string(), "--db", &db.display().to_string()],
        );
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if expected.refused {
            assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
            assert!(stderr.contains(name.as_str()), "{name}: the error names the file: {stderr}");
            continue;
        }
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        assert_eq!(
            (summary(&stdout, "stored"), summary(&stdout, "rejected")),
            (expected.accepted as u64, expected.rejected as u64),
            "{name}: {stdout}"
        );
        assert_eq!(common::stored_so_far(&db), expected.accepted as u64, "{name}: bars of every interval");
        let rejects = rows(&db, "SELECT reason, length(original) FROM rejects");
        assert_eq!(rejects.len(), expected.rejected, "{name}");
        for r in rejects {
            assert!(!r[0].trim().is_empty() && r[1] != "Integer(0)", "{name}: a reject without reason or text: {r:?}");
            assert!(r[0].len() < 400, "{name}: a reason is a sentence, not the record: {} bytes", r[0].len());
        }
    }
}

const MB: u64 = 1 << 20;

fn spawn_run(dir: &Path, input: &Path, db: &Path) -> std::process::Child {
    common::bin()
        .args(["run", "--input", &input.display().to_string(), "--db", &db.display().to_string(), "--no-report"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A record without end is cut at the limit and kept by its start; the rows
/// around it are stored; memory stays flat (a 200 MB line).
#[test]
fn a_line_that_never_ends_is_cut_and_memory_stays_flat() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    writeln!(f, "Date,Open,High,Low,Close,Volume,Company Name\n2024-01-02,1,2,0.5,1.5,10,NVIDIA").unwrap();
    write!(f, "2024-01-03,1,2,0.5,1.5,10,\"").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        f.write_all(&block).unwrap();
    }
    writeln!(f, "\n2024-01-04,1,2,0.5,1.5,10,NVIDIA").unwrap();
    drop(f);
    let db = dir.path().join("long.db");
    let (code, peak) = common::wait_with_peak_rss(spawn_run(dir.path(), &input, &db));
    assert_eq!(code, Some(0));
    assert!(peak < 100 * MB, "peak RSS {} MB", peak / MB);
    assert_eq!(count(&db, "bars"), 2, "the rows around the long one are stored");
    let rejects = rows(&db, "SELECT source, reason, length(original), substr(original, 1, 27) FROM rejects");
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(rejects[0][0].ends_with("long.csv:3"), "{rejects:?}");
    assert!(rejects[0][1].contains("longer than 1048576 bytes"), "{rejects:?}");
    assert_eq!(rejects[0][2], "Integer(4096)");
    assert_eq!(rejects[0][3], "2024-01-03,1,2,0.5,1.5,10,x", "the start is kept");
}

/// `/dev/zero` as CSV: refused at its header, which never ends, at once.
/// As JSON lines (a `.jsonl` link): read and dropped until SIGTERM, which stops
/// it at once, memory flat throughout.
#[test]
fn dev_zero_is_refused_as_csv_and_read_flat_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let zero = Path::new("/dev/zero");
    let out = stockstream(dir.path(), &["run", "--input", "/dev/zero", "--db", "z.db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/dev/zero") && stderr.contains("header is longer than"), "{stderr}");

    let link = dir.path().join("zero.jsonl");
    std::os::unix::fs::symlink(zero, &link).unwrap();
    let child = spawn_run(dir.path(), &link, &dir.path().join("zl.db"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let stopped = std::time::Instant::now();
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let (code, peak) = common::wait_with_peak_rss(child);
    assert!(stopped.elapsed() < std::time::Duration::from_secs(5), "SIGTERM took {:?}", stopped.elapsed());
    assert!(code.is_some(), "it exits, not killed by the signal");
    assert!(peak < 100 * MB, "peak RSS {} MB", peak / MB);
}
