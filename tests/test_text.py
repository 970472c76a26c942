"""Text output: sanitising wire text, previews, the session table."""

from __future__ import annotations

import dataclasses
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import decode_file, messages, summaries
from wsinspect import jsonl
from wsinspect.frames import Frame
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.text import _ESCAPES, Colors, TextWriter, TimeFormat, human_bytes, preview, sanitize
from wsinspect.vocab import Direction


def _message(opcode: int, payload: bytes, text: str | None = None, **kw: object) -> Message:
    fields: dict[str, object] = dict(
        session=1,
        ts=10.5,
        dir=Direction.C2S,
        opcode=opcode,
        frames=[],
        masked=True,
        compressed=False,
        payload=payload,
        wire_length=len(payload),
        text=text,
        close_code=None,
        close_reason=None,
        issues=[],
        packets=(1, 1),
    )
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


def test_sanitize_escapes_every_control_and_formatting_character() -> None:
    assert sanitize("\x1b[31mred\x1b[0m\r\n\x07\x00\x7f") == "\\e[31mred\\e[0m\\r\\n\\x07\\x00\\x7f"
    assert sanitize("\x9b2J") == "\\x9b2J"  # C1 CSI, which some terminals obey
    assert sanitize("a\u202eb\u2028c\u200bd") == "a\\u202eb\\u2028c\\u200bd"
    assert sanitize("back\\slash") == "back\\\\slash"  # escapes stay unambiguous
    assert sanitize("héllo 你好 🌍") == "héllo 你好 🌍"
    assert sanitize("\ue000\U000e0001") == "\\ue000\\U000e0001"
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        out = sanitize(chr(cp))
        assert "\x1b" not in out and "\x9b" not in out and out.isprintable(), hex(cp)


# Text that has what sanitize() escapes: backslash, ESC, C1 CSI, bidi override, zero width.
_TRICKY = st.text(alphabet="ab\\\x1b\u202e\u200b\x9b é😀", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | _TRICKY)
def test_sanitize_takes_its_shortcut_only_where_nothing_needs_escaping(text: str) -> None:
    # sanitize() returns text that is printable and has no backslash untouched; that
    # is right only because the escape table holds no other printable character.
    assert {chr(cp) for cp in _ESCAPES if chr(cp).isprintable()} == {"\\"}
    escaped = text.translate(_ESCAPES)
    if escaped.isprintable():
        assert sanitize(text) == escaped
    assert sanitize(text).isprintable()


def test_previews() -> None:
    assert preview(_message(1, b"hi", "hi")) == '"hi"'
    long = "x" * 200
    assert preview(_message(1, long.encode(), long), width=10) == '"xxxxxxxxxx"…'
    assert preview(_message(2, bytes(range(30)))).startswith("00 01 02") and preview(
        _message(2, bytes(range(30)))
    ).endswith(" …")
    close = _message(8, b"\x03\xe8\x1b[2J", close_code=1000, close_reason="\x1b[2J")
    assert preview(close) == '1000 Normal Closure "\\e[2J"'
    assert preview(_message(8, b"")) == "(no status)"


def test_human_bytes() -> None:
    sizes = (0, 999, 1000, 3_100_000, 5 * 10**9)
    assert [human_bytes(n) for n in sizes] == ["0 B", "999 B", "1.0 kB", "3.1 MB", "5.0 GB"]


def test_time_formats() -> None:
    rel = TimeFormat("r")
    assert rel(100.0).strip() == "0.000000" and rel(101.25).strip() == "1.250000"
    assert TimeFormat("e")(1.5) == "1.500000"
    assert TimeFormat("ud")(0.25) == "1970-01-01 00:00:00.250000"
    assert TimeFormat("u")(3661.5) == "01:01:01.500000"


def test_lines_and_table_on_a_real_capture(basic_capture) -> None:  # type: ignore[no-untyped-def]
    events = decode_file(basic_capture)
    w = TextWriter(Colors(False), TimeFormat("r"))
    (s,) = summaries(events)
    w.opened(s.session, s.client, s.server)
    lines = [w.message(m) for m in messages(events)]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert all("\x1b" not in line for line in lines)
    assert any(" → " in line for line in lines) and any(" ← " in line for line in lines)
    table = w.table([w.session_row(s)])
    assert "1 WebSocket session(s)" in table and "HTTP 101" in table and "accept ok" in table
    assert 'close 1000 Normal Closure "bye" by client' in table and "no issues" in table
    colored = TextWriter(Colors(True), TimeFormat("r"))
    colored.opened(s.session, s.client, s.server)
    assert "\x1b[36m" in colored.message(messages(events)[0])


def test_ping_preview_shows_printable_text_else_hex() -> None:
    assert preview(_message(9, b"keepalive")) == '"keepalive"'
    assert preview(_message(10, b"\x00\x01")) == "00 01"
    assert preview(_message(9, b"\x1b[2J")) == "1b 5b 32 4a"


def test_long_ping_text_is_cut_like_any_text() -> None:
    assert preview(_message(9, b"p" * 200), width=5) == '"ppppp"…'


def test_time_formats_carry_a_fraction_rounded_up_into_the_second_and_the_date() -> None:
    # 400 ns before a whole second shows as the next second, as -t e shows it.
    ts = 1_700_000_005.9999996  # 2023-11-14 22:13:25.9999996 UTC
    assert TimeFormat("e")(ts) == "1700000006.000000"
    assert TimeFormat("u")(ts) == "22:13:26.000000"
    assert TimeFormat("ud")(86_399.9999996) == "1970-01-02 00:00:00.000000"  # just before midnight
    assert TimeFormat("ud")(86_399.9999994) == "1970-01-01 23:59:59.999999"
    assert TimeFormat("a")(ts) == time.strftime("%H:%M:%S", time.localtime(1_700_000_006)) + ".000000"
    assert TimeFormat("ad")(ts).endswith(time.strftime("%H:%M:%S", time.localtime(1_700_000_006)) + ".000000")


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=4e9))
def test_clock_times_agree_with_epoch_seconds(ts: float) -> None:
    seconds, micros = TimeFormat("e")(ts).split(".")
    want = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(seconds))) + "." + micros
    assert TimeFormat("ud")(ts) == want
    assert TimeFormat("u")(ts) == want.split(" ")[1]


def test_preview_never_cuts_an_escape_in_half() -> None:
    # 95 characters and an ESC: the escape (\e) does not fit; a lone backslash before
    # the closing quote would read as an escaped quote.
    text = "x" * 95 + "\x1b"
    assert preview(_message(1, text.encode(), text)) == '"' + "x" * 95 + '"…'
    text = "y" * 94 + "\x1b"
    assert preview(_message(1, text.encode(), text)) == '"' + "y" * 94 + '\\e"'  # fits: not cut
    text = "z" * 90 + "\u202e" * 3
    assert preview(_message(1, text.encode(), text)) == '"' + "z" * 90 + '\\u202e"…'  # one of 6 fits


@settings(max_examples=300, deadline=None)
@given(_TRICKY, st.integers(min_value=1, max_value=30))
def test_a_cut_preview_is_whole_escapes_of_a_prefix(text: str, width: int) -> None:
    shown = preview(_message(1, text.encode(), text), width=width)
    cut = shown.endswith("…")
    inner = shown.removesuffix("…")[1:-1]
    assert len(inner) <= width
    prefixes = ["".join(sanitize(ch) for ch in text[:k]) for k in range(len(text) + 1)]
    assert inner in prefixes
    assert cut == (inner != sanitize(text))


def test_an_invalid_close_reason_shows_its_replacement_character() -> None:
    # The Inspector replaces the bytes that are not UTF-8 (c3 28) with U+FFFD, which
    # no peer can mistake for text it sent; it is printable and shown as it is.
    close = _message(8, b"\x03\xe8\xc3(", close_code=1000, close_reason="\ufffd(")
    assert preview(close) == '1000 Normal Closure "\ufffd("'
    record = jsonl.message_record(close)
    assert json.loads(jsonl.dumps(record))["close_reason"] == "\ufffd("


def test_session_row_says_when_reading_stopped_before_the_connection_ended(basic_capture) -> None:  # type: ignore[no-untyped-def]
    (s,) = summaries(decode_file(basic_capture))
    w = TextWriter(Colors(False), TimeFormat("r"))
    assert "; connection ended by fin;" in w.session_row(s)
    stopped = w.session_row(dataclasses.replace(s, ended_by="stopped"))
    assert "; reading stopped before the connection ended;" in stopped and "ended by stopped" not in stopped


def test_frame_lines() -> None:
    frames = [
        Frame(False, 0, 1, True, b"\x01\x02\x03\x04", 2, b"ab", 6, 10.25, [3]),
        Frame(True, 4, 0, False, None, 70000, b"", 10, 10.5, [4, 5, 6], [Issue.RSV_WITHOUT_EXTENSION]),
    ]
    m = _message(1, b"ab", "ab", frames=frames)
    w = TextWriter(Colors(False), TimeFormat("e"))
    assert w.frame(m, frames[0]) == (
        "10.250000 #1     frame text          2  fin 0  rsv 000  mask 01020304  header 6  packet 3\n"
    )
    assert w.frame(m, frames[1]) == (
        "10.500000 #1     frame cont      70000  fin 1  rsv 100  unmasked  header 10  packets 4-6"
        " !rsv-without-extension\n"
    )


def test_human_bytes_move_to_the_next_unit_rather_than_show_1000() -> None:
    assert [human_bytes(n) for n in (999, 1000, 999_949, 999_951, 999_960_000)] == [
        "999 B",
        "1.0 kB",
        "999.9 kB",
        "1.0 MB",
        "1.0 GB",
    ]


def _lines(width: int | None) -> list[str]:
    from tests.conftest import CAPTURES, decode_file, messages

    writer = TextWriter(Colors(False), TimeFormat(), width)
    writer.opened(1, "127.0.0.1:40624", "127.0.0.1:47001")
    return [writer.message(m).rstrip("\n") for m in messages(decode_file(CAPTURES / "websockets_basic.pcap"))]


def test_quotes_inside_a_quoted_preview_are_escaped() -> None:
    # '"items": [{""…' could not be read back: where does the text end?
    (line,) = [line for line in _lines(None) if '"type' in line]
    shown = r'"{\"type\": \"chat\", \"room\": 1, \"body\": \"hi there\", \"tags\": [\"a\", \"b\"], '
    assert line.endswith(shown + r'\"n\": null}"')


def test_columns_after_the_endpoints_line_up() -> None:
    lines = _lines(None)
    assert len({line.index(" text ") for line in lines if " text " in line}) == 1
    assert len({len(line.split("  ")[0]) for line in lines}) == 1


def test_lines_fit_a_narrow_terminal() -> None:
    # At 80 columns each message wrapped over 2-3 lines. (A close code keeps its name, a
    # pong its round trip; wide characters take two columns.)
    shown = [line for line in _lines(80) if "🌍" not in line and " close " not in line and " rtt " not in line]
    assert len(shown) > 10 and all(len(line) <= 80 for line in shown)
