"""`-T fields -e FIELD ...`: one line of chosen field values per record, as tshark
writes them, for awk, cut and spreadsheets.

Field names are the display filter's (wsinspect.filter): message fields, session.*
fields and json.PATH. Values: numbers as numbers, booleans 1/0 (as tshark 4.0),
times in seconds with 6 decimals, opcodes by their JSON name, ``data`` as hex, text
as text, several values (issues, extensions) joined by the aggregator, a missing
field empty. A value never breaks the line: backslash, newline, carriage return and
tab are written \\\\ \\n \\r \\t (sanitizing for a terminal is the printer's job).

-E options as tshark's: header=y|n, separator=/t|/s|CHAR (tab by default),
quote=d|s|n, aggregator=/s|CHAR. With a comma separator and no quote option the
output is CSV (RFC 4180): a value holding a comma or a double quote is quoted, its
quotes doubled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from wsinspect.errors import WsinspectError
from wsinspect.filter import JSON_MISSING, Field, FieldReader, Kind, field_reader
from wsinspect.messages import Message
from wsinspect.vocab import opcode_label


class FieldsError(WsinspectError):
    """A bad -E option (a usage error)."""

    exit_status = 2


@dataclass(frozen=True, slots=True)
class FieldsFormat:
    header: bool = False
    separator: str = "\t"
    quote: str | None = None  # '"', "'", "" (none) or None: CSV quoting with a comma separator
    aggregator: str = ","


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_QUOTES = {"d": '"', "s": "'", "n": ""}


def _char(value: str) -> str:
    """tshark's spelling of a separator: /t tab, /s space, or one character."""
    named = {"/t": "\t", "/s": " "}
    if value in named:
        return named[value]
    if len(value) != 1:
        raise FieldsError(f"a separator is one character, /t or /s, not {value!r}")
    return value


def parse_option(fmt: FieldsFormat, option: str) -> FieldsFormat:
    """Apply one -E option ("header=y") to a format."""
    key, eq, value = option.partition("=")
    if not eq:
        raise FieldsError(f"-E takes NAME=VALUE, not {option!r}")
    match key:
        case "header":
            if value not in ("y", "n"):
                raise FieldsError(f"-E header=y or header=n, not {value!r}")
            return replace(fmt, header=value == "y")
        case "separator":
            return replace(fmt, separator=_char(value))
        case "quote":
            if value not in _QUOTES:
                raise FieldsError(f"-E quote=d, s or n, not {value!r}")
            return replace(fmt, quote=_QUOTES[value])
        case "aggregator":
            return replace(fmt, aggregator=_char(value))
    raise FieldsError(f"unknown -E option {key!r} (header, separator, quote, aggregator)")


class FieldsWriter:
    """Renders records as lines of field values.

    ``per_session``: every field is a session field, so the CLI writes one line per
    session record (at its end) rather than one per message. ``needs_session`` and
    ``needs_end`` say, as for a filter, whether messages need their session's values
    and whether those are only known when the session ends.
    """

    def __init__(self, names: list[str], fmt: FieldsFormat | None = None) -> None:
        if not names:
            raise FieldsError("-T fields needs at least one -e FIELD")
        self.names = names
        self.format = fmt or FieldsFormat()
        self._fields: list[tuple[Field, FieldReader]] = [field_reader(name) for name in names]
        self.per_session = all(f.key or f.name == "session" for f, _ in self._fields)
        self.needs_session = any(f.key for f, _ in self._fields)
        self.needs_end = any(f.end for f, _ in self._fields)

    def header(self) -> str | None:
        """The header line (with -E header=y), newline included."""
        return self._line(self.names) if self.format.header else None

    def message(self, m: Message, values: Mapping[str, Any] | None) -> str:
        """A message's line, newline included; ``values``: its session's values."""
        return self._line([self._text(f, read(m, values)) for f, read in self._fields])

    def session(self, values: Mapping[str, Any]) -> str:
        """A session record's line (message fields empty)."""
        return self._line([self._text(f, read(None, values)) for f, read in self._fields])

    def _text(self, f: Field, value: Any) -> str:
        if value is None or value is JSON_MISSING:
            return ""
        match f.kind:
            case Kind.BOOL:
                return "1" if value else "0"
            case Kind.OPCODE:
                return opcode_label(value)
            case Kind.FLOAT:
                return f"{value:.6f}"
            case Kind.BYTES:
                return bytes(value).hex()
            case Kind.STRS:
                return self.format.aggregator.join(str(v) for v in value)
            case Kind.JSON:
                if isinstance(value, str):
                    return value
                import orjson

                return orjson.dumps(value).decode("utf-8")
        return str(value)  # numbers, strings, IP addresses

    def _line(self, texts: list[str]) -> str:
        fmt = self.format
        sep = fmt.separator
        out = []
        for text in texts:
            text = text.translate(_ESCAPES)
            if fmt.quote:
                q = fmt.quote
                text = q + text.replace(q, q + q) + q
            elif fmt.quote is None and sep == "," and ("," in text or '"' in text):
                text = '"' + text.replace('"', '""') + '"'
            out.append(text)
        return sep.join(out) + "\n"
