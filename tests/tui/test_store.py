"""The TUI's message store and decode loop, without Textual."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import decode_file, messages
from tests.tui.conftest import CAPTURES
from wsinspect import jsonl
from wsinspect.capture import open_capture
from wsinspect.packet import RawPacket
from wsinspect.search import search_text
from wsinspect.session import SessionUpgraded
from wsinspect.tui import render
from wsinspect.tui.store import Batch, Decoder, FileSource, MessageFilter, MessageStore, Spill, search
from wsinspect.vocab import KNOWN_OPCODES

CAPTURE_FILES = sorted(p for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def sink() -> tuple[Spill, MessageStore, list[Batch], Callable[[Batch], bool]]:
    """A store and the list of batches that the returned deliver() fills."""
    spill = Spill()
    store = MessageStore(spill)
    batches: list[Batch] = []

    def deliver(batch: Batch) -> bool:
        store.extend(batch.columns)
        batches.append(batch)
        return True

    return spill, store, batches, deliver


def load(path: Path, interval: float = 0.1) -> tuple[MessageStore, list[Batch]]:
    spill, store, batches, deliver = sink()
    Decoder(spill).run(lambda: open_capture(str(path)), deliver, threading.Event(), interval)
    return store, batches


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name)
def test_messages_come_back_as_decoded(path: Path) -> None:
    """A message read back from the index and spill file gives the same JSON record."""
    store, batches = load(path)
    try:
        decoded = messages(decode_file(path))
        assert len(store) == len(decoded)
        for i, m in enumerate(decoded):
            assert jsonl.message_record(store.message(i)) == jsonl.message_record(m)
            assert store.payload(i) == m.payload
            # Searches (/, the filter, --grep) look in the same text as read --grep.
            assert store.search_text(i) == search_text(m)
        assert batches[-1].done
        assert sum(len(b.columns) for b in batches) == len(decoded)
    finally:
        store.spill.close()


def test_batches_carry_sessions_and_per_session_indices() -> None:
    store, batches = load(CAPTURES / "violations.pcap", interval=0.0)
    try:
        opened = [ev.session for b in batches for ev in b.opened]
        summarised = [s.session for b in batches for s in b.summaries]
        assert sorted(opened) == sorted(summarised) == list(range(1, len(opened) + 1))
        per_session: dict[int, list[int]] = {}
        for b in batches:
            for number, delta in b.sessions.items():
                per_session.setdefault(number, []).extend(delta.indices)
        for number, indices in per_session.items():
            assert all(store.cols.session[i] == number for i in indices)
        assert sorted(i for v in per_session.values() for i in v) == list(range(len(store)))
    finally:
        store.spill.close()


def test_filter_and_search() -> None:
    store, _ = load(CAPTURES / "violations.pcap")
    try:
        everything = range(len(store))
        s2c = MessageFilter(direction="s2c").select(store, everything)
        assert s2c and all(store.message(i).dir == "s2c" for i in s2c)
        closes = MessageFilter(opcodes=frozenset({8})).select(store, everything)
        assert closes and all(store.message(i).opcode == 8 for i in closes)
        other = MessageFilter(opcodes=frozenset({MessageFilter.OTHER})).select(store, everything)
        assert other and all(store.message(i).opcode not in KNOWN_OPCODES for i in other)
        flagged = MessageFilter(issues_only=True).select(store, everything)
        assert flagged and all(store.message(i).issues for i in flagged)
        masked = MessageFilter(pattern=re.compile("masked")).select(store, everything)
        assert masked is not None
        assert [store.message(i).text for i in masked] == ["not masked", "masked by the server"]
        first = search(store, everything, re.compile("second"), 0, 1)
        assert first is not None and store.message(first).text == "second message"
        assert search(store, everything, re.compile("no such text"), 0, 1) is None
        back = search(store, everything, re.compile("not masked"), 5, -1)
        assert back is not None and store.message(back).text == "not masked"
    finally:
        store.spill.close()


def test_rows_are_sanitised() -> None:
    """Escape sequences in a payload are shown escaped in the message row."""
    store, _ = load(CAPTURES / "websockets_basic.pcap")
    try:
        rows = [render.message_row(store, i, None, 0.0, 200, {}).plain for i in range(len(store))]
        assert not any(ch in row for row in rows for ch in "\x1b\x07\x00\r\n")
        assert any("\\e[31mred\\e[0m\\r\\nbell\\x07" in row for row in rows)
    finally:
        store.spill.close()


def test_file_source_fails_early(tmp_path: Path) -> None:
    from wsinspect.errors import CaptureError

    with pytest.raises(CaptureError):
        FileSource(str(tmp_path / "missing.pcap"))
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError):
        FileSource(str(bad))
    source = FileSource(str(CAPTURES / "websockets_basic.pcap"))
    source.close()  # never used: the reader opened for the check is closed


def test_json_payload_lines_keep_json_escapes() -> None:
    """Pretty JSON stays JSON: its escapes are not doubled, what it leaves raw is escaped."""
    lines = render.json_lines('{"a": "x\\"y\\u001b", "b": "\\u202e\\u0085"}')
    assert lines is not None
    text = "\n".join(lines)
    assert '"x\\"y\\u001b"' in text
    assert "\\u202e" in text and "\\x85" in text
    assert "\u202e" not in text and "\x85" not in text


def test_search_looks_in_texts_and_close_reasons_only() -> None:
    """One search semantic: a text message's text, a close message's reason; binary,
    ping and pong payloads are never matched, even when they hold the text."""
    store, _ = load(CAPTURES / "websockets_basic.pcap")
    try:
        everything = range(len(store))
        bye = [store.message(i) for i in MessageFilter(pattern=re.compile("bye")).select(store, everything) or ()]
        assert [(m.opcode, m.text or m.close_reason) for m in bye][1:] == [(1, "bye soon"), (8, "bye"), (8, "bye")]
        assert len(bye[0].payload) == 71_680
        pings = [i for i in everything if store.cols.opcode[i] in (9, 10)]
        assert pings and b"ping-payload" in store.payload(pings[0])
        assert search(store, everything, re.compile("ping-payload"), 0, 1) is None
        assert not MessageFilter(pattern=re.compile("ping")).accepts(store.message(pings[0]))
    finally:
        store.spill.close()


def test_filter_accepts_a_message_as_matches_its_record() -> None:
    """accepts() (for -c, before a message is stored) agrees with matches() (the view)."""
    store, _ = load(CAPTURES / "violations.pcap")
    try:
        filters = [
            MessageFilter(direction="c2s"),
            MessageFilter(opcodes=frozenset({1, 8})),
            MessageFilter(opcodes=frozenset({MessageFilter.OTHER})),
            MessageFilter(issues_only=True),
            MessageFilter(pattern=re.compile("mask|\ufffd")),
        ]
        for flt in filters:
            chosen = [i for i in range(len(store)) if flt.accepts(store.message(i))]
            assert chosen == list(flt.select(store, range(len(store))) or ()), flt
            assert 0 < len(chosen) < len(store), flt
    finally:
        store.spill.close()


def test_count_stops_reading_the_source() -> None:
    """-c: after ``count`` counted messages the source is no longer read but closed;
    messages after the last counted one are left out, sessions still summarised."""
    path = CAPTURES / "websockets_basic.pcap"
    pulled = 0
    closed = threading.Event()

    class Source:
        def __call__(self) -> Source:
            return self

        def __iter__(self) -> Iterator[RawPacket]:
            nonlocal pulled
            reader = open_capture(str(path))
            try:
                for raw in reader:
                    pulled += 1
                    yield raw
            finally:
                reader.close()

        def close(self) -> None:
            closed.set()

    spill, store, batches, deliver = sink()
    text = MessageFilter(opcodes=frozenset({1}))
    try:
        Decoder(spill, count=3, counted=text.accepts).run(Source(), deliver, threading.Event())
        decoded = messages(decode_file(path))
        texts = [n for n, m in enumerate(decoded) if m.opcode == 1]
        assert len(store) == texts[2] + 1 < len(decoded)
        assert [store.message(i).opcode for i in range(len(store))].count(1) == 3
        assert closed.is_set() and batches[-1].done
        reader = open_capture(str(path))
        total = sum(1 for _ in reader)
        reader.close()
        assert pulled < total
        assert [(s.session, s.ended_by) for b in batches for s in b.summaries] == [(1, "stopped")]
    finally:
        spill.close()


def test_batches_carry_upgrades() -> None:
    """Each handshake's response comes as SessionUpgraded, before its session's messages."""
    path = CAPTURES / "violations.pcap"
    store, batches = load(path, interval=0.0)
    try:
        upgraded = {ev.session: ev.handshake for b in batches for ev in b.upgraded}
        summaries = {s.session: s for b in batches for s in b.summaries}
        assert upgraded
        for number, summary in summaries.items():
            if summary.handshake.response is not None:
                assert upgraded[number] == summary.handshake
            else:
                assert number not in upgraded
    finally:
        store.spill.close()


def test_open_sessions_render_what_is_known() -> None:
    """A session still open: waiting for its response, upgraded, or joined mid-stream."""
    events = decode_file(CAPTURES / "websockets_basic.pcap")
    (upgraded,) = [ev for ev in events if isinstance(ev, SessionUpgraded)]
    info = render.SessionInfo(1, "10.0.0.1:5000", "10.0.0.2:80", 0.0, 0.0, [0, 0], [0, 0])
    cells = render.session_cells(info, 0.0, {})
    assert (cells["where"].plain, cells["status"].plain, cells["close"].plain) == ("(open)", "", "still open")
    assert "waiting for the response" in render.handshake_lines(info, {})[-1].plain

    info.upgrade = upgraded.handshake
    cells = render.session_cells(info, 0.0, {})
    assert cells["where"].plain == "127.0.0.1:47001/chat?room=1&user=alice"
    assert (cells["status"].plain, cells["close"].plain) == ("101 ok", "still open")
    assert info.sort_key("status") == 101
    shown = [line.plain for line in render.handshake_lines(info, {})]
    assert "GET /chat?room=1&user=alice HTTP/1.1" in shown and shown[-1] == "close: the session is still open"

    midstream = render.SessionInfo(2, "10.0.0.1:5001", "10.0.0.2:80", 0.0, 0.0, [1, 0], [5, 0])
    assert midstream.mid_stream
    assert render.session_cells(midstream, 0.0, {})["where"].plain == "(no handshake)"
    shown = [line.plain for line in render.handshake_lines(midstream, {})]
    assert "the capture starts after the handshake: there is none to show" in shown
    assert shown.count("(not in the capture)") == 2


def test_every_filter_describes_itself() -> None:
    assert MessageFilter(opcodes=frozenset()).describe() == "no opcode"
    assert MessageFilter(direction="c2s", opcodes=frozenset({1, 8})).describe() == "→ only text,close"
    flagged = MessageFilter(issues_only=True, query="a.b", regex=True, pattern=re.compile("a.b"))
    assert flagged.describe() == "/a.b/ issues"


@pytest.mark.parametrize("live", [False, True])
def test_a_live_source_ends_its_open_sessions_as_stopped(live: bool) -> None:
    path = CAPTURES / "websockets_basic.pcap"
    reader = open_capture(str(path))
    head = [raw for _, raw in zip(range(12), reader, strict=False)]  # the session is still open
    reader.close()
    spill, _, batches, deliver = sink()
    try:
        Decoder(spill, live=live).run(lambda: iter(head), deliver, threading.Event())
        assert [s.ended_by for b in batches for s in b.summaries] == ["stopped" if live else "eof"]
    finally:
        spill.close()
