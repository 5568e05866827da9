"""Frames of Yahoo's streamer encoded by yfinance's own `pricing_pb2`, each with
yfinance's decoding of it (`yfinance.live`'s `_decode_message`): one JSON object
a line, {"frame": <the WebSocket text frame>, "decoded": <yfinance's dict>}."""
import base64
import json
import random

from yfinance.live import BaseWebSocket
from yfinance.pricing_pb2 import PricingData

rng = random.Random(20240102)
messages = [
    dict(id="NVDA", price=481.37, time=1704207600123, currency="USD", exchange="NMS", quote_type=8,
         market_hours=1, change_percent=-1.25, day_volume=12345678, day_high=485.5, day_low=476.01,
         change=-6.1, short_name="NVIDIA Corporation", open_price=480.0, previous_close=487.47,
         last_size=100, price_hint=2),
    dict(id="BTC-USD", price=43251.125, time=1704207600999, currency="USD", exchange="CCC", quote_type=41,
         market_hours=1, day_volume=23456789012, vol_24hr=23456789012, vol_all_currencies=23456789012,
         from_currency="BTC", last_market="CoinMarketCap", circulating_supply=19585000.0,
         market_cap=8.47e11),
    dict(id="AAPL240119C00190000", price=3.45, time=1704207601000, quote_type=20, expire_date=1705622400,
         strike_price=190.0, underlying_symbol="AAPL", open_interest=12000, options_type=1, mini_option=0,
         bid=3.4, bid_size=15, ask=3.5, ask_size=20),
    dict(id="^GSPC", price=4742.83, time=1704207602000, change=-27.0, short_name="S&P 500 — Index ü"),
]
fields = {f.name: f for f in PricingData.DESCRIPTOR.fields}
for _ in range(200):
    m = {"id": rng.choice(["NVDA", "TSLA", "META", "AMZN", "AAPL", "NFLX", "GOOGL"])}
    for name, f in fields.items():
        if rng.random() < 0.5 or name == "id":
            continue
        if f.type == f.TYPE_STRING:
            m[name] = rng.choice(["", "x", "NasdaqGS", "Ünïcode ✓"])
        elif f.type in (f.TYPE_FLOAT, f.TYPE_DOUBLE):
            m[name] = rng.choice([0.0, -1.5, 1e-3, rng.uniform(-1e6, 1e6), 3.4e38 if f.type == f.TYPE_FLOAT else 1e300])
        elif f.type == f.TYPE_INT32:
            m[name] = rng.randint(-2**31, 2**31 - 1)
        else:
            m[name] = rng.choice([0, -1, 1, rng.randint(-2**63, 2**63 - 1)])
    messages.append(m)

decoder = BaseWebSocket(verbose=False)
for m in messages:
    payload = base64.b64encode(PricingData(**m).SerializeToString()).decode()
    frame = json.dumps({"type": "pricing", "message": payload})
    print(json.dumps({"frame": frame, "decoded": decoder._decode_message(payload)}))
