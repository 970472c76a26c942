"""The HTTP/1.1 side of WebSocket: request/response heads, the Upgrade handshake.

Parsing is pure: heads are parsed from bytes that the session layer buffers, and a
head that does not parse is reported, never raised.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from wsinspect.issues import Issue

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A head longer than this is not an HTTP head we want to buffer.
# Heads longer than this are more than servers accept (a finding); heads are read up
# to HEAD_LIMIT all the same, since a server that answered one shows it was taken.
MAX_HEAD = 64 * 1024
HEAD_LIMIT = 4 << 20
# What is left of a body to skip (skip_body), besides a count of bytes: chunked
# coding (RFC 9112 7.1), or everything until the connection closes (RFC 9112 6.3).
BODY_CHUNKED = -1
BODY_UNTIL_CLOSE = -2
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ")

_token_re = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2 step 5.4)."""
    import hashlib  # here, not at the top: it is slow to import and needed once per session

    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + WS_GUID).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class HttpHead:
    """A request or response head as sent: the start line and the header fields."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes
    malformed: bool = False  # a field line was read leniently or skipped (RFC 9112 5.1)

    def get(self, name: str) -> str | None:
        """The field's value; repeated fields joined with ", " (RFC 9110 5.3)."""
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        """A comma-separated list field, lower-cased and trimmed."""
        value = self.get(name)
        return [t.strip().lower() for t in value.split(",") if t.strip()] if value else []

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("HTTP/")

    @property
    def http2(self) -> bool:
        """Built from HTTP/2 HEADERS (h2_head): the start line stands for the pseudo-header fields."""
        return self.start_line.startswith("HTTP/2 ") or self.start_line.endswith(" HTTP/2")

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        parts = self.start_line.split(" ")
        return parts[1] if len(parts) >= 3 else ""

    @property
    def status(self) -> int | None:
        parts = self.start_line.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit() and len(parts[1]) == 3:
            return int(parts[1])
        return None

    def body_length(self, request_method: str | None = None) -> int | None:
        """Bytes of body after this head: a count, BODY_CHUNKED, None until close.

        RFC 9112 6.3: responses to HEAD, 1xx, 204 and 304 have none, nor a 2xx to
        CONNECT (a tunnel follows); requests without Content-Length or chunked
        coding have none.
        """
        if self.is_response:
            status = self.status or 0
            if request_method == "HEAD" or status < 200 or status in (204, 304):
                return 0
            if request_method == "CONNECT" and status < 300:
                return 0
        if "chunked" in self.tokens("transfer-encoding"):
            return BODY_CHUNKED
        length = self.get("content-length")
        if length is not None:
            first = length.split(",")[0].strip()
            return int(first) if first.isdigit() else None
        return None if self.is_response else 0


def skip_body(buf: bytearray, skip: int) -> tuple[int, bool]:
    """Drop from ``buf`` the body bytes that ``skip`` says are left (a count,
    BODY_CHUNKED or BODY_UNTIL_CLOSE). Returns what is left to skip after ``buf``,
    and whether the body is over (False: more bytes are needed first)."""
    if skip > 0:
        n = min(skip, len(buf))
        del buf[:n]
        return skip - n, skip == n
    if skip == BODY_CHUNKED:  # chunked (RFC 9112 7.1): size line, data, CRLF; 0 ends
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return skip, False
            size_text = bytes(buf[:eol]).split(b";")[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                # Not a chunk size (int() would take "-10" or "0x10"): stop skipping.
                return 0, True
            size = int(size_text, 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    return skip, False
                del buf[: end + 4]
                return 0, True
            if len(buf) < eol + 2 + size + 2:
                return skip, False
            del buf[: eol + 2 + size + 2]
    if skip == BODY_UNTIL_CLOSE:
        buf.clear()
        return skip, False
    return skip, True


def looks_like_http(data: bytes) -> bool:
    """Whether a stream starts like an HTTP request or response."""
    return data.startswith(METHODS) or data.startswith(b"HTTP/1.")


def parse_head(buf: bytes | bytearray) -> tuple[HttpHead | None, int, bool]:
    """Parse one head from the start of ``buf``.

    Returns (head, bytes consumed, ok). (None, 0, True) means more bytes are needed;
    ok is False when the bytes are not an HTTP head at all.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        # Tolerate bare LF line endings, as browsers and servers do (RFC 9112 2.2).
        end_lf = buf.find(b"\n\n")
        if end_lf < 0:
            return None, 0, len(buf) <= HEAD_LIMIT and plausible_http_prefix(buf)
        end, sep = end_lf, 2
    else:
        lf = buf.find(b"\n\n", 0, end)
        end, sep = (lf, 2) if lf >= 0 else (end, 4)
    raw = bytes(buf[: end + sep])
    # Peers send UTF-8 in hosts and paths today; bytes that are not are read as
    # Latin-1 (RFC 9110 5.5's historical charset), so nothing is ever lost.
    try:
        text = raw[:end].decode("utf-8")
    except UnicodeDecodeError:
        text = raw[:end].decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not (start.startswith("HTTP/1.") or (" " in start and start.endswith(("HTTP/1.1", "HTTP/1.0")))):
        return None, 0, False
    headers: list[tuple[str, str]] = []
    malformed = False
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            # obsolete line folding (RFC 9112 5.2): append to the previous field
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep_, value = line.partition(":")
        if not sep_ or not _token_re.fullmatch(name):
            # Read on as browsers and Wireshark do: whitespace before the colon is
            # dropped (RFC 9112 5.1 has proxies do that), any other bad line skipped.
            malformed = True
            name = name.rstrip(" \t")
            if not sep_ or not _token_re.fullmatch(name):
                continue
        headers.append((name, value.strip()))
    return HttpHead(start, tuple(headers), raw, malformed), end + sep, True


def plausible_http_prefix(buf: bytes | bytearray) -> bool:
    """Whether these first bytes could still become an HTTP request or response."""
    head = bytes(buf[:8])
    return any(m.startswith(head) or head.startswith(m) for m in (*METHODS, b"HTTP/1."))


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension of a Sec-WebSocket-Extensions list with its parameters."""

    name: str
    params: tuple[tuple[str, str | None], ...]

    def __str__(self) -> str:
        parts = [self.name] + [k if v is None else f"{k}={v}" for k, v in self.params]
        return "; ".join(parts)


def parse_extensions(value: str | None) -> list[Extension]:
    """Parse a Sec-WebSocket-Extensions value (RFC 6455 9.1), quoted values unquoted."""
    if not value:
        return []
    result = []
    for item in _split_outside_quotes(value, ","):
        parts = _split_outside_quotes(item, ";")
        name = parts[0].strip()
        if not name:
            continue
        params = []
        for p in parts[1:]:
            key, eq, val = p.partition("=")
            key = key.strip()
            if not key:
                continue
            v = val.strip() if eq else None
            if v is not None and len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params.append((key.lower(), v))
        result.append(Extension(name.lower(), tuple(params)))
    return result


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s for s in (x.strip() for x in out) if s]


@dataclass(frozen=True, slots=True)
class Handshake:
    """An Upgrade request and its response (None when the capture lacks it); over HTTP/2, the extended CONNECT's
    HEADERS and the response's (RFC 8441 4, 5), as heads built by h2_head."""

    request: HttpHead | None
    response: HttpHead | None
    issues: tuple[Issue, ...] = field(default=())

    @property
    def host(self) -> str | None:
        if not self.request:
            return None
        # RFC 9113 8.3.1: HTTP/2 clients name the host in :authority rather than Host.
        return self.request.get(":authority") if self.request.http2 else self.request.get("host")

    @property
    def path(self) -> str | None:
        return self.request.target if self.request else None

    @property
    def origin(self) -> str | None:
        return self.request.get("origin") if self.request else None

    @property
    def version(self) -> str | None:
        return self.request.get("sec-websocket-version") if self.request else None

    @property
    def key(self) -> str | None:
        return self.request.get("sec-websocket-key") if self.request else None

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def accepted(self) -> bool:
        if self.response is not None and self.response.http2:
            return 200 <= (self.status or 0) < 300  # RFC 8441 5: any 2xx opens the tunnel
        return self.status == 101

    @property
    def accept(self) -> str | None:
        return self.response.get("sec-websocket-accept") if self.response else None

    @property
    def accept_expected(self) -> str | None:
        return accept_key(self.key) if self.key else None

    @property
    def accept_valid(self) -> bool | None:
        """None when it cannot be checked (no 101, or request or response missing, or HTTP/2: RFC 8441 has no
        accept key)."""
        if not self.accepted or self.key is None or self.response is None or self.response.http2:
            return None
        return self.accept is not None and self.accept.strip() == self.accept_expected

    @property
    def offered_protocols(self) -> list[str]:
        if not self.request:
            return []
        value = self.request.get("sec-websocket-protocol")
        return [p.strip() for p in value.split(",") if p.strip()] if value else []

    @property
    def subprotocol(self) -> str | None:
        return self.response.get("sec-websocket-protocol") if self.response and self.accepted else None

    @property
    def offered_extensions(self) -> list[Extension]:
        return parse_extensions(self.request.get("sec-websocket-extensions")) if self.request else []

    @property
    def extensions(self) -> list[Extension]:
        """The extensions the server accepted (the response, not the offer)."""
        if not self.response or not self.accepted:
            return []
        return parse_extensions(self.response.get("sec-websocket-extensions"))


def h2_head(headers: tuple[tuple[str, str], ...]) -> HttpHead:
    """An HttpHead from one side's HTTP/2 HEADERS, so that a WebSocket over HTTP/2 has a Handshake like any other.

    The pseudo-header fields (RFC 9113 8.3) give a start line in HTTP/1.1 shape ("CONNECT /chat HTTP/2",
    "HTTP/2 200"); ``headers`` keeps every field as decoded, pseudo-headers first as sent, and ``raw`` is that list
    as "name: value" lines (the wire bytes are HPACK-compressed and mean nothing without the decoder's state).
    """
    pseudo = dict(h for h in headers if h[0].startswith(":"))
    if ":status" in pseudo:
        start_line = f"HTTP/2 {pseudo[':status']}"
    else:
        start_line = f"{pseudo.get(':method', '')} {pseudo.get(':path', '')} HTTP/2"
    raw = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    return HttpHead(start_line, headers, raw.encode("utf-8"))


def is_upgrade_request(head: HttpHead) -> bool:
    return not head.is_response and "websocket" in head.tokens("upgrade")


def check_handshake(request: HttpHead | None, response: HttpHead | None) -> Handshake:
    """Build a Handshake and record what it violates (RFC 6455 4.1, 4.2)."""
    hs = Handshake(request, response)
    issues: list[Issue] = []
    if (request is not None and request.malformed) or (response is not None and response.malformed):
        issues.append(Issue.HTTP_MALFORMED)
    if any(head is not None and len(head.raw) > MAX_HEAD for head in (request, response)):
        issues.append(Issue.HTTP_HEAD_TOO_LONG)
    if request is not None:
        if (
            request.method != "GET"
            or not request.start_line.endswith("HTTP/1.1")
            or request.get("host") is None
            or "upgrade" not in request.tokens("connection")
        ):
            issues.append(Issue.REQUEST_NOT_UPGRADE)
        key = hs.key
        try:
            if key is None or len(base64.b64decode(key.strip(), validate=True)) != 16:
                issues.append(Issue.KEY_INVALID)
        except (binascii.Error, ValueError):
            issues.append(Issue.KEY_INVALID)
        if (hs.version or "").strip() != "13":
            issues.append(Issue.VERSION_INVALID)
    if response is not None and hs.accepted:
        if "websocket" not in response.tokens("upgrade") or "upgrade" not in response.tokens("connection"):
            issues.append(Issue.RESPONSE_NOT_UPGRADE)
        if hs.accept is None:
            issues.append(Issue.ACCEPT_MISSING)
        elif hs.accept_valid is False:
            issues.append(Issue.ACCEPT_MISMATCH)
        if request is not None:
            if hs.subprotocol is not None and hs.subprotocol not in hs.offered_protocols:
                issues.append(Issue.SUBPROTOCOL_NOT_OFFERED)
            offered = {e.name for e in hs.offered_extensions}
            if any(e.name not in offered for e in hs.extensions):
                issues.append(Issue.EXTENSION_NOT_OFFERED)
    return Handshake(request, response, tuple(issues))
