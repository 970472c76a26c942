"""Shared test helpers: paths, the truth files beside the captures, decoding helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from wsinspect.capture import open_capture
from wsinspect.messages import Message
from wsinspect.packet import RawPacket
from wsinspect.session import Event, Inspector, Options, SessionSummary

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def truth_files() -> list[Path]:
    return sorted(CAPTURES.glob("*.truth.json"))


def load_truth(path: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads(path.read_text())
    return truth


def decode_packets(packets: Iterable[RawPacket], options: Options | None = None, lane: bool = True) -> list[Event]:
    """Run the sans-I/O loop over packets and return every event (``lane``: whether
    the Inspector may take its fast lane)."""
    inspector = Inspector(options)
    inspector.lane = lane
    events: list[Event] = []
    for raw in packets:
        events.extend(inspector.feed(raw))
    events.extend(inspector.finish())
    return events


def decode_file(path: Path | str, options: Options | None = None, lane: bool = True) -> list[Event]:
    reader = open_capture(str(path))
    try:
        return decode_packets(reader, options, lane)
    finally:
        reader.close()


def messages(events: Iterable[Event]) -> list[Message]:
    return [e for e in events if isinstance(e, Message)]


def summaries(events: Iterable[Event]) -> list[SessionSummary]:
    return [e for e in events if isinstance(e, SessionSummary)]


def truth_payload(m: dict[str, Any]) -> str:
    """A truth message's payload as the SHA-256 of its bytes (large ones are logged so)."""
    if "sha256" in m:
        return str(m["sha256"])
    if "text" in m:
        return hashlib.sha256(m["text"].encode("utf-8")).hexdigest()
    return hashlib.sha256(base64.b64decode(m.get("data", ""))).hexdigest()


def decoded_payload(m: Message) -> str:
    """A decoded message's payload as the SHA-256 of its bytes; text must have decoded."""
    assert m.opcode != 1 or m.text is not None or m.issues, m
    return hashlib.sha256(m.payload).hexdigest()


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m wsinspect ARGS` as a user would, capturing both streams; ``env``
    adds to (or overrides) the environment."""
    env = dict(os.environ, PYTHONWARNINGS="error", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "wsinspect", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="session")
def basic_capture() -> Path:
    return CAPTURES / "websockets_basic.pcap"


def tshark_frames(path: Path, *options: str) -> list[tuple[int, int, bool, int]]:
    """(source port, opcode, fin, payload length) of every WebSocket frame tshark dissects
    in ``path`` (``options``: its -o preferences and -d decode-as rules)."""
    result = subprocess.run(
        [
            "tshark", "-n", "-r", str(path), *options, "-Y", "websocket",
            "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
            "-e", "tcp.srcport", "-e", "websocket.opcode", "-e", "websocket.fin",
            "-e", "websocket.payload_length", "-e", "websocket.payload_length_ext_16",
            "-e", "websocket.payload_length_ext_64",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    frames = []
    for line in result.stdout.splitlines():
        sport, ops, fins, lens, ext16, ext64 = (line.split("\t") + [""] * 6)[:6]
        ext16s, ext64s = iter(ext16.split("|")), iter(ext64.split("|"))
        for op, fin, n in zip(ops.split("|"), fins.split("|"), lens.split("|"), strict=True):
            length = int(n)
            if length == 126:
                length = int(next(ext16s))
            elif length == 127:
                length = int(next(ext64s))
            frames.append((int(sport), int(op), fin in ("1", "True"), length))
    return frames
