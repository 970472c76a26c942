"""Real `websockets` peers for the live-capture tests, one process each.

    python -m tests.live.ws_peer server HOST [--port P] [--compression] [--connections N]
    python -m tests.live.ws_peer client URL [--compression] [--large BYTES] [--pause-after N]

The server echoes every data message whole and prints ``ready PORT`` once it listens;
it exits after N connections. The client plays ``script(large)``, waiting for each
echo (and for the pong of its ping) so that the order of messages on the wire is
fixed, and prints one JSON line per message sent with the wall-clock time just before
the send; with --pause-after N it prints ``paused`` after N messages and waits for a
line on stdin (the test starts a capture in between: a session joined mid-stream).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

CLOSE_CODE = 1000
CLOSE_REASON = "bye"


def script(large: int = 0) -> list[tuple[str, Any]]:
    """What the client does, in order: (kind, payload).

    kind is "send" (str, bytes, or a list of fragments), "ping" (bytes) or "close".
    """
    steps: list[tuple[str, Any]] = [
        ("send", "hello"),
        ("send", "héllo wörld — 你好 🌍"),
        ("send", bytes(range(256))),
        ("send", ["frag-1 ", "frag-2 ", "frag-3"]),
        ("send", [b"\x00" * 10, b"\xff" * 10]),
        ("ping", b"are you there"),
    ]
    if large:
        # Text with some structure, so it compresses but not to nothing.
        line = "".join(chr(0x61 + (i * 7) % 26) for i in range(97)) + "\n"
        steps.append(("send", (line * (large // len(line) + 1))[:large]))
        steps.append(("send", bytes((i * 31 + i // 251) % 256 for i in range(large))))
    steps.append(("send", "last"))
    steps.append(("close", None))
    return steps


def expected(large: int = 0) -> list[dict[str, Any]]:
    """The messages the script puts on the wire, as (dir, opcode, text | data) records."""

    def record(direction: str, payload: str | bytes, opcode: str | None = None) -> dict[str, Any]:
        if isinstance(payload, str):
            return {"dir": direction, "opcode": opcode or "text", "text": payload}
        return {"dir": direction, "opcode": opcode or "binary", "data": base64.b64encode(payload).decode()}

    out: list[dict[str, Any]] = []
    close = CLOSE_CODE.to_bytes(2, "big") + CLOSE_REASON.encode()
    for kind, payload in script(large):
        if kind == "send":
            whole = payload
            if isinstance(payload, list):  # fragments: one message
                whole = "".join(payload) if isinstance(payload[0], str) else b"".join(payload)
            out += [record("c2s", whole), record("s2c", whole)]
        elif kind == "ping":
            out += [record("c2s", payload, "ping"), record("s2c", payload, "pong")]
        else:
            out += [record("c2s", close, "close"), record("s2c", close, "close")]
    return out


async def server(host: str, port: int, compression: bool, connections: int) -> None:
    done = asyncio.Event()
    remaining = connections

    async def echo(ws: ServerConnection) -> None:
        nonlocal remaining
        async for message in ws:
            await ws.send(message)
        remaining -= 1
        if remaining == 0:
            done.set()

    async with serve(echo, host, port, compression="deflate" if compression else None, max_size=None) as srv:
        bound = next(iter(srv.sockets)).getsockname()[1]
        print(f"ready {bound}", flush=True)
        await done.wait()


async def client(url: str, compression: bool, large: int, pause_after: int | None) -> None:
    async with connect(url, compression="deflate" if compression else None, max_size=None) as ws:
        for n, (kind, payload) in enumerate(script(large)):
            if n == pause_after:
                print("paused", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            print(json.dumps({"step": n, "kind": kind, "time": time.time()}), flush=True)
            if kind == "send":
                await ws.send(payload)
                await ws.recv()
            elif kind == "ping":
                await (await ws.ping(payload))
            else:
                await ws.close(CLOSE_CODE, CLOSE_REASON)
    print("done", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("host")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--compression", action="store_true")
    s.add_argument("--connections", type=int, default=1)
    c = sub.add_parser("client")
    c.add_argument("url")
    c.add_argument("--compression", action="store_true")
    c.add_argument("--large", type=int, default=0)
    c.add_argument("--pause-after", type=int)
    args = p.parse_args()
    if args.role == "server":
        asyncio.run(server(args.host, args.port, args.compression, args.connections))
    else:
        asyncio.run(client(args.url, args.compression, args.large, args.pause_after))


if __name__ == "__main__":
    main()
