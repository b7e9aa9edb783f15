"""Chunked AES-256-GCM framing: round trips at chunk boundaries, and every way a stream can be wrong."""

from __future__ import annotations

import io
import os

import pytest
from aurora_storage import envelope

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "size", [0, 1, envelope.CHUNK - 1, envelope.CHUNK, envelope.CHUNK + 1, 3 * envelope.CHUNK]
)
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    sealed = envelope.seal(KEY, data)
    assert envelope.open_bytes(KEY, sealed) == data
    # Streamed in odd pieces, and through the upload reader.
    pieces = [sealed[i : i + 7777] for i in range(0, len(sealed), 7777)]
    assert b"".join(envelope.open_chunks(KEY, pieces)) == data
    reader = envelope.SealingReader(io.BytesIO(data), KEY)
    streamed = b"".join(iter(lambda: reader.read(100_000), b""))
    assert envelope.open_bytes(KEY, streamed) == data and reader.sealed_bytes == len(streamed)


def test_a_wrong_key_is_named_before_decrypting() -> None:
    sealed = envelope.seal(KEY, b"wal")
    with pytest.raises(envelope.EnvelopeError, match="encrypted with key"):
        envelope.open_bytes(bytes(32), sealed)


def test_corruption_truncation_and_reordering_fail_authentication() -> None:
    data = os.urandom(2 * envelope.CHUNK + 10)
    sealed = bytearray(envelope.seal(KEY, data))
    flipped = bytes(sealed[:-5]) + bytes([sealed[-5] ^ 1]) + bytes(sealed[-4:])
    with pytest.raises(envelope.EnvelopeError, match="failed authentication"):
        envelope.open_bytes(KEY, flipped)
    step = envelope.CHUNK + envelope.TAG
    cut = bytes(sealed[: envelope.HEADER + step])  # the last chunks dropped
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_bytes(KEY, cut)
    a, b = (
        sealed[envelope.HEADER : envelope.HEADER + step],
        sealed[envelope.HEADER + step : envelope.HEADER + 2 * step],
    )
    swapped = (
        bytes(sealed[: envelope.HEADER]) + bytes(b) + bytes(a) + bytes(sealed[envelope.HEADER + 2 * step :])
    )
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_bytes(KEY, swapped)
    with pytest.raises(envelope.EnvelopeError, match="bad magic"):
        envelope.open_bytes(KEY, b"x" * 100)
