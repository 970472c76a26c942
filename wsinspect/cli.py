"""Command line: `wsinspect read`, and the only place exceptions become exit codes.

Exit status: 0 when decoding finished (protocol issues found are findings, not
errors), 1 when the job failed (file unreadable or not a capture, output that
cannot be written), 2 for a usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from itertools import chain
from typing import TYPE_CHECKING

from wsinspect import __version__, speedups
from wsinspect.errors import WsinspectError
from wsinspect.options import (
    add_command,
    add_file_arguments,
    add_output_options,
    add_size_option,
    add_tls_options,
    capture_path,
    compile_display_options,
    open_keylog,
    positive_int,
)
from wsinspect.printer import OutputError, Printer, stdout_binary

if TYPE_CHECKING:
    from wsinspect.session import Event
    from wsinspect.stats import Stats

# Modules with an add_commands(subparsers) function; each command sets func(args, parser) -> int.
COMMAND_MODULES = ("wsinspect.live", "wsinspect.tui", "wsinspect.export")

# Files at least this large are decoded on every core unless -j says otherwise.
PARALLEL_MIN_SIZE = 16 << 20

READ_EPILOG = """\
what it prints:
  One line per message: time, session, client → server (or ←), opcode, payload
  length, [frames] [deflate wire-size], a preview; then a table of the sessions.
  --frames adds a line per frame under its message's line.
  --json prints JSON Lines instead (see README.md for the record fields).

exit status:
  0  the capture was decoded (protocol issues found are reported, not errors);
     damage to the file itself (a cut record) is reported on stderr
  1  the file could not be read at all (missing, not a pcap/pcapng capture),
     or the output could not be written (a full disk)
  2  bad command-line usage (a bad -Y filter or -e field too: the error is
     shown with a caret under it)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsinspect", description="Inspect WebSocket traffic in packet captures and on live interfaces."
    )
    parser.add_argument("--version", action="version", version=f"wsinspect {__version__} ({speedups.path_name()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    read = add_command(
        sub,
        "read",
        cmd_read,
        help="decode every WebSocket session in a capture file",
        description="Decode every WebSocket session in a pcap or pcapng file (gzip-compressed too; - for stdin).",
        epilog=READ_EPILOG,
    )
    add_file_arguments(read, stdin=True)
    read.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        metavar="N",
        help="decode with N processes, each taking a share of the connections (default: every core for"
        " files over 16 MB, gzip-compressed too, not stdin; output is the same as with -j 1)",
    )
    add_output_options(read)
    add_tls_options(read)
    add_stats_command(sub)
    # Other commands register themselves; their modules import nothing heavy at the
    # top (scapy, textual), so that `read` starts fast.
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def cmd_read(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from wsinspect.capture import open_capture
    from wsinspect.session import Inspector, Options

    path = capture_path(args, parser)
    compile_display_options(args, parser)
    keylog, keylog_warning = open_keylog(args, parser)
    if keylog_warning:
        print(f"wsinspect: {keylog_warning}", file=sys.stderr)
    out = stdout_binary()  # before the capture is opened: it could take a closed stdout's descriptor
    reader = open_capture(path)
    reader.on_secrets(keylog.add)  # a pcapng's own key logs, read before its first packet
    packets = iter(reader)
    first = next(packets, None)
    # Relative times count from the first packet of the capture, as in tshark.
    printer = Printer(args, out, first.ts if first else None)
    jobs = args.jobs
    if jobs is None:
        size = reader.size or 0
        jobs = min(os.cpu_count() or 1, 8) if size >= PARALLEL_MIN_SIZE else 1
    # -c stops early, which sharded workers cannot do in step; stdin and pipes
    # cannot be read by several processes. A gzip-compressed file can: each worker
    # inflates it whole (2.5 s for 500 MB here), which still pays on two cores.
    if jobs > 1 and reader.size is not None and args.count is None and parallel_display(args):
        from wsinspect.parallel import read_parallel

        reader.close()
        warnings = read_parallel(path, args, jobs, printer, first.ts if first else None, keylog)
        warnings += printer.close()
        for warning in warnings:
            print(f"wsinspect: {warning}", file=sys.stderr)
        return 0
    # -q without a count needs no messages, only the sessions they add up to.
    inspector = Inspector(
        Options(max_message_size=args.max_message_size, messages=printer.wants_messages, keylog=keylog)
    )
    feed = inspector.feed
    events = printer.events
    # Lines appear while the capture is read, written in batches, and whenever the
    # reader is about to wait for more of a pipe (tcpdump -w - | wsinspect read -).
    reader.on_wait(printer.flush)
    pending = 0
    ended_by = "eof"
    try:
        for raw in packets if first is None else chain((first,), packets):
            evs = feed(raw)
            if evs:
                events(evs)
                pending += 1
                if pending >= 256:
                    printer.flush()
                    pending = 0
                if printer.done:
                    ended_by = "stopped"  # by -c: the connections still open did not end here
                    break
        events(inspector.finish(ended_by))
        warnings = printer.close()
    finally:
        reader.close()
    for warning in [*reader.warnings, *warnings]:
        print(f"wsinspect: {warning}", file=sys.stderr)
    return 0


# -- display filter and fields output (issue 18) ----------------------------------------


def parallel_display(args: argparse.Namespace) -> bool:
    """Whether -j N gives the same output as -j 1 with these display options. Workers
    filter their own sessions exactly, end-only fields included (each holds a
    session's messages to its end as -j 1 does), but they number sessions locally:
    a filter on the session number runs in one process. -T fields lines are not cut
    around the session number as the parallel merge needs: one process too."""
    flt = args.compiled_filter
    return args.fields_writer is None and (flt is None or "session" not in flt.fields)


# -- wsinspect stats -------------------------------------------------------------

STATS_EPILOG = """\
output:
  Tables in the style of tshark -z: sessions, messages and bytes per opcode and
  direction, compressed share, sessions by termination and close code, message
  lengths (percentiles and a log-scale histogram), session durations, ping round
  trips, the longest idle gaps, load per server and per client, peak concurrency,
  issues by kind. --json prints one JSON object instead (see README.md).
  --plot DIR also writes PNG charts there (needs matplotlib: pip install 'wsinspect[plot]').

  One process always (no -j): the timeline and the per-session tables of workers
  would not merge exactly.
"""


def add_stats_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = add_command(
        sub,
        "stats",
        cmd_stats,
        help="totals, distributions, connection health and load over a whole capture",
        description="Statistics of every WebSocket session in a capture file (the tshark -z of WebSocket).",
        epilog=STATS_EPILOG,
    )
    add_file_arguments(stats, stdin=True)
    stats.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    stats.add_argument("--plot", metavar="DIR", help="also write PNG charts into DIR (created if missing)")
    stats.add_argument("--top", type=positive_int, default=10, metavar="N", help="rows in the top lists (default: 10)")
    stats.add_argument(
        "--session", type=positive_int, action="append", metavar="N", help="only session N (may be repeated)"
    )
    stats.add_argument("-c", dest="count", type=positive_int, metavar="COUNT", help="stop after COUNT messages")
    add_size_option(stats)


def cmd_stats(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import orjson

    from wsinspect.capture import open_capture
    from wsinspect.session import Inspector, Options
    from wsinspect.stats import Stats

    path = capture_path(args, parser)
    if args.plot:
        from wsinspect.plot import require

        require()  # before reading the capture, not after
    out = stdout_binary()
    stats = Stats(top=args.top)
    wanted = set(args.session) if args.session else None
    count = args.count
    # The common case takes the path of read -q: the fast lane counts messages into the
    # tally without making them. --session and -c need every Message (its session, an
    # exact count): the path of read.
    fast = wanted is None and count is None
    options = Options(max_message_size=args.max_message_size, messages=not fast, tally=stats.tally if fast else None)
    inspector = Inspector(options)
    feed = inspector.feed
    reader = open_capture(path)
    ended_by = "eof"
    try:
        if fast:
            collect = stats.events
            for raw in reader:
                evs = feed(raw)
                if evs:
                    collect(evs)
        else:
            for raw in reader:
                if _stats_events(stats, feed(raw), wanted, count):
                    ended_by = "stopped"  # -c: as read -c
                    break
        _stats_events(stats, inspector.finish(ended_by), wanted, None)
    finally:
        reader.close()
    for warning in reader.warnings:
        print(f"wsinspect: {warning}", file=sys.stderr)
    if args.json:
        out.write(orjson.dumps(stats.to_json(), option=orjson.OPT_APPEND_NEWLINE))
    else:
        out.write(stats.render().encode())
    out.flush()
    if args.plot:
        from wsinspect.plot import write_plots

        for written in write_plots(stats, args.plot):
            print(f"wsinspect: wrote {written}", file=sys.stderr)
    return 0


def _stats_events(stats: Stats, events: list[Event], wanted: set[int] | None, count: int | None) -> bool:
    """Count the events of the sessions wanted; True once ``count`` messages were."""
    from wsinspect.messages import Message
    from wsinspect.session import SessionSummary

    for ev in events:
        if isinstance(ev, Message):
            if wanted is None or ev.session in wanted:
                stats.message(ev)
                if count is not None and sum(stats.tally.totals[::3]) >= count:
                    return True
        elif isinstance(ev, SessionSummary) and (wanted is None or ev.session in wanted):
            stats.session(ev)
    return False


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that Python's flush at exit of what
    could not be written adds no noise."""
    if sys.stdout is not None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["-D"]:
        argv = ["interfaces", *argv[1:]]  # as tcpdump and tshark users type it
    args, extra = parser.parse_known_args(argv)
    # Usage errors of a command show that command's usage, not the top level's.
    command = getattr(args, "parser", parser)
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        status: int = args.func(args, command)
        return status
    except OutputError as exc:
        print(f"wsinspect: {exc}", file=sys.stderr)
        _quiet_stdout()
        return exc.exit_status
    except WsinspectError as exc:
        print(f"wsinspect: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error; keep Python quiet at exit.
        _quiet_stdout()
        return 0
