"""`read -Y` and `-T fields` end to end: the filter's selection against the same
selection made in Python on the `--json` output, -j N against -j 1, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CAPTURES, run_cli

Record = dict[str, Any]
# (expression, message predicate on (message record, its session record), session
# predicate on a session record with every message field missing)
Case = tuple[str, Callable[[Record, Record], bool], Callable[[Record], bool]]

CASES: list[Case] = [
    (
        "opcode == text and length > 18 and dir == c2s",
        lambda m, s: m["opcode"] == "text" and m["length"] > 18 and m["dir"] == "c2s",
        lambda s: False,
    ),
    ('session.path contains "room/1"', lambda m, s: "room/1" in (s["path"] or ""), lambda s: "room/1" in s["path"]),
    (
        "close_code in {1000..1003} || opcode == ping",
        lambda m, s: (m["close_code"] is not None and 1000 <= m["close_code"] <= 1003) or m["opcode"] == "ping",
        lambda s: False,
    ),
    (
        # not of a missing field is true: every session on the port is selected.
        "session.server.port == 47002 and not dir == s2c",
        lambda m, s: s["server"].endswith(":47002") and m["dir"] != "s2c",
        lambda s: s["server"].endswith(":47002"),
    ),
    (
        'text matches "^session 1[0-9]" && session.client.ip == 127.0.0.1',
        lambda m, s: (
            re.search("^session 1[0-9]", m.get("text", "x")) is not None and s["client"].startswith("127.0.0.1:")
        ),
        lambda s: False,
    ),
    (
        # An end-only field: each session's messages come at its end.
        "session.messages > 11 and opcode == text",
        lambda m, s: s["messages"] > 11 and m["opcode"] == "text",
        lambda s: False,
    ),
    # Message findings: a session's own findings (session.issues) do not select it.
    ("issues", lambda m, s: bool(m["issues"]), lambda s: False),
]
CAPTURE_NAMES = ["websockets_many", "violations", "health_endings", "websockets_basic"]


def records(*args: str) -> list[Record]:
    proc = run_cli("read", *args, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.splitlines()]


def expected(everything: list[Record], case: Case) -> tuple[list[Record], list[Record]]:
    """The selection made in Python on the unfiltered JSON records."""
    _, on_message, on_session = case
    sessions = {r["session"]: r for r in everything if r["type"] == "session"}
    messages = [r for r in everything if r["type"] == "message" and on_message(r, sessions[r["session"]])]
    touched = {r["session"] for r in messages}
    chosen = [s for n, s in sessions.items() if n in touched or on_session(s)]
    return messages, chosen


@pytest.mark.parametrize("name", CAPTURE_NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_filter_selects_what_python_selects_on_json(name: str, case: Case) -> None:
    path = str(CAPTURES / f"{name}.pcap")
    everything = records(path, "-j", "1")
    got = records(path, "-j", "1", "-Y", case[0])
    want_messages, want_sessions = expected(everything, case)
    got_messages = [r for r in got if r["type"] == "message"]
    key = lambda r: (r["session"], r["ts"], r["dir"])  # noqa: E731
    if "session.messages" in case[0]:
        # Held to each session's end: the same messages, in capture order within a session.
        assert sorted(got_messages, key=key) == sorted(want_messages, key=key)
        for n in {r["session"] for r in got_messages}:
            assert [r for r in got_messages if r["session"] == n] == [r for r in want_messages if r["session"] == n]
    else:
        assert got_messages == want_messages
    assert [r for r in got if r["type"] == "session"] == want_sessions


def test_the_cases_select_something_and_not_everything() -> None:
    """The comparison above means something: each filter keeps some messages and drops others."""
    everything = records(str(CAPTURES / "websockets_many.pcap")) + records(str(CAPTURES / "violations.pcap"))
    n = sum(r["type"] == "message" for r in everything)
    for case in CASES[:-1]:
        kept = len(expected(everything, case)[0])
        assert 0 < kept < n, case[0]


@pytest.mark.parametrize(
    "expression",
    [
        "opcode == text and length > 18",
        "session.messages > 11 and opcode == text",  # held in each worker
        "session == 3 or session in {7..9}",  # the session number: one process
        'session.path matches "/room/1[0-9]" and dir == s2c',
    ],
)
@pytest.mark.parametrize("fmt", [["--json"], []])
def test_parallel_output_is_the_same(expression: str, fmt: list[str]) -> None:
    path = str(CAPTURES / "websockets_many.pcap")
    one = run_cli("read", path, "-j", "1", "-Y", expression, *fmt)
    two = run_cli("read", path, "-j", "2", "-Y", expression, *fmt)
    assert one.returncode == two.returncode == 0, two.stderr
    assert one.stdout == two.stdout
    assert one.stdout.count(b"\n") > 3


def test_session_opcode_and_grep_still_work_with_a_filter() -> None:
    path = str(CAPTURES / "websockets_many.pcap")
    got = records(path, "--session", "4", "--opcode", "text", "--grep", "message [12]$", "-Y", "dir == c2s")
    assert [(r["session"], r.get("text")) for r in got if r["type"] == "message"] == [(4, "session 3 message 2")]
    assert [r["session"] for r in got if r["type"] == "session"] == [4]


def test_count_counts_after_the_filter() -> None:
    got = records(str(CAPTURES / "websockets_many.pcap"), "-c", "3", "-Y", "dir == s2c")
    assert [r["dir"] for r in got if r["type"] == "message"] == ["s2c"] * 3


def test_quiet_prints_the_selected_sessions() -> None:
    proc = run_cli("read", str(CAPTURES / "websockets_many.pcap"), "-q", "-Y", 'session.path == "/room/5"')
    assert proc.returncode == 0
    assert b"1 WebSocket session(s)" in proc.stdout
    assert b"/room/5 " in proc.stdout


@pytest.mark.parametrize(
    ("expression", "message", "column"),
    [
        ("opcode == text and", "the filter ends where a field was expected", 18),
        ("lenght > 3", "unknown field 'lenght'", 0),
        ("length >> 3", "expected a value after", 8),
        ('text matches "("', "bad regular expression", 13),
    ],
)
def test_a_bad_filter_is_exit_2_with_a_caret(expression: str, message: str, column: int) -> None:
    proc = run_cli("read", str(CAPTURES / "websockets_basic.pcap"), "-Y", expression)
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert lines[0].startswith("wsinspect: bad filter: ")
    assert message in lines[0]
    assert lines[1] == "    " + expression
    assert lines[2].index("^") == 4 + column, lines
    if "lenght" in expression:
        assert "length" in lines[0]  # the closest known field


def test_live_checks_the_filter_before_capturing() -> None:
    proc = run_cli("live", "-i", "lo", "--duration", "1", "-Y", "opcode ==")
    assert proc.returncode == 2
    assert b"bad filter" in proc.stderr
    assert b"listening" not in proc.stderr


# -- -T fields ------------------------------------------------------------------------

FIELDS = ["session", "dir", "opcode", "length", "text", "session.path", "close_code"]


def fields_args(*extra: str) -> list[str]:
    return ["-T", "fields", *(a for f in FIELDS for a in ("-e", f)), *extra]


def expected_rows(path: str, *extra: str) -> list[list[str]]:
    everything = records(path, *extra)
    sessions = {r["session"]: r for r in everything if r["type"] == "session"}
    rows = []
    for r in everything:
        if r["type"] == "message":
            s = sessions[r["session"]]
            values = [r["session"], r["dir"], r["opcode"], r["length"], r.get("text"), s["path"], r["close_code"]]
            rows.append(["" if v is None else str(v) for v in values])
    return rows


def test_fields_are_tab_separated_and_parse_back() -> None:
    path = str(CAPTURES / "websockets_many.pcap")
    proc = run_cli("read", path, *fields_args("-E", "header=y"))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout.decode()), delimiter="\t"))
    assert rows[0] == FIELDS
    assert rows[1:] == expected_rows(path)


def test_fields_with_a_comma_are_csv() -> None:
    path = str(CAPTURES / "violations.pcap")
    proc = run_cli("read", path, *fields_args("-E", "separator=,", "-E", "quote=d"), "-Y", "opcode == close")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    assert rows == expected_rows(path, "-Y", "opcode == close")
    assert len(rows) > 10


RED = ["-T", "fields", "-e", "text", "-e", "length", "-Y", 'text contains "\\x1b[31m"']


def test_fields_escape_what_would_break_a_line() -> None:
    proc = run_cli("read", str(CAPTURES / "websockets_basic.pcap"), *RED)
    # To a pipe: only what breaks a line (\r \n \t \\) is escaped, the rest is the payload's.
    assert proc.stdout == b"\x1b[31mred\x1b[0m\\r\\nbell\x07\t19\n"


def test_fields_on_a_terminal_are_sanitized() -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wsinspect", "read", str(CAPTURES / "websockets_basic.pcap"), *RED],
            stdout=secondary,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=60,
        )
        os.close(secondary)
        secondary = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        if secondary >= 0:
            os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    # The escape sequences and the bell are shown, not sent; the tab still separates.
    assert out.replace(b"\r\n", b"\n") == b"\\e[31mred\\e[0m\\r\\nbell\\x07\t19\n"


def test_fields_with_end_only_session_fields() -> None:
    path = str(CAPTURES / "websockets_many.pcap")
    proc = run_cli(
        "read", path, "-T", "fields", "-e", "session", "-e", "session.messages", "-e", "length", "-Y", "session < 3"
    )
    lines = proc.stdout.decode().splitlines()
    assert lines and all(line.split("\t")[1] == "12" for line in lines)
    assert {line.split("\t")[0] for line in lines} == {"1", "2"}
    per_session = run_cli(
        "read", path, "-T", "fields", "-e", "session.path", "-e", "session.messages", "-Y", "session < 3"
    )
    assert per_session.stdout == b"/room/0\t12\n/room/1\t12\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "text"], b"-e and -E go with -T fields"),
        (["-T", "fields"], b"at least one -e FIELD"),
        (["-T", "fields", "-e", "txet"], b"unknown field"),
        (["-T", "fields", "-e", "text", "-E", "separator=ab"], b"separator"),
        (["-T", "fields", "-e", "text", "--json"], b"two output formats"),
    ],
)
def test_bad_fields_options_are_exit_2(args: list[str], message: bytes) -> None:
    proc = run_cli("read", str(CAPTURES / "websockets_basic.pcap"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == b""
