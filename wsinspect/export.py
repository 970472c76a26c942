"""`wsinspect export` and `wsinspect follow`: take the sessions a filter selects to other tools.

export writes any of: HAR 1.2 (har.py), a pcap or pcapng of the selected sessions'
TCP connections, a Follow-Stream transcript (follow.py), one file per message
payload, JSON Lines and CSV records. The capture is decoded once through a
filter.Selection; the pcap export reads it a second time and copies the packets of
the selected connections, byte for byte, in their order and with their timestamps.

Every file is written to a temporary name beside its target and renamed when
whole, so a failure leaves no partial file; an existing target is refused without
--force. Exit status: 0 written; 1 nothing written (the capture or an output
cannot be used, the filter matched nothing, a --session that does not exist);
2 bad usage (a bad filter, no output asked for, an existing file without --force).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from wsinspect.capture import PCAP_MAGIC_NS, PCAP_MAGIC_US
from wsinspect.errors import WsinspectError
from wsinspect.messages import Message
from wsinspect.options import (
    add_command,
    add_display_filter,
    add_file_arguments,
    add_size_option,
    capture_path,
    display_filter,
    positive_int,
)
from wsinspect.printer import stdout_binary, write_output
from wsinspect.session import Event, SessionOpened, SessionSummary, SessionUpgraded

EXPORT_EPILOG = """\
examples:
  wsinspect export chat.pcap --session 2 --har chat.har
  wsinspect export chat.pcap -Y 'session.path == "/feed"' --pcap feed.pcapng
  wsinspect export chat.pcap -Y 'opcode == binary' --payloads blobs/
  wsinspect export chat.pcap -Y 'json.type == "order"' --csv orders.csv --json orders.jsonl
  wsinspect follow chat.pcap --session 2

exit status:
  0  every output was written
  1  nothing was written: the capture or an output path cannot be used, the filter
     matched no message or session, or a --session does not exist
  2  bad usage: a bad filter, no output given, an existing file without --force
"""

# The CSV export's columns unless -e says otherwise.
CSV_FIELDS = ["session", "ts", "dir", "opcode", "length", "text", "close_code"]  # -e data: payloads as hex


class ExportError(WsinspectError):
    """Nothing was written (exit status 1)."""


class UsageError(WsinspectError):
    exit_status = 2


# -- decoding the selection ----------------------------------------------------------


@dataclass
class Selected:
    """What a filter selected in a capture, by session number."""

    sessions: dict[int, SessionSummary] = field(default_factory=dict)
    messages: dict[int, list[Message]] = field(default_factory=dict)
    index: dict[int, int] = field(default_factory=dict)  # id(message) -> its number in its session, from 1
    total: int = 0  # sessions in the capture
    events: list[Event] = field(default_factory=list)  # in output order (json, har)


def decode(path: str, args: argparse.Namespace) -> Selected:
    """Decode the capture and keep what the filter and --session select."""
    from wsinspect.capture import open_capture
    from wsinspect.filter import Selection
    from wsinspect.session import Inspector, Options

    flt = display_filter(args)
    selection = Selection(flt) if flt is not None else None
    wanted = set(args.session) if args.session else None
    inspector = Inspector(Options(max_message_size=args.max_message_size))
    out = Selected()
    counts: dict[int, int] = {}
    reader = open_capture(path)

    def take(events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Message):
                m = ev
                counts[m.session] = counts.get(m.session, 0) + 1
                out.index[id(m)] = counts[m.session]
            elif isinstance(ev, SessionOpened):
                out.total += 1
        shown = selection.feed(events) if selection is not None else events
        for ev in shown:
            session = getattr(ev, "session", None)
            if wanted is not None and session not in wanted:
                continue
            if isinstance(ev, Message):
                out.messages.setdefault(ev.session, []).append(ev)
                out.events.append(ev)
            elif isinstance(ev, SessionUpgraded):
                out.events.append(ev)
            elif isinstance(ev, SessionSummary):
                out.sessions[ev.session] = ev
                out.events.append(ev)

    try:
        for raw in reader:
            evs = inspector.feed(raw)
            if evs:
                take(evs)
        take(inspector.finish())
    finally:
        reader.close()
    for warning in reader.warnings:
        print(f"wsinspect: {warning}", file=sys.stderr)
    if wanted is not None:
        missing = sorted(n for n in wanted if n > out.total)
        if missing:
            which = ", ".join(map(str, missing))
            raise ExportError(
                f"no session {which} in {path}: it has {out.total} session{'s' if out.total != 1 else ''}"
            )
    # A message of a session left out (by --session) never reaches here; a session
    # whose messages were selected always has its record (filter.Selection).
    out.messages = {n: ms for n, ms in out.messages.items() if n in out.sessions}
    return out


# -- writing files whole or not at all -------------------------------------------------


def check_target(path: str, force: bool) -> None:
    """Refuse before decoding: an existing file without --force (usage), a directory
    that cannot be written (nothing written)."""
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} exists; give --force to replace it")
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path}: it is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ExportError(f"cannot write {path}: no such directory {os.path.dirname(path) or '.'}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: permission denied")


@contextlib.contextmanager
def atomic(path: str) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed to it when the block ends normally
    and removed otherwise."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".wsinspect-", suffix=".part", dir=directory)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ExportError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- the formats -----------------------------------------------------------------------


def write_har(sel: Selected, f: BinaryIO) -> None:
    from wsinspect import har

    collector = har.HarCollector()
    collector.feed(sel.events)
    f.write(har.dumps(collector.har()))


def write_json(sel: Selected, f: BinaryIO) -> None:
    from wsinspect import jsonl

    for ev in sel.events:
        if isinstance(ev, Message):
            f.write(jsonl.dumps(jsonl.message_record(ev)))
        elif isinstance(ev, SessionSummary):
            f.write(jsonl.dumps(jsonl.session_record(ev)))


def write_csv(sel: Selected, f: BinaryIO, names: list[str]) -> None:
    """One line per selected message in the order of read's output (RFC 4180, with
    a header), or per session when every field is a session field."""
    from wsinspect.fields import FieldsFormat, FieldsWriter
    from wsinspect.filter import session_values

    writer = FieldsWriter(names, FieldsFormat(header=True, separator=","))
    f.write((writer.header() or "").encode("utf-8"))
    values = {n: session_values(s) for n, s in sel.sessions.items()}
    for ev in sel.events:
        if isinstance(ev, Message) and not writer.per_session:
            f.write(writer.message(ev, values[ev.session]).encode("utf-8"))
        elif isinstance(ev, SessionSummary) and writer.per_session:
            f.write(writer.session(values[ev.session]).encode("utf-8"))


def write_follow(sel: Selected, f: BinaryIO) -> None:
    from wsinspect.follow import follow

    first = True
    for n, summary in sorted(sel.sessions.items()):
        if not first:
            f.write(b"\n")
        first = False
        f.write("".join(line + "\n" for line in follow(summary, sel.messages.get(n, []))).encode("utf-8"))


def payload_files(sel: Selected) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every selected message: <session>-<n>-<dir>.<txt|bin>, n its
    number among all its session's messages (the same with any filter)."""
    for n in sorted(sel.sessions):
        for m in sel.messages.get(n, []):
            suffix = "txt" if m.text is not None else "bin"
            yield f"{n}-{sel.index[id(m)]}-{m.dir}.{suffix}", bytes(m.payload)


def write_payloads(sel: Selected, directory: str, force: bool) -> int:
    """Write the payload files into ``directory`` (made if missing): first into a
    temporary directory beside it, then moved in, so a failure leaves nothing."""
    parent = os.path.dirname(os.path.abspath(directory))
    try:
        tmp = tempfile.mkdtemp(prefix=".wsinspect-", suffix=".part", dir=parent)
    except OSError as exc:
        raise ExportError(f"cannot write {directory}: {exc.strerror}") from None
    count = 0
    try:
        for name, data in payload_files(sel):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
            count += 1
        if not os.path.isdir(directory):
            os.replace(tmp, directory)
        else:
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(directory, name))
            os.rmdir(tmp)
    except OSError as exc:
        _remove_tree(tmp)
        raise ExportError(f"cannot write {directory}: {exc.strerror}") from None
    return count


def _remove_tree(directory: str) -> None:
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def check_payload_dir(directory: str, force: bool) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ExportError(f"cannot write {directory}: not a directory")
    if os.path.isdir(directory) and os.listdir(directory) and not force:
        raise UsageError(f"{directory} is not empty; give --force to write into it")
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {directory}: {parent} cannot be written")


# -- pcap of the selected connections ----------------------------------------------------


def _endpoint_bytes(text: str) -> bytes:
    """ "ip:port" or "[v6]:port" as a flow key's address bytes and port (packet.endpoints' inverse)."""
    import ipaddress

    host, _, port = text.rpartition(":")
    address = ipaddress.ip_address(host.strip("[]"))
    return address.packed + struct.pack("!H", int(port))


def flow_keys(sessions: dict[int, SessionSummary]) -> set[bytes]:
    """The flow keys (packet.tcp_fields) of both directions of each session's connection."""
    keys = set()
    for s in sessions.values():
        c, srv = _endpoint_bytes(s.client), _endpoint_bytes(s.server)
        keys.add(c[:-2] + srv[:-2] + c[-2:] + srv[-2:])
        keys.add(srv[:-2] + c[:-2] + srv[-2:] + c[-2:])
    return keys


def write_pcap(path: str, keys: set[bytes], out_path: str, f: BinaryIO) -> int:
    """Copy the packets of the flows ``keys`` from the capture ``path`` into ``f``:
    pcapng when ``out_path`` ends in .pcapng, else pcap with nanosecond timestamps.
    Returns the number of packets."""
    from wsinspect.capture import open_capture
    from wsinspect.packet import tcp_fields

    ng = out_path.lower().endswith((".pcapng", ".ntar"))
    digits = source_resolution(path)
    write: Callable[[float, int, bytes], None]
    if ng:
        writer = _PcapngWriter(f, digits)
        write = writer.packet
    else:
        linktypes: list[int] = []
        magic = PCAP_MAGIC_NS if digits == 9 else PCAP_MAGIC_US

        def write(ts: float, linktype: int, data: bytes) -> None:
            if not linktypes:
                linktypes.append(linktype)
                f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
            elif linktype != linktypes[0]:
                raise ExportError(f"{out_path}: the packets have several link types; export to .pcapng")
            sec, frac = divmod(_ticks(ts, digits), 10**digits)
            f.write(struct.pack("<IIII", sec, frac, len(data), len(data)) + data)

    reader = open_capture(path)
    count = 0
    try:
        for raw in reader:
            fields = tcp_fields(raw.linktype, raw.data)
            if fields is not None and fields[0] in keys:
                write(raw.ts, raw.linktype, bytes(raw.data))
                count += 1
    finally:
        reader.close()
    return count


def _ticks(ts: float, digits: int) -> int:
    """A packet's time in units of 10**-digits s. ts - int(ts) is exact in a float,
    so microsecond times are copied exactly; nanosecond times came through a float
    already, which holds them to about 0.2 us."""
    sec = int(ts)
    scale: int = 10**digits
    return sec * scale + round((ts - sec) * scale)


def source_resolution(path: str) -> int:
    """The decimal digits of the capture's timestamps: 9 for a nanosecond pcap or a
    pcapng whose first interface says if_tsresol 9 (or finer), else 6."""
    import gzip

    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head == b"\x1f\x8b":
            with gzip.open(raw) as unzipped:
                data = unzipped.read(1 << 16)
        else:
            data = raw.read(1 << 16)
    if len(data) < 4:
        return 6
    magic: int = struct.unpack("<I", data[:4])[0]
    if magic in (PCAP_MAGIC_NS, _swap(PCAP_MAGIC_NS)):
        return 9
    if data[:4] != b"\x0a\x0d\x0d\x0a" or len(data) < 12:
        return 6
    # pcapng: the Section Header Block's byte order, then the first Interface
    # Description Block's options (if_tsresol is code 9; pcapng spec 4.2).
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12:
            return 6
        if btype == 1:
            opt = pos + 16
            while opt + 4 <= min(pos + blen - 4, len(data)):
                code, olen = struct.unpack_from(endian + "HH", data, opt)
                if code == 0:
                    break
                if code == 9 and olen >= 1 and opt + 4 < len(data):
                    value = data[opt + 4]
                    return 9 if not value & 0x80 and value >= 9 else 6
                opt += 4 + olen + (-olen % 4)
            return 6
        pos += blen
    return 6


def _swap(magic: int) -> int:
    return int.from_bytes(magic.to_bytes(4, "little"), "big")


class _PcapngWriter:
    """The least pcapng (the pcapng specification, draft-ietf-opsawg-pcapng): a
    Section Header Block, an Interface Description Block per link type (if_tsresol:
    the source's 6 or 9 digits), an Enhanced Packet Block per packet."""

    def __init__(self, f: BinaryIO, digits: int) -> None:
        self.f = f
        self.digits = digits
        self.interfaces: dict[int, int] = {}
        # SHB: type, length, byte-order magic, version 1.0, section length unknown (-1).
        f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))

    def packet(self, ts: float, linktype: int, data: bytes) -> None:
        iface = self.interfaces.get(linktype)
        if iface is None:
            iface = self.interfaces[linktype] = len(self.interfaces)
            # IDB with the option if_tsresol (9) = 9 (10^-9 s), then opt_endofopt.
            options = struct.pack("<HHB3x", 9, 1, self.digits) + struct.pack("<HH", 0, 0)
            length = 20 + len(options)
            self.f.write(struct.pack("<IIHHI", 1, length, linktype, 0, 262144) + options + struct.pack("<I", length))
        ticks = _ticks(ts, self.digits)
        pad = -len(data) % 4
        length = 32 + len(data) + pad
        self.f.write(
            struct.pack("<IIIIIII", 6, length, iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
            + data
            + b"\0" * pad
            + struct.pack("<I", length)
        )


# -- the commands --------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    path = capture_path(args, parser)
    files = [(name, getattr(args, name)) for name in ("har", "pcap", "json", "csv") if getattr(args, name)]
    follow_to = args.follow
    if not files and follow_to is None and args.payloads is None:
        parser.error("export: give at least one of --har, --pcap, --follow, --payloads, --json, --csv FILE")
    if args.fields and not args.csv:
        parser.error("export: -e chooses the --csv columns")
    display_filter(args)  # a bad filter: exit 2 before anything is read
    targets = [target for _, target in files] + ([follow_to] if follow_to not in (None, "-") else [])
    if len(set(map(os.path.abspath, targets))) != len(targets):
        parser.error("export: two outputs name the same file")
    for target in targets:
        check_target(target, args.force)
    if args.payloads is not None:
        check_payload_dir(args.payloads, args.force)
    if args.csv:
        from wsinspect.fields import FieldsWriter

        FieldsWriter(args.fields or CSV_FIELDS)  # an unknown field: exit 2 before reading
    sel = decode(path, args)
    if not sel.sessions:
        what = f"the filter {args.display_filter!r}" if args.display_filter else "the selection"
        raise ExportError(f"{what} matched no message or session in {path}; nothing written")
    done: list[str] = []
    for name, target in files:
        with atomic(target) as f:
            if name == "har":
                write_har(sel, f)
            elif name == "json":
                write_json(sel, f)
            elif name == "csv":
                write_csv(sel, f, args.fields or CSV_FIELDS)
            else:
                packets = write_pcap(path, flow_keys(sel.sessions), target, f)
                done.append(f"{packets} packets to {target}")
                continue
        done.append(f"{name.upper()} to {target}")
    if args.payloads is not None:
        count = write_payloads(sel, args.payloads, args.force)
        done.append(f"{count} payload files to {args.payloads}")
    if follow_to == "-":
        _print_follow(sel)
    elif follow_to is not None:
        with atomic(follow_to) as f:
            write_follow(sel, f)
        done.append(f"the transcript to {follow_to}")
    n = len(sel.sessions)
    messages = sum(map(len, sel.messages.values()))
    if done:  # (the transcript alone goes to standard output: nothing to add)
        print(
            f"wsinspect: {n} session{'s' if n != 1 else ''}, {messages} message{'s' if messages != 1 else ''}:"
            f" wrote {', '.join(done)}",
            file=sys.stderr,
        )
    return 0


def _print_follow(sel: Selected) -> None:
    """The transcript on standard output (follow.py sanitizes what came from the wire)."""
    buf = io.BytesIO()
    write_follow(sel, buf)
    write_output(stdout_binary(), buf.getvalue())


def cmd_follow(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    path = capture_path(args, parser)
    display_filter(args)
    stdout_binary()  # a closed stdout fails before the capture is decoded
    sel = decode(path, args)
    if args.session is None and len(sel.sessions) > 1:
        parser.error(f"follow: {path} has {sel.total} sessions; choose with --session N")
    if not sel.sessions:
        what = f"the filter {args.display_filter!r}" if args.display_filter else "the selection"
        raise ExportError(f"{what} matched no message or session in {path}")
    _print_follow(sel)
    return 0


def _selection_options(p: argparse.ArgumentParser) -> None:
    add_file_arguments(p, stdin=False)
    group = p.add_argument_group("selection")
    add_display_filter(group)
    group.add_argument(
        "--session", type=positive_int, action="append", metavar="N", help="only session N (may be repeated)"
    )
    add_size_option(p)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = add_command(
        sub,
        "export",
        cmd_export,
        help="write the selected sessions as HAR, pcap, a transcript, payload files, JSON Lines or CSV",
        description="Write the sessions and messages that -Y and --session select to files for other tools.",
        epilog=EXPORT_EPILOG,
    )
    _selection_options(export)
    out = export.add_argument_group("outputs (any number of them)")
    out.add_argument("--har", metavar="FILE", help="HAR 1.2 as Chrome DevTools writes WebSockets")
    out.add_argument(
        "--pcap",
        metavar="FILE",
        help="the packets of the selected sessions' TCP connections (pcapng when FILE ends in .pcapng)",
    )
    out.add_argument(
        "--follow",
        nargs="?",
        const="-",
        metavar="FILE",
        help="a transcript of each session (standard output without FILE)",
    )
    out.add_argument(
        "--payloads", metavar="DIR", help="one file per message: <session>-<n>-<dir>.<txt|bin>, the raw payload"
    )
    out.add_argument("--json", metavar="FILE", help="the selected records as JSON Lines")
    out.add_argument("--csv", metavar="FILE", help="the selected messages as CSV with a header")
    out.add_argument(
        "-e", dest="fields", action="append", metavar="FIELD", help=f"a --csv column (default: {' '.join(CSV_FIELDS)})"
    )
    out.add_argument("--force", action="store_true", help="replace existing files (and write into a non-empty DIR)")

    follow = add_command(
        sub,
        "follow",
        cmd_follow,
        help="print one session as a conversation transcript (Follow WebSocket Stream)",
        description="Print a session's messages as a transcript: time, arrow, opcode, the whole payload.",
    )
    _selection_options(follow)
