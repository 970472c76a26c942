"""The benchmark's results as Markdown for the README.

    python -m tests.perf.table RESULTS.json

renders what ``python -m tests.perf.bench --results RESULTS.json`` saved.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# The targets: (command, reference, minimum speed-up).
SPEEDUP_TARGETS = (
    ("ws_quiet", "tshark_fields", 10.0),
    ("ws_json", "tshark_fields", 5.0),
    ("ws_json", "tshark_ek", 7.0),
)
RSS_TARGET_MIB = 100
STARTUP_TARGET = 0.15
ORDER = ("ws_quiet", "ws_json", "ws_text", "tshark_fields", "tshark_ek")


def _mib(kib: int) -> float:
    return kib / 1024


def _rate(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.0f} k"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    t = results["truth"]
    cmds = results["commands"]
    fields = cmds.get("tshark_fields", {}).get("median")
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"Python {m['python']}, {m['tshark']}.",
        "",
        f"File: `python -m tests.perf.gen --size {results['size_arg']} --seed {results['seed']}`: "
        f"{t['size'] / 1e6:.0f} MB, {t['packets']:,} packets, {t['sessions']:,} sessions "
        f"({t['deflate_sessions']:,} with permessage-deflate), {t['frames']:,} WebSocket frames, "
        f"{t['messages']:,} messages.",
        "",
        "Median wall time of the timed runs (alternating order, after a warm-up); MB = 10^6 bytes; "
        "peak RSS of the process (rusage).",
        "",
        "| command | runs | median | packets/s | MB/s | peak RSS | tshark fields ÷ this |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in ORDER:
        c = cmds.get(key)
        if not c or c["median"] is None:
            continue
        med = c["median"]
        ratio = f"{fields / med:.1f}x" if fields else "-"
        lines.append(
            f"| `{c['label']}` | {len(c['walls'])} | {med:.2f} s | {_rate(t['packets'] / med)} | "
            f"{t['size'] / 1e6 / med:.1f} | {_mib(c['peak_rss_kib']):.0f} MiB | {ratio} |"
        )
    lines += ["", "Targets:", ""]
    for key, ref, target in SPEEDUP_TARGETS:
        a, b = cmds.get(key, {}).get("median"), cmds.get(ref, {}).get("median")
        if a and b:
            lines.append(
                f"- `{cmds[key]['label']}` vs `{ref.replace('_', ' ')}`: {b / a:.1f}x faster "
                f"(target {target:g}x): {_verdict(b / a >= target)}"
            )
    ws_rss = max(_mib(c["peak_rss_kib"]) for k, c in cmds.items() if k.startswith("ws_") and c["peak_rss_kib"])
    lines.append(
        f"- wsinspect peak RSS: {ws_rss:.0f} MiB (target < {RSS_TARGET_MIB}): {_verdict(ws_rss < RSS_TARGET_MIB)}"
    )
    double = results.get("double")
    if double:
        one = _mib(cmds["ws_quiet"]["peak_rss_kib"])
        two = _mib(double["rss_kib"])
        lines.append(
            f"- `read -q` on a capture twice the size ({double['size'] / 1e6:.0f} MB, {double['packets']:,} packets): "
            f"{double['wall']:.2f} s, peak RSS {two:.0f} MiB vs {one:.0f} MiB "
            f"({two / one:.2f}x; target: about the same): {_verdict(two <= one * 1.25 + 8)}"
        )
    s = results.get("startup")
    if s:
        lines.append(
            f"- start-up, `wsinspect read` on a {s['packets']}-packet capture: {s['wsinspect']:.3f} s "
            f"(bare `python -c pass`: {s['python']:.3f} s; tshark: {s['tshark']:.3f} s; "
            f"target < {STARTUP_TARGET}): {_verdict(s['wsinspect'] < STARTUP_TARGET)}"
        )
    lines += ["", "Correctness (warm-up runs against the generator's ground truth):", ""]
    checks = results.get("checks", {})
    ws = checks.get("wsinspect")
    if ws:
        lines.append(
            f"- wsinspect `--json`: {ws['messages']:,} messages (truth {t['messages']:,}), "
            f"{ws['sessions']:,} sessions, {ws['payload_bytes']:,} payload bytes after decompression "
            f"(truth {t['payload_bytes']:,}), {ws['incomplete']} incomplete, {sum(ws['issues'].values())} issues"
        )
    ts = checks.get("tshark")
    if ts:
        lines.append(
            f"- tshark fields: {ts['frames']:,} frames (truth {t['frames']:,}) in {ts['packets_with_frames']:,} "
            f"packets, {ts['wire_payload_bytes']:,} payload bytes as sent (truth {t['wire_payload_bytes']:,}). "
            "tshark counts frames, not messages: a fragmented message is several frames "
            f"({t['frames'] - t['messages']:,} more frames than messages here)."
        )
    failed = checks.get("tshark_decompression_failed")
    if failed:
        lines.append(
            f"- tshark reported {failed:,} 'Decompression failed' warnings: from the first compressed message "
            "sent in several frames on, every compressed message of that direction fails to inflate (the same "
            "capture without fragmented messages gives none); its frame counts stay right, its payloads do not."
        )
    for problem in results.get("problems", []):
        lines.append(f"- **MISMATCH**: {problem}")
    load = results.get("load")
    lines += [
        "",
        f"Benchmark wall time: {results['elapsed'] / 60:.1f} min (capture generated in "
        f"{results['generated_in']:.0f} s; 0 = reused)"
        + (
            f"; 1-minute load average {load[0]:.2f} before, {load[1]:.2f} after (about 1 is the benchmark)."
            if load
            else "."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.perf.table RESULTS.json", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        print(render(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
