"""Every finding wsinspect can report.

An Issue's value is the short string written to JSON Lines; its docstring-like
description (``Issue.X.description``) is the sentence shown to people and cites
the RFC section that the wire data violated.
"""

from __future__ import annotations

from enum import StrEnum


class Issue(StrEnum):
    description: str

    def __new__(cls, value: str, description: str) -> Issue:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    # -- TCP (reassembly) -------------------------------------------------
    TCP_GAP = (
        "tcp-gap",
        "bytes missing from the TCP stream (capture loss); decoding resumed after the hole",
    )
    TCP_BUFFER_OVERFLOW = (
        "tcp-buffer-overflow",
        "too many out-of-order bytes held for one connection; the oldest hole was given up",
    )
    TCP_OVERLAP_CONFLICT = (
        "tcp-overlap-conflict",
        "a retransmitted or overlapping TCP segment carried different bytes than the first copy;"
        " the first copy was kept",
    )

    # -- HTTP Upgrade handshake (RFC 6455 section 4) ----------------------
    MID_STREAM = (
        "mid-stream",
        "the capture starts after the handshake; frames were decoded without it",
    )
    REQUEST_NOT_UPGRADE = (
        "request-invalid",
        "the Upgrade request is not a GET of HTTP/1.1 with Host and 'Connection: Upgrade' (RFC 6455 4.1)",
    )
    NO_101 = (
        "upgrade-without-101",
        "no 101 Switching Protocols response to the Upgrade request (RFC 6455 4.1)",
    )
    UPGRADE_NOT_REQUESTED = (
        "upgrade-not-requested",
        "a 101 response switched to WebSocket a request that did not ask for it (RFC 9110 15.2.2)",
    )
    FRAMES_BEFORE_101 = (
        "frames-before-101",
        "the client sent data after its Upgrade request before the 101 response (RFC 6455 4.1)",
    )
    RESPONSE_NOT_UPGRADE = (
        "response-missing-upgrade",
        "the 101 response lacks 'Upgrade: websocket' or 'Connection: Upgrade' (RFC 6455 4.1)",
    )
    ACCEPT_MISSING = (
        "accept-missing",
        "the 101 response has no Sec-WebSocket-Accept header (RFC 6455 4.1)",
    )
    ACCEPT_MISMATCH = (
        "accept-mismatch",
        "Sec-WebSocket-Accept is not base64(SHA-1(key + GUID)) (RFC 6455 4.2.2)",
    )
    KEY_INVALID = (
        "key-invalid",
        "Sec-WebSocket-Key is missing or not 16 bytes base64-encoded (RFC 6455 4.1)",
    )
    VERSION_INVALID = (
        "version-invalid",
        "Sec-WebSocket-Version is missing or not 13 (RFC 6455 4.1)",
    )
    SUBPROTOCOL_NOT_OFFERED = (
        "subprotocol-not-offered",
        "the server selected a subprotocol the client did not offer (RFC 6455 4.1)",
    )
    EXTENSION_NOT_OFFERED = (
        "extension-not-offered",
        "the server accepted an extension the client did not offer (RFC 6455 9.1)",
    )
    EXTENSION_PARAMS_INVALID = (
        "extension-params-invalid",
        "malformed or contradictory extension parameters (RFC 7692 7.1)",
    )
    HTTP_MALFORMED = (
        "http-malformed",
        "a header line of the Upgrade request or response is malformed; it was read leniently (RFC 9112 5.1)",
    )

    # -- Frames (RFC 6455 section 5) --------------------------------------
    CLIENT_UNMASKED = (
        "client-frame-unmasked",
        "a client frame is not masked (RFC 6455 5.1)",
    )
    SERVER_MASKED = (
        "server-frame-masked",
        "a server frame is masked (RFC 6455 5.1)",
    )
    RSV_WITHOUT_EXTENSION = (
        "rsv-without-extension",
        "an RSV bit is set but no extension defining it was negotiated (RFC 6455 5.2)",
    )
    RESERVED_OPCODE = (
        "reserved-opcode",
        "the frame uses a reserved opcode (RFC 6455 5.2)",
    )
    CONTROL_TOO_LONG = (
        "control-frame-too-long",
        "a control frame's payload exceeds 125 bytes (RFC 6455 5.5)",
    )
    CONTROL_FRAGMENTED = (
        "control-frame-fragmented",
        "a control frame has FIN clear (RFC 6455 5.5)",
    )
    CONTROL_COMPRESSED = (
        "control-frame-compressed",
        "RSV1 is set on a control frame (RFC 7692 6.1)",
    )
    CONTINUATION_WITHOUT_MESSAGE = (
        "continuation-without-message",
        "a continuation frame arrived with no fragmented message in progress (RFC 6455 5.4)",
    )
    MESSAGE_INTERRUPTED = (
        "message-interrupted",
        "a new data frame started while a fragmented message was in progress (RFC 6455 5.4)",
    )
    NON_MINIMAL_LENGTH = (
        "non-minimal-length",
        "the payload length is not encoded in the minimal number of bytes (RFC 6455 5.2)",
    )
    LENGTH_TOP_BIT = (
        "length-top-bit-set",
        "the most significant bit of a 64-bit payload length is set (RFC 6455 5.2)",
    )
    FRAME_TRUNCATED = (
        "frame-truncated",
        "the stream ended (or hit a gap) in the middle of a frame",
    )
    DATA_AFTER_CLOSE = (
        "frame-after-close",
        "a frame was sent after this side's Close frame (RFC 6455 5.5.1)",
    )
    INVALID_UTF8 = (
        "invalid-utf8",
        "a text message is not valid UTF-8 (RFC 6455 5.6, 8.1)",
    )
    CLOSE_REASON_INVALID_UTF8 = (
        "close-reason-invalid-utf8",
        "the close reason is not valid UTF-8 (RFC 6455 5.5.1)",
    )
    CLOSE_PAYLOAD_ONE_BYTE = (
        "close-payload-one-byte",
        "a Close frame payload of exactly one byte (RFC 6455 5.5.1)",
    )
    CLOSE_CODE_INVALID = (
        "close-code-invalid",
        "a close code that must not be sent on the wire (RFC 6455 7.4.1, 7.4.2)",
    )
    MESSAGE_INCOMPLETE = (
        "message-incomplete",
        "the stream ended while a fragmented message was still in progress",
    )

    # -- permessage-deflate (RFC 7692) ------------------------------------
    CONTINUATION_COMPRESSED = (
        "continuation-compressed",
        "RSV1 is set on a continuation frame; permessage-deflate sets it on the first frame only (RFC 7692 6.1)",
    )
    INFLATE_FAILED = (
        "inflate-failed",
        "the compressed payload could not be inflated (RFC 7692 7.2.2)",
    )
    INFLATE_CONTEXT_LOST = (
        "inflate-context-lost",
        "an earlier compressed message in this direction was lost, so this one cannot be inflated (RFC 7692 7.2.3)",
    )
    MESSAGE_TOO_LARGE = (
        "message-too-large",
        "the message exceeds --max-message-size; its payload was cut",
    )
    EXTENSION_NOT_DECODED = (
        "extension-not-decoded",
        "the negotiated extension transforms payloads in a way wsinspect does not decode",
    )

    # -- connection health (health.py) -------------------------------------
    PING_UNANSWERED = (
        "ping-unanswered",
        "a Ping got no Pong with its payload although the peer had time to answer (RFC 6455 5.5.2, 5.5.3)",
    )
    CLOSE_UNANSWERED = (
        "close-unanswered",
        "a Close frame was never answered with a Close before the connection ended (RFC 6455 5.5.1, 7.1.2)",
    )
    ENDED_AFTER_IDLE = (
        "ended-after-idle",
        "the connection ended without a Close frame after a long idle gap, as proxy and load-balancer idle"
        " timeouts end it; the application sees 1006 (RFC 6455 7.1.5)",
    )
