"""Captures whose file order is not the wire order (multi-queue NICs, merged captures,
mirror ports and -i any record an ACK before the data it covers, or swap two data
segments): real captures from captures/, reordered, must decode to the same messages
as in order, with no tcp-gap (reassembly by sequence number, whatever the file order)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.conftest import CAPTURES, decode_packets, messages, summaries
from wsinspect.capture import RawPacket, open_capture
from wsinspect.issues import Issue
from wsinspect.packet import reverse_key, tcp_fields
from wsinspect.session import Event

SEQ_MASK = (1 << 32) - 1


def load(name: str) -> list[RawPacket]:
    reader = open_capture(str(CAPTURES / name))
    try:
        return [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data)), p.number) for p in reader]
    finally:
        reader.close()


def fields(p: RawPacket) -> tuple[bytes, int, int, int]:
    """Flow key, sequence number, acknowledgment and payload size of a TCP packet."""
    got = tcp_fields(p.linktype, p.data)
    assert got is not None
    key, seq, ack, _, start, end = got
    return key, seq, ack, end - start


def data_packets(packets: list[RawPacket]) -> list[int]:
    return [i for i, p in enumerate(packets) if fields(p)[3] > 0]


def by_direction(events: list[Event]) -> dict[tuple[int, str], list[tuple[int, bytes, bool]]]:
    """Each session's messages per direction, in order: reordering may interleave the
    two directions differently, but never a direction's own order."""
    got: dict[tuple[int, str], list[tuple[int, bytes, bool]]] = defaultdict(list)
    for m in messages(events):
        got[m.session, m.dir].append((m.opcode, m.payload, m.complete))
    return dict(got)


def issues_of(events: list[Event]) -> set[Issue]:
    found = {i for m in messages(events) for i in m.issues}
    return found | {i for s in summaries(events) for i in s.issues}


def move_after_ack(packets: list[RawPacket], i: int) -> list[RawPacket] | None:
    """Packet i (data) moved after the next data segment of its direction and after
    the first packet of the other direction whose ACK covers it; None when there is
    no such ACK."""
    key, seq, _, size = fields(packets[i])
    end = (seq + size) & SEQ_MASK
    back = reverse_key(key)
    acked = next_data = None
    for j in range(i + 1, len(packets)):
        k, _s, a, n = fields(packets[j])
        if acked is None and k == back and 0 <= (a - end) & SEQ_MASK < 1 << 31:
            acked = j
        if next_data is None and k == key and n:
            next_data = j
    if acked is None:
        return None
    to = max(acked, next_data or 0)
    return packets[:i] + packets[i + 1 : to + 1] + [packets[i]] + packets[to + 1 :]


def test_two_segments_of_one_big_message_swapped() -> None:
    packets = load("websockets_basic.pcap")
    ordered = decode_packets(packets)
    # The 3 MB binary message is carried by a long run of full client segments.
    key = fields(packets[data_packets(packets)[0]])[0]  # the client's flow
    big = [
        i
        for i in data_packets(packets)
        if fields(packets[i])[0] == key and fields(packets[i])[3] >= 16000 and fields(packets[i + 1])[0] == key
    ]
    assert len(big) > 10
    for i in (big[1], big[len(big) // 2]):
        swapped = [*packets[:i], packets[i + 1], packets[i], *packets[i + 2 :]]
        events = decode_packets(swapped)
        assert by_direction(events) == by_direction(ordered)
        assert Issue.TCP_GAP not in issues_of(events)


@pytest.mark.parametrize("name", ["deflate_websockets.pcap", "deflate_node.pcap", "websockets_basic.pcap"])
def test_a_segment_recorded_after_the_ack_that_covers_it(name: str) -> None:
    # In a permessage-deflate session a lost message breaks every later message of
    # its direction (the shared window): each one must survive being recorded late.
    packets = load(name)
    ordered = decode_packets(packets)
    expected = by_direction(ordered)
    moved = 0
    for i in data_packets(packets)[:40]:
        reordered = move_after_ack(packets, i)
        if reordered is None:
            continue
        moved += 1
        for lane in (True, False):
            events = decode_packets(reordered, lane=lane)
            assert by_direction(events) == expected, (i, lane)
            assert Issue.TCP_GAP not in issues_of(events), (i, lane)
            assert [s.ended_by for s in summaries(events)] == [s.ended_by for s in summaries(ordered)]
    assert moved >= 10


def test_a_response_recorded_before_its_request_is_still_an_upgrade() -> None:
    # The 101 was recorded before the request's segment that it acknowledges: it
    # waits for the request, so the handshake is seen in the order the peers spoke.
    packets = load("websockets_basic.pcap")
    data = data_packets(packets)
    request = data[0]
    assert bytes(packets[request].data).find(b"GET ") > 0
    reordered = move_after_ack(packets, request)
    assert reordered is not None
    events = decode_packets(reordered)
    (session,) = summaries(events)
    assert (session.status, session.handshake.accept_valid, session.issues) == (101, True, ())
    assert by_direction(events) == by_direction(decode_packets(packets))
