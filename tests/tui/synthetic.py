"""A synthetic capture with many sessions of many small messages, for the TUI's scale test.

    python -m tests.tui.synthetic -o FILE [--sessions 1000] [--messages 1000]

Packets are built with struct, one WebSocket frame per TCP segment, so that a million
messages take about 100 MB and a few seconds to write. Sessions run one after another
in blocks of ``concurrency``, their messages interleaved, as on a busy server. Every
message is a small JSON text; every 50th is a binary one, every 100th a ping answered
by a pong. Client frames are masked, server frames are not; checksums are left zero
(the decoder does not check them).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import struct
import sys
import time

from tests.wsframes import encode_frame

EPOCH = 1_704_067_200
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
_RECORD = struct.Struct("<IIII")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_ETH = (
    b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00",
    b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00",
)
MASK_KEY = b"\x37\xfa\x21\x3d"


def frame(client: bool, opcode: int, payload: bytes, fin: bool = True, masked: bool | None = None) -> bytes:
    """One frame (RFC 6455 5.2): masked when the client sends it, unless told otherwise."""
    mask = client if masked is None else masked
    return encode_frame(opcode, payload, fin=fin, key=MASK_KEY if mask else None)


class _Flow:
    def __init__(self, index: int) -> None:
        client = bytes((10, 1 + index // 62_500, index // 250 % 250, 1 + index % 250))
        server = bytes((192, 0, 2, 1))
        self.ips = ((client, server), (server, client))
        port = 20000 + index % 40000
        self.ports = ((port, 80), (80, port))
        self.seq = [1000, 5000]

    def packet(self, d: int, flags: int, payload: bytes = b"") -> bytes:
        seq = self.seq[d]
        ack = self.seq[1 - d] if flags & ACK else 0
        sport, dport = self.ports[d]
        src, dst = self.ips[d]
        n = len(payload)
        ip = _IP.pack(0x45, 0, 40 + n, 0, 0x4000, 64, 6, 0, src, dst)
        tcp = _TCP.pack(sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
        self.seq[d] = (seq + n + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return b"".join((_ETH[d], ip, tcp, payload))


def _handshake(index: int, flow: _Flow) -> list[bytes]:
    key = base64.b64encode(hashlib.md5(str(index).encode()).digest())
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    request = (
        f"GET /feed/{index} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept.decode()}\r\n\r\n"
    ).encode()
    return [
        flow.packet(0, SYN),
        flow.packet(1, SYN | ACK),
        flow.packet(0, ACK),
        flow.packet(0, PSH | ACK, request),
        flow.packet(1, PSH | ACK, response),
    ]


def _message(index: int, n: int, flow: _Flow) -> list[bytes]:
    d = n & 1  # alternate: client, server, client, ...
    if n % 100 == 99:
        ping = b"p%d" % n
        return [flow.packet(0, PSH | ACK, frame(True, 9, ping)), flow.packet(1, PSH | ACK, frame(False, 10, ping))]
    if n % 50 == 49:
        payload, opcode = struct.pack("!IIQ", index, n, n * 2654435761), 2
    else:
        payload, opcode = b'{"session":%d,"seq":%d,"price":%d.%02d}' % (index, n, n % 997, n % 100), 1
    return [flow.packet(d, PSH | ACK, frame(d == 0, opcode, payload))]


def _close(flow: _Flow) -> list[bytes]:
    payload = struct.pack("!H", 1000) + b"done"
    return [
        flow.packet(0, PSH | ACK, frame(True, 8, payload)),
        flow.packet(1, PSH | ACK, frame(False, 8, payload)),
        flow.packet(1, FIN | ACK),
        flow.packet(0, FIN | ACK),
    ]


def generate(path: str, sessions: int, messages: int, concurrency: int = 20) -> int:
    """Write the capture; return how many messages (control frames included) it holds."""
    count = 0
    usec = 0
    pack = _RECORD.pack
    with open(path, "wb") as f:
        f.write(_PCAP_HEADER)
        buf: list[bytes] = []

        def emit(packets: list[bytes]) -> None:
            nonlocal usec
            for pkt in packets:
                usec += 137
                buf.append(pack(EPOCH + usec // 1_000_000, usec % 1_000_000, len(pkt), len(pkt)))
                buf.append(pkt)

        for block in range(0, sessions, concurrency):
            members = range(block, min(block + concurrency, sessions))
            flows = {i: _Flow(i) for i in members}
            for i in members:
                emit(_handshake(i, flows[i]))
            for n in range(messages):
                for i in members:
                    packets = _message(i, n, flows[i])
                    count += len(packets)
                    emit(packets)
                if len(buf) > 16384:
                    f.writelines(buf)
                    buf.clear()
            for i in members:
                count += 2
                emit(_close(flows[i]))
        f.writelines(buf)
    return count


def write_showcase(path: str) -> None:
    """A small capture with one of everything the TUI shows, for the snapshot tests:
    JSON, escape sequences, binary, fragments, ping/pong, close; and a session with
    protocol violations that ends without a close frame."""
    records: list[bytes] = []
    usec = 0

    def emit(packets: list[bytes], gap: int = 1250) -> None:
        nonlocal usec
        for pkt in packets:
            usec += gap
            records.append(_RECORD.pack(EPOCH + usec // 1_000_000, usec % 1_000_000, len(pkt), len(pkt)))
            records.append(pkt)

    chat = _Flow(1)
    emit(_handshake(1, chat))
    json_text = b'{"type": "chat", "room": 1, "body": "hi there", "tags": ["a", "b"], "n": null}'
    for d, opcode, payload in (
        (0, 1, b"hello"),
        (1, 1, b"welcome, alice"),
        (0, 1, json_text),
        (1, 2, bytes(range(256))),
        (0, 1, b"\x1b[31mred\x1b[0m\r\nbell\x07"),
        (1, 1, "héllo wörld — 你好 🌍".encode()),
        (0, 9, b"ping-payload"),
        (1, 10, b"ping-payload"),
    ):
        emit([chat.packet(d, PSH | ACK, frame(d == 0, opcode, payload))])
    parts = (b"frag-one|", b"frag-two|", b"frag-three")
    emit([chat.packet(0, PSH | ACK, frame(True, 1 if n == 0 else 0, p, fin=n == 2)) for n, p in enumerate(parts)])
    emit(_close(chat))
    raw = _Flow(2)
    emit(_handshake(2, raw))
    emit(
        [
            raw.packet(0, PSH | ACK, frame(True, 1, b"not masked", masked=False)),
            raw.packet(0, PSH | ACK, frame(True, 3, b"opcode three")),
            raw.packet(1, PSH | ACK, frame(False, 1, b"bye without a close frame")),
            raw.packet(1, FIN | ACK),
            raw.packet(0, FIN | ACK),
        ]
    )
    with open(path, "wb") as f:
        f.write(_PCAP_HEADER)
        f.writelines(records)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.tui.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--messages", type=int, default=1000, help="messages per session, before pongs and closes")
    args = p.parse_args(argv)
    start = time.perf_counter()
    count = generate(args.output, args.sessions, args.messages)
    print(f"{args.output}: {count} messages in {args.sessions} sessions, {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
