"""tcp.py: Reassembler, Segment -> StreamData / StreamEnd.

Segments are built directly (the layer below is tested in test_packet.py). Packets are
numbered from 1 and stamped with their number as the timestamp, so that every event
shows which packet its bytes came from. Streams are fed whole, cut into pieces, and
cut into pieces that arrive in any order, duplicated or overlapping (hypothesis).
"""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import decode_packets, messages, summaries
from wsinspect.capture import open_capture
from wsinspect.issues import Issue
from wsinspect.packet import ACK, CUT_SHIFT, FIN, RST, SYN, RawPacket, Segment, reverse_key
from wsinspect.tcp import MAX_AHEAD, Connection, Reassembler, StreamData, StreamEnd

PSH = 0x08
MASK = (1 << 32) - 1

# 10.0.0.1:40000 -> 10.0.0.2:80, and a second flow from another client port.
C = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack("!HH", 40000, 80)
S = reverse_key(C)
C2 = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack("!HH", 40001, 80)
S2 = reverse_key(C2)
CISN, SISN = 1000, 5000
REQUEST = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
RESPONSE = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"

Event = tuple[Any, ...]


OVERFLOW = Issue.TCP_BUFFER_OVERFLOW
CONFLICT = Issue.TCP_OVERLAP_CONFLICT


class Wire:
    """Feeds one Reassembler: packet n has timestamp n * step; events come back as tuples
    ("data", conn, direction, bytes, gap, packet), with the issue after the packet
    when there is one, or ("end", conn, reason, ts)."""

    def __init__(self, step: float = 1.0, **options: int) -> None:
        self.reasm = Reassembler(**options)
        self.step = step
        self.n = 0
        self.conns: dict[int, Connection] = {}

    def send(self, key: bytes, seq: int, data: bytes = b"", flags: int = ACK, ack: int = 0) -> list[Event]:
        self.n += 1
        seg = Segment(self.n * self.step, key, seq & MASK, ack & MASK, flags, memoryview(data))
        return self.show(self.reasm.feed(seg, self.n))

    def c(self, seq: int, data: bytes = b"", flags: int = ACK, ack: int = 0) -> list[Event]:
        return self.send(C, seq, data, flags, ack)

    def s(self, seq: int, data: bytes = b"", flags: int = ACK, ack: int = 0) -> list[Event]:
        return self.send(S, seq, data, flags, ack)

    def finish(self) -> list[Event]:
        self.n += 1
        return self.show([e for _, events in self.reasm.finish(self.n * self.step) for e in events])

    def show(self, events: list[StreamData | StreamEnd]) -> list[Event]:
        shown: list[Event] = []
        for e in events:
            self.conns[e.conn.index] = e.conn
            match e:
                case StreamData():
                    # The bytes keep the timestamp of the packet that carried them (a
                    # hole reported alone at the end of the capture has no packet).
                    assert e.ts == e.packet * self.step or (e.packet == 0 and not e.data)
                    shown.append(("data", e.conn.index, e.direction, bytes(e.data), e.gap, e.packet))
                    if e.issue is not None:
                        shown[-1] += (e.issue,)
                case StreamEnd():
                    shown.append(("end", e.conn.index, e.reason, e.ts))
        return shown


def handshake(w: Wire, cisn: int = CISN, sisn: int = SISN) -> None:
    assert w.c(cisn, flags=SYN) == []
    assert w.s(sisn, flags=SYN | ACK, ack=cisn + 1) == []
    assert w.c(cisn + 1, ack=sisn + 1) == []


def stats(w: Wire) -> tuple[int, int, int, int, int]:
    s = w.reasm.stats
    return s.connections, s.retransmitted, s.out_of_order, s.gaps, s.gap_bytes


def data_of(events: list[Event]) -> bytes:
    return b"".join(e[3] for e in events if e[0] == "data")


A, B, D, E = b"A" * 10, b"B" * 10, b"D" * 10, b"E" * 10


# --- in order, out of order, duplicates, overlaps ------------------------------------------------------------------


def test_in_order_connection_closed_by_fin() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, REQUEST, ACK | PSH, ack=SISN + 1) == [("data", 1, 0, REQUEST, 0, 4)]
    assert w.s(SISN + 1, RESPONSE, ACK | PSH, ack=CISN + 1 + len(REQUEST)) == [("data", 1, 1, RESPONSE, 0, 5)]
    cfin = CISN + 1 + len(REQUEST)
    sfin = SISN + 1 + len(RESPONSE)
    assert w.c(cfin, flags=FIN | ACK, ack=sfin) == []
    assert w.s(sfin, flags=FIN | ACK, ack=cfin + 1) == [("end", 1, "fin", 7.0)]
    assert w.c(cfin + 1, ack=sfin + 1) == []  # the last ACK: the flow is gone
    assert w.finish() == []
    conn = w.conns[1]
    assert (conn.index, conn.client, conn.keys, conn.ts) == (1, 0, (C, S), 1.0)
    assert stats(w) == (1, 0, 0, 0, 0)


def test_fin_carrying_data_and_server_closing_first() -> None:
    w = Wire()
    handshake(w)
    sfin = SISN + 1 + len(RESPONSE)
    assert w.s(SISN + 1, RESPONSE, FIN | ACK | PSH, ack=CISN + 1) == [("data", 1, 1, RESPONSE, 0, 4)]
    assert w.c(CISN + 1, REQUEST, FIN | ACK | PSH, ack=sfin + 1) == [
        ("data", 1, 0, REQUEST, 0, 5),
        ("end", 1, "fin", 5.0),
    ]


def test_out_of_order_held_until_the_hole_fills() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D) == []  # packet 4
    assert w.c(CISN + 11, B) == []  # packet 5
    assert w.c(CISN + 31, E) == []  # packet 6
    assert w.c(CISN + 1, A) == [
        ("data", 1, 0, A, 0, 7),
        ("data", 1, 0, B, 0, 5),
        ("data", 1, 0, D, 0, 4),
        ("data", 1, 0, E, 0, 6),
    ]
    assert stats(w) == (1, 0, 3, 0, 0)
    assert w.finish() == [("end", 1, "eof", 8.0)]


def test_duplicates_and_retransmissions_delivered_once() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 1, A) == []  # a retransmission of delivered bytes
    assert w.c(CISN + 21, D) == []  # held
    assert w.c(CISN + 21, D) == []  # a duplicate of held bytes
    assert w.c(CISN + 11, B) == [("data", 1, 0, B, 0, 8), ("data", 1, 0, D, 0, 6)]
    assert w.c(CISN + 11, B + D) == []
    assert w.c(CISN + 1, A + B + D) == []
    assert data_of(w.finish()) == b""
    assert stats(w)[:3] == (1, 3, 2)


def test_partial_overlaps_are_trimmed() -> None:
    stream = bytes(range(65, 65 + 40))
    sent: dict[int, tuple[int, int]] = {}  # packet -> the stream range it carried

    def part(w: Wire, a: int, b: int) -> list[Event]:
        sent[w.n + 1] = (a, b)
        return w.c(CISN + 1 + a, stream[a:b])

    w = Wire()
    handshake(w)
    assert part(w, 0, 10) == [("data", 1, 0, stream[0:10], 0, 4)]
    assert part(w, 5, 15) == [("data", 1, 0, stream[10:15], 0, 5)]  # the first 5 bytes were delivered
    # Held pieces that overlap each other and what was delivered, arriving out of order.
    assert part(w, 25, 35) == []
    assert part(w, 18, 28) == []
    assert part(w, 20, 30) == []
    out = part(w, 15, 20)
    assert data_of(out) == stream[15:35]
    assert out[0] == ("data", 1, 0, stream[15:20], 0, 9)
    at = 15
    for _, _, _, chunk, gap, packet in out:  # each byte comes from a packet that carried it
        first, last = sent[packet]
        assert (gap, first <= at, at + len(chunk) <= last) == (0, True, True)
        at += len(chunk)
    assert part(w, 30, 40) == [("data", 1, 0, stream[35:40], 0, 10)]
    assert data_of(w.finish()) == b""


def test_larger_held_segment_at_the_same_sequence_wins() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 11, B[:5]) == []  # packet 4
    assert w.c(CISN + 11, B) == []  # packet 5: replaces the shorter one
    assert w.c(CISN + 11, B[:3]) == []  # packet 6: shorter, ignored
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 7), ("data", 1, 0, B, 0, 5)]


# --- copies that differ ------------------------------------------------------------------------------------------
# Held (out-of-order) bytes are compared with later copies of them; the first copy is
# kept, the conflict counted and flagged on the next data delivered.


def test_differing_copy_of_held_bytes_at_the_same_sequence() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # packet 5: held
    assert w.c(CISN + 21, E) == []  # packet 6: the same bytes, said differently
    assert w.c(CISN + 21, D[:4] + b"x") == []  # packet 7: shorter, differs too
    assert w.c(CISN + 11, B) == [("data", 1, 0, B, 0, 8, CONFLICT), ("data", 1, 0, D, 0, 5)]
    assert w.reasm.stats.conflicts == 2
    assert w.c(CISN + 31, E) == [("data", 1, 0, E, 0, 9)]  # the flag went with the data after it


def test_longer_differing_copy_of_held_bytes_adds_only_its_end() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D[:5]) == []  # packet 4
    assert w.c(CISN + 21, E) == []  # packet 5: 5 bytes overlap and differ, 5 are new
    assert w.c(CISN + 1, A + B) == [
        ("data", 1, 0, A + B, 0, 6, CONFLICT),
        ("data", 1, 0, D[:5], 0, 4),
        ("data", 1, 0, E[5:], 0, 5),
    ]
    assert w.reasm.stats.conflicts == 1


def test_segment_filling_the_hole_differs_from_held_bytes() -> None:
    # The held segments came first: where the new one differs from them, theirs are
    # delivered, and it fills the rest (each byte from a packet that carried it).
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D) == []  # packet 4: stream 20..30
    assert w.c(CISN + 41, E) == []  # packet 5: stream 40..50
    new = A + b"x" * 50  # packet 6: stream 0..60, different from both
    assert w.c(CISN + 1, new) == [
        ("data", 1, 0, new[0:20], 0, 6, CONFLICT),
        ("data", 1, 0, D, 0, 4),
        ("data", 1, 0, new[30:40], 0, 6),
        ("data", 1, 0, E, 0, 5),
        ("data", 1, 0, new[50:60], 0, 6),
    ]
    assert w.reasm.stats.conflicts == 2
    assert w.reasm.holding == 0
    assert w.c(CISN + 61, b"next") == [("data", 1, 0, b"next", 0, 7)]


def test_segment_filling_the_hole_that_agrees_is_delivered_whole() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D) == []
    assert w.c(CISN + 1, A + B + D[:5]) == [("data", 1, 0, A + B + D[:5], 0, 5), ("data", 1, 0, D[5:], 0, 4)]
    assert w.reasm.stats.conflicts == 0


def test_held_segments_that_overlap_each_other_differently() -> None:
    # Between two held segments, the one that starts first is delivered; the bytes of
    # the other that it overlaps are compared with it.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 26, b"x" * 10) == []  # packet 4: stream 25..35
    assert w.c(CISN + 21, D) == []  # packet 5: stream 20..30
    assert w.c(CISN + 1, A + B) == [
        ("data", 1, 0, A + B, 0, 6),
        ("data", 1, 0, D, 0, 5),
        ("data", 1, 0, b"x" * 5, 0, 4, CONFLICT),
    ]
    assert w.reasm.stats.conflicts == 1


def test_conflict_with_nothing_after_it_is_reported_at_once() -> None:
    # A held copy entirely covered by another, differing, and nothing held after it:
    # the issue comes on no bytes rather than wait (the next data may take the fast lane).
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D + E) == []  # packet 4: stream 20..40
    assert w.c(CISN + 26, b"x" * 5) == []  # packet 5: stream 25..30, differs
    assert w.c(CISN + 1, A + B) == [
        ("data", 1, 0, A + B, 0, 6),
        ("data", 1, 0, D + E, 0, 4),
        ("data", 1, 0, b"", 0, 4, CONFLICT),
    ]
    assert (w.reasm.stats.conflicts, w.reasm.holding) == (1, 0)
    assert w.c(CISN + 41, b"z") == [("data", 1, 0, b"z", 0, 7)]


def test_overflow_and_conflict_on_the_same_data() -> None:
    # One issue per StreamData: the overflow goes with the data after its hole; the
    # pending conflict with the next data, or on no bytes when nothing follows.
    w = Wire(max_ooo_bytes=20)
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # packet 5
    assert w.c(CISN + 21, E) == []  # packet 6: conflict
    assert w.c(CISN + 31, b"y" * 11) == [
        ("data", 1, 0, D, 10, 5, OVERFLOW),
        ("data", 1, 0, b"y" * 11, 0, 7, CONFLICT),
    ]
    assert w.c(CISN + 62, D) == []  # packet 8
    assert w.c(CISN + 62, E) == []  # packet 9: conflict
    assert w.c(CISN + 82, b"z" * 21) == [
        ("data", 1, 0, D, 20, 8, OVERFLOW),
        ("data", 1, 0, b"z" * 21, 10, 10, OVERFLOW),
        ("data", 1, 0, b"", 0, 10, CONFLICT),
    ]
    assert (w.reasm.stats.overflows, w.reasm.stats.conflicts, w.reasm.holding) == (3, 2, 0)


def test_differing_copy_of_delivered_bytes_is_not_compared() -> None:
    # Delivered bytes are not kept (that would cost every in-order packet): a
    # retransmission of them is dropped, whatever it carries.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 1, E) == []
    assert w.c(CISN + 6, E) == [("data", 1, 0, E[5:], 0, 6)]
    assert (w.reasm.stats.retransmitted, w.reasm.stats.conflicts) == (1, 0)


@pytest.mark.parametrize("pieces", ["whole", "bytes", "sevens"])
def test_segmentation_does_not_matter(pieces: str) -> None:
    stream = bytes(random.Random(3).randbytes(300))
    size = {"whole": len(stream), "bytes": 1, "sevens": 7}[pieces]
    w = Wire()
    handshake(w)
    out: list[Event] = []
    for at in range(0, len(stream), size):
        out += w.c(CISN + 1 + at, stream[at : at + size])
    assert data_of(out) == stream
    assert len(out) == -(-len(stream) // size)
    # Trailing bytes after the connection ended are not part of the stream.
    assert w.c(CISN + 1 + len(stream), flags=FIN | ACK) == []
    assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 2 + len(stream)) == [("end", 1, "fin", float(w.n))]
    assert w.c(CISN + 1 + len(stream), b"trailing") == []
    assert w.finish() == []


# --- sequence-number wraparound ---------------------------------------------------------------------------------


def test_wraparound() -> None:
    isn = (1 << 32) - 6  # data starts at 2^32 - 5
    stream = bytes(range(100, 140))
    w = Wire()
    handshake(w, cisn=isn, sisn=MASK)
    assert w.c(isn + 1 + 10, stream[10:20]) == []  # sequence 5, past the wrap
    assert w.c(isn + 1, stream[0:10]) == [("data", 1, 0, stream[0:10], 0, 5), ("data", 1, 0, stream[10:20], 0, 4)]
    assert w.c(isn + 1 + 3, stream[3:25]) == [("data", 1, 0, stream[20:25], 0, 6)]  # overlaps the wrap
    assert w.c(isn + 1 + 30, stream[30:40]) == []
    assert w.c(isn + 1 + 25, stream[25:30]) == [
        ("data", 1, 0, stream[25:30], 0, 8),
        ("data", 1, 0, stream[30:40], 0, 7),
    ]
    # The server's ISN was 2^32 - 1: its data starts at 0.
    assert w.s(0, b"pong", ack=isn + 41) == [("data", 1, 1, b"pong", 0, 9)]
    assert w.s(0, b"pong") == []
    assert stats(w)[3:] == (0, 0)


def test_wraparound_hole_declared_by_ack() -> None:
    isn = (1 << 32) - 3
    w = Wire()
    handshake(w, cisn=isn)
    assert w.c(isn + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(isn + 21, D) == []
    assert w.s(SISN + 1, ack=isn + 31) == []  # awaited a while: the file's order is not the wire's
    assert w.s(SISN + 1, ack=isn + 31) == [("data", 1, 0, D, 10, 5)]  # REORDER_WINDOW later
    assert stats(w)[3:] == (1, 10)


# --- holes -------------------------------------------------------------------------------------------------------


def test_hole_declared_when_the_peer_acks_past_it() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # packet 5; B, at CISN + 11, was never captured
    assert w.c(CISN + 31, E) == []  # packet 6
    assert w.s(SISN + 1, ack=CISN + 11) == []  # the receiver has no more than we do
    assert w.s(SISN + 1, ack=CISN + 1) == []  # an old ACK
    assert w.s(SISN + 1, ack=CISN + 41) == []  # awaited for REORDER_WINDOW of capture time
    assert w.s(SISN + 1, ack=CISN + 41) == [("data", 1, 0, D, 10, 5), ("data", 1, 0, E, 0, 6)]
    assert w.c(CISN + 11, B) == []  # too late: never glued in
    assert stats(w) == (1, 1, 2, 1, 10)


def test_data_recorded_after_the_ack_that_covers_it_is_used() -> None:
    # Multi-queue NICs, merged captures and -i any record an ACK before the data it
    # acknowledges: the bytes are still in the file, and are used (issue: reassemble
    # by sequence number whatever the file order).
    w = Wire(step=0.01)
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # packet 5: B, at CISN + 11, comes later in the file
    assert w.s(SISN + 1, ack=CISN + 31) == []  # packet 6 acknowledges B and D
    assert w.c(CISN + 11, B) == [("data", 1, 0, B, 0, 7), ("data", 1, 0, D, 0, 5)]
    # With nothing held: an ACK for data that comes later, in order.
    assert w.s(SISN + 1, ack=CISN + 41) == []
    assert w.c(CISN + 31, E) == [("data", 1, 0, E, 0, 9)]
    assert stats(w)[3:] == (0, 0)


def test_hole_declared_when_an_ack_with_data_came_first() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    # The reply acknowledges client bytes the capture has not shown: it was sent
    # after them, and waits for them (or for their hole to be given up).
    assert w.s(SISN + 1, b"reply", ack=CISN + 41) == []
    # REORDER_WINDOW later: the hole is loss, and the reply follows the bytes after it.
    assert w.c(CISN + 31, E) == [("data", 1, 0, E, 20, 6), ("data", 1, 1, b"reply", 0, 5)]
    assert stats(w)[3:] == (1, 20)


def test_data_held_back_for_the_other_direction_is_bounded_by_the_buffer() -> None:
    # The server answers client bytes the capture never shows: its data waits for
    # them, but no more than the out-of-order buffer holds; then the hole is loss.
    w = Wire(step=0.01, max_ooo_bytes=30)
    handshake(w)
    assert w.c(CISN + 21, D) == []  # held: CISN + 1 .. 21 not seen
    assert w.s(SISN + 1, b"r" * 20, ack=CISN + 31) == []  # waits for the client's bytes
    assert w.s(SISN + 21, b"s" * 20, ack=CISN + 31) == [
        ("data", 1, 0, D, 20, 4),
        ("data", 1, 1, b"r" * 20, 0, 5),
        ("data", 1, 1, b"s" * 20, 0, 6),
    ]
    assert w.s(SISN + 41, b"t", ack=CISN + 31) == [("data", 1, 1, b"t", 0, 7)]


@pytest.mark.parametrize("via", ["feed", "ack"])
def test_a_pure_ack_acts_the_same_whether_or_not_it_reaches_feed(via: str) -> None:
    # Whether a pure ACK reaches feed() depends on other connections (the Inspector
    # passes it to ack() while nothing is held anywhere), so both must leave this
    # connection in the same state: the ACK says bytes up to CISN + 41 arrived,
    # which the capture never showed.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    if via == "feed":
        assert w.s(SISN + 1, ack=CISN + 41) == []
    else:
        w.n += 1
        w.reasm.ack(S, CISN + 41)
    # The data after the hole waits for the hole, REORDER_WINDOW of capture time.
    assert w.c(CISN + 31, E) == []
    assert w.s(SISN + 1, b"r", ack=CISN + 41) == [("data", 1, 1, b"r", 0, 7), ("data", 1, 0, E, 20, 6)]
    assert stats(w)[3:] == (1, 20)


def test_hole_at_rst_is_flushed_with_its_gap() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 1, RESPONSE, 0, 6)]
    assert w.s(SISN + 1 + len(RESPONSE) + 5, b"late") == []  # a hole on the server side too
    assert w.c(CISN + 31, flags=RST) == [
        ("data", 1, 0, D, 10, 5),
        ("data", 1, 1, b"late", 5, 7),
        ("end", 1, "rst", 8.0),
    ]
    assert stats(w)[3:] == (2, 15)


def test_hole_at_finish_is_flushed_with_its_gap() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 31, E) == []
    assert w.c(CISN + 21, D) == []
    assert w.finish() == [("data", 1, 0, D, 10, 6), ("data", 1, 0, E, 0, 5), ("end", 1, "eof", 7.0)]


@pytest.mark.parametrize("end", ["eof", "rst"])
def test_bytes_lost_just_before_a_fin_are_a_gap_when_the_connection_ends(end: str) -> None:
    # Nothing after the hole but the FIN, and no ACK that counts (the peer's pure
    # ACKs are not followed while nothing is held): the FIN's sequence number alone
    # says that 10 bytes never came. Once glued silently, now a gap at the end.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 1 + len(A) + 10, flags=FIN | ACK, ack=SISN + 1) == []
    if end == "eof":
        assert w.finish() == [("data", 1, 0, b"", 10, 0), ("end", 1, "eof", 6.0)]
    else:
        assert w.s(SISN + 1, flags=RST) == [("data", 1, 0, b"", 10, 6), ("end", 1, "rst", 6.0)]
    assert stats(w)[3:] == (1, 10)


def test_bytes_acked_but_never_captured_are_a_gap_when_the_capture_ends() -> None:
    # The server's last segment was lost from the capture; the client's reply
    # acknowledges it. No FIN, no later server data: the ACK alone tells.
    w = Wire()
    handshake(w)
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 1, RESPONSE, 0, 4)]
    lost_end = SISN + 1 + len(RESPONSE) + 10
    assert w.c(CISN + 1, A, ack=lost_end) == []  # sent after the server's lost bytes: it waits for them
    assert w.finish() == [("data", 1, 1, b"", 10, 0), ("data", 1, 0, A, 0, 5), ("end", 1, "eof", 6.0)]


def test_bytes_acked_by_a_pure_ack_alone_are_a_gap_when_the_capture_ends() -> None:
    w = Wire()
    handshake(w)
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 1, RESPONSE, 0, 4)]
    w.n += 1
    w.reasm.ack(C, SISN + 1 + len(RESPONSE) + 10)  # packet 5, dropped by the Inspector before feed()
    assert w.finish() == [("data", 1, 1, b"", 10, 0), ("end", 1, "eof", 6.0)]


def test_an_acked_fin_is_not_taken_for_a_lost_byte() -> None:
    w = Wire()
    handshake(w)
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 1, RESPONSE, 0, 4)]
    fin = SISN + 1 + len(RESPONSE)
    assert w.s(fin, flags=FIN | ACK, ack=CISN + 1) == []
    assert w.c(CISN + 1, A, ack=fin + 1) == [("data", 1, 0, A, 0, 6)]  # acknowledges the FIN
    assert w.finish() == [("end", 1, "eof", 7.0)]
    assert stats(w)[3:] == (0, 0)


def test_hole_before_fin_flushed_when_the_peer_acks_the_fin() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # packet 5
    assert w.c(CISN + 31, flags=FIN | ACK, ack=SISN + 1) == []  # the FIN waits behind the hole
    assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 32) == []  # the hole is awaited a while
    assert w.c(CISN + 32, ack=SISN + 2) == [("data", 1, 0, D, 10, 5), ("end", 1, "fin", 8.0)]  # the last ACK
    assert w.finish() == []


def test_fin_behind_a_skipped_hole_ends_the_connection() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []
    assert w.c(CISN + 31, flags=FIN | ACK, ack=SISN + 1) == []
    assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 32) == []
    # Both FINs were seen: the capture ending while the hole was awaited does not
    # make the connection's end "eof"; it ended by FIN, at the later one.
    assert w.finish() == [("data", 1, 0, D, 10, 5), ("end", 1, "fin", 7.0)]


def test_out_of_order_cap_forces_a_gap() -> None:
    # The data after a hole given up for room says so; the data after it does not.
    w = Wire(max_ooo_bytes=10)
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # 10 bytes held: at the cap, not over it
    assert w.c(CISN + 31, E) == [("data", 1, 0, D, 10, 5, OVERFLOW), ("data", 1, 0, E, 0, 6)]
    assert w.c(CISN + 11, B) == []
    assert w.c(CISN + 56, b"x" * 11) == [("data", 1, 0, b"x" * 11, 15, 8, OVERFLOW)]  # over the cap on its own
    assert w.c(CISN + 67, b"z") == [("data", 1, 0, b"z", 0, 9)]
    assert stats(w)[3:] == (2, 25)
    assert w.reasm.stats.overflows == 2


def test_holes_given_up_for_other_reasons_are_no_overflow() -> None:
    w = Wire(max_ooo_bytes=10)
    handshake(w)
    assert w.c(CISN + 11, B) == []
    assert w.s(SISN + 1, ack=CISN + 21) == []  # the receiver acknowledged the hole
    assert w.s(SISN + 1, ack=CISN + 21) == [("data", 1, 0, B, 10, 4)]  # REORDER_WINDOW later
    assert w.c(CISN + 31, D) == []
    assert w.finish() == [("data", 1, 0, D, 10, 7), ("end", 1, "eof", 8.0)]  # the capture ended
    assert (w.reasm.stats.gaps, w.reasm.stats.overflows) == (2, 0)


def test_segment_implausibly_far_ahead_is_dropped() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1 + MAX_AHEAD + 1, b"far") == []
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 5)]
    assert w.finish() == [("end", 1, "eof", 6.0)]


def test_holding_counts_directions_waiting_behind_a_hole() -> None:
    # The layer above asks the packet parser for pure ACKs only while this is non-zero.
    w = Wire(max_ooo_bytes=30)
    handshake(w)
    assert w.reasm.holding == 0
    assert w.c(CISN + 21, D) == []
    assert w.c(CISN + 31, E) == []
    assert w.reasm.holding == 1
    assert w.s(SISN + 11, b"x") == []
    assert w.reasm.holding == 2
    assert w.c(CISN + 1, A + B) == [("data", 1, 0, A + B, 0, 7), ("data", 1, 0, D, 0, 4), ("data", 1, 0, E, 0, 5)]
    assert w.reasm.holding == 1
    assert w.c(CISN + 41, ack=SISN + 12) == []  # the client has the server's hole
    assert w.reasm.holding == 1
    assert w.c(CISN + 41, ack=SISN + 12) == [("data", 1, 1, b"x", 10, 6)]  # REORDER_WINDOW later
    assert w.reasm.holding == 0
    assert w.c(CISN + 61, b"y" * 31) == [("data", 1, 0, b"y" * 31, 20, 10, OVERFLOW)]  # over the cap at once
    assert w.reasm.holding == 0
    assert w.c(CISN + 100, b"z") == []
    assert w.reasm.holding == 1
    assert w.c(90000, flags=SYN) == [("data", 1, 0, b"z", 8, 11), ("end", 1, "reused", 12.0)]
    assert w.reasm.holding == 0
    assert w.c(90005, b"w") == []
    assert w.s(70000, b"v") == [("data", 2, 1, b"v", 0, 14)]
    assert w.reasm.holding == 1
    assert w.finish() == [("data", 2, 0, b"w", 4, 13), ("end", 2, "eof", 15.0)]
    assert w.reasm.holding == 0


# --- connection life ---------------------------------------------------------------------------------------------


def test_rst_ends_the_connection() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A, ack=SISN + 1) == [("data", 1, 0, A, 0, 4)]
    assert w.s(SISN + 1, flags=RST | ACK, ack=CISN + 11) == [("end", 1, "rst", 5.0)]
    assert w.c(CISN + 11, B) == []  # the flow is closed
    assert w.s(SISN + 1, flags=RST) == []
    assert w.finish() == []
    assert stats(w)[0] == 1


def test_rst_answering_a_syn() -> None:
    w = Wire()
    assert w.c(CISN, flags=SYN) == []
    assert w.s(0, flags=RST | ACK, ack=CISN + 1) == [("end", 1, "rst", 2.0)]
    assert w.conns[1].client == 0


@pytest.mark.parametrize("held", [False, True])
def test_data_on_a_rst_is_not_stream_data(held: bool) -> None:
    # RFC 9293 3.5.3: a RST may carry diagnostic text, never delivered to the
    # application. The RST still ends the connection, flushing what is held.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    if held:
        assert w.c(CISN + 21, D) == []
    out = w.c(CISN + 11, b"\x81\x0bshutting dn", flags=RST | ACK)
    assert out == ([("data", 1, 0, D, 10, 5)] if held else []) + [("end", 1, "rst", float(w.n))]
    assert w.reasm.holding == 0


def test_rst_with_data_opens_nothing() -> None:
    w = Wire()
    assert w.c(CISN, b"Connection reset", flags=RST | ACK) == []
    assert w.finish() == []
    assert stats(w)[0] == 0


def test_new_syn_with_a_different_isn_reuses_the_ports() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 21, D) == []  # held behind a hole when the old connection goes
    assert w.c(90000, flags=SYN) == [("data", 1, 0, D, 10, 5), ("end", 1, "reused", 6.0)]
    assert w.s(70000, flags=SYN | ACK, ack=90001) == []
    assert w.c(90001, b"new", ack=70001) == [("data", 2, 0, b"new", 0, 8)]
    assert w.s(70001, b"NEW") == [("data", 2, 1, b"NEW", 0, 9)]
    assert w.conns[2].client == 0
    assert w.conns[1] is not w.conns[2]
    assert w.finish() == [("end", 2, "eof", 10.0)]
    assert stats(w)[0] == 2


def test_syn_retransmission_is_the_same_connection() -> None:
    w = Wire()
    assert w.c(CISN, flags=SYN) == []
    assert w.c(CISN, flags=SYN) == []
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1) == []
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1) == []
    assert w.c(CISN, flags=SYN) == []
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 6)]
    assert stats(w)[0] == 1


def test_tcp_fast_open_syn_retransmitted_with_its_data_is_the_same_connection() -> None:
    # The SYN carries data (RFC 7413), which moves the next sequence number past
    # ISN + 1: a retransmitted SYN is still recognized by its ISN.
    w = Wire()
    assert w.c(CISN, REQUEST, flags=SYN) == [("data", 1, 0, REQUEST, 0, 1)]
    assert w.c(CISN, REQUEST, flags=SYN) == []
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1 + len(REQUEST)) == []
    assert w.s(SISN + 1, RESPONSE, ack=CISN + 1 + len(REQUEST)) == [("data", 1, 1, RESPONSE, 0, 4)]
    assert w.c(CISN + 1 + len(REQUEST), b"frame") == [("data", 1, 0, b"frame", 0, 5)]
    assert w.finish() == [("end", 1, "eof", 6.0)]
    assert stats(w)[:2] == (1, 1)


def test_tcp_fast_open_data_not_accepted_then_sent_again() -> None:
    # The SYN's data was not acknowledged: the client retries a plain SYN with the same
    # ISN, then sends the data again after the handshake (a retransmission by then).
    w = Wire()
    assert w.c(CISN, REQUEST, flags=SYN) == [("data", 1, 0, REQUEST, 0, 1)]
    assert w.c(CISN, flags=SYN) == []
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1) == []
    assert w.c(CISN + 1, REQUEST, ack=SISN + 1) == []
    assert w.c(CISN + 1 + len(REQUEST), b"frame") == [("data", 1, 0, b"frame", 0, 5)]
    assert stats(w)[:2] == (1, 1)


def test_new_syn_with_a_different_isn_after_tcp_fast_open_reuses_the_ports() -> None:
    w = Wire()
    assert w.c(CISN, REQUEST, flags=SYN) == [("data", 1, 0, REQUEST, 0, 1)]
    assert w.c(90000, flags=SYN) == [("end", 1, "reused", 2.0)]
    assert w.c(90001, b"new") == [("data", 2, 0, b"new", 0, 3)]


def test_syn_on_a_connection_joined_mid_stream_starts_a_new_one() -> None:
    w = Wire()
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 1)]
    assert w.c(CISN, flags=SYN) == [("end", 1, "reused", 2.0)]
    assert w.c(CISN, flags=SYN) == []  # its retransmission
    assert w.c(CISN + 1, A) == [("data", 2, 0, A, 0, 4)]


def test_new_syn_after_a_half_close() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, flags=FIN | ACK) == []  # the client's half is done
    assert w.c(CISN, flags=SYN) == [("end", 1, "reused", 5.0)]
    assert stats(w)[0] == 2


@pytest.mark.parametrize("closing", ["fin", "rst"])
def test_new_syn_after_close_is_a_new_connection(closing: str) -> None:
    w = Wire()
    handshake(w)
    if closing == "fin":
        assert w.c(CISN + 1, flags=FIN | ACK) == []
        assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 2) == [("end", 1, "fin", 5.0)]
    else:
        assert w.c(CISN + 1, flags=RST) == [("end", 1, "rst", 4.0)]
    n = w.n
    # The same ports, even the same ISN: no "reused" end, the old one is already over.
    assert w.c(CISN, flags=SYN) == []
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1) == []
    assert w.c(CISN + 1, A) == [("data", 2, 0, A, 0, n + 3)]
    assert stats(w)[0] == 2


def test_late_retransmissions_after_close_open_nothing() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 1, RESPONSE, 0, 5)]
    assert w.c(CISN + 11, flags=FIN | ACK) == []
    assert w.s(SISN + 1 + len(RESPONSE), flags=FIN | ACK, ack=CISN + 12) == [("end", 1, "fin", 7.0)]
    assert w.c(CISN + 1, A) == []
    assert w.s(SISN + 1, RESPONSE) == []
    assert w.c(CISN + 11, flags=FIN | ACK) == []
    assert w.finish() == []
    assert stats(w)[0] == 1


def test_pure_acks_produce_nothing() -> None:
    w = Wire()
    # Of a flow not followed: no connection at all.
    assert w.c(CISN, ack=SISN) == []
    assert w.c(CISN, flags=FIN | ACK) == []
    assert w.c(CISN, flags=RST) == []
    assert w.finish() == []
    assert stats(w)[0] == 0
    # Of a followed flow.
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 8)]
    for _ in range(3):
        assert w.s(SISN + 1, ack=CISN + 11) == []
        assert w.c(CISN + 11, ack=SISN + 1) == []


def test_mid_stream_start() -> None:
    w = Wire()
    assert w.s(70000, b"0123456789") == [("data", 1, 0, b"0123456789", 0, 1)]  # the first data sets the sequence
    assert w.c(9000, b"hello") == [("data", 1, 1, b"hello", 0, 2)]
    assert w.s(69990, b"older bytes") == []  # before where we joined
    assert w.s(69995, b"xxxxx0123456789ABCDE") == [("data", 1, 0, b"ABCDE", 0, 4)]  # 15 bytes were seen
    conn = w.conns[1]
    assert (conn.client, conn.keys, conn.ts) == (None, (S, C), 1.0)


def test_mid_stream_fin_from_a_silent_side() -> None:
    w = Wire()
    assert w.c(9000, b"hello") == [("data", 1, 0, b"hello", 0, 1)]
    assert w.s(4242, flags=FIN | ACK, ack=9005) == []
    assert w.c(9005, flags=FIN | ACK, ack=4243) == [("end", 1, "fin", 3.0)]


def test_client_from_syn() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.conns[1].client == 0


def test_client_from_syn_ack_when_the_syn_was_missed() -> None:
    w = Wire()
    assert w.s(SISN, flags=SYN | ACK, ack=CISN + 1) == []
    assert w.c(CISN + 1, A, ack=SISN + 1) == [("data", 1, 1, A, 0, 2)]
    assert w.s(SISN + 1, RESPONSE) == [("data", 1, 0, RESPONSE, 0, 3)]
    conn = w.conns[1]
    assert (conn.client, conn.keys) == (1, (S, C))


def test_connections_are_kept_apart() -> None:
    w = Wire()
    assert w.send(C, CISN, flags=SYN) == []
    assert w.send(C2, 7, flags=SYN) == []
    assert w.send(S2, 8, b"two", ack=8) == [("data", 2, 1, b"two", 0, 3)]
    assert w.send(C, CISN + 1, b"one") == [("data", 1, 0, b"one", 0, 4)]
    assert w.send(C2, 8, flags=RST) == [("end", 2, "rst", 5.0)]
    assert w.finish() == [("end", 1, "eof", 6.0)]
    assert w.finish() == []


def test_data_in_syn() -> None:
    w = Wire()
    assert w.c(CISN, REQUEST[:5], flags=SYN) == [("data", 1, 0, REQUEST[:5], 0, 1)]
    assert w.c(CISN + 6, REQUEST[5:]) == [("data", 1, 0, REQUEST[5:], 0, 2)]


def test_ack_declares_only_the_bytes_it_acknowledges_lost() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    assert w.c(CISN + 31, E) == []  # packet 5: E overtook D, which is still on its way
    assert w.s(SISN + 1, ack=CISN + 21) == []  # the receiver got B, which the capture missed
    assert w.c(CISN + 21, D) == [("data", 1, 0, D, 10, 7), ("data", 1, 0, E, 0, 5)]
    assert stats(w)[3:] == (1, 10)


# --- properties ----------------------------------------------------------------------------------------------


PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def cut_stream(draw: st.DrawFn, min_pieces: int = 1) -> tuple[bytes, list[tuple[int, int]], int]:
    """Random bytes, cut into pieces (start, end), and an ISN (often just below 2^32)."""
    size = draw(st.integers(min_pieces, 300))
    payload = random.Random(draw(st.integers(0, 1 << 32))).randbytes(size)
    cuts = draw(st.sets(st.integers(1, size - 1), min_size=min_pieces - 1, max_size=40)) if size > 1 else set()
    bounds = [0, *sorted(cuts), size]
    isn = draw(st.one_of(st.integers(0, MASK), st.integers(MASK - 320, MASK)))
    return payload, list(itertools.pairwise(bounds)), isn


def slices(size: int) -> st.SearchStrategy[tuple[int, int]]:
    """A repacketized retransmission: any non-empty range of the stream."""
    return st.integers(0, size - 1).flatmap(lambda a: st.tuples(st.just(a), st.integers(a + 1, size)))


@PROPERTY
@given(st.data())
def test_any_arrival_order_delivers_the_stream_once(data: st.DataObject) -> None:
    payload, pieces, isn = data.draw(cut_stream())
    size = len(payload)
    extra = data.draw(st.lists(st.one_of(st.sampled_from(pieces), slices(size)), max_size=12))
    order = data.draw(st.permutations(pieces + extra))
    acks = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    w = Wire()
    out = w.c(isn, flags=SYN) + w.s(SISN, flags=SYN | ACK, ack=isn + 1)
    received = bytearray(size)
    for (a, b), ack in zip(order, acks, strict=True):
        out += w.c(isn + 1 + a, payload[a:b], ACK | PSH, ack=SISN + 1)
        received[a:b] = b"\1" * (b - a)
        if ack:  # the receiver acknowledges what it holds in order
            contiguous = received.find(0)
            out += w.s(SISN + 1, ack=isn + 1 + (size if contiguous < 0 else contiguous))
    end = w.finish()
    assert end == [("end", 1, "eof", float(w.n))]
    delivered = [e for e in out if e[0] == "data"]
    assert b"".join(e[3] for e in delivered) == payload
    assert [e[4] for e in delivered] == [0] * len(delivered)
    assert all(len(e) == 6 for e in delivered)  # no issue: every copy agrees
    assert (w.reasm.stats.gaps, w.reasm.stats.conflicts, w.reasm.holding) == (0, 0, 0)


@PROPERTY
@given(st.data())
def test_differing_copies_keep_the_first_or_are_flagged(data: st.DataObject) -> None:
    # The stream's pieces, and copies of any range of it with every byte different,
    # in any order: each byte is delivered once, from one of the copies; where it is
    # not from the first copy captured, a conflict was counted; every conflict is
    # flagged on some data (flags pending together are reported once).
    payload, pieces, isn = data.draw(cut_stream())
    size = len(payload)
    altered = bytes(b ^ 0xFF for b in payload)
    copies = [(a, b, payload) for a, b in pieces] + [(a, b, altered) for a, b in data.draw(st.lists(slices(size)))]
    w = Wire()
    out = w.c(isn, flags=SYN) + w.s(SISN, flags=SYN | ACK, ack=isn + 1)
    first: list[int | None] = [None] * size
    for a, b, source in data.draw(st.permutations(copies)):
        out += w.c(isn + 1 + a, source[a:b], ACK | PSH, ack=SISN + 1)
        first[a:b] = [source[i] if first[i] is None else first[i] for i in range(a, b)]
    out += w.finish()
    delivered = [e for e in out if e[0] == "data"]
    stream = b"".join(e[3] for e in delivered)
    assert len(stream) == size
    assert [e[4] for e in delivered] == [0] * len(delivered)
    assert all(stream[i] in (payload[i], altered[i]) for i in range(size))
    flagged = sum(e[6:] == (CONFLICT,) for e in delivered)
    conflicts = w.reasm.stats.conflicts
    assert (flagged > 0, flagged <= conflicts) == (conflicts > 0, True)
    if list(stream) != first:
        assert conflicts > 0


@PROPERTY
@given(st.data())
def test_one_lost_segment_is_one_gap(data: st.DataObject) -> None:
    payload, pieces, isn = data.draw(cut_stream(min_pieces=2))
    size = len(payload)
    lost = data.draw(st.integers(0, len(pieces) - 2))  # a hole with bytes after it
    hole_start, hole_end = pieces[lost]
    kept = pieces[:lost] + pieces[lost + 1 :]
    order = data.draw(st.permutations(kept + data.draw(st.lists(st.sampled_from(kept), max_size=8))))
    ending = data.draw(st.sampled_from(["ack", "rst", "finish"]))
    w = Wire()
    out = w.c(isn, flags=SYN) + w.s(SISN, flags=SYN | ACK, ack=isn + 1)
    for a, b in order:
        out += w.c(isn + 1 + a, payload[a:b], ACK | PSH, ack=SISN + 1)
    if ending == "ack":  # the receiver got everything, the hole included
        out += w.s(SISN + 1, ack=isn + 1 + size)
        out += w.s(SISN + 1, ack=isn + 1 + size)  # REORDER_WINDOW later: the hole is loss
        assert w.finish() == [("end", 1, "eof", float(w.n))]
    elif ending == "rst":
        out += w.s(SISN + 1, flags=RST)
        assert out[-1] == ("end", 1, "rst", float(w.n))
    else:
        out += w.finish()
        assert out[-1] == ("end", 1, "eof", float(w.n))
    delivered = [e for e in out if e[0] == "data"]
    gaps = [i for i, e in enumerate(delivered) if e[4]]
    assert len(gaps) == 1
    assert delivered[gaps[0]][4] == hole_end - hole_start
    assert b"".join(e[3] for e in delivered[: gaps[0]]) == payload[:hole_start]
    assert b"".join(e[3] for e in delivered[gaps[0] :]) == payload[hole_end:]
    assert (w.reasm.stats.gaps, w.reasm.stats.gap_bytes) == (1, hole_end - hole_start)
    assert w.reasm.holding == 0


# --- bytes cut by the capture's snapshot length ----------------------------------------------------------------------


def cut(n: int) -> int:
    """The flag bits with which tcp_fields says that the capture cut ``n`` bytes off
    the end of the segment's payload (the IP length says they were sent)."""
    return n << CUT_SHIFT


def test_bytes_cut_by_the_capture_are_a_gap_at_once() -> None:
    # Each cut is reported with its packet, not held as a hole until something
    # declares it: the stream goes on in order, and the FIN, after the segments'
    # full lengths, ends it.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A[:4], ACK | cut(6)) == [("data", 1, 0, A[:4], 0, 4), ("data", 1, 0, b"", 6, 4)]
    assert w.c(CISN + 11, B[:4], ACK | cut(6)) == [("data", 1, 0, B[:4], 0, 5), ("data", 1, 0, b"", 6, 5)]
    assert w.c(CISN + 21, D, FIN | ACK) == [("data", 1, 0, D, 0, 6)]
    assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 32) == [("end", 1, "fin", 7.0)]
    assert stats(w) == (1, 0, 0, 2, 12)
    assert w.reasm.holding == 0


def test_cut_fin_segment_ends_the_connection() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A[:3], FIN | ACK | cut(7)) == [("data", 1, 0, A[:3], 0, 4), ("data", 1, 0, b"", 7, 4)]
    assert w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 12) == [("end", 1, "fin", 5.0)]


def test_payload_cut_whole() -> None:
    # A snapshot length that keeps the headers only: the data is there, all of it lost.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, b"", ACK | cut(10)) == [("data", 1, 0, b"", 10, 4)]
    assert w.c(CISN + 11, B) == [("data", 1, 0, B, 0, 5)]
    # On a flow not followed yet too: it is data, not a pure ACK.
    assert w.send(C2, 500, b"", ACK | cut(10)) == [("data", 2, 0, b"", 10, 6)]


def test_copies_over_cut_bytes() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A[:4], ACK | cut(6)) == [("data", 1, 0, A[:4], 0, 4), ("data", 1, 0, b"", 6, 4)]
    assert w.c(CISN + 1, A) == []  # a whole copy comes too late: those bytes were given up
    # A copy that starts in the cut bytes delivers only what is new.
    assert w.c(CISN + 6, A[5:] + B[:5]) == [("data", 1, 0, B[:5], 0, 6)]
    # A cut copy whose captured bytes are old, and part of its cut bytes new.
    assert w.c(CISN + 11, B[:2], ACK | cut(8)) == [("data", 1, 0, b"", 5, 7)]
    assert w.c(CISN + 21, D) == [("data", 1, 0, D, 0, 8)]
    assert stats(w) == (1, 1, 0, 2, 11)


def test_cut_segments_out_of_order() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, D[:4], ACK | cut(6)) == []  # packet 4, held with its cut bytes
    assert w.c(CISN + 11, b"", ACK | cut(10)) == []  # packet 5, nothing of it captured
    assert w.c(CISN + 1, A[:4], ACK | cut(6)) == [
        ("data", 1, 0, A[:4], 0, 6),
        ("data", 1, 0, b"", 6, 6),
        ("data", 1, 0, b"", 10, 5),
        ("data", 1, 0, D[:4], 0, 4),
        ("data", 1, 0, b"", 6, 4),
    ]
    assert w.c(CISN + 31, E) == [("data", 1, 0, E, 0, 7)]
    assert stats(w) == (1, 0, 2, 3, 22)
    assert w.reasm.holding == 0


def test_cut_segment_behind_a_hole_at_the_end() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 11, B[:4], ACK | cut(6)) == []
    assert w.finish() == [("data", 1, 0, B[:4], 10, 4), ("data", 1, 0, b"", 6, 4), ("end", 1, "eof", 5.0)]


@pytest.mark.parametrize("same", [True, False], ids=["agrees", "differs"])
def test_held_copy_compared_across_cut_bytes(same: bool) -> None:
    # Bytes 15..25 are held apart; bytes 10..20 are then cut from the segment that
    # fills the hole: only 20..25 can be compared, with the bytes delivered there.
    w = Wire()
    handshake(w)
    assert w.c(CISN + 21, B) == []  # packet 4: bytes 20..30
    assert w.c(CISN + 16, E[:5] + (B[:5] if same else D[:5])) == []  # packet 5
    out = w.c(CISN + 1, A, ACK | cut(10))  # packet 6: bytes 0..20, 10 of them cut
    expected = [("data", 1, 0, A, 0, 6), ("data", 1, 0, b"", 10, 6), ("data", 1, 0, B, 0, 4)]
    assert out == (expected if same else [*expected, ("data", 1, 0, b"", 0, 4, CONFLICT)])


def test_cut_segment_is_not_for_the_fast_lane() -> None:
    w = Wire()
    handshake(w)
    w.c(CISN + 1, A)
    conn, d = w.reasm.flows[C]
    assert not w.reasm.in_order(conn, d, CISN + 11, 0, ACK | cut(6), 4)
    assert w.reasm.in_order(conn, d, CISN + 11, 0, ACK, 10)


@PROPERTY
@given(st.data())
def test_cut_segments_in_any_order_lose_only_their_cut_bytes(data: st.DataObject) -> None:
    payload, pieces, isn = data.draw(cut_stream())
    size = len(payload)
    # Each piece keeps a prefix of its bytes: the capture cut the rest.
    segments = [(a, b, data.draw(st.integers(0, b - a))) for a, b in pieces]
    order = data.draw(st.permutations(segments + data.draw(st.lists(st.sampled_from(segments), max_size=6))))
    w = Wire()
    out = w.c(isn, flags=SYN) + w.s(SISN, flags=SYN | ACK, ack=isn + 1)
    for a, b, kept in order:
        fin = FIN if b == size else 0
        out += w.c(isn + 1 + a, payload[a : a + kept], ACK | fin | cut(b - a - kept), ack=SISN + 1)
    out += w.s(SISN + 1, flags=FIN | ACK, ack=isn + 2 + size)
    if out[-1][0] != "end":  # bytes before the FIN were awaited: the capture's end gives them up
        out += w.finish()
    assert out[-1][:3] == ("end", 1, "fin")
    stream = bytearray(size)
    known = [False] * size
    at = 0
    for e in out:
        if e[0] == "data":
            assert len(e) == 6  # no issue
            at += e[4]
            stream[at : at + len(e[3])] = e[3]
            known[at : at + len(e[3])] = [True] * len(e[3])
            at += len(e[3])
    assert at == size
    assert known == [i < a + kept for a, b, kept in segments for i in range(a, b)]
    assert all(stream[i] == payload[i] for i in range(size) if known[i])
    assert w.reasm.stats.gap_bytes == sum(b - a - kept for a, b, kept in segments)
    assert w.reasm.holding == 0


@PROPERTY
@given(st.data())
def test_cut_copies_leave_no_hole_behind(data: st.DataObject) -> None:
    # Retransmitted copies of any range, each cut anywhere, in any order with the
    # stream's pieces: which copy's bytes are kept depends on the order, but every
    # byte is either delivered right or counted lost, and no hole is left waiting.
    payload, pieces, isn = data.draw(cut_stream())
    size = len(payload)
    copies = [(a, b, data.draw(st.integers(0, b - a))) for a, b in pieces + data.draw(st.lists(slices(size)))]
    w = Wire()
    out = w.c(isn, flags=SYN) + w.s(SISN, flags=SYN | ACK, ack=isn + 1)
    for a, b, kept in data.draw(st.permutations(copies)):
        fin = FIN if b == size else 0
        out += w.c(isn + 1 + a, payload[a : a + kept], ACK | fin | cut(b - a - kept), ack=SISN + 1)
    out += w.s(SISN + 1, flags=FIN | ACK, ack=isn + 2 + size)
    if out[-1][0] != "end":  # bytes before the FIN were awaited: the capture's end gives them up
        out += w.finish()
    assert out[-1][:3] == ("end", 1, "fin")
    at = 0
    for e in out:
        if e[0] == "data":
            at += e[4]
            assert e[3] == payload[at : at + len(e[3])]
            at += len(e[3])
    assert at == size
    assert w.reasm.holding == 0


def test_capture_cut_by_a_snapshot_length_decodes_in_order(basic_capture: Path) -> None:
    # As `editcap -s 1000` cuts it: each segment of the 3 MB message loses most of its
    # bytes. What follows is decoded in order, both FINs end the connection, and the
    # fast lane and the general path agree.
    reader = open_capture(str(basic_capture))
    whole = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data)), p.number) for p in reader]
    reader.close()
    snapped = [RawPacket(p.ts, p.linktype, p.data[:1000], p.number) for p in whole]
    assert any(len(p.data) > 1000 for p in whole)
    events = decode_packets(snapped)
    assert events == decode_packets(snapped, lane=False)
    shown = [(m.dir, m.opcode, m.close_code) for m in messages(events)]
    assert shown == [(m.dir, m.opcode, m.close_code) for m in messages(decode_packets(whole))]
    assert [m.packets[1] for m in messages(events)] == sorted(m.packets[1] for m in messages(events))
    assert [s.ended_by for s in summaries(events)] == ["fin"]
    cut_short = [m for m in messages(events) if not m.complete]
    assert cut_short and all(Issue.TCP_GAP in m.issues for m in cut_short)


def test_loss_at_the_very_end_is_reported_when_acknowledged() -> None:
    w = Wire()
    handshake(w)
    assert w.c(CISN + 1, A) == [("data", 1, 0, A, 0, 4)]
    # B and C are lost; the server acknowledges them with its FIN
    out = w.s(SISN + 1, flags=FIN | ACK, ack=CISN + 31)
    assert out == []
    out = w.c(CISN + 31, flags=FIN | ACK, ack=SISN + 2)
    assert out == [("data", 1, 0, b"", 20, 6), ("end", 1, "fin", 6.0)]
    assert stats(w)[3:] == (1, 20)
