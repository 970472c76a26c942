#!/usr/bin/env python3
"""Record the sample captures in this directory: real WebSocket peers on loopback, captured by tcpdump.

Every capture NAME gets a NAME.truth.json written from what the peers logged as they sent (contract in README.md).
Needs root (tcpdump), tshark's editcap, node + npm for the node_ws and deflate_node captures, and chromium for
deflate_chromium (skipped with a message when it is not installed).

    python3 captures/make_captures.py [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import dpkt
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from wsinspect.issues import Issue  # noqa: E402  (the repo root is only importable after the line above)

NODE_DIR = HERE / "node"
LOCALHOST = "127.0.0.1"
C2S, S2C = "c2s", "s2c"

# Payloads above this size are recorded by length and SHA-256, keeping truth files readable.
INLINE_LIMIT = 4096
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CAPTURE_TIMEOUT = 180.0
# Time for the last FIN/ACK of a session to reach tcpdump before it is stopped.
SETTLE = 0.5


# Ports per capture: unusual, so nothing else on the machine shows up in the filter.
PORTS = {
    "websockets_basic": 47001,
    "websockets_many": 47002,
    "aiohttp_basic": 47003,
    "node_ws": 47004,
    "ipv6_odd_port": 31337,
    "sll2_any": 47006,
    "pcapng_nano": 47007,
    "websockets_gz": 47008,
    "raw_edge": 47009,
    "rejected": 47010,
    "violations": 47011,
    "gappy": 47012,
    "deflate_websockets": 47013,
    "deflate_no_context": 47014,
    "deflate_small_window": 47015,
    "deflate_node": 47016,
    "deflate_aiohttp": 47017,
    "deflate_chromium": 47018,
    "deflate_bomb": 47019,
    "deflate_frame_legacy": 47020,
}

# RFC 6455 5.2 opcodes.
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# RFC 6455 1.3
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LINKTYPE_LINUX_SLL2 = 276
# Bytes before the IP header, per pcap link type: Ethernet (what tcpdump writes for lo) and Linux cooked v2.
LINK_HEADER_LENGTH = {dpkt.pcap.DLT_EN10MB: 14, LINKTYPE_LINUX_SLL2: 20}

Entry = dict[str, object]
T = TypeVar("T")


class CaptureError(Exception):
    """A capture could not be made as designed; its files must not be trusted."""


# -- truth records -----------------------------------------------------------------------------------------------


def payload_fields(payload: bytes, *, text: bool) -> Entry:
    if len(payload) > INLINE_LIMIT:
        return {"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    if text:
        return {"text": payload.decode()}
    return {"data": base64.b64encode(payload).decode()}


def data_entry(direction: str, message: str | bytes, **extra: object) -> Entry:
    """Truth record of a text (str) or binary (bytes) message."""
    if isinstance(message, str):
        return {"dir": direction, "opcode": "text", **payload_fields(message.encode(), text=True), **extra}
    return {"dir": direction, "opcode": "binary", **payload_fields(message, text=False), **extra}


def opaque_entry(direction: str, opcode: str, payload: bytes, **extra: object) -> Entry:
    """Truth record carrying the payload as base64: control frames, and frames whose payload is not valid text."""
    return {"dir": direction, "opcode": opcode, "data": base64.b64encode(payload).decode(), **extra}


def close_entry(direction: str, code: int | None, reason: str = "", **extra: object) -> Entry:
    return {"dir": direction, "opcode": "close", "close_code": code, "close_reason": reason, **extra}


def endpoint(sockname: Sequence[object]) -> str:
    """ip:port as the truth files spell it; IPv6 in brackets."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def extension_items(header: str | None) -> list[str]:
    """A Sec-WebSocket-Extensions value as the truth files list it: "name; param; param=value", names lower-cased.

    Enough for the headers the peers here write: no quoted values, no commas inside an item.
    """
    items = []
    for item in (header or "").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name:
            pairs = (param.partition("=") for param in params)
            items.append("; ".join([name.lower(), *(f"{k.strip().lower()}{eq}{v.strip()}" for k, eq, v in pairs)]))
    return items


@dataclass
class Session:
    client: str
    server: str
    host: str | None
    path: str | None
    subprotocol: str | None = None
    extensions: list[str] = field(default_factory=list)
    status: int | None = 101
    messages: list[Entry] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def write_truth(
    name: str,
    capture_file: str,
    description: str,
    sessions: Iterable[Session],
    *,
    clean: bool,
    order_by: Path | None,
    **extra: object,
) -> None:
    """Write NAME.truth.json; sessions are put in the order their SYNs appear in the pcap `order_by`."""
    ordered = list(sessions)
    if order_by is not None:
        syn_order = [
            p.src for p in read_packets(order_by)[1] if p.flags & dpkt.tcp.TH_SYN and not p.flags & dpkt.tcp.TH_ACK
        ]
        missing = [s.client for s in ordered if s.client not in syn_order]
        if missing:
            raise CaptureError(f"{name}: no SYN captured from {missing}")
        ordered.sort(key=lambda s: syn_order.index(s.client))
    truth = {
        "capture": capture_file,
        "description": description,
        "clean": clean,
        "sessions": [asdict(s) for s in ordered],
        **extra,
    }
    text = json.dumps(truth, indent=2, ensure_ascii=False) + "\n"
    (HERE / f"{name}.truth.json").write_text(text, encoding="utf-8")


# -- pcap reading (session order, post-processing) -------------------------------------------------------------


@dataclass(slots=True)
class Packet:
    ts: float
    buf: bytes
    src: str
    dst: str
    seq: int
    flags: int
    payload: bytes


def read_packets(path: Path) -> tuple[int, list[Packet]]:
    """(link type, every TCP packet) of a pcap written by tcpdump."""
    with path.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        offset = LINK_HEADER_LENGTH[linktype]
        packets = []
        for ts, buf in reader:
            raw_ip = buf[offset:]
            if raw_ip[0] >> 4 == 4:
                ip: dpkt.ip.IP | dpkt.ip6.IP6 = dpkt.ip.IP(raw_ip)
                family = socket.AF_INET
            else:
                ip = dpkt.ip6.IP6(raw_ip)
                family = socket.AF_INET6
            tcp = ip.data
            src = endpoint((socket.inet_ntop(family, ip.src), tcp.sport))
            dst = endpoint((socket.inet_ntop(family, ip.dst), tcp.dport))
            packets.append(Packet(ts, buf, src, dst, tcp.seq, tcp.flags, bytes(tcp.data)))
    return linktype, packets


def write_packets(path: Path, linktype: int, packets: Iterable[tuple[float, bytes]]) -> None:
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=262144, linktype=linktype)
        for ts, buf in packets:
            writer.writepkt(buf, ts)


# -- tcpdump ------------------------------------------------------------------------------------------------------


class Capture:
    """tcpdump recording one TCP port for the duration of an ``async with`` block.

    Entering returns only once tcpdump reports it is listening, so no packet of the block is missed; leaving
    stops it with SIGINT and fails unless the kernel dropped nothing.
    """

    def __init__(self, path: Path, port: int, *options: str, interface: str = "lo") -> None:
        self.path = path
        self.command = [
            "tcpdump", "-i", interface, "-w", str(path), "-U", "-s", "0",
            # --immediate-mode: without it, TPACKET_V3 hands over packets a block at a time, and the last partial
            # block is lost when tcpdump is stopped. -Z root: do not drop to a user that may not be able to write
            # here. -B: 16 MiB kernel buffer (in KiB).
            "--immediate-mode", "-Z", "root", "-B", "16384", *options, f"tcp port {port}",
        ]  # fmt: skip
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Capture:
        self.path.unlink(missing_ok=True)
        process = await asyncio.create_subprocess_exec(
            *self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._process = process
        try:
            await asyncio.wait_for(self._listening(process), READY_TIMEOUT)
        except BaseException:
            await self._kill(process)
            raise
        return self

    @staticmethod
    async def _listening(process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            if b"listening on" in line:
                return
        raise CaptureError(f"tcpdump exited before listening (status {await process.wait()})")

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.kill()
        await process.wait()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self._process
        assert process is not None and process.stderr is not None
        if exc_type is not None:
            await self._kill(process)
            return
        try:
            await asyncio.sleep(SETTLE)
            process.send_signal(signal.SIGINT)
            report = (await asyncio.wait_for(process.stderr.read(), STOP_TIMEOUT)).decode()
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except BaseException:
            await self._kill(process)
            raise
        dropped = re.search(r"(\d+) packets? dropped by kernel", report)
        if process.returncode != 0 or dropped is None or dropped.group(1) != "0":
            raise CaptureError(f"tcpdump for {self.path.name}: status {process.returncode}: {report.strip()}")
        # tcpdump's counts cannot show packets lost between kernel and file ("received by filter" counts both
        # copies of a loopback packet), so the file itself is checked.
        check_complete(self.path)


def check_complete(path: Path) -> None:
    """Fail unless every connection in the capture has both directions from SYN to FIN without a missing byte."""
    flows: dict[tuple[str, str], list[Packet]] = {}
    for packet in read_packets(path)[1]:
        flows.setdefault((packet.src, packet.dst), []).append(packet)
    for (src, dst), packets in flows.items():
        syn = next((p for p in packets if p.flags & dpkt.tcp.TH_SYN), None)
        fin = next((p for p in packets if p.flags & dpkt.tcp.TH_FIN), None)
        if syn is None or fin is None:
            raise CaptureError(f"{path.name}: {src} -> {dst} lacks its SYN or FIN")
        received = 0
        for offset, size in sorted(((p.seq - syn.seq - 1) % 2**32, len(p.payload)) for p in packets if p.payload):
            if offset > received:
                raise CaptureError(f"{path.name}: {src} -> {dst} misses bytes {received}-{offset}")
            received = max(received, offset + size)
        if received != (fin.seq - syn.seq - 1) % 2**32 + len(fin.payload):
            raise CaptureError(f"{path.name}: {src} -> {dst} misses bytes before its FIN")


# -- driving library peers -----------------------------------------------------------------------------------


class Accepted(Generic[T]):
    """Server-side connections by client endpoint, so a client can find the peer that accepted it."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[T]] = {}

    def _future(self, client: str) -> asyncio.Future[T]:
        return self._waiting.setdefault(client, asyncio.get_running_loop().create_future())

    def arrived(self, client: str, connection: T) -> None:
        self._future(client).set_result(connection)

    async def get(self, client: str) -> T:
        return await asyncio.wait_for(self._future(client), READY_TIMEOUT)


def serve_plain(handler: Callable[[ServerConnection], Awaitable[None]], host: str, port: int, **options: Any) -> Server:
    """websockets' serve() as every capture here uses it, like connect_plain().

    compression=None: these captures test plain framing. max_size=None: the 3 MB message is above the 1 MiB
    default. ping_interval=None: keepalive pings would add frames nobody logged.
    """
    return serve(handler, host, port, compression=None, max_size=None, ping_interval=None, **options)


def connect_plain(uri: str, **options: Any) -> connect:
    return connect(uri, compression=None, max_size=None, ping_interval=None, **options)


def websockets_handler(accepted: Accepted[ServerConnection]) -> Callable[[ServerConnection], Awaitable[None]]:
    """A websockets handler that hands its connection to the driving coroutine and lives until it closes."""

    async def handler(connection: ServerConnection) -> None:
        accepted.arrived(endpoint(connection.remote_address), connection)
        await connection.wait_closed()

    return handler


class Peer(Protocol):
    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...


async def converse(
    session: Session, client: Peer, server: Peer, steps: Iterable[tuple[str, str | bytes]], **extra: object
) -> None:
    """Send each message and wait until the other side has received it, logging it (with `extra`) in send order.

    Lockstep makes the truth order exact and puts every message in its own write.
    """
    for direction, message in steps:
        sender, receiver = (client, server) if direction == C2S else (server, client)
        session.messages.append(data_entry(direction, message, **extra))
        _, received = await asyncio.gather(sender.send(message), receiver.recv())
        if received != message:
            raise CaptureError(f"{session.client} {direction}: sent {message!r:.60}, received {received!r:.60}")


async def close_websockets(session: Session, client: ClientConnection, code: int, reason: str) -> None:
    """Close from the client; websockets servers echo the client's close code and reason (RFC 6455 5.5.1)."""
    session.messages.append(close_entry(C2S, code, reason))
    session.messages.append(close_entry(S2C, code, reason, auto=True))
    await client.close(code, reason)


async def ping_websockets(session: Session, sender: ClientConnection | ServerConnection, payload: bytes) -> None:
    """Ping and wait for the peer library's automatic pong."""
    direction = C2S if isinstance(sender, ClientConnection) else S2C
    session.messages.append(opaque_entry(direction, "ping", payload))
    session.messages.append(opaque_entry(S2C if direction == C2S else C2S, "pong", payload, auto=True))
    await (await sender.ping(payload))


async def websockets_session(
    port: int,
    path: str,
    steps: Sequence[tuple[str, str | bytes]],
    *,
    host: str = LOCALHOST,
    close: tuple[int, str] = (1000, ""),
) -> Session:
    """One websockets client/server session on its own server: the steps, then a client close."""
    accepted: Accepted[ServerConnection] = Accepted()
    netloc = endpoint((host, port))
    async with serve_plain(websockets_handler(accepted), host, port), connect_plain(f"ws://{netloc}{path}") as client:
        session = Session(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
        server = await accepted.get(session.client)
        await converse(session, client, server, steps)
        await close_websockets(session, client, *close)
    return session


def short_steps(label: str) -> list[tuple[str, str | bytes]]:
    """A few messages in both directions, labelled so captures made from them are told apart."""
    return [
        (C2S, f"hello from {label}"),
        (S2C, f"welcome to {label}"),
        (C2S, label.encode() + bytes(range(8))),
        (S2C, f"{label}: ünïcödé 🌍"),
        (C2S, f"{label} done"),
    ]


# -- raw peers ----------------------------------------------------------------------------------------------------


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR with the repeated 4-byte masking key (RFC 6455 5.3); one big-int XOR instead of a per-byte loop."""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    mask: bytes | None = None,
    fin: bool = True,
    rsv1: bool = False,
    length_bytes: int | None = None,
) -> bytes:
    """One frame (RFC 6455 5.2). length_bytes forces the 0-, 2- or 8-byte extended length form, minimal or not."""
    size = len(payload)
    if length_bytes is None:
        length_bytes = 0 if size < 126 else 2 if size < 65536 else 8
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        header = bytes([first, mask_bit | size])
    else:
        header = bytes([first, mask_bit | (126 if length_bytes == 2 else 127)]) + size.to_bytes(length_bytes, "big")
    if mask is None:
        return header + payload
    return header + mask + mask_payload(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of the next frame; enough of a parser for a raw client talking to a library."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size >= 126:
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    key = await reader.readexactly(4) if second & 0x80 else None
    payload = await reader.readexactly(size)
    return first & 0x0F, payload if key is None else mask_payload(payload, key)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def new_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(16)).decode()


def upgrade_request(host: str, path: str, key: str, extensions: str | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade_response(accept: str, status: str = "101 Switching Protocols", extensions: str | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept}"]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawClientPeer:
    """A hand-written client endpoint of a library server: masked frames out, any frame in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rng: random.Random) -> None:
        self.reader, self.writer, self.rng = reader, writer, rng

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        self.writer.write(encode_frame(opcode, payload, mask=self.rng.randbytes(4)))
        await self.writer.drain()

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            await self.send_frame(OP_TEXT, message.encode())
        else:
            await self.send_frame(OP_BINARY, message)

    async def recv(self) -> str | bytes:
        opcode, payload = await read_frame(self.reader)
        return payload.decode() if opcode == OP_TEXT else payload


class RawListener:
    """A listening socket whose accepted connections are handed out in order, for RawPair."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.accepted.put((reader, writer))

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._on_connect, host, port)


@dataclass
class RawPair:
    """A raw client socket and the raw server socket it reached, driven in lockstep from one coroutine.

    Every transfer waits until the far end has read exactly the bytes written, so the capture follows the
    script's order and a peer never reacts to anything: both sides' bytes are the script.
    """

    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    server_reader: asyncio.StreamReader
    server_writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, listener: RawListener, host: str, port: int, *, mss: int | None = None) -> RawPair:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Every write leaves as soon as it is made, so small writes become small segments.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mss is not None:
            # Before connect, so the SYN advertises it and both directions cut segments this small (88 payload bytes
            # once the timestamp option is paid for). Loopback GSO still hands tcpdump several of them glued
            # together, so packets in the capture are multiples of that size; only chunked writes split big frames.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        client_reader, client_writer = await asyncio.open_connection(sock=sock)
        server_reader, server_writer = await asyncio.wait_for(listener.accepted.get(), READY_TIMEOUT)
        return cls(client_reader, client_writer, server_reader, server_writer)

    @property
    def client(self) -> str:
        return endpoint(self.client_writer.get_extra_info("sockname"))

    @property
    def server(self) -> str:
        return endpoint(self.client_writer.get_extra_info("peername"))

    async def c2s(self, data: bytes, *, chunk: int | None = None) -> None:
        await self._transfer(self.client_writer, self.server_reader, data, chunk)

    async def s2c(self, data: bytes, *, chunk: int | None = None) -> None:
        await self._transfer(self.server_writer, self.client_reader, data, chunk)

    @staticmethod
    async def _transfer(
        writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes, chunk: int | None
    ) -> None:
        async def write() -> None:
            pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                if chunk is not None:
                    # Lets each piece leave on its own before the next write joins it in the socket buffer.
                    await asyncio.sleep(0.002)

        _, received = await asyncio.gather(write(), reader.readexactly(len(data)))
        if received != data:
            raise CaptureError("raw transfer corrupted")

    async def finish(self) -> None:
        """Close TCP: the server first, as RFC 6455 7.1.1 asks, then the client once it has seen the FIN."""
        self.server_writer.close()
        await asyncio.wait_for(self.client_reader.read(), READY_TIMEOUT)
        self.client_writer.close()
        await asyncio.wait_for(self.server_reader.read(), READY_TIMEOUT)
        await self.server_writer.wait_closed()
        await self.client_writer.wait_closed()


@dataclass(frozen=True)
class Step:
    """One scripted write: its bytes, and the truth record of the frame it carries, if it is to be logged."""

    direction: str
    wire: bytes
    entry: Entry | None = None
    chunk: int | None = None


async def run_raw_session(
    listener: RawListener,
    port: int,
    path: str,
    rng: random.Random,
    steps: Iterable[Step],
    *,
    status: str = "101 Switching Protocols",
    accept: str | None = None,
    mss: int | None = None,
    handshake_chunk: int | None = None,
    issues: Sequence[Issue] = (),
    extensions: str | None = None,
) -> Session:
    """A raw handshake (correct unless status/accept say otherwise), the scripted steps, then TCP close.

    `extensions` is offered by the client and accepted as is by the server.
    """
    pair = await RawPair.open(listener, LOCALHOST, port, mss=mss)
    host = endpoint((LOCALHOST, port))
    session = Session(pair.client, pair.server, host, path, status=int(status.split()[0]), issues=list(issues))
    session.extensions = extension_items(extensions)
    key = new_key(rng)
    await pair.c2s(upgrade_request(host, path, key, extensions), chunk=handshake_chunk)
    await pair.s2c(upgrade_response(accept or accept_key(key), status, extensions))
    for step in steps:
        if step.entry is not None:
            session.messages.append(step.entry)
        if step.direction == C2S:
            await pair.c2s(step.wire, chunk=step.chunk)
        else:
            await pair.s2c(step.wire, chunk=step.chunk)
    await pair.finish()
    return session


# -- the captures ---------------------------------------------------------------------------------------------------


async def websockets_basic() -> None:
    name, port = "websockets_basic", PORTS["websockets_basic"]
    rng = random.Random(6455)
    path = "/chat?room=1&user=alice"
    netloc = endpoint((LOCALHOST, port))
    accepted: Accepted[ServerConnection] = Accepted()
    json_text = json.dumps({"type": "chat", "room": 1, "body": "hi there", "tags": ["a", "b"], "n": None})
    long_text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz") for _ in range(70 * 1024 - 3)) + "end"
    async with (
        Capture(HERE / f"{name}.pcap", port),
        serve_plain(websockets_handler(accepted), LOCALHOST, port),
        connect_plain(f"ws://{netloc}{path}") as client,
    ):
        session = Session(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
        server = await accepted.get(session.client)
        await converse(session, client, server, [
            (C2S, "hello"),
            (S2C, "welcome, alice"),
            (C2S, "héllo wörld — 你好 🌍🚀"),
            (C2S, json_text),
            (S2C, bytes(range(256))),
            (C2S, b"\x00\x01\x02\xff"),
            (C2S, ""),
            (C2S, b""),
            (S2C, ""),
            (C2S, "\x1b[31mred\x1b[0m\r\nbell\x07"),
            (S2C, "\x1b]0;title\x07 tab\tand nul\x00 and del\x7f"),
            (C2S, long_text),
            (S2C, rng.randbytes(10_000)),
            (C2S, rng.randbytes(3_000_000)),
        ])  # fmt: skip
        await ping_websockets(session, client, b"ping-payload")
        await ping_websockets(session, server, b"server-ping")
        await converse(session, client, server, [(S2C, "bye soon")])
        await close_websockets(session, client, 1000, "bye")
    write_truth(
        name,
        f"{name}.pcap",
        "websockets client and server, no compression: text, unicode, JSON, binary, empty, 70 KB text, 3 MB binary,"
        " pings both ways, client close 1000 'bye'.",
        [session],
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


async def websockets_many() -> None:
    name, port = "websockets_many", PORTS["websockets_many"]
    accepted: Accepted[ServerConnection] = Accepted()
    chat_session = 7

    def select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        # Only one client offers subprotocols; the others must still be accepted without one.
        return Subprotocol("chat.v1") if "chat.v1" in offered else None

    async def one_client(index: int) -> Session:
        netloc = endpoint((LOCALHOST, port))
        path = f"/room/{index}"
        offered = [Subprotocol("chat.v2"), Subprotocol("chat.v1")] if index == chat_session else None
        async with connect_plain(f"ws://{netloc}{path}", subprotocols=offered) as client:
            session = Session(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
            session.subprotocol = client.subprotocol
            server = await accepted.get(session.client)
            steps: list[tuple[str, str | bytes]] = [
                (C2S if turn % 2 == 0 else S2C, f"session {index} message {turn}") for turn in range(10)
            ]
            await converse(session, client, server, steps)
            await close_websockets(session, client, 1000, f"session {index} done")
        return session

    async with (
        Capture(HERE / f"{name}.pcap", port),
        serve_plain(websockets_handler(accepted), LOCALHOST, port, select_subprotocol=select_subprotocol),
    ):
        sessions = await asyncio.gather(*(one_client(i) for i in range(20)))
    if sessions[chat_session].subprotocol != "chat.v1":
        raise CaptureError("subprotocol negotiation did not pick chat.v1")
    write_truth(
        name,
        f"{name}.pcap",
        "20 concurrent websockets sessions of 10 short messages each; one negotiates subprotocol chat.v1.",
        sessions,
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


class AiohttpPeer:
    """Either end of an aiohttp WebSocket as a Peer; pings, pongs and closes are answered inside receive()."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def recv(self) -> str | bytes:
        message = await self.ws.receive()
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise CaptureError(f"aiohttp peer received {message.type!r}")
        data: str | bytes = message.data
        return data


async def aiohttp_basic() -> None:
    name, port = "aiohttp_basic", PORTS["aiohttp_basic"]
    rng = random.Random(7692)
    netloc = endpoint((LOCALHOST, port))
    accepted: Accepted[tuple[web.WebSocketResponse, asyncio.Event]] = Accepted()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def ws_endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, autoping=True, heartbeat=None)
        await ws.prepare(request)
        done = asyncio.Event()
        assert request.transport is not None
        accepted.arrived(endpoint(request.transport.get_extra_info("peername")), (ws, done))
        await done.wait()
        return ws

    async def library_client() -> Session:
        path = "/ws?client=aiohttp"
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://{netloc}{path}", compress=0, autoping=True, heartbeat=None)
            session = Session(
                endpoint(ws.get_extra_info("sockname")), endpoint(ws.get_extra_info("peername")), netloc, path
            )
            server_ws, done = await accepted.get(session.client)
            client, server = AiohttpPeer(ws), AiohttpPeer(server_ws)
            await converse(session, client, server, [
                (C2S, "hello aiohttp"),
                (S2C, "hi from aiohttp"),
                (C2S, rng.randbytes(64)),
                (S2C, rng.randbytes(5000)),
            ])  # fmt: skip
            # aiohttp answers a ping inside the receive() that the next message completes.
            session.messages.append(opaque_entry(C2S, "ping", b"aio-ping"))
            session.messages.append(opaque_entry(S2C, "pong", b"aio-ping", auto=True))
            await ws.ping(b"aio-ping")
            await converse(session, client, server, [(C2S, "after the ping"), (S2C, "last words")])
            # aiohttp's autoclose replies 1000 with no reason, whatever code the peer sent.
            session.messages.append(close_entry(C2S, 4001, "custom"))
            session.messages.append(close_entry(S2C, 1000, "", auto=True))
            _, server_saw = await asyncio.gather(ws.close(code=4001, message=b"custom"), server_ws.receive())
            if server_saw.type != aiohttp.WSMsgType.CLOSE or server_saw.data != 4001:
                raise CaptureError(f"aiohttp server saw {server_saw!r}")
            done.set()
        return session

    async def keepalive_then_upgrade() -> Session:
        """GET /health and then the Upgrade on the same keep-alive connection, written by hand."""
        path = "/ws?client=raw"
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(f"GET /health HTTP/1.1\r\nHost: {netloc}\r\nConnection: keep-alive\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        if not head.startswith(b"HTTP/1.1 200") or length is None:
            raise CaptureError(f"/health answered {head!r}")
        await reader.readexactly(int(length.group(1)))
        key = new_key(rng)
        writer.write(upgrade_request(netloc, path, key))
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101") or accept_key(key).encode() not in head:
            raise CaptureError(f"upgrade answered {head!r}")
        session = Session(
            endpoint(writer.get_extra_info("sockname")), endpoint(writer.get_extra_info("peername")), netloc, path
        )
        server_ws, done = await accepted.get(session.client)
        client = RawClientPeer(reader, writer, rng)
        await converse(
            session, client, AiohttpPeer(server_ws), [(C2S, "raw hello"), (S2C, "raw hi"), (C2S, rng.randbytes(300))]
        )
        session.messages.append(close_entry(C2S, 1000, "raw done"))
        session.messages.append(close_entry(S2C, 1000, "", auto=True))
        _, server_saw, (opcode, payload) = await asyncio.gather(
            client.send_frame(OP_CLOSE, close_payload(1000, b"raw done")), server_ws.receive(), read_frame(reader)
        )
        if server_saw.type != aiohttp.WSMsgType.CLOSE or (opcode, payload) != (OP_CLOSE, close_payload(1000)):
            raise CaptureError(f"raw close answered {opcode:#x} {payload!r}")
        done.set()
        await asyncio.wait_for(reader.read(), READY_TIMEOUT)
        writer.close()
        await writer.wait_closed()
        return session

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ws", ws_endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        async with Capture(HERE / f"{name}.pcap", port):
            await web.TCPSite(runner, LOCALHOST, port).start()
            sessions = [await library_client(), await keepalive_then_upgrade()]
    finally:
        await runner.cleanup()
    write_truth(
        name,
        f"{name}.pcap",
        "aiohttp server; an aiohttp client (text, binary, ping, close 4001 'custom'), then a hand-written client"
        " sending GET /health and the Upgrade on one keep-alive connection.",
        sessions,
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


def ensure_node_ws() -> None:
    """Install the pinned `ws` into captures/node (git-ignored) unless it is already there."""
    if (NODE_DIR / "node_modules" / "ws").is_dir():
        return
    subprocess.run(
        ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
    )


async def node_ws() -> None:
    name, port = "node_ws", PORTS["node_ws"]
    ensure_node_ws()
    replies: list[Entry] = []

    async def answer(connection: ServerConnection) -> None:
        # One answer per data message: the node client sends its next message only after it.
        async for message in connection:
            kind = "chars" if isinstance(message, str) else "bytes"
            reply = f"ack {len(replies)}: {len(message)} {kind}"
            replies.append(data_entry(S2C, reply))
            await connection.send(reply)

    async with Capture(HERE / f"{name}.pcap", port), serve_plain(answer, LOCALHOST, port):
        node = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "client.js"), str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(node.communicate(), 60)
    if node.returncode != 0:
        raise CaptureError(f"node client failed: {err.decode().strip()}")
    records = [json.loads(line) for line in out.decode().splitlines()]
    opened = records[0]
    netloc = endpoint((LOCALHOST, port))
    session = Session(endpoint((opened["client_address"], opened["client_port"])), netloc, netloc, "/node?lib=ws")
    answered = iter(replies)
    for record in records[1:]:
        match record:
            case {"event": "send", "opcode": "text", "text": text}:
                extra = {"fragments": record["fragments"]} if "fragments" in record else {}
                session.messages += [data_entry(C2S, text, **extra), next(answered)]
            case {"event": "send", "opcode": "binary", "data": data}:
                session.messages += [data_entry(C2S, base64.b64decode(data)), next(answered)]
            case {"event": "send", "opcode": "ping", "data": data}:
                payload = base64.b64decode(data)
                session.messages += [opaque_entry(C2S, "ping", payload), opaque_entry(S2C, "pong", payload, auto=True)]
            case {"event": "send", "opcode": "close", "close_code": code, "close_reason": reason}:
                session.messages += [close_entry(C2S, code, reason), close_entry(S2C, code, reason, auto=True)]
            case {"event": "closed", "close_code": code, "close_reason": reason}:
                if (code, reason) != (1000, "node done"):
                    raise CaptureError(f"node client saw close {code} {reason!r}")
            case _:
                raise CaptureError(f"unexpected node record {record}")
    write_truth(
        name,
        f"{name}.pcap",
        "Node ws client (perMessageDeflate off) against a websockets server that answers every message:"
        " text, unicode, binary, a text sent as 3 fragments, 100 KB binary, ping, close.",
        [session],
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


async def ipv6_odd_port() -> None:
    name, port = "ipv6_odd_port", PORTS["ipv6_odd_port"]
    async with Capture(HERE / f"{name}.pcap", port):
        session = await websockets_session(port, "/v6", short_steps("ipv6"), host="::1", close=(1001, "going away"))
    write_truth(
        name,
        f"{name}.pcap",
        "A short websockets exchange over IPv6 loopback [::1] on port 31337; client closes with 1001.",
        [session],
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


async def sll2_any() -> None:
    name, port = "sll2_any", PORTS["sll2_any"]
    # -y: the cooked v2 header is asked for explicitly rather than left to the libpcap default.
    async with Capture(HERE / f"{name}.pcap", port, "-y", "LINUX_SLL2", interface="any"):
        session = await websockets_session(port, "/any", short_steps("sll2"))
    linktype, _ = read_packets(HERE / f"{name}.pcap")
    if linktype != LINKTYPE_LINUX_SLL2:
        raise CaptureError(f"{name}: link type {linktype}, expected LINUX_SLL2")
    write_truth(
        name,
        f"{name}.pcap",
        "A short websockets exchange captured on the 'any' pseudo-interface (link type LINUX_SLL2).",
        [session],
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


async def pcapng_nano() -> None:
    """Nanosecond pcap (kept as pcap_nano.pcap) and its pcapng conversion."""
    name, port = "pcapng_nano", PORTS["pcapng_nano"]
    nano_pcap = HERE / "pcap_nano.pcap"
    async with Capture(nano_pcap, port, "--time-stamp-precision=nano"):
        session = await websockets_session(port, "/nano", short_steps("nano"))
    pcapng = HERE / f"{name}.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(nano_pcap), str(pcapng)], check=True, timeout=60)
    for capture_name, capture_file, what in [
        ("pcap_nano", nano_pcap.name, "pcap with nanosecond timestamps"),
        (name, pcapng.name, "pcapng (nanosecond if_tsresol) converted by editcap from pcap_nano.pcap"),
    ]:
        write_truth(
            capture_name,
            capture_file,
            f"A short websockets exchange; {what}.",
            [session],
            clean=True,
            order_by=nano_pcap,
        )


async def websockets_gz() -> None:
    name, port = "websockets_gz", PORTS["websockets_gz"]
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port):
        session = await websockets_session(port, "/gz?x=1", short_steps("gzip"))
    write_truth(
        name,
        f"{name}.pcap.gz",
        "A short websockets exchange, gzip-compressed pcap.",
        [session],
        clean=True,
        order_by=pcap,
    )
    # mtime=0 and no file name in the header, so the same pcap always gzips to the same bytes.
    with (
        pcap.open("rb") as source,
        (HERE / f"{name}.pcap.gz").open("wb") as target,
        gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0) as compressed,
    ):
        shutil.copyfileobj(source, compressed)
    pcap.unlink()


async def raw_edge() -> None:
    name, port = "raw_edge", PORTS["raw_edge"]
    rng = random.Random(1337)

    def masked(opcode: int, payload: bytes, **options: object) -> bytes:
        return encode_frame(opcode, payload, mask=rng.randbytes(4), **options)  # type: ignore[arg-type]

    split_text = "naïve café 🌍 split"
    split_bytes = split_text.encode()
    inside_emoji = split_bytes.index("🌍".encode()) + 2
    s2c_text = "déjà vu, server side"
    s2c_bytes = s2c_text.encode()
    inside_e = s2c_bytes.index("é".encode()) + 1
    big_ping = bytes(rng.randrange(256) for _ in range(125))
    tiny = "this frame went out a few bytes per write"
    lengths = {size: rng.randbytes(size) for size in (0, 125, 126, 65535, 65536)}
    server_binary = [rng.randbytes(126), rng.randbytes(65536)]
    server_fragments = [rng.randbytes(100), rng.randbytes(50)]

    steps = [
        # A 3-fragment text with a ping (and its pong) between the first two fragments (RFC 6455 5.4).
        Step(C2S, masked(OP_TEXT, b"fragment one, ", fin=False)),
        Step(C2S, masked(OP_PING, b"between fragments"), opaque_entry(C2S, "ping", b"between fragments")),
        Step(S2C, encode_frame(OP_PONG, b"between fragments"), opaque_entry(S2C, "pong", b"between fragments")),
        Step(C2S, masked(OP_CONT, b"fragment two, ", fin=False)),
        Step(C2S, masked(OP_CONT, b"fragment three"),
             data_entry(C2S, "fragment one, fragment two, fragment three", fragments=3)),
        # UTF-8 is only checked over the whole message: a fragment may end inside a character (RFC 6455 5.6).
        Step(C2S, masked(OP_TEXT, split_bytes[:inside_emoji], fin=False)),
        Step(C2S, masked(OP_CONT, split_bytes[inside_emoji:]), data_entry(C2S, split_text, fragments=2)),
        Step(S2C, encode_frame(OP_TEXT, s2c_bytes[:inside_e], fin=False)),
        Step(S2C, encode_frame(OP_CONT, s2c_bytes[inside_e:]), data_entry(S2C, s2c_text, fragments=2)),
        # Every payload length form (RFC 6455 5.2): 7-bit up to 125, 16-bit from 126 to 65535, 64-bit beyond.
        # The largest ones go out 2000 bytes per write, so a reassembler sees them in many segments.
        *(
            Step(C2S, masked(OP_BINARY, payload), data_entry(C2S, payload), chunk=2000 if size > 60_000 else None)
            for size, payload in lengths.items()
        ),
        *(Step(S2C, encode_frame(OP_BINARY, payload), data_entry(S2C, payload)) for payload in server_binary),
        Step(S2C, encode_frame(OP_BINARY, server_fragments[0], fin=False)),
        Step(S2C, encode_frame(OP_CONT, server_fragments[1]), data_entry(S2C, b"".join(server_fragments), fragments=2)),
        # An all-zero masking key is legal and leaves the payload readable on the wire.
        Step(C2S, encode_frame(OP_TEXT, b"zero masking key", mask=bytes(4)), data_entry(C2S, "zero masking key")),
        # The largest control payload, and an empty one.
        Step(C2S, masked(OP_PING, big_ping), opaque_entry(C2S, "ping", big_ping)),
        Step(S2C, encode_frame(OP_PONG, big_ping), opaque_entry(S2C, "pong", big_ping)),
        Step(S2C, encode_frame(OP_PING, b""), opaque_entry(S2C, "ping", b"")),
        Step(C2S, masked(OP_PONG, b""), opaque_entry(C2S, "pong", b"")),
        # A frame cut across many 3-byte segments, header included.
        Step(C2S, masked(OP_TEXT, tiny.encode()), data_entry(C2S, tiny), chunk=3),
        Step(C2S, masked(OP_CLOSE, close_payload(1000, b"edge done")), close_entry(C2S, 1000, "edge done")),
        Step(S2C, encode_frame(OP_CLOSE, close_payload(1000, b"edge done")), close_entry(S2C, 1000, "edge done")),
    ]  # fmt: skip
    listener = RawListener()
    async with Capture(HERE / f"{name}.pcap", port), await listener.start(LOCALHOST, port):
        session = await run_raw_session(listener, port, "/edge?x=1", rng, steps, mss=100, handshake_chunk=7)
    write_truth(
        name,
        f"{name}.pcap",
        "Hand-written peers, valid but unusual: fragments with an interleaved ping, a fragment ending inside a UTF-8"
        " character, every length form, zero masking key, 125-byte ping, a frame written 3 bytes at a time, and"
        " a client MSS of 100 so everything arrives in small segments.",
        [session],
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


async def rejected() -> None:
    name, port = "rejected", PORTS["rejected"]
    refusals = {
        "/forbidden": (HTTPStatus.FORBIDDEN, "Forbidden\n"),
        "/legacy?v=8": (HTTPStatus.UPGRADE_REQUIRED, "This service requires another protocol version\n"),
        "/bad-request": (HTTPStatus.BAD_REQUEST, "Bad request\n"),
    }

    def refuse(connection: ServerConnection, request: Request) -> Response:
        status, body = refusals[request.path]
        response = connection.respond(status, body)
        if status == HTTPStatus.UPGRADE_REQUIRED:
            response.headers["Sec-WebSocket-Version"] = "13"
        return response

    async def never_called(connection: ServerConnection) -> None:
        raise CaptureError("a rejected upgrade reached the handler")

    sessions = []
    netloc = endpoint((LOCALHOST, port))
    async with Capture(HERE / f"{name}.pcap", port), serve_plain(never_called, LOCALHOST, port, process_request=refuse):
        for path, (status, _) in refusals.items():
            # A socket of our own, because a refused connect() returns no connection to ask for the port.
            sock = socket.create_connection((LOCALHOST, port))
            client = endpoint(sock.getsockname())
            try:
                async with connect_plain(f"ws://{netloc}{path}", sock=sock):
                    raise CaptureError(f"{path} was accepted")
            except InvalidStatus as refusal:
                if refusal.response.status_code != status:
                    raise CaptureError(f"{path}: status {refusal.response.status_code}") from refusal
            sessions.append(Session(client, netloc, netloc, path, status=int(status)))
    write_truth(
        name,
        f"{name}.pcap",
        "Valid upgrade requests refused by a websockets server with 403, 426 and 400; no frames follow.",
        sessions,
        clean=True,
        order_by=HERE / f"{name}.pcap",
    )


def violation_scripts(rng: random.Random) -> list[tuple[str, list[Issue], list[Step]]]:
    """(path, expected issues, steps after the handshake) for each session of the violations capture.

    Entries marked "violation": true are the offending frames, logged as sent; how a decoder presents them is
    not pinned down by the truth file.
    """

    def masked(opcode: int, payload: bytes, **options: object) -> bytes:
        return encode_frame(opcode, payload, mask=rng.randbytes(4), **options)  # type: ignore[arg-type]

    def text(direction: str, message: str) -> Step:
        if direction == C2S:
            return Step(C2S, masked(OP_TEXT, message.encode()), data_entry(C2S, message))
        return Step(S2C, encode_frame(OP_TEXT, message.encode()), data_entry(S2C, message))

    def client_close(code: int = 1000) -> Step:
        return Step(C2S, masked(OP_CLOSE, close_payload(code)), close_entry(C2S, code))

    def server_close(code: int = 1000) -> Step:
        return Step(S2C, encode_frame(OP_CLOSE, close_payload(code)), close_entry(S2C, code))

    def closing() -> list[Step]:
        return [client_close(), server_close()]

    top_bit_header = bytes([0x82, 0x80 | 127]) + (0x8000_0000_0000_0005).to_bytes(8, "big") + rng.randbytes(4)

    return [
        ("/unmasked", [Issue.CLIENT_UNMASKED], [
            Step(C2S, encode_frame(OP_TEXT, b"not masked"), data_entry(C2S, "not masked", violation=True)),
            *closing(),
        ]),
        ("/server-masked", [Issue.SERVER_MASKED], [
            text(C2S, "hello server"),
            Step(S2C, masked(OP_TEXT, b"masked by the server"),
                 data_entry(S2C, "masked by the server", violation=True)),
            *closing(),
        ]),
        ("/rsv1", [Issue.RSV_WITHOUT_EXTENSION], [
            Step(C2S, masked(OP_TEXT, b"rsv1 set", rsv1=True), data_entry(C2S, "rsv1 set", violation=True)),
            *closing(),
        ]),
        ("/reserved-opcode", [Issue.RESERVED_OPCODE], [
            Step(C2S, masked(0x3, b"opcode three"), opaque_entry(C2S, "0x3", b"opcode three", violation=True)),
            *closing(),
        ]),
        ("/long-ping", [Issue.CONTROL_TOO_LONG], [
            Step(C2S, masked(OP_PING, b"p" * 126), opaque_entry(C2S, "ping", b"p" * 126, violation=True)),
            *closing(),
        ]),
        ("/fragmented-ping", [Issue.CONTROL_FRAGMENTED], [
            Step(C2S, masked(OP_PING, b"unfinished ping", fin=False),
                 opaque_entry(C2S, "ping", b"unfinished ping", violation=True)),
            *closing(),
        ]),
        ("/orphan-continuation", [Issue.CONTINUATION_WITHOUT_MESSAGE], [
            Step(C2S, masked(OP_CONT, b"orphan continuation"),
                 opaque_entry(C2S, "continuation", b"orphan continuation", violation=True)),
            *closing(),
        ]),
        ("/interrupted", [Issue.MESSAGE_INTERRUPTED], [
            Step(C2S, masked(OP_TEXT, b"first part", fin=False),
                 data_entry(C2S, "first part", violation=True, fin=False)),
            Step(C2S, masked(OP_TEXT, b"second message"), data_entry(C2S, "second message", violation=True)),
            *closing(),
        ]),
        ("/invalid-utf8", [Issue.INVALID_UTF8], [
            Step(C2S, masked(OP_TEXT, b"bad \xff\xfe utf-8"),
                 opaque_entry(C2S, "text", b"bad \xff\xfe utf-8", violation=True)),
            *closing(),
        ]),
        ("/close-reason-utf8", [Issue.CLOSE_REASON_INVALID_UTF8], [
            Step(C2S, masked(OP_CLOSE, close_payload(1000, b"\xc3\x28")),
                 opaque_entry(C2S, "close", close_payload(1000, b"\xc3\x28"), close_code=1000, violation=True)),
            server_close(1002),
        ]),
        ("/close-1005", [Issue.CLOSE_CODE_INVALID], [
            Step(C2S, masked(OP_CLOSE, close_payload(1005)), close_entry(C2S, 1005, violation=True)),
            server_close(1002),
        ]),
        ("/close-999", [Issue.CLOSE_CODE_INVALID], [
            Step(C2S, masked(OP_CLOSE, close_payload(999)), close_entry(C2S, 999, violation=True)),
            server_close(1002),
        ]),
        ("/close-one-byte", [Issue.CLOSE_PAYLOAD_ONE_BYTE], [
            Step(C2S, masked(OP_CLOSE, b"\x03"), opaque_entry(C2S, "close", b"\x03", close_code=None, violation=True)),
            server_close(1002),
        ]),
        ("/non-minimal-length", [Issue.NON_MINIMAL_LENGTH], [
            Step(C2S, masked(OP_TEXT, b"short", length_bytes=2), data_entry(C2S, "short", violation=True)),
            *closing(),
        ]),
        # Nothing after this header can be framed, so the client just ends the connection.
        ("/length-top-bit", [Issue.LENGTH_TOP_BIT], [
            Step(C2S, top_bit_header + b"junk!", opaque_entry(C2S, "binary", b"junk!", violation=True)),
        ]),
        ("/after-close", [Issue.DATA_AFTER_CLOSE], [
            client_close(),
            Step(C2S, masked(OP_TEXT, b"after close"), data_entry(C2S, "after close", violation=True)),
            server_close(),
        ]),
        ("/bad-accept", [Issue.ACCEPT_MISMATCH], [text(C2S, "hello"), text(S2C, "hi"), *closing()]),
        ("/no-101", [Issue.NO_101], [text(C2S, "hello"), text(S2C, "hi"), *closing()]),
    ]  # fmt: skip


async def violations() -> None:
    name, port = "violations", PORTS["violations"]
    rng = random.Random(1002)
    listener = RawListener()
    sessions = []
    async with Capture(HERE / f"{name}.pcap", port), await listener.start(LOCALHOST, port):
        for path, issues, steps in violation_scripts(rng):
            status, accept = "101 Switching Protocols", None
            if path == "/bad-accept":
                accept = accept_key(new_key(rng))
            elif path == "/no-101":
                # Otherwise a perfect upgrade response: only the status is wrong.
                status = "200 OK"
            sessions.append(
                await run_raw_session(listener, port, path, rng, steps, status=status, accept=accept, issues=issues)
            )
    write_truth(
        name,
        f"{name}.pcap",
        "Hand-written peers, one protocol violation per session (see each session's path and issues).",
        sessions,
        clean=False,
        order_by=HERE / f"{name}.pcap",
    )


def frame_spans(stream: bytes, start: int) -> list[tuple[int, int]]:
    """[start, end) stream offsets of each frame in `stream` from `start` on."""
    spans = []
    offset = start
    while offset < len(stream):
        second = stream[offset + 1]
        size, header = second & 0x7F, 2
        if size >= 126:
            extended = 2 if size == 126 else 8
            size = int.from_bytes(stream[offset + 2 : offset + 2 + extended], "big")
            header += extended
        header += 4 if second & 0x80 else 0
        spans.append((offset, offset + header + size))
        offset += header + size
    return spans


async def gappy() -> None:
    """One real exchange, written out twice: with a hole, duplicates and reordering; and cut after the handshake."""
    name, port = "gappy", PORTS["gappy"]
    rng = random.Random(793)
    original = HERE / "gappy.original.pcap"
    small = [(C2S, f"gappy message {i:02d} " + "x" * 200) for i in range(30)]
    steps: list[tuple[str, str | bytes]] = []
    for i, step in enumerate(small):
        steps.append(step)
        steps.append((S2C, f"ack {i:02d}"))
        if i in (10, 20):
            steps.append((C2S, rng.randbytes(200_000)))
    async with Capture(original, port):
        session = await websockets_session(port, "/gappy", steps, close=(1000, "gappy done"))
    linktype, packets = read_packets(original)
    server = session.server

    # Stream offsets of the client's bytes (RFC 793: the SYN takes one sequence number).
    isn = next(p.seq for p in packets if p.src == session.client and p.flags & dpkt.tcp.TH_SYN)
    c2s_data = [
        (i, (p.seq - isn - 1) % 2**32, p) for i, p in enumerate(packets) if p.src == session.client and p.payload
    ]
    stream = tcp_stream(packets, session.client, server)
    spans = frame_spans(stream, stream.index(b"\r\n\r\n") + 4)
    c2s_messages = [i for i, m in enumerate(session.messages) if m["dir"] == C2S]
    if len(spans) != len(c2s_messages):
        raise CaptureError(f"{len(spans)} client frames for {len(c2s_messages)} logged client messages")
    big = [(index, span) for index, span in zip(c2s_messages, spans, strict=True) if span[1] - span[0] > 100_000]
    # A loaded machine sometimes retransmits a segment even on loopback: removing or moving one of two copies
    # would not make the damage described, so only segments sent once are picked.
    copies = Counter(offset for _, offset, _ in c2s_data)

    def segments_within(span: tuple[int, int]) -> list[int]:
        return [i for i, offset, p in c2s_data if span[0] <= offset < span[1] and copies[offset] == 1]

    hole_segments, swapped_segments = segments_within(big[0][1]), segments_within(big[1][1])
    if len(hole_segments) < 3 or len(swapped_segments) < 3:
        raise CaptureError("the large messages did not span enough segments")
    dropped = hole_segments[1]
    hole = next((offset, offset + len(p.payload)) for i, offset, p in c2s_data if i == dropped)
    lost = [index for index, span in zip(c2s_messages, spans, strict=True) if span[0] < hole[1] and hole[0] < span[1]]
    # The README promises a hole inside one payload: past that frame's header (2 + 8-byte length + 4-byte mask).
    if lost != [big[0][0]] or hole[0] < big[0][1][0] + 14:
        raise CaptureError(f"hole {hole} is not inside the payload of message {big[0][0]}")
    first_swapped, second_swapped = swapped_segments[1], swapped_segments[2]
    first_s2c_data = next(i for i, p in enumerate(packets) if p.src == server and p.payload and i > dropped)
    duplicated = {c2s_data[len(c2s_data) // 4][0], first_s2c_data, swapped_segments[0]}

    order = list(range(len(packets)))
    order[first_swapped], order[second_swapped] = second_swapped, first_swapped
    rewritten: list[tuple[float, bytes]] = []
    for position, index in enumerate(order):
        if index == dropped:
            continue
        # Timestamps stay in file order, as a capture of segments arriving out of order would have them.
        ts = packets[position].ts
        rewritten.append((ts, packets[index].buf))
        if index in duplicated:
            rewritten.append((ts, packets[index].buf))
    write_packets(HERE / "gappy.pcap", linktype, rewritten)
    session.issues = [Issue.TCP_GAP]
    write_truth(
        name,
        "gappy.pcap",
        "A real websockets exchange with one client segment removed (a capture hole inside a 200 KB message),"
        " three segments duplicated and two segments of another 200 KB message swapped.",
        [session],
        clean=False,
        order_by=HERE / "gappy.pcap",
        lost_messages=lost,
        hole={"dir": C2S, "stream_offsets": list(hole)},
    )

    # The first packet carrying frame bytes in either direction: past the request or past the response.
    response = next(p.payload for p in packets if p.src == server and p.payload)
    request_end, response_end = stream.index(b"\r\n\r\n") + 4, len(response)
    server_isn = next(p.seq for p in packets if p.src == server and p.flags & dpkt.tcp.TH_SYN)
    first_frame = next(
        i
        for i, p in enumerate(packets)
        if p.payload
        and (
            (p.src == session.client and (p.seq - isn - 1) % 2**32 >= request_end)
            or (p.src == server and (p.seq - server_isn - 1) % 2**32 >= response_end)
        )
    )
    write_packets(HERE / "midstream.pcap", linktype, ((p.ts, p.buf) for p in packets[first_frame:]))
    session.issues = [Issue.MID_STREAM]
    # Not visible in this capture: the handshake is cut off.
    session.host = session.path = session.status = None
    write_truth(
        "midstream",
        "midstream.pcap",
        "The exchange of gappy.pcap without holes, cut to start at the first WebSocket frame (no handshake).",
        [session],
        clean=False,
        order_by=None,
    )
    original.unlink()


# -- compression (RFC 7692) --------------------------------------------------------------------------------------

# RFC 7692 7.2.1: a sender strips these bytes from the end of each compressed message; a receiver puts them back.
DEFLATE_TAIL = b"\x00\x00\xff\xff"
# Messages of deflate_websockets kept in deflate_midstream: it starts at the third JSON update from the client.
MIDSTREAM_CUT = 6
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
)  # fmt: skip
# The page deflate_chromium loads. STEPS: what the script sends, one message per answer from the server.
CHROMIUM_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsinspect capture</title>
<script>
const steps = STEPS;
const ws = new WebSocket(`ws://${location.host}/ws?browser=chromium`);
ws.binaryType = "arraybuffer";
let next = 0;
function sendNext() {
  if (next === steps.length) {
    ws.close(1000, "browser done");
    return;
  }
  const step = steps[next++];
  if ("text" in step) ws.send(step.text);
  else ws.send(Uint8Array.from(atob(step.data), (c) => c.charCodeAt(0)));
}
ws.onopen = sendNext;
ws.onmessage = sendNext;
</script>
"""

DATA_OPCODES = ("text", "binary")
# A message for websockets_deflate_session(): a list of strings goes out as one fragmented text message.
Sendable = str | bytes | list[str]


def deflate_message(compressor: zlib._Compress, data: bytes) -> bytes:
    """Compress one message (for deflate-frame, one frame) as RFC 7692 7.2.1 says: sync flush, tail removed."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if not out.endswith(DEFLATE_TAIL):
        raise CaptureError("a sync flush did not end with 00 00 ff ff")
    return out[:-4]


def chat_update(rng: random.Random, seq: int, sender: str) -> str:
    """A JSON message as a chat app sends it: most of it repeats the previous one, so context takeover pays."""
    items = [{"id": k, "name": f"item-{k}", "price": rng.randrange(100, 1000)} for k in range(5)]
    return json.dumps(
        {"type": "update", "seq": seq, "from": sender, "room": "lobby", "status": "online", "items": items}
    )


def log_text(rng: random.Random, size: int) -> str:
    """About `size` characters of access-log lines: compressible, yet not trivially."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = f"12:{len(lines) // 60 % 60:02d}:{len(lines) % 60:02d} GET /api/items/{rng.randrange(50)} 200 "
        line += f"{rng.randrange(1, 999)}ms user={rng.choice(['alice', 'bob', 'carol'])}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)


@dataclass(frozen=True, slots=True)
class WireFrame:
    """A frame as found in a capture: its stream offset, header bits and unmasked (still compressed) payload."""

    start: int
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


def tcp_stream(packets: Sequence[Packet], src: str, dst: str) -> bytes:
    """Every byte `src` sent to `dst`, in sequence order; bytes sent twice count once."""
    isn = next(p.seq for p in packets if p.src == src and p.dst == dst and p.flags & dpkt.tcp.TH_SYN)
    segments = sorted(((p.seq - isn - 1) % 2**32, p.payload) for p in packets if p.src == src and p.dst == dst)
    stream = bytearray()
    for offset, payload in segments:
        stream += payload[len(stream) - offset :]
    return bytes(stream)


def wire_frames(stream: bytes, start: int) -> list[WireFrame]:
    """Every frame of `stream` from `start` on, payloads unmasked (RFC 6455 5.2, 5.3)."""
    frames = []
    for begin, end in frame_spans(stream, start):
        first, second = stream[begin], stream[begin + 1]
        size = second & 0x7F
        key = begin + 2 + (2 if size == 126 else 8 if size == 127 else 0)
        masked = second & 0x80
        payload = mask_payload(stream[key + 4 : end], stream[key : key + 4]) if masked else stream[key:end]
        frames.append(WireFrame(begin, bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload))
    return frames


def entry_digest(entry: Entry) -> str:
    """SHA-256 of a truth record's payload, however it is logged."""
    if "sha256" in entry:
        return str(entry["sha256"])
    payload = str(entry["text"]).encode() if "text" in entry else base64.b64decode(str(entry["data"]))
    return hashlib.sha256(payload).hexdigest()


def check_deflate(
    pcap: Path, session: Session, *, no_context: tuple[bool, bool] = (False, False), per_frame: bool = False
) -> dict[int, list[WireFrame]]:
    """Hold a compressed session's capture against its truth, without wsinspect: each logged data message must be
    on the wire with its fragment count and with RSV1 as its "compressed" flag says (on its first frame only, or on
    every frame for the per-frame extension), and inflate to the logged payload (RFC 7692 7.2.2; context taken over
    unless `no_context` says otherwise for c2s, s2c).

    Returns each data message's frames by its index in session.messages.
    """
    packets = read_packets(pcap)[1]
    found: dict[int, list[WireFrame]] = {}
    for direction, src, dst, fresh in (
        (C2S, session.client, session.server, no_context[0]),
        (S2C, session.server, session.client, no_context[1]),
    ):
        stream = tcp_stream(packets, src, dst)
        messages: list[list[WireFrame]] = []
        for frame in wire_frames(stream, stream.index(b"\r\n\r\n") + 4):
            if frame.opcode in (OP_TEXT, OP_BINARY):
                messages.append([frame])
            elif frame.opcode == OP_CONT:
                messages[-1].append(frame)
        logged = [i for i, m in enumerate(session.messages) if m["dir"] == direction and m["opcode"] in DATA_OPCODES]
        if len(messages) != len(logged):
            raise CaptureError(f"{pcap.name} {direction}: {len(messages)} data messages sent, {len(logged)} logged")
        inflater = zlib.decompressobj(-15)
        for index, frames in zip(logged, messages, strict=True):
            entry = session.messages[index]
            compressed = bool(entry.get("compressed"))
            rsv1 = [compressed] + [compressed and per_frame] * (len(frames) - 1)
            if [f.rsv1 for f in frames] != rsv1 or len(frames) != entry.get("fragments", 1):
                raise CaptureError(f"{pcap.name} message {index}: RSV1 {[f.rsv1 for f in frames]}, logged {entry}")
            if per_frame:
                parts = [inflater.decompress(f.payload + DEFLATE_TAIL) if f.rsv1 else f.payload for f in frames]
            elif compressed:
                if fresh:
                    inflater = zlib.decompressobj(-15)
                parts = [inflater.decompress(b"".join(f.payload for f in frames) + DEFLATE_TAIL)]
            else:
                parts = [f.payload for f in frames]
            if hashlib.sha256(b"".join(parts)).hexdigest() != entry_digest(entry):
                raise CaptureError(f"{pcap.name} message {index} does not inflate to what was logged")
            found[index] = frames
    return found


def undecodable_after(session: Session, frames: dict[int, list[WireFrame]], cut: int) -> list[int]:
    """Indices, counted from `cut`, of the compressed messages that cannot be inflated without what came before.

    Found by trying, as a receiver joining at `cut` must: a fresh raw inflater per direction, started again after
    each failure. zlib refuses a back-reference past the start of its window ("invalid distance too far back")
    rather than guess, so every message it does inflate must come out exact, which is checked.
    """
    undecodable = []
    inflaters = {C2S: zlib.decompressobj(-15), S2C: zlib.decompressobj(-15)}
    for index in range(cut, len(session.messages)):
        entry = session.messages[index]
        if not entry.get("compressed"):
            continue
        direction = str(entry["dir"])
        try:
            payload = inflaters[direction].decompress(b"".join(f.payload for f in frames[index]) + DEFLATE_TAIL)
        except zlib.error:
            undecodable.append(index - cut)
            inflaters[direction] = zlib.decompressobj(-15)
            continue
        if hashlib.sha256(payload).hexdigest() != entry_digest(entry):
            raise CaptureError(f"message {index} inflated after the cut, but not to what was logged")
    return undecodable


def serve_deflate(
    handler: Callable[[ServerConnection], Awaitable[None]], host: str, port: int, **options: Any
) -> Server:
    """serve_plain() with permessage-deflate: websockets' default settings, or `extensions=[factory]`."""
    return serve(handler, host, port, max_size=None, ping_interval=None, **options)


def connect_deflate(uri: str, **options: Any) -> connect:
    return connect(uri, max_size=None, ping_interval=None, **options)


async def send_fragments(
    session: Session,
    sender: ClientConnection | ServerConnection,
    receiver: ClientConnection | ServerConnection,
    direction: str,
    parts: list[str],
) -> None:
    """One compressed text message in fragments: websockets sends each part of an iterable in a frame of its own,
    and then an empty final frame."""
    message = "".join(parts)
    session.messages.append(data_entry(direction, message, compressed=True, fragments=len(parts) + 1))
    _, received = await asyncio.gather(sender.send(parts), receiver.recv())
    if received != message:
        raise CaptureError(f"{direction}: fragments arrived as {received!r:.60}")


async def websockets_deflate_session(
    port: int,
    path: str,
    steps: Sequence[tuple[str, Sendable]],
    *,
    server_extension: ServerPerMessageDeflateFactory | None = None,
    client_extension: ClientPerMessageDeflateFactory | None = None,
    close: tuple[int, str],
) -> Session:
    """A websockets session with permessage-deflate (websockets' defaults unless factories are given): the steps, a
    ping each way and a client close. A message given as a list goes out fragmented (send_fragments()).

    Once the extension is negotiated, websockets compresses every data message and no control frame.
    """
    accepted: Accepted[ServerConnection] = Accepted()
    netloc = endpoint((LOCALHOST, port))
    server_options = {} if server_extension is None else {"extensions": [server_extension]}
    client_options = {} if client_extension is None else {"extensions": [client_extension]}
    async with (
        serve_deflate(websockets_handler(accepted), LOCALHOST, port, **server_options),
        connect_deflate(f"ws://{netloc}{path}", **client_options) as client,
    ):
        session = Session(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
        assert client.response is not None
        session.extensions = extension_items(client.response.headers.get("Sec-WebSocket-Extensions"))
        if not session.extensions:
            raise CaptureError(f"{path}: permessage-deflate was not negotiated")
        server = await accepted.get(session.client)
        for direction, message in steps:
            if isinstance(message, list):
                sender, receiver = (client, server) if direction == C2S else (server, client)
                await send_fragments(session, sender, receiver, direction, message)
            else:
                await converse(session, client, server, [(direction, message)], compressed=True)
        await ping_websockets(session, client, b"deflate ping")
        await ping_websockets(session, server, b"deflate ping back")
        await close_websockets(session, client, *close)
    return session


async def deflate_websockets() -> None:
    """websockets' default compression; then the same capture cut after its first messages (deflate_midstream)."""
    name, port = "deflate_websockets", PORTS["deflate_websockets"]
    rng = random.Random(7692)
    steps: list[tuple[str, Sendable]] = [(C2S, "hello, compress me"), (S2C, "hello, compressed client")]
    for seq in range(10):
        steps += [(C2S, chat_update(rng, seq, "alice")), (S2C, chat_update(rng, seq, "server"))]
    steps += [
        (C2S, log_text(rng, 200_000)),
        (S2C, bytes(range(256)) * 40),
        # Incompressible and longer than the 4 KiB window: a receiver that lost the context can inflate what
        # follows again.
        (C2S, rng.randbytes(5000)),
        (S2C, rng.randbytes(5000)),
        *((C2S if seq % 2 else S2C, chat_update(rng, seq, "after the noise")) for seq in range(4)),
        (C2S, ""),
        (S2C, ""),
        (C2S, b""),
        (S2C, "a"),
        (C2S, "ok"),
        (C2S, "héllo wörld — 你好 🌍"),
        (C2S, ["fragment one, ", "fragment two, ", "fragment one, two, three"]),
        (S2C, ["server fragment A; ", "server fragment A; again"]),
        (S2C, chat_update(rng, 99, "server")),
    ]
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port):
        session = await websockets_deflate_session(port, "/deflate?lib=websockets", steps, close=(1000, "deflate done"))
    frames = check_deflate(pcap, session)
    write_truth(
        name,
        f"{name}.pcap",
        "websockets client and server with websockets' default permessage-deflate (window bits 12, context"
        " takeover): repetitive JSON both ways, a 200 KB log text, compressible and random binary, empty and tiny"
        " messages, fragmented compressed messages both ways, pings (never compressed), close 1000.",
        [session],
        clean=True,
        order_by=pcap,
    )

    # The cut: the first packet of the first message kept, which the lockstep sends in its own write.
    linktype, packets = read_packets(pcap)
    first = frames[MIDSTREAM_CUT][0]
    sender = session.client if session.messages[MIDSTREAM_CUT]["dir"] == C2S else session.server
    isn = next(p.seq for p in packets if p.src == sender and p.flags & dpkt.tcp.TH_SYN)
    cut = next(
        i for i, p in enumerate(packets) if p.src == sender and p.payload and (p.seq - isn - 1) % 2**32 >= first.start
    )
    if (packets[cut].seq - isn - 1) % 2**32 != first.start:
        raise CaptureError(f"message {MIDSTREAM_CUT} does not start a packet")
    write_packets(HERE / "deflate_midstream.pcap", linktype, ((p.ts, p.buf) for p in packets[cut:]))
    undecodable = undecodable_after(session, frames, MIDSTREAM_CUT)
    midstream = Session(
        session.client,
        session.server,
        None,
        None,
        status=None,
        messages=session.messages[MIDSTREAM_CUT:],
        issues=[Issue.MID_STREAM, Issue.INFLATE_CONTEXT_LOST] if undecodable else [Issue.MID_STREAM],
    )
    write_truth(
        "deflate_midstream",
        "deflate_midstream.pcap",
        f"deflate_websockets.pcap cut to start at its message {MIDSTREAM_CUT}: no handshake, and the compression"
        " context of the messages before the cut is lost. 'undecodable' lists the messages that refer to it.",
        [midstream],
        clean=False,
        order_by=None,
        undecodable=undecodable,
    )


async def deflate_no_context() -> None:
    name, port = "deflate_no_context", PORTS["deflate_no_context"]
    rng = random.Random(7693)
    steps: list[tuple[str, Sendable]] = [(C2S, "hello, no context")]
    for seq in range(6):
        steps += [(C2S, chat_update(rng, seq, "bob")), (S2C, chat_update(rng, seq, "server"))]
    steps += [
        (C2S, log_text(rng, 20_000)),
        (S2C, rng.randbytes(2000)),
        (C2S, ""),
        (S2C, "x"),
        (C2S, ["no context, ", "fragmented"]),
    ]
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port):
        session = await websockets_deflate_session(
            port,
            "/deflate?takeover=no",
            steps,
            server_extension=ServerPerMessageDeflateFactory(
                server_no_context_takeover=True, client_no_context_takeover=True, compress_settings={"memLevel": 5}
            ),
            client_extension=ClientPerMessageDeflateFactory(
                server_no_context_takeover=True, client_no_context_takeover=True, compress_settings={"memLevel": 5}
            ),
            close=(1000, "no context done"),
        )
    check_deflate(pcap, session, no_context=(True, True))
    write_truth(
        name,
        f"{name}.pcap",
        "websockets client and server with permessage-deflate, server_no_context_takeover and"
        " client_no_context_takeover: every message compressed on its own. Repetitive JSON both ways, a 20 KB log"
        " text, random binary, empty and tiny messages, a fragmented message, pings, close.",
        [session],
        clean=True,
        order_by=pcap,
    )


async def deflate_small_window() -> None:
    name, port = "deflate_small_window", PORTS["deflate_small_window"]
    rng = random.Random(7694)
    # Repeats 700 bytes apart: out of reach of the client's 512-byte window, within the server's 1024 bytes.
    block = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(700))
    steps: list[tuple[str, Sendable]] = [
        (C2S, block * 12),
        (S2C, block * 12),
        (C2S, bytes(rng.randbytes(300)) * 20),
        (S2C, bytes(rng.randbytes(900)) * 8),
    ]
    for seq in range(4):
        steps += [(C2S, chat_update(rng, seq, "carol")), (S2C, chat_update(rng, seq, "server"))]
    steps += [(C2S, log_text(rng, 30_000)), (S2C, "small window done")]
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port):
        session = await websockets_deflate_session(
            port,
            "/deflate?window=small",
            steps,
            server_extension=ServerPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=9),
            client_extension=ClientPerMessageDeflateFactory(client_max_window_bits=True),
            close=(1000, "small window"),
        )
    check_deflate(pcap, session)
    write_truth(
        name,
        f"{name}.pcap",
        "websockets client and server with permessage-deflate, client_max_window_bits=9 and"
        " server_max_window_bits=10: texts repeating every 700 bytes, binaries repeating every 300 and 900 bytes,"
        " JSON, a 30 KB log text, pings, close.",
        [session],
        clean=True,
        order_by=pcap,
    )


async def deflate_node() -> None:
    name, port = "deflate_node", PORTS["deflate_node"]
    ensure_node_ws()
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port):
        node = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "deflate.js"), str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(node.communicate(), 60)
    if node.returncode != 0:
        raise CaptureError(f"node peers failed: {err.decode().strip()}")
    netloc = endpoint((LOCALHOST, port))
    extensions: list[str] = []
    session: Session | None = None
    for record in map(json.loads, out.decode().splitlines()):
        match record:
            case {"event": "upgrade", "extensions": header}:
                extensions = extension_items(header)
            case {"event": "open", "client_address": address, "client_port": client_port}:
                client = endpoint((address, client_port))
                session = Session(client, netloc, netloc, "/node?deflate=1", extensions=extensions)
            case {"event": "send", "dir": direction, "opcode": "text" | "binary" as opcode, "compressed": compressed}:
                assert session is not None
                extra = {"compressed": compressed}
                if "fragments" in record:
                    extra["fragments"] = record["fragments"]
                message = record["text"] if opcode == "text" else base64.b64decode(record["data"])
                session.messages.append(data_entry(direction, message, **extra))
            case {"event": "send", "dir": C2S, "opcode": "ping", "data": data}:
                assert session is not None
                payload = base64.b64decode(data)
                session.messages += [opaque_entry(C2S, "ping", payload), opaque_entry(S2C, "pong", payload, auto=True)]
            case {"event": "send", "dir": C2S, "opcode": "close", "close_code": code, "close_reason": reason}:
                assert session is not None
                # ws, like websockets, echoes the peer's close code and reason.
                session.messages += [close_entry(C2S, code, reason), close_entry(S2C, code, reason, auto=True)]
            case {"event": "closed", "close_code": code, "close_reason": reason}:
                if (code, reason) != (1000, "node done"):
                    raise CaptureError(f"node client saw close {code} {reason!r}")
            case _:
                raise CaptureError(f"unexpected node record {record}")
    if session is None or not session.extensions:
        raise CaptureError("node peers did not negotiate permessage-deflate")
    # The server asked for client_no_context_takeover.
    check_deflate(pcap, session, no_context=(True, False))
    write_truth(
        name,
        f"{name}.pcap",
        "Node ws server and client, perMessageDeflate with threshold 0 on both (client_no_context_takeover,"
        " server_max_window_bits=11): JSON both ways, tiny and empty messages, unicode, binary, a 100 KB text, one"
        " message sent with compress: false, fragmented compressed messages both ways, ping, close.",
        [session],
        clean=True,
        order_by=pcap,
    )


async def deflate_aiohttp() -> None:
    name, port = "deflate_aiohttp", PORTS["deflate_aiohttp"]
    rng = random.Random(7695)
    netloc = endpoint((LOCALHOST, port))
    path = "/ws?compress=15"
    accepted: Accepted[tuple[web.WebSocketResponse, asyncio.Event]] = Accepted()

    async def ws_endpoint(request: web.Request) -> web.WebSocketResponse:
        # compress=True: the server takes its window size from the client's offer.
        ws = web.WebSocketResponse(compress=True, autoping=True, heartbeat=None)
        await ws.prepare(request)
        done = asyncio.Event()
        assert request.transport is not None
        accepted.arrived(endpoint(request.transport.get_extra_info("peername")), (ws, done))
        await done.wait()
        return ws

    steps: list[tuple[str, str | bytes]] = [(C2S, "hello aiohttp, compressed"), (S2C, "hi, compressed too")]
    for seq in range(5):
        steps += [(C2S, chat_update(rng, seq, "dave")), (S2C, chat_update(rng, seq, "aiohttp"))]
    steps += [
        (C2S, log_text(rng, 100_000)),
        (S2C, bytes(range(200)) * 30),
        (C2S, rng.randbytes(1000)),
        (S2C, ""),
        (C2S, "é"),
    ]
    app = web.Application()
    app.router.add_get("/ws", ws_endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    pcap = HERE / f"{name}.pcap"
    try:
        async with Capture(pcap, port), aiohttp.ClientSession() as http:
            await web.TCPSite(runner, LOCALHOST, port).start()
            ws = await http.ws_connect(f"http://{netloc}{path}", compress=15, autoping=True, heartbeat=None)
            session = Session(
                endpoint(ws.get_extra_info("sockname")), endpoint(ws.get_extra_info("peername")), netloc, path
            )
            server_ws, done = await accepted.get(session.client)
            session.extensions = extension_items(server_ws.headers.get("Sec-WebSocket-Extensions"))
            if not session.extensions:
                raise CaptureError("aiohttp did not negotiate permessage-deflate")
            client, server = AiohttpPeer(ws), AiohttpPeer(server_ws)
            # aiohttp compresses every data message once compression is negotiated, and no control frame.
            await converse(session, client, server, steps, compressed=True)
            # aiohttp answers a ping inside the receive() that the next message completes.
            session.messages.append(opaque_entry(C2S, "ping", b"aio-deflate-ping"))
            session.messages.append(opaque_entry(S2C, "pong", b"aio-deflate-ping", auto=True))
            await ws.ping(b"aio-deflate-ping")
            await converse(session, client, server, [(C2S, "after the ping")], compressed=True)
            # aiohttp's autoclose replies 1000 with no reason.
            session.messages.append(close_entry(C2S, 1000, "aiohttp deflate done"))
            session.messages.append(close_entry(S2C, 1000, "", auto=True))
            _, server_saw = await asyncio.gather(
                ws.close(code=1000, message=b"aiohttp deflate done"), server_ws.receive()
            )
            if server_saw.type != aiohttp.WSMsgType.CLOSE:
                raise CaptureError(f"aiohttp server saw {server_saw!r}")
            done.set()
    finally:
        await runner.cleanup()
    check_deflate(pcap, session)
    write_truth(
        name,
        f"{name}.pcap",
        "aiohttp server (compress=True) and client (compress=15) with permessage-deflate and context takeover:"
        " JSON both ways, a 100 KB log text, compressible and random binary, empty and tiny messages, ping, close.",
        [session],
        clean=True,
        order_by=pcap,
    )


async def deflate_chromium() -> None:
    """Headless chromium loads a page from a websockets server; the page's WebSocket talks to the same server."""
    name, port = "deflate_chromium", PORTS["deflate_chromium"]
    browser = shutil.which("chromium")
    if browser is None:
        print(f"  {name} skipped: chromium is not installed (Debian: apt-get install chromium)")
        return
    rng = random.Random(7696)
    netloc = endpoint((LOCALHOST, port))
    # (what the page sends, what the server answers), in turn.
    exchanges: list[tuple[str | bytes, str | bytes]] = [("hello from chromium", "hello, browser")]
    exchanges += [(chat_update(rng, seq, "browser"), chat_update(rng, seq, "server")) for seq in range(5)]
    exchanges += [
        ("ünïcödé 🌍 from the browser", b"binary from the server " + bytes(range(64))),
        (bytes(range(256)) * 4, ""),
        ("", "ok"),
        (rng.randbytes(300), "x"),
        (log_text(rng, 50_000), "got the log"),
    ]
    sent = [{"text": m} if isinstance(m, str) else {"data": base64.b64encode(m).decode()} for m, _ in exchanges]
    # ensure_ascii and no "</" keep the script intact inside the page.
    page = CHROMIUM_PAGE.replace("STEPS", json.dumps(sent).replace("</", "<\\/"))
    finished: asyncio.Future[Session] = asyncio.get_running_loop().create_future()

    def respond(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/ws"):
            return None
        if request.path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        response = connection.respond(HTTPStatus.OK, page)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    async def handler(connection: ServerConnection) -> None:
        try:
            request, response = connection.request, connection.response
            assert request is not None and response is not None
            session = Session(endpoint(connection.remote_address), netloc, request.headers["Host"], request.path)
            session.extensions = extension_items(response.headers.get("Sec-WebSocket-Extensions"))
            for message, reply in exchanges:
                received = await connection.recv()
                if received != message:
                    raise CaptureError(f"chromium sent {received!r:.60}, expected {message!r:.60}")
                # Chromium compresses every data message once permessage-deflate is negotiated, as websockets does.
                session.messages.append(data_entry(C2S, message, compressed=True))
                session.messages.append(data_entry(S2C, reply, compressed=True))
                await connection.send(reply)
            await connection.wait_closed()
            received_close, sent_close = connection.protocol.close_rcvd, connection.protocol.close_sent
            if received_close is None or sent_close is None:
                raise CaptureError("the browser's session did not end with a close handshake")
            session.messages.append(close_entry(C2S, received_close.code, received_close.reason))
            session.messages.append(close_entry(S2C, sent_close.code, sent_close.reason, auto=True))
            finished.set_result(session)
        except Exception as error:
            finished.set_exception(error)

    pcap = HERE / f"{name}.pcap"
    profile = tempfile.mkdtemp(prefix="wsinspect-chromium-")
    try:
        async with Capture(pcap, port), serve_deflate(handler, LOCALHOST, port, process_request=respond):
            chromium = await asyncio.create_subprocess_exec(
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"http://{netloc}/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                session = await asyncio.wait_for(finished, 60)
            finally:
                # Headless chromium keeps running once the page is done; its sockets close as it exits.
                if chromium.returncode is None:
                    chromium.terminate()
                await asyncio.wait_for(chromium.wait(), STOP_TIMEOUT)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    check_deflate(pcap, session)
    write_truth(
        name,
        f"{name}.pcap",
        "Headless Chromium loads a page from a websockets server (default permessage-deflate, window bits 12) and"
        " its script opens a WebSocket to the same port: JSON both ways, unicode, binary both ways, empty"
        " messages, a 50 KB text; the page closes with 1000 'browser done'.",
        [session],
        clean=True,
        order_by=pcap,
    )


async def deflate_bomb() -> None:
    name, port = "deflate_bomb", PORTS["deflate_bomb"]
    rng = random.Random(7697)
    # A full flush ends a block and resets the compressor, so 1 MiB of zeros always compresses to the same
    # 1037 bytes: 1024 copies (less the last tail, RFC 7692 7.2.1) make a valid message of 1 GiB of zeros.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    bomb = (one * 1024)[:-4]
    zeros, mebibyte = hashlib.sha256(), bytes(1 << 20)
    for _ in range(1024):
        zeros.update(mebibyte)
    bomb_entry = {"dir": S2C, "opcode": "binary", "length": 1 << 30, "sha256": zeros.hexdigest(), "compressed": True}
    request, after = "send the big one", "a normal message after the bomb"
    steps = [
        Step(
            C2S,
            encode_frame(OP_TEXT, deflate_message(zlib.compressobj(wbits=-15), request.encode()), mask=rng.randbytes(4),
                         rsv1=True),
            data_entry(C2S, request, compressed=True),
        ),
        Step(S2C, encode_frame(OP_BINARY, bomb, rsv1=True), bomb_entry),
        # Compressed on its own: no back-reference, so it inflates the same with or without the bomb's window.
        Step(
            S2C,
            encode_frame(OP_TEXT, deflate_message(zlib.compressobj(wbits=-15), after.encode()), rsv1=True),
            data_entry(S2C, after, compressed=True),
        ),
        Step(C2S, encode_frame(OP_CLOSE, close_payload(1000), mask=rng.randbytes(4)), close_entry(C2S, 1000)),
        Step(S2C, encode_frame(OP_CLOSE, close_payload(1000)), close_entry(S2C, 1000)),
    ]  # fmt: skip
    listener = RawListener()
    async with Capture(HERE / f"{name}.pcap", port), await listener.start(LOCALHOST, port):
        session = await run_raw_session(
            listener,
            port,
            "/bomb",
            rng,
            steps,
            issues=[Issue.MESSAGE_TOO_LARGE],
            extensions="permessage-deflate",
        )
    write_truth(
        name,
        f"{name}.pcap",
        f"Hand-written peers negotiate permessage-deflate; the server sends a {len(bomb) // 1000} KB compressed binary"
        " message that inflates to 1 GiB of zeros, then a small compressed text. 'too_large' lists the messages"
        " over wsinspect's default --max-message-size (64 MiB).",
        [session],
        clean=False,
        order_by=HERE / f"{name}.pcap",
        too_large=[1],
    )


async def deflate_frame_legacy() -> None:
    name, port = "deflate_frame_legacy", PORTS["deflate_frame_legacy"]
    rng = random.Random(7698)
    # x-webkit-deflate-frame (pre-RFC 7692, old Safari and Chrome): each frame is compressed on its own, with RSV1
    # on every compressed frame, continuation frames included, and the window kept across frames.
    compressors = {C2S: zlib.compressobj(wbits=-15), S2C: zlib.compressobj(wbits=-15)}

    def frame(direction: str, opcode: int, payload: bytes, *, fin: bool = True, compress: bool = True) -> bytes:
        data = deflate_message(compressors[direction], payload) if compress else payload
        mask = rng.randbytes(4) if direction == C2S else None
        return encode_frame(opcode, data, mask=mask, fin=fin, rsv1=compress)

    def text(direction: str, message: str, *, compress: bool = True) -> Step:
        wire = frame(direction, OP_TEXT, message.encode(), compress=compress)
        return Step(direction, wire, data_entry(direction, message, compressed=compress))

    fragments = ["legacy fragment one, ", "legacy fragment two, ", "legacy fragment one, two, three"]
    pattern = bytes(range(100)) * 20
    steps = [
        text(C2S, "hello, deflate-frame"),
        text(S2C, "hello, old friend"),
        *(text(C2S if seq % 2 == 0 else S2C, chat_update(rng, seq, "legacy")) for seq in range(6)),
        Step(C2S, frame(C2S, OP_TEXT, fragments[0].encode(), fin=False)),
        Step(C2S, frame(C2S, OP_CONT, fragments[1].encode(), fin=False)),
        Step(C2S, frame(C2S, OP_CONT, fragments[2].encode()),
             data_entry(C2S, "".join(fragments), compressed=True, fragments=3)),
        Step(S2C, frame(S2C, OP_BINARY, pattern), data_entry(S2C, pattern, compressed=True)),
        text(S2C, "this frame is not compressed", compress=False),
        text(C2S, "but this one is"),
        Step(C2S, frame(C2S, OP_PING, b"legacy ping", compress=False), opaque_entry(C2S, "ping", b"legacy ping")),
        Step(S2C, frame(S2C, OP_PONG, b"legacy ping", compress=False), opaque_entry(S2C, "pong", b"legacy ping")),
        Step(C2S, frame(C2S, OP_CLOSE, close_payload(1000, b"legacy done"), compress=False),
             close_entry(C2S, 1000, "legacy done")),
        Step(S2C, frame(S2C, OP_CLOSE, close_payload(1000, b"legacy done"), compress=False),
             close_entry(S2C, 1000, "legacy done")),
    ]  # fmt: skip
    listener = RawListener()
    pcap = HERE / f"{name}.pcap"
    async with Capture(pcap, port), await listener.start(LOCALHOST, port):
        session = await run_raw_session(listener, port, "/legacy", rng, steps, extensions="x-webkit-deflate-frame")
    check_deflate(pcap, session, per_frame=True)
    write_truth(
        name,
        f"{name}.pcap",
        "Hand-written peers negotiate x-webkit-deflate-frame (pre-RFC 7692): each frame compressed on its own with"
        " RSV1, context kept across frames. Texts and JSON both ways, a text in 3 compressed fragments, a binary,"
        " one uncompressed text, ping/pong, close.",
        [session],
        clean=True,
        order_by=pcap,
    )


CAPTURES: dict[str, Callable[[], Awaitable[None]]] = {
    "websockets_basic": websockets_basic,
    "websockets_many": websockets_many,
    "aiohttp_basic": aiohttp_basic,
    "node_ws": node_ws,
    "ipv6_odd_port": ipv6_odd_port,
    "sll2_any": sll2_any,
    "pcapng_nano": pcapng_nano,
    "websockets_gz": websockets_gz,
    "raw_edge": raw_edge,
    "rejected": rejected,
    "violations": violations,
    "gappy": gappy,
    "deflate_websockets": deflate_websockets,
    "deflate_no_context": deflate_no_context,
    "deflate_small_window": deflate_small_window,
    "deflate_node": deflate_node,
    "deflate_aiohttp": deflate_aiohttp,
    "deflate_chromium": deflate_chromium,
    "deflate_bomb": deflate_bomb,
    "deflate_frame_legacy": deflate_frame_legacy,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=CAPTURES, action="append", help="make only this capture (repeatable)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make_captures.py needs root: tcpdump captures on the loopback interface")
    for name in args.only or CAPTURES:
        print(f"{name} ...", flush=True)
        asyncio.run(asyncio.wait_for(CAPTURES[name](), CAPTURE_TIMEOUT))


if __name__ == "__main__":
    main()
