"""Connection health per session: how it ended, its heartbeat, round trips, idle time.

One SessionHealth per session, created when the session turns WebSocket (the 101, or
the first frame of a session joined mid-stream) and fed as the session goes:

    health = SessionHealth(upgrade_ts)
    health.seen(ts)                                  # WebSocket bytes at ts (idle time)
    rtt = health.frame(ts, direction, opcode, payload)  # every control frame; a pong
                                                     # that answers a ping returns its RTT
    result = health.finish(ended_by, close_c2s, close_s2c, end_ts)

Streaming: besides a few numbers, it holds only the pings still waiting for a pong
(at most MAX_OUTSTANDING distinct payloads per direction) and a sparse histogram of
the round trips. Sans-I/O like the rest of the core: times are the capture's.

Sessions that never became WebSocket (ended_by "rejected" or "not-websocket", an
Upgrade that no 101 and no frame followed) get no SessionHealth: their records carry
``"termination": null`` and ``"heartbeat": null``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wsinspect.histogram import US, Histogram
from wsinspect.issues import Issue

# A ping or a Close counts against its peer only if the peer had this long to answer
# before the session ended (or, for a ping, before the peer sent its own Close):
# a capture stopped, or a connection closed, just after a ping is no fault of the
# peer. One second is far above any loopback or LAN round trip and above most WAN ones.
ANSWER_GRACE = 1.0
# An end without a Close frame after this much silence is named as a probable idle
# timeout. The shortest common proxy and load-balancer idle timeouts are 30 s (Google
# Cloud backends) to 60 s (nginx proxy_read_timeout, AWS ALB), and the common
# heartbeat intervals (20 s in the websockets library, 25 s in Socket.IO) are shorter:
# a session that keeps its heartbeat never goes 30 s silent.
IDLE_THRESHOLD = 30.0
# Distinct ping payloads waiting for their pong, per direction. A peer that pings with
# a counter and is never answered would otherwise grow this without end; the oldest
# is given up (counted unanswered) when a new one does not fit.
MAX_OUTSTANDING = 64

_PING = 9
_PONG = 10
_CLOSE = 8


class Termination(StrEnum):
    """How a WebSocket session ended (the JSON ``"termination"``)."""

    CLEAN = "clean"  # Close frames from both sides (RFC 6455 7.1.2), whatever ended TCP after
    CLOSE_UNANSWERED = "close-unanswered"  # one side's Close never answered (RFC 6455 5.5.1)
    NO_CLOSE = "no-close"  # TCP ended by FIN with no Close: the application sees 1006 (RFC 6455 7.1.5)
    RESET = "reset"  # TCP ended by RST with no Close
    OPEN = "open"  # the capture ended while the connection was open, no Close sent
    STOPPED = "stopped"  # reading stopped early (-c, a stopped live capture)


# With no Close frame at all: what the end of the TCP connection (SessionSummary.ended_by) makes it.
# "reused": a new SYN on the same ports ended it, so the old connection is gone without
# a Close seen: like a FIN, the application saw 1006.
_WITHOUT_CLOSE = {
    "fin": Termination.NO_CLOSE,
    "reused": Termination.NO_CLOSE,
    "rst": Termination.RESET,
    "eof": Termination.OPEN,
    "stopped": Termination.STOPPED,
    # A WebSocket over HTTP/2 (RFC 8441) ends with its stream: END_STREAM both ways is
    # the stream's orderly close (as a FIN), RST_STREAM its reset, GOAWAY its refusal.
    "end_stream": Termination.NO_CLOSE,
    "rst_stream": Termination.RESET,
    "goaway": Termination.NO_CLOSE,
}
_HOW = {
    "fin": "connection closed (fin)",
    "reused": "connection replaced by a new one on its ports (reused)",
    "rst": "connection reset (rst)",
    "eof": "the capture ended (eof)",
    "stopped": "reading stopped",
    "end_stream": "HTTP/2 stream closed (end_stream)",
    "rst_stream": "HTTP/2 stream reset (rst_stream)",
    "goaway": "HTTP/2 connection went away (goaway)",
}


def termination(ended_by: str, close_c2s: bool, close_s2c: bool) -> Termination:
    """The termination of a session that became WebSocket (``ended_by`` as in
    SessionSummary: "fin", "rst", "eof", "stopped" or "reused")."""
    if close_c2s and close_s2c:
        return Termination.CLEAN
    if ended_by == "stopped":
        return Termination.STOPPED  # the answer to a Close might have come later
    if close_c2s or close_s2c:
        return Termination.CLOSE_UNANSWERED
    return _WITHOUT_CLOSE[ended_by]


@dataclass(frozen=True, slots=True)
class Rtt:
    """Round trips of answered pings, in seconds (median and p95: nearest rank, within
    0.8 % above 128 µs, see histogram.py)."""

    count: int
    min: float
    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, histogram: Histogram) -> Rtt | None:
        if not histogram.count:
            return None
        median, p95 = histogram.percentiles((0.5, 0.95))
        return cls(histogram.count, histogram.min / US, median / US, p95 / US, histogram.max / US)

    def record(self) -> dict[str, Any]:
        return {"count": self.count, "min": self.min, "median": self.median, "p95": self.p95, "max": self.max}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Pings and pongs of a session (RFC 6455 5.5.2, 5.5.3) and its longest silence."""

    pings_c2s: int
    pings_s2c: int
    pongs_c2s: int
    pongs_s2c: int
    unanswered: int  # pings no pong with their payload ever followed
    unsolicited_pongs: int  # pongs matching no ping: a one-way heartbeat (RFC 6455 5.5.3), no violation
    rtt: Rtt | None
    max_idle: float  # longest time without WebSocket bytes either way, from the 101 to the end

    def record(self) -> dict[str, Any]:
        return {
            "pings_c2s": self.pings_c2s,
            "pings_s2c": self.pings_s2c,
            "pongs_c2s": self.pongs_c2s,
            "pongs_s2c": self.pongs_s2c,
            "unanswered": self.unanswered,
            "unsolicited_pongs": self.unsolicited_pongs,
            "rtt": self.rtt.record() if self.rtt is not None else None,
            "max_idle": self.max_idle,
        }


@dataclass(frozen=True, slots=True)
class Health:
    """The result of SessionHealth.finish()."""

    termination: Termination
    ended_by: str
    end: float  # the end of the connection (end_ts): later than SessionSummary.end, its last data
    heartbeat: Heartbeat
    final_idle: float  # from the last WebSocket bytes to the end of the connection
    close_from: str | None  # direction of the first Close frame, if any
    close_wait: float | None  # from the first Close to the end of the connection
    issues: tuple[Issue, ...]
    # Every round trip (µs), for percentiles over many sessions (stats.py).
    rtts: Histogram = field(default_factory=Histogram, compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        """The session record's health fields."""
        return {"termination": str(self.termination), "heartbeat": self.heartbeat.record()}


class SessionHealth:
    """Heartbeat and idle bookkeeping of one open session (see the module docstring)."""

    __slots__ = (
        "close_ts",
        "idle_threshold",
        "last",
        "max_idle",
        "outstanding",
        "overdue",
        "pings",
        "pongs",
        "rtts",
        "unanswered",
        "unsolicited",
    )

    def __init__(self, start: float, idle_threshold: float = IDLE_THRESHOLD) -> None:
        self.idle_threshold = idle_threshold
        self.last = start  # time of the latest WebSocket bytes (the 101 at first)
        self.max_idle = 0.0
        self.pings = [0, 0]  # per direction: 0 c2s, 1 s2c
        self.pongs = [0, 0]
        # Pings waiting for a pong, per direction of the ping: payload -> [latest ts,
        # pings with this payload, earliest ts], in the order of their latest ping.
        self.outstanding: tuple[dict[bytes, list[float]], dict[bytes, list[float]]] = ({}, {})
        # Earliest ping per direction already known to be unanswered (given up), or None.
        self.overdue: list[float | None] = [None, None]
        self.unanswered = 0
        self.unsolicited = 0
        self.rtts = Histogram()
        self.close_ts: list[float | None] = [None, None]

    def seen(self, ts: float) -> None:
        """WebSocket bytes went by at ``ts``, either way (once per packet is enough).
        Earlier times (bytes released from behind a capture hole) change nothing."""
        last = self.last
        if ts > last:
            if ts - last > self.max_idle:
                self.max_idle = ts - last
            self.last = ts

    def frame(self, ts: float, direction: str, opcode: int, payload: bytes = b"") -> float | None:
        """A frame or message completed at ``ts`` (the time of the packet that completed
        it); ``payload`` matters for pings and pongs only. Returns the round trip in
        seconds when it is a pong that answers a ping."""
        self.seen(ts)
        if opcode < _CLOSE:
            return None
        d = 0 if direction == "c2s" else 1
        if opcode == _PING:
            self._ping(ts, d, payload)
        elif opcode == _PONG:
            return self._pong(ts, d, payload)
        elif opcode == _CLOSE and self.close_ts[d] is None:
            self.close_ts[d] = ts
        return None

    def _ping(self, ts: float, d: int, payload: bytes) -> None:
        self.pings[d] += 1
        waiting = self.outstanding[d]
        entry = waiting.pop(payload, None)
        if entry is None:
            entry = [ts, 0, ts]
            if len(waiting) >= MAX_OUTSTANDING:
                self._give_up(d, waiting.pop(next(iter(waiting))))
        entry[0] = ts
        entry[1] += 1
        waiting[payload] = entry  # re-inserted: the dict stays in order of latest ping

    def _pong(self, ts: float, d: int, payload: bytes) -> float | None:
        # RFC 6455 5.5.3: a pong answers the most recent ping (with its payload) from
        # the other side; the earlier ones with that payload need no answer of their own.
        self.pongs[d] += 1
        entry = self.outstanding[1 - d].pop(payload, None)
        if entry is None:
            self.unsolicited += 1
            return None
        rtt = max(ts - entry[0], 0.0)
        self.rtts.add(round(rtt * US))
        return rtt

    def _give_up(self, d: int, entry: list[float]) -> None:
        self.unanswered += int(entry[1])
        earliest = self.overdue[d]
        if earliest is None or entry[2] < earliest:
            self.overdue[d] = entry[2]

    def finish(self, ended_by: str, close_c2s: bool, close_s2c: bool, end_ts: float) -> Health:
        """The session ended at ``end_ts`` (the FIN or RST that ended the connection,
        or the last packet of the capture), for the reason ``ended_by``; ``close_c2s``
        and ``close_s2c``: whether each side sent a Close frame."""
        final_idle = max(end_ts - self.last, 0.0)
        self.seen(end_ts)
        for d in (0, 1):
            waiting = self.outstanding[d]
            for entry in waiting.values():
                self._give_up(d, entry)
            waiting.clear()
        ending = termination(ended_by, close_c2s, close_s2c)
        issues: list[Issue] = []
        for d in (0, 1):
            earliest = self.overdue[d]
            # The peer had to answer before the end, or before its own Close (after
            # which a ping may go unanswered, RFC 6455 5.5.2).
            peer_close = self.close_ts[1 - d]
            deadline = end_ts if peer_close is None else min(end_ts, peer_close)
            if earliest is not None and deadline - earliest >= ANSWER_GRACE and Issue.PING_UNANSWERED not in issues:
                issues.append(Issue.PING_UNANSWERED)
        closes = [(ts, d) for d, ts in enumerate(self.close_ts) if ts is not None]
        first_close = min(closes) if closes else None
        close_wait = end_ts - first_close[0] if first_close is not None else None
        if ending is Termination.CLOSE_UNANSWERED and (
            ended_by != "eof" or (close_wait is not None and close_wait >= ANSWER_GRACE)
        ):
            issues.append(Issue.CLOSE_UNANSWERED)
        if ending in (Termination.NO_CLOSE, Termination.RESET) and final_idle >= self.idle_threshold:
            issues.append(Issue.ENDED_AFTER_IDLE)
        heartbeat = Heartbeat(
            pings_c2s=self.pings[0],
            pings_s2c=self.pings[1],
            pongs_c2s=self.pongs[0],
            pongs_s2c=self.pongs[1],
            unanswered=self.unanswered,
            unsolicited_pongs=self.unsolicited,
            rtt=Rtt.of(self.rtts),
            max_idle=self.max_idle,
        )
        return Health(
            termination=ending,
            ended_by=ended_by,
            end=end_ts,
            heartbeat=heartbeat,
            final_idle=final_idle,
            close_from=None if first_close is None else ("c2s", "s2c")[first_close[1]],
            close_wait=close_wait,
            issues=tuple(issues),
            rtts=self.rtts,
        )


# -- words (the text summary and the TUI) --------------------------------------


def format_seconds(seconds: float) -> str:
    """A duration as people read it: "21 ms", "4.5 ms", "61.0 s"."""
    if seconds >= 1.0:
        return f"{seconds:.1f} s"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def describe_end(health: Health) -> str:
    """How the session ended, in words:
    "ended abnormally: no Close frame, connection closed (fin) after 61.0 s idle"."""
    how = _HOW.get(health.ended_by, health.ended_by)
    idle = format_seconds(health.final_idle)
    sender = {"c2s": "client", "s2c": "server"}.get(health.close_from or "", "")
    match health.termination:
        case Termination.CLEAN:
            return f"ended cleanly: the {sender} sent Close and the other side answered"
        case Termination.CLOSE_UNANSWERED:
            wait = format_seconds(health.close_wait or 0.0)
            return f"ended abnormally: the {sender}'s Close was never answered, {how} {wait} after it"
        case Termination.NO_CLOSE | Termination.RESET:
            return f"ended abnormally: no Close frame, {how} after {idle} idle"
        case Termination.OPEN:
            return f"still open when the capture ended ({idle} idle)"
        case Termination.STOPPED:
            return "still open when reading stopped"


def describe_heartbeat(heartbeat: Heartbeat) -> str:
    """Pings, round trips and the longest silence in words:
    "pings 12 → 0 ←, rtt median 21 ms p95 48 ms, 1 unanswered; longest idle 31.2 s"."""
    parts = [f"pings {heartbeat.pings_c2s} → {heartbeat.pings_s2c} ←"]
    if heartbeat.rtt is not None:
        parts.append(f"rtt median {format_seconds(heartbeat.rtt.median)} p95 {format_seconds(heartbeat.rtt.p95)}")
    if heartbeat.unanswered:
        parts.append(f"{heartbeat.unanswered} unanswered")
    if heartbeat.unsolicited_pongs:
        plural = "s" if heartbeat.unsolicited_pongs != 1 else ""
        parts.append(f"{heartbeat.unsolicited_pongs} unsolicited pong{plural}")
    return ", ".join(parts) + f"; longest idle {format_seconds(heartbeat.max_idle)}"
