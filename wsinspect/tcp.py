"""TCP stream reassembly: Segment -> StreamData / StreamEnd, per connection and direction.

Bytes are delivered in sequence order exactly once, whatever the order of the file:
retransmissions and overlaps are trimmed, out-of-order segments wait for the hole
before them to fill. A capture's order is not the wire's (multi-queue NICs, merged
captures, mirror ports and -i any record an ACK before the data it covers), so bytes
that the receiver acknowledged but the capture has not shown are awaited for
REORDER_WINDOW of capture time, and meanwhile the other direction's data that
acknowledged them waits too: each direction reaches the layer above after what its
peer had received (a response after its request). A hole that cannot fill (awaited
past the window, the connection ended, the out-of-order buffer is full, or the
capture ended) is never glued over: the data after it is delivered with ``gap`` set
to the number of missing bytes, and with Issue.TCP_BUFFER_OVERFLOW when the buffer
limit gave it up.

Bytes that the capture cut off a packet (its snapshot length; the IP length says they
were sent) are known lost at once: the stream moves past them, and they are reported
right away as a gap with no data, so that what follows is decoded in order.

Where copies of the same bytes differ, the first one captured is kept. Bytes already
delivered are not kept, so a copy that differs from them goes unnoticed (keeping them
would cost every in-order packet); one that differs from bytes still held out of order
is counted and flagged (Issue.TCP_OVERLAP_CONFLICT on the next data delivered). Between
two held segments that start at different places, the one that starts first is kept.
A RST's data is never delivered: it is diagnostic text (RFC 9293 3.5.3).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from wsinspect.issues import Issue
from wsinspect.packet import ACK, CUT_SHIFT, FIN, RST, SYN, Segment, reverse_key

SEQ_MOD = 1 << 32
SEQ_MASK = SEQ_MOD - 1
HALF_SPACE = 1 << 31
# A segment further ahead than this is not a plausible part of the stream.
MAX_AHEAD = 1 << 30
# Out-of-order bytes held per direction before the oldest hole is given up.
MAX_OOO_BYTES = 8 << 20
# How long (in capture time) bytes that the receiver acknowledged but the capture has
# not shown are still awaited: the file's order is not the wire's (multi-queue NICs,
# merged captures, mirror ports, -i any record an ACK before the data it covers), and
# such displacements are micro- to milliseconds. Past this the hole is loss.
REORDER_WINDOW = 1.0
# Closed flows remembered so that late retransmissions do not open a new connection.
MAX_CLOSED = 1 << 16
# The flags in_order() looks at: a segment that the capture cut (bits from CUT_SHIFT
# up) is not for the fast lane either.
_LANE_FLAGS = ACK | SYN | FIN | RST | -(1 << CUT_SHIFT)


class _Half:
    """One direction of a connection: the next expected sequence number and the
    segments that arrived ahead of it."""

    __slots__ = (
        "acked_at",
        "done",
        "fin_seq",
        "fin_ts",
        "gap",
        "isn",
        "issue",
        "last_ack",
        "next_seq",
        "ooo",
        "ooo_bytes",
        "waiting_bytes",
    )

    def __init__(self) -> None:
        self.isn: int | None = None  # the sequence number of its SYN, once seen
        self.next_seq: int | None = None
        self.gap = 0  # bytes declared lost just before next_seq, reported with the next data
        # Found while data is held, reported with the next data; never left pending
        # once nothing is held (in_order() does not look at it).
        self.issue: Issue | None = None
        # Segments ahead of next_seq by their sequence number: the bytes captured, the
        # time and packet number, and how many bytes after them the capture cut.
        self.ooo: dict[int, tuple[bytes, float, int, int]] = {}
        self.ooo_bytes = 0
        self.fin_seq: int | None = None
        self.fin_ts = 0.0
        self.done = False
        self.last_ack: int | None = None
        # The capture time at which the receiver was first seen to acknowledge bytes
        # the capture has not shown (the hole at next_seq); None while none are.
        self.acked_at: float | None = None
        self.waiting_bytes = 0  # of Connection.waiting for this direction


class Connection:
    """A TCP connection. Direction 0 sent the first packet seen; ``client`` is the
    direction that sent the SYN (None when the capture missed the handshake).

    ``session`` is an opaque slot for the layer above (the session model), which
    saves it a dictionary lookup per packet.
    """

    __slots__ = ("client", "first_packet", "halves", "index", "keys", "session", "ts", "waiting")

    def __init__(self, index: int, key: bytes, ts: float, first_packet: int) -> None:
        self.index = index
        self.first_packet = first_packet  # its number in the capture: orders connections globally
        self.keys = (key, reverse_key(key))
        self.halves = (_Half(), _Half())
        self.client: int | None = None
        self.ts = ts
        self.session: Any = None
        # Per direction, data held back because it acknowledges bytes of the other
        # direction that the capture has not shown yet: it was sent after them, and
        # is delivered after them (or after their hole is given up).
        # Each waits with the sequence number of the other direction it acknowledged.
        self.waiting: tuple[list[tuple[int, StreamData]], list[tuple[int, StreamData]]] = ([], [])


@dataclass(slots=True)
class StreamData:
    """Bytes of one direction, in order; ``gap`` bytes are missing just before them.
    ``issue``: Issue.TCP_BUFFER_OVERFLOW when that gap was given up because the
    out-of-order buffer was full; Issue.TCP_OVERLAP_CONFLICT when, since the last
    data, a copy of held bytes differed from the first."""

    conn: Connection
    direction: int
    ts: float
    data: memoryview | bytes
    gap: int
    packet: int
    issue: Issue | None = None


class _Round:
    """The data one round of delivery from held segments put out for a direction,
    from sequence number ``start`` on: held copies of the same bytes are compared
    with it."""

    __slots__ = ("chunks", "end", "ends", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.chunks: list[StreamData] = []
        self.ends: list[int] = []  # where each chunk ends, counted from start
        self.end = 0

    def add(self, ev: StreamData) -> None:
        self.chunks.append(ev)
        self.end += len(ev.data)
        self.ends.append(self.end)

    def skip(self, lost: int) -> None:
        """The stream moved past bytes the capture cut: nothing to compare there."""
        self.end += lost

    def differs(self, seq: int, copy: memoryview) -> bool:
        """Whether ``copy``, bytes from ``seq`` on, differs from what this round
        delivered there."""
        at = (seq - self.start) & SEQ_MASK
        i = bisect_right(self.ends, at)
        while copy and i < len(self.chunks):
            data = self.chunks[i].data
            begin = self.ends[i] - len(data)
            if at < begin:  # in bytes the capture cut, before this chunk
                copy = copy[begin - at :]
                at = begin
                continue
            offset = at - begin
            piece = data[offset : offset + len(copy)]
            if piece != copy[: len(piece)]:
                return True
            copy = copy[len(piece) :]
            at += len(piece)
            i += 1
        return False


@dataclass(slots=True)
class StreamEnd:
    """The connection is over: "fin", "rst", "reused" (a new SYN on its ports), "eof"
    or "stopped" (Reassembler.finish)."""

    conn: Connection
    reason: str
    ts: float


@dataclass(slots=True)
class TcpStats:
    connections: int = 0
    retransmitted: int = 0
    out_of_order: int = 0
    gaps: int = 0
    gap_bytes: int = 0
    overflows: int = 0  # holes given up because the out-of-order buffer was full
    conflicts: int = 0  # copies of held bytes that differed from the first


_NOTHING: list[StreamData | StreamEnd] = []


@dataclass
class Reassembler:
    """Per-connection, per-direction reassembly of a packet stream."""

    max_ooo_bytes: int = MAX_OOO_BYTES
    stats: TcpStats = field(default_factory=TcpStats)
    holding: int = 0  # directions with segments waiting behind a hole
    # Flow key (either direction) -> its connection and direction.
    flows: dict[bytes, tuple[Connection, int]] = field(default_factory=dict)
    _closed: OrderedDict[bytes, None] = field(default_factory=OrderedDict)

    def feed(self, seg: Segment, packet: int) -> list[StreamData | StreamEnd]:
        """Take one segment (``packet`` is its number in the capture)."""
        flags = seg.flags
        found = self.flows.get(seg.key)
        if found is None:
            if flags & RST or not (seg.payload or flags & SYN or flags >> CUT_SHIFT):
                return _NOTHING  # a pure ACK/FIN/RST of a flow we do not follow
            if not flags & SYN and seg.key in self._closed:
                return _NOTHING  # a late retransmission after the connection closed
            out: list[StreamData | StreamEnd] = []
            conn, d = self._open(seg, packet), 0
        else:
            conn, d = found
            if flags & SYN and not flags & ACK:
                half = conn.halves[d]
                if half.done or not _repeats_syn(half, seg.seq):
                    # A new connection on the same 4-tuple (RFC 9293 3.10.7.4).
                    out = self._end(conn, "reused", seg.ts, packet)
                    conn, d = self._open(seg, packet), 0
                else:
                    out = []
            else:
                out = []

        start = len(out)
        half = conn.halves[d]
        if flags & SYN:
            if half.isn is None:
                half.isn = seg.seq
            if half.next_seq is None:
                half.next_seq = (seg.seq + 1) & SEQ_MASK
            if conn.client is None:
                conn.client = d if not flags & ACK else 1 - d
        payload = seg.payload
        lost = flags >> CUT_SHIFT  # bytes sent after the payload that the capture cut
        # A RST's data is diagnostic text, not stream data (RFC 9293 3.5.3).
        if (payload or lost) and not flags & RST:
            if half.next_seq is None:
                half.next_seq = seg.seq  # joined mid-stream: start where we are
            # Data on a SYN (TCP Fast Open) starts after the SYN's sequence number.
            seq = (seg.seq + 1) & SEQ_MASK if flags & SYN else seg.seq
            self._data(conn, d, half, seq, payload, lost, seg.ts, packet, out)
        if flags & FIN:
            half.fin_seq = (seg.seq + len(payload) + lost) & SEQ_MASK
            half.fin_ts = seg.ts
            if half.next_seq is None:
                half.next_seq = half.fin_seq
        other = conn.halves[1 - d]
        if flags & ACK:
            other.last_ack = seg.ack
        # A pure ACK acts only while this connection holds data behind a hole:
        # whether pure ACKs reach here at all depends on other connections (the
        # Inspector passes the rest to ack() while nothing is held anywhere), and
        # this connection's decoding must not.
        if payload or lost or flags & (SYN | FIN | RST) or half.ooo or other.ooo:
            self._overdue(conn, d, half, seg.ts, out)
            self._overdue(conn, 1 - d, other, seg.ts, out)
            if other.acked_at is not None or half.acked_at is not None or conn.waiting[0] or conn.waiting[1]:
                self._keep_causal_order(conn, out, start)
        if flags & RST:
            out.extend(self._end(conn, "rst", seg.ts, packet))
        elif half.fin_seq is not None or conn.halves[1 - d].fin_seq is not None:
            # This segment may complete its own direction, or (an ACK that gave up a
            # hole) the other one.
            for h in conn.halves:
                if h.fin_seq is not None and h.next_seq == h.fin_seq and not h.ooo:
                    h.done = True
            if conn.halves[0].done and conn.halves[1].done:
                out.extend(self._end(conn, "fin", seg.ts, packet))
        return out

    def ack(self, key: bytes, ack: int) -> None:
        """A pure ACK that feed() need not see (nothing is held anywhere): only note
        how far the receiver got, as feed() would, for the end of the connection."""
        found = self.flows.get(key)
        if found is not None:
            conn, d = found
            conn.halves[1 - d].last_ack = ack

    def in_order(self, conn: Connection, d: int, seq: int, ack: int, flags: int, size: int) -> bool:
        """The common case, in one step: a data segment with ACK alone that continues
        its direction exactly, while neither direction holds data behind a hole or
        has ended. Takes it as feed() would, and returns True: its payload follows
        the stream's last bytes, with no gap, and the connection goes on. False, and
        nothing done, for any other segment (one the capture cut too): it goes through
        feed()."""
        half = conn.halves[d]
        if flags & _LANE_FLAGS != ACK or seq != half.next_seq or half.ooo or half.gap:
            return False
        other = conn.halves[1 - d]
        if other.ooo or other.fin_seq is not None or half.fin_seq is not None or half.acked_at or other.acked_at:
            return False
        if other.next_seq is not None and 0 < (ack - other.next_seq) & SEQ_MASK < HALF_SPACE:
            return False  # it acknowledges bytes the capture has not shown: feed() decides
        half.next_seq = (seq + size) & SEQ_MASK
        other.last_ack = ack
        return True

    def finish(self, ts: float, reason: str = "eof") -> list[tuple[Connection, list[StreamData | StreamEnd]]]:
        """End of the capture ("eof"), or of reading it ("stopped"): deliver what
        waits behind holes and end every connection, in the order they started."""
        conns = {conn.index: conn for conn, _ in self.flows.values()}
        done = []
        for _, conn in sorted(conns.items()):
            first, second = conn.halves
            if first.fin_seq is not None and second.fin_seq is not None:
                # Both sides closed; only bytes missing before a FIN kept it open.
                done.append((conn, self._end(conn, "fin", max(first.fin_ts, second.fin_ts), 0)))
            else:
                done.append((conn, self._end(conn, reason, ts, 0)))
        return done

    def _open(self, seg: Segment, packet: int) -> Connection:
        self.stats.connections += 1
        conn = Connection(self.stats.connections, seg.key, seg.ts, packet)
        self.flows[conn.keys[0]] = (conn, 0)
        self.flows[conn.keys[1]] = (conn, 1)
        for key in conn.keys:
            self._closed.pop(key, None)
        return conn

    def _data(
        self,
        conn: Connection,
        d: int,
        half: _Half,
        seq: int,
        payload: memoryview,
        lost: int,
        ts: float,
        packet: int,
        out: list[StreamData | StreamEnd],
    ) -> None:
        """Data from ``seq`` on: ``payload``, then ``lost`` bytes the capture cut."""
        next_seq = half.next_seq
        assert next_seq is not None
        rel = (seq - next_seq) & SEQ_MASK
        size = len(payload)
        if rel >= HALF_SPACE:
            overlap = SEQ_MOD - rel
            if overlap >= size + lost:
                self.stats.retransmitted += 1
                return
            if overlap > size:  # only part of the cut bytes is new
                lost -= overlap - size
                overlap = size
            payload = payload[overlap:]
            rel = 0
        if rel == 0:
            if half.ooo:
                self._fill(conn, d, half, payload, lost, ts, packet, out)
                return
            if payload:
                if conn.waiting[1 - d]:
                    self._release_waiting(conn, 1 - d, next_seq, out)
                half.next_seq = (next_seq + len(payload)) & SEQ_MASK
                out.append(StreamData(conn, d, ts, payload, half.gap, packet, half.issue))
                half.gap = 0
                half.issue = None
            if lost:
                self._cut(conn, d, half, ts, packet, lost, out)
            return
        if rel > MAX_AHEAD:
            return
        self.stats.out_of_order += 1
        if not half.ooo:
            self.holding += 1
        self._hold(half, seq, payload, lost, ts, packet)
        while half.ooo_bytes > self.max_ooo_bytes:
            self._skip_hole(conn, d, half, out, overflow=True)

    def _hold(self, half: _Half, seq: int, payload: memoryview, lost: int, ts: float, packet: int) -> None:
        """Keep a segment that arrived ahead of the stream (and the count of bytes the
        capture cut after it). Where a segment is already held at the same sequence
        number, its bytes are the first copy: a longer copy that agrees with them
        replaces it, one that differs adds only its bytes beyond."""
        ooo = half.ooo
        while (held := ooo.get(seq)) is not None:
            first = held[0]
            n = len(first)
            if payload[:n] != first[: len(payload)]:
                self._flag_conflict(half)
                if len(payload) <= n:
                    return
                payload = payload[n:]
                seq = (seq + n) & SEQ_MASK
                continue
            if len(payload) > n:
                half.ooo_bytes += len(payload) - n
                ooo[seq] = (bytes(payload), ts, packet, lost)
            return
        half.ooo_bytes += len(payload)
        ooo[seq] = (bytes(payload), ts, packet, lost)

    def _fill(
        self,
        conn: Connection,
        d: int,
        half: _Half,
        payload: memoryview,
        lost: int,
        ts: float,
        packet: int,
        out: list[StreamData | StreamEnd],
    ) -> None:
        """A segment continues the stream while later data is held, and is delivered
        with all that it brings in order. Held segments that it overlaps arrived first:
        where their bytes differ from its own, theirs are kept, and it fills only the
        room between them. Its ``lost`` bytes, cut by the capture, end it."""
        next_seq = half.next_seq
        assert next_seq is not None
        size = len(payload)
        covered: list[tuple[int, int]] = []
        conflict = False
        for seq, (data, _, _, _) in half.ooo.items():
            rel = (seq - next_seq) & SEQ_MASK  # above 0: nothing held is behind the stream
            if rel < size:
                end = min(rel + len(data), size)
                covered.append((rel, end))
                if payload[rel:end] != data[: end - rel]:
                    self._flag_conflict(half)
                    conflict = True
        sent = _Round(next_seq)
        if not conflict:
            # The same bytes whichever copy is delivered: this one, whole.
            if size:
                sent.add(self._emit(conn, d, half, ts, payload, half.gap, packet, out))
                half.next_seq = (next_seq + size) & SEQ_MASK
            if lost:
                self._cut(conn, d, half, ts, packet, lost, out, sent)
        else:
            at = 0
            for rel, end in sorted(covered):
                if rel > at:
                    self._hold(half, (next_seq + at) & SEQ_MASK, payload[at:rel], 0, ts, packet)
                at = max(at, end)
            if at < size or lost:
                self._hold(half, (next_seq + at) & SEQ_MASK, payload[at:], lost, ts, packet)
        self._drain(conn, d, half, out, sent)

    def _flag_conflict(self, half: _Half) -> None:
        """A copy of held bytes differs from the first one."""
        self.stats.conflicts += 1
        if half.issue is None:
            half.issue = Issue.TCP_OVERLAP_CONFLICT

    def _emit(
        self,
        conn: Connection,
        d: int,
        half: _Half,
        ts: float,
        data: memoryview | bytes,
        gap: int,
        packet: int,
        out: list[StreamData | StreamEnd],
        issue: Issue | None = None,
        at: int | None = None,
    ) -> StreamData:
        """Deliver ``data`` (from held segments; from sequence number ``at``, by default
        where the stream stands) with the gap and an issue pending before it; an issue
        of its own (an overflow) goes first, the pending one waits."""
        if data and conn.waiting[1 - d]:
            start = half.next_seq if at is None else at
            assert start is not None
            self._release_waiting(conn, 1 - d, start, out)
        if issue is None:
            issue = half.issue
            half.issue = None
        ev = StreamData(conn, d, ts, data, gap, packet, issue)
        out.append(ev)
        half.gap = 0
        return ev

    def _cut(
        self,
        conn: Connection,
        d: int,
        half: _Half,
        ts: float,
        packet: int,
        lost: int,
        out: list[StreamData | StreamEnd],
        sent: _Round | None = None,
    ) -> None:
        """The ``lost`` bytes at next_seq were cut by the capture (its snapshot length):
        lost for sure, so the stream moves past them now and says so at once, as a gap
        with no data (with the one pending, if any), rather than wait for what follows."""
        next_seq = half.next_seq
        assert next_seq is not None
        self.stats.gaps += 1
        self.stats.gap_bytes += lost
        half.next_seq = (next_seq + lost) & SEQ_MASK
        if sent is not None:
            sent.skip(lost)
        self._emit(conn, d, half, ts, b"", half.gap + lost, packet, out)

    def _drain(self, conn: Connection, d: int, half: _Half, out: list[StreamData | StreamEnd], sent: _Round) -> None:
        """Deliver held segments that the stream has now reached, continuing ``sent``.

        Segments that start exactly where the stream stands are taken by key, one
        after another (linear however they arrived); one pass over the rest then
        takes those that overlap it, and the two repeat while either progresses.
        Before the round everything held was ahead of the stream, so the bytes a held
        segment overlaps were delivered in ``sent``, and are compared.
        """
        ooo = half.ooo
        progress = True
        while ooo and progress:
            progress = False
            at = half.next_seq
            while at is not None and at in ooo:
                data, ts, packet, lost = self._release(half, at)
                if data:
                    sent.add(self._emit(conn, d, half, ts, memoryview(data), half.gap, packet, out))
                    at = half.next_seq = (at + len(data)) & SEQ_MASK
                if lost:
                    self._cut(conn, d, half, ts, packet, lost, out, sent)
                    at = half.next_seq
                progress = True
            for seq in list(ooo):
                next_seq = half.next_seq
                assert next_seq is not None
                rel = (seq - next_seq) & SEQ_MASK
                if rel == 0 or rel >= HALF_SPACE:
                    data, ts, packet, lost = self._release(half, seq)
                    skip = 0 if rel == 0 else SEQ_MOD - rel
                    if skip and sent.differs(seq, memoryview(data)[:skip]):
                        self._flag_conflict(half)
                    if skip < len(data):
                        sent.add(self._emit(conn, d, half, ts, memoryview(data)[skip:], half.gap, packet, out))
                        half.next_seq = (next_seq + len(data) - skip) & SEQ_MASK
                    behind = max(skip - len(data), 0)  # of the cut bytes, already passed
                    if lost > behind:
                        self._cut(conn, d, half, ts, packet, lost - behind, out, sent)
                    progress = True
        if half.issue is not None and not ooo:
            # Nothing held is left to carry it (in_order() would pass it by): report
            # it now, on no bytes, with the data delivered last.
            last = sent.chunks[-1] if sent.chunks else None
            ts, packet = (last.ts, last.packet) if last else (conn.ts, 0)
            out.append(StreamData(conn, d, ts, b"", 0, packet, half.issue))
            half.issue = None

    def _keep_causal_order(self, conn: Connection, out: list[StreamData | StreamEnd], start: int) -> None:
        """Data of a direction whose peer has acknowledged bytes the capture has not
        shown yet (out[start:] is what this packet delivered) waits for them: the
        layers above see the two directions in the order the peers reacted to each
        other (a response after its request, a pong after its ping). What waits goes
        out just before the other direction's first bytes beyond what it acknowledged,
        or once nothing is awaited there."""
        for x in (0, 1):
            waiting = conn.waiting[x]
            peer = conn.halves[1 - x]
            if peer.acked_at is not None:
                mine = [e for e in out[start:] if e.__class__ is StreamData and e.conn is conn and e.direction == x]
                if mine:
                    ack = peer.last_ack
                    assert ack is not None  # acked_at is set only under an ACK
                    # What x delivered here acknowledged at most peer.last_ack.
                    waiting.extend((ack, e) for e in mine)
                    held = {id(e) for e in mine}
                    out[start:] = [e for e in out[start:] if id(e) not in held]
                    half = conn.halves[x]
                    half.waiting_bytes += sum(len(e.data) for e in mine)
                    if half.waiting_bytes > self.max_ooo_bytes:
                        # Held back more than the buffer allows: the awaited bytes are loss.
                        peer.acked_at = -REORDER_WINDOW
                        self._overdue(conn, 1 - x, peer, 0.0, out)
            if waiting and peer.acked_at is None:
                out.extend(e for _, e in waiting)
                waiting.clear()
                conn.halves[x].waiting_bytes = 0

    def _release_waiting(self, conn: Connection, x: int, upto: int, out: list[StreamData | StreamEnd]) -> None:
        """Deliver what direction ``x`` holds back that acknowledged no more of the other
        direction than up to ``upto``, where that direction's next bytes start."""
        waiting = conn.waiting[x]
        n = 0
        while n < len(waiting) and (upto - waiting[n][0]) & SEQ_MASK < HALF_SPACE:
            out.append(waiting[n][1])
            conn.halves[x].waiting_bytes -= len(waiting[n][1].data)
            n += 1
        del waiting[:n]

    def _overdue(self, conn: Connection, d: int, half: _Half, ts: float, out: list[StreamData | StreamEnd]) -> None:
        """The receiver acknowledged bytes the capture has not shown. They may yet come
        (a file's order is not the wire's): they are awaited for REORDER_WINDOW of
        capture time, then the hole before them (up to the next held segment, or to
        the FIN) is loss, not delay."""
        ack = half.last_ack
        if ack is not None and half.fin_seq is not None and ack == (half.fin_seq + 1) & SEQ_MASK:
            ack = half.fin_seq  # the FIN's own sequence number is no byte
        while True:
            next_seq = half.next_seq
            if next_seq is None or ack is None or not 0 < (ack - next_seq) & SEQ_MASK < HALF_SPACE:
                half.acked_at = None
                return
            if half.acked_at is None:
                half.acked_at = ts
            if ts - half.acked_at < REORDER_WINDOW:
                return
            if not half.ooo:
                self._lost_up_to(half, half.fin_seq)  # nothing held: the hole runs to the FIN, if seen
                return
            self._skip_hole(conn, d, half, out, ack)

    def _lost_at_end(self, half: _Half) -> None:
        """The connection ends: bytes that its FIN, or else the receiver's last ACK,
        places beyond what was delivered never came. (Pure ACKs are followed only
        while data is held, so the ACK that would have declared it may not count.)"""
        self._lost_up_to(half, half.fin_seq if half.fin_seq is not None else half.last_ack)

    def _lost_up_to(self, half: _Half, seq: int | None) -> None:
        """The bytes between the last delivered and ``seq`` (a FIN, or what an ACK
        acknowledged) are lost: reported with the next data, or at the end."""
        next_seq = half.next_seq
        if next_seq is not None and seq is not None and 0 < (seq - next_seq) & SEQ_MASK < HALF_SPACE:
            lost = (seq - next_seq) & SEQ_MASK
            self.stats.gaps += 1
            self.stats.gap_bytes += lost
            half.gap += lost
            half.next_seq = seq

    def _skip_hole(
        self,
        conn: Connection,
        d: int,
        half: _Half,
        out: list[StreamData | StreamEnd],
        ack: int | None = None,
        overflow: bool = False,
    ) -> None:
        """Give up the hole before the nearest held segment and deliver from there;
        when an ACK declared the loss, only the bytes it acknowledged are given up
        (the rest may still arrive, retransmitted or reordered). ``overflow``: the
        out-of-order buffer is full, which the data after the hole says."""
        next_seq = half.next_seq
        assert next_seq is not None
        seq = min(half.ooo, key=lambda s: (s - next_seq) & SEQ_MASK)
        ahead = (seq - next_seq) & SEQ_MASK
        if ack is not None and (ack - next_seq) & SEQ_MASK < ahead:
            self._lost_up_to(half, ack)
            return
        data, ts, packet, lost = self._release(half, seq)
        self.stats.gaps += 1
        self.stats.gap_bytes += ahead
        issue = None
        if overflow:
            self.stats.overflows += 1
            issue = Issue.TCP_BUFFER_OVERFLOW
        sent = _Round(seq)
        sent.add(self._emit(conn, d, half, ts, memoryview(data), half.gap + ahead, packet, out, issue, seq))
        half.next_seq = (seq + len(data)) & SEQ_MASK
        if lost:
            self._cut(conn, d, half, ts, packet, lost, out, sent)
        self._drain(conn, d, half, out, sent)

    def _release(self, half: _Half, seq: int) -> tuple[bytes, float, int, int]:
        held = half.ooo.pop(seq)
        half.ooo_bytes -= len(held[0])
        if not half.ooo:
            self.holding -= 1
        return held

    def _end(self, conn: Connection, reason: str, ts: float, packet: int) -> list[StreamData | StreamEnd]:
        """End a connection at ``packet`` (0 at the end of the capture)."""
        out: list[StreamData | StreamEnd] = []
        for d, half in enumerate(conn.halves):
            while half.ooo:
                self._skip_hole(conn, d, half, out)
            self._lost_at_end(half)
            if half.gap:
                # A hole at the very end: tell the layer above, with no data after it.
                self._emit(conn, d, half, ts, b"", half.gap, packet, out)
            half.acked_at = None
        for half, waiting in zip(conn.halves, conn.waiting, strict=True):
            out.extend(e for _, e in waiting)
            waiting.clear()
            half.waiting_bytes = 0
        for key in conn.keys:
            if self.flows.get(key, (None,))[0] is conn:
                del self.flows[key]
            self._closed[key] = None
        while len(self._closed) > MAX_CLOSED:
            self._closed.popitem(last=False)
        out.append(StreamEnd(conn, reason, ts))
        return out


def _repeats_syn(half: _Half, seq: int) -> bool:
    """Whether a SYN (without ACK) opens the connection this direction already
    belongs to: a retransmission, with or without the data of the first (TCP Fast
    Open data moves next_seq, not the initial sequence number)."""
    if half.isn is not None:
        return seq == half.isn
    # Joined mid-stream, no SYN seen yet: it must come just before the next byte.
    return half.next_seq is None or (seq + 1) & SEQ_MASK == half.next_seq
