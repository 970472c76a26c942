"""capture.py: pcap / pcapng / gzip / stdin readers, damage reporting, whole-job errors.

Capture files are built by hand with struct (the builders below follow the pcap and
pcapng specifications field by field) and, for a cross-check, with dpkt's writers.
Every format is read three ways: from a file (in chunks of FILE_CHUNK, small ones
too), streamed from stdin or gzip in small chunks (piecewise), and with trailing bytes
after the last record (reported, never parsed as a packet).
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import random
import struct
import sys
import threading
from pathlib import Path

import dpkt
import pytest

from tests.packets import Flow
from wsinspect import capture
from wsinspect.capture import PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAPNG_BYTE_ORDER, PCAPNG_SHB, CaptureReader, open_capture
from wsinspect.errors import CaptureError, WsinspectError
from wsinspect.packet import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, shard_of, tcp_fields

Packet = tuple[float, int, bytes]

# pcapng block types (pcapng spec 11.1) and interface options (4.2).
BT_IDB = 1
BT_PB = 2  # obsolete Packet Block
BT_SPB = 3
BT_NRB = 4
BT_ISB = 5
BT_EPB = 6
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14


# --- builders -------------------------------------------------------------------------------------------------------


def pcap_header(
    *, endian: str = "<", nano: bool = False, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 65535
) -> bytes:
    """The 24-byte pcap file header: magic, version 2.4, thiszone, sigfigs, snaplen, network."""
    magic = PCAP_MAGIC_NS if nano else PCAP_MAGIC_US
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(sec: int, frac: int, data: bytes, *, origlen: int | None = None, endian: str = "<") -> bytes:
    """A 16-byte record header (ts_sec, ts_frac, caplen, origlen) and the captured bytes."""
    orig = len(data) if origlen is None else origlen
    return struct.pack(endian + "IIII", sec, frac, len(data), orig) + data


def pcap(records: list[tuple[int, int, bytes]], *, endian: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    return pcap_header(endian=endian, nano=nano, linktype=linktype) + b"".join(
        pcap_record(sec, frac, data, endian=endian) for sec, frac, data in records
    )


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(btype: int, body: bytes, endian: str = "<") -> bytes:
    """A pcapng block: type, total length, body padded to 32 bits, total length again."""
    body = pad4(body)
    blen = 12 + len(body)
    return struct.pack(endian + "II", btype, blen) + body + struct.pack(endian + "I", blen)


def option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + pad4(value)


def shb(endian: str = "<") -> bytes:
    """Section Header Block: byte-order magic, version 1.0, section length unknown (-1)."""
    return block(PCAPNG_SHB, struct.pack(endian + "IHHq", PCAPNG_BYTE_ORDER, 1, 0, -1), endian)


def idb(
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    endian: str = "<",
) -> bytes:
    """Interface Description Block: linktype, reserved, snaplen, options."""
    opts = b""
    if tsresol is not None:
        opts += option(OPT_IF_TSRESOL, bytes([tsresol]), endian)
    if tsoffset is not None:
        opts += option(OPT_IF_TSOFFSET, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += option(OPT_ENDOFOPT, b"", endian)
    return block(BT_IDB, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian)


def epb(
    iface: int, units: int, data: bytes, *, origlen: int | None = None, endian: str = "<", opts: bytes = b""
) -> bytes:
    """Enhanced Packet Block: interface, timestamp (high, low), caplen, origlen, data, options."""
    orig = len(data) if origlen is None else origlen
    head = struct.pack(endian + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    return block(BT_EPB, head + pad4(data) + opts, endian)


def spb(data: bytes, *, origlen: int | None = None, endian: str = "<") -> bytes:
    """Simple Packet Block: original length, then the data (its length is implied)."""
    orig = len(data) if origlen is None else origlen
    return block(BT_SPB, struct.pack(endian + "I", orig) + data, endian)


def pb(iface: int, units: int, data: bytes, *, origlen: int | None = None, endian: str = "<") -> bytes:
    """Obsolete Packet Block: interface (16 bits), drops count (16 bits), then as an EPB."""
    orig = len(data) if origlen is None else origlen
    head = struct.pack(endian + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    return block(BT_PB, head + data, endian)


# --- reading helpers -------------------------------------------------------------------------------------------------


def collect(reader: CaptureReader) -> tuple[list[Packet], list[str]]:
    """Every packet as (ts, linktype, bytes), read fully before any comparison so that a
    memoryview overwritten by a later chunk would show."""
    try:
        raws = list(reader)
        return [(p.ts, p.linktype, bytes(p.data)) for p in raws], list(reader.warnings)
    finally:
        reader.close()


def read_file(path: Path) -> tuple[list[Packet], list[str]]:
    return collect(open_capture(str(path)))


def write(tmp_path: Path, data: bytes, name: str = "capture.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class _Stdin:
    """Stands in for sys.stdin: only ``.buffer`` is read."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def read_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> tuple[list[Packet], list[str]]:
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    return collect(open_capture("-"))


def us(ts: float) -> int:
    return round(ts * 1_000_000)


def ns(ts: float) -> int:
    return round(ts * 1_000_000_000)


# Three small packets of distinct sizes (one not a multiple of 4, to exercise padding).
FRAMES = [bytes(range(60)), b"\xab" * 1, bytes(range(255, 0, -1)) * 3]
RECORDS = [(1_700_000_000, 123_456, FRAMES[0]), (1_700_000_001, 0, FRAMES[1]), (1_700_000_002, 999_999, FRAMES[2])]


# --- classic pcap ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little", "big"])
def test_pcap_microseconds(tmp_path: Path, endian: str) -> None:
    packets, warnings = read_file(write(tmp_path, pcap(RECORDS, endian=endian)))
    assert warnings == []
    assert [(us(ts), lt, data) for ts, lt, data in packets] == [
        (1_700_000_000_123_456, LINKTYPE_ETHERNET, FRAMES[0]),
        (1_700_000_001_000_000, LINKTYPE_ETHERNET, FRAMES[1]),
        (1_700_000_002_999_999, LINKTYPE_ETHERNET, FRAMES[2]),
    ]


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little", "big"])
def test_pcap_nanoseconds(tmp_path: Path, endian: str) -> None:
    # Small seconds keep a double exact to the nanosecond (at epoch scale it holds ~0.24 us).
    records = [(1, 1, FRAMES[0]), (2, 999_999_999, FRAMES[1]), (3, 500_000_000, FRAMES[2])]
    packets, warnings = read_file(write(tmp_path, pcap(records, endian=endian, nano=True, linktype=LINKTYPE_RAW)))
    assert warnings == []
    assert [(ns(ts), lt, data) for ts, lt, data in packets] == [
        (1_000_000_001, LINKTYPE_RAW, FRAMES[0]),
        (2_999_999_999, LINKTYPE_RAW, FRAMES[1]),
        (3_500_000_000, LINKTYPE_RAW, FRAMES[2]),
    ]


def test_pcap_nanoseconds_at_epoch_scale(tmp_path: Path) -> None:
    packets, _ = read_file(write(tmp_path, pcap([(1_700_000_000, 123_456_789, b"x")], nano=True)))
    # The fraction is read as nanoseconds (as microseconds it would add 123 s).
    assert abs(packets[0][0] - 1_700_000_000.123456789) < 1e-6


def test_pcap_written_by_dpkt(tmp_path: Path) -> None:
    path = tmp_path / "dpkt.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=LINKTYPE_LINUX_SLL)
        writer.writepkt(FRAMES[0], ts=1_600_000_000.25)
        writer.writepkt(FRAMES[2], ts=1_600_000_001.5)
    packets, warnings = read_file(path)
    assert warnings == []
    assert [(us(ts), lt, data) for ts, lt, data in packets] == [
        (1_600_000_000_250_000, LINKTYPE_LINUX_SLL, FRAMES[0]),
        (1_600_000_001_500_000, LINKTYPE_LINUX_SLL, FRAMES[2]),
    ]


def test_pcap_nano_written_by_dpkt(tmp_path: Path) -> None:
    path = tmp_path / "dpkt_ns.pcap"
    with path.open("wb") as f:
        dpkt.pcap.Writer(f, nano=True).writepkt(FRAMES[1], ts=5.000000007)
    packets, _ = read_file(path)
    assert [(ns(ts), lt, data) for ts, lt, data in packets] == [(5_000_000_007, LINKTYPE_ETHERNET, FRAMES[1])]


def test_pcap_without_packets(tmp_path: Path) -> None:
    assert read_file(write(tmp_path, pcap_header())) == ([], [])


def test_pcap_zero_length_record(tmp_path: Path) -> None:
    packets, warnings = read_file(write(tmp_path, pcap([(7, 0, b""), (8, 0, b"z")])))
    assert packets == [(7.0, LINKTYPE_ETHERNET, b""), (8.0, LINKTYPE_ETHERNET, b"z")]
    assert warnings == []


def test_pcap_data_is_a_memoryview_into_the_file(tmp_path: Path) -> None:
    reader = open_capture(str(write(tmp_path, pcap(RECORDS))))
    try:
        raws = list(reader)
        assert all(isinstance(p.data, memoryview) for p in raws)
        assert bytes(raws[2].data) == FRAMES[2]
    finally:
        reader.close()


def test_pcap_linktype_with_fcs_bits(tmp_path: Path) -> None:
    # LinkType field: FCS len 4 in bits 28-31, the P (FCS length present) bit 0x04000000, Ethernet.
    data = pcap_header(linktype=0x4000_0000 | 0x0400_0000 | LINKTYPE_ETHERNET) + pcap_record(1, 0, FRAMES[0])
    packets, _ = read_file(write(tmp_path, data))
    assert packets == [(1.0, LINKTYPE_ETHERNET, FRAMES[0])]


# --- damage in pcap ---------------------------------------------------------------------------------------------------


def test_pcap_cut_mid_record_data(tmp_path: Path) -> None:
    data = pcap(RECORDS)
    cut = data[: len(data) - 10]  # 16-byte header and all but 10 bytes of the last frame
    path = write(tmp_path, cut)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == FRAMES[:2]
    trailing = 16 + len(FRAMES[2]) - 10
    assert warnings == [
        f"{path}: the capture is cut short in the middle of a packet record ({trailing} trailing bytes ignored)"
    ]


def test_pcap_cut_mid_record_header(tmp_path: Path) -> None:
    data = pcap(RECORDS[:2]) + pcap_record(*RECORDS[2])[:5]
    path = write(tmp_path, data)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == FRAMES[:2]
    assert warnings == [f"{path}: the capture is cut short in the middle of a packet record (5 trailing bytes ignored)"]


@pytest.mark.parametrize("size", [4, 10, 20, 23])
@pytest.mark.parametrize("form", ["file", "gzip", "stdin"])
def test_pcap_cut_in_file_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, form: str) -> None:
    # Nothing can be read from it: a whole-job failure (exit 1), as for a file that is not a capture.
    name, error = _open_error(tmp_path, monkeypatch, form, pcap_header()[:size])
    assert error == f"{name}: pcap header cut short ({size} bytes)"


def _open_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, data: bytes) -> tuple[str, str]:
    """The capture's name and the error opening ``data`` gives, as a file, gzip-compressed, or on stdin."""
    with pytest.raises(CaptureError) as info:
        if form == "stdin":
            monkeypatch.setattr(sys, "stdin", _Stdin(data))
            open_capture("-")
        else:
            open_capture(str(write(tmp_path, gzip.compress(data) if form == "gzip" else data)))
    return ("<stdin>" if form == "stdin" else str(tmp_path / "capture.bin")), str(info.value)


def test_pcap_corrupt_record_length(tmp_path: Path) -> None:
    good = pcap(RECORDS[:2])
    bad = struct.pack("<IIII", 9, 0, 0xFFFF_FFF0, 60) + b"\0" * 60
    path = write(tmp_path, good + bad + pcap_record(*RECORDS[2]))
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == FRAMES[:2]
    assert warnings == [
        f"{path}: corrupt record header at byte offset {len(good)} (captured length {0xFFFF_FFF0});"
        " the rest was not read"
    ]


def test_pcap_plausible_length_past_the_end(tmp_path: Path) -> None:
    # A captured length under the corruption threshold that runs past the end is a cut file.
    good = pcap(RECORDS[:1])
    path = write(tmp_path, good + struct.pack("<IIII", 9, 0, 5000, 5000) + b"\0" * 100)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == FRAMES[:1]
    assert warnings == [
        f"{path}: the capture is cut short in the middle of a packet record (116 trailing bytes ignored)"
    ]


def test_pcap_snaplen_cut_packets_counted(tmp_path: Path) -> None:
    data = (
        pcap_header(snaplen=8)
        + pcap_record(1, 0, FRAMES[0][:8], origlen=60)
        + pcap_record(2, 0, FRAMES[1])
        + pcap_record(3, 0, FRAMES[2][:8], origlen=765)
        + pcap_record(4, 0, FRAMES[0][:8], origlen=9)  # one byte short
    )
    path = write(tmp_path, data)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0][:8], FRAMES[1], FRAMES[2][:8], FRAMES[0][:8]]
    assert warnings == [
        f"{path}: 3 packet(s) were cut by the capture's snapshot length; their missing bytes are reported as TCP gaps"
    ]


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 5000])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_file_chunks_slide_across_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, chunk: int
) -> None:
    # Records cross chunk boundaries, some are longer than a chunk, and every packet
    # is compared only after the whole file was read (collect): a chunk reused while a
    # packet still refers to it would show.
    rng = random.Random(chunk)
    frames = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(79)] + [rng.randbytes(300)]
    data = _records(kind, frames)
    assert len(data) > 10 * 4096
    path = write(tmp_path, data)
    expected = read_file(path)
    assert [p[2] for p in expected[0]] == frames
    monkeypatch.setattr(capture, "FILE_CHUNK", chunk)
    assert read_file(path) == expected
    cut = write(tmp_path, data[:-100], "cut")
    packets, warnings = read_file(cut)
    assert [p[2] for p in packets] == frames[:-1]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{cut}: the capture is cut short in the middle of a ")


def _records(kind: str, frames: list[bytes]) -> bytes:
    if kind == "pcap":
        return pcap([(i, i, f) for i, f in enumerate(frames)])
    return shb() + idb(LINKTYPE_ETHERNET) + b"".join(epb(0, i, f) for i, f in enumerate(frames))


@pytest.mark.parametrize("chunk", [64, 5000, 1 << 20])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_file_shrinking_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, chunk: int) -> None:
    # tcpdump -C/-W truncates its files in turn: what was read stays valid, the rest
    # is a warning. (A mapping of the file died of SIGBUS here, taking the process.)
    rng = random.Random(chunk)
    frames = [rng.randbytes(1000) for _ in range(3000)]
    data = _records(kind, frames)
    assert len(data) > 2 * (1 << 20)
    path = write(tmp_path, data)
    monkeypatch.setattr(capture, "FILE_CHUNK", chunk)
    reader = open_capture(str(path))
    packets = iter(reader)
    held = [next(packets) for _ in range(10)]
    os.truncate(path, 1000)  # mid-record, before the end of what was read already
    rest = list(packets)
    reader.close()
    assert [bytes(p.data) for p in held] == frames[:10]
    assert 0 <= len(rest) < len(frames) - 10
    assert [bytes(p.data) for p in rest] == frames[10 : 10 + len(rest)]
    assert reader.warnings == [f"{path}: the file shrank while it was read; the rest was not read"]


def test_file_shrinking_to_nothing_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, pcap(RECORDS))
    reader = open_capture(str(path))
    os.truncate(path, 0)
    assert collect(reader) == ([], [f"{path}: the file shrank while it was read; the rest was not read"])


def test_file_growing_while_read_is_read_to_its_size_at_open(tmp_path: Path) -> None:
    # As a mapping did: parallel workers, which each open the file, all read the same records.
    path = write(tmp_path, pcap(RECORDS[:2]))
    reader = open_capture(str(path))
    with path.open("ab") as f:
        f.write(pcap_record(*RECORDS[2]))
    packets, warnings = collect(reader)
    assert [p[2] for p in packets] == FRAMES[:2]
    assert warnings == []


def test_file_read_error_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "FILE_CHUNK", 64)
    path = write(tmp_path, pcap(RECORDS))
    reader = open_capture(str(path))
    packets = iter(reader)
    first = next(packets)

    def failing_pread(fd: int, n: int, offset: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "pread", failing_pread)
    rest = list(packets)
    reader.close()
    read = [bytes(p.data) for p in (first, *rest)]
    assert read == FRAMES[: len(read)] and len(read) < len(FRAMES)
    assert reader.warnings == [f"{path}: cannot read (Input/output error); the rest was not read"]


@pytest.mark.parametrize(
    ("linktype", "shown"), [(105, "105 (IEEE 802.11)"), (127, "127 (IEEE 802.11 with radiotap header)"), (300, "300")]
)
def test_pcap_undecoded_link_type_is_a_warning(tmp_path: Path, linktype: int, shown: str) -> None:
    # The packets are still read (numbered, timed): only the decoder skips them.
    path = write(tmp_path, pcap(RECORDS, linktype=linktype))
    packets, warnings = read_file(path)
    assert [(lt, data) for _, lt, data in packets] == [(linktype, f) for f in FRAMES]
    assert warnings == [f"{path}: link type {shown} is not decoded; its 3 packet(s) were skipped"]
    assert read_file(write(tmp_path, pcap_header(linktype=linktype))) == ([], [])  # no packets, nothing skipped


@pytest.mark.parametrize("linktype", sorted(capture.DECODED_LINKTYPES))
def test_pcap_decoded_link_types_give_no_warning(tmp_path: Path, linktype: int) -> None:
    assert read_file(write(tmp_path, pcap(RECORDS, linktype=0x0400_0000 | linktype)))[1] == []


# --- pcapng ----------------------------------------------------------------------------------------------------------


def two_interfaces(endian: str = "<") -> bytes:
    """Interface 0: Ethernet in nanoseconds; interface 1: raw IP in 2^-20 s, offset 1000 s."""
    return (
        shb(endian)
        + idb(LINKTYPE_ETHERNET, tsresol=9, endian=endian)
        + block(BT_NRB, b"\0\0\0\0", endian)  # a block the reader does not need: skipped
        + idb(LINKTYPE_RAW, tsresol=0x80 | 20, tsoffset=1000, endian=endian)
        + epb(0, 1_000_000_123, FRAMES[0], endian=endian)
        + epb(1, (7 << 20) | (1 << 19), FRAMES[1], endian=endian, opts=option(OPT_COMMENT, b"hi", endian))
        + spb(FRAMES[2], endian=endian)
        + pb(1, 2 << 20, FRAMES[1], endian=endian)
        + block(BT_ISB, b"\0" * 12, endian)
        + epb(0, 1_700_000_000_123_456_789, FRAMES[2], endian=endian)
    )


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little", "big"])
def test_pcapng_two_interfaces(tmp_path: Path, endian: str) -> None:
    packets, warnings = read_file(write(tmp_path, two_interfaces(endian)))
    assert warnings == []
    assert [(lt, data) for _, lt, data in packets] == [
        (LINKTYPE_ETHERNET, FRAMES[0]),
        (LINKTYPE_RAW, FRAMES[1]),
        (LINKTYPE_ETHERNET, FRAMES[2]),  # Simple Packet Block: interface 0
        (LINKTYPE_RAW, FRAMES[1]),  # obsolete Packet Block
        (LINKTYPE_ETHERNET, FRAMES[2]),
    ]
    stamps = [ts for ts, _, _ in packets]
    assert stamps[0] == 1.000000123  # 10^-9 resolution
    assert stamps[1] == 1007.5  # 7.5 s in 2^-20 units, plus if_tsoffset
    assert stamps[2] == 1007.5  # a Simple Packet Block has no time: the last packet's
    assert stamps[3] == 1002.0
    assert abs(stamps[4] - 1_700_000_000.123456789) < 1e-6


def test_pcapng_default_resolution_is_microseconds(tmp_path: Path) -> None:
    data = shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1_700_000_000_654_321, FRAMES[0])
    packets, _ = read_file(write(tmp_path, data))
    assert [(us(ts), lt, d) for ts, lt, d in packets] == [(1_700_000_000_654_321, LINKTYPE_ETHERNET, FRAMES[0])]


def test_pcapng_power_of_two_resolution_exact(tmp_path: Path) -> None:
    # 1_700_000_000 s and one tick of 2^-20 s fit a double exactly.
    data = shb() + idb(LINKTYPE_IPV4, tsresol=0x80 | 20) + epb(0, (1_700_000_000 << 20) + 1, b"\x45")
    packets, _ = read_file(write(tmp_path, data))
    assert packets == [(1_700_000_000 + 2**-20, LINKTYPE_IPV4, b"\x45")]


def test_pcapng_millisecond_resolution_and_negative_offset(tmp_path: Path) -> None:
    data = shb() + idb(LINKTYPE_RAW, tsresol=3, tsoffset=-100) + epb(0, 250_500, b"\x60")
    packets, _ = read_file(write(tmp_path, data))
    assert packets == [(150.5, LINKTYPE_RAW, b"\x60")]


def test_pcapng_two_sections_with_different_byte_order(tmp_path: Path) -> None:
    data = (
        shb("<")
        + idb(LINKTYPE_ETHERNET, endian="<")
        + epb(0, 1_000_000, FRAMES[0], endian="<")
        + shb(">")
        + idb(LINKTYPE_RAW, tsresol=0, endian=">")
        + epb(0, 42, FRAMES[1], endian=">")
        + epb(1, 43, FRAMES[2], endian=">")  # this section defines interface 0 only: skipped
    )
    packets, warnings = read_file(write(tmp_path, data))
    assert packets == [(1.0, LINKTYPE_ETHERNET, FRAMES[0]), (42.0, LINKTYPE_RAW, FRAMES[1])]
    assert warnings == []


def test_pcapng_packet_for_undefined_interface_is_skipped(tmp_path: Path) -> None:
    data = shb() + epb(0, 1, FRAMES[0]) + spb(FRAMES[1]) + idb(LINKTYPE_ETHERNET) + epb(3, 1, FRAMES[1])
    data += epb(0, 2_000_000, FRAMES[2])
    assert read_file(write(tmp_path, data)) == ([(2.0, LINKTYPE_ETHERNET, FRAMES[2])], [])


def test_pcapng_written_by_dpkt(tmp_path: Path) -> None:
    path = tmp_path / "dpkt.pcapng"
    with path.open("wb") as f:
        writer = dpkt.pcapng.Writer(f, linktype=LINKTYPE_ETHERNET)
        writer.writepkt(FRAMES[0], ts=1_650_000_000.5)
        writer.writepkt(FRAMES[2], ts=1_650_000_001.000001)
    packets, warnings = read_file(path)
    assert warnings == []
    assert [(us(ts), lt, d) for ts, lt, d in packets] == [
        (1_650_000_000_500_000, LINKTYPE_ETHERNET, FRAMES[0]),
        (1_650_000_001_000_001, LINKTYPE_ETHERNET, FRAMES[2]),
    ]


def test_pcapng_snaplen_cut_packets_counted(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(LINKTYPE_ETHERNET, snaplen=8)
        + epb(0, 1, FRAMES[0][:8], origlen=60)
        + spb(FRAMES[2][:8], origlen=765)  # its data length is min(snaplen, origlen)
        + pb(0, 2, FRAMES[0][:8], origlen=61)
        + epb(0, 3, FRAMES[1])
        + spb(FRAMES[1])  # 1 byte, padded to 4: the original length says where data ends
        + epb(0, 4, FRAMES[0][:8], origlen=9)  # one byte short
    )
    path = write(tmp_path, data)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0][:8], FRAMES[2][:8], FRAMES[0][:8], FRAMES[1], FRAMES[1], FRAMES[0][:8]]
    assert warnings == [
        f"{path}: 4 packet(s) were cut by the capture's snapshot length; their missing bytes are reported as TCP gaps"
    ]


def test_pcapng_undecoded_link_types_one_warning_each(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(105)
        + idb(LINKTYPE_ETHERNET)
        + idb(127)
        + epb(0, 1, FRAMES[0])
        + epb(1, 2, FRAMES[1])
        + epb(2, 3, FRAMES[2])
        + spb(FRAMES[1])  # interface 0
        + pb(2, 4, FRAMES[0])
        + shb(">")  # a second section: interface 0 is 802.11 again, counted with the first
        + idb(105, endian=">")
        + idb(189, endian=">")  # no packets: not mentioned
        + epb(0, 5, FRAMES[2], endian=">")
    )
    path = write(tmp_path, data)
    packets, warnings = read_file(path)
    assert len(packets) == 6
    assert warnings == [
        f"{path}: link type 105 (IEEE 802.11) is not decoded; its 3 packet(s) were skipped",
        f"{path}: link type 127 (IEEE 802.11 with radiotap header) is not decoded; its 2 packet(s) were skipped",
    ]


def test_pcapng_cut_mid_block(tmp_path: Path) -> None:
    head = shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0])
    last = epb(0, 2, FRAMES[2])
    path = write(tmp_path, head + last[:40])
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert warnings == [f"{path}: the capture is cut short in the middle of a block (40 trailing bytes ignored)"]


def test_pcapng_cut_mid_block_header(tmp_path: Path) -> None:
    path = write(tmp_path, shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0]) + b"\x06\0\0\0\x40")
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert warnings == [f"{path}: the capture is cut short in the middle of a block (5 trailing bytes ignored)"]


@pytest.mark.parametrize("blen", [8, 13, 30])
def test_pcapng_corrupt_block_length(tmp_path: Path, blen: int) -> None:
    head = shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0])
    bad = struct.pack("<II", BT_EPB, blen) + b"\0" * 40
    path = write(tmp_path, head + bad + epb(0, 2, FRAMES[1]))
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert warnings == [
        f"{path}: corrupt pcapng block at byte offset {len(head)} (length {blen}); the rest was not read"
    ]


def test_pcapng_huge_block_length(tmp_path: Path) -> None:
    head = shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0])
    path = write(tmp_path, head + struct.pack("<II", BT_EPB, 0x7FFF_FFF0) + b"\0" * 40)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert warnings == [f"{path}: corrupt pcapng block length {0x7FFF_FFF0} at byte offset {len(head)}"]


def test_pcapng_corrupt_byte_order_magic(tmp_path: Path) -> None:
    bad = bytearray(shb())
    bad[8:12] = b"\x01\x02\x03\x04"
    path = write(tmp_path, bytes(bad) + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0]))
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: corrupt pcapng section header (byte-order magic 01 02 03 04)"
    # In a later section, it ends the reading with a warning after what came before.
    first = shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0])
    path = write(tmp_path, first + bytes(bad))
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert warnings == [f"{path}: corrupt pcapng section header at byte offset {len(first)}"]


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("form", ["file", "gzip", "stdin"])
def test_pcapng_cut_in_first_section_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endian: str, form: str
) -> None:
    head = shb(endian)
    for size, shown in [
        (4, "4 bytes"),
        (11, "11 bytes"),
        (12, f"12 of {len(head)} bytes"),
        (len(head) - 1, f"{len(head) - 1} of {len(head)} bytes"),
    ]:
        name, error = _open_error(tmp_path, monkeypatch, form, head[:size])
        assert error == f"{name}: pcapng section header cut short ({shown})"
    # The section header alone is a capture without packets.
    assert read_file(write(tmp_path, head)) == ([], [])


@pytest.mark.parametrize("blen", [8, 30, 0x7FFF_FFF0])
def test_pcapng_corrupt_first_section_header_length(tmp_path: Path, blen: int) -> None:
    data = bytearray(shb() + idb(LINKTYPE_ETHERNET))
    data[4:8] = struct.pack("<I", blen)
    path = write(tmp_path, bytes(data))
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: corrupt pcapng section header (length {blen})"


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack("<III", BT_EPB, 12, 12),  # an EPB with no room for its 20 bytes of fields
        struct.pack("<III", BT_PB, 12, 12),  # the same for an obsolete Packet Block
        struct.pack("<III", BT_IDB, 12, 12),  # an IDB with no room for linktype and snaplen
    ],
    ids=["epb", "pb", "idb"],
)
def test_pcapng_short_block_at_end_is_a_warning(tmp_path: Path, tail: bytes) -> None:
    path = write(tmp_path, shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0]) + tail)
    packets, warnings = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}: corrupt pcapng block")


# An IDB whose if_tsoffset option claims 8 bytes where the block has none left.
BAD_IDB = struct.pack("<IIHHIHHI", BT_IDB, 24, LINKTYPE_RAW, 0, 0, OPT_IF_TSOFFSET, 8, 24)


def test_pcapng_idb_option_past_the_block_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, shb() + idb(LINKTYPE_ETHERNET) + epb(0, 1, FRAMES[0]) + BAD_IDB)
    packets, _ = read_file(path)
    assert [p[2] for p in packets] == [FRAMES[0]]


def test_pcapng_idb_option_past_the_block_is_not_used(tmp_path: Path) -> None:
    path = write(tmp_path, shb() + idb(LINKTYPE_ETHERNET) + BAD_IDB + epb(1, 3_000_000, FRAMES[1]))
    packets, _ = read_file(path)
    assert packets == [(3.0, LINKTYPE_RAW, FRAMES[1])]  # microseconds, no offset: the option is not there


# --- gzip, by magic ---------------------------------------------------------------------------------------------------


PCAP = pcap(RECORDS)
PCAPNG = two_interfaces()


@pytest.mark.parametrize("raw", [PCAP, PCAPNG], ids=["pcap", "pcapng"])
def test_gzip_is_detected_by_magic_not_name(tmp_path: Path, raw: bytes) -> None:
    expected = read_file(write(tmp_path, raw, "plain.bin"))
    assert expected[0]
    assert read_file(write(tmp_path, gzip.compress(raw), "compressed.pcap")) == expected
    # A plain capture named like a gzip file is read as what it is.
    assert read_file(write(tmp_path, raw, "plain.pcap.gz")) == expected


def test_gzip_cut_short_keeps_packets_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    frames = [rng.randbytes(200) for _ in range(20)]  # incompressible: the cut lands mid-stream
    raw = pcap([(i, 0, f) for i, f in enumerate(frames)])
    z = gzip.compress(raw)
    monkeypatch.setattr(capture, "STREAM_CHUNK", 64)
    path = write(tmp_path, z[: len(z) // 2])
    packets, warnings = read_file(path)
    assert 0 < len(packets) < len(frames)
    assert [p[2] for p in packets] == frames[: len(packets)]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}: compressed data is damaged (")
    assert warnings[0].endswith("); the rest was not read")


def test_gzip_cut_short_keeps_packets_before_with_default_chunk(tmp_path: Path) -> None:
    rng = random.Random(7)
    frames = [rng.randbytes(200) for _ in range(20)]
    z = gzip.compress(pcap([(i, 0, f) for i, f in enumerate(frames)]))
    packets, warnings = read_file(write(tmp_path, z[: len(z) * 3 // 4]))
    assert len(warnings) == 1
    assert 0 < len(packets) < len(frames)
    assert [p[2] for p in packets] == frames[: len(packets)]


def test_gzip_bad_checksum_is_a_warning(tmp_path: Path) -> None:
    z = bytearray(gzip.compress(PCAP))
    z[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = write(tmp_path, bytes(z))
    _, warnings = read_file(path)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}: compressed data is damaged (")


def test_gzip_with_corrupt_header(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x1f\x8b\x63" + b"\0" * 40)  # compression method 0x63: not deflate
    with pytest.raises(CaptureError, match=r"not a readable gzip file") as info:
        open_capture(str(path))
    assert str(info.value).startswith(f"{path}: ")


def test_gzip_of_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(b""))
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: empty file, not a capture"


def test_gzip_of_text(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(b"hello, world\n"))
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: not a pcap or pcapng capture (starts with 68 65 6c 6c)"


# --- stdin and streamed chunks ------------------------------------------------------------------------------------


STREAMS = {
    "pcap": PCAP,
    "pcap-be-ns": pcap([(1, 5, FRAMES[2]), (2, 7, FRAMES[0])], endian=">", nano=True),
    "pcapng": PCAPNG,
    "pcapng-be": two_interfaces(">"),
    "pcap.gz": gzip.compress(PCAP),
    "pcapng.gz": gzip.compress(PCAPNG),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_stdin_reads_like_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    data = STREAMS[name]
    expected = read_file(write(tmp_path, data))
    assert len(expected[0]) >= 2
    assert read_stdin(monkeypatch, data) == expected


@pytest.mark.parametrize("chunk", [1, 3, 16, 17, 101])
@pytest.mark.parametrize("name", list(STREAMS))
def test_records_crossing_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, chunk: int) -> None:
    data = STREAMS[name]
    expected = read_file(write(tmp_path, data))
    monkeypatch.setattr(capture, "STREAM_CHUNK", chunk)
    assert read_stdin(monkeypatch, data) == expected
    if name.endswith(".gz"):
        assert read_file(write(tmp_path, data, "again")) == expected


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_stdin_damage_reported_under_stdin_name(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(capture, "STREAM_CHUNK", chunk)
    packets, warnings = read_stdin(monkeypatch, PCAP[:-3])
    assert [p[2] for p in packets] == FRAMES[:2]
    trailing = 16 + len(FRAMES[2]) - 3
    assert warnings == [
        f"<stdin>: the capture is cut short in the middle of a packet record ({trailing} trailing bytes ignored)"
    ]


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_stdin_pcapng_cut_and_snaplen(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(capture, "STREAM_CHUNK", chunk)
    data = shb() + idb(LINKTYPE_ETHERNET, snaplen=4) + epb(0, 1, FRAMES[0][:4], origlen=60) + epb(0, 2, FRAMES[1])
    packets, warnings = read_stdin(monkeypatch, data[:-2])
    assert packets == [(1e-6, LINKTYPE_ETHERNET, FRAMES[0][:4])]
    assert warnings == [
        "<stdin>: the capture is cut short in the middle of a block (34 trailing bytes ignored)",
        "<stdin>: 1 packet(s) were cut by the capture's snapshot length; their missing bytes are reported as TCP gaps",
    ]


def test_stdin_header_read_across_short_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pipe hands over the head in pieces: it is read whole before it is judged.
    rfd, wfd = os.pipe()

    def writer() -> None:
        for i in range(0, len(PCAPNG), 5):
            os.write(wfd, PCAPNG[i : i + 5])
        os.close(wfd)

    stream = os.fdopen(rfd, "rb", buffering=0)
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stream})())
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        packets, warnings = collect(open_capture("-"))
    finally:
        thread.join(5)
        stream.close()
    assert (packets, warnings) == read_file(write(tmp_path, PCAPNG))


def test_stdin_pipe_packets_arrive_before_eof(monkeypatch: pytest.MonkeyPatch) -> None:
    # `tcpdump -U -w - | wsinspect read -`: a packet must be decoded while the pipe stays open.
    rfd, wfd = os.pipe()
    got_packet = threading.Event()
    closed_first = []

    def writer() -> None:
        os.write(wfd, PCAP[:-16])  # the header and the first two records
        closed_first.append(not got_packet.wait(1.5))
        os.close(wfd)

    stream = os.fdopen(rfd, "rb")
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stream})())
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        reader = open_capture("-")
        first = next(iter(reader))
        got_packet.set()
        thread.join(5)
        assert bytes(first.data) == FRAMES[0]
        assert closed_first == [False]
    finally:
        got_packet.set()
        thread.join(5)
        stream.close()


def test_on_wait_is_called_before_the_reader_waits_for_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    # The caller writes what it holds when the reader may block on the pipe.
    rfd, wfd = os.pipe()
    stream = os.fdopen(rfd, "rb")
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stream})())
    os.write(wfd, PCAP[:-16])  # the header and the first two records; the third comes later
    try:
        reader = open_capture("-")
        waits: list[int] = []
        packets: list[bytes] = []
        reader.on_wait(lambda: waits.append(len(packets)))
        it = iter(reader)
        packets += [bytes(next(it).data) for _ in range(2)]
        assert set(waits) <= {0}  # at most the first read, before any packet
        os.write(wfd, PCAP[-16:])
        os.close(wfd)
        packets += [bytes(raw.data) for raw in it]
        # the third record was cut: the reader had to wait, with two packets given out
        assert packets == FRAMES and 2 in waits
    finally:
        stream.close()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "<stdin>: empty file, not a capture"),
        (b"\xd4\xc3", "<stdin>: too short to be a capture (2 bytes)"),
        (b"GET / HTTP/1.1\r\n", "<stdin>: not a pcap or pcapng capture (starts with 47 45 54 20)"),
        (gzip.compress(b"ab"), "<stdin>: too short to be a capture (2 bytes)"),
    ],
)
def test_stdin_errors(monkeypatch: pytest.MonkeyPatch, data: bytes, message: str) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    with pytest.raises(CaptureError) as info:
        open_capture("-")
    assert str(info.value) == message


def test_fifo_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "STREAM_CHUNK", 10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(PCAP)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        packets, warnings = read_file(fifo)
    finally:
        writer.join(10)
    assert [(us(ts), data) for ts, _, data in packets] == [(us(s + f / 1e6), d) for s, f, d in RECORDS]
    assert warnings == []


# --- whole-job failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file, not a capture"),
        (b"\xd4\xc3\xb2", "too short to be a capture (3 bytes)"),
        (b"Hello, this is a text file.\n", "not a pcap or pcapng capture (starts with 48 65 6c 6c)"),
        (b"\x0a\x0d\x0d", "too short to be a capture (3 bytes)"),
        (b"\xa1\xb2\xc3\xd5" + b"\0" * 20, "not a pcap or pcapng capture (starts with a1 b2 c3 d5)"),
    ],
    ids=["empty", "3-bytes", "text", "3-bytes-pcapng", "bad-magic"],
)
def test_not_a_capture(tmp_path: Path, content: bytes, problem: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: {problem}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pcap"
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    assert str(info.value) == f"{path}: no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        open_capture(str(tmp_path))
    assert str(info.value) == f"{tmp_path}: is a directory, not a capture file"


def test_capture_error_is_a_wsinspect_error() -> None:
    assert issubclass(CaptureError, WsinspectError)
    assert CaptureError.exit_status == 1


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EIO, "Input/output error"), "cannot open: Input/output error"),
    ],
)
def test_open_failures(monkeypatch: pytest.MonkeyPatch, error: OSError, problem: str) -> None:
    # As root, chmod 000 does not stop open(): make open() fail the way it would for a user.
    def failing_open(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(capture, "open", failing_open, raising=False)
    with pytest.raises(CaptureError) as info:
        open_capture("some.pcap")
    assert str(info.value) == f"some.pcap: {problem}"


# --- packet numbers and shards ---------------------------------------------------------------------------------------


def _flows_packets(ports: range) -> list[bytes]:
    """Ethernet/IPv4/TCP packets of several flows, interleaved, and one ARP frame."""
    packets = []
    for port in ports:
        flow = Flow(client=("10.0.0.1", port)).handshake()
        flow.c(b"hello")
        packets.extend(bytes(p.data) for p in flow.packets)
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    return [arp, *packets]


def _shard_of_packet(data: bytes, shards: int) -> int | None:
    fields = tcp_fields(LINKTYPE_ETHERNET, memoryview(data))
    return None if fields is None else shard_of(fields[0], shards)


@pytest.mark.parametrize("form", ["pcap", "pcapng"])
def test_packets_are_numbered_and_shards_skipped_in_the_reader(tmp_path: Path, form: str) -> None:
    frames = _flows_packets(range(40000, 40006))
    if form == "pcap":
        data = pcap([(1, i, f) for i, f in enumerate(frames)])
    else:
        data = shb() + idb(LINKTYPE_ETHERNET) + b"".join(epb(0, i, f) for i, f in enumerate(frames))
    path = write(tmp_path, data)
    reader = open_capture(str(path))
    assert [p.number for p in reader] == list(range(1, len(frames) + 1))
    assert reader.count == len(frames)
    reader.close()
    for shards in (2, 3):
        seen: list[int] = []
        for shard in range(shards):
            reader = open_capture(str(path))
            reader.only_shard(shard, shards)
            kept = list(reader)
            assert reader.count == len(frames)  # skipped records still count
            reader.close()
            for p in kept:
                assert bytes(p.data) == frames[p.number - 1]
                # Only what session.shard_of puts in another shard is skipped; the
                # ARP frame (no TCP) is left to the Inspector.
                assert _shard_of_packet(frames[p.number - 1], shards) in (shard, None)
            seen.extend(p.number for p in kept if _shard_of_packet(bytes(p.data), shards) is not None)
        assert sorted(seen) == [i + 1 for i, f in enumerate(frames) if _shard_of_packet(f, shards) is not None]
