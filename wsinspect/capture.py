"""Capture files: pcap and pcapng, plain or gzip-compressed, from a path or stdin.

The readers yield RawPacket records whose ``data`` is a memoryview into the chunk
of the file or stream it was read in, so no per-packet copy is made. Formats are
told apart by their magic bytes, never by the file name.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, NoReturn, cast

from wsinspect.errors import CaptureError
from wsinspect.packet import DECODED_LINKTYPES, LINKTYPE_ETHERNET, SHARD_BYTES, RawPacket

# Names of link types that captures are met with, for that message.
_UNDECODED_NAMES = {
    6: "IEEE 802.5 Token Ring",
    9: "PPP",
    10: "FDDI",
    50: "PPP in HDLC framing",
    51: "PPPoE",
    104: "Cisco HDLC",
    105: "IEEE 802.11",
    119: "IEEE 802.11 with Prism header",
    127: "IEEE 802.11 with radiotap header",
    163: "IEEE 802.11 with AVS header",
    187: "Bluetooth HCI H4",
    189: "Linux USB",
    192: "PPI",
    195: "IEEE 802.15.4",
    201: "Bluetooth HCI H4 with pseudo-header",
    220: "Linux USB, memory-mapped",
    239: "Linux netfilter log (NFLOG)",
    252: "Wireshark upper PDU",
    253: "Linux netlink",
    **{n: f"user-defined {n - 147}" for n in range(147, 163)},
}

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
PCAPNG_DSB = 0x0000000A  # Decryption Secrets Block
SECRETS_TLS_KEYLOG = 0x544C534B  # "TLSK": an NSS key log
GZIP_MAGIC = b"\x1f\x8b"

# A record or block longer than this (64 MiB) is taken for corruption, not a cut file.
MAX_RECORD = 0x4000000

STREAM_CHUNK = 1 << 20
# Regular files are read in chunks of this size. Reading the records of a 500 MB
# capture took as long as through a mapping of the file with 128 or 256 KiB, 10%
# longer with 1 MiB: the chunk has to stay in the CPU's cache between its copy from
# the page cache and its parsing.
FILE_CHUNK = 256 << 10


class CaptureReader:
    """Iterates the packets of one capture file.

    Damage found while reading (a record cut short at the end, packets cut by the
    snapshot length) does not stop the iteration: it ends the packet stream where the
    damage starts and is described in ``warnings`` for the caller to report.
    """

    def __init__(self, source: _Source, closer: BinaryIO | None, size: int | None = None) -> None:
        self.name = source.name
        self.warnings = source.warnings
        # The size on disk of a regular file (plain or gzip-compressed), which other
        # processes can open by its name and read in full; None for stdin or a pipe.
        self.size = size
        self._source = source
        self._closer = closer

    def __iter__(self) -> Iterator[RawPacket]:
        source = self._source
        try:
            yield from source.parse(source)
        except (OSError, EOFError, zlib.error) as exc:
            # A gzip stream cut short or corrupt: everything before it was decoded.
            self.warnings.append(f"{self.name}: compressed data is damaged ({exc}); the rest was not read")
        if source.snaplen_cut:
            self.warnings.append(
                f"{self.name}: {source.snaplen_cut} packet(s) were cut by the capture's snapshot length;"
                " their missing bytes are reported as TCP gaps"
            )
        for linktype, count in source.undecoded.items():
            name = _UNDECODED_NAMES.get(linktype)
            self.warnings.append(
                f"{self.name}: link type {linktype}{f' ({name})' if name else ''} is not decoded;"
                f" its {count} packet(s) were skipped"
            )

    def on_wait(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` before each read of a stream (stdin, a pipe, gzip), where
        the reader may wait for more input: what the caller holds back for output can
        be written then, so that a capture fed as it happens is shown as it arrives."""
        self._source.before_read = callback

    def on_secrets(self, callback: Callable[[bytes], None]) -> None:
        """Call ``callback`` with the text of each TLS key log a pcapng Decryption Secrets Block carries (as
        ``editcap --inject-secrets tls,KEYLOG`` writes), when the reader reaches it: before the packets it is for.
        Set it before the first packet is read."""
        self._source.on_secrets = callback

    def only_shard(self, shard: int, shards: int) -> None:
        """Skip, before making any object of them, the packets of TCP connections
        outside ``shard`` of ``shards`` (packet.shard_of) that can be told at fixed
        offsets: Ethernet, IPv4 without options. Other packets are left to the
        Inspector's own shard test. Packet numbers still count every record."""
        self._source.shard = shard
        self._source.shards = shards

    @property
    def last_skipped(self) -> tuple[int, float] | None:
        """Number and time of the last packet only_shard() skipped (known once the
        iteration is over)."""
        return self._source.last_skipped

    @property
    def count(self) -> int:
        """The number of packet records in the capture, skipped ones included (known
        once the iteration is over)."""
        return self._source.count

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()


def open_capture(path: str) -> CaptureReader:
    """Open a capture file by path, or standard input for ``-``.

    Raises CaptureError when the file cannot be opened or is not a capture.
    """
    if path == "-":
        stream: BinaryIO = sys.stdin.buffer
        return _open_stream("<stdin>", stream, None)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by CaptureReader.close()
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{path}: is a directory, not a capture file") from None
    except PermissionError:
        raise CaptureError(f"{path}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        if not _is_regular(f):
            return _open_stream(path, f, f)  # a FIFO or <(process substitution)
        size = os.fstat(f.fileno()).st_size
        head = f.read(4)
        if head[:2] == GZIP_MAGIC or len(head) < 4:
            f.seek(0)
            return _open_stream(path, f, f, size)
        parse, _ = _header(path, head, f.read)
        return CaptureReader(_FileSource(path, parse, f.fileno(), size), f, size)
    except OSError as exc:
        f.close()
        raise CaptureError(f"{path}: cannot read: {exc.strerror}") from None
    except CaptureError:
        f.close()
        raise


def _is_regular(f: BinaryIO) -> bool:
    return stat.S_ISREG(os.fstat(f.fileno()).st_mode)


def _open_stream(name: str, stream: BinaryIO, closer: BinaryIO | None, size: int | None = None) -> CaptureReader:
    head = _peek(stream, 4)
    if head[:2] == GZIP_MAGIC:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=cast(BinaryIO, _Prefixed(head, stream)), mode="rb"))
        try:
            head = stream.read(4)
            parse, head = _header(name, head, stream.read)
        except (OSError, EOFError, zlib.error) as exc:
            raise CaptureError(f"{name}: not a readable gzip file ({exc})") from None
    else:
        parse, head = _header(name, head, lambda n: _peek(stream, n))
    return CaptureReader(_StreamSource(name, parse, head, stream), closer, size)


def _peek(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data


class _Prefixed:
    """A read-only stream that yields ``prefix`` before the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n < 0:
                data, self._prefix = self._prefix + self._stream.read(), b""
                return data
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            return data
        return self._stream.read(n)


def _format(name: str, first: bytes) -> Callable[[_Source], Iterator[RawPacket]]:
    """The parser for the magic number: checked at open, so 'not a capture' fails at once."""
    if len(first) == 0:
        raise CaptureError(f"{name}: empty file, not a capture")
    if len(first) < 4:
        raise CaptureError(f"{name}: too short to be a capture ({len(first)} bytes)")
    magic_le = struct.unpack_from("<I", first)[0]
    magic_be = struct.unpack_from(">I", first)[0]
    if PCAP_MAGIC_US in (magic_le, magic_be) or PCAP_MAGIC_NS in (magic_le, magic_be):
        return _pcap
    if magic_le == PCAPNG_SHB:
        return _pcapng
    shown = " ".join(f"{b:02x}" for b in first[:4])
    raise CaptureError(f"{name}: not a pcap or pcapng capture (starts with {shown})")


def _header(
    name: str, first: bytes, read: Callable[[int], bytes]
) -> tuple[Callable[[_Source], Iterator[RawPacket]], bytes]:
    """The parser for the magic number in ``first``, and the capture's head read on
    with ``read``: the pcap file header, or the first pcapng Section Header Block.
    A file cut or corrupt in there cannot be read at all: CaptureError, at open."""
    parse = _format(name, first)
    head = first
    if parse is _pcap:
        head += read(24 - len(head))
        if len(head) < 24:
            raise CaptureError(f"{name}: pcap header cut short ({len(head)} bytes)")
        return parse, head
    head += read(12 - len(head))
    if len(head) < 12:
        raise CaptureError(f"{name}: pcapng section header cut short ({len(head)} bytes)")
    bom = struct.unpack_from("<I", head, 8)[0]
    if bom not in (PCAPNG_BYTE_ORDER, 0x4D3C2B1A):
        shown = " ".join(f"{b:02x}" for b in head[8:12])
        raise CaptureError(f"{name}: corrupt pcapng section header (byte-order magic {shown})")
    blen = struct.unpack_from("<I" if bom == PCAPNG_BYTE_ORDER else ">I", head, 4)[0]
    if blen < 12 or blen % 4 or blen > MAX_RECORD:
        raise CaptureError(f"{name}: corrupt pcapng section header (length {blen})")
    head += read(blen - len(head))
    if len(head) < blen:
        raise CaptureError(f"{name}: pcapng section header cut short ({len(head)} of {blen} bytes)")
    return parse, head


class _Source:
    """Gives a format parser one contiguous buffer, ``buf``, that ``refill`` extends.

    The parser records damage in ``warnings`` and counts snaplen-cut packets.
    """

    buf: memoryview

    def __init__(self, name: str, parse: Callable[[_Source], Iterator[RawPacket]]) -> None:
        self.name = name
        self.parse = parse
        self.warnings: list[str] = []
        self.snaplen_cut = 0
        self.count = 0  # packet records, set when the parser stops
        # Packets of link types that are not decoded, per link type, in the order met
        # (set when the parser stops).
        self.undecoded: dict[int, int] = {}
        self.shard = 0
        self.shards = 0  # 0: keep every packet (CaptureReader.only_shard)
        # The number and time of the last packet skipped for another shard (set when
        # the parser stops): a worker whose last packet came earlier ends there.
        self.last_skipped: tuple[int, float] | None = None
        self.before_read: Callable[[], None] | None = None  # streams only: CaptureReader.on_wait
        self.on_secrets: Callable[[bytes], None] | None = None  # CaptureReader.on_secrets
        # Reading stopped before the end for a reason already in warnings: the bytes
        # left unparsed are not a record cut short.
        self.stopped = False

    def refill(self, pos: int) -> bool:
        """Drop the bytes before ``pos`` and read more after them; False at end of input."""
        raise NotImplementedError


class _FileSource(_Source):
    """A regular file, read chunk by chunk with pread. Each chunk is a new bytes
    object, never reused, so the packets of earlier chunks stay valid, and a chunk
    is freed once no packet refers to it: memory stays flat however large the file.
    The unparsed tail of a chunk (a record cut by the chunk's end) is read again at
    the start of the next one instead of being copied, so each byte is copied once,
    from the page cache.

    Only the size the file had when it was opened is read. A file that shrinks
    meanwhile (tcpdump -C/-W rotating its files) ends the reading early with a
    warning; a mapping of the file would have died of SIGBUS there.
    """

    def __init__(self, name: str, parse: Callable[[_Source], Iterator[RawPacket]], fd: int, size: int) -> None:
        super().__init__(name, parse)
        self._fd = fd
        self._size = size
        self._base = 0  # file offset of buf[0]
        self.buf = memoryview(b"")

    def refill(self, pos: int) -> bool:
        start = self._base + pos
        end = self._base + len(self.buf)
        if end >= self._size:
            return False
        want = min(end - start + FILE_CHUNK, self._size - start)
        try:
            data = os.pread(self._fd, want, start)
        except OSError as exc:
            self.warnings.append(f"{self.name}: cannot read ({exc.strerror}); the rest was not read")
            self._size = end
            self.stopped = True
            return False
        if len(data) < want:
            self.warnings.append(f"{self.name}: the file shrank while it was read; the rest was not read")
            self._size = start + len(data)
            self.stopped = True
            if self._size <= end:
                return False
        self._base = start
        self.buf = memoryview(data)
        return True


class _StreamSource(_Source):
    """stdin, a pipe or a gzip stream: chunks are read as they come, with the
    unparsed tail of the previous one copied in front."""

    def __init__(
        self, name: str, parse: Callable[[_Source], Iterator[RawPacket]], head: bytes, stream: BinaryIO
    ) -> None:
        super().__init__(name, parse)
        # One read call at a time (read1), so that packets from a live pipe
        # (tcpdump -w - | wsinspect read -) are decoded as they arrive.
        self._read = getattr(stream, "read1", None) or stream.read
        self.buf = memoryview(head)

    def refill(self, pos: int) -> bool:
        if self.before_read is not None:
            self.before_read()
        more = self._read(STREAM_CHUNK)
        if not more:
            return False
        rest = self.buf[pos:]
        self.buf = memoryview(bytes(rest) + more if len(rest) else more)
        return True


def _pcap(src: _Source) -> Iterator[RawPacket]:
    warnings = src.warnings
    buf = src.buf
    while len(buf) < 24:  # checked at open (_header): short only if the file shrank since
        if not src.refill(0):
            return
        buf = src.buf
    magic = struct.unpack_from("<I", buf)[0]
    endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    magic = struct.unpack_from(endian + "I", buf)[0]
    divisor = 1e9 if magic == PCAP_MAGIC_NS else 1e6
    network = struct.unpack_from(endian + "I", buf, 20)[0]
    # Bits 16 and up of the LinkType field carry the FCS length and flags.
    linktype = network & 0xFFFF
    record = struct.Struct(endian + "IIII")
    unpack = record.unpack_from
    shard, shards = src.shard, src.shards
    if linktype != LINKTYPE_ETHERNET:
        shards = 0  # the shard test below reads Ethernet offsets
    # packet.shard_of at fixed offsets (packet.SHARD_BYTES) from the record's start.
    shard_a, shard_b = (16 + at for at in SHARD_BYTES)
    number = 0
    pos = 24
    skipped: tuple[int, int, int] | None = None
    try:
        while True:
            n = len(buf)
            while pos + 16 <= n:
                sec, frac, caplen, origlen = unpack(buf, pos)
                end = pos + 16 + caplen
                if end > n:
                    if caplen > MAX_RECORD:
                        warnings.append(
                            f"{src.name}: corrupt record header at byte offset {pos} "
                            f"(captured length {caplen}); the rest was not read"
                        )
                        return
                    break
                number += 1
                if caplen < origlen:
                    src.snaplen_cut += 1
                # Another shard's Ethernet/IPv4 packet (packet.SHARD_BYTES) costs no object.
                if (
                    shards
                    and caplen >= 38
                    and buf[pos + 30] == 0x45
                    and buf[pos + 28] == 0x08
                    and buf[pos + 29] == 0
                    and (buf[pos + shard_a] ^ buf[pos + shard_b]) % shards != shard
                ):
                    skipped = number, sec, frac
                    pos = end
                    continue
                yield RawPacket(sec + frac / divisor, linktype, buf[pos + 16 : end], number)
                pos = end
            if not src.refill(pos):
                break
            buf = src.buf
            pos = 0
    finally:
        src.count = number
        if skipped is not None:
            src.last_skipped = skipped[0], skipped[1] + skipped[2] / divisor
        if number and linktype not in DECODED_LINKTYPES:
            src.undecoded[linktype] = number
    if pos < len(buf) and not src.stopped:
        warnings.append(
            f"{src.name}: the capture is cut short in the middle of a packet record"
            f" ({len(buf) - pos} trailing bytes ignored)"
        )


# The shortest valid length of each pcapng block type: its fixed fields and trailer.
_MIN_BLOCK = {1: 20, 2: 32, 3: 16, 6: 32, PCAPNG_DSB: 20}


def _tsresol(value: int) -> float:
    """if_tsresol: the MSB selects a power of 2 instead of 10 (pcapng spec 4.2)."""
    if value & 0x80:
        return float(2 ** (value & 0x7F))
    return float(10**value)


def _pcapng(src: _Source) -> Iterator[RawPacket]:
    warnings = src.warnings
    buf = src.buf
    pos = 0
    endian = "<"
    head = struct.Struct("<II")
    epb = struct.Struct("<IIIII").unpack_from
    # linktype, divisor, offset, snaplen, whether the link type is decoded
    interfaces: list[tuple[int, float, float, int, bool]] = []
    undecoded = src.undecoded
    shard, shards = src.shard, src.shards
    shard_a, shard_b = (28 + at for at in SHARD_BYTES)  # as in _pcap, from the block's start
    number = 0
    last = 0, 1.0, 0.0  # the last Enhanced Packet Block's time: ticks, divisor, offset
    skipped: tuple[int, tuple[int, float, float]] | None = None
    try:
        while True:
            n = len(buf)
            while pos + 12 <= n:
                btype, blen = head.unpack_from(buf, pos)
                if btype == PCAPNG_SHB:
                    bom = struct.unpack_from("<I", buf, pos + 8)[0]
                    if bom == PCAPNG_BYTE_ORDER:
                        endian = "<"
                    elif bom == 0x4D3C2B1A:
                        endian = ">"
                    else:
                        warnings.append(f"{src.name}: corrupt pcapng section header at byte offset {pos}")
                        return
                    head = struct.Struct(endian + "II")
                    epb = struct.Struct(endian + "IIIII").unpack_from
                    blen = head.unpack_from(buf, pos)[1]
                    interfaces = []
                if blen < 12 or blen % 4:
                    warnings.append(
                        f"{src.name}: corrupt pcapng block at byte offset {pos} (length {blen}); the rest was not read"
                    )
                    return
                end = pos + blen
                if end > n:
                    if blen > MAX_RECORD:
                        warnings.append(f"{src.name}: corrupt pcapng block length {blen} at byte offset {pos}")
                        return
                    break
                if blen < _MIN_BLOCK.get(btype, 12):
                    warnings.append(f"{src.name}: corrupt pcapng block at byte offset {pos} (too short for its type)")
                    return
                if btype == 6:  # Enhanced Packet Block
                    iface, hi, lo, caplen, origlen = epb(buf, pos + 8)
                    if iface < len(interfaces) and 28 + caplen <= blen:
                        linktype, divisor, offset, _, decoded = interfaces[iface]
                        last = (hi << 32) | lo, divisor, offset  # for a Simple Packet Block after it
                        number += 1
                        if caplen < origlen:
                            src.snaplen_cut += 1
                        if not decoded:
                            undecoded[linktype] = undecoded.get(linktype, 0) + 1
                        # As in _pcap: another shard's Ethernet/IPv4 packet is skipped here.
                        if (
                            shards
                            and linktype == LINKTYPE_ETHERNET
                            and caplen >= 38
                            and buf[pos + 42] == 0x45
                            and buf[pos + 40] == 0x08
                            and buf[pos + 41] == 0
                            and (buf[pos + shard_a] ^ buf[pos + shard_b]) % shards != shard
                        ):
                            skipped = number, last
                            pos = end
                            continue
                        yield RawPacket(
                            ((hi << 32) | lo) / divisor + offset, linktype, buf[pos + 28 : pos + 28 + caplen], number
                        )
                elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
                    if interfaces:
                        linktype, _, _, snaplen, decoded = interfaces[0]
                        origlen = struct.unpack_from(endian + "I", buf, pos + 8)[0]
                        caplen = min(origlen, blen - 16, snaplen or origlen)
                        number += 1
                        if caplen < origlen:
                            src.snaplen_cut += 1
                        if not decoded:
                            undecoded[linktype] = undecoded.get(linktype, 0) + 1
                        # It has no time of its own: the last timed packet's (tshark shows
                        # none), so that relative times and session durations stay true.
                        ticks, divisor, offset = last
                        yield RawPacket(ticks / divisor + offset, linktype, buf[pos + 12 : pos + 12 + caplen], number)
                elif btype == 1:  # Interface Description Block
                    linktype, _, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
                    divisor, offset = 1e6, 0.0
                    opt = pos + 16
                    while opt + 4 <= end - 4:
                        code, olen = struct.unpack_from(endian + "HH", buf, opt)
                        if code == 0 or opt + 4 + olen > end - 4:
                            break  # the end of options, or one that overruns its block
                        if code == 9 and olen >= 1:
                            divisor = _tsresol(buf[opt + 4])
                        elif code == 14 and olen >= 8:
                            offset = float(struct.unpack_from(endian + "q", buf, opt + 4)[0])
                        opt += 4 + ((olen + 3) & ~3)
                    interfaces.append((linktype, divisor, offset, snaplen, linktype in DECODED_LINKTYPES))
                elif btype == PCAPNG_DSB:
                    # Decryption Secrets Block (pcapng spec 4.7): secrets type, length, then the secrets; only TLS
                    # key logs are used. Rare (one per key log), so not on the packets' path above.
                    stype, slen = struct.unpack_from(endian + "II", buf, pos + 8)
                    if stype == SECRETS_TLS_KEYLOG and 16 + slen <= blen - 4 and src.on_secrets is not None:
                        src.on_secrets(bytes(buf[pos + 16 : pos + 16 + slen]))
                elif btype == 2:  # obsolete Packet Block
                    iface, _, hi, lo, caplen, origlen = struct.unpack_from(endian + "HHIIII", buf, pos + 8)
                    if iface < len(interfaces) and 28 + caplen <= blen:
                        linktype, divisor, offset, _, decoded = interfaces[iface]
                        last = (hi << 32) | lo, divisor, offset
                        number += 1
                        if caplen < origlen:
                            src.snaplen_cut += 1
                        if not decoded:
                            undecoded[linktype] = undecoded.get(linktype, 0) + 1
                        yield RawPacket(
                            ((hi << 32) | lo) / divisor + offset, linktype, buf[pos + 28 : pos + 28 + caplen], number
                        )
                pos = end
            if not src.refill(pos):
                break
            buf = src.buf
            pos = 0
    finally:
        src.count = number
        if skipped is not None:
            ticks, divisor, offset = skipped[1]
            src.last_skipped = skipped[0], ticks / divisor + offset
    if pos < len(buf) and not src.stopped:
        warnings.append(
            f"{src.name}: the capture is cut short in the middle of a block ({len(buf) - pos} trailing bytes ignored)"
        )


# -- writing ------------------------------------------------------------------

SNAPLEN = 262144  # tcpdump's default: lo's 64 KiB packets and GSO ones are kept whole
_pcap_header = struct.Struct("<IHHiIII")
_pcap_record = struct.Struct("<IIII")


class PcapWriter:
    """A pcap file with nanosecond timestamps, written by the capture thread.

    Records are buffered and flushed after every pass over the rings, so the file on
    disk is a valid capture a few milliseconds behind the wire; a kill -9 can at worst
    cut the last record, which readers report and skip.
    """

    def __init__(self, path: str, linktype: int) -> None:
        self.path = path
        try:
            self._f = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise CaptureError(f"cannot write {path}: {exc.strerror}") from None
        self.packets = 0  # whole records on disk
        self._pack = _pcap_record.pack
        self._write = self._f.write
        # Where each record handed to the buffer since the last flush ends in the
        # file: a flush that fails (disk full) may have written only some of them.
        self._ends: list[int] = []
        self._offset = _pcap_header.size
        try:
            self._write(_pcap_header.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, linktype))
            self._f.flush()
        except OSError as exc:
            with contextlib.suppress(OSError):  # the fd is closed even when the last flush fails
                self._f.close()
            raise CaptureError(f"cannot write {path}: {exc.strerror}") from None

    def write(self, sec: int, nsec: int, data: bytes, origlen: int) -> None:
        try:
            self._write(self._pack(sec, nsec, len(data), origlen))
            self._write(data)
        except OSError as exc:
            self._failed(exc)
        self._offset += _pcap_record.size + len(data)
        self._ends.append(self._offset)

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as exc:
            self._failed(exc)
        self.packets += len(self._ends)
        self._ends.clear()

    def close(self) -> None:
        try:
            self._f.close()
        except OSError as exc:
            self._failed(exc)
        self.packets += len(self._ends)
        self._ends.clear()

    def _failed(self, exc: OSError) -> NoReturn:
        """Count the records that did reach the disk, then report the failure."""
        with contextlib.suppress(OSError):
            size = os.stat(self.path).st_size  # the file may be closed already
            self.packets += sum(1 for end in self._ends if end <= size)
        self._ends.clear()
        raise CaptureError(f"cannot write {self.path}: {exc.strerror}") from None
