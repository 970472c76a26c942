"""Snapshots of the main screens at 80x24, so that layout changes show up in review.

They use a capture generated here (tests/tui/synthetic.py), byte for byte the same on
every run, so a snapshot changes only when the screens do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, Select

from tests.tui.conftest import assert_snapshot, run, shown, tui, wait_for

# name: (theme, keys pressed after loading)
SCREENS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "main": (None, ()),
    "payload_json": (None, ("enter", "down", "down")),
    "hex": (None, ("enter", "down", "down", "down", "enter", "2")),
    "frames": (None, ("enter", "end", "up", "up", "enter", "3")),
    "handshake": (None, ("enter", "enter", "4")),
    "issues_light": ("textual-light", ("down", "enter", "enter", "5")),
    "stats": (None, ("S",)),
}


@pytest.mark.parametrize("name", SCREENS)
def test_snapshot(name: str, showcase: Path, tmp_path: Path) -> None:
    theme, keys = SCREENS[name]

    async def go() -> None:
        async with tui(showcase, theme=theme) as (app, pilot):
            for key in keys:
                await pilot.press(key)
                await wait_for(pilot, lambda: shown(app))
            # The tab underline slides: a loaded machine once caught it midway.
            await pilot.wait_for_scheduled_animations()
            await pilot.pause(0.1)
            assert_snapshot(app, name, tmp_path)

    run(go())


def test_snapshot_filter_dialog(showcase: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with tui(showcase) as (app, pilot):
            await pilot.press("f")
            dialog: Any = app.screen
            dialog.query_one("#filter-direction", Select).value = "s2c"
            dialog.query_one("#filter-op-ping", Checkbox).value = False
            await pilot.pause(0.1)
            assert_snapshot(app, "filter_dialog", tmp_path)

    run(go())
