#!/usr/bin/env python3
"""Record the HTTP/2 sample captures in captures/h2/: WebSockets over HTTP/2 (RFC 8441), real peers on loopback.

The server is hypercorn (which advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and serves extended CONNECT) running an
ASGI app that echoes WebSocket messages and logs what it sends; the clients are written here with the ``h2`` library,
their WebSocket frames encoded by ``wsproto`` (the same RFC 6455 frames as over HTTP/1.1, permessage-deflate
included). Each NAME.pcap gets NAME.truth.json: per WebSocket stream, the messages both sides sent and the exact
bytes the client put in its DATA frames (length and SHA-256). Same conventions and checks as make_captures.py
(tcpdump on lo, no packet dropped, every connection complete); the files live in their own directory because the
core does not route HTTP/2 yet.

    python3 captures/make_h2_captures.py [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from hypercorn.asyncio import serve
from hypercorn.config import Config
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage
from wsproto.extensions import PerMessageDeflate

HERE = Path(__file__).resolve().parent
OUT = HERE / "h2"
sys.path.insert(0, str(HERE))
from make_captures import (  # noqa: E402  (make_captures.py sits beside this script)
    LOCALHOST,
    Capture,
    CaptureError,
    check_complete,
    close_entry,
    data_entry,
    endpoint,
    extension_items,
    read_packets,
    write_packets,
)

PORTS = {"h2c_websockets": 47101, "h2c_upgrade": 47102, "h2_tls": 47103, "h2_chromium": 47104}
Entry = dict[str, object]


@dataclass
class Stream:
    """One WebSocket stream of the truth file."""

    stream: int
    path: str
    status: int | None = None
    extensions: list[str] = field(default_factory=list)
    messages: list[Entry] = field(default_factory=list)
    c2s_length: int = 0
    c2s_sha256: str = ""


# -- the server: hypercorn + an ASGI echo app that logs what it sends ---------------------------------------------


class EchoApp:
    """ASGI app: WebSocket paths echo every message (/refuse is refused before accept: hypercorn answers 403);
    HTTP paths answer a small body. ``sent[path]`` lists what the server sent on each WebSocket."""

    def __init__(self, pages: dict[str, bytes] | None = None) -> None:
        self.sent: dict[str, list[Entry]] = {}
        self.received: dict[str, list[Entry]] = {}  # what the app got, for peers whose frames are not logged
        self.pages = pages or {}
        self.disconnected = asyncio.Event()

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
    ) -> None:
        if scope["type"] == "lifespan":
            while (event := await receive())["type"] != "lifespan.shutdown":
                await send({"type": event["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if scope["type"] == "http":
            body = self.pages.get(path, (f"page {path} " * 200).encode())
            kind = b"text/html; charset=utf-8" if path in self.pages else b"text/plain"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        if path == "/refuse":
            await send({"type": "websocket.close", "code": 1008})
            return
        log = self.sent.setdefault(path, [])
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                self.disconnected.set()
                return  # the Close reply is hypercorn's (wsproto's), recorded from what the client received
            message = event.get("text") if event.get("text") is not None else event.get("bytes")
            self.received.setdefault(path, []).append(data_entry("c2s", message))
            log.append(data_entry("s2c", message))
            if isinstance(message, str):
                await send({"type": "websocket.send", "text": message})
            else:
                await send({"type": "websocket.send", "bytes": message})


async def run_server(port: int, app: EchoApp, stop: asyncio.Event, tls: Path | None) -> None:
    config = Config()
    if tls is not None:
        config.certfile = str(tls)
        config.keyfile = str(tls.with_suffix(".key"))
    config.bind = [f"{LOCALHOST}:{port}"]
    config.accesslog = None
    config.errorlog = None
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def tls_contexts(keylog: Path) -> tuple[Path, ssl.SSLContext]:
    """A fresh self-signed certificate for localhost (written to a temporary directory: the server wants files)
    and a client context that trusts it, offers ALPN h2 and writes its secrets to ``keylog``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="wsinspect-h2-"))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    client = ssl.create_default_context(cafile=str(cert_path))
    client.set_alpn_protocols(["h2"])
    client.keylog_filename = str(keylog)
    return cert_path, client


# -- the client: h2 + wsproto --------------------------------------------------------------------------------------


class Client:
    """An h2 client connection over asyncio streams; WebSocket streams carry wsproto client frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: h2.connection.H2Connection):
        self.reader, self.writer, self.conn = reader, writer, conn
        self.headers: dict[int, dict[str, str]] = {}
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.ws: dict[int, Connection] = {}
        self.extensions: dict[int, list[PerMessageDeflate]] = {}
        self.truth: dict[int, Stream] = {}
        self.received: dict[int, list[Message[Any] | CloseConnection]] = {}
        self.connect_enabled = False
        self.gets = 0
        self.upgrade: dict[str, object] | None = None

    async def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()

    async def until(self, done: Callable[[], bool]) -> None:
        await self.flush()
        while not done():
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                raise ConnectionError("server closed")
            for ev in self.conn.receive_data(data):
                self.handle(ev)
            await self.flush()

    def handle(self, ev: h2.events.Event) -> None:
        match ev:
            case h2.events.RemoteSettingsChanged():
                if h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL in ev.changed_settings:
                    self.connect_enabled = True
            case h2.events.ResponseReceived():
                headers = self.headers[ev.stream_id] = dict(ev.headers)  # type: ignore[arg-type]
                if ev.stream_id in self.extensions:
                    # wsproto keeps only the extensions enabled when its Connection is made: after finalize().
                    accepted = headers.get("sec-websocket-extensions")
                    extensions = self.extensions[ev.stream_id] if accepted else []
                    for ext in extensions:
                        ext.finalize(accepted or "")
                    self.ws[ev.stream_id] = Connection(ConnectionType.CLIENT, extensions)  # type: ignore[arg-type]
            case h2.events.DataReceived():
                if ev.stream_id in self.ws:
                    ws = self.ws[ev.stream_id]
                    ws.receive_data(ev.data)
                    for wev in ws.events():
                        if isinstance(wev, CloseConnection) or (isinstance(wev, Message) and wev.message_finished):
                            self.received.setdefault(ev.stream_id, []).append(wev)
                else:
                    self.data.setdefault(ev.stream_id, bytearray()).extend(ev.data or b"")
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            case h2.events.StreamEnded() | h2.events.StreamReset():
                self.ended.add(ev.stream_id)

    async def goodbye(self) -> None:
        """GOAWAY, then FIN, then read until the server's FIN (so no unread byte turns the close into a RST)."""
        self.conn.close_connection()
        await self.flush()
        if self.writer.can_write_eof():
            self.writer.write_eof()
            while await asyncio.wait_for(self.reader.read(65536), 10):
                pass
        self.writer.close()
        await self.writer.wait_closed()

    async def get(self, path: str) -> int:
        self.gets += 1
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            sid,
            [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", self.authority)],
            end_stream=True,
        )
        await self.flush()
        return sid

    @property
    def authority(self) -> str:
        return endpoint(self.writer.get_extra_info("peername"))

    async def connect(self, path: str, *, deflate: bool = False) -> int:
        """An extended CONNECT (RFC 8441 4); the response is awaited by the caller."""
        sid = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority),
            ("sec-websocket-version", "13"),
        ]
        extensions = []
        if deflate:
            pmd = PerMessageDeflate()
            headers.append(("sec-websocket-extensions", f"{pmd.name}; {pmd.offer()}"))  # offer() lacks the name
            extensions.append(pmd)
        self.conn.send_headers(sid, headers)
        self.extensions[sid] = extensions
        self.truth[sid] = Stream(sid, path)
        await self.flush()
        return sid

    async def accepted(self, sid: int) -> bool:
        await self.until(lambda: sid in self.headers)
        status = int(self.headers[sid][":status"])
        truth = self.truth[sid]
        truth.status = status
        truth.extensions = extension_items(self.headers[sid].get("sec-websocket-extensions"))
        return 200 <= status < 300

    def encode(self, sid: int, message: str | bytes | CloseConnection) -> bytes:
        """The client's RFC 6455 frames for a message (wsproto, masked, compressed where negotiated), recorded."""
        ws = self.ws[sid]
        if isinstance(message, CloseConnection):
            wire = ws.send(message)
            self.truth[sid].messages.append(close_entry("c2s", message.code, message.reason or ""))
        else:
            wire = ws.send(TextMessage(message) if isinstance(message, str) else BytesMessage(message))
            self.truth[sid].messages.append(data_entry("c2s", message))
        self.truth[sid].c2s_length += len(wire)
        self.c2s[sid].update(wire)
        return wire

    async def send(self, *parts: tuple[int, bytes], frame_size: int = 16384, end_stream: bool = False) -> None:
        """Send each (stream, bytes) in DATA frames of at most ``frame_size`` bytes, the streams taking turns frame
        by frame as flow control allows; ``end_stream`` on the last frame of each."""
        queue = [[sid, wire] for sid, wire in parts]
        while queue:
            for item in list(queue):
                sid, wire = item
                window = min(self.conn.local_flow_control_window(sid), frame_size)
                if window <= 0:
                    continue
                piece, item[1] = wire[:window], wire[window:]
                self.conn.send_data(sid, piece, end_stream=end_stream and not item[1])
                if not item[1]:
                    queue.remove(item)
            await self.flush()
            if queue and all(self.conn.local_flow_control_window(sid) <= 0 for sid, _ in queue):
                await self.until(lambda: any(self.conn.local_flow_control_window(sid) > 0 for sid, _ in queue))

    c2s: dict[int, Any]


async def open_client(port: int, mode: str, tls: ssl.SSLContext | None) -> Client:
    """An h2 client connection: prior knowledge ("h2c"), TLS with ALPN h2 ("tls"), or ("upgrade") an HTTP/1.1 GET
    with ``Upgrade: h2c`` (RFC 7540 3.2) whose response comes on stream 1 after the 101."""
    reader, writer = await asyncio.open_connection(
        LOCALHOST, port, ssl=tls, server_hostname="localhost" if tls else None
    )
    if tls is not None and writer.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
        raise ConnectionError("ALPN did not select h2")
    upgrade = mode == "upgrade"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client = Client(reader, writer, conn)
    client.c2s = {}
    if not upgrade:
        conn.initiate_connection()
        return client
    settings = conn.initiate_upgrade_connection().decode()
    head = (
        f"GET /index.html HTTP/1.1\r\nHost: {client.authority}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        f"Upgrade: h2c\r\nHTTP2-Settings: {settings}\r\n\r\n"
    ).encode()
    writer.write(head)
    await writer.drain()
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no 101 to the h2c upgrade: {response!r}")
    client.gets += 1
    client.upgrade = {"client_head": len(head), "server_head": len(response), "http2_settings": settings}
    return client


def new_stream_hashes(client: Client, sid: int) -> None:
    client.c2s[sid] = hashlib.sha256()


async def h2c_session(client: Client, rng: random.Random) -> None:
    """Several WebSocket streams at once beside ordinary GETs, one with permessage-deflate, one refused."""
    await client.until(lambda: client.connect_enabled)
    a = await client.connect("/echo/a?room=1")
    get1 = await client.get("/index.html")
    b = await client.connect("/echo/b", deflate=True)
    refused = await client.connect("/refuse")
    for sid in (a, b, refused):
        new_stream_hashes(client, sid)
    assert await client.accepted(a) and await client.accepted(b)
    assert not await client.accepted(refused)
    big = rng.randbytes(100_000)
    log = " ".join(f"line {i}: value={rng.randrange(1000)}" for i in range(3000))
    for sid, message in [
        (a, "hello over h2"),
        (b, "hello compressed"),
        (a, "Grüße, 世界"),
        (b, json.dumps({"seq": 1, "items": list(range(50))})),
        (a, b"\x00\x01\x02binary"),
    ]:
        await client.send((sid, client.encode(sid, message)))
    # A 100 KB binary and a 60 KB text in DATA frames of 4000 bytes, the two streams taking turns.
    await client.send((a, client.encode(a, big)), (b, client.encode(b, log)), frame_size=4000)
    await client.send((a, client.encode(a, "")), (b, client.encode(b, b"")))
    client.conn.ping(b"wsinspct")
    get2 = await client.get("/app.js")
    counts = {a: 5, b: 4}

    def echoed() -> bool:
        return all(len(client.received.get(sid, [])) >= n for sid, n in counts.items())

    await client.until(echoed)
    await client.until(lambda: {get1, get2, refused} <= client.ended)
    # The Close frame carries END_STREAM (RFC 8441 6: the orderly end of the stream). A separate empty DATA frame
    # with END_STREAM after it would hit a hypercorn bug: it forgets the stream once the close is done and fails
    # on the next frame for it (KeyError in its h2 protocol), resetting the connection.
    await client.send(
        (a, client.encode(a, CloseConnection(1000, "bye"))),
        (b, client.encode(b, CloseConnection(1001, "going"))),
        end_stream=True,
    )
    # hypercorn answers the Close but never ends its side of the stream (no END_STREAM, no RST_STREAM).
    await client.until(lambda: all(any(isinstance(m, CloseConnection) for m in client.received[s]) for s in (a, b)))


async def upgrade_session(client: Client, rng: random.Random) -> None:
    """After the 101 to h2c: the upgraded GET answered on stream 1, then a WebSocket and a GET side by side."""
    await client.until(lambda: client.connect_enabled and 1 in client.ended)
    ws = await client.connect("/echo/up")
    new_stream_hashes(client, ws)
    get = await client.get("/after-upgrade")
    assert await client.accepted(ws)
    for message in ["over an upgraded connection", rng.randbytes(3000), "x" * 20000]:
        await client.send((ws, client.encode(ws, message)), frame_size=8000)
    await client.until(lambda: len(client.received.get(ws, [])) >= 3 and get in client.ended)
    await client.send((ws, client.encode(ws, CloseConnection(1000, "done"))), end_stream=True)
    await client.until(lambda: any(isinstance(m, CloseConnection) for m in client.received[ws]))


async def record(
    name: str, session: Callable[[Client, random.Random], Awaitable[None]], description: str, mode: str
) -> None:
    OUT.mkdir(exist_ok=True)
    port = PORTS[name]
    pcap = OUT / f"{name}.pcap"
    app = EchoApp()
    stop = asyncio.Event()
    keylog = OUT / f"{name}.keys"
    keylog.unlink(missing_ok=True)
    server_tls = client_tls = None
    if mode == "tls":
        server_tls, client_tls = tls_contexts(keylog)
    server = asyncio.create_task(run_server(port, app, stop, server_tls))
    # hypercorn has no readiness callback: probe the port before the capture starts, so the probe is not in it.
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection(
                LOCALHOST, port, ssl=client_tls, server_hostname="localhost" if client_tls else None
            )
            w.close()
            await w.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise ConnectionError("hypercorn did not start")
    await asyncio.sleep(0.2)
    async with Capture(pcap, port):
        if client_tls is not None:
            # Only the captured connection's secrets go into the key log (the probe's are dropped).
            # (The context appends to the file it opened: truncating keeps that handle writing at the start.)
            keylog.write_bytes(b"")
        client = await open_client(port, mode, client_tls)
        local = endpoint(client.writer.get_extra_info("sockname"))
        await session(client, random.Random(name))
        await client.goodbye()
    stop.set()
    await server
    streams = []
    for sid, truth in sorted(client.truth.items()):
        truth.c2s_sha256 = client.c2s[sid].hexdigest()
        closes = [
            close_entry("s2c", m.code, m.reason or "", auto=True)
            for m in client.received.get(sid, [])
            if isinstance(m, CloseConnection)
        ]
        truth.messages = [*truth.messages, *app.sent.get(truth.path.partition("?")[0], []), *closes]
        streams.append(asdict(truth))
    result = {
        "capture": pcap.name,
        "description": description,
        "client": local,
        "server": f"{LOCALHOST}:{port}",
        "http_version": "2",
        "ordinary_requests": client.gets,
        **({"upgrade": client.upgrade} if client.upgrade else {}),
        **({"keylog": keylog.name, "alpn": "h2"} if mode == "tls" else {}),
        "websockets": streams,
    }
    (OUT / f"{name}.truth.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--ignore-certificate-errors",
    # RFC 8441 in Chromium; on by default in recent versions, named here so an older one uses it too.
    "--enable-features=WebSocketOverHttp2",
)  # fmt: skip
# The page h2_chromium loads: a fetch beside a WebSocket on the same HTTP/2 connection; STEPS as in
# make_captures.py's CHROMIUM_PAGE, each sent when the echo of the one before arrives.
CHROMIUM_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsinspect h2 capture</title>
<script>
const steps = STEPS;
fetch("/data.json").then((r) => r.text());
const ws = new WebSocket(`wss://${location.host}/echo/chromium`);
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


class CompleteOrSpare(Capture):
    """A Capture for Chromium, which opens speculative spare connections and may reset them at exit: the file
    keeps only the connection that carried the most bytes (the page and its WebSocket), which must be complete."""

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await super().__aexit__(*exc)
        except CaptureError as error:
            if "lacks its SYN or FIN" not in str(error):
                raise
        linktype, packets = read_packets(self.path)
        sizes: Counter[frozenset[str]] = Counter()
        for packet in packets:
            sizes[frozenset((packet.src, packet.dst))] += len(packet.payload)
        main = sizes.most_common(1)[0][0]
        write_packets(self.path, linktype, ((p.ts, p.buf) for p in packets if {p.src, p.dst} == main))
        check_complete(self.path)


async def record_chromium(name: str) -> None:
    """Headless Chromium loads a page over TLS (ALPN h2) from hypercorn; the page's WebSocket goes over the same
    HTTP/2 connection as an extended CONNECT. Its frames (random masks) are known from what the app received."""
    browser = shutil.which("chromium")
    if browser is None:
        print(f"  {name} skipped: chromium is not installed (Debian: apt-get install chromium)")
        return
    rng = random.Random(name)
    steps: list[str | bytes] = ["hello from chromium over h2", "ünïcödé 🌍", rng.randbytes(300), "", "y" * 70_000]
    sent = [{"text": m} if isinstance(m, str) else {"data": base64.b64encode(m).decode()} for m in steps]
    page = CHROMIUM_PAGE.replace("STEPS", json.dumps(sent)).encode()
    OUT.mkdir(exist_ok=True)
    port = PORTS[name]
    pcap, keylog = OUT / f"{name}.pcap", OUT / f"{name}.keys"
    keylog.unlink(missing_ok=True)
    cert, _ = tls_contexts(OUT / "unused.keys")
    (OUT / "unused.keys").unlink(missing_ok=True)
    app = EchoApp({"/": page, "/data.json": b'{"ok": true}'})
    stop = asyncio.Event()
    server = asyncio.create_task(run_server(port, app, stop, cert))
    await asyncio.sleep(1.0)
    profile = tempfile.mkdtemp(prefix="wsinspect-chromium-")
    try:
        async with CompleteOrSpare(pcap, port):
            chromium = await asyncio.create_subprocess_exec(
                browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"https://{LOCALHOST}:{port}/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "SSLKEYLOGFILE": str(keylog)},
            )  # fmt: skip
            try:
                await asyncio.wait_for(app.disconnected.wait(), 60)
                await asyncio.sleep(0.5)
            finally:
                if chromium.returncode is None:
                    chromium.terminate()
                await asyncio.wait_for(chromium.wait(), 10)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    stop.set()
    await server
    path = "/echo/chromium"
    # The page's close, as its script says (hypercorn tells the app 1006 whatever the browser sent); hypercorn's
    # wsproto answers a Close with the same code and reason (CloseConnection.response()).
    messages = [
        *app.received[path],
        close_entry("c2s", 1000, "browser done"),
        *app.sent[path],
        close_entry("s2c", 1000, "browser done", auto=True),
    ]
    if [m.get("text", m.get("data", m.get("sha256"))) for m in app.received[path]] != [
        m.get("text", m.get("data", m.get("sha256"))) for m in (data_entry("c2s", x) for x in steps)
    ]:
        raise CaptureError(f"{name}: chromium did not send the steps")
    result = {
        "capture": pcap.name,
        "description": "Headless Chromium over TLS (ALPN h2, --ignore-certificate-errors) loads a page from "
        "hypercorn whose script fetches /data.json and opens a WebSocket on the same HTTP/2 connection (RFC 8441): "
        "texts, unicode, 300-byte binary, empty, a 70 KB text, each echoed; the page closes with 1000 'browser done'. "
        "The browser's secrets are in h2_chromium.keys (SSLKEYLOGFILE). Only that connection is kept: Chromium's "
        "spare connections (one reset at exit) were removed from the file.",
        "server": f"{LOCALHOST}:{port}",
        "http_version": "2",
        "keylog": keylog.name,
        "alpn": "h2",
        "websockets": [{"path": path, "status": 200, "messages": messages, "c2s_length": None, "c2s_sha256": None}],
    }
    (OUT / f"{name}.truth.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


CAPTURES = {
    "h2c_websockets": (
        h2c_session,
        "h2c with prior knowledge: hypercorn + an h2/wsproto client. Stream 1 WebSocket /echo/a (no extension), "
        "stream 3 GET, stream 5 WebSocket /echo/b with permessage-deflate, stream 7 refused (403), a 100 KB binary "
        "over DATA frames of 4000 bytes interleaved with a 60 KB compressed text, PING, GET, closes with END_STREAM "
        "(hypercorn never ends its side), client GOAWAY.",
        "h2c",
    ),
    "h2c_upgrade": (
        upgrade_session,
        "HTTP/1.1 GET /index.html with 'Upgrade: h2c' and HTTP2-Settings, 101, then the client preface; the GET "
        "answered on stream 1 (RFC 7540 3.2). Stream 3: WebSocket /echo/up (text, 3000-byte binary, 20 KB text in "
        "8000-byte DATA frames, close), stream 5: GET beside it.",
        "upgrade",
    ),
    "h2_tls": (
        h2c_session,
        "The h2c_websockets conversation over TLS 1.3 with ALPN h2 (self-signed certificate for localhost); the "
        "client's TLS secrets in h2_tls.keys (SSLKEYLOGFILE format) for decryption.",
        "tls",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted([*CAPTURES, "h2_chromium"]))
    args = parser.parse_args()
    if args.only in (None, "h2_chromium"):
        asyncio.run(record_chromium("h2_chromium"))
        print("h2_chromium: done")
    for name, (session, description, mode) in CAPTURES.items():
        if args.only in (None, name):
            asyncio.run(record(name, session, description, mode))
            print(f"{name}: ok")


if __name__ == "__main__":
    main()
