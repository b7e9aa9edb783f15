"""Checksums of WAL files: one algorithm, one spelling, everywhere.

Why it exists: the manifest, the HTTP headers, the archive metadata and the client all compare sha256
digests; keeping the hashing in one helper avoids a second, subtly different implementation (for example
hashing a zero-padded file on one side and a trimmed prefix on the other). It must not decide what to do
on a mismatch: callers raise their own errors with context.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1024 * 1024

Buffer = bytes | bytearray | memoryview
"""What the helpers hash: any contiguous byte buffer (no copy is made; hashlib releases the GIL)."""


def sha256_bytes(data: Buffer) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, limit: int | None = None) -> str:
    """Digest of the file's first ``limit`` bytes (the whole file when None)."""
    digest = hashlib.sha256()
    remaining = limit
    with path.open("rb") as fh:
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            block = fh.read(want)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


class ChecksumError(RuntimeError):
    """Bytes whose digest does not match the one recorded for them."""
