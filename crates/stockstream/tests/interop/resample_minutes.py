"""The reference rollup of stored one-minute bars, by pandas: `resample` with
its origin at the regular session's open (09:30 New York), label and side
left, each part of the New York day (before the open, the session, after the
close) resampled on its own; `1d` aggregates the session's minutes by New
York date. Reads `query --format csv` output, writes the same layout.

usage: resample_minutes.py MINUTES.csv RULE OUT.csv [EARLY_CLOSE_DATE ...]
"""
import sys

import pandas as pd

src, rule, out = sys.argv[1:4]
early = set(sys.argv[4:])
df = pd.read_csv(src)
df["t"] = pd.to_datetime(df["Date"], utc=True).dt.tz_convert("America/New_York")
df = df.set_index("t").sort_index()
agg = {"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum",
       "Company Name": "first", "Symbol": "first"}
parts = []
for (company, day), g in df.groupby(["Company Name", df.index.date]):
    day = pd.Timestamp(day).tz_localize("America/New_York")
    open_ = day + pd.Timedelta(hours=9, minutes=30)
    close = day + pd.Timedelta(hours=13 if str(day.date()) in early else 16)
    session = g[(g.index >= open_) & (g.index < close)]
    if rule == "1d":
        if len(session):
            parts.append(pd.DataFrame([{
                "Date": str(day.date()), "Open": session["Open"].iloc[0], "High": session["High"].max(),
                "Low": session["Low"].min(), "Close": session["Close"].iloc[-1], "Volume": session["Volume"].sum(),
                "Company Name": company, "Symbol": session["Symbol"].iloc[0],
            }]))
        continue
    for piece, origin in ((g[g.index < open_], open_), (session, open_), (g[g.index >= close], close)):
        if not len(piece):
            continue
        r = piece.resample(rule.replace("m", "min"), origin=origin, label="left", closed="left").agg(agg)
        r = r.dropna(subset=["Open"])
        # A bucket is dated by its start, never before the part it is in.
        starts = r.index.where(r.index >= piece.index[0].normalize(), piece.index[0].normalize())
        r["Date"] = [t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ") for t in starts]
        parts.append(r)
res = pd.concat(parts)
res["Volume"] = res["Volume"].astype(float)
res = res[["Date", "Open", "High", "Low", "Close", "Volume", "Company Name", "Symbol"]]
res = res.sort_values(["Company Name", "Date"])
res.to_csv(out, index=False, float_format="%.10g")
