"""WebSockets over HTTP/2 (RFC 8441) through the Inspector: one session per extended CONNECT stream.

Transcripts are written by the h2 library on both sides (tests.test_h2.Pair) and sent as TCP segments
(tests.packets.Flow); the real captures are in captures/h2 (tests/test_captures.py)."""

from __future__ import annotations

import dataclasses
import random
import zlib
from pathlib import Path

import dpkt
import pytest
from h2.errors import ErrorCodes

from tests.conftest import CAPTURES, decode_file, decode_packets, messages, run_cli, summaries
from tests.packets import Flow, upgrade_request, upgrade_response
from tests.packets import ws_frame as ws11
from tests.test_h2 import C, Pair, S, ws_frame
from wsinspect.capture import open_capture
from wsinspect.h2 import PREFACE
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.packet import RawPacket
from wsinspect.session import Event, Options, SessionOpened, SessionSummary, SessionUpgraded

H2 = CAPTURES / "h2"


def flow(p: Pair, fin: bool = True) -> Flow:
    """The transcript of ``p`` as one TCP connection, each write its own segments."""
    f = Flow()
    f.handshake()
    for d, data in p.t.chunks:
        f.send(d, data)
    if fin:
        f.fin()
    return f


def by_stream(events: list[Event]) -> dict[int | None, SessionSummary]:
    return {s.stream: s for s in summaries(events)}


def payloads(events: list[Event], session: int, d: str) -> list[tuple[int, bytes]]:
    return [(m.opcode, m.payload) for m in messages(events) if m.session == session and m.dir == d]


def interleaved() -> tuple[Pair, int, int, int, bytes]:
    """Two WebSocket streams and GETs interleaved, a 100 KB message spread over DATA frames of both streams."""
    p = Pair()
    a = p.connect("/chat?room=1", [("sec-websocket-protocol", "chat.v1")])
    p.get("/index.html")
    b = p.connect("/feed")
    p.server.send_headers(a, [(":status", "200"), ("sec-websocket-protocol", "chat.v1")])
    p.respond(b, 200)
    big = random.Random(5).randbytes(100_000)
    frame_a, frame_b = ws_frame(2, big, masked=True), ws_frame(1, b"news " * 10, masked=False)
    for i in range(0, len(frame_a), 3000):
        p.send_ws(C, a, frame_a[i : i + 3000], pad=i % 5 or None)
        if i == 30_000:
            p.send_ws(S, b, frame_b)
            p.get("/app.js")
    p.send_ws(S, a, ws_frame(1, b"got it", masked=False))
    return p, a, b, len(frame_a), big


def test_interleaved_streams_are_sessions_numbered_as_recognised() -> None:
    p, a, b, _, big = interleaved()
    p.send_ws(C, a, ws_frame(8, b"\x03\xe8bye", masked=True), end_stream=True)
    p.send_ws(S, a, ws_frame(8, b"\x03\xe8bye", masked=False), end_stream=True)
    events = decode_packets(flow(p).packets)
    opened = [e for e in events if isinstance(e, SessionOpened)]
    assert [o.session for o in opened] == [1, 2]
    upgraded = [e for e in events if isinstance(e, SessionUpgraded)]
    assert [u.handshake.status for u in upgraded] == [200, 200]
    s = by_stream(events)
    assert sorted(s, key=str) == sorted([a, b], key=str)
    sa, sb = s[a], s[b]
    assert (sa.session, sb.session) == (1, 2)
    assert (sa.http_version, sa.stream, sa.host, sa.path, sa.status) == ("2", a, "example.test", "/chat?room=1", 200)
    assert sa.handshake.subprotocol == "chat.v1" and sa.handshake.accept_valid is None
    assert sa.handshake.request is not None and sa.handshake.request.get(":protocol") == "websocket"
    assert payloads(events, 1, "c2s") == [(2, big), (8, b"\x03\xe8bye")]
    assert payloads(events, 1, "s2c") == [(1, b"got it"), (8, b"\x03\xe8bye")]
    assert payloads(events, 2, "s2c") == [(1, b"news " * 10)]
    # Both sides ended stream a (RFC 9113 5.1) after Close frames; b stays open until the connection ends.
    assert sa.ended_by == "end_stream" and sa.close is not None and sa.close.code == 1000
    assert sb.ended_by == "fin" and sb.close is None
    assert sa.issue_count == sb.issue_count == 0
    # Output in packet order: b's message arrives while a's big one is still being sent.
    msgs = messages(events)
    assert [m.session for m in msgs if m.dir == "s2c" or m.opcode == 2][:2] == [2, 1]


def test_a_refused_connect_ends_rejected() -> None:
    p = Pair()
    sid = p.connect("/forbidden")
    p.respond(sid, 403, b"no websockets here")
    events = decode_packets(flow(p).packets)
    (s,) = summaries(events)
    assert (s.stream, s.status, s.ended_by, s.messages, s.handshake.accepted) == (sid, 403, "rejected", (0, 0), False)
    assert not messages(events)  # the error body is not taken for frames


def test_rst_stream_and_goaway_are_not_clean_ends() -> None:
    p = Pair()
    a = p.connect("/a")
    b = p.connect("/b")
    c = p.connect("/c")
    for sid in (a, b, c):
        p.respond(sid, 200)
    p.send_ws(C, a, ws_frame(1, b"x", masked=True))
    p.client.reset_stream(a, ErrorCodes.CANCEL)
    p.pump()
    p.send_ws(C, b, ws_frame(1, b"y", masked=True))
    # The server goes away having processed streams up to b: c is refused by the GOAWAY (RFC 9113 6.8),
    # b goes on until the connection ends.
    p.server.close_connection(ErrorCodes.NO_ERROR, last_stream_id=b)
    p.pump()
    events = decode_packets(flow(p).packets)
    s = by_stream(events)
    assert (s[a].ended_by, s[b].ended_by, s[c].ended_by) == ("rst_stream", "goaway", "goaway")
    assert all(x.close is None for x in s.values())
    assert payloads(events, s[a].session, "c2s") == [(1, b"x")]


def test_extended_connect_without_the_servers_setting_is_a_finding() -> None:
    p = Pair(enable_connect=False)
    sid = p.connect("/ws")
    p.respond(sid, 200)
    p.send_ws(C, sid, ws_frame(1, b"hi", masked=True))
    events = decode_packets(flow(p).packets)
    (s,) = summaries(events)
    assert Issue.H2_CONNECT_WITHOUT_SETTING in s.issues
    assert payloads(events, s.session, "c2s") == [(1, b"hi")]


def test_an_h2_connection_without_websockets_produces_nothing() -> None:
    p = Pair()
    for path in ("/", "/a.js", "/b.css"):
        p.get(path)
    assert decode_packets(flow(p).packets) == []


def test_permessage_deflate_negotiated_in_the_headers() -> None:
    p = Pair()
    sid = p.connect("/z", [("sec-websocket-extensions", "permessage-deflate")])
    p.server.send_headers(sid, [(":status", "200"), ("sec-websocket-extensions", "permessage-deflate")])
    p.pump()
    z = zlib.compressobj(wbits=-15)
    body = z.compress(b"squeeze me " * 50) + z.flush(zlib.Z_SYNC_FLUSH)
    frame = bytearray(ws_frame(1, body[:-4], masked=False))
    frame[0] |= 0x40  # RSV1: compressed (RFC 7692 6)
    p.send_ws(S, sid, bytes(frame))
    events = decode_packets(flow(p).packets)
    (m,) = messages(events)
    assert m.payload == b"squeeze me " * 50 and m.compressed and not m.issues


def test_h2c_after_an_upgrade() -> None:
    events = decode_file(H2 / "h2c_upgrade.pcap")
    (s,) = summaries(events)
    # Stream 1 is the upgraded GET (RFC 7540 3.2); the client's first extended CONNECT is stream 3.
    assert (s.http_version, s.stream, s.status, s.path) == ("2", 3, 200, "/echo/up")
    assert s.messages == (4, 4)


def _packets(path: Path) -> list[RawPacket]:
    reader = open_capture(str(path))
    try:
        return [dataclasses.replace(p, data=memoryview(bytes(p.data)), number=0) for p in reader]
    finally:
        reader.close()


def mixed() -> list[RawPacket]:
    """An HTTP/1.1 capture and an HTTP/2 one merged in time order (the second shifted to overlap the first)."""
    h1 = _packets(CAPTURES / "websockets_basic.pcap")
    h2 = _packets(H2 / "h2c_websockets.pcap")
    shift = h1[len(h1) // 3].ts - h2[0].ts
    h2 = [dataclasses.replace(p, ts=p.ts + shift) for p in h2]
    return sorted(h1 + h2, key=lambda p: p.ts)


def test_http11_and_http2_sessions_in_one_capture() -> None:
    events = decode_packets(mixed())
    sums = summaries(events)
    alone = summaries(decode_file(CAPTURES / "websockets_basic.pcap"))
    h2_alone = summaries(decode_file(H2 / "h2c_websockets.pcap"))
    assert sorted((s.http_version, s.stream, s.path, s.messages) for s in sums) == sorted(
        (s.http_version, s.stream, s.path, s.messages) for s in alone + h2_alone
    )
    assert {s.http_version for s in sums} == {"1.1", "2"}
    assert all(s.stream is None for s in sums if s.http_version == "1.1")
    assert [s.session for s in sums] != [] and sorted(s.session for s in sums) == list(range(1, len(sums) + 1))


def write_pcap(path: Path, packets: list[RawPacket]) -> None:
    with path.open("wb") as f:
        w = dpkt.pcap.Writer(f)
        for p in packets:
            w.writepkt(bytes(p.data), ts=p.ts)


def test_parallel_read_merges_several_sessions_per_connection(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    write_pcap(path, mixed())
    for extra in ([], ["--json"]):
        one = run_cli("read", "-j", "1", *extra, str(path))
        many = run_cli("read", "-j", "2", *extra, str(path))
        assert one.returncode == many.returncode == 0, many.stderr
        assert one.stdout == many.stdout
        assert b"HTTP/2 stream 5  200" in one.stdout or b'"stream":5' in one.stdout


@pytest.mark.parametrize("name", ["h2c_websockets", "h2c_upgrade", "mixed"])
def test_fast_lane_agrees_with_the_general_path_over_h2(name: str) -> None:
    packets = mixed() if name == "mixed" else _packets(H2 / f"{name}.pcap")
    general = decode_packets(packets, lane=False)
    assert decode_packets(packets) == general
    quiet = decode_packets(packets, Options(messages=False))
    assert quiet == [ev for ev in general if not isinstance(ev, Message)]


def test_joined_late_the_streams_are_found_by_their_data() -> None:
    packets = _packets(H2 / "h2c_websockets.pcap")
    full = {s.stream: s for s in summaries(decode_packets(packets))}
    # Start after the preface, the SETTINGS and the HEADERS (the first 20 packets): the HPACK state is lost, the
    # streams are taken for WebSockets from their DATA (h2.WsJoined), stream 5 inflated without its handshake.
    late = summaries(decode_packets(packets[20:]))
    assert [(s.stream, s.mid_stream, s.http_version) for s in late] == [(1, True, "2"), (5, True, "2")]
    assert [s.messages for s in late] == [full[1].messages, full[5].messages]
    assert [s.bytes for s in late] == [full[1].bytes, full[5].bytes]


def test_mutated_h2_captures_never_raise() -> None:
    rng = random.Random(8441)
    for name in ("h2c_websockets", "h2c_upgrade"):
        packets = _packets(H2 / f"{name}.pcap")
        for _ in range(12):
            damaged = []
            for p in packets:
                r = rng.random()
                if r < 0.03:
                    continue  # dropped: a TCP gap
                data = bytearray(p.data)
                if r < 0.10 and len(data) > 60:
                    for _ in range(rng.randrange(1, 6)):
                        data[rng.randrange(54, len(data))] = rng.randrange(256)
                damaged.append(dataclasses.replace(p, data=memoryview(bytes(data))))
            events = decode_packets(damaged)
            numbers = [e.session for e in events if isinstance(e, SessionOpened)]
            assert numbers == list(range(1, len(numbers) + 1))
            assert {s.session for s in summaries(events)} == set(numbers)


def test_an_http11_method_that_starts_like_the_preface_is_still_http() -> None:
    # "P" begins both the HTTP/2 preface and POST/PUT/PATCH: wait for more bytes before deciding.
    f = Flow()
    f.handshake()
    f.c(b"P", mss=1)
    f.c(b"UT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    f.c(upgrade_request("/ws"))
    f.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    f.s(upgrade_response())
    f.c(ws11(1, b"hi", mask=True))
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.http_version, s.stream, s.path) == ("1.1", None, "/ws")
    assert PREFACE.startswith(b"P")


def test_the_server_may_send_its_settings_before_the_client_preface() -> None:
    # Over TLS with ALPN h2 (RFC 9113 3.3) the server often speaks first; decrypted, those bytes reach the Inspector
    # before the client's preface and must wait for it rather than make the connection "not HTTP".
    p = Pair()
    sid = p.connect("/first")
    p.respond(sid, 200)
    p.send_ws(C, sid, ws_frame(1, b"after", masked=True))
    (d0, first), (d1, second) = p.t.chunks[:2]
    assert (d0, d1) == (C, S) and first.startswith(PREFACE) and second[3] == 0x4  # SETTINGS
    p.t.chunks[:2] = [(d1, second), (d0, first)]
    events = decode_packets(flow(p).packets)
    (s,) = summaries(events)
    assert (s.stream, s.path, s.status, s.issues) == (sid, "/first", 200, ())
    assert payloads(events, s.session, "c2s") == [(1, b"after")]


def test_late_h2_data_that_only_starts_like_a_frame_is_no_session() -> None:
    # Joined late, a stream's DATA is sniffed for a WebSocket frame; one tiny "frame" is too little to trust
    # (found by tests/test_foreign.py's property test).
    f = Flow()
    f.seq = [f.seq[0] + 1, f.seq[1] + 1]  # no SYN seen
    data = b"\x00\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x07\x00\x00\x00\x00\x00\x01\x00\x81\x00\x00\x00\x00\x00"
    f.c(data)
    f.s(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    f.fin()
    assert decode_packets(f.packets) == []
