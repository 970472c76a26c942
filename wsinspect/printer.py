"""Output selection and writing: the filters of every printing command, text or JSON Lines.

Shared by `read` (and its parallel workers) and `live`; the renderers it drives
(text.py, jsonl.py) read Message and SessionSummary only.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Iterable
from typing import BinaryIO

from wsinspect.errors import WsinspectError
from wsinspect.messages import Message
from wsinspect.session import Event, SessionOpened, SessionSummary, TlsUndecrypted

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
        self.text = text.TextWriter(text.Colors(color), text.TimeFormat(args.time_format, ts_origin))
        # JSON to a terminal: what could act on it is escaped (see _TERMINAL_UNSAFE);
        # files and pipes get orjson's bytes untouched.
        self.escape_json = self.json and tty
        self._buf: list[bytes] = []

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def events(self, events: Iterable[Event]) -> None:
        every_message = self.wants_messages
        for ev in events:
            if ev.__class__ is Message:
                if every_message:
                    self._message(ev)
            elif isinstance(ev, SessionSummary):
                self.text.ended(ev.session)
                if self.sessions_wanted is None or ev.session in self.sessions_wanted:
                    if self.json:
                        self._buf.append(self.render_summary(ev))
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
        return self.grep is None or (m.text is not None and self.grep.search(m.text) is not None)

    def render(self, m: Message) -> list[bytes]:
        """The output records of a message: its frames (--frames) and itself; in text,
        the message's line comes first and its frames' lines under it."""
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
            self._buf.extend(self.render(m))

    def write(self, records: list[bytes]) -> None:
        """Write rendered records (buffered until flush)."""
        self._buf.extend(records)

    def flush(self) -> None:
        """Write what is buffered (see write_output for the errors)."""
        if self._buf:
            data = b"".join(self._buf)
            self._buf = []
            if self.escape_json and _TERMINAL_UNSAFE.search(data) is not None:
                data = _TERMINAL_UNSAFE.sub(_escape_unsafe, data)
            write_output(self.out, data)

    def close(self) -> None:
        if not self.json:
            self._buf.append(self.text.table([row for _, row in sorted(self.rows)]).encode("utf-8"))
            if self.tls_rows:
                self._buf.append(self.text.tls_table(self.tls_rows).encode("utf-8"))
        self.flush()


def _escape_unsafe(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match[0].decode())


def _isatty(out: BinaryIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False
