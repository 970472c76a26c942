"""packet.py: link / IP / TCP headers -> Segment, and flow keys.

Packets are built with dpkt (Ethernet, IP, IP6, TCP, SLL, SLL2) and, where dpkt has no
convenient builder (VLAN tags, NULL/LOOP headers, IPv6 extension chains), by hand
with the header fields spelled out. Each parser is fed whole packets, every prefix of
them (a packet cut by the snapshot length: None or the bytes present, never an
exception), and packets with trailing bytes (Ethernet padding) that must not count as
payload.
"""

from __future__ import annotations

import socket
import struct

import dpkt
import pytest

from wsinspect.packet import (
    ACK,
    CUT_SHIFT,
    DECODED_LINKTYPES,
    FIN,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    RST,
    SYN,
    Segment,
    endpoints,
    reverse_key,
    tcp_fields,
)

PSH = 0x08
ECE_CWR = 0xC0

SRC4 = socket.inet_pton(socket.AF_INET, "10.0.0.1")
DST4 = socket.inet_pton(socket.AF_INET, "192.168.1.200")
SRC6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
DST6 = socket.inet_pton(socket.AF_INET6, "fe80::abcd:2")
SPORT, DPORT = 40000, 8080
PORTS = struct.pack("!HH", SPORT, DPORT)
KEY4 = SRC4 + DST4 + PORTS
KEY6 = SRC6 + DST6 + PORTS
PAYLOAD = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"

MAC_DST = b"\x02\x00\x00\x00\x00\x02"
MAC_SRC = b"\x02\x00\x00\x00\x00\x01"
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8
TPID_OLD_QINQ = 0x9100

# IPv6 next-header values (IANA protocol numbers).
HOPOPTS, ROUTING, FRAGMENT, AH, DSTOPTS, NONXT, UDP, ICMP, ICMPV6 = 0, 43, 44, 51, 60, 59, 17, 1, 58
TCP = 6


# --- builders --------------------------------------------------------------------------------------------------------


def tcp(
    data: bytes = PAYLOAD,
    *,
    seq: int = 0x11223344,
    ack: int = 0xAABBCCDD,
    flags: int = ACK | PSH,
    opts: bytes = b"",
) -> bytes:
    # dpkt leaves the data offset to the caller, as it does IHL.
    segment = dpkt.tcp.TCP(
        sport=SPORT, dport=DPORT, seq=seq, ack=ack, flags=flags, off=5 + len(opts) // 4, opts=opts, data=data
    )
    return bytes(segment)


def ip4(
    payload: bytes, *, p: int = TCP, opts: bytes = b"", off: int = 0, src: bytes = SRC4, dst: bytes = DST4
) -> bytes:
    """An IPv4 packet; dpkt fills in total length and checksum. ``off`` is the raw
    flags + fragment offset field (set here: dpkt deprecates its own ``off``)."""
    packet = bytes(dpkt.ip.IP(src=src, dst=dst, p=p, ttl=64, hl=5 + len(opts) // 4, opts=opts, data=payload))
    return with_u16(packet, 6, off) if off else packet


def with_u16(data: bytes, at: int, value: int) -> bytes:
    """``data`` with the big-endian 16-bit field at ``at`` set to ``value``."""
    return data[:at] + struct.pack("!H", value) + data[at + 2 :]


def ip6(payload: bytes, *, nxt: int = TCP, src: bytes = SRC6, dst: bytes = DST6) -> bytes:
    """An IPv6 packet (dpkt leaves the payload length to the caller)."""
    return bytes(dpkt.ip6.IP6(src=src, dst=dst, nxt=nxt, hlim=64, plen=len(payload), data=payload))


def eth(payload: bytes, ethertype: int = ETH_IPV4) -> bytes:
    # The header alone: given the payload, dpkt re-parses it and trims it to the IP total length.
    return bytes(dpkt.ethernet.Ethernet(dst=MAC_DST, src=MAC_SRC, type=ethertype)) + payload


def vlan(payload: bytes, tags: list[tuple[int, int]], ethertype: int) -> bytes:
    """Ethernet with stacked tags: (TPID, TCI) each, outermost first, then the inner EtherType."""
    head = MAC_DST + MAC_SRC
    for tpid, tci in tags:
        head += struct.pack("!HH", tpid, tci)
    return head + struct.pack("!H", ethertype) + payload


def ext(nxt: int, body_len: int) -> bytes:
    """An IPv6 options-style extension header (hop-by-hop, destination, routing): next header,
    length in 8-byte units beyond the first, then PadN filling the rest."""
    total = 8 * (body_len + 1)
    return bytes([nxt, body_len, 1, total - 4]) + b"\0" * (total - 4)


def frag6(nxt: int, offset: int = 0, more: bool = False, reserved: int = 0) -> bytes:
    """IPv6 Fragment header: next header, reserved, offset (13 bits) | res (2) | M (1), identification."""
    return struct.pack("!BBHI", nxt, 0, (offset << 3) | (reserved << 1) | int(more), 0xDEADBEEF)


def check(
    seg: Segment | None, key: bytes, payload: bytes = PAYLOAD, *, flags: int = ACK | PSH, ts: float = 1.5
) -> None:
    assert seg is not None
    assert (seg.ts, seg.key, seg.seq, seg.ack, seg.flags) == (ts, key, 0x11223344, 0xAABBCCDD, flags)
    assert bytes(seg.payload) == payload


def parse_segment(ts: float, linktype: int, data: memoryview) -> Segment | None:
    """tcp_fields as the Inspector turns them into a Segment."""
    fields = tcp_fields(linktype, data)
    if fields is None:
        return None
    key, seq, ack, flags, start, end = fields
    return Segment(ts, key, seq, ack, flags, data[start:end])


def parse(linktype: int, data: bytes, ts: float = 1.5) -> Segment | None:
    return parse_segment(ts, linktype, memoryview(data))


# --- link layers -----------------------------------------------------------------------------------------------------


def test_ethernet_ipv4() -> None:
    check(parse(LINKTYPE_ETHERNET, eth(ip4(tcp()))), KEY4)


def test_ethernet_ipv6() -> None:
    check(parse(LINKTYPE_ETHERNET, eth(ip6(tcp()), ETH_IPV6)), KEY6)


def test_payload_is_a_view_not_a_copy() -> None:
    buf = memoryview(eth(ip4(tcp())))
    seg = parse_segment(0.0, LINKTYPE_ETHERNET, buf)
    assert seg is not None
    assert isinstance(seg.payload, memoryview)
    assert seg.payload.obj is buf.obj
    assert isinstance(seg.key, bytes)


@pytest.mark.parametrize(
    "tags",
    [
        [(TPID_8021Q, 0x0064)],  # 802.1Q, VLAN 100
        [(TPID_8021AD, 0x00C8), (TPID_8021Q, 0x0064)],  # QinQ: service tag 200, customer tag 100
        [(TPID_OLD_QINQ, 0x0001), (TPID_8021Q, 0x0002)],  # pre-standard QinQ TPID
        [(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)],  # three tags
    ],
    ids=["dot1q", "qinq", "9100", "three"],
)
@pytest.mark.parametrize("version", [4, 6])
def test_vlan_tags(tags: list[tuple[int, int]], version: int) -> None:
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    frame = vlan(inner, tags, ETH_IPV4 if version == 4 else ETH_IPV6)
    check(parse(LINKTYPE_ETHERNET, frame), KEY4 if version == 4 else KEY6)


def test_vlan_tag_over_arp_is_skipped() -> None:
    assert parse(LINKTYPE_ETHERNET, vlan(b"\0" * 28, [(TPID_8021Q, 5)], ETH_ARP)) is None


@pytest.mark.parametrize("version", [4, 6])
def test_linux_sll(version: int) -> None:
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    # Packet type 4 (sent by us), ARPHRD_ETHER, a 6-byte address padded to 8.
    frame = bytes(
        dpkt.sll.SLL(type=4, hrd=1, hlen=6, hdr=MAC_SRC + b"\0\0", ethtype=ETH_IPV4 if version == 4 else ETH_IPV6)
    )
    check(parse(LINKTYPE_LINUX_SLL, frame + inner), KEY4 if version == 4 else KEY6)


@pytest.mark.parametrize("version", [4, 6])
def test_linux_sll2(version: int) -> None:
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    frame = bytes(
        dpkt.sll2.SLL2(
            ethtype=ETH_IPV4 if version == 4 else ETH_IPV6, intindex=3, hrd=1, type=0, hlen=6, hdr=MAC_SRC + b"\0\0"
        )
    )
    assert len(frame) == 20
    check(parse(LINKTYPE_LINUX_SLL2, frame + inner), KEY4 if version == 4 else KEY6)


def test_sll_with_other_protocol_is_skipped() -> None:
    frame = bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=MAC_SRC + b"\0\0", ethtype=ETH_ARP))
    assert parse(LINKTYPE_LINUX_SLL, frame + b"\0" * 28) is None


def tags(pairs: list[tuple[int, int]], ethertype: int) -> bytes:
    """VLAN tags as they follow a cooked header whose protocol field names the first
    TPID: TCI, then the next TPID or the inner EtherType."""
    tpids = [tpid for tpid, _ in pairs[1:]] + [ethertype]
    return b"".join(struct.pack("!HH", tci, tpid) for (_, tci), tpid in zip(pairs, tpids, strict=True))


@pytest.mark.parametrize(
    "pairs",
    [[(TPID_8021Q, 0x0064)], [(TPID_8021AD, 0x00C8), (TPID_8021Q, 0x0064)]],
    ids=["dot1q", "qinq"],
)
@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("linktype", [LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2], ids=["sll", "sll2"])
def test_vlan_tags_after_a_cooked_header(linktype: int, version: int, pairs: list[tuple[int, int]]) -> None:
    # libpcap puts the tag the kernel stripped back in place of the SLL protocol field
    # (SLL: 0x8100 at bytes 14..16, then TCI 0x0064 and the inner EtherType).
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    ethertype = ETH_IPV4 if version == 4 else ETH_IPV6
    if linktype == LINKTYPE_LINUX_SLL:
        frame = bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=MAC_SRC + b"\0\0", ethtype=pairs[0][0]))
    else:
        frame = bytes(dpkt.sll2.SLL2(ethtype=pairs[0][0], intindex=3, hrd=1, type=0, hlen=6, hdr=MAC_SRC + b"\0\0"))
    check(parse(linktype, frame + tags(pairs, ethertype) + inner), KEY4 if version == 4 else KEY6)


def test_vlan_tag_over_arp_after_a_cooked_header_is_skipped() -> None:
    frame = bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=MAC_SRC + b"\0\0", ethtype=TPID_8021Q))
    assert parse(LINKTYPE_LINUX_SLL, frame + tags([(TPID_8021Q, 5)], ETH_ARP) + b"\0" * 28) is None


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize(("family", "version"), [(2, 4), (10, 6), (24, 6), (28, 6), (30, 6)])
def test_null(order: str, family: int, version: int) -> None:
    # The AF_ value in the capturing host's byte order: 2 AF_INET; AF_INET6 is 10 (Linux),
    # 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    check(parse(LINKTYPE_NULL, struct.pack(order + "I", family) + inner), KEY4 if version == 4 else KEY6)


@pytest.mark.parametrize(("family", "version"), [(2, 4), (24, 6), (28, 6), (30, 6)])
def test_loop(family: int, version: int) -> None:
    # LOOP (OpenBSD loopback) stores the family in network byte order.
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    check(parse(LINKTYPE_LOOP, struct.pack("!I", family) + inner), KEY4 if version == 4 else KEY6)


@pytest.mark.parametrize("family", [0, 7, 17, 0x1234])
def test_null_unknown_family_is_skipped(family: int) -> None:
    assert parse(LINKTYPE_NULL, struct.pack("<I", family) + ip4(tcp())) is None
    assert parse(LINKTYPE_NULL, struct.pack(">I", family) + ip4(tcp())) is None


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14])
@pytest.mark.parametrize("version", [4, 6])
def test_raw_ip(linktype: int, version: int) -> None:
    inner = ip4(tcp()) if version == 4 else ip6(tcp())
    check(parse(linktype, inner), KEY4 if version == 4 else KEY6)


@pytest.mark.parametrize("first", [0x00, 0x50, 0x70, 0xF0])
def test_raw_with_other_ip_version_is_skipped(first: int) -> None:
    packet = bytearray(ip4(tcp()))
    packet[0] = first | 5
    assert parse(LINKTYPE_RAW, bytes(packet)) is None


@pytest.mark.parametrize("linktype", [105, 127, 147, 0xFFFF])
def test_unknown_linktype_is_skipped(linktype: int) -> None:
    assert parse(linktype, eth(ip4(tcp()))) is None


def test_decoded_linktypes_are_those_tcp_fields_decodes() -> None:
    # The capture reader counts the packets of other link types to say they were
    # skipped (capture.DECODED_LINKTYPES): the two lists must not drift apart.
    inner = ip4(tcp())
    frames = [
        eth(inner),
        bytes(dpkt.sll.SLL(ethtype=ETH_IPV4)) + inner,
        bytes(dpkt.sll2.SLL2(ethtype=ETH_IPV4)) + inner,
        struct.pack("<I", 2) + inner,  # NULL / LOOP, AF_INET
        inner,  # raw IP
    ]
    decoded = {lt for lt in range(0x10000) if any(parse(lt, frame) is not None for frame in frames)}
    assert decoded == DECODED_LINKTYPES


def test_empty_packets() -> None:
    for linktype in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL, LINKTYPE_RAW):
        assert parse(linktype, b"") is None


# --- IP --------------------------------------------------------------------------------------------------------------


def test_ipv6_extension_chain_before_tcp() -> None:
    # hop-by-hop (8 bytes) -> destination options (16) -> fragment, offset 0, no M (an atomic fragment, RFC 6946)
    chain = ext(DSTOPTS, 0) + ext(FRAGMENT, 1) + frag6(TCP)
    check(parse(LINKTYPE_ETHERNET, eth(ip6(chain + tcp(), nxt=HOPOPTS), ETH_IPV6)), KEY6)


def test_ipv6_routing_header_and_authentication_header() -> None:
    # AH: next header, payload length in 4-byte units minus 2 (4 -> 24 bytes), reserved, SPI, seq, ICV.
    ah = bytes([TCP, 4]) + b"\0\0" + struct.pack("!II", 0x100, 1) + b"\x99" * 12
    chain = ext(AH, 2) + ah
    check(parse(LINKTYPE_RAW, ip6(chain + tcp(), nxt=ROUTING)), KEY6)


def test_ipv6_fragment_reserved_bits_are_ignored() -> None:
    check(parse(LINKTYPE_RAW, ip6(frag6(TCP, reserved=3) + tcp(), nxt=FRAGMENT)), KEY6)


@pytest.mark.parametrize(("offset", "more"), [(0, True), (1, False), (185, True), (8191, False)])
def test_ipv6_fragments_are_skipped(offset: int, more: bool) -> None:
    assert parse(LINKTYPE_RAW, ip6(frag6(TCP, offset, more) + tcp(), nxt=FRAGMENT)) is None


@pytest.mark.parametrize("nxt", [UDP, ICMPV6, NONXT, 50])
def test_ipv6_other_protocols_are_skipped(nxt: int) -> None:
    assert parse(LINKTYPE_RAW, ip6(b"\0" * 40, nxt=nxt)) is None
    assert parse(LINKTYPE_RAW, ip6(ext(nxt, 0) + b"\0" * 40, nxt=HOPOPTS)) is None


def test_ipv6_extension_running_past_the_packet() -> None:
    # A destination-options header claiming 2048 bytes in a short packet.
    assert parse(LINKTYPE_RAW, ip6(bytes([TCP, 255]) + b"\0" * 6 + tcp(), nxt=DSTOPTS)) is None


@pytest.mark.parametrize(
    "off",
    [0x2000, 0x0001, 0x00B9, 0x20B9, 0x1FFF],  # MF; offset 8; offset 1480; MF + offset; last offset
    ids=["first-MF", "offset", "offset-1480", "MF-offset", "max"],
)
def test_ipv4_fragments_are_skipped(off: int) -> None:
    assert parse(LINKTYPE_RAW, ip4(tcp(), off=off)) is None


def test_ipv4_dont_fragment_is_fine() -> None:
    check(parse(LINKTYPE_RAW, ip4(tcp(), off=0x4000)), KEY4)


@pytest.mark.parametrize(
    "opts",
    [
        b"\x01\x01\x01\x00",  # NOP NOP NOP EOL: IHL 6
        b"\x94\x04\x00\x00",  # Router Alert: IHL 6
        b"\x07\x0b\x04" + b"\0" * 8 + b"\x00",  # Record Route, 2 slots: IHL 8
        b"\x01" * 40,  # the largest header: IHL 15
    ],
    ids=["nop", "router-alert", "record-route", "ihl15"],
)
def test_ipv4_options(opts: bytes) -> None:
    packet = ip4(tcp(), opts=opts)
    assert packet[0] & 0x0F == 5 + len(opts) // 4
    check(parse(LINKTYPE_ETHERNET, eth(packet)), KEY4)


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_ipv4_header_length_below_minimum_is_skipped(ihl: int) -> None:
    packet = bytearray(ip4(tcp()))
    packet[0] = 0x40 | ihl
    assert parse(LINKTYPE_RAW, bytes(packet)) is None


@pytest.mark.parametrize(
    ("p", "inner"),
    [
        (UDP, bytes(dpkt.udp.UDP(sport=53, dport=5353, data=b"\0" * 30))),
        (ICMP, bytes(dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=b"ping")))),
        (47, b"\0" * 24),  # GRE
    ],
    ids=["udp", "icmp", "gre"],
)
def test_ipv4_other_protocols_are_skipped(p: int, inner: bytes) -> None:
    assert parse(LINKTYPE_ETHERNET, eth(ip4(inner, p=p))) is None


def test_arp_is_skipped() -> None:
    arp = bytes(dpkt.arp.ARP(sha=MAC_SRC, spa=SRC4, tha=b"\0" * 6, tpa=DST4))
    assert parse(LINKTYPE_ETHERNET, eth(arp, ETH_ARP)) is None


# --- TCP -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        b"\x02\x04\x05\xb4",  # MSS 1460: data offset 6
        b"\x01\x01\x08\x0a" + struct.pack("!II", 7, 9),  # NOP NOP timestamps: data offset 8
        b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x08\x0a" + b"\0" * 8 + b"\0" * 4,  # SYN set: data offset 11
        b"\x01" * 40,  # the largest header: data offset 15
    ],
    ids=["mss", "timestamps", "syn-set", "doff15"],
)
def test_tcp_options(opts: bytes) -> None:
    segment = tcp(opts=opts)
    assert segment[12] >> 4 == 5 + len(opts) // 4
    check(parse(LINKTYPE_ETHERNET, eth(ip4(segment))), KEY4)
    check(parse(LINKTYPE_RAW, ip6(segment)), KEY6)


@pytest.mark.parametrize("flags", [SYN, SYN | ACK, FIN | ACK, RST, RST | ACK, ACK | PSH | ECE_CWR, 0xFF])
def test_tcp_flags_are_kept(flags: int) -> None:
    check(parse(LINKTYPE_RAW, ip4(tcp(b"", flags=flags))), KEY4, b"", flags=flags)


def test_tcp_ns_bit_does_not_change_the_header_length() -> None:
    segment = bytearray(tcp())
    segment[12] |= 0x01  # NS (RFC 3540), the low bit of the data-offset byte
    check(parse(LINKTYPE_RAW, ip4(bytes(segment))), KEY4)


@pytest.mark.parametrize("doff", [0, 4])
def test_tcp_data_offset_below_minimum_is_skipped(doff: int) -> None:
    segment = bytearray(tcp())
    segment[12] = doff << 4
    assert parse(LINKTYPE_RAW, ip4(bytes(segment))) is None


def test_tcp_data_offset_past_the_segment_is_skipped() -> None:
    segment = bytearray(tcp(b"abc"))
    segment[12] = 15 << 4  # claims a 60-byte header in a 23-byte segment
    assert parse(LINKTYPE_RAW, ip4(bytes(segment))) is None
    assert parse(LINKTYPE_RAW, ip6(bytes(segment))) is None


def test_sequence_numbers_at_the_extremes() -> None:
    seg = parse(LINKTYPE_RAW, ip4(tcp(b"x", seq=0xFFFFFFFF, ack=0)))
    assert seg is not None
    assert (seg.seq, seg.ack) == (0xFFFFFFFF, 0)


# --- trailing bytes and truncation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tagged", [False, True], ids=["untagged", "dot1q"])
@pytest.mark.parametrize("data", [b"", b"hi", b"12345"])
def test_ethernet_padding_trimmed_by_ipv4_total_length(data: bytes, tagged: bool) -> None:
    packet = ip4(tcp(data))
    frame = vlan(packet, [(TPID_8021Q, 9)], ETH_IPV4) if tagged else eth(packet)
    minimum = 64 if tagged else 60  # the minimum Ethernet frame, without FCS
    padded = frame + b"\0" * (minimum - len(frame))
    assert len(padded) == minimum > len(frame)
    check(parse(LINKTYPE_ETHERNET, padded), KEY4, data)
    # A trailing frame check sequence is dropped the same way.
    check(parse(LINKTYPE_ETHERNET, padded + b"\xde\xad\xbe\xef"), KEY4, data)


def test_trailing_bytes_trimmed_by_ipv6_payload_length() -> None:
    frame = eth(ip6(tcp(b"ok")), ETH_IPV6) + b"\xff" * 9
    check(parse(LINKTYPE_ETHERNET, frame), KEY6, b"ok")
    check(parse(LINKTYPE_RAW, ip6(tcp(b"ok")) + b"\xff" * 9), KEY6, b"ok")


def test_ipv4_total_length_zero_means_the_whole_frame() -> None:
    # Captured on the sending host with segmentation offload, IPv4 total length may be 0.
    packet = bytearray(ip4(tcp()))
    packet[2:4] = b"\0\0"
    check(parse(LINKTYPE_RAW, bytes(packet)), KEY4)


def test_ipv4_total_length_inside_the_header_means_the_whole_frame() -> None:
    packet = bytearray(ip4(tcp()))
    packet[2:4] = struct.pack("!H", 12)
    check(parse(LINKTYPE_RAW, bytes(packet)), KEY4)


def test_ipv4_total_length_cutting_the_tcp_header_is_skipped() -> None:
    packet = bytearray(ip4(tcp()))
    packet[2:4] = struct.pack("!H", 20 + 19)
    assert parse(LINKTYPE_RAW, bytes(packet)) is None


def test_ipv4_total_length_cutting_the_payload() -> None:
    packet = bytearray(ip4(tcp()))
    packet[2:4] = struct.pack("!H", 20 + 20 + 4)
    check(parse(LINKTYPE_RAW, bytes(packet)), KEY4, PAYLOAD[:4])


# Ethernet + IPv4 without options takes a fast path; the same IP packet behind a link
# header that takes the general path (raw IP, a VLAN tag) must decode the same way.
def _three_ways(packet: bytes) -> list[Segment | None]:
    return [
        parse(LINKTYPE_ETHERNET, eth(packet) + b"\0" * 6),
        parse(LINKTYPE_ETHERNET, vlan(packet, [(TPID_8021Q, 1)], ETH_IPV4) + b"\0" * 6),
        parse(LINKTYPE_RAW, packet + b"\0" * 6),
    ]


def _same(segments: list[Segment | None]) -> None:
    shown = [None if s is None else (s.key, s.seq, s.ack, s.flags, bytes(s.payload)) for s in segments]
    assert shown[0] == shown[1] == shown[2], shown


@pytest.mark.parametrize("flags", [ACK, SYN, FIN | ACK, RST, ACK | PSH])
@pytest.mark.parametrize("data", [b"", b"x", PAYLOAD])
def test_fast_path_agrees_with_the_general_path(flags: int, data: bytes) -> None:
    packet = ip4(tcp(data, flags=flags, opts=b"\x01\x01\x04\x02"))
    _same(_three_ways(packet))
    segs = _three_ways(packet)
    check(segs[0], KEY4, data, flags=flags)
    for cut in range(len(packet)):  # IPv4 total length says the packet ends at `cut`
        _same(_three_ways(with_u16(packet, 2, cut)))


@pytest.mark.parametrize("flags", [ACK, FIN | ACK, ACK | PSH])
@pytest.mark.parametrize("data", [b"x", PAYLOAD])
def test_fast_path_agrees_with_the_general_path_on_cut_packets(flags: int, data: bytes) -> None:
    packet = ip4(tcp(data, flags=flags, opts=b"\x01\x01\x04\x02"))
    headers = len(packet) - len(data)
    for keep in range(len(packet) + 1):  # the capture kept `keep` bytes of the IP packet
        segs = [
            parse(LINKTYPE_ETHERNET, eth(packet)[: 14 + keep]),
            parse(LINKTYPE_ETHERNET, vlan(packet, [(TPID_8021Q, 1)], ETH_IPV4)[: 18 + keep]),
            parse(LINKTYPE_RAW, packet[:keep]),
        ]
        _same(segs)
        if keep < headers:
            assert segs[0] is None
        else:
            check(segs[0], KEY4, data[: keep - headers], flags=flags | (len(packet) - keep) << CUT_SHIFT)


def test_cut_packet_ends_where_its_ip_length_says() -> None:
    # The payload present is data[start:end] all the same: a memoryview slice stops at its end.
    frame = eth(ip4(tcp()))
    fields = tcp_fields(LINKTYPE_ETHERNET, memoryview(frame[:60]))
    assert fields is not None
    _, _, _, flags, start, end = fields
    assert (start, end, flags >> CUT_SHIFT, flags & 0xFF) == (54, len(frame), len(frame) - 60, ACK | PSH)
    six = eth(ip6(tcp()), ETH_IPV6)
    fields = tcp_fields(LINKTYPE_ETHERNET, memoryview(six[:80]))
    assert fields is not None
    assert (fields[4], fields[5], fields[3] >> CUT_SHIFT) == (74, len(six), len(six) - 80)


@pytest.mark.parametrize("total", [20, 39])
def test_fast_path_total_length_inside_the_tcp_header(total: int) -> None:
    # Once taken as "length 0, use the whole frame": the Ethernet padding became payload.
    segs = _three_ways(with_u16(ip4(tcp(b"")), 2, total))
    assert segs == [None, None, None]


@pytest.mark.parametrize("flags", [ACK, SYN, SYN | ACK, FIN | ACK, RST, RST | ACK])
def test_segments_without_payload(flags: int) -> None:
    # Pure ACKs too: whether they matter is the Inspector's decision (test_session).
    for linktype, frame, key in [
        (LINKTYPE_ETHERNET, eth(ip4(tcp(b"", flags=flags))), KEY4),  # the fast path
        (LINKTYPE_ETHERNET, eth(ip4(tcp(b"", flags=flags), opts=b"\x01" * 4)), KEY4),
        (LINKTYPE_LINUX_SLL2, bytes(dpkt.sll2.SLL2(ethtype=ETH_IPV6)) + ip6(tcp(b"", flags=flags)), KEY6),
    ]:
        check(parse(linktype, frame), key, b"", flags=flags)


def _link(name: str, inner: bytes, version: int) -> tuple[int, bytes]:
    ethertype = ETH_IPV4 if version == 4 else ETH_IPV6
    if name == "ethernet":
        return LINKTYPE_ETHERNET, eth(inner, ethertype)
    if name == "qinq":
        return LINKTYPE_ETHERNET, vlan(inner, [(TPID_8021AD, 7), (TPID_8021Q, 8)], ethertype)
    if name == "sll":
        return LINKTYPE_LINUX_SLL, bytes(dpkt.sll.SLL(ethtype=ethertype)) + inner
    if name == "sll2":
        return LINKTYPE_LINUX_SLL2, bytes(dpkt.sll2.SLL2(ethtype=ethertype)) + inner
    if name == "sll-vlan":
        return LINKTYPE_LINUX_SLL, bytes(dpkt.sll.SLL(ethtype=TPID_8021Q)) + tags([(TPID_8021Q, 9)], ethertype) + inner
    if name == "sll2-qinq":
        pairs = [(TPID_8021AD, 7), (TPID_8021Q, 8)]
        return LINKTYPE_LINUX_SLL2, bytes(dpkt.sll2.SLL2(ethtype=TPID_8021AD)) + tags(pairs, ethertype) + inner
    if name == "null":
        return LINKTYPE_NULL, struct.pack(">I", 2 if version == 4 else 30) + inner
    return LINKTYPE_RAW, inner


LINKS = ["ethernet", "qinq", "sll", "sll2", "sll-vlan", "sll2-qinq", "null", "raw"]


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize(
    ("version", "ip_header"),
    [
        (4, 20),
        (4, 32),  # IHL 8
        (6, 40),
        (6, 40 + 8 + 16 + 8),  # hop-by-hop, destination options, fragment
    ],
    ids=["v4", "v4-options", "v6", "v6-extensions"],
)
def test_every_prefix_is_none_or_the_bytes_present(link: str, version: int, ip_header: int) -> None:
    segment = tcp(opts=b"\x02\x04\x05\xb4\x01\x01\x04\x02")  # 28-byte TCP header
    if version == 4:
        inner = ip4(segment, opts=b"\x01" * (ip_header - 20))
    elif ip_header == 40:
        inner = ip6(segment)
    else:
        inner = ip6(ext(DSTOPTS, 0) + ext(FRAGMENT, 1) + frag6(TCP) + segment, nxt=HOPOPTS)
    linktype, frame = _link(link, inner, version)
    headers = len(frame) - len(PAYLOAD)
    assert headers == len(frame) - len(inner) + ip_header + 28
    key = KEY4 if version == 4 else KEY6
    for cut in range(len(frame)):
        seg = parse(linktype, frame[:cut])
        if cut < headers:
            assert seg is None, cut
        else:
            # Cut by the capture: the flags count the bytes the IP length says are missing.
            check(seg, key, PAYLOAD[: cut - headers], flags=ACK | PSH | (len(frame) - cut) << CUT_SHIFT)
    check(parse(linktype, frame), key)


# --- flow keys -------------------------------------------------------------------------------------------------------


def test_reverse_key_ipv4() -> None:
    reply = parse(LINKTYPE_RAW, ip4(bytes(dpkt.tcp.TCP(sport=DPORT, dport=SPORT, flags=ACK)), src=DST4, dst=SRC4))
    assert reply is not None
    assert reverse_key(KEY4) == DST4 + SRC4 + struct.pack("!HH", DPORT, SPORT) == reply.key
    assert reverse_key(reverse_key(KEY4)) == KEY4


def test_reverse_key_ipv6() -> None:
    reply = parse(LINKTYPE_RAW, ip6(bytes(dpkt.tcp.TCP(sport=DPORT, dport=SPORT, flags=ACK)), src=DST6, dst=SRC6))
    assert reply is not None
    assert reverse_key(KEY6) == DST6 + SRC6 + struct.pack("!HH", DPORT, SPORT) == reply.key
    assert reverse_key(reverse_key(KEY6)) == KEY6


def test_endpoints_ipv4() -> None:
    assert endpoints(KEY4) == ("10.0.0.1:40000", "192.168.1.200:8080")
    assert endpoints(reverse_key(KEY4)) == ("192.168.1.200:8080", "10.0.0.1:40000")


def test_endpoints_ipv6() -> None:
    assert endpoints(KEY6) == ("[2001:db8::1]:40000", "[fe80::abcd:2]:8080")
    assert endpoints(reverse_key(KEY6)) == ("[fe80::abcd:2]:8080", "[2001:db8::1]:40000")


def test_endpoints_extreme_ports() -> None:
    key = bytes(4) + b"\xff" * 4 + struct.pack("!HH", 0, 65535)
    assert endpoints(key) == ("0.0.0.0:0", "255.255.255.255:65535")


def test_endpoints_print_ipv4_mapped_ipv6_dotted() -> None:
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.1")
    key = mapped + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert endpoints(key + bytes([0, 80, 0xC3, 0x50])) == ("[::ffff:10.0.0.1]:80", "[2001:db8::1]:50000")
    assert endpoints(bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 81])) == ("10.0.0.1:80", "10.0.0.2:81")
