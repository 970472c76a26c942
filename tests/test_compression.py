"""permessage-deflate end to end: the compressed sample captures (captures/deflate_*) against their senders' truth.

test_captures.py already holds every capture's payloads against its truth. This adds what only compression has:
the compressed flag and wire sizes, the JSON Lines output byte for byte, the messages a capture cut mid-session
cannot inflate, the decompression bomb's time and memory, and tshark's view of RSV1 and of the inflated text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAPTURES, ROOT, decode_file, load_truth, messages, run_cli, summaries, truth_payload
from wsinspect.deflate import negotiate
from wsinspect.http import parse_extensions
from wsinspect.issues import Issue

DEFLATE = (
    "deflate_websockets",
    "deflate_no_context",
    "deflate_small_window",
    "deflate_node",
    "deflate_aiohttp",
    "deflate_chromium",
    "deflate_frame_legacy",
    "deflate_midstream",
)
BOMB = "deflate_bomb"
DEFAULT_LIMIT = 64 << 20
# Peak RSS allowed while reading the bomb: the 64 MiB cap, its base64 in the JSON line, and the interpreter; far
# below the 1 GiB the bomb inflates to.
BOMB_RSS_LIMIT = 400 << 20

Record = dict[str, Any]


def _truth(name: str) -> dict[str, Any]:
    return load_truth(CAPTURES / f"{name}.truth.json")


def _read_json(name: str) -> list[Record]:
    result = run_cli("read", "--json", str(CAPTURES / _truth(name)["capture"]))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module", params=DEFLATE)
def read(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[Record]]:
    """(truth, `wsinspect read --json` records) of one compressed capture."""
    return _truth(request.param), _read_json(request.param)


def _pairs(truth: dict[str, Any], records: list[Record]) -> Iterator[tuple[int, Record, Record]]:
    """(truth index, truth message, message record) for every message, matched in order within each direction."""
    sessions = {r["client"]: r["session"] for r in records if r["type"] == "session"}
    for ts in truth["sessions"]:
        mine = [r for r in records if r["type"] == "message" and r["session"] == sessions[ts["client"]]]
        for direction in ("c2s", "s2c"):
            sent = [(i, m) for i, m in enumerate(ts["messages"]) if m["dir"] == direction]
            got = [r for r in mine if r["dir"] == direction]
            assert len(got) == len(sent), f"{ts['client']} {direction}"
            for (index, message), record in zip(sent, got, strict=True):
                yield index, message, record


def _payload(record: Record) -> bytes:
    return record["text"].encode() if "text" in record else base64.b64decode(record["data"])


def test_compressed_captures_are_bundled() -> None:
    for name in (*DEFLATE, BOMB):
        truth = _truth(name)
        assert (CAPTURES / truth["capture"]).exists(), name
        if name != "deflate_midstream":
            for session in truth["sessions"]:
                params, ok = negotiate(parse_extensions(", ".join(session["extensions"])))
                assert params is not None and ok, session["extensions"]


def test_json_matches_truth_byte_exact(read: tuple[dict[str, Any], list[Record]]) -> None:
    """Every message of `read --json`, inflated, is what the application sent: text, bytes, flags and frames."""
    truth, records = read
    undecodable = set(truth.get("undecodable", []))
    for index, sent, record in _pairs(truth, records):
        where = f"{truth['capture']} message {index}"
        assert record["opcode"] == sent["opcode"], where
        if sent["opcode"] == "close":
            assert (record["close_code"], record["close_reason"]) == (sent["close_code"], sent["close_reason"]), where
            continue
        if "compressed" in sent:
            assert record["compressed"] is sent["compressed"], where
        if index in undecodable:
            continue  # test_midstream_undecodable_messages_are_flagged
        assert record["issues"] == [], where
        assert record["complete"], where
        assert record["frames"] == sent.get("fragments", 1), where
        payload = _payload(record)
        assert record["length"] == len(payload), where
        assert hashlib.sha256(payload).hexdigest() == truth_payload(sent), where
        if sent["opcode"] == "text":
            assert "text" in record, where
            if "text" in sent:
                assert record["text"] == sent["text"], where


def test_compressed_flag_and_wire_sizes(read: tuple[dict[str, Any], list[Record]]) -> None:
    """Compressed messages are flagged and, when their payload compresses at all, smaller on the wire."""
    truth, records = read
    undecodable = set(truth.get("undecodable", []))
    compressible = 0
    for index, sent, record in _pairs(truth, records):
        where = f"{truth['capture']} message {index}"
        if sent["opcode"] not in ("text", "binary"):
            assert not record["compressed"], where  # control frames never are (RFC 7692 6.1)
            assert record["wire_length"] == record["length"], where
            continue
        assert "compressed" in sent, f"{where}: the truth does not say whether it was compressed"
        if not sent["compressed"]:
            assert record["wire_length"] == record["length"], where
        elif index not in undecodable:
            payload = _payload(record)
            if len(zlib.compress(payload, 9)) < len(payload) * 0.8:
                compressible += 1
                assert record["wire_length"] < record["length"], where
    assert compressible > 0
    if truth["capture"] != "deflate_midstream.pcap":
        sessions = [r for r in records if r["type"] == "session"]
        assert [s["extensions"] for s in sessions] == [s["extensions"] for s in truth["sessions"]]
        for s in sessions:
            assert s["wire_bytes_c2s"] + s["wire_bytes_s2c"] < s["bytes_c2s"] + s["bytes_s2c"]


def test_midstream_undecodable_messages_are_flagged() -> None:
    """A capture cut mid-session: messages that refer to the lost window carry inflate-context-lost and their raw
    payload, never text; every other message inflates exactly (test_json_matches_truth_byte_exact)."""
    truth = _truth("deflate_midstream")
    undecodable = truth["undecodable"]
    assert undecodable, "the cut capture should have messages that need the lost context"
    records = _read_json("deflate_midstream")
    flagged = []
    for index, sent, record in _pairs(truth, records):
        if Issue.INFLATE_CONTEXT_LOST in record["issues"]:
            flagged.append(index)
            assert record["issues"] == [Issue.INFLATE_CONTEXT_LOST]
            assert "text" not in record and record["compressed"] and not record["complete"]
            assert hashlib.sha256(_payload(record)).hexdigest() != truth_payload(sent)
    assert sorted(flagged) == undecodable
    # Each direction inflates again once a message no longer refers to the lost context.
    sent = truth["sessions"][0]["messages"]
    for direction in ("c2s", "s2c"):
        compressed = [i for i, m in enumerate(sent) if m["dir"] == direction and m.get("compressed")]
        last_lost = max(i for i in compressed if i in undecodable)
        assert any(i > last_lost for i in compressed), direction
    (session,) = [r for r in records if r["type"] == "session"]
    assert session["mid_stream"] and Issue.MID_STREAM in session["issues"]
    # The decoder's own objects say the same: no text for what could not be inflated.
    decoded = messages(decode_file(CAPTURES / truth["capture"]))
    assert all(m.text is None for m in decoded if Issue.INFLATE_CONTEXT_LOST in m.issues)


# Runs wsinspect and reports its peak RSS. A child's peak counts the pages of the process it was forked from, so
# the measuring parent must be this small interpreter, not the test run holding earlier captures in memory.
MEASURE = """
import resource, subprocess, sys, time
start = time.monotonic()
with open(sys.argv[1], "wb") as out:
    status = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
print(status, time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _run_measured(args: list[str], stdout: Path) -> tuple[int, float, int]:
    """(exit status, seconds, peak RSS in bytes) of `python -m wsinspect ARGS`, its output in `stdout`."""
    command = [sys.executable, "-c", MEASURE, str(stdout), sys.executable, "-m", "wsinspect", *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONWARNINGS="error")
    )
    status, seconds, rss_kib = result.stdout.split()
    return int(status), float(seconds), int(rss_kib) * 1024  # ru_maxrss is in KiB on Linux


def test_bomb_is_cut_quickly_with_bounded_memory(tmp_path: Path) -> None:
    """About 1 MB on the wire inflating to 1 GiB: cut at the 64 MiB default, flagged, and the next message reads."""
    truth = _truth(BOMB)
    output = tmp_path / "bomb.jsonl"
    status, seconds, rss = _run_measured(["read", "--json", str(CAPTURES / truth["capture"])], output)
    assert status == 0
    assert seconds < 10, f"{seconds:.1f} s"
    assert rss < BOMB_RSS_LIMIT, f"peak RSS {rss >> 20} MiB"
    records = [json.loads(line) for line in output.read_bytes().splitlines()]
    found: set[str] = set()
    for index, sent, record in _pairs(truth, records):
        found.update(record["issues"])
        if index in truth["too_large"]:
            assert record["issues"] == [Issue.MESSAGE_TOO_LARGE]
            assert record["compressed"] and record["length"] == DEFAULT_LIMIT
            payload = _payload(record)
            assert len(payload) == DEFAULT_LIMIT and payload.count(0) == DEFAULT_LIMIT
        elif sent["opcode"] != "close":
            assert record["issues"] == [] and hashlib.sha256(_payload(record)).hexdigest() == truth_payload(sent)
    assert found == set(truth["sessions"][0]["issues"])


def test_bomb_memory_follows_the_limit(tmp_path: Path) -> None:
    """With a small --max-message-size the bomb costs little memory, and decoding goes on after it."""
    truth = _truth(BOMB)
    output = tmp_path / "bomb.jsonl"
    status, seconds, rss = _run_measured(
        ["read", "--json", "--max-message-size", "1M", str(CAPTURES / truth["capture"])], output
    )
    assert status == 0 and seconds < 10
    assert rss < 100 << 20, f"peak RSS {rss >> 20} MiB"
    records = [json.loads(line) for line in output.read_bytes().splitlines()]
    for index, sent, record in _pairs(truth, records):
        if index in truth["too_large"]:
            assert Issue.MESSAGE_TOO_LARGE in record["issues"] and record["compressed"]
        elif sent["opcode"] != "close":
            assert record["issues"] == [] and hashlib.sha256(_payload(record)).hexdigest() == truth_payload(sent)


def test_bomb_cut_at_a_small_limit_is_inflated(tmp_path: Path) -> None:
    """A message cut on the wire by the size cap still shows inflated bytes, as "length" promises."""
    truth = _truth(BOMB)
    output = tmp_path / "bomb.jsonl"
    status, _, _ = _run_measured(
        ["read", "--json", "--max-message-size", "1M", str(CAPTURES / truth["capture"])], output
    )
    assert status == 0
    records = [json.loads(line) for line in output.read_bytes().splitlines()]
    (bomb,) = [record for index, _, record in _pairs(truth, records) if index in truth["too_large"]]
    payload = _payload(bomb)
    assert payload and payload.count(0) == len(payload) <= 1 << 20


# -- tshark ------------------------------------------------------------------------------------------------------


def _tshark(path: Path, port: int, *, decompress: bool) -> list[tuple[int, dict[str, Any]]]:
    """(source port, websocket layer) of every frame tshark dissects, in capture order."""
    result = subprocess.run(
        [
            "tshark", "-n", "-r", str(path), "-o", f"websocket.decompress:{'TRUE' if decompress else 'FALSE'}",
            "-d", f"tcp.port=={port},http", "-Y", "websocket", "-T", "json", "-J", "tcp websocket",
        ],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    frames = []
    for packet in json.loads(result.stdout):
        layers = packet["_source"]["layers"]
        websocket = layers["websocket"]
        for layer in websocket if isinstance(websocket, list) else [websocket]:
            frames.append((int(layers["tcp"]["tcp.srcport"]), layer))
    return frames


def _tshark_length(layer: dict[str, Any]) -> int:
    length = int(layer["websocket.payload_length"])
    if length == 126:
        return int(layer["websocket.payload_length_ext_16"])
    if length == 127:
        return int(layer["websocket.payload_length_ext_64"])
    return length


def _tshark_text(layer: dict[str, Any]) -> str | None:
    """The inflated text tshark shows for a frame, unless it says it could not inflate it."""
    payload = layer.get("websocket.payload")
    if not isinstance(payload, dict) or "Decompression failed" in json.dumps(payload):
        return None
    text = payload.get("websocket.payload.text")
    return text if isinstance(text, str) else None


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", [n for n in (*DEFLATE, BOMB) if n != "deflate_midstream"])
def test_tshark_agrees(name: str) -> None:
    """tshark sees the same frames, RSV1 bits included, and where it inflates a text message, the same text.

    tshark 4.0 inflates permessage-deflate (websocket.decompress, on by default) into websocket.payload.text, but
    not right everywhere: it garbles fragmented compressed messages, and after one every later message of that
    direction; it inflates each direction with the other direction's no_context_takeover and window bits, and so
    fails on most server messages of deflate_node. So texts are compared up to a direction's first fragmented
    compressed message, and only where tshark reports no failure. The bomb is read with decompression off: tshark
    4.0 inflates all of its 1 GiB (about 2 GB of memory).
    """
    truth = _truth(name)
    path = CAPTURES / truth["capture"]
    port = int(truth["sessions"][0]["server"].rsplit(":", 1)[1])
    theirs = _tshark(path, port, decompress=name != BOMB)
    events = decode_file(path)
    ends = {s.session: (s.client, s.server) for s in summaries(events)}
    ours = []
    for m in sorted(messages(events), key=lambda m: m.frames[0].packets[0]):
        sport = int(ends[m.session][0 if m.dir == "c2s" else 1].rsplit(":", 1)[1])
        ours += [(sport, f, m) for f in m.frames]
    assert [(p, int(layer["websocket.opcode"]), layer["websocket.fin"] == "1") for p, layer in theirs] == [
        (p, f.opcode, f.fin) for p, f, _ in ours
    ]
    assert [(int(layer["websocket.rsv"], 16), _tshark_length(layer)) for _, layer in theirs] == [
        (f.rsv, f.length) for _, f, _ in ours
    ]
    if name == BOMB:
        return
    compared = 0
    derailed: set[int] = set()  # source ports whose direction tshark no longer inflates right
    for (port_, layer), (_, _, m) in zip(theirs, ours, strict=True):
        if m.compressed and len(m.frames) > 1:
            derailed.add(port_)
        if port_ in derailed or m.opcode != 1 or len(m.frames) != 1 or not m.compressed:
            continue
        text = _tshark_text(layer)
        if text is not None:
            assert text == m.text, f"{name}: tshark {text[:60]!r}, wsinspect {m.text and m.text[:60]!r}"
            compared += 1
    assert compared >= 3
