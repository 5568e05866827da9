"""What a user would write instead of `stockstream indicators --input`: pandas
reads the CSV (the original project's layout), TA-Lib computes each company's
indicators, `to_csv` writes them. Usage: indicators_file_peer.py IN.csv OUT.csv"""
import sys
import numpy as np
import pandas as pd
import talib

src, dst = sys.argv[1:3]
df = pd.read_csv(src)
out = []
for company, g in df.groupby("Company Name", sort=False):
    close, high, low = (g[c].to_numpy(dtype=np.float64) for c in ("Close", "High", "Low"))
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
    s = pd.Series(close)
    log_returns = np.log(s / s.shift(1))
    out.append(pd.DataFrame({
        "date": g["Date"].to_numpy(), "company": company, "close": close,
        "sma10": talib.SMA(close, 10), "sma30": talib.SMA(close, 30), "sma50": talib.SMA(close, 50),
        "ema12": talib.EMA(close, 12), "ema26": talib.EMA(close, 26), "rsi14": talib.RSI(close, 14),
        "macd": macd, "macd_signal": signal, "macd_hist": hist,
        "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
        "atr14": talib.ATR(high, low, close, 14), "return": s.pct_change().to_numpy(),
        "volatility20": (log_returns.rolling(20).std() * np.sqrt(252)).to_numpy(),
        "drawdown": (s / s.cummax() - 1.0).to_numpy(),
    }))
pd.concat(out).to_csv(dst, index=False)
