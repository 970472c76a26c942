"""The sans-I/O core: Inspector.feed(packet) -> Messages and SessionSummaries.

Every output (text, JSON Lines, the TUI, live capture) drives the same loop:

    inspector = Inspector(options)
    for raw in source:
        emit(inspector.feed(raw))
    emit(inspector.finish())

A connection goes through the states below; data of each direction is routed by
the state of the connection (one visible transition table, in ``_route``):

    HTTP      heads parsed; an Upgrade request opens a Session   -> UPGRADING
    UPGRADING request sent; client bytes wait for the response   -> WEBSOCKET (101)
                                                                 -> HTTP (rejected)
    WEBSOCKET frames parsed in both directions
    HUNTING   the capture missed the start and the first bytes were not HTTP: look
              for frames (joined mid-stream)                     -> PROBATION | IGNORED
    PROBATION frames found by the hunt, their messages held until the session has
              shown it is WebSocket                              -> WEBSOCKET | IGNORED
    IGNORED   not WebSocket: bytes dropped
    H2        HTTP/2 (RFC 9113): the client's first bytes were the preface, a 101
              switched to h2c, or a connection joined late showed frame headers;
              every extended CONNECT websocket stream is a session (RFC 8441)
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from wsinspect.deflate import DeflateParams, Inflater, negotiate
from wsinspect.frames import DEFAULT_MAX_MESSAGE_SIZE, FrameParser, Hunter, starts_with_frame
from wsinspect.h2 import (
    DEFAULT_MAX_FRAME_SIZE,
    FRAME_HEADER,
    PREFACE,
    ConnectionEnded,
    FrameType,
    H2Connection,
    H2Event,
    H2Finding,
    Start,
    StreamEnded,
    WsData,
    WsJoined,
    WsRequest,
    WsResponse,
    looks_like_h2,
    plausible_frame_header,
)
from wsinspect.health import Health, SessionHealth
from wsinspect.http import (
    BODY_UNTIL_CLOSE,
    Handshake,
    HttpHead,
    check_handshake,
    h2_head,
    is_upgrade_request,
    looks_like_http,
    parse_head,
    plausible_http_prefix,
    skip_body,
)
from wsinspect.issues import Issue
from wsinspect.messages import Message, MessageAssembler
from wsinspect.packet import ACK, FIN, RST, SYN, RawPacket, Segment, endpoints, shard_of, tcp_fields
from wsinspect.tally import Tally
from wsinspect.tcp import Connection, Reassembler, StreamData, StreamEnd
from wsinspect.vocab import Direction

if TYPE_CHECKING:
    from wsinspect.tls import KeyLog, Plaintext, TlsConnection, TlsInfo

# Client bytes held after an Upgrade request while its response has not been seen.
UPGRADE_WAIT_LIMIT = 256 << 10
# How many bytes of a connection that did not start with HTTP are searched for frames.
HUNT_LIMIT = 256 << 10
# Findings that real peers seldom produce and other protocols read as frames produce
# all the time: weighed against a hunted session, never against one with a handshake.
IMPLAUSIBLE = frozenset(
    {
        Issue.CLIENT_UNMASKED,
        Issue.SERVER_MASKED,
        Issue.RSV_WITHOUT_EXTENSION,
        Issue.RESERVED_OPCODE,
        Issue.CONTROL_TOO_LONG,
        Issue.CONTROL_FRAGMENTED,
        Issue.CONTROL_COMPRESSED,
        Issue.CONTINUATION_WITHOUT_MESSAGE,
        Issue.CONTINUATION_COMPRESSED,
        Issue.MESSAGE_INTERRUPTED,
        Issue.NON_MINIMAL_LENGTH,
        Issue.LENGTH_TOP_BIT,
        Issue.INVALID_UTF8,
        Issue.CLOSE_PAYLOAD_ONE_BYTE,
        Issue.CLOSE_CODE_INVALID,
        Issue.DATA_AFTER_CLOSE,
    }
)
# A hunted session is trusted after this many messages that carry something and have
# no implausible finding (or one such message in each direction), and dropped as
# soon as this many of its messages are implausible.
TRUST_AFTER = 3
DROP_AFTER = 2
# Messages held at most while a hunted session proves itself: then the count decides.
PROBATION_LIMIT = 64


class State(Enum):
    HTTP = "http"
    UPGRADING = "upgrading"
    WEBSOCKET = "websocket"
    HUNTING = "hunting"
    PROBATION = "probation"
    IGNORED = "ignored"
    H2 = "h2"


_WEBSOCKET = State.WEBSOCKET


@dataclass(slots=True)
class Options:
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # Decode only the connections of one shard out of ``shards`` (worker processes
    # of a parallel read share the connections out by their ports).
    shard: int = 0
    shards: int = 1
    # False: no Message events, only sessions (read -q); spares building them.
    messages: bool = True
    # TLS secrets (wss://); None: TLS connections are still found and reported, not decrypted.
    keylog: KeyLog | None = None
    # wsinspect stats (with messages False): the fast lane counts the messages it takes
    # here; the others (findings, fragments, Close) still come out as Messages.
    tally: Tally | None = None


@dataclass(frozen=True, slots=True)
class Close:
    code: int | None
    reason: str | None
    initiator: str  # "client" or "server"


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What one session was, as every output reports it."""

    session: int
    client: str
    server: str
    handshake: Handshake
    start: float
    end: float
    messages: tuple[int, int]  # c2s, s2c
    bytes: tuple[int, int]  # payload bytes after decompression, c2s, s2c
    wire_bytes: tuple[int, int]  # payload bytes as sent
    close: Close | None
    ended_by: str  # "fin", "rst", "eof", "stopped", "reused", "rejected", "not-websocket"
    mid_stream: bool
    issues: tuple[Issue, ...]  # session-level findings
    issue_count: int  # every finding of the session, at any level
    # Every finding of its messages by kind, most frequent first.
    issue_kinds: tuple[tuple[Issue, int], ...] = ()
    # Complete compressed messages only, c2s and s2c: payload bytes as sent, and inflated.
    compressed_wire: tuple[int, int] = (0, 0)
    compressed_bytes: tuple[int, int] = (0, 0)
    http_version: str = "1.1"  # "2": an extended CONNECT stream (RFC 8441)
    stream: int | None = None  # its HTTP/2 stream id
    tls: TlsInfo | None = None  # what the TLS under a wss:// session negotiated; None for ws://
    # How a WebSocket session ended and its heartbeat (health.py); None for a session
    # that never became WebSocket (rejected, not-websocket).
    health: Health | None = None

    @property
    def host(self) -> str | None:
        return self.handshake.host

    @property
    def path(self) -> str | None:
        return self.handshake.path

    @property
    def status(self) -> int | None:
        return self.handshake.status

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class SessionOpened:
    """A session was recognised (for live views that list sessions as they start)."""

    session: int
    client: str
    server: str
    ts: float


@dataclass(slots=True)
class SessionUpgraded:
    """A session's handshake got its response, accepted or refused (for live views,
    which would otherwise learn host, path and status only when the session ends)."""

    session: int
    handshake: Handshake
    ts: float


@dataclass(frozen=True, slots=True)
class TlsUndecrypted:
    """A TLS connection whose application data could not be decrypted (``info.reason`` says why): reported once,
    when it ends, so that an encrypted connection is never silently dropped."""

    client: str
    server: str
    start: float
    first_packet: int
    info: TlsInfo


Event = Message | SessionSummary | SessionOpened | SessionUpgraded | TlsUndecrypted


class _Conn:
    """Upper-layer state of one TCP connection (hung on Connection.session)."""

    __slots__ = (
        "buf",
        "client",
        "fed",
        "h2",
        "h2_issues",
        "hunted",
        "hunters",
        "marks",
        "requests",
        "session",
        "skip",
        "state",
        "streams",
        "tls",
    )

    def __init__(self) -> None:
        self.state = State.HTTP
        # The TLS layer of a wss:// connection: the states above then route its plaintext.
        self.tls: TlsConnection | None = None
        self.client: int | None = None
        self.buf = (bytearray(), bytearray())  # unparsed HTTP bytes per direction
        self.fed = [0, 0]  # bytes ever put in buf, per direction
        # Where the chunks still in buf began (a count of ``fed``), with their time,
        # packet and the bytes lost just before them: bytes held while HTTP waits
        # become frames with their own.
        self.marks: tuple[list[tuple[int, float, int, int]], list[tuple[int, float, int, int]]] = ([], [])
        self.skip = [0, 0]  # body bytes still to skip, or http.BODY_CHUNKED / BODY_UNTIL_CLOSE
        self.requests: deque[HttpHead] = deque()  # requests awaiting a response
        self.session: _Session | None = None
        self.hunters: list[Hunter | None] = [None, None]  # joined mid-stream: where frames start
        self.hunted = 0  # bytes searched for frames
        # HTTP/2: the connection's layer, its WebSocket sessions by stream id, and its findings that no stream
        # owns (given to every session of the connection, those opened later too).
        self.h2: H2Connection | None = None
        self.streams: dict[int, _Session] = {}
        self.h2_issues: list[Issue] = []

    def take(self, d: int, data: bytes | memoryview, ts: float, packet: int, gap: int = 0) -> None:
        """Buffer a chunk of direction ``d`` for HTTP parsing (``gap`` bytes were lost
        just before it)."""
        buf = self.buf[d]
        marks = self.marks[d]
        fed = self.fed[d]
        start = fed - len(buf)
        while len(marks) > 1 and marks[1][0] <= start:
            del marks[0]  # all of that chunk was parsed
        if marks and marks[-1][0] == fed and marks[-1][3]:
            gap += marks.pop()[3]  # a hole with no bytes after it yet: it comes before these
        marks.append((fed, ts, packet, gap))
        self.fed[d] = fed + len(data)
        buf += data

    def pieces(self, d: int) -> list[tuple[int, int, bytes, float, int]]:
        """What direction ``d`` holds, chunk by chunk: (packet, d, bytes, time, bytes
        lost before them); a hole after the last bytes is a piece of no bytes."""
        buf = self.buf[d]
        start = self.fed[d] - len(buf)
        marks = self.marks[d]
        if not marks:
            return []
        ends = [mark[0] for mark in marks[1:]] + [self.fed[d]]
        return [
            (packet, d, bytes(buf[max(offset, start) - start : end - start]), ts, gap)
            for (offset, ts, packet, gap), end in zip(marks, ends, strict=True)
            if (end > start and end > offset) or (gap and offset >= start)
        ]


class _Session:
    __slots__ = (
        "clean",
        "client",
        "deflate",
        "dirs",
        "end",
        "half_closed",
        "handshake",
        "health",
        "held",
        "implausible",
        "issues",
        "mid_stream",
        "number",
        "server",
        "start",
        "stream",
        "tls",
    )

    def __init__(self, number: int, client: str, server: str, ts: float) -> None:
        self.number = number
        self.stream: int | None = None  # HTTP/2: the extended CONNECT's stream
        self.half_closed = 0  # HTTP/2: bit d set once direction d ended the stream
        self.client = client
        self.server = server
        self.handshake = Handshake(None, None)
        self.start = ts
        self.end = ts
        # The message assemblers, indexed by connection direction.
        self.dirs: tuple[MessageAssembler, MessageAssembler] | None = None
        self.deflate: DeflateParams | None = None
        self.mid_stream = False
        self.issues: list[Issue] = []
        # A hunted session on probation: its messages, held until it is trusted
        # (None once it is, or for a session with a handshake), and their weighing:
        # messages that carry something cleanly, per direction, and implausible ones.
        self.held: list[Message] | None = None
        self.clean = [0, 0]
        self.implausible = 0
        self.tls: TlsInfo | None = None
        self.health: SessionHealth | None = None  # from when it turns WebSocket

    def flag(self, issue: Issue) -> None:
        if issue not in self.issues:
            self.issues.append(issue)


class Inspector:
    """Feed it packets; it returns the messages and sessions they complete."""

    # Whether feed() takes the fast lane (MessageAssembler.lane); tests turn it off to check that
    # the lane and the general path agree.
    lane = True

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.tcp = Reassembler()
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts = 0.0
        self._sessions = 0

    # -- the loop ---------------------------------------------------------

    def feed(self, raw: RawPacket) -> list[Event]:
        """Take the next captured packet. Packets keep their number in the capture
        (RawPacket.number); unnumbered ones are numbered from 1 in feed order."""
        number = self.packets = raw.number or self.packets + 1
        ts = raw.ts
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        data = raw.data
        fields = tcp_fields(raw.linktype, data)
        if fields is None:
            return []
        key, seq, ack, flags, start, end = fields
        tcp = self.tcp
        if start < end:
            # The fast lane, most packets: the next data of an established session.
            found = tcp.flows.get(key)
            if found is not None:
                conn, d = found
                st = conn.session
                if (
                    st is not None
                    and st.state is _WEBSOCKET
                    and st.tls is None  # ciphertext takes the general path, through the TLS layer
                    and tcp.in_order(conn, d, seq, ack, flags, end - start)
                ):
                    # The assembler's fast lane takes what it can, the general path the rest.
                    session = st.session
                    assert session is not None and session.dirs is not None
                    payload = data[start:end]
                    out: list[Event] = []
                    options = self.options
                    taken = (
                        session.dirs[d].lane(payload, ts, number, options.messages, out, options.tally)
                        if self.lane
                        else 0
                    )
                    if taken < end - start:
                        self._frames(st, d, payload[taken:] if taken else payload, ts, number, 0, out)
                    elif ts > session.end:
                        _seen(session, ts)
                    return self._wanted(out)
        elif not (flags & (SYN | FIN | RST) or tcp.holding):
            # A pure ACK acts only while some stream waits behind a hole; else all
            # it tells is how far the receiver got.
            if flags & ACK:
                tcp.ack(key, ack)
            return []
        seg = Segment(ts, key, seq, ack, flags, data[start:end])
        shards = self.options.shards
        if shards > 1 and shard_of(key, shards) != self.options.shard:
            return []
        out = []
        for ev in tcp.feed(seg, number):
            self._stream_event(ev, out)
        return self._wanted(out)

    def finish(self, ended_by: str = "eof") -> list[Event]:
        """End of input: flush every connection and session. ``ended_by`` says why
        the connections still open end here: "eof" (the capture ended) or "stopped"
        (reading stopped early: a packet count, a stopped live capture)."""
        return [ev for _, events in self.finish_connections(ended_by) for ev in events]

    def finish_connections(self, ended_by: str = "eof") -> list[tuple[int, list[Event]]]:
        """finish(), per connection: (the number of its first packet, its events),
        in that order (parallel workers merge on it)."""
        done = []
        for conn, stream_events in self.tcp.finish(self.last_ts, ended_by):
            out: list[Event] = []
            for ev in stream_events:
                self._stream_event(ev, out)
            done.append((conn.first_packet, self._wanted(out)))
        return done

    def _wanted(self, out: list[Event]) -> list[Event]:
        """The events to return: without messages when Options.messages is off (the
        fast lane makes none; the general path's are dropped here), unless a tally
        counts the lane's: then the caller counts the general path's."""
        if not out or self.options.messages or self.options.tally is not None:
            return out
        return [ev for ev in out if ev.__class__ is not Message]

    def _stream_event(self, ev: StreamData | StreamEnd, out: list[Event]) -> None:
        match ev:
            case StreamData():
                conn = ev.conn
                state = conn.session
                if state is None:
                    state = conn.session = _Conn()
                    if ev.data:
                        self._tls_start(conn, state, ev)
                if ev.issue is not None and state.session is not None:
                    state.session.flag(ev.issue)  # a TCP finding: of the session, not of one message
                if ev.data or ev.gap:
                    if state.tls is None:
                        self._route(conn, state, ev, out)
                    else:
                        self._tls(conn, state, ev, out)
            case StreamEnd():
                state = ev.conn.session
                if state is not None:
                    if state.tls is None:
                        self._end(ev.conn, state, ev.reason, ev.ts, out)
                    else:
                        self._tls_end(ev.conn, state, ev, out)

    # -- TLS (wss://): between TCP and the routing ------------------------

    def _tls_start(self, conn: Connection, st: _Conn, ev: StreamData) -> None:
        """A connection's first bytes: TLS when they are the client's ClientHello (tls.looks_like_tls), or, when
        the capture missed the start, a TLS record (then it is TLS without keys, never hunted for frames)."""
        lead = ev.data[0]
        if not (CHANGE_CIPHER_SPEC <= lead <= HEARTBEAT or lead & 0x80):
            return  # not TLS (HTTP starts with a letter): spares importing the TLS layer and its cryptography
        from wsinspect import tls

        first = bytes(ev.data[: tls.SNIFF_BYTES])
        d = ev.direction
        if conn.client in (None, d) and not ev.gap and tls.looks_like_tls(first):
            client: int | None = d
        elif (conn.client is None or ev.gap) and tls.looks_like_record(first):
            client = None
        else:
            return
        keylog = self.options.keylog
        if keylog is None:
            # No key log given: the connection is still reported ("no key"). Not stored in the caller's Options.
            keylog = tls.KeyLog()
        st.tls = tls.TlsConnection(keylog, client)

    def _tls(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        tls = st.tls
        assert tls is not None
        if st.state is State.IGNORED and tls.info.decrypted:
            return  # decrypted, and not WebSocket: nothing more to report
        self._plaintext(conn, st, ev, tls.feed(ev.direction, ev.data, ev.gap), out)

    def _plaintext(
        self, conn: Connection, st: _Conn, ev: StreamData, pieces: list[Plaintext], out: list[Event]
    ) -> None:
        """Route decrypted application data as the bytes of the connection (HTTP, WebSocket, HTTP/2 alike); lost
        plaintext, whose size is unknown, stands as a gap of TLS_LOST bytes."""
        for p in pieces:
            if st.state is _WEBSOCKET and not p.gap_before and self.lane:
                # The assembler's fast lane over plaintext, as feed() takes it over cleartext segments.
                session = st.session
                assert session is not None and session.dirs is not None
                view = memoryview(p.data)
                options = self.options
                taken = session.dirs[p.direction].lane(view, ev.ts, ev.packet, options.messages, out, options.tally)
                if taken == len(view):
                    if ev.ts > session.end:
                        _seen(session, ev.ts)
                    continue
                self._frames(st, p.direction, view[taken:], ev.ts, ev.packet, 0, out)
                continue
            gap = TLS_LOST if p.gap_before else 0
            self._route(conn, st, StreamData(conn, p.direction, ev.ts, p.data, gap, ev.packet), out)
        tls = st.tls
        assert tls is not None
        if tls.issues and st.session is not None:
            for issue in tls.issues:
                st.session.flag(issue)

    def _tls_end(self, conn: Connection, st: _Conn, ev: StreamEnd, out: list[Event]) -> None:
        tls = st.tls
        assert tls is not None
        self._plaintext(conn, st, StreamData(conn, 0, ev.ts, b"", 0, 0), tls.finish(), out)
        self._end(conn, st, ev.reason, ev.ts, out)
        info = tls.info
        if not info.decrypted:
            if info.reason is None:
                info.reason = "handshake incomplete"
            keys = conn.keys
            if tls.client is not None:
                client, server = endpoints(keys[tls.client])
            else:
                # No ClientHello seen: the client is the side the connection's SYN came from, else the higher port.
                client, server = endpoints(keys[conn.client if conn.client is not None else 0])
                if conn.client is None and _port(client) < _port(server):
                    client, server = server, client
            out.append(TlsUndecrypted(client, server, conn.ts, conn.first_packet, replace(info)))

    # -- connection state machine -----------------------------------------

    def _route(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        match st.state:
            case State.WEBSOCKET:
                self._frames(st, ev.direction, ev.data, ev.ts, ev.packet, ev.gap, out)
            case State.HTTP | State.UPGRADING:
                self._http(conn, st, ev, out)
            case State.HUNTING:
                self._hunt(conn, st, ev, out)
            case State.PROBATION:
                self._frames(st, ev.direction, ev.data, ev.ts, ev.packet, ev.gap, out)
            case State.IGNORED:
                pass
            case State.H2:
                self._h2(conn, st, ev, out)

    def _http(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        d = ev.direction
        if st.fed[d] < len(PREFACE) and st.client != 1 - d and not ev.gap and self._h2_preface(conn, st, ev, out):
            return
        if st.client is None:
            # The client is whoever sends a request, or receives a response, first;
            # a head may arrive a few bytes at a time, so wait while it still could be one.
            st.take(d, ev.data, ev.ts, ev.packet)
            buf = st.buf[d]
            head = bytes(buf[:8])
            if looks_like_http(head):
                st.client = d if not head.startswith(b"HTTP/") else 1 - d
            elif len(head) < 8 and plausible_http_prefix(head):
                return
            elif conn.client is not None and not ev.gap:
                if d != conn.client and len(buf) <= HUNT_LIMIT and _h2_settings_first(buf):
                    return  # HTTP/2 in TLS: the server's SETTINGS may come before the client's preface
                # Captured from its start (its SYN seen, nothing lost before these
                # bytes), and it did not start with HTTP: another protocol, not a
                # WebSocket session whose handshake the capture missed.
                buf.clear()
                st.state = State.IGNORED
                return
            else:
                data = bytes(buf)
                buf.clear()
                st.state = State.HUNTING
                self._hunt(conn, st, StreamData(conn, d, ev.ts, data, ev.gap, ev.packet), out)
                return
            ev = StreamData(conn, d, ev.ts, b"", 0, ev.packet)  # its bytes are in the buffer now
        if ev.gap and st.state is State.UPGRADING and d == st.client:
            # What the client sends after its Upgrade request waits for the 101 (frames
            # sent early): a hole in it goes with those bytes to the frame parser.
            st.take(d, ev.data, ev.ts, ev.packet, ev.gap)
            self._requests(conn, st, ev, out)
            return
        if ev.gap:
            # A hole in HTTP: the heads around it cannot be trusted.
            if st.session is not None:
                st.session.flag(Issue.TCP_GAP)
            st.buf[d].clear()
            st.skip[d] = 0
            if st.state is State.HTTP and st.session is None:
                st.state = State.HUNTING
                self._hunt(conn, st, ev, out)
                return
        st.take(d, ev.data, ev.ts, ev.packet)
        if d == st.client:
            self._requests(conn, st, ev, out)
        else:
            self._responses(conn, st, ev, out)

    def _body(self, st: _Conn, d: int) -> bool:
        """Skip body bytes (http.skip_body); False when more are needed first."""
        st.skip[d], done = skip_body(st.buf[d], st.skip[d])
        return done

    def _requests(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        d = ev.direction
        buf = st.buf[d]
        while buf:
            if st.state is State.UPGRADING:
                # Bytes after an Upgrade request (and its body, if any) wait for the
                # response; if the capture never shows one (it saw one direction
                # only), do not wait forever.
                self._body(st, d)
                if len(buf) > UPGRADE_WAIT_LIMIT:
                    self._not_http(conn, st, d, ev, out)
                return
            if not self._body(st, d):
                return
            if not buf:
                return
            head, used, ok = parse_head(buf)
            if not ok:
                self._not_http(conn, st, d, ev, out)
                return
            if head is None:
                return
            del buf[:used]
            # A new request ends a refused upgrade's session.
            self._finish_session(st, out, "rejected")
            length = head.body_length()
            st.skip[d] = length if length else 0
            if is_upgrade_request(head):
                st.state = State.UPGRADING
                session = self._open(conn, st, ev.ts, out)
                session.handshake = Handshake(head, None)
            else:
                st.requests.append(head)

    def _responses(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        d = ev.direction
        buf = st.buf[d]
        while buf:
            if not self._body(st, d):
                return
            if not buf:
                return
            head, used, ok = parse_head(buf)
            if not ok or (head is not None and not head.is_response):
                self._not_http(conn, st, d, ev, out)
                return
            if head is None:
                return
            del buf[:used]
            status = head.status or 0
            if 100 <= status < 200 and status != 101:
                continue  # interim response (RFC 9110 15.2)
            if st.state is State.UPGRADING and not st.requests:
                if self._upgraded(conn, st, head, ev, out):
                    return
                continue
            if status == 101 and "websocket" in head.tokens("upgrade"):
                # A switch to WebSocket that no Upgrade request asked for, or whose
                # request the capture missed: the session starts here all the same.
                asked = st.requests.popleft() if st.requests else None
                self._finish_session(st, out, "rejected")
                session = self._open(conn, st, ev.ts, out)
                if asked is not None:
                    session.flag(Issue.UPGRADE_NOT_REQUESTED)
                st.requests.clear()
                self._upgraded(conn, st, head, ev, out)
                return
            request = st.requests.popleft() if st.requests else None
            if status == 101 and "h2c" in head.tokens("upgrade") and request is not None:
                # RFC 7540 3.2: HTTP/2 from the byte after this head; the request's HTTP2-Settings
                # are the client's first SETTINGS.
                self._h2_open(conn, st, st.client or 0, Start.UPGRADED, request.get("http2-settings"), ev, out)
                return
            method = request.method if request else None
            length = head.body_length(method)
            st.skip[d] = BODY_UNTIL_CLOSE if length is None else length
            if method == "CONNECT" and 200 <= status < 300:
                # A proxy's tunnel (RFC 9110 9.3.6): a new conversation starts, and its
                # first request may be an Upgrade (ws:// through a proxy, RFC 6455 4.1).
                st.requests.clear()

    def _open(self, conn: Connection, st: _Conn, ts: float, out: list[Event] | None) -> _Session:
        """A new session on the connection; ``out`` None: on probation, not numbered
        or announced until it is trusted (_trust)."""
        assert st.client is not None
        key = conn.keys[st.client]
        client, server = endpoints(key)
        session = _Session(0, client, server, ts)
        st.session = session
        if st.tls is not None:
            session.tls = st.tls.info
        if out is None:
            session.held = []
        else:
            self._number(session, out)
        return session

    def _number(self, session: _Session, out: list[Event]) -> None:
        self._sessions += 1
        session.number = self._sessions
        out.append(SessionOpened(session.number, session.client, session.server, session.start))

    def _upgraded(self, conn: Connection, st: _Conn, response: HttpHead, ev: StreamData, out: list[Event]) -> bool:
        """The response to the Upgrade request arrived; True when it switched protocols."""
        session = st.session
        assert session is not None and st.client is not None
        session.handshake = check_handshake(session.handshake.request, response)
        for issue in session.handshake.issues:
            session.flag(issue)
        out.append(SessionUpgraded(session.number, session.handshake, ev.ts))
        session.end = ev.ts
        client_buf = st.buf[st.client]
        if session.handshake.accepted:
            self._start_websocket(st, session, ev.ts)
            if client_buf:
                session.flag(Issue.FRAMES_BEFORE_101)
            self._release(st, out)
            return True
        # Refused: the connection goes on as HTTP. The session stays attached until
        # the next request, in case frames follow anyway (upgrade-without-101); for
        # that reason a body "until close" is not skipped but parsed.
        st.state = State.HTTP
        st.skip[1 - st.client] = response.body_length("GET") or 0
        if client_buf:
            self._requests(conn, st, StreamData(conn, st.client, ev.ts, b"", 0, ev.packet), out)
        return False

    def _not_http(self, conn: Connection, st: _Conn, d: int, ev: StreamData, out: list[Event]) -> None:
        """Bytes that are not HTTP where HTTP was expected."""
        session = st.session
        buf = bytes(st.buf[d])
        if session is not None and session.dirs is None:
            if not starts_with_frame(buf, d == st.client, 7):
                # Not frames either: after a refusal, a body that runs until the
                # connection closes (RFC 9112 6.3), such as an error page.
                st.buf[d].clear()
                st.skip[d] = BODY_UNTIL_CLOSE
                return
            # An upgrade that was refused or never answered, and yet the peers go on:
            # decode what follows as frames, flagged (RFC 6455 4.1) when the server
            # was seen to send something else (else its answer was not captured).
            assert st.client is not None
            if st.fed[1 - st.client]:
                session.flag(Issue.NO_101)
            self._start_websocket(st, session, session.start)
            self._release(st, out)
            return
        st.buf[0].clear()
        st.buf[1].clear()
        self._finish_session(st, out, "not-websocket")
        st.state = State.HUNTING
        self._hunt(conn, st, StreamData(conn, d, ev.ts, buf, 0, ev.packet), out, http=False)

    def _release(self, st: _Conn, out: list[Event]) -> None:
        """The session turned WebSocket: what both directions held becomes frames."""
        pieces = st.pieces(0) + st.pieces(1)
        st.buf[0].clear()
        st.buf[1].clear()
        self._held_frames(st, pieces, out)

    def _held_frames(self, st: _Conn, pieces: list[tuple[int, int, bytes, float, int]], out: list[Event]) -> None:
        """Bytes held before the session was known to be WebSocket, (packet, direction,
        bytes, time, bytes lost before them): parsed chunk by chunk in capture order,
        so that each frame keeps the time and packet that carried it."""
        for packet, d, data, ts, gap in sorted(pieces, key=lambda piece: piece[0]):
            self._frames(st, d, data, ts, packet, gap, out)

    def _start_websocket(self, st: _Conn, session: _Session, ts: float) -> None:
        """The session turns WebSocket at ``ts`` (its 101; its first frame when joined
        mid-stream; its Upgrade request when no 101 came)."""
        assert st.client is not None
        # Heartbeat and idle time count from here (health.py).
        session.health = SessionHealth(ts)
        self._assemblers(session, st.client)
        st.state = State.WEBSOCKET

    def _assemblers(self, session: _Session, client: int) -> None:
        """The session's pair of message assemblers, with the extensions its handshake negotiated."""
        health = session.health
        if session.mid_stream:
            # Without a handshake, assume what most peers negotiate: permessage-deflate
            # with context takeover; the inflaters start untrusted.
            params: DeflateParams | None = DeflateParams()
        else:
            hs = session.handshake
            params, ok = negotiate(hs.extensions, hs.offered_extensions if hs.request is not None else None)
            if not ok:
                session.flag(Issue.EXTENSION_PARAMS_INVALID)
        session.deflate = params
        rsv_allowed = 4 if params is not None else 0
        if session.handshake.extensions and params is None:
            session.flag(Issue.EXTENSION_NOT_DECODED)
            rsv_allowed = 7  # an unknown extension may define any RSV bit
        max_message_size = self.options.max_message_size
        dirs = []
        for d in (0, 1):
            is_client = d == client
            inflater = None
            if params is not None:
                nct = params.client_no_context_takeover if is_client else params.server_no_context_takeover
                bits = params.client_max_window_bits if is_client else params.server_max_window_bits
                inflater = Inflater(nct, max_message_size, trusted=not session.mid_stream, window_bits=bits)
            parser = FrameParser(is_client, rsv_allowed, max_message_size, synced=not session.mid_stream)
            direction = Direction.C2S if is_client else Direction.S2C
            dirs.append(
                MessageAssembler(
                    session.number, direction, parser, inflater, params, max_message_size, session.mid_stream, health
                )
            )
        session.dirs = (dirs[0], dirs[1])

    # -- joined mid-stream ------------------------------------------------

    def _hunt(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event], http: bool = True) -> None:
        """Look for frames in a connection whose handshake the capture missed
        (``http``: or for HTTP again; False for bytes that just failed as HTTP)."""
        d = ev.direction
        if http and looks_like_http(bytes(ev.data[:8])):
            # HTTP again, where a segment starts (after a hole in an earlier request
            # or response, or a capture that began inside one): parse it from here,
            # so that a later Upgrade is seen whole.
            st.state = State.HTTP
            st.hunters = [None, None]
            for d2 in (0, 1):
                st.buf[d2].clear()
                st.skip[d2] = 0
            st.requests.clear()
            self._http(conn, st, StreamData(conn, d, ev.ts, ev.data, 0, ev.packet), out)
            return
        hunter = st.hunters[d]
        if (hunter is None or ev.gap) and _h2_frames_start(ev.data):
            self._h2_open(conn, st, _guess_client(conn, d), Start.MIDSTREAM, None, ev, out)
            return
        if hunter is None or ev.gap:
            # Only segment starts are tried: this may not be WebSocket at all, and
            # scanning every byte of, say, TLS traffic would cost too much.
            hunter = st.hunters[d] = Hunter(None, 4, starts_only=True, window=HUNT_LIMIT)
        st.hunted += len(ev.data)
        pos = hunter.feed(ev.data, ev.ts, ev.packet)
        if pos is None:
            if st.hunted > HUNT_LIMIT:
                st.state = State.IGNORED
                st.hunters = [None, None]
            return
        # Only clients mask (RFC 6455 5.1): the masking tells who is who.
        st.client = d if hunter.buf[pos + 1] & 0x80 else 1 - d
        # What both directions held: this one from the trusted boundary on.
        other_hunter = st.hunters[1 - d]
        pieces = [(packet, d, piece, ts, 0) for piece, ts, packet in hunter.pieces(pos)]
        if other_hunter is not None:
            pieces += [(packet, 1 - d, piece, ts, 0) for piece, ts, packet in other_hunter.pieces(0)]
        st.hunters = [None, None]
        session = self._open(conn, st, min(pieces)[3], None)
        session.mid_stream = True
        session.flag(Issue.MID_STREAM)
        self._start_websocket(st, session, session.start)
        st.state = State.PROBATION
        assert session.dirs is not None
        parser = session.dirs[d].parser
        parser.synced = True
        parser.skipped += pos
        self._held_frames(st, pieces, out)

    # -- frames and messages ----------------------------------------------

    def _frames(
        self,
        st: _Conn,
        d: int,
        data: bytes | memoryview,
        ts: float,
        packet: int,
        gap: int,
        out: list[Event],
        session: _Session | None = None,
    ) -> None:
        """Bytes of direction ``d`` for the connection's session (or ``session``: one of an HTTP/2 connection's)."""
        session = session or st.session
        assert session is not None
        if session.held is None:
            self._feed(session, d, data, ts, packet, gap, out)
        else:
            held = session.held
            start = len(held)
            self._feed(session, d, data, ts, packet, gap, held)
            self._weigh(st, session, held[start:], out)

    def _feed(
        self, session: _Session, d: int, data: bytes | memoryview, ts: float, packet: int, gap: int, out: list[Any]
    ) -> None:
        """Bytes of the session's direction ``d`` to its assembler (``out``: the events, or a hunted session's
        held messages)."""
        assert session.dirs is not None
        if gap:
            session.flag(Issue.TCP_GAP)
        session.dirs[d].feed(data, ts, packet, gap, out)
        if data and ts > session.end:
            # Data released from behind a hole carries its earlier time; a hole
            # reported alone (at the end of the connection) is no time of the session.
            _seen(session, ts)

    # -- a hunted session on probation ------------------------------------

    def _weigh(self, st: _Conn, session: _Session, new: list[Message], out: list[Event], final: bool = False) -> None:
        """Weigh a hunted session's new messages: trusted once it has shown enough
        of what only WebSocket peers send (TRUST_AFTER clean messages that carry
        something, or one each way), dropped once DROP_AFTER messages are what real
        peers seldom send (another protocol read as frames). ``final``: the
        connection ended, and what was seen decides."""
        for m in new:
            if not IMPLAUSIBLE.isdisjoint(m.issues):
                session.implausible += 1
            elif m.payload or m.opcode >= 8:
                session.clean[m.dir is not Direction.C2S] += 1
        held = session.held
        assert held is not None
        clean = session.clean
        if session.implausible >= DROP_AFTER or (final and not (clean[0] or clean[1])):
            self._drop(st, session)
        elif session.implausible == 0 and (clean[0] + clean[1] >= TRUST_AFTER or (clean[0] and clean[1]) or final):
            self._trust(st, session, out)
        elif len(held) >= PROBATION_LIMIT:
            if clean[0] + clean[1] > 4 * session.implausible:
                self._trust(st, session, out)
            else:
                self._drop(st, session)

    def _trust(self, st: _Conn, session: _Session, out: list[Event]) -> None:
        """The hunted session is WebSocket: number it, and give out what it held, in
        packet order."""
        held = session.held
        assert held is not None and session.dirs is not None
        session.held = None
        self._number(session, out)
        for assembler in session.dirs:
            assembler.session = session.number
        held.sort(key=lambda m: m.packets[1])
        for m in held:
            m.session = session.number
        out.extend(held)
        if session.stream is None:
            st.state = State.WEBSOCKET

    def _drop(self, st: _Conn, session: _Session) -> None:
        """Not WebSocket after all: nothing of it was given out, nothing will be."""
        if session.stream is not None:
            del st.streams[session.stream]  # HTTP/2: only that stream was not WebSocket
            return
        st.session = None
        st.state = State.IGNORED

    # -- the end ----------------------------------------------------------

    def _end(self, conn: Connection, st: _Conn, reason: str, ts: float, out: list[Event]) -> None:
        if st.state is State.H2:
            self._h2_end(conn, st, reason, out)
            return
        session = st.session
        if session is not None and session.dirs is None and session.handshake.response is None:
            if reason not in ("eof", "stopped"):
                # The connection closed with no answer; one still open when the
                # capture ended violated nothing: its answer was just not captured.
                session.flag(Issue.NO_101)
            if st.client is not None and starts_with_frame(bytes(st.buf[st.client][:14]), True, 7):
                # The client went on with frames that waited for a 101 the capture
                # never shows (it saw one direction only, or lost the answer).
                self._start_websocket(st, session, session.start)
                self._release(st, out)
        if session is not None and session.dirs is not None:
            if session.held is not None:
                held = session.held
                start = len(held)
                for assembler in session.dirs:
                    assembler.finish(held)
                self._weigh(st, session, held[start:], out, final=True)
                if st.session is None:
                    st.state = State.IGNORED
                    return
            else:
                for assembler in session.dirs:
                    assembler.finish(out)
        elif session is not None and session.handshake.response is not None:
            reason = "rejected"  # refused, whether or not another request followed
        self._finish_session(st, out, reason, ts)
        st.state = State.IGNORED

    def _finish_session(self, st: _Conn, out: list[Event], ended_by: str, end_ts: float | None = None) -> None:
        """The session ends (``end_ts``: the FIN, RST or last packet that ended its
        connection)."""
        session = st.session
        if session is None:
            return
        st.session = None
        self._summary(session, out, ended_by, end_ts)

    def _summary(self, session: _Session, out: list[Event], ended_by: str, end_ts: float | None = None) -> None:
        hs = session.handshake
        dirs = session.dirs
        c = s = None
        close = None
        if dirs is not None:
            c, s = (dirs[0], dirs[1]) if dirs[0].direction is Direction.C2S else (dirs[1], dirs[0])
            # The first Close on the wire started the closing handshake (RFC 6455 7.1.2).
            first = min((a for a in dirs if a.close is not None), key=lambda a: a.close[0], default=None)  # type: ignore[index]
            if first is not None and first.close is not None:
                _, code, reason = first.close
                close = Close(code, reason, first.direction.sender)
        health = None
        issue_count = (c.issue_count if c else 0) + (s.issue_count if s else 0)
        if session.health is not None and c is not None and s is not None:
            health = session.health.finish(ended_by, c.closed, s.closed, session.end if end_ts is None else end_ts)
            for issue in health.issues:
                session.flag(issue)
        out.append(
            SessionSummary(
                session=session.number,
                client=session.client,
                server=session.server,
                handshake=hs,
                start=session.start,
                end=session.end,
                messages=(c.messages if c else 0, s.messages if s else 0),
                bytes=(c.bytes if c else 0, s.bytes if s else 0),
                wire_bytes=(c.wire if c else 0, s.wire if s else 0),
                close=close,
                ended_by=ended_by,
                mid_stream=session.mid_stream,
                issues=tuple(session.issues),
                issue_count=issue_count + len(session.issues),
                issue_kinds=_kinds(session.issues, dirs),
                compressed_wire=(c.zwire if c else 0, s.zwire if s else 0),
                compressed_bytes=(c.zplain if c else 0, s.zplain if s else 0),
                http_version="1.1" if session.stream is None else "2",
                stream=session.stream,
                tls=None if session.tls is None else replace(session.tls),
                health=health,
            )
        )

    # -- HTTP/2 (RFC 9113) and its WebSocket streams (RFC 8441) ------------

    def _h2_open(
        self,
        conn: Connection,
        st: _Conn,
        client: int,
        start: Start,
        settings: str | None,
        ev: StreamData,
        out: list[Event],
    ) -> None:
        """The connection is HTTP/2 from here: what both directions hold goes to its H2Connection."""
        st.client = client
        st.state = State.H2
        st.h2 = H2Connection(client, start, http2_settings=settings)
        held = (bytes(st.buf[0]), bytes(st.buf[1]))
        st.buf[0].clear()
        st.buf[1].clear()
        st.hunters = [None, None]
        if start is Start.MIDSTREAM:
            self._h2(conn, st, ev, out)
            return
        for d in (client, 1 - client):
            if held[d]:
                self._h2_events(conn, st, st.h2.feed(d, held[d]), ev.ts, ev.packet, out)

    def _h2_preface(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> bool:
        """The first bytes of a would-be client: the HTTP/2 preface (RFC 9113 3.4) starts HTTP/2 with prior
        knowledge, in cleartext or in decrypted TLS (ALPN h2). True when the bytes were taken: the preface, or
        what may still become it (a lone "P" could also begin "POST ")."""
        d = ev.direction
        buf = st.buf[d]
        if st.fed[d] != len(buf) or not looks_like_h2(bytes(buf) + bytes(ev.data[: len(PREFACE)])):
            return False
        st.take(d, ev.data, ev.ts, ev.packet)
        if len(buf) >= len(PREFACE):
            self._h2_open(conn, st, d, Start.PREFACE, None, ev, out)
        return True

    def _h2(self, conn: Connection, st: _Conn, ev: StreamData, out: list[Event]) -> None:
        assert st.h2 is not None
        if ev.issue is not None:
            for session in st.streams.values():
                session.flag(ev.issue)  # a TCP finding: of every session the connection carries
        self._h2_events(conn, st, st.h2.feed(ev.direction, ev.data, ev.gap), ev.ts, ev.packet, out)

    def _h2_events(
        self,
        conn: Connection,
        st: _Conn,
        events: list[H2Event],
        ts: float,
        packet: int,
        out: list[Event],
        reason: str = "",
    ) -> None:
        """What the HTTP/2 layer found, applied to the sessions of its WebSocket streams (``reason``: how the
        connection ended, for the streams finish() reports open)."""
        for ev in events:
            match ev:
                case WsData():
                    session = st.streams.get(ev.stream)
                    if session is not None and session.dirs is not None:
                        self._frames(st, ev.d, ev.data, ts, packet, ev.gap, out, session)
                case WsRequest():
                    session = self._h2_session(conn, st, ev.stream, ts, out)
                    session.handshake = Handshake(h2_head(ev.headers), None)
                    if not ev.reliable:
                        session.flag(Issue.H2_HPACK_STATE_LOST)  # decoded with a dynamic table that lacks entries
                case WsResponse():
                    session = st.streams.get(ev.stream)
                    if session is None:
                        continue
                    hs = session.handshake
                    session.handshake = Handshake(hs.request, h2_head(ev.headers))
                    if not ev.reliable:
                        session.flag(Issue.H2_HPACK_STATE_LOST)
                    session.end = ts
                    out.append(SessionUpgraded(session.number, session.handshake, ts))
                    if session.handshake.accepted:
                        assert st.client is not None
                        session.health = SessionHealth(ts)  # heartbeat and idle time count from the 2xx
                        self._assemblers(session, st.client)
                    else:
                        self._h2_finish(st, ev.stream, "rejected", out)  # RFC 8441 5: only 2xx opens the tunnel
                case WsJoined():
                    # Its request was missed: joined mid-way, on probation as a hunted HTTP/1.1 session (the
                    # DATA of another protocol may start like a frame), where the HTTP/2 layer saw a WebSocket
                    # frame start the stream's DATA in direction d.
                    assert st.client is not None
                    session = self._h2_session(conn, st, ev.stream, ts, None)
                    session.mid_stream = True
                    session.flag(Issue.MID_STREAM)
                    session.health = SessionHealth(ts)
                    self._assemblers(session, st.client)
                    assert session.dirs is not None
                    session.dirs[ev.d].parser.synced = True
                case StreamEnded():
                    session = st.streams.get(ev.stream)
                    if session is None:
                        continue
                    if ev.how == "end_stream":
                        # END_STREAM half-closes one direction (RFC 9113 5.1): over when both did.
                        session.half_closed |= 1 << (ev.d or 0)
                        if session.half_closed == 3:
                            self._h2_finish(st, ev.stream, "end_stream", out)
                    else:
                        self._h2_finish(st, ev.stream, reason if ev.how == "eof" else ev.how, out)
                case H2Finding():
                    session = st.streams.get(ev.stream) if ev.stream is not None else None
                    if session is not None:
                        session.flag(ev.issue)
                    elif ev.stream is None:
                        if ev.issue not in st.h2_issues:
                            st.h2_issues.append(ev.issue)
                        for session in st.streams.values():
                            session.flag(ev.issue)
                case ConnectionEnded():
                    pass  # the streams it refused end by StreamEnded; the others end with the connection

    def _h2_session(self, conn: Connection, st: _Conn, stream: int, ts: float, out: list[Event] | None) -> _Session:
        """A session for a WebSocket stream, numbered as it is recognised (``out`` None: on probation, numbered
        when trusted, as _open)."""
        assert st.client is not None
        client, server = endpoints(conn.keys[st.client])
        session = _Session(0, client, server, ts)
        session.stream = stream
        if st.tls is not None:
            session.tls = st.tls.info  # HTTP/2 in decrypted TLS (ALPN h2)
        for issue in st.h2_issues:
            session.flag(issue)
        if out is None:
            session.held = []
        else:
            self._number(session, out)
        st.streams[stream] = session
        return session

    def _h2_finish(self, st: _Conn, stream: int, ended_by: str, out: list[Event]) -> None:
        session = st.streams[stream]
        if session.held is not None and session.dirs is not None:
            # On probation at its end: trusted only on the usual evidence (TRUST_AFTER clean messages, or one
            # each way), not on whatever it showed as a hunted HTTP/1.1 session is: one DATA frame that starts
            # like a WebSocket frame is too little to tell (another protocol's DATA often does).
            held = session.held
            start = len(held)
            for assembler in session.dirs:
                assembler.finish(held)
            self._weigh(st, session, held[start:], out)
            if session.held is not None or stream not in st.streams:
                st.streams.pop(stream, None)
                return
        elif session.dirs is not None:
            for assembler in session.dirs:
                assembler.finish(out)
        del st.streams[stream]
        self._summary(session, out, ended_by)

    def _h2_end(self, conn: Connection, st: _Conn, reason: str, out: list[Event]) -> None:
        """The TCP connection ended: so did every stream still open. After a GOAWAY, that is what ended them
        (RFC 9113 6.8), unless reading stopped first."""
        assert st.h2 is not None
        if st.h2.goaway is not None and reason != "stopped":
            reason = "goaway"
        self._h2_events(conn, st, st.h2.finish(), self.last_ts, self.packets, out, reason)
        for stream in list(st.streams):
            self._h2_finish(st, stream, reason, out)  # no response yet: h2.py does not report those
        st.state = State.IGNORED


def _h2_frames_start(data: bytes | memoryview) -> bool:
    """Whether a segment of a connection joined late starts with HTTP/2 frames: a plausible frame header followed
    by another, or running exactly to the segment's end (as h2.find_frame_header judges, at offset 0 only:
    scanning every byte of every unknown connection would cost too much). Frames of at most the default
    SETTINGS_MAX_FRAME_SIZE only (RFC 9113 4.2), which a WebSocket frame header (its first byte 0x8X for a final
    frame) never looks like."""
    end = plausible_frame_header(data, 0, DEFAULT_MAX_FRAME_SIZE)
    return end != -1 and (end == len(data) or plausible_frame_header(data, end, DEFAULT_MAX_FRAME_SIZE) != -1)


def _h2_settings_first(buf: bytearray) -> bool:
    """Whether a server's first bytes are a SETTINGS frame, its connection preface (RFC 9113 3.4)."""
    if len(buf) < FRAME_HEADER or buf[3] != FrameType.SETTINGS:
        return False
    return plausible_frame_header(buf, 0, DEFAULT_MAX_FRAME_SIZE) != -1


def _guess_client(conn: Connection, d: int) -> int:
    """The client's direction in a connection joined late: the SYN's sender if seen, else the side of the higher
    port (an ephemeral one)."""
    if conn.client is not None:
        return conn.client
    sport, dport = struct.unpack("!HH", conn.keys[d][-4:])
    return d if sport > dport else 1 - d


def _kinds(
    issues: list[Issue], dirs: tuple[MessageAssembler, MessageAssembler] | None
) -> tuple[tuple[Issue, int], ...]:
    """A session's findings by kind, its own and its messages', most frequent first."""
    kinds = dict.fromkeys(issues, 1)
    for assembler in dirs or ():
        for issue, n in assembler.issue_kinds.items():
            kinds[issue] = kinds.get(issue, 0) + n
    return tuple(sorted(kinds.items(), key=lambda kind: -kind[1]))


# Plaintext lost in a TLS stream (a capture hole, a record that did not decrypt) is of unknown size: it is passed
# on as a gap longer than any frame's payload (RFC 6455 5.2: at most 2^63 - 1), so that the frame in progress is
# cut and the next frame hunted for, rather than the frames after the hole counted as that payload's rest.
TLS_LOST = 1 << 63
# The first byte of a TLS record (RFC 8446 5.1 ContentType: change_cipher_spec .. heartbeat, RFC 6520).
CHANGE_CIPHER_SPEC, HEARTBEAT = 20, 24


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _seen(session: _Session, ts: float) -> None:
    """The session was active at ``ts``, later than anything before: its end moves, and
    its idle time (health.py) counts from here."""
    session.end = ts
    if session.health is not None:
        session.health.seen(ts)
