"""The floor of a backfill: the same chart API requests as stockstream's
(one per symbol, four at a time), each reply parsed and its bars inserted
into SQLite with executemany in one transaction. Prints seconds=S bars=N.

Usage: backfill_peer.py BASE_URL SYMBOLS PERIOD1 PERIOD2 DB
"""
import concurrent.futures
import json
import sqlite3
import sys
import time
import urllib.request

base, symbols, p1, p2, db = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]
started = time.perf_counter()


def fetch(symbol):
    url = f"{base}/v8/finance/chart/{symbol}?period1={p1}&period2={p2}&interval=1m&includePrePost=true"
    with urllib.request.urlopen(url) as r:
        result = json.load(r)["chart"]["result"][0]
    q = result["indicators"]["quote"][0]
    return [(symbol, t, q["open"][i], q["high"][i], q["low"][i], q["close"][i], q["volume"][i])
            for i, t in enumerate(result["timestamp"])]


with concurrent.futures.ThreadPoolExecutor(4) as pool:
    rows = [r for bars in pool.map(fetch, symbols) for r in bars]
conn = sqlite3.connect(db)
conn.execute("CREATE TABLE IF NOT EXISTS bars (symbol TEXT, t INTEGER, open REAL, high REAL, low REAL, close REAL,"
             " volume REAL, PRIMARY KEY (symbol, t))")
with conn:
    conn.executemany("INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
conn.close()
print(f"seconds={time.perf_counter() - started:.4f} bars={len(rows)}")
