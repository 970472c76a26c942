"""A capture with 200,000 messages: the TUI is usable at once and stays small.

What is asserted is what does not depend on the machine's speed: rows are shown and
keys handled, in order, while decoding goes on (the source holds its last packets back
until the keys are done), the list has no widget per row, the index stays compact.
Time limits here only catch a hang; the figures (time to the first rows, key latency,
drawing a page) are measured by tests/tui/measure.py. The same check on a million
messages (1,000 sessions of 1,000), by hand:

    python -m tests.tui.synthetic -o big.pcap --sessions 1000 --messages 1000
    python -m tests.tui.measure big.pcap
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.tui import synthetic
from tests.tui.conftest import run, shown, wait_for
from tests.tui.test_app import gated_source
from wsinspect.tui.app import WsinspectApp

SESSIONS = 200
MESSAGES = 1000  # per session
# Generous bounds, against a hang only (the usual figures are 0.2 s and a few ms).
HANG = 60.0


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    path = tmp_path_factory.mktemp("scale") / "big.pcap"
    count = synthetic.generate(str(path), SESSIONS, MESSAGES)
    with open(path, "rb") as f:
        # Records: 24-byte file header, then 16-byte headers; count the packets.
        f.seek(24)
        packets = 0
        while header := f.read(16):
            packets += 1
            f.seek(int.from_bytes(header[8:12], "little"), os.SEEK_CUR)
    return path, count, packets


def resident() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_big_capture_is_usable_at_once(big: tuple[Path, int, int]) -> None:
    path, count, packets = big

    async def go() -> None:
        before = resident()
        gate = threading.Event()
        # The last tenth of the packets waits for the gate: decoding is still going on
        # while the keys are pressed, on any machine.
        app = WsinspectApp(gated_source(path, packets * 9 // 10, gate), title=path.name)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.messages.line_count > 0, timeout=HANG)
            assert not app.done  # rows before the end of decoding
            await pilot.press("tab")
            assert app.focused is app.messages
            start = app.messages.cursor
            for n in range(1, 4):
                await pilot.press("down")
                # Each key is handled, in order, and its message shown, while decoding goes on.
                await wait_for(pilot, lambda n=n: app.messages.cursor == start + n and shown(app), timeout=HANG)  # type: ignore[misc]
                assert app.detail is not None and app.detail.ts == app.store.cols.ts[app.view[start + n]]
            assert not app.done
            gate.set()
            await wait_for(pilot, lambda: app.done, timeout=600)
            assert len(app.store) == count
            assert len(app.sessions) == SESSIONS
            # Every message, in one list without a widget per row.
            await pilot.press("a", "end")
            await wait_for(pilot, lambda: shown(app), timeout=HANG)
            assert app.messages.cursor == count - 1
            assert len(app.screen.query("*")) < 100
            app.messages.action_page(-1)
            app.messages.clear_cache()
            top = app.messages.scroll_offset.y
            for y in range(1, 24):
                row = app.messages.render_line(y)
                if top + y - 1 < count:
                    assert row.text.strip(), y  # a row drawn for each line on screen
            # A compact index in memory, payloads in the spill file.
            per_message = app.store.cols.nbytes() / count
            assert per_message < 64
            grown = resident() - before
            assert grown < 250 << 20, f"memory grew by {grown >> 20} MB for {count} messages"

    run(go())
