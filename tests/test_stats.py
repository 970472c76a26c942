"""stats.py: the timeline, the aggregator on hand-made events, and its totals on the
health captures held against what the peers logged."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CAPTURES, decode_file, load_truth, messages
from wsinspect import stats as stats_module
from wsinspect.health import Health, SessionHealth
from wsinspect.http import Handshake
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import Close, SessionSummary
from wsinspect.stats import Stats
from wsinspect.tally import Tally, Timeline

# -- timeline -----------------------------------------------------------------------


def test_timeline_coarsens_and_keeps_every_count() -> None:
    t = Timeline(2, size=16, width=0.001)
    times = [1000.0 + i * 0.37 for i in range(200)]  # 74 s: far past 16 ms
    for ts in times:
        t.add(0, ts)
        t.add(1, ts, 10)
    start, rows = t.span()
    assert sum(rows[0]) == 200 and sum(rows[1]) == 2000
    assert len(rows[0]) <= 16
    assert t.width >= 74 / 16
    assert start <= times[0] < start + t.width
    # Each time is counted in its own bucket.
    for ts in (times[0], times[100], times[-1]):
        assert rows[0][int((ts - start) / t.width)] >= 1


def test_timeline_takes_earlier_times_too() -> None:
    t = Timeline(1, size=8, width=1.0)
    t.add(0, 100.5)
    t.add(0, 97.2)  # before the first: the buckets move
    t.add(0, 90.0)  # and coarsen when they must
    start, rows = t.span()
    assert sum(rows[0]) == 3
    assert start <= 90.0
    assert rows[0][0] == 1 and rows[0][-1] >= 1
    assert len(rows[0]) <= 8


# -- the aggregator on hand-made events --------------------------------------------


def _message(
    ts: float, d: str, opcode: int, payload: bytes, *, session: int = 1, compressed: bool = False, wire: int = -1
) -> Message:
    return Message(
        session, ts, d, opcode, [], d == "c2s", compressed, payload, len(payload) if wire < 0 else wire,
        None, None, None, [], (1, 1),
    )  # fmt: skip


def _summary(number: int, client: str, server: str, start: float, end: float, close: Close | None) -> SessionSummary:
    return SessionSummary(
        number, client, server, Handshake(None, None), start, end, (1, 1), (10, 20), (10, 20), close, "fin",
        False, (), 0,
    )  # fmt: skip


def _health(start: float, end: float, closes: tuple[bool, bool], ended_by: str = "fin") -> Health:
    return SessionHealth(start).finish(ended_by, closes[0], closes[1], end)


def test_totals_per_opcode_direction_and_compression() -> None:
    s = Stats()
    s.message(_message(1.0, "c2s", 1, b"hello"))
    s.message(_message(1.1, "s2c", 1, b"x" * 1000, compressed=True, wire=40))
    s.message(_message(1.2, "s2c", 2, bytes(300)))
    s.message(_message(1.3, "c2s", 9, b"p"))
    s.message(_message(1.32, "s2c", 10, b"p"))
    # Round trips come with the session's Health.
    health = SessionHealth(1.0)
    health.frame(1.3, "c2s", 9, b"p")
    health.frame(1.32, "s2c", 10, b"p")
    s.session(_summary(1, "10.0.0.1:5000", "10.0.0.9:80", 1.0, 2.0, None), health.finish("fin", False, False, 2.0))
    j = s.to_json()
    assert j["messages"] == 5
    assert j["bytes"] == 5 + 1000 + 300 + 1 + 1
    assert j["wire_bytes"] == 5 + 40 + 300 + 1 + 1
    assert j["by_opcode"] == {
        "text": {
            "c2s": {"messages": 1, "bytes": 5, "wire_bytes": 5},
            "s2c": {"messages": 1, "bytes": 1000, "wire_bytes": 40},
        },
        "binary": {"s2c": {"messages": 1, "bytes": 300, "wire_bytes": 300}},
        "ping": {"c2s": {"messages": 1, "bytes": 1, "wire_bytes": 1}},
        "pong": {"s2c": {"messages": 1, "bytes": 1, "wire_bytes": 1}},
    }  # fmt: skip
    assert j["compressed"] == {"messages": 1, "bytes": 1000, "wire_bytes": 40, "share": 0.2}
    assert j["length"]["max"] == 1000 and j["length"]["min"] == 1
    assert j["length"]["p50"] == 5
    assert sum(b["count"] for b in j["length"]["histogram"]) == 5
    assert j["rtt"]["count"] == 1 and j["rtt"]["p50"] == pytest.approx(0.02)
    assert sum(j["timeline"]["messages_c2s"]) == 2 and sum(j["timeline"]["bytes_s2c"]) == 1301
    orjson.dumps(j)  # one JSON object, every value serialisable


def test_sessions_terminations_close_codes_servers_clients() -> None:
    s = Stats()
    normal = Close(1000, "", "client")
    s.session(_summary(1, "10.0.0.1:5000", "10.0.0.9:80", 0.0, 5.0, normal), _health(0.1, 5.1, (True, True)))
    s.session(_summary(2, "10.0.0.1:5001", "10.0.0.9:80", 6.0, 6.2, None), _health(6.1, 6.3, (False, False)))
    s.session(_summary(3, "10.0.0.1:5002", "10.0.0.8:80", 7.0, 7.1, None), _health(7.05, 7.2, (False, False), "rst"))
    going = Close(1001, "bye", "server")
    s.session(_summary(4, "10.0.0.2:6000", "10.0.0.9:80", 1.0, 20.0, going), _health(1.1, 20.0, (False, True)))
    s.session(_summary(5, "10.0.0.3:6000", "10.0.0.9:80", 2.0, 2.5, None))  # never WebSocket
    j = s.to_json()
    assert j["sessions"] == 5
    assert j["by_termination"] == {"clean": 1, "no-close": 1, "reset": 1, "close-unanswered": 1, "none": 1}
    assert j["close_codes"] == [
        {"code": 1000, "name": "Normal Closure", "sessions": 1},
        {"code": 1001, "name": "Going Away", "sessions": 1},
    ]
    assert j["servers"][0] == {
        "server": "10.0.0.9:80", "host": None, "sessions": 4, "messages": 8, "bytes": 120, "short": 2, "abnormal": 2,
    }  # fmt: skip
    assert j["clients"][0] == {
        "client": "10.0.0.1",
        "sessions": 3,
        "messages": 6,
        "bytes": 90,
        "short": 2,
        "abnormal": 2,
    }
    assert j["issues"] == {Issue.CLOSE_UNANSWERED: 1}
    assert j["durations"]["max"] == pytest.approx(19.0, rel=1 / 128)
    # Sessions 1 and 4 overlap 1.0-5.1, with session 5 (2.0-2.5): three at once.
    assert j["peak_concurrent"]["sessions"] == 3
    assert 1.0 <= j["peak_concurrent"]["at"] <= 2.5
    assert [g["session"] for g in j["longest_idle"]][:2] == [4, 1]
    text = s.render()
    assert "close-unanswered" in text and "Normal Closure" in text and "10.0.0.9:80" in text


def test_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "MAX_KEYS", 3)
    s = Stats(top=2)
    for i in range(10):
        s.session(_summary(i, f"10.1.0.{i}:1", f"10.2.0.{i}:80", float(i), i + 0.5, None), _health(i, i + 0.5, (0, 0)))
    j = s.to_json()
    assert len(s.servers) == 3 and len(s.clients) == 3
    assert j["others"]["servers"]["sessions"] == 7
    assert len(j["servers"]) == 2 and len(j["longest_idle"]) == 2


# -- real captures ----------------------------------------------------------------------


def _fed(name: str) -> tuple[dict[str, Any], Stats]:
    """Stats over a capture as the Inspector feeds it: every message, and every
    session with its Health."""
    truth = load_truth(CAPTURES / f"{name}.truth.json")
    events = decode_file(CAPTURES / truth["capture"])
    by_client = {st["client"]: st for st in truth["sessions"]}
    s = Stats()
    for e in events:
        if isinstance(e, Message):
            s.message(e)
        elif isinstance(e, SessionSummary):
            assert e.health is not None and e.health.end == pytest.approx(by_client[e.client]["health"]["end_ts"])
            s.session(e)
    return truth, s


@pytest.mark.parametrize("name", ["health_heartbeat", "health_endings"])
def test_stats_totals_match_the_truth(name: str) -> None:
    truth, s = _fed(name)
    j = s.to_json()
    sessions = truth["sessions"]
    logged = [m for st in sessions for m in st["messages"]]
    assert j["sessions"] == len(sessions)
    assert j["messages"] == len(logged)
    per = Counter((m["opcode"], m["dir"]) for m in logged)
    assert {(op, d): row["messages"] for op, dirs in j["by_opcode"].items() for d, row in dirs.items()} == per
    assert j["by_termination"] == Counter(st["health"]["termination"] for st in sessions)
    first_close = Counter(
        next((m["close_code"] for m in st["messages"] if m["opcode"] == "close"), "none") for st in sessions
    )
    first_close.pop("none", None)
    assert {c["code"]: c["sessions"] for c in j["close_codes"]} == first_close
    assert {sv["server"]: sv["sessions"] for sv in j["servers"]} == Counter(st["server"] for st in sessions)
    assert {c["client"]: c["sessions"] for c in j["clients"]} == Counter(
        st["client"].rsplit(":", 1)[0] for st in sessions
    )
    rtts = sorted(r for st in sessions for r in st["health"]["heartbeat"]["rtts"])
    if rtts:
        assert j["rtt"]["count"] == len(rtts)
        assert j["rtt"]["max"] == pytest.approx(rtts[-1], abs=1e-6)
        assert j["rtt"]["p50"] == pytest.approx(rtts[(len(rtts) + 1) // 2 - 1], rel=1 / 128, abs=2e-6)
    else:
        assert j["rtt"] is None
    expected_issues = Counter(i for st in sessions for i in st["health"]["issues"])
    assert j["issues"] == expected_issues
    idle = max(st["health"]["heartbeat"]["max_idle"] for st in sessions)
    assert j["longest_idle"][0]["max_idle"] == pytest.approx(idle, abs=1e-6)
    # The peak is of sessions open during one bucket: at least the exact peak.
    edges = sorted(
        [(st["health"]["upgrade_ts"], 1) for st in sessions] + [(st["health"]["end_ts"], -1) for st in sessions],
        key=lambda e: (e[0], e[1]),
    )
    now = exact = 0
    for _, step in edges:
        now += step
        exact = max(exact, now)
    assert exact <= j["peak_concurrent"]["sessions"] <= len(sessions)
    assert sum(j["timeline"]["messages_c2s"]) + sum(j["timeline"]["messages_s2c"]) == len(logged)
    assert s.render().count("\n") > 10


def test_reconnect_storm_shows_per_client() -> None:
    _, s = _fed("health_endings")
    storm = next(c for c in s.to_json()["clients"] if c["client"] == "127.0.0.5")
    assert storm == {
        "client": "127.0.0.5",
        "sessions": 8,
        "messages": 19,
        "bytes": storm["bytes"],
        "short": 8,
        "abnormal": 5,
    }
    assert len(messages(decode_file(CAPTURES / "health_endings.pcap"))) == s.to_json()["messages"]


# -- charts -------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_write_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from wsinspect.plot import write_plots

    _, s = _fed("health_heartbeat")
    written = write_plots(s, tmp_path / "charts")
    names = sorted(p.name for p in written)
    assert names == ["concurrent.png", "lengths.png", "rates.png", "rtt.png", "terminations.png"]
    for path in written:
        data = path.read_bytes()
        width, height = _png_size(data)
        assert (width, height) >= (800, 300), path.name
        assert len(data) > 5000, path.name  # axes, bars and labels, not a blank canvas
    # Nothing to chart: nothing written.
    assert write_plots(Stats(), tmp_path / "empty") == []


def test_write_plots_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wsinspect.errors import WsinspectError
    from wsinspect.plot import write_plots

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    with pytest.raises(WsinspectError, match=r"pip install 'wsinspect\[plot\]'"):
        write_plots(Stats(), tmp_path / "charts")
    assert not (tmp_path / "charts").exists()


def test_a_tally_filled_without_messages_gives_the_same_stats() -> None:
    # The Inspector's lane will fill a Tally with plain numbers (no Message objects):
    # the result must not depend on which way the counts came.
    _, via_messages = _fed("health_endings")
    tally = Tally()
    for m in messages(decode_file(CAPTURES / "health_endings.pcap")):
        tally.add(m.ts, m.dir == "c2s", m.opcode, len(m.payload), m.wire_length, m.compressed)
    direct = Stats(tally=tally)
    for key in ("messages", "bytes", "wire_bytes", "by_opcode", "compressed", "length"):
        assert direct.to_json()[key] == via_messages.to_json()[key], key
    # (The timelines' widths differ: the sessions' ends stretch the other one.)
    assert [sum(row) for row in direct.tally.timeline.span()[1][:4]] == [
        sum(row) for row in via_messages.tally.timeline.span()[1][:4]
    ]


def test_merged_stats_equal_one_pass() -> None:
    # A parallel read gives each worker some connections; their Stats merge into
    # what one pass over everything counts.
    _, whole = _fed("health_endings")
    _, other_capture = _fed("health_heartbeat")
    whole.merge(other_capture)
    _, first = _fed("health_endings")
    parts = Stats()
    parts.merge(first)
    parts.merge(other_capture)
    a, b = whole.to_json(), parts.to_json()
    assert a == b
    assert a["sessions"] == 14 + 3
    assert sum(a["timeline"]["messages_c2s"]) + sum(a["timeline"]["messages_s2c"]) == a["messages"]
    fine = Timeline(1, size=8, width=1.0)
    coarse = Timeline(1, size=8, width=4.0)
    fine.add(0, 10.5)
    coarse.add(0, 30.0, 3)
    fine.merge(coarse)
    start, rows = fine.span()
    assert sum(rows[0]) == 4 and fine.width >= 4.0
    assert rows[0][int((30.0 - start) / fine.width)] == 3
