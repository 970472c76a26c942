"""`wsinspect read -j N`: decode a capture file on every core.

Each worker process reads the whole file (the kernel's page cache serves it once)
but decodes only the TCP connections of its shard (session.shard_of; the capture
reader skips most of the other shards' packets before making objects of them), so
each connection is decoded by exactly one worker, with the same code as a plain read.
Workers render their output records themselves (the costly part) and send them
in batches that cover the same packet ranges in every worker; the parent merges
each batch in packet order, numbers sessions in the order they were recognised
across all workers (so the output is the same as with -j 1), applies --session,
and writes.

Records travel as (packet, worker, sequence, kind, local session, head, tail): the
line is head + global session number + tail, so that renumbering costs one join.
"""

from __future__ import annotations

import argparse
import io
import itertools
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any

from wsinspect.capture import open_capture
from wsinspect.cli import Printer
from wsinspect.errors import WsinspectError
from wsinspect.session import Inspector, Message, Options, SessionOpened, SessionSummary

# Packets per batch: small enough that output streams, large enough to amortise pickling.
BATCH_PACKETS = 1 << 14
OPEN, MESSAGE, RECORD, SUMMARY = range(4)

Record = tuple[int, int, int, int, int, bytes, bytes]


def _split(line: bytes, json: bool, number: int) -> tuple[bytes, bytes]:
    """Cut a rendered line around its (worker-local) session number."""
    width = len(str(number))
    if json:
        at = line.index(b'"session":') + 10
        return line[:at], line[at + width :]
    # Text: "TIME #N<pad> ..." with the number left-aligned in three columns.
    at = line.index(b"#") + 1
    return line[:at], line[at + max(3, width) :]


def _worker(
    path: str, shard: int, shards: int, args: argparse.Namespace, origin: float | None, conn: Connection
) -> None:
    reader = None
    try:
        reader = open_capture(path)
        reader.only_shard(shard, shards)
        # This printer only selects and renders; the parent writes.
        printer = Printer(args, io.BytesIO(), origin)
        json = printer.json
        quiet = args.quiet  # -q: only sessions go to the parent (-c never runs in parallel)
        inspector = Inspector(Options(args.max_message_size, shard, shards, messages=printer.wants_messages))
        batch: list[Record] = []
        feed = inspector.feed
        seq = itertools.count()  # orders a worker's records within a packet

        def take(events: list[Any], packet: int) -> None:
            for ev in events:
                if ev.__class__ is Message:
                    if quiet or not printer.selected(ev):
                        continue
                    number = ev.session
                    rendered = printer.render(ev)
                    for line in rendered[:-1]:
                        batch.append((packet, shard, next(seq), RECORD, number, *_split(line, json, number)))
                    batch.append((packet, shard, next(seq), MESSAGE, number, *_split(rendered[-1], json, number)))
                elif ev.__class__ is SessionOpened:
                    batch.append((packet, shard, next(seq), OPEN, ev.session, b"", b""))
                    printer.text.opened(ev.session, ev.client, ev.server)
                elif ev.__class__ is SessionSummary:
                    printer.text.ended(ev.session)
                    # JSON: the session's record; text: its row of the final table.
                    line = printer.render_summary(ev) if json else printer.text.session_row(ev).encode()
                    batch.append((packet, shard, next(seq), SUMMARY, ev.session, *_split(line, json, ev.session)))

        # A batch goes to the parent each time the packet numbers pass a multiple of
        # BATCH_PACKETS (an empty one if this shard had nothing there), so that the
        # n-th batch of every worker covers the same packets.
        boundary = BATCH_PACKETS
        for raw in reader:
            while raw.number > boundary:
                conn.send(("batch", batch))
                batch = []
                boundary += BATCH_PACKETS
            evs = feed(raw)
            if evs:
                take(evs, raw.number)
        while reader.count > boundary:
            conn.send(("batch", batch))
            batch = []
            boundary += BATCH_PACKETS
        # End-of-capture events sort after every packet, by their connection's
        # first packet, as one process emits them.
        end = reader.count + 1
        for first_packet, events in inspector.finish_connections():
            take(events, end + first_packet)
        conn.send(("batch", batch))
        conn.send(("end", reader.warnings))
    except WsinspectError as exc:
        conn.send(("error", str(exc)))
        return
    except BaseException:  # a bug: report it in full rather than hang the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        if reader is not None:
            reader.close()
        conn.close()


def read_parallel(path: str, args: argparse.Namespace, jobs: int, printer: Printer) -> list[str]:
    """Decode ``path`` with ``jobs`` worker processes, writing through ``printer``.

    Returns the capture's warnings. Raises WsinspectError when a worker fails.
    """
    ctx = multiprocessing.get_context("fork")
    # Workers render colour as the parent's stdout wants it.
    args = argparse.Namespace(**vars(args))
    args.color = "always" if printer.text.c.reset else "never"
    pipes: list[Connection] = []
    workers = []
    for shard in range(jobs):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(path, shard, jobs, args, printer.ts_origin, send), daemon=True)
        proc.start()
        send.close()
        pipes.append(receive)
        workers.append(proc)
    numbers: dict[tuple[int, int], int] = {}
    sessions = 0
    wanted = printer.sessions_wanted
    json = printer.json
    warnings: list[str] = []
    try:
        open_pipes = list(range(jobs))
        while open_pipes:
            records: list[Record] = []
            for w in list(open_pipes):
                msg = pipes[w].recv()
                if msg[0] == "batch":
                    records.extend(msg[1])
                elif msg[0] == "end":
                    warnings = msg[1]
                    open_pipes.remove(w)
                else:
                    raise WsinspectError(msg[1].rstrip())
            out = []
            # Each worker's records are sorted already: sorting their concatenation
            # merges the runs in C.
            records.sort()
            for _packet, w, _i, kind, local, head, tail in records:
                if kind == OPEN:
                    sessions += 1
                    numbers[w, local] = sessions
                    continue
                number = numbers[w, local]
                if wanted is not None and number not in wanted:
                    continue
                if json:
                    out.append(b"%b%d%b" % (head, number, tail))
                elif kind == SUMMARY:
                    printer.rows.append((number, (b"%b%-3d%b" % (head, number, tail)).decode()))
                else:
                    out.append(b"%b%-3d%b" % (head, number, tail))
            printer.write(out)
            printer.flush()
        for proc in workers:
            proc.join()
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.kill()
    return warnings
