"""A base backup into a real S3 server and back: compressed on the way, its WAL range found, unpacked exactly.

Prose: a real PostgreSQL holds a table; ``basebackup.take`` streams ``pg_basebackup`` (plain tar, taken
without WAL) through the compressor into a multipart upload and reads the WAL range from the
``backup_manifest`` member as it passes. The record must name the range that ``backup_label`` states,
the stored object must be the compressed stream the record describes (size, sha256), and
``restore.unpack`` must give back PGDATA with the table's file byte for byte.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from aurora_api import backups, contract
from aurora_instance import basebackup
from aurora_instance.restore import unpack
from aurora_instance.restore_source import Source
from aurora_instance.settings import Settings
from aurora_storage import s3

from tests.fixtures.postgres import PG_BIN, PgFactory
from tests.fixtures.s3server import S3Bucket

pytestmark = pytest.mark.integration


def test_base_backup_is_compressed_carries_its_wal_range_and_unpacks_exactly(
    pg_factory: PgFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    pg = pg_factory()
    with pg.connect() as conn:
        rows = "SELECT g AS id, repeat('row ' || g, 20) AS v FROM generate_series(1, 50000) g"
        conn.execute(f"CREATE TABLE t AS {rows}")
        conn.execute("CHECKPOINT")
        system = str(conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()[0])  # type: ignore[index]
        rel = str(conn.execute("SELECT pg_relation_filepath('t')").fetchone()[0])  # type: ignore[index]
    (tmp_path / "run").symlink_to(pg.root)  # Settings.socket_dir is data_root/run
    settings = Settings(
        cluster_name="c", instance_name="c-instance-1", data_root=tmp_path, secrets_dir=tmp_path / "secrets",
        config_dir=None, podinfo_dir=None, initial_role=contract.ROLE_READER, initial_term=1,
        writer_endpoint=None, listen_address="127.0.0.1", advertise_host="127.0.0.1",
        postgres_port=pg.port, http_port=0, reader_max_lag_seconds=10.0, pg_bin=PG_BIN, python=sys.executable,
    )  # fmt: skip
    found = s3.from_env(s3_bucket.env("c"))
    assert found is not None
    archive, prefix = found
    job = basebackup.Job("b1", "test")
    record = basebackup.take(settings, "postgres", archive, prefix, job, system)

    assert (record.compression, record.system_identifier, record.instance) == ("zstd", system, "c-instance-1")
    assert backups.parse_lsn(record.end_lsn) >= backups.parse_lsn(record.start_lsn) > 0
    stored = archive.head(backups.backup_key(prefix, "b1"))
    assert stored is not None and stored.size == record.size_bytes == job.bytes_done
    _, chunks = archive.read_chunks(backups.backup_key(prefix, "b1"))
    body = b"".join(chunks)
    assert hashlib.sha256(body).hexdigest() == record.sha256
    assert body[:4] == b"\x28\xb5\x2f\xfd", "not a zstd stream"
    plain = sum(f.stat().st_size for f in pg.datadir.rglob("*") if f.is_file() and "pg_wal" not in f.parts)
    assert record.size_bytes < plain // 3, (record.size_bytes, plain)
    relation = (pg.datadir / rel).read_bytes()

    staging = tmp_path / "restored"
    unpack(Source(archive, prefix, "b1", None, 0), record, staging)
    assert (staging / "PG_VERSION").read_text() == "15\n"
    label = (staging / "backup_label").read_text()
    assert f"START WAL LOCATION: {record.start_lsn} " in label
    assert (staging / rel).read_bytes() == relation
