"""-T fields output: values, escaping, -E options, CSV quoting."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import CAPTURES, decode_file
from tests.test_filter import REQUEST, RESPONSE, message, session_of
from wsinspect.fields import FieldsError, FieldsFormat, FieldsWriter, parse_option
from wsinspect.filter import FilterError, session_values
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import SessionSummary

VALUES = session_values(session_of(REQUEST, RESPONSE))


def fmt(*options: str) -> FieldsFormat:
    result = FieldsFormat()
    for option in options:
        result = parse_option(result, option)
    return result


def test_message_line_tab_separated_like_tshark() -> None:
    w = FieldsWriter(["session", "dir", "opcode", "length", "text", "masked", "ts", "session.server.port"])
    assert w.header() is None
    assert w.message(message(), VALUES) == "1\tc2s\ttext\t5\thello\t1\t1.500000\t8080\n"
    assert not w.per_session and w.needs_session and not w.needs_end


def test_missing_values_are_empty_and_bytes_are_hex() -> None:
    w = FieldsWriter(["text", "data", "close_code", "issues", "json.a", "rtt"])
    binary = message(opcode=2, payload=b"\x00\xffA", issues=[Issue.TCP_GAP, Issue.INVALID_UTF8])
    assert w.message(binary, None) == "\t00ff41\t\ttcp-gap,invalid-utf8\t\t\n"


def test_values_never_break_the_line() -> None:
    w = FieldsWriter(["text", "length"])
    m = message(payload=b"a\tb\nc\r\\d")
    line = w.message(m, None)
    assert line == "a\\tb\\nc\\r\\\\d\t8\n"
    assert line.count("\n") == 1 and line.count("\t") == 1


def test_json_values() -> None:
    w = FieldsWriter(["json.type", "json.n", "json.list", "json.obj", "json.none", "json.no"])
    m = message(payload=b'{"type": "chat", "n": 2.5, "list": [1, "x"], "obj": {"a": true}, "none": null}')
    assert w.message(m, None) == 'chat\t2.5\t[1,"x"]\t{"a":true}\t\t\n'


def test_header_separators_and_quotes() -> None:
    names = ["opcode", "text"]
    m = message(payload=b'say "hi", bob')
    assert FieldsWriter(names, fmt("header=y")).header() == "opcode\ttext\n"
    assert FieldsWriter(names, fmt("separator=/s")).message(m, None) == 'text say "hi", bob\n'
    assert FieldsWriter(names, fmt("separator=|")).message(m, None) == 'text|say "hi", bob\n'
    assert FieldsWriter(names, fmt("quote=d")).message(m, None) == '"text"\t"say ""hi"", bob"\n'
    assert FieldsWriter(names, fmt("quote=s")).message(m, None) == "'text'\t'say \"hi\", bob'\n"
    # A comma separator is CSV: what holds a comma or a quote is quoted.
    csv_line = FieldsWriter(names, fmt("separator=,")).message(m, None)
    assert csv_line == 'text,"say ""hi"", bob"\n'
    assert next(csv.reader(io.StringIO(csv_line))) == ["text", 'say "hi", bob']
    assert FieldsWriter(names, fmt("separator=,", "quote=n")).message(m, None) == 'text,say "hi", bob\n'
    agg = FieldsWriter(["issues"], fmt("aggregator=/s"))
    assert agg.message(message(issues=[Issue.TCP_GAP, Issue.MID_STREAM]), None) == "tcp-gap mid-stream\n"


def test_session_lines() -> None:
    w = FieldsWriter(["session", "session.host", "session.client.ip", "session.duration", "session.extensions"])
    assert w.per_session and w.needs_end
    assert w.session(VALUES | {"session": 1}) == (
        "1\texample.com:8080\t10.1.2.3\t2.500000\tpermessage-deflate; client_max_window_bits=12\n"
    )


@pytest.mark.parametrize(
    ("option", "error"),
    [
        ("header", "NAME=VALUE"),
        ("header=yes", "header=y or header=n"),
        ("separator=ab", "one character"),
        ("quote=x", "quote=d, s or n"),
        ("occurrence=f", "unknown -E option 'occurrence'"),
    ],
)
def test_bad_options_are_usage_errors(option: str, error: str) -> None:
    with pytest.raises(FieldsError, match=error) as caught:
        parse_option(FieldsFormat(), option)
    assert caught.value.exit_status == 2


def test_unknown_fields_name_the_closest() -> None:
    with pytest.raises(FilterError, match=r"bad field: unknown field 'lenght' \(did you mean length") as caught:
        FieldsWriter(["session", "lenght"])
    assert caught.value.exit_status == 2
    with pytest.raises(FilterError, match="not a field name"):
        FieldsWriter(["length > 3"])
    with pytest.raises(FieldsError):
        FieldsWriter([])


def test_a_real_capture_reads_back_as_csv() -> None:
    events = decode_file(CAPTURES / "websockets_basic.pcap")
    summaries = {e.session: session_values(e) for e in events if isinstance(e, SessionSummary)}
    msgs = [e for e in events if isinstance(e, Message)]
    w = FieldsWriter(["session", "opcode", "length", "text", "session.path"], fmt("separator=,", "header=y"))
    out = (w.header() or "") + "".join(w.message(m, summaries[m.session]) for m in msgs)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["session", "opcode", "length", "text", "session.path"]
    assert len(rows) == len(msgs) + 1
    for row, m in zip(rows[1:], msgs, strict=True):
        assert int(row[2]) == len(m.payload)
        assert row[4] == "/chat?room=1&user=alice"
        if m.text is not None and "\\" not in m.text and not any(c in m.text for c in "\n\r\t"):
            assert row[3] == m.text
