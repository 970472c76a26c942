"""`wsinspect read -j N`: decode a capture file on every core.

Each worker process reads the whole file (the kernel's page cache serves it once)
but decodes only the TCP connections of its shard (packet.shard_of; the capture
reader skips most of the other shards' packets before making objects of them), so
each connection is decoded by exactly one worker, with the same code as a plain read.
Workers render their output records themselves (the costly part) and send them
in batches that cover the same packet ranges in every worker; the parent merges
each batch in packet order, numbers sessions in the order they were recognised
across all workers (so the output is the same as with -j 1), and writes.

A batch travels as columns, so that the parent handles no record in Python: each
record is a sort key (packet, worker, position), a session id (worker, session
number in that worker), and the record rendered in two parts around its session
number (head, tail: Printer.render_parts, which each output format provides; no
rendered text is searched). The parent sorts the keys and joins head + global
number + tail in C.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import traceback
from dataclasses import dataclass, field
from itertools import chain
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from wsinspect.capture import open_capture
from wsinspect.errors import WsinspectError
from wsinspect.messages import Message
from wsinspect.printer import Printer
from wsinspect.session import Inspector, Options, SessionOpened, SessionSummary, TlsUndecrypted

if TYPE_CHECKING:
    from wsinspect.tls import KeyLog

# Packets per batch: small enough that output streams, large enough to amortise pickling.
BATCH_PACKETS = 1 << 14
# The session id of records that belong to no session (TLS connections not decrypted): no number goes in them.
_NO_SESSION = -1
# A record's sort key: packet number, then worker, then position in the worker's batch.
_WORKER_SHIFT = 32
_PACKET_SHIFT = 40


@dataclass
class _Batch:
    """One worker's records for one range of packets, as columns."""

    keys: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # (worker << 32) | the worker's session number
    heads: list[bytes] = field(default_factory=list)
    tails: list[bytes] = field(default_factory=list)
    opens: list[tuple[int, int]] = field(default_factory=list)  # (key, id) of sessions recognised
    ended: list[int] = field(default_factory=list)  # ids of sessions that ended
    rows: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # text: (id, head, tail) of table rows
    tls: list[tuple[int, bytes]] = field(default_factory=list)  # text: (key, line) of TLS connections not decrypted


def _worker(
    path: str,
    shard: int,
    shards: int,
    args: argparse.Namespace,
    origin: float | None,
    keylog: KeyLog,
    conn: Connection,
) -> None:
    reader = None
    try:
        reader = open_capture(path)
        reader.on_secrets(keylog.add)
        reader.only_shard(shard, shards)
        # This printer only selects and renders; the parent writes.
        printer = Printer(args, io.BytesIO(), origin)
        json = printer.json
        quiet = args.quiet  # -q: only sessions go to the parent (-c never runs in parallel)
        inspector = Inspector(
            Options(args.max_message_size, shard, shards, messages=printer.wants_messages, keylog=keylog)
        )
        batch = _Batch()
        feed = inspector.feed
        worker = shard << _WORKER_SHIFT

        selection = printer.selection  # -Y: decided here, where the session's events are

        def take(events: list[Any], packet: int) -> None:
            key = (packet << _PACKET_SHIFT) | worker | len(batch.keys)
            if selection is not None:
                shown = selection.feed(events)
                # A session the filter left out ended all the same: the parent forgets it.
                for ev in events:
                    if ev.__class__ is SessionSummary and not any(x is ev for x in shown):
                        printer.text.ended(ev.session)
                        batch.ended.append(worker | ev.session)
                events = shown
            for ev in events:
                if ev.__class__ is Message:
                    if quiet or not printer.selected(ev):
                        continue
                    number = ev.session
                    for head, tail in printer.render_parts(ev):
                        batch.keys.append(key)
                        batch.ids.append(worker | number)
                        batch.heads.append(head)
                        batch.tails.append(tail)
                        key += 1
                elif ev.__class__ is SessionOpened:
                    batch.opens.append((key, worker | ev.session))
                    printer.text.opened(ev.session, ev.client, ev.server)
                elif ev.__class__ is SessionSummary:
                    printer.text.ended(ev.session)
                    batch.ended.append(worker | ev.session)
                    if json:
                        head, tail = printer.summary_parts(ev)
                        batch.keys.append(key)
                        batch.ids.append(worker | ev.session)
                        batch.heads.append(head)
                        batch.tails.append(tail)
                        key += 1
                    else:  # its row of the final table
                        head_text, tail_text = printer.text.session_row_parts(ev)
                        batch.rows.append((worker | ev.session, head_text.encode(), tail_text.encode()))
                elif ev.__class__ is TlsUndecrypted:
                    if json:
                        batch.keys.append(key)
                        batch.ids.append(_NO_SESSION)
                        batch.heads.append(printer.render_tls(ev))
                        batch.tails.append(b"")
                        key += 1
                    else:
                        batch.tls.append((key, printer.text.tls_row(ev).encode()))
                        key += 1

        # A batch goes to the parent each time the packet numbers pass a multiple of
        # BATCH_PACKETS (an empty one if this shard had nothing there), so that the
        # n-th batch of every worker covers the same packets.
        boundary = BATCH_PACKETS
        for raw in reader:
            while raw.number > boundary:
                conn.send(("batch", batch))
                batch = _Batch()
                boundary += BATCH_PACKETS
            evs = feed(raw)
            if evs:
                take(evs, raw.number)
        while reader.count > boundary:
            conn.send(("batch", batch))
            batch = _Batch()
            boundary += BATCH_PACKETS
        # End-of-capture events sort after every packet, by their connection's
        # first packet, as one process emits them.
        end = reader.count + 1
        # Sessions still open end with the capture's last packet (health.py counts
        # their idle time to it), which may be one of another shard.
        skipped = reader.last_skipped
        if skipped is not None and skipped[0] > inspector.packets:
            inspector.last_ts = skipped[1]
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


def read_parallel(
    path: str, args: argparse.Namespace, jobs: int, printer: Printer, origin: float | None, keylog: KeyLog
) -> list[str]:
    """Decode ``path`` with ``jobs`` worker processes, writing through ``printer``;
    ``origin`` is the capture's first timestamp (relative times count from it).

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
        proc = ctx.Process(target=_worker, args=(path, shard, jobs, args, origin, keylog, send), daemon=True)
        proc.start()
        send.close()
        pipes.append(receive)
        workers.append(proc)
    numbers: dict[int, int] = {_NO_SESSION: 0}  # session id -> its number in the output
    labels: dict[int, bytes] = {_NO_SESSION: b""}  # and as printed
    sessions = 0
    wanted = printer.sessions_wanted
    label = b"%d" if printer.json else b"%-3d"
    warnings: list[str] = []
    try:
        open_pipes = list(range(jobs))
        while open_pipes:
            keys: list[int] = []
            ids: list[int] = []
            heads: list[bytes] = []
            tails: list[bytes] = []
            opens: list[tuple[int, int]] = []
            ended: list[int] = []
            rows: list[tuple[int, bytes, bytes]] = []
            tls: list[tuple[int, bytes]] = []
            for w in list(open_pipes):
                msg = pipes[w].recv()
                if msg[0] == "batch":
                    batch: _Batch = msg[1]
                    keys += batch.keys
                    ids += batch.ids
                    heads += batch.heads
                    tails += batch.tails
                    opens += batch.opens
                    ended += batch.ended
                    rows += batch.rows
                    tls += batch.tls
                elif msg[0] == "end":
                    warnings = msg[1]
                    open_pipes.remove(w)
                else:
                    raise WsinspectError(msg[1].rstrip())
            # A session's records all come after its recognition, in this batch or a later one.
            for _, sid in sorted(opens):
                sessions += 1
                numbers[sid] = sessions
                labels[sid] = label % sessions
            printer.last_session = sessions
            order = sorted(range(len(keys)), key=keys.__getitem__)
            if wanted is not None:
                order = [i for i in order if numbers[ids[i]] in wanted]
            columns = (
                map(heads.__getitem__, order),
                map(labels.__getitem__, map(ids.__getitem__, order)),
                map(tails.__getitem__, order),
            )
            printer.write([b"".join(chain.from_iterable(zip(*columns, strict=True)))])
            for sid, head, tail in rows:
                if wanted is None or numbers[sid] in wanted:
                    printer.rows.append((numbers[sid], (head + labels[sid] + tail).decode()))
            if wanted is None:
                printer.tls_rows += [line.decode() for _, line in sorted(tls)]
            for sid in ended:
                del labels[sid], numbers[sid]
            printer.flush()
        for proc in workers:
            proc.join()
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.kill()
    return warnings
