"""Benchmark wsinspect against tshark on a generated capture, side by side.

    python -m tests.perf.bench [--size quick|full|SIZE] [--runs N] [--ek-runs N] [--no-double]

Generates the capture (or reuses the copy cached in the temporary directory), runs
every command once as a warm-up, then ``--runs`` times in alternating order, and
prints a Markdown table for the README: median wall time, packets/s, MB/s (10**6
bytes), the peak RSS of each process (wait4's rusage, taken by a small
intermediate process: see measure.py), and how many times faster
than tshark each command is. The warm-up runs double as the correctness check: the
JSON Lines output of wsinspect and tshark's field output are counted against the
generator's ground truth; a fast wrong answer is no answer. Then it measures start-up
on a tiny capture and the peak RSS of ``read -q`` on a capture twice the size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tests.perf import gen, measure, table

REPO = Path(__file__).resolve().parents[2]
WSINSPECT = [sys.executable, "-m", "wsinspect"]
TSHARK_OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
STARTUP_RUNS = 15


@dataclass
class Command:
    key: str
    label: str  # as the README shows it
    argv: list[str]
    runs: int
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # KiB

    def result(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "argv": self.argv,
            "walls": self.walls,
            "rss_kib": self.rss,
            "median": statistics.median(self.walls) if self.walls else None,
            "peak_rss_kib": max(self.rss) if self.rss else None,
        }


def run(argv: list[str], stdout: int | BinaryIO = subprocess.DEVNULL) -> tuple[float, int]:
    """Run one process to completion: (wall seconds, its own peak RSS in KiB)."""
    try:
        return measure.run(argv, stdout, REPO)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def capture(size: int, seed: int, sessions: int | None = None) -> tuple[Path, gen.Truth, float]:
    """The generated capture for this size, cached between runs: (path, truth, seconds to generate)."""
    cache = Path(tempfile.gettempdir()) / "wsinspect-perf"
    cache.mkdir(exist_ok=True)
    stem = f"ws-{size}-s{seed}" + (f"-n{sessions}" if sessions else "") + f"-v{gen.VERSION}"
    path, truth_path = cache / f"{stem}.pcap", cache / f"{stem}.truth.json"
    if truth_path.exists() and path.exists():
        truth = gen.Truth.from_json(truth_path.read_text())
        if truth.size == path.stat().st_size:
            return path, truth, 0.0
    start = time.perf_counter()
    truth = gen.generate(str(path), size, seed, sessions)
    elapsed = time.perf_counter() - start
    truth_path.write_text(truth.to_json())
    return path, truth, elapsed


# -- correctness ----------------------------------------------------------


def check_json(path: Path, truth: gen.Truth, options: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Run ``wsinspect read --json [options]`` and count its records against the truth."""
    opcodes: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    length = wire = incomplete = sessions = session_messages = 0
    argv = [*WSINSPECT, "read", "--json", *options, str(path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=REPO) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            r = orjson.loads(line)
            if r["type"] == "message":
                opcodes[r["opcode"]] += 1
                length += r["length"]
                wire += r["wire_length"]
                incomplete += not r["complete"]
                issues.update(r["issues"])
            elif r["type"] == "session":
                sessions += 1
                session_messages += r["messages"]
                issues.update(f"session:{i}" for i in r["issues"])
    if proc.returncode:
        return {}, [f"wsinspect read --json exited with {proc.returncode}"]
    found = {
        "messages": sum(opcodes.values()),
        "by_opcode": dict(opcodes),
        "payload_bytes": length,
        "wire_payload_bytes": wire,
        "sessions": sessions,
        "session_messages": session_messages,
        "incomplete": incomplete,
        "issues": dict(issues),
    }
    expected = {
        "messages": truth.messages,
        "by_opcode": {k: v for k, v in truth.by_opcode.items() if v},
        "payload_bytes": truth.payload_bytes,
        # wire_length counts a message's payload bytes as sent, over all its frames.
        "wire_payload_bytes": truth.wire_payload_bytes,
        "sessions": truth.sessions,
        "session_messages": truth.messages,
        "incomplete": 0,
        "issues": {},
    }
    problems = [f"wsinspect {k}: {found[k]} found, {v} expected" for k, v in expected.items() if found[k] != v]
    return found, problems


# The checked warm-up adds the extended lengths: websocket.payload_length is the
# 7-bit field, 126 or 127 when the length follows in 16 or 64 bits (RFC 6455 5.2).
CHECK_FIELDS = ["-e", "websocket.payload_length_ext_16", "-e", "websocket.payload_length_ext_64"]


def _ints(field: bytes) -> list[int]:
    return [int(v) for v in field.split(b",")] if field else []


def check_fields(output: bytes, truth: gen.Truth) -> tuple[dict[str, Any], list[str]]:
    """Count the frames in tshark's -T fields output: one line per packet, the values
    of several frames in one packet comma-separated; extended lengths listed apart."""
    opcodes: Counter[str] = Counter()
    lengths = packets = 0
    for line in output.splitlines():
        parts = line.split(b"\t")
        if len(parts) < 5 or not parts[1]:
            continue
        packets += 1
        for op in _ints(parts[1]):
            opcodes[TSHARK_OPCODES.get(op, f"0x{op:x}")] += 1
        ext = {126: iter(_ints(parts[3])), 127: iter(_ints(parts[4]))}
        lengths += sum(next(ext[n]) if n in ext else n for n in _ints(parts[2]))
    found = {"frames": sum(opcodes.values()), "frame_opcodes": dict(opcodes), "wire_payload_bytes": lengths}
    expected = {
        "frames": truth.frames,
        "frame_opcodes": {k: v for k, v in truth.frame_opcodes.items() if v},
        "wire_payload_bytes": truth.wire_payload_bytes,
    }
    problems = [f"tshark {k}: {found[k]} found, {v} expected" for k, v in expected.items() if found[k] != v]
    found["packets_with_frames"] = packets
    return found, problems


def tshark_decompression_failures(path: Path) -> int | None:
    """How many 'Decompression failed' warnings tshark's expert info gives."""
    out = subprocess.run(
        ["tshark", "-r", str(path), "-q", "-z", "expert,warn"], capture_output=True, check=False
    ).stdout.decode(errors="replace")
    for line in out.splitlines():
        if "Decompression failed" in line:
            return int(line.split()[0])
    return 0


# -- the benchmark --------------------------------------------------------


def commands(path: Path, runs: int, ek_runs: int) -> list[Command]:
    f = str(path)
    fields = ["-T", "fields", "-e", "frame.number", "-e", "websocket.opcode", "-e", "websocket.payload_length"]
    return [
        Command("ws_quiet", "wsinspect read -q FILE", [*WSINSPECT, "read", "-q", f], runs),
        Command("ws_json", "wsinspect read --json FILE > /dev/null", [*WSINSPECT, "read", "--json", f], runs),
        Command("ws_text", "wsinspect read FILE > /dev/null", [*WSINSPECT, "read", f], runs),
        Command(
            "tshark_fields",
            "tshark -r FILE -Y websocket -T fields -e frame.number -e websocket.opcode -e websocket.payload_length",
            ["tshark", "-r", f, "-Y", "websocket", *fields],
            runs,
        ),
        Command(
            "tshark_ek",
            "tshark -r FILE -Y websocket -T ek -J websocket > /dev/null",
            ["tshark", "-r", f, "-Y", "websocket", "-T", "ek", "-J", "websocket"],
            ek_runs,
        ),
    ]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def warm_up(cmds: list[Command], path: Path, truth: gen.Truth) -> tuple[dict[str, Any], list[str]]:
    """One untimed run of each command; the JSON and tshark outputs are checked."""
    checks: dict[str, Any] = {}
    problems: list[str] = []
    for cmd in cmds:
        if cmd.key == "ws_json":
            log("warm-up + check: wsinspect read --json")
            checks["wsinspect"], found = check_json(path, truth)
        elif cmd.key == "tshark_fields":
            log("warm-up + check: tshark fields")
            with tempfile.TemporaryFile() as out:
                run(cmd.argv + CHECK_FIELDS, out)
                out.seek(0)
                checks["tshark"], found = check_fields(out.read(), truth)
        elif cmd.key == "tshark_ek":
            continue  # slow, and the file is in the page cache already
        else:
            log(f"warm-up: {cmd.label}")
            run(cmd.argv)
            found = []
        problems += found
    if truth.size <= 100 * 10**6 and truth.compressed:
        checks["tshark_decompression_failed"] = tshark_decompression_failures(path)
    return checks, problems


def timed_runs(cmds: list[Command]) -> None:
    """Alternate the order (forward, backward) so that no command always runs after
    the same neighbour."""
    for r in range(max(c.runs for c in cmds)):
        order = cmds if r % 2 == 0 else cmds[::-1]
        for cmd in order:
            if r < cmd.runs:
                wall, rss = run(cmd.argv)
                cmd.walls.append(wall)
                cmd.rss.append(rss)
                log(f"run {r + 1}: {cmd.label}: {wall:.2f} s, {rss / 1024:.0f} MiB")


def startup(seed: int) -> dict[str, Any]:
    """Wall time of ``wsinspect read`` on a one-session capture, against a bare interpreter."""
    path, truth, _ = capture(20_000, seed, sessions=1)
    results: dict[str, Any] = {"file_size": truth.size, "packets": truth.packets, "runs": STARTUP_RUNS}
    for key, argv in (
        ("python", [sys.executable, "-c", "pass"]),
        ("wsinspect", [*WSINSPECT, "read", str(path)]),
        ("tshark", ["tshark", "-r", str(path), "-Y", "websocket"]),
    ):
        run(argv)
        walls = [run(argv)[0] for _ in range(STARTUP_RUNS)]
        results[key] = statistics.median(walls)
    return results


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    tshark = subprocess.run(["tshark", "--version"], capture_output=True, check=False).stdout.decode().splitlines()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tshark": tshark[0].split(" (")[0] + " " + tshark[0].split()[2] if tshark else "?",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.perf.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="quick", help="quick (~20 MB, default), full (~500 MB) or a size: 100M")
    p.add_argument("--runs", type=int, help="timed runs per command (default: 5 quick, 3 full)")
    p.add_argument("--ek-runs", type=int, help="timed runs of the slow tshark -T ek pass (default: 1 when full)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-double", action="store_true", help="skip read -q on a capture twice the size")
    p.add_argument("--results", help="also write the results as JSON here (python -m tests.perf.table renders it)")
    args = p.parse_args(argv)
    size = gen.parse_size(args.size)
    big = size > 100 * 10**6
    runs = args.runs or (3 if big else 5)
    ek_runs = args.ek_runs if args.ek_runs is not None else (1 if big else runs)
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        log(f"warning: load average {load_before:.1f} before starting: other work will disturb the timings")

    log(f"generating or reusing the {args.size} capture")
    path, truth, generated_in = capture(size, args.seed)
    log(f"{path}: {truth.size / 1e6:.1f} MB, {truth.packets} packets (generated in {generated_in:.1f} s)")
    cmds = commands(path, runs, ek_runs)
    checks, problems = warm_up(cmds, path, truth)
    timed_runs(cmds)

    double = None
    if not args.no_double:
        log("read -q on a capture twice the size")
        path2, truth2, _ = capture(2 * size, args.seed)
        run([*cmds[0].argv[:-1], str(path2)])
        wall2, rss2 = run([*cmds[0].argv[:-1], str(path2)])
        double = {"size": truth2.size, "packets": truth2.packets, "wall": wall2, "rss_kib": rss2}
    log("start-up on a tiny capture")
    results = {
        "size_arg": args.size,
        "seed": args.seed,
        "machine": machine(),
        "truth": json.loads(truth.to_json()),
        "generated_in": generated_in,
        "commands": {c.key: c.result() for c in cmds},
        "checks": checks,
        "problems": problems,
        "double": double,
        "startup": startup(args.seed),
    }
    results["elapsed"] = time.perf_counter() - began
    # Other processes on the machine show in the 1-minute load average (the benchmark
    # itself keeps about one core busy).
    results["load"] = [load_before, os.getloadavg()[0]]
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=1))
    print(table.render(results))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
