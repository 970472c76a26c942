"""Per-message counters over a whole capture: opcode and direction totals, lengths, a timeline.

The part of `wsinspect stats` that runs for every message, kept apart from stats.py
(an output) so that the core can feed it too: today Stats.message() calls add() with
a Message's fields; with the Inspector's Options.tally (see the report on issue 16),
the fast lane calls add() for each whole message it finds and `stats` needs no
Message objects at all, as `read -q` does not. Only ints, floats and lists here.
"""

from __future__ import annotations

from wsinspect.histogram import Histogram

# Buckets of the timeline; their width starts at INITIAL_WIDTH seconds and doubles as needed.
TIMELINE_BUCKETS = 256
INITIAL_WIDTH = 0.001
# Series of the timeline: messages and payload bytes per direction, sessions started and ended.
MSG_C2S, MSG_S2C, BYTES_C2S, BYTES_S2C, STARTS, ENDS = range(6)


class Timeline:
    """Counts per time bucket for a few series, in TIMELINE_BUCKETS buckets of a width
    that doubles (merging neighbours) whenever a time falls outside them. Buckets sit
    on multiples of the width (absolute bucket number = floor(ts / width))."""

    __slots__ = ("base", "inverse", "rows", "size", "width")

    def __init__(self, series: int, size: int = TIMELINE_BUCKETS, width: float = INITIAL_WIDTH) -> None:
        self.size = size
        self.width = width
        self.inverse = 1 / width
        # Absolute number of bucket 0 (the first time added moves it, as any time
        # outside the buckets does).
        self.base = 0
        self.rows = [[0] * size for _ in range(series)]

    def index(self, ts: float) -> int:
        """The bucket of time ``ts`` (read ``rows`` after this: it may rebuild them)."""
        i = int(ts * self.inverse) - self.base
        if 0 <= i < self.size:
            return i
        return self._fit(ts)

    def add(self, series: int, ts: float, n: int = 1) -> None:
        """Add ``n`` to ``series`` at time ``ts``."""
        i = self.index(ts)
        self.rows[series][i] += n

    def _used(self) -> tuple[int, int] | None:
        """First and last bucket holding anything."""
        used = [i for i in range(self.size) if any(row[i] for row in self.rows)]
        return (used[0], used[-1]) if used else None

    def _fit(self, ts: float) -> int:
        """Rebase and coarsen until ``ts`` has a bucket; returns its index."""
        while True:
            a = int(ts * self.inverse)
            used = self._used()
            if used is None:
                self.base = a  # nothing counted yet: start here
                return 0
            lo, hi = min(a, self.base + used[0]), max(a, self.base + used[1])
            if hi - lo < self.size:
                shift = self.base - lo  # move the data right by this much (negative: left)
                for row in self.rows:
                    if shift > 0:
                        row[:] = [0] * shift + row[: self.size - shift]
                    elif shift < 0:
                        row[:] = row[-shift:] + [0] * -shift
                self.base = lo
                return a - lo
            self._coarsen()

    def _coarsen(self) -> None:
        """Double the width: bucket a becomes a // 2."""
        merged = [[0] * self.size for _ in self.rows]
        new_base = self.base // 2
        for old, new in zip(self.rows, merged, strict=True):
            for i, n in enumerate(old):
                if n:
                    new[(self.base + i) // 2 - new_base] += n
        self.rows = merged
        self.base = new_base
        self.width *= 2
        self.inverse = 1 / self.width

    def merge(self, other: Timeline) -> None:
        """Add every count of another timeline (a parallel worker's) of the same series."""
        while self.width < other.width:
            self._coarsen()
        for series, row in enumerate(other.rows):
            for i, n in enumerate(row):
                if n:
                    # The middle of the bucket lands in the right one at any coarser width.
                    self.add(series, (other.base + i + 0.5) * other.width, n)

    def span(self) -> tuple[float, list[list[int]]]:
        """Start time and the rows over the buckets in use."""
        used = self._used()
        if used is None:
            return 0.0, [[] for _ in self.rows]
        first, last = used
        return (self.base + first) * self.width, [row[first : last + 1] for row in self.rows]


class Tally:
    """Messages, payload bytes and bytes as sent per opcode and direction, compressed
    messages, the length histogram and the timeline."""

    __slots__ = ("compressed", "lengths", "timeline", "totals")

    def __init__(self) -> None:
        # Per opcode (0-15) and direction (s2c: +16), three counters each (index * 3):
        # messages, payload bytes (after inflating), bytes as sent.
        self.totals = [0] * 96
        self.compressed = [0, 0, 0]  # the same three for compressed messages
        self.lengths = Histogram()
        self.timeline = Timeline(6)

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (a parallel worker's)."""
        self.totals = [a + b for a, b in zip(self.totals, other.totals, strict=True)]
        self.compressed = [a + b for a, b in zip(self.compressed, other.compressed, strict=True)]
        self.lengths.merge(other.lengths)
        self.timeline.merge(other.timeline)

    def add(self, ts: float, c2s: bool, opcode: int, length: int, wire_length: int, compressed: bool) -> None:
        """One message of ``length`` payload bytes (``wire_length`` as sent) at ``ts``."""
        timeline = self.timeline
        i = timeline.index(ts)
        rows = timeline.rows
        if c2s:
            k = opcode * 3
            rows[MSG_C2S][i] += 1
            rows[BYTES_C2S][i] += length
        else:
            k = opcode * 3 + 48
            rows[MSG_S2C][i] += 1
            rows[BYTES_S2C][i] += length
        totals = self.totals
        totals[k] += 1
        totals[k + 1] += length
        totals[k + 2] += wire_length
        self.lengths.add(length)
        if compressed:
            c = self.compressed
            c[0] += 1
            c[1] += length
            c[2] += wire_length
