"""HAR 1.2 export of WebSocket sessions, as Chrome DevTools writes them.

One entry per session: the Upgrade request and its response (start lines, headers,
cookies, query string, head sizes), timings from the capture, and Chrome's
extensions for WebSockets, ``"_resourceType": "websocket"`` and
``"_webSocketMessages": [{"type": "send"|"receive", "time": epoch seconds,
"opcode": n, "data": text or base64}]``, which DevTools and HAR viewers load.

Pure: the entries are built from the core's events; the CLI writes the file.
What a capture cannot tell is written as HAR says to: -1 for a size or a timing
that is unknown, status 0 when no response was seen. A session whose request is
not in the capture (joined mid-stream) gets the URL of its server address.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wsinspect import __version__
from wsinspect.http import HttpHead
from wsinspect.messages import Message
from wsinspect.session import Event, SessionSummary, SessionUpgraded
from wsinspect.vocab import Direction


def har_time(ts: float) -> str:
    """ISO 8601 with milliseconds, in UTC, as HAR's startedDateTime."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _headers(head: HttpHead | None) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in head.headers] if head else []


def _cookies(head: HttpHead | None) -> list[dict[str, Any]]:
    """Cookie (RFC 6265 5.4) of a request; Set-Cookie (RFC 6265 4.1) of a response."""
    if head is None:
        return []
    cookies: list[dict[str, Any]] = []
    if not head.is_response:
        for value in (v for k, v in head.headers if k.lower() == "cookie"):
            for pair in value.split(";"):
                name, eq, val = pair.strip().partition("=")
                if eq and name:
                    cookies.append({"name": name, "value": val})
        return cookies
    for value in (v for k, v in head.headers if k.lower() == "set-cookie"):
        first, *attributes = value.split(";")
        name, eq, val = first.strip().partition("=")
        if not (eq and name):
            continue
        cookie: dict[str, Any] = {"name": name, "value": val}
        for attribute in attributes:
            key, _, arg = attribute.strip().partition("=")
            key = key.lower()
            if key in ("path", "domain", "expires"):
                cookie[key] = arg
            elif key == "httponly":
                cookie["httpOnly"] = True
            elif key == "secure":
                cookie["secure"] = True
        cookies.append(cookie)
    return cookies


def _url(summary: SessionSummary, secure: bool) -> str:
    scheme = "wss" if secure else "ws"
    target = summary.handshake.path or "/"
    if "://" in target:  # absolute-form (RFC 9112 3.2.2), as sent to a proxy
        parts = urlsplit(target)
        return parts._replace(scheme=scheme).geturl()
    host = summary.handshake.host or summary.server
    return f"{scheme}://{host}{target if target.startswith('/') else '/' + target}"


def _message(m: Message) -> dict[str, Any]:
    data = m.text if m.opcode == 1 and m.text is not None else base64.b64encode(m.payload).decode("ascii")
    return {"type": "send" if m.dir == Direction.C2S else "receive", "time": m.ts, "opcode": m.opcode, "data": data}


def har_entry(summary: SessionSummary, messages: Sequence[Message], upgraded: float | None) -> dict[str, Any]:
    """The HAR entry of a session; ``upgraded``: when its response arrived (the
    SessionUpgraded event's time), None when the capture has none."""
    hs = summary.handshake
    request, response = hs.request, hs.response
    # TLS comes with the wss issue: a session that has it was wss://.
    secure = getattr(summary, "tls", None) is not None
    url = _url(summary, secure)
    wait = max(0.0, (upgraded - summary.start) * 1000) if upgraded is not None else 0.0
    server_ip = summary.server.rpartition(":")[0].strip("[]")
    status_line = response.start_line.split(" ", 2) if response else []
    return {
        "startedDateTime": har_time(summary.start),
        "time": wait,
        "request": {
            "method": request.method if request else "GET",
            "url": url,
            "httpVersion": request.start_line.rsplit(" ", 1)[-1] if request else "",
            "cookies": _cookies(request),
            "headers": _headers(request),
            "queryString": [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)],
            "headersSize": len(request.raw) if request else -1,
            "bodySize": 0 if request else -1,
        },
        "response": {
            "status": hs.status or 0,
            "statusText": status_line[2] if len(status_line) > 2 else "",
            "httpVersion": status_line[0] if status_line else "",
            "cookies": _cookies(response),
            "headers": _headers(response),
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": (response.get("location") or "") if response else "",
            "headersSize": len(response.raw) if response else -1,
            "bodySize": 0 if response else -1,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": wait, "receive": 0},
        "serverIPAddress": server_ip,
        # The client's port names the TCP connection, as Chrome's connection id does.
        "connection": summary.client.rpartition(":")[2],
        "_resourceType": "websocket",
        "_webSocketMessages": [_message(m) for m in messages],
    }


class HarCollector:
    """Collects the events of a read into HAR entries, in session order.

    Give it the events a Selection let through: each session's messages are held
    until its SessionSummary (a HAR file is written whole at the end anyway).
    """

    def __init__(self) -> None:
        self._messages: dict[int, list[Message]] = {}
        self._upgraded: dict[int, float] = {}
        self._entries: dict[int, dict[str, Any]] = {}

    def feed(self, events: Iterable[Event]) -> None:
        for ev in events:
            if ev.__class__ is Message:
                m: Message = ev
                self._messages.setdefault(m.session, []).append(m)
            elif isinstance(ev, SessionUpgraded):
                self._upgraded[ev.session] = ev.ts
            elif isinstance(ev, SessionSummary):
                upgraded = self._upgraded.pop(ev.session, None)
                self._entries[ev.session] = har_entry(ev, self._messages.pop(ev.session, []), upgraded)

    def har(self) -> dict[str, Any]:
        """The HAR document of every session ended so far."""
        return {
            "log": {
                "version": "1.2",
                "creator": {"name": "wsinspect", "version": __version__},
                "pages": [],
                "entries": [self._entries[n] for n in sorted(self._entries)],
            }
        }


def dumps(har: dict[str, Any]) -> bytes:
    """The HAR file's bytes: UTF-8 JSON, indented as browsers write it."""
    import orjson

    return orjson.dumps(har, option=orjson.OPT_INDENT_2) + b"\n"
