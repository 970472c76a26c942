"""Frames (RFC 6455 section 5): parsing, masking, violations, holes and hunting."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wsframes import encode_frame as frame
from wsinspect.frames import Frame, FrameParser, Hunter, close_code_allowed, unmask
from wsinspect.issues import Issue

KEY = bytes.fromhex("37fa213d")


def parse(data: bytes, client: bool = False, how: str = "whole", **kw: int) -> tuple[list[Frame], FrameParser]:
    p = FrameParser(client, **kw)
    out: list[Frame] = []
    if how == "whole":
        out += p.feed(data, 1.0, 1)
    else:
        for i in range(len(data)):
            out += p.feed(data[i : i + 1], 1.0, i + 1)
    return out, p


# RFC 6455 5.7 examples, each with its meaning.
HELLO_UNMASKED = bytes.fromhex("810548656c6c6f")  # single-frame unmasked text "Hello"
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")  # single-frame masked text "Hello"
HEL_LO_FRAGMENTS = bytes.fromhex("010348656c80026c6f")  # "Hel" + "lo", unmasked
PING_HELLO = bytes.fromhex("890548656c6c6f")  # unmasked ping "Hello"
PONG_HELLO_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")  # masked pong "Hello"


def test_rfc_examples_three_ways() -> None:
    stream = HELLO_UNMASKED + HEL_LO_FRAGMENTS + PING_HELLO
    for how in ("whole", "bytes"):
        frames, p = parse(stream, how=how)
        assert [(f.opcode, f.fin, f.payload) for f in frames] == [
            (1, True, b"Hello"),
            (1, False, b"Hel"),
            (0, True, b"lo"),
            (9, True, b"Hello"),
        ]
        assert all(not f.issues for f in frames)
        assert not p.mid_frame
    # trailing bytes of an incomplete frame stay buffered, unconsumed
    frames, p = parse(HELLO_UNMASKED + HELLO_UNMASKED[:4])
    assert len(frames) == 1 and p.mid_frame
    rest = p.feed(HELLO_UNMASKED[4:], 2.0, 2)
    assert [f.payload for f in rest] == [b"Hello"] and rest[0].packets == [1, 2]


def test_masked_client_frames() -> None:
    frames, _ = parse(HELLO_MASKED + PONG_HELLO_MASKED, client=True)
    assert [(f.opcode, f.payload, f.masking_key) for f in frames] == [(1, b"Hello", KEY), (10, b"Hello", KEY)]
    assert frames[0].header_length == 6
    assert not frames[0].issues


def test_every_length_form_three_ways() -> None:
    for n, hdr in ((0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)):
        payload = os.urandom(n)
        data = frame(2, payload, key=KEY)
        for how in ("whole", "bytes") if n < 1000 else ("whole",):
            frames, _ = parse(data, client=True, how=how)
            assert len(frames) == 1
            f = frames[0]
            assert (f.length, f.header_length, f.payload, f.issues) == (n, hdr + 4, payload, [])


def test_violations_flagged_and_frame_still_delivered() -> None:
    cases = [
        (frame(1, b"x"), True, Issue.CLIENT_UNMASKED),
        (frame(1, b"x", key=KEY), False, Issue.SERVER_MASKED),
        (frame(1, b"x", rsv=4), False, Issue.RSV_WITHOUT_EXTENSION),
        (frame(1, b"x", rsv=2), False, Issue.RSV_WITHOUT_EXTENSION),
        (frame(3, b"x"), False, Issue.RESERVED_OPCODE),
        (frame(0xB, b"x"), False, Issue.RESERVED_OPCODE),
        (frame(9, b"p" * 126), False, Issue.CONTROL_TOO_LONG),
        (frame(9, b"p", fin=False), False, Issue.CONTROL_FRAGMENTED),
        (frame(1, b"short", form=2), False, Issue.NON_MINIMAL_LENGTH),
        (frame(2, b"x" * 300, form=8), False, Issue.NON_MINIMAL_LENGTH),
    ]
    for data, client, issue in cases:
        frames, _ = parse(data + HELLO_UNMASKED if not client else data + HELLO_MASKED, client=client)
        assert frames[0].issues == [issue], issue
        assert frames[1].payload == b"Hello" and not frames[1].issues


def test_rsv1_allowed_with_extension_but_not_on_control_frames() -> None:
    frames, _ = parse(frame(1, b"x", rsv=4) + frame(9, b"", rsv=4), rsv_allowed=4)
    assert frames[0].issues == []
    assert frames[1].issues == [Issue.CONTROL_COMPRESSED]


def test_length_top_bit_stops_trusting_the_stream_then_resyncs() -> None:
    bad = bytes([0x82, 127]) + struct.pack("!Q", 1 << 63) + b"\xaa\xbb\xcc"
    p = FrameParser(False)
    frames = p.feed(bad, 1.0, 1)
    assert [f.issues for f in frames] == [[Issue.LENGTH_TOP_BIT]] and not frames[0].complete
    assert not p.synced
    later = p.feed(HELLO_UNMASKED + PING_HELLO, 2.0, 2)
    assert [f.payload for f in later] == [b"Hello", b"Hello"]
    # masked: the header includes the key, even fed a byte at a time
    masked = bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + KEY + b"\xaa"
    q = FrameParser(True)
    got = [f for i in range(len(masked)) for f in q.feed(masked[i : i + 1], 1.0, 1)]
    assert [(f.header_length, f.masking_key, f.issues) for f in got] == [(14, KEY, [Issue.LENGTH_TOP_BIT])]
    assert q.skipped == 0 and not q.synced


@pytest.mark.parametrize("size", [1, 3, 4, 5, 511, 512, 513, 4096, 65537])
def test_unmask_is_rfc_6455_xor(size: int) -> None:
    # Both ways of unmasking (small and large payloads) against the definition:
    # octet i XOR key octet i mod 4 (RFC 6455 5.3).
    data = os.urandom(size)
    key = os.urandom(4)
    assert unmask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert unmask(memoryview(data), key) == unmask(bytearray(data), key) == unmask(data, key)


def test_unmask_is_an_involution() -> None:
    data = os.urandom(1001)
    assert unmask(unmask(data, KEY), KEY) == data
    assert unmask(b"", KEY) == b""


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_masking_twice_is_identity(data: bytes, key: bytes) -> None:
    assert unmask(unmask(data, key), key) == data


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=70000), min_size=1, max_size=4), st.data())
def test_split_anywhere_parses_the_same(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(2, p, key=KEY) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    p = FrameParser(True)
    frames: list[Frame] = []
    prev = 0
    for i, cut in enumerate([*cuts, len(stream)]):
        frames += p.feed(stream[prev:cut], float(i), i + 1)
        prev = cut
    assert [f.payload for f in frames] == payloads
    assert not p.mid_frame


def test_gap_inside_a_payload_keeps_the_boundary() -> None:
    payload = bytes(range(256)) * 4
    data = frame(2, payload, key=KEY) + HELLO_MASKED
    p = FrameParser(True)
    first = p.feed(data[:100], 1.0, 1)
    assert first == []
    # 50 bytes are lost inside the payload: the rest is counted, not glued on
    rest = p.feed(data[150:], 2.0, 2, gap=50)
    assert len(rest) == 2
    damaged, hello = rest
    assert not damaged.complete and Issue.TCP_GAP in damaged.issues
    assert damaged.payload == payload[: 100 - 8]  # the bytes before the hole, unmasked right
    assert hello.payload == b"Hello" and not hello.issues and p.synced


def test_gap_over_a_header_hunts_for_the_next_trusted_boundary() -> None:
    p = FrameParser(True)
    assert [f.payload for f in p.feed(HELLO_MASKED, 1.0, 1)] == [b"Hello"]
    second = frame(1, b"lost message", key=KEY)
    third = frame(1, b"found again", key=KEY)
    # the hole takes the second frame's header: its payload tail cannot be trusted;
    # the third frame is trusted once the next segment starts with a frame as well
    assert p.feed(second[4:] + third, 2.0, 2, gap=4) == []
    frames = p.feed(HELLO_MASKED, 3.0, 3)
    assert [(f.payload, f.after_hunt) for f in frames] == [(b"found again", True), (b"Hello", False)]
    assert p.skipped == len(second) - 4


def test_hunter_trusts_chains_that_end_where_a_segment_ends() -> None:
    two = frame(1, b"abc", key=KEY) + frame(1, b"def", key=KEY)
    after = frame(2, b"next segment", key=KEY)
    # inside a segment: the chain must end where it ends, and the next segment must
    # start with a frame header too
    h = Hunter(True, 0)
    assert h.feed(b"\x00\xff\xfe" + two) is None
    assert h.feed(after) == 3
    h = Hunter(True, 0)
    assert h.feed(b"\x00\xff\xfe" + two) is None
    assert h.feed(b"\xff" * 20) is None  # no header where the next segment starts
    # at a segment's start, a chain ending with it is enough
    assert Hunter(True, 0).feed(two) == 0
    # a lone plausible header whose frame overruns the data is not trusted
    assert Hunter(True, 0).feed(bytes([0x81, 0x85]) + b"\x00" * 3) is None
    # masking must agree with the side
    assert Hunter(False, 0).feed(two) is None


def test_a_chain_ending_with_the_stream_is_trusted_at_its_end() -> None:
    p = FrameParser(True)
    second = frame(1, b"lost message", key=KEY)
    close = frame(8, b"\x03\xe8bye", key=KEY)
    # the hole takes the second frame's header; no segment follows the close frame
    # to confirm it with a next header: the stream's end does, as a segment's would
    assert [f.payload for f in p.feed(HELLO_MASKED + second[:3], 1.0, 1)] == [b"Hello"]
    assert p.feed(second[7:] + close, 2.0, 2, gap=4) == []
    (found,) = p.finish()
    assert (found.opcode, found.payload, found.after_hunt, found.ts, found.packets) == (
        8,
        b"\x03\xe8bye",
        True,
        2.0,
        [2],
    )
    # a chain that is not evidence enough (one binary frame) stays untrusted
    q = FrameParser(True)
    q.feed(HELLO_MASKED, 1.0, 1)
    assert q.feed(b"\x00" * 7 + frame(2, b"\x01\x02", key=KEY), 2.0, 2, gap=4) == []
    assert q.finish() == []


def test_finish_flags_a_cut_frame() -> None:
    p = FrameParser(False)
    assert p.feed(frame(2, b"x" * 1000)[:500], 1.0, 1) == []
    (cut,) = p.finish()
    assert Issue.FRAME_TRUNCATED in cut.issues and not cut.complete and len(cut.payload) == 496


def test_oversized_frame_is_cut_at_the_limit_and_decoding_continues() -> None:
    big = frame(2, b"z" * 5000)
    p = FrameParser(False, max_message_size=1000)
    frames = p.feed(big[:3000], 1.0, 1) + p.feed(big[3000:] + HELLO_UNMASKED, 2.0, 2)
    assert [len(f.payload) for f in frames] == [1000, 5]
    assert frames[0].issues == [Issue.MESSAGE_TOO_LARGE] and frames[0].length == 5000


def test_close_codes_allowed_on_the_wire() -> None:
    allowed = [c for c in range(0, 5001) if close_code_allowed(c)]
    assert 1000 in allowed and 1011 in allowed and 1014 in allowed and 3000 in allowed and 4999 in allowed
    for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000):
        assert not close_code_allowed(c), c


def test_the_size_cap_cuts_messages_not_control_frames() -> None:
    close = frame(8, b"\x03\xe8bye", key=KEY)
    data = frame(2, b"0123456789", key=KEY)
    for pieces in ([close + data], [close[:5], close[5:] + data[:7], data[7:]]):
        p = FrameParser(True, max_message_size=1)
        got = [f for piece in pieces for f in p.feed(piece, 1.0, 1)]
        assert [(f.opcode, f.payload, f.complete) for f in got] == [(8, b"\x03\xe8bye", True), (2, b"0", False)]
