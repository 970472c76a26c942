"""The Inspector: connections become sessions and messages, whatever the wire does."""

from __future__ import annotations

import random
import time
import zlib

from tests.conftest import decode_packets, messages, summaries
from tests.packets import Flow, upgrade_request, upgrade_response, ws_frame
from wsinspect.issues import Issue
from wsinspect.packet import ACK, RawPacket, Segment
from wsinspect.session import Inspector, Options, SessionOpened, SessionUpgraded
from wsinspect.tcp import StreamData, StreamEnd


def compress_stream(msgs: list[bytes], takeover: bool = True) -> list[bytes]:
    obj = zlib.compressobj(wbits=-15)
    out = []
    for m in msgs:
        if not takeover:
            obj = zlib.compressobj(wbits=-15)
        out.append((obj.compress(m) + obj.flush(zlib.Z_SYNC_FLUSH))[:-4])
    return out


def test_clean_session_text_binary_fragments_and_close() -> None:
    f = Flow().websocket("/chat")
    f.c(ws_frame(1, b"hello", mask=True))
    f.s(ws_frame(2, bytes(range(200))))
    cafe = "café!".encode()  # split inside the two bytes of "é"
    f.c(ws_frame(1, cafe[:4], fin=False, mask=True) + ws_frame(9, b"p", mask=True))
    f.c(ws_frame(0, cafe[4:], mask=True))
    f.c(ws_frame(8, b"\x03\xe8bye", mask=True))
    f.s(ws_frame(8, b"\x03\xe8bye"))
    f.fin()
    events = decode_packets(f.packets)
    assert isinstance(events[0], SessionOpened) and events[0].client == "10.0.0.1:40000"
    msgs = messages(events)
    assert [(m.dir, m.opcode, m.payload, len(m.frames)) for m in msgs] == [
        ("c2s", 1, b"hello", 1),
        ("s2c", 2, bytes(range(200)), 1),
        ("c2s", 9, b"p", 1),  # the ping between fragments is delivered first
        ("c2s", 1, "café!".encode(), 2),
        ("c2s", 8, b"\x03\xe8bye", 1),
        ("s2c", 8, b"\x03\xe8bye", 1),
    ]
    assert msgs[3].text == "café!"  # UTF-8 checked across the fragment boundary
    assert all(not m.issues for m in msgs)
    (s,) = summaries(events)
    assert (s.client, s.server, s.path, s.status, s.handshake.accept_valid) == (
        "10.0.0.1:40000",
        "10.0.0.2:8080",
        "/chat",
        101,
        True,
    )
    assert s.messages == (4, 2) and s.close is not None
    assert (s.close.code, s.close.reason, s.close.initiator) == (1000, "bye", "client")
    assert s.ended_by == "fin" and s.issue_count == 0 and s.issues == ()


def test_plain_http_on_the_same_connection_before_the_upgrade() -> None:
    f = Flow()
    f.handshake()
    f.c(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    f.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    f.c(b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    f.s(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    f.c(upgrade_request("/after"))
    f.s(upgrade_response())
    f.c(ws_frame(1, b"hi", mask=True))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert s.path == "/after" and s.status == 101 and not s.issues
    assert [m.text for m in messages(events)] == ["hi"]


def test_websocket_through_a_proxy_tunnel() -> None:
    f = Flow(server=("10.0.0.3", 3128))
    f.handshake()
    f.c(b"CONNECT chat.example:80 HTTP/1.1\r\nHost: chat.example:80\r\n\r\n")
    # a 2xx to CONNECT has no body: the tunnel starts right after it (RFC 9112 6.3)
    f.s(b"HTTP/1.1 200 Connection established\r\n\r\n")
    f.c(upgrade_request("/chat"))
    f.s(upgrade_response())
    f.c(ws_frame(1, b"through the proxy", mask=True))
    f.s(ws_frame(1, b"and back"))
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.path, s.status, s.issues, s.server) == ("/chat", 101, (), "10.0.0.3:3128")
    assert [m.text for m in messages(events)] == ["through the proxy", "and back"]


def test_tls_through_a_proxy_tunnel_is_no_session() -> None:
    rng = random.Random(5)
    f = Flow(server=("10.0.0.3", 3128))
    f.handshake()
    f.c(b"CONNECT chat.example:443 HTTP/1.1\r\nHost: chat.example:443\r\n\r\n")
    f.s(b"HTTP/1.1 200 Connection established\r\n\r\n")
    f.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(500))
    for _ in range(20):
        f.s(b"\x17\x03\x03\x05\xa0" + rng.randbytes(1440))
        f.c(b"\x17\x03\x03\x00\x40" + rng.randbytes(64))
    f.fin()
    assert summaries(decode_packets(f.packets)) == []


def test_the_body_of_an_upgrade_request_is_not_taken_for_frames() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request()[:-2] + b"Content-Length: 4\r\n\r\nbody")
    f.s(upgrade_response())
    f.c(ws_frame(1, b"hi", mask=True))
    events = decode_packets(f.packets)
    assert [(m.text, m.issues) for m in messages(events)] == [("hi", [])]
    (s,) = summaries(events)
    assert s.status == 101 and s.issues == ()


def test_a_malformed_header_line_is_flagged_and_the_session_decoded() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(upgrade_response().replace(b"Upgrade: websocket", b"Upgrade : websocket"))
    f.c(ws_frame(1, b"hi", mask=True))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert s.status == 101 and s.issues == (Issue.HTTP_MALFORMED,)
    assert [m.text for m in messages(events)] == ["hi"]


def test_http_after_a_hole_or_a_late_start_is_parsed_again_where_a_head_starts() -> None:
    get = b"GET /a HTTP/1.1\r\nHost: x\r\nCookie: " + b"x" * 100 + b"\r\n\r\n"
    f = Flow()
    f.handshake()
    first = f.c(get, mss=40)
    f.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    f.c(upgrade_request("/chat", protocols="chat"))
    f.s(upgrade_response(protocol="chat"))
    f.c(ws_frame(1, b"hello", mask=True))
    f.fin()
    # a hole in the earlier request; a capture that starts inside it
    for packets in ([p for p in f.packets if p is not first[1]], f.packets[len(f.packets) - 8 :]):
        events = decode_packets(packets)
        (s,) = summaries(events)
        assert (s.path, s.handshake.subprotocol, s.mid_stream) == ("/chat", "chat", False)
        assert [m.text for m in messages(events)] == ["hello"]


def test_client_data_before_the_101_is_flagged() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request() + ws_frame(1, b"too early", mask=True))
    f.s(upgrade_response())
    f.c(ws_frame(1, b"in time", mask=True))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert s.status == 101 and s.issues == (Issue.FRAMES_BEFORE_101,)
    assert [(m.text, m.issues) for m in messages(events)] == [("too early", []), ("in time", [])]


def test_a_101_that_no_upgrade_request_asked_for() -> None:
    f = Flow()
    f.handshake()
    start = len(f.packets)
    f.c(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    f.s(upgrade_response() + ws_frame(1, b"surprise"))
    f.c(ws_frame(1, b"ok then", mask=True))
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.status, s.issues, s.path) == (101, (Issue.UPGRADE_NOT_REQUESTED,), None)
    assert [m.text for m in messages(events)] == ["surprise", "ok then"]
    # a capture that starts after the request: the session starts at the 101, unflagged
    late = decode_packets(f.packets[start + 1 :])
    (s,) = summaries(late)
    assert (s.status, s.issues, s.mid_stream) == (101, (), False)
    assert [m.text for m in messages(late)] == ["surprise", "ok then"]


def test_any_port_and_ipv6() -> None:
    f = Flow(client=("fe80::1", 50000), server=("2001:db8::2", 7))
    f.websocket()
    f.c(ws_frame(1, b"six", mask=True))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.client, s.server) == ("[fe80::1]:50000", "[2001:db8::2]:7")
    assert [m.text for m in messages(events)] == ["six"]


def test_rejected_upgrade_is_a_session_with_its_status_and_no_messages() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope")
    f.c(upgrade_request("/retry"))
    f.s(upgrade_response())
    f.c(ws_frame(1, b"in", mask=True))
    events = decode_packets(f.packets)
    first, second = sorted(summaries(events), key=lambda s: s.session)
    assert (first.status, first.messages, first.issues, first.ended_by) == (401, (0, 0), (), "rejected")
    assert (second.status, second.path, second.messages) == (101, "/retry", (1, 0))


def test_a_refused_upgrade_ends_rejected_also_when_the_connection_closes() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    f.fin()
    (s,) = summaries(decode_packets(f.packets))
    assert (s.status, s.ended_by, s.issues) == (403, "rejected", ())


def test_frames_without_101_are_decoded_and_flagged() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    f.s(ws_frame(1, b"sneaky"))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert Issue.NO_101 in s.issues
    assert [m.text for m in messages(events)] == ["sneaky"]


def test_unanswered_upgrade_is_flagged() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    # still open when the capture ends: the answer was not captured, no violation
    (s,) = summaries(decode_packets(f.packets))
    assert s.status is None and s.issues == () and s.ended_by == "eof"
    # closed with no answer: a violation (RFC 6455 4.1)
    f.fin()
    (s,) = summaries(decode_packets(f.packets))
    assert s.status is None and Issue.NO_101 in s.issues and s.ended_by == "fin"


def test_frames_held_for_a_101_keep_their_packets_and_are_not_lost_at_the_end() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    lost = f.s(upgrade_response())
    f.c(ws_frame(1, b"first", mask=True))
    f.c(ws_frame(1, b"second", mask=True))
    f.s(ws_frame(1, b"reply"))
    f.fin()
    number = {id(p): n for n, p in enumerate(f.packets, 1)}
    # the 101 is lost: the client's frames wait for it until the server's frame shows
    # there will be none; they keep their own packets, in wire order
    packets = [p for p in f.packets if p is not lost[0]]
    got = messages(decode_packets(packets))
    assert [(m.text, m.packets) for m in got] == [("first", (5, 5)), ("second", (6, 6)), ("reply", (7, 7))]
    assert [m.ts for m in got] == [packets[4].ts, packets[5].ts, packets[6].ts]
    # only the client's side captured: the frames are decoded at the end
    client_side = [p for p in f.packets if number[id(p)] in (1, 3, 4, 6, 7, 9, 11)]
    events = decode_packets(client_side)
    assert [m.text for m in messages(events)] == ["first", "second"]
    (s,) = summaries(events)
    assert s.ended_by == "eof" and Issue.NO_101 not in s.issues  # the answer was not captured


def test_bad_accept_key_is_a_session_issue_and_frames_still_decode() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(upgrade_response(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    f.s(ws_frame(1, b"still"))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert s.handshake.accept_valid is False and Issue.ACCEPT_MISMATCH in s.issues
    assert [m.text for m in messages(events)] == ["still"]


def test_permessage_deflate_with_context_takeover_byte_exact() -> None:
    texts = [b'{"n": %d, "msg": "hello hello hello"}' % i for i in range(5)]
    f = Flow().websocket(extensions="permessage-deflate")
    for c in compress_stream(texts):
        f.s(ws_frame(1, c, rsv=4))
    # a compressed message sent in two fragments: RSV1 only on the first
    big = b"fragmented " * 500
    (c,) = compress_stream([big])
    f.c(ws_frame(2, c[:10], rsv=4, fin=False, mask=True) + ws_frame(0, c[10:], mask=True))
    events = decode_packets(f.packets)
    msgs = messages(events)
    assert [m.payload for m in msgs] == [*texts, big]
    assert all(m.compressed and not m.issues for m in msgs)
    assert msgs[-1].wire_length == len(c) and msgs[-1].length == len(big)
    (s,) = summaries(events)
    assert s.bytes == (len(big), sum(map(len, texts))) and s.wire_bytes[0] == len(c)


def test_no_context_takeover_recovers_after_a_lost_message() -> None:
    msgs = [b"message number %d " % i * 20 for i in range(4)]
    f = Flow().websocket(extensions="permessage-deflate; server_no_context_takeover")
    comp = compress_stream(msgs, takeover=False)
    f.s(ws_frame(1, comp[0], rsv=4))
    lost = f.s(ws_frame(1, comp[1], rsv=4))
    f.s(ws_frame(1, comp[2], rsv=4))
    f.s(ws_frame(1, comp[3], rsv=4))
    f.ack(0)  # the client acknowledges everything: the hole is capture loss
    packets = [p for p in f.packets if p not in lost]
    events = decode_packets(packets)
    got = messages(events)
    assert [m.payload for m in got] == [msgs[0], msgs[2], msgs[3]]
    (s,) = summaries(events)
    assert Issue.TCP_GAP in s.issues


def test_context_takeover_loss_is_flagged_never_garbled() -> None:
    base = b"shared context that later messages refer back to " * 4
    msgs = [base, base + b"1", base + b"2", base + b"3"]
    f = Flow().websocket(extensions="permessage-deflate")
    comp = compress_stream(msgs)
    f.s(ws_frame(1, comp[0], rsv=4))
    lost = f.s(ws_frame(1, comp[1], rsv=4))
    f.s(ws_frame(1, comp[2], rsv=4))
    f.s(ws_frame(1, comp[3], rsv=4))
    f.ack(0)
    got = messages(decode_packets([p for p in f.packets if p not in lost]))
    assert got[0].payload == base and not got[0].issues
    assert [m.issues for m in got[1:]] == [[Issue.INFLATE_CONTEXT_LOST]] * 2
    assert got[1].text is None and got[1].payload == comp[2]  # raw payload kept, never garbage text


def test_decompression_bomb_in_a_session_is_cut_and_decoding_goes_on() -> None:
    obj = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = obj.compress(b"\x00" * (1 << 20)) + obj.flush(zlib.Z_FULL_FLUSH)
    bomb = (one * 1024)[:-4]  # 1 GiB of zeros
    f = Flow().websocket(extensions="permessage-deflate; server_no_context_takeover")
    f.s(ws_frame(2, bomb, rsv=4))
    (after,) = compress_stream([b"after the bomb"])
    f.s(ws_frame(1, after, rsv=4))
    got = messages(decode_packets(f.packets, Options(max_message_size=8 << 20)))
    assert len(got[0].payload) == 8 << 20 and got[0].issues == [Issue.MESSAGE_TOO_LARGE]
    assert got[1].text == "after the bomb" and not got[1].issues


def test_joined_mid_stream() -> None:
    f = Flow().websocket()
    start = len(f.packets)
    f.c(ws_frame(1, b"first seen", mask=True))
    f.s(ws_frame(1, b"reply"))
    f.c(ws_frame(2, b"\x01\x02", mask=True))
    events = decode_packets(f.packets[start:])
    (s,) = summaries(events)
    assert s.mid_stream and Issue.MID_STREAM in s.issues and s.status is None
    assert s.client == "10.0.0.1:40000"  # the masked side is the client
    assert [(m.dir, m.payload) for m in messages(events)] == [
        ("c2s", b"first seen"),
        ("s2c", b"reply"),
        ("c2s", b"\x01\x02"),
    ]


def test_frames_found_by_a_hunt_keep_their_own_packet_and_time() -> None:
    f = Flow().websocket()
    start = len(f.packets)
    # binary frames: one alone is no evidence, so each side's first frame waits for
    # its second; the frames still carry the packets that brought them
    for i in range(3):
        f.c(ws_frame(2, bytes([i]) * 1000, mask=True))
        f.s(ws_frame(2, bytes([i]) * 1000))
    packets = f.packets[start:]
    got = [(m.dir, m.payload[0], m.packets, m.ts) for m in messages(decode_packets(packets))]
    assert sorted(got, key=lambda m: m[2]) == [
        (d, i, (n, n), packets[n - 1].ts)
        for n, (d, i) in enumerate([(c, i) for i in range(3) for c in ("c2s", "s2c")], 1)
    ]


def test_non_websocket_tcp_is_ignored() -> None:
    f = Flow()
    f.handshake()
    f.c(b"\x16\x03\x01\x00\xa5" + bytes(160))  # a TLS ClientHello
    f.s(b"\x16\x03\x03\x00\x5d" + bytes(90))
    f.c(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert decode_packets(f.packets) == []


def test_port_reuse_gives_two_sessions() -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, b"one", mask=True))
    f.fin()
    g = Flow(isn=(90000, 70000), ts=f.ts + 1).websocket()
    g.c(ws_frame(1, b"two", mask=True))
    events = decode_packets(f.packets + g.packets)
    assert [(m.session, m.text) for m in messages(events)] == [(1, "one"), (2, "two")]
    assert [s.session for s in summaries(events)] == [1, 2]


def test_stream_ending_mid_message_is_flagged() -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, b"part", fin=False, mask=True))
    f.rst(1)
    events = decode_packets(f.packets)
    (m,) = messages(events)
    assert Issue.MESSAGE_INCOMPLETE in m.issues and not m.complete and m.text == "part"
    (s,) = summaries(events)
    assert s.ended_by == "rst" and s.issue_count == 1


def test_feeding_packet_by_packet_equals_feeding_all() -> None:
    f = Flow().websocket()
    f.c(ws_frame(2, bytes(5000), mask=True), mss=100)
    f.s(ws_frame(1, b"x" * 70000), mss=1448)
    whole = messages(decode_packets(f.packets))
    assert [m.length for m in whole] == [5000, 70000]
    assert whole[0].packets[1] - whole[0].packets[0] == 50


def test_random_tcp_traffic_is_not_mistaken_for_websocket() -> None:
    rng = random.Random(1)
    packets = []
    for i in range(10):
        f = Flow(client=("10.0.0.1", 40000 + i))
        f.handshake()
        f.c(b"\x16\x03\x01\x02\x00" + rng.randbytes(500))  # like TLS
        f.s(rng.randbytes(300_000))
        packets += f.packets
    assert decode_packets(packets) == []


def test_hole_over_a_header_in_binary_traffic_resyncs_without_garbage() -> None:
    rng = random.Random(2)
    blobs = [rng.randbytes(rng.randrange(2000, 20000)) for _ in range(30)]
    f = Flow().websocket()
    sent = [f.s(ws_frame(2, b)) for b in blobs]
    f.ack(0)
    lost = sent[10][0]  # the segment holding message 10's header
    got = messages(decode_packets([p for p in f.packets if p is not lost]))
    payloads = [m.payload for m in got]
    # every message decoded is one that was sent, whole, in order; only 10 is lost
    assert payloads == blobs[:10] + blobs[11:]


def test_rsv1_on_a_continuation_is_flagged_under_permessage_deflate() -> None:
    (c,) = compress_stream([b"hello world"])
    f = Flow().websocket(extensions="permessage-deflate")
    f.s(ws_frame(1, c[:4], rsv=4, fin=False) + ws_frame(0, c[4:], rsv=4))
    (m,) = messages(decode_packets(f.packets))
    assert m.payload == b"hello world" and m.issues == [Issue.CONTINUATION_COMPRESSED]


def test_deflate_frame_inflates_each_compressed_frame_even_after_a_plain_one() -> None:
    obj = zlib.compressobj(wbits=-15)
    part = (obj.compress(b" world") + obj.flush(zlib.Z_SYNC_FLUSH))[:-4]
    f = Flow().websocket(extensions="x-webkit-deflate-frame")
    f.s(ws_frame(1, b"hello", fin=False) + ws_frame(0, part, rsv=4))
    (m,) = messages(decode_packets(f.packets))
    assert (m.text, m.compressed, m.issues) == ("hello world", True, [])


def test_handshake_is_announced_when_the_response_arrives() -> None:
    f = Flow().websocket("/live")
    f.c(ws_frame(1, b"x", mask=True))
    events = decode_packets(f.packets)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SessionOpened", "SessionUpgraded", "Message", "SessionSummary"]
    upgraded = events[1]
    assert isinstance(upgraded, SessionUpgraded)
    assert (upgraded.session, upgraded.handshake.path, upgraded.handshake.status) == (1, "/live", 101)


# Found in review: each of these once hung, misparsed or invented findings.


def test_negative_chunk_size_does_not_hang() -> None:
    f = Flow()
    f.handshake()
    f.c(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    f.s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-10\r\nabc")
    f.fin()
    assert decode_packets(f.packets) == []


def test_a_head_arriving_one_byte_first_is_still_http() -> None:
    f = Flow()
    f.handshake()
    req = upgrade_request()
    f.c(req[:1])
    f.c(req[1:])
    resp = upgrade_response()
    f.s(resp[:3])
    f.s(resp[3:] + ws_frame(1, b"hi"))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.status, s.mid_stream, s.issues) == (101, False, ())
    assert [m.text for m in messages(events)] == ["hi"]


def test_requests_pipelined_after_a_refused_upgrade_are_parsed_as_requests() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request() + b"HEAD /fallback HTTP/1.1\r\nHost: x\r\n\r\n" + upgrade_request("/again"))
    f.s(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    f.s(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")  # HEAD: no body follows
    f.s(upgrade_response() + ws_frame(1, b"second try"))
    events = decode_packets(f.packets)
    assert [(s.status, s.path) for s in summaries(events)] == [(400, "/ws"), (101, "/again")]
    assert [m.text for m in messages(events)] == ["second try"]


def test_refusal_with_a_body_until_close_is_not_taken_for_frames() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    f.s(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n<html><body>Forbidden</body></html>\n")
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.status, s.issues, messages(events)) == (403, (), [])


def test_session_end_never_goes_back_in_time() -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, b"X1", mask=True))
    f.c(ws_frame(1, b"X2", mask=True))
    f.packets.pop()
    f.c(ws_frame(1, b"X3", mask=True))
    f.s(ws_frame(1, b"Y"))
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert s.end >= max(m.ts for m in messages(events))


def test_reserved_data_opcode_with_rsv1_does_not_disturb_the_inflater() -> None:
    texts = [b"repeat repeat repeat", b"repeat repeat repeat"]
    comp = compress_stream(texts)
    f = Flow().websocket(extensions="permessage-deflate")
    f.s(ws_frame(1, comp[0], rsv=4) + ws_frame(3, b"\xff\xfe junk", rsv=4) + ws_frame(1, comp[1], rsv=4))
    got = messages(decode_packets(f.packets))
    assert [(m.opcode, m.payload) for m in got if m.opcode == 1] == [(1, texts[0]), (1, texts[1])]
    assert all(not m.issues for m in got if m.opcode == 1)


def test_segments_arriving_in_reverse_are_drained_in_linear_time() -> None:
    f = Flow().websocket()
    segments = f.c(ws_frame(2, bytes(2_000_000), mask=True), mss=100)
    head = f.packets[: -len(segments)]
    start = time.monotonic()
    got = messages(decode_packets(head + segments[::-1]))
    assert [m.length for m in got] == [2_000_000]
    assert time.monotonic() - start < 10  # quadratic draining took about 12 s here


def test_hole_inside_a_known_payload_cuts_only_that_message() -> None:
    f = Flow().websocket()
    f.s(ws_frame(1, b"A" * 100, fin=False))
    cut = f.s(ws_frame(0, b"B" * 3000, fin=False))
    f.s(ws_frame(0, b"C" * 100))
    f.ack(0)
    f.fin()
    (m,) = messages(decode_packets([p for p in f.packets if p is not cut[1]]))
    assert (m.opcode, m.complete, m.issues, len(m.frames)) == (1, False, [Issue.TCP_GAP], 3)


def test_hole_inside_an_uncompressed_frame_keeps_the_inflater() -> None:
    texts = [b"the same words again and again " * 3] * 2
    comp = compress_stream(texts)
    f = Flow().websocket(extensions="permessage-deflate")
    f.s(ws_frame(1, comp[0], rsv=4))
    cut = f.s(ws_frame(2, bytes(5000)))
    f.s(ws_frame(1, comp[1], rsv=4))
    f.ack(0)
    got = messages(decode_packets([p for p in f.packets if p is not cut[1]]))
    assert [m.issues for m in got] == [[], [Issue.TCP_GAP], []]
    assert got[2].payload == texts[1]


def test_resync_in_random_binary_rarely_invents_frames() -> None:
    rng = random.Random(6)
    bogus = 0
    for _ in range(10):
        f = Flow().websocket()
        f.s(ws_frame(1, b"before"))
        big = f.s(ws_frame(2, rng.randbytes(200_000)))
        f.s(ws_frame(1, b"after, and more"))
        f.ack(0)
        texts = [m.payload for m in messages(decode_packets([p for p in f.packets if p is not big[0]]))]
        assert texts[0] == b"before" and texts[-1] == b"after, and more"
        bogus += len(texts) - 2
    assert bogus <= 2  # a lone ping-like header on a segment boundary used to pass in most runs


def test_max_message_size_counts_the_whole_fragmented_message() -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, b"a" * 60, fin=False, mask=True))
    for _ in range(5):
        f.c(ws_frame(0, b"b" * 60, fin=False, mask=True))
    f.c(ws_frame(0, b"c" * 60, mask=True))
    f.c(ws_frame(1, b"next", mask=True))
    events = decode_packets(f.packets, Options(max_message_size=100))
    # the payload kept is cut; the length on the wire is as sent; the session's totals
    # add up the messages' lengths and wire lengths
    assert [(m.length, m.wire_length, m.complete, m.issues) for m in messages(events)] == [
        (100, 420, False, [Issue.MESSAGE_TOO_LARGE]),
        (4, 4, True, []),
    ]
    (s,) = summaries(events)
    assert (s.bytes, s.wire_bytes) == ((104, 0), (424, 0))


def test_client_side_only_capture_is_decoded_without_holding_everything() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    for i in range(20):
        f.c(ws_frame(2, bytes([i]) * 50_000, mask=True))
    client_only = [p for p in f.packets if bytes(p.data[26:30]) == bytes([10, 0, 0, 1])]
    events = decode_packets(client_only)
    got = messages(events)
    assert len(got) == 20 and all(m.length == 50_000 for m in got)
    (s,) = summaries(events)
    assert s.ended_by == "eof" and Issue.NO_101 not in s.issues  # the answer was not captured


def test_pure_acks_reach_reassembly_only_while_a_stream_waits_behind_a_hole() -> None:
    flow = Flow().websocket()
    dup_ack = flow.ack(0)  # what the client repeats while data is missing
    data = ws_frame(2, b"x" * 3000)
    first, second, third = flow.s(data, 1100)
    inspector = Inspector()
    fed: list[int] = []
    feed = inspector.tcp.feed

    def spy(seg: Segment, packet: int) -> list[StreamData | StreamEnd]:
        fed.append(seg.flags)
        return feed(seg, packet)

    inspector.tcp.feed = spy  # type: ignore[method-assign]
    for p in flow.packets[:-4]:
        inspector.feed(p)
    before = len(fed)
    inspector.feed(dup_ack)
    assert len(fed) == before  # nothing held anywhere: dropped before reassembly
    inspector.feed(third)  # out of order: held behind a hole
    inspector.feed(dup_ack)
    assert fed[-1] == ACK  # now it counts (an ACK beyond the hole would declare it lost)
    got = messages(inspector.feed(first) + inspector.feed(second))
    assert [m.payload for m in got] == [b"x" * 3000]


def test_frames_after_a_hole_in_the_last_segment_are_found_when_the_stream_ends() -> None:
    f = Flow().websocket()
    a, b = ws_frame(2, b"A" * 100, mask=True), ws_frame(2, b"B" * 100, mask=True)
    sent = f.c(a + b + ws_frame(8, b"\x03\xe8bye", mask=True), mss=50)
    f.s(ws_frame(8, b"\x03\xe8bye"))
    f.ack(1)
    f.fin()
    # bytes 50..150 are lost: A's tail and B's header; the client's Close follows B
    # in the connection's last client segment, with no later segment to confirm it
    events = decode_packets([p for p in f.packets if p not in sent[1:3]])
    got = [(m.dir, m.opcode, m.complete, m.issues) for m in messages(events)]
    # the server's Close acknowledges the lost bytes: it was sent after them, and
    # comes out after the client's bytes around the hole; the client's Close, in
    # those bytes, is trusted only when the stream ends
    assert got == [
        ("c2s", 2, False, [Issue.TCP_GAP]),
        ("s2c", 8, True, []),
        ("c2s", 8, True, []),
    ]
    (summary,) = summaries(events)
    # the client's Close came first on the wire, though found last
    assert summary.close is not None and (summary.close.initiator, summary.close.reason) == ("client", "bye")


def test_a_message_cut_by_a_hole_is_flagged_as_such_when_the_stream_ends_in_the_hunt() -> None:
    f = Flow().websocket()
    first = ws_frame(1, b"part1", fin=False, mask=True)
    lost = ws_frame(0, b"part2", fin=False, mask=True)
    rest = ws_frame(0, b"part3", mask=True) + ws_frame(1, b"next message!", mask=True)
    f.c(first)
    f.seq[0] += len(lost)  # never captured
    f.c(rest)
    f.ack(1)
    f.fin()
    got = [(m.text, m.complete, m.issues) for m in messages(decode_packets(f.packets))]
    assert got == [("part1", False, [Issue.TCP_GAP]), ("next message!", True, [])]


def test_tcp_findings_reach_the_session() -> None:
    f = Flow().websocket()
    frames = [ws_frame(1, f"message {i}".encode(), mask=True) for i in range(3)]
    seq = f.seq[0]
    a, b, c = (f._packet(0, ACK, frame, seq=seq + sum(map(len, frames[:i]))) for i, frame in enumerate(frames))
    # c arrives early, then again with other bytes at its sequence number, then b
    forged = f._packet(0, ACK, bytes(len(frames[2])), seq=seq + len(frames[0]) + len(frames[1]))
    f.packets += [a, c, forged, b]
    events = decode_packets(f.packets)
    assert [m.text for m in messages(events)] == ["message 0", "message 1", "message 2"]  # the first copy
    (summary,) = summaries(events)
    assert summary.issues == (Issue.TCP_OVERLAP_CONFLICT,)


def test_a_hole_inside_a_text_message_is_no_utf8_finding() -> None:
    f = Flow().websocket()
    f.c(ws_frame(1, "début ".encode(), fin=False, mask=True))
    middle = f.c(ws_frame(0, "ü".encode() * 300, fin=False, mask=True), mss=101)
    f.c(ws_frame(0, b" fin", mask=True))
    f.ack(1)
    f.fin()
    # 101 bytes lost: the bytes around the hole meet in the middle of a character
    (m,) = messages(decode_packets([p for p in f.packets if p is not middle[1]]))
    assert m.issues == [Issue.TCP_GAP] and not m.complete
    assert m.text == "début " + "ü" * 46 + "\ufffd fin"


def test_a_close_reason_that_is_not_utf8_is_marked_not_escaped() -> None:
    f = Flow().websocket()
    f.c(ws_frame(8, b"\x03\xe8\xc3(", mask=True))
    (m,) = messages(decode_packets(f.packets))
    assert (m.close_code, m.close_reason, m.issues) == (1000, "\ufffd(", [Issue.CLOSE_REASON_INVALID_UTF8])


def test_early_client_frames_cut_by_the_snapshot_length_wait_for_the_101_with_their_hole() -> None:
    f = Flow()
    f.handshake()
    f.c(upgrade_request())
    (p,) = f.c(ws_frame(9, b"ping payload that the snapshot length cuts", mask=True))
    f.packets[-1] = RawPacket(p.ts, p.linktype, p.data[: 54 + 20])  # 20 payload bytes kept of 48
    f.s(upgrade_response())
    f.c(ws_frame(1, b"after the 101", mask=True))
    f.fin()
    events = decode_packets(f.packets)
    got = [(m.opcode, m.payload, m.complete, m.issues) for m in messages(events)]
    assert got == [(9, b"ping payload t", False, [Issue.TCP_GAP]), (1, b"after the 101", True, [])]
    (s,) = summaries(events)
    assert set(s.issues) == {Issue.FRAMES_BEFORE_101, Issue.TCP_GAP}


def test_a_frame_length_no_peer_can_mean_adds_nothing_to_the_totals() -> None:
    f = Flow().websocket()
    f.c(bytes([0x82, 0xFF]) + (1 << 63 | 5).to_bytes(8, "big") + b"\x01\x02\x03\x04" + b"hello")
    f.fin()
    events = decode_packets(f.packets)
    assert [(m.wire_length, m.issues) for m in messages(events)] == [(0, [Issue.LENGTH_TOP_BIT])]
    (s,) = summaries(events)
    assert (s.bytes, s.wire_bytes) == ((0, 0), (0, 0))


def test_a_head_longer_than_servers_accept_is_flagged_and_the_session_kept() -> None:
    # A 1 MB header line: beyond any server's limit, yet this server answered 101.
    f = Flow()
    f.handshake()
    request = upgrade_request()
    f.c(request[:-2] + b"X-Huge: " + b"a" * (1 << 20) + b"\r\n\r\n")
    f.s(upgrade_response())
    f.c(ws_frame(1, b"after the huge head", mask=True))
    f.s(ws_frame(1, b"answered"))
    f.fin()
    events = decode_packets(f.packets)
    (s,) = summaries(events)
    assert (s.status, s.handshake.accept_valid, s.issues) == (101, True, (Issue.HTTP_HEAD_TOO_LONG,))
    assert [m.text for m in messages(events)] == ["after the huge head", "answered"]


def test_a_frame_cut_by_the_end_of_the_capture_has_one_size_as_sent() -> None:
    # The frame record said payload_length 5379 where its message said wire_length
    # 4340 (the bytes seen): both are the size as sent, the frame's declared length.
    f = Flow().websocket()
    frame = ws_frame(2, bytes(5379), mask=True)
    f.c(frame[: len(frame) - 1039])  # the capture ends 1039 bytes before the frame does
    events = decode_packets(f.packets)
    (m,) = messages(events)
    assert (m.wire_length, m.frames[0].length, len(m.payload), m.complete) == (5379, 5379, 4340, False)
    assert Issue.FRAME_TRUNCATED in m.issues
    (s,) = summaries(events)
    assert s.wire_bytes == (5379, 0)
