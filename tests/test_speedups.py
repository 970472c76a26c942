"""The compiled hot path (wsinspect/_speedups.c) against its pure-Python reference:
identical results on random and real input, identical `read --json` output, and the
same checks under AddressSanitizer and UndefinedBehaviorSanitizer."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CAPTURES, ROOT, run_cli
from wsinspect import speedups
from wsinspect.capture import open_capture
from wsinspect.frames import _unmask_py
from wsinspect.packet import DECODED_LINKTYPES, _tcp_fields_py

compiled = speedups.compiled
needs_compiled = pytest.mark.skipif(compiled is None, reason="the compiled hot path is not built (or is disabled)")

CAPTURE_FILES = sorted(p for p in CAPTURES.rglob("*.pcap*") if p.is_file())


def capture_packets() -> list[tuple[int, bytes]]:
    """(link type, bytes) of every packet of every bundled capture."""
    packets = []
    for path in CAPTURE_FILES:
        reader = open_capture(str(path))
        try:
            packets.extend((raw.linktype, bytes(raw.data)) for raw in reader)
        finally:
            reader.close()
    return packets


def exact(data: bytes) -> memoryview:
    """A buffer that ends where its allocation ends, so that a sanitizer sees a read
    one past the end: bytes and bytearray keep a spare NUL after their data and
    array.array over-allocates; a ctypes array of more than 16 bytes is one
    allocation of exactly its size."""
    return memoryview((ctypes.c_ubyte * len(data)).from_buffer_copy(data)).cast("B")


def check_unmask(module: ModuleType, data: bytes, key: bytes) -> None:
    for payload in (data, bytearray(data), memoryview(data), exact(data)):
        assert module.unmask(payload, key) == _unmask_py(payload, key)


def check_tcp_fields(module: ModuleType, linktype: int, data: bytes) -> None:
    view = exact(data)
    assert module.tcp_fields(linktype, view) == _tcp_fields_py(linktype, view)


def check_all(module: ModuleType) -> int:
    """The deterministic differential checks, for this process's module and for a
    sanitizer build alike: every length of unmask, every packet of every capture,
    and each packet cut at every length. Returns how many packets were checked."""
    key = bytes([0x37, 0xFA, 0x21, 0x3D])
    for n in range(0, 601):
        check_unmask(module, bytes((i * 7 + n) & 0xFF for i in range(n)), key)
    check_unmask(module, os.urandom(1 << 20) + b"xyz", key)
    packets = capture_packets()
    for linktype, data in packets:
        check_tcp_fields(module, linktype, data)
    # 200 packets cut at every length within the headers (each bounds check of the
    # parse) and at lengths through the payload (a snapshot length's cut flags).
    for linktype, data in packets[:: max(1, len(packets) // 200)]:
        for cut in [*range(min(len(data), 100)), *range(100, len(data) + 1, 97), len(data)]:
            check_tcp_fields(module, linktype, data[:cut])
    # A seeded fuzz corpus (the hypothesis test's mutations, reproducible without it):
    # header bytes changed, packets cut, read as another link type.
    rng = random.Random(19)
    linktypes = sorted(DECODED_LINKTYPES)
    for _ in range(5000):
        linktype, data = rng.choice(packets)
        buf = bytearray(data[: rng.randrange(len(data) + 1)])
        for _ in range(rng.randrange(7)):
            if buf:
                buf[rng.randrange(min(len(buf), 80))] = rng.randrange(256)
        check_tcp_fields(module, rng.choice([linktype, *linktypes]), bytes(buf))
    return len(packets)


@needs_compiled
def test_unmask_every_length_and_captures() -> None:
    assert check_all(compiled) > 1000


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), key=st.binary(min_size=4, max_size=4))
def test_unmask_random(data: bytes, key: bytes) -> None:
    check_unmask(compiled, data, key)


@needs_compiled
@settings(max_examples=20, deadline=None)
@given(size=st.integers(min_value=600, max_value=300_000), key=st.binary(min_size=4, max_size=4))
def test_unmask_large(size: int, key: bytes) -> None:
    check_unmask(compiled, os.urandom(size), key)


@needs_compiled
def test_unmask_rejects_a_bad_key() -> None:
    with pytest.raises(ValueError):
        compiled.unmask(b"abc", b"12345")


_PACKETS: list[tuple[int, bytes]] = []


def some_packets() -> list[tuple[int, bytes]]:
    if not _PACKETS:
        _PACKETS.extend(capture_packets())
    return _PACKETS


@needs_compiled
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0),
    edits=st.lists(st.tuples(st.integers(min_value=0, max_value=80), st.integers(0, 255)), max_size=6),
    cut=st.integers(min_value=0, max_value=2000),
    linktype=st.one_of(st.none(), st.sampled_from(sorted(DECODED_LINKTYPES)), st.integers(0, 300)),
)
def test_tcp_fields_mutated(index: int, edits: list[tuple[int, int]], cut: int, linktype: int | None) -> None:
    """Capture packets with bytes of their headers changed, cut short, or read as
    another link type: both paths agree, and neither raises."""
    packets = some_packets()
    own, data = packets[index % len(packets)]
    buf = bytearray(data[:cut])
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    check_tcp_fields(compiled, own if linktype is None else linktype, bytes(buf))


@needs_compiled
@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_read_json_identical(path: Path) -> None:
    """`read --json` gives the same bytes on both paths (and the compiled path is the
    one in use: --version says so)."""
    assert b"(compiled hot path)" in run_cli("--version").stdout
    fast = run_cli("read", "--json", "-j", "1", str(path))
    pure = run_cli("read", "--json", "-j", "1", str(path), env={"WSINSPECT_NO_EXTENSIONS": "1"})
    assert fast.returncode == pure.returncode
    assert fast.stdout == pure.stdout
    assert fast.stderr == pure.stderr


def test_no_extensions_forces_the_pure_path() -> None:
    out = run_cli("--version", env={"WSINSPECT_NO_EXTENSIONS": "1"}).stdout
    assert out.endswith(b"(pure Python)\n")


def _sanitizer_runtime(name: str) -> str | None:
    found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) else None


@needs_compiled
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_under_sanitizers(tmp_path: Path) -> None:
    """Build _speedups.c with -fsanitize=address,undefined and run check_all with it
    in a fresh interpreter: any read past a buffer or undefined behaviour aborts it."""
    asan, ubsan = _sanitizer_runtime("libasan.so"), _sanitizer_runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc has no sanitizer runtimes")
    so = tmp_path / ("_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
    build = subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O1",
            "-g",
            "-fno-omit-frame-pointer",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-I",
            sysconfig.get_paths()["include"],
            str(ROOT / "wsinspect" / "_speedups.c"),
            "-o",
            str(so),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('wsinspect._speedups', {str(so)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "sys.modules['wsinspect._speedups'] = module\n"
        "from wsinspect import speedups\n"
        "assert speedups.compiled is module\n"
        "from tests.test_speedups import check_all\n"
        "print('checked', check_all(module))\n"
    )
    env = dict(
        os.environ,
        LD_PRELOAD=f"{asan} {ubsan}",
        # CPython itself keeps memory until exit: leaks are not what this looks for.
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        PYTHONMALLOC="malloc",  # every object through ASan's allocator, not pymalloc's arenas
    )
    env.pop("WSINSPECT_NO_EXTENSIONS", None)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=280)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("checked ")
