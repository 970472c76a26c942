"""The tests' one WebSocket frame encoder (RFC 6455 5.2).

Its masking is its own XOR, not wsinspect.frames.unmask: masking is its own inverse,
so test data masked with the code under test could hide a bug in it.
"""

from __future__ import annotations

import struct


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte masking ``key`` (RFC 6455 5.3)."""
    n = len(payload)
    if not n:
        return b""
    stream = key * ((n >> 2) + 1)
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream[:n], "little")).to_bytes(n, "little")


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, key: bytes | None = None, form: int = 0
) -> bytes:
    """Encode a frame, masked with ``key`` if one is given; ``form`` forces the 16-bit
    (2) or 64-bit (8) length encoding (0: the shortest, as RFC 6455 5.2 asks)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    bit = 0x80 if key else 0
    if form == 8 or (form == 0 and n > 0xFFFF):
        head = bytes([b0, bit | 127]) + struct.pack("!Q", n)
    elif form == 2 or (form == 0 and n > 125):
        head = bytes([b0, bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, bit | n])
    if key:
        return head + key + mask(payload, key)
    return head + payload
