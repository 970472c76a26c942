"""Other protocols are never taken for WebSocket.

A tool whose users grep its output for sessions cannot print sessions that are not
there: real captures of other protocols (captures/foreign/, from the tcpdump
project's test suite) and streams built like other protocols' (length-prefixed
binary, zero runs, TLS records, HTTP/2 frames, SSH banners), joined mid-stream or
from their start, give no session. Real WebSocket sessions joined mid-stream are
still found (test_captures.py, test_session.py), and trusted only on evidence.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CAPTURES, decode_file, decode_packets, messages, summaries
from tests.packets import Flow, ws_frame
from wsinspect.issues import Issue
from wsinspect.session import SessionOpened

FOREIGN = sorted(p for p in (CAPTURES / "foreign").iterdir() if ".pcap" in p.name)


@pytest.mark.parametrize("path", FOREIGN, ids=lambda p: p.name)
def test_no_session_in_other_protocols(path: Path) -> None:
    events = decode_file(path)
    assert summaries(events) == [] and messages(events) == []
    assert not any(isinstance(e, SessionOpened) for e in events)


def test_no_session_in_a_directory_of_other_protocols() -> None:
    """The whole tcpdump test suite, when WSINSPECT_FOREIGN_CAPTURES points at it."""
    where = os.environ.get("WSINSPECT_FOREIGN_CAPTURES")
    if not where:
        pytest.skip("WSINSPECT_FOREIGN_CAPTURES is not set")
    invented = []
    for path in sorted(Path(where).glob("*.pcap*")):
        try:
            events = decode_file(path)
        except Exception as exc:  # not a capture wsinspect reads: its own test says how it fails
            if exc.__class__.__name__.endswith("Error"):
                continue
            raise
        if summaries(events):
            invented.append(path.name)
    assert invented == []


def flow_of(client: bytes, server: bytes, *, from_start: bool, mss: int = 1448) -> Flow:
    """A connection carrying ``client`` and ``server`` bytes, alternating segments;
    captured from its SYN, or joined after it."""
    f = Flow()
    if from_start:
        f.handshake()
    else:
        f.seq = [f.seq[0] + 1, f.seq[1] + 1]
    for at in range(0, max(len(client), len(server)), mss):
        if client[at : at + mss]:
            f.c(client[at : at + mss])
        if server[at : at + mss]:
            f.s(server[at : at + mss])
    f.fin()
    return f


def length_prefixed(records: list[bytes]) -> bytes:
    return b"".join(struct.pack("!I", len(r)) + r for r in records)


def tls_records(records: list[bytes]) -> bytes:
    return b"".join(b"\x17\x03\x03" + struct.pack("!H", len(r)) + r for r in records)


def h2_frames(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack("!I", len(p))[1:] + b"\x00\x00\x00\x00\x00\x01" + p for p in payloads)


BODIES = st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=20)
STREAMS = st.one_of(
    BODIES.map(length_prefixed),
    BODIES.map(tls_records),
    BODIES.map(h2_frames),
    st.integers(2, 4000).map(lambda n: b"\x00" * n),
    st.integers(1, 200).map(lambda n: b"\x81\x00" * n),  # runs of identical empty frames
    st.integers(1, 200).map(lambda n: b"\x01\x00" + b"\x00\x00" * n),
    st.just(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
    st.binary(min_size=1, max_size=3000),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client=STREAMS, server=STREAMS, from_start=st.booleans(), mss=st.sampled_from([7, 100, 1448]))
def test_streams_of_other_protocols_give_no_session(client: bytes, server: bytes, from_start: bool, mss: int) -> None:
    events = decode_packets(flow_of(client, server, from_start=from_start, mss=mss).packets)
    assert summaries(events) == []


def test_a_connection_captured_from_its_start_without_http_is_not_hunted() -> None:
    # Frames that would pass the hunt, but the capture saw the SYN and the first
    # bytes: there was no handshake, so this is no WebSocket session.
    frames = b"".join(ws_frame(1, f"message {i}".encode(), mask=True) for i in range(5))
    replies = b"".join(ws_frame(1, f"reply {i}".encode()) for i in range(5))
    assert summaries(decode_packets(flow_of(frames, replies, from_start=True).packets)) == []
    # The same bytes joined mid-stream are a session (their handshake may be missed).
    (s,) = summaries(decode_packets(flow_of(frames, replies, from_start=False).packets))
    assert s.mid_stream and s.messages == (5, 5)


def test_a_hunted_session_that_turns_implausible_is_dropped_unseen() -> None:
    # Frames that pass the hunt, then what no peer sends: a reserved opcode, a frame
    # from the masking side unmasked. Nothing of it was given out, nothing is.
    client = ws_frame(1, b"looks like text", mask=True) + ws_frame(1, b"and more text", mask=True)
    client += ws_frame(3, b"x" * 20, mask=True) + ws_frame(1, b"y" * 20)
    events = decode_packets(flow_of(client, b"", from_start=False).packets)
    assert summaries(events) == [] and messages(events) == []
    assert not any(isinstance(e, SessionOpened) for e in events)


def test_a_hunted_session_gives_out_its_messages_in_packet_order_once_trusted() -> None:
    f = Flow()
    f.seq = [f.seq[0] + 1, f.seq[1] + 1]
    f.c(ws_frame(1, b"first from the client", mask=True))
    f.s(ws_frame(1, b"first from the server"))
    f.c(ws_frame(1, b"second from the client", mask=True))
    f.s(ws_frame(1, b"second from the server"))
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    got = [(m.session, m.packets[0], m.text) for m in messages(events)]
    assert [text for _, _, text in got] == [
        "first from the client",
        "first from the server",
        "second from the client",
        "second from the server",
    ]
    assert [packet for _, packet, _ in got] == sorted(packet for _, packet, _ in got)
    assert {session for session, _, _ in got} == {s.session} and Issue.MID_STREAM in s.issues
    opened = [e for e in events if isinstance(e, SessionOpened)]
    assert [e.session for e in opened] == [s.session] and events.index(opened[0]) < events.index(messages(events)[0])
