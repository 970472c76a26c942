"""Load figures for `wsinspect live` on lo (root; not part of the test run).

    sudo python -m tests.live.load latency [--messages 200]
    sudo python -m tests.live.load rate [--raw] [--clients 2] [--connections 20] [--seconds 5] [--size 100]
                                        [--rates 5000,10000,20000,...]

latency: one client sends a message every 10 ms; for each JSON line, the time it
reached this process minus the kernel timestamp of the packet that completed the
message (median, 99th percentile, max).

rate: for each target rate, CLIENTS processes of real `websockets` clients (CONNECTIONS
each) send SIZE-byte text messages, paced, for SECONDS, to a cheap sink server (it
answers the upgrade by hand and discards the rest, so the peers leave the CPU to
wsinspect). With --raw the clients write one pre-built masked frame per message
straight to their TCP transport instead of calling send(), which costs them a few
microseconds instead of tens: on a small machine the peers otherwise run out of CPU
before wsinspect does. A rate passes when wsinspect decodes every message sent and reports 0
packets dropped by the kernel and 0 by its own queue. Also printed: wsinspect's CPU
time (user + system, less what starting and stopping cost) per 10 000 captured
packets. Stops at the first failing rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wsinspect.http import accept_key

ROOT = Path(__file__).resolve().parents[2]
WSINSPECT = [sys.executable, "-m", "wsinspect", "live", "-i", "lo"]
LOAD = [sys.executable, "-m", "tests.live.load"]


# -- the peers -------------------------------------------------------------------


class _Sink(asyncio.Protocol):
    """Accepts any Upgrade with a correct 101, then discards everything."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.head = b""
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            return
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", self.head)
        accept = accept_key(key.group(1).decode() if key else "").encode()
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.upgraded = True


async def _sink(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Sink, "127.0.0.1", port)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def _clients(port: int, connections: int, rate: float, seconds: float, size: int, raw: bool) -> None:
    from websockets.asyncio.client import connect

    payload = "x" * size
    # --raw: the same masked frame, built once and written straight to the TCP transport,
    # costs the sender a few microseconds instead of websockets' tens: the peers then
    # leave the CPU to wsinspect. The connections (handshake, close) stay websockets'.
    frame = b""
    if raw:
        assert size < 126, "--raw builds frames with a 7-bit length"
        mask = b"\x12\x34\x56\x78"
        frame = bytes([0x81, 0x80 | size]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload.encode()))
    per_conn = rate / connections
    start = asyncio.Event()

    async def one() -> int:
        count = 0
        async with connect(f"ws://127.0.0.1:{port}/", compression=None, close_timeout=0.1) as ws:
            write = ws.transport.write
            await start.wait()
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < seconds:
                while count < elapsed * per_conn:
                    if raw:
                        write(frame)
                    else:
                        await ws.send(payload)
                    count += 1
                await asyncio.sleep(0.01)
            # The sink never answers the close: the close times out and the connection is
            # aborted, so first let the kernel take every byte written.
            while ws.transport.get_write_buffer_size():
                await asyncio.sleep(0.01)
        return count

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    await asyncio.sleep(0.5)  # all connected
    start.set()
    print(json.dumps({"sent": sum(await asyncio.gather(*tasks))}), flush=True)


# -- the measurements ---------------------------------------------------------------


def _spawn(args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=ROOT, **kw)


def _start_sink() -> tuple[subprocess.Popen[bytes], int]:
    sink = _spawn([*LOAD, "sink"], stdout=subprocess.PIPE)
    assert sink.stdout is not None
    port = int(sink.stdout.readline().split()[1])
    return sink, port


def _start_live(port: int) -> subprocess.Popen[bytes]:
    live = _spawn([*WSINSPECT, "-f", f"tcp port {port}", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert live.stderr is not None
    line = live.stderr.readline()
    assert b"listening on" in line, line
    return live


def latency(messages: int) -> None:
    sink, port = _start_sink()
    live = _start_live(port)
    arrivals: list[tuple[float, bytes]] = []

    def collect() -> None:
        assert live.stdout is not None
        for line in iter(live.stdout.readline, b""):
            arrivals.append((time.time(), line))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    clients = _spawn([*LOAD, "clients", str(port), "1", "100", str(messages / 100), "100"])
    clients.wait()
    time.sleep(0.5)
    live.send_signal(signal.SIGINT)
    live.wait()
    reader.join()
    sink.kill()
    delays = sorted(t - json.loads(line)["ts"] for t, line in arrivals if b'"type":"message"' in line)
    print(
        f"wire to line over {len(delays)} messages: median {statistics.median(delays) * 1000:.2f} ms,"
        f" p99 {delays[int(len(delays) * 0.99)] * 1000:.2f} ms, max {delays[-1] * 1000:.2f} ms"
    )


def rate(rates: list[int], clients: int, connections: int, seconds: float, size: int, raw: bool) -> None:
    how = "frames written raw" if raw else "websockets send()"
    print(f"{clients} client processes x {connections} connections, {size}-byte texts ({how}), {seconds} s per rate")
    # What starting and stopping cost (imports, ring set-up), so that the figure per packet is the capture's.
    idle = _spawn(
        [*WSINSPECT, "-f", "tcp port 9", "--duration", "0.2", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    startup = _cpu_of(idle)
    print(f"start and stop alone: {startup:.2f} s CPU")
    for target in rates:
        sink, port = _start_sink()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            live = _spawn([*WSINSPECT, "-f", f"tcp port {port}", "--json", "-q"], stdout=out, stderr=err)
            while b"listening on" not in _read(err):
                time.sleep(0.05)
            procs = [
                _spawn(
                    [*LOAD, "clients", str(port), str(connections), str(target / clients), str(seconds), str(size)]
                    + (["--raw"] if raw else []),
                    stdout=subprocess.PIPE,
                )
                for _ in range(clients)
            ]
            sent = 0
            for p in procs:
                output, _ = p.communicate()
                sent += json.loads(output.splitlines()[-1])["sent"]
            time.sleep(1.0)  # let the decoder catch up with what the kernel holds
            live.send_signal(signal.SIGINT)
            cpu = _cpu_of(live)
            records = [json.loads(line) for line in _read(out).splitlines()]
            stats = _read(err).decode().splitlines()[-1]
        sink.kill()
        sink.wait()
        sessions = [r for r in records if r["type"] == "session"]
        # Each client ends with a close frame: not one of the messages counted as sent.
        decoded = sum(r["messages_c2s"] for r in sessions) - sum(1 for r in sessions if r["close"])
        m = re.search(r"(\d+) packets captured .* (\d+) dropped by kernel, (\d+) dropped by wsinspect", stats)
        assert m, stats
        packets, kernel, queue = map(int, m.groups())
        ok = decoded == sent and kernel == 0 and queue == 0
        per10k = (cpu - startup) / packets * 10_000 if packets else 0.0
        print(
            f"target {target:>6}/s  sent {sent / seconds:>6.0f}/s  decoded {decoded}/{sent}"
            f"  packets {packets} ({packets / seconds:.0f}/s)"
            f"  kernel drops {kernel}  queue drops {queue}  CPU {cpu:.2f} s, {per10k * 1000:.0f} ms per 10k packets"
            f"  {'OK' if ok else 'LOSS'}",
            flush=True,
        )
        if not ok:
            break


def _cpu_of(p: subprocess.Popen[bytes]) -> float:
    """Wait for a child and return the CPU time (user + system) it used."""
    _, _, usage = os.wait4(p.pid, 0)
    p.returncode = 0  # reaped here, with its resource usage
    return usage.ru_utime + usage.ru_stime


def _read(f: Any) -> bytes:
    f.seek(0)
    data: bytes = f.read()
    return data


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--messages", type=int, default=200)
    r = sub.add_parser("rate")
    r.add_argument("--clients", type=int, default=2)
    r.add_argument("--connections", type=int, default=20)
    r.add_argument("--seconds", type=float, default=5)
    r.add_argument("--size", type=int, default=100)
    r.add_argument("--rates", default="5000,10000,20000,30000,40000,50000,60000,80000")
    r.add_argument("--raw", action="store_true", help="write pre-built frames instead of calling send()")
    sink = sub.add_parser("sink")
    sink.set_defaults()
    c = sub.add_parser("clients")
    c.add_argument("port", type=int)
    c.add_argument("connections", type=int)
    c.add_argument("rate", type=float)
    c.add_argument("seconds", type=float)
    c.add_argument("size", type=int)
    c.add_argument("--raw", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0 and args.mode in ("latency", "rate"):
        sys.exit("needs root (live capture)")
    if args.mode == "latency":
        latency(args.messages)
    elif args.mode == "rate":
        rates = [int(x) for x in args.rates.split(",")]
        rate(rates, args.clients, args.connections, args.seconds, args.size, args.raw)
    elif args.mode == "sink":
        asyncio.run(_sink(0))
    else:
        asyncio.run(_clients(args.port, args.connections, args.rate, args.seconds, args.size, args.raw))


if __name__ == "__main__":
    main()
