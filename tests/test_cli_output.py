"""What `wsinspect read` writes, and where: failing outputs, pipes fed as packets
happen, terminals, captures read only in part (-c), frames in text."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import CAPTURES, ROOT, run_cli
from tests.packets import Flow, write_pcap, ws_frame

MANY = str(CAPTURES / "websockets_many.pcap")
RAW_EDGE = str(CAPTURES / "raw_edge.pcap")
WSINSPECT = [sys.executable, "-m", "wsinspect"]
ENV = dict(os.environ, PYTHONWARNINGS="error")


def _records(stdout: bytes, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in map(json.loads, stdout.splitlines()) if r["type"] == kind]


# -- output that cannot be written -----------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_full_disk_is_one_line_and_status_1(jobs: str, mode: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*WSINSPECT, "read", "-j", jobs, *mode, MANY], stdout=full, stderr=subprocess.PIPE, cwd=ROOT, env=ENV
        )
    assert done.returncode == 1
    assert done.stderr == b"wsinspect: cannot write output: No space left on device\n"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_closed_stdout_is_one_line_and_status_1(jobs: str) -> None:
    done = subprocess.run(
        f"{sys.executable} -m wsinspect read -j {jobs} {MANY} >&-", shell=True, capture_output=True, cwd=ROOT, env=ENV
    )
    assert done.returncode == 1
    assert done.stderr == b"wsinspect: cannot write output: standard output is closed\n"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_reader_that_goes_away_is_not_an_error(jobs: str) -> None:
    done = subprocess.run(
        f"{sys.executable} -m wsinspect read -j {jobs} --json {MANY} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.count(b"\n") == 1 and done.stderr == b""


# -- pipes fed as packets happen --------------------------------------------------


def _two_halves(tmp_path: Path) -> tuple[bytes, bytes]:
    """A capture cut after its first message ("first"): the bytes before and after."""
    f = Flow()
    f.websocket()
    f.c(ws_frame(1, b"first", mask=True))
    head = len(write_pcap(tmp_path / "head.pcap", f.packets).read_bytes())
    f.s(ws_frame(1, b"second"))
    f.fin()
    data = write_pcap(tmp_path / "all.pcap", f.packets).read_bytes()
    return data[:head], data[head:]


def _read_until(stream: IO[bytes], word: bytes, timeout: float) -> bytes:
    """What ``stream`` gives until ``word`` appears (or the timeout, or its end)."""
    got = b""
    deadline = time.monotonic() + timeout
    while word not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        more = os.read(stream.fileno(), 65536)
        if not more:
            break
        got += more
    return got


def _in_two_halves(p: subprocess.Popen[bytes], writer: IO[bytes], head: bytes, rest: bytes) -> bytes:
    """Everything a running read prints when ``writer`` gives it ``head``, waits until
    the first message has come out (and not the second: the rest does not exist
    yet), then gives it ``rest`` and closes."""
    assert p.stdout is not None
    try:
        writer.write(head)
        writer.flush()
        early = _read_until(p.stdout, b"first", timeout=20)
        assert b"first" in early and b"second" not in early
        writer.write(rest)
        writer.close()
        late = p.stdout.read()
        assert p.wait(30) == 0
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    return early + late


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_pipe_is_decoded_as_it_arrives(tmp_path: Path, mode: list[str]) -> None:
    # tcpdump -w - | wsinspect read -: the first message is printed while the pipe
    # stays open, before the rest of the capture exists.
    head, rest = _two_halves(tmp_path)
    p = subprocess.Popen(
        [*WSINSPECT, "read", *mode, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=ENV
    )
    assert p.stdin is not None
    output = _in_two_halves(p, p.stdin, head, rest)
    assert b"second" in output
    assert output == run_cli("read", *mode, str(tmp_path / "all.pcap")).stdout


def test_a_fifo_is_decoded_as_it_arrives(tmp_path: Path) -> None:
    head, rest = _two_halves(tmp_path)
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    p = subprocess.Popen([*WSINSPECT, "read", "--json", str(fifo)], stdout=subprocess.PIPE, cwd=ROOT, env=ENV)
    with open(fifo, "wb") as writer:
        output = _in_two_halves(p, writer, head, rest)
    assert [r["text"] for r in _records(output, "message")] == ["first", "second"]


# -- terminals ----------------------------------------------------------------------

# C1 controls (NEL, CSI), DEL, bidi override and isolate, Arabic letter mark,
# zero-width space, line separator, byte order mark: raw in JSON, which allows them.
_UNSAFE = "a\u0085b\u009b31mc\x7fd\u202ee\u2066f\u2069g\u061ch\u200bi\u2028j\ufeffk é 你 🌍"


def _unsafe_capture(tmp_path: Path) -> str:
    f = Flow()
    f.websocket()
    f.c(ws_frame(1, _UNSAFE.encode(), mask=True))
    f.c(ws_frame(8, b"\x03\xe8" + "\u202eclose".encode(), mask=True))
    f.fin()
    return str(write_pcap(tmp_path / "unsafe.pcap", f.packets))


def _on_a_terminal(*args: str) -> bytes:
    """Run wsinspect with its stdout on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([*WSINSPECT, *args], stdout=slave, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
        os.close(slave)
        got = b""
        while True:
            try:
                more = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not more:
                break
            got += more
        assert p.wait(30) == 0
        assert p.stderr is not None and p.stderr.read() == b""
        p.stderr.close()
    finally:
        os.close(master)
    return got.replace(b"\r\n", b"\n")  # the terminal's ONLCR


def test_json_on_a_terminal_escapes_what_could_act_on_it(tmp_path: Path) -> None:
    path = _unsafe_capture(tmp_path)
    piped = run_cli("read", "--json", path).stdout
    assert "\u009b".encode() in piped and "\u202e".encode() in piped  # files and pipes: orjson's bytes
    shown = _on_a_terminal("read", "--json", path)
    for ch in "\u0085\u009b\x7f\u202e\u2066\u2069\u061c\u200b\u2028\ufeff":
        assert ch.encode() not in shown, hex(ord(ch))
    assert b"\\u009b31m" in shown and b"\\u202e" in shown and "é 你 🌍".encode() in shown
    assert _records(shown, "message") == _records(piped, "message")  # the same JSON
    assert _records(shown, "session") == _records(piped, "session")
    assert _on_a_terminal("read", "-j", "2", "--json", path) == shown  # the parent process escapes


# -- -c: reading stopped before the end ----------------------------------------------


def test_count_says_reading_stopped_for_sessions_still_open() -> None:
    sessions = _records(run_cli("read", "--json", "-c", "3", MANY).stdout, "session")
    assert sessions and {(s["ended_by"], s["close"]) for s in sessions} == {("stopped", None)}
    text = run_cli("read", "-c", "3", MANY).stdout.decode()
    assert "no close frame; reading stopped before the connection ended;" in text
    assert "ended by eof" not in text
    everything = _records(run_cli("read", "--json", MANY).stdout, "session")
    assert {s["ended_by"] for s in everything} == {"fin"}


def test_count_reads_alike_with_any_number_of_jobs() -> None:
    for extra in ([], ["--json"], ["-q"], ["--frames"]):
        one = run_cli("read", "-j", "1", "-c", "30", *extra, MANY)
        assert one.returncode == 0 and b"stopped" in one.stdout
        assert run_cli("read", "-j", "2", "-c", "30", *extra, MANY).stdout == one.stdout, extra


# -- options -------------------------------------------------------------------------


def test_opcode_cont_selects_stray_continuation_frames(tmp_path: Path) -> None:
    f = Flow()
    f.websocket()
    f.c(ws_frame(1, b"text", mask=True))
    f.c(ws_frame(0, b"stray", mask=True))
    f.fin()
    path = str(write_pcap(tmp_path / "stray.pcap", f.packets))
    text = run_cli("read", path).stdout.decode()
    assert " cont " in text  # as the text output names it
    for name in ("cont", "continuation", "0x0", "CONT"):
        done = run_cli("read", "--json", "--opcode", name, path)
        assert done.returncode == 0, done.stderr
        assert [r["opcode"] for r in _records(done.stdout, "message")] == ["cont"], name  # one name everywhere
    help_text = run_cli("read", "--help").stdout.decode()
    assert "cont" in help_text.split("--opcode", 2)[2].split("--grep")[0]
    bad = run_cli("read", "--opcode", "nonsense", path)
    assert bad.returncode == 2 and b"cont" in bad.stderr


def test_frames_in_text_output_one_line_under_each_message() -> None:
    text = run_cli("read", "--frames", RAW_EDGE).stdout.decode().split("\n\n")[0].splitlines()
    frames = _records(run_cli("read", "--json", "--frames", RAW_EDGE).stdout, "frame")
    frame_lines = [line for line in text if line.split("#", 1)[1][3:].startswith("   frame ")]
    assert len(frame_lines) == len(frames) > 0
    assert len(text) - len(frame_lines) == len(_records(run_cli("read", "--json", RAW_EDGE).stdout, "message"))
    assert run_cli("read", RAW_EDGE).stdout.decode().splitlines() == [
        line for line in run_cli("read", "--frames", RAW_EDGE).stdout.decode().splitlines() if line not in frame_lines
    ]
    # A fragmented message: its line, then one line per frame.
    at = next(i for i, line in enumerate(text) if "[3 frames]" in line)
    assert [line.split()[3:5] for line in text[at + 1 : at + 4]] == [["text", "14"], ["cont", "14"], ["cont", "14"]]
