"""WebSocket frames (RFC 6455 section 5): FrameParser, Frame, unmask(), close payloads.

A FrameParser is fed one direction's reassembled bytes and returns the frames that
are complete. Violations become issues on the frame; nothing raises. After a hole in
the stream the parser hunts for the next frame boundary it can trust: a run of
plausible headers that chain to one another or to the end of a TCP segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from wsinspect import speedups
from wsinspect.issues import Issue
from wsinspect.vocab import KNOWN_OPCODES, is_control

# --max-message-size's default: a message (and so a frame) larger than this keeps only
# its first bytes (the rest is counted, not stored; inflated output is cut there too).
DEFAULT_MAX_MESSAGE_SIZE = 64 << 20
# How much unsynchronised data the hunt keeps looking at before dropping the front.
HUNT_WINDOW = 256 << 10


# RFC 6455 7.4.1 and the IANA WebSocket Close Code Number Registry.
CLOSE_CODE_NAMES = {
    1000: "Normal Closure",
    1001: "Going Away",
    1002: "Protocol Error",
    1003: "Unsupported Data",
    1004: "Reserved",
    1005: "No Status Received",
    1006: "Abnormal Closure",
    1007: "Invalid Payload Data",
    1008: "Policy Violation",
    1009: "Message Too Big",
    1010: "Mandatory Extension",
    1011: "Internal Error",
    1012: "Service Restart",
    1013: "Try Again Later",
    1014: "Bad Gateway",
    1015: "TLS Handshake",
}


def close_code_name(code: int) -> str:
    if code in CLOSE_CODE_NAMES:
        return CLOSE_CODE_NAMES[code]
    if 3000 <= code <= 3999:
        return "registered (IANA)"
    if 4000 <= code <= 4999:
        return "private use"
    return "not allowed"


def close_code_allowed(code: int) -> bool:
    """Whether an endpoint may send this code (RFC 6455 7.4.1, 7.4.2)."""
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


def parse_close(payload: bytes, issues: list[Issue]) -> tuple[int | None, str | None]:
    """A Close frame's code and reason (RFC 6455 5.5.1, 7.4); findings go to ``issues``."""
    if not payload:
        return None, None
    if len(payload) == 1:
        issues.append(Issue.CLOSE_PAYLOAD_ONE_BYTE)
        return None, None
    code = int.from_bytes(payload[:2], "big")
    if not close_code_allowed(code):
        issues.append(Issue.CLOSE_CODE_INVALID)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        issues.append(Issue.CLOSE_REASON_INVALID_UTF8)
        # U+FFFD marks the bad bytes: an escape would read as text the peer sent.
        reason = payload[2:].decode("utf-8", "replace")
    return code, reason


# Above this size, unmasking by byte tables beats the big-integer XOR (measured:
# 2x at 32 KiB; slower below about 400 bytes).
_TRANSLATE_FROM = 512
_xor_tables: dict[int, bytes] = {}


def _xor_table(k: int) -> bytes:
    table = _xor_tables.get(k)
    if table is None:
        table = _xor_tables[k] = bytes(b ^ k for b in range(256))
    return table


def _unmask_py(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR a payload with its 4-byte masking key (RFC 6455 5.3), all at once: as
    one big integer, or for large payloads as four strided byte translations.
    The reference for _speedups.unmask, and its fallback."""
    n = len(payload)
    if n == 0:
        return b""
    if n < _TRANSLATE_FROM:
        stream = key * ((n >> 2) + 1)
        x = int.from_bytes(payload, "little") ^ int.from_bytes(stream[:n], "little")
        return x.to_bytes(n, "little")
    out = bytearray(payload)
    for i in range(4):
        out[i::4] = out[i::4].translate(_xor_table(key[i]))
    return bytes(out)


# The one place the unmasking in use is chosen (wsinspect/speedups.py says which).
unmask: Callable[[bytes | bytearray | memoryview, bytes], bytes] = (
    _unmask_py if speedups.compiled is None else speedups.compiled.unmask
)


@dataclass(slots=True)
class Frame:
    """One frame as sent. ``payload`` is unmasked; ``length`` is the declared length,
    which exceeds len(payload) only when the frame was cut (a gap or the size cap)."""

    fin: bool
    rsv: int  # the three RSV bits as a number: RSV1 = 4, RSV2 = 2, RSV3 = 1
    opcode: int
    masked: bool
    masking_key: bytes | None
    length: int
    payload: bytes
    header_length: int
    ts: float
    packets: list[int]
    issues: list[Issue] = field(default_factory=list)
    complete: bool = True  # False: bytes of the payload were lost or not stored
    after_hunt: bool = False  # the first frame after bytes were lost before it

    @property
    def rsv1(self) -> bool:
        return bool(self.rsv & 4)

    @property
    def is_control(self) -> bool:
        return is_control(self.opcode)


def read_length(data: bytes | bytearray | memoryview, pos: int, n: int, b1: int) -> tuple[int, int]:
    """The payload length of the frame header at ``pos`` (``b1``: its second byte)
    and the header's size up to the masking key: 7 bits, or 126 and 16 bits, or 127
    and 64 bits (RFC 6455 5.2); (0, 0) when ``data`` ends (at ``n``) before the length
    does. The one length decoder: FrameParser and the fast lane (messages.py) share it."""
    length = b1 & 0x7F
    if length < 126:
        return length, 2
    if length == 126:
        if n - pos < 4:
            return 0, 0
        return (data[pos + 2] << 8) | data[pos + 3], 4
    if n - pos < 10:
        return 0, 0
    return int.from_bytes(data[pos + 2 : pos + 10], "big"), 10


# Bytes that can begin a trusted frame: FIN either way, RSV1 only, an opcode that
# starts a message (text, binary) or a control opcode.
_FIRST_BYTE = re.compile(rb"[\x01\x02\x41\x42\x81\x82\x88-\x8a\xc1\xc2]")


class FrameParser:
    """Frames of one direction of one connection.

    ``client`` says whether the sender is the client (its frames must be masked);
    None while unknown (a session joined mid-stream), when the masking of the first
    trusted frames decides. ``rsv_allowed`` holds the RSV bits that a negotiated
    extension defines.
    """

    def __init__(
        self,
        client: bool | None,
        rsv_allowed: int = 0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        synced: bool = True,
    ) -> None:
        self.client = client
        self.rsv_allowed = rsv_allowed
        self.max_message_size = max_message_size
        self.synced = synced
        self.skipped = 0  # bytes dropped while hunting for a frame boundary
        self._head = b""  # an incomplete frame header
        self._frame: Frame | None = None  # a frame whose payload is still arriving
        self._parts: list[bytes] = []
        self._stored = 0
        self._storing = True  # False after a hole inside the payload in progress
        self._need = 0  # payload bytes still to come for _frame
        self._cap = max_message_size  # payload bytes stored at most for _frame
        self._hunter: Hunter | None = None if synced else Hunter(client, rsv_allowed)
        self._after_hunt = False  # mark the next frame: it follows a hunt

    @property
    def idle(self) -> bool:
        """In step with the stream, between two frames: the next byte starts a frame."""
        return self.synced and not self._head and self._frame is None and not self._after_hunt

    @property
    def mid_frame(self) -> bool:
        return bool(self._head) or self._frame is not None

    def feed(self, data: bytes | memoryview, ts: float, packet: int, gap: int = 0) -> list[Frame]:
        """Parse the next bytes; ``gap`` bytes were lost just before them."""
        out: list[Frame] = []
        if gap:
            self._lose(gap, out)
        if self.synced:
            self._parse(data, ts, packet, out)
        else:
            self._resync_rest(data, ts, packet, out)
        return out

    def finish(self) -> list[Frame]:
        """The stream ended: frames that a hunt was still weighing are delivered if
        their chain ends exactly where the stream did; a frame still arriving is
        delivered, flagged as cut."""
        out: list[Frame] = []
        hunter = self._hunter
        if not self.synced and hunter is not None:
            pos = hunter.finish()
            if pos is not None:
                for piece, ts, packet in self._found(hunter, pos):
                    self._parse(piece, ts, packet, out)
        frame = self._frame
        if frame is not None:
            frame.payload = self._payload()
            frame.complete = False
            frame.issues.append(Issue.FRAME_TRUNCATED)
            out.append(frame)
            self._frame = None
        elif self._head:
            self.skipped += len(self._head)
        self._head = b""
        return out

    # -- synchronised parsing ---------------------------------------------

    def _parse(self, data: bytes | memoryview, ts: float, packet: int, out: list[Frame]) -> None:
        pos = 0
        n = len(data)
        frame = self._frame
        if frame is not None:
            take = min(self._need, n)
            self._take(frame, data[:take], packet)
            pos = take
            if self._need:
                return
            frame.payload = self._payload()
            frame.ts = ts
            self._frame = None
            out.append(frame)
        if self._head:
            data = self._head + bytes(data[pos:])
            self._head = b""
            pos = 0
            n = len(data)
        client = self.client
        rsv_allowed = self.rsv_allowed
        while pos < n:
            if n - pos < 2:
                self._head = bytes(data[pos:])
                return
            b0 = data[pos]
            b1 = data[pos + 1]
            length, hdr = read_length(data, pos, n, b1)
            issues: list[Issue] = []
            if hdr == 0:
                self._head = bytes(data[pos:])
                return
            if hdr == 4:
                if length < 126:
                    issues.append(Issue.NON_MINIMAL_LENGTH)
            elif hdr == 10:
                if length >> 63:
                    # Not a length any peer can mean: the stream cannot be followed
                    # past this header (and its masking key, if any), so hunt for
                    # the next trusted boundary.
                    if b1 & 0x80:
                        hdr = 14
                        if n - pos < hdr:
                            self._head = bytes(data[pos:])
                            return
                    issues.append(Issue.LENGTH_TOP_BIT)
                    key = bytes(data[pos + 10 : pos + 14]) if b1 & 0x80 else None
                    out.append(self._header_only(b0, b1, key, length, hdr, ts, packet, issues))
                    self._start_hunt()
                    self._resync_rest(data[pos + hdr :], ts, packet, out)
                    return
                if length < 0x10000:
                    issues.append(Issue.NON_MINIMAL_LENGTH)
            masked = b1 & 0x80
            key = None
            if masked:
                if n - pos < hdr + 4:
                    self._head = bytes(data[pos:])
                    return
                key = bytes(data[pos + hdr : pos + hdr + 4])
                hdr += 4
            opcode = b0 & 0x0F
            rsv = (b0 >> 4) & 0x07
            if client is not None and bool(masked) != client:
                issues.append(Issue.CLIENT_UNMASKED if client else Issue.SERVER_MASKED)
            if rsv & ~rsv_allowed:
                issues.append(Issue.RSV_WITHOUT_EXTENSION)
            if opcode not in KNOWN_OPCODES:
                issues.append(Issue.RESERVED_OPCODE)
            elif opcode >= 8:
                if length > 125:
                    issues.append(Issue.CONTROL_TOO_LONG)
                if not b0 & 0x80:
                    issues.append(Issue.CONTROL_FRAGMENTED)
                if rsv & 4 and rsv_allowed & 4:
                    issues.append(Issue.CONTROL_COMPRESSED)
            start = pos + hdr
            end = start + length
            # The size cap is for messages: a control frame's 125 bytes are always kept
            # (cutting them would invent findings: a one-byte close, a lost code).
            cap = self.max_message_size if opcode < 8 else max(self.max_message_size, 125)
            if end <= n and length <= cap:
                body = data[start:end]
                payload = unmask(body, key) if key else bytes(body)
                frame = Frame(
                    bool(b0 & 0x80), rsv, opcode, bool(masked), key, length, payload, hdr, ts, [packet], issues
                )
                if self._after_hunt:
                    frame.after_hunt = self._after_hunt
                    self._after_hunt = False
                out.append(frame)
                pos = end
                continue
            frame = Frame(bool(b0 & 0x80), rsv, opcode, bool(masked), key, length, b"", hdr, ts, [packet], issues)
            if self._after_hunt:
                frame.after_hunt = self._after_hunt
                self._after_hunt = False
            self._frame = frame
            self._parts = []
            self._stored = 0
            self._storing = True
            self._cap = cap
            self._need = length
            take = min(length, n - start)
            self._keep(data[start : start + take])
            self._need -= take
            if not self._need:
                frame.payload = self._payload()
                self._frame = None
                out.append(frame)
                pos = start + take
                continue
            return

    def absorb(self, data: bytes | memoryview, packet: int) -> bool:
        """Take ``data`` if all of it is more payload of the frame in progress (most
        segments of a large frame), and return True; else False, and nothing done:
        feed() takes it. A shortcut for the layer above's fast lane."""
        frame = self._frame
        if frame is None or self._need <= len(data):
            return False
        self._take(frame, data, packet)
        return True

    def _take(self, frame: Frame, chunk: bytes | memoryview, packet: int) -> None:
        frame.packets.append(packet)
        self._keep(chunk)
        self._need -= len(chunk)

    def _keep(self, chunk: bytes | memoryview) -> None:
        """Store payload bytes of the frame in progress, up to its cap."""
        if not self._storing:
            return
        room = self._cap - self._stored
        if room > 0:
            piece = bytes(chunk[:room])
            self._parts.append(piece)
            self._stored += len(piece)
        if len(chunk) > room and self._frame is not None:
            self._frame.complete = False
            if Issue.MESSAGE_TOO_LARGE not in self._frame.issues:
                self._frame.issues.append(Issue.MESSAGE_TOO_LARGE)

    def _payload(self) -> bytes:
        frame = self._frame
        assert frame is not None
        raw = b"".join(self._parts)
        self._parts = []
        return unmask(raw, frame.masking_key) if frame.masking_key else raw

    def _header_only(
        self, b0: int, b1: int, key: bytes | None, length: int, hdr: int, ts: float, packet: int, issues: list[Issue]
    ) -> Frame:
        return Frame(
            bool(b0 & 0x80),
            (b0 >> 4) & 7,
            b0 & 0x0F,
            bool(b1 & 0x80),
            key,
            length,
            b"",
            hdr,
            ts,
            [packet],
            issues,
            False,
        )

    # -- holes and hunting ------------------------------------------------

    def _lose(self, gap: int, out: list[Frame]) -> None:
        """``gap`` bytes are missing here: cut the frame in progress, then either skip
        the rest of its payload (the boundary is still known) or start hunting."""
        frame = self._frame
        if frame is not None:
            frame.complete = False
            if Issue.TCP_GAP not in frame.issues:
                frame.issues.append(Issue.TCP_GAP)
            if gap < self._need:
                # The hole lies inside this payload: keep counting to its end, but
                # store nothing more (bytes after a hole are never glued on).
                self._need -= gap
                self._storing = False
                return
            gap -= self._need
            frame.payload = self._payload()
            self._frame = None
            out.append(frame)
            self._need = 0
            if not gap:
                return
        self._head = b""
        self._start_hunt()

    def _start_hunt(self) -> None:
        self.synced = False
        self._hunter = Hunter(self.client, self.rsv_allowed)

    def _resync_rest(self, data: bytes | memoryview, ts: float, packet: int, out: list[Frame]) -> None:
        """Hunt for a trusted frame boundary in these bytes and those before them;
        once found, parse from there, each chunk with its own time and packet."""
        hunter = self._hunter
        if hunter is None:
            hunter = self._hunter = Hunter(self.client, self.rsv_allowed)
        before = hunter.dropped
        pos = hunter.feed(data, ts, packet)
        self.skipped += hunter.dropped - before
        if pos is not None:
            for piece, piece_ts, piece_packet in self._found(hunter, pos):
                self._parse(piece, piece_ts, piece_packet, out)

    def _found(self, hunter: Hunter, pos: int) -> list[tuple[bytes, float, int]]:
        """The hunt is over at ``pos`` of the hunter's buffer: the chunks from there."""
        self.skipped += pos
        self._hunter = None
        self.synced = True
        self._after_hunt = True
        return hunter.pieces(pos)


def _plausible(buf: bytearray | bytes, p: int, client: bool | None, rsv_allowed: int) -> tuple[int, int]:
    """Check a frame header at p. Returns (end of frame, mask bit), end = -1 when it
    cannot be a header and -2 when more bytes are needed to tell."""
    n = len(buf)
    if n - p < 2:
        return -2, 0
    b0, b1 = buf[p], buf[p + 1]
    opcode = b0 & 0x0F
    rsv = (b0 >> 4) & 7
    masked = b1 >> 7
    if opcode not in KNOWN_OPCODES or rsv & ~rsv_allowed:
        return -1, masked
    if client is not None and bool(masked) != client:
        return -1, masked
    length, hdr = read_length(buf, p, n, b1)
    if hdr == 0:
        return -2, masked
    if (hdr == 4 and length < 126) or (hdr == 10 and (length < 0x10000 or length >> 40)):
        return -1, masked
    if opcode >= 8 and (length > 125 or not b0 & 0x80 or rsv):
        return -1, masked
    if opcode == 0 and rsv:
        return -1, masked
    return p + hdr + (4 if masked else 0) + length, masked


class Hunter:
    """Finds the first offset where frames can be trusted to start, incrementally.

    A candidate starts a message or is a control frame (never a continuation: runs
    of zero bytes would pass for empty ones, and a message's tail is of no use
    without its start). It is trusted when a chain of plausible frames from it,
    all masked alike and in a legal order (a continuation only inside a fragmented
    message, a new message only outside one, RFC 6455 5.4), ends exactly where a
    chunk of data ended (a TCP segment boundary, where senders' writes end), and
    the chain holds at least two frames that carry something (empty data frames
    are no evidence: runs of zero bytes and padding are full of them), or one
    control frame, or one complete text frame of valid UTF-8. Random bytes and
    other protocols rarely pass all of that; real frames nearly always do.

    Candidates are found by a regular expression over possible first bytes, so
    random payload is skipped at C speed; every byte is scanned once, and a
    candidate whose chain is not complete yet waits in ``_pending``.
    ``starts_only`` looks only at chunk starts: for connections that may not be
    WebSocket at all, where scanning every byte would cost too much.
    """

    MAX_CHAIN = 32

    def __init__(
        self, client: bool | None, rsv_allowed: int, starts_only: bool = False, window: int = HUNT_WINDOW
    ) -> None:
        self.client = client
        self.rsv_allowed = rsv_allowed
        self.starts_only = starts_only
        self.window = window
        self.buf = bytearray()
        self.dropped = 0  # bytes given up from the front of buf
        self._ends: set[int] = set()  # buf offsets where chunks ended
        self._starts: set[int] = set()  # and where they started
        self._scanned = 0  # buf offset where scanning resumes
        self._pending: list[int] = []  # candidates waiting for more data
        self._chunks: list[tuple[int, float, int]] = []  # each chunk's offset in buf, time, packet

    def feed(self, data: bytes | bytearray | memoryview, ts: float = 0.0, packet: int = 0) -> int | None:
        """Add a chunk (of the capture's time ``ts`` and packet ``packet``); return the
        offset in ``buf`` of the trusted boundary, if found."""
        buf = self.buf
        chunk_start = len(buf)
        buf += data
        n = len(buf)
        self._starts.add(chunk_start)
        self._chunks.append((chunk_start, ts, packet))
        self._ends.add(n)
        found = None
        pending = []
        for p in self._pending:
            verdict = self._verdict(p, n)
            if verdict is True:
                found = p if found is None else min(found, p)
            elif verdict is None:
                pending.append(p)
        self._pending = pending
        if found is not None:
            return found
        if self.starts_only:
            if _FIRST_BYTE.match(buf, chunk_start):
                found = self._candidate(chunk_start, n)
        else:
            scan = self._scanned
            self._scanned = n
            for m in _FIRST_BYTE.finditer(buf, scan):
                found = self._candidate(m.start(), n)
                if found is not None:
                    break
        if found is None and n > self.window:
            self._drop(n - self.window)
        return found

    def finish(self) -> int | None:
        """The stream ended: the first waiting candidate whose chain of frames ends
        exactly at the end of the stream (no segment follows to confirm it with a
        next header, and none is needed: the sender's last write ended there)."""
        n = len(self.buf)
        trusted = [p for p in self._pending if self._verdict(p, n, final=True)]
        return min(trusted) if trusted else None

    def pieces(self, pos: int) -> list[tuple[bytes, float, int]]:
        """The bytes from ``pos`` on, cut where chunks began, each with its time and packet."""
        chunks = self._chunks
        ends = [start for start, _, _ in chunks[1:]] + [len(self.buf)]
        return [
            (bytes(self.buf[max(start, pos) : end]), ts, packet)
            for (start, ts, packet), end in zip(chunks, ends, strict=True)
            if end > pos and end > start
        ]

    def _candidate(self, p: int, n: int) -> int | None:
        verdict = self._verdict(p, n)
        if verdict is None:
            if n - p < 14 and _plausible(self.buf, p, self.client, self.rsv_allowed)[0] == -2:
                # The header itself is cut: scan this offset again with more data.
                self._scanned = min(self._scanned, p)
            else:
                self._pending.append(p)
        return p if verdict else None

    def _verdict(self, p: int, n: int, final: bool = False) -> bool | None:
        """True: trusted; False: not a boundary; None: wait for more data (``final``:
        no more data will come)."""
        buf = self.buf
        end, masked = _plausible(buf, p, self.client, self.rsv_allowed)
        if end < 0 or end > n:
            return None if end == -2 or end > n else False
        side = bool(masked) if self.client is None else self.client
        # One frame alone is evidence enough only when its payload checks out: a
        # whole text frame of at least 8 bytes of valid UTF-8, or a close frame with
        # a code allowed on the wire and a UTF-8 reason. Anything else (a ping, a
        # binary frame) needs a second frame chained to it; a lone ping-like header
        # ending on a segment boundary turns up by chance in random payload.
        opcode = buf[p] & 0x0F
        payload = _payload(buf, p, end, masked)
        whole_text = opcode == 1 and buf[p] & 0xC0 == 0x80
        if whole_text and not _is_utf8(payload):
            return False
        alone = (
            (whole_text and len(payload) >= 8)
            or (
                opcode == 8
                and len(payload) >= 2
                and close_code_allowed(int.from_bytes(payload[:2], "big"))
                and _is_utf8(payload[2:])
            )
            # In a known session, a frame filling a whole segment (a sender's write)
            # from its first byte is evidence too.
            or (self.client is not None and p in self._starts and (whole_text or opcode >= 8))
        )
        frames = 1
        evidence = _carries(buf, p, end, masked)
        fragmented = opcode < 8 and not buf[p] & 0x80  # a message in progress after this frame
        inside = p not in self._starts
        while True:
            if end in self._ends and (evidence >= 2 or alone):
                if not inside:
                    return True
                # A candidate inside a segment (after a hole in the middle of a
                # payload) must also have a frame header right after its chain,
                # where the next segment begins: chance chains in random bytes
                # rarely pass that too.
                if end == n:
                    return final or None
                nxt, masked2 = _plausible(buf, end, side, self.rsv_allowed)
                if nxt == -2:
                    return None
                return nxt != -1 and masked2 == masked
            if end == n:
                return None
            if frames >= self.MAX_CHAIN:
                return evidence >= 2
            nxt, masked2 = _plausible(buf, end, side, self.rsv_allowed)
            if nxt == -2 or nxt > n:
                return None
            if nxt == -1 or masked2 != masked:
                return False
            b0 = buf[end]
            if b0 & 0x0F < 8:
                if (b0 & 0x0F == 0) != fragmented:
                    return False  # a continuation outside a message, or a message inside one
                fragmented = not b0 & 0x80
            evidence += _carries(buf, end, nxt, masked)
            end = nxt
            frames += 1

    def _drop(self, count: int) -> None:
        del self.buf[:count]
        self.dropped += count
        self._scanned = max(0, self._scanned - count)
        self._ends = {e - count for e in self._ends if e > count}
        self._starts = {s - count for s in self._starts if s >= count}
        self._pending = [p - count for p in self._pending if p >= count]
        # The chunk cut by the drop now starts at 0.
        kept = [c for c in self._chunks if c[0] > count]
        cut = [c for c in self._chunks if c[0] <= count]
        self._chunks = [(0, cut[-1][1], cut[-1][2])] if cut else []
        self._chunks += [(start - count, ts, packet) for start, ts, packet in kept]


def _carries(buf: bytearray | bytes, p: int, end: int, masked: int) -> int:
    """1 when the frame at p (ending at end) is evidence of WebSocket: a control frame,
    or a data frame with a payload; 0 for an empty data frame."""
    if buf[p] & 0x08:
        return 1
    header = {126: 4, 127: 10}.get(buf[p + 1] & 0x7F, 2) + (4 if masked else 0)
    return 1 if end - p > header else 0


def _payload(buf: bytearray | bytes, p: int, end: int, masked: int) -> bytes:
    """The unmasked payload of the complete frame at p, which ends at end."""
    hdr = end - read_length(buf, p, len(buf), buf[p + 1])[0]
    payload = bytes(buf[hdr:end])
    return unmask(payload, bytes(buf[hdr - 4 : hdr])) if masked else payload


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def starts_with_frame(buf: bytearray | bytes, client: bool | None, rsv_allowed: int) -> bool:
    """Whether buf starts with a plausible frame header (for bytes that follow an HTTP
    message, where a frame could only start right there)."""
    return _plausible(buf, 0, client, rsv_allowed)[0] != -1
