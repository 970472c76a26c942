"""tls.py over in-memory TLS transcripts (tests/tls_transcript.py) and over the real captures of make_tls_captures.py.

Every transcript is fed three ways: each write as it was written, one byte at a time, and with the writes of a
direction glued together where the protocol allows it (the client's writes before the server's answer).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tls_pcap import connections, frames
from tests.tls_transcript import (
    CLIENT,
    OP_NO_ENCRYPT_THEN_MAC,
    OP_NO_EXTENDED_MASTER_SECRET,
    SERVER,
    Pair,
    Transcript,
    certificate,
)
from wsinspect.issues import Issue
from wsinspect.tls import HRR_RANDOM, KeyLog, Plaintext, TlsConnection, hkdf_expand_label, looks_like_tls, prf

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures" / "tls"

Feeder = Callable[[list[tuple[int, bytes]]], Iterator[tuple[int, bytes]]]


def as_written(wire: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    yield from wire


def byte_at_a_time(wire: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    for d, data in wire:
        for i in range(len(data)):
            yield d, data[i : i + 1]


def glued(wire: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """Consecutive writes of one direction in one piece: several records per feed, records across feeds."""
    pending: list[bytes] = []
    last = None
    for d, data in wire:
        if d != last and pending:
            yield last, b"".join(pending)  # type: ignore[misc]
            pending = []
        pending.append(data)
        last = d
    if pending:
        yield last, b"".join(pending)  # type: ignore[misc]


FEEDERS = [as_written, byte_at_a_time, glued]


def decrypt(
    transcript: Transcript, keylog: KeyLog, feeder: Feeder = as_written
) -> tuple[TlsConnection, dict[int, bytes], list[Plaintext]]:
    conn = TlsConnection(keylog, CLIENT)
    pieces: list[Plaintext] = []
    for d, data in feeder(transcript.wire):
        pieces.extend(conn.feed(d, data))
    pieces.extend(conn.finish())
    out = {CLIENT: b"", SERVER: b""}
    for piece in pieces:
        out[piece.direction] += piece.data
    return conn, out, pieces


def merged(pieces: list[Plaintext], direction: int) -> list[Plaintext]:
    """The pieces of one direction, joined where no gap separates them (feeds of one byte give many)."""
    out: list[Plaintext] = []
    for piece in pieces:
        if piece.direction != direction:
            continue
        if out and not piece.gap_before:
            out[-1] = Plaintext(direction, out[-1].data + piece.data, out[-1].gap_before)
        else:
            out.append(Plaintext(direction, piece.data, piece.gap_before))
    return out


def keylog_of(pair: Pair) -> KeyLog:
    keylog = KeyLog()
    keylog.add(pair.keylog())
    return keylog


def exchange(pair: Pair, rng: random.Random, rounds: int = 3) -> None:
    """An Upgrade-like request, then messages of several sizes both ways (one over the 16 KB record limit)."""
    pair.send(CLIENT, b"GET /chat HTTP/1.1\r\nHost: wsinspect.test\r\nUpgrade: websocket\r\n\r\n")
    pair.send(SERVER, b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    for i in range(rounds):
        pair.send(CLIENT, rng.randbytes(1 + i * 700))
        pair.send(SERVER, rng.randbytes(40_000 if i == 1 else 3 + i))


def check_exact(pair: Pair, keylog: KeyLog | None = None, feeders: list[Feeder] = FEEDERS) -> TlsConnection:
    conn = None
    for feeder in feeders:
        conn, out, _ = decrypt(pair.transcript, keylog or keylog_of(pair), feeder)
        assert out[CLIENT] == pair.transcript.sent[CLIENT], feeder.__name__
        assert out[SERVER] == pair.transcript.sent[SERVER], feeder.__name__
        assert conn.info.decrypted and conn.info.reason is None
        assert conn.issues == [], (feeder.__name__, conn.issues)
    assert conn is not None
    return conn


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# -- suites ----------------------------------------------------------------------------------------------------------

TLS13_SUITES = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
]


@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_tls13_suites(tmp: Path, suite: str) -> None:
    pair = Pair(tmp, suites13=suite, alpn=["http/1.1"])
    exchange(pair, random.Random(suite))
    pair.close()
    conn = check_exact(pair)
    assert (conn.info.version, conn.info.cipher) == ("TLS 1.3", suite)
    # ALPN travels in EncryptedExtensions: read only because the handshake was decrypted.
    assert (conn.info.sni, conn.info.alpn) == ("wsinspect.test", "http/1.1")
    assert conn.info.alerts == [(CLIENT, 1, 0), (SERVER, 1, 0)]  # both close_notify


def test_tls13_record_padding(tmp: Path) -> None:
    """RFC 8446 5.4: zeros after the inner content type are padding, stripped (OpenSSL pads when asked to)."""
    pair = Pair(tmp, block_padding=256)
    exchange(pair, random.Random(14))
    pair.close()
    assert any(len(data) % 256 == 5 + 16 for d, data in pair.transcript.wire if data[0] == 23 and len(data) < 600)
    check_exact(pair)


# (OpenSSL cipher string, certificate, IANA name, Encrypt-then-MAC on)
TLS12_SUITES = [
    ("ECDHE-RSA-AES128-GCM-SHA256", "rsa", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", True),
    ("ECDHE-RSA-AES256-GCM-SHA384", "rsa", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", True),
    ("ECDHE-RSA-CHACHA20-POLY1305", "rsa", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", True),
    ("ECDHE-ECDSA-AES128-CCM", "ec", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", True),
    ("ECDHE-ECDSA-AES256-CCM8", "ec", "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", True),
    ("AES128-GCM-SHA256", "rsa", "TLS_RSA_WITH_AES_128_GCM_SHA256", True),
    ("ECDHE-RSA-AES128-SHA", "rsa", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", True),
    ("ECDHE-RSA-AES128-SHA", "rsa", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", False),
    ("ECDHE-RSA-AES128-SHA256", "rsa", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", True),
    ("ECDHE-RSA-AES256-SHA384", "rsa", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", False),
    ("AES256-SHA", "rsa", "TLS_RSA_WITH_AES_256_CBC_SHA", True),
]


@pytest.mark.parametrize(("ciphers", "cert", "name", "etm"), TLS12_SUITES)
def test_tls12_suites(tmp: Path, ciphers: str, cert: str, name: str, etm: bool) -> None:
    pair = Pair(tmp, tls12=True, ciphers=ciphers, cert=cert, options=0 if etm else OP_NO_ENCRYPT_THEN_MAC)
    exchange(pair, random.Random(name))
    pair.close()
    conn = check_exact(pair)
    assert (conn.info.version, conn.info.cipher) == ("TLS 1.2", name)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls10_tls11_cbc(tmp: Path, version: ssl.TLSVersion) -> None:
    """TLS 1.0 (IV chained from the previous record) and 1.1 (explicit IV), PRF of MD5 and SHA-1 (RFC 2246 5)."""
    try:
        pair = Pair(tmp, version_min=version, ciphers="ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
    except ssl.SSLError as e:  # an OpenSSL built without them
        pytest.skip(f"OpenSSL refuses {version.name}: {e}")
    exchange(pair, random.Random(version.name))
    pair.close()
    conn = check_exact(pair)
    assert conn.info.version == {ssl.TLSVersion.TLSv1: "TLS 1.0", ssl.TLSVersion.TLSv1_1: "TLS 1.1"}[version]


_SPLIT_PAIR: list[Pair] = []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=12))
def test_split_anywhere_decrypts_the_same(tmp: Path, cuts: list[int]) -> None:
    """Property: however each direction's bytes are cut into feeds, the plaintext is the same."""
    if not _SPLIT_PAIR:
        pair = Pair(tmp, tls12=True, ciphers="ECDHE-RSA-AES128-SHA256")
        exchange(pair, random.Random(13))
        pair.close()
        _SPLIT_PAIR.append(pair)
    pair = _SPLIT_PAIR[0]

    def split(wire: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
        for i, (d, data) in enumerate(wire):
            points = sorted({c % (len(data) + 1) for c in cuts[i % 3 :: 3]} | {0, len(data)})
            for start, stop in itertools.pairwise(points):
                yield d, data[start:stop]

    check_exact(pair, keylog_of(pair), feeders=[split])


# -- handshake variants ----------------------------------------------------------------------------------------------


def test_hello_retry_request(tmp: Path) -> None:
    """The client's key share (X25519) is not among the server's groups: HRR, a second ClientHello (RFC 8446 4.1.4)."""
    pair = Pair(tmp, server_groups="P-384")
    assert HRR_RANDOM in pair.transcript.stream(SERVER)
    exchange(pair, random.Random(1))
    pair.close()
    assert check_exact(pair).info.version == "TLS 1.3"


@pytest.mark.parametrize("tls12", [False, True])
def test_resumption(tmp: Path, tls12: bool) -> None:
    """TLS 1.3 PSK resumption (RFC 8446 2.2) and TLS 1.2 ticket resumption (RFC 5077): the key log names the
    resumed connection's own client random."""
    first = Pair(tmp, tls12=tls12)
    exchange(first, random.Random(2), rounds=1)
    session = first.client.session
    assert session is not None
    second = Pair(tmp, tls12=tls12, session=session, client_ctx=first.client_ctx, server_ctx=first.server_ctx)
    assert second.client.session_reused
    exchange(second, random.Random(3))
    second.close()
    conn = check_exact(second)
    assert conn.info.resumed or tls12  # a TLS 1.2 ticket resumption echoes no session id to compare


def test_key_update(tmp: Path) -> None:
    """RFC 8446 4.6.3: each side updates its keys, once without and once with update_requested (the peer answers
    with a KeyUpdate of its own on its next write)."""
    pair = Pair(tmp)
    rng = random.Random(4)
    exchange(pair, rng, rounds=1)
    pair.key_update(CLIENT, request=False)
    pair.send(CLIENT, rng.randbytes(300))
    pair.send(SERVER, rng.randbytes(300))
    pair.key_update(SERVER, request=True)
    pair.send(SERVER, rng.randbytes(20_000))
    pair.send(CLIENT, rng.randbytes(50))  # carries the client's answering KeyUpdate first
    pair.key_update(CLIENT, request=True)
    pair.send(CLIENT, rng.randbytes(70))
    pair.send(SERVER, rng.randbytes(80))
    pair.close()
    check_exact(pair)


def test_key_update_lost_in_a_gap(tmp: Path) -> None:
    """The server's KeyUpdate and the first record under its new key are lost: the search finds the next
    generation of its traffic secret, at sequence number 1."""
    pair = Pair(tmp)
    rng = random.Random(15)
    exchange(pair, rng, rounds=1)
    for _ in range(5):
        pair.send(SERVER, rng.randbytes(1000))
    pair.key_update(SERVER, request=False)
    lost_at = len(pair.transcript.stream(SERVER))
    pair.send(SERVER, rng.randbytes(100))  # carries the KeyUpdate, then this message's record
    lost = len(pair.transcript.stream(SERVER)) - lost_at
    for _ in range(5):
        pair.send(SERVER, rng.randbytes(1000))
    pair.close()
    pieces = merged(cut(pair, SERVER, lost_at, lost_at + lost), SERVER)
    sent = bytes(pair.transcript.sent[SERVER])
    assert [p.gap_before for p in pieces] == [False, True]
    assert len(pieces[0].data) + 100 + len(pieces[1].data) == len(sent)
    assert sent.startswith(pieces[0].data) and sent.endswith(pieces[1].data)


def test_renegotiation(tmp: Path) -> None:
    """TLS 1.2 renegotiation (RFC 5246 7.4.1.1, RFC 5746): the second handshake runs inside the first one's
    records; each direction switches to the new keys at its change_cipher_spec."""
    pair = Pair(tmp, tls12=True, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    rng = random.Random(5)
    exchange(pair, rng, rounds=1)
    pair.renegotiate()
    pair.send(CLIENT, rng.randbytes(500))
    pair.send(SERVER, rng.randbytes(500))
    pair.close()
    assert pair.keylog().count(b"CLIENT_RANDOM") == 2
    check_exact(pair)


@pytest.mark.parametrize("ems", [True, False])
def test_rsa_premaster_key_log(tmp: Path, ems: bool) -> None:
    """`RSA` and `PMS_CLIENT_RANDOM` lines (pre-master secret): the master secret is derived here, from the session
    hash with Extended Master Secret (RFC 7627 4). The pre-master secret is recovered with the server's key."""
    pair = Pair(tmp, tls12=True, ciphers="AES128-GCM-SHA256", options=0 if ems else OP_NO_EXTENDED_MASTER_SECRET)
    exchange(pair, random.Random(6), rounds=1)
    pair.close()
    client_stream = pair.transcript.stream(CLIENT)
    # ClientKeyExchange: the first handshake message of type 16 in the client's cleartext records.
    at = client_stream.index(b"\x16\x03\x03", 5)
    cke = client_stream[at + 5 :]
    assert cke[0] == 16
    epms = cke[6 : 6 + int.from_bytes(cke[4:6], "big")]
    key = serialization.load_pem_private_key(certificate(tmp, "rsa")[1].read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    pms = key.decrypt(epms, padding.PKCS1v15())
    client_random = client_stream[11:43]
    for line in (f"RSA {epms[:8].hex()} {pms.hex()}", f"PMS_CLIENT_RANDOM {client_random.hex()} {pms.hex()}"):
        keylog = KeyLog()
        keylog.add(line.encode())
        check_exact(pair, keylog, feeders=[as_written])


# -- damage ------------------------------------------------------------------------------------------------------------


def big_transfer(tmp: Path, **options: object) -> Pair:
    pair = Pair(tmp, **options)  # type: ignore[arg-type]
    rng = random.Random(7)
    pair.send(CLIENT, b"GET / HTTP/1.1\r\n\r\n")
    for _ in range(10):
        pair.send(SERVER, rng.randbytes(30_000))
    pair.send(CLIENT, b"bye")
    pair.close()
    return pair


@pytest.mark.parametrize("options", [{}, {"tls12": True, "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}])
@pytest.mark.parametrize("feeder", FEEDERS[:2])
def test_gap_resumes_on_next_record(tmp: Path, options: dict[str, object], feeder: Feeder) -> None:
    """Lose 50,000 bytes of the server's stream from the middle of a record: flagged, and decryption resumes on the
    next whole record, whose sequence number is found by search; every piece is exact plaintext."""
    pair = big_transfer(tmp, **options)
    stream = pair.transcript.stream(SERVER)
    cut_from, cut_to = len(stream) // 3, len(stream) // 3 + 50_000
    conn = TlsConnection(keylog_of(pair), CLIENT)
    pieces: list[Plaintext] = []
    server_done = False
    for d, data in feeder(pair.transcript.wire):
        if d == SERVER:
            if server_done:
                continue
            server_done = True
            pieces += conn.feed(SERVER, stream[:cut_from])
            chunks = list(feeder([(SERVER, stream[cut_to:])]))
            pieces += conn.feed(SERVER, chunks[0][1], gap=cut_to - cut_from)
            for _, chunk in chunks[1:]:
                pieces += conn.feed(SERVER, chunk)
        else:
            pieces += conn.feed(d, data)
    pieces += conn.finish()
    sent = bytes(pair.transcript.sent[SERVER])
    server = merged(pieces, SERVER)
    assert [p.gap_before for p in server] == [False, True]
    assert sent.startswith(server[0].data) and sent.endswith(server[1].data)
    lost = len(sent) - len(server[0].data) - len(server[1].data)
    assert 50_000 - 2 * 16_400 < lost < 50_000 + 2 * 16_400  # at most a record's worth either side of the hole
    assert b"".join(p.data for p in pieces if p.direction == CLIENT) == pair.transcript.sent[CLIENT]
    assert Issue.TLS_GAP in conn.issues and Issue.TLS_DECRYPT_FAILED not in conn.issues
    assert conn.info.decrypted


def cut(pair: Pair, direction: int, start: int, stop: int) -> list[Plaintext]:
    """Feed the transcript as written with bytes [start, stop) of one direction's stream lost."""
    conn = TlsConnection(keylog_of(pair), CLIENT)
    pieces: list[Plaintext] = []
    at = 0
    for d, data in pair.transcript.wire:
        if d != direction:
            pieces += conn.feed(d, data)
            continue
        begin, end = at, at + len(data)
        at = end
        if end <= start or begin >= stop:
            pieces += conn.feed(d, data, gap=stop - start if begin == stop else 0)
        else:
            if begin < start:
                pieces += conn.feed(d, data[: start - begin])
            if end > stop:
                pieces += conn.feed(d, data[stop - begin :], gap=stop - start)
    pieces += conn.finish()
    assert Issue.TLS_GAP in conn.issues and Issue.TLS_DECRYPT_FAILED not in conn.issues, conn.issues
    assert conn.info.reason is None
    return pieces


def test_gap_in_tls13_server_handshake(tmp: Path) -> None:
    """Bytes lost inside the server's encrypted Certificate: its Finished is found by the sequence search under the
    handshake key, and the application data after it decrypts under the traffic key."""
    pair = big_transfer(tmp)
    flight = pair.transcript.wire[1][1]
    assert pair.transcript.wire[1][0] == SERVER and len(flight) > 1000
    pieces = cut(pair, SERVER, 300, 600)
    assert b"".join(p.data for p in merged(pieces, SERVER)) == pair.transcript.sent[SERVER]
    assert b"".join(p.data for p in merged(pieces, CLIENT)) == pair.transcript.sent[CLIENT]


@pytest.mark.parametrize("ciphers", ["ECDHE-RSA-AES128-SHA", "ECDHE-RSA-CHACHA20-POLY1305"])
def test_gap_tls12_sequence_search(tmp: Path, ciphers: str) -> None:
    """TLS 1.2 CBC (the HMAC covers the sequence number) and ChaCha20 (the nonce is derived from it): after lost
    records, the right sequence number is found by search."""
    pair = Pair(tmp, tls12=True, ciphers=ciphers)
    rng = random.Random(11)
    for _ in range(30):
        pair.send(SERVER, rng.randbytes(1000))
    pair.close()
    stream = pair.transcript.stream(SERVER)
    pieces = merged(cut(pair, SERVER, len(stream) // 2, len(stream) // 2 + 5000), SERVER)
    sent = bytes(pair.transcript.sent[SERVER])
    assert [p.gap_before for p in pieces] == [False, True]
    assert sent.startswith(pieces[0].data) and sent.endswith(pieces[1].data)
    assert len(pieces[0].data) + len(pieces[1].data) >= len(sent) - 7000


def test_alpn_h2_is_reported(tmp: Path) -> None:
    """ALPN h2: the caller routes the plaintext to HTTP/2, not to the HTTP/1.1 Upgrade path."""
    pair = Pair(tmp, alpn=["h2"])
    exchange(pair, random.Random(12), rounds=1)
    assert check_exact(pair, feeders=[as_written]).info.alpn == "h2"


def test_gap_in_client_hello(tmp: Path) -> None:
    pair = big_transfer(tmp)
    conn = TlsConnection(keylog_of(pair), CLIENT)
    hello = pair.transcript.wire[0][1]
    assert conn.feed(CLIENT, hello[:10]) == []
    assert conn.feed(CLIENT, hello[40:], gap=30) == []
    for d, data in pair.transcript.wire[1:]:
        assert conn.feed(d, data) == []
    conn.finish()
    assert conn.info.reason == "gap before keys" and not conn.info.decrypted
    assert Issue.TLS_NOT_DECRYPTED in conn.issues


def test_tampered_record(tmp: Path) -> None:
    """One flipped byte: that record fails its tag (tls-decrypt-failed) and is dropped, the rest decrypts."""
    pair = big_transfer(tmp, tls12=True, ciphers="ECDHE-RSA-CHACHA20-POLY1305")
    wire = list(pair.transcript.wire)
    index = max(i for i, (d, _) in enumerate(wire) if d == SERVER and len(wire[i][1]) > 20_000)
    d, data = wire[index]
    wire[index] = (d, data[:1000] + bytes((data[1000] ^ 1,)) + data[1001:])
    conn, out, pieces = decrypt(Transcript(wire=wire), keylog_of(pair))
    assert Issue.TLS_DECRYPT_FAILED in conn.issues
    sent = bytes(pair.transcript.sent[SERVER])
    server = [p for p in pieces if p.direction == SERVER]
    assert any(p.gap_before for p in server)
    assert all(p.data in sent for p in server)
    assert len(sent) - len(out[SERVER]) <= 16_384


def test_wrong_key(tmp: Path) -> None:
    """A key log line for this connection with the wrong secret: nothing comes out, the reason says so."""
    pair = big_transfer(tmp)
    text = pair.keylog()
    lines = [line.split(b" ") for line in text.splitlines() if not line.startswith(b"#")]
    bad = b"\n".join(b" ".join([label, random_, bytes(reversed(secret))]) for label, random_, secret in lines)
    keylog = KeyLog()
    keylog.add(bad)
    for feeder in FEEDERS[:2]:
        conn, out, _ = decrypt(pair.transcript, keylog, feeder)
        assert out == {CLIENT: b"", SERVER: b""}
        assert conn.info.reason == "key does not verify" and not conn.info.decrypted
        assert Issue.TLS_DECRYPT_FAILED in conn.issues


def test_no_key(tmp: Path) -> None:
    pair = big_transfer(tmp, tls12=True)
    for keylog in (KeyLog(), KeyLog.from_paths([tmp / "absent.log"])):
        conn, out, _ = decrypt(pair.transcript, keylog)
        assert out == {CLIENT: b"", SERVER: b""}
        assert (conn.info.reason, conn.info.version, conn.info.sni) == ("no key", "TLS 1.2", "wsinspect.test")


def test_unsupported_cipher_is_reported(tmp: Path) -> None:
    pair = Pair(tmp, tls12=True, ciphers="ECDHE-RSA-CAMELLIA128-SHA256:@SECLEVEL=0")
    exchange(pair, random.Random(8), rounds=1)
    conn, out, _ = decrypt(pair.transcript, keylog_of(pair))
    assert out == {CLIENT: b"", SERVER: b""}
    assert conn.info.reason == "unsupported cipher 0xC076"  # TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256


def test_garbage_never_raises() -> None:
    rng = random.Random(9)
    for _ in range(300):
        conn = TlsConnection(KeyLog(), rng.choice([0, 1, None]))
        for _ in range(rng.randrange(1, 6)):
            blob = bytes([22, 3, 3]) + rng.randbytes(rng.randrange(0, 300)) if rng.random() < 0.5 else b""
            blob += rng.randbytes(rng.randrange(0, 300))
            conn.feed(rng.randrange(2), blob, gap=rng.choice([0, 0, 5]))
        conn.finish()


def test_mutated_transcript_never_raises(tmp: Path) -> None:
    pair = big_transfer(tmp, tls12=True, ciphers="ECDHE-RSA-AES128-SHA")
    keylog = keylog_of(pair)
    rng = random.Random(10)
    for _ in range(40):
        wire = [(d, bytearray(data)) for d, data in pair.transcript.wire[:12]]
        for _ in range(5):
            _d, data = rng.choice(wire)
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        _conn, out, _ = decrypt(Transcript(wire=[(d, bytes(b)) for d, b in wire]), keylog)
        sent = bytes(pair.transcript.sent[SERVER])
        assert all(piece in sent for piece in (out[SERVER][:100], out[SERVER][-100:]))


@pytest.mark.parametrize(
    "options",
    [
        {"tls12": True, "ciphers": "ECDHE-RSA-AES128-SHA"},
        {"tls12": True, "ciphers": "ECDHE-RSA-AES128-SHA", "options": OP_NO_ENCRYPT_THEN_MAC},
        {"tls12": True, "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"},
        {"suites13": "TLS_AES_128_CCM_8_SHA256"},
    ],
)
def test_short_records_after_the_handshake(tmp: Path, options: dict[str, object]) -> None:
    """Hand-made protected records too short for their cipher (0 to 48 bytes): a tag failure each, never a raise."""
    pair = big_transfer(tmp, **options)
    conn = TlsConnection(keylog_of(pair), CLIENT)
    for d, data in pair.transcript.wire[:4]:
        conn.feed(d, data)
    for size in (0, 1, 8, 15, 16, 17, 24, 31, 32, 33, 48):
        assert conn.feed(SERVER, b"\x17\x03\x03" + size.to_bytes(2, "big") + bytes(size)) == []
    conn.finish()
    assert Issue.TLS_DECRYPT_FAILED in conn.issues


def test_oversized_record_is_malformed(tmp: Path) -> None:
    pair = big_transfer(tmp)
    conn = TlsConnection(keylog_of(pair), CLIENT)
    for d, data in pair.transcript.wire[:4]:
        conn.feed(d, data)
    conn.feed(SERVER, b"\x17\x03\x03\xff\xff" + b"\0" * 100)
    assert Issue.TLS_RECORD_MALFORMED in conn.issues


def test_midstream_and_sslv2() -> None:
    conn = TlsConnection(KeyLog(), None)
    assert conn.feed(0, b"\x17\x03\x03\x00\x20" + bytes(32)) == []
    assert conn.info.reason == "capture starts mid-TLS (no handshake)"
    conn = TlsConnection(KeyLog(), 0)
    assert conn.feed(0, b"\x17\x03\x03\x00\x20" + bytes(32)) == []
    assert conn.info.reason == "capture starts mid-TLS (no handshake)"
    sslv2 = bytes.fromhex("802e0103010015000000100700c0030080060040040080020080") + bytes(16)
    assert looks_like_tls(sslv2)
    conn = TlsConnection(KeyLog(), 0)
    conn.feed(0, sslv2)
    assert conn.info.reason == "SSLv2-format ClientHello (not decrypted)"


def test_looks_like_tls(tmp: Path) -> None:
    hello = Pair(tmp).transcript.wire[0][1]
    assert looks_like_tls(hello) and looks_like_tls(hello[:6]) and looks_like_tls(hello[:1])
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x16\x03\x03\x00\x10\x02")  # a ServerHello: not a client's first bytes
    assert not looks_like_tls(b"")


# -- key log -----------------------------------------------------------------------------------------------------------


def test_keylog_lines_and_secrecy(tmp: Path) -> None:
    secret = "ab" * 48
    path = tmp / "k.log"
    path.write_text(
        "# comment\n"
        f"CLIENT_RANDOM {'01' * 32} {secret}\n"
        "CLIENT_RANDOM 0102 zz\n"
        "FUTURE_LABEL 00 00\n"  # well formed, unknown: ignored, not bad
        "garbage\n"
        f"CLIENT_TRAFFIC_SECRET_0 {'02' * 32}\n"
        f"SERVER_TRAFFIC_SECRET_0 {'03' * 32} {'cd' * 32}\n"
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {'04' * 32} {'ef' * 16}"  # no newline yet: still being written
    )
    keylog = KeyLog.from_paths([path])
    assert keylog.bad_lines == 3 and len(keylog) == 2
    assert keylog.get("CLIENT_RANDOM", bytes([1]) * 32) == bytes.fromhex(secret)
    assert secret not in repr(keylog) and "ab" * 4 not in str(keylog)
    assert keylog.get("SERVER_HANDSHAKE_TRAFFIC_SECRET", bytes([4]) * 32) is None
    with path.open("a") as f:  # the writer finishes the line and adds one: found by the lookup that missed
        f.write(f"{'ef' * 16}\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {'05' * 32} {'aa' * 32}\n")
    assert keylog.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET", bytes([5]) * 32) == bytes([0xAA]) * 32
    assert keylog.get("SERVER_HANDSHAKE_TRAFFIC_SECRET", bytes([4]) * 32) == bytes([0xEF]) * 32
    assert keylog.bad_lines == 3


def test_keylog_grows_during_capture(tmp: Path) -> None:
    """Live capture: the handshake is seen before its keys are written; the lookup at the ServerHello re-reads."""
    pair = big_transfer(tmp)
    path = tmp / "live.log"
    path.write_bytes(b"")
    keylog = KeyLog.from_paths([path])
    conn = TlsConnection(keylog, CLIENT)
    out = b""
    for i, (d, data) in enumerate(pair.transcript.wire):
        if i == 1:
            path.write_bytes(pair.keylog())
        out += b"".join(p.data for p in conn.feed(d, data) if p.direction == SERVER)
    assert out == pair.transcript.sent[SERVER]


# -- primitives against published vectors --------------------------------------------------------------------------


def test_prf_and_hkdf_vectors() -> None:
    # TLS 1.2 PRF-SHA256 test vector (IETF TLS list, widely reproduced: "test label", 100 bytes).
    out = prf(
        0x0303,
        "sha256",
        bytes.fromhex("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"),
        100,
    )
    assert out[:16].hex() == "e3f229ba727be17b8d122620557cd453"
    # RFC 8448 3: client_handshake_traffic_secret -> client handshake write key and IV.
    secret = bytes.fromhex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
    assert hkdf_expand_label("sha256", secret, b"key", b"", 16).hex() == "dbfaa693d1762c5b666af5d950258d01"
    assert hkdf_expand_label("sha256", secret, b"iv", b"", 12).hex() == "5bd3c71b836e0b76bb73265f"


# -- real captures -----------------------------------------------------------------------------------------------------


def tls_captures() -> list[Path]:
    return sorted(CAPTURES.glob("tls*.truth.json"))


def ws_payloads(stream: bytes) -> list[tuple[int, bytes]]:
    """(opcode, unmasked payload) of each WebSocket frame after the HTTP head: the least needed to compare the
    decrypted bytes with the truth (full WebSocket decoding of TLS streams comes with the integration)."""
    at = stream.index(b"\r\n\r\n") + 4
    found = []
    while at < len(stream):
        first, second = stream[at], stream[at + 1]
        size, at = second & 0x7F, at + 2
        if size >= 126:
            width = 2 if size == 126 else 8
            size, at = int.from_bytes(stream[at : at + width], "big"), at + width
        key = stream[at : at + 4] if second & 0x80 else bytes(4)
        at += 4 if second & 0x80 else 0
        payload = stream[at : at + size]
        at += size
        mask = (key * (size // 4 + 1))[:size]
        found.append(
            (first & 0x0F, (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big"))
        )
    return found


def truth_payload(message: dict[str, Any]) -> tuple[int, bytes | str]:
    """(opcode, payload or its SHA-256 hex) of a truth message."""
    opcode = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}[message["opcode"]]
    if "sha256" in message:
        return opcode, message["sha256"]
    if "close_code" in message:
        return opcode, message["close_code"].to_bytes(2, "big") + message["close_reason"].encode()
    return opcode, message["text"].encode() if "text" in message else base64.b64decode(message["data"])


@pytest.mark.parametrize("truth_path", tls_captures(), ids=lambda p: p.name.removesuffix(".truth.json"))
def test_capture(truth_path: Path) -> None:
    """Only tls.py decrypts (the key log from NAME.keys, or from the pcapng's Decryption Secrets Block): each
    direction's plaintext is the Upgrade request or 101 response followed by exactly the logged frames."""
    truth = json.loads(truth_path.read_text())
    capture = CAPTURES / truth["capture"]
    keylog = KeyLog.from_paths([CAPTURES / truth["keylog"]]) if truth["keylog"] else KeyLog()
    secrets = frames(capture)[1]
    assert bool(secrets) == (truth["keylog"] is None)
    keylog.add(secrets)
    assert len(keylog) >= len(truth["sessions"]) and keylog.bad_lines == 0
    # Browsers open connections of their own (the page, preconnects): the truth names the WebSocket ones.
    streams = dict(connections(capture))
    for session in truth["sessions"]:
        segments = streams[session["client"]]
        conn = TlsConnection(keylog, CLIENT)
        out = {CLIENT: b"", SERVER: b""}
        for d, data in segments:
            for piece in conn.feed(d, data):
                assert not piece.gap_before
                out[piece.direction] += piece.data
        conn.finish()
        assert conn.info.decrypted and conn.info.reason is None and conn.issues == [], (conn.info, conn.issues)
        tls = session["tls"]
        assert (conn.info.version, conn.info.cipher, conn.info.sni, conn.info.alpn) == (
            tls["version"], tls["cipher"], tls["sni"], tls["alpn"]
        )  # fmt: skip
        assert conn.info.resumed == tls.get("resumed", conn.info.resumed)
        assert out[CLIENT].startswith(f"GET {session['path']} HTTP/1.1\r\n".encode())
        assert out[SERVER].startswith(b"HTTP/1.1 101 ")
        for d, name in ((CLIENT, "c2s"), (SERVER, "s2c")):
            got = [
                (opcode, hashlib.sha256(payload).hexdigest() if len(payload) > 4096 else payload)
                for opcode, payload in ws_payloads(out[d])
            ]
            want = [truth_payload(m) for m in session["messages"] if m["dir"] == name]
            assert got == want, name


def test_early_data_without_its_secret() -> None:
    """0-RTT data whose secret is not logged is skipped and flagged (RFC 8446 4.2.10); the resumed connection's
    handshake and application traffic keys still decrypt the rest."""
    name = "tls13_openssl_early_data"
    text = (CAPTURES / f"{name}.keys").read_bytes()
    keylog = KeyLog()
    keylog.add(b"\n".join(line for line in text.splitlines() if not line.startswith(b"CLIENT_EARLY_TRAFFIC_SECRET")))
    _, segments = connections(CAPTURES / f"{name}.pcap")[1]
    conn = TlsConnection(keylog, CLIENT)
    pieces = [piece for d, data in segments for piece in conn.feed(d, data)]
    conn.finish()
    assert conn.issues == [Issue.TLS_EARLY_DATA_SKIPPED] and conn.info.decrypted and conn.info.resumed
    client = merged(pieces, CLIENT)
    assert len(client) == 1 and client[0].gap_before and client[0].data.startswith(b"\x81")  # frames, no GET
    assert merged(pieces, SERVER)[0].data.startswith(b"HTTP/1.1 101 ")


def test_tls_speed_figure(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a speed assertion (no wall-clock in tests): prints the figure, checks the bytes."""
    from tests.perf.tls_speed import measure

    mb_per_s, size = measure(tmp, megabytes=8)
    assert size == 8 << 20
    with capsys.disabled():
        print(f"\nTLS 1.3 AES-128-GCM application data: {mb_per_s:.0f} MB/s")
