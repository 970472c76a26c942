"""`wsinspect live --tui`: a live capture (sniff.Capture) as the TUI's packet source.

The live command calls run_live through its parser's defaults, which the tui package
sets when it registers its own command (front ends do not import each other).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Iterator

from wsinspect.errors import CaptureError
from wsinspect.packet import RawPacket
from wsinspect.session import Options
from wsinspect.sniff import POLL_MS, Capture, counts, saved
from wsinspect.tui.app import WsinspectApp, run_tui
from wsinspect.tui.store import message_filter


def run_live(args: argparse.Namespace, names: list[str], expression: str | None, capture: Capture) -> int:
    """`live --tui`: the capture as the TUI's packet source; the counts once it has quit."""

    started = time.monotonic()
    source = LiveSource(capture, None if args.duration is None else started + args.duration)
    title = [", ".join(names)]
    if expression:
        title.append(expression)
    if capture.writer is not None:
        title.append(f"→ {os.path.basename(capture.writer.path)}")
    try:
        capture.start()
        status = run_tui(
            WsinspectApp(
                source,
                title=" · ".join(title),
                live=True,
                options=Options(max_message_size=args.max_message_size, keylog=args.keylog),
                sessions=set(args.session) if args.session else None,
                message_filter=message_filter(args),
                count=args.count,
            )
        )
    finally:
        source.close()
    if capture.failure is not None:
        raise capture.failure
    print(counts(capture, source.stopped - started), file=sys.stderr, flush=True)
    if capture.error is not None:
        raise CaptureError(capture.error + saved(capture))
    return status


class LiveSource:
    """The capture as a packet source of the TUI (wsinspect.tui.store.Source).

    Called once, in the TUI's decode thread, it yields the queued packets, and None
    every POLL_MS while none come, so that the decoder sees when the TUI quits. When
    --duration is over or the capture stopped by itself, what was queued before the
    stop is decoded too (the pcap holds it), then the packets end. close() (from
    either thread) stops the capture and closes the sockets and the pcap.
    """

    def __init__(self, capture: Capture, deadline: float | None) -> None:
        self.capture = capture
        self.deadline = deadline
        self.warnings: list[str] = []  # shown by the TUI when the packets end
        self.stopped = 0.0  # when the capture stopped (time.monotonic)
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        """Packets dropped because decoding fell behind (the status line shows them)."""
        return self.capture.queue.dropped

    def __call__(self) -> LiveSource:
        return self

    def __iter__(self) -> Iterator[RawPacket | None]:
        capture = self.capture
        get = capture.queue.get
        while capture.running:
            timeout = POLL_MS / 1000
            if self.deadline is not None:
                timeout = min(timeout, self.deadline - time.monotonic())
                if timeout <= 0:
                    break
            batch = get(timeout)
            if batch is None:
                yield None
            else:
                yield from batch
        capture.stop()
        while (batch := get(0)) is not None:
            yield from batch

    def close(self) -> None:
        with self._lock:
            if self.stopped:
                return
            self.capture.close()
            self.stopped = time.monotonic()
            capture = self.capture
            if capture.error is not None:
                self.warnings.append(capture.error + saved(capture))
            elif capture.failure is not None:
                self.warnings.append(f"the capture failed: {capture.failure!r} (details on quitting)")
