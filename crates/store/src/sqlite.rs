//! The embedded store: one SQLite file in WAL mode. Bars live in `bars`, keyed by
//! `(company, date)`, and bars aggregated from ticks in one table per interval
//! (`bars_1m`); rejected records in `rejects`, with reason and original bytes;
//! where each symbol's windows stand in `window_marks`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode};
use stockstream_core::{
    Alert, AlertQuery, Bar, DateRange, DeadLetters, Reject, SeriesSummary, StoreError, Ts, WindowMark,
};

use crate::{CatalogEntry, Store};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rejects (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    source   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    original BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS window_marks (
    bars         TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    watermark    INTEGER NOT NULL,
    day_volume   REAL,
    partition    INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    PRIMARY KEY (bars, symbol)
) WITHOUT ROWID;
";

/// One table of bars (`{bars}`) and the alerts they raised (`{alerts}`).
const BARS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS {alerts} (
    company TEXT NOT NULL,
    date    TEXT NOT NULL,
    rule    TEXT NOT NULL,
    symbol  TEXT NOT NULL,
    message TEXT NOT NULL,
    detail  TEXT NOT NULL,
    PRIMARY KEY (company, date, rule)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {alerts}_by_date ON {alerts} (date);
CREATE TABLE IF NOT EXISTS {bars} (
    company TEXT NOT NULL,
    date    TEXT NOT NULL,
    symbol  TEXT NOT NULL,
    open    REAL NOT NULL,
    high    REAL NOT NULL,
    low     REAL NOT NULL,
    close   REAL NOT NULL,
    volume  REAL NOT NULL,
    vwap    REAL,
    trades  INTEGER,
    PRIMARY KEY (company, date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {catalog} (
    company         TEXT PRIMARY KEY,
    symbol          TEXT NOT NULL,
    first           TEXT NOT NULL,
    last            TEXT NOT NULL,
    bars            INTEGER NOT NULL,
    open            REAL NOT NULL,
    high            REAL NOT NULL,
    low             REAL NOT NULL,
    close           REAL NOT NULL,
    volume          REAL NOT NULL,
    summary         BLOB NOT NULL,
    checkpoint      BLOB,
    checkpoint_last TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {catalog}_folded ON {catalog} (lower(company));
CREATE INDEX IF NOT EXISTS {catalog}_symbol ON {catalog} (symbol);
";

/// The layout of the file this binary writes, kept in SQLite's
/// `user_version`: 0, bars without a catalog (built on a writer's first
/// open); 1, every table of bars with its catalog (`bars_catalog`); 2, bars
/// with their VWAP and trade count (`vwap`, `trades`, null where unknown).
pub const SCHEMA_VERSION: i64 = 2;

const CATALOG_COLUMNS: &str =
    "company, symbol, first, last, bars, open, high, low, close, volume, summary, checkpoint, checkpoint_last";

const UPSERT: &str = "INSERT INTO {bars} (company, date, symbol, open, high, low, close, volume, vwap, trades)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (company, date) DO UPDATE SET
    symbol = excluded.symbol, open = excluded.open, high = excluded.high,
    low = excluded.low, close = excluded.close, volume = excluded.volume,
    vwap = excluded.vwap, trades = excluded.trades";

/// Rows a write inserts between yields of its core. A batch of thousands of
/// rows holds a core for milliseconds, and the live view's threads that wake
/// meanwhile would wait behind it (`bench serve`, 10,000 bars/s: p99 from bar
/// to event 2.2-3.9 ms without yields, 1.1-1.7 ms with them). When every
/// thread has work (a file loaded at full speed) the yields cost ~3% of the
/// run's time.
const ROWS_PER_YIELD: usize = 50;

/// Lets other threads have the core every [`ROWS_PER_YIELD`] rows.
fn yield_every_few_rows(row: usize) {
    if row % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
        std::thread::yield_now();
    }
}

const COLUMNS: &str = "company, date, symbol, open, high, low, close, volume, vwap, trades";

/// A reject as stored, for reading back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReject {
    /// Where it came from.
    pub source: String,
    /// The reason's code.
    pub kind: String,
    /// The reason.
    pub reason: String,
    /// The record as it arrived.
    pub original: Vec<u8>,
}

/// One SQLite file holding bars and rejects.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    /// Writes through this connection, which SQLite's `data_version` does not count.
    writes: Arc<std::sync::atomic::AtomicU64>,
    /// The table of bars this store reads and writes (`bars`, `bars_1m`).
    table: Arc<str>,
    read_only: bool,
}

/// An SQLite error as a store error naming the file: a lock held by another
/// process is transient, anything else fatal.
fn sqlite_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let message = format!("SQLite database {}: {e}", path.display());
    let error = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::transient(message),
        _ => StoreError::fatal(message),
    };
    error.caused_by(e)
}

impl SqliteStore {
    /// Opens (or creates) the file with its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |e| sqlite_error(path, e);
        let mut conn = Connection::open(path).map_err(fail)?;
        // WAL lets readers (query, serve) run while the consumer writes;
        // synchronous=NORMAL is durable across process crashes in WAL mode.
        // Several processes may share the file (consumers of one group on one
        // host): wait for a lock rather than fail, from the very first statement.
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        let version = schema_version(&conn, path)?;
        conn.execute_batch(&with_tables(BARS_SCHEMA, "bars")).map_err(fail)?;
        if version < SCHEMA_VERSION {
            migrate(&mut conn, path, version)?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path.to_path_buf()),
            writes: Default::default(),
            table: "bars".into(),
            read_only: false,
        })
    }

    /// Opens an existing file for reading only (`query`, `serve`, reports): a
    /// reader needs no write access to the file or its directory. A WAL-mode
    /// file in a directory it cannot write (no shared-memory file can be made
    /// beside it) is read as immutable: no process can be writing it either.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let fail = |e| sqlite_error(path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // The path as a URI's path: every byte but the plain ones percent-encoded.
        let mut encoded = String::from("file:");
        for &b in path.as_os_str().as_encoded_bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => encoded.push(b as char),
                _ => encoded.push_str(&format!("%{b:02X}")),
            }
        }
        let open = |query: &str| -> rusqlite::Result<Connection> {
            let conn = Connection::open_with_flags(format!("{encoded}?{query}"), flags)?;
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            // Reading the schema checks that the file is a database at all.
            conn.query_row("SELECT COUNT(*) FROM bars WHERE 0", [], |_| Ok(()))?;
            Ok(conn)
        };
        let conn = match open("mode=ro") {
            Ok(conn) => conn,
            Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)) => {
                tracing::info!("{}: read as immutable (no shared-memory file can be made beside it)", path.display());
                open("immutable=1").map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
        };
        match schema_version(&conn, path)? {
            0 => {
                return Err(StoreError::fatal(format!(
                    "SQLite database {} was written before it kept a catalog of its companies: build it once with \
                     `stockstream catalog rebuild --db {}` (any `run` or `consume` into it builds it too)",
                    path.display(),
                    path.display()
                )))
            }
            v if v < SCHEMA_VERSION => {
                return Err(StoreError::fatal(format!(
                    "SQLite database {} has schema version {v}, from an older stockstream: bring it up to date \
                     once with `stockstream catalog rebuild --db {}` (any `run` or `consume` into it does too)",
                    path.display(),
                    path.display()
                )))
            }
            _ => {}
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path.to_path_buf()),
            writes: Default::default(),
            table: "bars".into(),
            read_only: true,
        })
    }

    /// The same file's bars of another interval (`1m`: the table `bars_1m`;
    /// `1d`: `bars`), sharing the connection. A writer creates the table; a
    /// reader finds it or is told that no such bars are stored.
    pub async fn for_interval(&self, interval: &str) -> Result<SqliteStore, StoreError> {
        let table: Arc<str> = crate::bars_table("bars", interval).into();
        let mut store = self.clone();
        store.table = table.clone();
        let read_only = self.read_only;
        let exists = self
            .with_conn(move |c| {
                if !read_only {
                    c.execute_batch(&with_tables(BARS_SCHEMA, &table))?;
                }
                c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [&*table], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await?;
        if exists == 0 {
            return Err(StoreError::fatal(format!(
                "{}: no {interval} bars stored (run with --bar {interval} first)",
                self.path.display()
            )));
        }
        Ok(store)
    }

    /// `template` with this store's tables in place of `{bars}` and `{alerts}`.
    fn sql(&self, template: &str) -> String {
        with_tables(template, &self.table)
    }

    /// Runs blocking SQLite work off the async executor.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (conn, path) = (self.conn.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::fatal("SQLite connection poisoned"))?;
            f(&mut guard).map_err(|e| sqlite_error(&path, e))
        })
        .await
        .map_err(|e| StoreError::fatal(format!("SQLite worker failed: {e}")))?
    }

    /// Every reject kept so far, oldest first.
    pub async fn rejects(&self) -> Result<Vec<StoredReject>, StoreError> {
        self.with_conn(|c| {
            let mut st = c.prepare("SELECT source, kind, reason, original FROM rejects ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(StoredReject { source: r.get(0)?, kind: r.get(1)?, reason: r.get(2)?, original: r.get(3)? })
            })?;
            rows.collect()
        })
        .await
    }
}

/// `template` with a table of bars (`bars`, `bars_1m`), its alerts'
/// (`alerts`, `alerts_1m`) and its catalog (`bars_catalog`) in place of
/// `{bars}`, `{alerts}` and `{catalog}`.
fn with_tables(template: &str, bars: &str) -> String {
    template
        .replace("{bars}", bars)
        .replace("{alerts}", &bars.replacen("bars", "alerts", 1))
        .replace("{catalog}", &format!("{bars}_catalog"))
}

/// The file's schema version; an error naming it when a newer binary wrote it.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| sqlite_error(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::fatal(format!(
            "SQLite database {} has schema version {version}, written by a newer stockstream; \
             this one reads up to version {SCHEMA_VERSION}: upgrade stockstream",
            path.display()
        )));
    }
    Ok(version)
}

/// Brings a file of an older schema to [`SCHEMA_VERSION`] in one
/// transaction: every table of bars gets the VWAP and trades columns (null:
/// unknown) and, from version 0, its catalog, built from its bars.
fn migrate(conn: &mut Connection, path: &Path, from: i64) -> Result<(), StoreError> {
    let fail = |e| sqlite_error(path, e);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
    let tables: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name = 'bars' OR name GLOB 'bars_[0-9]*') AND name NOT GLOB '*_catalog'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(fail)?;
    for table in tables {
        let columns: Vec<String> = tx
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(fail)?;
        for (column, kind) in [("vwap", "REAL"), ("trades", "INTEGER")] {
            if !columns.iter().any(|c| c == column) {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}")).map_err(fail)?;
            }
        }
        tx.execute_batch(&with_tables(BARS_SCHEMA, &table)).map_err(fail)?;
        if from < 1 {
            let companies = rebuild_catalog_of(&tx, &table).map_err(fail)?;
            tracing::info!("{}: catalog of {table} built, {companies} companies", path.display());
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(fail)?;
    tx.commit().map_err(fail)
}

/// Builds a table's catalog from its bars, one company at a time (the one
/// pass over them); how many companies it holds.
fn rebuild_catalog_of(tx: &rusqlite::Transaction<'_>, table: &str) -> rusqlite::Result<usize> {
    tx.execute(&with_tables("DELETE FROM {catalog}", table), [])?;
    let names: Vec<String> = tx
        .prepare(&with_tables(COMPANIES_BY_SEEKS, table))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut read =
        tx.prepare(&with_tables(&format!("SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 ORDER BY date"), table))?;
    for (i, name) in names.iter().enumerate() {
        let bars: Vec<Bar> = read.query_map([name], bar_from_row)?.collect::<rusqlite::Result<_>>()?;
        if let Some(entry) = crate::catalog::entry_of(&bars) {
            write_entry(tx, table, &entry)?;
        }
        if (i + 1) % 10_000 == 0 {
            tracing::info!("catalog of {table}: {} of {} companies", i + 1, names.len());
        }
    }
    Ok(names.len())
}

/// Every company of a table of bars, one index seek each (DISTINCT reads every bar).
const COMPANIES_BY_SEEKS: &str = "WITH RECURSIVE c(name) AS (
     SELECT MIN(company) FROM {bars}
     UNION ALL
     SELECT (SELECT MIN(company) FROM {bars} WHERE company > c.name) FROM c WHERE c.name IS NOT NULL
 ) SELECT name FROM c WHERE name IS NOT NULL";

fn conversion(column: usize, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Blob, e.into())
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CatalogEntry> {
    let ts = |i: usize| -> rusqlite::Result<Ts> {
        let text: String = r.get(i)?;
        text.parse().map_err(|e| conversion(i, Box::new(e)))
    };
    let (first, last) = (ts(2)?, ts(3)?);
    let summary: Vec<u8> = r.get(10)?;
    let summary = SeriesSummary::from_bytes(&summary, first, last).map_err(|e| conversion(10, e))?;
    let checkpoint = match (r.get::<_, Option<Vec<u8>>>(11)?, r.get::<_, Option<String>>(12)?) {
        (Some(bytes), Some(cp_last)) => {
            let cp_last: Ts = cp_last.parse().map_err(|e| conversion(12, Box::new(e)))?;
            Some(SeriesSummary::from_bytes(&bytes, first, cp_last).map_err(|e| conversion(11, e))?)
        }
        _ => None,
    };
    Ok(CatalogEntry {
        last_bar: Bar {
            company: r.get(0)?,
            symbol: r.get(1)?,
            ts: last,
            open: r.get(5)?,
            high: r.get(6)?,
            low: r.get(7)?,
            close: r.get(8)?,
            volume: r.get(9)?,
            vwap: None,
            trades: None,
        },
        summary,
        checkpoint,
    })
}

fn write_entry(tx: &rusqlite::Transaction<'_>, table: &str, e: &CatalogEntry) -> rusqlite::Result<()> {
    let b = &e.last_bar;
    tx.prepare_cached(&with_tables(
        &format!("INSERT OR REPLACE INTO {{catalog}} ({CATALOG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        table,
    ))?
    .execute(params![
        b.company,
        b.symbol,
        e.summary.first.to_string(),
        b.ts.to_string(),
        e.bars() as i64,
        b.open,
        b.high,
        b.low,
        b.close,
        b.volume,
        e.summary.to_bytes(),
        e.checkpoint.as_ref().map(SeriesSummary::to_bytes),
        e.checkpoint.as_ref().map(|cp| cp.last.to_string()),
    ])?;
    Ok(())
}

/// Folds a stored batch into its companies' catalog entries, in the
/// batch's transaction.
fn catalog_batch(tx: &rusqlite::Transaction<'_>, table: &str, bars: &[Bar]) -> rusqlite::Result<()> {
    let read_entry = with_tables(&format!("SELECT {CATALOG_COLUMNS} FROM {{catalog}} WHERE company = ?1"), table);
    let read_after =
        with_tables(&format!("SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 AND date > ?2 ORDER BY date"), table);
    for (company, batch) in crate::catalog::by_company(bars) {
        use rusqlite::OptionalExtension;
        let entry = tx.prepare_cached(&read_entry)?.query_row([company], entry_from_row).optional()?;
        let updated = crate::catalog::updated_entry(entry.as_ref(), &batch, |after| {
            // "" sorts before every date: all of the company's bars.
            let after = after.map(|t| t.to_string()).unwrap_or_default();
            tx.prepare_cached(&read_after)?.query_map(params![company, after], bar_from_row)?.collect()
        })?;
        if let Some(entry) = updated {
            write_entry(tx, table, &entry)?;
        }
    }
    Ok(())
}

fn bar_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bar> {
    let date: String = r.get(1)?;
    let ts: Ts = date
        .parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Bar {
        company: r.get(0)?,
        ts,
        symbol: r.get(2)?,
        open: r.get(3)?,
        high: r.get(4)?,
        low: r.get(5)?,
        close: r.get(6)?,
        volume: r.get(7)?,
        vwap: r.get(8)?,
        trades: r.get::<_, Option<i64>>(9)?.map(|t| t as u64),
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert(&self, bars: Arc<[Bar]>) -> Result<(), StoreError> {
        if bars.is_empty() {
            return Ok(());
        }
        let (upsert, table) = (self.sql(UPSERT), self.table.clone());
        self.with_conn(move |c| {
            // Immediate: the write lock first, then the catalog read under it.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached(&upsert)?;
                let mut date = String::with_capacity(32);
                for (i, b) in bars.iter().enumerate() {
                    use std::fmt::Write;
                    yield_every_few_rows(i);
                    date.clear();
                    let _ = write!(date, "{}", b.ts);
                    st.execute(params![
                        b.company,
                        date,
                        b.symbol,
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.vwap,
                        b.trades.map(|t| t as i64)
                    ])?;
                }
            }
            // The bars and their catalog entries commit together: exact.
            catalog_batch(&tx, &table, &bars)?;
            tx.commit()
        })
        .await?;
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn newest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        let (company, lower, upper) = (company.to_string(), range.lower(), range.upper());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 AND date >= ?2 AND date <= ?3 ORDER BY date DESC LIMIT ?4"
        ));
        let mut bars = self
            .with_conn(move |c| {
                let mut st = c.prepare_cached(&query)?;
                let rows = st.query_map(params![company, lower, upper, limit], bar_from_row)?;
                rows.collect::<rusqlite::Result<Vec<Bar>>>()
            })
            .await?;
        bars.reverse();
        Ok(bars)
    }

    async fn histories_before(&self, wanted: &[(String, Ts)], limit: usize) -> Result<Vec<Vec<Bar>>, StoreError> {
        let wanted: Vec<(String, String)> = wanted.iter().map(|(c, ts)| (c.clone(), ts.to_string())).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 AND date < ?2 ORDER BY date DESC LIMIT ?3"
        ));
        self.with_conn(move |c| {
            let mut st = c.prepare_cached(&query)?;
            wanted
                .iter()
                .map(|(company, before)| {
                    let rows = st.query_map(params![company, before, limit], bar_from_row)?;
                    let mut bars = rows.collect::<rusqlite::Result<Vec<Bar>>>()?;
                    bars.reverse();
                    Ok(bars)
                })
                .collect()
        })
        .await
    }

    async fn oldest(&self, company: &str, range: &DateRange, limit: usize) -> Result<Vec<Bar>, StoreError> {
        let (company, lower, upper) = (company.to_string(), range.lower(), range.upper());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 AND date >= ?2 AND date <= ?3 ORDER BY date LIMIT ?4"
        ));
        self.with_conn(move |c| {
            let mut st = c.prepare_cached(&query)?;
            let rows = st.query_map(params![company, lower, upper, limit], bar_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn version(&self) -> Result<Option<u64>, StoreError> {
        // `data_version` changes when another connection commits; ours are counted apart.
        let others: i64 = self.with_conn(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0))).await?;
        let ours = self.writes.load(std::sync::atomic::Ordering::Relaxed);
        Ok(Some((others as u64) << 32 ^ ours))
    }

    async fn range(&self, company: &str, range: &DateRange) -> Result<Vec<Bar>, StoreError> {
        let (company, lower, upper) = (company.to_string(), range.lower(), range.upper());
        let query = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{bars}} WHERE company = ?1 AND date >= ?2 AND date <= ?3 ORDER BY date"
        ));
        self.with_conn(move |c| {
            let mut st = c.prepare_cached(&query)?;
            let rows = st.query_map(params![company, lower, upper], bar_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn catalog(&self, after: Option<&str>, limit: usize) -> Result<Vec<CatalogEntry>, StoreError> {
        let query = self
            .sql(&format!("SELECT {CATALOG_COLUMNS} FROM {{catalog}} WHERE company > ?1 ORDER BY company LIMIT ?2"));
        let (after, limit) = (after.unwrap_or("").to_string(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.with_conn(move |c| c.prepare_cached(&query)?.query_map(params![after, limit], entry_from_row)?.collect())
            .await
    }

    async fn companies_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let query = self.sql("SELECT company FROM {catalog} WHERE company > ?1 ORDER BY company LIMIT ?2");
        let (after, limit) = (after.unwrap_or("").to_string(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.with_conn(move |c| c.prepare_cached(&query)?.query_map(params![after, limit], |r| r.get(0))?.collect())
            .await
    }

    async fn has_company(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let (query, name) = (self.sql("SELECT EXISTS (SELECT 1 FROM {catalog} WHERE company = ?1)"), name.to_string());
        self.with_conn(move |c| c.prepare_cached(&query)?.query_row([name], |r| r.get::<_, bool>(0)).map(Some)).await
    }

    async fn find_folded(&self, name: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        let query = self.sql(
            "SELECT company FROM {catalog} WHERE lower(company) = ?1
             UNION ALL SELECT company FROM {catalog} WHERE symbol = ?2 LIMIT 1",
        );
        let (folded, symbol) = (name.to_ascii_lowercase(), name.to_ascii_uppercase());
        self.with_conn(move |c| c.prepare_cached(&query)?.query_row(params![folded, symbol], |r| r.get(0)).optional())
            .await
    }

    async fn rebuild_catalog(&self) -> Result<usize, StoreError> {
        let table = self.table.clone();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let companies = rebuild_catalog_of(&tx, &table)?;
            tx.commit()?;
            Ok(companies)
        })
        .await
    }

    async fn interval(&self, name: &str) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(self.for_interval(name).await?))
    }

    async fn stored_interval(&self, name: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
        let table = crate::bars_table("bars", name);
        let query = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1";
        let exists = self.with_conn(move |c| c.query_row(query, [&table], |r| r.get::<_, i64>(0))).await?;
        match exists {
            0 => Ok(None),
            _ => Ok(Some(Arc::new(self.for_interval(name).await?))),
        }
    }

    async fn save_marks(&self, marks: Vec<WindowMark>) -> Result<(), StoreError> {
        let table = self.table.clone();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR REPLACE INTO window_marks (bars, symbol, watermark, day_volume, partition, last_offset)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for m in &marks {
                    st.execute(params![&*table, m.symbol, m.watermark_ms, m.day_volume, m.partition, m.last_offset])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn mark(&self, symbol: &str) -> Result<Option<WindowMark>, StoreError> {
        let (table, symbol) = (self.table.clone(), symbol.to_string());
        self.with_conn(move |c| {
            use rusqlite::OptionalExtension;
            c.prepare_cached(
                "SELECT watermark, day_volume, partition, last_offset FROM window_marks WHERE bars = ?1 AND symbol = ?2",
            )?
            .query_row(params![&*table, symbol], |r| {
                Ok(WindowMark {
                    symbol: symbol.clone(),
                    watermark_ms: r.get(0)?,
                    day_volume: r.get(1)?,
                    partition: r.get(2)?,
                    last_offset: r.get(3)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn keep_alerts(&self, alerts: Vec<Alert>) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let insert = self.sql(
            "INSERT OR REPLACE INTO {alerts} (company, date, rule, symbol, message, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        );
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(&insert)?;
                for (i, a) in alerts.iter().enumerate() {
                    yield_every_few_rows(i);
                    st.execute(params![a.company, a.date, a.rule, a.symbol, a.message, a.values.to_string()])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let select = self.sql(
            "SELECT company, date, rule, symbol, message, detail FROM {alerts}
             WHERE (?1 IS NULL OR company = ?1) AND date >= ?2 AND date <= ?3
             ORDER BY date DESC, company, rule LIMIT ?4",
        );
        let range = query.range.clone();
        let (company, lower, upper) = (query.company.clone(), range.lower(), range.upper());
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let table = with_tables("{alerts}", &self.table);
        self.with_conn(move |c| {
            // A file written before alerts were stored has none to read.
            let exists: i64 =
                c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [&table], |r| {
                    r.get(0)
                })?;
            if exists == 0 {
                return Ok(Vec::new());
            }
            let mut st = c.prepare_cached(&select)?;
            let rows = st.query_map(params![company, lower, upper, limit], |r| {
                let detail: String = r.get(5)?;
                Ok(Alert {
                    company: r.get(0)?,
                    date: r.get(1)?,
                    rule: r.get(2)?,
                    symbol: r.get(3)?,
                    message: r.get(4)?,
                    values: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let query = self.sql("SELECT COUNT(*) FROM {bars}");
        self.with_conn(move |c| c.query_row(&query, [], |r| r.get::<_, i64>(0)).map(|n| n as u64)).await
    }
}

#[async_trait]
impl DeadLetters for SqliteStore {
    async fn keep(&self, rejects: Vec<Reject>) -> Result<(), StoreError> {
        if rejects.is_empty() {
            return Ok(());
        }
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            {
                let mut st =
                    tx.prepare_cached("INSERT INTO rejects (source, kind, reason, original) VALUES (?1, ?2, ?3, ?4)")?;
                for r in &rejects {
                    st.execute(params![r.source, r.kind.as_str(), r.reason, r.original])?;
                }
            }
            tx.commit()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_keeps_sqlites_own_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let e = SqliteStore::open(&dir.path().join("no such directory").join("x.db")).err().expect("no directory");
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.is::<rusqlite::Error>(), "{cause:?}");
        assert!(e.to_string().contains("x.db"), "{e}");
    }

    fn bar(company: &str, date: &str, close: f64) -> Bar {
        Bar {
            symbol: stockstream_core::symbol_for_company(company),
            company: company.into(),
            ts: date.parse().unwrap(),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 1000.0,
            vwap: None,
            trades: None,
        }
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn upsert_is_idempotent_and_last_write_wins() {
        let (_d, s) = store();
        let bars = vec![bar("NVIDIA", "2024-01-02", 10.0), bar("NVIDIA", "2024-01-03", 11.0)];
        s.upsert(bars.clone().into()).await.unwrap();
        s.upsert(bars.clone().into()).await.unwrap();
        assert_eq!(s.count().await.unwrap(), 2);
        s.upsert(vec![bar("NVIDIA", "2024-01-03", 12.5)].into()).await.unwrap();
        assert_eq!(s.count().await.unwrap(), 2);
        let got = s.range("NVIDIA", &DateRange::default()).await.unwrap();
        assert_eq!(got[1].close, 12.5);
        assert_eq!(got[0], bars[0]);
    }

    #[tokio::test]
    async fn range_latest_and_companies() {
        let (_d, s) = store();
        s.upsert(
            vec![
                bar("Tesla", "2024-01-02", 1.0),
                bar("Tesla", "2024-01-03T14:30:00Z", 2.0),
                bar("Tesla", "2024-01-04", 3.0),
                bar("Apple", "2024-01-05", 4.0),
            ]
            .into(),
        )
        .await
        .unwrap();
        let r = |from: Option<&str>, to: Option<&str>| {
            DateRange::new(from.map(|f| f.parse().unwrap()), to.map(|t| t.parse().unwrap()))
        };
        let dates = |bars: Vec<Bar>| bars.into_iter().map(|b| b.ts.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dates(s.range("Tesla", &r(Some("2024-01-03"), Some("2024-01-03"))).await.unwrap()),
            ["2024-01-03T14:30:00Z"]
        );
        assert_eq!(dates(s.range("Tesla", &r(Some("2024-01-03"), None)).await.unwrap()).len(), 2);
        assert_eq!(dates(s.range("Tesla", &r(None, Some("2024-01-02"))).await.unwrap()), ["2024-01-02"]);
        assert!(s.range("Nobody", &r(None, None)).await.unwrap().is_empty());
        let latest: Vec<Bar> = s.catalog(None, 10).await.unwrap().into_iter().map(|e| e.last_bar).collect();
        assert_eq!(dates(latest.clone()), ["2024-01-05", "2024-01-04"]);
        assert_eq!(latest[1].close, 3.0);
        assert_eq!(s.companies().await.unwrap(), ["Apple", "Tesla"]);
        assert_eq!(s.companies_page(Some("Apple"), 5).await.unwrap(), ["Tesla"]);
        assert_eq!(s.catalog(Some("Apple"), 5).await.unwrap()[0].bars(), 3);
    }

    #[tokio::test]
    async fn rejects_keep_reason_and_original_bytes() {
        let (_d, s) = store();
        let r = Reject {
            source: "x.csv:3".into(),
            kind: stockstream_core::RejectKind::BadDate,
            reason: "why".into(),
            original: vec![0xff, 0],
            key: None,
        };
        s.keep(vec![r.clone()]).await.unwrap();
        let back = s.rejects().await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].original, r.original);
        assert_eq!(back[0].kind, "bad_date");
    }

    #[tokio::test]
    async fn the_newest_bars_come_from_the_store_oldest_first() {
        let (_dir, store) = store();
        store
            .upsert((1..=9).map(|d| bar("A", &format!("2024-01-0{d}"), d as f64)).collect::<Vec<_>>().into())
            .await
            .unwrap();
        let closes = |bars: Vec<Bar>| bars.iter().map(|b| b.close).collect::<Vec<_>>();
        assert_eq!(closes(store.newest("A", &DateRange::default(), 3).await.unwrap()), [7.0, 8.0, 9.0]);
        let to_5 = DateRange::new(None, Some("2024-01-05".parse().unwrap()));
        assert_eq!(closes(store.newest("A", &to_5, 2).await.unwrap()), [4.0, 5.0]);
        assert_eq!(store.newest("A", &to_5, 100).await.unwrap().len(), 5);
    }

    /// A file of an older binary (bars, no catalog, schema version 0): a
    /// reader says how to build its catalog; a writer builds it on opening
    /// (every table of bars), and a newer schema is refused by name.
    #[tokio::test]
    async fn an_older_file_gets_its_catalog_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE bars (company TEXT NOT NULL, date TEXT NOT NULL, symbol TEXT NOT NULL, open REAL NOT NULL,
                     high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
                     PRIMARY KEY (company, date)) WITHOUT ROWID;
                 CREATE TABLE bars_1m AS SELECT * FROM bars;
                 INSERT INTO bars VALUES ('Tesla', '2024-01-02', 'TSLA', 1, 2, 0.5, 1.5, 10),
                     ('Tesla', '2024-01-03', 'TSLA', 1.5, 2, 1, 1.75, 12), ('Apple', '2024-01-02', 'AAPL', 3, 3, 3, 3, 3);
                 INSERT INTO bars_1m VALUES ('Tesla', '2024-01-02T14:30:00Z', 'TSLA', 1, 2, 0.5, 1.5, 10);",
            )
            .unwrap();
        }
        let err = SqliteStore::open_read_only(&path).err().expect("a file without a catalog was read").to_string();
        assert!(err.contains("old.db") && err.contains("stockstream catalog rebuild"), "{err}");
        let store = SqliteStore::open(&path).unwrap();
        let entries = store.catalog(None, 10).await.unwrap();
        let got: Vec<(&str, u64, f64)> = entries.iter().map(|e| (e.company(), e.bars(), e.last_bar.close)).collect();
        assert_eq!(got, [("Apple", 1, 3.0), ("Tesla", 2, 1.75)]);
        assert_eq!(store.for_interval("1m").await.unwrap().catalog(None, 10).await.unwrap()[0].bars(), 1);
        // The old bars read back with their VWAP and trades unknown; new
        // ones keep theirs.
        let minutes = store.for_interval("1m").await.unwrap();
        let old = minutes.range("Tesla", &DateRange::default()).await.unwrap();
        assert_eq!((old[0].close, old[0].vwap, old[0].trades), (1.5, None, None));
        let mut traded = bar("Tesla", "2024-01-04", 1.5);
        (traded.vwap, traded.trades) = (Some(1.25), Some(7));
        store.upsert(vec![traded.clone()].into()).await.unwrap();
        assert_eq!(store.range("Tesla", &DateRange::default()).await.unwrap()[2], traded);
        drop((store, minutes));
        assert_eq!(SqliteStore::open_read_only(&path).unwrap().companies().await.unwrap(), ["Apple", "Tesla"]);

        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        for err in [SqliteStore::open(&path).err(), SqliteStore::open_read_only(&path).err()] {
            let err = err.expect("a newer schema was opened").to_string();
            assert!(err.contains("old.db has schema version 3") && err.contains("upgrade stockstream"), "{err}");
        }
    }

    /// A file of schema version 1 (a catalog, bars without VWAP and trades):
    /// a reader says how to bring it up to date; a writer adds the columns,
    /// keeping its bars and catalog.
    #[tokio::test]
    async fn a_file_of_version_1_gets_the_vwap_and_trades_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.upsert(vec![bar("Tesla", "2024-01-02", 2.0)].into()).await.unwrap();
        }
        {
            // Back to version 1's layout.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "ALTER TABLE bars DROP COLUMN vwap; ALTER TABLE bars DROP COLUMN trades; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let err = SqliteStore::open_read_only(&path).err().expect("a version 1 file was read").to_string();
        assert!(err.contains("v1.db has schema version 1") && err.contains("catalog rebuild --db"), "{err}");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.catalog(None, 10).await.unwrap()[0].bars(), 1);
        assert_eq!(store.range("Tesla", &DateRange::default()).await.unwrap()[0].close, 2.0);
        drop(store);
        let reader = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(reader.range("Tesla", &DateRange::default()).await.unwrap()[0].vwap, None);
    }

    #[tokio::test]
    async fn a_reader_opened_read_only_sees_the_bars_and_cannot_write() {
        let (dir, store) = store();
        store.upsert(vec![bar("A", "2024-01-02", 1.0)].into()).await.unwrap();
        let reader = SqliteStore::open_read_only(&dir.path().join("t.db")).unwrap();
        assert_eq!(reader.count().await.unwrap(), 1);
        let err = reader.upsert(vec![bar("A", "2024-01-03", 1.0)].into()).await.unwrap_err().to_string();
        assert!(err.contains("t.db") && err.contains("readonly"), "{err}");
        let missing = SqliteStore::open_read_only(&dir.path().join("nope.db")).err().unwrap().to_string();
        assert!(missing.contains("nope.db"), "{missing}");
    }
}
