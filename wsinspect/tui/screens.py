"""Dialogs: help, search, filter, export."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Sparkline, Static

from wsinspect.filter import Filter, FilterError, compile_filter
from wsinspect.tui.store import MessageFilter
from wsinspect.vocab import Direction, Opcode

KEYS = (
    ("Moving", None),
    ("↑ ↓  j k", "previous / next row or line"),
    ("PgUp PgDn  g G", "page up / down, first / last"),
    ("Tab  Shift+Tab", "next / previous pane"),
    ("Enter", "sessions → messages → message detail"),
    ("Esc", "back to the previous pane"),
    ("1 … 5", "detail tab: Payload, Hex, Frames, Handshake, Issues"),
    ("z", "maximise the pane in use (again: restore)"),
    ("Finding", None),
    ("/", "search the listed messages' texts and close reasons"),
    ("n  N", "next / previous match: in the message, then in the next ones"),
    ("f", "filter: direction, opcode, text or regex, issues only"),
    ("a", "all sessions' messages / the selected session's"),
    ("o  O", "sort sessions by the next column / reverse (or click a header)"),
    ("Tab Space Enter", "in a dialog: next control, tick a box, apply (Esc: close)"),
    ("Doing", None),
    ("e", "export the session, or the listed messages when filtered, to JSON Lines"),
    ("c", "copy the payload (text as is, binary as hex)"),
    ("S", "statistics: wsinspect stats' tables, messages/s and concurrent sessions over time"),
    ("s  End", "follow the tail (live); moving up or Enter on a message pauses it"),
    ("Ctrl+P", "command palette: every action, and the theme (dark / light)"),
    ("?", "this help"),
    ("q  Ctrl+C", "quit (in live mode: stop the capture)"),
)

HELP_INTRO = (
    "wsinspect shows the WebSocket sessions of a capture (top), the messages of the "
    "selected session (middle) and the selected message (bottom). Payload text is shown "
    "with control characters escaped (\\e, \\x07, \\u202e …) and never sent to the terminal."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,enter", "dismiss", "Close", show=True),
    ]

    def compose(self) -> ComposeResult:
        # A grid: a description that wraps stays in its column, under itself.
        keys = Table.grid(padding=(0, 2))
        keys.add_column(no_wrap=True, style="bold", min_width=14)
        keys.add_column()
        for key, what in KEYS:
            if what is None:
                keys.add_row("")
                keys.add_row(Text(key, "bold underline"))
            else:
                keys.add_row(key, what)
        with Vertical(id="help-box", classes="dialog"):
            yield Label("wsinspect keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(Group(Text(HELP_INTRO), keys), id="help-text")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


StatsSnapshot = Callable[[], tuple[str, dict[str, Any]]]
"""Stats.render() and Stats.to_json()["timeline"] of what is decoded so far."""

# The timeline rows the sparklines draw, with their titles.
SPARKLINES = (
    ("messages_c2s", "messages/s client → server"),
    ("messages_s2c", "messages/s server → client"),
    ("concurrent", "concurrent sessions"),
)


class StatsScreen(ModalScreen[None]):
    """wsinspect stats for the capture: its tables, under sparklines of its timeline.
    Refreshed every second while the capture is still being decoded."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,S", "dismiss", "Close", show=True),
    ]
    REFRESH = 1.0

    def __init__(self, snapshot: StatsSnapshot, done: Callable[[], bool]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.done = done

    def compose(self) -> ComposeResult:
        with Vertical(id="stats-box", classes="dialog"):
            yield Label("wsinspect stats (Esc: close)", classes="dialog-title")
            for key, _ in SPARKLINES:
                yield Label("", id=f"stats-{key}-title", classes="spark-title")
                yield Sparkline([], id=f"stats-{key}")
            with VerticalScroll():
                yield Static(id="stats-text")

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.REFRESH, self.show)
        self.show()

    def show(self) -> None:
        text, timeline = self.snapshot()
        width = timeline["width"] or 1.0
        for key, title in SPARKLINES:
            row = timeline[key]
            # Messages per bucket become messages per second; sessions are counted as they are.
            data = [n / width for n in row] if key != "concurrent" else [float(n) for n in row]
            peak = max(data, default=0.0)
            label = f"{title}: peak {peak:,.1f}{'/s' * (key != 'concurrent')}, {len(data)} × {width:g} s"
            self.query_one(f"#stats-{key}-title", Label).update(Text(label))
            self.query_one(f"#stats-{key}", Sparkline).data = data
        # Text, not markup: host names are captured bytes; the tables are cut, not wrapped, on a narrow screen.
        self.query_one("#stats-text", Static).update(Text(text, no_wrap=True, overflow="crop"))
        if self.done():
            self._timer.stop()

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class FormCheckbox(Checkbox, inherit_bindings=False):
    """A checkbox of a form: Space toggles it, Enter submits the form (as in an HTML
    form; Textual's Checkbox toggles on Enter too)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("space", "toggle_button", "Toggle", show=False)]


class FormButton(Button):
    """A button that Space presses too, as Enter does."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("space", "press", "Press", show=False)]


class SearchScreen(ModalScreen[tuple[str, bool] | None]):
    """Asks for a search: text (case-insensitive unless it has capitals) or a regex.
    Tab reaches the regex box; Enter searches from either."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("enter", "submit", "Search", show=True),
    ]

    def __init__(self, text: str = "", regex: bool = False) -> None:
        super().__init__()
        self._text = text
        self._regex = regex

    def compose(self) -> ComposeResult:
        with Horizontal(id="search-bar", classes="bar"):
            yield Input(self._text, placeholder="search message texts and close reasons…", id="search-input")
            yield FormCheckbox("regex", self._regex, id="search-regex")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        self.dismiss((self.query_one(Input).value, self.query_one(FormCheckbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


def compile_pattern(text: str, regex: bool) -> re.Pattern[str]:
    """Smart case: a query with a capital letter is case-sensitive. Raises re.error."""
    flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
    return re.compile(text if regex else re.escape(text), flags)


OPCODE_BOXES = (
    *((op.label, int(op)) for op in (Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE, Opcode.PING, Opcode.PONG)),
    ("other", MessageFilter.OTHER),
)


class FilterScreen(ModalScreen[MessageFilter | None]):
    """Edits the message filter; Apply returns the new one, Clear an empty one.

    Every control is reached with Tab / Shift+Tab; Space toggles a box, Enter applies
    (on the direction it opens the list, on Clear and Cancel it presses them)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("enter", "apply", "Apply", show=True),
    ]

    def __init__(self, current: MessageFilter) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        f = self.current
        with Vertical(id="filter-box", classes="dialog"):
            yield Label("Filter messages", classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("direction", classes="field")
                yield Select(
                    [
                        ("both", "both"),
                        ("→ client to server", Direction.C2S.value),
                        ("← server to client", Direction.S2C.value),
                    ],
                    value=f.direction or "both",
                    allow_blank=False,
                    id="filter-direction",
                )
            with Horizontal(classes="row"):
                for name, op in OPCODE_BOXES:
                    yield FormCheckbox(name, f.opcodes is None or op in f.opcodes, id=f"filter-op-{name}", compact=True)
            with Horizontal(classes="row"):
                yield Label("text", classes="field")
                yield Input(f.query, placeholder="text in the payload", id="filter-text")
                yield FormCheckbox("regex", f.regex, id="filter-regex", compact=True)
            with Horizontal(classes="row"):
                yield FormCheckbox("only messages with issues", f.issues_only, id="filter-issues", compact=True)
            with Horizontal(classes="row-expr"):
                yield Label("-Y", classes="field")
                expression = f.display.expression if f.display is not None else ""
                yield Input(expression, placeholder="display filter: opcode == text and length > 10", id="filter-expr")
            yield Static("", id="filter-expr-error")
            with Horizontal(classes="buttons"):
                yield FormButton("Apply", variant="primary", id="filter-apply", compact=True)
                yield FormButton("Clear", id="filter-clear", compact=True)
                yield FormButton("Cancel", id="filter-cancel", compact=True)
            yield Static("", id="filter-error")
            yield Static("Tab / Shift+Tab: move   Space: tick a box   Enter: apply   Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter-expr":
            event.stop()
            self._expression()

    def _expression(self) -> tuple[bool, Filter | None]:
        """The display filter as typed (None when empty); False when it does not
        compile, its error shown under it with a caret at the fault."""
        text = self.query_one("#filter-expr", Input).value
        error = self.query_one("#filter-expr-error", Static)
        if not text.strip():
            error.update("")
            return True, None
        try:
            display = compile_filter(text)
        except FilterError as exc:
            # Under the input's text: the label takes 10 cells (the .tcss file), the input's border and padding 2.
            caret = " " * (12 + exc.position) + "^" + "~" * max(0, exc.length - 1)
            error.update(Text(f"{caret}\n{exc.message}"))
            return False, None
        error.update("")
        return True, display

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "filter-apply":
            self.action_apply()
        elif event.button.id == "filter-clear":
            self.dismiss(MessageFilter())
        else:
            self.dismiss(None)

    def action_apply(self) -> None:
        direction = self.query_one("#filter-direction", Select).value
        ops = frozenset(op for name, op in OPCODE_BOXES if self.query_one(f"#filter-op-{name}", Checkbox).value)
        text = self.query_one("#filter-text", Input).value
        regex = self.query_one("#filter-regex", Checkbox).value
        pattern = None
        if text:
            try:
                pattern = compile_pattern(text, regex)
            except re.error as exc:
                self.query_one("#filter-error", Static).update(Text(f"bad regular expression: {exc}"))
                return
        ok, display = self._expression()
        if not ok:
            self.query_one("#filter-expr", Input).focus()
            return
        self.dismiss(
            MessageFilter(
                direction=Direction(direction) if direction in (Direction.C2S, Direction.S2C) else None,
                opcodes=None if len(ops) == len(OPCODE_BOXES) else ops,
                pattern=pattern,
                issues_only=self.query_one("#filter-issues", Checkbox).value,
                query=text,
                regex=regex,
                display=display,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportScreen(ModalScreen[str | None]):
    """Asks where to write the JSON Lines file."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=True)]

    def __init__(self, what: str, path: str) -> None:
        super().__init__()
        self.what = what
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="dialog"):
            yield Label(f"Export {self.what} to JSON Lines", classes="dialog-title")
            yield Input(self.path, id="export-path")
            yield Static("Enter: write the file (replacing it)   Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
