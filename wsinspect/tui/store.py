"""Decoded messages kept out of memory: a compact index in arrays, payloads in a spill file.

A capture may hold a million messages, so the TUI holds neither a million Message
objects nor a widget per message. The decode worker writes each message's payload and
details (frames, issues, close code) to an unnamed temporary file and keeps about 50
bytes of numbers per message in arrays; views read back only what is on screen, and a
Message is rebuilt on demand, equal to the decoded one except that its frames carry no
payload bytes (the message payload is kept whole).

Nothing here imports Textual: the decode loop and the store are tested on their own.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import orjson

from wsinspect.capture import CaptureReader, open_capture
from wsinspect.errors import WsinspectError
from wsinspect.filter import Filter
from wsinspect.frames import Frame
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.options import display_filter
from wsinspect.packet import RawPacket
from wsinspect.search import matches, search_text
from wsinspect.session import Inspector, Options, SessionOpened, SessionSummary, SessionUpgraded, TlsUndecrypted
from wsinspect.stats import Stats
from wsinspect.tls import KeyLog
from wsinspect.vocab import KNOWN_OPCODES, Direction, opcode_label

_S2C = Direction.S2C  # looked up once: an enum member's lookup is slow (vocab)
# Per-message flag bits.
F_S2C = 1
F_MASKED = 2
F_COMPRESSED = 4
F_COMPLETE = 8
F_ISSUES = 16
F_TEXT = 32

# How long the decode loop gathers results before handing them to the UI: often
# enough to look live, rarely enough that the UI does one update per batch, not per event.
BATCH_INTERVAL = 0.1
# Batches handed over but not yet applied by the UI; the decoder waits beyond this.
MAX_PENDING_BATCHES = 4

# Issues by their JSON value, to read records back.
ISSUES = {issue.value: issue for issue in Issue}

Source = Callable[[], Iterable[RawPacket | None]]
"""Where packets come from. Called once, in the decode thread. A live source may yield
None now and then while no packet arrives, so that the loop can notice it must stop; the
iterable's ``close()`` (if any) is called at the end, and its ``warnings`` (if any)
are shown. The source's own ``close()`` (if any) is called when the app ends, and its
``dropped`` (if any: packets lost before decoding) is shown in the status line."""


class FileSource:
    """A capture file as a Source. Opening it checks it is a capture, so that a bad
    file fails before the TUI starts (raises CaptureError)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self._reader: CaptureReader | None = open_capture(path)
        with open(path, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        # Progress is estimated from the bytes of packets read: only for a plain file.
        self.size: int | None = None if compressed else os.path.getsize(path)

    def __call__(self) -> CaptureReader:
        reader, self._reader = self._reader, None
        return reader if reader is not None else open_capture(self.path)

    def close(self) -> None:
        """Close the reader opened for the check if it was never used."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class Spill:
    """An unnamed temporary file that message records are appended to.

    One thread appends (the decoder); any thread reads with pread, which does not move
    the file position. After close(), appends are dropped and reads return nothing, so
    a thread still finishing cannot touch a reused file descriptor.
    """

    def __init__(self) -> None:
        self._file: BinaryIO = tempfile.TemporaryFile(prefix="wsinspect-")  # noqa: SIM115 - closed by close()
        self._fd = self._file.fileno()
        self._lock = threading.Lock()
        self._closed = False
        self.size = 0

    def append(self, parts: list[bytes]) -> None:
        data = b"".join(parts)
        with self._lock:
            if self._closed:
                return
            self._file.write(data)
            # Readers use the file descriptor directly: the buffered bytes must reach it first.
            self._file.flush()
            self.size += len(data)

    def read(self, offset: int, n: int) -> bytes:
        if n <= 0:
            return b""
        with self._lock:
            if self._closed:
                return b""
            return os.pread(self._fd, n, offset)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._file.close()


class Columns:
    """The per-message index: one array per field, indexed by message number (from 0)."""

    __slots__ = ("flags", "length", "meta_len", "nframes", "offset", "opcode", "session", "ts", "wire_length")

    def __init__(self) -> None:
        self.ts = array("d")
        self.session = array("I")
        self.flags = array("B")
        self.opcode = array("B")
        self.length = array("Q")
        self.wire_length = array("Q")
        self.nframes = array("I")
        self.offset = array("Q")  # payload at offset, meta (JSON) right after it
        self.meta_len = array("I")

    def __len__(self) -> int:
        return len(self.ts)

    def extend(self, other: Columns) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))

    def nbytes(self) -> int:
        return sum(len(a) * a.itemsize for a in (getattr(self, name) for name in self.__slots__))


@dataclass
class SessionDelta:
    """What one batch adds to one session: message numbers and running totals."""

    indices: array[int] = field(default_factory=lambda: array("I"))
    messages: list[int] = field(default_factory=lambda: [0, 0])  # c2s, s2c
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    issues: int = 0
    last_ts: float = 0.0


@dataclass
class Batch:
    """The results of ~0.1 s of decoding, handed from the decode thread to the UI."""

    opened: list[SessionOpened] = field(default_factory=list)
    upgraded: list[SessionUpgraded] = field(default_factory=list)
    summaries: list[SessionSummary] = field(default_factory=list)
    tls: list[TlsUndecrypted] = field(default_factory=list)  # TLS connections not decrypted
    columns: Columns = field(default_factory=Columns)
    sessions: dict[int, SessionDelta] = field(default_factory=dict)
    packets: int = 0  # totals so far
    bytes_read: int = 0
    first_ts: float | None = None
    done: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def _meta(m: Message) -> bytes:
    if m.text is None:
        text_end = -1
    elif m.complete or len(m.text) == len(m.payload):
        text_end = len(m.payload)
    else:
        # A cut text message decodes up to the last whole character only.
        text_end = len(m.text.encode("utf-8"))
    frames = [
        (
            f.fin,
            f.rsv,
            f.opcode,
            f.masked,
            f.masking_key.hex() if f.masking_key else None,
            f.length,
            f.header_length,
            f.ts,
            f.packets,
            f.issues,
            f.complete,
        )
        for f in m.frames
    ]
    return orjson.dumps((m.issues, m.close_code, m.close_reason, text_end, m.packets, frames, m.rtt))


class Decoder:
    """The sans-I/O loop of the TUI: packets in, batches of compact results out."""

    def __init__(
        self,
        spill: Spill,
        options: Options | None = None,
        sessions: set[int] | None = None,
        count: int | None = None,
        counted: Callable[[Message], bool] | None = None,
        live: bool = False,
    ) -> None:
        self.spill = spill
        self.live = live  # a live source ends when the capture is stopped, not at an end of file
        options = options if options is not None else Options()
        keylog = options.keylog
        if keylog is None:
            # A pcapng may carry its own key logs (see run): they need a KeyLog to go into.
            keylog = KeyLog()
            options = replace(options, keylog=keylog)
        self.keylog = keylog
        self.inspector = Inspector(options)
        # `wsinspect stats` over what is decoded (the Stats screen), as live --stats feeds it;
        # the UI reads it under stats_lock while this thread adds to it.
        self.stats = Stats()
        self.stats_lock = threading.Lock()
        self.wanted = sessions
        # -c: stop reading the source after ``count`` messages that ``counted`` accepts
        # (every message when None), as `read -c` stops after so many printed ones;
        # messages after the last counted one are left out.
        self.remaining = count
        self.counted = counted
        self.count = 0  # messages indexed so far: the next message's number
        self.packets = 0
        self.bytes_read = 0
        self._parts: list[bytes] = []  # records not yet written to the spill file
        self._offset = spill.size

    def run(
        self,
        source: Source,
        deliver: Callable[[Batch], bool],
        cancelled: threading.Event,
        interval: float = BATCH_INTERVAL,
    ) -> None:
        """Decode everything ``source`` yields; ``deliver`` gets each batch and returns
        False when nobody wants more. Stops early when ``cancelled`` is set."""
        packets = source()
        on_secrets = getattr(packets, "on_secrets", None)
        if on_secrets is not None:
            # A pcapng's Decryption Secrets Blocks, read before the packets they are for, as `read` uses them.
            on_secrets(self.keylog.add)
        batch = Batch()
        try:
            feed = self.inspector.feed
            clock = time.monotonic
            deadline = clock() + interval
            for raw in packets:
                if raw is not None:
                    self.packets += 1
                    # Record header included: the progress is an estimate of the file offset.
                    self.bytes_read += len(raw.data) + 16
                    events = feed(raw)
                    if events:
                        self._events(events, batch)
                        if self.remaining == 0:
                            break
                if cancelled.is_set():
                    return
                if clock() >= deadline:
                    if not deliver(self._seal(batch)):
                        return
                    batch = Batch()
                    deadline = clock() + interval
            stopped = self.live or self.remaining == 0
            self._events(self.inspector.finish("stopped" if stopped else "eof"), batch)
        except (WsinspectError, OSError) as exc:
            batch.error = str(exc)
        finally:
            close = getattr(packets, "close", None)
            if close is not None:
                close()
        batch.warnings.extend(getattr(packets, "warnings", ()))
        batch.done = True
        deliver(self._seal(batch))

    def _seal(self, batch: Batch) -> Batch:
        # Records reach the spill file before their index entries reach the UI.
        if self._parts:
            self.spill.append(self._parts)
            self._parts = []
        batch.packets = self.packets
        batch.bytes_read = self.bytes_read
        batch.first_ts = self.inspector.first_ts
        return batch

    def _events(self, events: Iterable[object], batch: Batch) -> None:
        with self.stats_lock:
            self._take(events, batch)

    def _take(self, events: Iterable[object], batch: Batch) -> None:
        wanted = self.wanted
        stats = self.stats
        cols = batch.columns
        parts = self._parts
        for ev in events:
            if isinstance(ev, Message):
                session = ev.session
                if wanted is not None and session not in wanted:
                    continue
                if self.remaining is not None:
                    if self.remaining == 0:
                        continue
                    if self.counted is None or self.counted(ev):
                        self.remaining -= 1
                stats.message(ev)
                payload = ev.payload
                n = len(payload)
                meta = _meta(ev)
                flags = (
                    (F_S2C if ev.dir is _S2C else 0)
                    | (F_MASKED if ev.masked else 0)
                    | (F_COMPRESSED if ev.compressed else 0)
                    | (F_COMPLETE if ev.complete else 0)
                    | (F_ISSUES if ev.issues else 0)
                    | (F_TEXT if ev.text is not None else 0)
                )
                cols.ts.append(ev.ts)
                cols.session.append(session)
                cols.flags.append(flags)
                cols.opcode.append(ev.opcode)
                cols.length.append(n)
                cols.wire_length.append(ev.wire_length)
                cols.nframes.append(len(ev.frames))
                cols.offset.append(self._offset)
                cols.meta_len.append(len(meta))
                parts.append(payload)
                parts.append(meta)
                self._offset += n + len(meta)
                delta = batch.sessions.get(session)
                if delta is None:
                    delta = batch.sessions[session] = SessionDelta()
                delta.indices.append(self.count)
                d = flags & F_S2C
                delta.messages[d] += 1
                delta.bytes[d] += n
                delta.issues += len(ev.issues)
                delta.last_ts = ev.ts
                self.count += 1
            elif isinstance(ev, SessionOpened):
                if wanted is None or ev.session in wanted:
                    batch.opened.append(ev)
            elif isinstance(ev, SessionUpgraded):
                if wanted is None or ev.session in wanted:
                    batch.upgraded.append(ev)
            elif isinstance(ev, SessionSummary):
                if wanted is None or ev.session in wanted:
                    batch.summaries.append(ev)
                    stats.session(ev)
            elif isinstance(ev, TlsUndecrypted):
                batch.tls.append(ev)


class MessageStore:
    """Every message decoded so far, read back from the index and the spill file.

    Only the UI thread extends it; search and export threads read it (the arrays only
    grow, and a record is in the spill file before its index entry exists).
    """

    def __init__(self, spill: Spill) -> None:
        self.spill = spill
        self.cols = Columns()

    def __len__(self) -> int:
        return len(self.cols)

    def extend(self, cols: Columns) -> None:
        self.cols.extend(cols)

    def payload(self, i: int) -> bytes:
        return self.spill.read(self.cols.offset[i], self.cols.length[i])

    def prefix(self, i: int, n: int) -> bytes:
        """The first ``n`` payload bytes (for a preview line)."""
        return self.spill.read(self.cols.offset[i], min(n, self.cols.length[i]))

    def search_text(self, i: int) -> str | None:
        """search.search_text() of message ``i``: rebuilt only for a close reason or a
        cut text (a whole text message is its payload, decoded as the decoder did)."""
        flags = self.cols.flags[i]
        if flags & F_TEXT and flags & F_COMPLETE:
            # "replace": invalid bytes are in a text only beside a TCP hole (messages.py).
            return self.payload(i).decode("utf-8", "replace")
        if flags & F_TEXT or self.cols.opcode[i] == 8:
            return search_text(self.message(i))
        return None

    def message(self, i: int) -> Message:
        """Rebuild message ``i`` as the decoder produced it (frames without payload bytes)."""
        cols = self.cols
        offset, length = cols.offset[i], cols.length[i]
        record = self.spill.read(offset, length + cols.meta_len[i])
        payload = record[:length]
        issues, close_code, close_reason, text_end, packets, frames, rtt = orjson.loads(record[length:])
        flags = cols.flags[i]
        text = payload[:text_end].decode("utf-8") if text_end >= 0 else None
        return Message(
            session=cols.session[i],
            ts=cols.ts[i],
            dir=Direction.S2C if flags & F_S2C else Direction.C2S,
            opcode=cols.opcode[i],
            frames=[_frame(f) for f in frames],
            masked=bool(flags & F_MASKED),
            compressed=bool(flags & F_COMPRESSED),
            payload=payload,
            wire_length=cols.wire_length[i],
            text=text,
            close_code=close_code,
            close_reason=close_reason,
            issues=[ISSUES[v] for v in issues],
            packets=(packets[0], packets[1]),
            complete=bool(flags & F_COMPLETE),
            rtt=rtt,
        )


def _frame(f: list[Any]) -> Frame:
    fin, rsv, opcode, masked, key, length, header_length, ts, packets, issues, complete = f
    return Frame(
        fin=fin,
        rsv=rsv,
        opcode=opcode,
        masked=masked,
        masking_key=bytes.fromhex(key) if key is not None else None,
        length=length,
        payload=b"",
        header_length=header_length,
        ts=ts,
        packets=packets,
        issues=[ISSUES[v] for v in issues],
        complete=complete,
    )


@dataclass
class MessageFilter:
    """What the messages view shows: direction, opcodes, a text pattern, issues only."""

    direction: Direction | None = None  # None for both
    opcodes: frozenset[int] | None = None  # None: any; 0x100 stands for every other opcode
    pattern: re.Pattern[str] | None = None
    issues_only: bool = False
    query: str = ""  # the text the pattern was made from, as typed
    regex: bool = False
    display: Filter | None = None  # a display filter (filter.py), as read -Y takes it
    # The session.* values of a session number for ``display`` (the app knows the sessions).
    session_values: Callable[[int], dict[str, Any] | None] | None = field(default=None, compare=False)

    OTHER = 0x100

    def __post_init__(self) -> None:
        if self.direction is not None:
            self.direction = Direction(self.direction)  # "c2s" as typed or stored: the enum

    @property
    def active(self) -> bool:
        return (
            self.direction is not None
            or self.opcodes is not None
            or self.pattern is not None
            or self.issues_only
            or self.display is not None
        )

    def describe(self) -> str:
        parts = []
        if self.direction:
            parts.append(f"{self.direction.arrow} only")
        if self.opcodes is not None:
            names = (opcode_label(o) if o != self.OTHER else "other" for o in sorted(self.opcodes))
            parts.append(",".join(names) or "no opcode")
        if self.pattern is not None:
            parts.append(f"/{self.query}/" if self.regex else repr(self.query))
        if self.issues_only:
            parts.append("issues")
        if self.display is not None:
            parts.append(f"-Y {self.display.expression}")
        return " ".join(parts)

    def _displayed(self, m: Message) -> bool:
        """The display filter's verdict on ``m`` (its session's values only when it reads them)."""
        display = self.display
        if display is None:
            return True
        values = self.session_values(m.session) if display.needs_session and self.session_values else None
        return display.message(m, values)

    def matches(self, store: MessageStore, i: int) -> bool:
        cols = store.cols
        flags = cols.flags[i]
        if self.direction is not None and (self.direction is Direction.S2C) != bool(flags & F_S2C):
            return False
        if self.opcodes is not None:
            op = cols.opcode[i]
            if op not in self.opcodes and not (self.OTHER in self.opcodes and op not in KNOWN_OPCODES):
                return False
        if self.issues_only and not flags & F_ISSUES:
            return False
        if self.display is not None and not self._displayed(store.message(i)):
            return False
        if self.pattern is None:
            return True
        text = store.search_text(i)
        return text is not None and self.pattern.search(text) is not None

    def accepts(self, m: Message) -> bool:
        """``matches`` for a decoded message (before it is in a store)."""
        if self.direction is not None and self.direction != m.dir:
            return False
        opcodes, op = self.opcodes, m.opcode
        if opcodes is not None and op not in opcodes and not (self.OTHER in opcodes and op not in KNOWN_OPCODES):
            return False
        if self.issues_only and not m.issues:
            return False
        if not self._displayed(m):
            return False
        return self.pattern is None or matches(self.pattern, m)

    def select(
        self, store: MessageStore, indices: Sequence[int], cancelled: threading.Event | None = None
    ) -> array[int] | None:
        """The messages of ``indices`` that match; None when cancelled."""
        out = array("I")
        append = out.append
        matches = self.matches
        for n, i in enumerate(indices):
            if cancelled is not None and not n & 0x3FF and cancelled.is_set():
                return None
            if matches(store, i):
                append(i)
        return out


def search(
    store: MessageStore,
    indices: Sequence[int],
    pattern: re.Pattern[str],
    start: int,
    step: int,
    cancelled: threading.Event | None = None,
) -> int | None:
    """The position in ``indices`` of the next message (after ``start``, wrapping
    around, going by ``step`` = 1 or -1) whose search text matches ``pattern``."""
    n = len(indices)
    for k in range(1, n + 1):
        if cancelled is not None and not k & 0x3FF and cancelled.is_set():
            return None
        pos = (start + k * step) % n
        text = store.search_text(indices[pos])
        if text is not None and pattern.search(text):
            return pos
    return None


def message_filter(args: argparse.Namespace) -> MessageFilter:
    """The starting filter from --opcode, --grep and -Y (the f key changes it); a bad
    -Y raises FilterError (exit status 2, with a caret), before the screen changes."""
    flt = MessageFilter(display=display_filter(args))
    if args.opcode is not None:
        flt.opcodes = frozenset(args.opcode)
    if args.grep is not None:
        flt.pattern, flt.query, flt.regex = args.grep, args.grep.pattern, True
    return flt
