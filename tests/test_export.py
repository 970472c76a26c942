"""`wsinspect export` and `wsinspect follow` end to end: each format checked against
the capture's truth or decoded again (by wsinspect and by tshark), and every bad
input: its exit status, its one line, and no file left behind."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.conftest import CAPTURES, load_truth, run_cli

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "har-1.2.schema.json").read_text())
MANY = str(CAPTURES / "websockets_many.pcap")
BASIC = str(CAPTURES / "websockets_basic.pcap")


def export(*args: str) -> subprocess.CompletedProcess[bytes]:
    return run_cli("export", *args)


def read_json(path: str, *args: str) -> list[dict[str, Any]]:
    proc = run_cli("read", path, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".wsinspect-"))


# -- HAR ---------------------------------------------------------------------------------


def test_har_of_the_filtered_sessions_is_valid(tmp_path: Path) -> None:
    out = tmp_path / "rooms.har"
    proc = export(MANY, "-Y", 'session.path in {"/room/3" "/room/7"} and dir == c2s', "--har", str(out))
    assert proc.returncode == 0, proc.stderr
    assert b"2 sessions, 12 messages" in proc.stderr
    har = json.loads(out.read_bytes())
    jsonschema.validate(har, SCHEMA)
    truth = load_truth(CAPTURES / "websockets_many.truth.json")["sessions"]
    entries = har["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == ["ws://127.0.0.1:47002/room/3", "ws://127.0.0.1:47002/room/7"]
    for entry, t in zip(entries, (truth[3], truth[7]), strict=True):
        assert entry["_resourceType"] == "websocket"
        assert entry["response"]["status"] == 101
        sent = entry["_webSocketMessages"]
        assert {m["type"] for m in sent} == {"send"}
        texts = [m["text"] for m in t["messages"] if m["dir"] == "c2s" and m["opcode"] == "text"]
        assert [m["data"] for m in sent if m["opcode"] == 1] == texts
        assert [m["opcode"] for m in sent] == [1] * len(texts) + [8]


# -- pcap / pcapng -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["pcap", "pcapng"])
def test_pcap_export_decodes_to_the_same_sessions_and_nothing_else(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"two.{suffix}"
    proc = export(MANY, "--session", "4", "--session", "11", "--pcap", str(out))
    assert proc.returncode == 0, proc.stderr
    head = out.read_bytes()[:4]
    assert head == (
        b"\x0a\x0d\x0d\x0a" if suffix == "pcapng" else struct.pack("<I", 0xA1B2C3D4)
    )  # the source's microseconds
    original = read_json(MANY)
    again = read_json(str(out))
    renumber = {4: 1, 11: 2}

    def strip(r: dict[str, Any], number: int) -> dict[str, Any]:
        r = dict(r, session=number)
        r.pop("packets", None)  # numbers in the export's own packet count
        for key in ("ts", "start", "end", "duration"):
            if key in r:
                r[key] = round(r[key], 6)
        return r

    want = [strip(r, renumber[r["session"]]) for r in original if r["session"] in renumber]
    assert [strip(r, r["session"]) for r in again] == want
    assert len(want) == 2 * 13


def test_pcap_export_keeps_every_packet_of_the_connection(tmp_path: Path) -> None:
    """Handshake, upgrade and every segment: tshark sees the same packets of the
    connection in the export as in the original, with the same timestamps."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = tmp_path / "one.pcapng"
    assert export(MANY, "--session", "6", "--pcap", str(out)).returncode == 0
    port = read_json(MANY, "--session", "6")[-1]["client"].rsplit(":", 1)[1]

    def tshark(path: str, display: str) -> list[str]:
        fields = ["frame.time_epoch", "tcp.flags", "tcp.len", "websocket.opcode", "websocket.payload.text"]
        proc = subprocess.run(
            ["tshark", "-r", path, "-Y", display, "-T", "fields", *(a for f in fields for a in ("-e", f))],
            capture_output=True,
            timeout=60,
            check=True,
        )
        return proc.stdout.decode().splitlines()

    original = tshark(MANY, f"tcp.port == {port}")
    exported = tshark(str(out), "tcp")
    assert exported == original
    assert any("\t0x0002\t" in line for line in exported)  # the SYN
    ws = [line for line in exported if line.split("\t")[3]]
    assert len(ws) == 12  # every WebSocket frame


# -- follow ------------------------------------------------------------------------------------


def test_follow_transcript_matches_the_truth() -> None:
    proc = run_cli("follow", MANY, "--session", "9")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    truth = load_truth(CAPTURES / "websockets_many.truth.json")["sessions"][8]
    assert lines[0].startswith("Session #9  " + truth["client"] + " → " + truth["server"])
    assert truth["path"] in lines[0]
    texts = [line.strip() for line in lines if line.startswith(" " * 13)]
    assert texts == [m["text"] for m in truth["messages"] if m["opcode"] == "text"]
    arrows = [line.split()[1] for line in lines[3:] if line[:10].strip().replace(".", "").isdigit()]
    assert arrows == ["→" if m["dir"] == "c2s" else "←" for m in truth["messages"]]
    assert '1000 Normal Closure "session 8 done"' in proc.stdout.decode()
    export_follow = export(MANY, "--session", "9", "--follow")
    assert export_follow.stdout == proc.stdout


def test_follow_needs_a_session_when_there_are_several() -> None:
    proc = run_cli("follow", MANY)
    assert proc.returncode == 2
    assert b"has 20 sessions; choose with --session N" in proc.stderr


# -- payloads ----------------------------------------------------------------------------------


def truth_bytes(m: dict[str, Any]) -> str:
    if m["opcode"] == "close":
        data = struct.pack("!H", m["close_code"]) + m["close_reason"].encode()
        return hashlib.sha256(data).hexdigest()
    if "sha256" in m:
        return str(m["sha256"])
    if "text" in m:
        return hashlib.sha256(m["text"].encode("utf-8")).hexdigest()
    return hashlib.sha256(base64.b64decode(m["data"])).hexdigest()


@pytest.mark.parametrize("name", ["websockets_basic", "deflate_websockets"])
def test_payload_files_are_byte_exact(tmp_path: Path, name: str) -> None:
    out = tmp_path / "payloads"
    proc = export(str(CAPTURES / f"{name}.pcap"), "--payloads", str(out))
    assert proc.returncode == 0, proc.stderr
    truth = load_truth(CAPTURES / f"{name}.truth.json")["sessions"][0]["messages"]
    names = [f"1-{n}-{m['dir']}.{'txt' if m['opcode'] == 'text' else 'bin'}" for n, m in enumerate(truth, 1)]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for file, m in zip(names, truth, strict=True):
        assert hashlib.sha256((out / file).read_bytes()).hexdigest() == truth_bytes(m), file


def test_payload_numbers_do_not_depend_on_the_filter(tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert export(BASIC, "-Y", "opcode == pong", "--payloads", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["1-16-s2c.bin", "1-18-c2s.bin"]
    assert (out / "1-16-s2c.bin").read_bytes() == b"ping-payload"


# -- JSON Lines and CSV ------------------------------------------------------------------------


def test_json_and_csv_hold_the_filtered_records(tmp_path: Path) -> None:
    expression = "opcode == text and dir == s2c and session.server.port == 47002"
    proc = export(MANY, "-Y", expression, "--json", str(tmp_path / "a.jsonl"), "--csv", str(tmp_path / "a.csv"))
    assert proc.returncode == 0, proc.stderr
    want = read_json(MANY, "-Y", expression)
    got = [json.loads(line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    assert got == want
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    messages = [r for r in want if r["type"] == "message"]
    assert len(rows) == len(messages) == 100
    for row, r in zip(rows, messages, strict=True):
        assert (row["session"], row["dir"], row["opcode"], row["text"]) == (str(r["session"]), "s2c", "text", r["text"])
        assert float(row["ts"]) == pytest.approx(r["ts"], abs=1e-6)


# -- bad input ---------------------------------------------------------------------------------


def test_an_existing_file_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "x.har"
    out.write_bytes(b"keep me")
    proc = export(MANY, "--har", str(out))
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [f"wsinspect: {out} exists; give --force to replace it"]
    assert out.read_bytes() == b"keep me"
    assert export(MANY, "--har", str(out), "--force").returncode == 0
    assert json.loads(out.read_bytes())["log"]["version"] == "1.2"
    assert leftovers(tmp_path) == []


def test_a_non_empty_payload_directory_is_refused_without_force(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "other").write_bytes(b"")
    proc = export(BASIC, "--payloads", str(tmp_path / "p"))
    assert proc.returncode == 2
    assert b"is not empty; give --force" in proc.stderr
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["other"]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["-Y", 'session.path == "/nowhere"'], 1, "matched no message or session"),
        (["--session", "21", "--session", "2"], 1, "no session 21 in "),
        (["-Y", "length >"], 2, "bad filter"),
    ],
)
def test_bad_selections_write_nothing(tmp_path: Path, args: list[str], status: int, message: str) -> None:
    har = tmp_path / "x.har"
    pcap = tmp_path / "x.pcap"
    payloads = tmp_path / "p"
    proc = export(MANY, *args, "--har", str(har), "--pcap", str(pcap), "--payloads", str(payloads))
    assert proc.returncode == status
    assert message in proc.stderr.decode().splitlines()[0]
    if "21" in args:
        assert proc.stderr.decode().rstrip().endswith("it has 20 sessions")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_path_is_exit_1(tmp_path: Path) -> None:
    proc = export(MANY, "--har", str(tmp_path / "missing" / "x.har"))
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [
        f"wsinspect: cannot write {tmp_path}/missing/x.har: no such directory {tmp_path}/missing"
    ]
    proc = export(MANY, "--json", str(tmp_path))
    assert proc.returncode == 2  # an existing directory, without --force
    proc = export(MANY, "--json", str(tmp_path), "--force")
    assert proc.returncode == 1
    assert b"is a directory" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    """A disk that fills up while writing: /dev/full as the target's directory is
    impossible, so the output goes to a tiny tmpfs-like limit instead (RLIMIT_FSIZE)."""
    import resource
    import sys

    out = tmp_path / "big.json"
    code = (
        "import resource, signal, sys;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000));"
        "from wsinspect.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "export", BASIC, "--json", str(out)],
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert resource.RLIMIT_FSIZE
    assert proc.returncode == 1, proc.stderr
    assert b"cannot write" in proc.stderr and b"File too large" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_output_is_a_usage_error() -> None:
    proc = export(MANY)
    assert proc.returncode == 2
    assert b"give at least one of --har" in proc.stderr
