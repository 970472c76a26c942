"""HTTP/2 connections (RFC 9113) carrying WebSockets (RFC 8441): one byte stream per extended CONNECT stream.

Sans-I/O like every parser of the core: an ``H2Connection`` is fed the reassembled bytes of each direction of one
TCP connection (``feed(d, data, gap)``) and returns events. Frames are cut here and their bodies parsed by
``hyperframe``; header blocks go, in order and with their CONTINUATIONs, to one ``hpack.Decoder`` per direction
(the dynamic table of RFC 7541 2.3.2 is per direction). A stream whose request is an extended CONNECT with
``:protocol: websocket`` (RFC 8441 4) is a WebSocket session: the payloads of its DATA frames, padding removed,
are handed up as ``WsData`` (memoryview slices of the fed bytes, no copies) to the same frame parser and message
assembler as the bytes after an HTTP/1.1 101. DATA of any other stream is stepped over without being copied.

Damaged input never raises: it becomes an ``H2Finding``. A TCP gap inside a DATA payload only costs that stream
the missing bytes; a gap across frame boundaries (and a capture that starts after the preface) makes the direction
hunt for a plausible frame header, and its HPACK state is then unknown: headers decoded from there on are marked
unreliable, and streams whose requests were missed or cannot be decoded are taken for WebSockets from what their
DATA looks like (``WsJoined``).

Routing (by the Inspector): ``looks_like_h2(first client bytes)`` for prior knowledge h2c (and for ALPN ``h2``
after TLS decryption); ``H2Connection(client, start=Start.UPGRADED, http2_settings=...)`` after a 101 to ``h2c``
(RFC 7540 3.2), fed the bytes after the request head and after the 101 head; ``Start.MIDSTREAM`` for a connection
joined late whose bytes ``find_frame_header`` recognises.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from hpack import Decoder, HPACKError
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    FRAMES,
    ContinuationFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from .frames import starts_with_frame
from .issues import Issue

# RFC 9113 3.4: the client connection preface.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
DEFAULT_MAX_FRAME_SIZE = 16384  # RFC 9113 6.5.2
DEFAULT_TABLE_SIZE = 4096  # RFC 9113 6.5.2, SETTINGS_HEADER_TABLE_SIZE
DEFAULT_WINDOW = 65535  # RFC 9113 6.5.2, SETTINGS_INITIAL_WINDOW_SIZE, and the connection's first window (6.9.2)
ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441 3
# Bound on a header block (raw, with its CONTINUATIONs) and on its decoded list (RFC 7541 4.1 sizes): far above
# what browsers send (Chromium refuses past 256 KiB), and what keeps an HPACK bomb from costing memory.
MAX_HEADER_LIST_SIZE = 256 * 1024
# How many bytes a direction looking for a frame header keeps; and how many DATA frames of a stream of unknown
# kind are looked at before it is taken for an ordinary one.
RESYNC_WINDOW = 64 * 1024
SNIFF_FRAMES = 4
# While resyncing, how far above the highest stream id seen a frame header may name a stream.
STREAM_SLACK = 1000
SNIFF_BYTES = 14  # the longest WebSocket frame header (RFC 6455 5.2)


class FrameType(IntEnum):
    """RFC 9113 6 frame types."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


# Per frame type: the flags it defines (RFC 9113 6), whether it needs a stream (True), needs stream 0 (False) or
# takes both (None), and its fixed length (None: variable). Only used to judge a candidate header while resyncing.
_SHAPES: dict[int, tuple[int, bool | None, int | None]] = {
    FrameType.DATA: (0x09, True, None),
    FrameType.HEADERS: (0x2D, True, None),
    FrameType.PRIORITY: (0x00, True, 5),
    FrameType.RST_STREAM: (0x00, True, 4),
    FrameType.SETTINGS: (0x01, False, None),
    FrameType.PUSH_PROMISE: (0x0C, True, None),
    FrameType.PING: (0x01, False, 8),
    FrameType.GOAWAY: (0x00, False, None),
    FrameType.WINDOW_UPDATE: (0x00, None, 4),
    FrameType.CONTINUATION: (0x04, True, None),
}
END_STREAM = 0x1
PADDED = 0x8
_BLOCK_TYPES = (FrameType.HEADERS, FrameType.CONTINUATION, FrameType.PUSH_PROMISE)


class Start(StrEnum):
    """Where the first fed bytes sit in the connection."""

    PREFACE = "preface"  # prior knowledge (or ALPN h2): the client starts with the preface (RFC 9113 3.3, 3.4)
    UPGRADED = "upgraded"  # after a 101 to h2c: stream 1 is the upgraded request (RFC 7540 3.2)
    MIDSTREAM = "midstream"  # the capture joined late: hunt for frames, HPACK state unknown


# -- events -----------------------------------------------------------------------------------------------------

Headers = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class WsRequest:
    """An extended CONNECT with ``:protocol: websocket`` opened ``stream`` (RFC 8441 4). ``reliable`` is False when
    the HPACK state of the client was incomplete, so the headers may be wrong."""

    stream: int
    headers: Headers
    reliable: bool


@dataclass(slots=True)
class WsResponse:
    """The server's final response on a WebSocket stream: 2xx opens the session, anything else refuses it."""

    stream: int
    status: int | None
    headers: Headers
    reliable: bool


@dataclass(slots=True)
class WsJoined:
    """A stream whose request was missed or could not be decoded is taken for a WebSocket from its DATA
    (direction ``d`` sent a plausible WebSocket frame): a session joined mid-way."""

    stream: int
    d: int


@dataclass(slots=True)
class WsData:
    """WebSocket bytes of ``stream`` sent by direction ``d``; ``gap`` bytes of this stream are missing just before
    them (exact for a gap inside one DATA frame, an upper bound after a resync)."""

    stream: int
    d: int
    data: memoryview | bytes
    gap: int


@dataclass(slots=True)
class StreamEnded:
    """A WebSocket stream ended in direction ``d`` ("end_stream"), or as a whole ("rst_stream": ``d`` sent it;
    "goaway": ``d`` refused it by GOAWAY (RFC 9113 6.8); "eof": the capture ended with the stream open,
    ``d`` None)."""

    stream: int
    d: int | None
    how: str
    error_code: int | None


@dataclass(slots=True)
class ConnectionEnded:
    """Direction ``d`` sent GOAWAY (RFC 9113 6.8)."""

    d: int
    last_stream: int
    error_code: int
    debug: bytes


@dataclass(slots=True)
class H2Finding:
    issue: Issue
    d: int | None
    stream: int | None
    detail: str


H2Event = WsRequest | WsResponse | WsJoined | WsData | StreamEnded | ConnectionEnded | H2Finding


def looks_like_h2(first: bytes | bytearray | memoryview) -> bool:
    """Whether a client's first bytes are (or, while shorter, begin) the HTTP/2 preface (RFC 9113 3.4)."""
    n = min(len(first), len(PREFACE))
    return n > 0 and bytes(first[:n]) == PREFACE[:n]


def plausible_frame_header(
    buf: bytes | bytearray | memoryview, p: int, max_length: int, max_stream: int = 0x7FFFFFFF
) -> int:
    """The end of the frame whose header would start at ``p``, or -1 when those 9 bytes cannot be one of the
    frames of RFC 9113 6 (unknown types are legal on the wire but too weak a sign to resync on) or name a stream
    above ``max_stream``."""
    if len(buf) - p < FRAME_HEADER:
        return -1
    length = int.from_bytes(buf[p : p + 3], "big")
    shape = _SHAPES.get(buf[p + 3])
    if shape is None or length > max_length:
        return -1
    flags, needs_stream, fixed = shape
    raw_stream = int.from_bytes(buf[p + 5 : p + 9], "big")
    if buf[p + 4] & ~flags or raw_stream > max_stream:
        return -1
    if needs_stream is not None and bool(raw_stream) != needs_stream:
        return -1
    if fixed is not None and length != fixed:
        return -1
    typ = buf[p + 3]
    if (typ == FrameType.SETTINGS and length % 6) or (typ == FrameType.GOAWAY and length < 8):
        return -1
    return p + FRAME_HEADER + length


def find_frame_header(buf: bytes | bytearray | memoryview, start: int = 0, max_length: int = 1 << 24) -> int:
    """The first offset from ``start`` where two plausible frame headers follow each other (or one runs exactly to
    the end of ``buf``), or -1: where a connection joined late can be decoded from."""
    n = len(buf)
    for p in range(start, n - FRAME_HEADER + 1):
        end = plausible_frame_header(buf, p, max_length)
        if end != -1 and (end == n or plausible_frame_header(buf, end, max_length) != -1):
            return p
    return -1


# -- state ------------------------------------------------------------------------------------------------------


class Kind(StrEnum):
    WEBSOCKET = "websocket"  # extended CONNECT websocket, or joined from its DATA
    REFUSED = "refused"  # the server answered non-2xx: its DATA is an error body
    OTHER = "other"  # was UNKNOWN; its DATA does not look like WebSocket frames
    UNKNOWN = "unknown"  # request missed or undecodable: DATA is looked at


_DELIVERED = (Kind.WEBSOCKET, Kind.UNKNOWN)  # kinds whose DATA goes up (UNKNOWN: once it looks like WebSocket)
_ENDED = (Kind.WEBSOCKET, Kind.REFUSED)  # kinds the layer above knows of, so it hears of their end


class _Stream:
    __slots__ = ("gap", "held", "kind", "open", "responded", "sniffed", "window")

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.open = [True, True]
        self.gap = [0, 0]
        self.responded = False
        self.sniffed = 0
        self.held = (bytearray(), bytearray())  # UNKNOWN: the first bytes of a DATA frame, per direction
        self.window = [DEFAULT_WINDOW, DEFAULT_WINDOW]  # flow-control window of each sender (RFC 9113 6.9)


class _State(IntEnum):
    PREFACE = 0  # collecting the client preface
    HEADER = 1  # collecting a frame header
    BODY = 2  # collecting the body of a frame other than DATA
    PAD_LENGTH = 3  # collecting the Pad Length of a padded DATA frame
    DATA = 4  # passing DATA content (or stepping over it), then its padding
    SKIP = 5  # stepping over the rest of a frame
    RESYNC = 6  # looking for a plausible frame header


# Bytes a collecting state waits for (BODY: the frame's length).
_WANT = {_State.PREFACE: len(PREFACE), _State.HEADER: FRAME_HEADER, _State.PAD_LENGTH: 1}


class _Side:
    """One direction: its frame cutter, its HPACK decoder and the SETTINGS it sent."""

    __slots__ = (
        "block",
        "block_end_stream",
        "block_stream",
        "block_type",
        "buf",
        "data_left",
        "data_stream",
        "data_stream_id",
        "decoder",
        "end_stream",
        "flags",
        "frames",
        "left",
        "length",
        "lost",
        "max_frame",
        "pad_left",
        "scan",
        "settings",
        "settings_seen",
        "state",
        "stream",
        "type",
    )

    def __init__(self, state: _State, lost: bool, max_list: int) -> None:
        self.state = state
        self.buf = bytearray()
        self.type = self.flags = self.stream = self.length = 0
        self.left = 0  # bytes of the current frame still to come (SKIP, BODY)
        self.data_left = self.pad_left = 0
        self.data_stream: _Stream | None = None
        self.data_stream_id = 0
        self.end_stream = False
        self.decoder = Decoder(max_header_list_size=max_list)
        self.lost = lost  # HPACK dynamic table incomplete: decoded headers may be wrong
        self.block: bytearray | None = None  # header block waiting for CONTINUATION
        self.block_stream = self.block_type = 0
        self.block_end_stream = False
        self.settings: dict[int, int] = {}
        self.settings_seen = False
        self.frames = 0
        self.scan = 0  # RESYNC: offsets of buf before this cannot start a frame
        self.max_frame = DEFAULT_MAX_FRAME_SIZE  # what the other side accepts (its SETTINGS_MAX_FRAME_SIZE)


class H2Connection:
    """The HTTP/2 layer of one TCP connection; ``client`` is the direction (0 or 1) of the client.

    ``feed(d, data, gap)`` takes the next bytes of direction ``d`` (``gap`` bytes missing before them) and returns
    the events they complete; ``finish()`` ends the connection. Counters for the summary: ``requests`` (ordinary
    requests: streams that are not extended CONNECT websocket), ``websockets``, ``frames`` (per direction).
    """

    def __init__(
        self,
        client: int,
        start: Start = Start.PREFACE,
        *,
        http2_settings: str | None = None,
        max_header_list_size: int = MAX_HEADER_LIST_SIZE,
    ) -> None:
        self.client = client
        self.start = start
        self.max_list = max_header_list_size
        midstream = start is Start.MIDSTREAM
        first = _State.RESYNC if midstream else _State.HEADER
        sides = [_Side(first, midstream, max_header_list_size), _Side(first, midstream, max_header_list_size)]
        if not midstream:
            sides[client].state = _State.PREFACE
        self.sides = (sides[0], sides[1])
        # Streams that are (or may be) WebSocket sessions; other open streams are only remembered by id.
        self._streams: dict[int, _Stream] = {}
        self._ordinary: set[int] = set()
        # Set once a direction lost its place (midstream start, gap): streams seen first by their DATA are sniffed.
        self._blind = midstream
        # RFC 9113 6.9: each sender's connection-level window (what the receiver granted, less the DATA sent);
        # streams keep theirs in _Stream.window. Only followed while no byte was missed (not _blind).
        self._windows = [DEFAULT_WINDOW, DEFAULT_WINDOW]
        self._lost_told = [False, False]
        self._max_stream = 0
        self.requests = 0
        self.websockets = 0
        self.goaway: ConnectionEnded | None = None
        self._pending: list[H2Event] = []
        if start is Start.UPGRADED:
            # RFC 7540 3.2: the upgraded HTTP/1.1 request is stream 1, half-closed from the client.
            self.requests = 1
            self._ordinary.add(1)
            if http2_settings is not None:
                self._upgrade_settings(http2_settings)

    @property
    def settings(self) -> tuple[dict[int, int], dict[int, int]]:
        """The SETTINGS each direction sent, latest value per identifier (RFC 9113 6.5.2)."""
        return self.sides[0].settings, self.sides[1].settings

    # -- feeding ------------------------------------------------------------------------------------------------

    def feed(self, d: int, data: bytes | bytearray | memoryview, gap: int = 0) -> list[H2Event]:
        """The next bytes of direction ``d``; ``gap`` bytes were lost just before them."""
        out: list[H2Event] = []
        if self._pending:
            out += self._pending
            self._pending.clear()
        side = self.sides[d]
        if gap:
            self._gap(d, side, gap, out)
        view = memoryview(data)
        p, n = 0, len(view)
        while p < n:
            p = self._step(d, side, view, p, out)
        return out

    def finish(self) -> list[H2Event]:
        """The connection is over: open WebSocket streams end "eof"; a frame cut short is a finding."""
        out: list[H2Event] = [*self._pending]
        self._pending.clear()
        for d, side in enumerate(self.sides):
            if side.state in (_State.BODY, _State.PAD_LENGTH, _State.DATA, _State.SKIP) or (
                side.state is _State.HEADER and side.buf
            ):
                out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, None, "the connection ended inside a frame"))
            if side.block is not None:
                out.append(H2Finding(Issue.H2_CONTINUATION_EXPECTED, d, side.block_stream, "ended in a header block"))
        for stream_id, st in self._streams.items():
            if st.kind in _ENDED and (st.open[0] or st.open[1]):
                out.append(StreamEnded(stream_id, None, "eof", None))
        self._streams.clear()
        return out

    def _step(self, d: int, side: _Side, view: memoryview, p: int, out: list[H2Event]) -> int:
        """Consume what the current state can from ``view[p:]``; returns the new position."""
        state = side.state
        n = len(view)
        if state is _State.DATA:
            take = min(side.data_left, n - p)
            if take:
                side.data_left -= take
                st = side.data_stream
                if st is not None:
                    self._deliver(d, side, st, view[p : p + take], out)
                p += take
            if not side.data_left:
                skip = min(side.pad_left, n - p)
                side.pad_left -= skip
                p += skip
                if not side.pad_left:
                    self._data_done(d, side, out)
            return p
        if state is _State.SKIP:
            take = min(side.left, n - p)
            side.left -= take
            if not side.left:
                side.state = _State.HEADER
            return p + take
        if state is _State.RESYNC:
            return self._resync(d, side, view, p, out)
        if state is _State.HEADER and not side.buf and n - p >= FRAME_HEADER:
            # The common case, a whole frame header in the fed bytes: read in place.
            self._header(d, side, view[p : p + FRAME_HEADER], out)
            return p + FRAME_HEADER
        want = _WANT.get(state, side.length)
        take = min(want - len(side.buf), n - p)
        side.buf += view[p : p + take]
        p += take
        if len(side.buf) < want:
            return p
        buf = bytes(side.buf)
        side.buf.clear()
        if state is _State.PREFACE:
            self._preface(d, side, buf, out)
        elif state is _State.HEADER:
            self._header(d, side, buf, out)
        elif state is _State.PAD_LENGTH:
            self._pad_length(d, side, buf[0], out)
        else:
            side.state = _State.HEADER
            self._frame(d, side, buf, out)
        return p

    def _preface(self, d: int, side: _Side, buf: bytes, out: list[H2Event]) -> None:
        if buf == PREFACE:
            side.state = _State.HEADER
            return
        out.append(H2Finding(Issue.H2_PREFACE_INVALID, d, None, repr(buf[:24])))
        self._lose(d, side)
        side.buf += buf

    # -- frames -------------------------------------------------------------------------------------------------

    def _header(self, d: int, side: _Side, buf: bytes | memoryview, out: list[H2Event]) -> None:
        length = int.from_bytes(buf[:3], "big")
        typ, flags = buf[3], buf[4]
        stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        side.type, side.flags, side.stream, side.length = typ, flags, stream, length
        if stream > self._max_stream:
            self._max_stream = stream
        if not side.frames and typ != FrameType.SETTINGS and self.start is not Start.MIDSTREAM:
            out.append(H2Finding(Issue.H2_SETTINGS_NOT_FIRST, d, None, f"first frame type 0x{typ:x}"))
        side.frames += 1
        limit = side.max_frame
        if length > limit:
            out.append(H2Finding(Issue.H2_FRAME_TOO_LARGE, d, stream, f"{length} > {limit} bytes"))
        if side.block is not None and (typ != FrameType.CONTINUATION or stream != side.block_stream):
            out.append(H2Finding(Issue.H2_CONTINUATION_EXPECTED, d, side.block_stream, f"got frame type 0x{typ:x}"))
            side.block = None
            self._lose(d, side, resync=False)
        if typ == FrameType.DATA:
            self._data_header(d, side, out)
        elif length > self.max_list:
            # Too big to hold: a header block past the bound, or a huge control frame. Stepped over unread.
            if typ in _BLOCK_TYPES:
                out.append(H2Finding(Issue.H2_HEADER_LIST_TOO_LARGE, d, stream, f"a {length}-byte frame"))
                side.block = None
                self._lose(d, side, resync=False)
            side.left = length
            side.state = _State.SKIP if length else _State.HEADER
        else:
            side.state = _State.BODY
            if not length:
                side.state = _State.HEADER
                self._frame(d, side, b"", out)

    def _data_header(self, d: int, side: _Side, out: list[H2Event]) -> None:
        stream_id = side.stream
        if not stream_id:
            out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, 0, "DATA on stream 0 (RFC 9113 6.1)"))
            side.data_stream = None
        else:
            st = self._streams.get(stream_id)
            if st is None and self._blind and stream_id not in self._ordinary:
                st = self._streams[stream_id] = _Stream(Kind.UNKNOWN)
            side.data_stream = st if st is not None and st.kind in _DELIVERED else None
        side.data_stream_id = stream_id
        if not self._blind:
            self._consume(d, stream_id, side.length, out)
        side.end_stream = bool(side.flags & END_STREAM)
        side.pad_left = 0
        side.data_left = side.length
        if side.flags & PADDED:
            if not side.length:
                out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, stream_id, "PADDED DATA without Pad Length"))
                side.state = _State.HEADER
                return
            side.state = _State.PAD_LENGTH
            return
        side.state = _State.DATA
        if not side.length:
            self._data_done(d, side, out)

    def _consume(self, d: int, stream_id: int, length: int, out: list[H2Event]) -> None:
        """A DATA frame of ``length`` (padding included, RFC 9113 6.9.1) uses up windows of sender ``d``: past
        them is a finding, said once per window (the window is then reset, not to repeat it frame after frame)."""
        self._windows[d] -= length
        if self._windows[d] < 0:
            out.append(H2Finding(Issue.H2_FLOW_CONTROL_EXCEEDED, d, 0, f"{-self._windows[d]} bytes past the window"))
            self._windows[d] = 1 << 31
        st = self._streams.get(stream_id)
        if st is not None and st.kind is Kind.WEBSOCKET:
            st.window[d] -= length
            if st.window[d] < 0:
                out.append(H2Finding(Issue.H2_FLOW_CONTROL_EXCEEDED, d, stream_id, f"{-st.window[d]} bytes past"))
                st.window[d] = 1 << 31

    def _pad_length(self, d: int, side: _Side, pad: int, out: list[H2Event]) -> None:
        content = side.length - 1 - pad
        if content < 0:
            out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, side.data_stream_id, "padding longer than the frame"))
            side.left = side.length - 1
            side.state = _State.SKIP if side.left else _State.HEADER
            return
        side.data_left, side.pad_left = content, pad
        side.state = _State.DATA
        if not side.length - 1:
            self._data_done(d, side, out)

    def _deliver(self, d: int, side: _Side, st: _Stream, chunk: memoryview | bytes, out: list[H2Event]) -> None:
        if st.kind is Kind.UNKNOWN:
            held = st.held[d]
            held += chunk
            if len(held) < SNIFF_BYTES and side.data_left:
                return  # judged on the first bytes of the frame, once they are in
            chunk = bytes(held)
            held.clear()
            # RFC 6455 5.1: the client masks and the server does not; a stream opened before the capture may
            # resume mid-message, so a few frames are looked at before giving up on it.
            if len(chunk) < 2 or not starts_with_frame(chunk[:SNIFF_BYTES], d == self.client, 0x4):
                st.sniffed += 1
                if st.sniffed >= SNIFF_FRAMES:
                    st.kind = Kind.OTHER
                    self.requests += 1
                side.data_stream = None
                return
            st.kind = Kind.WEBSOCKET
            self.websockets += 1
            out.append(WsJoined(side.data_stream_id, d))
        out.append(WsData(side.data_stream_id, d, chunk, st.gap[d]))
        st.gap[d] = 0

    def _data_done(self, d: int, side: _Side, out: list[H2Event]) -> None:
        side.state = _State.HEADER
        st = side.data_stream
        if st is not None and st.kind is Kind.UNKNOWN and st.held[d]:
            self._deliver(d, side, st, b"", out)  # a frame shorter than SNIFF_BYTES: judged on what it had
        if side.end_stream:
            self._end_stream(d, side.data_stream_id, out)

    def _end_stream(self, d: int, stream_id: int, out: list[H2Event]) -> None:
        st = self._streams.get(stream_id)
        if st is None:
            if d != self.client:
                self._ordinary.discard(stream_id)
            return
        if st.open[d] and st.kind in _ENDED:
            out.append(StreamEnded(stream_id, d, "end_stream", None))
        st.open[d] = False
        if not st.open[1 - d]:
            del self._streams[stream_id]

    def _frame(self, d: int, side: _Side, body: bytes, out: list[H2Event]) -> None:
        """A complete frame other than DATA: its body parsed by hyperframe."""
        try:
            frame: Frame = (
                FRAMES[side.type](side.stream) if side.type in FRAMES else ExtensionFrame(side.type, side.stream)
            )
            frame.parse_flags(side.flags)
            frame.parse_body(memoryview(body))
        except (HyperframeError, ValueError, struct.error) as exc:
            out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, side.stream, f"frame type 0x{side.type:x}: {exc}"))
            if side.type in _BLOCK_TYPES:
                side.block = None
                self._lose(d, side, resync=False)
            return
        match frame:
            case SettingsFrame():
                if "ACK" not in frame.flags:
                    self._settings(d, side, frame.settings, out)
            case HeadersFrame() | PushPromiseFrame():
                side.block = bytearray(frame.data)
                side.block_stream = side.stream
                side.block_type = side.type
                side.block_end_stream = "END_STREAM" in frame.flags
                if isinstance(frame, PushPromiseFrame):
                    # RFC 9113 8.4: a promised request is an ordinary one, answered on the promised stream.
                    self.requests += 1
                    self._ordinary.add(frame.promised_stream_id)
                if "END_HEADERS" in frame.flags:
                    self._block_done(d, side, out)
            case ContinuationFrame():
                if side.block is None:
                    out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, side.stream, "CONTINUATION without a block"))
                    return
                if len(side.block) + len(frame.data) > self.max_list:
                    out.append(H2Finding(Issue.H2_HEADER_LIST_TOO_LARGE, d, side.stream, "over its CONTINUATIONs"))
                    side.block = None
                    self._lose(d, side, resync=False)
                    return
                side.block += frame.data
                if "END_HEADERS" in frame.flags:
                    self._block_done(d, side, out)
            case WindowUpdateFrame():
                # Direction d grants the other more room: on the connection (stream 0) or on one stream.
                if not side.stream:
                    self._windows[1 - d] += frame.window_increment
                elif (st := self._streams.get(side.stream)) is not None:
                    st.window[1 - d] += frame.window_increment
            case RstStreamFrame():
                self._ordinary.discard(side.stream)
                st = self._streams.pop(side.stream, None)
                if st is not None and st.kind in _ENDED:
                    out.append(StreamEnded(side.stream, d, "rst_stream", frame.error_code))
            case GoAwayFrame():
                ended = ConnectionEnded(d, frame.last_stream_id, frame.error_code, bytes(frame.additional_data))
                self.goaway = ended
                out.append(ended)
                # RFC 9113 6.8: streams the receiver opened above last_stream_id were not and will not be processed.
                parity = 1 if d != self.client else 0
                for stream_id in [s for s in self._streams if s > frame.last_stream_id and s % 2 == parity]:
                    st = self._streams.pop(stream_id)
                    if st.kind in _ENDED:
                        out.append(StreamEnded(stream_id, d, "goaway", frame.error_code))
            case _:
                # PRIORITY, PING, WINDOW_UPDATE: checked by parsing; unknown types are ignored (RFC 9113 5.5).
                pass

    def _settings(self, d: int, side: _Side, settings: dict[int, int], out: list[H2Event]) -> None:
        initial = settings.get(SettingsFrame.INITIAL_WINDOW_SIZE)
        if initial is not None:
            # RFC 9113 6.9.2: a new initial window changes every open stream's window by the difference.
            delta = initial - side.settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
            for st in self._streams.values():
                st.window[1 - d] += delta
        side.settings.update(settings)
        side.settings_seen = True
        # RFC 9113 6.5.2: the largest frame this side will accept from the other.
        self.sides[1 - d].max_frame = side.settings.get(SettingsFrame.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE)
        table = settings.get(SettingsFrame.HEADER_TABLE_SIZE)
        if table is not None:
            # RFC 7541 4.2: the encoder of the other direction may now size its table up to this.
            self.sides[1 - d].decoder.max_allowed_table_size = table
        enable = settings.get(ENABLE_CONNECT_PROTOCOL)
        if enable is not None and enable > 1:
            out.append(H2Finding(Issue.H2_FRAME_MALFORMED, d, 0, f"SETTINGS_ENABLE_CONNECT_PROTOCOL = {enable}"))

    def _upgrade_settings(self, value: str) -> None:
        """RFC 7540 3.2.1: HTTP2-Settings is the base64url payload of the client's SETTINGS. Its findings wait
        for the first feed (a constructor returns no events)."""
        try:
            text = value.strip()
            payload = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
            frame = SettingsFrame(0)
            frame.parse_body(memoryview(payload))
        except (binascii.Error, HyperframeError, ValueError, struct.error) as exc:
            self._pending.append(H2Finding(Issue.H2_FRAME_MALFORMED, self.client, 0, f"HTTP2-Settings: {exc}"))
            return
        self._settings(self.client, self.sides[self.client], frame.settings, self._pending)

    # -- header blocks ------------------------------------------------------------------------------------------

    def _block_done(self, d: int, side: _Side, out: list[H2Event]) -> None:
        block = side.block
        assert block is not None
        side.block = None
        stream_id = side.block_stream
        if side.lost and not self._lost_told[d]:
            # Said once per direction, when it first matters: headers are decoded from an incomplete table.
            self._lost_told[d] = True
            out.append(H2Finding(Issue.H2_HPACK_STATE_LOST, d, stream_id, "header blocks were missed before this one"))
        headers = self._decode(d, side, bytes(block), stream_id, out)
        if side.block_type == FrameType.PUSH_PROMISE:
            return
        if d == self.client:
            self._request(stream_id, headers, side.lost, out)
        else:
            self._response(stream_id, headers, side.lost, out)
        if side.block_end_stream:
            self._end_stream(d, stream_id, out)

    def _decode(self, d: int, side: _Side, block: bytes, stream_id: int, out: list[H2Event]) -> Headers | None:
        try:
            raw = side.decoder.decode(block, raw=True)
        except HPACKError as exc:
            issue = Issue.H2_HEADER_LIST_TOO_LARGE if "larger than" in str(exc) else Issue.H2_HPACK_FAILED
            if issue is not Issue.H2_HPACK_FAILED or not side.lost:  # else explained by h2-hpack-state-lost
                out.append(H2Finding(issue, d, stream_id, str(exc)))
            # The block stopped part way: the table may lack its later insertions.
            self._lose(d, side, resync=False)
            return None
        except (ValueError, IndexError) as exc:  # defensive: hpack on arbitrary bytes
            if not side.lost:
                out.append(H2Finding(Issue.H2_HPACK_FAILED, d, stream_id, str(exc)))
            self._lose(d, side, resync=False)
            return None
        return tuple((_text(name), _text(value)) for name, value in raw)

    def _request(self, stream_id: int, headers: Headers | None, unsure: bool, out: list[H2Event]) -> None:
        st = self._streams.get(stream_id)
        if st is not None and st.kind is not Kind.UNKNOWN:
            return  # trailers of a WebSocket stream
        if stream_id in self._ordinary:
            return  # trailers of an ordinary request
        pseudo = dict(h for h in headers or () if h[0].startswith(":"))
        method, protocol = pseudo.get(":method"), pseudo.get(":protocol")
        if headers is not None and protocol is not None and method != "CONNECT":
            out.append(H2Finding(Issue.H2_CONNECT_INVALID, self.client, stream_id, f":protocol with {method}"))
        if headers is not None and method == "CONNECT" and protocol is not None and protocol.lower() == "websocket":
            self._streams[stream_id] = st = _Stream(Kind.WEBSOCKET)
            for d, side in enumerate(self.sides):
                # What each direction may send at first: the other's SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 6.9.2).
                st.window[1 - d] = side.settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
            self.websockets += 1
            out.append(WsRequest(stream_id, headers, not unsure))
            missing = [p for p in (":scheme", ":path", ":authority") if p not in pseudo]
            if missing:
                out.append(H2Finding(Issue.H2_CONNECT_INVALID, self.client, stream_id, "no " + ", ".join(missing)))
            server = self.sides[1 - self.client]
            if server.settings.get(ENABLE_CONNECT_PROTOCOL) != 1 and (server.settings_seen or not self._blind):
                detail = "before the server's SETTINGS" if not server.settings_seen else "the server did not enable it"
                out.append(H2Finding(Issue.H2_CONNECT_WITHOUT_SETTING, self.client, stream_id, detail))
        elif headers is None or unsure:
            # Cannot tell what this stream is: its DATA will say (a WebSocket frame or not).
            self._streams[stream_id] = _Stream(Kind.UNKNOWN)
        else:
            self.requests += 1
            self._ordinary.add(stream_id)

    def _response(self, stream_id: int, headers: Headers | None, unsure: bool, out: list[H2Event]) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.kind is not Kind.WEBSOCKET or st.responded:
            return
        status_text = dict(headers or ()).get(":status", "")
        status = int(status_text) if status_text.isdigit() else None
        if status is not None and 100 <= status < 200:
            return  # RFC 9113 8.1: informational responses precede the final one
        st.responded = True
        out.append(WsResponse(stream_id, status, headers or (), not unsure and headers is not None))
        if status is not None and not 200 <= status < 300:
            st.kind = Kind.REFUSED  # RFC 8441 5: only 2xx opens the tunnel; the DATA is an error body

    # -- damage -------------------------------------------------------------------------------------------------

    def _gap(self, d: int, side: _Side, gap: int, out: list[H2Event]) -> None:
        """``gap`` bytes of direction ``d`` are missing. Inside the current DATA payload (or a frame being stepped
        over) frame boundaries stay known; otherwise the direction resyncs."""
        if side.state is _State.DATA and gap <= side.data_left + side.pad_left:
            lost = min(gap, side.data_left)
            side.data_left -= lost
            side.pad_left -= gap - lost
            if side.data_stream is not None:
                side.data_stream.gap[d] += lost
            if not side.data_left + side.pad_left:
                self._data_done(d, side, out)
            return
        if side.state is _State.SKIP and gap <= side.left:
            side.left -= gap
            if not side.left:
                side.state = _State.HEADER
            return
        side.block = None
        for st in self._streams.values():
            if st.open[d]:
                st.gap[d] += gap
        self._lose(d, side)

    def _lose(self, d: int, side: _Side, *, resync: bool = True) -> None:
        """Direction ``d`` missed header blocks (and, with ``resync``, its place in the frame sequence)."""
        side.lost = True
        if resync:
            self._blind = True
            side.state = _State.RESYNC
            side.buf.clear()

    def _resync(self, d: int, side: _Side, view: memoryview, p: int, out: list[H2Event]) -> int:
        """Hold bytes until two plausible frame headers follow each other; the first starts the next frame."""
        buf = side.buf
        buf += view[p:]
        limit = max(self.sides[1 - d].settings.get(SettingsFrame.MAX_FRAME_SIZE, 0), DEFAULT_MAX_FRAME_SIZE)
        # Stream ids grow (RFC 9113 5.1.1): a header naming one far above those seen is payload, not a frame.
        max_stream = self._max_stream + STREAM_SLACK if self._max_stream else 0x7FFFFFFF
        at, side.scan = _find_chained(buf, side.scan, limit, max_stream)
        if at == -1:
            if len(buf) > RESYNC_WINDOW:
                cut = len(buf) - RESYNC_WINDOW
                del buf[:cut]
                side.scan = max(0, side.scan - cut)
            return len(view)
        held = bytes(buf[at:])
        buf.clear()
        side.scan = 0
        side.state = _State.HEADER
        side.frames = max(side.frames, 1)  # not the first frame: no SETTINGS-first check
        for event in self.feed(d, held):
            out.append(event)
        return len(view)


def _find_chained(buf: bytearray, start: int, limit: int, max_stream: int) -> tuple[int, int]:
    """Like find_frame_header, but an offset whose next header is not in ``buf`` yet stays undecided. Returns (the
    offset found or -1, the first offset still undecided)."""
    n = len(buf)
    undecided = -1
    for p in range(start, n - FRAME_HEADER + 1):
        end = plausible_frame_header(buf, p, limit, max_stream)
        if end == -1:
            continue
        if end + FRAME_HEADER > n:
            if undecided == -1:
                undecided = p
            continue
        if plausible_frame_header(buf, end, limit, max_stream) != -1:
            return p, 0
    return -1, undecided if undecided != -1 else max(start, n - FRAME_HEADER + 1)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
