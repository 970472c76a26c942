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
    HTTP_HEAD_TOO_LONG = (
        "http-head-too-long",
        "the Upgrade request or response head is longer than servers accept (64 KiB); it was read all the same"
        " (RFC 9112 2.3, RFC 9110 15.5.14, 15.5.20)",
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

    # -- TLS (tls.py: RFC 8446, RFC 5246) ---------------------------------
    TLS_NOT_DECRYPTED = (
        "tls-not-decrypted",
        "a TLS connection (or one direction of it) was not decrypted; its reason says why (no key in the key log,"
        " unsupported version or cipher, bytes lost before the keys, a capture starting mid-TLS)",
    )
    TLS_DECRYPT_FAILED = (
        "tls-decrypt-failed",
        "a TLS record did not authenticate under the logged key (RFC 8446 5.2, RFC 5246 6.2.3);"
        " its content was dropped",
    )
    TLS_RECORD_MALFORMED = (
        "tls-record-malformed",
        "bytes that are not a TLS record header: unknown content type, wrong version or a length over 2^14+2048"
        " (RFC 5246 6.2.1-6.2.3, RFC 8446 5.1-5.2); decryption resumed at the next record",
    )
    TLS_RECORD_TRUNCATED = (
        "tls-record-truncated",
        "the stream ended in the middle of a TLS record (RFC 5246 6.2)",
    )
    TLS_GAP = (
        "tls-gap",
        "bytes of the TLS stream are missing (capture loss); decryption resumed at the next whole record",
    )
    TLS_HANDSHAKE_MALFORMED = (
        "tls-handshake-malformed",
        "a TLS handshake message does not parse (RFC 8446 4, RFC 5246 7.4)",
    )
    TLS_ALERT = (
        "tls-alert",
        "a TLS error alert was sent (RFC 8446 6.2, RFC 5246 7.2.2)",
    )
    TLS_EARLY_DATA_SKIPPED = (
        "tls-early-data-skipped",
        "0-RTT early data was not decrypted: rejected by the server or its secret not logged (RFC 8446 4.2.10)",
    )

    # -- HTTP/2 (h2.py: RFC 9113, HPACK RFC 7541, WebSockets over HTTP/2 RFC 8441) ------
    H2_PREFACE_INVALID = (
        "h2-preface-invalid",
        "the client's first bytes are not the HTTP/2 connection preface (RFC 9113 3.4)",
    )
    H2_SETTINGS_NOT_FIRST = (
        "h2-settings-not-first",
        "a peer's first HTTP/2 frame is not SETTINGS (RFC 9113 3.4)",
    )
    H2_FRAME_MALFORMED = (
        "h2-frame-malformed",
        "an HTTP/2 frame violates its definition (RFC 9113 4.1, 6); it was skipped",
    )
    H2_FRAME_TOO_LARGE = (
        "h2-frame-too-large",
        "an HTTP/2 frame is longer than the receiver's SETTINGS_MAX_FRAME_SIZE (RFC 9113 4.2)",
    )
    H2_CONTINUATION_EXPECTED = (
        "h2-continuation-expected",
        "a header block was interrupted by a frame other than its CONTINUATION (RFC 9113 6.10)",
    )
    H2_HEADER_LIST_TOO_LARGE = (
        "h2-header-list-too-large",
        "a header block exceeds the size bound (HPACK bomb or oversized headers, RFC 7541 7.3); it was not decoded",
    )
    H2_HPACK_FAILED = (
        "h2-hpack-failed",
        "a header block could not be decoded (RFC 7541); later headers of that peer may be wrong",
    )
    H2_HPACK_STATE_LOST = (
        "h2-hpack-state-lost",
        "header blocks were missed (the capture starts after the preface, or a TCP gap):"
        " the HPACK dynamic table is incomplete and decoded headers may be wrong (RFC 7541 2.3.2)",
    )
    H2_CONNECT_WITHOUT_SETTING = (
        "h2-connect-without-setting",
        "an extended CONNECT was sent without the server's SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 3, 4)",
    )
    H2_CONNECT_INVALID = (
        "h2-connect-invalid",
        "an extended CONNECT lacks :scheme, :path or :authority, or :protocol is used without CONNECT (RFC 8441 4)",
    )
    H2_FLOW_CONTROL_EXCEEDED = (
        "h2-flow-control-exceeded",
        "DATA beyond the flow-control window the receiver granted (RFC 9113 5.2, 6.9.1)",
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
