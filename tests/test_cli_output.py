"""What `wsinspect read` writes, and where: failing outputs, pipes fed as packets
happen, terminals, captures read only in part (-c), frames in text."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import CAPTURES, ROOT

MANY = str(CAPTURES / "websockets_many.pcap")
WSINSPECT = [sys.executable, "-m", "wsinspect"]
ENV = dict(os.environ, PYTHONWARNINGS="error")


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
