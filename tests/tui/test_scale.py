"""A capture with 200,000 messages: the TUI is usable at once and stays small.

The same check on a million messages (1,000 sessions of 1,000), by hand:

    python -m tests.tui.synthetic -o big.pcap --sessions 1000 --messages 1000
    wsinspect tui big.pcap
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual import events

from tests.tui import synthetic
from tests.tui.conftest import run, shown, wait_for
from wsinspect.tui.app import WsinspectApp
from wsinspect.tui.store import FileSource

SESSIONS = 200
MESSAGES = 1000  # per session


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("scale") / "big.pcap"
    count = synthetic.generate(str(path), SESSIONS, MESSAGES)
    return path, count


def resident() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_big_capture_is_usable_at_once(big: tuple[Path, int]) -> None:
    path, count = big

    async def go() -> None:
        before = resident()
        start = time.monotonic()
        source = FileSource(str(path))
        app = WsinspectApp(source, title=source.name)
        async with app.run_test(size=(80, 24)) as pilot:
            # First rows on screen while the decoder has barely started.
            await wait_for(pilot, lambda: app.messages.line_count > 0, timeout=10)
            first = time.monotonic() - start
            assert first < 3.0, f"first messages shown after {first:.1f} s"
            assert not app.done
            # Keys are handled while decoding goes on.
            app.messages.focus()
            for n in range(3):
                cursor = app.messages.cursor
                sent = time.monotonic()
                app.post_message(events.Key("down", None))
                await wait_for(pilot, lambda c=cursor: app.messages.cursor != c, timeout=5)  # type: ignore[misc]
                await wait_for(pilot, lambda: shown(app), timeout=5)
                latency = time.monotonic() - sent
                assert latency < 1.0, f"key {n} took {latency:.2f} s while decoding"
                await pilot.pause(0.2)
            await wait_for(pilot, lambda: app.done, timeout=120)
            assert len(app.store) == count
            assert len(app.sessions) == SESSIONS
            # Every message, in one list without a widget per row.
            await pilot.press("a", "end")
            await wait_for(pilot, lambda: shown(app))
            assert app.messages.cursor == count - 1
            assert len(app.screen.query("*")) < 100
            started = time.monotonic()
            for _ in range(10):
                app.messages.action_page(-1)
                app.messages.clear_cache()
                for y in range(24):
                    app.messages.render_line(y)
            assert (time.monotonic() - started) / 10 < 0.1, "a page of messages takes over 0.1 s to draw"
            # A compact index in memory, payloads in the spill file.
            per_message = app.store.cols.nbytes() / count
            assert per_message < 64
            grown = resident() - before
            assert grown < 250 << 20, f"memory grew by {grown >> 20} MB for {count} messages"

    run(go())
