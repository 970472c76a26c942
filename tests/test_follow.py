"""Follow WebSocket Stream: the transcript of one session."""

from __future__ import annotations

import re
from functools import cache

from tests.conftest import CAPTURES, decode_file
from tests.test_filter import message
from wsinspect.follow import INDENT, follow, hexdump, payload_lines
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.session import SessionSummary


@cache
def transcript(name: str, session: int = 1) -> tuple[list[str], list[Message]]:
    events = decode_file(CAPTURES / name)
    summary = next(e for e in events if isinstance(e, SessionSummary) and e.session == session)
    msgs = [e for e in events if isinstance(e, Message) and e.session == session]
    return list(follow(summary, msgs)), msgs


def undump(lines: list[str]) -> bytes:
    """The bytes of hex dump lines (what a reader of the transcript can recover)."""
    out = bytearray()
    for line in lines:
        offset, hex_part = line[:8], line[10:58]
        assert int(offset, 16) == len(out)
        out += bytes.fromhex(hex_part)
    return bytes(out)


def test_hexdump_offsets_hex_and_ascii() -> None:
    lines = list(hexdump(b"Hello, \x00\x1b[31m\xff world! and more"))
    assert lines == [
        "00000000  48 65 6c 6c 6f 2c 20 00  1b 5b 33 31 6d ff 20 77  |Hello, ..[31m. w|",
        "00000010  6f 72 6c 64 21 20 61 6e  64 20 6d 6f 72 65        |orld! and more|",
    ]
    assert list(hexdump(b"")) == []


def test_transcript_of_a_real_session() -> None:
    lines, msgs = transcript("websockets_basic.pcap")
    text = "\n".join(lines)
    assert lines[0] == "Session #1  127.0.0.1:40624 → 127.0.0.1:47001  127.0.0.1:47001/chat?room=1&user=alice"
    assert "HTTP 101" in lines[1]
    # One header line per message, in order, with its arrow and opcode.
    heads = [line for line in lines if re.match(r"^ *\d+\.\d{6} [→←] ", line)]
    assert len(heads) == len(msgs)
    for head, m in zip(heads, msgs, strict=True):
        assert head.split()[1] == ("→" if m.dir == "c2s" else "←")
    assert f"{INDENT}hello" in lines and f"{INDENT}welcome, alice" in lines
    # JSON pretty-printed, text kept as text.
    assert f'{INDENT}  "type": "chat",' in lines
    assert f"{INDENT}héllo wörld — 你好 🌍🚀" in lines
    # Terminal escapes from the wire are shown, never sent to the terminal.
    assert "\x1b" not in text and "\x07" not in text and "\\e[31mred\\e[0m\\r" in text
    # Close with its code's name and reason; ping payloads as text.
    assert any(line.endswith('close 5  1000 Normal Closure "bye"') for line in lines)
    assert f"{INDENT}ping-payload" in lines
    assert lines[-1].endswith("close 1000 by client; connection ended by fin after 0.063 s")


def test_binary_payloads_are_dumped_whole() -> None:
    lines, msgs = transcript("websockets_basic.pcap")
    binaries = [m for m in msgs if m.opcode == 2]
    dumps: list[list[str]] = []
    for i, line in enumerate(lines):
        if re.match(r"^ *\d+\.\d{6} [→←] binary ", line):
            block = []
            for following in lines[i + 1 :]:
                if not following.startswith(INDENT + "0"):
                    break
                block.append(following.removeprefix(INDENT))
            dumps.append(block)
    assert [undump(block) for block in dumps] == [m.payload for m in binaries]
    assert any(len(m.payload) > 1_000_000 for m in binaries)  # the 3 MB one, every byte


def test_compressed_fragmented_and_flagged_messages_say_so() -> None:
    lines, msgs = transcript("deflate_chromium.pcap")
    assert any(m.compressed for m in msgs)
    assert any("[deflate " in line for line in lines)
    assert "extensions permessage-deflate" in lines[1]
    m = message(frames=message().frames * 3, issues=[Issue.TCP_GAP], complete=False)
    from wsinspect.follow import message_header

    assert message_header(m, 1.0).endswith("→ text 5 [3 frames] [incomplete]  !tcp-gap")


def test_payload_lines_of_odd_payloads() -> None:
    # Text with newlines becomes lines, each sanitized; invalid JSON stays text.
    assert list(payload_lines(message(payload=b"a\nb\x1b"))) == ["a", "b\\e"]
    assert list(payload_lines(message(payload=b"{not json"))) == ["{not json"]
    # A ping that is not UTF-8 is dumped; an empty payload has no lines.
    assert list(payload_lines(message(opcode=9, payload=b"\xff\x00"))) == ["00000000  ff 00" + " " * 43 + "  |..|"]
    assert list(payload_lines(message(payload=b""))) == []
    # Bidi and zero-width characters cannot hide in a transcript.
    assert list(payload_lines(message(payload="x\u202ey".encode()))) == ["x\\u202ey"]
