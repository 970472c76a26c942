"""HAR export: valid HAR 1.2 (checked against the spec's schema), Chrome's WebSocket
extensions, and the messages the peers really sent."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.conftest import CAPTURES, decode_file, load_truth, truth_payload
from tests.test_filter import REQUEST, RESPONSE, session_of
from wsinspect.filter import Selection, compile_filter
from wsinspect.har import HarCollector, dumps, har_entry, har_time
from wsinspect.messages import Message

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "har-1.2.schema.json").read_text())
ALL = sorted(p.name for p in CAPTURES.glob("*.pcap*"))


def har_of(name: str, expression: str | None = None) -> dict[str, Any]:
    events = decode_file(CAPTURES / name)
    if expression is not None:
        events = Selection(compile_filter(expression)).feed(events)
    collector = HarCollector()
    collector.feed(events)
    # What goes to the file: bytes that read back as the same JSON.
    har: dict[str, Any] = json.loads(dumps(collector.har()))
    return har


def check_chrome_websocket_entry(entry: dict[str, Any]) -> None:
    """What Chrome DevTools' HAR importer reads from a WebSocket entry."""
    assert entry["_resourceType"] == "websocket"
    assert entry["request"]["url"].startswith(("ws://", "wss://"))
    for m in entry["_webSocketMessages"]:
        assert set(m) == {"type", "time", "opcode", "data"}
        assert m["type"] in ("send", "receive")
        assert isinstance(m["time"], float) and m["time"] > 1e9  # epoch seconds
        assert m["opcode"] in range(16) and isinstance(m["data"], str)


@pytest.mark.parametrize("name", ALL)
def test_every_capture_gives_valid_har(name: str) -> None:
    har = har_of(name)
    jsonschema.validate(har, SCHEMA)
    for entry in har["log"]["entries"]:
        check_chrome_websocket_entry(entry)
        assert entry["time"] == entry["timings"]["send"] + entry["timings"]["wait"] + entry["timings"]["receive"]


def test_the_schema_rejects_what_is_not_har() -> None:
    # The fixture is a real check, not a formality.
    har = har_of("websockets_basic.pcap")
    for broken in (
        {"log": {"version": "1.2", "entries": []}},
        {"log": {**har["log"], "entries": [{**har["log"]["entries"][0], "timings": {"send": 0}}]}},
        {"log": {**har["log"], "entries": [{**har["log"]["entries"][0], "startedDateTime": "yesterday"}]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_entry_holds_the_handshake_and_every_message_as_sent() -> None:
    har = har_of("websockets_basic.pcap")
    truth = load_truth(CAPTURES / "websockets_basic.truth.json")["sessions"][0]
    (entry,) = har["log"]["entries"]
    request, response = entry["request"], entry["response"]
    assert request["method"] == "GET" and request["httpVersion"] == "HTTP/1.1"
    assert request["url"] == f"ws://{truth['host']}{truth['path']}"
    assert {"name": "room", "value": "1"} in request["queryString"]
    assert {"name": "user", "value": "alice"} in request["queryString"]
    names = [h["name"].lower() for h in request["headers"]]
    assert "sec-websocket-key" in names and "upgrade" in names
    assert response["status"] == 101 and response["statusText"] == "Switching Protocols"
    assert response["headersSize"] > 0 and request["headersSize"] > 0
    assert entry["serverIPAddress"] == "127.0.0.1"
    assert entry["timings"]["wait"] > 0
    # Data messages in order per direction, byte for byte what the peers logged.
    sent = [m for m in entry["_webSocketMessages"] if m["opcode"] in (1, 2)]
    for direction, kind in (("c2s", "send"), ("s2c", "receive")):
        want = [
            truth_payload(m) for m in truth["messages"] if m["dir"] == direction and m["opcode"] in ("text", "binary")
        ]
        got = [hashlib.sha256(_bytes(m)).hexdigest() for m in sent if m["type"] == kind]
        assert got == want
    opcodes = {m["opcode"] for m in entry["_webSocketMessages"]}
    assert {1, 2, 8, 9, 10} <= opcodes


def _bytes(m: dict[str, Any]) -> bytes:
    return m["data"].encode() if m["opcode"] == 1 else base64.b64decode(m["data"])


def test_a_refused_upgrade_keeps_its_status_and_a_filter_selects_entries() -> None:
    har = har_of("rejected.pcap")
    statuses = {e["response"]["status"] for e in har["log"]["entries"]}
    assert statuses and 101 not in statuses
    many = har_of("websockets_many.pcap")
    some = har_of("websockets_many.pcap", "session.client.port == " + many["log"]["entries"][1]["connection"])
    assert len(many["log"]["entries"]) > 1 and len(some["log"]["entries"]) == 1
    assert some["log"]["entries"][0] == many["log"]["entries"][1]


def test_mid_stream_and_unanswered_sessions_still_make_entries() -> None:
    summary = session_of(REQUEST, None)
    entry = har_entry(summary, [], None)
    assert entry["response"]["status"] == 0 and entry["response"]["headersSize"] == -1
    assert entry["request"]["url"] == "ws://example.com:8080/chat?room=1"
    assert entry["request"]["cookies"] == []
    mid = har_entry(
        session_of(REQUEST, None, handshake=session_of(REQUEST, None).handshake.__class__(None, None)), [], None
    )
    assert mid["request"]["url"] == "ws://[2001:db8::1]:8080/" and mid["request"]["headersSize"] == -1
    assert mid["serverIPAddress"] == "2001:db8::1"
    jsonschema.validate(
        {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [entry, mid]}}, SCHEMA
    )


def test_cookies_of_request_and_response() -> None:
    request = REQUEST.replace(b"\r\n\r\n", b"\r\nCookie: a=1; b=two\r\n\r\n")
    response = RESPONSE.replace(b"\r\n\r\n", b"\r\nSet-Cookie: s=x; Path=/; HttpOnly; Secure\r\n\r\n")
    entry = har_entry(session_of(request, response), [], 2.0)
    assert entry["request"]["cookies"] == [{"name": "a", "value": "1"}, {"name": "b", "value": "two"}]
    assert entry["response"]["cookies"] == [{"name": "s", "value": "x", "path": "/", "httpOnly": True, "secure": True}]
    assert entry["timings"]["wait"] == 1000.0


def test_started_date_time() -> None:
    assert har_time(1700000000.1234) == "2023-11-14T22:13:20.123Z"


def test_binary_and_control_payloads_are_base64() -> None:
    events = decode_file(CAPTURES / "websockets_basic.pcap")
    msgs = [e for e in events if isinstance(e, Message)]
    (entry,) = har_of("websockets_basic.pcap")["log"]["entries"]
    for m, h in zip(msgs, entry["_webSocketMessages"], strict=True):
        assert _bytes(h) == m.payload
        assert h["time"] == m.ts
