"""Human-readable output: one line per message, a session table, sanitize().

Lines are built with plain string formatting (no per-line rich rendering) so that a
million of them stay cheap. Everything taken from the wire passes through
sanitize() before it reaches a terminal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from wsinspect.frames import Frame, close_code_name
from wsinspect.health import describe_end, describe_heartbeat
from wsinspect.messages import Message
from wsinspect.session import SessionSummary, TlsUndecrypted
from wsinspect.vocab import Direction, opcode_label

_C2S = Direction.C2S  # looked up once: an enum member's lookup is slow (vocab)
PREVIEW_CHARS = 96
HEX_PREVIEW_BYTES = 24
# Room for "client → server" with two IPv4 endpoints: the columns after it line up
# (not on a terminal narrower than WIDE_TERMINAL, where the room goes to the preview).
ENDPOINTS_WIDTH = 45
WIDE_TERMINAL = 120
# The least a preview is cut to on a narrow terminal.
MIN_PREVIEW_CHARS = 8


def _escape_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        table[cp] = f"\\x{cp:02x}"
    table.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x1B: "\\e", ord("\\"): "\\\\"})
    # Characters that reorder or hide text (bidi controls, line and paragraph
    # separators, zero-width and other format characters) are shown as escapes too,
    # so a payload cannot disguise itself on screen.
    for cp in (0x2028, 0x2029, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[cp] = f"\\u{cp:04x}"
    return table


_ESCAPES = _escape_table()


def sanitize(text: str) -> str:
    """Make wire text safe for a terminal: control characters, escape sequences and
    invisible formatting characters are shown escaped, never interpreted."""
    if text.isprintable() and "\\" not in text:
        return text  # most text, at C speed: the table escapes nothing else printable
    text = text.translate(_ESCAPES)
    if text.isprintable():
        return text
    # Rare: other non-printable code points (unassigned, private use, surrogates).
    return "".join(
        ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
        for ch in text
    )


def preview(message: Message, width: int = PREVIEW_CHARS) -> str:
    """A one-line view of a payload: quoted text, close code and reason, or hex."""
    if message.opcode == 8:
        if message.close_code is None:
            return "(no status)"
        shown = f"{message.close_code} {close_code_name(message.close_code)}"
        if message.close_reason:
            shown += " " + _quoted(message.close_reason, max(4, width - len(shown) - 4))
        return shown
    if message.text is not None:
        return _quoted(message.text, width)
    payload = message.payload
    if not payload:
        return ""
    if message.opcode in (9, 10):
        # Ping and pong payloads are often short ASCII tokens: show them as such.
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if text.isprintable():
                return _quoted(text, width)
    count = min(HEX_PREVIEW_BYTES, max(2, width // 3))  # "xx " a byte
    return payload[:count].hex(" ") + (" …" if len(payload) > count else "")


def _unquoted(text: str) -> str:
    """sanitize(), with quotes escaped too: shown between quotes, a quote in the text
    must not read as the end of it."""
    return sanitize(text).replace('"', '\\"')


def _quoted(text: str, width: int) -> str:
    cut = len(text) > width
    head = text[:width]
    shown = _unquoted(head)
    if len(shown) > width:
        # Escapes made it longer: keep as many whole escapes as fit. Cutting the
        # escaped text could leave half of one (a lone backslash before the quote).
        parts = []
        room = width
        for ch in head:
            escaped = _unquoted(ch)
            room -= len(escaped)
            if room < 0:
                break
            parts.append(escaped)
        shown, cut = "".join(parts), True
    return f'"{shown}"' + ("…" if cut else "")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        # Compare as shown: 999,951 bytes would round to "1000.0 kB".
        if round(value, 1) < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


class Colors:
    """ANSI styles; all empty when colour is off."""

    def __init__(self, enabled: bool) -> None:
        on = enabled
        self.reset = "\x1b[0m" if on else ""
        self.dim = "\x1b[2m" if on else ""
        self.bold = "\x1b[1m" if on else ""
        self.c2s = "\x1b[36m" if on else ""
        self.s2c = "\x1b[33m" if on else ""
        self.issue = "\x1b[31m" if on else ""


@dataclass
class TimeFormat:
    """tshark's -t: r (relative to the first packet), a, ad, e, u, ud."""

    mode: str = "r"
    origin: float | None = None

    def __call__(self, ts: float) -> str:
        mode = self.mode
        if mode == "r":
            if self.origin is None:
                self.origin = ts
            return f"{ts - self.origin:12.6f}"
        if mode == "e":
            return f"{ts:.6f}"
        # Round once, to the microseconds shown (as -t e does), then split: a fraction
        # that rounds up to a whole second carries into the seconds, and the date.
        seconds, micros = divmod(int(f"{ts:.6f}".replace(".", "", 1)), 1_000_000)
        t = time.gmtime(seconds) if mode in ("u", "ud") else time.localtime(seconds)
        frac = f".{micros:06d}"
        if mode in ("ad", "ud"):
            return time.strftime("%Y-%m-%d %H:%M:%S", t) + frac
        return time.strftime("%H:%M:%S", t) + frac


class TextWriter:
    """Formats messages and the final session table."""

    def __init__(self, colors: Colors, timefmt: TimeFormat, width: int | None = None) -> None:
        self.c = colors
        self.timefmt = timefmt
        # A terminal's width: each message line is fitted to it (previews cut shorter).
        self.width = width
        self.pad = ENDPOINTS_WIDTH if width is None or width >= WIDE_TERMINAL else 0
        self._endpoints: dict[int, tuple[str, str]] = {}

    def opened(self, session: int, client: str, server: str) -> None:
        self._endpoints[session] = (sanitize(client), sanitize(server))

    def ended(self, session: int) -> None:
        """The session is over: forget its endpoints (memory follows open sessions)."""
        self._endpoints.pop(session, None)

    def message(self, m: Message) -> str:
        head, tail = self.message_parts(m)
        return f"{head}{m.session:<3}{tail}"

    def message_parts(self, m: Message) -> tuple[str, str]:
        """A message's line without its session number, which goes between the two
        parts left-aligned in three columns (read -j numbers sessions afterwards)."""
        c = self.c
        client, server = self._endpoints.get(m.session, ("?", "?"))
        if m.dir is _C2S:
            color, arrow = c.c2s, f"{client} → {server}".ljust(self.pad)
        else:
            color, arrow = c.s2c, f"{client} ← {server}".ljust(self.pad)
        op = opcode_label(m.opcode)
        extra = ""
        nframes = len(m.frames)
        if nframes > 1:
            extra += f" [{nframes} frames]"
        if m.compressed:
            extra += f" [deflate {m.wire_length}]"
        if not m.complete:
            extra += " [incomplete]"
        issues = f" {c.issue}!{' !'.join(m.issues)}{c.reset}" if m.issues else ""
        dim = c.dim if m.opcode >= 8 else ""
        # A pong that answers a ping: its round trip (health.py).
        rtt = f" rtt {m.rtt * 1000:.1f} ms" if m.rtt is not None else ""
        width = PREVIEW_CHARS
        if self.width is not None:
            # time, " #", the session (3), the endpoints, opcode, length, extras, two
            # spaces, and the quotes and ellipsis around a preview
            used = 12 + 2 + 3 + 1 + len(arrow) + 1 + 6 + 1 + 8 + len(extra) + 2 + 3 + len(rtt)
            width = max(MIN_PREVIEW_CHARS, min(PREVIEW_CHARS, self.width - used))
        return (
            f"{self.timefmt(m.ts)} #",
            f" {color}{arrow}{c.reset} {dim}{op:<6} {m.length:>8}{extra}"
            f"  {preview(m, width)}{rtt}{c.reset if dim else ''}{issues}\n",
        )

    def frame(self, m: Message, f: Frame) -> str:
        """One frame of message ``m`` (--frames), a line shown under the message's."""
        head, tail = self.frame_parts(m, f)
        return f"{head}{m.session:<3}{tail}"

    def frame_parts(self, m: Message, f: Frame) -> tuple[str, str]:
        """frame() around its session number, as message_parts()."""
        c = self.c
        op = opcode_label(f.opcode)
        key = f"mask {f.masking_key.hex()}" if f.masking_key is not None else "unmasked"
        packets = f.packets
        if len(packets) > 1:
            where = f"  packets {packets[0]}-{packets[-1]}"
        else:
            where = f"  packet {packets[0]}" if packets else ""
        issues = f" {c.issue}!{' !'.join(f.issues)}{c.reset}" if f.issues else ""
        return (
            f"{self.timefmt(f.ts)} #",
            f"   {c.dim}frame {op:<6} {f.length:>8}  fin {int(f.fin)}"
            f"  rsv {f.rsv:03b}  {key}  header {f.header_length}{where}{c.reset}{issues}\n",
        )

    def table(self, rows: list[str], after_lines: bool = True) -> str:
        """The session table printed after the messages, from session_row()s in order
        (``after_lines``: a blank line sets it apart from the message lines before it)."""
        blank = "\n" if after_lines else ""
        return f"{blank}{self.c.bold}{len(rows)} WebSocket session(s){self.c.reset}\n" + "".join(rows)

    def session_row(self, s: SessionSummary) -> str:
        """One session's lines in the table. Kept as text until the table is printed:
        a few hundred bytes instead of the whole summary, for captures of many sessions."""
        head, tail = self.session_row_parts(s)
        return f"{head}{s.session:<3}{tail}"

    def session_row_parts(self, s: SessionSummary) -> tuple[str, str]:
        """session_row() around its session number, as message_parts()."""
        c = self.c
        lines = []
        hs = s.handshake
        where = sanitize(f"{s.host or '?'}{s.path or ''}") if hs.request else "(no handshake in capture)"
        status = "-" if s.status is None else str(s.status)
        if hs.request is not None and hs.response is None:
            status += " (no response captured)"
        accept = {True: "accept ok", False: f"{c.issue}accept BAD{c.reset}", None: "accept -"}[hs.accept_valid]
        # Over HTTP/2 (RFC 8441) the stream tells the sessions of one connection apart.
        version = f"HTTP/2 stream {s.stream}  " if s.http_version == "2" else "HTTP "
        lines.append(f" {s.client} → {s.server}  {where}  {version}{status}  {accept}\n")
        details = []
        if hs.subprotocol:
            details.append(f"subprotocol {sanitize(hs.subprotocol)}")
        if hs.extensions:
            details.append("extensions " + sanitize(", ".join(str(e) for e in hs.extensions)))
        if details:
            lines.append("     " + "  ".join(details) + "\n")
        if s.tls is not None:
            lines.append(self.tls_line(s))
        ratio = ""
        if any(s.compressed_bytes):
            # Only where compression was negotiated (or assumed, mid-stream), from the
            # complete compressed messages alone: cut or uncompressed ones say nothing.
            parts = []
            for label, wire, plain in zip("→←", s.compressed_wire, s.compressed_bytes, strict=True):
                if plain:
                    parts.append(f"{label} {wire / plain:.0%}")
            ratio = "  compressed to " + " ".join(parts)
        lines.append(
            f"     messages {s.messages[0]} → {s.messages[1]} ←  bytes {human_bytes(s.bytes[0])} →"
            f" {human_bytes(s.bytes[1])} ←{ratio}  duration {s.duration:.3f} s\n"
        )
        if s.close is not None:
            code = "(no status)" if s.close.code is None else f"{s.close.code} {close_code_name(s.close.code)}"
            reason = f' "{sanitize(s.close.reason)}"' if s.close.reason else ""
            close = f"close {code}{reason} by {s.close.initiator}"
        else:
            close = "no close frame"
        issues = f"{c.issue}{s.issue_count} issue(s){c.reset}" if s.issue_count else "no issues"
        kinds = s.issue_kinds or tuple((issue, 1) for issue in s.issues)
        flagged = ": " + ", ".join(f"{issue} ×{n}" if n > 1 else issue for issue, n in kinds) if kinds else ""
        if s.ended_by == "stopped":
            ended = "reading stopped before the connection ended"
        elif s.ended_by in ("end_stream", "rst_stream"):
            ended = f"stream ended by {s.ended_by}"  # HTTP/2: the connection may go on
        else:
            ended = f"connection ended by {s.ended_by}"
        lines.append(f"     {close}; {ended}; {issues}{flagged}\n")
        if s.health is not None:
            # How it ended and its heartbeat, in words (health.py).
            lines.append(f"     {describe_end(s.health)}\n     {describe_heartbeat(s.health.heartbeat)}\n")
        return "#", "".join(lines)

    # -- TLS (wss://) ----------------------------------------------------------

    def tls_line(self, s: SessionSummary) -> str:
        """A decrypted session's TLS: version, cipher, SNI (and ALPN when offered)."""
        info = s.tls
        assert info is not None
        alpn = f"  ALPN {sanitize(info.alpn)}" if info.alpn else ""
        return f"     {info.version} {info.cipher}  SNI {sanitize(info.sni) if info.sni else '-'}{alpn}  decrypted\n"

    def tls_row(self, ev: TlsUndecrypted) -> str:
        """A TLS connection that was not decrypted, with why."""
        info = ev.info
        what = " ".join(x for x in (info.version, info.cipher) if x) or "TLS"
        sni = sanitize(info.sni) if info.sni else "-"
        reason = f"{self.c.issue}{info.reason}{self.c.reset}"
        return f" {sanitize(ev.client)} → {sanitize(ev.server)}  SNI {sni}  {what}  {reason}\n"

    def tls_table(self, rows: list[str]) -> str:
        """The TLS connections not decrypted, after the session table; the hint says how to decrypt them."""
        return (
            f"\n{self.c.bold}{len(rows)} TLS connection(s) not decrypted{self.c.reset}"
            " (give the key log with --tls-keylog FILE)\n" + "".join(rows)
        )
