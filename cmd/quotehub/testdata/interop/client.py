"""An independent WebSocket client (Python's websockets) for quotehub's tests.

Usage: client.py ws://127.0.0.1:PORT
It plays the protocol's exchanges and prints one JSON object with what it saw.
"""
import asyncio
import json
import sys

import websockets


async def until(ws, pred):
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if pred(frame):
            return frame


async def main(base):
    out = {}
    async with websockets.connect(base + "/v1/ws?symbols=KRW-BTC", max_size=1 << 20) as ws:
        out["welcome"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        out["subscribed"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        quotes = await until(ws, lambda f: f.get("type") == "quotes")
        out["quote_symbols"] = [q["symbol"] for q in quotes["quotes"]]
        await ws.send(json.dumps({"op": "subscribe", "id": "r1", "symbols": ["KRW-ETH", "NOPE!"]}))
        out["r1"] = await until(ws, lambda f: f.get("id") == "r1")
        await ws.send(json.dumps({"op": "ping", "id": 7}))
        out["pong"] = await until(ws, lambda f: f.get("type") == "pong")
        waiter = await ws.ping(b"lib")
        await asyncio.wait_for(waiter, 10)
        out["lib_pong"] = True
        # A message in three fragments.
        msg = json.dumps({"op": "unsubscribe", "id": "r2", "symbols": ["KRW-ETH"]})
        await ws.send([msg[:10], msg[10:20], msg[20:]])
        out["r2"] = await until(ws, lambda f: f.get("id") == "r2")
        await ws.close(code=1000, reason="bye")
        out["close_code"] = ws.close_code
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
