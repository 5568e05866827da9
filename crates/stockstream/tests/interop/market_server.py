"""A local market on one port: Yahoo's chart API (`/v8/finance/chart/SYM`) and
Yahoo's streamer (WebSocket, frames of yfinance's `pricing_pb2`), both drawing
on one stream of true ticks per symbol at wall-clock time, for the backfill
tests.

True ticks: each symbol trades every 250 ms of wall time (the symbol's slots
offset by 37 ms each), at a price on a quarter-dollar grid (exact in the
streamer's float32), sizes 100..160 and the day volume their running sum.

Control (HTTP GET):
  /control/outage?seconds=S   close every socket, refuse upgrades for S seconds
  /control/fail?count=N       the next N chart requests answer 500
  /control/minutes?symbol=&from=&to=   the reference 1-minute bars of the true
      ticks (start ms, open, high, low, close, volume, vwap, trades), every
      minute starting in [from, to) that has closed
  /control/log                what was asked and sent

Usage: market_server.py PORT_FILE [--bars-only]
With --bars-only (benchmarks), the chart API's minutes are made directly from
the price formula, not aggregated from 240 ticks each: days of them are
served at once.
"""
import asyncio
import base64
import json
import math
import sys
import time
import urllib.parse
import zlib

import websockets
from websockets.datastructures import Headers
from websockets.http11 import Response

PORT_FILE = sys.argv[1]
BARS_ONLY = "--bars-only" in sys.argv[2:]
SLOT_MS = 250
log = {"chart": [], "connections": 0, "refused": 0, "frames": 0, "fail_left": 0}
outage_until = [0.0]
sockets = set()


def now_ms():
    return int(time.time() * 1000)


def offset(symbol):
    return 37 * (zlib.crc32(symbol.encode()) % 6)


def tick(symbol, k):
    """The k-th true tick of a symbol: (time ms, price, size, day volume)."""
    base = 100 + zlib.crc32(symbol.encode()) % 400
    noise = zlib.crc32(f"{symbol}:{k}".encode()) % 1000 / 1000.0
    steps = round(40 * math.sin(k / 700.0) + 6 * noise)
    price = base + 0.25 * steps
    size = 100 + 10 * (k % 7)
    # The running sum of sizes of slots 0..k, in closed form.
    day_volume = 100 * (k + 1) + 10 * (21 * ((k + 1) // 7) + sum(range((k + 1) % 7)))
    return k * SLOT_MS + offset(symbol), price, size, day_volume


def slots(symbol, from_ms, to_ms):
    """Slots whose tick time is in [from_ms, to_ms)."""
    o = offset(symbol)
    first = max(0, -(-(from_ms - o) // SLOT_MS))
    last = (to_ms - o - 1) // SLOT_MS
    return range(first, last + 1)


def minutes(symbol, from_ms, to_ms, until_ms, closed_only):
    """1-minute bars of the true ticks up to until_ms, starting in [from, to)."""
    start = from_ms - from_ms % 60000
    if start < from_ms:
        start += 60000
    out = []
    while start < to_ms:
        end = start + 60000
        if closed_only and end > until_ms:
            break
        ticks = [tick(symbol, k) for k in slots(symbol, start, min(end, until_ms + 1))]
        if ticks:
            prices = [t[1] for t in ticks]
            volume = sum(t[2] for t in ticks)
            vwap = sum(t[1] * t[2] for t in ticks) / volume
            out.append([start, prices[0], max(prices), min(prices), prices[-1], volume, vwap, len(ticks)])
        start = end
    return out


def quick_minutes(symbol, from_ms, to_ms):
    """A bar a minute from the price formula alone (for benchmarks)."""
    start = from_ms - from_ms % 60000 + (60000 if from_ms % 60000 else 0)
    out = []
    for t in range(start, min(to_ms, now_ms()), 60000):
        k = t // SLOT_MS
        _, o, _, _ = tick(symbol, k)
        _, c, _, _ = tick(symbol, k + 239)
        out.append([t, o, max(o, c) + 0.25, min(o, c) - 0.25, c, 24000 + k % 1000])
    return out


def chart(symbol, query):
    if log["fail_left"] > 0:
        log["fail_left"] -= 1
        return Response(500, "Internal Server Error", Headers(), b"failing on purpose\n")
    p1, p2 = int(query["period1"][0]) * 1000, int(query["period2"][0]) * 1000
    interval = query.get("interval", ["1m"])[0]
    log["chart"].append({"symbol": symbol, "period1": p1, "period2": p2, "interval": interval,
                         "prepost": query.get("includePrePost", [""])[0]})
    if interval != "1m":
        body = {"chart": {"result": None, "error": {"code": "Unprocessable", "description": "1m only here"}}}
        return json_response(422, body)
    # As Yahoo does, the minute in progress is sent too, as it stands.
    bars = quick_minutes(symbol, p1, p2) if BARS_ONLY else minutes(symbol, p1, p2, now_ms(), False)
    quote = {k: [b[i] for b in bars] for k, i in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5))}
    result = {"meta": {"symbol": symbol, "gmtoffset": -18000, "dataGranularity": "1m"},
              "timestamp": [b[0] // 1000 for b in bars], "indicators": {"quote": [quote]}}
    return json_response(200, {"chart": {"result": [result], "error": None}})


def json_response(status, body):
    headers = Headers([("Content-Type", "application/json")])
    return Response(status, "OK" if status == 200 else "Error", headers, json.dumps(body).encode())


def on_request(connection, request):
    url = urllib.parse.urlsplit(request.path)
    query = urllib.parse.parse_qs(url.query)
    if url.path.startswith("/v8/finance/chart/"):
        return chart(urllib.parse.unquote(url.path.rsplit("/", 1)[1]), query)
    if url.path == "/control/outage":
        outage_until[0] = time.time() + float(query["seconds"][0])
        for ws in list(sockets):
            asyncio.get_event_loop().create_task(ws.close())
        return json_response(200, {"ok": True})
    if url.path == "/control/fail":
        log["fail_left"] = int(query["count"][0])
        return json_response(200, {"ok": True})
    if url.path == "/control/minutes":
        bars = minutes(query["symbol"][0], int(query["from"][0]), int(query["to"][0]), now_ms(), True)
        return json_response(200, bars)
    if url.path == "/control/log":
        return json_response(200, log)
    if time.time() < outage_until[0]:
        log["refused"] += 1
        return Response(503, "Service Unavailable", Headers(), b"outage\n")
    return None


async def stream(ws):
    from yfinance.pricing_pb2 import PricingData
    log["connections"] += 1
    sockets.add(ws)
    try:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        symbols = [s.upper() for s in msg["subscribe"]]
        next_k = {s: slots(s, now_ms(), now_ms() + 1000)[0] for s in symbols}

        async def read_subscriptions():
            async for _ in ws:
                pass

        reader = asyncio.get_event_loop().create_task(read_subscriptions())
        try:
            while True:
                s = min(symbols, key=lambda s: tick(s, next_k[s])[0])
                t, price, size, day_volume = tick(s, next_k[s])
                wait = (t - now_ms()) / 1000.0
                if wait > 0:
                    await asyncio.sleep(wait)
                m = PricingData(id=s, price=price, time=t, day_volume=day_volume, last_size=size,
                                exchange="NMS", quote_type=8)
                payload = base64.b64encode(m.SerializeToString()).decode()
                await ws.send(json.dumps({"type": "pricing", "message": payload}))
                log["frames"] += 1
                next_k[s] += 1
        finally:
            reader.cancel()
    except (websockets.ConnectionClosed, asyncio.TimeoutError):
        pass
    finally:
        sockets.discard(ws)


async def main():
    async with websockets.serve(stream, "127.0.0.1", 0, process_request=on_request, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        with open(PORT_FILE + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.replace(PORT_FILE + ".tmp", PORT_FILE)
        await asyncio.Future()


asyncio.run(main())
