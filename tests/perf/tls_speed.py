"""Decryption speed of wsinspect.tls on one core: application data per second through ``TlsConnection.feed``.

    python -m tests.perf.tls_speed [--megabytes N] [--message BYTES]

An in-memory TLS session (tests/tls_transcript.py) sends N MB from the server in writes of ``--message`` bytes
(OpenSSL makes records of at most 16 KB); the server's stream is then fed in 64 KB pieces, as loopback captures
deliver it (GSO), and timed. Small messages mean one record each: that measures the per-record cost.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from tests.tls_transcript import CLIENT, SERVER, Pair
from wsinspect.tls import KeyLog, TlsConnection

FEED = 64 << 10


def measure(
    directory: Path, *, megabytes: int = 64, message: int = 1 << 16, suites13: str = "TLS_AES_128_GCM_SHA256"
) -> tuple[float, int]:
    """(MB/s of application data, bytes decrypted); MB = 10**6 bytes."""
    pair = Pair(directory, suites13=suites13)
    rng = random.Random(0)
    pair.send(CLIENT, b"GET / HTTP/1.1\r\n\r\n")
    chunk = rng.randbytes(message)
    for _ in range((megabytes << 20) // message):
        pair.send(SERVER, chunk)
    handshake = [(d, data) for d, data in pair.transcript.wire[:4]]
    server = pair.transcript.stream(SERVER)
    done = sum(len(data) for d, data in handshake if d == SERVER)
    keylog = KeyLog()
    keylog.add(pair.keylog())
    conn = TlsConnection(keylog, CLIENT)
    for d, data in pair.transcript.wire:
        if d == CLIENT:
            conn.feed(d, data)
            break
    conn.feed(SERVER, server[:done])
    size = 0
    start = time.perf_counter()
    view = memoryview(server)
    for at in range(done, len(server), FEED):
        for piece in conn.feed(SERVER, view[at : at + FEED]):
            size += len(piece.data)
    elapsed = time.perf_counter() - start
    return size / elapsed / 1e6, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--message", type=int, default=1 << 16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for suite in ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"):
            rate, size = measure(Path(tmp), megabytes=args.megabytes, message=args.message, suites13=suite)
            print(f"{suite}: {size / 1e6:.1f} MB of application data in writes of {args.message} B: {rate:.0f} MB/s")


if __name__ == "__main__":
    main()
