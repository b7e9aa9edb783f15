"""A receiver restarted inside a segment resumes at its last written page, and its copy stays exact.

Prose: at a failover every storage node's receiver is killed (fenced) and started again against the new
writer; streaming the newest ``.partial`` again from its segment start cost each node up to 16 MiB at the
moment the new writer's first commit waited for four of them. In the boot in which a receiver completed a
segment, a restarted one resumes inside the ``.partial`` it holds. Here node 0's receiver is SIGKILLed a
few MB into a segment; the new one says where it resumed, and once more WAL has arrived its file is byte
for byte the writer's own WAL file up to the node's flush position.
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest
from aurora_storage import lsn as lsnmod

from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def _flush(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return lsnmod.parse_lsn(str(row[0]))


def test_receiver_restarted_mid_segment_resumes_there_with_the_writers_bytes(
    storage_factory: StorageFactory,
) -> None:
    sc = storage_factory()
    with sc.writer.connect() as conn:
        conn.execute("CREATE TABLE resume(x int, pad text)")
        conn.execute("SELECT pg_switch_wal()")  # a completed segment: this boot's files are trusted
        conn.execute("INSERT INTO resume SELECT g, repeat('z', 100) FROM generate_series(1, 20000) g")
        first = _flush(conn)
    assert first % lsnmod.WAL_SEGMENT_SIZE > 1024 * 1024, "the test needs WAL well inside a segment"
    sc.wait(lambda: lsnmod.parse_lsn(sc.status(0)["flush_lsn"]) >= first, 20, "node 0 to hold the WAL")
    assert (sc.data_dir(0) / "wal" / ".receiver-boot").exists(), sc.log(0)[-2000:]

    old = sc.receiver_pid(0)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    sc.wait(lambda: sc.receiver_pid(0) not in (None, old) and sc.status(0)["streaming"], 20, "a new receiver")
    segment = lsnmod.segment_name(1, lsnmod.segment_of(first))
    sc.wait(lambda: f"resuming {segment}.partial at" in sc.log(0), 10, "the new receiver to resume mid-file")

    with sc.writer.connect() as conn:
        conn.execute("INSERT INTO resume SELECT g, repeat('w', 100) FROM generate_series(1, 5000) g")
        second = _flush(conn)
    assert lsnmod.segment_of(second) == lsnmod.segment_of(first), "stay in the segment the receiver resumed"
    sc.wait(lambda: lsnmod.parse_lsn(sc.status(0)["flush_lsn"]) >= second, 20, "node 0 to hold the new WAL")
    upto = second - lsnmod.segment_start(lsnmod.segment_of(second))
    held = (sc.data_dir(0) / "wal" / f"{segment}.partial").read_bytes()[:upto]
    written = (sc.writer.datadir / "pg_wal" / segment).read_bytes()[:upto]
    assert held == written, "the resumed copy differs from the writer's WAL"
