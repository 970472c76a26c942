"""Where ``wsinspect read`` spends its time, on the generated capture.

    python -m tests.perf.hotspots [--size quick] [--mode quiet|json|text ...] [--top 25] [--no-py-spy]

First times the layers in this process without a profiler (best of three, cumulative:
reading records, then tcp_fields, then TCP reassembly, then the whole Inspector,
then the read command with its output), per packet and per message, and the floor of
the parallel design: what each of ``read``'s workers spends before any TCP or
WebSocket work (reading every record, skipping the other shards' packets,
tcp_fields and a flow lookup for its own). Then runs the
read command in this process under cProfile (deterministic, but it inflates
the cost of every Python call) and, when py-spy is installed, in a child under py-spy
(sampling, close to real proportions). Prints the top functions by own time with
their share, and the share of each module.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.perf import bench, gen

RATE = 1000  # py-spy samples per second
# One process (-j 1): the profilers see the decoding, not a parent waiting on workers.
MODES = {"quiet": ["-j", "1", "-q"], "json": ["-j", "1", "--json"], "text": ["-j", "1"]}


def _module(filename: str) -> str:
    """wsinspect/tcp.py for our files, a short name for the rest."""
    path = Path(filename)
    if "wsinspect" in path.parts:
        return "/".join(path.parts[path.parts.index("wsinspect") :])
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    return path.name


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _quietly(argv: list[str]) -> None:
    from wsinspect import cli

    saved = sys.stdout
    with open(os.devnull, "wb") as devnull:
        sys.stdout = io.TextIOWrapper(devnull)
        try:
            cli.main(argv)
        finally:
            sys.stdout.flush()
            sys.stdout = saved


def stages(path: Path, truth: gen.Truth) -> None:
    """Cumulative cost of each layer, without a profiler's distortion."""
    from wsinspect.capture import open_capture
    from wsinspect.packet import Segment, tcp_fields
    from wsinspect.session import Inspector
    from wsinspect.tcp import Reassembler

    def records() -> None:
        reader = open_capture(str(path))
        for _ in reader:
            pass
        reader.close()

    def segments() -> None:
        reader = open_capture(str(path))
        for raw in reader:
            tcp_fields(raw.linktype, raw.data)
        reader.close()

    def reassembly() -> None:
        reader = open_capture(str(path))
        tcp = Reassembler()
        for number, raw in enumerate(reader, 1):
            fields = tcp_fields(raw.linktype, raw.data)
            if fields is not None:
                key, seq, ack, flags, start, end = fields
                tcp.feed(Segment(raw.ts, key, seq, ack, flags, raw.data[start:end]), number)
        reader.close()

    def inspector() -> None:
        reader = open_capture(str(path))
        feed = Inspector().feed
        for raw in reader:
            feed(raw)
        reader.close()

    steps: list[tuple[str, Callable[[], object]]] = [
        ("read the records (capture.py)", records),
        ("+ tcp_fields (packet.py)", segments),
        ("+ Reassembler.feed (tcp.py; the fast lane skips it)", reassembly),
        ("Inspector.feed: everything, fast lane included", inspector),
    ]
    steps += [(f"`read {' '.join(o)}` in-process", partial(_quietly, ["read", *o, str(path)])) for o in MODES.values()]
    print(f"\n## Layers, cumulative, best of 3 ({truth.packets} packets, {truth.messages} messages)\n")
    print("| stage | s | us/packet | added us/packet | added us/message |")
    print("| --- | ---: | ---: | ---: | ---: |")
    times = [_best(fn) for _, fn in steps]
    for i, ((name, _), took) in enumerate(zip(steps, times, strict=True)):
        # Each layer adds to the one before; the read commands add output to the Inspector.
        added = took - (times[i - 1] if 0 < i <= 3 else times[3] if i > 3 else 0.0)
        print(
            f"| {name} | {took:.3f} | {1e6 * took / truth.packets:.2f} | {1e6 * added / truth.packets:.2f} | "
            f"{1e6 * added / truth.messages:.2f} |"
        )


def _floor_worker(path: str, shard: int, shards: int) -> float:
    from wsinspect.capture import open_capture
    from wsinspect.packet import tcp_fields

    start = time.perf_counter()
    reader = open_capture(path)
    if shards > 1:
        reader.only_shard(shard, shards)
    flows: dict[bytes, int] = {}
    for raw in reader:
        fields = tcp_fields(raw.linktype, raw.data)
        if fields is not None:
            flows[fields[0]] = fields[1]
    reader.close()
    return time.perf_counter() - start


def floor(path: Path) -> None:
    """The parallel design's floor: every worker reads every record (sharding is by
    connection), and nothing below can be quicker than the slowest worker's loop."""
    jobs = min(os.cpu_count() or 1, 8)
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        pool.starmap(_floor_worker, [(str(path), 0, 1)])  # start-up and page cache
        start = time.perf_counter()
        took = pool.starmap(_floor_worker, [(str(path), shard, jobs) for shard in range(jobs)])
        wall = time.perf_counter() - start
    print(
        f"\nFloor of `read` on {jobs} workers (records, shard skip, tcp_fields, a flow lookup; no TCP or "
        f"WebSocket work): {wall:.2f} s wall, workers {', '.join(f'{t:.2f}' for t in took)} s"
    )


def cprofile(path: Path, mode: str, top: int) -> None:
    prof = cProfile.Profile()
    prof.runcall(_quietly, ["read", *MODES[mode], str(path)])
    stats = pstats.Stats(prof)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    print(f"\n## cProfile, read {' '.join(MODES[mode])}: {total:.2f} s of own time (profiler overhead included)\n")
    print("| own % | own s | cum s | calls | function |")
    print("| ---: | ---: | ---: | ---: | --- |")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (filename, line, name), (_, calls, tt, ct, _) in rows:
        where = f"{_module(filename)}:{line}" if line else "C"
        print(f"| {100 * tt / total:.1f} | {tt:.2f} | {ct:.2f} | {calls} | `{name}` ({where}) |")
    modules: Counter[str] = Counter()
    for (filename, _, _), (_, _, tt, _, _) in raw.items():
        modules[_module(filename)] += tt
    print("\nown time by module: " + ", ".join(f"{m} {100 * t / total:.1f}%" for m, t in modules.most_common(12)))


def pyspy(path: Path, mode: str, top: int) -> None:
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        argv = ["py-spy", "record", "--function", "-r", str(RATE), "-f", "raw", "-o", out.name, "--"]
        argv += [*bench.WSINSPECT, "read", *MODES[mode], str(path)]
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=bench.REPO, check=True)
        stacks = Path(out.name).read_text().splitlines()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = 0
    for line in stacks:
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        own[leaf] += n
        modules[_module(leaf.rpartition("(")[2].rstrip(")").split(":")[0])] += n
        for f in set(frames):
            inclusive[f] += n
    print(f"\n## py-spy, read {' '.join(MODES[mode])}: {total} samples at {RATE} Hz\n")
    print("| own % | incl % | function |")
    print("| ---: | ---: | --- |")
    for f, n in own.most_common(top):
        print(f"| {100 * n / total:.1f} | {100 * inclusive[f] / total:.1f} | `{f}` |")
    print("\nown time by module: " + ", ".join(f"{m} {100 * n / total:.1f}%" for m, n in modules.most_common(12)))
    wanted = ("feed", "_route", "_frames", "_message", "Printer.events", "dumps", "message_record", "unmask")
    print(
        "inclusive: "
        + ", ".join(
            f"{f.split(' (')[0]} {100 * n / total:.1f}%"
            for f, n in inclusive.most_common()
            if any(w in f for w in wanted)
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.perf.hotspots", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="quick")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", choices=MODES, action="append", help="quiet, json, text (default: quiet and json)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-py-spy", action="store_true")
    args = p.parse_args(argv)
    path, truth, _ = bench.capture(gen.parse_size(args.size), args.seed)
    print(f"{path}: {truth.size / 1e6:.1f} MB, {truth.packets} packets, {truth.frames} frames")
    stages(path, truth)
    floor(path)
    for mode in args.mode or ["quiet", "json"]:
        cprofile(path, mode, args.top)
        if not args.no_py_spy and shutil.which("py-spy"):
            pyspy(path, mode, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
