"""What a user would write instead of `stockstream run --input`: pandas reads
the CSV (the original project's layout), drops incomplete rows, and sqlite3
upserts every bar into a table keyed like stockstream's, in one transaction.
Usage: run_file_peer.py IN.csv OUT.db"""
import sqlite3
import sys

import pandas as pd

src, dst = sys.argv[1:3]
df = pd.read_csv(src).dropna()
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
print(len(df), "rows stored")
