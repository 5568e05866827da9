"""What a user would write instead of `stockstream run --input`: pandas reads
the CSV (the original project's layout), drops incomplete rows, and sqlite3
upserts every bar into a table keyed like stockstream's, in one transaction.
Prints the time of each step to standard error.
Usage: run_file_peer.py IN.csv OUT.db"""
import sqlite3
import sys
import time

import pandas as pd

src, dst = sys.argv[1:3]
started = time.perf_counter()
df = pd.read_csv(src).dropna()
read = time.perf_counter()
db = sqlite3.connect(dst)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute(
    """CREATE TABLE IF NOT EXISTS bars (company TEXT NOT NULL, date TEXT NOT NULL, open REAL NOT NULL,
    high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (company, date)) WITHOUT ROWID"""
)
rows = df[["Company Name", "Date", "Open", "High", "Low", "Close", "Volume"]].itertuples(index=False, name=None)
with db:
    db.executemany(
        """INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (company, date) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume""",
        rows,
    )
written = time.perf_counter()
print(len(df), "rows stored")
print(f"  peer: read_csv {read - started:.2f} s, executemany upsert {written - read:.2f} s", file=sys.stderr)
