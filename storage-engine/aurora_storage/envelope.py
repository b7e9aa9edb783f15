"""Client-side encryption of archive objects: AES-256-GCM in fixed-size chunks, sans-IO.

Why chunks: base backups are streamed (their size is unknown until the end and they do not fit in memory),
so one GCM tag over the whole object is not an option. This is the STREAM construction (as in age and
Tink's streaming AEAD): each chunk is sealed with its own nonce ``prefix || counter``, and the header and
a last-chunk flag are authenticated data, so chunks cannot be reordered, dropped, or the stream cut short
without the tag check failing. The cipher is ``cryptography``'s AESGCM; this module only frames it.

    header  = MAGIC (6) || key id (8: sha256(key)[:8]) || chunk size (4, big endian) || nonce prefix (8)
    chunk i = AES-256-GCM(key, nonce = prefix || i (4, big endian), aad = header || i || final flag)

Every chunk but the last holds exactly ``chunk size`` bytes of plaintext; the last may be empty. A wrong
key is reported by its id before any chunk is tried; a corrupted byte fails that chunk's tag. It must not
do I/O.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"QDBE1\n"
CHUNK = 1 << 20
TAG = 16
HEADER = len(MAGIC) + 8 + 4 + 8
SCHEME = "aes-256-gcm-stream"
"""Object-metadata value (``encryption``) that marks an encrypted object; the key id follows a colon."""


class EnvelopeError(ValueError):
    """Not our format, a different key, or a failed authentication (corruption or tampering)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def check_key(key: bytes) -> bytes:
    if len(key) != 32:
        raise EnvelopeError(f"an AES-256 key is 32 bytes, got {len(key)}")
    return key


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">I?", index, final)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


class Sealer:
    """Incremental encryption: ``header()`` first, then ``update`` with plaintext, then ``final()``."""

    def __init__(self, key: bytes, chunk: int = CHUNK, prefix: bytes | None = None) -> None:
        self._aes = AESGCM(check_key(key))
        self._prefix = prefix if prefix is not None else os.urandom(8)
        self._chunk = chunk
        self._header = MAGIC + bytes.fromhex(key_id(key)) + struct.pack(">I", chunk) + self._prefix
        self._buf = bytearray()
        self._index = 0

    def header(self) -> bytes:
        return self._header

    def _seal(self, data: bytes, final: bool) -> bytes:
        out = self._aes.encrypt(
            _nonce(self._prefix, self._index), data, _aad(self._header, self._index, final)
        )
        self._index += 1
        return out

    def update(self, data: bytes) -> bytes:
        self._buf += data
        out = []
        # Keep at least one byte back: the last chunk must be sealed with the final flag.
        while len(self._buf) > self._chunk:
            out.append(self._seal(bytes(self._buf[: self._chunk]), False))
            del self._buf[: self._chunk]
        return b"".join(out)

    def final(self) -> bytes:
        out = self._seal(bytes(self._buf), True)
        self._buf.clear()
        return out


class Opener:
    """Incremental decryption; ``update`` returns authenticated plaintext only, ``final`` checks the end."""

    def __init__(self, key: bytes) -> None:
        self._key = check_key(key)
        self._aes = AESGCM(self._key)
        self._header: bytes | None = None
        self._chunk = 0
        self._prefix = b""
        self._buf = bytearray()
        self._index = 0

    def _read_header(self) -> None:
        raw = bytes(self._buf[:HEADER])
        if raw[: len(MAGIC)] != MAGIC:
            raise EnvelopeError("not an encrypted archive object (bad magic)")
        kid = raw[len(MAGIC) : len(MAGIC) + 8].hex()
        if kid != key_id(self._key):
            raise EnvelopeError(f"encrypted with key {kid}, but the key given is {key_id(self._key)}")
        (self._chunk,) = struct.unpack(">I", raw[len(MAGIC) + 8 : len(MAGIC) + 12])
        self._prefix = raw[len(MAGIC) + 12 :]
        self._header = raw
        del self._buf[:HEADER]

    def _open(self, data: bytes, final: bool) -> bytes:
        assert self._header is not None
        try:
            out = self._aes.decrypt(
                _nonce(self._prefix, self._index), data, _aad(self._header, self._index, final)
            )
        except InvalidTag as err:
            raise EnvelopeError(f"chunk {self._index} failed authentication: corrupted or truncated") from err
        self._index += 1
        return out

    def update(self, data: bytes) -> bytes:
        self._buf += data
        if self._header is None:
            if len(self._buf) < HEADER:
                return b""
            self._read_header()
        out = []
        step = self._chunk + TAG
        while len(self._buf) > step:  # a full chunk with more after it: not the last
            out.append(self._open(bytes(self._buf[:step]), False))
            del self._buf[:step]
        return b"".join(out)

    def final(self) -> bytes:
        if self._header is None:
            raise EnvelopeError("truncated: no header")
        out = self._open(bytes(self._buf), True)
        self._buf.clear()
        return out


def seal(key: bytes, data: bytes) -> bytes:
    s = Sealer(key)
    return s.header() + s.update(data) + s.final()


def open_bytes(key: bytes, data: bytes) -> bytes:
    o = Opener(key)
    return o.update(data) + o.final()


def open_chunks(key: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    o = Opener(key)
    for chunk in chunks:
        out = o.update(chunk)
        if out:
            yield out
    yield o.final()


class SealingReader:
    """A file object over ``source`` that yields the sealed stream (for multipart uploads)."""

    def __init__(self, source: IO[bytes], key: bytes) -> None:
        self._source = source
        self._sealer = Sealer(key)
        self._out = bytearray(self._sealer.header())
        self._done = False
        self.sealed_bytes = 0

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._out) < n):
            data = self._source.read(CHUNK)
            if data:
                self._out += self._sealer.update(data)
            else:
                self._out += self._sealer.final()
                self._done = True
        size = len(self._out) if n < 0 else min(n, len(self._out))
        out = bytes(self._out[:size])
        del self._out[:size]
        self.sealed_bytes += len(out)
        return out
