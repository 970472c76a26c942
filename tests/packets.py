"""Build real-looking TCP conversations packet by packet (dpkt), for edge cases that
no real peer sends. Real traffic lives in captures/."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

from tests.wsframes import encode_frame
from wsinspect.http import accept_key
from wsinspect.packet import LINKTYPE_ETHERNET, RawPacket

KEY = b"\x11\x22\x33\x44"
WS_KEY = base64.b64encode(hashlib.md5(b"wsinspect").digest()).decode()


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = False) -> bytes:
    """A frame, masked with KEY when ``mask`` (tests.wsframes.encode_frame)."""
    return encode_frame(opcode, payload, fin=fin, rsv=rsv, key=KEY if mask else None)


def upgrade_request(path: str = "/ws", extensions: str | None = None, protocols: str | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: example.test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {WS_KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade_response(extensions: str | None = None, protocol: str | None = None, accept: str | None = None) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept or accept_key(WS_KEY)}",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Flow:
    """One TCP connection between a client and a server, as Ethernet frames."""

    client: tuple[str, int] = ("10.0.0.1", 40000)
    server: tuple[str, int] = ("10.0.0.2", 8080)
    isn: tuple[int, int] = (1000, 5000)
    ts: float = 1_700_000_000.0
    packets: list[RawPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seq = [self.isn[0], self.isn[1]]

    def _packet(self, d: int, flags: int, payload: bytes = b"", seq: int | None = None) -> RawPacket:
        src, dst = (self.client, self.server) if d == 0 else (self.server, self.client)
        tcp = dpkt.tcp.TCP(
            sport=src[1],
            dport=dst[1],
            seq=(self.seq[d] if seq is None else seq) & 0xFFFFFFFF,
            ack=self.seq[1 - d] & 0xFFFFFFFF,
            flags=flags,
            data=payload,
        )
        v6 = ":" in src[0]
        if v6:
            ip: dpkt.Packet = dpkt.ip6.IP6(
                src=socket.inet_pton(socket.AF_INET6, src[0]),
                dst=socket.inet_pton(socket.AF_INET6, dst[0]),
                nxt=6,
                hlim=64,
                data=tcp,
                plen=len(bytes(tcp)),
            )
        else:
            ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=6, data=tcp)
        eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x86DD if v6 else 0x0800, data=ip)
        self.ts += 0.001
        return RawPacket(self.ts, LINKTYPE_ETHERNET, memoryview(bytes(eth)))

    def handshake(self) -> Flow:
        self.packets.append(self._packet(0, dpkt.tcp.TH_SYN))
        self.seq[0] += 1
        self.packets.append(self._packet(1, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK))
        self.seq[1] += 1
        self.packets.append(self._packet(0, dpkt.tcp.TH_ACK))
        return self

    def send(self, d: int, data: bytes, mss: int = 1448) -> list[RawPacket]:
        """Send data from the client (0) or server (1) in segments of at most mss."""
        sent = []
        for i in range(0, len(data), mss):
            chunk = data[i : i + mss]
            p = self._packet(d, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, chunk)
            self.seq[d] += len(chunk)
            sent.append(p)
        self.packets.extend(sent)
        return sent

    def c(self, data: bytes, mss: int = 1448) -> list[RawPacket]:
        return self.send(0, data, mss)

    def s(self, data: bytes, mss: int = 1448) -> list[RawPacket]:
        return self.send(1, data, mss)

    def ack(self, d: int) -> RawPacket:
        p = self._packet(d, dpkt.tcp.TH_ACK)
        self.packets.append(p)
        return p

    def fin(self) -> Flow:
        for d in (0, 1):
            self.packets.append(self._packet(d, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK))
            self.seq[d] += 1
        self.ack(0)
        return self

    def rst(self, d: int = 0) -> Flow:
        self.packets.append(self._packet(d, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK))
        return self

    def websocket(self, path: str = "/ws", extensions: str | None = None) -> Flow:
        """TCP handshake, then a valid Upgrade exchange."""
        self.handshake()
        self.c(upgrade_request(path, extensions))
        self.s(upgrade_response(extensions))
        return self


def write_pcap(path: Path, packets: Iterable[RawPacket]) -> Path:
    with path.open("wb") as f:
        w = dpkt.pcap.Writer(f, linktype=LINKTYPE_ETHERNET, nano=False)
        for p in packets:
            w.writepkt(bytes(p.data), ts=p.ts)
    return path
