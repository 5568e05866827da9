//! Processes sharing one SQLite file. In a test binary of its own: the runs
//! are heavy, and would slow the timed tests beside them.

mod common;

use common::{bin, count, ok};

#[test]
fn two_runs_on_a_new_database_both_store_everything() {
    // Both create the schema at the same moment; neither may fail on the lock.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["generate", "--symbols", "AAA,BBB", "--interval", "1m", "--rows", "100000", "--out", "g1.csv"]);
    ok(
        d,
        &["generate", "--symbols", "CCC,DDD", "--interval", "1m", "--rows", "100000", "--seed", "7", "--out", "g2.csv"],
    );
    for round in 0..5 {
        let db = format!("fr{round}.db");
        let spawn = |input: &str| {
            bin()
                .args(["run", "--input", input, "--db", &db, "--no-report", "--no-insights"])
                .current_dir(d)
                .output()
                .unwrap()
        };
        let (first, second) = std::thread::scope(|s| {
            let a = s.spawn(|| spawn("g1.csv"));
            let b = s.spawn(|| spawn("g2.csv"));
            (a.join().unwrap(), b.join().unwrap())
        });
        for out in [&first, &second] {
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(count(&d.join(&db), "bars_1m"), 200_000, "round {round}");
    }
}
