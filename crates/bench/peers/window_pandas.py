"""The windowing peer: pandas grouping ticks into one-minute OHLCV bars per
symbol, the same ticks as stockstream's windows. Usage: window_pandas.py TICKS.csv
REPEAT. Prints `seconds=<best> bars=<count>`; only the grouping is timed."""
import sys
import time

import pandas as pd

ticks = pd.read_csv(sys.argv[1])
ticks["time"] = pd.to_datetime(ticks.time_ms, unit="ms")
best, bars = float("inf"), 0
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    out = ticks.groupby(["symbol", pd.Grouper(key="time", freq="1min")]).agg(
        open=("price", "first"), high=("price", "max"), low=("price", "min"),
        close=("price", "last"), volume=("size", "sum"))
    best = min(best, time.perf_counter() - started)
    bars = len(out)
print(f"seconds={best} bars={bars}")
