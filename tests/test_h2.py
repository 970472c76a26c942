"""The HTTP/2 layer (wsinspect.h2) over transcripts made by the h2 library, fed whole, byte by byte and with gaps;
hand-made bytes only for what no real peer sends. Real captures: tests/test_h2_captures.py."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection as LibConnection
from h2.errors import ErrorCodes
from h2.events import DataReceived
from h2.settings import SettingCodes
from hpack import Encoder

from wsinspect.h2 import (
    PREFACE,
    ConnectionEnded,
    H2Connection,
    H2Event,
    H2Finding,
    Start,
    StreamEnded,
    WsData,
    WsJoined,
    WsRequest,
    WsResponse,
    find_frame_header,
    looks_like_h2,
)
from wsinspect.issues import Issue

C, S = 0, 1  # directions in the transcripts: the client is direction 0


def ws_frame(opcode: int, payload: bytes, *, masked: bool, fin: bool = True) -> bytes:
    """An RFC 6455 5.2 frame, masked with a fixed key when the client sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mask = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask | n])
    elif n < 0x10000:
        head += bytes([mask | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = b"\x37\xfa\x21\x3d"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass
class Transcript:
    """What both peers wrote, in order, and the WebSocket bytes each stream carried per direction."""

    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    ws: dict[tuple[int, int], bytearray] = field(default_factory=dict)


class Pair:
    """An h2 client and server exchanging bytes in memory; every write is recorded."""

    def __init__(self, *, enable_connect: bool = True) -> None:
        self.t = Transcript()
        self.client = LibConnection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.server = LibConnection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.client.initiate_connection()
        self.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        self.server.initiate_connection()
        settings = {SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
        if enable_connect:
            settings[SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        self.server.update_settings(settings)
        self.pump()
        self.client.increment_flow_control_window(1 << 24)
        self.server.increment_flow_control_window(1 << 24)
        self.pump()

    def pump(self) -> None:
        while True:
            moved = False
            for d, src, dst in ((C, self.client, self.server), (S, self.server, self.client)):
                data = src.data_to_send()
                if data:
                    moved = True
                    self.t.chunks.append((d, data))
                    for ev in dst.receive_data(data):
                        # Flow control (RFC 9113 6.9): the receiver hands back what it read as WINDOW_UPDATEs.
                        if isinstance(ev, DataReceived) and ev.flow_controlled_length:
                            dst.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if not moved:
                return

    def connect(self, path: str, extra: Iterable[tuple[str, str]] = ()) -> int:
        sid = self.client.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "example.test"),
            ("sec-websocket-version", "13"),
            *extra,
        ]
        self.client.send_headers(sid, headers)
        self.pump()
        return sid

    def get(self, path: str, body: bytes = b"") -> int:
        sid = self.client.get_next_available_stream_id()
        self.client.send_headers(
            sid,
            [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "example.test")],
            end_stream=True,
        )
        self.pump()
        self.server.send_headers(sid, [(":status", "200"), ("content-type", "text/html")])
        body = body or b"<html>" + b"x" * 3000 + b"</html>"
        for i in range(0, len(body), 16384):
            self.server.send_data(sid, body[i : i + 16384], end_stream=i + 16384 >= len(body))
        self.pump()
        return sid

    def respond(self, sid: int, status: int, body: bytes = b"") -> None:
        self.server.send_headers(sid, [(":status", str(status))], end_stream=status != 200 and not body)
        if body:
            self.server.send_data(sid, body, end_stream=True)
        self.pump()

    def send_ws(self, d: int, sid: int, data: bytes, *, pad: int | None = None, end_stream: bool = False) -> None:
        self.t.ws.setdefault((sid, d), bytearray()).extend(data)
        (self.client if d == C else self.server).send_data(sid, data, pad_length=pad, end_stream=end_stream)
        self.pump()


def rich(seed: int = 17) -> Pair:
    """Three WebSocket streams and ordinary GETs interleaved, padding, a 100 KB message over many DATA frames of
    two streams, PING, PRIORITY, a refused CONNECT, RST_STREAM, END_STREAM and GOAWAY."""
    rng = random.Random(seed)
    p = Pair()
    a = p.connect("/chat?room=1", [("sec-websocket-protocol", "chat.v1")])
    p.get("/index.html")
    b = p.connect("/feed", [("sec-websocket-extensions", "permessage-deflate")])
    p.respond(a, 200)
    p.respond(b, 200)
    refused = p.connect("/forbidden")
    p.respond(refused, 403, b"no websockets here")
    p.get("/app.js", bytes(rng.randrange(256) for _ in range(20000)))
    p.send_ws(C, a, ws_frame(1, b"hello", masked=True), pad=10)
    p.send_ws(S, a, ws_frame(1, b"hello", masked=False))
    p.client.ping(b"12345678")
    p.client.prioritize(b, weight=200)
    p.pump()
    big_a = ws_frame(2, rng.randbytes(100_000), masked=True)
    big_b = ws_frame(2, rng.randbytes(100_000), masked=False)
    for i in range(0, 100_000, 3000):
        p.send_ws(C, a, big_a[i : i + 3000], pad=i % 7 or None)
        p.send_ws(S, b, big_b[i : i + 3000])
    p.send_ws(C, a, big_a[102_000:])
    p.send_ws(S, b, big_b[102_000:])
    p.get("/style.css")
    p.send_ws(C, b, ws_frame(1, b"bye", masked=True))
    p.client.reset_stream(b, ErrorCodes.CANCEL)
    p.pump()
    p.send_ws(C, a, ws_frame(8, b"\x03\xe8", masked=True), end_stream=True)
    p.send_ws(S, a, ws_frame(8, b"\x03\xe8", masked=False), end_stream=True)
    p.server.close_connection(ErrorCodes.NO_ERROR)
    p.pump()
    return p


RICH = rich()


def run(
    conn: H2Connection, chunks: Iterable[tuple[int, bytes | memoryview]], gaps: dict[int, int] | None = None
) -> list[H2Event]:
    events: list[H2Event] = []
    for i, (d, data) in enumerate(chunks):
        events += conn.feed(d, data, (gaps or {}).get(i, 0))
    events += conn.finish()
    return events


def byte_by_byte(chunks: list[tuple[int, bytes]]) -> Iterable[tuple[int, bytes]]:
    for d, data in chunks:
        for i in range(len(data)):
            yield d, data[i : i + 1]


def ws_bytes(events: list[H2Event]) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytearray] = {}
    for ev in events:
        if isinstance(ev, WsData):
            out.setdefault((ev.stream, ev.d), bytearray()).extend(ev.data)
    return {k: bytes(v) for k, v in out.items()}


def findings(events: list[H2Event]) -> list[Issue]:
    return [ev.issue for ev in events if isinstance(ev, H2Finding)]


@pytest.mark.parametrize("how", ["whole", "bytes"])
def test_rich_transcript(how: str) -> None:
    chunks = RICH.t.chunks if how == "whole" else list(byte_by_byte(RICH.t.chunks))
    conn = H2Connection(C)
    events = run(conn, chunks)
    assert findings(events) == []
    assert ws_bytes(events) == {k: bytes(v) for k, v in RICH.t.ws.items()}
    requests = [ev for ev in events if isinstance(ev, WsRequest)]
    assert [(r.stream, dict(r.headers)[":path"], r.reliable) for r in requests] == [
        (1, "/chat?room=1", True),
        (5, "/feed", True),
        (7, "/forbidden", True),
    ]
    assert dict(requests[0].headers)["sec-websocket-protocol"] == "chat.v1"
    responses = [(ev.stream, ev.status) for ev in events if isinstance(ev, WsResponse)]
    assert responses == [(1, 200), (5, 200), (7, 403)]
    ends = [(ev.stream, ev.d, ev.how) for ev in events if isinstance(ev, StreamEnded)]
    assert ends == [
        (7, S, "end_stream"),
        (5, C, "rst_stream"),
        (1, C, "end_stream"),
        (1, S, "end_stream"),
        (7, None, "eof"),
    ]
    goaway = [ev for ev in events if isinstance(ev, ConnectionEnded)]
    assert [(g.d, g.error_code) for g in goaway] == [(S, 0)]
    assert conn.requests == 3 and conn.websockets == 3
    assert conn.settings[S][8] == 1


def test_data_not_copied() -> None:
    """WebSocket bytes are slices of the fed buffers (no copy per DATA frame)."""
    conn = H2Connection(C)
    for d, data in RICH.t.chunks:
        for ev in conn.feed(d, data):
            if isinstance(ev, WsData):
                assert isinstance(ev.data, memoryview) and ev.data.obj is data


def test_gap_inside_data_payload() -> None:
    """A hole inside one DATA payload costs that stream exactly those bytes, nothing else."""
    # The longest client write carrying the 100 KB message: cut 500 bytes in its middle.
    index = max(range(len(RICH.t.chunks)), key=lambda i: len(RICH.t.chunks[i][1]) if RICH.t.chunks[i][0] == C else 0)
    d, data = RICH.t.chunks[index]
    chunks = [*RICH.t.chunks[:index], (d, data[:1000]), (d, data[1500:]), *RICH.t.chunks[index + 1 :]]
    events = run(H2Connection(C), chunks, {index + 1: 500})
    assert findings(events) == []
    gaps = [(ev.stream, ev.d, ev.gap) for ev in events if isinstance(ev, WsData) and ev.gap]
    assert gaps == [(1, C, 500)]
    got = ws_bytes(events)
    assert got[(5, S)] == bytes(RICH.t.ws[(5, S)])
    assert len(got[(1, C)]) == len(RICH.t.ws[(1, C)]) - 500


@pytest.mark.parametrize("seed", [17, 1, 2, 3])
def test_gap_across_frames_resyncs(seed: int) -> None:
    """A hole across frame boundaries: the direction finds the next frame header; its HPACK state counts as lost,
    the open streams of that direction get a gap, the other streams and direction go on untouched."""
    rich_pair = RICH if seed == 17 else rich(seed)
    chunks = list(byte_by_byte(rich_pair.t.chunks))
    # Drop 40 000 client bytes in the middle of the big message's frames.
    client_positions = [i for i, (d, _) in enumerate(chunks) if d == C]
    start = client_positions[len(client_positions) // 2]
    dropped = set(client_positions[client_positions.index(start) : client_positions.index(start) + 40_000])
    kept = [c for i, c in enumerate(chunks) if i not in dropped]
    after = next(i for i, c in enumerate(kept) if i >= start and c[0] == C)
    events = run(H2Connection(C), kept, {after: 40_000})
    assert findings(events) == [Issue.H2_HPACK_STATE_LOST]
    got = ws_bytes(events)
    assert got[(1, S)] == bytes(rich_pair.t.ws[(1, S)]) and got[(5, S)] == bytes(rich_pair.t.ws[(5, S)])
    # Stream 1's client bytes: a head, then (after the flagged gap) the rest, which ends as the truth ends.
    sent = bytes(rich_pair.t.ws[(1, C)])
    gap_events = [ev for ev in events if isinstance(ev, WsData) and ev.stream == 1 and ev.d == C and ev.gap]
    assert len(gap_events) == 1 and gap_events[0].gap == 40_000
    head = got[(1, C)][: got[(1, C)].index(bytes(gap_events[0].data))]
    assert sent.startswith(head) and sent.endswith(got[(1, C)][len(head) :])
    assert len(got[(1, C)]) < len(sent)
    assert any(isinstance(ev, StreamEnded) and ev.stream == 1 and ev.how == "end_stream" for ev in events)


def test_midstream_start() -> None:
    """A capture that starts after the preface and the first requests: DATA of the open WebSocket streams is taken
    from its first plausible frame (WsJoined), a stream whose HEADERS come later is still recognised."""
    p = Pair()
    a = p.connect("/early")
    p.respond(a, 200)
    p.send_ws(C, a, ws_frame(1, b"before the capture", masked=True))
    p.get("/page")
    cut = len(p.t.chunks)
    p.send_ws(S, a, ws_frame(1, b"joined", masked=False))
    p.send_ws(C, a, ws_frame(1, b"joined too", masked=True))
    p.get("/other")
    b = p.connect("/late")
    p.respond(b, 200)
    p.send_ws(C, b, ws_frame(2, b"\x00" * 300, masked=True))
    later = p.t.chunks[cut:]
    # Start the capture 3 bytes into a frame header, as a capture joining late does.
    later[0] = (later[0][0], later[0][1][3:])
    events = run(H2Connection(C, Start.MIDSTREAM), later)
    # Said once per direction, at its first header block; the decode failures it explains are not repeated.
    assert findings(events) == [Issue.H2_HPACK_STATE_LOST, Issue.H2_HPACK_STATE_LOST]
    # The /late CONNECT refers to table entries the capture missed (":protocol: websocket", ":authority"): it cannot
    # be decoded, so stream b too is recognised from its first DATA frame.
    assert [ev for ev in events if isinstance(ev, WsRequest)] == []
    joined = [(ev.stream, ev.d) for ev in events if isinstance(ev, WsJoined)]
    assert joined == [(a, C), (b, C)]
    got = ws_bytes(events)
    assert got[(a, C)] == ws_frame(1, b"joined too", masked=True)
    assert got[(b, C)] == bytes(p.t.ws[(b, C)])


def test_connect_without_setting() -> None:
    """RFC 8441 3: the client must not send an extended CONNECT unless the server sent
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (h2 refuses to, so the client's HEADERS are hand-encoded)."""
    p = Pair(enable_connect=False)
    block = Encoder().encode(
        [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"), (":authority", "x")]
    )
    headers = struct.pack("!I", len(block))[1:] + b"\x01\x05" + struct.pack("!I", 1) + block
    events = run(H2Connection(C), [*p.t.chunks, (C, headers)])
    assert findings(events) == [Issue.H2_CONNECT_WITHOUT_SETTING]
    assert [ev.stream for ev in events if isinstance(ev, WsRequest)] == [1]


def test_upgraded_h2c() -> None:
    """After a 101 to h2c (RFC 7540 3.2) stream 1 is the upgraded GET; the client still sends the preface."""
    client = LibConnection(H2Configuration(client_side=True))
    server = LibConnection(H2Configuration(client_side=False))
    settings_header = client.initiate_upgrade_connection()
    server.initiate_upgrade_connection(settings_header)
    server.update_settings({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    chunks: list[tuple[int, bytes]] = []

    def pump() -> None:
        for _ in range(4):
            for d, src, dst in ((C, client, server), (S, server, client)):
                data = src.data_to_send()
                if data:
                    chunks.append((d, data))
                    dst.receive_data(data)

    pump()
    server.send_headers(1, [(":status", "200")])
    server.send_data(1, b"upgraded response", end_stream=True)
    client.send_headers(
        3,
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/ws"),
            (":authority", "x"),
        ],
    )
    pump()
    server.send_headers(3, [(":status", "200")])
    server.send_data(3, ws_frame(1, b"hi", masked=False))
    pump()
    conn = H2Connection(C, Start.UPGRADED, http2_settings=settings_header.decode())
    events = run(conn, chunks)
    assert findings(events) == []
    assert ws_bytes(events) == {(3, S): ws_frame(1, b"hi", masked=False)}
    assert conn.requests == 1 and conn.websockets == 1


def test_upgraded_h2c_settings_malformed() -> None:
    conn = H2Connection(C, Start.UPGRADED, http2_settings="AAMAAABk!")  # not base64url
    assert findings(conn.feed(C, PREFACE)) == [Issue.H2_FRAME_MALFORMED]
    conn = H2Connection(C, Start.UPGRADED, http2_settings="AAMAAABkAAQ")  # 11 bytes: not a multiple of 6
    assert findings(conn.feed(C, PREFACE)) == [Issue.H2_FRAME_MALFORMED]
    conn = H2Connection(C, Start.UPGRADED, http2_settings="AAEAAAgA")  # HEADER_TABLE_SIZE 2048
    assert findings(conn.feed(C, PREFACE)) == [] and conn.settings[C] == {1: 2048}


def test_server_push_is_an_ordinary_request() -> None:
    p = Pair()
    p.client.send_headers(
        1, [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")], end_stream=True
    )
    p.pump()
    p.server.push_stream(1, 2, [(":method", "GET"), (":scheme", "http"), (":path", "/pushed.css"), (":authority", "x")])
    p.server.send_headers(2, [(":status", "200")])
    p.server.send_data(2, b"body{}", end_stream=True)
    p.server.send_headers(1, [(":status", "200")], end_stream=True)
    p.pump()
    conn = H2Connection(C)
    events = run(conn, p.t.chunks)
    assert findings(events) == [] and ws_bytes(events) == {}
    assert conn.requests == 2


# -- looks_like_h2, find_frame_header -----------------------------------------------------------------------------


def test_looks_like_h2() -> None:
    assert looks_like_h2(PREFACE + b"\x00\x00")
    assert looks_like_h2(PREFACE[:5])
    assert not looks_like_h2(b"")
    assert not looks_like_h2(b"GET / HTTP/1.1\r\n")
    assert not looks_like_h2(b"PRI * HTTP/1.1")


def test_find_frame_header() -> None:
    server_bytes = b"".join(data for d, data in RICH.t.chunks if d == S)
    assert find_frame_header(server_bytes) == 0
    assert find_frame_header(b"\xff" * 5 + server_bytes) == 5
    assert find_frame_header(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == -1


# -- hand-made damage -----------------------------------------------------------------------------------------------


def frame(typ: int, flags: int, stream: int, body: bytes) -> bytes:
    return struct.pack("!I", len(body))[1:] + bytes([typ, flags]) + struct.pack("!I", stream) + body


SETTINGS_EMPTY = frame(4, 0, 0, b"")
SERVER_ENABLE = frame(4, 0, 0, struct.pack("!HI", 8, 1))


def connect_block(stream: int, end_headers: bool = True) -> bytes:
    block = Encoder().encode(
        [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/"), (":authority", "x")]
    )
    return frame(1, 0x4 if end_headers else 0, stream, block)


def start() -> tuple[H2Connection, list[H2Event]]:
    conn = H2Connection(C)
    events = conn.feed(C, PREFACE + SETTINGS_EMPTY) + conn.feed(S, SERVER_ENABLE)
    return conn, events


@pytest.mark.parametrize(
    ("data", "issue"),
    [
        (frame(6, 0, 0, b"1234"), Issue.H2_FRAME_MALFORMED),  # PING of 4 bytes (RFC 9113 6.7)
        (frame(0, 0, 0, b"x"), Issue.H2_FRAME_MALFORMED),  # DATA on stream 0 (RFC 9113 6.1)
        (frame(0, 0x8, 1, b"\x05ab"), Issue.H2_FRAME_MALFORMED),  # padding longer than the frame
        (frame(1, 0x4, 0, b"\x82"), Issue.H2_FRAME_MALFORMED),  # HEADERS on stream 0
        (frame(8, 0, 0, b"\x00\x00\x00\x00"), Issue.H2_FRAME_MALFORMED),  # WINDOW_UPDATE of 0 (RFC 9113 6.9)
        (frame(1, 0x4, 1, b"\xbf\x7f"), Issue.H2_HPACK_FAILED),  # index far past the tables (RFC 7541 2.3.3)
        (frame(0, 0, 1, b"x" * 20000), Issue.H2_FRAME_TOO_LARGE),  # over the default 16384 (RFC 9113 4.2)
        (frame(9, 0x4, 1, b"\x82"), Issue.H2_FRAME_MALFORMED),  # CONTINUATION without HEADERS
    ],
)
def test_malformed_frames(data: bytes, issue: Issue) -> None:
    conn, events = start()
    events += conn.feed(C, data)
    # The connection carries on: a valid extended CONNECT after the bad frame is still understood.
    events += conn.feed(C, connect_block(3))
    assert issue in findings(events)
    assert [ev.stream for ev in events if isinstance(ev, WsRequest)] == [3]


def test_continuation_interrupted() -> None:
    conn, events = start()
    events += conn.feed(C, connect_block(1, end_headers=False) + frame(6, 0, 0, b"12345678") + connect_block(3))
    assert findings(events) == [Issue.H2_CONTINUATION_EXPECTED, Issue.H2_HPACK_STATE_LOST]
    # The block that followed is decoded, but from a table that may lack the lost block's insertions.
    assert [(ev.stream, ev.reliable) for ev in events if isinstance(ev, WsRequest)] == [(3, False)]


def test_preface_invalid_and_settings_not_first() -> None:
    conn = H2Connection(C)
    events = conn.feed(C, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS_EMPTY + frame(6, 0, 0, b"12345678"))
    events += conn.feed(S, frame(6, 0, 0, b"12345678"))
    assert findings(events) == [Issue.H2_PREFACE_INVALID, Issue.H2_SETTINGS_NOT_FIRST]


def test_hpack_bomb_is_bounded() -> None:
    """A 4 KB dynamic-table entry referenced thousands of times (RFC 7541 7.3): a small block that would decode to
    tens of megabytes. It is cut at the header list bound and flagged, and the connection carries on."""
    conn, events = start()
    big = Encoder()
    block = big.encode([("x-bomb", "a" * 4000)])  # inserted into the dynamic table
    bomb = block + b"\xbe" * 10_000  # index 62: the entry just inserted
    events += conn.feed(C, frame(1, 0x5, 1, bomb[:16000]) if len(bomb) <= 16000 else frame(1, 0x1, 1, bomb[:16000]))
    if len(bomb) > 16000:
        events += conn.feed(C, frame(9, 0x4, 1, bomb[16000:]))
    assert Issue.H2_HEADER_LIST_TOO_LARGE in findings(events)


def test_header_block_over_the_bound_over_continuations() -> None:
    conn_small = H2Connection(C, max_header_list_size=1000)
    events = conn_small.feed(C, PREFACE + SETTINGS_EMPTY) + conn_small.feed(S, SERVER_ENABLE)
    events += conn_small.feed(C, frame(1, 0, 1, b"\x82" * 600) + frame(9, 0, 1, b"\x82" * 600))
    assert findings(events) == [Issue.H2_HEADER_LIST_TOO_LARGE]


def test_truncated_at_finish() -> None:
    conn, events = start()
    events += conn.feed(C, connect_block(1)[:-1])
    events += conn.finish()
    assert findings(events) == [Issue.H2_FRAME_MALFORMED]


def test_random_damage_never_raises() -> None:
    """Bytes dropped, flipped and cut anywhere: no exception, and what goes up as WebSocket bytes is never more
    than was fed (a flipped payload bit is not HTTP/2's to see: the frame layer above may)."""
    rng = random.Random(8441)
    for _ in range(40):
        conn = H2Connection(C)
        events: list[H2Event] = []
        fed = 0
        for d, data in RICH.t.chunks:
            data = bytearray(data)
            if rng.random() < 0.2 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            gap = 0
            if rng.random() < 0.1 and len(data) > 10:
                cut = rng.randrange(len(data))
                gap, data = cut, data[cut:]
            fed += len(data)
            events += conn.feed(d, bytes(data), gap)
        events += conn.finish()
        assert sum(len(ev.data) for ev in events if isinstance(ev, WsData)) <= fed


def test_random_bytes_never_raise() -> None:
    rng = random.Random(1)
    for start_mode in Start:
        conn = H2Connection(C, start_mode)
        for _ in range(200):
            conn.feed(rng.randrange(2), rng.randbytes(rng.randrange(1, 200)))
        events = conn.finish()
        assert all(not isinstance(ev, WsData) or len(ev.data) for ev in events)


def test_flow_control_windows() -> None:
    """RFC 9113 6.9: DATA past the granted windows is a finding; WINDOW_UPDATE and SETTINGS_INITIAL_WINDOW_SIZE
    give room. The client may send 65535 bytes on the connection and on stream 1 at first."""
    conn, events = start()
    events += conn.feed(S, frame(4, 0x1, 0, b""))  # SETTINGS ACK
    events += conn.feed(C, connect_block(1))
    chunk = frame(0, 0, 1, b"\x00" * 16000)
    events += conn.feed(C, chunk * 4)  # 64 000 bytes: within both windows
    assert findings(events) == []
    # The server grants 20 000 more on the connection only: the stream's window is what runs out.
    events += conn.feed(S, frame(8, 0, 0, struct.pack("!I", 20_000)))
    events += conn.feed(C, chunk)
    assert [(ev.issue, ev.stream) for ev in events if isinstance(ev, H2Finding)] == [
        (Issue.H2_FLOW_CONTROL_EXCEEDED, 1)
    ]
    # A larger initial window (applied to the open stream, RFC 9113 6.9.2) and a connection update: room again.
    conn, events = start()
    events += conn.feed(C, connect_block(1))
    events += conn.feed(S, frame(4, 0, 0, struct.pack("!HI", 4, 1 << 20)) + frame(8, 0, 0, struct.pack("!I", 1 << 20)))
    events += conn.feed(C, chunk * 8)
    assert findings(events) == []
    # 1 120 000 bytes in all: past the stream's 1 MiB (at 1 056 000), then the connection's 65535 + 1 MiB.
    events += conn.feed(C, chunk * 62)
    assert [(ev.issue, ev.stream) for ev in events if isinstance(ev, H2Finding)] == [
        (Issue.H2_FLOW_CONTROL_EXCEEDED, 1),
        (Issue.H2_FLOW_CONTROL_EXCEEDED, 0),
    ]
