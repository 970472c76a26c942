"""wss:// against tshark: the generated capture (tests/perf/gen.py) with every session carried over TLS 1.3.

    python -m tests.perf.tls_bench [--size quick|SIZE] [--runs N] [--suite TLS_AES_128_GCM_SHA256]

Each session of the generated capture runs a real TLS 1.3 handshake between two in-memory ``ssl.SSLObject``s
(tests/tls_transcript.py) and its WebSocket bytes go through them: the capture holds the records OpenSSL wrote,
and the key log it wrote is kept beside it (FILE.keys). Both tools are checked against the generator's truth first
(a fast wrong answer is no answer), then timed: ``wsinspect read -q`` and ``--json`` with ``--tls-keylog``, and
``tshark -o tls.keylog_file:`` with the same fields as bench.py. Prints median wall times, peak RSS and the ratio.
"""

from __future__ import annotations

import argparse
import builtins
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.perf import gen
from tests.perf.bench import CHECK_FIELDS, WSINSPECT, check_fields, check_json, log, run
from tests.tls_transcript import Pair

# The generator's server ports (gen._Session): tshark takes them for cleartext HTTP unless told they carry TLS.
PORTS = (80, 8080)


class _TlsFlow:
    """A gen._Flow whose writes are application data: each goes through the session's TLS pair, and the records
    it made (the handshake first) are what the flow sends."""

    def __init__(self, flow: gen._Flow, pair: Pair) -> None:
        self.flow = flow
        self.pair = pair
        self.packet = flow.packet
        self.ips, self.ports = flow.ips, flow.ports

    @property
    def bytes(self) -> int:
        return self.flow.bytes

    @property
    def packets(self) -> int:
        return self.flow.packets

    def write(
        self, d: int, data: builtins.bytes, t: int, out: list[tuple[int, builtins.bytes]], spacing: int = 12
    ) -> int:
        self.pair.send(d, data)
        wire = self.pair.transcript.wire
        for direction, records in wire:
            t = self.flow.write(direction, records, t, out, spacing)
        wire.clear()  # memory follows the open sessions, as in gen
        self.pair.transcript.sent[d].clear()
        return t


def session_type(directory: Path, suite: str) -> type[gen._Session]:
    class TlsSession(gen._Session):
        def __init__(
            self, index: int, seed: int, start: int, budget: float, truth: gen.Truth, text: gen._Text, pool: bytes
        ) -> None:
            super().__init__(index, seed, start, budget, truth, text, pool)
            pair = Pair(directory, suites13=suite, alpn=["http/1.1"])
            self.flow = _TlsFlow(self.flow, pair)  # type: ignore[assignment]

    return TlsSession


def generate(size: int, suite: str) -> tuple[Path, Path, gen.Truth]:
    cache = Path(tempfile.gettempdir()) / "wsinspect-perf"
    cache.mkdir(exist_ok=True)
    path = cache / f"wss-{size}-{suite}.pcap"
    keys = path.with_suffix(".keys")
    keys.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        truth = gen.generate(str(path), size, session_type=session_type(Path(tmp), suite))
        keys.write_bytes((Path(tmp) / "keys.log").read_bytes())
    elapsed = time.perf_counter() - start
    log(f"generated {path} ({truth.size / 1e6:.1f} MB, {truth.sessions} sessions) in {elapsed:.0f} s")
    return path, keys, truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.perf.tls_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="quick", help="quick (~20 MB) or a size: 50M")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--suite", default="TLS_AES_128_GCM_SHA256")
    args = p.parse_args(argv)
    path, keys, truth = generate(gen.parse_size(args.size), args.suite)
    keylog = ("--tls-keylog", str(keys))
    decode_as = [x for port in PORTS for x in ("-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},http")]
    fields = ["-T", "fields", "-e", "frame.number", "-e", "websocket.opcode", "-e", "websocket.payload_length"]
    tshark = ["tshark", "-r", str(path), "-o", f"tls.keylog_file:{keys}", *decode_as, "-Y", "websocket", *fields]
    problems = check_json(path, truth, keylog)[1]
    with tempfile.TemporaryFile() as out:
        run(tshark + CHECK_FIELDS, out)
        out.seek(0)
        problems += check_fields(out.read(), truth)[1]
    for problem in problems:
        log(f"WRONG: {problem}")
    commands = {
        "wsinspect read -q --tls-keylog KEYS FILE": [*WSINSPECT, "read", "-q", *keylog, str(path)],
        "wsinspect read --json --tls-keylog KEYS FILE > /dev/null": [*WSINSPECT, "read", "--json", *keylog, str(path)],
        "tshark -r FILE -o tls.keylog_file:KEYS -Y websocket -T fields ...": tshark,
    }
    results = {}
    for label, command in commands.items():
        walls, rss = [], []
        for _ in range(args.runs):
            wall, peak = run(command)
            walls.append(wall)
            rss.append(peak)
        results[label] = (statistics.median(walls), max(rss))
    base = results[next(reversed(results))][0]
    print(f"{truth.size / 1e6:.1f} MB, {truth.packets} packets, {truth.sessions} sessions over TLS 1.3 {args.suite}")
    print("| command | median wall | MB/s | peak RSS | vs tshark |")
    print("|---|---|---|---|---|")
    for label, (wall, peak) in results.items():
        speed = truth.size / 1e6 / wall
        print(f"| `{label}` | {wall:.2f} s | {speed:.0f} | {peak / 1024:.0f} MiB | {base / wall:.1f}x |")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
