"""HTTP/1.1 Upgrade handshake (RFC 6455 section 4)."""

from __future__ import annotations

from wsinspect.http import (
    Extension,
    accept_key,
    check_handshake,
    is_upgrade_request,
    looks_like_http,
    parse_extensions,
    parse_head,
)
from wsinspect.issues import Issue

# RFC 6455 1.3: the sample key and the accept value it must produce.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

REQUEST = (
    b"GET /chat?x=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"sec-websocket-extensions: x-webkit-deflate-frame\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n\r\n"
)


def test_accept_key_rfc_sample() -> None:
    assert accept_key(SAMPLE_KEY) == SAMPLE_ACCEPT


def test_parse_head_whole_piecewise_and_with_trailing_bytes() -> None:
    head, used, ok = parse_head(REQUEST + b"\x81\x05Hello")
    assert ok and head is not None and used == len(REQUEST)
    assert head.method == "GET" and head.target == "/chat?x=1"
    assert head.get("HOST") == "server.example.com"
    # repeated fields join with ", " (RFC 9110 5.3), case-insensitively
    assert head.get("sec-websocket-extensions") == "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"
    assert head.tokens("connection") == ["keep-alive", "upgrade"]
    assert is_upgrade_request(head)
    for i in range(len(REQUEST)):
        partial, used, ok = parse_head(REQUEST[:i])
        assert partial is None and used == 0 and ok, i


def test_not_http_is_reported_not_raised() -> None:
    assert parse_head(b"\x16\x03\x01\x02\x00") == (None, 0, False)
    assert parse_head(b"GET /x HTTP/1.2\r\nHost: x\r\n\r\n") == (None, 0, False)
    assert not looks_like_http(b"\x81\x05Hello")
    assert looks_like_http(b"GET / HTTP/1.1") and looks_like_http(b"HTTP/1.1 200 OK")


def test_malformed_field_lines_are_read_leniently_and_marked() -> None:
    head, used, ok = parse_head(b"GET / HTTP/1.1\r\nHost : x\r\nbad line\r\nUpgrade: websocket\r\n\r\n")
    assert ok and head is not None and head.malformed and used > 0
    # whitespace before the colon is dropped (RFC 9112 5.1), a line without one skipped
    assert head.headers == (("Host", "x"), ("Upgrade", "websocket"))
    clean, _, _ = parse_head(REQUEST)
    assert clean is not None and not clean.malformed


def test_bare_lf_and_folded_headers() -> None:
    head, used, ok = parse_head(b"HTTP/1.1 101 OK\nUpgrade: websocket\nX-Long: a\n  b\n\nrest")
    assert ok and head is not None and head.status == 101
    assert head.get("x-long") == "a b" and used == len(b"HTTP/1.1 101 OK\nUpgrade: websocket\nX-Long: a\n  b\n\n")


def test_body_length_rules() -> None:
    def head(raw: bytes):  # type: ignore[no-untyped-def]
        h, _, _ = parse_head(raw)
        assert h is not None
        return h

    assert head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").body_length() == 12
    assert head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").body_length() == -1
    assert head(b"HTTP/1.1 200 OK\r\n\r\n").body_length() is None  # until close
    assert head(b"HTTP/1.1 204 No Content\r\n\r\n").body_length() == 0
    assert head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").body_length("HEAD") == 0
    assert head(b"HTTP/1.1 200 Connection established\r\n\r\n").body_length("CONNECT") == 0  # a tunnel
    assert head(b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\n").body_length("CONNECT") == 3
    assert head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body_length() == 0


def test_extensions_parsing() -> None:
    exts = parse_extensions('permessage-deflate; client_max_window_bits; server_max_window_bits="10", foo')
    assert exts == [
        Extension("permessage-deflate", (("client_max_window_bits", None), ("server_max_window_bits", "10"))),
        Extension("foo", ()),
    ]
    assert str(exts[0]) == "permessage-deflate; client_max_window_bits; server_max_window_bits=10"
    assert parse_extensions(None) == [] and parse_extensions("") == []


def test_valid_handshake() -> None:
    req, _, _ = parse_head(REQUEST)
    resp, _, _ = parse_head(RESPONSE)
    hs = check_handshake(req, resp)
    assert hs.issues == ()
    assert hs.accept_valid is True and hs.accept_expected == SAMPLE_ACCEPT
    assert (hs.host, hs.path, hs.origin, hs.version) == ("server.example.com", "/chat?x=1", "http://example.com", "13")
    assert hs.offered_protocols == ["chat", "superchat"] and hs.subprotocol == "chat"
    assert [e.name for e in hs.offered_extensions] == ["permessage-deflate", "x-webkit-deflate-frame"]
    assert [str(e) for e in hs.extensions] == ["permessage-deflate; client_max_window_bits=15"]


def test_handshake_violations() -> None:
    req, _, _ = parse_head(REQUEST)
    bad_accept, _, _ = parse_head(RESPONSE.replace(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    hs = check_handshake(req, bad_accept)
    assert hs.accept_valid is False and hs.issues == (Issue.ACCEPT_MISMATCH,)
    no_upgrade, _, _ = parse_head(RESPONSE.replace(b"Upgrade: websocket\r\n", b""))
    assert Issue.RESPONSE_NOT_UPGRADE in check_handshake(req, no_upgrade).issues
    no_accept, _, _ = parse_head(RESPONSE.replace(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", b""))
    assert Issue.ACCEPT_MISSING in check_handshake(req, no_accept).issues
    other_proto, _, _ = parse_head(RESPONSE.replace(b"Protocol: chat", b"Protocol: mqtt"))
    assert Issue.SUBPROTOCOL_NOT_OFFERED in check_handshake(req, other_proto).issues
    bad_req, _, _ = parse_head(REQUEST.replace(b"Version: 13", b"Version: 8").replace(SAMPLE_KEY.encode(), b"short"))
    assert {Issue.VERSION_INVALID, Issue.KEY_INVALID} <= set(check_handshake(bad_req, None).issues)
    assert check_handshake(req, None).issues == ()
    resp, _, _ = parse_head(RESPONSE)
    for broken in (
        REQUEST.replace(b"GET ", b"POST "),
        REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"),
        REQUEST.replace(b"Host: server.example.com\r\n", b""),
        REQUEST.replace(b"Connection: keep-alive, Upgrade", b"Connection: keep-alive"),
    ):
        head, _, _ = parse_head(broken)
        assert check_handshake(head, resp).issues == (Issue.REQUEST_NOT_UPGRADE,), broken
    sloppy, _, _ = parse_head(RESPONSE.replace(b"Upgrade: websocket", b"Upgrade : websocket"))
    assert check_handshake(req, sloppy).issues == (Issue.HTTP_MALFORMED,)


def test_rejected_upgrade_has_status_and_no_accept_check() -> None:
    req, _, _ = parse_head(REQUEST)
    resp, _, _ = parse_head(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    hs = check_handshake(req, resp)
    assert hs.status == 403 and not hs.accepted and hs.accept_valid is None and hs.issues == ()
    assert hs.extensions == [] and hs.subprotocol is None


def test_hosts_and_paths_are_read_as_utf8_and_else_latin1() -> None:
    head, _, _ = parse_head("GET /ページ HTTP/1.1\r\nHost: 例え.jp\r\n\r\n".encode())
    assert head is not None and (head.target, head.get("host")) == ("/ページ", "例え.jp")
    old, _, _ = parse_head(b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert old is not None and old.target == "/café"
