"""What the TUI shows, as rich Text: message rows, session cells and the detail tabs.

Pure functions, no Textual: every wire string goes through sanitize() and into a Text
object (never into markup), so captured bytes can neither drive the terminal nor be
read as Rich markup. Styles come in a Palette built from the theme's component classes.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text

from wsinspect.frames import close_code_name
from wsinspect.health import Termination, describe_end, describe_heartbeat
from wsinspect.http import Handshake, HttpHead
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import SessionSummary, TlsUndecrypted
from wsinspect.text import human_bytes, preview, sanitize
from wsinspect.tui.store import F_COMPRESSED, F_ISSUES, F_S2C, F_TEXT, MessageStore
from wsinspect.vocab import Direction, opcode_label

Palette = Mapping[str, Style]
"""Styles by role: c2s, s2c, control, issue, muted, key, ok, bad, heading, match."""

HEX_WIDTH = 16
# A binary payload beyond this shows its start in the Payload tab (the Hex tab has it all).
HEX_IN_PAYLOAD = 64 << 10
# Pretty-printing a JSON payload larger than this would stall the detail pane.
JSON_LIMIT = 16 << 20

_EMPTY = Style()


def _style(palette: Palette, role: str) -> Style:
    return palette.get(role, _EMPTY)


def plural(n: int, noun: str) -> str:
    """1 message, 2 messages, 1,000 messages."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def seconds(x: float) -> str:
    """Nine characters of seconds, as precise as fits."""
    if x < 100:
        return f"{x:9.6f}"
    if x < 100_000:
        return f"{x:9.3f}"
    return f"{x:9.0f}"


def delta(x: float) -> str:
    if x < 10:
        return f"+{x:.6f}"
    if x < 10_000:
        return f"+{x:8.3f}"
    return f"+{x:8.0f}"


# Message rows: marker, time (since the capture's first packet, as `read` shows it), delta,
# direction, opcode, length, wire size, frames, preview. The header is laid out by the same widths.
ROW_FIXED = 1 + 9 + 1 + 9 + 1 + 1 + 1 + 6 + 1 + 8 + 1 + 7 + 1 + 3 + 1


def message_header(width: int) -> Text:
    head = f" {'time':>9} {'delta':>9} ↔ {'opcode':<6} {'length':>8} {'wire':>7} {'fr':>3} preview"
    return Text(head[:width], no_wrap=True)


def message_row(
    store: MessageStore,
    i: int,
    previous_ts: float | None,
    origin: float,
    width: int,
    palette: Palette,
    show_session: bool = False,
) -> Text:
    """One line of the messages view for message ``i``; its time counts from
    ``origin``, the capture's first packet (the clock of `read`'s default -t r)."""
    cols = store.cols
    flags = cols.flags[i]
    opcode = cols.opcode[i]
    ts = cols.ts[i]
    length = cols.length[i]
    nframes = cols.nframes[i]
    s2c = flags & F_S2C
    row = Text(no_wrap=True, end="")
    row.append("!" if flags & F_ISSUES else " ", _style(palette, "issue"))
    row.append(seconds(max(0.0, ts - origin)), _style(palette, "muted"))
    row.append(" ")
    row.append(delta(max(0.0, ts - previous_ts)) if previous_ts is not None else " " * 9, _style(palette, "muted"))
    row.append(" ")
    row.append("←" if s2c else "→", _style(palette, Direction.S2C if s2c else Direction.C2S))
    control = opcode >= 8
    body = Text(no_wrap=True, end="")
    body.append(f" {opcode_label(opcode):<6} {length:>8} ")
    wire = f"{cols.wire_length[i]:>7}" if flags & F_COMPRESSED else " " * 7
    body.append(wire, _style(palette, "muted"))
    body.append(f" {f'×{nframes}' if nframes > 1 else '':>3} ")
    room = max(8, width - ROW_FIXED)
    if show_session:
        body.append(f"#{cols.session[i]} ", _style(palette, "muted"))
        room -= len(str(cols.session[i])) + 2
    body.append(row_preview(store, i, room))
    if control:
        body.stylize(_style(palette, "control"))
    row.append_text(body)
    return row


def row_preview(store: MessageStore, i: int, width: int) -> str:
    """text.preview() of message ``i``, reading only the bytes it needs."""
    cols = store.cols
    opcode = cols.opcode[i]
    if opcode == 8:
        return preview(store.message(i), width)
    if opcode == 10:
        # A pong that answers a ping: its round trip (health.py), kept in the record.
        m = store.message(i)
        rtt = f" rtt {m.rtt * 1000:.1f} ms" if m.rtt is not None else ""
        return preview(m, max(1, width - len(rtt))) + rtt
    # 4 bytes per character at most, and one more to know that there is more.
    payload = store.prefix(i, 4 * width + 1)
    text = payload.decode("utf-8", "ignore") if cols.flags[i] & F_TEXT else None
    light = Message(
        session=cols.session[i],
        ts=cols.ts[i],
        dir=Direction.C2S,
        opcode=opcode,
        frames=[],
        masked=False,
        compressed=False,
        payload=payload,
        wire_length=0,
        text=text,
        close_code=None,
        close_reason=None,
        issues=[],
        packets=(0, 0),
    )
    return preview(light, width)


# -- sessions table ---------------------------------------------------------

SESSION_COLUMNS = (
    ("n", "#"),
    ("client", "client"),
    ("server", "server"),
    ("where", "host/path"),
    ("status", "HTTP"),
    ("msgs", "msgs →/←"),
    ("bytes", "bytes →/←"),
    ("close", "close"),
    ("end", "end"),
    ("issues", "issues"),
    ("start", "start"),
    ("duration", "duration"),
    ("proto", "subprotocol"),
    ("ext", "extensions"),
)


@dataclass
class SessionInfo:
    """A session as the UI knows it: opened, upgraded, counted while messages arrive,
    summarised at its end."""

    number: int
    client: str
    server: str
    start: float
    end: float
    messages: list[int]
    bytes: list[int]
    issues: int = 0  # in its messages so far
    summary: SessionSummary | None = None
    upgrade: Handshake | None = None  # from SessionUpgraded: as soon as the response arrives
    indices: array[int] = field(default_factory=lambda: array("I"))  # its message numbers

    @property
    def handshake(self) -> Handshake | None:
        """The handshake as far as it is known: None until its response arrives."""
        return self.summary.handshake if self.summary is not None else self.upgrade

    def sort_key(self, column: str) -> object:
        s = self.summary
        hs = self.handshake
        match column:
            case "client":
                return self.client
            case "server":
                return self.server
            case "where":
                return (hs.host or "", hs.path or "") if hs else ("", "")
            case "status":
                return (hs.status or 0) if hs else 0
            case "msgs":
                return sum(self.messages)
            case "bytes":
                return sum(self.bytes)
            case "close":
                return (s.close.code or 0) if s and s.close else -1
            case "end":
                return str(s.health.termination) if s and s.health else ""
            case "issues":
                return self.issue_count
            case "start":
                return self.start
            case "duration":
                return self.end - self.start
            case "proto":
                return (hs.subprotocol or "") if hs else ""
            case "ext":
                return ", ".join(str(e) for e in hs.extensions) if hs else ""
        return self.number

    @property
    def issue_count(self) -> int:
        if self.summary is not None:
            return self.summary.issue_count
        return self.issues + len(self.handshake.issues if self.handshake else ())

    @property
    def mid_stream(self) -> bool:
        """The capture joined the session after its handshake."""
        if self.summary is not None:
            return self.summary.mid_stream
        # A session's frames come after its handshake's response (and its
        # SessionUpgraded): messages without one mean there was none to see.
        return self.handshake is None and sum(self.messages) > 0


def session_cells(info: SessionInfo, origin: float, palette: Palette) -> dict[str, Text]:
    """The sessions table's cells for one session."""
    s = info.summary
    hs = info.handshake
    flagged = info.issue_count > 0
    cells: dict[str, Text] = {}
    cells["n"] = Text(f"{'!' if flagged else ' '}{info.number}", _style(palette, "issue") if flagged else _EMPTY)
    cells["client"] = Text(sanitize(info.client))
    cells["server"] = Text(sanitize(info.server))
    if hs is None or hs.request is None:
        where = "(no handshake)" if info.mid_stream or hs is not None else "(open)"
        cells["where"] = Text(where, _style(palette, "muted") if s is None else _EMPTY)
    else:
        cells["where"] = Text(sanitize(f"{hs.host or '?'}{hs.path or ''}"))
    if hs is None:
        cells["status"] = Text("")
        cells["proto"] = Text("")
        cells["ext"] = Text("")
    else:
        status = "-" if hs.status is None else str(hs.status)
        accept = {True: " ok", False: " BAD", None: ""}[hs.accept_valid]
        if s is not None and s.http_version == "2":
            # RFC 8441: no Sec-WebSocket-Accept to check; the stream tells the connection's sessions apart.
            accept = f" h2/{s.stream}"
        if s is not None and s.tls is not None:
            accept += " tls"  # wss://, decrypted: the Handshake tab has version, cipher and SNI
        cells["status"] = Text(status + accept, _style(palette, "bad") if hs.accept_valid is False else _EMPTY)
        cells["proto"] = Text(sanitize(hs.subprotocol or ""))
        cells["ext"] = Text(sanitize(", ".join(str(e) for e in hs.extensions)))
    cells["close"] = Text(close_text(s)) if s is not None else Text("still open", _style(palette, "muted"))
    health = s.health if s is not None else None
    if health is None:
        cells["end"] = Text("")
    else:
        clean = health.termination is Termination.CLEAN
        cells["end"] = Text(str(health.termination), _EMPTY if clean else _style(palette, "issue"))
    cells["msgs"] = Text(f"{info.messages[0]}/{info.messages[1]}")
    cells["bytes"] = Text(f"{human_bytes(info.bytes[0])}/{human_bytes(info.bytes[1])}")
    cells["issues"] = Text(str(info.issue_count) if flagged else "-", _style(palette, "issue") if flagged else _EMPTY)
    cells["start"] = Text(f"{info.start - origin:.3f}")
    cells["duration"] = Text(f"{info.end - info.start:.3f}")
    return cells


def close_text(s: SessionSummary) -> str:
    if s.close is None:
        return f"no close: {s.ended_by.upper() if s.ended_by in ('fin', 'rst') else s.ended_by}"
    code = "no status" if s.close.code is None else str(s.close.code)
    reason = f' "{sanitize(s.close.reason)}"' if s.close.reason else ""
    return f"{code}{reason} by {s.close.initiator}"


# -- detail tabs ------------------------------------------------------------


@dataclass
class Payload:
    """The Payload tab: a few heading lines, then the body as sanitised lines."""

    heading: list[Text]
    lines: list[str]
    json: bool = False  # highlight the lines as JSON


def json_lines(text: str) -> list[str] | None:
    """Pretty-printed JSON lines, or None when ``text`` is not JSON."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")) or len(text) > JSON_LIMIT:
        return None
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to print
        return None
    # JSON already escapes every control character below 0x20 and its backslashes
    # mean something: sanitize() escapes what JSON leaves raw (DEL, C1 controls,
    # bidi and invisible characters), and its doubling of backslashes is undone.
    return [sanitize(line).replace("\\\\", "\\") for line in pretty.split("\n")]


def text_lines(text: str) -> list[str]:
    return [sanitize(line) for line in text.split("\n")]


def hex_line(data: bytes, offset: int) -> str:
    """One line of a Wireshark-style hex dump: offset, 16 bytes in two groups, ASCII."""
    chunk = data[offset : offset + HEX_WIDTH]
    hexes = chunk.hex(" ")
    left, right = hexes[:23], hexes[24:]
    ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
    return f"{offset:08x}  {left:<23}  {right:<23}  {ascii_}"


def hex_lines(data: bytes) -> list[str]:
    return [hex_line(data, off) for off in range(0, len(data), HEX_WIDTH)]


def describe(m: Message, palette: Palette) -> Text:
    """One heading line: opcode, size, frames, masking, compression, completeness."""
    parts = [
        opcode_label(m.opcode),
        human_bytes(len(m.payload)),
        plural(len(m.frames), "frame"),
    ]
    parts.append("client → server" if m.dir is Direction.C2S else "server → client")
    if m.masked:
        parts.append("masked")
    if m.compressed:
        parts.append(f"deflate, {human_bytes(m.wire_length)} on the wire")
    line = Text(" · ".join(parts), _style(palette, "heading"))
    if not m.complete:
        line.append(" · incomplete", _style(palette, "bad"))
    if m.issues:
        line.append(f" · {plural(len(m.issues), 'issue')} (see Issues)", _style(palette, "issue"))
    return line


def payload_view(m: Message, palette: Palette) -> Payload:
    heading = [describe(m, palette)]
    data = m.payload
    if m.opcode == 8:
        if m.close_code is None:
            heading.append(Text("no status code" if not data else "status code cut short (1 byte)"))
            return Payload(heading, hex_lines(data))
        heading.append(Text(f"code {m.close_code} {close_code_name(m.close_code)}"))
        reason = m.close_reason or ""
        return Payload(heading, text_lines(reason) if reason else ["(no reason)"])
    if not data:
        return Payload(heading, ["(empty payload)"])
    text = m.text
    if text is None and m.opcode != 1:
        try:
            text = data.decode("utf-8")
            heading.append(Text("shown as UTF-8 text", _style(palette, "muted")))
        except UnicodeDecodeError:
            text = None
    if text is None:
        if m.opcode == 1:
            heading.append(Text("not valid UTF-8: shown as hex", _style(palette, "bad")))
        if len(data) > HEX_IN_PAYLOAD:
            shown = HEX_IN_PAYLOAD // 16
            note = f"the first {human_bytes(shown)} of {human_bytes(len(data))}: the Hex tab (2) shows every byte"
            heading.append(Text(note, _style(palette, "muted")))
            return Payload(heading, hex_lines(data[:shown]))
        return Payload(heading, hex_lines(data))
    if len(text.encode("utf-8")) < len(data):
        heading.append(Text("the end of the payload is cut inside a character", _style(palette, "bad")))
    pretty = json_lines(text)
    if pretty is not None:
        heading.append(Text("JSON, pretty-printed", _style(palette, "muted")))
        return Payload(heading, pretty, json=True)
    return Payload(heading, text_lines(text))


def frames_lines(m: Message, palette: Palette) -> list[Text]:
    head = f"{'#':>4}  fin  rsv  {'opcode':<12}  {'mask key':<8}  {'header':>6}  {'payload':>9}  packets"
    lines = [Text(head, _style(palette, "heading"))]
    for n, f in enumerate(m.frames, 1):
        rsv = "".join("1" if f.rsv & bit else "0" for bit in (4, 2, 1))
        key = f.masking_key.hex() if f.masking_key else "-"
        packets = _ranges(f.packets)
        line = Text(
            f"{n:>4}  {'1' if f.fin else '0':^3}  {rsv}  {opcode_label(f.opcode):<12}  {key:<8}  "
            f"{f.header_length:>6}  {f.length:>9}  {packets}"
        )
        if not f.complete:
            line.append("  incomplete", _style(palette, "bad"))
        lines.append(line)
        for issue in f.issues:
            lines.append(Text(f"        ! {issue}: {issue.description}", _style(palette, "issue")))
    first, last = m.packets
    lines.append(Text(""))
    lines.append(
        Text(f"message: packets {first}–{last}, {m.wire_length} payload bytes on the wire", _style(palette, "muted"))
    )
    return lines


def _ranges(packets: list[int]) -> str:
    """Packet numbers, runs shortened: 3,4,5,9 -> 3–5,9."""
    if not packets:
        return "-"
    out: list[str] = []
    start = prev = packets[0]
    for p in [*packets[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if p is not None:
            start = prev = p
    return ",".join(out)


def _head_lines(head: HttpHead) -> list[Text]:
    text = head.raw.decode("latin-1").removesuffix("\r\n\r\n").removesuffix("\n\n")
    return [Text(sanitize(line.removesuffix("\r"))) for line in text.split("\n")]


def handshake_lines(info: SessionInfo | None, palette: Palette) -> list[Text]:
    """The Handshake tab: as soon as the response arrives, before the session ends."""
    if info is None:
        return [Text("no session selected", _style(palette, "muted"))]
    s = info.summary
    hs = info.handshake
    lines = [
        Text(f"session #{info.number}  {sanitize(info.client)} → {sanitize(info.server)}", _style(palette, "heading"))
    ]
    if s is not None and s.http_version == "2":
        lines.append(Text(f"HTTP/2 stream {s.stream} (RFC 8441 extended CONNECT)"))
    if s is not None and s.tls is not None:
        lines.append(Text(tls_text(s)))
    if info.mid_stream:
        lines.append(Text("the capture starts after the handshake: there is none to show", _style(palette, "bad")))
        hs = hs or Handshake(None, None)
    elif hs is None:
        lines.append(Text("waiting for the response to the Upgrade request", _style(palette, "muted")))
        return lines
    for title, head in (("request", hs.request), ("response", hs.response)):
        lines.append(Text(""))
        lines.append(Text(title, _style(palette, "heading")))
        if head is None:
            lines.append(Text("(not in the capture)", _style(palette, "muted")))
        else:
            lines.extend(_head_lines(head))
    lines.append(Text(""))
    lines.append(Text("accept check (RFC 6455 4.2.2)", _style(palette, "heading")))
    if s is not None and s.http_version == "2":
        lines.append(Text("accept -  (HTTP/2 has no Sec-WebSocket-Accept, RFC 8441 5)", _style(palette, "muted")))
    elif hs.key is None:
        lines.append(Text("no Sec-WebSocket-Key to check against", _style(palette, "muted")))
    else:
        lines.append(Text(f"key       {sanitize(hs.key)}"))
        lines.append(Text(f"expected  {hs.accept_expected}"))
        got = Text(f"got       {sanitize(hs.accept) if hs.accept is not None else '(none)'}  ")
        if hs.accept_valid is True:
            got.append("✓ valid", _style(palette, "ok"))
        elif hs.accept_valid is False:
            got.append("✗ mismatch", _style(palette, "bad"))
        else:
            got.append("not checked (no 101 response)", _style(palette, "muted"))
        lines.append(got)
    lines.append(Text(""))
    ext = ", ".join(str(e) for e in hs.extensions) or "none"
    lines.append(Text(f"subprotocol {sanitize(hs.subprotocol or 'none')}; extensions {sanitize(ext)}"))
    if s is None:
        lines.append(Text("close: the session is still open", _style(palette, "muted")))
    else:
        ended = "stream" if s.ended_by in ("end_stream", "rst_stream") else "connection"
        lines.append(Text(f"close: {close_text(s)}; {ended} ended by {s.ended_by}"))
        if s.health is not None:
            lines.append(Text(describe_end(s.health)))
            lines.append(Text(describe_heartbeat(s.health.heartbeat)))
    return lines


def tls_text(s: SessionSummary) -> str:
    """A decrypted session's TLS, as `read` prints it: version, cipher, SNI (and ALPN)."""
    info = s.tls
    assert info is not None
    alpn = f"  ALPN {sanitize(info.alpn)}" if info.alpn else ""
    return f"{info.version} {info.cipher}  SNI {sanitize(info.sni) if info.sni else '-'}{alpn}  decrypted"


def undecrypted_lines(rows: list[TlsUndecrypted], palette: Palette) -> list[Text]:
    """The TLS connections that were not decrypted, with why and how to decrypt them."""
    if not rows:
        return []
    heading = f"{plural(len(rows), 'TLS connection')} not decrypted (give the key log with --tls-keylog FILE)"
    lines = [Text(""), Text(heading, _style(palette, "heading"))]
    for ev in rows:
        info = ev.info
        what = " ".join(x for x in (info.version, info.cipher) if x) or "TLS"
        line = Text(f"{sanitize(ev.client)} → {sanitize(ev.server)}  SNI {sanitize(info.sni) if info.sni else '-'}  ")
        line.append(f"{what}  ")
        line.append(info.reason or "not decrypted", _style(palette, "issue"))
        lines.append(line)
    return lines


def issues_lines(m: Message | None, info: SessionInfo | None, palette: Palette) -> list[Text]:
    lines: list[Text] = []
    if m is not None:
        lines.append(Text("this message", _style(palette, "heading")))
        if not m.issues:
            lines.append(Text("no issues", _style(palette, "muted")))
        for issue in m.issues:
            lines.append(_issue_line(issue, palette))
        for n, f in enumerate(m.frames, 1):
            for issue in f.issues:
                if issue not in m.issues:
                    lines.append(_issue_line(issue, palette, f"frame {n}: "))
        lines.append(Text(""))
    if info is not None:
        s = info.summary
        issues = session_issues(info)
        if s is not None:
            lines.append(Text(f"session #{s.session} ({s.issue_count} in all)", _style(palette, "heading")))
        else:
            heading = f"session #{info.number} ({info.issue_count} so far; still open)"
            lines.append(Text(heading, _style(palette, "heading")))
        if not issues:
            lines.append(Text("no session-level issues", _style(palette, "muted")))
        for issue in issues:
            lines.append(_issue_line(issue, palette))
    return lines


def session_issues(info: SessionInfo) -> tuple[Issue, ...]:
    """Session-level findings: the summary's, or the handshake's while the session is open."""
    if info.summary is not None:
        return info.summary.issues
    return info.handshake.issues if info.handshake is not None else ()


def _issue_line(issue: str, palette: Palette, prefix: str = "") -> Text:
    description = getattr(issue, "description", "")
    line = Text(f"! {prefix}", _style(palette, "issue"))
    line.append(str(issue), _style(palette, "issue") + Style(bold=True))
    line.append(f"  {description}")
    return line
