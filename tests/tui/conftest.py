"""Helpers for the TUI tests: run the app headless on a capture, wait, compare snapshots.

Snapshots are SVG screenshots (App.export_screenshot) in tests/tui/snapshots/. After a
deliberate change to the screens, write them again with

    WSINSPECT_UPDATE_SNAPSHOTS=1 python -m pytest tests/tui -k snapshot

and look at the new files before committing them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui import synthetic
from wsinspect.tui.app import WsinspectApp
from wsinspect.tui.store import FileSource

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = bool(os.environ.get("WSINSPECT_UPDATE_SNAPSHOTS"))


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


@asynccontextmanager
async def tui(
    path: Path | str, size: tuple[int, int] = (80, 24), theme: str | None = None, **kwargs: Any
) -> AsyncIterator[tuple[WsinspectApp, Pilot[Any]]]:
    """The app on ``path``, decoded, with the first message's detail shown."""
    source = FileSource(str(path))
    app = WsinspectApp(source, title=source.name, **kwargs)
    if theme is not None:
        app.theme = theme
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        yield app, pilot


async def settle(app: WsinspectApp, pilot: Pilot[Any]) -> None:
    """Wait until decoding is done and the detail shows the message under the cursor."""
    await wait_for(pilot, lambda: app.done)
    await wait_for(pilot, lambda: shown(app))
    await pilot.pause()


def shown(app: WsinspectApp) -> bool:
    selected = app.messages.selected
    if selected is None:
        return True
    m = app.detail
    cols = app.store.cols
    return m is not None and m.ts == cols.ts[selected] and m.session == cols.session[selected] and not app.busy


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def assert_snapshot(app: WsinspectApp, name: str, tmp_path: Path) -> None:
    svg = app.export_screenshot(title=name)
    path = SNAPSHOTS / f"{name}.svg"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}: run with WSINSPECT_UPDATE_SNAPSHOTS=1 and review it"
    if path.read_text(encoding="utf-8") != svg:
        actual = tmp_path / f"{name}.svg"
        actual.write_text(svg, encoding="utf-8")
        pytest.fail(f"screen {name} differs from {path}; now: {actual} (open both in a browser)")


@pytest.fixture(scope="session")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small deterministic capture with one of everything (the snapshots use it)."""
    path = tmp_path_factory.mktemp("tui") / "showcase.pcap"
    synthetic.write_showcase(str(path))
    return path
