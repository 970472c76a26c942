"""The TUI driven with Textual's Pilot on bundled captures, as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual.widgets import Checkbox, Input, Label, Select, Sparkline, Static, TabbedContent

from tests.tui.conftest import CAPTURES, ROOT, run, settle, shown, tui, wait_for
from wsinspect.capture import open_capture
from wsinspect.packet import RawPacket
from wsinspect.session import Inspector, Options, SessionUpgraded
from wsinspect.tls import KeyLog
from wsinspect.tui.app import WsinspectApp
from wsinspect.tui.screens import ExportScreen, FilterScreen, HelpScreen, SearchScreen, StatsScreen
from wsinspect.tui.widgets import HexView, TextView

BASIC = CAPTURES / "websockets_basic.pcap"
VIOLATIONS = CAPTURES / "violations.pcap"


def read_json(*args: str) -> list[dict[str, Any]]:
    """`wsinspect read --json ARGS` as JSON objects."""
    out = subprocess.run(
        [sys.executable, "-m", "wsinspect", "read", "--json", *args],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def lines(view: TextView | HexView) -> list[str]:
    return [view.get_line(y).plain for y in range(view.line_count)]


def focused(app: WsinspectApp) -> object:
    """The focused widget (as a call: mypy would keep it narrowed from an earlier assert)."""
    return app.focused


def active_tab(app: WsinspectApp) -> str:
    return app.query_one("#detail", TabbedContent).active


def test_select_session_open_message_switch_tabs() -> None:
    async def go() -> None:
        async with tui(VIOLATIONS) as (app, pilot):
            assert app.focused is app.table
            assert app.scope == 1
            await pilot.press(*["down"] * 8)  # session 9: invalid UTF-8
            await wait_for(pilot, lambda: app.scope == 9 and shown(app))
            assert app.sessions[9].summary is not None
            assert "invalid-utf8" in (app.sessions[9].summary.handshake.path or "")
            await pilot.press("enter")
            assert focused(app) is app.messages
            assert len(app.view) == 3
            m = app.detail
            assert m is not None and m.session == 9 and m.text is None
            payload = lines(app.query_one("#payload", TextView))
            assert any("not valid UTF-8" in line for line in payload)
            await pilot.press("enter")  # into the detail pane
            assert app.focused is app.query_one("#payload")
            await pilot.press("2")
            assert active_tab(app) == "tab-hex"
            assert "62 61 64 20 ff fe 20 75" in lines(app.query_one("#hex", HexView))[1]
            await pilot.press("3")
            assert active_tab(app) == "tab-frames"
            frames = lines(app.query_one("#frames", TextView))
            assert frames[1].split()[:4] == ["1", "1", "000", "text"]
            await pilot.press("4")
            handshake = "\n".join(lines(app.query_one("#handshake", TextView)))
            assert "GET /invalid-utf8 HTTP/1.1" in handshake
            assert "Sec-WebSocket-Key:" in handshake and "✓ valid" in handshake
            expected = app.sessions[9].summary.handshake.accept_expected
            assert f"expected  {expected}" in handshake
            await pilot.press("5")
            issues = "\n".join(lines(app.query_one("#issues", TextView)))
            assert "invalid-utf8" in issues and "not valid UTF-8" in issues
            await pilot.press("escape")
            assert focused(app) is app.messages
            await pilot.press("escape")
            assert focused(app) is app.table

    run(go())


def test_payload_json_pretty_and_sanitised() -> None:
    async def go() -> None:
        async with tui(BASIC) as (app, pilot):
            await pilot.press("enter")
            texts = [m.text for m in (app.store.message(i) for i in app.view)]
            await pilot.press(*["down"] * texts.index(next(t for t in texts if t and t.startswith("{"))))
            await wait_for(pilot, lambda: shown(app))
            payload = lines(app.query_one("#payload", TextView))
            assert "JSON, pretty-printed" in payload[1]
            assert '  "type": "chat",' in payload
            await pilot.press(*["down"] * 6)  # the message with escape sequences
            await wait_for(pilot, lambda: shown(app) and app.detail is not None and "\x1b" in (app.detail.text or ""))
            payload = lines(app.query_one("#payload", TextView))
            assert "\\e[31mred\\e[0m\\r" in payload and "bell\\x07" in payload
            # Nothing from the wire reaches the terminal as a control character.
            svg = app.export_screenshot()
            assert "\x1b" not in svg and "\x07" not in svg

    run(go())


def test_search_next_previous() -> None:
    async def go() -> None:
        async with tui(BASIC) as (app, pilot):
            await pilot.press("enter", "slash")
            assert isinstance(app.screen, SearchScreen)
            await pilot.press(*"^bye|bye$", "tab", "space", "enter")  # the regex box: Tab, Space
            await wait_for(pilot, lambda: not app.busy and shown(app))
            assert app.detail is not None and app.detail.text == "bye soon"
            first = app.messages.cursor
            await pilot.press("n")
            await wait_for(pilot, lambda: app.messages.cursor != first and shown(app))
            assert app.detail is not None and app.detail.opcode == 8 and app.detail.close_reason == "bye"
            await pilot.press("N")
            await wait_for(pilot, lambda: app.messages.cursor == first)
            # Matches are marked in the payload.
            payload = app.query_one("#payload", TextView)
            assert payload.pattern is not None and payload.pattern.search("BYE")
            await pilot.press("slash", "ctrl+u", *"no such thing", "enter")
            await wait_for(pilot, lambda: not app.busy)
            assert app.messages.cursor == first

    run(go())


def test_filter_dialog() -> None:
    async def go() -> None:
        async with tui(VIOLATIONS) as (app, pilot):
            await pilot.press("a")  # all sessions' messages
            total = len(app.store)
            assert len(app.view) == total
            await pilot.press("f")
            dialog = app.screen
            assert isinstance(dialog, FilterScreen)
            dialog.query_one("#filter-direction", Select).value = "c2s"
            for name in ("binary", "close", "ping", "pong", "other"):
                dialog.query_one(f"#filter-op-{name}", Checkbox).value = False
            await pilot.click("#filter-apply")
            await wait_for(pilot, lambda: not app.busy and not isinstance(app.screen, FilterScreen))
            chosen = [app.store.message(i) for i in app.view]
            assert chosen and all(m.dir == "c2s" and m.opcode == 1 for m in chosen)
            await pilot.press("f")
            dialog = app.screen
            assert isinstance(dialog, FilterScreen)
            assert dialog.query_one("#filter-direction", Select).value == "c2s"
            await pilot.click("#filter-clear")
            await wait_for(pilot, lambda: len(app.view) == total)
            await pilot.press("f")
            dialog = app.screen
            dialog.query_one("#filter-text", Input).value = "^(not|second)"
            dialog.query_one("#filter-regex", Checkbox).value = True
            await pilot.click("#filter-apply")
            await wait_for(pilot, lambda: not app.busy and len(app.view) == 2)
            assert [app.store.message(i).text for i in app.view] == ["not masked", "second message"]
            await pilot.press("f")
            dialog = app.screen
            dialog.query_one("#filter-text", Input).value = ""
            dialog.query_one("#filter-issues", Checkbox).value = True
            await pilot.click("#filter-apply")
            await wait_for(pilot, lambda: not app.busy and 0 < len(app.view) < total)
            assert all(app.store.message(i).issues for i in app.view)
            await pilot.press("f")
            dialog = app.screen
            dialog.query_one("#filter-text", Input).value = "(unclosed"
            dialog.query_one("#filter-regex", Checkbox).value = True
            await pilot.click("#filter-apply")
            assert isinstance(app.screen, FilterScreen)  # a bad regex keeps the dialog open
            await pilot.press("escape")
            assert not isinstance(app.screen, FilterScreen)

    run(go())


def export(app: WsinspectApp, pilot: Any, path: Path) -> Any:
    async def go() -> None:
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        dialog.query_one(Input).value = str(path)
        await pilot.press("enter")
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "export"])
        assert path.exists()

    return go()


def test_export_session_matches_read_json(tmp_path: Path) -> None:
    async def go() -> None:
        async with tui(VIOLATIONS) as (app, pilot):
            await pilot.press("down", "down")  # session 3
            await wait_for(pilot, lambda: app.scope == 3)
            await export(app, pilot, tmp_path / "s3.jsonl")
        exported = [json.loads(line) for line in (tmp_path / "s3.jsonl").read_text().splitlines()]
        assert exported == read_json("--session", "3", str(VIOLATIONS))
        assert exported[-1]["type"] == "session" and len(exported) > 1

    run(go())


def test_export_filtered_messages_matches_read_json(tmp_path: Path) -> None:
    async def go() -> None:
        async with tui(BASIC, message_filter=_text_only()) as (app, pilot):
            await export(app, pilot, tmp_path / "text.jsonl")
        exported = [json.loads(line) for line in (tmp_path / "text.jsonl").read_text().splitlines()]
        expected = [r for r in read_json("--opcode", "text", str(BASIC)) if r["type"] == "message"]
        assert exported == expected

    run(go())


def _text_only() -> Any:
    from wsinspect.tui.store import MessageFilter

    return MessageFilter(opcodes=frozenset({1}))


def test_copy_payload() -> None:
    async def go() -> None:
        async with tui(BASIC) as (app, pilot):
            await pilot.press("enter", "c")
            assert app.clipboard == "hello"
            await pilot.press(*["down"] * 4)  # binary
            await wait_for(pilot, lambda: shown(app))
            await pilot.press("c")
            assert app.detail is not None and app.detail.opcode == 2
            assert app.clipboard == app.detail.payload.hex()

    run(go())


def test_help_sort_zoom_palette() -> None:
    async def go() -> None:
        async with tui(VIOLATIONS) as (app, pilot):
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            table = app.table
            await pilot.press("o")  # sort by the next column shown (at 80 columns: host/path)
            assert table.sort_column == "where"
            assert "host/path ▲" in table.get_header().plain
            await pilot.press("O")
            expected = sorted(table.order, key=lambda n: (app.sessions[n].sort_key("where"), n), reverse=True)
            assert table.sort_reverse and table.order == expected
            assert table.selected == app.scope
            await pilot.press("enter", "z")
            assert app.screen.maximized is not None
            await pilot.press("z")
            assert app.screen.maximized is None
            titles = {c.title for c in app.get_system_commands(app.screen)}
            for title in ("Search messages", "Filter messages", "Export to JSON Lines", "Copy payload", "Keys"):
                assert title in titles

    run(go())


def test_compressed_messages_show_wire_size() -> None:
    async def go() -> None:
        async with tui(CAPTURES / "deflate_websockets.pcap") as (app, pilot):
            await pilot.press("a")
            compressed = [i for i in app.view if app.store.message(i).compressed]
            assert compressed
            await pilot.press("enter")
            app.messages.move_to(list(app.view).index(compressed[0]))
            await wait_for(pilot, lambda: shown(app))
            m = app.store.message(compressed[0])
            assert str(m.wire_length) in app.messages.get_line(app.messages.cursor).plain
            assert "deflate" in lines(app.query_one("#payload", TextView))[0]

    run(go())


def gated_source(path: Path, first: int, gate: threading.Event) -> Any:
    """A live-like source: ``first`` packets, then None (no packet yet) until ``gate`` opens."""

    def source() -> Iterator[RawPacket | None]:
        reader = open_capture(str(path))
        try:
            for n, raw in enumerate(reader):
                if n == first:
                    while not gate.is_set():
                        yield None
                        time.sleep(0.01)
                yield raw
        finally:
            reader.close()

    return source


def test_live_source_follows_the_tail() -> None:
    async def go() -> None:
        gate = threading.Event()
        app = WsinspectApp(gated_source(BASIC, 40, gate), title="live test", live=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: len(app.view) > 3)
            assert not app.done and app.follow and app.all_sessions
            assert "live" in str(app.table.border_title)
            before = len(app.view)
            assert app.messages.cursor == before - 1
            await pilot.press("question_mark")  # batches keep coming under a dialog
            gate.set()
            await wait_for(pilot, lambda: app.done)
            await pilot.press("escape")
            await settle(app, pilot)
            assert len(app.view) > before
            assert app.messages.cursor == len(app.view) - 1  # followed
            await pilot.press("s")
            assert not app.follow

    run(go())


def test_quit_while_decoding(tmp_path: Path) -> None:
    """q during decoding stops the decoder and removes the spill file cleanly."""

    async def go() -> None:
        gate = threading.Event()
        app = WsinspectApp(gated_source(BASIC, 40, gate), title="quit test")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: len(app.store) > 0)
            await pilot.press("q")
        assert not app.done
        assert app.spill.read(0, 10) == b""

    run(go())


def test_big_payload_and_theme_switch() -> None:
    async def go() -> None:
        async with tui(BASIC) as (app, pilot):
            await pilot.press("enter")
            big = next(row for row, i in enumerate(app.view) if app.store.cols.length[i] > 1_000_000)
            app.messages.move_to(big)
            await wait_for(pilot, lambda: shown(app))
            m = app.detail
            assert m is not None
            heading = lines(app.query_one("#payload", TextView))[:3]
            assert any("the Hex tab (2) shows every byte" in line for line in heading)
            hex_view = app.query_one("#hex", HexView)
            assert hex_view.line_count == 1 + (len(m.payload) + 15) // 16
            last = hex_view.get_line(hex_view.line_count - 1).plain
            assert last.startswith(f"{(len(m.payload) - 1) // 16 * 16:08x}")
            dark = app.messages.palette["c2s"]
            app.theme = "textual-light"
            await pilot.pause(0.2)
            await wait_for(pilot, lambda: shown(app))
            assert app.messages.palette["c2s"] != dark
            assert app.messages.get_line(0).plain

    run(go())


def test_cli_errors_before_the_screen_changes(tmp_path: Path) -> None:
    def wsinspect(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wsinspect", "tui", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    missing = wsinspect(str(tmp_path / "missing.pcap"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("wsinspect: ") and "no such file" in missing.stderr
    assert missing.stdout == ""
    stdin = wsinspect("-")
    assert stdin.returncode == 2 and "stdin" in stdin.stderr


def packets_until_upgraded(path: Path) -> int:
    """How many packets the decoder needs to see the first handshake's response."""
    inspector = Inspector()
    reader = open_capture(str(path))
    try:
        for n, raw in enumerate(reader, 1):
            if any(isinstance(ev, SessionUpgraded) for ev in inspector.feed(raw)):
                return n
    finally:
        reader.close()
    raise AssertionError("no handshake in the capture")


def test_live_handshake_before_the_session_ends() -> None:
    """SessionUpgraded fills in the session's row and Handshake tab while it is still open."""

    async def go() -> None:
        gate = threading.Event()
        app = WsinspectApp(gated_source(BASIC, packets_until_upgraded(BASIC) + 2, gate), title="live", live=True)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: 1 in app.sessions and app.sessions[1].upgrade is not None)
            info = app.sessions[1]
            assert info.summary is None and not app.done
            await wait_for(pilot, lambda: "101 ok" in app.table.get_line(0).plain)
            row = app.table.get_line(0).plain
            assert "127.0.0.1:47001/chat?room=1&user=alice" in row and "still open" in row
            await pilot.press("4")
            handshake = app.query_one("#handshake", TextView)
            await wait_for(pilot, lambda: "GET /chat?room=1&user=alice HTTP/1.1" in lines(handshake))
            text = "\n".join(lines(handshake))
            assert "HTTP/1.1 101 Switching Protocols" in text and "✓ valid" in text
            assert "close: the session is still open" in text
            assert "(0 so far; still open)" in "\n".join(lines(app.query_one("#issues", TextView)))
            gate.set()
            await wait_for(pilot, lambda: app.done and info.summary is not None)
            await wait_for(pilot, lambda: 'close: 1000 "bye" by client' in "\n".join(lines(handshake)))
            assert '1000 "bye" by client' in app.table.get_line(0).plain
            await pilot.press("ctrl+c")  # quits, as it stops `wsinspect live`
            await wait_for(pilot, lambda: not app.is_running)

    run(go())


def test_filter_dialog_and_search_bar_by_keys_only() -> None:
    """Every control of the filter dialog and the search bar is reached and operated
    with Tab, Shift+Tab, Space, Enter and Esc (no mouse, no widget poking)."""

    async def go() -> None:
        async with tui(VIOLATIONS) as (app, pilot):
            await pilot.press("a")
            total = len(app.view)
            await pilot.press("f")
            dialog = app.screen
            assert isinstance(dialog, FilterScreen)
            order = []
            for _ in range(14):
                order.append(dialog.focused.id if dialog.focused is not None else None)
                await pilot.press("tab")
            assert order == [
                "filter-direction",
                *(f"filter-op-{name}" for name in ("text", "binary", "close", "ping", "pong", "other")),
                "filter-text",
                "filter-regex",
                "filter-issues",
                "filter-expr",
                "filter-apply",
                "filter-clear",
                "filter-cancel",
            ]
            assert dialog.focused is not None and dialog.focused.id == "filter-direction"  # Tab wraps around
            await pilot.press("shift+tab")
            assert dialog.focused is not None and dialog.focused.id == "filter-cancel"
            await pilot.press("tab")
            # Direction: Enter opens the list, Down moves to "client to server", Enter picks it.
            await pilot.press("enter", "down", "enter")
            assert dialog.query_one("#filter-direction", Select).value == "c2s"
            await pilot.press("tab")  # text: stays on
            for _ in range(5):  # binary, close, ping, pong, other: off
                await pilot.press("tab", "space")
            await pilot.press("tab")
            assert dialog.focused is dialog.query_one("#filter-text", Input)
            await pilot.press(*"^(not|second)", "tab", "space")  # regex on
            assert dialog.query_one("#filter-text", Input).value == "^(not|second)"
            assert dialog.query_one("#filter-regex", Checkbox).value
            await pilot.press("enter")  # Enter on a box applies the form
            await wait_for(pilot, lambda: not app.busy and not isinstance(app.screen, FilterScreen))
            assert [app.store.message(i).text for i in app.view] == ["not masked", "second message"]
            # Clear, reached backwards from the first control.
            await pilot.press("f", "shift+tab", "shift+tab")
            assert app.screen.focused is not None and app.screen.focused.id == "filter-clear"
            await pilot.press("enter")
            await wait_for(pilot, lambda: not app.busy and len(app.view) == total)
            # Issues only, then Apply with Space.
            await pilot.press("f", *["tab"] * 9, "space", "tab", "tab", "space")  # past the display filter
            await wait_for(pilot, lambda: not app.busy and 0 < len(app.view) < total)
            assert all(app.store.message(i).issues for i in app.view)
            await pilot.press("f", "escape")
            assert not isinstance(app.screen, FilterScreen)
            # The search bar: Tab to the regex box, Space ticks it (and types nothing), Enter searches.
            await pilot.press("f", "shift+tab", "shift+tab", "enter", "slash")
            await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
            await pilot.press(*"^sec.nd", "tab", "space")
            bar = app.screen
            assert bar.query_one(Input).value == "^sec.nd"
            assert bar.query_one(Checkbox).value
            await pilot.press("shift+tab")
            assert bar.focused is bar.query_one(Input)
            await pilot.press("tab", "enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, SearchScreen) and not app.busy and shown(app))
            assert app.search_query == ("^sec.nd", True)
            assert app.detail is not None and app.detail.text == "second message"

    run(go())


def test_search_scrolls_to_the_match_and_walks_matches() -> None:
    """/bye shows its first match in a 71,680-byte text (at character 7,108, far
    below the top), marked as the current one; n / N walk the matches of the message,
    then go on to the next (previous) messages that match."""

    def current_line(view: TextView) -> int | None:
        """The display line on screen that shows the current match, if any."""
        top = view.scroll_offset.y
        for y in range(top, min(view.line_count, top + view.scrollable_content_region.height)):
            if any(span.style == view.palette["current"] for span in view.get_line(y).spans):
                return y
        return None

    async def go() -> None:
        async with tui(BASIC, size=(120, 35)) as (app, pilot):
            await pilot.press("enter", "slash", *"bye", "enter")
            await wait_for(pilot, lambda: not app.busy and shown(app))
            await pilot.pause()
            view = app.query_one("#payload", TextView)
            assert app.detail is not None and len(app.detail.payload) == 71_680
            assert len(view.matches) == 5 and view.current == 0
            y = current_line(view)
            assert y is not None and y > 20  # scrolled down to it
            assert "bye" in view.get_line(y).plain
            assert "search 'bye' 1/5" in str(app.messages_pane.border_title)
            for k in range(1, 5):
                await pilot.press("n")
                await pilot.pause()
                assert view.current == k and current_line(view) is not None
            assert "search 'bye' 5/5" in str(app.messages_pane.border_title)
            big = app.messages.cursor
            await pilot.press("n")  # past the last match: the next message
            await wait_for(pilot, lambda: app.messages.cursor > big and shown(app))
            soon = app.messages.cursor
            assert app.detail is not None and app.detail.text == "bye soon" and view.current == 0
            await pilot.press("n")
            await wait_for(pilot, lambda: app.messages.cursor == soon + 1 and shown(app))
            assert app.detail is not None and app.detail.close_reason == "bye"
            await pilot.press("N")  # back: "bye soon", then the big text at its last match
            await wait_for(pilot, lambda: app.messages.cursor == soon and shown(app))
            await pilot.press("N")
            await wait_for(pilot, lambda: app.messages.cursor == big and shown(app))
            await pilot.pause()
            assert view.current == 4 and current_line(view) is not None
            # Ping payloads are not text: not searched (as read --grep).
            await pilot.press("slash", *["backspace"] * 3, *"ping-payload", "enter")
            await wait_for(pilot, lambda: not app.busy)
            assert app.messages.cursor == big
            # The header shows the search as typed: one backslash, not repr's two.
            await pilot.press("slash", *["backspace"] * 12, *"by.\\ssoon", "tab", "space", "enter")
            await wait_for(pilot, lambda: not app.busy and shown(app) and app.search_query[1])
            assert app.detail is not None and app.detail.text == "bye soon"
            assert "search /by.\\ssoon/ 1/1" in str(app.messages_pane.border_title)

    run(go())


def read_times(path: Path) -> list[str]:
    """The time column of `wsinspect read FILE` (its default: since the first packet)."""
    out = subprocess.run(
        [sys.executable, "-m", "wsinspect", "read", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(" ") and "#" in line.split()[1]]


def test_one_clock_the_same_as_reads() -> None:
    """Every time in the TUI counts from the capture's first packet, as read's do:
    the same figures for the same messages, in one session and across all of them."""

    async def go() -> None:
        for path in (BASIC, VIOLATIONS):
            expected = read_times(path)
            async with tui(path, size=(120, 35)) as (app, pilot):
                await pilot.press("a")  # all sessions, in capture order: read's order
                await wait_for(pilot, lambda: app.all_sessions and len(app.view) == len(app.store))
                shown_times = [app.messages.get_line(y).plain[1:10].strip() for y in range(len(app.view))]
                assert shown_times == expected, path.name
                assert shown_times == sorted(shown_times, key=float)
                await pilot.press("a")  # one session's rows: the same clock
                rows = [app.messages.get_line(y).plain[1:10].strip() for y in range(len(app.view))]
                assert rows == [expected[i] for i in app.view]

    run(go())


def tap_source(path: Path) -> tuple[Any, list[int]]:
    """A live-like source fed by the test: it yields the capture's packets up to
    ``allowed[0]``, and None (no packet yet) while it waits for more."""
    allowed = [0]

    def source() -> Iterator[RawPacket | None]:
        reader = open_capture(str(path))
        try:
            for n, raw in enumerate(reader):
                while n >= allowed[0]:
                    yield None
                    time.sleep(0.005)
                yield raw
        finally:
            reader.close()

    return source, allowed


def test_live_follow_pauses_when_the_user_moves_and_resumes_at_the_end() -> None:
    """While messages keep arriving, moving up (or Enter on a message) stops following
    the tail: the selected message stays selected; End follows again. The header says
    which."""

    async def go() -> None:
        source, allowed = tap_source(BASIC)
        app = WsinspectApp(source, title="live", live=True)
        async with app.run_test(size=(120, 35)) as pilot:
            allowed[0] = 12  # 4 messages (packets 1-12 of the capture)
            await wait_for(pilot, lambda: len(app.view) >= 4)
            await pilot.pause(0.3)
            assert app.follow and app.messages.cursor == len(app.view) - 1
            assert "following" in str(app.messages_pane.border_title)
            await pilot.press("tab", "up")  # sessions, then the messages
            assert focused(app) is app.messages and not app.follow
            picked = app.messages.selected
            assert "paused (End: follow)" in str(app.messages_pane.border_title)
            before = len(app.view)
            allowed[0] = 20  # 6 more messages arrive while paused
            await wait_for(pilot, lambda: len(app.view) > before + 3)
            await pilot.pause(0.3)
            assert app.messages.selected == picked and not app.follow
            await pilot.press("end")
            assert app.follow and app.messages.cursor == len(app.view) - 1
            assert "following" in str(app.messages_pane.border_title)
            before = len(app.view)
            allowed[0] = 100
            await wait_for(pilot, lambda: len(app.view) > before and app.messages.cursor == len(app.view) - 1)
            # Enter on a message pauses too: the message read stays put.
            await pilot.press("enter")
            assert not app.follow
            picked = app.messages.selected
            allowed[0] = 10_000
            await wait_for(pilot, lambda: app.done)
            await settle(app, pilot)
            assert app.messages.selected == picked and app.messages.cursor < len(app.view) - 1
            await pilot.press("s")  # the footer's key follows again
            assert app.follow and app.messages.cursor == len(app.view) - 1

    run(go())


def test_focus_and_layout() -> None:
    """Tab from the messages lands in the detail's text, where the keys scroll it; z
    gives the pane the whole screen; the sessions table keeps its key columns at
    80x24 and shows the close column whole at 120."""

    async def go() -> None:
        async with tui(BASIC, size=(80, 24)) as (app, pilot):
            header = app.table.get_header().plain
            for label in ("#", "host/path", "HTTP", "msgs", "close", "issues"):
                assert f" {label} " in f" {header} ", label
            room = app.table.scrollable_content_region.width
            assert app.table.get_header().cell_len <= room and app.table.get_line(0).cell_len <= room
            await pilot.press("enter")
            big = next(row for row, i in enumerate(app.view) if app.store.cols.length[i] == 71_680)
            await pilot.press(*["down"] * big)
            await wait_for(pilot, lambda: shown(app))
            await pilot.press("tab")
            payload = app.query_one("#payload", TextView)
            assert focused(app) is payload
            await pilot.press("pagedown", "down")
            assert payload.scroll_offset.y > 1
            await pilot.press("z")
            await pilot.pause(0.1)
            maximized = app.screen.maximized
            assert maximized is not None
            footer = 1
            assert maximized.region.height == 24 - footer and maximized.region.y == 0
            await pilot.press("z", "shift+tab", "shift+tab", "z")
            assert focused(app) is app.table
            await pilot.pause(0.1)
            assert app.screen.maximized is app.table and app.table.region.height == 24 - footer
        async with tui(BASIC, size=(120, 35)) as (app, pilot):
            room = app.table.scrollable_content_region.width
            row = app.table.get_line(0)
            assert '1000 "bye" by client' in row.plain and row.cell_len <= room

    run(go())


def test_export_one_message_and_help_by_keys(tmp_path: Path) -> None:
    """One message is one message (not "1 messages"); a help line that wraps stays
    under its description, not under the keys."""
    from wsinspect.tui.store import MessageFilter

    async def go() -> None:
        only_hello = MessageFilter(pattern=re.compile("^hello$"), query="^hello$", regex=True)
        async with tui(BASIC, size=(60, 30), message_filter=only_hello) as (app, pilot):
            assert len(app.view) == 1
            await pilot.press("e")
            assert isinstance(app.screen, ExportScreen)
            assert "Export the 1 listed message to JSON Lines" in str(app.screen.query_one(".dialog-title").render())
            target = tmp_path / "one.jsonl"
            await pilot.press("ctrl+u", *str(target), "enter")
            await app.workers.wait_for_complete([w for w in app.workers if w.group == "export"])
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            assert f"exported 1 message to {target}" in notes
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            help_text = app.screen.query_one("#help-text")
            rows = [help_text.render_line(y).text.rstrip() for y in range(help_text.size.height)]
            start = rows.index("Moving")
            keys = [row for row in rows[start:] if row and row not in ("Moving", "Finding", "Doing")]
            wrapped = [row for row in keys if row.startswith(" ")]
            assert wrapped, "no description wraps at 60 columns: the check needs one"
            # A continuation starts where descriptions do, after the key column.
            assert all(len(row) - len(row.lstrip()) >= 14 for row in wrapped), wrapped

    run(go())


TLS13 = CAPTURES / "tls" / "tls13_websockets.pcap"


def test_decrypted_tls_session_shows_tls_health_and_pong_rtt() -> None:
    async def go() -> None:
        keylog = KeyLog.from_paths([str(TLS13.with_suffix(".keys"))])
        async with tui(TLS13, size=(160, 40), options=Options(keylog=keylog)) as (app, pilot):
            row = app.table.get_line(0).plain
            assert "101 ok tls" in row and "clean" in row
            await pilot.press("enter", "4")
            handshake = lines(app.query_one("#handshake", TextView))
            assert "TLS 1.3 TLS_AES_256_GCM_SHA384  SNI wsinspect.test  ALPN http/1.1  decrypted" in handshake
            assert "ended cleanly: the client sent Close and the other side answered" in handshake
            assert any(line.startswith("pings 1 → 0 ←, rtt median") for line in handshake)
            pongs = [
                app.messages.get_line(y).plain
                for y in range(len(app.view))
                if " pong " in app.messages.get_line(y).plain
            ]
            assert len(pongs) == 1 and re.search(r"rtt \d+\.\d ms$", pongs[0].rstrip())

    run(go())


def test_undecrypted_tls_is_listed_with_its_reason_and_the_keylog_hint() -> None:
    async def go() -> None:
        async with tui(CAPTURES / "tls" / "tls13_chromium.pcap", size=(160, 30)) as (app, pilot):
            assert not app.sessions
            assert "1 TLS not decrypted (--tls-keylog FILE" in str(app.table.border_title)
            await pilot.press("4")
            handshake = lines(app.query_one("#handshake", TextView))
            assert "1 TLS connection not decrypted (give the key log with --tls-keylog FILE)" in handshake
            assert any("→ 127.0.0.1:47108" in line and line.endswith("no key") for line in handshake)

    run(go())


def test_http2_sessions_show_their_stream_and_no_accept() -> None:
    async def go() -> None:
        async with tui(CAPTURES / "h2" / "h2c_websockets.pcap", size=(160, 40)) as (app, pilot):
            rows = [app.table.get_line(y).plain for y in range(len(app.table.order))]
            assert ["200 h2/1" in rows[0], "200 h2/5" in rows[1], "403 h2/7" in rows[2]] == [True] * 3
            await pilot.press("down", "enter", "4")
            assert app.scope == 2
            handshake = lines(app.query_one("#handshake", TextView))
            assert "HTTP/2 stream 5 (RFC 8441 extended CONNECT)" in handshake
            assert any(line.startswith("accept -") for line in handshake)
            assert ":protocol: websocket" in handshake

    run(go())


def test_pcapng_decryption_secrets_decrypt_in_the_tui() -> None:
    # No --tls-keylog: the key log travels in the capture's Decryption Secrets Block, as `read` uses it.
    expected = [m for m in read_json(str(CAPTURES / "tls" / "tls13_websockets_dsb.pcapng")) if m["type"] == "message"]
    assert expected

    async def go() -> None:
        async with tui(CAPTURES / "tls" / "tls13_websockets_dsb.pcapng", size=(160, 40)) as (app, pilot):
            assert not app.undecrypted
            assert "tls" in app.table.get_line(0).plain
            await pilot.press("enter")
            assert len(app.view) == len(expected)
            await pilot.press("end")
            await wait_for(pilot, lambda: shown(app))
            m = app.detail
            assert m is not None and m.opcode == 8 and m.close_reason == expected[-1]["close_reason"]

    run(go())


def test_stats_screen_shows_the_stats_tables_and_sparklines() -> None:
    expected = subprocess.run(
        [sys.executable, "-m", "wsinspect", "stats", str(BASIC)], cwd=ROOT, capture_output=True, check=True, timeout=120
    ).stdout.decode()
    timeline = json.loads(
        subprocess.run(
            [sys.executable, "-m", "wsinspect", "stats", "--json", str(BASIC)],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    )["timeline"]

    async def go() -> None:
        async with tui(BASIC, size=(100, 50)) as (app, pilot):
            stats_key = app.active_bindings["S"].binding
            assert stats_key.show and stats_key.description == "Stats"  # in the footer
            await pilot.press("S")
            screen = app.screen
            assert isinstance(screen, StatsScreen)
            shown_text = screen.query_one("#stats-text", Static).content
            assert str(shown_text) == expected  # the tables of wsinspect stats, verbatim
            width = timeline["width"]
            for key in ("messages_c2s", "messages_s2c", "concurrent"):
                data = list(screen.query_one(f"#stats-{key}", Sparkline).data or [])
                scale = 1 if key == "concurrent" else width
                assert [round(x * scale) for x in data] == timeline[key], key
            title = str(screen.query_one("#stats-messages_c2s-title", Label).content)
            assert title.startswith("messages/s client → server: peak")
            await pilot.press("escape")
            assert not isinstance(app.screen, StatsScreen)

    run(go())


def test_filter_dialog_takes_a_display_filter_and_shows_its_error_in_place() -> None:
    expected = read_json("-Y", "opcode == text and length > 10 and dir == c2s", str(BASIC))
    expected = [m for m in expected if m["type"] == "message"]
    assert expected

    async def go() -> None:
        async with tui(BASIC, size=(100, 40)) as (app, pilot):
            await pilot.press("f")
            dialog: Any = app.screen
            for _ in range(20):  # Tab to the display filter
                if getattr(dialog.focused, "id", None) == "filter-expr":
                    break
                await pilot.press("tab")
            assert dialog.focused.id == "filter-expr"
            await pilot.press(*"opcode == tixt")
            error = str(dialog.query_one("#filter-expr-error", Static).content)
            caret, message = error.split("\n")
            assert caret == " " * 12 + " " * len("opcode == ") + "^~~~" and "tixt" in message
            await pilot.press("enter")  # refused: the dialog stays
            assert app.screen is dialog
            await pilot.press(*["backspace"] * 4, *"text and length > 10 and dir == c2s")
            assert str(dialog.query_one("#filter-expr-error", Static).content) == ""
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is not dialog and shown(app))
            assert len(app.view) == len(expected)
            assert "-Y opcode == text and length > 10 and dir == c2s" in str(app.messages_pane.border_title)

    run(go())


def test_display_filter_reads_session_fields_across_all_sessions() -> None:
    # session.messages is known at a session's end only: read holds its messages till then, hence sorted below.
    expression = "session.messages >= 3 and opcode == text"
    expected = [m for m in read_json("-Y", expression, str(VIOLATIONS)) if m["type"] == "message"]
    assert expected and len({m["session"] for m in expected}) > 1

    async def go() -> None:
        async with tui(VIOLATIONS, size=(100, 40)) as (app, pilot):
            await pilot.press("a", "f")
            dialog: Any = app.screen
            for _ in range(20):
                if getattr(dialog.focused, "id", None) == "filter-expr":
                    break
                await pilot.press("tab")
            await pilot.press(*expression, "enter")
            await wait_for(pilot, lambda: app.screen is not dialog and shown(app))
            view = [(app.store.cols.session[i], app.store.cols.ts[i]) for i in app.view]
            assert sorted(view) == sorted((m["session"], m["ts"]) for m in expected)

    run(go())


def test_tui_bad_display_filter_is_a_usage_error_before_the_screen() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wsinspect", "tui", "-Y", "opcode == tixt", str(BASIC)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-2:] == ["    opcode == tixt", "              ^~~~"]
