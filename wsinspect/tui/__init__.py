"""`wsinspect tui FILE`: browse a capture's WebSocket sessions and messages in the terminal.

Textual is imported only when the TUI runs, so that `wsinspect read` starts fast. The
app takes any packet source (a capture file here; `wsinspect live --tui` passes a live
capture, tui/live.py), see ``WsinspectApp``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

TUI_EPILOG = """\
keys:
  ↑ ↓ j k move, Tab next pane, Enter drill in, / search texts (n / N), f filter,
  e export to JSON Lines, c copy the payload, S statistics, ? every key, q quit.
"""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wsinspect.options import (
        add_command,
        add_display_filter,
        add_file_arguments,
        add_filter_options,
        add_size_option,
        add_tls_options,
    )

    p = add_command(
        sub,
        "tui",
        run,
        help="browse the sessions and messages of a capture in the terminal",
        description="Browse the WebSocket sessions and messages of a capture file in an interactive terminal UI.",
        epilog=TUI_EPILOG,
    )
    add_file_arguments(p, stdin=False)
    add_filter_options(
        p, "filters (the f key changes them)", "only messages whose text (or close reason) matches REGEX"
    )
    add_display_filter(p)
    add_size_option(p)
    add_tls_options(p)
    live = sub.choices.get("live")
    if live is not None:
        # `live --tui` runs the TUI over the capture (wsinspect.tui.live), loaded only then.
        live.set_defaults(run_tui=_run_live)


def _run_live(*args: Any) -> int:
    from wsinspect.tui.live import run_live

    return run_live(*args)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from wsinspect.options import capture_path, open_keylog
    from wsinspect.session import Options
    from wsinspect.tui.app import WsinspectApp, run_tui
    from wsinspect.tui.store import FileSource, message_filter

    path = capture_path(args, parser)
    if path == "-":
        parser.error("tui: the terminal is needed for the keys, so the capture cannot come from stdin; give a file")
    keylog, keylog_warning = open_keylog(args, parser)
    if keylog_warning:
        print(f"wsinspect: {keylog_warning}", file=sys.stderr)
    source = FileSource(path)  # a missing or non-capture file fails here, before the screen changes
    return run_tui(
        WsinspectApp(
            source,
            title=source.name,
            options=Options(max_message_size=args.max_message_size, keylog=keylog),
            sessions=set(args.session) if args.session else None,
            message_filter=message_filter(args),
        )
    )
