#!/usr/bin/env python3
"""Record the wss:// sample captures: real WebSocket peers over TLS on loopback, captured by tcpdump, with the
NSS key log the TLS stacks wrote (NAME.keys beside NAME.pcap and NAME.truth.json).

Same conventions as make_captures.py (whose helpers this script uses): truth written from what the peers logged,
tcpdump must drop nothing, every connection complete. Certificates are self-signed, made in a temporary directory
at capture time and never kept; only the key logs are. Each capture is checked with tshark
(`-o tls.keylog_file:NAME.keys`) before its truth file is written: every logged WebSocket message must be among
the frames tshark decrypts. Needs root, tcpdump, tshark and editcap, openssl, websockets and aiohttp.

    python3 captures/tls/make_tls_captures.py [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import aiohttp
import dpkt
from aiohttp import web
from websockets.http11 import Request, Response

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # make_captures.py
sys.path.insert(0, str(HERE.parent.parent))
from make_captures import (  # noqa: E402  (the script's own directory is importable only after the lines above)
    C2S,
    CAPTURE_TIMEOUT,
    CHROMIUM_FLAGS,
    CHROMIUM_PAGE,
    LOCALHOST,
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    READY_TIMEOUT,
    S2C,
    Accepted,
    AiohttpPeer,
    Capture,
    CaptureError,
    ServerConnection,
    Session,
    accept_key,
    close_entry,
    close_payload,
    close_websockets,
    connect_plain,
    converse,
    data_entry,
    encode_frame,
    endpoint,
    new_key,
    ping_websockets,
    read_packets,
    serve_plain,
    upgrade_request,
    upgrade_response,
    websockets_handler,
    write_truth,
)

from tests.tls_transcript import OP_NO_ENCRYPT_THEN_MAC, key_update  # noqa: E402

PORTS = {
    "tls13_websockets": 47101,
    "tls12_aiohttp_gcm": 47102,
    "tls12_websockets_cbc": 47103,
    "tls13_openssl_chacha20": 47104,
    "tls13_openssl_ccm": 47105,
    "tls13_openssl_early_data": 47106,
    "tls12_openssl_resumption": 47107,
    "tls13_chromium": 47108,
}
SNI = "wsinspect.test"


@dataclass
class TlsSession(Session):
    """A truth session plus what TLS negotiated, as the client's TLS stack reported it."""

    tls: dict[str, object] = field(default_factory=dict)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={SNI}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def contexts(
    directory: Path, keylog: Path, *, tls12: bool = False, ciphers: str | None = None, alpn: bool = True
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts; the client writes the key log."""
    cert, key = make_certificate(directory)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = str(keylog)
    for ctx in (server, client):
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            ctx.set_ciphers(ciphers)
        if alpn:
            ctx.set_alpn_protocols(["http/1.1"])
    return server, client


def tls_fields(ssl_object: ssl.SSLObject | None, cipher: str) -> dict[str, object]:
    """The truth's "tls": version from the client's stack, the cipher's IANA name (OpenSSL names TLS 1.2 suites its
    own way, so the caller gives it and this checks the stack agrees it is the suite asked for)."""
    if ssl_object is None:
        raise CaptureError("no TLS object on the client connection")
    version = {"TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}[ssl_object.version() or ""]
    return {"version": version, "cipher": cipher, "sni": SNI, "alpn": ssl_object.selected_alpn_protocol()}


def tshark_check(pcap: Path, keys: Path, port: int, sessions: list[TlsSession]) -> None:
    """Second opinion: tshark decrypts with the key log; every logged data message must be among its frames."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-o", f"http.tls.port:{port}",
         "-Y", "websocket", "-T", "fields", "-e", "websocket.payload.text", "-e", "data.data"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    payloads = set()
    for line in out.splitlines():
        text, data = line.split("\t")
        payloads.add(text.encode() if text else bytes.fromhex(data))
    digests = {hashlib.sha256(p).hexdigest() for p in payloads}
    for session in sessions:
        for message in session.messages:
            if message["opcode"] not in ("text", "binary"):
                continue
            if "sha256" in message:
                if message["sha256"] not in digests and not message.get("fragments"):
                    raise CaptureError(f"tshark did not decrypt {message['length']} bytes of {pcap.name}")
                continue
            payload = message["text"].encode() if "text" in message else base64.b64decode(str(message["data"]))
            if payload and payload not in payloads:
                raise CaptureError(f"tshark did not decrypt {payload!r:.40} in {pcap.name}")


def server_hello_extensions(pcap: Path) -> list[set[int]]:
    """The extension types of each ServerHello in the capture, in order (tshark reads the clear handshake)."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tls.handshake.type == 2", "-T", "fields",
         "-e", "tls.handshake.extension.type"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [{int(t) for t in line.split(",") if t} for line in out.splitlines()]


def finish(name: str, description: str, sessions: list[TlsSession], keys: Path, port: int, **extra: object) -> None:
    pcap = HERE / f"{name}.pcap"
    shutil.copyfile(keys, HERE / f"{name}.keys")
    tshark_check(pcap, HERE / f"{name}.keys", port, sessions)
    write_truth(name, pcap.name, description, sessions, clean=True, order_by=pcap, keylog=f"{name}.keys", **extra)


# -- captures --------------------------------------------------------------------------------------------------------


async def tls13_websockets() -> None:
    """The websockets library over TLS 1.3 (OpenSSL's default suite), ALPN http/1.1, a KeyUpdate from each side
    mid-session (the server's asks for one back), then the same capture as pcapng with the key log embedded in a
    Decryption Secrets Block."""
    name, port = "tls13_websockets", PORTS["tls13_websockets"]
    rng = random.Random(8446)
    path = "/secure?room=1"
    netloc = endpoint((LOCALHOST, port))
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.log"
        server_ctx, client_ctx = contexts(Path(tmp), keys)
        accepted: Accepted[ServerConnection] = Accepted()
        async with (
            Capture(HERE / f"{name}.pcap", port),
            serve_plain(websockets_handler(accepted), LOCALHOST, port, ssl=server_ctx),
            connect_plain(f"wss://{netloc}{path}", ssl=client_ctx, server_hostname=SNI) as client,
        ):
            ssl_object = client.transport.get_extra_info("ssl_object")
            session = TlsSession(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
            session.tls = tls_fields(ssl_object, ssl_object.cipher()[0])
            server = await accepted.get(session.client)
            await converse(session, client, server, [
                (C2S, "hello over TLS 1.3"),
                (S2C, "welcome, encrypted"),
                (C2S, "ünïcödé 🔐"),
                (S2C, rng.randbytes(100_000)),
                (C2S, rng.randbytes(40_000)),
            ])  # fmt: skip
            await ping_websockets(session, client, b"tls-ping")
            key_update(ssl_object, request=False)
            await converse(session, client, server, [(C2S, "after the client's KeyUpdate"), (S2C, "seen")])
            key_update(server.transport.get_extra_info("ssl_object"), request=True)
            await converse(session, client, server, [
                (S2C, "after the server's KeyUpdate (update_requested)"),
                (C2S, "answered with a KeyUpdate of my own"),
                (S2C, rng.randbytes(30_000)),
            ])  # fmt: skip
            await close_websockets(session, client, 1000, "tls bye")
        finish(
            name,
            "websockets client and server over TLS 1.3 (TLS_AES_256_GCM_SHA384, ALPN http/1.1, SNI wsinspect.test):"
            " text, unicode, 100 KB and 40 KB binary, ping, a KeyUpdate from the client, then one from the server"
            " with update_requested (the client answers with its own), close 1000.",
            [session],
            keys,
            port,
        )
    # The same packets with the key log inside: editcap writes the Decryption Secrets Block (pcapng 4.7).
    dsb = f"{name}_dsb"
    subprocess.run(
        ["editcap", "--inject-secrets", f"tls,{HERE / f'{name}.keys'}", str(HERE / f"{name}.pcap"),
         str(HERE / f"{dsb}.pcapng")],
        check=True, capture_output=True,
    )  # fmt: skip
    write_truth(
        dsb,
        f"{dsb}.pcapng",
        f"{name}.pcap as pcapng with its key log in a Decryption Secrets Block (editcap --inject-secrets).",
        [session],
        clean=True,
        order_by=None,
        keylog=None,
    )


async def tls12_aiohttp_gcm() -> None:
    """aiohttp server and client over TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256, no ALPN."""
    name, port = "tls12_aiohttp_gcm", PORTS["tls12_aiohttp_gcm"]
    rng = random.Random(5288)
    path = "/ws?tls=1.2"
    netloc = endpoint((LOCALHOST, port))
    accepted: Accepted[tuple[web.WebSocketResponse, asyncio.Event]] = Accepted()

    async def ws_endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, autoping=True, heartbeat=None)
        await ws.prepare(request)
        done = asyncio.Event()
        assert request.transport is not None
        accepted.arrived(endpoint(request.transport.get_extra_info("peername")), (ws, done))
        await done.wait()
        return ws

    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.log"
        server_ctx, client_ctx = contexts(
            Path(tmp), keys, tls12=True, ciphers="ECDHE-RSA-AES128-GCM-SHA256", alpn=False
        )
        app = web.Application()
        app.router.add_get("/ws", ws_endpoint)
        runner = web.AppRunner(app)
        await runner.setup()
        async with Capture(HERE / f"{name}.pcap", port):
            site = web.TCPSite(runner, LOCALHOST, port, ssl_context=server_ctx)
            await site.start()
            try:
                async with aiohttp.ClientSession() as http:
                    ws = await http.ws_connect(
                        f"https://{netloc}{path}", ssl=client_ctx, server_hostname=SNI, compress=0, heartbeat=None
                    )
                    session = TlsSession(
                        endpoint(ws.get_extra_info("sockname")), endpoint(ws.get_extra_info("peername")), netloc, path
                    )
                    session.tls = tls_fields(ws.get_extra_info("ssl_object"), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
                    server_ws, done = await accepted.get(session.client)
                    client, server = AiohttpPeer(ws), AiohttpPeer(server_ws)
                    await converse(session, client, server, [
                        (C2S, "hello over TLS 1.2 GCM"),
                        (S2C, "hi from aiohttp"),
                        (C2S, rng.randbytes(64)),
                        (S2C, rng.randbytes(50_000)),
                        (C2S, "last words"),
                    ])  # fmt: skip
                    session.messages.append(close_entry(C2S, 1000, "done"))
                    session.messages.append(close_entry(S2C, 1000, "", auto=True))
                    await asyncio.gather(ws.close(code=1000, message=b"done"), server_ws.receive())
                    done.set()
            finally:
                await runner.cleanup()
        finish(
            name,
            "aiohttp server and client over TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, SNI wsinspect.test, no"
            " ALPN: text, binary, 50 KB binary, close 1000 'done' (aiohttp replies 1000 without reason).",
            [session],
            keys,
            port,
        )


async def tls12_websockets_cbc() -> None:
    """websockets over TLS 1.2 CBC suites: AES-128-CBC-SHA with Encrypt-then-MAC (OpenSSL's default for CBC), then
    AES-256-CBC-SHA384 with MAC-then-encrypt (the client refuses EtM)."""
    name, port = "tls12_websockets_cbc", PORTS["tls12_websockets_cbc"]
    netloc = endpoint((LOCALHOST, port))
    suites = [
        ("ECDHE-RSA-AES128-SHA", 0, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        ("ECDHE-RSA-AES256-SHA384", OP_NO_ENCRYPT_THEN_MAC, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ]
    sessions = []
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.log"
        server_ctx, _ = contexts(Path(tmp), keys, tls12=True, ciphers=":".join(s for s, _, _ in suites))
        accepted: Accepted[ServerConnection] = Accepted()
        async with (
            Capture(HERE / f"{name}.pcap", port),
            serve_plain(websockets_handler(accepted), LOCALHOST, port, ssl=server_ctx),
        ):
            for index, (ciphers, options, iana) in enumerate(suites):
                _, client_ctx = contexts(Path(tmp), keys, tls12=True, ciphers=ciphers)
                client_ctx.options |= options
                path = f"/cbc/{index}"
                async with connect_plain(f"wss://{netloc}{path}", ssl=client_ctx, server_hostname=SNI) as client:
                    session = TlsSession(endpoint(client.local_address), endpoint(client.remote_address), netloc, path)
                    session.tls = tls_fields(client.transport.get_extra_info("ssl_object"), iana)
                    server = await accepted.get(session.client)
                    rng = random.Random(7366 + index)
                    await converse(session, client, server, [
                        (C2S, f"hello over {iana}"),
                        (S2C, rng.randbytes(20_000)),
                        (C2S, rng.randbytes(333)),
                        (S2C, "ok"),
                    ])  # fmt: skip
                    await close_websockets(session, client, 1000, "")
                sessions.append(session)
        # RFC 7366: the server accepts Encrypt-then-MAC by echoing extension 22; only the first client offered it.
        etm = [22 in types for types in server_hello_extensions(HERE / f"{name}.pcap")]
        if etm != [True, False]:
            raise CaptureError(f"{name}: Encrypt-then-MAC negotiated {etm}, not [True, False]")
        finish(
            name,
            "websockets over TLS 1.2 CBC: session 1 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA with Encrypt-then-MAC"
            " (RFC 7366), session 2 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 MAC-then-encrypt; ALPN http/1.1.",
            sessions,
            keys,
            port,
            encrypt_then_mac=[True, False],
        )


async def openssl_conversation(
    server: asyncio.subprocess.Process,
    client_command: list[str],
    netloc: str,
    path: str,
    rng: random.Random,
    label: str,
    *,
    early: Path | None = None,
    renegotiate: bool = False,
) -> TlsSession:
    """One WebSocket conversation through s_client (client) and the running s_server: Python writes the Upgrade,
    the 101 and every frame into one's stdin and reads them back, unchanged, from the other's stdout. ``early``:
    a file holding the Upgrade request, sent by s_client as 0-RTT early data (-early_data). ``renegotiate``: after
    the first frames, s_client's "R" command starts a TLS 1.2 renegotiation (commands stay on, so every frame is
    small enough to be read by s_client in one piece and starts with a frame header, never a command letter)."""
    ws_key = new_key(rng)
    request = upgrade_request(netloc, path, ws_key)
    if early is not None:
        early.write_bytes(request)
        client_command = [*client_command, "-early_data", str(early)]
    client = await asyncio.create_subprocess_exec(
        *client_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert client.stdin and client.stdout and server.stdin and server.stdout
    session = TlsSession("", "", netloc, path)
    try:
        if early is None:
            client.stdin.write(request)
            await client.stdin.drain()
        head = await asyncio.wait_for(server.stdout.readuntil(b"\r\n\r\n"), READY_TIMEOUT)
        if head != request:
            raise CaptureError(f"s_server got {head!r:.60}")
        server.stdin.write(upgrade_response(accept_key(ws_key)))
        await server.stdin.drain()
        await asyncio.wait_for(client.stdout.readuntil(b"\r\n\r\n"), READY_TIMEOUT)
        steps: list[tuple[str, int, bytes]] = [
            (C2S, OP_TEXT, f"hello through openssl, {label}".encode()),
            (S2C, OP_TEXT, "answer from s_server 🔒".encode()),
            (C2S, OP_BINARY, rng.randbytes(900 if renegotiate else 30_000)),
            (S2C, OP_BINARY, rng.randbytes(70_000)),
            (C2S, OP_TEXT, b"after the renegotiation" if renegotiate else b"last words"),
            (S2C, OP_BINARY, rng.randbytes(20_000)),
            (C2S, OP_CLOSE, close_payload(1000, b"openssl done")),
            (S2C, OP_CLOSE, close_payload(1000, b"openssl done")),
        ]
        for index, (direction, opcode, payload) in enumerate(steps):
            if renegotiate and index == 4:
                client.stdin.write(b"R\n")
                await client.stdin.drain()
                await asyncio.sleep(0.5)  # the new handshake completes before the next frame
            sender, receiver = (client, server) if direction == C2S else (server, client)
            frame = encode_frame(opcode, payload, mask=rng.randbytes(4) if direction == C2S else None)
            assert sender.stdin and receiver.stdout
            sender.stdin.write(frame)
            await sender.stdin.drain()
            if await asyncio.wait_for(receiver.stdout.readexactly(len(frame)), READY_TIMEOUT) != frame:
                raise CaptureError(f"{label}: a {direction} frame changed in transit")
            if opcode == OP_CLOSE:
                session.messages.append(close_entry(direction, 1000, "openssl done"))
            else:
                session.messages.append(data_entry(direction, payload.decode() if opcode == OP_TEXT else payload))
    finally:
        # At the end of its stdin s_client sends close_notify and closes (-brief -nocommands; -quiet would ignore
        # the end). Stopping it instead left the server's FIN unsent.
        client.stdin.close()
        try:
            await asyncio.wait_for(client.wait(), READY_TIMEOUT)
        except TimeoutError:
            client.kill()
            await client.wait()
    return session


async def openssl_capture(
    name: str, description: str, suite: str, *, resume: bool = False, server_options: tuple[str, ...] = ()
) -> None:
    """openssl s_server and s_client over TLS 1.3 with ``suite``, ALPN http/1.1. ``resume``: a second connection
    resumes the first one's session (PSK, RFC 8446 2.2) and sends its Upgrade request as 0-RTT data (2.3)."""
    port = PORTS[name]
    rng = random.Random(name)
    netloc = endpoint((LOCALHOST, port))
    with tempfile.TemporaryDirectory() as tmp:
        keys, ticket = Path(tmp) / "keys.log", Path(tmp) / "session.pem"
        cert, key = make_certificate(Path(tmp))
        connections = 2 if resume else 1
        server_command = [
            "openssl", "s_server", "-accept", f"{LOCALHOST}:{port}", "-cert", str(cert), "-key", str(key),
            "-quiet", "-naccept", str(connections), "-ciphersuites", suite, "-alpn", "http/1.1", *server_options,
        ]  # fmt: skip
        client_command = [
            "openssl", "s_client", "-connect", f"{LOCALHOST}:{port}", "-brief", "-nocommands", "-ciphersuites", suite,
            "-keylogfile", str(keys), "-servername", SNI, "-alpn", "http/1.1",
        ]  # fmt: skip
        sessions = []
        async with Capture(HERE / f"{name}.pcap", port):
            server = await asyncio.create_subprocess_exec(
                *server_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                await wait_for_port(port)
                if resume:
                    first = [*client_command, "-sess_out", str(ticket)]
                    sessions.append(await openssl_conversation(server, first, netloc, "/full", rng, "full handshake"))
                    again = [*client_command, "-sess_in", str(ticket)]
                    early = Path(tmp) / "early.txt"
                    sessions.append(
                        await openssl_conversation(server, again, netloc, "/0rtt", rng, "resumed, 0-RTT", early=early)
                    )
                else:
                    sessions.append(await openssl_conversation(server, client_command, netloc, "/", rng, suite))
                # s_server, with -naccept, closes its side and exits on its own once the last client is done.
                await asyncio.wait_for(server.wait(), READY_TIMEOUT)
            finally:
                if server.returncode is None:
                    server.kill()
                    await server.wait()
        # s_client does not print its own port: each client is whoever sent a SYN, in order.
        syns = [p for p in read_packets(HERE / f"{name}.pcap")[1] if p.flags & dpkt.tcp.TH_SYN and not p.flags & 16]
        for session, syn in zip(sessions, syns, strict=True):
            session.client, session.server = syn.src, syn.dst
            session.tls = {"version": "TLS 1.3", "cipher": suite, "sni": SNI, "alpn": "http/1.1"}
        if resume and b"CLIENT_EARLY_TRAFFIC_SECRET" not in keys.read_bytes():
            raise CaptureError(f"{name}: s_client sent no early data")
        finish(name, description, sessions, keys, port)


async def wait_for_port(port: int) -> None:
    """Until something listens on the port (s_server has started), without connecting to it (-naccept 1)."""
    for _ in range(200):
        listening = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
        if listening.strip():
            return
        await asyncio.sleep(0.05)
    raise CaptureError(f"nothing listens on {port}")


async def tls13_openssl_chacha20() -> None:
    await openssl_capture(
        "tls13_openssl_chacha20",
        "openssl s_client and s_server, TLS 1.3 TLS_CHACHA20_POLY1305_SHA256, ALPN http/1.1, carrying a hand-written"
        " WebSocket upgrade and frames: text both ways, 30 KB and 70 KB binary, close both ways.",
        "TLS_CHACHA20_POLY1305_SHA256",
    )


async def tls13_openssl_ccm() -> None:
    await openssl_capture(
        "tls13_openssl_ccm",
        "openssl s_client and s_server, TLS 1.3 TLS_AES_128_CCM_SHA256, ALPN http/1.1, carrying a hand-written"
        " WebSocket upgrade and frames: text both ways, 30 KB and 70 KB binary, close both ways.",
        "TLS_AES_128_CCM_SHA256",
    )


async def tls13_openssl_early_data() -> None:
    await openssl_capture(
        "tls13_openssl_early_data",
        "openssl s_client and s_server (-early_data), TLS 1.3 TLS_AES_256_GCM_SHA384, ALPN http/1.1: session 1 a"
        " full handshake saving its session; session 2 resumes it (PSK) and sends the WebSocket Upgrade request as"
        " 0-RTT early data (CLIENT_EARLY_TRAFFIC_SECRET logged), then frames as in the other openssl captures.",
        "TLS_AES_256_GCM_SHA384",
        resume=True,
        server_options=("-early_data",),
    )


async def tls12_openssl_resumption() -> None:
    """openssl s_client and s_server over TLS 1.2: a full handshake with a client-initiated renegotiation in the
    middle of the WebSocket session, then session ticket resumption (RFC 5077), then a full handshake without
    tickets and its session id resumption (RFC 5246 7.3)."""
    name, port = "tls12_openssl_resumption", PORTS["tls12_openssl_resumption"]
    rng = random.Random(name)
    netloc = endpoint((LOCALHOST, port))
    with tempfile.TemporaryDirectory() as tmp:
        keys, ticket, session_id = Path(tmp) / "keys.log", Path(tmp) / "ticket.pem", Path(tmp) / "id.pem"
        cert, key = make_certificate(Path(tmp))
        server_command = [
            "openssl", "s_server", "-accept", f"{LOCALHOST}:{port}", "-cert", str(cert), "-key", str(key), "-quiet",
            "-naccept", "4", "-tls1_2", "-client_renegotiation", "-alpn", "http/1.1",
        ]  # fmt: skip
        client_command = [
            "openssl", "s_client", "-connect", f"{LOCALHOST}:{port}", "-brief", "-tls1_2",
            "-cipher", "ECDHE-RSA-CHACHA20-POLY1305", "-keylogfile", str(keys), "-servername", SNI,
            "-alpn", "http/1.1",
        ]  # fmt: skip
        quiet = [*client_command, "-nocommands"]
        plan = [
            ("/renegotiate", [*client_command, "-sess_out", str(ticket)], True, False),
            ("/ticket", [*quiet, "-sess_in", str(ticket)], False, True),
            ("/full", [*quiet, "-no_ticket", "-sess_out", str(session_id)], False, False),
            ("/session-id", [*quiet, "-no_ticket", "-sess_in", str(session_id)], False, True),
        ]
        sessions = []
        async with Capture(HERE / f"{name}.pcap", port):
            server = await asyncio.create_subprocess_exec(
                *server_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                await wait_for_port(port)
                for path, command, renegotiate, resumed in plan:
                    session = await openssl_conversation(
                        server, command, netloc, path, rng, path.strip("/"), renegotiate=renegotiate
                    )
                    session.tls = {
                        "version": "TLS 1.2",
                        "cipher": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                        "sni": SNI,
                        "alpn": "http/1.1",
                        "resumed": resumed,
                    }
                    sessions.append(session)
                await asyncio.wait_for(server.wait(), READY_TIMEOUT)
            finally:
                if server.returncode is None:
                    server.kill()
                    await server.wait()
        syns = [p for p in read_packets(HERE / f"{name}.pcap")[1] if p.flags & dpkt.tcp.TH_SYN and not p.flags & 16]
        for session, syn in zip(sessions, syns, strict=True):
            session.client, session.server = syn.src, syn.dst
        lines = keys.read_bytes().count(b"CLIENT_RANDOM")
        if lines != 5:  # four handshakes and the renegotiation
            raise CaptureError(f"{name}: {lines} CLIENT_RANDOM lines, expected 5")
        finish(
            name,
            "openssl s_client and s_server, TLS 1.2 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, ALPN http/1.1: session"
            " 1 renegotiates (s_client 'R') between two WebSocket frames; session 2 resumes session 1 by its ticket;"
            " session 3 is a full handshake without tickets, resumed by its session id in session 4.",
            sessions,
            keys,
            port,
        )


async def tls13_chromium() -> None:
    """Headless Chromium, with SSLKEYLOGFILE, runs a page whose script opens a wss:// WebSocket to a websockets
    server (no compression). Chromium sends no SNI for an IP address (RFC 6066 3)."""
    name, port = "tls13_chromium", PORTS["tls13_chromium"]
    browser = shutil.which("chromium")
    if browser is None:
        print(f"  {name} skipped: chromium is not installed (Debian: apt-get install chromium)")
        return
    rng = random.Random(name)
    netloc = endpoint((LOCALHOST, port))
    exchanges: list[tuple[str | bytes, str | bytes]] = [
        ("hello from chromium over TLS", "hello, browser"),
        ("ünïcödé 🌍 from the browser", b"binary from the server " + bytes(range(64))),
        (rng.randbytes(3000), "got your bytes"),
        ("x" * 40_000, rng.randbytes(60_000)),
    ]
    sent = [{"text": m} if isinstance(m, str) else {"data": base64.b64encode(m).decode()} for m, _ in exchanges]
    # The page comes over plain http from another port, outside the capture: over https its connection would end
    # with Chromium's RST before the server's FIN (asyncio waits for a close_notify the browser never sends).
    page_port = port + 100
    page = CHROMIUM_PAGE.replace("STEPS", json.dumps(sent).replace("</", "<\\/"))
    page = page.replace("ws://${location.host}", f"wss://{netloc}")
    finished: asyncio.Future[TlsSession] = asyncio.get_running_loop().create_future()

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
            request = connection.request
            assert request is not None
            session = TlsSession(endpoint(connection.remote_address), netloc, request.headers["Host"], request.path)
            ssl_object = connection.transport.get_extra_info("ssl_object")
            session.tls = tls_fields(ssl_object, ssl_object.cipher()[0]) | {"sni": None}
            for message, reply in exchanges:
                received = await connection.recv()
                if received != message:
                    raise CaptureError(f"chromium sent {received!r:.60}, expected {message!r:.60}")
                session.messages.append(data_entry(C2S, message))
                session.messages.append(data_entry(S2C, reply))
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
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.log"
        server_ctx, _ = contexts(Path(tmp), keys)
        profile = Path(tmp) / "profile"
        async with (
            Capture(pcap, port),
            serve_plain(handler, LOCALHOST, port, ssl=server_ctx),
            serve_plain(handler, LOCALHOST, page_port, process_request=respond),
        ):
            chromium = await asyncio.create_subprocess_exec(
                browser,
                *CHROMIUM_FLAGS,
                "--ignore-certificate-errors",
                f"--user-data-dir={profile}",
                f"http://{endpoint((LOCALHOST, page_port))}/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "SSLKEYLOGFILE": str(keys)},
            )
            try:
                session = await asyncio.wait_for(finished, 60)
            finally:
                # Headless chromium keeps running once the page is done; its sockets close as it exits.
                if chromium.returncode is None:
                    chromium.terminate()
                await asyncio.wait_for(chromium.wait(), READY_TIMEOUT)
        finish(
            name,
            "Headless Chromium (SSLKEYLOGFILE) loads a page (plain http, another port, not captured) whose script"
            " opens wss:// to a websockets server (TLS 1.3, ALPN http/1.1, no compression): texts, unicode, binary"
            " both ways, a 40 KB text and a 60 KB binary; the page closes with 1000 'browser done'. No SNI: the URL"
            " names an IP address.",
            [session],
            keys,
            port,
        )


CAPTURES: dict[str, Callable[[], Awaitable[None]]] = {
    "tls13_websockets": tls13_websockets,
    "tls12_aiohttp_gcm": tls12_aiohttp_gcm,
    "tls12_websockets_cbc": tls12_websockets_cbc,
    "tls13_openssl_chacha20": tls13_openssl_chacha20,
    "tls13_openssl_ccm": tls13_openssl_ccm,
    "tls13_openssl_early_data": tls13_openssl_early_data,
    "tls12_openssl_resumption": tls12_openssl_resumption,
    "tls13_chromium": tls13_chromium,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=CAPTURES, action="append", help="make only this capture (repeatable)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make_tls_captures.py needs root: tcpdump captures on the loopback interface")
    for name in args.only or CAPTURES:
        print(f"{name} ...", flush=True)
        asyncio.run(asyncio.wait_for(CAPTURES[name](), CAPTURE_TIMEOUT))


if __name__ == "__main__":
    main()
