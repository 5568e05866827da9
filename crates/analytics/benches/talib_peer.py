"""Times TA-Lib's C functions (through the ta-lib wheel) on the same 10M closes as
stockstream's batch indicators; one call per function, so Python's overhead is
one call. Usage: talib_peer.py N REPEAT. Prints `name seconds` lines (best run)."""
import sys, time
import numpy as np
import talib

n, repeat = int(sys.argv[1]), int(sys.argv[2])
i = np.arange(n, dtype=np.float64)
close = 100.0 + 10.0 * np.sin(i * 0.001) + ((np.arange(n, dtype=np.int64) * 7919) % 1000) / 1000.0
high, low = close * 1.01, close * 0.99
runs = {
    "sma30": lambda: talib.SMA(close, 30),
    "ema26": lambda: talib.EMA(close, 26),
    "rsi14": lambda: talib.RSI(close, 14),
    "macd": lambda: talib.MACD(close, 12, 26, 9),
    "bbands20": lambda: talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA),
    "atr14": lambda: talib.ATR(high, low, close, 14),
}
for name, f in runs.items():
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    print(name, f"{best:.6f}")
