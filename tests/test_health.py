"""health.py: terminations, ping/pong pairing, round trips, idle time, findings, words.

Unit tests feed SessionHealth by hand; the capture tests feed it the messages that
today's Inspector decodes from the health_* captures and hold the result against
what the peers logged (truth computed from the capture's own timestamps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAPTURES, decode_file, load_truth, messages, summaries
from wsinspect.health import (
    ANSWER_GRACE,
    IDLE_THRESHOLD,
    MAX_OUTSTANDING,
    Health,
    SessionHealth,
    Termination,
    describe_end,
    describe_heartbeat,
    format_seconds,
    termination,
)
from wsinspect.histogram import Histogram, bucket_bounds, bucket_of
from wsinspect.issues import Issue
from wsinspect.session import SessionUpgraded

PING, PONG, CLOSE, TEXT = 9, 10, 8, 1


# -- termination -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ended_by", "c2s", "s2c", "expected"),
    [
        ("fin", True, True, Termination.CLEAN),
        ("rst", True, True, Termination.CLEAN),
        ("eof", True, True, Termination.CLEAN),
        ("stopped", True, True, Termination.CLEAN),
        ("fin", True, False, Termination.CLOSE_UNANSWERED),
        ("rst", False, True, Termination.CLOSE_UNANSWERED),
        ("eof", True, False, Termination.CLOSE_UNANSWERED),
        ("reused", False, True, Termination.CLOSE_UNANSWERED),
        ("stopped", True, False, Termination.STOPPED),
        ("fin", False, False, Termination.NO_CLOSE),
        ("reused", False, False, Termination.NO_CLOSE),
        ("rst", False, False, Termination.RESET),
        ("eof", False, False, Termination.OPEN),
        ("stopped", False, False, Termination.STOPPED),
    ],
)
def test_termination_table(ended_by: str, c2s: bool, s2c: bool, expected: Termination) -> None:
    assert termination(ended_by, c2s, s2c) is expected


def _clean(h: SessionHealth, at: float) -> Health:
    h.frame(at, "c2s", CLOSE)
    h.frame(at + 0.001, "s2c", CLOSE)
    return h.finish("fin", True, True, at + 0.002)


# -- pairing (RFC 6455 5.5.3) -----------------------------------------------------


def test_pong_answers_the_ping_with_its_payload_and_returns_the_rtt() -> None:
    h = SessionHealth(100.0)
    h.frame(100.5, "c2s", PING, b"a")
    assert h.frame(100.502, "c2s", PONG, b"a") is None  # same direction: not an answer
    assert h.frame(100.521, "s2c", PONG, b"a") == pytest.approx(0.021)
    result = _clean(h, 101.0)
    hb = result.heartbeat
    assert (hb.pings_c2s, hb.pings_s2c, hb.pongs_c2s, hb.pongs_s2c) == (1, 0, 1, 1)
    assert hb.unanswered == 0
    assert hb.unsolicited_pongs == 1
    assert hb.rtt is not None and hb.rtt.count == 1
    assert hb.rtt.min == hb.rtt.median == hb.rtt.max == pytest.approx(0.021)
    assert result.issues == ()


def test_a_pong_answers_the_latest_of_several_pings_with_its_payload() -> None:
    h = SessionHealth(0.0)
    h.frame(1.0, "c2s", PING, b"")
    h.frame(2.0, "c2s", PING, b"")
    assert h.frame(2.05, "s2c", PONG, b"") == pytest.approx(0.05)
    # The earlier ping with that payload was answered by the same pong (5.5.3).
    result = _clean(h, 3.0)
    assert result.heartbeat.unanswered == 0
    assert result.heartbeat.rtt is not None and result.heartbeat.rtt.count == 1
    assert result.issues == ()


def test_other_payloads_stay_outstanding_and_count_unanswered_if_never_answered() -> None:
    h = SessionHealth(0.0)
    h.frame(1.0, "c2s", PING, b"x")
    h.frame(1.1, "c2s", PING, b"y")
    assert h.frame(1.2, "s2c", PONG, b"y") == pytest.approx(0.1)
    assert h.frame(1.4, "s2c", PONG, b"x") == pytest.approx(0.4)  # late, still the answer to x
    h.frame(2.0, "s2c", PING, b"z")
    result = _clean(h, 5.0)
    assert result.heartbeat.unanswered == 1
    assert result.heartbeat.pings_s2c == 1
    assert Issue.PING_UNANSWERED in result.issues  # 3 s to answer, and no answer


def test_an_unanswered_ping_just_before_the_end_is_not_a_finding() -> None:
    h = SessionHealth(0.0)
    h.frame(10.0, "c2s", PING, b"last")
    result = h.finish("eof", False, False, 10.0 + ANSWER_GRACE / 2)
    assert result.heartbeat.unanswered == 1
    assert Issue.PING_UNANSWERED not in result.issues
    assert result.termination is Termination.OPEN


def test_a_ping_the_peer_answers_with_its_own_close_is_not_a_finding() -> None:
    # RFC 6455 5.5.2: no pong is due once the closing handshake has started.
    h = SessionHealth(0.0)
    h.frame(1.0, "c2s", PING, b"p")
    h.frame(1.01, "s2c", CLOSE)
    h.frame(1.02, "c2s", CLOSE)
    result = h.finish("fin", True, True, 5.0)
    assert result.heartbeat.unanswered == 1
    assert result.issues == ()


def test_outstanding_pings_are_bounded() -> None:
    h = SessionHealth(0.0)
    n = MAX_OUTSTANDING * 3
    for i in range(n):
        h.frame(1.0 + i / 1000, "s2c", PING, i.to_bytes(4, "big"))
        assert len(h.outstanding[1]) <= MAX_OUTSTANDING
    # The newest are still matched.
    assert h.frame(2.0, "c2s", PONG, (n - 1).to_bytes(4, "big")) is not None
    result = h.finish("fin", False, False, 10.0)
    assert result.heartbeat.unanswered == n - 1
    assert Issue.PING_UNANSWERED in result.issues


# -- idle time ---------------------------------------------------------------------


def test_max_idle_spans_the_101_to_the_end_and_ignores_earlier_times() -> None:
    h = SessionHealth(10.0)
    h.frame(13.0, "c2s", TEXT)  # 3 s after the 101
    h.seen(12.0)  # released from behind a hole: no time of its own
    h.frame(14.0, "s2c", TEXT)
    result = h.finish("fin", False, False, 18.5)  # 4.5 s silent before the FIN
    assert result.heartbeat.max_idle == pytest.approx(4.5)
    assert result.final_idle == pytest.approx(4.5)
    h2 = SessionHealth(10.0)
    h2.frame(20.0, "c2s", TEXT)
    assert h2.finish("rst", False, False, 21.0).heartbeat.max_idle == pytest.approx(10.0)


def test_an_end_without_close_after_a_long_silence_is_named() -> None:
    h = SessionHealth(0.0)
    h.frame(1.0, "c2s", TEXT)
    result = h.finish("fin", False, False, 1.0 + IDLE_THRESHOLD + 1)
    assert result.termination is Termination.NO_CLOSE
    assert result.issues == (Issue.ENDED_AFTER_IDLE,)
    assert describe_end(result) == "ended abnormally: no Close frame, connection closed (fin) after 31.0 s idle"
    # A shorter silence, a clean end or an open one: no finding.
    short = SessionHealth(0.0)
    assert short.finish("rst", False, False, IDLE_THRESHOLD - 1).issues == ()
    open_ = SessionHealth(0.0)
    assert open_.finish("eof", False, False, IDLE_THRESHOLD * 3).issues == ()
    low = SessionHealth(0.0, idle_threshold=2.0)
    assert low.finish("rst", False, False, 2.5).issues == (Issue.ENDED_AFTER_IDLE,)


# -- Close ---------------------------------------------------------------------------


def test_close_unanswered() -> None:
    h = SessionHealth(0.0)
    h.frame(1.0, "s2c", CLOSE)
    result = h.finish("fin", False, True, 3.0)
    assert result.termination is Termination.CLOSE_UNANSWERED
    assert result.issues == (Issue.CLOSE_UNANSWERED,)
    assert result.close_from == "s2c"
    assert result.close_wait == pytest.approx(2.0)
    assert describe_end(result) == (
        "ended abnormally: the server's Close was never answered, connection closed (fin) 2.0 s after it"
    )
    # A capture that stops just after a Close has not shown whether it was answered.
    late = SessionHealth(0.0)
    late.frame(1.0, "c2s", CLOSE)
    cut = late.finish("eof", True, False, 1.2)
    assert cut.termination is Termination.CLOSE_UNANSWERED
    assert cut.issues == ()


def test_clean_traffic_has_no_findings() -> None:
    h = SessionHealth(0.0)
    for i in range(20):
        t = 1.0 + i * 0.5
        h.frame(t, "c2s", TEXT)
        h.frame(t + 0.1, "s2c", PING, b"k")
        h.frame(t + 0.12, "c2s", PONG, b"k")
    result = _clean(h, 20.0)
    assert result.termination is Termination.CLEAN
    assert result.issues == ()
    assert result.heartbeat.rtt is not None and result.heartbeat.rtt.count == 20
    assert result.record()["termination"] == "clean"
    assert describe_end(result) == "ended cleanly: the client sent Close and the other side answered"


# -- words --------------------------------------------------------------------------


def test_heartbeat_words() -> None:
    h = SessionHealth(0.0)
    rtts = [0.021] * 11 + [0.048]
    for i, rtt in enumerate(rtts):
        h.frame(float(i), "c2s", PING, bytes([i]))
        h.frame(i + rtt, "s2c", PONG, bytes([i]))
    h.frame(20.0, "c2s", PING, b"lost")
    h.frame(51.2, "c2s", TEXT)
    result = h.finish("fin", False, False, 52.0)
    hb = result.heartbeat
    assert describe_heartbeat(hb) == "pings 13 → 0 ←, rtt median 21 ms p95 48 ms, 1 unanswered; longest idle 31.2 s"
    assert hb.record() == {
        "pings_c2s": 13,
        "pings_s2c": 0,
        "pongs_c2s": 0,
        "pongs_s2c": 12,
        "unanswered": 1,
        "unsolicited_pongs": 0,
        "rtt": {
            "count": 12,
            "min": 0.021,
            "median": pytest.approx(0.021, rel=1 / 128),
            "p95": pytest.approx(0.048, rel=1 / 128),
            "max": 0.048,
        },
        "max_idle": pytest.approx(31.2),
    }


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0.0042, 0.0214, 0.999, 61.04)] == ["4.2 ms", "21 ms", "999 ms", "61.0 s"]


# -- histogram ------------------------------------------------------------------------


def test_histogram_buckets_are_monotone_and_bound_the_error() -> None:
    previous = -1
    for value in [*range(300), *(int(1.37**k) for k in range(20, 130))]:
        index = bucket_of(value)
        assert index >= previous
        previous = index
        low, high = bucket_bounds(index)
        assert low <= value <= high
        assert (low + high) // 2 - value <= value / 128 + 0.5
        assert value - (low + high) // 2 <= value / 128 + 0.5


def test_histogram_percentiles_are_nearest_rank() -> None:
    h = Histogram()
    for v in range(1, 101):
        h.add(v)
    assert h.percentiles((0.5, 0.9, 0.99, 1.0)) == [50, 90, 99, 100]
    big = Histogram()
    values = [1000 + 37 * i for i in range(1000)]
    for v in values:
        big.add(v)
    for q in (0.5, 0.95):
        exact = sorted(values)[int(q * len(values)) - 1]
        assert abs(big.percentile(q) - exact) <= exact / 128 + 1
    assert big.min == 1000 and big.max == values[-1]
    merged = Histogram()
    merged.merge(h)
    merged.merge(big)
    assert merged.count == 1100 and merged.min == 1 and merged.max == values[-1]
    assert sum(n for _, _, n in merged.log_buckets()) == 1100


# -- real captures --------------------------------------------------------------------------

HEALTH_TRUTHS = sorted(CAPTURES.glob("health_*.truth.json"))


def _health_of(session_truth: dict[str, Any], events: list[Any], idle_threshold: float) -> Health:
    """Feed a SessionHealth what today's Inspector decoded of one session, as the
    Inspector will: the 101's time, every message at the time of its last packet."""
    number = next(s.session for s in summaries(events) if s.client == session_truth["client"])
    upgraded = [e.ts for e in events if isinstance(e, SessionUpgraded) and e.session == number]
    truth = session_truth["health"]
    assert upgraded == [pytest.approx(truth["upgrade_ts"], abs=1e-6)]
    h = SessionHealth(upgraded[0], idle_threshold)
    closes = {"c2s": False, "s2c": False}
    for m in messages(events):
        if m.session == number:
            h.frame(m.ts, m.dir, m.opcode, m.payload)
            closes[m.dir] |= m.opcode == CLOSE
    summary = next(s for s in summaries(events) if s.session == number)
    return h.finish(summary.ended_by, closes["c2s"], closes["s2c"], truth["end_ts"])


@pytest.mark.parametrize("truth_path", HEALTH_TRUTHS, ids=[p.name.split(".")[0] for p in HEALTH_TRUTHS])
def test_health_of_real_captures(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    events = decode_file(CAPTURES / truth["capture"])
    assert truth["sessions"]
    for st in truth["sessions"]:
        expected = st["health"]
        result = _health_of(st, events, IDLE_THRESHOLD)
        where = f"{st['client']} {st['path']}"
        assert result.termination == expected["termination"], where
        assert result.ended_by == expected["ended_by"], where
        hb, want = result.heartbeat, expected["heartbeat"]
        for key in ("pings_c2s", "pings_s2c", "pongs_c2s", "pongs_s2c", "unanswered", "unsolicited_pongs"):
            assert getattr(hb, key) == want[key], f"{where} {key}"
        assert hb.max_idle == pytest.approx(want["max_idle"], abs=1e-6), where
        rtts = sorted(want["rtts"])
        if not rtts:
            assert hb.rtt is None, where
        else:
            assert hb.rtt is not None, where
            assert hb.rtt.count == len(rtts)
            assert hb.rtt.min == pytest.approx(rtts[0], abs=1e-6)
            assert hb.rtt.max == pytest.approx(rtts[-1], abs=1e-6)
            median = rtts[max(1, -(-len(rtts) // 2)) - 1]
            assert hb.rtt.median == pytest.approx(median, rel=1 / 128, abs=2e-6), where
        assert sorted(result.issues) == sorted(expected["issues"]), where


def test_idle_end_found_in_a_real_capture_with_a_low_threshold() -> None:
    # The real idle gaps are a few seconds (the capture must stay short); with the
    # threshold lowered below them, the killed client's session is named.
    truth = load_truth(CAPTURES / "health_endings.truth.json")
    events = decode_file(CAPTURES / truth["capture"])
    killed = next(st for st in truth["sessions"] if st["path"] == "/killed")
    result = _health_of(killed, events, idle_threshold=1.0)
    assert result.termination is Termination.NO_CLOSE
    assert Issue.ENDED_AFTER_IDLE in result.issues
    assert describe_end(result).startswith("ended abnormally: no Close frame, connection closed (fin) after 2.")
