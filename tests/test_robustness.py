"""Bad input never crashes the decoder: mutated, truncated, shuffled and random data."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CAPTURES, decode_packets, run_cli
from tests.packets import Flow, upgrade_request, upgrade_response, write_pcap, ws_frame
from wsinspect.capture import open_capture
from wsinspect.frames import FrameParser
from wsinspect.messages import Message
from wsinspect.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    RawPacket,
)
from wsinspect.session import Options

SMALL = ["violations.pcap", "raw_edge.pcap", "aiohttp_basic.pcap", "websockets_many.pcap", "rejected.pcap"]


def _packets(name: str) -> list[RawPacket]:
    reader = open_capture(str(CAPTURES / name))
    packets = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data))) for p in reader]
    reader.close()
    return packets


def test_mutated_real_captures_never_raise() -> None:
    rng = random.Random(6455)
    for name in SMALL:
        packets = _packets(name)
        for _ in range(25):
            mutated = []
            for p in packets:
                data = bytearray(p.data)
                if data and rng.random() < 0.2:
                    for _ in range(rng.randint(1, 4)):
                        data[rng.randrange(len(data))] = rng.randrange(256)
                if data and rng.random() < 0.05:
                    del data[rng.randrange(len(data)) :]
                if rng.random() < 0.03:
                    continue  # dropped
                mutated.append(RawPacket(p.ts, p.linktype, memoryview(bytes(data))))
            if rng.random() < 0.5:
                i, j = rng.randrange(len(mutated)), rng.randrange(len(mutated))
                mutated[i], mutated[j] = mutated[j], mutated[i]
            # Damage is where the fast lane hands over to the general path: both
            # must see the same thing.
            general = decode_packets(mutated, lane=False)
            assert decode_packets(mutated) == general
            quiet = decode_packets(mutated, Options(messages=False))
            assert quiet == [ev for ev in general if not isinstance(ev, Message)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [LINKTYPE_ETHERNET, LINKTYPE_NULL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, 999]
    ),
    st.lists(st.binary(max_size=120), max_size=20),
)
def test_random_packets_never_raise(linktype: int, blobs: list[bytes]) -> None:
    decode_packets(RawPacket(float(i), linktype, memoryview(b)) for i, b in enumerate(blobs))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=200), st.integers(0, 300)), max_size=12), st.booleans())
def test_random_frame_bytes_with_holes_never_raise(chunks: list[tuple[bytes, int]], client: bool) -> None:
    p = FrameParser(client, rsv_allowed=4)
    total = 0
    for i, (data, gap) in enumerate(chunks):
        for f in p.feed(data, float(i), i + 1, gap if i % 3 == 0 else 0):
            total += 1
            assert len(f.payload) <= max(f.length, 0)
    p.finish()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.binary(max_size=600))
def test_random_websocket_traffic_after_a_valid_handshake_never_raises(c2s: bytes, s2c: bytes) -> None:
    f = Flow().websocket(extensions="permessage-deflate")
    f.c(c2s, mss=97)
    f.s(s2c, mss=53)
    f.c(ws_frame(1, b"still here", mask=True))
    f.rst()
    events = decode_packets(f.packets)
    assert all(not isinstance(e, Message) or e.session == 1 for e in events)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_http_never_raises(junk: bytes) -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request()[:40] + junk)
    f.s(junk + upgrade_response())
    decode_packets(f.packets)


def test_cli_on_garbage_payloads_prints_what_decodes(tmp_path: Path) -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, b"before", mask=True))
    f.c(bytes(range(256)) * 4)
    f.s(b"\xff" * 3000)
    f.c(ws_frame(1, b"\x1b]0;pwned\x07", mask=True))
    path = write_pcap(tmp_path / "garbage.pcap", f.packets)
    r = run_cli("read", str(path))
    out = r.stdout.decode()
    assert r.returncode == 0 and b"Traceback" not in r.stderr
    assert '"before"' in out and "\x1b" not in out and "\x07" not in out
