"""permessage-deflate (RFC 7692): negotiation and byte-exact inflation."""

from __future__ import annotations

import os
import resource
import time
import zlib

from wsinspect.deflate import DeflateParams, Inflater, negotiate
from wsinspect.http import parse_extensions
from wsinspect.issues import Issue


def compress(messages: list[bytes], takeover: bool = True, wbits: int = 15) -> list[bytes]:
    """Compress as a permessage-deflate sender does (RFC 7692 7.2.1)."""
    out = []
    obj = zlib.compressobj(wbits=-wbits)
    for m in messages:
        if not takeover:
            obj = zlib.compressobj(wbits=-wbits)
        data = obj.compress(m) + obj.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        out.append(data[:-4])
    return out


def deflate_bomb(size: int) -> bytes:
    """A permessage-deflate payload that inflates to ``size`` zero bytes.

    A full flush resets the compressor, so every 1 MiB of zeros compresses to the
    same bytes: repeat them rather than compressing gigabytes.
    """
    obj = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = obj.compress(b"\x00" * (1 << 20)) + obj.flush(zlib.Z_FULL_FLUSH)
    return (one * (size >> 20))[:-4]


def test_rfc7692_examples() -> None:
    inf = Inflater(False, 1 << 20)
    # RFC 7692 7.2.3.1: "Hello" compressed, then again with context takeover (7.2.3.2)
    assert inf.inflate(bytes.fromhex("f248cdc9c90700")) == (b"Hello", None)
    assert inf.inflate(bytes.fromhex("f200110000")) == (b"Hello", None)
    # RFC 7692 7.2.3.3: a stored (uncompressed) block
    assert Inflater(False, 100).inflate(bytes.fromhex("0005 00fa ff48 656c 6c6f 00")) == (b"Hello", None)


def test_negotiate_parameters() -> None:
    params, ok = negotiate(
        parse_extensions("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
    )
    assert ok and params == DeflateParams(server_no_context_takeover=True, client_max_window_bits=10)
    assert negotiate(parse_extensions("x-webkit-deflate-frame")) == (DeflateParams(per_frame=True), True)
    assert negotiate(parse_extensions("foo")) == (None, True)
    for bad in (
        "permessage-deflate; client_max_window_bits",  # a response must carry a value
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown",
    ):
        params, ok = negotiate(parse_extensions(bad))
        assert params is not None and not ok, bad


def test_a_response_must_answer_one_of_the_offers() -> None:
    def check(offer: str, answer: str) -> bool:
        return negotiate(parse_extensions(answer), parse_extensions(offer))[1]

    pmd = "permessage-deflate"
    assert check(f"{pmd}; client_max_window_bits", f"{pmd}; client_max_window_bits=10")
    assert check(f"{pmd}; server_max_window_bits=10", f"{pmd}; server_max_window_bits=9")
    assert check(f"{pmd}; server_max_window_bits=10, {pmd}", pmd)  # the second offer accepted
    # a limit on the client's window that the client did not offer to take (7.1.2.2)
    assert not check(pmd, f"{pmd}; client_max_window_bits=10")
    # the server's window: kept at most as asked, and not left out (7.1.2.1)
    assert not check(f"{pmd}; server_max_window_bits=10", f"{pmd}; server_max_window_bits=12")
    assert not check(f"{pmd}; server_max_window_bits=10", pmd)


def test_the_negotiated_window_bounds_references_into_earlier_messages() -> None:
    first, second = os.urandom(2000), os.urandom(100)
    # compressed with a full window: the second message refers 2,000 bytes back
    wide = compress([first, first[:600] + second])
    assert Inflater(False, 1 << 20).inflate(wide[0])[0] == first
    narrow = Inflater(False, 1 << 20, window_bits=9)
    assert narrow.inflate(wide[0]) == (first, None)
    assert narrow.inflate(wide[1]) == (b"", Issue.INFLATE_FAILED)
    # a sender that keeps to 9 bits inflates byte-exact through the narrow window
    kept = Inflater(False, 1 << 20, window_bits=9)
    msgs = [first, first[-400:] + second]
    assert [kept.inflate(c) for c in compress(msgs, wbits=9)] == [(m, None) for m in msgs]


def test_context_takeover_and_no_context_takeover_byte_exact() -> None:
    msgs = [os.urandom(50) + b"common text " * 20 for _ in range(5)]
    for takeover in (True, False):
        inf = Inflater(not takeover, 1 << 20)
        assert [inf.inflate(c) for c in compress(msgs, takeover)] == [(m, None) for m in msgs]
    small = compress(msgs, wbits=9)
    inf = Inflater(False, 1 << 20)
    assert [inf.inflate(c)[0] for c in small] == msgs


def test_an_empty_compressed_payload_is_flagged_and_spares_the_window() -> None:
    msgs = [b"hello world", b"hello again, world"]
    first, second = compress(msgs)
    inf = Inflater(False, 1 << 20)
    assert inf.inflate(first) == (msgs[0], None)
    assert inf.inflate(b"") == (b"", Issue.INFLATE_FAILED)
    assert inf.inflate(second) == (msgs[1], None)  # still refers to the first message


def test_lost_message_breaks_later_references_loudly_then_recovers() -> None:
    base = os.urandom(2000)
    msgs = [base, base + b"x", os.urandom(40000), b"tail " + os.urandom(100)]
    comp = compress(msgs)
    inf = Inflater(False, 1 << 20)
    assert inf.inflate(comp[0]) == (base, None)
    inf.lose()  # message 1 is lost in the capture... (it would reference message 0)
    # message 2 is random data: no back-references, so it decodes right
    assert inf.inflate(comp[2]) == (msgs[2], None)
    # after a full window of trusted history, references resolve again
    assert inf.inflate(comp[3]) == (msgs[3], None)
    inf2 = Inflater(False, 1 << 20)
    inf2.inflate(comp[0])
    inf2.lose()
    payload, issue = inf2.inflate(comp[1])  # references the lost history
    assert issue is Issue.INFLATE_CONTEXT_LOST and payload == b""


def test_corrupt_stream_is_flagged() -> None:
    assert Inflater(False, 100).inflate(b"\xff\xff\xff\xff") == (b"", Issue.INFLATE_FAILED)


def test_decompression_bomb_is_cut_with_bounded_memory_and_time() -> None:
    bomb = deflate_bomb(4 << 30)
    assert len(bomb) < 5 << 20
    limit = 16 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    payload, issue = Inflater(False, limit).inflate(bomb)
    assert issue is Issue.MESSAGE_TOO_LARGE and len(payload) == limit
    # A guard against inflating the whole 4 GiB (minutes), not a timing: the figure
    # (under a second) is the README's, measured by the benchmark.
    assert time.monotonic() - start < 60
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 3 * limit // 1024
