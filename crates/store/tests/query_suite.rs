//! One query suite, run against every store backend with the same data: the
//! backends must answer alike. DynamoDB runs against a real DynamoDB Local.

use std::sync::Arc;

use stockstream_core::SeriesSummary;
use stockstream_core::{Bar, DateRange, Ts};
use stockstream_store::{CatalogEntry, DynamoSettings, DynamoStore, SqliteStore, Store};
use stockstream_testkit::DynamoLocal;

fn bar(company: &str, ts: &str, close: f64) -> Bar {
    Bar {
        symbol: stockstream_core::symbol_for_company(company),
        company: company.into(),
        ts: ts.parse().unwrap(),
        open: close - 0.25,
        high: close + 1.125,
        low: close - 1.5,
        close,
        volume: (close * 1000.0).round(),
        vwap: None,
        trades: None,
    }
}

/// Daily and intraday bars over several companies, with awkward decimals.
fn data() -> Vec<Bar> {
    let mut bars = Vec::new();
    for (i, day) in ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"].iter().enumerate() {
        bars.push(bar("NVIDIA", day, 100.1 + i as f64 * 0.7));
        bars.push(bar("Tesla", day, 200.3 - i as f64 * 1.1));
    }
    for minute in 0..90 {
        let ts = format!("2024-01-03T{:02}:{:02}:00Z", 14 + (30 + minute) / 60, (30 + minute) % 60);
        let mut b = bar("Apple", &ts, 180.0 + minute as f64 / 100.0);
        // Some made from trades: their VWAP and trade count are kept.
        if minute % 3 == 0 {
            (b.vwap, b.trades) = (Some(b.close - 0.125 + minute as f64 / 1e4), Some(minute as u64 * 7 + 1));
        }
        bars.push(b);
    }
    bars.push(bar("Berkshire Hathaway", "2024-01-02", 101.3));
    bars
}

fn ranges() -> Vec<(Option<&'static str>, Option<&'static str>)> {
    vec![
        (None, None),
        (Some("2024-01-03"), Some("2024-01-03")),
        (Some("2024-01-03"), None),
        (None, Some("2024-01-04")),
        (Some("2024-01-03T15:00:00Z"), Some("2024-01-03T15:10:00Z")),
        (Some("2024-01-06"), Some("2024-01-07")),
        (Some("2024-01-09"), None),
    ]
}

type Answers = (Vec<String>, Vec<CatalogEntry>, u64, Vec<Vec<Bar>>);

async fn answers(store: &dyn Store) -> Answers {
    let mut ranged = Vec::new();
    for company in ["NVIDIA", "Tesla", "Apple", "Berkshire Hathaway", "Nobody"] {
        for (from, to) in ranges() {
            let range = DateRange::new(from.map(|f| f.parse::<Ts>().unwrap()), to.map(|t| t.parse::<Ts>().unwrap()));
            ranged.push(store.range(company, &range).await.unwrap());
        }
    }
    (store.companies().await.unwrap(), store.catalog(None, 100).await.unwrap(), store.count().await.unwrap(), ranged)
}

async fn load(store: &dyn Store) {
    let bars = data();
    // Twice, and in two batches: idempotent either way.
    store.upsert(bars.clone().into()).await.unwrap();
    store.upsert(bars[..40].to_vec().into()).await.unwrap();
    // A duplicate key inside one write: the last one wins.
    store.upsert(vec![bar("Tesla", "2024-01-08", 1.0), bar("Tesla", "2024-01-08", 195.9)].into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_dynamodb_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let server = DynamoLocal::start();
    let settings = DynamoSettings {
        table: "SuiteMkt".into(),
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        ..Default::default()
    };
    let dynamo: Arc<dyn Store> = Arc::new(DynamoStore::connect(&settings).await.unwrap());
    load(sqlite.as_ref()).await;
    load(dynamo.as_ref()).await;

    let (a, b) = (answers(sqlite.as_ref()).await, answers(dynamo.as_ref()).await);
    assert_eq!(a.0, ["Apple", "Berkshire Hathaway", "NVIDIA", "Tesla"]);
    assert_eq!(a.2, data().len() as u64);
    let tesla_last = &a.1.iter().find(|e| e.company() == "Tesla").unwrap().last_bar;
    assert_eq!((tesla_last.ts.to_string().as_str(), tesla_last.close), ("2024-01-08", 195.9));
    let counts: Vec<usize> = a.3.iter().map(Vec::len).collect();
    assert_eq!(&counts[14..21], [90, 90, 90, 90, 11, 0, 0], "Apple's intraday ranges");
    let apple_minutes: Vec<Bar> = data().into_iter().filter(|b| b.company == "Apple").collect();
    assert_eq!(a.3[14], apple_minutes, "Apple's minutes, VWAP and trades included");
    assert_eq!(a, b, "SQLite and DynamoDB disagree");
    catalog_is_exact(sqlite.as_ref()).await;
    catalog_is_exact(dynamo.as_ref()).await;
    // A company by its name in any case or by its symbol; an unknown one is
    // a lookup too, never a listing of the companies.
    for store in [&sqlite, &dynamo] {
        let found = |name: &'static str| async move {
            stockstream_store::accounted_to("lookups".into(), store.find_company(name)).await.unwrap()
        };
        assert_eq!(found("nvidia").await.as_deref(), Some("NVIDIA"));
        assert_eq!(found("berkshire HATHAWAY").await.as_deref(), Some("Berkshire Hathaway"));
        assert_eq!(found("tsla").await.as_deref(), Some("Tesla"));
        assert_eq!(found("Nobody").await, None);
    }
    let lookups: Vec<&str> = stockstream_store::dynamodb_usage_by_account()
        .keys()
        .filter(|(account, _)| &**account == "lookups")
        .map(|(_, operation)| *operation)
        .collect();
    assert_eq!(lookups, ["GetItem"], "a lookup listed the companies");

    // A second connection finds the table and uses it as it is.
    let again = DynamoStore::connect(&settings).await.unwrap();
    assert_eq!(again.count().await.unwrap(), data().len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_another_key_schema_is_refused() {
    let server = DynamoLocal::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stockstream/tests/interop/ddb_create_table.py");
    stockstream_testkit::python(&script, &[&server.endpoint(), "Other", "Symbol", "Date"]);
    let settings = DynamoSettings {
        table: "Other".into(),
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        ..Default::default()
    };
    let err = DynamoStore::connect(&settings).await.err().expect("a foreign key schema was accepted").to_string();
    assert!(err.contains("table Other has key schema [Symbol"), "{err}");
    assert!(err.contains("needs partition key \"Company Name\" (S) and sort key \"Date\" (S)"), "{err}");
}

/// Every catalog entry is the summary of the company's stored bars: counts
/// and last bars exactly, statistics within 1e-9 of a fold of all of them.
async fn catalog_is_exact(store: &dyn Store) {
    let entries = store.catalog(None, 1000).await.unwrap();
    assert_eq!(entries.len(), store.companies().await.unwrap().len());
    let mut total = 0;
    for entry in entries {
        let stored = store.range(entry.company(), &DateRange::default()).await.unwrap();
        let want = SeriesSummary::of_bars(&stored).unwrap();
        total += entry.bars();
        assert_eq!((entry.bars(), &entry.last_bar), (want.bars(), stored.last().unwrap()), "{}", entry.company());
        let (g, w) = (&entry.summary, &want);
        assert_eq!((g.first, g.last, g.days), (w.first, w.last, w.days));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        let pairs = [
            (g.ohlcv.mean[3], w.ohlcv.mean[3]),
            (g.ohlcv.c[3][4], w.ohlcv.c[3][4]),
            (g.trend.c[0][1], w.trend.c[0][1]),
            (g.log_returns.c[0][0], w.log_returns.c[0][0]),
            (g.max_drawdown, w.max_drawdown),
            (g.peak, w.peak),
            (g.first_close, w.first_close),
            (g.last_close, w.last_close),
        ];
        for (i, (a, b)) in pairs.into_iter().enumerate() {
            assert!(close(a, b), "{}: statistic {i}: {a} vs {b}", entry.company());
        }
    }
    assert_eq!(total, store.count().await.unwrap());
}

/// Two writers on one store, each with its own connection, writing batches
/// of the same companies at once: new days, revisions, old days redelivered.
async fn two_writers(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let write = |store: Arc<dyn Store>, seed: u64| async move {
        let mut seed = seed;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
        for round in 0..60u64 {
            let batch: Vec<Bar> = (0..1 + next(12))
                .map(|_| {
                    let company = ["NVIDIA", "Tesla", "Apple"][next(3) as usize];
                    let day = match next(8) {
                        0 => next(round + 1),
                        _ => round + next(3),
                    };
                    let ts = Ts::Date(start + chrono::Days::new(day));
                    bar(company, &ts.to_string(), 50.0 + next(10_000) as f64 / 100.0)
                })
                .collect();
            store.upsert(batch.into()).await.unwrap();
        }
    };
    let (x, y) = tokio::join!(tokio::spawn(write(a, 1)), tokio::spawn(write(b, 2)));
    x.unwrap();
    y.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_the_catalog_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let sqlite = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    two_writers(sqlite(), sqlite()).await;
    catalog_is_exact(sqlite().as_ref()).await;

    let server = DynamoLocal::start();
    let settings = DynamoSettings {
        table: "Writers".into(),
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        ..Default::default()
    };
    let first: Arc<dyn Store> = Arc::new(DynamoStore::connect(&settings).await.unwrap());
    let second: Arc<dyn Store> = Arc::new(DynamoStore::connect(&settings).await.unwrap());
    two_writers(first.clone(), second).await;
    catalog_is_exact(first.as_ref()).await;
    // The writers did collide, and the losers folded again.
    assert!(stockstream_store::catalog_conflicts() > 0, "no concurrent update of one entry: the test tests nothing");
}
