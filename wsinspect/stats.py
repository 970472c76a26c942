"""`wsinspect stats`: totals, distributions and load over a whole capture, streaming.

Fed the same Message and SessionSummary objects every output reads (and each
session's Health, once the Inspector computes it), in any order:

    stats = Stats()
    for event in events:
        if isinstance(event, Message): stats.message(event)
        elif isinstance(event, SessionSummary): stats.session(event, health)
    print(stats.render()); orjson.dumps(stats.to_json())

The per-message counting is tally.py's Tally, which the Inspector can fill by itself
(``Stats(tally=inspector_tally)``) so that `stats` can run without Message objects.

Memory stays flat in the size of the capture: percentiles come from fixed log-scale
histograms (histogram.py: exact below 128, within 0.8 % above; times in µs), the
timeline keeps a fixed number of buckets and doubles their width when time runs past
them, the longest idle gaps are a bounded heap, and per-server and per-client tables
stop taking new keys at MAX_KEYS (the rest is counted under "others").
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from wsinspect.frames import close_code_name
from wsinspect.health import Health, format_seconds
from wsinspect.histogram import US, Histogram
from wsinspect.messages import Message
from wsinspect.session import SessionSummary
from wsinspect.tally import BYTES_C2S, BYTES_S2C, ENDS, MSG_C2S, MSG_S2C, STARTS, Tally
from wsinspect.vocab import opcode_label

# Distinct servers and clients tracked one by one; more are counted together.
MAX_KEYS = 10_000
# Rows shown in the top lists (servers, clients, idle gaps).
TOP = 10
# A session shorter than this counts as short: many short sessions from one client
# are a reconnect storm.
SHORT_SESSION = 1.0
PERCENTILES = (0.5, 0.9, 0.99)


@dataclass(slots=True)
class _Load:
    """What one server or client saw."""

    sessions: int = 0
    messages: int = 0
    bytes: int = 0
    short: int = 0  # sessions under SHORT_SESSION
    abnormal: int = 0  # ended without a clean close (no-close, reset, close-unanswered)

    def add(self, other: _Load) -> None:
        self.sessions += other.sessions
        self.messages += other.messages
        self.bytes += other.bytes
        self.short += other.short
        self.abnormal += other.abnormal


_ABNORMAL = frozenset(("no-close", "reset", "close-unanswered"))


def _percentile_record(h: Histogram, scale: int = 1) -> dict[str, Any]:
    """count, min, p50, p90, p99, max and mean; divided by ``scale`` (US: seconds), else integers."""
    p50, p90, p99 = h.percentiles(PERCENTILES)
    record: dict[str, Any] = {"count": h.count, "min": h.min, "p50": p50, "p90": p90, "p99": p99, "max": h.max}
    if scale != 1:
        record = {key: value / scale if key != "count" else value for key, value in record.items()}
    record["mean"] = h.total / h.count / scale if h.count else 0.0
    return record


class Stats:
    """The aggregator behind `wsinspect stats` (see the module docstring)."""

    def __init__(self, top: int = TOP, tally: Tally | None = None) -> None:
        self.top = top
        # The per-message counters (tally.py); the Inspector may fill one for us.
        self.tally = tally if tally is not None else Tally()
        self.rtts = Histogram()
        self.durations = Histogram()
        self.issues: dict[str, int] = {}
        self.sessions = 0
        self.terminations: dict[str, int] = {}
        self.close_codes: dict[int | None, int] = {}
        self.servers: dict[tuple[str, str | None], _Load] = {}
        self.clients: dict[str, _Load] = {}
        self.others = {"servers": _Load(), "clients": _Load()}
        self.idle: list[tuple[float, int, str, str, str | None]] = []  # min-heap of the longest gaps

    # -- feeding -------------------------------------------------------------

    def message(self, m: Message) -> None:
        """Count one message (round trips come with the session's Health)."""
        self.tally.add(m.ts, m.dir == "c2s", m.opcode, len(m.payload), m.wire_length, m.compressed)
        if m.issues:
            for issue in m.issues:
                self.issues[issue] = self.issues.get(issue, 0) + 1

    def session(self, s: SessionSummary, health: Health | None = None) -> None:
        """Count one session; ``health`` is its Health (by default the summary's: None
        for a session that never became WebSocket)."""
        if health is None:
            health = getattr(s, "health", None)
        self.sessions += 1
        termination = str(health.termination) if health is not None else "none"
        self.terminations[termination] = self.terminations.get(termination, 0) + 1
        if s.close is not None:
            self.close_codes[s.close.code] = self.close_codes.get(s.close.code, 0) + 1
        # Until the connection ended (the FIN, RST or end of capture) where known; the
        # summary's own end is its last data.
        end = health.end if health is not None else s.end
        duration = max(end - s.start, 0.0)
        self.durations.add(round(duration * US))
        self.tally.timeline.add(STARTS, s.start)
        self.tally.timeline.add(ENDS, end)
        # The Inspector puts the health findings among the session's: each counts once.
        for issue in (*s.issues, *(i for i in health.issues if i not in s.issues)) if health else s.issues:
            self.issues[issue] = self.issues.get(issue, 0) + 1
        messages = s.messages[0] + s.messages[1]
        size = s.bytes[0] + s.bytes[1]
        short = duration < SHORT_SESSION
        abnormal = termination in _ABNORMAL
        for tally in (
            _load(self.servers, (s.server, s.handshake.host), self.others["servers"]),
            _load(self.clients, s.client.rsplit(":", 1)[0], self.others["clients"]),
        ):
            tally.sessions += 1
            tally.messages += messages
            tally.bytes += size
            tally.short += short
            tally.abnormal += abnormal
        if health is not None:
            self._idle((health.heartbeat.max_idle, s.session, s.client, s.server, termination))
            self.rtts.merge(health.rtts)

    def events(self, events: list[Any]) -> None:
        """Count the Messages and SessionSummaries among an Inspector's events."""
        for ev in events:
            if ev.__class__ is Message:
                self.message(ev)
            elif ev.__class__ is SessionSummary:
                self.session(ev)

    def merge(self, other: Stats) -> None:
        """Add what another Stats counted (a parallel worker's, over other connections).
        Session numbers in ``longest_idle`` stay those of the Stats that saw them."""
        self.tally.merge(other.tally)
        self.rtts.merge(other.rtts)
        self.durations.merge(other.durations)
        self.sessions += other.sessions
        _add_counts(self.issues, other.issues)
        _add_counts(self.terminations, other.terminations)
        _add_counts(self.close_codes, other.close_codes)
        _merge_loads(self.servers, other.servers, self.others["servers"])
        _merge_loads(self.clients, other.clients, self.others["clients"])
        for name, load in other.others.items():
            self.others[name].add(load)
        for item in other.idle:
            self._idle(item)

    def _idle(self, item: tuple[float, int, str, str, str | None]) -> None:
        if len(self.idle) < self.top:
            heapq.heappush(self.idle, item)
        elif item > self.idle[0]:
            heapq.heapreplace(self.idle, item)

    # -- results -------------------------------------------------------------

    def by_opcode(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {}
        totals = self.tally.totals
        for opcode in range(16):
            for d, k in (("c2s", opcode * 3), ("s2c", opcode * 3 + 48)):
                if totals[k]:
                    label = opcode_label(opcode)
                    out.setdefault(label, {})[d] = {
                        "messages": totals[k],
                        "bytes": totals[k + 1],
                        "wire_bytes": totals[k + 2],
                    }
        return out

    def peak_concurrent(self) -> tuple[int, float | None, list[int]]:
        """Sessions open during each timeline bucket; the peak and its bucket's start."""
        timeline = self.tally.timeline
        start, rows = timeline.span()
        concurrent = []
        opened = ended = 0
        for starts, ends in zip(rows[STARTS], rows[ENDS], strict=True):
            opened += starts
            concurrent.append(opened - ended)  # open at some time during the bucket
            ended += ends
        if not concurrent or not max(concurrent):
            return 0, None, concurrent
        peak = max(concurrent)
        return peak, start + concurrent.index(peak) * timeline.width, concurrent

    def to_json(self) -> dict[str, Any]:
        """Every figure as one JSON object (the documented `stats --json` contract)."""
        tally = self.tally
        messages = sum(tally.totals[0::3])
        size = sum(tally.totals[1::3])
        start, rows = tally.timeline.span()
        peak, peak_at, concurrent = self.peak_concurrent()
        width = tally.timeline.width
        return {
            "sessions": self.sessions,
            "messages": messages,
            "bytes": size,
            "wire_bytes": sum(tally.totals[2::3]),
            "by_opcode": self.by_opcode(),
            "compressed": {
                "messages": tally.compressed[0],
                "bytes": tally.compressed[1],
                "wire_bytes": tally.compressed[2],
                "share": tally.compressed[0] / messages if messages else 0.0,
            },
            "by_termination": dict(sorted(self.terminations.items(), key=lambda kv: -kv[1])),
            "close_codes": [
                {"code": code, "name": close_code_name(code) if code is not None else "no status", "sessions": n}
                for code, n in sorted(self.close_codes.items(), key=lambda kv: (-kv[1], kv[0] or 0))
            ],
            "length": {
                **_percentile_record(tally.lengths),
                "histogram": [{"low": lo, "high": hi, "count": n} for lo, hi, n in tally.lengths.log_buckets()],
            },
            "durations": _percentile_record(self.durations, US),
            "rtt": _percentile_record(self.rtts, US) if self.rtts.count else None,
            "longest_idle": [
                {"session": number, "client": client, "server": server, "max_idle": idle, "termination": term}
                for idle, number, client, server, term in sorted(self.idle, reverse=True)
            ],
            "issues": {str(issue): n for issue, n in sorted(self.issues.items(), key=lambda kv: -kv[1])},
            "servers": [
                {"server": server, "host": host, **_load_record(t)}
                for (server, host), t in _top(self.servers, self.top)
            ],
            "clients": [{"client": client, **_load_record(t)} for client, t in _top(self.clients, self.top)],
            "others": {name: _load_record(t) for name, t in self.others.items() if t.sessions},
            "peak_concurrent": {"sessions": peak, "at": peak_at},
            "timeline": {
                "start": start,
                "width": width,
                "messages_c2s": rows[MSG_C2S],
                "messages_s2c": rows[MSG_S2C],
                "bytes_c2s": rows[BYTES_C2S],
                "bytes_s2c": rows[BYTES_S2C],
                "concurrent": concurrent,
            },
        }

    def render(self) -> str:
        """The text report, in tshark -z style tables."""
        j = self.to_json()
        rule = "=" * 78
        thin = "-" * 78
        out = [rule, "WebSocket statistics", rule]
        out.append(
            f"Sessions: {j['sessions']}   Messages: {j['messages']}   Payload bytes: {j['bytes']}"
            f"   On the wire: {j['wire_bytes']}"
        )
        compressed = j["compressed"]
        if compressed["messages"]:
            out.append(
                f"Compressed: {compressed['messages']} messages ({compressed['share']:.1%}),"
                f" {compressed['wire_bytes']} bytes on the wire for {compressed['bytes']}"
            )
        out += [thin, f"{'Opcode':<10}{'Dir':<6}{'Messages':>12}{'Bytes':>16}{'Wire bytes':>16}"]
        for label, dirs in j["by_opcode"].items():
            for d, row in dirs.items():
                out.append(f"{label:<10}{d:<6}{row['messages']:>12}{row['bytes']:>16}{row['wire_bytes']:>16}")
        out += [thin, f"{'Termination':<24}{'Sessions':>10}"]
        out += [f"{term:<24}{n:>10}" for term, n in j["by_termination"].items()]
        if j["close_codes"]:
            out += [thin, f"{'Close code':<12}{'Name':<30}{'Sessions':>10}"]
            out += [f"{c['code'] or '-'!s:<12}{c['name']:<30}{c['sessions']:>10}" for c in j["close_codes"]]
        length = j["length"]
        out += [
            thin,
            f"Message length: p50 {length['p50']}  p90 {length['p90']}  p99 {length['p99']}  max {length['max']}",
        ]
        total = max(sum(b["count"] for b in length["histogram"]), 1)
        for b in length["histogram"]:
            bar = "#" * round(40 * b["count"] / total)
            out.append(f"  {b['low']:>10} - {b['high']:<10}{b['count']:>10}  {bar}")
        durations = j["durations"]
        if durations["count"]:
            out.append(
                f"Session duration: p50 {format_seconds(durations['p50'])}  p90 {format_seconds(durations['p90'])}"
                f"  max {format_seconds(durations['max'])}"
            )
        if j["rtt"] is not None:
            rtt = j["rtt"]
            out.append(
                f"Ping round trip: {rtt['count']} answered, p50 {format_seconds(rtt['p50'])}"
                f"  p90 {format_seconds(rtt['p90'])}  p99 {format_seconds(rtt['p99'])}"
                f"  max {format_seconds(rtt['max'])}"
            )
        if j["longest_idle"]:
            out += [thin, f"{'Longest idle':<14}{'Session':>8}  {'Client':<24}{'Server':<24}Termination"]
            out += [
                f"{format_seconds(g['max_idle']):<14}{g['session']:>8}  {g['client']:<24}{g['server']:<24}"
                f"{g['termination']}"
                for g in j["longest_idle"]
            ]
        out += [thin, f"{'Server':<24}{'Host':<28}{'Sessions':>10}{'Messages':>10}{'Abnormal':>10}"]
        out += [
            f"{s['server']:<24}{(s['host'] or '-')[:27]:<28}{s['sessions']:>10}{s['messages']:>10}{s['abnormal']:>10}"
            for s in j["servers"]
        ]
        out += [thin, f"{'Client':<40}{'Sessions':>10}{'Short':>10}{'Abnormal':>10}"]
        out += [f"{c['client']:<40}{c['sessions']:>10}{c['short']:>10}{c['abnormal']:>10}" for c in j["clients"]]
        peak = j["peak_concurrent"]
        if peak["at"] is not None:
            out.append(
                f"Peak concurrent sessions: {peak['sessions']} (open during the"
                f" {format_seconds(j['timeline']['width'])} from {_clock(peak['at'])})"
            )
        if j["issues"]:
            out += [thin, f"{'Issue':<40}{'Count':>10}"]
            out += [f"{issue:<40}{n:>10}" for issue, n in j["issues"].items()]
        out.append(rule)
        return "\n".join(out) + "\n"


K = TypeVar("K")


def _load(table: dict[K, _Load], key: K, others: _Load) -> _Load:
    """The tally of ``key``, or ``others`` once the table holds MAX_KEYS keys."""
    tally = table.get(key)
    if tally is None:
        if len(table) >= MAX_KEYS:
            return others
        tally = table[key] = _Load()
    return tally


def _clock(ts: float) -> str:
    """A capture time as UTC time of day with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"


def _add_counts(mine: dict[K, int], theirs: dict[K, int]) -> None:
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


def _merge_loads(mine: dict[K, _Load], theirs: dict[K, _Load], others: _Load) -> None:
    for key, load in theirs.items():
        _load(mine, key, others).add(load)


def _load_record(t: _Load) -> dict[str, int]:
    return {"sessions": t.sessions, "messages": t.messages, "bytes": t.bytes, "short": t.short, "abnormal": t.abnormal}


def _top(table: dict[Any, _Load], n: int) -> list[tuple[Any, _Load]]:
    return sorted(table.items(), key=lambda kv: (-kv[1].sessions, str(kv[0])))[:n]
