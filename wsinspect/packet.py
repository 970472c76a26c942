"""Link, IP and TCP headers: RawPacket bytes -> TCP fields (RawPacket, the link types and Segment live here).

Pure and per-packet hot: headers are unpacked with precompiled structs straight
from the capture's memoryview; nothing but TCP survives, and nothing is copied but
the flow key.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass

from wsinspect import speedups

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# The link types packet.tcp_fields decodes (12 and 14: raw IP on some BSDs). Packets
# of any other are skipped, and the reader says how many.
DECODED_LINKTYPES = frozenset(
    (
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        12,
        14,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    )
)


@dataclass(slots=True)
class RawPacket:
    """One captured packet: timestamp (epoch seconds), link type, captured bytes, and
    its number in the capture, from 1 as in Wireshark (0: not numbered by its source;
    the Inspector then counts the packets it is fed)."""

    ts: float
    linktype: int
    data: memoryview
    number: int = 0


# TCP flags (RFC 9293 3.1).
FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10
# TCP's flags fill 8 bits. Above them, the flags that tcp_fields finds (and a Segment
# carries) count the payload bytes that the capture cut off the packet (its snapshot
# length): the IP length says they were sent. flags >> CUT_SHIFT is that count.
CUT_SHIFT = 8

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)

# IPv6 extension headers that can precede TCP and share the (next, length) layout
# (RFC 8200 4): hop-by-hop, routing, destination options; fragment (fixed 8 bytes)
# and AH (length in 4-byte units) are handled apart.
IPV6_EXT = frozenset((0, 43, 60))
IPV6_FRAGMENT = 44
IPV6_AH = 51
PROTO_TCP = 6

_tcp = struct.Struct("!IIBB")  # seq, ack, data offset, flags (from byte 4)
# From byte 16 of an Ethernet frame: IPv4 total length, flags+fragment offset,
# protocol; then (no IP options) TCP seq, ack, data offset, flags.
_ipv4_tcp_fast = struct.Struct("!H2xH1xB14xIIBB")
_u16 = struct.Struct("!H")
_u32le = struct.Struct("<I")


@dataclass(slots=True)
class Segment:
    """A TCP segment. ``key`` names its flow and direction: src addr, dst addr, ports.
    ``payload`` is what the capture holds of its data; ``flags >> CUT_SHIFT`` more
    bytes of it were sent but cut off by the capture's snapshot length."""

    ts: float
    key: bytes
    seq: int
    ack: int
    flags: int
    payload: memoryview


# What tcp_fields finds: flow key, seq, ack, flags, and where the payload starts and
# ends in the packet as sent. A tuple, not an object: this runs for every packet.
TcpFields = tuple[bytes, int, int, int, int, int]


def _tcp_fields_py(linktype: int, data: memoryview) -> TcpFields | None:
    """Decode a captured packet down to TCP; None for anything else (skipped cheaply).
    The reference for _speedups.tcp_fields, and its fallback for all but the
    common Ethernet/IPv4/TCP case.

    A packet whose payload the capture cut (snapshot length) ends past ``len(data)``,
    where its IP length says, and its flags count the bytes cut (CUT_SHIFT): the
    payload present is ``data[start:end]`` all the same."""
    n = len(data)
    if linktype == LINKTYPE_ETHERNET and n >= 54 and data[12] == 0x08 and data[13] == 0 and data[14] == 0x45:
        # Fast path, most packets: Ethernet, IPv4 without options, then TCP. The
        # addresses (26..34) and ports (34..38) are contiguous: one slice is the key.
        total, frag, proto, seq, ack, doff, flags = _ipv4_tcp_fast.unpack_from(data, 16)
        if proto != PROTO_TCP or frag & 0x3FFF:
            return None
        end = 14 + total
        if end > n or end < 54:
            if end < 34:
                end = n  # as below: a total length shorter than the IP header is ignored
            elif end < 54:
                return None  # the TCP header is cut
            else:
                return _cut(data, 34, bytes(data[26:38]), seq, ack, flags, 34 + (doff >> 4) * 4, end)
        start = 34 + (doff >> 4) * 4
        if start > end or start < 54:
            return None
        return bytes(data[26:38]), seq, ack, flags, start, end
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return None
        off = 14
        ethertype = (data[12] << 8) | data[13]
    elif linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return None
        off = 20
        ethertype = (data[0] << 8) | data[1]
    elif linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return None
        off = 16
        ethertype = (data[14] << 8) | data[15]
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return None
        off = 4
        # NULL stores the AF_ value in the capturing host's byte order, LOOP in
        # network order; read it both ways. AF_INET is 2 everywhere; AF_INET6 is 10,
        # 24, 28 or 30 depending on the OS.
        family = _u32le.unpack_from(data)[0]
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        ethertype = ETH_IPV4 if family == 2 else ETH_IPV6 if family in (10, 24, 28, 30) else 0
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or linktype == 12 or linktype == 14:
        if n < 1:
            return None
        off = 0
        version = data[0] >> 4
        ethertype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0
    else:
        return None
    # 802.1Q / 802.1ad tags (TCI, then the next EtherType), after Ethernet addresses or
    # a cooked header alike: libpcap re-inserts the tag the kernel stripped in place of
    # the SLL protocol field, and an SLL2 protocol field may name a tag just the same.
    while ethertype in VLAN_TAGS and off + 4 <= n:
        ethertype = (data[off + 2] << 8) | data[off + 3]
        off += 4

    if ethertype == ETH_IPV4:
        if n < off + 20:
            return None
        ihl = (data[off] & 0x0F) * 4
        if data[off + 9] != PROTO_TCP or ihl < 20:
            return None
        # A non-first fragment (offset set) or a first one with More Fragments:
        # reassembling IP fragments is not worth it for TCP, which avoids them.
        if _u16.unpack_from(data, off + 6)[0] & 0x3FFF:
            return None
        end = off + _u16.unpack_from(data, off + 2)[0]
        # Ethernet pads short frames; the IP total length says where data ends.
        if end < off + ihl:
            end = n
        key = bytes(data[off + 12 : off + 20])
        off += ihl
    elif ethertype == ETH_IPV6:
        if n < off + 40:
            return None
        nxt = data[off + 6]
        end = off + 40 + _u16.unpack_from(data, off + 4)[0]
        key = bytes(data[off + 8 : off + 40])
        off += 40
        while nxt != PROTO_TCP:
            if off + 8 > min(end, n):
                return None
            if nxt in IPV6_EXT:
                nxt, length = data[off], (data[off + 1] + 1) * 8
            elif nxt == IPV6_FRAGMENT:
                if _u16.unpack_from(data, off + 2)[0] & 0xFFF9:
                    return None  # a fragment: not reassembled, as for IPv4
                nxt, length = data[off], 8
            elif nxt == IPV6_AH:
                nxt, length = data[off], (data[off + 1] + 2) * 4
            else:
                return None
            off += length
    else:
        return None

    if end > n:
        if off + 20 > n:
            return None
        seq, ack, doff, flags = _tcp.unpack_from(data, off + 4)
        return _cut(data, off, key + bytes(data[off : off + 4]), seq, ack, flags, off + (doff >> 4) * 4, end)
    if off + 20 > end:
        return None
    seq, ack, doff, flags = _tcp.unpack_from(data, off + 4)
    hdr = (doff >> 4) * 4
    if hdr < 20 or off + hdr > end:
        return None
    return key + bytes(data[off : off + 4]), seq, ack, flags, off + hdr, end


def _cut(
    data: memoryview, tcp: int, key: bytes, seq: int, ack: int, flags: int, start: int, end: int
) -> TcpFields | None:
    """The fields of a packet that the capture cut short of ``end``, where its IP
    length says it ends: the TCP header (at ``tcp``) must be whole, and the bytes cut
    off the payload are counted in the flags."""
    n = len(data)
    if start < tcp + 20 or start > n or start > end:
        return None
    return key, seq, ack, flags | (end - n) << CUT_SHIFT, start, end


# The one place the header parse in use is chosen (wsinspect/speedups.py says which).
tcp_fields: Callable[[int, memoryview], TcpFields | None] = _tcp_fields_py
if speedups.compiled is not None:
    speedups.compiled.set_tcp_fields_fallback(_tcp_fields_py)
    tcp_fields = speedups.compiled.tcp_fields


def shard_of(key: bytes, shards: int) -> int:
    """The shard of a TCP flow, the same for both directions: its ports' low bytes
    XORed (ephemeral client ports vary in their low byte, so flows spread evenly)."""
    return (key[-1] ^ key[-3]) % shards


# shard_of's two bytes where a reader finds them without decoding the packet: in an
# Ethernet frame carrying IPv4 without options (tcp_fields' fast path: EtherType
# 0x0800 at 12, version 4 and IHL 5 at 14), the flow key is bytes 26..38, so its
# third-to-last and last bytes are at 35 and 37. The capture readers skip another
# shard's packets with them before making any object of them.
SHARD_BYTES = (38 - 3, 38 - 1)


def reverse_key(key: bytes) -> bytes:
    """The key of the opposite direction of the same flow."""
    half = (len(key) - 4) // 2
    return key[half : 2 * half] + key[:half] + key[-2:] + key[-4:-2]


def endpoints(key: bytes) -> tuple[str, str]:
    """("ip:port", "ip:port") of the sender and receiver; IPv6 as "[addr]:port"."""
    half = (len(key) - 4) // 2
    sport, dport = struct.unpack("!HH", key[-4:])
    if half == 16:
        return f"[{_ipv6(key[:16])}]:{sport}", f"[{_ipv6(key[16:32])}]:{dport}"
    return f"{ipaddress.IPv4Address(key[:4])}:{sport}", f"{ipaddress.IPv4Address(key[4:8])}:{dport}"


def _ipv6(raw: bytes) -> str:
    """RFC 5952 text, with an IPv4-mapped address's last 32 bits dotted (5952 5),
    as inet_ntop and tshark print it."""
    address = ipaddress.IPv6Address(raw)
    mapped = address.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else str(address)
