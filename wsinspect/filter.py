"""Display filters: a tshark-like expression compiled once into a fast predicate.

    opcode == text and json.type == "chat" and session.host contains "example"
    close_code in {1000..1003 4000..4999} || issues
    session.server.port == 8080 && !(dir == c2s)

Field names are the names of the JSON Lines records: message fields plainly
(``length``, ``text``), session fields with ``session.`` (``session.host``; nested
objects of the session record with dots, ``session.close.code``), ``json.a.b[0]``
into a text message that holds JSON, and ``session.client.ip``/``.port`` for the
endpoints.

Semantics (those of tshark's display filters where they apply):

- A field can be missing: ``text`` of a binary message, ``close_code`` of a message
  that is not a Close, ``json.x`` where there is no such key, an empty ``issues``.
  Every comparison on a missing field is false, ``!=`` included; ``not`` inverts
  the result. A bare field tests presence (``issues``: the message has findings;
  ``json.id``: the key exists), and a bare boolean field tests that it is true
  (``compressed``, ``session.accept_valid``).
- A field with several values (``issues``, ``session.extensions``) matches when any
  value does; ``!=`` when none is equal.
- ``matches`` is a Python regular expression searched in the value, case-sensitive
  as ``--grep`` is (``(?i)`` makes it insensitive); ``contains`` a substring.
- A bare word on the right is, in this order: a name the left field knows
  (``opcode == ping``, ``dir == c2s``, ``true``, ``null``), a field
  (``length != wire_length``), else a string (``session.ended_by == fin``).

Session fields are of two kinds. Those of the handshake (client, server, host,
path, status, ...) are known once the session's 101 is seen; the rest (ended_by,
messages, duration, close.*, ...: END_FIELDS) only when the session ends. A
message filter that uses an END field is evaluated when its session ends: a
``Selection`` holds such a session's messages until then (a file reader can
instead do a first pass for the session records, as tshark -2 does, and keep the
capture's order). A session record is selected when the filter holds for it with
every message field missing, or when any of its messages was selected.

The compiled form is one generated Python function per filter (source built from
a fixed table of field accessors; literals are bound as names, never pasted in),
so that a three-term filter costs a few hundred nanoseconds per message. The
parser is hand-written (precedence climbing over a small token set) rather than
lark: importing lark alone takes 84 ms, more than `read` needs to start, and the
grammar is a dozen rules.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from wsinspect.errors import WsinspectError
from wsinspect.http import Handshake
from wsinspect.messages import Message
from wsinspect.session import Event, SessionOpened, SessionSummary, SessionUpgraded
from wsinspect.vocab import OPCODE_BY_NAME, Direction

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FilterError(WsinspectError):
    """A display filter that does not compile: the message, then the expression
    with a caret under the place of the error (as tshark shows it)."""

    exit_status = 2

    def __init__(self, message: str, expression: str, position: int, length: int = 1, what: str = "filter") -> None:
        self.message = message
        self.expression = expression
        self.position = position
        self.length = max(1, length)
        line = expression.replace("\n", " ").replace("\t", " ")
        caret = " " * position + "^" + "~" * (self.length - 1)
        super().__init__(f"bad {what}: {message}\n    {line}\n    {caret}")


class Kind(Enum):
    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    STR = "string"
    BYTES = "bytes"
    STRS = "list of strings"
    OPCODE = "opcode"
    DIR = "direction"
    ADDR = "address"
    IP = "IP address"
    JSON = "JSON value"


_NUMERIC = (Kind.INT, Kind.FLOAT)
_TEXTUAL = (Kind.STR, Kind.BYTES, Kind.STRS, Kind.DIR, Kind.ADDR, Kind.JSON)


@dataclass(frozen=True, slots=True)
class Field:
    """A filterable field: its kind and how the generated code reads it."""

    name: str
    kind: Kind
    code: str  # a Python expression over m (the Message) or s (the session's values)
    optional: bool  # the value may be missing (None, or an empty list)
    key: str = ""  # a session field: its key in the session's values (read from s)
    end: bool = False  # known only when the session ends


def _message_fields() -> dict[str, Field]:
    rows = [
        ("session", Kind.INT, "m.session", False),
        ("dir", Kind.DIR, "m.dir", False),
        ("opcode", Kind.OPCODE, "m.opcode", False),
        ("length", Kind.INT, "len(m.payload)", False),
        ("wire_length", Kind.INT, "m.wire_length", False),
        ("frames", Kind.INT, "len(m.frames)", False),
        ("masked", Kind.BOOL, "m.masked", False),
        ("compressed", Kind.BOOL, "m.compressed", False),
        ("complete", Kind.BOOL, "m.complete", False),
        ("text", Kind.STR, "m.text", True),
        ("data", Kind.BYTES, "m.payload", False),
        ("close_code", Kind.INT, "m.close_code", True),
        ("close_reason", Kind.STR, "m.close_reason", True),
        ("issues", Kind.STRS, "m.issues", True),
        ("ts", Kind.FLOAT, "m.ts", False),
        # A pong that answers a ping gets its round trip from the health analysis
        # (issue 16); until a Message carries one, rtt is missing.
        ("rtt", Kind.FLOAT, "getattr(m, 'rtt', None)", True),
    ]
    return {name: Field(name, kind, code, optional) for name, kind, code, optional in rows}


# Session fields: keys of the session's values (session_values()), which are the
# JSON session record's keys with nested objects flattened by dots. "end": known
# only when the session ends. tls.*, http_version and stream (issues 15, 17) are
# end fields until the events that open a session carry them.
_SESSION_ROWS: list[tuple[str, Kind, bool]] = [
    ("client", Kind.ADDR, False),
    ("client.ip", Kind.IP, False),
    ("client.port", Kind.INT, False),
    ("server", Kind.ADDR, False),
    ("server.ip", Kind.IP, False),
    ("server.port", Kind.INT, False),
    ("host", Kind.STR, False),
    ("path", Kind.STR, False),
    ("origin", Kind.STR, False),
    ("version", Kind.STR, False),
    ("subprotocol", Kind.STR, False),
    ("offered_subprotocols", Kind.STRS, False),
    ("extensions", Kind.STRS, False),
    ("offered_extensions", Kind.STRS, False),
    ("status", Kind.INT, False),
    ("accept_valid", Kind.BOOL, False),
    ("start", Kind.FLOAT, False),
    ("messages", Kind.INT, True),
    ("messages_c2s", Kind.INT, True),
    ("messages_s2c", Kind.INT, True),
    ("bytes_c2s", Kind.INT, True),
    ("bytes_s2c", Kind.INT, True),
    ("wire_bytes_c2s", Kind.INT, True),
    ("wire_bytes_s2c", Kind.INT, True),
    ("end", Kind.FLOAT, True),
    ("duration", Kind.FLOAT, True),
    ("close.code", Kind.INT, True),
    ("close.reason", Kind.STR, True),
    ("close.initiator", Kind.STR, True),
    ("ended_by", Kind.STR, True),
    ("mid_stream", Kind.BOOL, True),
    ("issues", Kind.STRS, True),
    ("issue_count", Kind.INT, True),
    ("termination", Kind.STR, True),
    ("tls.version", Kind.STR, True),
    ("tls.cipher", Kind.STR, True),
    ("tls.sni", Kind.STR, True),
    ("tls.alpn", Kind.STR, True),
    ("tls.decrypted", Kind.BOOL, True),
    ("http_version", Kind.STR, True),
    ("stream", Kind.INT, True),
    ("heartbeat.pings_c2s", Kind.INT, True),
    ("heartbeat.pings_s2c", Kind.INT, True),
    ("heartbeat.pongs_c2s", Kind.INT, True),
    ("heartbeat.pongs_s2c", Kind.INT, True),
    ("heartbeat.unanswered", Kind.INT, True),
    ("heartbeat.unsolicited_pongs", Kind.INT, True),
    ("heartbeat.max_idle", Kind.FLOAT, True),
    ("heartbeat.rtt.count", Kind.INT, True),
    ("heartbeat.rtt.min", Kind.FLOAT, True),
    ("heartbeat.rtt.median", Kind.FLOAT, True),
    ("heartbeat.rtt.p95", Kind.FLOAT, True),
    ("heartbeat.rtt.max", Kind.FLOAT, True),
]


def _session_fields() -> dict[str, Field]:
    return {
        f"session.{key}": Field(f"session.{key}", kind, f"s.get({key!r})", True, key=key, end=end)
        for key, kind, end in _SESSION_ROWS
    }


FIELDS: dict[str, Field] = _message_fields() | _session_fields()
END_FIELDS = frozenset(name.removeprefix("session.") for name, f in FIELDS.items() if f.end)
# How `session` (the number) reads where there is no message: a session record.
_SESSION_NUMBER = Field("session", Kind.INT, "s.get('session')", True, key="session")


def field_names() -> list[str]:
    """Every field name (json.PATH stands for any path into a JSON text message)."""
    return [*FIELDS, "json.PATH"]


# -- values of a session ------------------------------------------------------


def session_values(summary: SessionSummary) -> dict[str, Any]:
    """What session.* fields read: the session's JSON record, nested objects
    flattened by dots, endpoints also split into ip and port."""
    from wsinspect.jsonl import session_record

    values: dict[str, Any] = {}
    _flatten(session_record(summary), "", values)
    for side in ("client", "server"):
        ip, port = _endpoint(summary.client if side == "client" else summary.server)
        values[f"{side}.ip"] = ip
        values[f"{side}.port"] = port
    return values


def opened_values(opened: SessionOpened, handshake: Handshake | None) -> dict[str, Any]:
    """The values known while a session is open: its endpoints and handshake, and
    none of the END_FIELDS (they read as missing)."""
    provisional = SessionSummary(
        session=opened.session,
        client=opened.client,
        server=opened.server,
        handshake=handshake or Handshake(None, None),
        start=opened.ts,
        end=opened.ts,
        messages=(0, 0),
        bytes=(0, 0),
        wire_bytes=(0, 0),
        close=None,
        ended_by="",
        mid_stream=False,
        issues=(),
        issue_count=0,
    )
    values = session_values(provisional)
    for key in END_FIELDS:
        values.pop(key, None)
    values.pop("close", None)
    return values


def _flatten(record: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in record.items():
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + ".", out)
        else:
            out[name] = value


def _endpoint(text: str) -> tuple[IP | None, int | None]:
    """ "1.2.3.4:80" or "[::1]:80" -> (address, port); IPv4-mapped IPv6 as IPv4."""
    host, _, port = text.rpartition(":")
    try:
        return _plain(ipaddress.ip_address(host.strip("[]"))), int(port)
    except ValueError:
        return None, None


def _plain(ip: IP) -> IP:
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


# -- tokens ---------------------------------------------------------------------


class Token(NamedTuple):
    kind: str  # "op", "word", "string", "(", ")", "{", "}", ",", "end"
    text: str
    pos: int
    raw: bool = False  # a raw string r"...": no escapes
    width: int = 0  # characters in the expression (a string's quotes included)


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>r?"(?:[^"\\]|\\.)*"?|r?'(?:[^'\\]|\\.)*'?)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!~])
  | (?P<punct>[(){},])
  | (?P<word>[A-Za-z0-9_.:/\[\]\-+*]+)
    """,
    re.VERBOSE,
)
_WORD_OPS = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "contains": "contains",
    "matches": "matches",
    "in": "in",
}


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise FilterError(f"unexpected character {expression[pos]!r}", expression, pos)
        kind = match.lastgroup
        text = match[0]
        if kind == "string":
            raw = text.startswith("r")
            quote = text[1 if raw else 0]
            body = text[2 if raw else 1 :]
            if len(body) == 0 or body[-1] != quote or (body.endswith("\\" + quote) and not _closed(body)):
                raise FilterError("string not closed", expression, pos, len(text))
            tokens.append(Token("string", body[:-1], pos, raw, len(text)))
        elif kind == "op":
            tokens.append(Token("op", "matches" if text == "~" else text, pos, width=len(text)))
        elif kind == "punct":
            tokens.append(Token(text, text, pos, width=1))
        elif kind == "word":
            op = _WORD_OPS.get(text.lower())
            tokens.append(Token("op" if op else "word", op or text, pos, width=len(text)))
        pos = match.end()
    tokens.append(Token("end", "", len(expression)))
    return tokens


def _closed(body: str) -> bool:
    """Whether a string body (with its closing quote) ends with an unescaped quote."""
    backslashes = len(body) - 1 - len(body[:-1].rstrip("\\"))
    return backslashes % 2 == 0


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(token: Token, expression: str, as_bytes: bool) -> str | bytes:
    """A string literal's value; with ``as_bytes``, \\xNN is that byte and the rest UTF-8."""
    text = token.text
    if token.raw:
        return text.encode() if as_bytes else text
    out: list[str | bytes] = []
    i = 0
    start = token.pos + 1
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = text[i + 1]
        if esc in ("\\", '"', "'"):
            out.append(esc)
            i += 2
        elif esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise FilterError(f"\\{esc} needs {width} hex digits", expression, start + i, 2 + width)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise FilterError("not a Unicode code point", expression, start + i, 2 + width)
            out.append(bytes([code]) if as_bytes and esc == "x" else chr(code))
            i += 2 + width
        else:
            raise FilterError(
                f'unknown escape \\{esc} (write \\\\{esc}, or a raw string r"...")', expression, start + i, 2
            )
    if as_bytes:
        return b"".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for p in out)
    return "".join(p if isinstance(p, str) else p.decode("latin-1") for p in out)


# -- syntax tree ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    field: Field
    path: tuple[str | int, ...]  # into the JSON of json.PATH
    pos: int
    length: int


@dataclass(frozen=True, slots=True)
class SetLit:
    items: tuple[Token, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    left: FieldRef
    op: str
    right: Token | FieldRef | SetLit
    pos: int  # of the operator


@dataclass(frozen=True, slots=True)
class Test:
    ref: FieldRef


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "&&" or "||"
    left: Node
    right: Node


Node = Compare | Test | Not | Logic

# Binding power of the infix logical operators: and binds tighter than or.
_BINDING = {"||": 1, "&&": 2}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "contains", "matches", "in")
_JSON_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, message: str, token: Token) -> FilterError:
        return FilterError(message, self.expression, token.pos, token.width)

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty filter", self.peek())
        node = self.expr(0)
        token = self.peek()
        if token.kind != "end":
            if token.kind == ")":
                raise self.error("unmatched ')'", token)
            raise self.error(f"expected 'and', 'or' or the end, not {_show(token)}", token)
        return node

    def expr(self, min_power: int) -> Node:
        """Precedence climbing: a unary term, then infix operators of enough power."""
        left = self.unary()
        while True:
            token = self.peek()
            power = _BINDING.get(token.text) if token.kind == "op" else None
            if power is None or power <= min_power:
                return left
            self.next()
            left = Logic(token.text, left, self.expr(power))

    def unary(self) -> Node:
        token = self.next()
        if token.kind == "op" and token.text == "!":
            return Not(self.unary())
        if token.kind == "(":
            node = self.expr(0)
            close = self.next()
            if close.kind != ")":
                raise FilterError("'(' not closed", self.expression, token.pos, 1)
            return node
        if token.kind == "word":
            return self.comparison(self.field(token))
        if token.kind == "end":
            raise self.error("the filter ends where a field was expected", token)
        raise self.error(f"expected a field, not {_show(token)}", token)

    def field(self, token: Token) -> FieldRef:
        name = token.text
        known = FIELDS.get(name)
        if known is not None:
            return FieldRef(name, known, (), token.pos, len(name))
        if name == "json" or name.startswith(("json.", "json[")):
            return FieldRef(name, Field(name, Kind.JSON, "", True), self.json_path(token), token.pos, len(name))
        close = difflib.get_close_matches(name, [*FIELDS, "json"], n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        if _literal_like(name):
            raise self.error(f"expected a field, not the value {name!r}{hint}", token)
        raise self.error(f"unknown field {name!r}{hint}", token)

    def json_path(self, token: Token) -> tuple[str | int, ...]:
        rest = token.text[4:]
        path: list[str | int] = []
        pos = 0
        while pos < len(rest):
            step = _JSON_STEP.match(rest, pos)
            if step is None:
                raise FilterError(
                    "a JSON path is .key or [index] steps", self.expression, token.pos + 4 + pos, len(rest) - pos
                )
            path.append(step[1] if step[1] is not None else int(step[2]))
            pos = step.end()
        return tuple(path)

    def comparison(self, left: FieldRef) -> Node:
        token = self.peek()
        if token.kind != "op" or token.text not in _COMPARISONS:
            return Test(left)
        self.next()
        if token.text == "in" and self.peek().kind == "{":
            return Compare(left, "in", self.set_literal(), token.pos)
        value = self.next()
        if value.kind not in ("word", "string"):
            raise self.error(f"expected a value after {token.text!r}, not {_show(value)}", value)
        if value.kind == "word" and value.text not in _value_names(left.field.kind):
            other = FIELDS.get(value.text)
            if other is not None or value.text.startswith("json."):
                return Compare(left, token.text, self.field(value), token.pos)
        return Compare(left, token.text, value, token.pos)

    def set_literal(self) -> SetLit:
        start = self.next()
        items: list[Token] = []
        while True:
            token = self.next()
            if token.kind == "}":
                break
            if token.kind == ",":
                continue
            if token.kind not in ("word", "string"):
                if token.kind == "end":
                    raise FilterError("'{' not closed", self.expression, start.pos, 1)
                raise self.error(f"expected a value in the set, not {_show(token)}", token)
            items.append(token)
        if not items:
            raise FilterError("empty set", self.expression, start.pos, 2)
        return SetLit(tuple(items), start.pos)


def _show(token: Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def _literal_like(text: str) -> bool:
    return text[:1].isdigit() or text[:1] in "-:["


def _value_names(kind: Kind) -> Mapping[str, object]:
    """Bare words a field of this kind reads as values, before fields."""
    if kind is Kind.OPCODE:
        return OPCODE_BY_NAME
    if kind is Kind.DIR:
        return {d.value: d.value for d in Direction}
    if kind is Kind.BOOL:
        return _BOOLS
    if kind is Kind.JSON:
        return _JSON_WORDS
    return {}


_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_MISSING = JSON_MISSING = object()  # a JSON path that leads nowhere (JSON null is None)
_UNSET = object()  # a message's JSON not parsed yet
_JSON_WORDS = {"true": True, "false": False, "null": None}


# -- literals -------------------------------------------------------------------------

_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|\d+)")
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_RANGE = re.compile(r"([-+]?\d+(?:\.\d+)?)\.\.([-+]?\d+(?:\.\d+)?)")
_HEX_BYTES = re.compile(r"[0-9a-fA-F]{2}(?:[:.\-][0-9a-fA-F]{2})+")


@dataclass(frozen=True, slots=True)
class _Range:
    low: int | float
    high: int | float


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """An address literal: an IP, an IP and a port, or a network."""

    ip: IP | None
    port: int | None
    network: Network | None


class _Literals:
    """Turns value tokens into Python values for a field of a given kind."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def error(self, message: str, token: Token) -> FilterError:
        return FilterError(message, self.expression, token.pos, token.width)

    def value(self, token: Token, ref: FieldRef, op: str) -> object:
        kind = ref.field.kind
        if op == "matches":
            if kind not in _TEXTUAL:
                raise self.error(f"{ref.name} is a {kind.value}: 'matches' takes text", token)
            return self.regex(token, as_bytes=kind is Kind.BYTES)
        if token.kind == "word":
            rng = _RANGE.fullmatch(token.text)
            if rng is not None:
                if op != "in" or kind not in (*_NUMERIC, Kind.JSON):
                    raise self.error("a range a..b goes with 'in' and a number field", token)
                low, high = float(rng[1]), float(rng[2])
                if low.is_integer() and high.is_integer():
                    low, high = int(low), int(high)
                if low > high:
                    raise self.error("an empty range (the low end is above the high end)", token)
                return _Range(low, high)
        if kind is Kind.ADDR and op == "contains":
            kind = Kind.STR  # a substring of its text, "ip:port"
        match kind:
            case Kind.INT | Kind.FLOAT:
                return self.number(token, ref)
            case Kind.OPCODE:
                name = token.text.lower()
                if name in OPCODE_BY_NAME:
                    return OPCODE_BY_NAME[name]
                if token.kind == "word" and _INT.fullmatch(token.text):
                    return int(token.text, 0)
                raise self.error(f"not an opcode: {token.text!r} (text, binary, close, ping, pong, cont, 0xN)", token)
            case Kind.DIR:
                if token.text in ("c2s", "s2c"):
                    return token.text
                raise self.error(f"not a direction: {token.text!r} (c2s or s2c)", token)
            case Kind.BOOL:
                if token.text.lower() in _BOOLS:
                    return _BOOLS[token.text.lower()]
                raise self.error(f"{ref.name} is true or false, not {token.text!r}", token)
            case Kind.BYTES:
                if token.kind == "word" and _HEX_BYTES.fullmatch(token.text):
                    return bytes.fromhex(re.sub(r"[:.\-]", "", token.text))
                if token.kind == "string":
                    return _unescape(token, self.expression, as_bytes=True)
                raise self.error('bytes are a "string" or hex bytes such as 01:ff:7e', token)
            case Kind.IP | Kind.ADDR:
                return self.address(token, ref)
            case Kind.JSON:
                if token.kind == "string":
                    return _unescape(token, self.expression, as_bytes=False)
                if token.text in _JSON_WORDS:
                    return _JSON_WORDS[token.text]
                if _FLOAT.fullmatch(token.text):
                    return self.number(token, ref)
                return token.text
            case _:  # STR, STRS
                if token.kind == "string":
                    return _unescape(token, self.expression, as_bytes=False)
                return token.text

    def number(self, token: Token, ref: FieldRef) -> int | float:
        text = token.text
        if token.kind == "word":
            if _INT.fullmatch(text):
                return int(text, 0)
            if _FLOAT.fullmatch(text):
                return float(text)
        raise self.error(f"{ref.name} is a number, not {text!r}", token)

    def regex(self, token: Token, as_bytes: bool) -> re.Pattern[str] | re.Pattern[bytes]:
        if token.kind != "string":
            raise self.error('a regular expression is a "string"', token)
        pattern = _unescape(token, self.expression, as_bytes)
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.error(f"bad regular expression: {exc}", token) from None

    def address(self, token: Token, ref: FieldRef) -> _Endpoint:
        text = token.text
        if "/" in text:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise self.error(f"not a network: {text!r}", token) from None
            return _Endpoint(None, None, network)
        ip: IP | None = None
        port: int | None = None
        try:
            ip = _plain(ipaddress.ip_address(text))
        except ValueError:
            host, sep, port_text = text.rpartition(":")
            if sep and port_text.isdigit() and ref.field.kind is Kind.ADDR:
                try:
                    ip = _plain(ipaddress.ip_address(host.strip("[]") if host.startswith("[") else host))
                    port = int(port_text)
                except ValueError:
                    ip = None
        if ip is None:
            example = "127.0.0.1, ::1, 10.0.0.0/8" + (" or [::1]:8080" if ref.field.kind is Kind.ADDR else "")
            raise self.error(f"not an IP address: {text!r} (e.g. {example})", token)
        return _Endpoint(ip, port, None)


# -- code generation ------------------------------------------------------------------


def _json_of(m: Message) -> Any:
    """The JSON value a text message holds, or _MISSING."""
    text = m.text
    if text is None:
        return _MISSING
    c = text.lstrip()[:1]
    if c not in ("{", "[") and not (c.isdigit() or c in '"-tfn'):
        return _MISSING  # most non-JSON text stops here without a parse
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _MISSING


def _json_get(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


def _json_compare(value: Any, op: str, literal: object) -> bool:
    """A comparison of a JSON value with a literal: numbers with numbers (not
    booleans), strings with strings, true/false/null only for == and !=."""
    if value is _MISSING:
        return False
    if op in ("contains", "matches"):
        if not isinstance(value, str):
            return False
        return literal.search(value) is not None if op == "matches" else literal in value  # type: ignore[attr-defined, operator]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(literal, int | float) and not isinstance(literal, bool):
        if not number:
            # "1" == 1 in tshark's spirit of typed fields: no.
            return op == "!="
    elif isinstance(literal, str):
        if not isinstance(value, str):
            return op == "!="
    elif op in ("==", "!="):
        same = value is literal if literal is None else (isinstance(value, bool) and value == literal)
        return same == (op == "==")
    else:
        return False
    return bool(_COMPARE[op](value, literal))


def _json_in(value: Any, literals: tuple[object, ...]) -> bool:
    return any(
        _range_has(lit, value) if isinstance(lit, _Range) else _json_compare(value, "==", lit) for lit in literals
    )


def _range_has(rng: _Range, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and rng.low <= value <= rng.high


def _ip_matches(ip: IP | None, port: int | None, literal: _Endpoint) -> bool:
    if ip is None:
        return False
    if literal.network is not None:
        return ip.version == literal.network.version and ip in literal.network
    return ip == literal.ip and (literal.port is None or port == literal.port)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class _Compiler:
    def __init__(self, expression: str, session_only: bool) -> None:
        self.expression = expression
        self.literals = _Literals(expression)
        self.session_only = session_only  # a session record: message fields are missing
        self.names: dict[str, object] = {
            "_json_get": _json_get,
            "_json_compare": _json_compare,
            "_json_in": _json_in,
            "_ip_matches": _ip_matches,
            "_MISSING": _MISSING,
        }
        self.temps = 0
        self.bound = 0
        self.uses_json = False

    def bind(self, value: object) -> str:
        name = f"_k{self.bound}"
        self.bound += 1
        self.names[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def access(self, ref: FieldRef) -> Field | None:
        """The field as read in this mode; None when it is missing altogether."""
        f = ref.field
        if self.session_only and not f.key:
            return _SESSION_NUMBER if f.name == "session" else None
        return f

    def code(self, node: Node) -> str:
        match node:
            case Logic(op, left, right):
                joiner = " and " if op == "&&" else " or "
                return f"({self.code(left)}{joiner}{self.code(right)})"
            case Not(operand):
                return f"(not {self.code(operand)})"
            case Test(ref):
                return self.test(ref)
            case Compare():
                return self.compare(node)
        raise AssertionError(node)

    def test(self, ref: FieldRef) -> str:
        f = self.access(ref)
        if f is None:
            return "False"
        if f.kind is Kind.JSON:
            return f"({self.json_value(ref)} is not _MISSING)"
        if f.kind is Kind.BOOL:
            return f"({f.code} is True)"
        if f.kind is Kind.STRS:
            return f"bool({f.code})"
        return f"({f.code} is not None)" if f.optional else "True"

    def json_value(self, ref: FieldRef) -> str:
        self.uses_json = True
        # Parsed at the first reference only, then kept for the others of this call.
        return f"_json_get((_j if _j is not _UNSET else (_j := _json_of(m))), {self.bind(ref.path)})"

    def compare(self, node: Compare) -> str:
        ref, op = node.left, node.op
        f = self.access(ref)
        kind = ref.field.kind
        self.check_operator(node)
        if isinstance(node.right, FieldRef):
            return self.compare_fields(node, node.right)
        if f is None:
            # Still check the literal: an error is an error in either mode.
            self.literal_values(node)
            return "False"
        values = self.literal_values(node)
        if kind is Kind.JSON:
            value = self.json_value(ref)
            if op == "in":
                return f"_json_in({value}, {self.bind(tuple(values))})"
            test = f"_json_compare({value}, {op!r}, {self.bind(values[0])})"
            if op == "==" and isinstance(values[0], str):
                # Most messages do not hold the string at all: a JSON string equal
                # to it appears in the text as its JSON form, unless the text
                # has escapes (then parse). Spares the parse of most messages.
                import orjson

                t, needle = self.temp(), self.bind(orjson.dumps(values[0]).decode("utf-8"))
                return f"(({t} := m.text) is not None and ({needle} in {t} or '\\\\' in {t}) and {test})"
            return test
        if kind in (Kind.IP, Kind.ADDR) and op in ("==", "!=", "in"):
            return self.compare_ip(f, op, values)
        t = self.temp()
        if kind is Kind.STRS:
            if op == "!=":
                return f"(bool({t} := {f.code}) and {self.bind(values[0])} not in {t})"
            return f"(bool({t} := {f.code}) and any({self.each('_x', op, values)} for _x in {t}))"
        test = self.each(t, op, values)
        if not f.optional and test.count(t) == 1:
            return f"({test.replace(t, f.code)})"  # never missing, read once: no walrus
        return f"(({t} := {f.code}) is not None and {test})"

    def each(self, t: str, op: str, values: list[object]) -> str:
        """The test of one value ``t`` against the literal(s)."""
        if op == "in":
            plain = frozenset(v for v in values if not isinstance(v, _Range))
            parts = [f"{t} in {self.bind(plain)}"] if plain else []
            parts += [f"{r.low!r} <= {t} <= {r.high!r}" for r in values if isinstance(r, _Range)]
            return "(" + " or ".join(parts) + ")"
        k = self.bind(values[0])
        if op == "contains":
            return f"{k} in {t}"
        if op == "matches":
            return f"{k}.search({t}) is not None"
        return f"{t} {op} {k}"

    def compare_ip(self, f: Field, op: str, values: list[object]) -> str:
        """session.client/server (an IP, maybe a port) and their .ip against
        addresses, address:port and networks."""
        side = f.key.removesuffix(".ip")
        ip, port = f"s.get({side + '.ip'!r})", f"s.get({side + '.port'!r})"
        tests = " or ".join(f"_ip_matches({ip}, {port}, {self.bind(v)})" for v in values)
        if op == "!=":
            return f"({ip} is not None and not ({tests}))"
        return f"({tests})"

    def compare_fields(self, node: Compare, right: FieldRef) -> str:
        left = node.left
        lk, rk = left.field.kind, right.field.kind
        numeric = (*_NUMERIC, Kind.OPCODE)
        if not ((lk in numeric and rk in numeric) or lk == rk or Kind.JSON in (lk, rk)):
            raise FilterError(
                f"cannot compare {left.name} ({lk.value}) with {right.name} ({rk.value})",
                self.expression,
                node.pos,
                len(node.op),
            )
        if node.op in ("contains", "matches", "in") or Kind.JSON in (lk, rk) or Kind.STRS in (lk, rk):
            raise FilterError(
                f"{node.op!r} between two fields takes plain values", self.expression, node.pos, len(node.op)
            )
        a, b = self.access(left), self.access(right)
        if a is None or b is None:
            return "False"
        ta, tb = self.temp(), self.temp()
        return f"(({ta} := {a.code}) is not None and ({tb} := {b.code}) is not None and {ta} {node.op} {tb})"

    def check_operator(self, node: Compare) -> None:
        kind, op = node.left.field.kind, node.op
        allowed = {
            Kind.BOOL: ("==", "!="),
            Kind.DIR: ("==", "!=", "in"),
            Kind.IP: ("==", "!=", "in"),
            Kind.ADDR: ("==", "!=", "in", "contains", "matches"),
            Kind.STRS: ("==", "!=", "in", "contains", "matches"),
            Kind.INT: ("==", "!=", "<", "<=", ">", ">=", "in"),
            Kind.FLOAT: ("==", "!=", "<", "<=", ">", ">=", "in"),
            Kind.OPCODE: ("==", "!=", "<", "<=", ">", ">=", "in"),
        }.get(kind)
        if allowed is not None and op not in allowed:
            raise FilterError(
                f"{node.left.name} is a {kind.value}: {op!r} does not apply (use {', '.join(allowed)})",
                self.expression,
                node.pos,
                len(op),
            )

    def literal_values(self, node: Compare) -> list[object]:
        right = node.right
        assert not isinstance(right, FieldRef)
        if isinstance(right, SetLit):
            return [self.literals.value(t, node.left, "in") for t in right.items]
        network = node.left.field.kind in (Kind.IP, Kind.ADDR) and "/" in right.text
        if node.op == "in" and not (right.kind == "word" and (_RANGE.fullmatch(right.text) or network)):
            raise self.literals.error("'in' takes a set {a, b, ...}, a range a..b or a network", right)
        return [self.literals.value(right, node.left, node.op)]


# -- the compiled filter -------------------------------------------------------------

MessagePredicate = Callable[[Message, Mapping[str, Any] | None], bool]
SessionPredicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Filter:
    """A compiled display filter.

    ``message(m, values)`` tells whether a message is selected, ``values`` being its
    session's values (session_values / opened_values; None when the filter uses no
    session field); ``session(values)`` whether a session record is, with every
    message field missing.
    """

    expression: str
    fields: frozenset[str]  # the fields it reads ("json" for any json.PATH)
    needs_session: bool  # reads session.* fields: pass the session's values
    needs_end: bool  # reads END_FIELDS: a message can only be decided when its session ends
    message: MessagePredicate
    session: SessionPredicate
    source: str = field(repr=False)  # the generated code (for --debug and tests)


def compile_filter(expression: str) -> Filter:
    """Parse and compile a display filter; FilterError (exit status 2) when it is bad."""
    tree = _Parser(expression).parse()
    refs = list(_refs(tree))
    message_code, source = _generate(expression, tree, session_only=False)
    session_code, _ = _generate(expression, tree, session_only=True)
    return Filter(
        expression=expression,
        fields=frozenset("json" if r.field.kind is Kind.JSON else r.name for r in refs),
        needs_session=any(r.field.key for r in refs),
        needs_end=any(r.field.end for r in refs),
        message=message_code,
        session=session_code,
        source=source,
    )


def _refs(node: Node) -> Iterable[FieldRef]:
    match node:
        case Logic(_, left, right):
            yield from _refs(left)
            yield from _refs(right)
        case Not(operand):
            yield from _refs(operand)
        case Test(ref):
            yield ref
        case Compare(left, _, right):
            yield left
            if isinstance(right, FieldRef):
                yield right


def _generate(expression: str, tree: Node, session_only: bool) -> tuple[Callable[..., bool], str]:
    """The filter as a Python function: one expression over m and s, whose names
    are the field table's accessors and the bound literals (_kN): no text of the
    expression is ever pasted into the code."""
    compiler = _Compiler(expression, session_only)
    body = compiler.code(tree)
    if session_only:
        source = f"def _filter(s):\n    return {body}\n"
    else:
        prologue = "    _j = _UNSET\n" if compiler.uses_json else ""
        if "s.get(" in body:
            # A message whose session is unknown: its session fields are missing.
            prologue += "    if s is None:\n        s = _NO_VALUES\n"
        source = f"def _filter(m, s):\n{prologue}    return {body}\n"
        compiler.names["_json_of"] = _json_of
        compiler.names["_UNSET"] = _UNSET
        compiler.names["_NO_VALUES"] = {}
    namespace = dict(compiler.names)
    exec(compile(source, "<filter>", "exec"), namespace)
    function: Callable[..., bool] = namespace["_filter"]  # type: ignore[assignment]
    return function, source


# -- reading one field (fields output) --------------------------------------------------

FieldReader = Callable[[Message | None, Mapping[str, Any] | None], Any]


def field_reader(name: str) -> tuple[Field, FieldReader]:
    """A field by name and a function reading it from a message and/or its session's
    values (either may be None: the field is then missing, None). A json.PATH reads
    JSON_MISSING where the path leads nowhere (JSON null is None). FilterError
    (naming the closest fields) when there is no such field."""
    parser = _Parser(name)
    token = parser.next()
    if token.kind != "word" or parser.peek().kind != "end":
        raise FilterError("not a field name", name, 0, len(name), what="field")
    try:
        ref = parser.field(token)
    except FilterError as exc:
        raise FilterError(exc.message, name, exc.position, exc.length, what="field") from None
    f = ref.field
    if f.kind is Kind.JSON:
        path = ref.path

        def read_json(m: Message | None, s: Mapping[str, Any] | None) -> Any:
            return JSON_MISSING if m is None else _json_get(_json_of(m), path)

        return f, read_json
    if f.name == "session":
        # The number is a message's and a session record's.
        return f, lambda m, s: m.session if m is not None else s.get("session") if s is not None else None
    source = "s" if f.key else "m"
    function: FieldReader = eval(f"lambda m, s: None if {source} is None else {f.code}")
    return f, function


# -- applying a filter to the core's events ---------------------------------------------


def _nothing(_session: int) -> None:
    return None


class Selection:
    """A filter applied to the Inspector's events, as they come.

    feed() returns the events to show: the selected messages, the selected session
    records, and every SessionOpened/SessionUpgraded (front ends keep their books
    with them). When the filter reads END_FIELDS, a session's messages are held and
    decided when its SessionSummary comes, then returned just before it; with
    ``summaries`` (the session records of a first pass, by session number) nothing
    is held and the order stays the capture's.
    """

    def __init__(self, flt: Filter, summaries: Mapping[int, SessionSummary] | None = None) -> None:
        self.filter = flt
        self._known = {n: session_values(s) for n, s in summaries.items()} if summaries is not None else None
        self._values: dict[int, dict[str, Any]] = {}
        self._opened: dict[int, SessionOpened] = {}
        self._held: dict[int, list[Message]] = {}
        self._touched: set[int] = set()  # sessions with a message selected
        self._hold = flt.needs_end and summaries is None

    def feed(self, events: Iterable[Event]) -> list[Event]:
        out: list[Event] = []
        predicate = self.filter.message
        values = self._values
        touched = self._touched
        hold = self._held if self._hold else None
        # Without session fields there is no session to look up per message.
        lookup = values.get if self.filter.needs_session else _nothing
        for ev in events:
            if ev.__class__ is Message:
                m: Message = ev
                if hold is not None:
                    hold.setdefault(m.session, []).append(m)
                elif predicate(m, lookup(m.session)):
                    touched.add(m.session)
                    out.append(m)
            elif isinstance(ev, SessionOpened):
                out.append(ev)
                # The session's values cost tens of microseconds (its JSON record):
                # made only when the filter reads them, and known by now.
                if self.filter.needs_session and hold is None:
                    self._opened[ev.session] = ev
                    values[ev.session] = self._start_values(ev, None)
            elif isinstance(ev, SessionUpgraded):
                out.append(ev)
                opened = self._opened.get(ev.session)
                if opened is not None:
                    values[ev.session] = self._start_values(opened, ev.handshake)
            elif isinstance(ev, SessionSummary):
                out.extend(self._ended(ev))
        return out

    def _start_values(self, opened: SessionOpened, handshake: Handshake | None) -> dict[str, Any]:
        if self._known is not None and opened.session in self._known:
            return self._known[opened.session]
        return opened_values(opened, handshake)

    def _ended(self, summary: SessionSummary) -> list[Event]:
        number = summary.session
        known = self._values.pop(number, None)
        self._opened.pop(number, None)
        held = self._held.pop(number, None)
        values: dict[str, Any]
        if not (self.filter.needs_session or held):
            values = {"session": number}  # only the number can matter to the session predicate
        elif known is not None and not self.filter.needs_end:
            values = known  # what the filter reads was known from the start
        else:
            values = session_values(summary)
        out: list[Event] = []
        if held:
            predicate = self.filter.message
            out = [m for m in held if predicate(m, values)]
        touched = number in self._touched
        self._touched.discard(number)
        if touched or out or self.filter.session(values):
            out.append(summary)
        return out
