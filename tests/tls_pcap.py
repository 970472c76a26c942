"""Just enough capture reading for test_tls.py to feed tls.py the TCP streams of the TLS captures, independent of
wsinspect's own capture and TCP layers (which join tls.py later): pcap through dpkt, pcapng through a small block
walker that also returns the key log of Decryption Secrets Blocks (pcapng 4.7, secrets type ``TLSK``)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dpkt

CLIENT, SERVER = 0, 1
BLOCK_EPB, BLOCK_DSB = 6, 10
SECRETS_TLS = 0x544C534B  # "TLSK"


def pcapng_blocks(data: bytes) -> list[tuple[int, bytes]]:
    """(block type, body) of every block of a little-endian pcapng file (what editcap and tcpdump write here)."""
    blocks, at = [], 0
    while at + 12 <= len(data):
        kind, size = struct.unpack_from("<II", data, at)
        blocks.append((kind, data[at + 8 : at + size - 4]))
        at += size
    return blocks


def frames(path: Path) -> tuple[list[bytes], bytes]:
    """(Ethernet frames, key log text from Decryption Secrets Blocks)."""
    data = path.read_bytes()
    if path.suffix != ".pcapng":
        with path.open("rb") as f:
            return [bytes(buf) for _, buf in dpkt.pcap.Reader(f)], b""
    packets, secrets = [], b""
    for kind, body in pcapng_blocks(data):
        if kind == BLOCK_EPB:
            caplen = struct.unpack_from("<I", body, 12)[0]
            packets.append(body[20 : 20 + caplen])
        elif kind == BLOCK_DSB:
            secrets_type, size = struct.unpack_from("<II", body)
            if secrets_type == SECRETS_TLS:
                secrets += body[8 : 8 + size]
    return packets, secrets


def connections(path: Path) -> list[tuple[str, list[tuple[int, bytes]]]]:
    """Each TCP connection (in SYN order) as its client's ip:port and its payloads in capture order, direction
    0 = client; retransmitted bytes dropped (the captures are checked complete when made)."""
    found: dict[tuple[str, str], tuple[str, list[tuple[int, bytes]], dict[int, int]]] = {}
    for buf in frames(path)[0]:
        ip = dpkt.ethernet.Ethernet(buf).data
        family = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
        tcp = ip.data
        src = f"{socket.inet_ntop(family, ip.src)}:{tcp.sport}"
        dst = f"{socket.inet_ntop(family, ip.dst)}:{tcp.dport}"
        if tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
            found[(src, dst)] = (src, [], {CLIENT: tcp.seq + 1})
            continue
        if tcp.flags & dpkt.tcp.TH_SYN:
            found[(dst, src)][2][SERVER] = tcp.seq + 1
            continue
        if not tcp.data:
            continue
        key, d = ((src, dst), CLIENT) if (src, dst) in found else ((dst, src), SERVER)
        _, segments, next_seq = found[key]
        offset = (next_seq[d] - tcp.seq) % (1 << 32)
        if offset < len(tcp.data):
            segments.append((d, bytes(tcp.data[offset:])))
            next_seq[d] = (tcp.seq + len(tcp.data)) % (1 << 32)
    return [(client, segments) for client, segments, _ in found.values()]
