"""Wall time and peak RSS of one command, measured from a small intermediate process.

A child's ru_maxrss starts at its parent's RSS: fork copies the parent's page tables,
and Linux keeps the high-water mark of that copy across exec. Measured straight from
a benchmark that has just generated 500 MB (or from pytest, with every test module
imported), a 40 MiB decoder would report the parent's 100+ MiB. So ``run`` starts
this file as a script, in a fresh interpreter without site (a few MiB), and that
process starts the command and reports its wait4 rusage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO


def run(argv: list[str], stdout: int | BinaryIO = subprocess.DEVNULL, cwd: Path | None = None) -> tuple[float, int]:
    """Run ``argv`` to completion: (wall seconds, its peak RSS in KiB).

    Raises RuntimeError with the command's stderr when it fails."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r", suffix=".txt") as result:
        wrapper = [sys.executable, "-S", __file__, result.name, *argv]
        subprocess.run(wrapper, stdout=stdout, stderr=err, cwd=cwd, check=False)
        fields = result.read().split()
        if len(fields) != 3 or fields[2] != "0":
            err.seek(0)
            detail = err.read().decode(errors="replace")
            raise RuntimeError(f"failed ({' '.join(fields) or 'no result'}): {' '.join(argv)}\n{detail}")
    return float(fields[0]), int(fields[1])


def _measure(result: str, argv: list[str]) -> None:
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(result, "w") as f:
        f.write(f"{wall} {usage.ru_maxrss} {proc.returncode}")


if __name__ == "__main__":
    _measure(sys.argv[1], sys.argv[2:])
