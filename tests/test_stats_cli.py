"""`wsinspect stats` end to end: its totals against the peers' truth and against the
records of `read --json`, the fast path against the Message path, the charts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CAPTURES, ROOT, load_truth, run_cli

HEALTH = ["health_heartbeat", "health_endings"]


def _stats(*args: str) -> dict[str, Any]:
    result = run_cli("stats", "--json", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # one object
    value: dict[str, Any] = orjson.loads(lines[0])
    return value


def _records(path: Path) -> list[dict[str, Any]]:
    result = run_cli("read", "--json", str(path))
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", HEALTH)
def test_stats_json_matches_truth_and_read_json(name: str) -> None:
    truth = load_truth(CAPTURES / f"{name}.truth.json")
    path = CAPTURES / truth["capture"]
    j = _stats(str(path))
    sessions = truth["sessions"]
    logged = [m for st in sessions for m in st["messages"]]
    # Against what the peers logged.
    assert j["sessions"] == len(sessions)
    assert j["messages"] == len(logged)
    assert j["by_termination"] == Counter(st["health"]["termination"] for st in sessions)
    rtts = [r for st in sessions for r in st["health"]["heartbeat"]["rtts"]]
    if rtts:
        assert j["rtt"]["count"] == len(rtts)
        assert j["rtt"]["max"] == pytest.approx(max(rtts), rel=0.01)
    else:
        assert j["rtt"] is None
    # Against the sum of read --json's records.
    records = _records(path)
    msgs = [r for r in records if r["type"] == "message"]
    sums = [r for r in records if r["type"] == "session"]
    per = Counter((r["opcode"], r["dir"]) for r in msgs)
    assert {(op, d): row["messages"] for op, dirs in j["by_opcode"].items() for d, row in dirs.items()} == per
    assert j["bytes"] == sum(r["length"] for r in msgs) == sum(s["bytes_c2s"] + s["bytes_s2c"] for s in sums)
    assert j["wire_bytes"] == sum(r["wire_length"] for r in msgs)
    assert j["by_termination"] == Counter(s["termination"] for s in sums)
    assert j["rtt"] is None or j["rtt"]["count"] == sum(1 for r in msgs if "rtt" in r)
    issues = Counter(i for r in (*msgs, *sums) for i in r["issues"])
    assert j["issues"] == dict(issues)
    idle = max(s["heartbeat"]["max_idle"] for s in sums)
    assert j["longest_idle"][0]["max_idle"] == pytest.approx(idle)


@pytest.mark.parametrize("name", [*HEALTH, "deflate_chromium", "violations", "midstream", "rejected"])
def test_fast_path_counts_as_the_message_path(name: str) -> None:
    """The fast lane counts into the tally what the Message path counts one message at
    a time (-c with a count never reached takes the Message path)."""
    path = str(CAPTURES / load_truth(CAPTURES / f"{name}.truth.json")["capture"])
    assert _stats(path) == _stats("-c", "1000000", path)


def test_session_and_count_options() -> None:
    path = CAPTURES / "health_heartbeat.pcap"
    records = _records(path)
    one = [r for r in records if r["type"] == "message" and r["session"] == 1]
    j = _stats("--session", "1", str(path))
    assert j["sessions"] == 1 and j["messages"] == len(one)
    j = _stats("-c", "3", str(path))
    assert j["messages"] == 3 and j["by_termination"] == {"stopped": 1}


def test_stats_text_tables() -> None:
    result = run_cli("stats", str(CAPTURES / "health_endings.pcap"))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "WebSocket statistics" in text
    for word in ("Termination", "close-unanswered", "no-close", "reset", "open"):
        assert word in text


def test_plot_writes_the_five_charts(tmp_path: Path) -> None:
    import matplotlib.image

    result = run_cli("stats", "--plot", str(tmp_path / "charts"), str(CAPTURES / "health_heartbeat.pcap"))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert names == ["concurrent.png", "lengths.png", "rates.png", "rtt.png", "terminations.png"]
    for name in names:
        png = tmp_path / "charts" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 800
        assert pixels.min() < pixels.max()  # something is drawn
        assert name in result.stderr.decode()


def test_plot_without_matplotlib_says_so(tmp_path: Path) -> None:
    # A matplotlib that cannot be imported, ahead of the real one on the path.
    fake = tmp_path / "site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = dict(os.environ, PYTHONWARNINGS="error", PYTHONPATH=f"{ROOT}{os.pathsep}{fake.parent}")
    result = subprocess.run(
        [sys.executable, "-m", "wsinspect", "stats", "--plot", str(tmp_path / "out"), str(CAPTURES / "rejected.pcap")],
        capture_output=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert b"pip install 'wsinspect[plot]'" in result.stderr
    assert result.stdout == b"" and not (tmp_path / "out").exists()
