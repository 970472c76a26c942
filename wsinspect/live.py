"""Live capture: `wsinspect live` and `wsinspect interfaces` (Linux).

The capture itself (packet sockets, their rings, BPF filters, the capture thread)
is sniff.py's; this is the command. The main thread drives the same
Inspector.feed/finish loop and Printer as `read`, flushing after each batch, so a
message is printed as soon as its last frame is captured. With --tui the capture
is the TUI's packet source instead (tui.run_live, set on this command's parser by
the tui package when it registers its own command: front ends do not import each
other).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO

from wsinspect.capture import PcapWriter
from wsinspect.errors import CaptureError
from wsinspect.options import add_command, add_output_options, add_tls_options, compile_display_options, open_keylog
from wsinspect.packet import RawPacket
from wsinspect.printer import Printer, stdout_binary, write_output
from wsinspect.sniff import LINKTYPE_NAMES, Capture, close_taps, counts, list_interfaces, open_taps, saved

if TYPE_CHECKING:
    from wsinspect.stats import Stats

# This module is imported whenever the command line is parsed (to register its
# commands), so what only capturing needs (the decoder, ctypes, orjson) is imported
# where it is used: `wsinspect read` must start fast.

LIVE_EPILOG = """\
examples:
  wsinspect live -i lo -f 'tcp port 8765'            messages as they cross lo
  wsinspect live -i eth0 --json 'tcp port 443' | jq  filter as trailing words
  wsinspect live -i any -w ws.pcap --duration 60     save a minute of traffic
  wsinspect live -i lo --tui 'tcp port 8765'         browse them as they come (q quits)

Needs root or the CAP_NET_RAW capability. The filter uses tcpdump's syntax
(pcap-filter) and runs in the kernel. Stop with Ctrl-C (or SIGTERM, -c, --duration):
the remaining packets are decoded, the sessions summarised, and the packet counts
(captured, received by the filter, dropped by the kernel, dropped by wsinspect
because decoding fell behind) printed on stderr. The -w file is a pcap with
nanosecond timestamps that tcpdump, tshark and `wsinspect read` open.
With --tui the messages appear in the terminal UI of `wsinspect tui` instead; -c and
--duration stop the capture there, q quits, and the packet counts follow on stderr.

exit status:
  0  the capture ran and was stopped (protocol issues found are not errors)
  1  the capture could not start, or stopped because an interface went down
  2  bad command-line usage
"""


def cmd_interfaces(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    out = stdout_binary()
    ifaces = list_interfaces()
    if args.json:
        from wsinspect.jsonl import dumps

        records = [
            dumps(
                {
                    "type": "interface",
                    "name": i.name,
                    "index": i.index,
                    "state": i.state,
                    "link": i.link,
                    "mac": i.mac,
                    "mtu": i.mtu,
                    "addresses": i.addresses,
                }
            )
            for i in ifaces
        ]
        write_output(out, b"".join(records))
        return 0
    width = max((len(i.name) for i in ifaces), default=3)
    lines = []
    for i in ifaces:
        link = f"{i.link} {i.mac}" if i.mac else i.link
        addrs = ", ".join(i.addresses) or "-"
        lines.append(f"{i.index:>3}. {i.name:<{width}}  {i.state:<10}  {link:<26}  mtu {i.mtu:<6} {addrs}\n")
    lines.append(f"     {'any':<{width}}  (every interface, captured cooked: Linux SLL2 headers)\n")
    write_output(out, "".join(lines).encode())
    return 0


# -- the command ------------------------------------------------------------


def _interface_names(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    if not args.interfaces:
        from wsinspect.sniff import default_interface, list_interfaces

        return [default_interface(list_interfaces())]
    names = list(dict.fromkeys(args.interfaces))  # repeated -i: once
    if "any" in names and len(names) > 1:
        parser.error("live: -i any already includes every interface")
    return names


def _filter_expression(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    if args.filter and args.expression:
        parser.error("live: give the capture filter once (either -f BPF or as trailing words)")
    expression: str | None = args.filter or " ".join(args.expression) or None
    return expression


def cmd_live(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    names = _interface_names(args, parser)
    expression = _filter_expression(args, parser)
    if args.tui and (args.json or args.frames or args.quiet):
        parser.error("live: --tui shows the messages on screen; --json, --frames and -q are for printed output")
    # The key log may still grow while the capture runs: tls.KeyLog re-reads it when a handshake misses a key.
    args.keylog, keylog_warning = open_keylog(args, parser)
    args.keylog.growing = bool(args.tls_keylog or args.preferences)
    if keylog_warning:
        print(f"wsinspect: {keylog_warning}", file=sys.stderr)
    # A closed stdout fails now, before a socket or the -w file can take its descriptor.
    if not args.tui:
        stdout_binary()
    # -Y and -T fields (issue 18): a bad one is a usage error before capturing starts.
    compile_display_options(args, parser)
    if args.tui and (args.compiled_filter is not None or args.fields_writer is not None):
        parser.error("live: --tui has its own filter bar (the f key); -Y and -T fields are for printed output")
    interfaces = list_interfaces(addresses=False)
    # Every failure to start (permission, interface, filter, -w file) is raised here,
    # before a TUI takes the terminal.
    taps = open_taps(names, expression, not args.no_promisc, interfaces)
    try:
        writer = PcapWriter(args.write, taps[0].linktype) if args.write else None
    except CaptureError:
        close_taps(taps)
        raise
    capture = Capture(taps, writer, {i.index for i in interfaces if i.loopback})
    if args.tui:
        # Set by the tui package on this parser (see the module's docstring).
        status: int = args.run_tui(args, names, expression, capture)
        return status
    decoder = _Decoder(args, stdout_binary())
    stop = threading.Event()
    previous = _on_stop_signals(stop)
    started = time.monotonic()
    try:
        capture.start()
        what = f"listening on {', '.join(names)} ({LINKTYPE_NAMES[taps[0].linktype]})"
        if expression:
            what += f", capture filter {expression!r}"
        if writer is not None:
            what += f", writing {writer.path}"
        print(f"wsinspect: {what}; Ctrl-C to stop", file=sys.stderr, flush=True)
        deadline = None if args.duration is None else started + args.duration
        decoder.run(capture, stop, deadline)
        capture.stop()
        if not decoder.done:
            # Decode what was captured before the stop: the pcap holds it too.
            while (batch := capture.queue.get(0)) is not None:
                decoder.feed(batch)
        decoder.finish()
    finally:
        capture.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if capture.failure is not None:
        raise capture.failure
    print(counts(capture, time.monotonic() - started), file=sys.stderr, flush=True)
    if capture.error is not None:
        raise CaptureError(capture.error + saved(capture))
    return 0


def _on_stop_signals(stop: threading.Event) -> dict[int, Any]:
    """Ctrl-C and SIGTERM ask for a clean stop; a second one acts as usual (abort)."""
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signum, previous[signum])

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


class _Decoder:
    """The main thread's half: the same Inspector and Printer as `read`."""

    def __init__(self, args: argparse.Namespace, out: BinaryIO) -> None:
        from wsinspect.session import Inspector, Options

        self.args = args
        self.out = out
        self.inspector = Inspector(Options(max_message_size=args.max_message_size, keylog=args.keylog))
        self.printer: Printer | None = None
        # --stats: wsinspect stats over everything captured, printed at the end.
        self.stats: Stats | None = None
        if getattr(args, "stats", False):
            from wsinspect.stats import Stats

            self.stats = Stats()

    @property
    def done(self) -> bool:
        return self.printer is not None and self.printer.done

    def run(self, capture: Capture, stop: threading.Event, deadline: float | None) -> None:
        """Feed batches as they come, until a stop: signal, -c, --duration, or the capture ended."""
        get = capture.queue.get
        while not stop.is_set() and capture.running:
            timeout = 0.1
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return
            batch = get(timeout)
            if batch is not None:
                self.feed(batch)
                if self.done:
                    return

    def feed(self, batch: list[RawPacket]) -> None:
        printer = self.printer
        if printer is None:
            # Relative times count from the first packet captured, as `read` counts from a file's first.
            printer = self.printer = Printer(self.args, self.out, batch[0].ts)
        feed = self.inspector.feed
        events = printer.events
        stats = self.stats
        for raw in batch:
            evs = feed(raw)
            if evs:
                if stats is not None:
                    stats.events(evs)
                events(evs)
                if printer.done:
                    break  # -c: as `read -c`, what comes after the last message is not decoded
        printer.flush()

    def finish(self) -> None:
        """The capture was stopped (signal, -c, --duration, or it failed): the
        connections still open did not end, reading them did."""
        printer = self.printer or Printer(self.args, self.out)
        evs = self.inspector.finish("stopped")
        printer.events(evs)
        for warning in printer.close():
            print(f"wsinspect: {warning}", file=sys.stderr)
        if self.stats is not None:
            self.stats.events(evs)
            self._print_stats(self.stats)

    def _print_stats(self, stats: Stats) -> None:
        """live --stats: the tables of `wsinspect stats` (with --json its object, one line)."""
        import orjson

        if self.args.json:
            self.out.write(orjson.dumps(stats.to_json(), option=orjson.OPT_APPEND_NEWLINE))
        else:
            self.out.write(b"\n" + stats.render().encode())
        self.out.flush()


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    live = add_command(
        sub,
        "live",
        cmd_live,
        help="decode WebSocket traffic on network interfaces as it happens",
        description="Capture packets on network interfaces and print WebSocket messages as they complete.",
        epilog=LIVE_EPILOG,
    )
    live.add_argument(
        "-i",
        dest="interfaces",
        action="append",
        metavar="IFACE",
        help="interface to capture on; repeat for several; any for all (see `wsinspect interfaces`); default:"
        " the first that is up, not loopback, with an address (as tcpdump picks it)",
    )
    live.add_argument("-f", dest="filter", metavar="BPF", help="capture filter, tcpdump syntax: 'tcp port 8765'")
    live.add_argument("expression", nargs="*", help="the capture filter, as trailing words (like tcpdump)")
    live.add_argument("-w", dest="write", metavar="FILE", help="also write every captured packet to a pcap file")
    live.add_argument("--duration", type=_duration, metavar="SECONDS", help="stop after SECONDS")
    live.add_argument(
        "-p",
        "--no-promiscuous-mode",
        dest="no_promisc",
        action="store_true",
        help="do not put the interface into promiscuous mode (only traffic to and from this host)",
    )
    live.add_argument(
        "--tui",
        action="store_true",
        help="show the messages in the terminal UI (as `wsinspect tui`) instead of printing them",
    )
    live.add_argument(
        "--stats",
        action="store_true",
        help="at the end, print the statistics of `wsinspect stats` over everything captured",
    )
    add_output_options(live)
    add_tls_options(live)

    interfaces = add_command(
        sub,
        "interfaces",
        cmd_interfaces,
        help="list the interfaces live can capture on (also: wsinspect -D)",
        description="List the network interfaces with their state, link type and addresses.",
    )
    interfaces.add_argument("--json", action="store_true", help="one JSON object per interface")
