"""Performance guards that do not time anything, so they cannot flake.

The benchmark itself (python -m tests.perf.bench) is not part of the test run; these
catch the design regressions it would show: memory that grows with the file instead of
with the open sessions (a message list kept, a whole-file mapping left resident), and
heavy imports on the ``read`` path that cost start-up time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.perf import gen, measure

ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT_MIB = 100
# Modules that `wsinspect read` must not import: each costs start-up time (target: under 0.15 s).
HEAVY = ("scapy", "textual", "numpy")


def _read_rss(path: Path, *options: str) -> tuple[int, list[dict[str, object]]]:
    """Run ``wsinspect read`` on its own: (peak RSS in KiB, JSON records printed)."""
    argv = [sys.executable, "-m", "wsinspect", "read", *options, str(path)]
    out = path.with_suffix(".out")
    with open(out, "wb") as f:
        # Not a child of pytest, whose own RSS would be counted in (see measure.py).
        _, rss = measure.run(argv, f, ROOT)
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return rss, records


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, gen.Truth]]:
    """About 20 MB and twice that, with the same number of sessions open at once."""
    base = tmp_path_factory.mktemp("perf")
    result = {}
    for name, size in (("one", 20 * 10**6), ("two", 40 * 10**6)):
        path = base / f"{name}.pcap"
        result[name] = path, gen.generate(str(path), size, seed=7)
    return result


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    assert gen.generate(str(a), 300_000, seed=3) == gen.generate(str(b), 300_000, seed=3)
    assert a.read_bytes() == b.read_bytes()


def test_memory_depends_on_open_sessions_not_file_size(captures: dict[str, tuple[Path, gen.Truth]]) -> None:
    rss = {}
    for name, (path, truth) in captures.items():
        # -q --json prints only the session records: the decoding is all there, the output is not.
        rss[name], records = _read_rss(path, "-q", "--json")
        sessions = [r for r in records if r["type"] == "session"]
        assert len(sessions) == truth.sessions
        assert sum(r["messages"] for r in sessions) == truth.messages  # type: ignore[misc]
        assert sum(r["issue_count"] for r in sessions) == 0  # type: ignore[misc]
    one, two = rss["one"] / 1024, rss["two"] / 1024
    assert one < RSS_LIMIT_MIB, f"peak RSS {one:.0f} MiB on a 20 MB capture"
    # Twice the packets, messages and sessions, the same number open at once: memory
    # that tracks the file (20 MB more here) is a design regression.
    assert two < one * 1.2 + 4, f"peak RSS {one:.0f} MiB for 20 MB, {two:.0f} MiB for 40 MB"


@pytest.mark.parametrize("options", [(), ("--json",), ("-q",)])
def test_read_imports_nothing_heavy(tmp_path: Path, options: tuple[str, ...]) -> None:
    path = tmp_path / "tiny.pcap"
    gen.generate(str(path), 20_000, seed=5, sessions=1)
    # A fresh interpreter: this test process has imported them all already.
    script = (
        "import io, os, sys\n"
        "from wsinspect import cli\n"
        "sys.stdout = io.TextIOWrapper(open(os.devnull, 'wb'))\n"
        "status = cli.main(sys.argv[1:])\n"
        f"heavy = sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})\n"
        "sys.stderr.write(repr((status, heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "read", *options, str(path)], capture_output=True, cwd=ROOT, check=False
    )
    assert proc.stderr.decode() == "(0, [])"


def test_fast_lane_agrees_with_the_general_path_at_scale(captures: dict[str, tuple[Path, gen.Truth]]) -> None:
    # The generated capture has what the bundled ones have little of: thousands
    # of sessions interleaved, 64 KiB messages over dozens of segments, context
    # takeover across hundreds of compressed messages.
    from tests.conftest import decode_file, messages

    path, truth = captures["one"]
    with_lane = decode_file(path)
    assert len(messages(with_lane)) == truth.messages
    assert with_lane == decode_file(path, lane=False)


def test_output_memory_is_bounded_by_bytes_not_packets(tmp_path: Path) -> None:
    # Segments that each complete 30,000 messages (empty frames, the most a 64 KB
    # segment can hold), each with its frame record: output was flushed every 256
    # packets, so all of these packets' records were held at once (1.3 GB for 16 of them).
    from tests.packets import Flow, write_pcap, ws_frame

    burst = ws_frame(1, b"") * 30_000
    f = Flow().websocket()
    for _ in range(8):
        f.s(burst, mss=len(burst))
    f.fin()
    path = write_pcap(tmp_path / "bursts.pcap", f.packets)
    rss, records = _read_rss(path, "--json", "--frames")
    assert sum(r["type"] == "message" for r in records) == 8 * 30_000
    assert rss < RSS_LIMIT_MIB * 1024, f"peak RSS {rss / 1024:.0f} MiB"
