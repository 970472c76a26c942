"""`wsinspect live` against real `websockets` peers, on lo and on a veth pair between
two network namespaces (1500-byte MTU, real segmentation). Needs root (CI runs as root).

Every capture runs as a user would run it, in a subprocess; peers are
tests/live/ws_peer.py processes. Whatever happens, fixtures kill the processes and
delete the namespaces they created.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from tests.live.ws_peer import expected

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="live capture is Linux-only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (CAP_NET_RAW) and network namespaces"),
]

ENV = dict(os.environ, PYTHONWARNINGS="error")
WSINSPECT = [sys.executable, "-m", "wsinspect"]
PEER = [sys.executable, "-m", "tests.live.ws_peer"]
# Seconds from the packet's kernel timestamp to the line on our pipe: a guard against a
# line held back until the end, many times the figure measured (median 4 ms, p99 9 ms:
# `python -m tests.live.load latency`), so that a loaded machine cannot fail it. That
# lines come out while the capture runs is asserted without a clock (wait_for before stop).
LATENCY_LIMIT = 10.0


class Proc:
    """A subprocess whose stdout and stderr lines are collected, with arrival times, by threads."""

    def __init__(self, cmd: list[str], stdin: bool = False) -> None:
        self.cmd = cmd
        self.popen = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=ENV,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out: list[tuple[float, bytes]] = []
        self.err: list[bytes] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._threads = [
            threading.Thread(target=self._collect, args=(self.popen.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._collect, args=(self.popen.stderr, self.err, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _collect(stream: Any, into: list[Any], stamp: bool) -> None:
        for line in iter(stream.readline, b""):
            into.append((time.time(), line) if stamp else line)

    def wait_for(self, what: Callable[[], bool], timeout: float = 15, label: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if self.popen.poll() is not None and not what():
                time.sleep(0.1)  # let the reader threads catch up
                if what():
                    return
                pytest.fail(f"{label or self.cmd} ended with {self.popen.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {label or self.cmd}; stderr: {self.stderr}")
            time.sleep(0.02)

    def wait_line(self, text: bytes, timeout: float = 15) -> bytes:
        found: list[bytes] = []

        def seen() -> bool:
            found[:] = [line for _, line in self.out if line.startswith(text)]
            return bool(found)

        self.wait_for(seen, timeout, f"{text!r} from {self.cmd}")
        return found[0]

    def finish(self, timeout: float = 20) -> int:
        rc = self.popen.wait(timeout)
        self._close()
        return rc

    def _close(self) -> None:
        for t in self._threads:
            t.join(5)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        self.popen.send_signal(sig)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._close()

    @property
    def stdout(self) -> bytes:
        return b"".join(line for _, line in self.out)

    @property
    def stderr(self) -> str:
        return b"".join(self.err).decode(errors="replace")


@pytest.fixture
def procs() -> Iterator[Callable[..., Proc]]:
    """Start processes that are killed at teardown, whatever the test did."""
    started: list[Proc] = []

    def start(cmd: list[str], stdin: bool = False) -> Proc:
        p = Proc(cmd, stdin)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.kill()


def live(start: Callable[..., Proc], *args: str, ns: str | None = None) -> Proc:
    """Start `wsinspect live ARGS` and wait until its sockets are open."""
    p = start([*_netns(ns), *WSINSPECT, "live", *args])
    p.wait_for(lambda: "listening on" in p.stderr, label="wsinspect live to listen")
    return p


def server(start: Callable[..., Proc], host: str = "127.0.0.1", *args: str, ns: str | None = None) -> tuple[Proc, int]:
    p = start([*_netns(ns), *PEER, "server", host, *args])
    return p, int(p.wait_line(b"ready ").split()[1])


def _netns(ns: str | None) -> list[str]:
    return ["ip", "netns", "exec", ns] if ns else []


def records(output: bytes, kind: str = "message") -> list[dict[str, Any]]:
    return [r for r in map(json.loads, output.splitlines()) if r["type"] == kind]


def sent(rec: dict[str, Any]) -> dict[str, Any]:
    """A message record reduced to what the peers sent: direction, opcode, payload."""
    key = "text" if "text" in rec else "data"
    return {"dir": rec["dir"], "opcode": rec["opcode"], key: rec[key]}


def read_json(pcap: Path) -> bytes:
    done = subprocess.run([*WSINSPECT, "read", str(pcap), "--json"], cwd=ROOT, env=ENV, capture_output=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def pcap_linktype(pcap: Path) -> int:
    linktype: int = struct.unpack_from("<I", pcap.read_bytes(), 20)[0]
    return linktype


def tcpdump_count(pcap: Path) -> int:
    done = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return len(done.stdout.splitlines())


def stats(p: Proc) -> str:
    """The packet-count line wsinspect prints on stderr when it stops."""
    lines = [line for line in p.stderr.splitlines() if "packets captured" in line]
    assert len(lines) == 1 and "cut to" not in lines[0], p.stderr
    return lines[0]


# -- loopback -----------------------------------------------------------------


def test_lo_json_live_and_saved(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """Two sessions on lo, plain and permessage-deflate: the JSON Lines appear live, equal what
    was sent, and `read -w FILE` gives the same lines. The plain one carries 200 KB messages:
    lo's largest packets (65535 bytes of IP) are captured whole."""
    plain, port1 = server(procs)
    deflate, port2 = server(procs, "127.0.0.1", "--compression")
    pcap = tmp_path / "lo.pcap"
    cap = live(procs, "-i", "lo", "-f", f"tcp port {port1} or tcp port {port2}", "--json", "-w", str(pcap))
    large = 200_000
    want = expected(large) + expected()
    for port, options in ((port1, ["--large", str(large)]), (port2, ["--compression"])):
        client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/chat", *options])
        assert client.finish() == 0, client.stderr
    # Every message is on wsinspect's stdout while the capture still runs.
    cap.wait_for(lambda: len(records(cap.stdout)) >= len(want), label="live messages")
    assert cap.stop(signal.SIGINT) == 0, cap.stderr
    for p in (plain, deflate):
        assert p.finish() == 0

    msgs = records(cap.stdout)
    assert [sent(m) for m in msgs] == want
    assert [m["session"] for m in msgs] == [1] * len(expected(large)) + [2] * len(expected())
    assert not any(m["issues"] for m in msgs)
    fragmented = [m for m in msgs if m["opcode"] in ("text", "binary") and m["frames"] > 1]
    assert len(fragmented) == 4  # the two fragmented sends of each client
    assert {m["compressed"] for m in msgs if m["session"] == 2 and m["opcode"] == "text"} == {True}

    sessions = records(cap.stdout, "session")
    assert [s["mid_stream"] for s in sessions] == [False, False]
    assert [s["close"]["code"] for s in sessions] == [1000, 1000]
    assert sessions[1]["extensions"] and sessions[1]["extensions"][0].startswith("permessage-deflate")
    assert not any(s["issue_count"] for s in sessions)

    # Wire to line: the kernel's timestamp of the packet completing each message against
    # the time its line reached our pipe (both wall clocks of this host).
    arrivals = {json.loads(line)["ts"]: t for t, line in cap.out if b'"type":"message"' in line}
    latency = max(t - ts for ts, t in arrivals.items())
    assert latency < LATENCY_LIMIT, f"slowest message took {latency:.3f} s from the wire to its line"

    line = stats(cap)
    assert " 0 dropped by kernel, 0 dropped by wsinspect" in line, line
    assert pcap_linktype(pcap) == 1  # Ethernet, as lo gives it
    assert max(_pcap_sizes(pcap)) > 65535
    assert read_json(pcap) == cap.stdout
    assert tcpdump_count(pcap) == int(line.split()[1])


def test_lo_text_sigterm_tshark(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """Text output with the session table, stopped by SIGTERM; tshark opens the saved file."""
    _, port = server(procs)
    pcap = tmp_path / "term.pcap"
    cap = live(procs, "-i", "lo", f"tcp port {port}", "-w", str(pcap), "--color", "never")
    client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/text"])
    assert client.finish() == 0
    cap.wait_for(lambda: cap.stdout.count(b'1000 Normal Closure "bye"') == 2, label="both close frames")
    assert cap.stop(signal.SIGTERM) == 0, cap.stderr
    text = cap.stdout.decode()
    assert ' "hello"' in text and ' "frag-1 frag-2 frag-3"' in text
    assert "1 WebSocket session(s)" in text and f"127.0.0.1:{port}/text  HTTP 101  accept ok" in text
    assert 'close 1000 Normal Closure "bye" by client' in text
    written = int(stats(cap).split("; ")[1].split()[0])
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    done = subprocess.run(["tshark", "-n", "-r", str(pcap)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == written


def test_any_count_stops(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """-i any: cooked SLL2 packets, lo's traffic once (not twice); -c stops the capture by itself."""
    _, port = server(procs)
    pcap = tmp_path / "any.pcap"
    cap = live(procs, "-i", "any", "-f", f"tcp port {port}", "--json", "-c", "6", "-w", str(pcap))
    client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/"])
    assert client.finish() == 0
    assert cap.finish() == 0, cap.stderr
    msgs = records(cap.stdout)
    assert [sent(m) for m in msgs] == expected()[:6]
    # The session went on after the sixth message: the capture stopped, not the connection.
    assert [s["ended_by"] for s in records(cap.stdout, "session")] == ["stopped"]
    assert pcap_linktype(pcap) == 276
    assert records(read_json(pcap))[:6] == msgs


def test_mid_stream(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """A session open before the capture starts: its later messages are decoded, and it is marked."""
    _, port = server(procs)
    client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/", "--pause-after", "3"], stdin=True)
    client.wait_line(b"paused")
    cap = live(procs, "-i", "lo", "-f", f"tcp port {port}", "--json")
    assert client.popen.stdin is not None
    client.popen.stdin.write(b"go\n")
    client.popen.stdin.close()
    assert client.finish() == 0
    want = expected()[6:]
    cap.wait_for(lambda: len(records(cap.stdout)) >= len(want), label="mid-stream messages")
    assert cap.stop() == 0, cap.stderr
    msgs = records(cap.stdout)
    assert [sent(m) for m in msgs] == want
    (session,) = records(cap.stdout, "session")
    assert session["mid_stream"] is True and session["status"] is None


def test_duration_without_traffic(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """--duration stops by itself; an empty capture is still a valid pcap and an empty table."""
    pcap = tmp_path / "empty.pcap"
    cap = live(procs, "-i", "lo", "-f", "tcp port 9", "--duration", "0.5", "-w", str(pcap))
    started = time.monotonic()
    assert cap.finish() == 0, cap.stderr
    assert time.monotonic() - started < 30  # a guard against a hang: it stops by itself at 0.5 s
    assert "0 WebSocket session(s)" in cap.stdout.decode()
    assert "0 packets captured" in stats(cap)
    assert pcap.stat().st_size == 24 and read_json(pcap) == b""


def test_interfaces() -> None:
    for cmd in (["interfaces"], ["-D"]):
        done = subprocess.run([*WSINSPECT, *cmd], cwd=ROOT, env=ENV, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        lo = [line for line in done.stdout.decode().splitlines() if " lo " in line]
        assert lo and "up" in lo[0] and "loopback" in lo[0] and "127.0.0.1/8" in lo[0]
        assert "any" in done.stdout.decode()
    done = subprocess.run([*WSINSPECT, "interfaces", "--json"], cwd=ROOT, env=ENV, capture_output=True, timeout=30)
    (lo,) = [r for r in map(json.loads, done.stdout.splitlines()) if r["name"] == "lo"]
    assert lo["state"] == "up" and lo["link"] == "loopback" and "127.0.0.1/8" in lo["addresses"]


# -- errors ---------------------------------------------------------------------


def run_live(*args: str, prefix: tuple[str, ...] = (), code: str | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = [*prefix, sys.executable, "-c", code, "live", *args] if code else [*prefix, *WSINSPECT, "live", *args]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, timeout=30)


def one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 1, done
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsinspect: "), lines
    return lines[0]


def test_unknown_interface() -> None:
    line = one_error_line(run_live("-i", "nosuch0"))
    assert "no such interface: nosuch0" in line and "lo" in line and "any" in line


def test_bad_filter() -> None:
    line = one_error_line(run_live("-i", "lo", "-f", "tcp prt 80"))
    assert line == "wsinspect: bad capture filter 'tcp prt 80': can't parse filter expression: syntax error"


def test_no_libpcap() -> None:
    """scapy compiles filters with libpcap; without it, say which Debian package to install."""
    hide = (
        "import sys; sys.modules['scapy.libs.winpcapy'] = None; sys.argv[0] = 'wsinspect';"
        " from wsinspect.cli import main; sys.exit(main())"
    )
    line = one_error_line(run_live("-i", "lo", "-f", "tcp port 80", code=hide))
    assert "libpcap is not installed" in line and "apt-get install libpcap0.8" in line


def test_unwritable_pcap() -> None:
    line = one_error_line(run_live("-i", "lo", "-f", "tcp port 9", "-w", "/dev/full"))
    assert line == "wsinspect: cannot write /dev/full: No space left on device"
    line = one_error_line(run_live("-i", "lo", "-w", "/nonexistent/dir/x.pcap"))
    assert line == "wsinspect: cannot write /nonexistent/dir/x.pcap: No such file or directory"


def test_unwritable_output() -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*WSINSPECT, "live", "-i", "lo", "-f", "tcp port 9", "--duration", "0.2"],
            cwd=ROOT,
            env=ENV,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=30,
        )
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert lines[-1] == "wsinspect: cannot write output: No space left on device" and b"Traceback" not in done.stderr
    for extra in ([], ["--json"]):
        with open("/dev/full", "wb") as full:
            listed = subprocess.run(
                [*WSINSPECT, "interfaces", *extra], cwd=ROOT, env=ENV, stdout=full, stderr=subprocess.PIPE
            )
        assert listed.returncode == 1
        assert listed.stderr == b"wsinspect: cannot write output: No space left on device\n"


def test_usage_errors() -> None:
    assert run_live("-i", "any", "-i", "lo").returncode == 2
    assert run_live("-i", "lo", "-f", "tcp", "port", "80").returncode == 2
    # No -i: an interface is picked as tcpdump picks one, not a usage error.
    picked = run_live("-f", "tcp port 9", "--duration", "0.3")
    assert picked.returncode == 0 and b"wsinspect: listening on " in picked.stderr, picked.stderr
    tui_json = run_live("-i", "lo", "--tui", "--json")
    assert tui_json.returncode == 2 and b"--tui" in tui_json.stderr


def test_not_permitted() -> None:
    """Without CAP_NET_RAW: one line that says how to fix it. As nobody when the interpreter
    is reachable for it, else as root with CAP_NET_RAW removed from the bounding set."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all")
    reachable = subprocess.run([*nobody, *WSINSPECT, "--version"], capture_output=True, cwd=ROOT, env=ENV)
    prefix = nobody if reachable.returncode == 0 else ("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw")
    line = one_error_line(run_live("-i", "lo", "-f", "tcp port 80", prefix=prefix))
    assert "cannot capture on lo: permission denied" in line
    assert "CAP_NET_RAW" in line and "sudo" in line and "setcap cap_net_raw+eip" in line
    assert line.index("sudo") < line.index("setcap") and "every script it runs" in line


# -- a veth pair between two network namespaces ---------------------------------


@pytest.fixture
def netns() -> Iterator[dict[str, str]]:
    """Namespaces S (server) and C (client) joined by a veth pair, 10.77.0.1 <-> 10.77.0.2, MTU 1500.

    GSO is limited to one MTU so that what crosses the veth is what a real wire carries:
    1514-byte frames, not 64 KiB super-packets.
    """
    tag = f"wsi{os.getpid() % 100000}"
    net = {"s": f"{tag}s", "c": f"{tag}c", "vs": f"{tag}vs", "vc": f"{tag}vc", "ip_s": "10.77.0.1"}
    steps = [
        ["ip", "netns", "add", net["s"]],
        ["ip", "netns", "add", net["c"]],
        ["ip", "link", "add", net["vs"], "netns", net["s"], "mtu", "1500", "type", "veth", "peer", "name"],
        ["ip", "-n", net["s"], "addr", "add", "10.77.0.1/24", "dev", net["vs"]],
        ["ip", "-n", net["c"], "addr", "add", "10.77.0.2/24", "dev", net["vc"]],
        ["ip", "-n", net["s"], "link", "set", "lo", "up"],
        ["ip", "-n", net["s"], "link", "set", net["vs"], "up"],
        ["ip", "-n", net["c"], "link", "set", net["vc"], "up"],
    ]
    steps[2] += [net["vc"], "netns", net["c"], "mtu", "1500"]
    try:
        for cmd in steps:
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        for ns, dev in ((net["s"], net["vs"]), (net["c"], net["vc"])):
            # Older iproute2 lacks gso_max_size: the test still runs, with larger packets.
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "gso_max_size", "1500"], capture_output=True)
        yield net
    finally:
        for ns in (net["s"], net["c"]):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_veth_segmented(procs: Callable[..., Proc], netns: dict[str, str], tmp_path: Path) -> None:
    """Large messages cut into 1500-byte segments on a veth, captured on the veth alone
    (Ethernet) and on the veth plus lo at once (cooked): both decode what was sent."""
    large = 300_000
    srv, port = server(procs, netns["ip_s"], ns=netns["s"])
    pcap = tmp_path / "veth.pcap"
    flt = f"tcp port {port}"
    one = live(procs, "-i", netns["vs"], "-f", flt, "--json", "-w", str(pcap), ns=netns["s"])
    both = live(procs, "-i", netns["vs"], "-i", "lo", "-f", flt, "--json", ns=netns["s"])
    url = f"ws://{netns['ip_s']}:{port}/big"
    client = procs(["ip", "netns", "exec", netns["c"], *PEER, "client", url, "--large", str(large)])
    assert client.finish() == 0, client.stderr
    want = expected(large)
    for cap in (one, both):

        def complete(c: Proc = cap) -> bool:
            return len(records(c.stdout)) >= len(want)

        cap.wait_for(complete, label="veth messages")
        assert cap.stop() == 0, cap.stderr
        assert [sent(m) for m in records(cap.stdout)] == want
        assert " 0 dropped by kernel, 0 dropped by wsinspect" in stats(cap)
    assert srv.finish() == 0
    big = [m for m in records(one.stdout) if m["length"] == large]
    assert len(big) == 4 and all(m["packets"][1] - m["packets"][0] > 100 for m in big)
    assert pcap_linktype(pcap) == 1
    assert read_json(pcap) == one.stdout
    # Frames on the wire are at most 1514 bytes (where iproute2 could cap GSO).
    sizes = _pcap_sizes(pcap)
    assert sizes and (max(sizes) <= 1514 or not _gso_capped(netns))


def test_interface_down(procs: Callable[..., Proc], netns: dict[str, str], tmp_path: Path) -> None:
    """An interface going down stops the capture: decoded messages and the pcap are kept; exit 1."""
    ns = netns["s"]
    subprocess.run(["ip", "-n", ns, "link", "add", "wsidown", "type", "veth", "peer", "name", "wsidown2"], check=True)
    done = run_live("-i", "wsidown", prefix=("ip", "netns", "exec", ns))
    assert "interface wsidown is down (bring it up: ip link set wsidown up)" in one_error_line(done)

    _, port = server(procs, netns["ip_s"], ns=ns)
    pcap = tmp_path / "down.pcap"
    cap = live(procs, "-i", netns["vs"], "-f", f"tcp port {port}", "--json", "-w", str(pcap), ns=ns)
    client = procs(["ip", "netns", "exec", netns["c"], *PEER, "client", f"ws://{netns['ip_s']}:{port}/"])
    assert client.finish() == 0
    want = expected()
    cap.wait_for(lambda: len(records(cap.stdout)) >= len(want), label="messages before the link goes down")
    subprocess.run(["ip", "-n", ns, "link", "set", netns["vs"], "down"], check=True)
    assert cap.finish() == 1
    assert [sent(m) for m in records(cap.stdout)] == want
    last = cap.stderr.splitlines()[-1]
    assert last.startswith(f"wsinspect: interface {netns['vs']} went down; capture stopped (")
    assert f"packets saved in {pcap})" in last
    assert records(read_json(pcap)) == records(cap.stdout)


def _pcap_sizes(pcap: Path) -> list[int]:
    data = pcap.read_bytes()
    sizes = []
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        sizes.append(caplen)
        pos += 16 + caplen
    return sizes


def _gso_capped(net: dict[str, str]) -> bool:
    shown = subprocess.run(["ip", "-d", "-n", net["s"], "link", "show", net["vs"]], capture_output=True, text=True)
    return "gso_max_size 1500 " in shown.stdout


def test_pcap_record_layout(tmp_path: Path) -> None:
    """The writer's header and records as the pcap format defines them (nanosecond magic)."""
    from wsinspect.capture import PCAP_MAGIC_NS, PcapWriter, open_capture

    path = tmp_path / "w.pcap"
    writer = PcapWriter(str(path), 1)
    writer.write(1_700_000_000, 123_456_789, b"\x01\x02\x03", 60)
    writer.close()
    data = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", data) == (PCAP_MAGIC_NS, 2, 4, 0, 0, 262144, 1)
    assert struct.unpack_from("<IIII", data, 24) == (1_700_000_000, 123_456_789, 3, 60)
    reader = open_capture(str(path))
    (raw,) = list(reader)
    reader.close()
    assert raw.ts == 1_700_000_000 + 123_456_789 / 1e9 and bytes(raw.data) == b"\x01\x02\x03"


def test_pcap_writer_counts_only_records_that_reached_the_disk(tmp_path: Path) -> None:
    """A full disk (here a file size limit) cuts the file in a record: the count
    reported is of whole records in the file, not of those handed to the buffer."""
    path = tmp_path / "full.pcap"
    script = f"""
import resource, signal
from wsinspect.errors import CaptureError
from wsinspect.capture import PcapWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
writer = PcapWriter({str(path)!r}, 1)
resource.setrlimit(resource.RLIMIT_FSIZE, (24 + 3 * 116 + 50, resource.RLIM_INFINITY))
for i in range(10):
    writer.write(1_700_000_000, i, bytes(100), 100)
try:
    writer.flush()
except CaptureError as exc:
    print(writer.packets, exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(f"3 cannot write {path}: File too large"), done.stdout + done.stderr
    assert path.stat().st_size == 24 + 3 * 116 + 50
    result = run_cli("read", "--json", str(path))
    assert b"cut short" in result.stderr and result.returncode == 0


def test_ring_blocks(tmp_path: Path) -> None:
    """The TPACKET_V3 ring walk on a hand-built block (the kernel's layout, if_packet.h):
    802.1Q tags put back into Ethernet frames; cooked packets get SLL2 headers; lo's
    outgoing copies skipped; packets the kernel cut are counted, their length kept."""
    from wsinspect import sniff
    from wsinspect.capture import PcapWriter

    def packet(
        ring: bytearray,
        at: int,
        data: bytes,
        *,
        length: int = 0,
        status: int = 0,
        tci: int = 0,
        pkttype: int = 0,
        ifindex: int = 2,
        next_offset: int = 0,
    ) -> None:
        mac = 96
        struct.pack_into(
            "IIIIIIHHIIH",
            ring,
            at,
            next_offset,
            1_700_000_000,
            5,
            len(data),
            length or len(data),
            status,
            mac,
            mac,
            0,
            tci,
            0x88A8 if status & sniff.TP_STATUS_VLAN_TPID_VALID else 0,
        )
        struct.pack_into("=H2siHBB8s", ring, at + 48, 17, b"\x08\x00", ifindex, 1, pkttype, 6, b"\xaa" * 6)
        ring[at + mac : at + mac + len(data)] = data

    def block(packets: list[dict[str, Any]]) -> bytearray:
        ring = bytearray(2 * sniff.BLOCK_SIZE)
        struct.pack_into("IIIII", ring, 0, 3, 0, sniff.TP_STATUS_USER, len(packets), 48)
        at = 48
        for i, p in enumerate(packets):
            size = 96 + len(p["data"])
            step = (size + 15) // 16 * 16 if i < len(packets) - 1 else 0
            packet(ring, at, next_offset=step, **p)
            at += step
        return ring

    frame = bytes(range(12)) + b"\x08\x00" + b"IP.."
    ring = block(
        [
            {"data": frame},
            {"data": frame, "status": sniff.TP_STATUS_VLAN_VALID, "tci": 5},
            {"data": frame, "status": sniff.TP_STATUS_VLAN_VALID | sniff.TP_STATUS_VLAN_TPID_VALID, "tci": 7},
        ]
    )
    writer = PcapWriter(str(tmp_path / "ring.pcap"), 1)
    capture = sniff.Capture([sniff._Tap("eth", None, ring, 1, False)], writer, set())  # type: ignore[arg-type]
    assert capture._blocks(capture.taps[0]) is True
    assert struct.unpack_from("I", ring, 8)[0] == sniff.TP_STATUS_KERNEL  # the block is given back
    assert capture.taps[0].block == 1
    batch = capture.queue.get(0)
    assert batch is not None
    assert [bytes(p.data) for p in batch] == [
        frame,
        frame[:12] + b"\x81\x00\x00\x05" + frame[12:],
        frame[:12] + b"\x88\xa8\x00\x07" + frame[12:],
    ]
    assert batch[0].ts == 1_700_000_000 + 5 / 1e9 and batch[0].linktype == 1
    writer.close()
    records_ = _pcap_records(tmp_path / "ring.pcap")
    assert [(caplen, origlen) for caplen, origlen, _ in records_] == [(18, 18), (22, 22), (22, 22)]

    # lo on a kernel without PACKET_IGNORE_OUTGOING: the loop skips the outgoing copies.
    ring = block([{"data": frame, "pkttype": sniff.PACKET_OUTGOING, "ifindex": 1}, {"data": frame, "ifindex": 1}])
    capture = sniff.Capture([sniff._Tap("lo", None, ring, 1, True)], None, {1})  # type: ignore[arg-type]
    capture._blocks(capture.taps[0])
    assert capture.captured == 1

    ip = b"E" + bytes(39)
    ring = block(
        [
            {"data": ip, "pkttype": sniff.PACKET_OUTGOING, "ifindex": 1},  # lo going out: skipped
            {"data": ip, "pkttype": 0, "ifindex": 1},
            {"data": ip, "length": 300_000, "ifindex": 2},
        ]
    )
    writer = PcapWriter(str(tmp_path / "cooked.pcap"), 276)
    capture = sniff.Capture([sniff._Tap("any", None, ring, 276, True)], writer, {1})  # type: ignore[arg-type]
    capture._blocks(capture.taps[0])
    batch = capture.queue.get(0)
    assert batch is not None and len(batch) == 2 and capture.captured == 2
    sll2 = bytes(batch[0].data[:20])
    assert sll2 == b"\x08\x00\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01" + b"\x00\x06" + b"\xaa" * 6 + b"\x00\x00"
    assert bytes(batch[0].data[20:]) == ip
    assert bytes(batch[1].data[20:]) == ip and capture.truncated == 1
    writer.close()
    assert [(caplen, origlen) for caplen, origlen, _ in _pcap_records(tmp_path / "cooked.pcap")] == [
        (60, 60),
        (60, 300_020),
    ]


def _pcap_records(pcap: Path) -> list[tuple[int, int, bytes]]:
    data = pcap.read_bytes()
    out = []
    pos = 24
    while pos + 16 <= len(data):
        caplen, origlen = struct.unpack_from("<II", data, pos + 8)
        out.append((caplen, origlen, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


# -- live --tui, in a pseudo-terminal -------------------------------------------

# What a terminal interprets rather than shows: CSI (cursor, colours, modes), OSC, charset and keypad.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>78]")
ALT_SCREEN_OFF = b"\x1b[?1049l"


class PtyProc:
    """A process on a pseudo-terminal of 120x30, as a user runs it; the terminal's output is collected."""

    def __init__(self, cmd: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        try:
            self.popen = subprocess.Popen(
                cmd, cwd=ROOT, env=dict(ENV, TERM="xterm-256color"), stdin=slave, stdout=slave, stderr=slave
            )
        finally:
            os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has ended
                return
            if not data:
                return
            self.output.extend(data)

    @property
    def screen(self) -> str:
        """Everything written, the escape sequences left out: each text drawn, in order."""
        return _ESCAPES.sub(b"", bytes(self.output)).decode("utf-8", "replace")

    def wait_shown(self, *texts: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not all(t in self.screen for t in texts):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                missing = [t for t in texts if t not in self.screen]
                pytest.fail(f"{missing} not on the screen (exit {self.popen.poll()}): {self.screen[-2000:]!r}")
            time.sleep(0.05)

    def keys(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float = 20) -> int:
        rc = self.popen.wait(timeout)
        self._reader.join(5)
        return rc

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._reader.join(5)
        os.close(self.master)


@pytest.fixture
def ptys() -> Iterator[Callable[[list[str]], PtyProc]]:
    started: list[PtyProc] = []

    def start(cmd: list[str]) -> PtyProc:
        p = PtyProc(cmd)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.kill()


def test_lo_tui(procs: Callable[..., Proc], ptys: Callable[[list[str]], PtyProc], tmp_path: Path) -> None:
    """`live --tui` in a terminal: the session (handshake checked) and its messages appear as
    they cross lo; q quits, restores the terminal and prints the packet counts; the -w file
    holds the conversation."""
    _, port = server(procs)
    pcap = tmp_path / "tui.pcap"
    tui = ptys([*WSINSPECT, "live", "-i", "lo", "--tui", "-f", f"tcp port {port}", "-w", str(pcap)])
    tui.wait_shown(f"lo · tcp port {port} · → tui.pcap", "live")
    client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/tui"])
    assert client.finish() == 0, client.stderr
    n = len(expected())
    tui.wait_shown(f"1 session · {n} messages", f"127.0.0.1:{port}/tui", "101 ok", '"last"', '1000 "bye" by client')
    tui.keys(b"q")
    assert tui.finish() == 0, tui.screen[-2000:]
    after = bytes(tui.output).rpartition(ALT_SCREEN_OFF)[2].decode()
    (line,) = [line for line in after.splitlines() if "packets captured" in line]
    assert " 0 dropped by kernel, 0 dropped by wsinspect" in line and f"written to {pcap}" in line
    assert [sent(m) for m in records(read_json(pcap))] == expected()
    assert tcpdump_count(pcap) == int(line.split()[1])


def test_tui_count_then_sigterm(procs: Callable[..., Proc], ptys: Callable[[list[str]], PtyProc]) -> None:
    """-c stops the capture and the TUI stays to browse it; SIGTERM quits as q does."""
    _, port = server(procs)
    tui = ptys([*WSINSPECT, "live", "-i", "lo", "--tui", "-c", "4", "-f", f"tcp port {port}"])
    tui.wait_shown(f"lo · tcp port {port}", "live")
    client = procs([*PEER, "client", f"ws://127.0.0.1:{port}/"])
    assert client.finish() == 0, client.stderr
    tui.wait_shown("1 session · 4 messages · capture stopped")
    tui.popen.send_signal(signal.SIGTERM)
    assert tui.finish() == 0, tui.screen[-2000:]
    assert "packets captured" in bytes(tui.output).rpartition(ALT_SCREEN_OFF)[2].decode()


def test_tui_errors_leave_the_terminal_alone(ptys: Callable[[list[str]], PtyProc]) -> None:
    """A capture that cannot start fails before the TUI takes the terminal: one line, exit 1."""
    tui = ptys([*WSINSPECT, "live", "-i", "nosuch0", "--tui"])
    assert tui.finish() == 1
    assert b"\x1b" not in tui.output
    (line,) = bytes(tui.output).decode().splitlines()
    assert line.startswith("wsinspect: no such interface: nosuch0")
