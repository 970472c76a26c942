"""`wsinspect stats --plot DIR`: PNG charts of a Stats, drawn with matplotlib.

matplotlib is an optional extra (``pip install 'wsinspect[plot]'``), imported only
here and only when charts are asked for, so that every other command starts fast.
Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, no
global state, no display needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsinspect.errors import WsinspectError
from wsinspect.histogram import US
from wsinspect.stats import Stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

C2S_COLOR = "#1f77b4"
S2C_COLOR = "#ff7f0e"
SIZE = (9.0, 4.0)
DPI = 100


class PlotUnavailable(WsinspectError):
    """matplotlib is not installed (the job cannot be done: exit status 1)."""


def require() -> None:
    """Raise PlotUnavailable unless matplotlib can be imported (callers check before
    reading a whole capture)."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailable("charts need matplotlib: pip install 'wsinspect[plot]'") from exc


def _figure(rows: int = 1) -> tuple[Figure, list[Axes]]:
    require()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(SIZE[0], SIZE[1] * rows), layout="constrained")
    axes = [row[0] for row in figure.subplots(rows, 1, squeeze=False)]
    for ax in axes:
        # Counts of messages, sessions and pongs: no half ticks.
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, axes


def write_plots(stats: Stats, directory: str | Path) -> list[Path]:
    """Write the charts of ``stats`` into ``directory`` (created if missing) and return
    their paths: rates.png (messages/s and bytes/s by direction), concurrent.png,
    lengths.png, rtt.png and terminations.png. A chart with nothing to show (no
    messages, no answered ping) is not written."""
    require()  # fail early, before anything is created, when matplotlib is missing
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    j = stats.to_json()
    timeline = j["timeline"]
    written = []
    if j["messages"]:
        written.append(_rates(timeline, out / "rates.png"))
        written.append(_lengths(j["length"]["histogram"], out / "lengths.png"))
    if j["sessions"]:
        written.append(_concurrent(timeline, j["peak_concurrent"], out / "concurrent.png"))
        written.append(_terminations(j["by_termination"], out / "terminations.png"))
    if j["rtt"] is not None:
        written.append(_rtt(stats, out / "rtt.png"))
    return written


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _times(timeline: dict[str, Any]) -> tuple[list[float], float]:
    width = float(timeline["width"])
    count = len(timeline["concurrent"])
    return [i * width for i in range(count)], width


def _rates(timeline: dict[str, Any], path: Path) -> Path:
    figure, (messages, volume) = _figure(2)
    x, width = _times(timeline)
    for name, color, label in (("c2s", C2S_COLOR, "client → server"), ("s2c", S2C_COLOR, "server → client")):
        counts: list[int] = timeline[f"messages_{name}"]
        sizes: list[int] = timeline[f"bytes_{name}"]
        messages.step(x, [n / width for n in counts], where="post", color=color, label=label)
        volume.step(x, [n / width for n in sizes], where="post", color=color, label=label)
    messages.set_ylabel("messages/s")
    volume.set_ylabel("payload bytes/s")
    volume.set_xlabel(f"seconds from {_clock(float(timeline['start']))}  (buckets of {width:g} s)")
    messages.set_title("Messages and bytes per second by direction")
    messages.legend(loc="upper right")
    for ax in (messages, volume):
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    figure.savefig(path, dpi=DPI)
    return path


def _concurrent(timeline: dict[str, Any], peak: dict[str, Any], path: Path) -> Path:
    figure, (ax,) = _figure()
    x, width = _times(timeline)
    concurrent: list[int] = timeline["concurrent"]
    ax.step(x, concurrent, where="post", color=C2S_COLOR)
    ax.fill_between(x, concurrent, step="post", alpha=0.3, color=C2S_COLOR)
    ax.set_title(f"Concurrent sessions (peak {peak['sessions']})")
    ax.set_ylabel("sessions open")
    ax.set_xlabel(f"seconds from {_clock(float(timeline['start']))}  (buckets of {width:g} s)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def _lengths(histogram: list[dict[str, int]], path: Path) -> Path:
    figure, (ax,) = _figure()
    labels = [str(b["low"]) if b["low"] == b["high"] else f"{b['low']}–{b['high']}" for b in histogram]
    ax.bar(range(len(histogram)), [b["count"] for b in histogram], color=C2S_COLOR)
    ax.set_xticks(range(len(histogram)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_title("Message length, log scale")
    ax.set_ylabel("messages")
    ax.set_xlabel("payload bytes (after decompression)")
    ax.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def _rtt(stats: Stats, path: Path) -> Path:
    figure, (ax,) = _figure()
    buckets = stats.rtts.log_buckets()
    labels = [_ms_range(low, high) for low, high, _ in buckets]
    ax.bar(range(len(buckets)), [n for _, _, n in buckets], color=S2C_COLOR)
    ax.set_xticks(range(len(buckets)), labels, rotation=45, ha="right", fontsize=8)
    rtt = stats.to_json()["rtt"]
    ax.set_title(
        f"Ping round trips: {rtt['count']} answered, median {rtt['p50'] * 1000:.3g} ms, p99 {rtt['p99'] * 1000:.3g} ms"
    )
    ax.set_ylabel("pongs")
    ax.set_xlabel("round trip (ms)")
    ax.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def _ms_range(low: int, high: int) -> str:
    return f"{low * 1000 / US:.3g}–{(high + 1) * 1000 / US:.3g}"


def _terminations(by_termination: dict[str, int], path: Path) -> Path:
    figure, (ax,) = _figure()
    names = list(by_termination)
    colors = ["#2ca02c" if name == "clean" else "#7f7f7f" if name in ("open", "stopped", "none") else "#d62728"
              for name in names]  # fmt: skip
    ax.barh(names, [by_termination[n] for n in names], color=colors)
    ax.xaxis.set_major_locator(ax.yaxis.get_major_locator())  # counts along x here
    ax.invert_yaxis()
    ax.set_title("Sessions by termination")
    ax.set_xlabel("sessions")
    ax.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path
