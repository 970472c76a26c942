"""wsinspect.h2 over the real HTTP/2 captures in captures/h2 (made by captures/make_h2_captures.py): the WebSocket
bytes of each stream must be what the peers sent, and tshark must see the same HTTP/2 streams and headers."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import dpkt
import pytest

from wsinspect.h2 import PREFACE, H2Connection, H2Event, H2Finding, Start, StreamEnded, WsData, WsRequest, WsResponse

H2_CAPTURES = Path(__file__).resolve().parent.parent / "captures" / "h2"
TRUTHS = sorted(H2_CAPTURES.glob("*.truth.json"))


def tcp_chunks(path: Path) -> list[tuple[int, bytes]]:
    """The payload bytes of the capture's one TCP connection in capture order, as (direction, bytes) with
    direction 0 the side that sent the SYN. The make script checked that nothing is missing."""
    chunks: list[tuple[int, bytes]] = []
    client: tuple[bytes, int] | None = None
    next_seq: dict[int, int] = {}
    with path.open("rb") as f:
        for _, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            src = (bytes(ip.src), tcp.sport)
            if tcp.flags & dpkt.tcp.TH_SYN:
                if not tcp.flags & dpkt.tcp.TH_ACK:
                    client = src
                next_seq[0 if src == client else 1] = tcp.seq + 1
                continue
            d = 0 if src == client else 1
            payload = bytes(tcp.data)
            if not payload:
                continue
            # Retransmissions: keep only bytes past what was delivered.
            skip = (next_seq[d] - tcp.seq) % 2**32
            if skip >= len(payload):
                continue
            chunks.append((d, payload[skip:]))
            next_seq[d] = (tcp.seq + len(payload)) % 2**32
    return chunks


def tls_chunks(path: Path, keylog: Path) -> list[tuple[int, bytes]]:
    """The decrypted application bytes of the capture's one TLS connection, as tshark's "follow,tls,raw" gives
    them (until wsinspect decrypts TLS itself): a line per record, one node's lines indented by a tab; the client's
    are those of the node that sent the preface (the server may speak first: its SETTINGS)."""
    command = ["tshark", "-r", str(path), "-o", f"tls.keylog_file:{keylog}", "-q", "-z", "follow,tls,raw,0"]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Node 1:")) + 1
    raw = []
    for line in lines[start:]:
        if line.startswith("="):
            break
        raw.append((line.startswith("\t"), bytes.fromhex(line.strip())))
    client_indented = next(indented for indented, data in raw if data.startswith(PREFACE))
    return [(0 if indented == client_indented else 1, data) for indented, data in raw]


def decode(path: Path, truth: dict[str, Any]) -> tuple[H2Connection, list[H2Event]]:
    """Feed the capture to an H2Connection. After an h2c upgrade, the HTTP/1.1 heads are left out of each
    direction, as the core will hand over the bytes after them."""
    upgrade = truth.get("upgrade")
    if upgrade is None:
        conn = H2Connection(0)
        left = [0, 0]
    else:
        conn = H2Connection(0, Start.UPGRADED, http2_settings=upgrade["http2_settings"])
        left = [upgrade["client_head"], upgrade["server_head"]]
    events: list[H2Event] = []
    keylog = truth.get("keylog")
    for d, data in tls_chunks(path, path.parent / keylog) if keylog else tcp_chunks(path):
        cut = min(left[d], len(data))
        left[d] -= cut
        if data[cut:]:
            events += conn.feed(d, data[cut:])
    events += conn.finish()
    return conn, events


def ws_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(fin+rsv+opcode byte, opcode, unmasked payload) of RFC 6455 frames."""
    out = []
    p = 0
    while p < len(data):
        b0, b1 = data[p], data[p + 1]
        n, p = b1 & 0x7F, p + 2
        if n == 126:
            n, p = int.from_bytes(data[p : p + 2], "big"), p + 2
        elif n == 127:
            n, p = int.from_bytes(data[p : p + 8], "big"), p + 8
        key = b""
        if b1 & 0x80:
            key, p = data[p : p + 4], p + 4
        payload = data[p : p + n]
        if key:
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        out.append((b0, b0 & 0x0F, payload))
        p += n
    return out


def messages(data: bytes, direction: str, deflate: bool) -> list[dict[str, Any]]:
    """Truth-file records of the messages in one direction's WebSocket bytes (permessage-deflate inflated,
    RFC 7692 7.2.2, with context takeover)."""
    inflater = zlib.decompressobj(-15)
    out: list[dict[str, Any]] = []
    parts: list[bytes] = []
    first = 0
    for b0, opcode, payload in ws_frames(data):
        if opcode:
            first = b0
        parts.append(payload)
        if not b0 & 0x80:
            continue
        body = b"".join(parts)
        parts = []
        if deflate and first & 0x40:
            body = inflater.decompress(body + b"\x00\x00\xff\xff")
        op = first & 0x0F if opcode == 0 else opcode
        record: dict[str, Any] = {"dir": direction, "opcode": {1: "text", 2: "binary", 8: "close"}[op]}
        if op == 8:
            record["close_code"] = int.from_bytes(body[:2], "big")
            record["close_reason"] = body[2:].decode()
        elif len(body) > 4096:
            record |= {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        elif op == 1:
            record["text"] = body.decode()
        else:
            record["data"] = base64.b64encode(body).decode()
        out.append(record)
    return out


def extension_names(header: str) -> list[str]:
    return [item.split(";")[0].strip().lower() for item in header.split(",") if item.strip()]


def strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "auto"}


@pytest.mark.parametrize("truth_path", TRUTHS, ids=[p.name.removesuffix(".truth.json") for p in TRUTHS])
def test_capture_against_truth(truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text())
    if "keylog" in truth and shutil.which("tshark") is None:
        pytest.skip("decrypting TLS needs tshark until wsinspect decrypts it")
    conn, events = decode(H2_CAPTURES / truth["capture"], truth)
    assert [ev for ev in events if isinstance(ev, H2Finding)] == []
    requests = {ev.stream: dict(ev.headers) for ev in events if isinstance(ev, WsRequest)}
    responses = {ev.stream: ev for ev in events if isinstance(ev, WsResponse)}
    data: dict[tuple[int, int], bytearray] = {}
    for ev in events:
        if isinstance(ev, WsData):
            assert ev.gap == 0
            data.setdefault((ev.stream, ev.d), bytearray()).extend(ev.data)
    by_path = {headers[":path"]: sid for sid, headers in requests.items()}
    assert sorted(by_path) == sorted(ws["path"] for ws in truth["websockets"])
    for ws in truth["websockets"]:
        sid = by_path[ws["path"]]
        assert ws.get("stream", sid) == sid  # (a browser's stream ids are not known in advance)
        assert responses[sid].status == ws["status"]
        c2s, s2c = bytes(data.get((sid, 0), b"")), bytes(data.get((sid, 1), b""))
        if ws["c2s_sha256"] is not None:
            # The client's frames exactly as it wrote them.
            assert (len(c2s), hashlib.sha256(c2s).hexdigest()) == (ws["c2s_length"], ws["c2s_sha256"])
        # Both directions decoded into the messages the peers logged (inflated where the response agreed to it).
        accepted = dict(responses[sid].headers).get("sec-websocket-extensions", "")
        assert (
            extension_names(accepted) == [e.partition(";")[0] for e in ws.get("extensions", [])]
            or "extensions" not in ws
        )
        deflate = "permessage-deflate" in extension_names(accepted)
        got = messages(c2s, "c2s", deflate) + messages(s2c, "s2c", deflate)
        assert [strip(m) for m in got] == [strip(m) for m in ws["messages"]]
    if "ordinary_requests" in truth:
        assert conn.requests == truth["ordinary_requests"]
    assert conn.websockets == len(truth["websockets"])
    refused = [by_path[ws["path"]] for ws in truth["websockets"] if not 200 <= ws["status"] < 300]
    ended = {(ev.stream, ev.d, ev.how) for ev in events if isinstance(ev, StreamEnded)}
    for sid in refused:
        assert (sid, 1, "end_stream") in ended


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=[p.name.removesuffix(".truth.json") for p in TRUTHS])
def test_tshark_sees_the_same_streams(truth_path: Path) -> None:
    """tshark 4.0 decodes HTTP/2 (not the WebSocket inside): the HEADERS it shows per stream must be ours."""
    truth = json.loads(truth_path.read_text())
    port = truth["server"].rpartition(":")[2]
    # After an h2c upgrade, tshark's HTTP/1.1 dissector hands over to HTTP/2 itself (RFC 7540 3.2).
    protocol = "http" if "upgrade" in truth else "http2"
    command = ["tshark", "-r", str(H2_CAPTURES / truth["capture"]), "-d", f"tcp.port=={port},{protocol}"]
    if "keylog" in truth:
        command = [
            "tshark",
            "-r",
            str(H2_CAPTURES / truth["capture"]),
            "-o",
            f"tls.keylog_file:{H2_CAPTURES / truth['keylog']}",
        ]
    command += ["-Y", "http2.type == 1", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    command += ["-e", "http2.streamid", "-e", "http2.header.name", "-e", "http2.header.value"]
    fields = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    theirs = []
    for line in fields.splitlines():
        stream, names, values = line.split("\t")
        headers = dict(zip(names.split("|"), values.split("|"), strict=True))
        if ":protocol" in headers:
            theirs.append((int(stream.split("|")[0]), headers[":path"]))
    _, events = decode(H2_CAPTURES / truth["capture"], truth)
    ours = [(ev.stream, dict(ev.headers)[":path"]) for ev in events if isinstance(ev, WsRequest)]
    assert theirs == ours and ours
