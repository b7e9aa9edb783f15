"""WAL stored compressed against a real S3 server: smaller objects, the same verified bytes back.

Prose: a segment-like body (WAL records, then zero padding) is put as the archiver puts segments; the
stored object is a fraction of the segment, marked ``compression: zstd`` with its plain size, and every
read path (whole object, streamed as repair reads it) returns exactly the segment, with and without
encryption. Random bytes are stored as they are (compression would not pay). A compressed object whose
body was tampered with fails its digest (refused whole; a streaming reader's hash no longer matches), and
one whose mark names an unknown scheme is refused.
"""

from __future__ import annotations

import base64
import os

import pytest
from aurora_api import contract
from aurora_storage import checksum, s3
from aurora_storage import lsn as lsnmod

from tests.fixtures.s3server import S3Bucket

pytestmark = pytest.mark.integration
KEY = "c/wal/00000001/000000010000000000000007"


def _archive(bucket: S3Bucket, key: bytes | None = None) -> s3.Archive:
    env = bucket.env("c") | {contract.Env.BACKUP_KEY: base64.b64encode(key).decode() if key else ""}
    found = s3.from_env(env)
    assert found is not None
    return found[0]


def _segment() -> bytes:
    records = b"".join(os.urandom(24) + b"INSERT INTO audit VALUES (%d)" % i for i in range(40_000))
    return records + bytes(lsnmod.WAL_SEGMENT_SIZE - len(records))


@pytest.mark.parametrize("encrypted", [False, True])
def test_segments_are_stored_compressed_and_read_back_exactly(s3_bucket: S3Bucket, encrypted: bool) -> None:
    archive = _archive(s3_bucket, os.urandom(32) if encrypted else None)
    data = _segment()
    digest = checksum.sha256_bytes(data)
    stored = archive.put(KEY, data, {"sha256": digest}, compress=True)
    raw = s3_bucket.server.client().head_object(Bucket=s3_bucket.name, Key=KEY)  # type: ignore[attr-defined]
    assert raw["ContentLength"] == stored < len(data) // 4, (stored, len(data))
    assert raw["Metadata"]["compression"] == "zstd"
    assert raw["Metadata"]["plain-size"] == str(len(data))
    assert archive.get_verified(KEY) == data
    want, size, chunks = archive.stream(KEY, 1 << 20)
    assert (want, size) == (digest, len(data)) and b"".join(chunks) == data

    noise = os.urandom(1 << 20)
    stored = archive.put(KEY + "x", noise, {"sha256": checksum.sha256_bytes(noise)}, compress=True)
    head = s3_bucket.server.client().head_object(Bucket=s3_bucket.name, Key=KEY + "x")  # type: ignore[attr-defined]
    assert "compression" not in head["Metadata"]
    assert archive.get_verified(KEY + "x") == noise


def test_a_tampered_or_unknown_compression_is_refused(s3_bucket: S3Bucket) -> None:
    archive = _archive(s3_bucket)
    data = _segment()
    archive.put(KEY, data, {"sha256": checksum.sha256_bytes(data)}, compress=True)
    client = s3_bucket.server.client()
    raw = client.get_object(Bucket=s3_bucket.name, Key=KEY)  # type: ignore[attr-defined]
    body = bytearray(raw["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=s3_bucket.name, Key=KEY, Body=bytes(body), Metadata=raw["Metadata"])  # type: ignore[attr-defined]
    with pytest.raises(checksum.ChecksumError):
        archive.get_verified(KEY)
    want, _, chunks = archive.stream(KEY)  # a streaming caller hashes what it writes (store.Incoming)
    assert checksum.sha256_bytes(b"".join(chunks)) != want
    meta = raw["Metadata"] | {"compression": "lz77"}
    client.put_object(Bucket=s3_bucket.name, Key=KEY, Body=bytes(body), Metadata=meta)  # type: ignore[attr-defined]
    with pytest.raises(checksum.ChecksumError, match="unknown compression 'lz77'"):
        archive.get_verified(KEY)
