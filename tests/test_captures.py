"""End to end: every bundled capture decodes to what its senders logged."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    CAPTURES,
    decode_file,
    decoded_payload,
    load_truth,
    messages,
    run_cli,
    summaries,
    truth_files,
    truth_payload,
    tshark_frames,
)
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import Inspector, Options, SessionSummary
from wsinspect.tls import KeyLog
from wsinspect.vocab import opcode_label

TRUTHS = truth_files()
DATA = ("text", "binary")
UNREPRODUCIBLE = {Issue.TCP_GAP, Issue.INFLATE_CONTEXT_LOST, Issue.MESSAGE_TOO_LARGE}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name.removesuffix(".truth.json") for p in paths]


@pytest.fixture(scope="module", params=TRUTHS, ids=_ids(TRUTHS))
def decoded(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[Message], list[SessionSummary]]:
    truth = load_truth(request.param)
    events = decode_file(CAPTURES / truth["capture"])
    return truth, messages(events), summaries(events)


def test_captures_are_bundled() -> None:
    assert len(TRUTHS) >= 10
    for path in TRUTHS:
        assert (CAPTURES / load_truth(path)["capture"]).exists(), path


def _by_client(sums: list[SessionSummary]) -> dict[str, SessionSummary]:
    return {s.client: s for s in sums}


def test_sessions_match_truth(decoded: tuple[dict[str, Any], list[Message], list[SessionSummary]]) -> None:
    truth, _, sums = decoded
    found = _by_client(sums)
    assert sorted(found) == sorted(s["client"] for s in truth["sessions"])
    for ts in truth["sessions"]:
        s = found[ts["client"]]
        assert s.server == ts["server"]
        if s.mid_stream:
            continue
        assert s.handshake.host == ts["host"]
        assert s.handshake.path == ts["path"]
        assert s.status == ts["status"]
        assert s.handshake.subprotocol == ts["subprotocol"]
        assert [str(e) for e in s.handshake.extensions] == ts["extensions"]


def test_messages_match_truth(decoded: tuple[dict[str, Any], list[Message], list[SessionSummary]]) -> None:
    truth, msgs, sums = decoded
    number = {s.client: s.session for s in sums}
    # Messages the decoder cannot reproduce, each flagged: lost in a capture hole, compressed with a context the
    # capture lacks, inflated past the size cap.
    lost = {i for key in ("lost_messages", "undecodable", "too_large") for i in truth.get(key, [])}
    for ts in truth["sessions"]:
        mine = [m for m in msgs if m.session == number[ts["client"]]]
        if "length-top-bit-set" in ts["issues"]:
            # No length can be trusted after such a header: the payload is unknowable.
            continue
        for direction in ("c2s", "s2c"):
            sent = [
                (m["opcode"], truth_payload(m))
                for i, m in enumerate(ts["messages"])
                if m["dir"] == direction and m["opcode"] in DATA and i not in lost
            ]
            got = [
                (opcode_label(m.opcode), decoded_payload(m))
                for m in mine
                if m.dir == direction and m.opcode in (1, 2) and not UNREPRODUCIBLE.intersection(m.issues)
            ]
            assert got == sent, f"{ts['client']} {direction}"
            controls = [
                (m["opcode"], truth_payload(m) if m["opcode"] != "close" else m.get("close_code"))
                for m in ts["messages"]
                if m["dir"] == direction and m["opcode"] in ("ping", "pong", "close")
            ]
            decoded_controls = [
                (opcode_label(m.opcode), decoded_payload(m) if m.opcode != 8 else m.close_code)
                for m in mine
                if m.dir == direction and m.opcode >= 8
            ]
            it = iter(decoded_controls)
            missing = [c for c in controls if c not in it]
            assert not missing, f"{ts['client']} {direction}: control messages not decoded: {missing}"
            reasons = [
                (m["close_code"], m["close_reason"])
                for m in ts["messages"]
                if m["dir"] == direction and m["opcode"] == "close" and m.get("close_reason") is not None
            ]
            decoded_reasons = [(m.close_code, m.close_reason) for m in mine if m.dir == direction and m.opcode == 8]
            assert all(r in decoded_reasons for r in reasons), f"{ts['client']} {direction}"


def test_issues_match_truth(decoded: tuple[dict[str, Any], list[Message], list[SessionSummary]]) -> None:
    truth, msgs, sums = decoded
    number = {s.client: s.session for s in sums}
    for ts in truth["sessions"]:
        s = next(x for x in sums if x.client == ts["client"])
        found = set(s.issues)
        for m in msgs:
            if m.session == number[ts["client"]]:
                found.update(m.issues)
        if truth["clean"]:
            assert not found, f"{ts['client']}: false alarms {sorted(found)}"
            assert s.issue_count == 0
        else:
            # The decoder's findings and, for the health captures, the health ones.
            expected = set(ts["issues"]) | set(ts.get("health", {}).get("issues", []))
            assert found == expected, ts["client"]


def test_health_matches_truth(decoded: tuple[dict[str, Any], list[Message], list[SessionSummary]]) -> None:
    """How each session ended, its pings, pongs, round trips and idle time, against
    the capture times of the frames the peers logged (health captures); every other
    capture: a session that turned WebSocket has a termination, one that did not has none."""
    truth, msgs, sums = decoded
    found = _by_client(sums)
    for ts in truth["sessions"]:
        s = found[ts["client"]]
        if s.ended_by in ("rejected", "not-websocket"):
            assert s.health is None
            continue
        assert s.health is not None, ts["client"]
        want = ts.get("health")
        if want is None:
            continue
        h = s.health
        assert str(h.termination) == want["termination"], ts["client"]
        assert h.ended_by == want["ended_by"]
        assert h.end == pytest.approx(want["end_ts"], abs=1e-6)
        hb = h.heartbeat.record()
        wb = want["heartbeat"]
        for key in ("pings_c2s", "pings_s2c", "pongs_c2s", "pongs_s2c", "unanswered", "unsolicited_pongs"):
            assert hb[key] == wb[key], (ts["client"], key)
        assert hb["max_idle"] == pytest.approx(wb["max_idle"], abs=1e-6)
        rtts = sorted(wb["rtts"])
        # Each pong that answers a ping carries its round trip (Message.rtt), and the
        # session's summary has them all (min and max within the histogram's 0.8 %).
        carried = sorted(m.rtt for m in msgs if m.session == s.session and m.rtt is not None)
        assert carried == pytest.approx(rtts, abs=1e-6)
        if rtts:
            assert hb["rtt"]["count"] == len(rtts)
            assert hb["rtt"]["min"] == pytest.approx(rtts[0], rel=0.01, abs=1e-6)
            assert hb["rtt"]["max"] == pytest.approx(rtts[-1], rel=0.01, abs=1e-6)
        else:
            assert hb["rtt"] is None


def test_json_lines_contract(decoded: tuple[dict[str, Any], list[Message], list[SessionSummary]]) -> None:
    """The CLI's --json output carries every required field with the right types."""
    truth, msgs, sums = decoded
    result = run_cli("read", "--json", str(CAPTURES / truth["capture"]))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_type[r["type"]].append(r)
    assert len(by_type["message"]) == len(msgs)
    assert len(by_type["session"]) == len(sums)
    for r in by_type["message"]:
        assert isinstance(r["session"], int) and r["session"] >= 1
        assert isinstance(r["ts"], float)
        assert r["dir"] in ("c2s", "s2c")
        assert r["opcode"] in ("text", "binary", "ping", "pong", "close", "cont") or r["opcode"].startswith("0x")
        assert isinstance(r["frames"], int) and r["frames"] >= 1
        assert isinstance(r["masked"], bool) and isinstance(r["compressed"], bool)
        assert isinstance(r["length"], int)
        assert ("text" in r) != ("data" in r)
        assert "close_code" in r and "close_reason" in r
        assert isinstance(r["issues"], list)
    for r in by_type["session"]:
        for key in ("client", "server", "host", "path", "subprotocol", "extensions", "status", "accept_valid"):
            assert key in r
        assert isinstance(r["messages"], int)
        assert r["close"] is None or set(r["close"]) == {"code", "reason", "initiator"}
        assert isinstance(r["issues"], list)


# Where tshark cannot be our second opinion, and why.
TSHARK_SKIP = {
    "midstream": "tshark needs the handshake to dissect WebSocket",
    "deflate_midstream": "tshark needs the handshake to dissect WebSocket",
    "violations": "tshark stops dissecting a stream at some violations (e.g. the 64-bit length with its top bit)",
    "gappy": "tshark does not resynchronise after a capture hole",
}


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=_ids(TRUTHS))
def test_frames_agree_with_tshark(truth_path: Path) -> None:
    name = truth_path.name.removesuffix(".truth.json")
    if name in TSHARK_SKIP:
        pytest.skip(TSHARK_SKIP[name])
    truth = load_truth(truth_path)
    port = int(truth["sessions"][0]["server"].rsplit(":", 1)[1])
    # Frames only: with decompression on, tshark inflates deflate_bomb's 1 GiB (2 GB of memory, seconds).
    options = ("-o", "websocket.decompress:FALSE", "-d", f"tcp.port=={port},http")
    theirs = tshark_frames(CAPTURES / truth["capture"], *options)
    events = decode_file(CAPTURES / truth["capture"])
    ours = []
    for m in sorted(messages(events), key=lambda m: m.frames[0].packets[0]):
        for f in m.frames:
            client, server = next((s.client, s.server) for s in summaries(events) if s.session == m.session)
            sport = int((client if m.dir == "c2s" else server).rsplit(":", 1)[1])
            ours.append((sport, f.opcode, f.fin, f.length))
    if not any(s["status"] == 101 for s in truth["sessions"]):
        assert theirs == ours == []
        return
    assert sorted(theirs) == sorted(ours)
    assert len(theirs) > 0


@pytest.mark.parametrize(
    "path", sorted(CAPTURES.glob("*.pcap*")), ids=lambda p: p.name.removesuffix(".gz").removesuffix(".pcap")
)
def test_fast_lane_agrees_with_the_general_path(path: Path) -> None:
    # The Inspector decodes the common case (whole messages in in-order segments)
    # in a fast lane; every event, frames and issues included, must be the same
    # as what the general path makes of the same packets.
    general = decode_file(path, lane=False)
    assert decode_file(path) == general
    # read -q: no messages, and the lane skips what only messages would show.
    quiet = decode_file(path, Options(messages=False))
    assert quiet == [ev for ev in general if not isinstance(ev, Message)]
    # A small --max-message-size: larger frames leave the lane for the general path.
    small = Options(max_message_size=100)
    assert decode_file(path, small) == decode_file(path, small, lane=False)


def test_fast_lane_carries_the_common_case(monkeypatch: pytest.MonkeyPatch) -> None:
    # Else the test above compares the general path with itself.
    general = []
    frames = Inspector._frames

    def counted(self: Inspector, *args: Any) -> None:
        general.append(args)
        frames(self, *args)

    monkeypatch.setattr(Inspector, "_frames", counted)
    decoded = messages(decode_file(CAPTURES / "websockets_many.pcap"))
    closes = sum(m.opcode == 8 for m in decoded)
    assert len(decoded) - closes > 100
    assert len(general) <= closes  # only close frames took the general path


# -- WebSockets over HTTP/2 (RFC 8441): captures/h2 ---------------------------------------------------------------
# Their truth files list the WebSocket streams of one connection ("websockets") rather than one session per client.
# tshark 4.0 does not decode WebSocket inside HTTP/2, so these have no second opinion on frames (h2 streams and
# headers are cross-checked against tshark in tests/test_h2_captures.py).
H2_CAPTURES = CAPTURES / "h2"
H2_TRUTHS = sorted(H2_CAPTURES.glob("*.truth.json"))


def _h2_options(truth: dict[str, Any]) -> Options | None:
    """h2_tls and h2_chromium are HTTP/2 inside TLS (ALPN h2): decrypted with the key log beside them."""
    if "keylog" not in truth:
        return None
    return Options(keylog=KeyLog.from_paths([str(H2_CAPTURES / truth["keylog"])]))


def _truth_message(m: dict[str, Any]) -> tuple[str, str | int | None, str | None]:
    if m["opcode"] == "close":
        return "close", m.get("close_code"), m.get("close_reason")
    return m["opcode"], truth_payload(m), None


def _decoded_message(m: Message) -> tuple[str, str | int | None, str | None]:
    if m.opcode == 8:
        return "close", m.close_code, m.close_reason
    return opcode_label(m.opcode), decoded_payload(m), None


@pytest.mark.parametrize("truth_path", H2_TRUTHS, ids=_ids(H2_TRUTHS))
def test_h2_captures_match_truth(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    events = decode_file(H2_CAPTURES / truth["capture"], _h2_options(truth))
    # h2_chromium's truth names no stream (the browser chose it): its sessions are matched by path.
    sums = {(s.stream if "stream" in truth["websockets"][0] else s.path): s for s in summaries(events)}
    keys = [w.get("stream", w["path"]) for w in truth["websockets"]]
    assert sorted(sums, key=str) == sorted(keys, key=str)
    msgs = messages(events)
    for w, key in zip(truth["websockets"], keys, strict=True):
        s = sums[key]
        # h2_chromium's truth names no client port (the browser chose it).
        assert (s.server, s.http_version, s.mid_stream) == (truth["server"], "2", False)
        assert s.client == truth.get("client", s.client)
        assert (s.tls is not None) == ("keylog" in truth)
        assert (s.path, s.status, s.host) == (w["path"], w["status"], truth["server"])
        if "extensions" in w:  # h2_chromium's truth has what the browser sent, not what it negotiated
            assert [str(e) for e in s.handshake.extensions] == w["extensions"]
        assert s.handshake.accept_valid is None and not s.issues
        if not 200 <= w["status"] < 300:
            assert s.ended_by == "rejected" and s.messages == (0, 0)
            continue
        for direction in ("c2s", "s2c"):
            sent = [_truth_message(m) for m in w["messages"] if m["dir"] == direction]
            got = [_decoded_message(m) for m in msgs if m.session == s.session and m.dir == direction]
            assert got == sent, (key, direction)
            assert not any(m.issues for m in msgs if m.session == s.session)


@pytest.mark.parametrize("truth_path", H2_TRUTHS, ids=_ids(H2_TRUTHS))
def test_h2_json_session_records(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    keys = ["--tls-keylog", str(H2_CAPTURES / truth["keylog"])] if "keylog" in truth else []
    result = run_cli("read", "--json", "-q", *keys, str(H2_CAPTURES / truth["capture"]))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    # Session records come as sessions end: sorted by stream here.
    assert sorted((r["path"], r["http_version"], r["accept_valid"]) for r in records) == sorted(
        (w["path"], "2", None) for w in truth["websockets"]
    )
    assert all(isinstance(r["stream"], int) and r["stream"] % 2 for r in records)  # client streams are odd
    assert {"http_version", "stream", "tls"} <= set(records[0])
    assert all((r["tls"] is not None) == ("keylog" in truth) for r in records)


def test_http11_session_records_say_so() -> None:
    result = run_cli("read", "--json", "-q", str(CAPTURES / "websockets_basic.pcap"))
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["http_version"], record["stream"]) == ("1.1", None)


@pytest.mark.parametrize("truth_path", H2_TRUTHS, ids=_ids(H2_TRUTHS))
def test_h2_fast_lane_agrees_with_the_general_path(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    path = H2_CAPTURES / truth["capture"]
    assert decode_file(path, _h2_options(truth)) == decode_file(path, _h2_options(truth), lane=False)
