"""A local market feed speaking Yahoo's streamer protocol or Finnhub's trades
protocol, for the live-source tests. Frames are encoded by independent code
(Yahoo: yfinance's `pricing_pb2`, and yfinance.live's decoder says what each
frame holds). Each connection plays one scene, in order:

yahoo:   1 the upgrade is refused (HTTP 503);
         2 subscribe, good and bad frames, then the server closes the socket;
         3 subscribe, good frames, then silence (the client must call it a stall);
         4 subscribe, the last frames, the last one again each second, and a second
         subscription within 20 s.
finnhub: 1 subscribe per symbol, trades, a ping, bad frames, then close;
         2 subscribe, the last trades, pings until the client leaves.

Usage: feed_server.py PROTOCOL PORT_FILE LOG_FILE. The log (JSON, rewritten as
things happen) holds what each connection received, the frames sent, the
decoded ticks of the good ones, and `done` once every scene has played.
"""
import asyncio
import base64
import json
import sys
import time

import websockets
from websockets.http11 import Response
from websockets.datastructures import Headers

PROTOCOL, PORT_FILE, LOG_FILE = sys.argv[1], sys.argv[2], sys.argv[3]
T0 = 1704207600000  # 2024-01-02 15:00:00 UTC
log = {"connections": [], "good": [], "bad": [], "done": False}


def save():
    with open(LOG_FILE + ".tmp", "w") as f:
        json.dump(log, f)
    import os
    os.replace(LOG_FILE + ".tmp", LOG_FILE)


def yahoo_frames(first, count):
    from yfinance.live import BaseWebSocket
    from yfinance.pricing_pb2 import PricingData
    decoder = BaseWebSocket(verbose=False)
    frames = []
    for i in range(first, first + count):
        symbol = ["NVDA", "TSLA"][i % 2]
        m = dict(id=symbol, price=480.0 + (i % 17) * 0.25 if symbol == "NVDA" else 240.0 - (i % 13) * 0.5,
                 time=T0 + i * 1700, day_volume=1000 * (i + 1), last_size=100 + i, exchange="NMS", quote_type=8)
        payload = base64.b64encode(PricingData(**m).SerializeToString()).decode()
        frames.append((json.dumps({"type": "pricing", "message": payload}), decoder._decode_message(payload)))
    return frames


def yahoo_bad():
    from yfinance.pricing_pb2 import PricingData
    not_positive = base64.b64encode(PricingData(id="NVDA", price=-1.0, time=T0 + 5).SerializeToString()).decode()
    return [
        ("not json at all", "bad_json"),
        (json.dumps({"type": "pricing", "message": "%%% not base64 %%%"}), "bad_base64"),
        (json.dumps({"type": "pricing", "message": base64.b64encode(b"\xff\xff\xff\xff").decode()}), "bad_protobuf"),
        (json.dumps({"type": "heartbeat", "message": ""}), "unknown_message"),
        (json.dumps({"type": "pricing", "message": not_positive}), "bad_price"),
    ]


def finnhub_frames(first, count):
    out = []
    for i in range(first, first + count):
        trades = [{"s": s, "p": 190.0 + (i % 11) * 0.1 if s == "AAPL" else 370.0 - (i % 7) * 0.2,
                   "t": T0 + i * 900, "v": float(i % 5 + 1), "c": ["1"]} for s in ("AAPL", "MSFT")]
        frame = json.dumps({"type": "trade", "data": trades})
        ticks = [{"symbol": t["s"], "time": t["t"], "price": t["p"], "size": t["v"]} for t in trades]
        out.append((frame, ticks))
    return out


def finnhub_bad():
    return [
        ("{not json", "bad_json"),
        (json.dumps({"type": "news", "data": []}), "unknown_message"),
        (json.dumps({"type": "trade", "data": [{"s": "AAPL", "p": 0, "t": T0, "v": 1}]}), "bad_price"),
        (json.dumps({"type": "trade", "data": [{"s": "AAPL", "p": 1.5, "t": T0, "v": -3}]}), "bad_size"),
    ]


async def receive_subscriptions(ws, conn, want):
    """Reads `want` messages (the subscriptions) into the connection's log."""
    for _ in range(want):
        msg = await asyncio.wait_for(ws.recv(), 10)
        conn["received"].append({"at": time.monotonic(), "text": msg})
        save()


async def send(ws, frames, good_as_yahoo):
    for frame, decoded in frames:
        await ws.send(frame)
        if good_as_yahoo:
            log["good"].append({"symbol": decoded["id"], "time": int(decoded["time"]), "price": decoded["price"],
                                "size": int(decoded.get("last_size", "0")),
                                "day_volume": int(decoded.get("day_volume", "0"))})
        else:
            log["good"].extend(decoded)


async def yahoo(ws, n, conn):
    await receive_subscriptions(ws, conn, 1)
    if n == 2:
        await send(ws, yahoo_frames(0, 60), True)
        for frame, kind in yahoo_bad():
            await ws.send(frame)
            log["bad"].append({"frame": frame, "kind": kind})
        await send(ws, yahoo_frames(60, 20), True)
        save()
        await ws.close()
    elif n == 3:
        await send(ws, yahoo_frames(80, 40), True)
        save()
        await asyncio.sleep(3600)  # silence: the client must reconnect
    else:
        last = yahoo_frames(120, 60)
        await send(ws, last, True)
        save()
        # Until the client subscribes again, the last frame once a second (a
        # duplicate tick, counted once) keeps the connection alive: pings
        # alone are a stall.
        while len(conn["received"]) < 2:
            try:
                msg = await asyncio.wait_for(ws.recv(), 1)
                conn["received"].append({"at": time.monotonic(), "text": msg})
            except asyncio.TimeoutError:
                await ws.send(last[-1][0])
        log["done"] = True
        save()
        await keep_alive(ws)


async def finnhub(ws, n, conn):
    await receive_subscriptions(ws, conn, 2)
    if n == 1:
        await send(ws, finnhub_frames(0, 50), False)
        await ws.send(json.dumps({"type": "ping"}))
        for frame, kind in finnhub_bad():
            await ws.send(frame)
            log["bad"].append({"frame": frame, "kind": kind})
        save()
        await ws.close()
    else:
        await send(ws, finnhub_frames(50, 50), False)
        # The client answers a ping once it has read every frame before it.
        await asyncio.wait_for(await ws.ping(), 30)
        log["done"] = True
        save()
        await keep_alive(ws)


async def keep_alive(ws):
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 1)
        except asyncio.TimeoutError:
            await ws.ping()


async def handler(ws):
    n = len(log["connections"])
    conn = log["connections"][-1]
    try:
        await (yahoo if PROTOCOL == "yahoo" else finnhub)(ws, n, conn)
    except websockets.ConnectionClosed:
        pass


def on_upgrade(connection, request):
    log["connections"].append({"path": request.path, "received": [], "refused": False})
    save()
    if PROTOCOL == "yahoo" and len(log["connections"]) == 1:
        log["connections"][-1]["refused"] = True
        save()
        return Response(503, "Service Unavailable", Headers(), b"try later\n")
    return None


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, process_request=on_upgrade, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        with open(PORT_FILE, "w") as f:
            f.write(str(port))
        await asyncio.Future()


asyncio.run(main())
