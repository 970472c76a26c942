"""Measure the TUI on a capture: time to the first rows, key latency while decoding,
decode time, the time to draw a page, memory. (The figures live here, not in the
tests: a loaded machine would fail a test for nothing.)

    python -m tests.tui.synthetic -o big.pcap --sessions 1000 --messages 1000
    python -m tests.tui.measure big.pcap

Runs the app headless (Textual's run_test) at 80x24 and prints one line per figure.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time

from textual import events

from wsinspect.tui.app import WsinspectApp
from wsinspect.tui.store import FileSource


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def measure(path: str) -> None:
    before = resident_mb()
    start = time.monotonic()
    source = FileSource(path)
    app = WsinspectApp(source, title=source.name)
    async with app.run_test(size=(80, 24)):
        while app.messages.line_count == 0:
            await asyncio.sleep(0.01)
        print(f"first rows shown after {time.monotonic() - start:.2f} s ({len(app.store):,} messages decoded)")
        app.messages.focus()
        for n in range(5):
            await asyncio.sleep(0.5)
            if app.done:
                break
            cursor = app.messages.cursor
            sent = time.monotonic()
            app.post_message(events.Key("down", None))
            while app.messages.cursor == cursor:
                await asyncio.sleep(0.002)
            moved = time.monotonic() - sent
            selected = app.messages.selected
            while app.detail is None or selected is None or app.detail.ts != app.store.cols.ts[selected]:
                await asyncio.sleep(0.002)
            print(
                f"key {n + 1} while decoding: cursor moved after {moved * 1000:.0f} ms, "
                f"detail shown after {(time.monotonic() - sent) * 1000:.0f} ms"
            )
        while not app.done:
            await asyncio.sleep(0.05)
        count = len(app.store)
        print(f"decoded {count:,} messages in {len(app.sessions):,} sessions after {time.monotonic() - start:.1f} s")
        await app.run_action("toggle_all")
        app.messages.action_last()
        started = time.monotonic()
        for _ in range(10):
            app.messages.action_page(-1)
            app.messages.clear_cache()
            for y in range(24):
                app.messages.render_line(y)
        print(f"a page of messages drawn in {(time.monotonic() - started) * 100:.1f} ms (all sessions, uncached)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        index = app.store.cols.nbytes()
        print(
            f"resident memory {resident_mb():.0f} MB (was {before:.0f} MB; peak {peak:.0f} MB); "
            f"index {index / 1e6:.0f} MB ({index / max(1, count):.0f} B a message); "
            f"spill file {app.spill.size / 1e6:.0f} MB on disk"
        )


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(measure(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
