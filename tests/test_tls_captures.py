"""End to end over wss://: every bundled TLS capture (captures/tls/) decodes, with its key log, to what its peers
logged; without keys, each TLS connection is reported once with its reason.

These captures live apart from captures/*.truth.json because every suite over those decodes them without a key
log, and tshark needs a TLS decode-as (tls.port) for them instead of tcp.port.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAPTURES, decode_packets, decoded_payload, load_truth, run_cli, truth_payload, tshark_frames
from wsinspect.capture import open_capture
from wsinspect.issues import Issue
from wsinspect.messages import Message
from wsinspect.packet import RawPacket, tcp_fields
from wsinspect.session import Event, Inspector, Options, SessionSummary, TlsUndecrypted
from wsinspect.tls import KeyLog
from wsinspect.vocab import opcode_label

TLS = CAPTURES / "tls"
TRUTHS = sorted(TLS.glob("*.truth.json"))
KEYLOGS = sorted(TLS.glob("*.keys"))


def _ids(paths: list[Path]) -> list[str]:
    return [p.name.removesuffix(".truth.json") for p in paths]


def _keylog_path(truth: dict[str, Any]) -> Path | None:
    return TLS / truth["keylog"] if truth.get("keylog") else None


def _decode(capture: Path, keylog: KeyLog | None, lane: bool = True, messages: bool = True) -> list[Event]:
    """As `read` does: the key log also takes the capture's own secrets (pcapng Decryption Secrets Blocks)."""
    keylog = keylog if keylog is not None else KeyLog()
    reader = open_capture(str(capture))
    reader.on_secrets(keylog.add)
    try:
        return decode_packets(reader, Options(keylog=keylog, messages=messages), lane)
    finally:
        reader.close()


def _keyed(truth: dict[str, Any]) -> KeyLog:
    path = _keylog_path(truth)
    return KeyLog.from_paths([path] if path else [])


@pytest.fixture(scope="module", params=TRUTHS, ids=_ids(TRUTHS))
def decoded(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[Event]]:
    truth = load_truth(request.param)
    return truth, _decode(TLS / truth["capture"], _keyed(truth))


def test_tls_captures_are_bundled() -> None:
    assert len(TRUTHS) >= 9
    for path in TRUTHS:
        truth = load_truth(path)
        assert (TLS / truth["capture"]).exists(), path
        keylog = _keylog_path(truth)
        assert keylog is None or keylog.exists(), path


def _sums(events: list[Event]) -> list[SessionSummary]:
    return [e for e in events if isinstance(e, SessionSummary)]


def test_sessions_match_truth(decoded: tuple[dict[str, Any], list[Event]]) -> None:
    truth, events = decoded
    assert not [e for e in events if isinstance(e, TlsUndecrypted)]
    found = {s.client: s for s in _sums(events)}
    assert sorted(found) == sorted(t["client"] for t in truth["sessions"])
    for ts in truth["sessions"]:
        s = found[ts["client"]]
        assert (s.server, s.handshake.host, s.handshake.path, s.status) == (
            ts["server"],
            ts["host"],
            ts["path"],
            ts["status"],
        )
        assert s.handshake.subprotocol == ts["subprotocol"]
        assert [str(e) for e in s.handshake.extensions] == ts["extensions"]
        assert s.tls is not None and s.tls.decrypted
        t = ts["tls"]
        assert (s.tls.version, s.tls.cipher, s.tls.sni, s.tls.alpn) == (t["version"], t["cipher"], t["sni"], t["alpn"])
        if "resumed" in t:
            assert s.tls.resumed == t["resumed"]


def _truth_key(m: dict[str, Any]) -> tuple[str, object]:
    if m["opcode"] == "close":
        return "close", (m.get("close_code"), m.get("close_reason"))
    return m["opcode"], truth_payload(m)


def _our_key(m: Message) -> tuple[str, object]:
    if m.opcode == 8:
        return "close", (m.close_code, m.close_reason)
    return opcode_label(m.opcode), decoded_payload(m)


def test_every_message_matches_truth(decoded: tuple[dict[str, Any], list[Event]]) -> None:
    """Every message of every session, control messages included, in order, against what the peers logged."""
    truth, events = decoded
    number = {s.client: s.session for s in _sums(events)}
    msgs = [e for e in events if isinstance(e, Message)]
    for ts in truth["sessions"]:
        mine = [m for m in msgs if m.session == number[ts["client"]]]
        for direction in ("c2s", "s2c"):
            sent = [_truth_key(m) for m in ts["messages"] if m["dir"] == direction]
            got = [_our_key(m) for m in mine if m.dir == direction]
            # A close without a reason is logged with reason None by some peers, "" by the wire.
            got = [(op, (k[0], k[1] or None)) if op == "close" and isinstance(k, tuple) else (op, k) for op, k in got]
            sent = [(op, (k[0], k[1] or None)) if op == "close" and isinstance(k, tuple) else (op, k) for op, k in sent]
            assert got == sent, f"{ts['client']} {direction}"


def test_clean_captures_have_no_findings(decoded: tuple[dict[str, Any], list[Event]]) -> None:
    truth, events = decoded
    assert truth["clean"]
    for s in _sums(events):
        assert s.issue_count == 0 and not s.issues, (s.client, s.issues)


@pytest.mark.parametrize("truth_path", TRUTHS, ids=_ids(TRUTHS))
def test_fast_lane_and_quiet_agree_with_the_general_path(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    capture = TLS / truth["capture"]
    general = _decode(capture, _keyed(truth), lane=False)
    assert _decode(capture, _keyed(truth)) == general
    quiet = _decode(capture, _keyed(truth), messages=False)
    assert quiet == [ev for ev in general if not isinstance(ev, Message)]


# -- the command line ----------------------------------------------------------------------------------------------


def _records(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _keylog_args(truth: dict[str, Any]) -> list[str]:
    path = _keylog_path(truth)
    return ["--tls-keylog", str(path)] if path else []


@pytest.mark.parametrize("truth_path", TRUTHS, ids=_ids(TRUTHS))
def test_json_records_carry_tls(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    result = run_cli("read", "--json", *_keylog_args(truth), str(TLS / truth["capture"]))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    sessions = [r for r in _records(result.stdout) if r["type"] == "session"]
    assert len(sessions) == len(truth["sessions"])
    by_client = {t["client"]: t["tls"] for t in truth["sessions"]}
    for r in sessions:
        t = by_client[r["client"]]
        assert r["tls"] == {
            "version": t["version"],
            "cipher": t["cipher"],
            "sni": t["sni"],
            "alpn": t["alpn"],
            "decrypted": True,
        }
    assert not [r for r in _records(result.stdout) if r["type"] == "tls"]


def test_tshark_spelling_of_the_key_log() -> None:
    keys = TLS / "tls12_websockets_cbc.keys"
    capture = str(TLS / "tls12_websockets_cbc.pcap")
    ours = run_cli("read", "--json", "-o", f"tls.keylog_file:{keys}", capture)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == run_cli("read", "--json", "--tls-keylog", str(keys), capture).stdout
    assert sum(r["type"] == "session" for r in _records(ours.stdout)) == 2


@pytest.mark.parametrize("fmt", [[], ["--json"], ["-q"], ["--json", "-q"]], ids=["text", "json", "q", "json-q"])
def test_parallel_output_is_identical(fmt: list[str]) -> None:
    """-j 2 shares the connections out; key logs reach the workers, TLS records merge in order."""
    capture = str(TLS / "tls12_openssl_resumption.pcap")
    keys = ["--tls-keylog", str(TLS / "tls12_openssl_resumption.keys")]
    for keylog in (keys, []):  # decrypted sessions, then "tls" records
        one = run_cli("read", "-j", "1", *fmt, *keylog, capture)
        two = run_cli("read", "-j", "2", *fmt, *keylog, capture)
        assert one.returncode == two.returncode == 0, two.stderr
        assert one.stdout == two.stdout
        assert one.stdout.count(b"127.0.0.1") >= 4


def test_secrets_block_decrypts_without_a_flag() -> None:
    result = run_cli("read", "--json", "-j", "2", str(TLS / "tls13_websockets_dsb.pcapng"))
    assert result.returncode == 0, result.stderr
    records = _records(result.stdout)
    assert [r["tls"]["decrypted"] for r in records if r["type"] == "session"] == [True]
    assert sum(r["type"] == "message" for r in records) == 14


# -- what is not decrypted ---------------------------------------------------------------------------------------------


KEYED = [p for p in TRUTHS if load_truth(p).get("keylog")]  # not the capture whose keys are inside it


@pytest.mark.parametrize("truth_path", KEYED, ids=_ids(KEYED))
def test_without_keys_each_connection_is_reported(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    result = run_cli("read", "--json", str(TLS / truth["capture"]))
    assert result.returncode == 0, result.stderr
    records = _records(result.stdout)
    assert not [r for r in records if r["type"] != "tls"]
    assert sorted(r["client"] for r in records) == sorted(t["client"] for t in truth["sessions"])
    for r in records:
        assert list(r) == ["type", "client", "server", "sni", "alpn", "version", "cipher", "decrypted", "reason"]
        assert r["decrypted"] is False and r["reason"] == "no key"
        t = next(t for t in truth["sessions"] if t["client"] == r["client"])
        assert (r["server"], r["sni"], r["version"]) == (t["server"], t["tls"]["sni"], t["tls"]["version"])
    text = run_cli("read", str(TLS / truth["capture"]))
    lines = text.stdout.decode().splitlines()
    assert f"{len(records)} TLS connection(s) not decrypted (give the key log with --tls-keylog FILE)" in lines
    assert sum(line.endswith("  no key") for line in lines) == len(records)
    assert "0 WebSocket session(s)" in lines


def _secrets(path: Path) -> list[str]:
    return [line.split()[2].lower() for line in path.read_text().splitlines() if not line.startswith("#")]


def test_wrong_keys_do_not_verify_and_stay_secret(tmp_path: Path) -> None:
    keys = TLS / "tls13_websockets.keys"
    wrong = tmp_path / "wrong.keys"
    lines = []
    for line in keys.read_text().splitlines():
        if line.startswith("#"):
            continue
        label, first, secret = line.split()
        lines.append(f"{label} {first} {secret[:-2]}{(int(secret[-2:], 16) ^ 1):02x}")
    wrong.write_text("\n".join(lines) + "\n")
    capture = str(TLS / "tls13_websockets.pcap")
    result = run_cli("read", "--json", "--tls-keylog", str(wrong), capture)
    assert result.returncode == 0, result.stderr
    records = _records(result.stdout)
    assert [(r["type"], r["reason"]) for r in records] == [("tls", "key does not verify")]
    text = run_cli("read", "--tls-keylog", str(wrong), capture)
    for secret in _secrets(keys) + _secrets(wrong):
        for stream in (result.stdout, result.stderr, text.stdout, text.stderr):
            assert secret.encode() not in stream.lower()


def test_key_log_of_other_connections_is_no_key() -> None:
    result = run_cli(
        "read", "--json", "--tls-keylog", str(TLS / "tls13_chromium.keys"), str(TLS / "tls13_websockets.pcap")
    )
    assert [(r["type"], r["reason"]) for r in _records(result.stdout)] == [("tls", "no key")]


def test_bad_key_log_lines_are_counted_once(tmp_path: Path) -> None:
    good = (TLS / "tls13_websockets.keys").read_bytes()
    bad = tmp_path / "bad.keys"
    # Garbage lines, a line of the wrong shape, and a last line cut short (the rest still decrypts).
    bad.write_bytes(b"garbage\nCLIENT_RANDOM zz 00\n\x00\xff\xfe\n" + good + b"CLIENT_RANDOM 00112233")
    result = run_cli("read", "-q", "--tls-keylog", str(bad), str(TLS / "tls13_websockets.pcap"))
    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == [
        "wsinspect: TLS key log: 3 line(s) are not key-log lines and were ignored"
    ]
    assert b"1 WebSocket session(s)" in result.stdout
    for secret in _secrets(TLS / "tls13_websockets.keys"):
        assert secret.encode() not in result.stderr.lower() + result.stdout.lower()


def test_unreadable_key_log_and_other_preferences() -> None:
    capture = str(TLS / "tls13_websockets.pcap")
    missing = run_cli("read", "--tls-keylog", "/nonexistent/keys", capture)
    assert missing.returncode == 1
    assert missing.stderr.decode().splitlines() == ["wsinspect: cannot read the TLS key log /nonexistent/keys"]
    for preference in ("tcp.desegment:FALSE", "tls.keylog_file", "tls.keylog_file:"):
        other = run_cli("read", "-o", preference, capture)
        assert other.returncode == 2
        assert b"only -o tls.keylog_file:FILE is understood" in other.stderr


def test_capture_starting_mid_tls_is_tls_without_keys() -> None:
    """Without the handshake (the first packets cut off), the connection is TLS without keys: never hunted for
    frames, reported once."""
    reader = open_capture(str(TLS / "tls13_websockets.pcap"))
    packets = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data)), p.number) for p in reader]
    reader.close()
    keylog = KeyLog.from_paths([TLS / "tls13_websockets.keys"])
    events = decode_packets(packets[12:], Options(keylog=keylog))
    undecrypted = [e for e in events if isinstance(e, TlsUndecrypted)]
    assert [e.info.reason for e in undecrypted] == ["capture starts mid-TLS (no handshake)"]
    # Which side is the client cannot be known without the SYN or a hello; the endpoints are both there.
    assert {undecrypted[0].client, undecrypted[0].server} == {"127.0.0.1:37118", "127.0.0.1:47101"}
    assert not [e for e in events if isinstance(e, (Message, SessionSummary))]


def _payload(p: RawPacket) -> bytes:
    fields = tcp_fields(p.linktype, p.data)
    assert fields is not None
    return bytes(p.data[fields[4] : fields[5]])


def test_tls_issues_reach_the_session() -> None:
    """A record lost in the middle (a capture hole): flagged on the session, decryption resumes."""
    reader = open_capture(str(TLS / "tls13_websockets.pcap"))
    packets = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data)), p.number) for p in reader]
    reader.close()
    keylog = KeyLog.from_paths([TLS / "tls13_websockets.keys"])
    # The second of the segments that carry the 100 KB binary (loopback's 40 KB segments), and its copy (the
    # capture saw it twice).
    dropped = _payload([p for p in packets if len(p.data) > 40000][1])
    events = decode_packets([p for p in packets if _payload(p) != dropped], Options(keylog=keylog))
    sums = _sums(events)
    assert len(sums) == 1 and Issue.TLS_GAP in sums[0].issues
    got = [m for m in events if isinstance(m, Message)]
    assert Issue.TLS_DECRYPT_FAILED not in sums[0].issues
    # Decryption resumed and the frame parser hunted for the next frame: only the message the hole cut is
    # missing (flagged, cut short), every other one is there.
    truth = load_truth(TLS / "tls13_websockets.truth.json")["sessions"][0]["messages"]
    cut = [m for m in got if Issue.TCP_GAP in m.issues]
    assert len(cut) == 1 and cut[0].opcode == 2 and len(cut[0].payload) < 100000
    assert [_our_key(m) for m in got if m not in cut] == [_truth_key(m) for m in truth if m.get("length") != 100000]


# -- tshark as second opinion ----------------------------------------------------------------------------------------


# Where tshark cannot be the second opinion, and why.
TSHARK_SKIP = {
    "tls13_websockets_dsb": "the same packets as tls13_websockets; its keys are only in the capture",
}


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=_ids(TRUTHS))
def test_frames_agree_with_tshark(truth_path: Path) -> None:
    name = truth_path.name.removesuffix(".truth.json")
    if name in TSHARK_SKIP:
        pytest.skip(TSHARK_SKIP[name])
    truth = load_truth(truth_path)
    keylog = _keylog_path(truth)
    assert keylog is not None
    port = int(truth["sessions"][0]["server"].rsplit(":", 1)[1])
    theirs = tshark_frames(TLS / truth["capture"], "-o", f"tls.keylog_file:{keylog}", "-d", f"tls.port=={port},http")
    events = _decode(TLS / truth["capture"], _keyed(truth))
    ends = {s.session: (s.client, s.server) for s in _sums(events)}
    ours = []
    for m in (e for e in events if isinstance(e, Message)):
        client, server = ends[m.session]
        sport = int((client if m.dir == "c2s" else server).rsplit(":", 1)[1])
        ours += [(sport, f.opcode, f.fin, f.length) for f in m.frames]
    assert len(theirs) > 0
    assert sorted(theirs) == sorted(ours)


# -- damage ------------------------------------------------------------------------------------------------------------


def test_mutated_tls_captures_never_raise() -> None:
    rng = random.Random(8446)
    for name in ("tls13_websockets", "tls12_websockets_cbc", "tls13_openssl_chacha20"):
        reader = open_capture(str(TLS / f"{name}.pcap"))
        packets = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data))) for p in reader]
        reader.close()
        keylog = KeyLog.from_paths([TLS / f"{name}.keys"])
        for _ in range(15):
            mutated = []
            for p in packets:
                data = bytearray(p.data)
                if data and rng.random() < 0.15:
                    for _ in range(rng.randint(1, 4)):
                        data[rng.randrange(len(data))] = rng.randrange(256)
                if data and rng.random() < 0.05:
                    del data[rng.randrange(len(data)) :]
                if rng.random() < 0.03:
                    continue
                mutated.append(RawPacket(p.ts, p.linktype, memoryview(bytes(data))))
            if rng.random() < 0.5:
                i, j = rng.randrange(len(mutated)), rng.randrange(len(mutated))
                mutated[i], mutated[j] = mutated[j], mutated[i]
            general = decode_packets(mutated, Options(keylog=keylog), lane=False)
            assert decode_packets(mutated, Options(keylog=keylog)) == general
            # Every TLS connection ends as a session or a report, never silently.
            assert [e for e in general if isinstance(e, (SessionSummary, TlsUndecrypted))] or not general


def test_live_and_tui_take_the_key_log_options() -> None:
    """live and tui check their key logs as read does, before any capture or screen starts."""
    capture = str(TLS / "tls13_websockets.pcap")
    for argv in (["live", "-i", "lo"], ["tui", capture]):
        missing = run_cli(*argv, "--tls-keylog", "/nonexistent/keys")
        assert missing.returncode == 1, missing.stderr
        assert missing.stderr.decode().splitlines() == ["wsinspect: cannot read the TLS key log /nonexistent/keys"]
        other = run_cli(*argv, "-o", "tcp.desegment:FALSE")
        assert other.returncode == 2
        assert b"only -o tls.keylog_file:FILE is understood" in other.stderr


def test_fast_lane_carries_decrypted_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decrypted application data of a WebSocket session goes through the assembler's fast lane (else the lane test
    above compares the general path with itself)."""
    general = []
    frames = Inspector._frames

    def counted(self: Inspector, *args: Any) -> None:
        general.append(args)
        frames(self, *args)

    monkeypatch.setattr(Inspector, "_frames", counted)
    truth = load_truth(TLS / "tls13_websockets.truth.json")
    decoded = [e for e in _decode(TLS / truth["capture"], _keyed(truth)) if isinstance(e, Message)]
    assert len(decoded) == sum(len(s["messages"]) for s in truth["sessions"])
    # Each message the general path decodes takes at least one call; the lane takes the small ones whole (the
    # messages larger than a record, and bytes of a frame split across records, are left to the general path).
    assert len(general) < len(decoded)


def test_growing_key_log_is_read_again(tmp_path: Path) -> None:
    """live: the client writes its TLS 1.3 secrets only after the capture saw the ServerHello (and the server's
    first records): a growing key log is looked at again while the records wait, as Wireshark does."""
    reader = open_capture(str(TLS / "tls13_websockets.pcap"))
    packets = [RawPacket(p.ts, p.linktype, memoryview(bytes(p.data)), p.number) for p in reader]
    reader.close()
    path = tmp_path / "keys.log"
    path.write_bytes(b"")
    for growing, expected in ((True, 14), (False, 0)):
        path.write_bytes(b"")
        keylog = KeyLog.from_paths([path])
        keylog.growing = growing
        inspector = Inspector(Options(keylog=keylog))
        events: list[Event] = []
        for p in packets:
            events += inspector.feed(p)
            if p.number == 9:  # the server's encrypted handshake, after its ServerHello: the keys come now
                path.write_bytes((TLS / "tls13_websockets.keys").read_bytes())
        events += inspector.finish()
        assert sum(isinstance(e, Message) for e in events) == expected
        reasons = [e.info.reason for e in events if isinstance(e, TlsUndecrypted)]
        assert reasons == ([] if growing else ["no key"])
