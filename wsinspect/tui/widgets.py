"""Widgets that render only what is visible (Textual's line API).

LineView is a ScrollView over N lines made on demand by ``get_line``, under an
optional header line that stays put. CursorView adds a row cursor; SessionList and
MessageList are the two tables built on it (a million messages cost no widget and no
object per row). TextView wraps sanitised lines to the width of the pane; HexView
formats 16 bytes per line as they scroll past.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import ClassVar

from rich.cells import get_character_cell_size
from rich.highlighter import Highlighter, JSONHighlighter
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wsinspect.tui import render
from wsinspect.tui.render import SessionInfo
from wsinspect.tui.store import MessageStore
from wsinspect.vocab import Direction

ROLES = (
    Direction.C2S.value,
    Direction.S2C.value,
    "control",
    "issue",
    "muted",
    "heading",
    "ok",
    "bad",
    "match",
    "current",
)
# Matches of a search found in a payload's lines; n / N walk them.
MAX_MATCHES = 10_000


def component_style(widget: ScrollView, name: str) -> Style:
    """What a component class sets, its colours blended with the background: a
    partial style alone would turn "$text-muted" (a colour with alpha) opaque."""
    partial = widget.get_component_rich_style(name, partial=True)
    full = widget.get_component_rich_style(name)
    return partial + Style(
        color=full.color if partial.color is not None else None,
        bgcolor=full.bgcolor if partial.bgcolor is not None else None,
    )


class LineView(ScrollView, can_focus=True):
    """A scrolling view of ``line_count`` lines, each made by ``get_line`` when shown."""

    COMPONENT_CLASSES = {f"ws--{role}" for role in ROLES} | {"ws--header"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
        Binding("pageup,b", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
    ]
    header_height = 0  # lines at the top that do not scroll vertically

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines = 0
        self._strips: LRUCache[tuple[int, bool], Strip] = LRUCache(1024)
        self._palette: dict[str, Style] | None = None

    @property
    def palette(self) -> dict[str, Style]:
        """The theme's styles for each role, from the component classes."""
        if self._palette is None:
            self._palette = {role: component_style(self, f"ws--{role}") for role in ROLES}
        return self._palette

    @property
    def line_count(self) -> int:
        return self._lines

    def get_line(self, y: int) -> Text:
        raise NotImplementedError

    def get_header(self) -> Text:
        return Text("")

    def line_style(self, y: int) -> Style | None:
        """A style laid over line ``y`` (the cursor), or None."""
        return None

    def set_size(self, lines: int, width: int) -> None:
        self._lines = lines
        self._strips.clear()
        self.virtual_size = Size(width, lines + self.header_height)
        self.refresh()

    def clear_cache(self) -> None:
        self._strips.clear()
        self.refresh()

    def refresh_row(self, y: int) -> None:
        self._strips.discard((y, False))
        self._strips.discard((y, True))
        self.refresh_line(y + self.header_height)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # The theme changed (or a class did): styles baked into cached lines are stale.
        self._palette = None
        self._strips.clear()

    def _strip(self, text: Text, over: Style | None) -> Strip:
        base = self.rich_style
        console = self.app.console
        # Text.render leaves out the Text's own style when it has no spans.
        own = base + console.get_style(text.style) if text.style else base
        return Strip(Segment.apply_style(text.render(console), own, over), text.cell_len)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y < self.header_height:
            style = component_style(self, "ws--header")
            return self._strip(self.get_header(), style).crop_extend(scroll_x, scroll_x + width, base + style)
        index = scroll_y + y - self.header_height
        if index >= self._lines:
            return Strip.blank(width, base)
        over = self.line_style(index)
        key = (index, over is not None)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._strip(self.get_line(index), over)
        return strip.crop_extend(scroll_x, scroll_x + width, base if over is None else base + over)


class CursorView(LineView):
    """A LineView with a row cursor that the keys and the mouse move."""

    COMPONENT_CLASSES = LineView.COMPONENT_CLASSES | {"ws--cursor", "ws--cursor-blurred"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,b", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
    ]
    header_height = 1

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cursor = 0

    def line_style(self, y: int) -> Style | None:
        if y != self.cursor:
            return None
        return component_style(self, "ws--cursor" if self.has_focus else "ws--cursor-blurred")

    def cursor_moved(self) -> None:
        """Called after the cursor moved (or what is under it changed)."""

    def move_to(self, row: int) -> None:
        n = self._lines
        if not n:
            self.cursor = 0
            self.cursor_moved()
            return
        row = max(0, min(row, n - 1))
        old, self.cursor = self.cursor, row
        self.refresh_row(old)
        self.refresh_row(row)
        self.scroll_to_cursor()
        self.cursor_moved()

    def scroll_to_cursor(self, center: bool = False) -> None:
        visible = max(1, self.scrollable_content_region.height - self.header_height)
        top = self.scroll_offset.y
        row = self.cursor
        if center:
            top = row - visible // 2
        elif row < top:
            top = row
        elif row >= top + visible:
            top = row - visible + 1
        self.scroll_to(y=max(0, top), animate=False, immediate=True)

    def steered(self) -> None:
        """Called after the user moved the cursor (a key or a click)."""

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)
        self.steered()

    def action_page(self, step: int) -> None:
        self.move_to(self.cursor + step * max(1, self.scrollable_content_region.height - self.header_height - 1))
        self.steered()

    def action_first(self) -> None:
        self.move_to(0)
        self.steered()

    def action_last(self) -> None:
        self.move_to(self._lines - 1)
        self.steered()

    def on_click(self, event: events.Click) -> None:
        if event.y < self.header_height:
            self.header_clicked(event.x + self.scroll_offset.x)
            return
        self.move_to(self.scroll_offset.y + event.y - self.header_height)
        self.steered()
        if event.chain == 2:
            self.action_open()

    def header_clicked(self, x: int) -> None:
        """A click on the header line, ``x`` cells from its start."""

    def action_open(self) -> None:
        """Enter or a double click."""

    def on_focus(self) -> None:
        self.refresh_row(self.cursor)

    def on_blur(self) -> None:
        self.refresh_row(self.cursor)

    def on_resize(self) -> None:
        # The pane in use grows, the others shrink: keep the cursor in sight.
        self.call_after_refresh(self.scroll_to_cursor)


class SessionList(CursorView):
    """The sessions, one line each, in columns; sortable by any column."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", show=True),
        Binding("o", "sort_next", "Sort", show=False),
        Binding("O", "sort_reverse", "Reverse sort", show=False),
    ]
    GAP = 2
    # Right-aligned columns, and columns cut with an ellipsis beyond a width.
    NUMERIC = frozenset(("n", "msgs", "bytes", "issues", "start", "duration"))
    CAP: ClassVar[dict[str, int]] = {"where": 40, "close": 30, "proto": 16, "ext": 40}
    # Which columns a narrow pane keeps, first to last; "+where" is where the host/path
    # column, given WHERE_MIN cells at first, gets the rest of its width. The Handshake
    # tab shows what is left out.
    PRIORITY = (
        *("n", "where", "status", "msgs", "close", "issues", "bytes", "end", "+where"),
        *("client", "server", "start", "duration", "proto", "ext"),
    )
    WHERE_MIN = 16

    class Highlighted(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    class Selected(Message):
        """Enter on a session."""

    def __init__(self, sessions: dict[int, SessionInfo], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sessions = sessions
        self.order: list[int] = []  # session numbers, in display order
        self.row_of: dict[int, int] = {}
        self.origin = 0.0
        self.sort_column: str | None = None
        self.sort_reverse = False
        self._cells: dict[int, dict[str, Text]] = {}
        # Room for the label and the sort mark, at least.
        self._widths = {key: len(label) + 2 for key, label in render.SESSION_COLUMNS}
        self._shown: list[tuple[str, int]] = []  # the columns that fit, with their widths
        self._fitted_to = -1
        self._posted: int | None = None

    @property
    def selected(self) -> int | None:
        return self.order[self.cursor] if self.order else None

    def _build(self, number: int) -> bool:
        """Make a session's cells; True when a column had to widen."""
        cells = self._cells[number] = render.session_cells(self.sessions[number], self.origin, self.palette)
        widths = self._widths
        grew = False
        for key, cell in cells.items():
            w = min(cell.cell_len, self.CAP.get(key, 1000))
            if w > widths[key]:
                widths[key] = w
                grew = True
        return grew

    def _fit(self) -> None:
        """Choose the columns that fit the pane, by PRIORITY, shown in their order."""
        room = self.scrollable_content_region.width or self.size.width or 80
        self._fitted_to = room
        widths = self._widths
        gap = self.GAP
        chosen: dict[str, int] = {}
        used = 0
        for key in self.PRIORITY:
            if key == "+where":
                if "where" in chosen:
                    more = max(0, min(widths["where"] - chosen["where"], room - used))
                    chosen["where"] += more
                    used += more
                continue
            w = min(widths[key], self.WHERE_MIN) if key == "where" else widths[key]
            if used + w + gap <= room or not chosen:
                chosen[key] = w
                used += w + gap
        self._shown = [(key, chosen[key]) for key, _ in render.SESSION_COLUMNS if key in chosen]

    def _total_width(self) -> int:
        return sum(w for _, w in self._shown) + self.GAP * len(self._shown)

    def _refit(self) -> None:
        self._fit()
        self._strips.clear()
        self.set_size(len(self.order), self._total_width())

    def on_resize(self) -> None:
        if (self.scrollable_content_region.width or self.size.width) != self._fitted_to:
            self._refit()
        super().on_resize()

    def _join(self, cells: dict[str, Text]) -> Text:
        line = Text(no_wrap=True, end="")
        for key, width in self._shown:
            cell = cells[key].copy()
            if cell.cell_len > width:
                cell.truncate(width, overflow="ellipsis")
            pad = " " * (width - cell.cell_len)
            if key in self.NUMERIC:
                line.append(pad)
                line.append_text(cell)
            else:
                line.append_text(cell)
                line.append(pad)
            line.append(" " * self.GAP)
        return line

    def get_header(self) -> Text:
        labels = {}
        for key, label in render.SESSION_COLUMNS:
            mark = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else ""
            labels[key] = Text(label + mark)
        return self._join(labels)

    def get_line(self, y: int) -> Text:
        number = self.order[y]
        if number not in self._cells:
            self._build(number)
        return self._join(self._cells[number])

    def update(self, new: Sequence[int], changed: set[int]) -> None:
        """Sessions were added or changed: make their cells again, show them."""
        grew = False
        for number in (*new, *changed):
            grew = self._build(number) or grew
        if grew:
            # Wider columns move every line, and may leave no room for some.
            self._refit()
        if new or (self.sort_column is not None and changed):
            selected = self.selected
            self.order.extend(new)
            self._sort(selected)
            return
        for number in changed:
            row = self.row_of.get(number)
            if row is not None:
                self.refresh_row(row)

    def restyle(self) -> None:
        """The theme changed: cells are made again with its styles."""
        self._cells.clear()
        self.clear_cache()

    def _sort(self, keep: int | None) -> None:
        column = self.sort_column
        if column is not None:
            sessions = self.sessions
            self.order.sort(key=lambda n: (sessions[n].sort_key(column), n), reverse=self.sort_reverse)
        self.row_of = {n: row for row, n in enumerate(self.order)}
        if self._fitted_to < 0:
            self._fit()
        self.set_size(len(self.order), self._total_width())
        if keep is not None:
            self.cursor = self.row_of[keep]
            self.scroll_to_cursor()
        self.cursor_moved()

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column = column
        self.sort_reverse = reverse
        self._sort(self.selected)
        self.refresh_line(0)

    def action_sort_next(self) -> None:
        keys = [key for key, _ in self._shown]
        column = keys[(keys.index(self.sort_column) + 1) % len(keys)] if self.sort_column in keys else keys[1]
        self.set_sort(column, False)
        self.notify(f"sessions sorted by {dict(render.SESSION_COLUMNS)[column]}", timeout=2, markup=False)

    def action_sort_reverse(self) -> None:
        self.set_sort(self.sort_column or "n", not self.sort_reverse)

    def header_clicked(self, x: int) -> None:
        for key, width in self._shown:
            x -= width + self.GAP
            if x < 0:
                self.set_sort(key, not self.sort_reverse if key == self.sort_column else False)
                return

    def select(self, number: int) -> None:
        row = self.row_of.get(number)
        if row is not None:
            self.move_to(row)

    def cursor_moved(self) -> None:
        selected = self.selected
        if selected is not None and selected != self._posted:
            self._posted = selected
            self.post_message(self.Highlighted(selected))

    def action_open(self) -> None:
        self.post_message(self.Selected())


class MessageList(CursorView):
    """The messages of the current view, one line each."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open", show=True)]

    class Highlighted(Message):
        """The cursor moved to message ``index`` (None: the view is empty)."""

        def __init__(self, index: int | None) -> None:
            super().__init__()
            self.index = index

    class Opened(Message):
        """Enter on a message: show its detail."""

    class FollowChanged(Message):
        """Following the tail stopped or resumed (``follow``)."""

    def __init__(self, store: MessageStore, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.view: Sequence[int] = array("I")
        self.origin = 0.0  # the capture's first packet: every time counts from it
        # Following the tail: the cursor goes to each new last message. Set here, where
        # the keys land, so that no batch can move the cursor after the user did.
        self.follow = False
        self.resume_at_end = False  # live: reaching the last row follows again
        self.show_session = False
        self._posted: int | None = None

    def get_header(self) -> Text:
        return render.message_header(self.size.width)

    def get_line(self, y: int) -> Text:
        view = self.view
        i = view[y]
        store = self.store
        previous = store.cols.ts[view[y - 1]] if y > 0 else None
        width = max(self.scrollable_content_region.width, 40)
        return render.message_row(store, i, previous, self.origin, width, self.palette, self.show_session)

    @property
    def selected(self) -> int | None:
        """The message number under the cursor."""
        if not self._lines:
            return None
        return self.view[min(self.cursor, self._lines - 1)]

    def set_view(self, view: Sequence[int], select: int | None = None) -> None:
        """Show ``view`` (message numbers); put the cursor on message ``select`` when
        it is there (else the nearest before it), else on the first message."""
        self.view = view
        self.cursor = _position(view, select) if select is not None and view else 0
        self.set_size(len(view), 0)
        self.scroll_to_cursor(center=True)
        self.cursor_moved()

    def grew(self) -> None:
        """Messages were appended to the view."""
        before = self._lines
        n = len(self.view)
        if n == before:
            return
        self._lines = n
        self.virtual_size = Size(0, n + self.header_height)
        if self.follow:
            self.move_to(n - 1)
        elif before == 0:
            self.move_to(0)
        elif self.scroll_offset.y + self.size.height > before:
            self.refresh()

    def cursor_moved(self) -> None:
        selected = self.selected
        if selected != self._posted:
            self._posted = selected
            self.post_message(self.Highlighted(selected))

    def reannounce(self) -> None:
        """Post the message under the cursor again (its detail changed)."""
        self._posted = -1
        self.cursor_moved()

    def set_follow(self, follow: bool) -> None:
        if follow != self.follow:
            self.follow = follow
            self.post_message(self.FollowChanged())
        if follow:
            self.move_to(self._lines - 1)

    def steered(self) -> None:
        # As in Chrome's DevTools and termshark: moving off the last row stops
        # following the tail, coming back to it (End) resumes.
        at_end = self.cursor >= self._lines - 1
        if self.follow and not at_end:
            self.set_follow(False)
        elif not self.follow and at_end and self.resume_at_end:
            self.set_follow(True)

    def action_open(self) -> None:
        # The message being read stays put while others arrive.
        self.set_follow(False)
        self.post_message(self.Opened())

    def on_resize(self) -> None:
        self._strips.clear()


def _position(view: Sequence[int], index: int) -> int:
    """Where message ``index`` is in a sorted view (or the nearest before it)."""
    lo, hi = 0, len(view)
    while lo < hi:
        mid = (lo + hi) // 2
        if view[mid] <= index:
            lo = mid + 1
        else:
            hi = mid
    return max(0, lo - 1)


class TextView(LineView):
    """Heading lines (Text) and body lines (sanitised str), wrapped to the pane width.

    Body lines are highlighted when shown (JSON) and matches of ``pattern`` marked, the
    current one of ``matches`` (found beforehand by find_matches) brighter; the wrap
    map is two arrays, so a payload of a million lines costs a few megabytes.
    """

    # A body line longer than this is highlighted piece by piece, as it is shown.
    WHOLE_LINE = 4096

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.heading: list[Text] = []
        self.body: list[str] = []
        self.highlighter: Highlighter | None = None
        self.pattern: re.Pattern[str] | None = None
        self.matches: list[Match] = []
        self.current: int | None = None  # the match shown, an index in matches
        self._line_of = array("I")  # display line -> logical line (headings first)
        self._start_of = array("I")  # display line -> its first character in that line
        self._logical: LRUCache[int, Text] = LRUCache(256)
        self._wrapped_at = 0

    def show(
        self,
        heading: list[Text],
        body: list[str],
        json: bool = False,
        pattern: re.Pattern[str] | None = None,
        layout: Layout | None = None,
        matches: list[Match] | None = None,
    ) -> None:
        """Show the lines; ``layout`` is their wrap map if made beforehand (in a
        worker, for a big payload) for the width it says; ``matches``, those of
        ``pattern`` in ``body``."""
        self.heading = heading
        self.body = body
        self.highlighter = JSONHighlighter() if json else None
        self.pattern = pattern
        self.matches = matches or []
        self.current = None
        self._logical.clear()
        if layout is None or layout[0] != self.wrap_width:
            layout = wrap(heading, body, self.wrap_width)
        self._apply(layout)
        self.scroll_to(0, 0, animate=False, immediate=True)

    def mark(self, pattern: re.Pattern[str] | None) -> None:
        if pattern != self.pattern:
            self.pattern = pattern
            self.matches = []
            self.current = None
            self._logical.clear()
            self.clear_cache()

    def step_match(self, step: int) -> bool:
        """Show the next (``step`` 1) or previous (-1) match; False past either end."""
        if not self.matches:
            return False
        # From none shown yet: the first (or the last) one.
        k = (0 if step > 0 else len(self.matches) - 1) if self.current is None else self.current + step
        if not 0 <= k < len(self.matches):
            return False
        self.show_match(k)
        return True

    def show_match(self, k: int) -> None:
        """Make match ``k`` the current one and scroll it into the middle of the pane."""
        self.current = k
        line, start, _ = self.matches[k]
        logical = len(self.heading) + line
        first = bisect_left(self._line_of, logical)
        last = bisect_right(self._line_of, logical)
        y = max(first, bisect_right(self._start_of, start, first, last) - 1)
        self.clear_cache()
        # After the next refresh: a payload just shown has not had its new size laid out.
        self.call_after_refresh(self._scroll_near, y)

    def _scroll_near(self, y: int) -> None:
        visible = max(1, self.scrollable_content_region.height)
        self.scroll_to(y=max(0, y - visible // 3), animate=False, immediate=True)

    @property
    def wrap_width(self) -> int:
        return max(10, self.scrollable_content_region.width or self.size.width or 80)

    def _apply(self, layout: Layout) -> None:
        self._wrapped_at, self._line_of, self._start_of = layout
        # Wrapped: never wider than the pane, so no horizontal scrollbar.
        self.set_size(len(self._line_of), 0)

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            self._logical.clear()
            self._apply(wrap(self.heading, self.body, self.wrap_width))

    def _decorate(self, text: Text) -> Text:
        if self.highlighter is not None:
            self.highlighter.highlight(text)
        if self.pattern is not None:
            text.highlight_regex(self.pattern, self.palette["match"])
        return text

    def get_line(self, y: int) -> Text:
        n = self._line_of[y]
        start = self._start_of[y]
        end = self._start_of[y + 1] if y + 1 < len(self._line_of) and self._line_of[y + 1] == n else None
        nh = len(self.heading)
        if n < nh:
            return self.heading[n][start:end]
        line = self.body[n - nh]
        if len(line) > self.WHOLE_LINE:
            text = self._decorate(Text(line[start:end], no_wrap=True, end=""))
        else:
            cached = self._logical.get(n)
            if cached is None:
                cached = self._logical[n] = self._decorate(Text(line, no_wrap=True, end=""))
            text = cached
            if start or end is not None:
                text = text[start:end]
            elif self.current is not None:
                text = text.copy()  # the cached line stays without the current match
        if self.current is not None:
            m_line, m_start, m_end = self.matches[self.current]
            if m_line == n - nh:
                # The current match, where it overlaps this piece of its line.
                text.stylize(self.palette["current"], max(0, m_start - start), max(0, m_end - start))
        return text

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._logical.clear()


Match = tuple[int, int, int]
"""A search match in a TextView's body: its line, and its start and end in that line."""


def find_matches(body: list[str], pattern: re.Pattern[str], limit: int = MAX_MATCHES) -> list[Match]:
    """The non-empty matches of ``pattern`` in ``body``, the first ``limit`` (pure:
    the detail worker calls it)."""
    found: list[Match] = []
    for n, line in enumerate(body):
        for m in pattern.finditer(line):
            if m.end() > m.start():
                found.append((n, m.start(), m.end()))
                if len(found) >= limit:
                    return found
    return found


Layout = tuple[int, "array[int]", "array[int]"]
"""A TextView's wrap map: the width, and for each display line its logical line and
the offset in it where it starts."""


def wrap(heading: list[Text], body: list[str], width: int) -> Layout:
    """Cut every line to fit ``width`` cells (pure: workers call it too)."""
    line_of = array("I")
    start_of = array("I")
    lines = [t.plain for t in heading]
    lines.extend(body)
    for n, s in enumerate(lines):
        starts = _breaks(s, width)
        line_of.extend([n] * len(starts))
        start_of.extend(starts)
    return width, line_of, start_of


def _breaks(s: str, width: int) -> Sequence[int]:
    """Where a line is cut to fit ``width`` cells (wide characters take two)."""
    if s.isascii():
        return range(0, max(1, len(s)), width)
    starts = [0]
    cells = 0
    for pos, ch in enumerate(s):
        w = get_character_cell_size(ch)
        if cells + w > width:
            starts.append(pos)
            cells = 0
        cells += w
    return starts


class HexView(LineView):
    """Offset, hex and ASCII columns of a payload, 16 bytes a line, made as they scroll past."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = b""
        self.heading: list[Text] = []

    def show(self, data: bytes, heading: list[Text]) -> None:
        self.data = data
        self.heading = heading
        rows = (len(data) + render.HEX_WIDTH - 1) // render.HEX_WIDTH
        self.set_size(len(heading) + rows, 76)
        self.scroll_to(0, 0, animate=False, immediate=True)

    def get_line(self, y: int) -> Text:
        if y < len(self.heading):
            return self.heading[y]
        offset = (y - len(self.heading)) * render.HEX_WIDTH
        line = Text(render.hex_line(self.data, offset), no_wrap=True, end="")
        line.stylize(self.palette["muted"], 0, 8)
        line.stylize(self.palette["muted"], 60)
        return line
