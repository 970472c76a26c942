"""Output selection and writing: the filters of every printing command, text or JSON Lines.

Shared by `read` (and its parallel workers) and `live`; the renderers it drives
(text.py, jsonl.py) read Message and SessionSummary only.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
from collections.abc import Iterable
from typing import BinaryIO

from wsinspect.errors import WsinspectError
from wsinspect.messages import Message
from wsinspect.search import matches
from wsinspect.session import Event, SessionOpened, SessionSummary, SessionUpgraded, TlsUndecrypted

# In JSON written to a terminal, the characters that act on it or reorder and hide
# text, which JSON allows raw (orjson escapes only what it must, below U+0020): DEL,
# the C1 controls U+0080-U+009F (U+009B is CSI to some terminals), the Arabic letter
# mark U+061C, zero-width characters and bidi marks U+200B-U+200F, line and paragraph
# separators and bidi embeddings/overrides U+2028-U+202E, bidi isolates U+2066-U+2069
# and U+FEFF; matched in the UTF-8 that orjson writes (no byte of it can start
# inside another character).
_TERMINAL_UNSAFE = re.compile(
    rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf"
)
# Output is written once this much is buffered, whatever the packet: one packet can
# complete tens of thousands of records (a segment full of tiny frames), and memory
# must not follow it.
FLUSH_BYTES = 1 << 20


class OutputError(WsinspectError):
    """Standard output cannot be written (a full disk, a closed descriptor)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write output: {reason}")


def stdout_binary() -> BinaryIO:
    """Standard output as bytes; OutputError when it was closed (`>&-`)."""
    if sys.stdout is None:
        raise OutputError("standard output is closed")
    return sys.stdout.buffer


def write_output(out: BinaryIO, data: bytes) -> None:
    """Write ``data`` and flush it. A closed pipe raises BrokenPipeError (the reader
    went away: not an error); any other failure to write raises OutputError."""
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc.strerror or str(exc)) from None


class Printer:
    """Applies the filters and writes events as text lines or JSON Lines."""

    def __init__(self, args: argparse.Namespace, out: BinaryIO, ts_origin: float | None = None) -> None:
        from wsinspect import text

        self.args = args
        self.out = out
        self.json = args.json
        if self.json:
            # orjson only when JSON is wanted: it costs start-up time otherwise.
            from wsinspect import jsonl

            self.jsonl = jsonl
        self.sessions_wanted = set(args.session) if args.session else None
        self.opcodes = args.opcode
        self.grep = args.grep
        self.remaining = args.count
        # -q without filters or a count: messages need no look at all.
        self.wants_messages = not (
            args.quiet and args.count is None and args.session is None and args.opcode is None and args.grep is None
        )
        self.rows: list[tuple[int, str]] = []  # text mode prints the session table at the end
        self.tls_rows: list[str] = []  # and the TLS connections it could not decrypt after it
        tty = _isatty(out)
        color = args.color == "always" or (args.color == "auto" and tty)
        width = shutil.get_terminal_size().columns if tty else None
        self.text = text.TextWriter(text.Colors(color), text.TimeFormat(args.time_format, ts_origin), width)
        # JSON to a terminal: what could act on it is escaped (see _TERMINAL_UNSAFE);
        # files and pipes get orjson's bytes untouched.
        self.escape_json = self.json and tty
        self._buf: list[bytes] = []
        self._size = 0  # bytes in _buf
        self.printed = False  # whether any message line was written (text: the table's blank line)
        self.last_session = 0  # the highest session number seen: --session N beyond it is named
        self._display_setup(args, tty)

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def events(self, events: Iterable[Event]) -> None:
        if self.selection is not None or self.fields is not None:
            self._display_events(events)
            return
        every_message = self.wants_messages
        for ev in events:
            if ev.__class__ is Message:
                if every_message:
                    self._message(ev)
            elif isinstance(ev, SessionSummary):
                self.text.ended(ev.session)
                self.last_session = max(self.last_session, ev.session)
                if self.sessions_wanted is None or ev.session in self.sessions_wanted:
                    if self.json:
                        self.write([self.render_summary(ev)])
                    else:
                        self.rows.append((ev.session, self.text.session_row(ev)))
            elif isinstance(ev, SessionOpened):
                self.text.opened(ev.session, ev.client, ev.server)
            elif isinstance(ev, TlsUndecrypted):
                self._tls(ev)

    def _tls(self, ev: TlsUndecrypted) -> None:
        """A TLS connection not decrypted: a record of its own, or a line after the session table (not shown when
        --session picks sessions: it is none of them)."""
        if self.sessions_wanted is not None:
            return
        if self.json:
            self._buf.append(self.render_tls(ev))
        else:
            self.tls_rows.append(self.text.tls_row(ev))

    def render_tls(self, ev: TlsUndecrypted) -> bytes:
        """A TLS connection's JSON record."""
        return self.jsonl.dumps(self.jsonl.tls_record(ev))

    def selected(self, m: Message) -> bool:
        """Whether the message passes --opcode and --grep (filters on the message alone)."""
        if self.opcodes is not None and m.opcode not in self.opcodes:
            return False
        return self.grep is None or matches(self.grep, m)

    def render(self, m: Message) -> list[bytes]:
        """The output records of a message: its frames (--frames) and itself; in text,
        the message's line comes first and its frames' lines under it."""
        if self.fields is not None:
            return self._fields_message(m)
        if self.json:
            jsonl = self.jsonl
            records = [jsonl.dumps(jsonl.frame_record(m, f)) for f in m.frames] if self.args.frames else []
            records.append(jsonl.dumps(jsonl.message_record(m)))
            return records
        if self.args.frames:
            text = self.text
            return [text.message(m).encode("utf-8"), *(text.frame(m, f).encode("utf-8") for f in m.frames)]
        return [self.text.message(m).encode("utf-8")]

    def render_parts(self, m: Message) -> list[tuple[bytes, bytes]]:
        """render(), each record cut around its session number (read -j's workers:
        the parent puts the number it gives the session between the two parts)."""
        if self.json:
            jsonl = self.jsonl
            records = [jsonl.frame_record(m, f) for f in m.frames] if self.args.frames else []
            records.append(jsonl.message_record(m))
            return [jsonl.dumps_parts(r) for r in records]
        text = self.text
        parts = [text.message_parts(m)]
        if self.args.frames:
            parts += [text.frame_parts(m, f) for f in m.frames]
        return [(head.encode("utf-8"), tail.encode("utf-8")) for head, tail in parts]

    def summary_parts(self, s: SessionSummary) -> tuple[bytes, bytes]:
        """A session's JSON record around its number, as render_parts()."""
        return self.jsonl.dumps_parts(self.jsonl.session_record(s))

    def render_summary(self, s: SessionSummary) -> bytes:
        """A session's JSON record."""
        return self.jsonl.dumps(self.jsonl.session_record(s))

    def _message(self, m: Message) -> None:
        if self.done:
            return
        if self.sessions_wanted is not None and m.session not in self.sessions_wanted:
            return
        if not self.selected(m):
            return
        if self.remaining is not None:
            self.remaining -= 1
        if not self.args.quiet:
            self.write(self.render(m))

    def write(self, records: list[bytes]) -> None:
        """Write rendered records: buffered, and flushed once FLUSH_BYTES are."""
        self._buf.extend(records)
        size = self._size
        for record in records:
            size += len(record)
        self.printed = self.printed or size > self._size
        self._size = size
        if size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (see write_output for the errors)."""
        if self._buf:
            data = b"".join(self._buf)
            self._buf = []
            self._size = 0
            if self.escape_json and _TERMINAL_UNSAFE.search(data) is not None:
                data = _TERMINAL_UNSAFE.sub(_escape_unsafe, data)
            write_output(self.out, data)

    def close(self) -> list[str]:
        """Write the session table (text) and what is buffered; return warnings for
        stderr: sessions asked for with --session that the capture does not have."""
        if not self.json and self.fields is None:
            table = self.text.table([row for _, row in sorted(self.rows)], after_lines=self.printed)
            self._buf.append(table.encode("utf-8"))
            if self.tls_rows:
                self._buf.append(self.text.tls_table(self.tls_rows).encode("utf-8"))
        self.flush()
        missing = sorted(n for n in self.sessions_wanted or () if n > self.last_session)
        if not missing:
            return []
        which = ", ".join(str(n) for n in missing)
        return [f"no session {which}: the capture has {self.last_session} WebSocket session(s)"]

    # -- display filter (-Y) and fields output (-T fields), issue 18 -------------------

    def _display_setup(self, args: argparse.Namespace, tty: bool) -> None:
        """-Y and -T fields, compiled by the command into args (options.display_filter,
        options.fields_writer) before the capture is opened."""
        from wsinspect.fields import FieldsWriter
        from wsinspect.filter import Filter, Selection

        flt: Filter | None = getattr(args, "compiled_filter", None)
        # Held messages (a filter on a session's end) are returned by the Selection
        # just before their session's record: output is grouped at each session's end.
        self.selection = Selection(flt) if flt is not None else None
        self.fields: FieldsWriter | None = getattr(args, "fields_writer", None)
        if flt is not None:
            # A filter decides sessions by their messages too (filter.Selection), -q or not.
            self.wants_messages = True
        self._fields_tty = tty
        # -T fields with session.* fields: each session's values, and (for fields only
        # known at its end) its message lines until then.
        self._opened: dict[int, SessionOpened] = {}
        self._values: dict[int, dict[str, object]] = {}
        self._held_lines: dict[int, list[Message]] = {}
        if self.fields is not None and self.fields.header() is not None:
            self._buf.append(self._fields_line(self.fields.header() or ""))

    def _display_events(self, events: Iterable[Event]) -> None:
        evs = list(events)
        shown = self.selection.feed(evs) if self.selection is not None else evs
        fields = self.fields
        every_message = self.wants_messages
        for ev in shown:
            if ev.__class__ is Message:
                if every_message:
                    self._message(ev)
            elif isinstance(ev, SessionSummary):
                if self.sessions_wanted is not None and ev.session not in self.sessions_wanted:
                    continue
                if fields is None:
                    if self.json:
                        self._buf.append(self.render_summary(ev))
                    else:
                        self.rows.append((ev.session, self.text.session_row(ev)))
                elif fields.per_session:
                    from wsinspect.filter import session_values

                    self._buf.append(self._fields_line(fields.session(session_values(ev))))
            elif isinstance(ev, SessionOpened):
                self.text.opened(ev.session, ev.client, ev.server)
                if fields is not None and fields.needs_session:
                    from wsinspect.filter import opened_values

                    self._opened[ev.session] = ev
                    self._values[ev.session] = opened_values(ev, None)
            elif isinstance(ev, SessionUpgraded) and ev.session in self._opened:
                from wsinspect.filter import opened_values

                self._values[ev.session] = opened_values(self._opened[ev.session], ev.handshake)
        # Every session that ended is forgotten, whether the filter showed it or not.
        for ev in evs:
            if isinstance(ev, SessionSummary):
                self.text.ended(ev.session)
                self._opened.pop(ev.session, None)
                self._values.pop(ev.session, None)
                held = self._held_lines.pop(ev.session, None)
                if held and fields is not None:
                    from wsinspect.filter import session_values

                    values = session_values(ev)
                    self._buf.extend(self._fields_line(fields.message(m, values)) for m in held)

    def _fields_message(self, m: Message) -> list[bytes]:
        fields = self.fields
        assert fields is not None
        if fields.per_session:
            return []  # session fields only: a line per session record
        if fields.needs_end:
            self._held_lines.setdefault(m.session, []).append(m)
            return []
        return [self._fields_line(fields.message(m, self._values.get(m.session)))]

    def _fields_line(self, line: str) -> bytes:
        # The writer escapes what would break a line; on a terminal, what could act on
        # it is shown escaped too (text.sanitize, as the text output does).
        if self._fields_tty and not line[:-1].isprintable():
            from wsinspect.text import sanitize

            sep = self.fields.format.separator if self.fields is not None else "\t"
            line = "".join(ch if ch.isprintable() or ch == sep else sanitize(ch) for ch in line[:-1]) + "\n"
        return line.encode("utf-8")


def _escape_unsafe(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match[0].decode())


def _isatty(out: BinaryIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False
