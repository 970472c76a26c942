"""The argparse pieces shared by every command (read, live, tui): options and their types.

Front ends share these instead of importing each other (cli, live and tui each build
their own command from them).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from wsinspect.errors import WsinspectError
from wsinspect.frames import DEFAULT_MAX_MESSAGE_SIZE
from wsinspect.vocab import OPCODE_BY_NAME

if TYPE_CHECKING:
    from wsinspect.fields import FieldsWriter
    from wsinspect.filter import Filter
    from wsinspect.tls import KeyLog

# --opcode names (vocab.OPCODE_BY_NAME: as the text output shows them, and tshark's "continuation").
OPCODE_HELP = "text, binary, close, ping, pong, cont (a stray continuation frame), 0xN"


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Callable[[argparse.Namespace, argparse.ArgumentParser], int],
    *,
    help: str,
    description: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A command's parser; ``func(args, parser)`` runs it. An epilog is kept as
    written (its examples and tables are laid out by hand)."""
    p = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    p.set_defaults(func=func, parser=p)
    return p


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
        if name in OPCODE_BY_NAME:
            result.add(OPCODE_BY_NAME[name])
        elif re.fullmatch(r"0x[0-9a-f]", name):
            result.add(int(name, 16))
        else:
            raise argparse.ArgumentTypeError(f"unknown opcode {name!r} ({OPCODE_HELP})")
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
    filt = add_filter_options(p, "filters", "only messages whose text (a close message: its reason) matches REGEX")
    filt.add_argument("-c", dest="count", type=positive_int, metavar="COUNT", help="stop after COUNT messages")
    add_display_options(p)
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
        parser.error("a capture file is required (FILE, -r FILE, or - for standard input)")
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
        help=f"only these opcodes, comma-separated: {OPCODE_HELP}; e.g. text,binary or close,0x3",
    )
    filt.add_argument("--grep", type=regex_arg, metavar="REGEX", help=grep_help)
    return filt


def add_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-message-size",
        type=size_arg,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="SIZE",
        help="cut messages (after decompression) beyond SIZE, e.g. 64M (default)",
    )


# -- display filters and fields output (issue 18) ------------------------------------


def add_display_filter(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """-Y/--filter EXPR: compiled by display_filter() when the command runs, so that a
    bad expression is reported with a caret under the error (exit status 2)."""
    p.add_argument(
        "-Y",
        "--filter",
        dest="display_filter",
        metavar="EXPR",
        help="display filter, e.g. 'opcode == text and session.host contains \"example\"' (README: the language)",
    )


def add_display_options(p: argparse.ArgumentParser) -> None:
    """-Y, and -T fields -e FIELD -E OPTION (read, live)."""
    group = p.add_argument_group("display filter and fields output")
    add_display_filter(group)
    group.add_argument(
        "-T",
        dest="output_format",
        choices=["text", "json", "fields"],
        help="output format: text (default), json (as --json), fields (the -e fields, tab-separated)",
    )
    group.add_argument(
        "-e",
        dest="fields",
        action="append",
        metavar="FIELD",
        help="with -T fields: a field to print (a filter field name; repeat for several)",
    )
    group.add_argument(
        "-E",
        dest="fields_options",
        action="append",
        default=[],
        metavar="OPTION",
        help="with -T fields: header=y, separator=/t|/s|CHAR, quote=d|s|n, aggregator=CHAR (separator=, writes CSV)",
    )


def display_filter(args: argparse.Namespace) -> Filter | None:
    """The compiled -Y filter, or None; FilterError (exit status 2) when it is bad."""
    expression: str | None = getattr(args, "display_filter", None)
    if expression is None:
        return None
    from wsinspect.filter import compile_filter

    return compile_filter(expression)


def fields_writer(args: argparse.Namespace, parser: argparse.ArgumentParser) -> FieldsWriter | None:
    """The -T fields writer, or None; a usage error for -e/-E without -T fields,
    FieldsError or FilterError (exit status 2) for a bad option or field."""
    fmt = getattr(args, "output_format", None)
    if fmt == "json":
        args.json = True
    if fmt != "fields":
        if getattr(args, "fields", None) or getattr(args, "fields_options", None):
            parser.error(f"{args.command}: -e and -E go with -T fields")
        return None
    if args.json:
        parser.error(f"{args.command}: -T fields and --json are two output formats; give one")
    from wsinspect.fields import FieldsFormat, FieldsWriter, parse_option

    fields_format = FieldsFormat()
    for option in args.fields_options:
        fields_format = parse_option(fields_format, option)
    return FieldsWriter(args.fields or [], fields_format)


def compile_display_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """-Y and -T fields, compiled into args (compiled_filter, fields_writer) before the
    capture is opened: a bad expression or field is exit status 2, with a caret."""
    args.compiled_filter = display_filter(args)
    args.fields_writer = fields_writer(args, parser)


# -- TLS key logs (wss://) -----------------------------------------------------------

# The one tshark preference -o takes: tshark's spelling of --tls-keylog.
KEYLOG_PREFERENCE = "tls.keylog_file"


def add_tls_options(p: argparse.ArgumentParser) -> None:
    """--tls-keylog FILE (repeatable) and tshark's -o tls.keylog_file:FILE (read, live, tui)."""
    tls = p.add_argument_group("TLS (wss://)")
    tls.add_argument(
        "--tls-keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="decrypt TLS with the secrets of this NSS key log (SSLKEYLOGFILE), may be repeated; keys in a pcapng"
        " capture's Decryption Secrets Blocks are used without it",
    )
    tls.add_argument(
        "-o",
        dest="preferences",
        action="append",
        default=[],
        metavar=f"{KEYLOG_PREFERENCE}:FILE",
        help="the same, as tshark users type it (the only preference taken)",
    )


def keylog_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The key log files named by add_tls_options' options; any other -o preference is a usage error."""
    paths: list[str] = list(args.tls_keylog)
    for preference in args.preferences:
        name, sep, value = preference.partition(":")
        if name.strip() != KEYLOG_PREFERENCE or not sep or not value:
            parser.error(f"-o {preference}: only -o {KEYLOG_PREFERENCE}:FILE is understood")
        paths.append(value)
    return paths


def open_keylog(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[KeyLog, str | None]:
    """The key log of add_tls_options' files (empty without any: a pcapng's secrets may fill it), and a warning
    to print when some of its lines were not key-log lines. WsinspectError when a file cannot be read. Only
    counts and paths are ever named, never a secret."""
    from wsinspect.tls import KeyLog

    keylog = KeyLog.from_paths(keylog_paths(args, parser))
    if keylog.unreadable:
        raise WsinspectError(f"cannot read the TLS key log {', '.join(keylog.unreadable)}")
    warning = None
    if keylog.bad_lines:
        warning = f"TLS key log: {keylog.bad_lines} line(s) are not key-log lines and were ignored"
    return keylog, warning
