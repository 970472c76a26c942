"""Live packet sources (Linux): interfaces, packet sockets and their rings, BPF filters.


A capture thread (Capture) reads Linux packet sockets and writes every packet to
a PcapWriter; it hands batches of RawPacket to the consumer (the live command, the
TUI) through a bounded queue. When decoding falls behind, whole batches are dropped
from the queue and counted, never silently. Imports no front end.

The sockets deliver packets through a TPACKET_V3 ring (packet_mmap.rst in the
kernel's documentation), as libpcap does: the kernel fills blocks of a shared
buffer and the thread walks them without a system call per packet. With one
recvmsg() per packet, each call gives up the GIL and waits up to the switch
interval (5 ms) to get it back while the decoder runs, so the capture thread
starves and the kernel drops packets at rates the decoder could handle (measured:
94 % of packets lost at 100k messages/s). A `-f` filter is compiled by libpcap
(through scapy's bindings) and runs in the kernel before anything is copied.

One interface is captured with its own link-layer header (Ethernet on Ethernet
devices and on lo, raw IP on tun-like devices), as tcpdump does. `-i any`, several
`-i` and devices with other headers are captured "cooked": the kernel strips the
link-layer header and each packet gets a Linux SLL2 header built from its socket
address (interface index, packet type, link address), as `tcpdump -i any` writes.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import select
import shutil
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from wsinspect.capture import SNAPLEN, PcapWriter
from wsinspect.errors import CaptureError
from wsinspect.packet import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, RawPacket

# Imported by the live command and the TUI only when capturing; what only a filter
# needs (ctypes, scapy) is imported where it is used.

# <linux/if_ether.h>, <linux/if_packet.h>, <asm-generic/socket.h>, <linux/if_arp.h>, <linux/sockios.h>
ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
SO_ATTACH_FILTER = 26
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE  # tun, wireguard: packets start at the IP header
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_RUNNING = 0x40
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927

# libpcap's DLT for "packet starts at the IP header" on Linux, used to compile
# filters for cooked sockets (which deliver packets from the network header on);
# in files the same link type is written as LINKTYPE_RAW.
DLT_RAW = 12
LINKTYPE_NAMES = {LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_RAW: "raw IP", LINKTYPE_LINUX_SLL2: "Linux cooked v2"}

# The ring: the kernel fills a block and hands it over when it is full, or when its
# BLOCK_TIMEOUT_MS timer fires with a packet in it. The timeout bounds the latency at low
# rates; at moderate rates blocks leave part-filled, so the ring holds BLOCK_COUNT
# timeouts of traffic (1 s) before the kernel drops: many small blocks, not a few large
# ones (32 blocks of 1 MiB dropped packets at 70k messages/s on lo while the decoder held
# the CPU). A block holds one packet of up to 256 KiB; the kernel cuts a larger one (BIG TCP).
BLOCK_SIZE = 1 << 18
BLOCK_COUNT = 128  # 32 MiB per socket
BLOCK_TIMEOUT_MS = 8
FRAME_SIZE = 2048  # TPACKET_V3 packs packets by their size; the kernel only checks this value
QUEUE_BYTES = 64 << 20  # packet data waiting for the decoder, at most
BATCH = 256  # packets handed over at once (one lock round-trip per batch)
POLL_MS = 100  # how soon the capture thread notices a stop request

_u32 = struct.Struct("I")
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status,
# num_pkts, offset_to_first_pkt, ...
_block = struct.Struct("8xIII")
# struct tpacket3_hdr (48 bytes): tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len,
# tp_status, tp_mac, tp_net, hv1.tp_rxhash (skipped), hv1.tp_vlan_tci, hv1.tp_vlan_tpid.
_tpacket3 = struct.Struct("IIIIIIHH4xIH")
TPACKET3_HDRLEN = 48  # TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): struct sockaddr_ll follows
# struct sockaddr_ll after sll_family: sll_protocol (network order, kept as bytes), sll_ifindex,
# sll_hatype, sll_pkttype, sll_halen, sll_addr.
_sockaddr_ll = struct.Struct("=2x2siHBB8s")
_tpacket_req3 = struct.Struct("IIIIIII")
_tpacket_stats_v3 = struct.Struct("III")  # tp_packets, tp_drops, tp_freeze_q_cnt
_vlan_tag = struct.Struct("!HH")
# LINKTYPE_LINUX_SLL2 after the protocol: reserved, interface index, ARPHRD type, packet
# type, address length, address (all in network order).
_sll2_rest = struct.Struct("!HIHBB8s")

# -- interfaces -------------------------------------------------------------


@dataclass(slots=True)
class Interface:
    """A network interface of this host (of the current network namespace)."""

    name: str
    index: int
    arphrd: int
    flags: int
    mtu: int
    mac: str | None
    addresses: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if not self.flags & IFF_UP:
            return "down"
        return "up" if self.flags & IFF_RUNNING else "no carrier"

    @property
    def loopback(self) -> bool:
        return bool(self.flags & IFF_LOOPBACK)

    @property
    def link(self) -> str:
        if self.arphrd == ARPHRD_LOOPBACK:
            return "loopback"
        if self.arphrd == ARPHRD_ETHER:
            return "ether"
        if self.arphrd == ARPHRD_NONE:
            return "none (IP)"
        return f"arphrd {self.arphrd}"

    @property
    def linktype(self) -> int | None:
        """The pcap link type of this interface's own headers; None: capture it cooked."""
        if self.arphrd in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            return LINKTYPE_ETHERNET
        if self.arphrd == ARPHRD_NONE:
            return LINKTYPE_RAW
        return None


def default_interface(interfaces: list[Interface]) -> str:
    """The interface to capture on when none is named, as tcpdump picks it (libpcap's
    pcap_findalldevs order): the first that is up and running and not loopback, with
    an address; else the first up; else loopback."""
    up = [i for i in interfaces if i.state == "up"]
    for candidates in ([i for i in up if not i.loopback and i.addresses], [i for i in up if not i.loopback], up):
        if candidates:
            return candidates[0].name
    return "lo"


def list_interfaces(addresses: bool = True) -> list[Interface]:
    """The interfaces of the current network namespace, by index, with their addresses.

    Flags, MTU and hardware type come from ioctls (which, unlike /sys/class/net, follow
    the caller's network namespace); addresses from `ip -j addr` when iproute2 is there.
    """
    result = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for index, name in sorted(socket.if_nameindex()):
            try:
                flags = _ioctl_ifreq(s, SIOCGIFFLAGS, name, "H")
                mtu = _ioctl_ifreq(s, SIOCGIFMTU, name, "i")
                hw = fcntl.ioctl(s, SIOCGIFHWADDR, struct.pack("16s24x", name.encode()))
            except OSError:
                continue  # gone since it was listed
            arphrd = struct.unpack_from("H", hw, 16)[0]
            mac = hw[18:24].hex(":") if arphrd == ARPHRD_ETHER else None
            result.append(Interface(name, index, arphrd, flags, mtu, mac))
    if addresses:
        found = _addresses()
        for iface in result:
            iface.addresses = found.get(iface.name, [])
    return result


def _ioctl_ifreq(s: socket.socket, request: int, name: str, fmt: str) -> int:
    value: int = struct.unpack_from(fmt, fcntl.ioctl(s, request, struct.pack("16s24x", name.encode())), 16)[0]
    return value


def _addresses() -> dict[str, list[str]]:
    import json
    import subprocess

    if shutil.which("ip") is None:
        return {}
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, timeout=5, check=True).stdout
        links = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    return {
        link.get("ifname", ""): [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if "local" in a]
        for link in links
    }


# -- sockets ----------------------------------------------------------------


@dataclass(slots=True)
class _Tap:
    """One packet socket and its ring: a named interface, or every interface (``any``)."""

    name: str
    sock: socket.socket
    ring: mmap.mmap
    linktype: int
    outgoing: bool  # read each packet's address: lo's outgoing copies are skipped (always, if cooked)
    block: int = 0  # the next block of the ring to read


def _compile(expression: str, dlt: int) -> Any:
    """Compile a pcap-filter expression to a BPF program with libpcap (through scapy's bindings).

    The snapshot length is ours: scapy's compile_filter() uses 65535, which would cut
    the largest packets on lo (65535 bytes of IP plus the Ethernet header).
    """
    import ctypes

    try:
        from scapy.libs import winpcapy as pcap
        from scapy.libs.structures import bpf_program
    except (ImportError, OSError):  # scapy raises OSError when it cannot load libpcap
        raise CaptureError(
            "cannot compile the capture filter: libpcap is not installed"
            " (Debian/Ubuntu: apt-get install libpcap0.8, which tcpdump also brings)"
        ) from None
    handle = pcap.pcap_open_dead(dlt, SNAPLEN)
    program = bpf_program()
    try:
        # -1: PCAP_NETMASK_UNKNOWN (only `ip broadcast` needs the netmask)
        if pcap.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, -1) == -1:
            reason = (pcap.pcap_geterr(handle) or b"").decode(errors="replace")
            raise CaptureError(f"bad capture filter {expression!r}: {reason}")
    finally:
        pcap.pcap_close(handle)
    return program


def _attach(sock: socket.socket, program: Any) -> None:
    from scapy.libs.structures import sock_fprog

    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(sock_fprog(program.bf_len, program.bf_insns)))


def _packet_socket(name: str, cooked: bool, protocol: int) -> socket.socket:
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM if cooked else socket.SOCK_RAW, protocol)
    except PermissionError:
        python = os.path.realpath(sys.executable)
        raise CaptureError(
            f"cannot capture on {name}: permission denied; live capture needs root or the CAP_NET_RAW capability:"
            ' run it with sudo (sudo "$(command -v wsinspect)" live ...), or, in a container, add NET_RAW'
            " (--cap-add NET_RAW); granting the capability to the interpreter"
            f" (sudo setcap cap_net_raw+eip {python}) lets every script it runs open raw sockets:"
            " do that only for a Python kept for wsinspect (a dedicated virtual environment's copy)"
        ) from None


def _open_tap(iface: Interface | None, cooked: bool, program: Any, promisc: bool, linktype: int) -> _Tap:
    """A packet socket on ``iface`` (None: every interface) with its filter and ring."""
    name = iface.name if iface else "any"
    # A bound socket is created deaf (protocol 0) and hears nothing until bind(). The
    # `any` socket hears at once, but only into its receive queue, which is never
    # read: the ring, set up after the filter, gets filtered packets only.
    sock = _packet_socket(name, cooked, 0 if iface else socket.htons(ETH_P_ALL))
    try:
        if program is not None:
            _attach(sock, program)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames = BLOCK_SIZE // FRAME_SIZE * BLOCK_COUNT
        req = _tpacket_req3.pack(BLOCK_SIZE, BLOCK_COUNT, FRAME_SIZE, frames, BLOCK_TIMEOUT_MS, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        ring = mmap.mmap(sock.fileno(), BLOCK_SIZE * BLOCK_COUNT, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        # lo hands every packet to packet sockets twice, going out and coming in; keep one
        # copy, as libpcap does: the kernel skips them for a socket bound to lo (Linux 4.20+),
        # the capture loop for the others.
        outgoing = iface is None or cooked  # cooked: the address is read anyway, for the SLL2 header
        if iface is not None:
            if iface.loopback:
                try:
                    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                except OSError:
                    outgoing = True
            elif promisc:
                mreq = struct.pack("IHH8s", iface.index, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.bind((iface.name, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            raise CaptureError(f"cannot capture on {name}: the interface is gone") from None
        raise CaptureError(f"cannot capture on {name}: {exc.strerror}") from None
    return _Tap(name, sock, ring, linktype, outgoing)


def open_taps(names: list[str], expression: str | None, promisc: bool, interfaces: list[Interface]) -> list[_Tap]:
    """Check the interfaces and the filter, then open one socket per interface.

    Raises CaptureError (unknown or down interface, bad filter, no permission).
    """
    known = {i.name: i for i in interfaces}
    for name in names:
        if name != "any" and name not in known:
            valid = ", ".join([*known, "any"])
            raise CaptureError(f"no such interface: {name} (interfaces here: {valid}; see `wsinspect interfaces`)")
    selected = [None if n == "any" else known[n] for n in names]
    for iface in selected:
        if iface is not None and not iface.flags & IFF_UP:
            raise CaptureError(f"interface {iface.name} is down (bring it up: ip link set {iface.name} up)")
    native = selected[0].linktype if len(selected) == 1 and selected[0] is not None else None
    cooked = native is None
    linktype = LINKTYPE_LINUX_SLL2 if native is None else native
    # Permission first: without it nothing else matters (and libpcap may not even load).
    _packet_socket(names[0], True, 0).close()
    program = None
    if expression:
        program = _compile(expression, DLT_RAW if linktype != LINKTYPE_ETHERNET else LINKTYPE_ETHERNET)
    taps: list[_Tap] = []
    try:
        for iface in selected:
            taps.append(_open_tap(iface, cooked, program, promisc, linktype))
    except CaptureError:
        close_taps(taps)
        raise
    finally:
        if program is not None:
            import ctypes

            from scapy.libs.winpcapy import pcap_freecode

            pcap_freecode(ctypes.byref(program))
    return taps


def close_taps(taps: list[_Tap]) -> None:
    for tap in taps:
        tap.ring.close()
        tap.sock.close()


# -- the capture thread -----------------------------------------------------


class _Queue:
    """Bounded hand-off of packet batches, limited by the bytes they hold.

    A batch that does not fit is dropped whole and counted: a lagging decoder must
    not stall the capture (the kernel would drop instead, and the pcap would lose
    packets too).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._batches: deque[tuple[list[RawPacket], int]] = deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, batch: list[RawPacket], size: int) -> None:
        with self._cond:
            if self._batches and self._bytes + size > self.limit:
                self.dropped += len(batch)
                return
            self._batches.append((batch, size))
            self._bytes += size
            self._cond.notify()

    def get(self, timeout: float) -> list[RawPacket] | None:
        with self._cond:
            if not self._batches:
                self._cond.wait(timeout)
                if not self._batches:
                    return None
            batch, size = self._batches.popleft()
            self._bytes -= size
            return batch


class Capture:
    """Reads the rings on a thread: every packet goes to the pcap, then to the queue.

    Owns the sockets and the writer: close() stops the thread, reads the kernel's
    counts and closes them.
    """

    def __init__(self, taps: list[_Tap], writer: PcapWriter | None, loopbacks: set[int]) -> None:
        self.taps = taps
        self.writer = writer
        self.queue = _Queue(QUEUE_BYTES)
        self.captured = 0
        self.truncated = 0
        self.received = 0  # by the kernel's filters, dropped ones included
        self.kernel_dropped = 0
        self.error: str | None = None  # why the capture stopped by itself
        self.failure: BaseException | None = None  # a bug: re-raised by the main thread
        self._loopbacks = loopbacks  # interface indexes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wsinspect-capture", daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        for tap in self.taps:
            try:
                stats = tap.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _tpacket_stats_v3.size)
                packets, drops, _ = _tpacket_stats_v3.unpack(stats)
            except OSError:
                packets = drops = 0
            # The kernel counts dropped packets in tp_packets too (net/packet/af_packet.c).
            self.received += packets
            self.kernel_dropped += drops
        close_taps(self.taps)
        if self.writer is not None:
            try:
                self.writer.close()
            except CaptureError as exc:
                self.error = self.error or str(exc)

    def _run(self) -> None:
        poller = select.poll()
        by_fd = {}
        for tap in self.taps:
            poller.register(tap.sock, select.POLLIN)
            by_fd[tap.sock.fileno()] = tap
        try:
            while not self._stop.is_set():
                if not any([self._blocks(tap) for tap in self.taps]):
                    for fd, event in poller.poll(POLL_MS):
                        if event & select.POLLERR:
                            self._failed(by_fd[fd])
                            return
                if self.writer is not None:
                    self.writer.flush()
        except CaptureError as exc:  # the pcap cannot be written (disk full)
            self.error = str(exc)
        except BaseException as exc:
            self.failure = exc

    def _failed(self, tap: _Tap) -> None:
        """The socket reports an error: take what the ring still holds, then say why."""
        time.sleep(2 * BLOCK_TIMEOUT_MS / 1000)  # the last block is handed over by its timeout
        while self._blocks(tap):
            pass
        code = tap.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == errno.ENETDOWN:
            self.error = f"interface {tap.name} went down; capture stopped"
        else:
            self.error = f"capture on {tap.name} failed: {os.strerror(code)}"

    def _blocks(self, tap: _Tap) -> bool:
        """Read every block the kernel has handed over; False if there was none."""
        ring = tap.ring
        read = False
        while True:
            base = tap.block * BLOCK_SIZE
            status, count, first = _block.unpack_from(ring, base)
            if not status & TP_STATUS_USER:
                return read
            self._packets(tap, base + first, count)
            # Give the block back (the kernel set its status last, after the packets; on
            # x86 the reads above cannot pass that of the status).
            _u32.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            tap.block = (tap.block + 1) % BLOCK_COUNT
            read = True

    def _packets(self, tap: _Tap, offset: int, count: int) -> None:
        """Copy the ``count`` packets of a block out of the ring, to the pcap and the queue."""
        ring = tap.ring
        writer = self.writer
        put = self.queue.put
        linktype = tap.linktype
        cooked = linktype == LINKTYPE_LINUX_SLL2
        ethernet = linktype == LINKTYPE_ETHERNET
        outgoing = tap.outgoing
        loopbacks = self._loopbacks
        unpack_header = _tpacket3.unpack_from
        unpack_address = _sockaddr_ll.unpack_from
        batch: list[RawPacket] = []
        size = 0
        for _ in range(count):
            next_offset, sec, nsec, caplen, length, status, mac, _, tci, tpid = unpack_header(ring, offset)
            start = offset + mac
            address = offset + TPACKET3_HDRLEN
            offset += next_offset
            if outgoing:
                protocol, ifindex, hatype, pkttype, halen, addr = unpack_address(ring, address)
                if pkttype == PACKET_OUTGOING and ifindex in loopbacks:
                    continue  # seen again coming in
            if caplen < length:
                self.truncated += 1
            if cooked:
                header = protocol + _sll2_rest.pack(0, ifindex, hatype, pkttype, halen, addr)
                data = header + ring[start : start + caplen]
                length += len(header)
            elif ethernet and status & TP_STATUS_VLAN_VALID:
                # The kernel took the 802.1Q tag out of the frame: put it back, as libpcap does.
                tag = _vlan_tag.pack(tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q, tci)
                data = ring[start : start + 12] + tag + ring[start + 12 : start + caplen]
                length += len(tag)
            else:
                data = ring[start : start + caplen]
            if writer is not None:
                writer.write(sec, nsec, data, length)
            # The same arithmetic as the pcap reader's, so live and `read -w FILE` agree to the bit.
            batch.append(RawPacket(sec + nsec / 1e9, linktype, memoryview(data)))
            size += len(data)
            if len(batch) >= BATCH:
                self.captured += len(batch)
                put(batch, size)
                batch = []
                size = 0
        if batch:
            self.captured += len(batch)
            put(batch, size)


def saved(capture: Capture) -> str:
    """What the -w file holds, for a message about the capture's end ("" without one)."""
    writer = capture.writer
    return f" ({writer.packets} packets saved in {writer.path})" if writer is not None else ""


def counts(capture: Capture, elapsed: float) -> str:
    """The packet counts of a capture that ran ``elapsed`` seconds, as one stderr line."""
    line = (
        f"wsinspect: {capture.captured} packets captured in {elapsed:.1f} s, {capture.received} received by filter,"
        f" {capture.kernel_dropped} dropped by kernel, {capture.queue.dropped} dropped by wsinspect (decoder behind)"
    )
    if capture.truncated:
        line += f", {capture.truncated} cut to {SNAPLEN} bytes"
    if capture.writer is not None:
        line += f"; {capture.writer.packets} written to {capture.writer.path}"
    return line
