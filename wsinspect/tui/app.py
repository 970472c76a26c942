"""The Textual app: sessions (top), messages of the selected one (middle), detail (bottom).

A thread worker drives the Decoder over the source and posts a batch of results about
every 0.1 s; the UI thread only appends numbers to arrays and repaints what is visible.
Searching, filtering, exporting and loading a message's detail run in thread workers
too, so the interface never waits for the capture.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar, overload

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, TabbedContent, TabPane, Tabs
from textual.worker import get_current_worker

from wsinspect import filter as display_filter
from wsinspect import jsonl
from wsinspect.messages import Message as WsMessage
from wsinspect.session import Options, SessionOpened, SessionSummary, TlsUndecrypted
from wsinspect.tui import render
from wsinspect.tui.render import SessionInfo, plural
from wsinspect.tui.screens import (
    ExportScreen,
    FilterScreen,
    HelpScreen,
    SearchScreen,
    StatsScreen,
    compile_pattern,
)
from wsinspect.tui.store import (
    MAX_PENDING_BATCHES,
    Batch,
    Decoder,
    MessageFilter,
    MessageStore,
    Source,
    Spill,
    search,
)
from wsinspect.tui.widgets import (
    MAX_MATCHES,
    HexView,
    Layout,
    LineView,
    Match,
    MessageList,
    SessionList,
    TextView,
    find_matches,
    wrap,
)

TABS = ("payload", "hex", "frames", "handshake", "issues")
# How often the screen shows what the decoder found (a batch arrives every 0.1 s).
REFRESH_INTERVAL = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Decoded(Message):
    """A batch from the decode thread."""

    def __init__(self, batch: Batch) -> None:
        super().__init__()
        self.batch = batch


class AllMessages(Sequence[int]):
    """Every message so far, in capture order: the view of all sessions, growing with the store."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        n = len(self.store)
        if isinstance(i, slice):
            return range(n)[i]
        if not -n <= i < n:
            raise IndexError(i)
        return i % n

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.store)))


class WsinspectApp(App[None]):
    """Browse the WebSocket sessions and messages from ``source``."""

    CSS_PATH = "wsinspect.tcss"
    TITLE = "wsinspect"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # Textual only hints at q for Ctrl+C; here it quits, as it stops `wsinspect live`.
        Binding("ctrl+c", "quit", "Quit", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "search", "Search"),
        Binding("n", "search_next(1)", "Next", show=False),
        Binding("N", "search_next(-1)", "Previous", show=False),
        Binding("f", "filter", "Filter"),
        Binding("e", "export", "Export"),
        Binding("c", "copy", "Copy"),
        Binding("S", "stats", "Stats"),
        Binding("a", "toggle_all", "All sessions", show=False),
        Binding("z", "zoom", "Zoom", show=False),
        Binding("escape", "back_pane", "Back", show=False),
        *(Binding(str(n), f"tab('{tab}')", tab.capitalize(), show=False) for n, tab in enumerate(TABS, 1)),
    ]

    def __init__(
        self,
        source: Source,
        *,
        title: str = "wsinspect",
        live: bool = False,
        options: Options | None = None,
        sessions: set[int] | None = None,
        message_filter: MessageFilter | None = None,
        count: int | None = None,
    ) -> None:
        """The app over ``source`` (a callable returning an iterable of RawPacket, or
        None while a live capture waits). ``live``: follow the tail, all sessions'
        messages; ``sessions``: the numbers to keep; ``count``: stop reading the
        source after that many messages (of ``message_filter``), as -c does."""
        super().__init__()
        self.source = source
        self.title = title
        self.live = live
        self.spill = Spill()
        self.store = MessageStore(self.spill)
        self.sessions: dict[int, SessionInfo] = {}
        self.undecrypted: list[TlsUndecrypted] = []  # TLS connections the key log did not open
        self.filter = message_filter or MessageFilter()
        self.filter.session_values = self._session_values
        # Session values for the display filter, by session: (the summary they are from, values).
        self._values: dict[int, tuple[SessionSummary | None, dict[str, Any]]] = {}
        # -c counts the messages of the starting filter, the ones the view shows.
        counted = self.filter.accepts if self.filter.active else None
        self.decoder = Decoder(self.spill, options, sessions, count, counted, live)
        self.all_sessions = live
        self.scope: int | None = None  # the selected session
        self.base_view: Sequence[int] = array("I")
        self.view: Sequence[int] = self.base_view
        self._filtered_upto: int | None = None  # base_view messages already filtered into view
        self._generation = 0  # bumped whenever the view changes: stale worker results are dropped
        self.search_pattern: re.Pattern[str] | None = None
        # (message, step) a search moved to: its detail opens at the first (or last) match.
        self._jump: tuple[int, int] | None = None
        self.search_query: tuple[str, bool] = ("", False)
        self.detail: WsMessage | None = None
        self.done = False
        self.packets = 0
        self.bytes_read = 0
        self.origin: float | None = None
        self.busy = ""  # what a worker is doing, for the status line
        self._slots = threading.Semaphore(MAX_PENDING_BATCHES)
        # Thread workers using the store (see _reading): the spill file outlives them.
        self._users = 0
        self._users_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        # What batches brought since the screen was last refreshed.
        self._new: list[SessionInfo] = []
        self._changed: set[int] = set()
        self._described: set[int] = set()  # sessions whose handshake or summary arrived
        self._tls_news = False  # undecrypted TLS connections arrived: the Handshake tab lists them
        self._first = True  # nothing shown yet: refresh at once
        self._shown_messages = 0
        self._shown_done = False
        self._shown_dropped = 0
        self.table = SessionList(self.sessions, id="sessions")
        self.messages_pane = Vertical(id="messages-pane")
        self.messages = MessageList(self.store, id="messages")
        self.messages.follow = self.messages.resume_at_end = live
        self.detail_tabs = TabbedContent(id="detail")
        self.payload_view = TextView(id="payload")
        self.hex_view = HexView(id="hex")
        self.frames_view = TextView(id="frames")
        self.handshake_view = TextView(id="handshake")
        self.issues_view = TextView(id="issues")
        # Follow-tail is for live captures: shown in the footer there, a hidden key elsewhere.
        self.bind("s", "follow", description="Follow", show=live)
        # The actions of the keys above: they belong to the main screen, not to the dialogs over it.
        self._main_actions = frozenset(
            {b.action.partition("(")[0] for b in self.BINDINGS if isinstance(b, Binding)} | {"follow"}
        )

    # -- layout -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # The widgets are kept as attributes: queries start from the screen on top,
        # which is a dialog at times, while batches keep arriving.
        yield self.table
        with self.messages_pane:
            yield self.messages
        with self.detail_tabs:
            with TabPane("Payload", id="tab-payload"):
                yield self.payload_view
            with TabPane("Hex", id="tab-hex"):
                yield self.hex_view
            with TabPane("Frames", id="tab-frames"):
                yield self.frames_view
            with TabPane("Handshake", id="tab-handshake"):
                yield self.handshake_view
            with TabPane("Issues", id="tab-issues"):
                yield self.issues_view
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        # Tab goes from the messages straight into the detail's text, where the arrows
        # and PgDn scroll: the tab strip is switched with 1-5 (or a click), not focused.
        self.detail_tabs.query_one(Tabs).can_focus = False
        self._show_view()
        table.focus()
        self.set_interval(REFRESH_INTERVAL, self._refresh_screen)
        self.run_worker(self._decode, name="decode", group="decode", thread=True)
        # SIGTERM, or SIGINT sent with kill (the keyboard's Ctrl+C is a key here): quit
        # as q does, so that the terminal is restored and a live capture stops cleanly.
        with suppress(NotImplementedError, RuntimeError, ValueError):  # not in the main thread, or no signals
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self.exit)

    async def on_unmount(self) -> None:
        # Thread workers cannot be stopped, only asked to: the spill file stays open
        # until every one that reads it has returned.
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        self.workers.cancel_all()
        deadline = time.monotonic() + 10
        while not self._idle.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
        self.spill.close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Held by each thread worker while it uses the store."""
        with self._users_lock:
            self._users += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._users_lock:
                self._users -= 1
                if not self._users:
                    self._idle.set()

    def _to_ui(self, callback: Callable[..., object], *args: Any) -> None:
        """From a thread worker: run ``callback`` in the UI thread, unless the worker
        was superseded or the app is closing."""
        if get_current_worker().is_cancelled:
            return
        with suppress(RuntimeError):  # the app stopped in the meantime
            self.call_from_thread(self._if_running, callback, *args)

    def _note(self, message: str, severity: SeverityLevel = "information", timeout: float | None = None) -> None:
        """A notification; never markup, since it may quote captured or typed text."""
        self.notify(message, severity=severity, timeout=timeout, markup=False)

    def _if_running(self, callback: Callable[..., object], *args: Any) -> None:
        if self.is_running:
            callback(*args)

    # -- decoding -----------------------------------------------------------

    def _decode(self) -> None:
        """Thread worker: the decode loop, batches posted to the UI."""
        worker = get_current_worker()
        cancelled = worker.cancelled_event

        def deliver(batch: Batch) -> bool:
            # At most a few batches in flight: a busy UI slows the decoder down, not the other way round.
            while not self._slots.acquire(timeout=0.2):
                if cancelled.is_set():
                    return False
            if cancelled.is_set():
                return False
            return self.post_message(Decoded(batch))

        with self._reading():
            self.decoder.run(self.source, deliver, cancelled)

    def on_decoded(self, event: Decoded) -> None:
        """Take in a batch: numbers into arrays now, the screen at the next refresh."""
        self._slots.release()
        batch = event.batch
        self.store.extend(batch.columns)
        self.packets = batch.packets
        self.bytes_read = batch.bytes_read
        if self.origin is None and batch.first_ts is not None:
            # One clock for the whole TUI, read's: seconds since the capture's first packet.
            self.origin = self.messages.origin = self.table.origin = batch.first_ts
        for opened in batch.opened:
            self._new.append(self._open(opened))
        for upgraded in batch.upgraded:
            # Host, path, status and the accept check, long before the session ends.
            info = self.sessions.get(upgraded.session)
            if info is not None:
                info.upgrade = upgraded.handshake
                self._changed.add(upgraded.session)
                self._described.add(upgraded.session)
        for number, delta in batch.sessions.items():
            info = self.sessions.get(number)
            if info is None:
                continue
            info.indices.extend(delta.indices)
            info.messages[0] += delta.messages[0]
            info.messages[1] += delta.messages[1]
            info.bytes[0] += delta.bytes[0]
            info.bytes[1] += delta.bytes[1]
            info.issues += delta.issues
            info.end = max(info.end, delta.last_ts)
            self._changed.add(number)
        for summary in batch.summaries:
            info = self.sessions.get(summary.session)
            if info is None:
                continue
            info.summary = summary
            info.start, info.end = summary.start, summary.end
            self._changed.add(summary.session)
            self._described.add(summary.session)
        if batch.tls:
            self.undecrypted.extend(batch.tls)
            self._tls_news = True
        if batch.done:
            self.done = True
            for warning in batch.warnings:
                self._note(warning, "warning", 10)
            if batch.error:
                self._note(batch.error, "error", 30)
        if self._first or batch.done:
            self._refresh_screen()

    def _refresh_screen(self) -> None:
        """Show what the batches since the last refresh brought (a timer calls this a
        few times a second: the screen follows the decoder without redrawing per batch)."""
        new, changed, described = self._new, self._changed, self._described
        dropped = getattr(self.source, "dropped", 0)
        if not (
            new
            or changed
            or len(self.store) != self._shown_messages
            or self.done != self._shown_done
            or dropped != self._shown_dropped
            or self._tls_news
        ):
            return
        self._new, self._changed, self._described = [], set(), set()
        self._first = not self.sessions
        self.table.update([info.number for info in new], changed)
        if self.scope is None and self.sessions:
            self._select_session(min(self.sessions))
        self._grow_view()
        self._shown_messages = len(self.store)
        self._shown_done = self.done
        self._shown_dropped = dropped
        shown = self.detail.session if self.detail is not None else self.scope
        if shown in described or self._tls_news:
            # Its handshake and session issues are known now (or the list of undecrypted TLS grew).
            self._tls_news = False
            self.messages.reannounce()
        self._update_status()

    def _open(self, opened: SessionOpened) -> SessionInfo:
        info = SessionInfo(opened.session, opened.client, opened.server, opened.ts, opened.ts, [0, 0], [0, 0])
        self.sessions[opened.session] = info
        return info

    # -- the sessions list ----------------------------------------------------

    def on_session_list_highlighted(self, event: SessionList.Highlighted) -> None:
        if event.number != self.scope:
            self._select_session(event.number)

    def on_session_list_selected(self, event: SessionList.Selected) -> None:
        self.messages.focus()

    def _select_session(self, number: int) -> None:
        self.scope = number
        if self.table.selected != number:
            self.table.select(number)
        if not self.all_sessions:
            self._show_view()
        elif self.detail is None:
            self.messages.reannounce()

    # -- the messages view --------------------------------------------------

    def _show_view(self, select: int | None = None) -> None:
        """Show the messages of the scope (a session, or all), filtered."""
        self._generation += 1
        if self.all_sessions:
            base: Sequence[int] = AllMessages(self.store)
        elif self.scope in self.sessions:
            base = self.sessions[self.scope].indices
        else:
            base = array("I")
        self.base_view = base
        messages = self.messages
        messages.show_session = self.all_sessions
        if not self.filter.active:
            self.view = base
            self._filtered_upto = None
            messages.set_view(base, select)
        else:
            self.view = array("I")
            self._filtered_upto = None
            messages.set_view(self.view)
            self.busy = "filtering…"
            self._run_filter(self._generation, base, len(base), self.filter, select)
        self._update_header()
        self._update_status()

    @work(thread=True, exclusive=True, group="filter")
    def _run_filter(self, generation: int, base: Sequence[int], n: int, flt: MessageFilter, select: int | None) -> None:
        worker = get_current_worker()
        indices: Sequence[int] = range(n) if isinstance(base, AllMessages) else base[:n]
        with self._reading():
            result = flt.select(self.store, indices, worker.cancelled_event)
        if result is not None:
            self._to_ui(self._filtered, generation, n, result, select)

    def _filtered(self, generation: int, n: int, result: array[int], select: int | None) -> None:
        if generation != self._generation:
            return
        base = self.base_view
        matches = self.filter.matches
        # Messages that arrived while the filter ran.
        for k in range(n, len(base)):
            if matches(self.store, base[k]):
                result.append(base[k])
        self.view = result
        self._filtered_upto = len(base)
        self.busy = ""
        self.messages.set_view(result, select)
        self._update_header()
        self._update_status()

    def _grow_view(self) -> None:
        if len(self.base_view) == self.messages.line_count and self._filtered_upto in (None, len(self.base_view)):
            return
        if self.filter.active:
            if self._filtered_upto is None:
                return  # the filter worker will pick them up
            view = self.view
            assert isinstance(view, array)
            base = self.base_view
            matches = self.filter.matches
            for k in range(self._filtered_upto, len(base)):
                if matches(self.store, base[k]):
                    view.append(base[k])
            self._filtered_upto = len(base)
        self.messages.grew()
        self._update_header()

    def on_message_list_highlighted(self, event: MessageList.Highlighted) -> None:
        if self.is_running:  # not while closing
            self._load_detail(event.index, self.payload_view.palette, self.payload_view.wrap_width, self.search_pattern)

    def on_message_list_opened(self, event: MessageList.Opened) -> None:
        pane = self.detail_tabs.active_pane
        if pane is not None:
            pane.query_one(LineView).focus()

    @work(thread=True, exclusive=True, group="detail")
    def _load_detail(
        self, index: int | None, palette: dict[str, Any], width: int, pattern: re.Pattern[str] | None
    ) -> None:
        """Thread worker: read the message back, lay out its payload and find the
        search's matches in it (a big one takes time)."""
        if index is None:
            self._to_ui(self._show_detail, None, None, None, None, [])
            return
        with self._reading():
            m = self.store.message(index)
        payload = render.payload_view(m, palette)
        layout = wrap(payload.heading, payload.lines, width)
        found = find_matches(payload.lines, pattern) if pattern is not None else []
        self._to_ui(self._show_detail, index, m, payload, layout, found)

    def _show_detail(
        self,
        index: int | None,
        m: WsMessage | None,
        payload: render.Payload | None,
        layout: Layout | None,
        found: list[Match],
    ) -> None:
        self.detail = m
        palette = self.payload_view.palette
        info = self.sessions.get(m.session if m is not None else self.scope or -1)
        payload_view = self.payload_view
        hex_view = self.hex_view
        if m is None or payload is None:
            empty = "no message selected" if self.view else "no messages here: the Handshake tab (4) shows the upgrade"
            hint = Text(empty, palette["muted"])
            payload_view.show([hint], [])
            hex_view.show(b"", [hint])
            self.frames_view.show([hint], [])
        else:
            payload_view.show(
                payload.heading,
                payload.lines,
                json=payload.json,
                pattern=self.search_pattern,
                layout=layout,
                matches=found,
            )
            jump, self._jump = self._jump, None
            if jump is not None and jump[0] == index and found:
                # A search brought us here: its first match (its last, going back) in view.
                payload_view.show_match(0 if jump[1] > 0 else len(found) - 1)
            self._update_header()
            hex_view.show(m.payload, [render.describe(m, palette)])
            self.frames_view.show(render.frames_lines(m, palette), [])
        handshake = render.handshake_lines(info, palette) + render.undecrypted_lines(self.undecrypted, palette)
        self.handshake_view.show(handshake, [])
        self.issues_view.show(render.issues_lines(m, info, palette), [])
        issues = (m is not None and bool(m.issues)) or bool(info and render.session_issues(info))
        tab = self.detail_tabs.get_tab("tab-issues")
        tab.label = Text("Issues !" if issues else "Issues")

    # -- status and header --------------------------------------------------

    def _update_status(self) -> None:
        source_size = getattr(self.source, "size", None)
        if self.done:
            state = "capture stopped" if self.live else "done"
        elif self.live:
            state = "live"
        elif source_size:
            state = f"decoding {min(99, self.bytes_read * 100 // max(1, source_size))}%"
        else:
            state = "decoding…"
        n_sessions = len(self.sessions)
        parts = [
            self.title,
            f"{self.packets:,} packets",
            plural(n_sessions, "session"),
            plural(len(self.store), "message"),
            state,
        ]
        if self.undecrypted:
            parts.append(f"{len(self.undecrypted)} TLS not decrypted (--tls-keylog FILE; Handshake tab)")
        dropped = getattr(self.source, "dropped", 0)
        if dropped:
            parts.append(f"{dropped:,} packets dropped (decoder behind)")
        if self.busy:
            parts.append(self.busy)
        # Text, not markup: the title and a search may hold brackets.
        self.table.border_title = Text(" · ".join(parts))

    def _update_header(self) -> None:
        if self.all_sessions:
            scope = "all sessions"
        elif self.scope is not None:
            scope = f"session #{self.scope}"
        else:
            scope = "no session yet"
        parts = [f"Messages of {scope}: {len(self.view):,}"]
        if self.filter.active:
            parts.append(f"filter {self.filter.describe()}")
        if self.search_pattern is not None:
            search = f"search {self._search_label()}"
            current, found = self.payload_view.current, self.payload_view.matches
            if current is not None:
                search += f" {current + 1}/{len(found)}{'+' * (len(found) >= MAX_MATCHES)}"
            parts.append(search)
        if self.follow:
            parts.append("following")
        elif self.live:
            parts.append("paused (End: follow)")
        self.messages_pane.border_title = Text(" · ".join(parts))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # The pane in use gets the room (see the .tcss file).
        widget = event.widget
        screen = self.screen
        screen.set_class(any(a.id == "detail" for a in widget.ancestors_with_self), "-detail-focus")
        screen.set_class(widget.id == "sessions", "-sessions-focus")

    # -- actions --------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only the main screen's keys are off in a dialog: Tab and Shift+Tab are app
        # actions too (app.focus_next / focus_previous), and a dialog needs them.
        return not (action in self._main_actions and isinstance(self.screen, ModalScreen))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_stats(self) -> None:
        self.push_screen(StatsScreen(self._stats, lambda: self.done))

    def _stats(self) -> tuple[str, dict[str, Any]]:
        """What the Stats screen shows, read while the decoder may still be adding to it."""
        decoder = self.decoder
        with decoder.stats_lock:
            return decoder.stats.render(), decoder.stats.to_json()["timeline"]

    def action_tab(self, tab: str) -> None:
        detail = self.detail_tabs
        in_detail = self.focused is None or detail in self.focused.ancestors_with_self
        detail.active = f"tab-{tab}"
        if in_detail:
            # The focused view was in the pane just hidden: follow it to the new one.
            detail.get_pane(f"tab-{tab}").query_one(LineView).focus()

    def action_back_pane(self) -> None:
        focused = self.focused
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif focused is self.messages:
            self.table.focus()
        elif focused is not self.table:
            self.messages.focus()

    def action_zoom(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif self.focused is not None:
            screen.maximize(self.focused)

    def action_toggle_all(self) -> None:
        self.all_sessions = not self.all_sessions
        self._show_view(self.messages.selected)
        self._note("all sessions' messages" if self.all_sessions else f"messages of session #{self.scope}")

    @property
    def follow(self) -> bool:
        """Following the tail: the cursor on each new last message."""
        return self.messages.follow

    def action_follow(self) -> None:
        self.messages.set_follow(not self.follow)

    def on_message_list_follow_changed(self, event: MessageList.FollowChanged) -> None:
        self._update_header()

    def action_search(self) -> None:
        text, regex = self.search_query
        self.push_screen(SearchScreen(text, regex), self._searched)

    def _search_label(self) -> str:
        """The search as typed: /regex/ or 'text' (no repr: backslashes stay single)."""
        text, regex = self.search_query
        return f"/{text}/" if regex else f"'{text}'"

    def _searched(self, result: tuple[str, bool] | None) -> None:
        if not result or not result[0]:
            return
        try:
            pattern = compile_pattern(*result)
        except re.error as exc:
            self._note(f"bad regular expression: {exc}", "error")
            return
        self.search_query = result
        self.search_pattern = pattern
        self.payload_view.mark(pattern)
        self._update_header()
        self._run_search(1, include_current=True)

    def action_search_next(self, step: int) -> None:
        """n / N: the next match in the message shown, then in the next messages."""
        if self.search_pattern is None:
            self.action_search()
            return
        if self.payload_view.step_match(step):
            self.detail_tabs.active = "tab-payload"
            self._update_header()
            return
        self._run_search(step)

    def _run_search(self, step: int, include_current: bool = False) -> None:
        if not self.view or self.search_pattern is None:
            self._note("nothing to search", "warning")
            return
        start = self.messages.cursor - step if include_current else self.messages.cursor
        self.busy = "searching…"
        self._update_status()
        self._search_worker(self._generation, self.view, len(self.view), self.search_pattern, start, step)

    @work(thread=True, exclusive=True, group="search")
    def _search_worker(
        self, generation: int, view: Sequence[int], n: int, pattern: re.Pattern[str], start: int, step: int
    ) -> None:
        worker = get_current_worker()
        indices = range(n) if isinstance(view, AllMessages) else view[:n]
        with self._reading():
            pos = search(self.store, indices, pattern, start % n, step, worker.cancelled_event)
        self._to_ui(self._found, generation, pos, step)

    def _found(self, generation: int, pos: int | None, step: int) -> None:
        self.busy = ""
        self._update_status()
        if generation != self._generation:
            return
        if pos is None:
            where = "the listed messages" if self.all_sessions else "this session (a: all sessions)"
            self._note(f"{self._search_label()} not found in {where}", "warning")
            return
        self._jump = (self.view[pos], step)
        if pos == self.messages.cursor:
            self.messages.reannounce()  # its detail again, with the matches
        else:
            self.messages.move_to(pos)
        self.detail_tabs.active = "tab-payload"

    def action_filter(self) -> None:
        self.push_screen(FilterScreen(self.filter), self._filter_chosen)

    def _filter_chosen(self, flt: MessageFilter | None) -> None:
        if flt is None:
            return
        flt.session_values = self._session_values
        self.filter = flt
        self._show_view(self.messages.selected)

    def _session_values(self, number: int) -> dict[str, Any] | None:
        """A display filter's session.* values for session ``number``: from its summary
        once it has ended, else what is known while it is open (no end-only fields).
        Called from the filter worker too: it only reads the sessions."""
        info = self.sessions.get(number)
        if info is None:
            return None
        cached = self._values.get(number)
        if cached is not None and cached[0] is info.summary:
            return cached[1]
        if info.summary is not None:
            values = display_filter.session_values(info.summary)
        else:
            opened = SessionOpened(info.number, info.client, info.server, info.start)
            values = display_filter.opened_values(opened, info.handshake)
        self._values[number] = (info.summary, values)
        return values

    def action_copy(self) -> None:
        m = self.detail
        if m is None:
            self._note("no message selected", "warning")
            return
        if m.text is not None:
            self.copy_to_clipboard(m.text)
            self._note(f"copied {len(m.text):,} characters of text")
        else:
            self.copy_to_clipboard(m.payload.hex())
            self._note(f"copied {len(m.payload):,} bytes as hex")

    def action_export(self) -> None:
        if self.filter.active or self.all_sessions:
            what = f"the {plural(len(self.view), 'listed message')}"
            path = "wsinspect-messages.jsonl"
            summary = None
        elif self.scope is not None:
            what = f"session #{self.scope}"
            path = f"wsinspect-session-{self.scope}.jsonl"
            summary = self.sessions[self.scope].summary
        else:
            self._note("nothing to export yet", "warning")
            return
        view = self.view
        indices = array("I", range(len(view))) if isinstance(view, AllMessages) else array("I", view)

        def chosen(path: str | None) -> None:
            if path:
                self._export(os.path.expanduser(path), indices, summary)

        self.push_screen(ExportScreen(what, path), chosen)

    @work(thread=True, group="export")
    def _export(self, path: str, indices: array[int], summary: Any) -> None:
        """Write the messages (and the session, as `read --json` does at its end)."""
        store = self.store
        try:
            with self._reading(), open(path, "wb") as f:
                for start in range(0, len(indices), 1024):
                    f.write(
                        b"".join(
                            jsonl.dumps(jsonl.message_record(store.message(i))) for i in indices[start : start + 1024]
                        )
                    )
                if summary is not None:
                    f.write(jsonl.dumps(jsonl.session_record(summary)))
        except OSError as exc:
            self._to_ui(self._note, f"export failed: {exc.strerror or exc}", "error")
            return
        note = f"exported {plural(len(indices), 'message')} to {path}"
        if not self.done:
            note += " (decoding was still running)"
        self._to_ui(self._note, note)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Search messages", "Find text in messages and close reasons (/, then n / N)", self.action_search
        )
        yield SystemCommand("Filter messages", "By direction, opcode, text or regex, issues (f)", self.action_filter)
        yield SystemCommand(
            "Clear the filter", "Show every message again", lambda: self._filter_chosen(MessageFilter())
        )
        yield SystemCommand("Export to JSON Lines", "The session, or the listed messages (e)", self.action_export)
        yield SystemCommand("Copy payload", "The selected message's payload (c)", self.action_copy)
        yield SystemCommand("Follow tail", "Jump to new messages as they arrive (s)", self.action_follow)
        yield SystemCommand(
            "All sessions", "All sessions' messages, or the selected session's (a)", self.action_toggle_all
        )
        yield SystemCommand("Sort sessions", "By the next column (o; O reverses)", self.table.action_sort_next)
        yield SystemCommand("Keys", "Every key, explained (?)", self.action_help)

    def watch_theme(self, theme: str) -> None:
        self.call_after_refresh(self._restyle)

    def _restyle(self) -> None:
        """Texts built with the old theme's styles are built again."""
        if self.screen_stack and self.sessions:
            self.table.restyle()
            self.messages.reannounce()


def run_tui(app: WsinspectApp) -> int:
    """Run the TUI until the user quits; returns the exit status."""
    app.run()
    return app.return_code or 0
