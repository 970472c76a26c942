"""The command line as users meet it: output, filters, errors and exit codes."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, ROOT, run_cli
from wsinspect.issues import Issue

BASIC = str(CAPTURES / "websockets_basic.pcap")
MANY = str(CAPTURES / "websockets_many.pcap")


def _json(stdout: bytes) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stdout.splitlines()]


def test_text_output_and_session_table() -> None:
    r = run_cli("read", BASIC)
    assert r.returncode == 0 and r.stderr == b""
    out = r.stdout.decode()
    assert '"hello"' in out and "\\e[31mred" in out and "\x1b" not in out  # no colour into a pipe
    assert out.count("\n") > 20 and "1 WebSocket session(s)" in out


def test_read_forms_are_equivalent(tmp_path: Path) -> None:
    want = run_cli("read", "--json", BASIC).stdout
    assert run_cli("read", "--json", "-r", BASIC).stdout == want
    assert run_cli("read", "--json", "-", stdin=Path(BASIC).read_bytes()).stdout == want
    gz = tmp_path / "no-suffix"
    gz.write_bytes(gzip.compress(Path(BASIC).read_bytes()))
    assert run_cli("read", "--json", str(gz)).stdout == want  # told by magic, not name
    assert run_cli("read", "--json", "-", stdin=gz.read_bytes()).stdout == want


def test_filters() -> None:
    every = _json(run_cli("read", "--json", MANY).stdout)
    msgs = [r for r in every if r["type"] == "message"]
    three = _json(run_cli("read", "--json", "-c", "3", MANY).stdout)
    assert [r for r in three if r["type"] == "message"] == msgs[:3]
    only = _json(run_cli("read", "--json", "--session", "4", "--session", "5", MANY).stdout)
    assert {r["session"] for r in only} == {4, 5}
    assert [r for r in only if r["type"] == "message"] == [m for m in msgs if m["session"] in (4, 5)]
    closes = _json(run_cli("read", "--json", "--opcode", "close", MANY).stdout)
    assert {r["opcode"] for r in closes if r["type"] == "message"} == {"close"}
    grep = _json(run_cli("read", "--json", "--grep", "message 3$", MANY).stdout)
    texts = [r["text"] for r in grep if r["type"] == "message"]
    assert len(texts) == 20 and all(t.endswith("message 3") for t in texts)
    assert texts == [m["text"] for m in msgs if m.get("text", "").endswith("message 3")]
    quiet = run_cli("read", "-q", MANY).stdout.decode()
    assert quiet.lstrip().startswith("20 WebSocket session(s)")


def test_frames_records() -> None:
    records = _json(run_cli("read", "--json", "--frames", str(CAPTURES / "raw_edge.pcap")).stdout)
    frames = [r for r in records if r["type"] == "frame"]
    assert len(frames) > len([r for r in records if r["type"] == "message"])
    f = frames[0]
    assert set(f) >= {"fin", "rsv", "opcode", "masked", "mask_key", "payload_length", "packets", "session", "dir"}
    assert all(isinstance(p, int) for fr in frames for p in fr["packets"])
    assert any(r["mask_key"] == "00000000" for r in frames)


def test_time_and_color_options() -> None:
    epoch = run_cli("read", "-t", "e", "-c", "1", BASIC).stdout.decode()
    assert epoch.split()[0].startswith("17")  # seconds since 1970, in 2023-2026
    colored = run_cli("read", "--color", "always", "-c", "1", BASIC).stdout.decode()
    assert "\x1b[36m" in colored
    assert "\x1b[" not in run_cli("read", "--color", "never", "-c", "1", BASIC).stdout.decode()


def test_help_documents_exit_status() -> None:
    r = run_cli("read", "--help")
    assert r.returncode == 0 and b"exit status" in r.stdout and b"--json" in r.stdout


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello, not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    cases = {
        str(tmp_path / "missing.pcap"): "no such file",
        str(text_file): "not a pcap or pcapng capture",
        str(empty): "empty file",
        str(tmp_path): "is a directory",
    }
    for path, words in cases.items():
        r = run_cli("read", path)
        err = r.stderr.decode()
        assert r.returncode == 1, path
        assert err.count("\n") == 1 and words in err and path in err and "Traceback" not in err
    usage = run_cli("read", "--opcode", "nonsense", BASIC)
    assert usage.returncode == 2 and b"unknown opcode" in usage.stderr


def test_cut_capture_keeps_what_decodes_and_says_so(tmp_path: Path) -> None:
    data = Path(BASIC).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    r = run_cli("read", "--json", str(cut))
    assert r.returncode == 0
    err = r.stderr.decode()
    assert "cut short in the middle of a packet record" in err and str(cut) in err and "Traceback" not in err
    assert sum(1 for rec in _json(r.stdout) if rec["type"] == "message") >= 10


def test_broken_pipe_is_quiet() -> None:
    p = subprocess.run(
        f"{sys.executable} -m wsinspect read {MANY} | head -1",
        shell=True,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert p.stdout.count(b"\n") == 1 and p.stderr == b""


def test_parallel_read_prints_exactly_what_a_single_process_prints() -> None:
    for name in ("websockets_many.pcap", "violations.pcap", "deflate_websockets.pcap", "gappy.pcap"):
        path = str(CAPTURES / name)
        for extra in (
            [],
            ["--json"],
            ["--json", "--frames"],
            ["--frames"],
            ["--session", "3", "--session", "12"],
            ["-q"],
        ):
            one = run_cli("read", "-j", "1", *extra, path)
            many = run_cli("read", "-j", "3", *extra, path)
            assert one.returncode == many.returncode == 0
            assert many.stdout == one.stdout, (name, extra)
            assert many.stderr == one.stderr


def test_parallel_read_of_a_gzip_compressed_file(tmp_path: Path) -> None:
    # Each worker inflates the file itself; a pipe cannot be shared that way.
    data = Path(MANY).read_bytes()
    gz = tmp_path / "many.pcap.gz"
    gz.write_bytes(gzip.compress(data))
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(gz.read_bytes()[:-2000])
    for path in (gz, cut):
        one = run_cli("read", "--json", "-j", "1", str(path))
        many = run_cli("read", "--json", "-j", "2", str(path))
        assert one.stdout.count(b"\n") > 100
        assert many.stdout == one.stdout and many.stderr == one.stderr
    assert b"damaged" in one.stderr and one.stderr.count(b"\n") == 1
    piped = run_cli("read", "--json", "-j", "2", "-", stdin=gz.read_bytes())
    assert piped.returncode == 0 and piped.stdout == run_cli("read", "--json", str(gz)).stdout


def test_parallel_read_reports_a_cut_capture_once(tmp_path: Path) -> None:
    data = Path(MANY).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 5])
    one, many = run_cli("read", "-j", "1", str(cut)), run_cli("read", "-j", "2", str(cut))
    assert many.stdout == one.stdout and many.stderr == one.stderr
    assert many.stderr.decode().count("\n") == 1


def test_infinite_size_is_a_usage_error() -> None:
    r = run_cli("read", "--max-message-size", "inf", BASIC)
    assert r.returncode == 2 and b"not a size" in r.stderr and b"Traceback" not in r.stderr


def test_parallel_read_orders_end_of_capture_events_like_one_process(tmp_path: Path) -> None:
    from tests.packets import Flow, write_pcap, ws_frame

    packets = []
    for port in (40001, 40000, 40003):  # different shards; unfinished messages at the end
        f = Flow(client=("10.0.0.1", port), ts=1_700_000_000.0 + port % 10)
        f.websocket()
        f.c(ws_frame(1, b"part of %d" % port, fin=False, mask=True))
        packets += f.packets
    packets.sort(key=lambda p: p.ts)
    path = str(write_pcap(tmp_path / "eof.pcap", packets))
    for extra in ([], ["--json"]):
        one = run_cli("read", "-j", "1", *extra, path)
        assert one.stdout.count(b"part of") == 3
        for jobs in ("2", "3"):
            assert run_cli("read", "-j", jobs, *extra, path).stdout == one.stdout, (jobs, extra)


def test_parallel_read_over_many_batches(
    monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Batches of 7 packets: workers skip other shards' packets across batch
    # boundaries, and must still send every batch in step.
    from wsinspect import cli, parallel

    monkeypatch.setattr(parallel, "BATCH_PACKETS", 7)
    for extra in (["--json"], [], ["-q"]):
        outputs = []
        for jobs in ("1", "2", "3"):
            assert cli.main(["read", "-j", jobs, *extra, MANY]) == 0
            outputs.append(capfdbinary.readouterr().out)
        assert outputs[0].count(b"\n") > 60  # 20 sessions, 240 messages
        assert outputs[1] == outputs[0] and outputs[2] == outputs[0], extra


def test_bytes_lost_before_a_fin_are_reported_alike_by_every_worker_count(tmp_path: Path) -> None:
    # Each session loses its last message, then its server sends FIN; the capture's
    # last packet belongs to another connection. The hole is reported at the end of
    # the capture, and it must not stretch a session to the capture's end (a worker
    # that skipped that last packet would then disagree with one process).
    import dpkt

    from tests.packets import Flow, write_pcap, ws_frame

    packets = []
    for port in (40001, 40000):  # two shards
        f = Flow(client=("10.0.0.1", port), ts=1_700_000_000.0 + port % 10)
        f.websocket()
        f.s(ws_frame(1, b"kept"))
        f.packets.remove(f.s(ws_frame(1, b"lost"))[0])  # never captured
        f.packets.append(f._packet(1, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK))  # after the lost bytes
        packets += f.packets
    packets.sort(key=lambda p: p.ts)
    packets += Flow(client=("10.0.0.9", 40011), ts=1_700_000_100.0).handshake().packets
    path = str(write_pcap(tmp_path / "lost-tail.pcap", packets))
    one = run_cli("read", "--json", "-j", "1", path).stdout
    sessions = [r for r in _json(one) if r["type"] == "session"]
    assert [r["issues"] for r in sessions] == [["tcp-gap"], ["tcp-gap"]]
    assert all(r["end"] < 1_700_000_100 for r in sessions)
    for jobs in ("2", "3"):
        assert run_cli("read", "--json", "-j", jobs, path).stdout == one


def test_the_readme_lists_every_issue_as_the_code_describes_it() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What wsinspect reports", 1)[1].split("\n## ", 1)[0]
    table = re.findall(r"^\| `([a-z0-9-]+)` \| (.+) \|$", section, re.M)
    assert table == [(issue.value, issue.description) for issue in Issue]


def test_a_commands_usage_errors_show_that_commands_usage() -> None:
    for args in (["read"], ["read", "--bogus", "x.pcap"], ["read", "-r", "a", "b"]):
        result = run_cli(*args)
        assert result.returncode == 2 and result.stderr.startswith(b"usage: wsinspect read "), args
        assert b"wsinspect read: error: " in result.stderr


def test_a_session_that_does_not_exist_is_named_on_stderr() -> None:
    # --session 99 on a capture of 20 sessions printed "0 WebSocket session(s)", exit 0, no hint.
    for jobs in ("1", "2"):
        result = run_cli(
            "read", "-q", "-j", jobs, "--session", "99", "--session", "3", str(CAPTURES / "websockets_many.pcap")
        )
        assert result.returncode == 0
        assert result.stderr == b"wsinspect: no session 99: the capture has 20 WebSocket session(s)\n"
        assert result.stdout.startswith(b"1 WebSocket session(s)\n#3 ")


def test_quiet_output_starts_with_the_table_not_a_blank_line() -> None:
    result = run_cli("read", "-q", BASIC)
    assert result.stdout.startswith(b"1 WebSocket session(s)\n")
    shown = run_cli("read", BASIC).stdout
    assert b"\n\n1 WebSocket session(s)\n" in shown  # after message lines, set apart by one


def test_compression_ratio_only_where_negotiated_and_from_whole_compressed_messages() -> None:
    # gappy.pcap negotiated nothing: "compressed to → 170% ← 100%" was printed from
    # the totals of messages cut by holes.
    assert b"compressed to" not in run_cli("read", "-q", str(CAPTURES / "gappy.pcap")).stdout
    # Under --max-message-size 10 nearly every message is cut: only the whole ones count
    # (it printed → 3530859%).
    cut = run_cli("read", "-q", "--max-message-size", "10", str(CAPTURES / "deflate_chromium.pcap")).stdout
    ratios = [int(r) for r in re.findall(r"[→←] (\d+)%", cut.decode())]
    assert ratios and max(ratios) < 1000
    whole = run_cli("read", "-q", str(CAPTURES / "deflate_chromium.pcap")).stdout
    assert b"compressed to \xe2\x86\x92 16% \xe2\x86\x90 24%" in whole


def test_quiet_names_every_kind_of_finding_with_its_count() -> None:
    # It said "18 issue(s): mid-stream" where 17 were inflate-context-lost.
    out = run_cli("read", "-q", str(CAPTURES / "deflate_midstream.pcap")).stdout
    assert b"18 issue(s): inflate-context-lost \xc3\x9717, mid-stream\n" in out


def test_read_grep_selects_what_the_tui_search_does() -> None:
    # One search rule (wsinspect/search.py): read --grep bye listed 2 messages where
    # tui --grep listed 4 (the long text, "bye soon" and both Close reasons).
    out = run_cli("read", "--grep", "bye", BASIC).stdout.decode()
    lines = [line for line in out.splitlines() if " #1 " in line]
    assert len(lines) == 4 and sum(" close " in line for line in lines) == 2


def test_usage_errors_say_what_is_missing_once() -> None:
    # It said "read: error: read: a capture file is required".
    result = run_cli("read")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1] == (
        "wsinspect read: error: a capture file is required (FILE, -r FILE, or - for standard input)"
    )
    # One "output:" heading in read --help (the epilog had a second).
    assert run_cli("read", "--help").stdout.decode().count("\noutput:") == 1


def test_live_picks_an_interface_as_tcpdump_does_when_none_is_named() -> None:
    from wsinspect.sniff import IFF_LOOPBACK, IFF_RUNNING, IFF_UP, Interface, default_interface

    up, lo = IFF_UP | IFF_RUNNING, IFF_UP | IFF_RUNNING | IFF_LOOPBACK
    lo_if = Interface("lo", 1, 772, lo, 65536, None, ["127.0.0.1/8"])
    down = Interface("eth1", 2, 1, 0, 1500, "02:00:00:00:00:01", ["192.0.2.9/24"])
    bare = Interface("eth2", 3, 1, up, 1500, "02:00:00:00:00:02", [])
    eth = Interface("eth0", 4, 1, up, 1500, "02:00:00:00:00:03", ["192.0.2.2/24"])
    assert default_interface([lo_if, down, bare, eth]) == "eth0"
    assert default_interface([lo_if, down, bare]) == "eth2"
    assert default_interface([lo_if, down]) == "lo"
