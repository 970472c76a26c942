"""Message assembly: one MessageAssembler per direction of a WebSocket session.

The assembler owns its direction's FrameParser (frames.py: bytes -> Frame) and
Inflater (deflate.py): it feeds the parser, joins fragments into messages (RFC 6455
5.4), inflates them (RFC 7692 7.2.2), decodes text and close payloads, and counts
what it delivered. The split follows wsproto's between frame decoding and message
assembly; session.Inspector only routes each connection's bytes to the assembler of
their direction.

Two ways in give the same messages: ``feed`` handles every case; ``lane`` takes the
common ones (more payload of a large frame, whole unfragmented messages without
findings) in one loop, and hands the rest back (tests decode every capture both
ways: Inspector.lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wsinspect.deflate import DeflateParams, Inflater
from wsinspect.frames import Frame, FrameParser, parse_close, read_length, unmask
from wsinspect.health import SessionHealth
from wsinspect.issues import Issue
from wsinspect.tally import Tally
from wsinspect.vocab import Direction, Opcode


@dataclass(slots=True)
class Message:
    """A complete message (or a control frame), as the application sent it."""

    session: int
    ts: float
    dir: Direction
    opcode: int
    frames: list[Frame]
    masked: bool
    compressed: bool
    payload: bytes
    wire_length: int
    text: str | None
    close_code: int | None
    close_reason: str | None
    issues: list[Issue]
    packets: tuple[int, int]  # first and last packet number
    complete: bool = True
    # A pong that answers a ping: the round trip in seconds (health.SessionHealth.frame).
    rtt: float | None = None

    @property
    def length(self) -> int:
        return len(self.payload)


# Plain ints for the per-frame paths: on 3.11 an enum member's lookup (Opcode.CLOSE)
# costs about 0.7 us, a global 0.02 us.
_CONT, _TEXT, _CLOSE = int(Opcode.CONT), int(Opcode.TEXT), int(Opcode.CLOSE)
_C2S = Direction.C2S


def _sent(frame: Frame) -> int:
    """Payload bytes a frame was sent with: its declared length (the frame record's
    payload_length), also where a hole, the size cap or the end of the capture cut it;
    only the bytes seen where the length is one no peer can mean (its top bit set)."""
    if not frame.complete and Issue.LENGTH_TOP_BIT in frame.issues:
        return len(frame.payload)
    return frame.length


class MessageAssembler:
    """The messages of one direction of one session.

    ``session`` is the session's number (for the messages); ``deflate`` the
    negotiated compression, whose ``inflater`` this direction decompresses with;
    ``mid_stream``: the session was joined after its start, so a stray continuation
    frame is expected. The totals (``messages``, ``bytes``, ``wire``,
    ``issue_count``) and the first Close frame seen (``close``: packet, code,
    reason) are read by the session's summary. ``health``, the session's
    SessionHealth, is given every control frame (pings and pongs pair up there).
    """

    __slots__ = (
        "bytes",
        "close",
        "closed",
        "deflate",
        "direction",
        "frames",
        "health",
        "held",
        "inflater",
        "issue_count",
        "issue_kinds",
        "max_message_size",
        "messages",
        "mid_stream",
        "parser",
        "resynced",
        "session",
        "wire",
        "zplain",
        "zwire",
    )

    def __init__(
        self,
        session: int,
        direction: Direction,
        parser: FrameParser,
        inflater: Inflater | None,
        deflate: DeflateParams | None,
        max_message_size: int,
        mid_stream: bool = False,
        health: SessionHealth | None = None,
    ) -> None:
        self.session = session
        self.direction = direction
        self.parser = parser
        self.inflater = inflater
        self.deflate = deflate
        self.max_message_size = max_message_size
        self.mid_stream = mid_stream
        self.frames: list[Frame] = []  # fragments of the data message in progress
        self.held = 0  # their payload bytes
        self.closed = False
        self.messages = 0
        self.bytes = 0
        self.wire = 0
        self.issue_count = 0
        self.issue_kinds: dict[Issue, int] = {}  # the findings of its messages by kind
        # Complete compressed messages: bytes as sent and inflated (the compression ratio).
        self.zwire = 0
        self.zplain = 0
        self.close: tuple[int, int | None, str | None] | None = None  # packet, code, reason
        # Frames follow a lost boundary: a stray continuation is expected.
        self.resynced = mid_stream
        self.health = health

    def feed(self, data: bytes | memoryview, ts: float, packet: int, gap: int, out: list[Any]) -> None:
        """The next bytes of this direction (``gap`` bytes were lost before them)."""
        self._parsed(self.parser.feed(data, ts, packet, gap), out)

    def finish(self, out: list[Any]) -> None:
        """The stream ended: the frames the parser still held, and the message in
        progress, cut."""
        self._parsed(self.parser.finish(), out)
        if self.frames:
            out.append(self._flush(False, Issue.MESSAGE_INCOMPLETE))

    def lane(
        self, data: memoryview, ts: float, packet: int, messages: bool, out: list[Any], tally: Tally | None = None
    ) -> int:
        """feed() for the common cases, taken in one loop: more payload of a large
        frame in progress; whole frames that are whole messages without findings
        (text, binary, ping, pong; permessage-deflate or plain) while no message or
        frame is in progress. Returns how many bytes it took: the rest goes to
        feed(), which handles every case. ``messages``: False when no Message is
        wanted (read -q): only the totals are kept. ``tally`` (wsinspect stats, with
        ``messages`` False): each message taken is counted there instead, but for those
        with findings, which come out as Messages for the caller to count."""
        parser = self.parser
        if not parser.idle or self.frames or self.closed or self.resynced:
            return len(data) if parser.absorb(data, packet) else 0
        masked = 0x80 if parser.client else 0
        inflater = self.inflater
        deflate = self.deflate
        # RSV1 is taken here only as permessage-deflate's "compressed" bit.
        rsv1 = 0x40 if inflater is not None and deflate is not None and not deflate.per_frame else 0
        max_message_size = parser.max_message_size
        session = self.session
        direction = self.direction
        c2s = tally is not None and direction is _C2S
        health = self.health
        count = size = wire_size = zwire = zplain = 0  # what this loop adds to the totals
        pos = 0
        n = len(data)
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            opcode = b0 & 0x0F
            if b1 & 0x80 != masked:
                break
            if opcode == 1 or opcode == 2:
                if b0 & 0xB0 != 0x80 or b0 & 0x40 & ~rsv1:
                    break  # a fragment, or RSV bits that no extension here defines
            elif (opcode != 9 and opcode != 10) or b0 & 0xF0 != 0x80 or b1 & 0x7F > 125:
                break  # close, continuation, reserved, or a control frame with findings
            length = b1 & 0x7F
            hdr = 2
            if length > 125:
                # The one length decoder (frames.read_length); the lane takes only
                # minimal encodings that fit, the general path flags the others.
                length, hdr = read_length(data, pos, n, b1)
                if hdr == 0 or length < (126 if hdr == 4 else 0x10000):
                    break
            if length > max_message_size:
                break
            if masked:
                hdr += 4
            start = pos + hdr
            end = start + length
            if end > n:
                break
            key = bytes(data[start - 4 : start]) if masked else None
            pos = end
            count += 1
            wire_size += length
            if not (messages or opcode == 1 or b0 & 0x40 or opcode > 8):
                size += length  # read -q: a binary payload needs no look
                if tally is not None:
                    tally.add(ts, c2s, opcode, length, length, False)
                continue
            wire = unmask(data[start:end], key) if key is not None else bytes(data[start:end])
            payload = wire
            issues: list[Issue] = []
            complete = True
            text = None
            if b0 & 0x40:
                assert inflater is not None
                payload, issue = inflater.inflate(wire)
                if issue is not None:
                    issues.append(issue)
                    complete = False
                    if issue is not Issue.MESSAGE_TOO_LARGE:
                        payload = wire
                else:
                    zwire += length
                    zplain += len(payload)
            if opcode == 1 and complete and (messages or not payload.isascii()):
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    issues.append(Issue.INVALID_UTF8)
            size += len(payload)
            if issues:
                self._count(issues)
            # Pings and pongs (even in read -q: their payloads are 125 bytes at most)
            # pair up in the session's heartbeat.
            rtt = health.frame(ts, direction, opcode, payload) if opcode > 8 and health is not None else None
            if tally is not None and not issues:
                tally.add(ts, c2s, opcode, len(payload), length, bool(b0 & 0x40))
            elif messages or tally is not None:
                frame = Frame(True, b0 >> 4 & 7, opcode, bool(masked), key, length, wire, hdr, ts, [packet], [])
                # Positional on purpose: with keywords, building a Message costs 1.1 us
                # more (measured on 3.11), 3 % of read --json. Field order: session, ts,
                # dir, opcode, frames, masked, compressed, payload, wire_length, text,
                # close_code, close_reason, issues, packets, complete, rtt; _message() builds
                # it with keywords, and the lane-vs-general-path test compares the two.
                out.append(
                    Message(
                        session,
                        ts,
                        direction,
                        opcode,
                        [frame],
                        bool(masked),
                        bool(b0 & 0x40),
                        payload,
                        length,
                        text,
                        None,
                        None,
                        issues,
                        (packet, packet),
                        complete,
                        rtt,
                    )
                )
        self.messages += count
        self.bytes += size
        self.wire += wire_size
        self.zwire += zwire
        self.zplain += zplain
        return pos

    def _count(self, issues: list[Issue]) -> None:
        self.issue_count += len(issues)
        kinds = self.issue_kinds
        for issue in issues:
            kinds[issue] = kinds.get(issue, 0) + 1

    # -- the general path -------------------------------------------------

    def _parsed(self, frames: list[Frame], out: list[Any]) -> None:
        """Frames from the parser, in order, into messages."""
        for frame in frames:
            if frame.after_hunt:
                # Frames were lost before this one (a hole over a header, a mid-stream
                # join): the message in progress is cut, and a compressed message may
                # have been among the lost ones. A hole inside a payload keeps the
                # frame boundary instead: that frame arrives cut, and only its message
                # suffers.
                self.resynced = True
                if self.inflater is not None:
                    self.inflater.lose()
                if self.frames:
                    out.append(self._flush(False, Issue.TCP_GAP))
            self._frame(frame, out)

    def _flush(self, complete: bool, extra: Issue | None) -> Message:
        """The message built from the fragments held so far (they are let go)."""
        frames = self.frames
        self.frames = []
        self.held = 0
        return self._message(frames, complete, extra)

    def _hold(self, frame: Frame) -> None:
        """Keep a fragment of the message in progress, cutting it at --max-message-size
        (counted over the whole message, not per frame: a message that never ends
        cannot hold more). Each frame keeps its declared length."""
        room = self.max_message_size - self.held
        if len(frame.payload) > room:
            frame.payload = frame.payload[: max(room, 0)]
            frame.complete = False
            if Issue.MESSAGE_TOO_LARGE not in frame.issues:
                frame.issues.append(Issue.MESSAGE_TOO_LARGE)
        self.held += len(frame.payload)
        self.frames.append(frame)

    def _frame(self, frame: Frame, out: list[Any]) -> None:
        issues = frame.issues
        if self.closed:
            issues.append(Issue.DATA_AFTER_CLOSE)
        opcode = frame.opcode
        if opcode >= 8 or 3 <= opcode <= 7:
            # Control frames (and reserved opcodes) stand alone, even between fragments.
            out.append(self._message([frame], complete=frame.complete))
            if opcode == _CLOSE:
                self.closed = True
            return
        if opcode == _CONT:
            if frame.rsv & 4 and self.deflate is not None and not self.deflate.per_frame:
                issues.append(Issue.CONTINUATION_COMPRESSED)
            if not self.frames:
                if self.resynced:
                    issues.append(Issue.MID_STREAM if self.mid_stream else Issue.TCP_GAP)
                else:
                    issues.append(Issue.CONTINUATION_WITHOUT_MESSAGE)
                self.resynced = False
                out.append(self._message([frame], complete=False))
                return
        else:
            self.resynced = False
            if self.frames:
                out.append(self._flush(False, Issue.MESSAGE_INTERRUPTED))
        if not frame.fin:
            self._hold(frame)
            return
        if self.frames:
            self._hold(frame)
            out.append(self._flush(True, None))
        else:
            out.append(self._message([frame], complete=True))

    def _message(self, frames: list[Frame], complete: bool, extra: Issue | None = None) -> Message:
        """Build a message from its frames; ``extra`` is a finding about the message
        as a whole (interrupted, cut by the end of the stream or by a hole)."""
        first = frames[0]
        opcode = first.opcode
        if len(frames) == 1 and extra is None:
            # Most messages: one frame, whose findings are the message's.
            issues = first.issues[:]
            complete = complete and first.complete
            wire = first.payload
            sent = _sent(first)
        else:
            issues = [extra] if extra is not None else []
            for f in frames:
                if f.issues:
                    issues.extend(i for i in f.issues if i not in issues)
                if not f.complete:
                    complete = False
            wire = b"".join(f.payload for f in frames)
            sent = sum(_sent(f) for f in frames)
        payload = wire
        compressed = False
        inflater = self.inflater
        deflate = self.deflate
        if inflater is not None and deflate is not None and opcode < 3:
            if deflate.per_frame:
                # deflate-frame: RSV1 marks each compressed frame on its own.
                if any(f.rsv & 4 for f in frames):
                    compressed = True
                    parts = []
                    for f in frames:
                        part = f.payload
                        if f.rsv & 4:
                            part, issue = inflater.inflate(f.payload)
                            if issue is not None and issue not in issues:
                                issues.append(issue)
                        parts.append(part)
                    payload = b"".join(parts)
            elif first.rsv & 4:
                compressed = True
                if complete or Issue.MESSAGE_TOO_LARGE in issues:
                    # A message cut by the size cap still inflates up to the cap.
                    payload, issue = inflater.inflate(wire, whole=complete)
                    if issue is not None:
                        issues.append(issue)
                        complete = False
                        if issue is not Issue.MESSAGE_TOO_LARGE:
                            payload = wire
                else:
                    inflater.lose()
                    payload = wire
        text = None
        close_code = close_reason = None
        if opcode == _TEXT and (complete or not compressed):
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                if Issue.TCP_GAP in issues:
                    # Bytes on both sides of a hole meet here, and may split a
                    # character: no judgement on the sender's UTF-8.
                    text = payload.decode("utf-8", "replace")
                elif complete or exc.start < len(payload) - 3:
                    issues.append(Issue.INVALID_UTF8)
                else:
                    # A cut message may end inside a character; only earlier bytes count.
                    text = payload[: exc.start].decode("utf-8")
        elif opcode == _CLOSE:
            close_code, close_reason = parse_close(payload, issues)
            # The first Close on the wire started the closing handshake; one found
            # late (by a hunt that ended with the stream) may still be the first.
            packet = frames[-1].packets[0]
            if self.close is None or packet < self.close[0]:
                self.close = packet, close_code, close_reason
        self.messages += 1
        self.bytes += len(payload)  # the sum of the messages' length; ``wire``: as sent
        self.wire += sent
        if issues:
            self._count(issues)
        if compressed and complete:
            self.zwire += sent
            self.zplain += len(payload)
        last = frames[-1]
        rtt = None
        if opcode >= 8 and self.health is not None:
            rtt = self.health.frame(last.ts, self.direction, opcode, payload)
        return Message(
            session=self.session,
            ts=last.ts,
            dir=self.direction,
            opcode=opcode,
            frames=frames,
            masked=first.masked,
            compressed=compressed,
            payload=payload,
            wire_length=sent,
            text=text,
            close_code=close_code,
            close_reason=close_reason,
            issues=issues,
            packets=(first.packets[0], last.packets[-1]),
            complete=complete,
            rtt=rtt,
        )
