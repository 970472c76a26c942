"""permessage-deflate (RFC 7692): negotiated parameters and one Inflater per direction.

The inflater keeps zlib's sliding window across messages unless the direction
negotiated no_context_takeover. After a loss (a message damaged by a capture hole,
a corrupt stream, a message over the size cap) it restarts with an empty window:
its history is then a contiguous suffix of the sender's, so every back-reference it
can resolve is right, and one it cannot resolve fails loudly instead of producing
wrong bytes. Once it has seen a full window (32 KiB) since the restart, it is
trusted again.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from wsinspect.http import Extension
from wsinspect.issues import Issue

# RFC 7692 7.2.2: the sender removes this empty stored block's tail; put it back.
TAIL = b"\x00\x00\xff\xff"
PMD = "permessage-deflate"
DEFLATE_FRAME = ("x-webkit-deflate-frame", "deflate-frame")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated permessage-deflate parameters, from the 101 response."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    per_frame: bool = False  # the pre-RFC deflate-frame extension


def negotiate(extensions: list[Extension], offers: list[Extension] | None = None) -> tuple[DeflateParams | None, bool]:
    """Find the compression extension among the accepted ones.

    Returns (params or None, ok): ok is False when its parameters are malformed or
    contradictory (RFC 7692 7.1), or answer none of the client's ``offers`` (when
    the request is known), in which case they are still used for decoding.
    """
    for ext in extensions:
        if ext.name in DEFLATE_FRAME:
            return DeflateParams(per_frame=True), True
        if ext.name != PMD:
            continue
        ok = True
        seen: set[str] = set()
        values: dict[str, object] = {}
        for name, value in ext.params:
            if name in seen:
                ok = False  # a parameter given twice (RFC 7692 7)
            seen.add(name)
            if name in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    ok = False
                values[name] = True
            elif name in ("server_max_window_bits", "client_max_window_bits"):
                # In a response both must carry a value 8..15 (RFC 7692 7.1.2).
                if value is None or not value.isdigit() or not 8 <= int(value) <= 15:
                    ok = False
                else:
                    values[name] = int(value)
            else:
                ok = False
        if offers is not None:
            pmd_offers = [offer for offer in offers if offer.name == PMD]
            if pmd_offers and not any(_answers(values, offer) for offer in pmd_offers):
                ok = False
        return DeflateParams(**values), ok  # type: ignore[arg-type]
    return None, True


def _answers(values: dict[str, object], offer: Extension) -> bool:
    """Whether a response's parameters may accept this offer (RFC 7692 7.1.2): the
    client's window is limited only if the client offered that, and a limit the
    client asked of the server's window is kept (the same or smaller)."""
    offered = dict(offer.params)
    if "client_max_window_bits" in values and "client_max_window_bits" not in offered:
        return False
    if "server_max_window_bits" in offered:
        asked = offered["server_max_window_bits"] or ""
        answer = values.get("server_max_window_bits")
        if not isinstance(answer, int) or (asked.isdigit() and answer > int(asked)):
            return False
    return True


class Inflater:
    """Inflates one direction's compressed messages, byte-exact, with a size cap."""

    def __init__(
        self, no_context_takeover: bool, max_message_size: int, trusted: bool = True, window_bits: int = 15
    ) -> None:
        self.no_context_takeover = no_context_takeover
        self.max_message_size = max_message_size
        # The sender's negotiated window (RFC 7692 7.1.2): a back-reference beyond it
        # fails to inflate. zlib's deflate never uses less than 9 bits, even when 8
        # was negotiated, so 8 is read as 9 rather than failing zlib's own peers.
        self._wbits = -max(window_bits, 9)
        self._window = 1 << -self._wbits
        self._obj = zlib.decompressobj(self._wbits)
        # Untrusted until a full window has been inflated since the last restart.
        self._history = self._window if trusted else 0

    def lose(self) -> None:
        """A compressed message of this direction was lost: restart the window."""
        self._obj = zlib.decompressobj(self._wbits)
        self._history = 0

    def inflate(self, data: bytes, whole: bool = True) -> tuple[bytes, Issue | None]:
        """Inflate one message (or deflate-frame frame); never more than max_message_size bytes.

        ``whole`` is False for the start of a message whose end was not kept (cut
        at the size cap): it is inflated as far as it goes, and the window restarts.
        """
        if whole and not data:
            # No compressor emits nothing (an empty message deflates to at least one
            # byte); the tail alone would leave the window inside a block header and
            # garble the next message, so it is not fed (RFC 7692 7.2.2).
            return b"", Issue.INFLATE_FAILED
        if self.no_context_takeover:
            self._obj = zlib.decompressobj(self._wbits)
            self._history = self._window
        obj = self._obj
        try:
            out = obj.decompress(data + TAIL if whole else data, self.max_message_size + 1)
        except zlib.error:
            issue = Issue.INFLATE_FAILED if self._history >= self._window else Issue.INFLATE_CONTEXT_LOST
            self.lose()
            return b"", issue
        if len(out) > self.max_message_size:
            # A bomb or just a huge message: keep the cap's worth, drop the window.
            self.lose()
            return out[: self.max_message_size], Issue.MESSAGE_TOO_LARGE
        if not whole:
            self.lose()
            return out, None
        if obj.eof:
            # The sender ended the deflate stream (BFINAL): the next message starts
            # a new one with an empty window.
            self._obj = zlib.decompressobj(self._wbits)
            self._history = self._window
        elif self._history < self._window:
            self._history += len(out)
        return out, None
