"""JSON Lines records: the documented contract that scripts and jq read.

One object per message, per session (when it ends) and, with --frames, per frame.
Encoding uses orjson: stdlib json costs more per record than all the parsing
before it.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from wsinspect.frames import Frame, close_code_name
from wsinspect.messages import Message
from wsinspect.session import SessionSummary, TlsUndecrypted
from wsinspect.vocab import Direction, opcode_label

# Directions as plain strings: orjson takes 2 us more to write an enum member than a
# str, and hashing one runs Enum.__hash__ in Python; an identity test costs neither.
_C2S = Direction.C2S


def message_record(m: Message) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "message",
        "session": m.session,
        "ts": m.ts,
        "dir": "c2s" if m.dir is _C2S else "s2c",
        "opcode": opcode_label(m.opcode),
        "frames": len(m.frames),
        "masked": m.masked,
        "compressed": m.compressed,
        "length": len(m.payload),
        "wire_length": m.wire_length,
    }
    if m.text is not None:
        record["text"] = m.text
    else:
        record["data"] = base64.b64encode(m.payload).decode("ascii")
    record["close_code"] = m.close_code
    record["close_reason"] = m.close_reason
    if m.close_code is not None:
        record["close_name"] = close_code_name(m.close_code)
    record["complete"] = m.complete
    record["packets"] = m.packets
    record["issues"] = m.issues
    if m.rtt is not None:
        record["rtt"] = m.rtt  # a pong that answers a ping: its round trip, seconds
    return record


def frame_record(m: Message, f: Frame) -> dict[str, Any]:
    return {
        "type": "frame",
        "session": m.session,
        "ts": f.ts,
        "dir": "c2s" if m.dir is _C2S else "s2c",
        "fin": f.fin,
        "rsv": [bool(f.rsv & 4), bool(f.rsv & 2), bool(f.rsv & 1)],
        "opcode": opcode_label(f.opcode),
        "masked": f.masked,
        "mask_key": f.masking_key.hex() if f.masking_key else None,
        "header_length": f.header_length,
        "payload_length": f.length,
        "packets": f.packets,
        "issues": f.issues,
    }


def session_record(s: SessionSummary) -> dict[str, Any]:
    hs = s.handshake
    close = None
    if s.close is not None:
        close = {"code": s.close.code, "reason": s.close.reason, "initiator": s.close.initiator}
    record: dict[str, Any] = {
        "type": "session",
        "session": s.session,
        "client": s.client,
        "server": s.server,
        "host": hs.host,
        "path": hs.path,
        "origin": hs.origin,
        "version": hs.version,
        "subprotocol": hs.subprotocol,
        "offered_subprotocols": hs.offered_protocols,
        "extensions": [str(e) for e in hs.extensions],
        "offered_extensions": [str(e) for e in hs.offered_extensions],
        "status": hs.status,
        "accept_valid": hs.accept_valid,
        "messages": s.messages[0] + s.messages[1],
        "messages_c2s": s.messages[0],
        "messages_s2c": s.messages[1],
        "bytes_c2s": s.bytes[0],
        "bytes_s2c": s.bytes[1],
        "wire_bytes_c2s": s.wire_bytes[0],
        "wire_bytes_s2c": s.wire_bytes[1],
        "start": s.start,
        "end": s.end,
        "duration": s.duration,
        "close": close,
        "ended_by": s.ended_by,
        "mid_stream": s.mid_stream,
        "issues": s.issues,
        "issue_count": s.issue_count,
        "http_version": s.http_version,
        "stream": s.stream,
        "tls": tls_fields(s),
    }
    # Connection health (health.py): "termination" and "heartbeat", null for a
    # session that never became WebSocket.
    record.update(s.health.record() if s.health is not None else _NO_HEALTH)
    return record


_NO_HEALTH = {"termination": None, "heartbeat": None}


# -- TLS (wss://) --------------------------------------------------------------


def tls_fields(s: SessionSummary) -> dict[str, Any] | None:
    """A session's "tls" object: what the TLS under it negotiated; null for ws:// (cleartext)."""
    info = s.tls
    if info is None:
        return None
    return {"version": info.version, "cipher": info.cipher, "sni": info.sni, "alpn": info.alpn, "decrypted": True}


def tls_record(ev: TlsUndecrypted) -> dict[str, Any]:
    """A TLS connection that could not be decrypted, and why ("reason")."""
    info = ev.info
    return {
        "type": "tls",
        "client": ev.client,
        "server": ev.server,
        "sni": info.sni,
        "alpn": info.alpn,
        "version": info.version,
        "cipher": info.cipher,
        "decrypted": False,
        "reason": info.reason,
    }


def dumps(record: dict[str, Any]) -> bytes:
    """One JSON line, newline included."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def dumps_parts(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """dumps() around the record's session number: every record starts with "type"
    and "session", and the number goes between the two parts (read -j numbers
    sessions afterwards). Consumes ``record``."""
    kind = record.pop("type")
    del record["session"]
    head = _HEADS.get(kind)
    if head is None:
        head = _HEADS[kind] = b'{"type":%s,"session":' % orjson.dumps(kind)
    return head, b"," + dumps(record)[1:]


_HEADS: dict[str, bytes] = {}  # dumps_parts' heads, by record type
