"""What a search looks in: one rule for `read --grep`, `tui --grep`, the TUI's `/` and its filter.

A message is searched in its text as decoded: a text message's text (RFC 6455 5.6: UTF-8),
and a close message's reason (RFC 6455 5.5.1: UTF-8 too). Binary, ping, pong and
reserved-opcode payloads are bytes with no agreed text, and a text message that is not
valid UTF-8 has none either: a search never matches them (the opcode filter selects them).
"""

from __future__ import annotations

import re

from wsinspect.messages import Message


def search_text(m: Message) -> str | None:
    """The text a search looks in, or None when the message has none."""
    if m.text is not None:
        return m.text
    return m.close_reason


def matches(pattern: re.Pattern[str], m: Message) -> bool:
    """Whether ``pattern`` is found in the message's search text."""
    text = search_text(m)
    return text is not None and pattern.search(text) is not None
