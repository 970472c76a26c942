"""Follow WebSocket Stream: one session as a conversation transcript.

Like Wireshark's Follow WebSocket Stream and the Messages tab of DevTools: a
header with the endpoints and the handshake, then every message with its time
(from the start of the session), an arrow (→ client to server, ← server to
client), its opcode and length, and its whole payload: text as text (JSON
pretty-printed), binary as a hex dump with offsets and ASCII, a close with its
code's name and reason. Everything from the wire goes through sanitize(): a
payload cannot move the cursor or hide text on the terminal it is shown on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from wsinspect.messages import Message
from wsinspect.session import SessionSummary
from wsinspect.text import human_bytes, preview, sanitize
from wsinspect.vocab import Direction, opcode_label

HEX_WIDTH = 16
# Payload lines start under the opcode of their message's line ("%10.6f → ").
INDENT = " " * 13


def hexdump(data: bytes) -> Iterator[str]:
    """Lines of 16 bytes: offset, hex in two groups of 8, the printable ASCII."""
    for offset in range(0, len(data), HEX_WIDTH):
        chunk = data[offset : offset + HEX_WIDTH]
        hex_part = chunk[:8].hex(" ") + ("  " + chunk[8:].hex(" ") if len(chunk) > 8 else "")
        ascii_part = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        yield f"{offset:08x}  {hex_part:<48}  |{ascii_part}|"


def _pretty_json(text: str) -> str | None:
    """The text re-indented, when it is a JSON object or array; else None."""
    if text.lstrip()[:1] not in ("{", "["):
        return None
    import orjson

    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode("utf-8")
    except orjson.JSONDecodeError:
        return None


def payload_lines(m: Message) -> Iterator[str]:
    """A message's whole payload, as lines to indent under its header line."""
    if m.opcode == 8 or not m.payload:
        return  # the close code and reason are on the header line
    text = m.text
    if text is None and m.opcode in (9, 10):
        # Ping and pong payloads are mostly short tokens.
        try:
            text = m.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None:
        shown = _pretty_json(text) or text
        for line in shown.split("\n"):
            yield sanitize(line)
        return
    yield from hexdump(m.payload)


def session_header(summary: SessionSummary) -> Iterator[str]:
    hs = summary.handshake
    started = datetime.fromtimestamp(summary.start, UTC).isoformat(timespec="microseconds")
    where = f"{hs.host or summary.server}{hs.path or ''}" if hs.request else "(no handshake in the capture)"
    yield sanitize(f"Session #{summary.session}  {summary.client} → {summary.server}  {where}")
    details = [f"started {started.replace('+00:00', ' UTC')}"]
    if hs.status is not None:
        details.append(f"HTTP {hs.status}")
    if hs.subprotocol:
        details.append(f"subprotocol {hs.subprotocol}")
    if hs.extensions:
        details.append("extensions " + ", ".join(str(e) for e in hs.extensions))
    if summary.mid_stream:
        details.append("joined mid-stream")
    yield sanitize("  ".join(details))


def session_footer(summary: SessionSummary) -> str:
    close = summary.close
    if close is None:
        said = "no close frame"
    else:
        code = "(no status)" if close.code is None else str(close.code)
        said = f"close {code} by {close.initiator}"
    return (
        f"{summary.messages[0]} → {summary.messages[1]} ← messages, {human_bytes(summary.bytes[0])} →"
        f" {human_bytes(summary.bytes[1])} ←; {said}; connection ended by {summary.ended_by}"
        f" after {summary.duration:.3f} s"
    )


def message_header(m: Message, start: float) -> str:
    arrow = Direction(m.dir).arrow if m.dir in ("c2s", "s2c") else "?"
    extra = ""
    if len(m.frames) > 1:
        extra += f" [{len(m.frames)} frames]"
    if m.compressed:
        extra += f" [deflate {m.wire_length}]"
    if not m.complete:
        extra += " [incomplete]"
    close = f"  {preview(m)}" if m.opcode == 8 else ""
    issues = "  !" + " !".join(m.issues) if m.issues else ""
    return f"{m.ts - start:10.6f} {arrow} {opcode_label(m.opcode)} {m.length}{extra}{close}{issues}"


def follow(summary: SessionSummary, messages: Iterable[Message]) -> Iterator[str]:
    """The transcript of one session, line by line (no newlines): its header, each
    message, and how it ended. ``messages``: the session's, in the order decoded."""
    yield from session_header(summary)
    yield ""
    for m in messages:
        yield message_header(m, summary.start)
        for line in payload_lines(m):
            yield INDENT + line
    yield ""
    yield session_footer(summary)
