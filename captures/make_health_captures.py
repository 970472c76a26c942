#!/usr/bin/env python3
"""Record the connection-health captures: peers that misbehave on purpose, on loopback, captured by tcpdump.

Same conventions as make_captures.py (whose helpers this script uses): NAME.pcap + NAME.truth.json, each session's
messages as its peers logged them. Each session also gets a "health" object: how it ended and its heartbeat, with
every time taken from the capture itself (the packet that completed each logged frame, read here with dpkt, not
with wsinspect).

    python3 captures/make_health_captures.py [--only NAME]

health_heartbeat: pongs after 20/50/120/300 ms, a ping never answered, an unsolicited pong, pings answered only
    at the latest (RFC 6455 5.5.3), websockets' own keepalive.
health_endings: clean closes, a Close never answered, a client process killed, an RST (SO_LINGER 0), a connection
    still open when the capture stops, idle gaps of a few seconds, and a burst of short sessions from one client
    address to a second server address with mixed endings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import random
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dpkt
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_captures as mc  # noqa: E402  (the script's own directory is only importable after the line above)
from make_captures import (  # noqa: E402
    C2S,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    S2C,
    Accepted,
    Capture,
    CaptureError,
    Entry,
    Packet,
    RawPair,
    Session,
    accept_key,
    close_entry,
    close_payload,
    data_entry,
    encode_frame,
    endpoint,
    frame_spans,
    new_key,
    opaque_entry,
    read_packets,
    upgrade_request,
    upgrade_response,
    wire_frames,
    write_truth,
)

sys.path.insert(0, str(HERE.parent))
from wsinspect.issues import Issue  # noqa: E402

PORTS = {"health_heartbeat": 47030, "health_endings": 47031}
RAW_HOST = "127.0.0.1"
STORM_SERVER = "127.0.0.2"
LIBRARY_HOST = "127.0.0.3"
STORM_CLIENT = "127.0.0.5"
OPCODE_NAMES = {0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}
TIMEOUT = 60.0


# -- raw peers matched by client address --------------------------------------------------------------------------


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RawServer:
    """A listening socket whose connections are handed to whoever asks by the client's address (sessions run at
    the same time, so arrival order means nothing)."""

    def __init__(self) -> None:
        self.accepted: Accepted[Streams] = Accepted()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.arrived(endpoint(writer.get_extra_info("peername")), (reader, writer))

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._on_connect, host, port)


async def open_pair(server: RawServer, host: str, port: int, bind: str | None = None) -> RawPair:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if bind is not None:
        sock.bind((bind, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    client_reader, client_writer = await asyncio.open_connection(sock=sock)
    server_reader, server_writer = await server.accepted.get(endpoint(sock.getsockname()))
    return RawPair(client_reader, client_writer, server_reader, server_writer)


class Script:
    """A raw session driven step by step: every frame written is logged in the session's truth first."""

    def __init__(self, pair: RawPair, path: str, rng: random.Random, expected: dict[str, Any]) -> None:
        self.pair, self.rng = pair, rng
        host = endpoint(pair.client_writer.get_extra_info("peername"))
        self.session = Session(pair.client, pair.server, host, path)
        self.expected = expected

    async def handshake(self) -> None:
        key = new_key(self.rng)
        await self.pair.c2s(upgrade_request(str(self.session.host), str(self.session.path), key))
        await self.pair.s2c(upgrade_response(accept_key(key)))

    async def send(self, direction: str, opcode: int, payload: bytes, entry: Entry) -> int:
        """Write one frame from `direction` and log it; returns its index in the session's messages."""
        self.session.messages.append(entry)
        mask = self.rng.randbytes(4) if direction == C2S else None
        frame = encode_frame(opcode, payload, mask=mask)
        await (self.pair.c2s(frame) if direction == C2S else self.pair.s2c(frame))
        return len(self.session.messages) - 1

    async def ping(self, direction: str, payload: bytes, **extra: object) -> int:
        return await self.send(direction, OP_PING, payload, opaque_entry(direction, "ping", payload, **extra))

    async def pong(self, direction: str, payload: bytes, answers: int | None) -> int:
        return await self.send(direction, OP_PONG, payload, opaque_entry(direction, "pong", payload, answers=answers))

    async def text(self, direction: str, text: str) -> int:
        return await self.send(direction, OP_TEXT, text.encode(), data_entry(direction, text))

    async def close(self, direction: str, code: int, reason: str = "") -> int:
        payload = close_payload(code, reason.encode())
        return await self.send(direction, OP_CLOSE, payload, close_entry(direction, code, reason))


async def run_script(
    server: RawServer,
    host: str,
    port: int,
    path: str,
    seed: int,
    expected: dict[str, Any],
    body: Callable[[Script], Awaitable[None]],
    bind: str | None = None,
) -> Session:
    script = Script(await open_pair(server, host, port, bind), path, random.Random(seed), expected)
    await script.handshake()
    await body(script)
    return session_with(script.session, expected)


def session_with(session: Session, expected: dict[str, Any]) -> Session:
    """Attach what the design expects (termination, ended_by, findings); the capture fills in the rest."""
    session.expected = expected  # type: ignore[attr-defined]
    return session


# -- truth from the capture ---------------------------------------------------------------------------------------


def entry_payload(entry: Entry) -> bytes:
    if entry["opcode"] == "close":
        code = entry["close_code"]
        return b"" if code is None else close_payload(int(str(code)), str(entry["close_reason"]).encode())
    if "text" in entry:
        return str(entry["text"]).encode()
    return base64.b64decode(str(entry.get("data", "")))


def completion_times(packets: list[Packet], src: str, dst: str, ends: list[int]) -> list[float]:
    """Capture time of the packet that carried the last byte of each span ending at `ends` (stream offsets)."""
    isn = next(p.seq for p in packets if p.src == src and p.dst == dst and p.flags & dpkt.tcp.TH_SYN)
    times = []
    for end in ends:
        times.append(
            next(
                p.ts
                for p in packets
                if p.src == src and p.dst == dst and p.payload and (p.seq - isn - 1) % 2**32 < end
                if (p.seq - isn - 1) % 2**32 + len(p.payload) >= end
            )
        )
    return times


def wire_log(packets: list[Packet], session: Session, last_ts: float) -> dict[str, Any]:
    """The session's frames as the capture shows them, merged with its log, and the facts of its end."""
    client, server = session.client, session.server
    mine = [p for p in packets if {p.src, p.dst} == {client, server}]
    streams = {C2S: mc.tcp_stream(mine, client, server), S2C: mc.tcp_stream(mine, server, client)}
    heads = {d: streams[d].index(b"\r\n\r\n") + 4 for d in streams}
    upgrade_ts = completion_times(mine, server, client, [heads[S2C]])[0]
    auto_ok = session.path in ("/keepalive", "/library-clean", "/library-server-close")
    merged: list[tuple[float, Entry]] = []
    for d, (src, dst) in ((C2S, (client, server)), (S2C, (server, client))):
        frames = wire_frames(streams[d], heads[d])
        times = completion_times(mine, src, dst, [end for _, end in frame_spans(streams[d], heads[d])])
        logged = [m for m in session.messages if m["dir"] == d]
        j = 0
        for frame, ts in zip(frames, times, strict=True):
            name = OPCODE_NAMES[frame.opcode]
            if j < len(logged) and logged[j]["opcode"] == name and entry_payload(logged[j]) == frame.payload:
                merged.append((ts, logged[j]))
                j += 1
            elif auto_ok and frame.opcode in (OP_PING, OP_PONG, OP_CLOSE):
                if frame.opcode == OP_CLOSE:
                    code = int.from_bytes(frame.payload[:2], "big") if frame.payload else None
                    entry = close_entry(d, code, frame.payload[2:].decode(), auto=True)
                else:
                    entry = opaque_entry(d, name, frame.payload, auto=True)
                merged.append((ts, entry))
            else:
                raise CaptureError(f"{client} {d}: frame {name} {frame.payload[:20]!r} on the wire was not logged")
        if j != len(logged):
            raise CaptureError(f"{client} {d}: logged frames missing from the capture: {logged[j:]}")
    merged.sort(key=lambda item: item[0])
    rst = [p.ts for p in mine if p.flags & dpkt.tcp.TH_RST]
    fins = {(p.src, p.dst): p.ts for p in mine if p.flags & dpkt.tcp.TH_FIN}
    if rst:
        ended_by, end_ts = "rst", rst[0]
    elif len(fins) == 2:
        ended_by, end_ts = "fin", max(fins.values())
    else:
        ended_by, end_ts = "eof", last_ts
    return {"merged": merged, "upgrade_ts": upgrade_ts, "ended_by": ended_by, "end_ts": end_ts}


def health_truth(session: Session, log: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat facts from what the peers sent, with the capture's times."""
    merged: list[tuple[float, Entry]] = log["merged"]
    session.messages = [entry for _, entry in merged]
    time_of = [ts for ts, _ in merged]
    count = {(d, op): sum(m["dir"] == d and m["opcode"] == op for m in session.messages) for d in (C2S, S2C)
             for op in ("ping", "pong")}  # fmt: skip
    rtts = []
    unsolicited = 0
    for i, m in enumerate(session.messages):
        if m["opcode"] != "pong":
            continue
        answers = m.get("answers")
        if m.get("auto"):
            # A library's own pong echoes the ping's payload (RFC 6455 5.5.3); its pings carry unique payloads.
            pings = [
                k
                for k, other in enumerate(session.messages[:i])
                if other["opcode"] == "ping" and other["dir"] != m["dir"] and other["data"] == m["data"]
            ]
            if len(pings) != 1:
                raise CaptureError(f"{session.client}: library pong {m['data']} matches pings {pings}")
            answers = m["answers"] = pings[0]
        if answers is None:
            unsolicited += 1
        else:
            rtts.append(time_of[i] - time_of[int(str(answers))])
    times = [log["upgrade_ts"], *time_of, log["end_ts"]]
    expected = session.expected  # type: ignore[attr-defined]
    if log["ended_by"] != expected["ended_by"]:
        raise CaptureError(f"{session.client} {session.path}: ended by {log['ended_by']}, not {expected['ended_by']}")
    return {
        "termination": expected["termination"],
        "ended_by": log["ended_by"],
        "upgrade_ts": log["upgrade_ts"],
        "end_ts": log["end_ts"],
        "heartbeat": {
            "pings_c2s": count[C2S, "ping"],
            "pings_s2c": count[S2C, "ping"],
            "pongs_c2s": count[C2S, "pong"],
            "pongs_s2c": count[S2C, "pong"],
            "unanswered": sum(bool(m.get("unanswered")) for m in session.messages),
            "unsolicited_pongs": unsolicited,
            "rtts": rtts,
            "max_idle": max(b - a for a, b in itertools.pairwise(times)),
        },
        "issues": expected.get("issues", []),
    }


def check_connections(path: Path) -> None:
    """Every connection starts with a SYN and misses no byte; how it ends is each session's own business here (RST,
    or still open when tcpdump stops), checked against the design when the truth is written."""
    flows: dict[tuple[str, str], list[Packet]] = {}
    for packet in read_packets(path)[1]:
        flows.setdefault((packet.src, packet.dst), []).append(packet)
    for (src, dst), packets in flows.items():
        syn = next((p for p in packets if p.flags & dpkt.tcp.TH_SYN), None)
        if syn is None:
            raise CaptureError(f"{path.name}: {src} -> {dst} lacks its SYN")
        received = 0
        for offset, size in sorted(((p.seq - syn.seq - 1) % 2**32, len(p.payload)) for p in packets if p.payload):
            if offset > received:
                raise CaptureError(f"{path.name}: {src} -> {dst} misses bytes {received}-{offset}")
            received = max(received, offset + size)


# Capture (from make_captures.py) checks every file it stops; these captures end some connections on purpose
# without a FIN, so the check it calls is this one.
mc.check_complete = check_connections


def finish_truth(name: str, sessions: list[Session], description: str) -> None:
    pcap = HERE / f"{name}.pcap"
    packets = read_packets(pcap)[1]
    last_ts = packets[-1].ts
    health = {s.client: health_truth(s, wire_log(packets, s, last_ts)) for s in sessions}
    write_truth(name, pcap.name, description, sessions, clean=False, order_by=pcap)
    # asdict() knows only the declared fields: add "health" to each session record.
    truth_path = HERE / f"{name}.truth.json"
    truth = json.loads(truth_path.read_text())
    for record in truth["sessions"]:
        record["health"] = health[record["client"]]
    truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- health_heartbeat --------------------------------------------------------------------------------------------


async def delays(s: Script) -> None:
    """Pongs after 20/50/120/300 ms, a ping never answered, an unsolicited pong, a server ping, a clean close."""
    for ms in (20, 50, 120, 300):
        ping = await s.ping(C2S, f"rtt-{ms}".encode())
        await asyncio.sleep(ms / 1000)
        await s.pong(S2C, f"rtt-{ms}".encode(), ping)
    await s.ping(C2S, b"never answered", unanswered=True)
    await asyncio.sleep(1.5)
    await s.pong(S2C, b"heartbeat", None)  # one-way heartbeat (RFC 6455 5.5.3)
    ping = await s.ping(S2C, b"server-ping")
    await asyncio.sleep(0.01)
    await s.pong(C2S, b"server-ping", ping)
    await s.text(C2S, "bye")
    await s.close(C2S, 1000, "done")
    await s.close(S2C, 1000, "done")
    await s.pair.finish()


async def latest_only(s: Script) -> None:
    """Three pings with the same payload; the server answers the latest only, as RFC 6455 5.5.3 allows."""
    await s.ping(C2S, b"")
    await asyncio.sleep(0.05)
    await s.ping(C2S, b"")
    await asyncio.sleep(0.05)
    ping = await s.ping(C2S, b"")
    await asyncio.sleep(0.03)
    await s.pong(S2C, b"", ping)
    await s.close(S2C, 1001, "going away")
    await s.close(C2S, 1001, "going away")
    await s.pair.finish()


async def keepalive_session(port: int) -> Session:
    """websockets on both ends with its own keepalive: each side pings every 0.25 s, the other pongs on its own."""
    accepted: Accepted[ServerConnection] = Accepted()

    async def handler(connection: ServerConnection) -> None:
        accepted.arrived(endpoint(connection.remote_address), connection)
        await connection.wait_closed()

    netloc = endpoint((LIBRARY_HOST, port))
    options: dict[str, Any] = {"compression": None, "ping_interval": 0.25, "ping_timeout": 5}
    async with serve(handler, LIBRARY_HOST, port, **options), connect(f"ws://{netloc}/keepalive", **options) as c:
        session = Session(endpoint(c.local_address), endpoint(c.remote_address), netloc, "/keepalive")
        server = await accepted.get(session.client)
        await mc.converse(session, c, server, [(C2S, "hello"), (S2C, "hi")])
        await asyncio.sleep(1.1)
        await mc.close_websockets(session, c, 1000, "")
    return session_with(session, {"termination": "clean", "ended_by": "fin"})


async def health_heartbeat() -> None:
    name, port = "health_heartbeat", PORTS["health_heartbeat"]
    raw = RawServer()
    async with Capture(HERE / f"{name}.pcap", port):
        listening = await raw.start(RAW_HOST, port)
        try:
            sessions = [
                await run_script(raw, RAW_HOST, port, "/delays", 1, {
                    "termination": "clean", "ended_by": "fin", "issues": [Issue.PING_UNANSWERED]}, delays),
                await run_script(raw, RAW_HOST, port, "/latest-only", 2, {
                    "termination": "clean", "ended_by": "fin"}, latest_only),
                await keepalive_session(port),
            ]  # fmt: skip
        finally:
            listening.close()
    finish_truth(
        name,
        sessions,
        "Heartbeats: a raw server answering pings after 20/50/120/300 ms, one ping never answered, an unsolicited"
        " pong, a server ping; three pings with one payload answered once (RFC 6455 5.5.3); websockets' own"
        " keepalive both ways every 0.25 s. Every session closes cleanly.",
    )


# -- health_endings ----------------------------------------------------------------------------------------------

KILLED_CLIENT = r"""
import socket, sys, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("%s:%d" % sock.getsockname(), flush=True)
sock.sendall(bytes.fromhex(sys.argv[3]))
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += sock.recv(1)
sock.sendall(bytes.fromhex(sys.argv[4]))
time.sleep(60)
"""


async def killed_session(server: RawServer, port: int, rng: random.Random) -> Session:
    """A client process that sends one message and is killed 2.5 s later: its kernel sends the FIN, no Close."""
    host = endpoint((RAW_HOST, port))
    key = new_key(rng)
    text = "last words"
    frame = encode_frame(OP_TEXT, text.encode(), mask=rng.randbytes(4))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_CLIENT, RAW_HOST, str(port),
        upgrade_request(host, "/killed", key).hex(), frame.hex(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    client = (await child.stdout.readline()).decode().strip()
    reader, writer = await server.accepted.get(client)
    await reader.readuntil(b"\r\n\r\n")
    writer.write(upgrade_response(accept_key(key)))
    await writer.drain()
    if await reader.readexactly(len(frame)) != frame:
        raise CaptureError("killed client: frame corrupted")
    session = Session(client, host, host, "/killed", messages=[data_entry(C2S, text)])
    await asyncio.sleep(2.5)
    child.kill()
    await child.wait()
    await reader.read()  # the kernel's FIN for the killed process
    writer.close()
    await writer.wait_closed()
    return session_with(session, {"termination": "no-close", "ended_by": "fin"})


async def close_unanswered(s: Script) -> None:
    await s.text(C2S, "see you")
    await s.close(C2S, 1000, "bye")
    await asyncio.sleep(1.2)  # the server never answers, then closes TCP
    await s.pair.finish()


async def reset(s: Script) -> None:
    await s.text(C2S, "about to reset")
    await s.text(S2C, "ok")
    sock = s.pair.client_writer.get_extra_info("socket")
    # SO_LINGER on, 0 s: close() sends RST instead of FIN (RFC 9293 3.10.4 abort).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.pair.client_writer.close()
    with contextlib.suppress(ConnectionResetError):
        await s.pair.server_reader.read()
    s.pair.server_writer.close()


async def clean_raw(s: Script) -> None:
    await s.text(C2S, f"hello {s.session.path}")
    await s.text(S2C, "hello")
    await s.close(S2C, 1000)
    await s.close(C2S, 1000)
    await s.pair.finish()


async def no_close(s: Script) -> None:
    await s.text(C2S, f"hello {s.session.path}")
    await asyncio.sleep(0.2)
    await s.pair.finish()


async def library_sessions(port: int) -> list[Session]:
    """websockets on both ends: a client close after an idle second, and a server close 1001."""
    accepted: Accepted[ServerConnection] = Accepted()
    netloc = endpoint((LIBRARY_HOST, port))
    sessions = []
    async with mc.serve_plain(mc.websockets_handler(accepted), LIBRARY_HOST, port):
        async with mc.connect_plain(f"ws://{netloc}/library-clean") as c:
            session = Session(endpoint(c.local_address), endpoint(c.remote_address), netloc, "/library-clean")
            server = await accepted.get(session.client)
            await mc.converse(session, c, server, [(C2S, "hello"), (S2C, "world")])
            await asyncio.sleep(1.0)
            await mc.converse(session, c, server, [(C2S, "still there?"), (S2C, "yes")])
            await mc.close_websockets(session, c, 1000, "bye")
        sessions.append(session_with(session, {"termination": "clean", "ended_by": "fin"}))
        async with mc.connect_plain(f"ws://{netloc}/library-server-close") as c:
            session = Session(endpoint(c.local_address), endpoint(c.remote_address), netloc, "/library-server-close")
            server = await accepted.get(session.client)
            await mc.converse(session, c, server, [(S2C, "shutting down")])
            session.messages.append(close_entry(S2C, 1001, "going away"))
            session.messages.append(close_entry(C2S, 1001, "going away", auto=True))
            await server.close(1001, "going away")
            await c.wait_closed()
        sessions.append(session_with(session, {"termination": "clean", "ended_by": "fin"}))
    return sessions


async def storm(server: RawServer, port: int) -> list[Session]:
    """Eight short sessions from one client address to a second server, overlapping, with mixed endings."""
    endings = [
        (clean_raw, "clean", "fin"),
        (no_close, "no-close", "fin"),
        (reset, "reset", "rst"),
        (clean_raw, "clean", "fin"),
        (no_close, "no-close", "fin"),
        (clean_raw, "clean", "fin"),
        (reset, "reset", "rst"),
        (no_close, "no-close", "fin"),
    ]

    async def one(i: int) -> Session:
        await asyncio.sleep(i * 0.05)
        body, ending, ended_by = endings[i]
        expected = {"termination": ending, "ended_by": ended_by}
        return await run_script(server, STORM_SERVER, port, f"/storm/{i}", 100 + i, expected, body, bind=STORM_CLIENT)

    return list(await asyncio.gather(*(one(i) for i in range(len(endings)))))


async def health_endings() -> None:
    name, port = "health_endings", PORTS["health_endings"]
    raw, storm_server = RawServer(), RawServer()
    rng = random.Random(16)
    async with Capture(HERE / f"{name}.pcap", port):
        listeners = [await raw.start(RAW_HOST, port), await storm_server.start(STORM_SERVER, port)]
        try:
            # Opened first, closed only after tcpdump stops.
            still_open = Script(await open_pair(raw, RAW_HOST, port), "/open", random.Random(3), {
                "termination": "open", "ended_by": "eof"})  # fmt: skip
            await still_open.handshake()
            await still_open.text(C2S, "anyone?")
            await still_open.text(S2C, "here")
            sessions = [session_with(still_open.session, still_open.expected)]
            sessions += await library_sessions(port)
            sessions.append(
                await run_script(raw, RAW_HOST, port, "/close-unanswered", 4, {
                    "termination": "close-unanswered", "ended_by": "fin", "issues": [Issue.CLOSE_UNANSWERED]},
                    close_unanswered)
            )  # fmt: skip
            sessions.append(await killed_session(raw, port, rng))
            sessions.append(
                await run_script(raw, RAW_HOST, port, "/reset", 5, {"termination": "reset", "ended_by": "rst"}, reset)
            )
            sessions += await storm(storm_server, port)
        finally:
            for listener in listeners:
                listener.close()
    still_open.pair.client_writer.close()
    still_open.pair.server_writer.close()
    finish_truth(
        name,
        sessions,
        "Endings: a connection still open when the capture stops; websockets client close after an idle second and"
        " server close 1001; a Close never answered; a client process killed 2.5 s after its last message (its"
        " kernel's FIN, no Close); an RST (SO_LINGER 0); eight overlapping sessions from 127.0.0.5 to a second"
        " server 127.0.0.2 ending clean, without Close, or by RST.",
    )


CAPTURES: dict[str, Callable[[], Awaitable[None]]] = {
    "health_heartbeat": health_heartbeat,
    "health_endings": health_endings,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=CAPTURES, action="append", help="make only this capture (repeatable)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make_health_captures.py needs root: tcpdump captures on the loopback interface")
    for name in args.only or CAPTURES:
        print(f"{name} ...", flush=True)
        asyncio.run(asyncio.wait_for(CAPTURES[name](), TIMEOUT))


if __name__ == "__main__":
    main()
