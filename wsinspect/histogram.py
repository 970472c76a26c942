"""A streaming histogram of non-negative integers with bounded relative error.

Percentiles over a capture (message lengths, round trips, durations) must not keep
every value: memory has to stay flat in the size of the file. Values below 128 get a
bucket each (exact); above, every power of two is cut into 64 buckets (the layout of
HdrHistogram with 6 significant bits), so a bucket's midpoint is within 1/128 (0.8 %)
of any value in it. The index is two integer operations, no logarithm: this runs for
every message. Buckets are kept sparse, at most 3,776 of them for 64-bit values.

Times go in as integer microseconds (``add(round(seconds * US))``): the relative
error then holds from 128 µs up, and below that the value is exact to the µs.
"""

from __future__ import annotations

import math

# Values below this are exact; above, each octave has SUB_BUCKETS buckets.
SUB_BUCKETS = 64
EXACT = 2 * SUB_BUCKETS
# Microseconds per second: times are kept as integer µs.
US = 1_000_000
# The minimum of an empty histogram: above any value.
_NONE = 1 << 64


def bucket_of(value: int) -> int:
    """The bucket index of a non-negative integer (monotone in the value)."""
    if value < EXACT:
        return value
    shift = value.bit_length() - 7
    return (shift << 6) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The smallest and largest value of a bucket."""
    if index < EXACT:
        return index, index
    shift = (index >> 6) - 1
    top = index - (shift << 6)
    return top << shift, ((top + 1) << shift) - 1


class Histogram:
    """Counts of values per bucket, with the exact count, sum, minimum and maximum."""

    __slots__ = ("_min", "count", "counts", "max", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self._min = _NONE
        self.max = 0

    @property
    def min(self) -> int:
        return self._min if self.count else 0

    def add(self, value: int) -> None:
        """Count one value (negative values count as 0: a clock that went back). Runs
        per message: bucket_of() is inlined."""
        if value < EXACT:
            if value < 0:
                value = 0
            index = value
        else:
            shift = value.bit_length() - 7
            index = (shift << 6) + (value >> shift)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value < self._min:
            self._min = value

    def merge(self, other: Histogram) -> None:
        """Add every value of another histogram."""
        if not other.count:
            return
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self._min = min(self._min, other._min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, q: float) -> int:
        """The nearest-rank q-quantile (0 < q <= 1): the value of rank ceil(q * count)
        in sorted order, as its bucket's midpoint, kept within [min, max]. 0 when empty."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs: tuple[float, ...]) -> list[int]:
        """Several nearest-rank quantiles in one pass over the buckets (qs ascending)."""
        if not self.count:
            return [0 for _ in qs]
        # Rounded first: 0.95 * 20 is 19.000000000000004 in floating point.
        ranks = [max(1, math.ceil(round(q * self.count, 9))) for q in qs]
        out = []
        seen = 0
        pending = iter(zip(qs, ranks, strict=True))
        current = next(pending, None)
        for index in sorted(self.counts):
            seen += self.counts[index]
            while current is not None and current[1] <= seen:
                low, high = bucket_bounds(index)
                out.append(min(max((low + high) // 2, self.min), self.max))
                current = next(pending, None)
            if current is None:
                break
        while len(out) < len(qs):
            out.append(self.max)
        return out

    def log_buckets(self) -> list[tuple[int, int, int]]:
        """The counts on a log scale for display: (low, high, count) per power of two
        (0, 1, 2-3, 4-7, ...), empty powers between the smallest and largest left in."""
        if not self.count:
            return []
        per_power: dict[int, int] = {}
        for index, n in self.counts.items():
            power = bucket_bounds(index)[0].bit_length()
            per_power[power] = per_power.get(power, 0) + n
        out = []
        for power in range(min(per_power), max(per_power) + 1):
            low = 0 if power == 0 else 1 << (power - 1)
            high = 0 if power == 0 else (1 << power) - 1
            out.append((low, high, per_power.get(power, 0)))
        return out
