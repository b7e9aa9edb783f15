"""Encrypted archive objects against a real S3 server: what a storage node uploads, a restore reads back.

Prose: with a key, a WAL segment put by the archiver is stored sealed (not its plaintext, marked with the
key id) and read back verified by every path that reads the archive (whole object, streamed repair,
streamed multipart upload of a base backup); without the key, or with another key, reading fails naming
the key ids; with encryption configured and no key, nothing is uploaded at all; a flipped byte in the
stored object is detected, never served. With ``objectStore.serverSideEncryption`` every upload, the
storage nodes', the instance managers' and the operator's, asks MinIO to encrypt it at rest as well.
"""

from __future__ import annotations

import base64
import datetime
import io
import os

import pytest
from aurora_api import backups, contract
from aurora_api.v1alpha1.cluster import ObjectStoreSpec
from aurora_operator import objectstore
from aurora_storage import archive_layout, checksum, envelope, s3

from tests.fixtures.s3server import S3Bucket
from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration
KEY = os.urandom(32)


def _archive(bucket: S3Bucket, key: bytes | None, encrypted: bool = False) -> s3.Archive:
    env = bucket.env("enc") | {contract.Env.BACKUP_KEY: base64.b64encode(key).decode() if key else ""}
    if encrypted:
        env[contract.Env.BACKUP_ENCRYPTED] = "1"
    found = s3.from_env(env)
    assert found is not None
    return found[0]


def test_encrypted_objects_round_trip_and_refuse_the_wrong_key(s3_bucket: S3Bucket) -> None:
    sealed_archive = _archive(s3_bucket, KEY)
    data = os.urandom(3 * envelope.CHUNK + 5)
    digest = checksum.sha256_bytes(data)
    stored = sealed_archive.put("enc/wal/00000001/000000010000000000000003", data, {"sha256": digest})
    raw = s3_bucket.server.client().get_object(  # type: ignore[attr-defined]
        Bucket=s3_bucket.name, Key="enc/wal/00000001/000000010000000000000003"
    )
    body = raw["Body"].read()
    assert stored == len(body) and data[:4096] not in body
    assert raw["Metadata"]["encryption"].endswith(envelope.key_id(KEY))
    key = "enc/wal/00000001/000000010000000000000003"
    assert sealed_archive.get_verified(key) == data
    want, size, chunks = sealed_archive.stream(key)
    assert want == digest and size == len(data) and b"".join(chunks) == data
    # A base backup's multipart upload, read back as chunks.
    backup = os.urandom(40 * 1024 * 1024 + 3)
    sealed = sealed_archive.upload_stream("enc/base/b1/base.tar", io.BytesIO(backup), {})
    assert sealed is not None and sealed_archive.head("enc/base/b1/base.tar").size == sealed  # type: ignore[union-attr]
    _, body_chunks = sealed_archive.read_chunks("enc/base/b1/base.tar")
    assert b"".join(body_chunks) == backup
    # Without the key, or with another one: refused, naming why.
    with pytest.raises(envelope.EnvelopeError, match="no key is given"):
        _archive(s3_bucket, None).get_verified(key)
    with pytest.raises(envelope.EnvelopeError, match="encrypted with key"):
        _archive(s3_bucket, os.urandom(32)).get_verified(key)


def test_no_plaintext_upload_without_the_key_and_corruption_is_detected(s3_bucket: S3Bucket) -> None:
    with pytest.raises(s3.KeyMissing):
        _archive(s3_bucket, None, encrypted=True).put("enc/x", b"secret", {"sha256": "0"})
    assert _archive(s3_bucket, None).head("enc/x") is None
    archive = _archive(s3_bucket, KEY)
    data = os.urandom(100_000)
    archive.put("enc/y", data, {"sha256": checksum.sha256_bytes(data)})
    client = s3_bucket.server.client()
    raw = client.get_object(Bucket=s3_bucket.name, Key="enc/y")  # type: ignore[attr-defined]
    body = bytearray(raw["Body"].read())
    body[-100] ^= 0xFF
    client.put_object(Bucket=s3_bucket.name, Key="enc/y", Body=bytes(body), Metadata=raw["Metadata"])  # type: ignore[attr-defined]
    with pytest.raises(envelope.EnvelopeError, match="failed authentication"):
        archive.get_verified("enc/y")


def test_server_side_encryption_is_asked_for_on_every_upload(s3_bucket: S3Bucket) -> None:
    """objectStore.serverSideEncryption: each kind of upload (a WAL object, a JSON record, a multipart base
    backup) carries SSE-S3, and MinIO (with its KMS key) stores them encrypted; without it, it does not."""
    if s3_bucket.server.kind != "minio":
        pytest.skip("SSE-S3 is checked against MinIO with a static KMS key")
    found = s3.from_env(s3_bucket.env("sse") | {contract.Env.S3_SSE: "AES256"})
    assert found is not None
    archive = found[0]
    wal, record, base = (
        "sse/wal/00000001/000000010000000000000003",
        "sse/base/b1/backup.json",
        "sse/base/b1/base.tar",
    )
    data = os.urandom(1024 * 1024)
    archive.put(wal, data, {"sha256": checksum.sha256_bytes(data)})
    archive.put_json(record, {"id": "b1"})
    archive.upload_stream(base, io.BytesIO(os.urandom(40 * 1024 * 1024 + 3)), {})
    client = s3_bucket.server.client()
    for key in (wal, record, base):
        head = client.head_object(Bucket=s3_bucket.name, Key=key)  # type: ignore[attr-defined]
        assert head.get("ServerSideEncryption") == "AES256", (key, head)
    assert archive.get_verified(wal) == data and archive.get_json(record) == {"id": "b1"}
    plain = s3.from_env(s3_bucket.env("sse"))
    assert plain is not None
    plain[0].put("sse/wal/00000001/000000010000000000000004", data, {"sha256": checksum.sha256_bytes(data)})
    head = client.head_object(Bucket=s3_bucket.name, Key="sse/wal/00000001/000000010000000000000004")  # type: ignore[attr-defined]
    assert "ServerSideEncryption" not in head

    # The operator's own writes: the restorable mark and a snapshot's server-side copies.
    spec = ObjectStoreSpec.model_validate(
        {"endpoint": s3_bucket.server.endpoint, "bucket": s3_bucket.name, "credentialsSecret": {"name": "s3"},
         "serverSideEncryption": "AES256"}
    )  # fmt: skip
    store = objectstore.ObjectStore(spec, s3_bucket.server.access_key, s3_bucket.server.secret_key, "sse")
    store.write_restorable(backups.Restorable(time=datetime.datetime.now(datetime.UTC), lsn="0/3000000"))
    store.copy_into([wal], "sse-copy")
    for key in (backups.restorable_key("sse"), "sse-copy/wal/00000001/000000010000000000000003"):
        head = client.head_object(Bucket=s3_bucket.name, Key=key)  # type: ignore[attr-defined]
        assert head.get("ServerSideEncryption") == "AES256", (key, head)


def test_storage_nodes_archive_with_server_side_encryption(
    storage_factory: StorageFactory, s3_bucket: S3Bucket
) -> None:
    """The storage nodes read their own S3 settings (``node.config``): their WAL uploads ask for SSE too."""
    if s3_bucket.server.kind != "minio":
        pytest.skip("SSE-S3 is checked against MinIO with a static KMS key")
    sc = storage_factory(s3=s3_bucket, env={contract.Env.S3_SSE: "AES256"})
    with sc.writer.connect() as conn:
        conn.execute("CREATE TABLE t(x int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("INSERT INTO t VALUES (1)")
    client = s3_bucket.server.client()
    prefix = archive_layout.wal_prefix(sc.env[contract.Env.S3_PREFIX])

    def archived() -> list[str]:
        found = client.list_objects_v2(Bucket=s3_bucket.name, Prefix=prefix)  # type: ignore[attr-defined]
        return [o["Key"] for o in found.get("Contents", [])]

    sc.wait(lambda: bool(archived()), 60, "a WAL segment archived")
    for key in archived():
        head = client.head_object(Bucket=s3_bucket.name, Key=key)  # type: ignore[attr-defined]
        assert head.get("ServerSideEncryption") == "AES256", (key, head)
