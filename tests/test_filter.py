"""The display-filter language: parsing, errors, and the same selection as a plain
evaluation over the `read --json` records of every bundled capture."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import CAPTURES, decode_file
from wsinspect import jsonl
from wsinspect.filter import (
    END_FIELDS,
    FIELDS,
    FilterError,
    Selection,
    compile_filter,
    field_names,
    opened_values,
    session_values,
)
from wsinspect.frames import Frame
from wsinspect.http import parse_head
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import Event, SessionOpened, SessionSummary, SessionUpgraded


def message(**kw: Any) -> Message:
    """A Message as the core makes it (one frame), with fields overridden."""
    payload = kw.pop("payload", b"hello")
    opcode = kw.pop("opcode", 1)
    frame = Frame(True, 0, opcode, True, b"abcd", len(payload), payload, 6, 1.0, [1])
    fields: dict[str, Any] = {
        "session": 1,
        "ts": 1.5,
        "dir": "c2s",
        "opcode": opcode,
        "frames": [frame],
        "masked": True,
        "compressed": False,
        "payload": payload,
        "wire_length": len(payload),
        "text": payload.decode() if opcode == 1 else None,
        "close_code": None,
        "close_reason": None,
        "issues": [],
        "packets": (1, 1),
        "complete": True,
    }
    fields.update(kw)
    return Message(**fields)


def matches(expression: str, m: Message, values: dict[str, Any] | None = None) -> bool:
    return compile_filter(expression).message(m, values)


# -- operators and precedence ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("opcode == text", True),
        ("opcode == 1", True),
        ("opcode eq 0x1", True),
        ('opcode == "text"', True),
        ("opcode != text", False),
        ("opcode ne binary", True),
        ("opcode < close", True),
        ("opcode >= binary", False),
        ("length == 5", True),
        ("length > 4 && length <= 5", True),
        ("length lt 5", False),
        ("length ge 5.0", True),
        ("dir == c2s", True),
        ("dir == s2c", False),
        ("dir in {s2c}", False),
        ("text == hello", True),
        ('text == "hello"', True),
        ("text contains ell", True),
        ('text contains "xyz"', False),
        ('text matches "^h.l+o$"', True),
        ('text ~ "H"', False),
        ('text matches "(?i)H"', True),
        ('text in {"hello" "bye"}', True),
        ("text < hellp", True),
        ("data contains 65:6c", True),
        ('data contains "ell"', True),
        ('data == "hello"', True),
        ('data matches "l{2}"', True),
        ("masked", True),
        ("masked == false", False),
        ("compressed", False),
        ("!compressed", True),
        ("complete == 1", True),
        ("frames == 1", True),
        ("wire_length in {1..10}", True),
        ("ts > 1 and ts < 2", True),
        ("session == 1", True),
        ("session in {2, 3}", False),
        ("close_code", False),
        ("!close_code", True),
        ("close_code != 1000", False),  # missing: every comparison is false
        ("not close_code == 1000", True),
        ("issues", False),
        ("text", True),
        ("rtt", False),
        ("length == wire_length", True),
        ("length != wire_length", False),
    ],
)
def test_each_operator_on_a_text_message(expression: str, selected: bool) -> None:
    assert matches(expression, message()) is selected


def test_precedence_and_binds_tighter_than_or_and_not_tightest() -> None:
    m = message()  # a text message of 5 bytes from the client
    # or(true, and(false, ...)) is true; and(or(true, false), false) would be false.
    assert matches("opcode == text or opcode == binary and length > 100", m)
    assert not matches("(opcode == text or opcode == binary) and length > 100", m)
    assert matches("opcode == binary and length > 100 or dir == c2s", m)
    # not applies to the next term only.
    assert not matches("not opcode == binary and length > 100", m)
    assert matches("not (opcode == binary and length > 100)", m)
    assert matches("!!masked", m)
    assert matches("! ! masked && || text".replace("&& ||", "||"), m)
    # Left to right, either spelling.
    assert matches("length > 9 || length > 8 || length > 1", m)
    assert matches("length > 1 && length > 2 && length > 3", m)


def test_close_codes_ranges_and_names() -> None:
    close = message(opcode=8, payload=b"\x03\xe8bye", close_code=1000, close_reason="bye", text=None)
    assert matches("opcode == close && close_code in {1000..1015}", close)
    assert matches("close_code in 1000..1015", close)
    assert matches("close_code in {4000..4999 1000}", close)
    assert not matches("close_code in {1001..1015, 4000}", close)
    assert matches('close_reason == "bye" && close_code != 1001', close)
    assert not matches("text", close)


def test_issues_is_a_list_any_value_matches() -> None:
    m = message(issues=[Issue.INVALID_UTF8, Issue.TCP_GAP])
    assert matches("issues", m)
    assert matches('issues == "tcp-gap"', m)
    assert matches("issues == invalid-utf8", m)
    assert matches('issues contains "utf"', m)
    assert matches('issues matches "^tcp"', m)
    assert matches("issues in {tcp-gap, mid-stream}", m)
    assert not matches('issues != "tcp-gap"', m)
    assert matches('issues != "mid-stream"', m)
    assert not matches('issues != "mid-stream"', message())  # no issues: missing


def test_json_paths() -> None:
    m = message(payload=b'{"type": "chat", "n": 3, "ok": true, "none": null, "tags": ["a", {"b": 2.5}]}')
    assert matches('json.type == "chat"', m)
    assert matches("json.type == chat", m)
    assert matches("json.n == 3 && json.n > 2.5 && json.n in {1..5}", m)
    assert not matches('json.n == "3"', m)  # typed: a number is not a string
    assert matches('json.n != "3"', m)
    assert matches("json.ok == true && json.none == null", m)
    assert not matches("json.ok == 1", m)
    assert matches('json.tags[0] == "a" && json.tags[1].b >= 2.5', m)
    assert matches("json.tags && !json.missing && json", m)
    assert not matches("json.tags[5] == a", m)
    assert matches('json.type contains "ha" && json.type matches "^c"', m)
    assert not matches("json", message(payload=b"not json"))
    assert not matches("json", message(opcode=2, payload=b"{}"))
    assert matches("json[1] == 2", message(payload=b"[1, 2]"))


def test_json_string_equality_sees_through_escapes() -> None:
    # The quick look for the string in the text must not miss an escaped spelling.
    assert matches('json.type == "chat"', message(payload=b'{"type": "ch\\u0061t"}'))
    assert matches('json.name == "\u00e9t\u00e9"', message(payload='{"name": "été"}'.encode()))
    assert matches('json.name == "\u00e9t\u00e9"', message(payload=b'{"name": "\\u00e9t\\u00e9"}'))
    assert matches('json.path == "a/b\nc"', message(payload=b'{"path": "a\\/b\\nc"}'))
    assert not matches('json.type == "chat"', message(payload=b'{"type": "chatter"}'))
    assert not matches('json.type == "chat"', message(payload=b'{"chat": 1}'))


def session_of(request: bytes, response: bytes | None, **summary: Any) -> SessionSummary:
    from wsinspect.http import check_handshake

    req = parse_head(request)[0]
    resp = parse_head(response)[0] if response else None
    fields: dict[str, Any] = {
        "session": 1,
        "client": "10.1.2.3:40000",
        "server": "[2001:db8::1]:8080",
        "handshake": check_handshake(req, resp),
        "start": 1.0,
        "end": 3.5,
        "messages": (2, 3),
        "bytes": (10, 20),
        "wire_bytes": (10, 20),
        "close": None,
        "ended_by": "fin",
        "mid_stream": False,
        "issues": (),
        "issue_count": 0,
    }
    fields.update(summary)
    return SessionSummary(**fields)


REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n\r\n"
)


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("session.host == example.com:8080", True),
        ('session.host contains "example"', True),
        ('session.path matches "room=1"', True),
        ('session.origin == "http://example.com"', True),
        ("session.subprotocol == chat", True),
        ('session.offered_subprotocols == "superchat"', True),
        ('session.extensions contains "permessage-deflate"', True),
        ('session.extensions == "permessage-deflate"', False),
        ("session.status == 101 && session.accept_valid", True),
        ("session.server.port == 8080", True),
        ("session.server.port in {80, 443}", False),
        ("session.client.port > 1024", True),
        ("session.client.ip == 10.1.2.3", True),
        ("session.client == 10.1.2.3:40000", True),
        ("session.client == 10.1.2.3:40001", False),
        ("session.client == 10.1.2.4", False),
        ("session.client != 10.1.2.4", True),
        ("session.client in 10.0.0.0/8", True),
        ("session.client.ip in {192.168.0.0/16, 10.1.0.0/16}", True),
        ("session.client.ip == 10.0.0.0/8", True),
        ("session.client in ::/0", False),  # an IPv4 address is in no IPv6 network
        ("session.server.ip == 2001:db8::1", True),
        ("session.server == [2001:db8::1]:8080", True),
        ("session.server in 2001:db8::/32", True),
        ('session.server contains "db8"', True),
        ("session.ended_by == fin", True),
        ("session.ended_by in {rst, eof}", False),
        ("session.duration > 2 && session.duration < 3", True),
        ("session.messages == 5 && session.messages_c2s == 2", True),
        ("session.close.code == 1000", False),
        ("session.mid_stream", False),
        ("session.issues", False),
        ("session.tls.sni", False),  # not in the record (cleartext, or before issue 15)
        ("session.termination == clean", False),
    ],
)
def test_session_fields(expression: str, selected: bool) -> None:
    values = session_values(session_of(REQUEST, RESPONSE))
    assert matches(expression, message(), values) is selected
    assert compile_filter(expression).session(values) is selected


def test_a_message_of_an_unknown_session_has_its_session_fields_missing() -> None:
    assert not matches("session.host", message(), None)
    assert matches("!(session.client in 10.0.0.0/8) && opcode == text", message(), None)


def test_ipv4_mapped_addresses_compare_as_ipv4() -> None:
    values = session_values(session_of(REQUEST, RESPONSE, client="[::ffff:10.1.2.3]:40000"))
    assert matches("session.client.ip == 10.1.2.3", message(), values)
    assert matches("session.client.ip == ::ffff:10.1.2.3", message(), values)
    assert matches("session.client in 10.0.0.0/8", message(), values)


def test_nested_and_future_session_fields_read_the_record() -> None:
    # Fields other helpers add to the session record (issues 15-17) are read by
    # their record names as soon as the record carries them.
    values = session_values(session_of(REQUEST, RESPONSE))
    values.update({"tls.sni": "example.com", "termination": "clean", "heartbeat.rtt.median": 0.02})
    assert matches('session.tls.sni == "example.com" && session.termination == clean', message(), values)
    assert matches("session.heartbeat.rtt.median < 0.05", message(), values)


def test_open_session_values_lack_end_fields() -> None:
    summary = session_of(REQUEST, RESPONSE)
    opened = SessionOpened(1, summary.client, summary.server, 1.0)
    values = opened_values(opened, summary.handshake)
    assert values["host"] == "example.com:8080" and values["status"] == 101
    assert not END_FIELDS & values.keys()
    # The same values as the record's, but for those known only at the end
    # ("close" is the record's object that close.* come from).
    assert {k: v for k, v in session_values(summary).items() if k not in END_FIELDS and k != "close"} == values


def test_field_names_list_every_field_for_help_and_completion() -> None:
    names = field_names()
    assert {"opcode", "text", "session.host", "session.client.port", "json.PATH"} <= set(names)
    for name in names:
        if name != "json.PATH":
            compile_filter(name)  # each is a valid filter on its own


def test_which_fields_a_filter_reads() -> None:
    f = compile_filter("opcode == text && json.a == 1 || session.host == x")
    assert f.fields == {"opcode", "json", "session.host"}
    assert f.needs_session and not f.needs_end
    assert compile_filter("session.ended_by == fin").needs_end
    assert not compile_filter("length > 3").needs_session


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "error", "position", "length"),
    [
        ("", "empty filter", 0, 1),
        ("lenght > 3", "unknown field 'lenght' (did you mean length", 0, 6),
        ("opcode == txt", "not an opcode: 'txt'", 10, 3),
        ("length > 3 and", "ends where a field was expected", 14, 1),
        ("(opcode == 1", "'(' not closed", 0, 1),
        ("opcode == 1)", "unmatched ')'", 11, 1),
        ("opcode == 1 length > 2", "expected 'and', 'or' or the end, not 'length'", 12, 6),
        ('text contains "abc', "string not closed", 14, 4),
        ('text contains "\\d"', "unknown escape \\d", 15, 2),
        ('text contains "\\x4"', "\\x needs 2 hex digits", 15, 4),
        ('length > "3"', "length is a number, not '3'", 9, 3),
        ("length contains 3", "'contains' does not apply", 7, 8),
        ("masked > 1", "masked is a boolean", 7, 1),
        ("dir == up", "not a direction: 'up'", 7, 2),
        ("length in 3", "'in' takes a set", 10, 1),
        ("length in {}", "empty set", 10, 2),
        ("length in {1 2", "'{' not closed", 10, 1),
        ("length in {1..x}", "length is a number", 11, 4),
        ("close_code in {1015..1000}", "an empty range", 15, 10),
        ("text == 1..3", "a range a..b goes with 'in'", 8, 4),
        ('text matches "("', "bad regular expression", 13, 3),
        ("text matches abc", 'a regular expression is a "string"', 13, 3),
        ("session.client.ip == 300.1.1.1", "not an IP address: '300.1.1.1'", 21, 9),
        ("session.server in 10.0.0.0/33", "not a network", 18, 11),
        ("data contains 1", "hex bytes", 14, 1),
        ("session.hots == x", "unknown field 'session.hots' (did you mean session.host", 0, 12),
        ("json.a..b == 1", "a JSON path is .key or [index] steps", 6, 3),
        ("length == text", "cannot compare length (integer) with text (string)", 7, 2),
        ("3 == length", "expected a field, not the value '3'", 0, 1),
        ("length == ==", "expected a value after '=='", 10, 2),
        ("length $ 3", "unexpected character '$'", 7, 1),
        ("== 3", "expected a field, not '=='", 0, 2),
    ],
)
def test_errors_point_at_the_place(expression: str, error: str, position: int, length: int) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(expression)
    exc = caught.value
    assert error in exc.message
    assert (exc.position, exc.length) == (position, length)
    assert exc.exit_status == 2
    # As tshark prints it: the message, the expression, a caret under the place.
    lines = str(exc).split("\n")
    assert lines[0] == f"bad filter: {exc.message}"
    assert lines[1] == "    " + expression
    assert lines[2] == "    " + " " * position + "^" + "~" * (length - 1)


def test_unknown_fields_name_the_closest_known_ones() -> None:
    with pytest.raises(FilterError, match=r"did you mean close_code, close_reason\?"):
        compile_filter("close_cod == 1000")
    with pytest.raises(FilterError, match=r"did you mean session.server\b"):
        compile_filter("session.sever.port == 80")
    with pytest.raises(FilterError) as caught:
        compile_filter("zzz")
    assert "did you mean" not in caught.value.message


# -- the same selection as over the JSON records ---------------------------------------

Record = dict[str, Any]
OPCODES = {"cont": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}


def _payload(r: Record) -> bytes:
    return r["text"].encode() if "text" in r else base64.b64decode(r["data"])


def _json(r: Record) -> Any:
    try:
        return json.loads(r["text"]) if "text" in r else None
    except ValueError:
        return None


def _opcode(name: str) -> int:
    return OPCODES[name] if name in OPCODES else int(name, 16)


def _number(value: Any, key: str) -> float:
    """value[key] where it is a JSON number (not a boolean), else -inf."""
    if isinstance(value, dict) and type(value.get(key)) in (int, float):
        return float(value[key])
    return float("-inf")


def _is_json(r: Record) -> bool:
    if "text" not in r:
        return False
    try:
        json.loads(r["text"])
    except ValueError:
        return False
    return True


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _ip(endpoint: str) -> Any:
    return ipaddress.ip_address(endpoint.rsplit(":", 1)[0].strip("[]"))


# (filter, the same selection written as Python over the message record r and its
# session record s, as jq would over `read --json`)
ORACLE: list[tuple[str, Callable[[Record, Record], bool]]] = [
    ("opcode == text", lambda r, s: r["opcode"] == "text"),
    ("opcode in {ping, pong}", lambda r, s: r["opcode"] in ("ping", "pong")),
    ("opcode != binary", lambda r, s: r["opcode"] != "binary"),
    ("opcode >= close", lambda r, s: _opcode(r["opcode"]) >= 8),
    ("dir == c2s and length > 100", lambda r, s: r["dir"] == "c2s" and r["length"] > 100),
    ("length != wire_length", lambda r, s: r["length"] != r["wire_length"]),
    ("compressed || !masked", lambda r, s: r["compressed"] or not r["masked"]),
    ("frames > 1", lambda r, s: r["frames"] > 1),
    ("not complete", lambda r, s: not r["complete"]),
    ('text contains "hello"', lambda r, s: "hello" in r.get("text", "")),
    (r'text matches r"^[{\[]"', lambda r, s: re.search(r"^[{\[]", r.get("text", "")) is not None),
    ("text", lambda r, s: "text" in r),
    ('data contains "ping"', lambda r, s: b"ping" in _payload(r)),
    ("data contains 00:00", lambda r, s: b"\0\0" in _payload(r)),
    ("close_code in {1000..1003}", lambda r, s: r["close_code"] is not None and 1000 <= r["close_code"] <= 1003),
    ("close_code != 1000", lambda r, s: r["close_code"] is not None and r["close_code"] != 1000),
    ("close_reason", lambda r, s: r["close_reason"] is not None),
    ("issues", lambda r, s: bool(r["issues"])),
    (
        'issues contains "utf8" or issues == tcp-gap',
        lambda r, s: any("utf8" in i or i == "tcp-gap" for i in r["issues"]),
    ),
    ("!issues && opcode == binary", lambda r, s: not r["issues"] and r["opcode"] == "binary"),
    ('json.type == "chat"', lambda r, s: isinstance(_json(r), dict) and _json(r).get("type") == "chat"),
    ("json.seq >= 3", lambda r, s: _number(_json(r), "seq") >= 3),
    ("json", lambda r, s: _is_json(r)),
    ("session == 2", lambda r, s: r["session"] == 2),
    ('session.host contains ":470"', lambda r, s: ":470" in (s["host"] or "")),
    ('session.path matches "room"', lambda r, s: re.search("room", s["path"] or "") is not None),
    ("session.server.port == 47001", lambda r, s: _port(s["server"]) == 47001),
    ("session.client.ip == ::1", lambda r, s: _ip(s["client"]) == ipaddress.ip_address("::1")),
    ("session.client in 127.0.0.0/8", lambda r, s: _ip(s["client"]).version == 4),
    ("session.ended_by == fin && dir == s2c", lambda r, s: s["ended_by"] == "fin" and r["dir"] == "s2c"),
    ("session.close.code == 1000", lambda r, s: s["close"] is not None and s["close"]["code"] == 1000),
    (
        "session.close.initiator == client && opcode == close",
        lambda r, s: s["close"] is not None and s["close"]["initiator"] == "client" and r["opcode"] == "close",
    ),
    ("session.mid_stream", lambda r, s: s["mid_stream"]),
    ('session.extensions contains "deflate"', lambda r, s: any("deflate" in e for e in s["extensions"])),
    ("session.status != 101", lambda r, s: s["status"] is not None and s["status"] != 101),
    ("session.accept_valid", lambda r, s: s["accept_valid"] is True),
    ("session.messages > 20", lambda r, s: s["messages"] > 20),
    ("session.issues", lambda r, s: bool(s["issues"])),
    (
        "(opcode == text || opcode == binary) && !(dir == s2c) && session.messages > 3",
        lambda r, s: r["opcode"] in ("text", "binary") and r["dir"] != "s2c" and s["messages"] > 3,
    ),
    (
        "session.ended_by != fin or length < 10 and not compressed",
        lambda r, s: s["ended_by"] != "fin" or (r["length"] < 10 and not r["compressed"]),
    ),
]


@cache
def corpus() -> list[tuple[str, list[Event], list[Record], dict[int, Record]]]:
    """Every bundled capture: its events, message records and session records."""
    out = []
    for path in sorted(CAPTURES.glob("*.pcap*")):
        events = decode_file(path)
        records = [jsonl.message_record(e) for e in events if isinstance(e, Message)]
        sessions = {e.session: jsonl.session_record(e) for e in events if isinstance(e, SessionSummary)}
        out.append((path.name, events, records, sessions))
    return out


@pytest.mark.parametrize(("expression", "oracle"), ORACLE, ids=[e for e, _ in ORACLE])
def test_same_selection_as_over_the_json_records(expression: str, oracle: Callable[[Record, Record], bool]) -> None:
    flt = compile_filter(expression)
    selected_total = total = 0
    for name, events, records, sessions in corpus():
        msgs = [e for e in events if isinstance(e, Message)]
        chosen = {id(e) for e in Selection(flt).feed(events) if isinstance(e, Message)}
        got = [id(m) in chosen for m in msgs]
        want = [oracle(r, sessions[r["session"]]) for r in records]
        assert got == want, (name, [r for r, g, w in zip(records, got, want, strict=True) if g != w][:2])
        selected_total += sum(want)
        total += len(want)
    # Every case selects some messages of the corpus and leaves others out.
    assert 0 < selected_total < total


def test_session_records_selected_by_their_own_fields_or_their_messages() -> None:
    for _name, events, _records, sessions in corpus():
        pinged = {e.session for e in events if isinstance(e, Message) and e.opcode == 9}
        refused = {n for n, s in sessions.items() if s["status"] not in (101, None)}
        for expression, wanted in [
            ("opcode == ping", pinged),  # a message filter: the sessions of its messages
            ("session.status != 101", refused),  # a session filter: with or without messages
            ("!(opcode == ping)", set(sessions)),  # not(missing) holds for every session record
        ]:
            out = Selection(compile_filter(expression)).feed(events)
            assert {e.session for e in out if isinstance(e, SessionSummary)} == wanted, expression


def test_end_fields_hold_messages_until_the_session_ends_or_use_a_first_pass() -> None:
    _, events, _, _ = next(c for c in corpus() if c[0] == "websockets_many.pcap")
    flt = compile_filter("session.ended_by == fin && opcode == text")
    held = Selection(flt).feed(events)
    summaries = {e.session: e for e in events if isinstance(e, SessionSummary)}
    passed = Selection(flt, summaries).feed(events)
    held_msgs = [e for e in held if isinstance(e, Message)]
    passed_msgs = [e for e in passed if isinstance(e, Message)]
    assert held_msgs and sorted(map(id, held_msgs)) == sorted(map(id, passed_msgs))
    # With a first pass the capture's order stays; held messages come out just
    # before their session's record.
    in_order = [e for e in events if isinstance(e, Message) and id(e) in set(map(id, passed_msgs))]
    assert passed_msgs == in_order
    for i, e in enumerate(held):
        if isinstance(e, Message):
            nxt = next(x for x in held[i:] if not isinstance(x, Message))
            assert isinstance(nxt, SessionSummary) and nxt.session == e.session
    # Opened/upgraded events always pass: front ends keep their books with them.
    assert sum(isinstance(e, SessionOpened | SessionUpgraded) for e in held) == sum(
        isinstance(e, SessionOpened | SessionUpgraded) for e in events
    )


def test_start_fields_decide_while_the_session_is_open() -> None:
    _, events, _, _ = next(c for c in corpus() if c[0] == "websockets_basic.pcap")
    out = Selection(compile_filter('session.path contains "chat" && opcode == text')).feed(events)
    kinds = [type(e).__name__ for e in out]
    # Messages come before the session's end: nothing was held.
    assert kinds.index("Message") < kinds.index("SessionSummary")


# -- any input either compiles or is a FilterError ---------------------------------------

_PIECES = [
    *FIELDS,
    "json.a",
    "json.a[0].b",
    "json[1]",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "contains",
    "matches",
    "in",
    "and",
    "or",
    "not",
    "&&",
    "||",
    "!",
    "~",
    "(",
    ")",
    "{",
    "}",
    ",",
    "1",
    "-3",
    "0x10",
    "2.5",
    "1000..1015",
    "text",
    "ping",
    "c2s",
    "true",
    "null",
    "127.0.0.1",
    "::1",
    "[::1]:80",
    "10.0.0.0/8",
    "01:02",
    '"a"',
    '"\\x41\\n"',
    'r"\\d+"',
    '"(',
    "'x'",
    '"',
    "\\",
    "$",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=9), st.booleans())
def test_random_expressions_compile_or_raise_filter_error(pieces: list[str], spaced: bool) -> None:
    expression = (" " if spaced else "").join(pieces)
    try:
        flt = compile_filter(expression)
    except FilterError as exc:
        assert 0 <= exc.position <= len(expression)
        return
    # What compiles also runs, on a message and on a session record.
    values = session_values(session_of(REQUEST, RESPONSE))
    assert flt.message(message(), values) in (True, False)
    assert flt.message(message(opcode=2, payload=b"\x00\xff"), values) in (True, False)
    assert flt.session(values) in (True, False)
