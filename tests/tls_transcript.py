"""Byte-exact TLS transcripts with no network: two ``ssl.SSLObject``s joined by ``MemoryBIO``s.

OpenSSL writes the records and the key log (``SSLContext.keylog_filename``); what each side wrote as application
data is the ground truth. Python's ``ssl`` module has no API for TLS 1.3 cipher suites, key groups, KeyUpdate or
renegotiation, so those few OpenSSL calls are made through ctypes on the objects' own ``SSL_CTX``/``SSL`` pointers
(the pointer follows the object header in CPython's ``PySSLContext``/``PySSLSocket``).
"""

from __future__ import annotations

import _ssl
import contextlib
import ctypes
import datetime
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_LIB = ctypes.CDLL(_ssl.__file__)  # libssl's symbols, through the module linked against it
_LIB.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_LIB.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
_LIB.SSL_CTX_ctrl.restype = ctypes.c_long
_LIB.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
_LIB.SSL_renegotiate.argtypes = [ctypes.c_void_p]
_LIB.SSL_CTX_set_block_padding.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
SSL_CTRL_SET_GROUPS_LIST = 92
# OpenSSL 3 option bits Python does not name.
OP_NO_EXTENDED_MASTER_SECRET = 1 << 0
OP_NO_ENCRYPT_THEN_MAC = 1 << 19

CLIENT, SERVER = 0, 1


def _pointer(obj: object, index: int) -> int:
    value = ctypes.cast(id(obj), ctypes.POINTER(ctypes.c_void_p))[index]
    assert value
    return value


def set_tls13_suites(ctx: ssl.SSLContext, suites: str) -> None:
    assert _LIB.SSL_CTX_set_ciphersuites(_pointer(ctx, 2), suites.encode()) == 1


def key_update(ssl_object: ssl.SSLObject, *, request: bool) -> None:
    """Schedule an RFC 8446 4.6.3 KeyUpdate, sent before the next application data this side writes."""
    ssl_ptr = _pointer(ssl_object._sslobj, 3)  # type: ignore[attr-defined]
    assert _LIB.SSL_key_update(ssl_ptr, 1 if request else 0) == 1


def set_groups(ctx: ssl.SSLContext, groups: str) -> None:
    assert _LIB.SSL_CTX_ctrl(_pointer(ctx, 2), SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) == 1


_CERTS: dict[str, tuple[Path, Path]] = {}


def certificate(directory: Path, kind: str) -> tuple[Path, Path]:
    """A self-signed certificate and key ("rsa" or "ec"), made once per test run."""
    if kind in _CERTS:
        return _CERTS[kind]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsinspect.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{kind}.crt", directory / f"{kind}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    _CERTS[kind] = (cert_path, key_path)
    return cert_path, key_path


@dataclass
class Transcript:
    """The bytes each side wrote, in order, and the application data each side sent."""

    wire: list[tuple[int, bytes]] = field(default_factory=list)
    sent: dict[int, bytearray] = field(default_factory=lambda: {CLIENT: bytearray(), SERVER: bytearray()})
    keylog_path: Path | None = None

    def stream(self, direction: int) -> bytes:
        return b"".join(data for d, data in self.wire if d == direction)


class Pair:
    """A connected client and server over memory, recording every byte into ``transcript``."""

    def __init__(
        self,
        directory: Path,
        *,
        tls12: bool = False,
        version_min: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
        suites13: str | None = None,
        server_groups: str | None = None,
        block_padding: int = 0,
        cert: str = "rsa",
        options: int = 0,
        alpn: list[str] | None = None,
        session: ssl.SSLSession | None = None,
        client_ctx: ssl.SSLContext | None = None,
        server_ctx: ssl.SSLContext | None = None,
        keylog: str = "keys.log",
    ) -> None:
        cert_path, key_path = certificate(directory, cert)
        if server_ctx is None:
            server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ctx.load_cert_chain(cert_path, key_path)
        if client_ctx is None:
            client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
            client_ctx.keylog_filename = str(directory / keylog)
        for ctx in (server_ctx, client_ctx):
            if tls12:
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            if version_min is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = version_min
                    ctx.maximum_version = version_min
            if ciphers:
                ctx.set_ciphers(ciphers)
            if suites13:
                set_tls13_suites(ctx, suites13)
            if alpn:
                ctx.set_alpn_protocols(alpn)
            ctx.options |= options
        if server_groups:
            set_groups(server_ctx, server_groups)
        if block_padding:  # RFC 8446 5.4: TLS 1.3 records padded to a multiple of this many bytes
            for ctx in (server_ctx, client_ctx):
                assert _LIB.SSL_CTX_set_block_padding(_pointer(ctx, 2), block_padding) == 1
        self.client_ctx, self.server_ctx = client_ctx, server_ctx
        self.transcript = Transcript(keylog_path=directory / keylog)
        self._bios = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]  # (incoming, outgoing) per side
        self.client = client_ctx.wrap_bio(*self._bios[CLIENT], server_hostname="wsinspect.test", session=session)
        self.server = server_ctx.wrap_bio(*self._bios[SERVER], server_side=True)
        self.handshake()

    def _side(self, d: int) -> ssl.SSLObject:
        return self.client if d == CLIENT else self.server

    def pump(self) -> None:
        """Carry every written byte to the peer, recording it; let both sides read what they can."""
        moved = True
        while moved:
            moved = False
            for d in (CLIENT, SERVER):
                data = self._bios[d][1].read()
                if data:
                    self.transcript.wire.append((d, data))
                    self._bios[1 - d][0].write(data)
                    moved = True
            for d in (CLIENT, SERVER):
                self._drain(d)

    def _drain(self, d: int) -> None:
        side = self._side(d)
        try:
            while side.read(1 << 16):
                pass
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLZeroReturnError:
            pass

    def handshake(self) -> None:
        done = [False, False]
        while not all(done):
            for d in (CLIENT, SERVER):
                if not done[d]:
                    try:
                        self._side(d).do_handshake()
                        done[d] = True
                    except ssl.SSLWantReadError:
                        pass
            self._move()
        self.pump()

    def _move(self) -> None:
        for d in (CLIENT, SERVER):
            data = self._bios[d][1].read()
            if data:
                self.transcript.wire.append((d, data))
                self._bios[1 - d][0].write(data)

    def send(self, d: int, data: bytes) -> None:
        side = self._side(d)
        view = memoryview(data)
        while view:
            n = side.write(view)
            view = view[n:]
            self.pump()
        self.transcript.sent[d] += data

    def key_update(self, d: int, *, request: bool) -> None:
        """RFC 8446 4.6.3 KeyUpdate from side d (sent with its next write)."""
        key_update(self._side(d), request=request)

    def renegotiate(self) -> None:
        """RFC 5246 7.4.1.1: the server asks for a new handshake (HelloRequest); the client starts it."""
        ssl_ptr = _pointer(self.server._sslobj, 3)  # type: ignore[attr-defined]
        assert _LIB.SSL_renegotiate(ssl_ptr) == 1
        for _ in range(6):
            for side in (self.server, self.client):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            self.pump()

    def close(self) -> None:
        for side in (self.client, self.server):
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError):
                side.unwrap()
            self._move()

    def keylog(self) -> bytes:
        assert self.transcript.keylog_path is not None
        return self.transcript.keylog_path.read_bytes()
