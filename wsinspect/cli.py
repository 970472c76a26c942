"""Command line: `wsinspect read`, and the only place exceptions become exit codes.

Exit status: 0 when decoding finished (protocol issues found are findings, not
errors), 1 when the job failed (file unreadable or not a capture, output that
cannot be written), 2 for a usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import sys
from collections.abc import Iterable
from itertools import chain
from typing import BinaryIO

from wsinspect import __version__
from wsinspect.errors import WsinspectError
from wsinspect.session import Event, Message, SessionOpened, SessionSummary

# Modules with an add_commands(subparsers) function; each command sets func(args, parser) -> int.
COMMAND_MODULES = ("wsinspect.live", "wsinspect.tui")

# Files at least this large are decoded on every core unless -j says otherwise.
PARALLEL_MIN_SIZE = 16 << 20

# --opcode names: as the text output shows them, and tshark's "continuation".
OPCODES = {"cont": 0, "continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
OPCODE_NAMES = "text, binary, close, ping, pong, cont (a stray continuation frame), 0xN"

# In JSON written to a terminal, the characters that act on it or reorder and hide
# text, which JSON allows raw (orjson escapes only what it must, below U+0020): DEL,
# the C1 controls U+0080-U+009F (U+009B is CSI to some terminals), the Arabic letter
# mark U+061C, zero-width characters and bidi marks U+200B-U+200F, line and paragraph
# separators and bidi embeddings/overrides U+2028-U+202E, bidi isolates U+2066-U+2069
# and U+FEFF; matched in the UTF-8 that orjson writes (no byte of it can start
# inside another character).
_TERMINAL_UNSAFE = re.compile(
    rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf"
)

READ_EPILOG = """\
output:
  One line per message: time, session, client → server (or ←), opcode, payload
  length, [frames] [deflate wire-size], a preview; then a table of the sessions.
  --frames adds a line per frame under its message's line.
  --json prints JSON Lines instead (see README.md for the record fields).

exit status:
  0  the capture was decoded (protocol issues found are reported, not errors);
     damage to the file itself (a cut record) is reported on stderr
  1  the file could not be read at all (missing, not a pcap/pcapng capture),
     or the output could not be written (a full disk)
  2  bad command-line usage
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def size_arg(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = units.get(t[-1:], 1)
    if t[-1:] in units:
        t = t[:-1]
    try:
        value = int(float(t) * mult)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def opcode_list(text: str) -> set[int]:
    result = set()
    for name in text.split(","):
        name = name.strip().lower()
        if name in OPCODES:
            result.add(OPCODES[name])
        elif re.fullmatch(r"0x[0-9a-f]", name):
            result.add(int(name, 16))
        else:
            raise argparse.ArgumentTypeError(f"unknown opcode {name!r} ({OPCODE_NAMES})")
    return result


def regex_arg(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {exc}") from None


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that prints messages (read, live)."""
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="JSON Lines: one object per message and per session")
    out.add_argument(
        "--frames",
        action="store_true",
        help="also show every frame: a line under each message, or with --json one object per frame",
    )
    out.add_argument(
        "-t",
        dest="time_format",
        choices=["r", "a", "ad", "e", "u", "ud"],
        default="r",
        help="time format: r relative to the first packet (default), a absolute local, ad with date, "
        "e epoch seconds, u/ud UTC",
    )
    out.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the text output (auto: only when stdout is a terminal)",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no message lines: only the session summary")
    filt = add_filter_options(p, "filters", "only text messages matching REGEX")
    filt.add_argument("-c", dest="count", type=positive_int, metavar="COUNT", help="stop after COUNT messages")
    add_size_option(p)


def add_file_arguments(p: argparse.ArgumentParser, stdin: bool) -> None:
    """The capture file, as FILE or as tshark's -r FILE."""
    where = "; - for stdin" if stdin else ""
    p.add_argument("file", nargs="?", help=f"capture file (pcap, pcapng, optionally .gz){where}")
    p.add_argument("-r", dest="read_file", metavar="FILE", help="capture file, as with tshark -r")


def capture_path(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The capture file named by add_file_arguments' options (a usage error if none or both)."""
    if args.read_file and args.file:
        parser.error(f"{args.command}: give the capture file once (either FILE or -r FILE)")
    path: str | None = args.read_file or args.file
    if path is None:
        parser.error(f"{args.command}: a capture file is required")
    return path


def add_filter_options(p: argparse.ArgumentParser, title: str, grep_help: str) -> argparse._ArgumentGroup:
    """--session, --opcode and --grep (read, live, tui)."""
    filt = p.add_argument_group(title)
    filt.add_argument(
        "--session", type=positive_int, action="append", metavar="N", help="only session N (may be repeated)"
    )
    filt.add_argument(
        "--opcode",
        type=opcode_list,
        metavar="LIST",
        help=f"only these opcodes, comma-separated: {OPCODE_NAMES}; e.g. text,binary or close,0x3",
    )
    filt.add_argument("--grep", type=regex_arg, metavar="REGEX", help=grep_help)
    return filt


def add_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-message-size",
        type=size_arg,
        default=64 << 20,
        metavar="SIZE",
        help="cut messages (after decompression) beyond SIZE, e.g. 64M (default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsinspect", description="Inspect WebSocket traffic in packet captures and on live interfaces."
    )
    parser.add_argument("--version", action="version", version=f"wsinspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    read = sub.add_parser(
        "read",
        help="decode every WebSocket session in a capture file",
        description="Decode every WebSocket session in a pcap or pcapng file (gzip-compressed too; - for stdin).",
        epilog=READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    read.set_defaults(func=cmd_read, parser=read)
    # Other commands register themselves; their modules import nothing heavy at the
    # top (scapy, textual), so that `read` starts fast.
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


class OutputError(WsinspectError):
    """Standard output cannot be written (a full disk, a closed descriptor)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write output: {reason}")


def stdout_binary() -> BinaryIO:
    """Standard output as bytes; OutputError when it was closed (`>&-`)."""
    if sys.stdout is None:
        raise OutputError("standard output is closed")
    return sys.stdout.buffer


def write_output(out: BinaryIO, data: bytes) -> None:
    """Write ``data`` and flush it. A closed pipe raises BrokenPipeError (the reader
    went away: not an error); any other failure to write raises OutputError."""
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc.strerror or str(exc)) from None


class Printer:
    """Applies the filters and writes events as text lines or JSON Lines."""

    def __init__(self, args: argparse.Namespace, out: BinaryIO, ts_origin: float | None = None) -> None:
        from wsinspect import text

        self.args = args
        self.out = out
        self.json = args.json
        if self.json:
            # orjson only when JSON is wanted: it costs start-up time otherwise.
            from wsinspect import jsonl

            self.jsonl = jsonl
        self.sessions_wanted = set(args.session) if args.session else None
        self.opcodes = args.opcode
        self.grep = args.grep
        self.remaining = args.count
        # -q without filters or a count: messages need no look at all.
        self.wants_messages = not (
            args.quiet and args.count is None and args.session is None and args.opcode is None and args.grep is None
        )
        self.rows: list[tuple[int, str]] = []  # text mode prints the session table at the end
        tty = _isatty(out)
        color = args.color == "always" or (args.color == "auto" and tty)
        self.text = text.TextWriter(text.Colors(color), text.TimeFormat(args.time_format, ts_origin))
        # JSON to a terminal: what could act on it is escaped (see _TERMINAL_UNSAFE);
        # files and pipes get orjson's bytes untouched.
        self.escape_json = self.json and tty
        self._buf: list[bytes] = []

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def events(self, events: Iterable[Event]) -> None:
        every_message = self.wants_messages
        for ev in events:
            if ev.__class__ is Message:
                if every_message:
                    self._message(ev)
            elif isinstance(ev, SessionSummary):
                self.text.ended(ev.session)
                if self.sessions_wanted is None or ev.session in self.sessions_wanted:
                    if self.json:
                        self._buf.append(self.render_summary(ev))
                    else:
                        self.rows.append((ev.session, self.text.session_row(ev)))
            elif isinstance(ev, SessionOpened):
                self.text.opened(ev.session, ev.client, ev.server)

    def selected(self, m: Message) -> bool:
        """Whether the message passes --opcode and --grep (filters on the message alone)."""
        if self.opcodes is not None and m.opcode not in self.opcodes:
            return False
        return self.grep is None or (m.text is not None and self.grep.search(m.text) is not None)

    def render(self, m: Message) -> list[bytes]:
        """The output records of a message: its frames (--frames) and itself; in text,
        the message's line comes first and its frames' lines under it."""
        if self.json:
            jsonl = self.jsonl
            records = [jsonl.dumps(jsonl.frame_record(m, f)) for f in m.frames] if self.args.frames else []
            records.append(jsonl.dumps(jsonl.message_record(m)))
            return records
        if self.args.frames:
            text = self.text
            return [text.message(m).encode("utf-8"), *(text.frame(m, f).encode("utf-8") for f in m.frames)]
        return [self.text.message(m).encode("utf-8")]

    def render_summary(self, s: SessionSummary) -> bytes:
        """A session's JSON record."""
        return self.jsonl.dumps(self.jsonl.session_record(s))

    def _message(self, m: Message) -> None:
        if self.done:
            return
        if self.sessions_wanted is not None and m.session not in self.sessions_wanted:
            return
        if not self.selected(m):
            return
        if self.remaining is not None:
            self.remaining -= 1
        if not self.args.quiet:
            self._buf.extend(self.render(m))

    def write(self, records: list[bytes]) -> None:
        """Write rendered records (buffered until flush)."""
        self._buf.extend(records)

    def flush(self) -> None:
        """Write what is buffered (see write_output for the errors)."""
        if self._buf:
            data = b"".join(self._buf)
            self._buf = []
            if self.escape_json and _TERMINAL_UNSAFE.search(data) is not None:
                data = _TERMINAL_UNSAFE.sub(_escape_unsafe, data)
            write_output(self.out, data)

    def close(self) -> None:
        if not self.json:
            self._buf.append(self.text.table([row for _, row in sorted(self.rows)]).encode("utf-8"))
        self.flush()


def _escape_unsafe(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match[0].decode())


def _isatty(out: BinaryIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


def cmd_read(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from wsinspect.capture import open_capture
    from wsinspect.session import Inspector, Options

    path = capture_path(args, parser)
    out = stdout_binary()  # before the capture is opened: it could take a closed stdout's descriptor
    reader = open_capture(path)
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
    if jobs > 1 and reader.size is not None and args.count is None:
        from wsinspect.parallel import read_parallel

        reader.close()
        warnings = read_parallel(path, args, jobs, printer, first.ts if first else None)
        printer.close()
        for warning in warnings:
            print(f"wsinspect: {warning}", file=sys.stderr)
        return 0
    # -q without a count needs no messages, only the sessions they add up to.
    inspector = Inspector(Options(max_message_size=args.max_message_size, messages=printer.wants_messages))
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
        printer.close()
    finally:
        reader.close()
    for warning in reader.warnings:
        print(f"wsinspect: {warning}", file=sys.stderr)
    return 0


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
