"""TLS decryption from NSS key logs: key logs, the record layer, the handshake and the key schedules.

Sans-I/O, like every layer under the outputs: a ``TlsConnection`` is fed the bytes of each TCP direction in order
and returns the application-data plaintext they completed, as ``Plaintext`` pieces. Primitives (AES-GCM, AES-CCM,
ChaCha20-Poly1305, AES-CBC, HKDF-Expand) come from ``cryptography``; HMAC is the standard library's, which is the
same OpenSSL code in one C call. Records, handshake messages, the TLS 1.2 PRF (RFC 5246 5, RFC 2246 5) and the
TLS 1.3 HKDF-Expand-Label (RFC 8446 7.1) are done here, a record at a time.

What the key log gives (the NSS format, one ``LABEL <client_random hex> <secret hex>`` per line):

- TLS 1.3: ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET``, ``CLIENT_TRAFFIC_SECRET_0``,
  ``SERVER_TRAFFIC_SECRET_0`` and ``CLIENT_EARLY_TRAFFIC_SECRET``; later generations are derived on KeyUpdate
  (RFC 8446 7.2).
- TLS 1.0-1.2: ``CLIENT_RANDOM`` (the master secret), ``PMS_CLIENT_RANDOM`` and ``RSA`` (the pre-master secret,
  the latter keyed by the first 8 bytes of the encrypted pre-master secret); the master secret is then derived,
  with the session hash when Extended Master Secret was negotiated (RFC 7627 4).

Lost bytes (``feed(..., gap=n)``, or bytes that are no record header) are flagged ``tls-gap`` /
``tls-record-malformed``; decryption resumes on the next whole record whose tag verifies at a sequence number found
by search: from the expected one up to ``min(SEQ_SEARCH, n // MIN_RECORD + 2)`` further under the current key, and
as many from 0 under the next key (the schedule's next: a lost Finished; or the next traffic secret generation: a
lost KeyUpdate). The next ``Plaintext`` then has
``gap_before`` set, for the HTTP/WebSocket parsers above to resynchronise. A record that fails its tag under a key
that verified before is dropped (``tls-decrypt-failed``), never passed on.

Nothing here raises on wire bytes or key-log text: findings become ``Issue`` members on ``TlsConnection.issues``,
and a connection that cannot be decrypted says why in ``info.reason``. Secrets never appear in a repr or message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from wsinspect.issues import Issue

# -- wire constants ------------------------------------------------------------------------------------------------

# RFC 8446 5.1 / RFC 5246 6.2.1 ContentType.
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CONTENT_TYPES = frozenset((CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, 24))  # 24: heartbeat (RFC 6520)
# RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes (TLS 1.3 allows only 2^14 + 256, RFC 8446
# 5.2; the looser bound is applied to both so that a sloppy peer is still decrypted).
MAX_CIPHERTEXT = (1 << 14) + 2048
HEADER = 5

# RFC 8446 4 / RFC 5246 7.4 HandshakeType.
HELLO_REQUEST, CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET, END_OF_EARLY_DATA = 0, 1, 2, 4, 5
ENCRYPTED_EXTENSIONS, CLIENT_KEY_EXCHANGE, FINISHED, KEY_UPDATE = 8, 16, 20, 24

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# Extension types (IANA TLS ExtensionType Values).
EXT_SERVER_NAME, EXT_ALPN, EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET = 0, 16, 22, 23
EXT_PRE_SHARED_KEY, EXT_EARLY_DATA, EXT_SUPPORTED_VERSIONS = 41, 42, 43

VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
TLS13 = 0x0304

# Bytes the first segment needs for looks_like_tls() to be sure.
SNIFF_BYTES = 6
# After a gap, sequence numbers from the expected one up to this many further are tried on the first whole record
# (each try is one AEAD or HMAC operation over that record). The gap's size bounds it more tightly: a record is at
# least MIN_RECORD bytes, so a gap of n bytes hid at most n // MIN_RECORD + 1 records.
SEQ_SEARCH = 4096
MIN_RECORD = HEADER + 1 + 8  # TLS 1.3 with an 8-byte tag: the inner content type alone
# Encrypted records held while the keys for them are not known yet (0-RTT data before the ServerHello is seen).
MAX_HELD_BYTES = 1 << 20
# ... and while a growing key log (a live capture) may still get a TLS 1.3 connection's secrets: the client writes
# them only once it has read the ServerHello (and the server's Finished), often after the capture saw the records.
MAX_AWAITED_BYTES = 256 << 10

# -- cipher suites -------------------------------------------------------------------------------------------------

GCM, CCM, CCM_8, CHACHA, CBC = "gcm", "ccm", "ccm8", "chacha", "cbc"


@dataclass(frozen=True, slots=True)
class Suite:
    """What decrypting a cipher suite needs: bulk cipher mode, key length, MAC hash for CBC, PRF/HKDF hash."""

    name: str
    mode: str
    key_len: int
    mac: str | None  # CBC suites' HMAC hash
    hash: str  # TLS 1.2 PRF hash / TLS 1.3 HKDF hash (TLS 1.0/1.1 use MD5+SHA-1 whatever this says)


def _suites() -> dict[int, Suite]:
    table: dict[int, Suite] = {}
    # TLS 1.3 (RFC 8446 B.4)
    for code, name, mode, key, hsh in (
        (0x1301, "TLS_AES_128_GCM_SHA256", GCM, 16, "sha256"),
        (0x1302, "TLS_AES_256_GCM_SHA384", GCM, 32, "sha384"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256", CHACHA, 32, "sha256"),
        (0x1304, "TLS_AES_128_CCM_SHA256", CCM, 16, "sha256"),
        (0x1305, "TLS_AES_128_CCM_8_SHA256", CCM_8, 16, "sha256"),
    ):
        table[code] = Suite(name, mode, key, None, hsh)
    # TLS 1.2 AEAD: RFC 5288 (GCM), RFC 5289 (ECDHE GCM), RFC 7905 (ChaCha20-Poly1305), RFC 6655 / 7251 (CCM).
    for code, kx, mode, key, hsh in (
        (0x009C, "RSA", GCM, 16, "sha256"),
        (0x009D, "RSA", GCM, 32, "sha384"),
        (0x009E, "DHE_RSA", GCM, 16, "sha256"),
        (0x009F, "DHE_RSA", GCM, 32, "sha384"),
        (0xC02B, "ECDHE_ECDSA", GCM, 16, "sha256"),
        (0xC02C, "ECDHE_ECDSA", GCM, 32, "sha384"),
        (0xC02F, "ECDHE_RSA", GCM, 16, "sha256"),
        (0xC030, "ECDHE_RSA", GCM, 32, "sha384"),
        (0xCCA8, "ECDHE_RSA", CHACHA, 32, "sha256"),
        (0xCCA9, "ECDHE_ECDSA", CHACHA, 32, "sha256"),
        (0xCCAA, "DHE_RSA", CHACHA, 32, "sha256"),
        (0xC09C, "RSA", CCM, 16, "sha256"),
        (0xC09D, "RSA", CCM, 32, "sha256"),
        (0xC09E, "DHE_RSA", CCM, 16, "sha256"),
        (0xC09F, "DHE_RSA", CCM, 32, "sha256"),
        (0xC0A0, "RSA", CCM_8, 16, "sha256"),
        (0xC0A1, "RSA", CCM_8, 32, "sha256"),
        (0xC0A2, "DHE_RSA", CCM_8, 16, "sha256"),
        (0xC0A3, "DHE_RSA", CCM_8, 32, "sha256"),
        (0xC0AC, "ECDHE_ECDSA", CCM, 16, "sha256"),
        (0xC0AD, "ECDHE_ECDSA", CCM, 32, "sha256"),
        (0xC0AE, "ECDHE_ECDSA", CCM_8, 16, "sha256"),
        (0xC0AF, "ECDHE_ECDSA", CCM_8, 32, "sha256"),
    ):
        bits = key * 8
        if mode == GCM:
            name = f"TLS_{kx}_WITH_AES_{bits}_GCM_{hsh.upper()}"
        elif mode == CHACHA:
            name = f"TLS_{kx}_WITH_CHACHA20_POLY1305_SHA256"
        else:
            name = f"TLS_{kx}_WITH_AES_{bits}_CCM" + ("_8" if mode == CCM_8 else "")
        table[code] = Suite(name, mode, key, None, hsh)
    # CBC with HMAC (RFC 5246 A.5, RFC 4492, RFC 5289); the PRF is SHA-384 only for the *_SHA384 suites.
    for code, kx, key, mac in (
        (0x002F, "RSA", 16, "sha1"),
        (0x0035, "RSA", 32, "sha1"),
        (0x003C, "RSA", 16, "sha256"),
        (0x003D, "RSA", 32, "sha256"),
        (0x0033, "DHE_RSA", 16, "sha1"),
        (0x0039, "DHE_RSA", 32, "sha1"),
        (0x0067, "DHE_RSA", 16, "sha256"),
        (0x006B, "DHE_RSA", 32, "sha256"),
        (0xC009, "ECDHE_ECDSA", 16, "sha1"),
        (0xC00A, "ECDHE_ECDSA", 32, "sha1"),
        (0xC013, "ECDHE_RSA", 16, "sha1"),
        (0xC014, "ECDHE_RSA", 32, "sha1"),
        (0xC023, "ECDHE_ECDSA", 16, "sha256"),
        (0xC024, "ECDHE_ECDSA", 32, "sha384"),
        (0xC027, "ECDHE_RSA", 16, "sha256"),
        (0xC028, "ECDHE_RSA", 32, "sha384"),
    ):
        mac_name = "SHA" if mac == "sha1" else mac.upper()
        name = f"TLS_{kx}_WITH_AES_{key * 8}_CBC_{mac_name}"
        table[code] = Suite(name, CBC, key, mac, "sha384" if mac == "sha384" else "sha256")
    return table


SUITES = _suites()


def suite_name(code: int) -> str:
    """The IANA name of a cipher suite this module knows, else its code as 0xNNNN."""
    suite = SUITES.get(code)
    return suite.name if suite else f"0x{code:04X}"


# -- key log ---------------------------------------------------------------------------------------------------------

# NSS key log labels (draft-ietf-tls-keylogfile) and the byte length of their first field.
LABELS = {
    b"CLIENT_RANDOM": 32,
    b"PMS_CLIENT_RANDOM": 32,
    b"RSA": 8,
    b"CLIENT_EARLY_TRAFFIC_SECRET": 32,
    b"CLIENT_HANDSHAKE_TRAFFIC_SECRET": 32,
    b"SERVER_HANDSHAKE_TRAFFIC_SECRET": 32,
    b"CLIENT_TRAFFIC_SECRET_0": 32,
    b"SERVER_TRAFFIC_SECRET_0": 32,
    b"EARLY_EXPORTER_SECRET": 32,
    b"EXPORTER_SECRET": 32,
}


class KeyLog:
    """Secrets of an NSS key log, by (label, first field): the client random, or for ``RSA`` the first 8 bytes of
    the encrypted pre-master secret.

    Built from files (``from_paths``), which are re-read from where they ended when a lookup misses and they grew
    (a browser keeps writing its key log during a live capture), and from raw text (``add``: pcapng Decryption
    Secrets Blocks). Lines that are not key-log lines are counted in ``bad_lines``, never raised.
    """

    def __init__(self) -> None:
        self._secrets: dict[tuple[str, bytes], bytes] = {}
        self._files: dict[str, tuple[int, bytes]] = {}  # path -> (bytes read, unterminated last line)
        self.bad_lines = 0
        self.unreadable: list[str] = []  # paths that could not be read (named, never their contents)
        # Set by a live capture: secrets missing when a handshake needs them may still be written, so connections
        # hold their records for a while and look again (TlsConnection).
        self.growing = False

    @classmethod
    def from_paths(cls, paths: Iterable[str | os.PathLike[str]]) -> KeyLog:
        keylog = cls()
        for path in paths:
            keylog._files[os.fspath(path)] = (0, b"")
        keylog.refresh()
        return keylog

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"KeyLog({len(self._secrets)} secrets, {len(self._files)} files, {self.bad_lines} bad lines)"

    __str__ = __repr__

    def add(self, text: bytes) -> None:
        """Add every line of ``text`` (a whole key log, e.g. a pcapng ``TLSK`` secrets block)."""
        for line in text.splitlines():
            self._line(line)

    def _line(self, line: bytes) -> None:
        """One line. Labels this module does not use but that are well formed (OpenSSL's CLIENT_TRAFFIC_SECRET_N
        after a KeyUpdate, ECH lines) are ignored, not counted bad."""
        line = line.strip()
        if not line or line.startswith(b"#"):
            return
        parts = line.split()
        try:
            label = parts[0].decode("ascii")
            first, secret = bytes.fromhex(parts[1].decode("ascii")), bytes.fromhex(parts[2].decode("ascii"))
        except (ValueError, IndexError):
            self.bad_lines += 1
            return
        size = LABELS.get(parts[0])
        if len(parts) != 3 or (size is not None and (len(first) != size or not 8 <= len(secret) <= 64)):
            self.bad_lines += 1
        elif size is not None:
            self._secrets[(label, first)] = secret

    def refresh(self) -> bool:
        """Read what was appended to the files since the last read; whether anything was."""
        grew = False
        for path, (done, partial) in self._files.items():
            try:
                with open(path, "rb") as f:
                    f.seek(done)
                    chunk = f.read()
            except OSError:
                if path not in self.unreadable:
                    self.unreadable.append(path)
                continue
            if not chunk:
                continue
            grew = True
            lines = (partial + chunk).split(b"\n")
            # The last piece may be a line the writer has not finished: kept for the next read.
            for line in lines[:-1]:
                self._line(line)
            self._files[path] = (done + len(chunk), lines[-1])
        return grew

    def get(self, label: str, first: bytes) -> bytes | None:
        """The secret logged for ``label`` and ``first``; files are re-read once on a miss."""
        secret = self._secrets.get((label, first))
        if secret is None and self._files and self.refresh():
            secret = self._secrets.get((label, first))
        return secret


# -- key derivation --------------------------------------------------------------------------------------------------


def _p_hash(name: str, secret: bytes, seed: bytes, size: int) -> bytes:
    """RFC 5246 5 P_hash."""
    out = bytearray()
    a = seed
    while len(out) < size:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return bytes(out[:size])


def prf(version: int, hash_name: str, secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """The TLS PRF: P_<hash> in TLS 1.2 (RFC 5246 5), P_MD5 XOR P_SHA1 over the halves of the secret before
    (RFC 2246 5)."""
    if version >= 0x0303:
        return _p_hash(hash_name, secret, label + seed, size)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, size)
    sha = _p_hash("sha1", secret[-half:], label + seed, size)
    return bytes(a ^ b for a, b in zip(md5, sha, strict=True))


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, size: int) -> bytes:
    """RFC 8446 7.1 HKDF-Expand-Label."""
    full = b"tls13 " + label
    info = size.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
    return HKDFExpand(_HASHES[hash_name](), size, info).derive(secret)


# -- record protection -----------------------------------------------------------------------------------------------


class _Opener:
    """Removes the protection of one direction's records under one key; ``open`` returns (content type, plaintext)
    or None when the record does not authenticate under this key and ``seq``."""

    __slots__ = ()

    def open(self, header: bytes, body: memoryview, seq: int) -> tuple[int, bytes] | None:
        raise NotImplementedError


def _aead(mode: str, key: bytes) -> AESGCM | AESCCM | ChaCha20Poly1305:
    if mode == GCM:
        return AESGCM(key)
    if mode == CHACHA:
        return ChaCha20Poly1305(key)
    return AESCCM(key, tag_length=8 if mode == CCM_8 else 16)


class _Tls13(_Opener):
    """RFC 8446 5.2-5.3: nonce = iv XOR seq, additional data = the record header, TLSInnerPlaintext inside."""

    __slots__ = ("aead", "iv", "tag")

    def __init__(self, suite: Suite, secret: bytes) -> None:
        self.aead = _aead(suite.mode, hkdf_expand_label(suite.hash, secret, b"key", b"", suite.key_len))
        self.iv = int.from_bytes(hkdf_expand_label(suite.hash, secret, b"iv", b"", 12), "big")
        self.tag = 8 if suite.mode == CCM_8 else 16

    def open(self, header: bytes, body: memoryview, seq: int) -> tuple[int, bytes] | None:
        if len(body) <= self.tag:
            return None
        try:
            inner = self.aead.decrypt((self.iv ^ seq).to_bytes(12, "big"), body, header)
        except InvalidTag:
            return None
        # RFC 8446 5.4: zero padding after the real content type (rare: looked for only when present); all zeros
        # is not a record.
        if inner and inner[-1]:
            return inner[-1], inner[:-1]
        inner = inner.rstrip(b"\0")
        return (inner[-1], inner[:-1]) if inner else None


class _Tls12Aead(_Opener):
    """TLS 1.2 AEAD (RFC 5246 6.2.3.3): AES-GCM (RFC 5288 3) and AES-CCM (RFC 6655 3) carry an 8-byte explicit
    nonce after a 4-byte implicit salt; ChaCha20-Poly1305 (RFC 7905 2) uses iv XOR seq like TLS 1.3."""

    __slots__ = ("aead", "explicit", "iv", "salt", "tag")

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self.aead = _aead(suite.mode, key)
        self.explicit = suite.mode != CHACHA
        self.salt = iv
        self.iv = int.from_bytes(iv, "big")
        self.tag = 8 if suite.mode == CCM_8 else 16

    def open(self, header: bytes, body: memoryview, seq: int) -> tuple[int, bytes] | None:
        if self.explicit:
            if len(body) < 8 + self.tag:
                return None
            nonce = self.salt + bytes(body[:8])
            body = body[8:]
        else:
            if len(body) < self.tag:
                return None
            nonce = (self.iv ^ seq).to_bytes(12, "big")
        aad = seq.to_bytes(8, "big") + header[:3] + (len(body) - self.tag).to_bytes(2, "big")
        try:
            return header[0], self.aead.decrypt(nonce, body, aad)
        except InvalidTag:
            return None


class _Cbc(_Opener):
    """Block cipher records (RFC 5246 6.2.3.2): MAC-then-encrypt, or Encrypt-then-MAC when RFC 7366 was negotiated.
    TLS 1.1 and later send an explicit IV per record; TLS 1.0 chains the last ciphertext block (RFC 2246 6.2.3.2)."""

    __slots__ = ("chained", "etm", "key", "mac", "mac_key", "mac_len")

    def __init__(self, suite: Suite, version: int, mac_key: bytes, key: bytes, iv: bytes, etm: bool) -> None:
        assert suite.mac is not None
        self.mac = suite.mac
        self.mac_key = mac_key
        self.mac_len = hashlib.new(suite.mac).digest_size
        self.key = algorithms.AES(key)
        self.etm = etm
        self.chained = iv if version == 0x0301 else None

    def open(self, header: bytes, body: memoryview, seq: int) -> tuple[int, bytes] | None:
        ctype = header[0]
        prefix = seq.to_bytes(8, "big") + header[:3]
        mac_len = self.mac_len
        # At least one block of ciphertext (padding included), after the explicit IV when there is one.
        least = 16 if self.chained is not None else 32
        if self.etm:
            # RFC 7366 3: the MAC covers the IV and ciphertext; checked before anything is decrypted.
            size = len(body) - mac_len
            if size < least or size % 16:
                return None
            cipher = body[:size]
            want = hmac.digest(self.mac_key, prefix + size.to_bytes(2, "big") + cipher, self.mac)
            if not hmac.compare_digest(want, body[size:]):
                return None
            plain = self._decrypt(cipher)
            pad = plain[-1]
            if pad + 1 > len(plain):
                return None
            content = plain[: -pad - 1]
        else:
            if len(body) < least or len(body) % 16:
                return None
            cipher = body
            plain = self._decrypt(cipher)
            pad = plain[-1]
            end = len(plain) - pad - 1 - mac_len
            if end < 0 or plain[end + mac_len : -1] != bytes((pad,)) * pad:
                return None
            content = plain[:end]
            want = hmac.digest(self.mac_key, prefix + end.to_bytes(2, "big") + content, self.mac)
            if not hmac.compare_digest(want, plain[end : end + mac_len]):
                return None
        if self.chained is not None:
            self.chained = bytes(cipher[-16:])  # the next record's IV, once this one is known good
        return ctype, content

    def _decrypt(self, cipher: memoryview) -> bytes:
        if self.chained is None:
            iv, cipher = bytes(cipher[:16]), cipher[16:]
        else:
            iv = self.chained
        decryptor = Cipher(self.key, modes.CBC(iv)).decryptor()
        return decryptor.update(cipher) + decryptor.finalize()


# -- the connection --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Plaintext:
    """Application data of one direction, in order. ``gap_before``: bytes of this direction's application data were
    lost just before it (a TCP gap or a record that did not decrypt): whatever parses it must resynchronise."""

    direction: int
    data: bytes
    gap_before: bool = False


@dataclass(slots=True)
class TlsInfo:
    """What a connection negotiated, as far as the capture shows it. ``reason``: why it is not (fully) decrypted."""

    version: str | None = None
    cipher: str | None = None
    sni: str | None = None
    alpn: str | None = None
    decrypted: bool = False
    reason: str | None = None
    resumed: bool = False
    alerts: list[tuple[int, int, int]] = field(default_factory=list)  # (direction, level, description)


class _Malformed(Exception):
    """A handshake message does not parse; caught where the message is read."""


class _Reader:
    """Bounds-checked reading of a handshake message body."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise _Malformed
        self.at += n
        return self.data[self.at - n : self.at]

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))

    def extensions(self) -> dict[int, bytes]:
        if self.at == len(self.data):  # TLS 1.0-1.2 hellos may end before the extensions (RFC 5246 7.4.1.2)
            return {}
        block = _Reader(self.vector(2))
        found = {}
        while block.at < len(block.data):
            kind = block.number(2)
            found[kind] = block.vector(2)
        return found


def _alpn(ext: bytes) -> str | None:
    names = _Reader(_Reader(ext).vector(2))
    proto = names.vector(1)
    return proto.decode("ascii", "replace") if proto else None


def _sni(ext: bytes) -> str | None:
    names = _Reader(_Reader(ext).vector(2))
    while names.at < len(names.data):
        kind, name = names.number(1), names.vector(2)
        if kind == 0:
            return name.decode("ascii", "replace")
    return None


# Stages of a direction's record protection.
_PLAIN, _KEYED, _DEAD = 0, 1, 2


class _Side:
    """One direction: the record buffer, the current protection and the handshake message buffer."""

    __slots__ = (
        "buf",
        "early",
        "ever",
        "gap_pending",
        "held",
        "held_bytes",
        "hs",
        "lost",
        "lost_bytes",
        "need",
        "opener",
        "queue",
        "secret",
        "seq",
        "stage",
        "version",
    )

    def __init__(self) -> None:
        self.buf = bytearray()
        self.need = HEADER  # bytes buf must hold before the next record can be parsed
        self.stage = _PLAIN
        self.opener: _Opener | None = None  # None while keyed: the key is not logged, records are skipped
        self.queue: list[_Opener | None] = []  # the keys that follow, in order (TLS 1.3 key schedule)
        self.seq = 0
        self.ever = False  # a record decrypted under `opener`: the key verified
        self.secret: bytes | None = None  # TLS 1.3 application traffic secret, for KeyUpdate
        self.hs = bytearray()  # handshake message bytes not complete yet
        self.lost = False  # looking for the next record header after lost bytes
        self.lost_bytes = 0  # how many were lost, when known (0: unknown)
        self.gap_pending = False  # the next plaintext piece follows lost application data
        self.held: list[tuple[bytes, bytes]] = []  # (header, body) of records waiting for their keys
        self.held_bytes = 0
        self.version = b""  # record-layer version of this direction's records
        self.early = False  # TLS 1.3: the records may still be 0-RTT data

    def advance(self, seq: int = 0) -> None:
        """Move to the next key of the schedule."""
        self.opener = self.queue.pop(0) if self.queue else None
        self.seq, self.ever = seq, False


class TlsConnection:
    """One TCP connection carrying TLS. ``client`` is the direction (0 or 1) that sent the ClientHello, or None when
    the capture starts after the handshake (then nothing is decrypted and ``info.reason`` says so).

    ``feed(d, data, gap)`` takes the next bytes of direction ``d`` (``gap``: bytes lost just before them) and returns
    the application data it completed, in order, as ``Plaintext`` pieces of either direction: 0-RTT data that came
    before the ServerHello is released by the server's bytes. ``info`` describes the connection; ``issues`` lists
    each finding once.
    """

    def __init__(self, keylog: KeyLog, client: int | None) -> None:
        self.keylog = keylog
        self.client = client
        self.info = TlsInfo()
        self.issues: list[Issue] = []
        self._sides = (_Side(), _Side())
        self._out: list[Plaintext] = []
        self._run: list[bytes] = []  # plaintext records of the piece being built
        self._run_direction = -1
        self._run_gap = False
        self._suite: Suite | None = None
        self._version = 0  # negotiated protocol version
        self._client_random = b""
        self._next_client_random = b""  # of the latest ClientHello (a renegotiation's, until its ServerHello)
        self._server_random = b""
        self._session_id = b""
        self._early_offered = False
        self._etm = self._ems = False
        # TLS 1.0-1.2 handshake messages from ClientHello to ClientKeyExchange: the session hash (RFC 7627 3).
        self._transcript: list[bytes] = []
        self._hashing = False
        self._epms_prefix = b""
        self._pending12: tuple[_Opener, _Opener] | None = None  # TLS 1.2 (client, server) keys for each CCS
        self._started = False
        self._awaiting = False  # TLS 1.3 secrets missing from a growing key log: looked up again at each record
        if client is None:
            self._give_up("capture starts mid-TLS (no handshake)")

    # -- public --------------------------------------------------------------------------------------------------

    def feed(self, d: int, data: bytes | bytearray | memoryview, gap: int = 0) -> list[Plaintext]:
        """The next bytes of direction ``d``; ``gap`` bytes were lost just before them."""
        side = self._sides[d]
        if gap:
            self._gap(d, side, gap)
        if side.stage == _DEAD or not data:
            return self._take()
        if not side.buf and not side.lost:
            rest = self._records(d, side, memoryview(data))
            if rest:
                side.buf += rest
        else:
            side.buf += data
            # One byte at a time stays O(1) per feed: nothing is parsed until the awaited record is whole.
            if len(side.buf) >= side.need or side.lost:
                pending, side.buf = side.buf, bytearray()
                side.buf += self._records(d, side, memoryview(pending))
        return self._take()

    def finish(self) -> list[Plaintext]:
        """The capture ended: records cut short and keys that never came are recorded; ``info.reason`` is final."""
        if self._awaiting:
            self._keys13()  # a last look at a growing key log
        for side in self._sides:
            if side.held:
                self._give_up("no key" if self._awaiting else "encrypted records before the keys")
            if side.buf and side.stage != _DEAD:
                self._issue(Issue.TLS_RECORD_TRUNCATED)
                side.buf = bytearray()
        if self.info.reason is None and not self.info.decrypted and self._started:
            self.info.reason = "handshake incomplete" if self._suite is None else "no encrypted records"
        return self._take()

    # -- record layer --------------------------------------------------------------------------------------------

    def _take(self) -> list[Plaintext]:
        self._flush()
        out, self._out = self._out, []
        return out

    def _records(self, d: int, side: _Side, view: memoryview) -> memoryview:
        """Parse every whole record of ``view``; returns the unparsed rest."""
        at, end = 0, len(view)
        while side.stage != _DEAD:
            if side.lost:
                found = self._resync(side, view, at)
                if found is None:
                    side.need = HEADER
                    return view[max(at, end - HEADER + 1) :]  # what may still hold the start of a header
                if found < 0:
                    side.need = HEADER
                    return view[-found - 1 :]  # a candidate whose record is not whole yet
                at = found
            if end - at < HEADER:
                side.need = HEADER
                return view[at:]
            ctype = view[at]
            length = (view[at + 3] << 8) | view[at + 4]
            if ctype not in CONTENT_TYPES or view[at + 1] != 3 or length > MAX_CIPHERTEXT:
                if not self._started:
                    self._not_tls(view[at:])
                    break
                # RFC 5246 6.2.1-6.2.3 / RFC 8446 5.1-5.2: not a record header: look for the next one.
                self._issue(Issue.TLS_RECORD_MALFORMED)
                side.lost, side.lost_bytes, side.gap_pending = True, 0, True
                at += 1
                continue
            if end - at < HEADER + length:
                side.need = HEADER + length
                return view[at:]
            header, body = bytes(view[at : at + HEADER]), view[at + HEADER : at + HEADER + length]
            at += HEADER + length
            # The hot path, inlined: application data under a key that holds (one call into the AEAD).
            opener = side.opener
            if ctype == APPLICATION_DATA and opener is not None and side.stage == _KEYED:
                opened = opener.open(header, body, side.seq)
                if opened is not None:
                    side.seq += 1
                    side.ever = self.info.decrypted = True
                    if opened[0] != APPLICATION_DATA:
                        self._content(d, side, *opened)
                    elif opened[1]:
                        if side.gap_pending or self._run_direction != d:
                            self._emit(d, side, opened[1])
                        else:
                            self._run.append(opened[1])
                    continue
            self._record(d, side, header, body)
        return view[end:]

    def _not_tls(self, first: memoryview) -> None:
        if len(first) >= 3 and first[0] & 0x80 and first[2] == 1:
            self._give_up("SSLv2-format ClientHello (not decrypted)")
        else:
            self._give_up("not a TLS handshake")

    def _record(self, d: int, side: _Side, header: bytes, body: memoryview) -> None:
        ctype = header[0]
        if not self._started:
            self._started = True
            if ctype != HANDSHAKE:
                self._give_up("capture starts mid-TLS (no handshake)")
                return
        side.version = header[1:3]
        # TLS 1.3 protects every record as application_data (RFC 8446 5.2); the other types are in the clear:
        # hellos, alerts sent before the keys, and change_cipher_spec kept for middleboxes (RFC 8446 D.4).
        cleartext = side.stage == _PLAIN or (self._version == TLS13 and ctype != APPLICATION_DATA)
        if cleartext and ctype != APPLICATION_DATA:
            self._content(d, side, ctype, bytes(body))
        elif side.stage == _PLAIN:
            self._hold(d, side, header, body)
        else:
            opened = self._open(side, header, body)
            if opened is None:
                self._failed(d, side)
            else:
                self._content(d, side, *opened)

    def _open(self, side: _Side, header: bytes, body: memoryview) -> tuple[int, bytes] | None:
        """Decrypt under the current key, else under the next one: a key change the capture did not show (0-RTT
        data rejected, a handshake key not logged or a lost Finished)."""
        opened = side.opener.open(header, body, side.seq) if side.opener else None
        if opened is not None:
            side.seq += 1
            side.ever = self.info.decrypted = True
            return opened
        follower = side.queue[0] if side.queue else None
        if follower is not None:
            opened = follower.open(header, body, 0)
            if opened is not None:
                side.advance(1)
                side.early = False
                side.ever = self.info.decrypted = True
                return opened
        return None

    def _failed(self, d: int, side: _Side) -> None:
        if side.early:
            # 0-RTT data the server rejected (RFC 8446 4.2.10) or whose secret is not logged: skipped, as the
            # server itself skips it.
            self._issue(Issue.TLS_EARLY_DATA_SKIPPED)
            side.gap_pending = True
            return
        if side.opener is None:
            return  # under a handshake key that is not logged: handshake messages only
        self._issue(Issue.TLS_DECRYPT_FAILED)
        if not side.ever:
            self._give_up("key does not verify", d)
            return
        # A record that does not authenticate under a verified key: dropped, never passed on as plaintext.
        side.seq += 1
        side.gap_pending = True

    def _hold(self, d: int, side: _Side, header: bytes, body: memoryview) -> None:
        """Protected records that came before the keys for them: 0-RTT data seen before the ServerHello, or records
        whose TLS 1.3 secrets a growing key log does not hold yet (looked up again now)."""
        if self._awaiting:
            self._keys13()
            if side.stage != _PLAIN:
                self._record(d, side, header, body)  # after the held ones, which _keys13 released
                return
            if side.held_bytes + len(body) > MAX_AWAITED_BYTES:
                self._give_up("no key", d)
                return
        elif side.held_bytes + len(body) > MAX_HELD_BYTES or self._suite is not None:
            self._give_up("encrypted records before the keys", d)
            return
        side.held.append((header, bytes(body)))
        side.held_bytes += len(body)

    def _release(self, d: int) -> None:
        side = self._sides[d]
        held, side.held, side.held_bytes = side.held, [], 0
        for header, body in held:
            if side.stage != _DEAD:
                self._record(d, side, header, memoryview(body))

    def _gap(self, d: int, side: _Side, gap: int) -> None:
        self._issue(Issue.TLS_GAP)
        side.buf = bytearray()
        side.need = HEADER
        side.hs = bytearray()
        side.gap_pending = True
        if side.stage == _DEAD:
            return
        hello_seen = bool(self._client_random) if d == self.client else self._suite is not None
        if not hello_seen:
            self._give_up("gap before keys")
            return
        if isinstance(side.opener, _Cbc) and side.opener.chained is not None:
            # RFC 2246 6.2.3.2: each record's IV is the previous record's last ciphertext block, lost with it.
            self._give_up("gap in a TLS 1.0 CBC stream (the IV chain is lost)", d)
            return
        side.lost, side.lost_bytes = True, gap

    def _resync(self, side: _Side, view: memoryview, at: int) -> int | None:
        """After lost bytes, the offset of the next whole record: a plausible header whose record decrypts under
        the current (or next) key at a sequence number found by a bounded search. None when ``view`` holds no
        candidate, -(offset + 1) for a candidate whose record is not whole yet."""
        version = side.version or b"\x03\x03"
        data = bytes(view[at:])
        pos = 0
        while (pos := data.find(version, pos + 1)) > 0:
            start = pos - 1
            if pos + 4 > len(data):
                return -(at + start + 1)
            length = (data[pos + 2] << 8) | data[pos + 3]
            if data[start] not in CONTENT_TYPES or length > MAX_CIPHERTEXT:
                continue
            if start + HEADER + length > len(data):
                return -(at + start + 1)
            body = memoryview(data)[start + HEADER : start + HEADER + length]
            if self._resume(side, data[start : start + HEADER], body):
                side.lost = False
                return at + start
        return None

    def _resume(self, side: _Side, header: bytes, body: memoryview) -> bool:
        """Whether the record authenticates at a sequence number within the search bound; if so, sets it."""
        ctype = header[0]
        if side.stage == _PLAIN or (self._version == TLS13 and ctype != APPLICATION_DATA):
            return ctype in (HANDSHAKE, ALERT, CHANGE_CIPHER_SPEC)  # a clear record: its header is all to check
        bound = SEQ_SEARCH if not side.lost_bytes else min(SEQ_SEARCH, side.lost_bytes // MIN_RECORD + 2)
        follower, secret = self._successor(side)
        for opener, first in ((side.opener, side.seq), (follower, 0)):
            if opener is None:
                continue
            for seq in range(first, first + bound):
                if opener.open(header, body, seq) is not None:
                    if opener is not side.opener:
                        if secret is None:
                            side.advance()
                        else:
                            side.opener, side.secret = opener, secret
                        side.early = False
                    side.seq = seq
                    return True
        return False

    def _successor(self, side: _Side) -> tuple[_Opener | None, bytes | None]:
        """The key after the current one: the next of the schedule, or in TLS 1.3 traffic the next generation
        (a KeyUpdate lost in a gap, RFC 8446 7.2) with its secret."""
        if side.queue:
            return side.queue[0], None
        if self._version == TLS13 and side.secret is not None and self._suite is not None:
            secret = hkdf_expand_label(self._suite.hash, side.secret, b"traffic upd", b"", len(side.secret))
            return _Tls13(self._suite, secret), secret
        return None, None

    # -- content ---------------------------------------------------------------------------------------------------

    def _content(self, d: int, side: _Side, ctype: int, data: bytes) -> None:
        if ctype == APPLICATION_DATA:
            if side.stage == _KEYED and data:
                self._emit(d, side, data)
        elif ctype == HANDSHAKE:
            side.hs += data
            self._handshake(d, side)
        elif ctype == CHANGE_CIPHER_SPEC:
            if self._version != TLS13 and self._suite is not None:
                self._change_cipher_spec(d, side)
        elif ctype == ALERT and len(data) >= 2:
            self.info.alerts.append((d, data[0], data[1]))
            # RFC 8446 6 / RFC 5246 7.2: close_notify (0) and user_canceled (90) are the only non-error alerts.
            if data[1] not in (0, 90):
                self._issue(Issue.TLS_ALERT)

    def _emit(self, d: int, side: _Side, data: bytes) -> None:
        gap, side.gap_pending = side.gap_pending, False
        if gap or d != self._run_direction:
            self._flush()
            self._run_direction, self._run_gap = d, gap
        self._run.append(data)

    def _flush(self) -> None:
        """Join the current run of records (one direction, no gap between them) into one piece."""
        if self._run:
            data = self._run[0] if len(self._run) == 1 else b"".join(self._run)
            self._out.append(Plaintext(self._run_direction, data, self._run_gap))
            self._run = []
        self._run_direction = -1

    def _handshake(self, d: int, side: _Side) -> None:
        """Every whole handshake message of this direction (RFC 8446 4: type, 3-byte length; messages may span
        records and records may hold several)."""
        hs = side.hs
        at = 0
        while len(hs) - at >= 4 and side.stage != _DEAD:
            size = int.from_bytes(hs[at + 1 : at + 4], "big")
            if len(hs) - at - 4 < size:
                break
            kind, message = hs[at], bytes(hs[at : at + 4 + size])
            at += 4 + size
            try:
                self._message(d, side, kind, message)
            except _Malformed:
                self._issue(Issue.TLS_HANDSHAKE_MALFORMED)
                if kind in (CLIENT_HELLO, SERVER_HELLO):
                    self._give_up("malformed hello")
        del hs[:at]

    def _message(self, d: int, side: _Side, kind: int, message: bytes) -> None:
        body = message[4:]
        if kind == CLIENT_HELLO and d == self.client:
            self._client_hello(body)
        elif kind == SERVER_HELLO and d != self.client:
            self._server_hello(body)
        elif kind == ENCRYPTED_EXTENSIONS and d != self.client:
            ext = _Reader(body).extensions()
            if EXT_ALPN in ext:
                self.info.alpn = _alpn(ext[EXT_ALPN])
        elif self._version == TLS13:
            self._message13(d, side, kind, body)
        if self._hashing:
            self._transcript.append(message)
            if kind == CLIENT_KEY_EXCHANGE:
                self._hashing = False
        if kind == CLIENT_KEY_EXCHANGE and d == self.client:
            # RFC 5246 7.4.7.1: an RSA EncryptedPreMasterSecret is a vector with a 2-byte length; the key log names
            # it by its first 8 bytes. Other key exchanges simply find no key log line under this prefix.
            self._epms_prefix = body[2:10]

    def _client_hello(self, body: bytes) -> None:
        r = _Reader(body)
        r.take(2)
        random = r.take(32)
        session_id = r.vector(1)
        r.vector(2)
        r.vector(1)
        ext = r.extensions()
        if not self._client_random:
            self._client_random, self._session_id = random, session_id
        # A second ClientHello after a HelloRetryRequest keeps the random (RFC 8446 4.1.2); a TLS 1.2 renegotiation
        # brings a new one, used from its ServerHello on.
        self._next_client_random = random
        # After a HelloRetryRequest the second ClientHello drops early_data, but 0-RTT records may have followed
        # the first (RFC 8446 4.2.10).
        self._early_offered = self._early_offered or EXT_EARLY_DATA in ext
        if EXT_SERVER_NAME in ext and self.info.sni is None:
            self.info.sni = _sni(ext[EXT_SERVER_NAME])
        self._transcript, self._hashing = [], True

    def _server_hello(self, body: bytes) -> None:
        r = _Reader(body)
        legacy = r.number(2)
        random = r.take(32)
        session_id = r.vector(1)
        code = r.number(2)
        r.number(1)
        ext = r.extensions()
        version = _Reader(ext[EXT_SUPPORTED_VERSIONS]).number(2) if EXT_SUPPORTED_VERSIONS in ext else legacy
        if self._suite is not None and (version == TLS13 or self._version == TLS13):
            self._issue(Issue.TLS_HANDSHAKE_MALFORMED)  # RFC 8446 4.1.2: TLS 1.3 does not renegotiate
            return
        self.info.version = VERSION_NAMES.get(version, f"0x{version:04X}")
        self.info.cipher = suite_name(code)
        if random == HRR_RANDOM:
            self._version = version
            return  # RFC 8446 4.1.4: the real ServerHello follows the second ClientHello
        if not 0x0301 <= version <= TLS13:
            self._give_up(f"unsupported version {self.info.version}")
            return
        suite = SUITES.get(code)
        if suite is None or (version == TLS13) != (code >> 8 == 0x13) or (suite.mode != CBC and version < 0x0303):
            self._give_up(f"unsupported cipher {self.info.cipher}")
            return
        self._suite, self._version, self._server_random = suite, version, random
        self._client_random = self._next_client_random
        if EXT_ALPN in ext:
            self.info.alpn = _alpn(ext[EXT_ALPN])
        self._etm = EXT_ENCRYPT_THEN_MAC in ext and suite.mode == CBC
        self._ems = EXT_EXTENDED_MASTER_SECRET in ext
        self._pending12 = None
        if version == TLS13:
            self._hashing = False
            self.info.resumed = EXT_PRE_SHARED_KEY in ext
            self._keys13()
        else:
            # RFC 5246 7.3: the server resumes a session by echoing the session id the client offered.
            self.info.resumed = bool(session_id) and session_id == self._session_id

    # -- TLS 1.3 ---------------------------------------------------------------------------------------------------

    def _opener13(self, label: str) -> _Opener | None:
        suite = self._suite
        assert suite is not None
        secret = self.keylog.get(label, self._client_random)
        if secret is None or len(secret) != hashlib.new(suite.hash).digest_size:
            return None
        return _Tls13(suite, secret)

    def _keys13(self) -> None:
        """RFC 8446 7.1-7.3: each direction starts on its handshake traffic key (the client on its early traffic
        key first when it offered 0-RTT) and moves to its application traffic key after its Finished."""
        assert self.client is not None
        self._awaiting = False
        for d, prefix in ((self.client, "CLIENT"), (1 - self.client, "SERVER")):
            side = self._sides[d]
            if side.stage != _PLAIN:
                continue  # keyed at an earlier look (or given up)
            application = f"{prefix}_TRAFFIC_SECRET_0"
            side.queue = [self._opener13(f"{prefix}_HANDSHAKE_TRAFFIC_SECRET"), self._opener13(application)]
            side.secret = self.keylog.get(application, self._client_random)
            if side.queue[1] is None:
                side.queue = []
                if self.keylog.growing:
                    self._awaiting = True  # its records are held (_hold) until the key log has them
                else:
                    self._give_up("no key", d)
                continue
            side.stage = _KEYED
            if d == self.client and self._early_offered:
                side.queue.insert(0, self._opener13("CLIENT_EARLY_TRAFFIC_SECRET"))
                side.early = True
            side.advance()
        # Records that waited for these keys: the client's 0-RTT data, or what waited on a growing key log.
        self._release(self.client)
        self._release(1 - self.client)

    def _message13(self, d: int, side: _Side, kind: int, body: bytes) -> None:
        if kind == END_OF_EARLY_DATA and d == self.client and side.early:
            side.advance()  # RFC 8446 4.5: the client's next records are under its handshake traffic key
            side.early = False
        elif kind == FINISHED and len(side.queue) == 1:
            side.advance()  # RFC 8446 4.4.4: application traffic keys from the next record on
        elif kind == KEY_UPDATE and side.secret is not None and self._suite is not None:
            # RFC 8446 4.6.3 / 7.2: the sender's next records use the next generation of its traffic secret;
            # update_requested only asks the peer for a KeyUpdate of its own, which comes as its own message.
            suite = self._suite
            side.secret = hkdf_expand_label(suite.hash, side.secret, b"traffic upd", b"", len(side.secret))
            side.queue = [_Tls13(suite, side.secret)]
            side.advance()

    # -- TLS 1.0-1.2 -----------------------------------------------------------------------------------------------

    def _change_cipher_spec(self, d: int, side: _Side) -> None:
        """RFC 5246 7.1: this direction's next records use the keys the handshake just agreed."""
        if self._pending12 is None:
            keys = self._keys12()
            if keys is None:
                return
            self._pending12 = keys
        side.queue = [self._pending12[0 if d == self.client else 1]]
        side.stage = _KEYED
        side.advance()

    def _master_secret(self, suite: Suite) -> bytes | None:
        master = self.keylog.get("CLIENT_RANDOM", self._client_random)
        if master is not None:
            return master
        pms = self.keylog.get("PMS_CLIENT_RANDOM", self._client_random)
        if pms is None and len(self._epms_prefix) == 8:
            pms = self.keylog.get("RSA", self._epms_prefix)
        if pms is None:
            return None
        if not self._ems:
            seed = self._client_random + self._server_random
            return prf(self._version, suite.hash, pms, b"master secret", seed, 48)
        # RFC 7627 4: the session hash covers the handshake messages up to and including ClientKeyExchange.
        transcript = b"".join(self._transcript)
        if self._version >= 0x0303:
            digest = hashlib.new(suite.hash, transcript).digest()
        else:
            digest = hashlib.md5(transcript).digest() + hashlib.sha1(transcript).digest()
        return prf(self._version, suite.hash, pms, b"extended master secret", digest, 48)

    def _keys12(self) -> tuple[_Opener, _Opener] | None:
        """RFC 5246 6.3 key block: client and server MAC keys, write keys, then IVs (the implicit AEAD salts, or
        TLS 1.0's CBC IVs)."""
        suite = self._suite
        if suite is None or not self._server_random:
            self._give_up("gap before keys")
            return None
        master = self._master_secret(suite)
        if master is None:
            self._give_up("no key")
            return None
        version = self._version
        if suite.mode == CBC:
            assert suite.mac is not None
            mac_len, iv_len = hashlib.new(suite.mac).digest_size, (16 if version == 0x0301 else 0)
        else:
            mac_len, iv_len = 0, (12 if suite.mode == CHACHA else 4)
        sizes = (mac_len, mac_len, suite.key_len, suite.key_len, iv_len, iv_len)
        seed = self._server_random + self._client_random
        block = prf(version, suite.hash, master, b"key expansion", seed, sum(sizes))
        parts = []
        at = 0
        for n in sizes:
            parts.append(block[at : at + n])
            at += n
        c_mac, s_mac, c_key, s_key, c_iv, s_iv = parts
        if suite.mode == CBC:
            etm = self._etm
            return _Cbc(suite, version, c_mac, c_key, c_iv, etm), _Cbc(suite, version, s_mac, s_key, s_iv, etm)
        return _Tls12Aead(suite, c_key, c_iv), _Tls12Aead(suite, s_key, s_iv)

    # -- verdicts ----------------------------------------------------------------------------------------------------

    def _give_up(self, reason: str, d: int | None = None) -> None:
        """Stop decrypting one direction (or both) for ``reason``; the first reason given is kept."""
        if self.info.reason is None:
            self.info.reason = reason
        self._issue(Issue.TLS_NOT_DECRYPTED)
        for i, side in enumerate(self._sides):
            if d is None or i == d:
                side.stage = _DEAD
                side.buf = bytearray()
                side.held.clear()

    def _issue(self, issue: Issue) -> None:
        if issue not in self.issues:
            self.issues.append(issue)


def looks_like_tls(first: bytes | bytearray | memoryview) -> bool:
    """Whether the first bytes a client sent start a TLS connection: a handshake record holding a ClientHello
    (RFC 8446 5.1, 4.1.2), or an SSLv2-format ClientHello (RFC 5246 E.2), which ``TlsConnection`` reports as not
    decrypted. Sure from SNIFF_BYTES bytes on; with fewer it answers on what is there."""
    if len(first) < 1:
        return False
    if first[0] == HANDSHAKE:
        return (len(first) < 2 or first[1] == 3) and (len(first) < 6 or first[5] == CLIENT_HELLO)
    # SSLv2 record: 2-byte length with the top bit set, then msg_type 1 (CLIENT-HELLO), then version 3.x.
    return len(first) >= 4 and bool(first[0] & 0x80) and first[2] == 1 and first[3] == 3


def looks_like_record(first: bytes | bytearray | memoryview) -> bool:
    """Whether bytes start a TLS record (RFC 8446 5.1, RFC 5246 6.2.1): a known content type, version 3.x and a
    length within bounds. For a capture that starts mid-connection, where no ClientHello will come."""
    return (
        len(first) >= HEADER
        and first[0] in CONTENT_TYPES
        and first[1] == 3
        and first[2] <= 4
        and ((first[3] << 8) | first[4]) <= MAX_CIPHERTEXT
    )
