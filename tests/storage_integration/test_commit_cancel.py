"""The commit-cancel hazard is detected and reported: locally visible, not on four nodes.

Prose: three of six receivers are frozen (SIGSTOP), so commits wait for a fourth acknowledgement. A
client cancels its waiting commit: PostgreSQL returns success with only a WARNING and the row is at once
visible to other sessions, although only three storage nodes hold it. The storage nodes report this
exposure — ``unquorumed_bytes`` > 0 (writer flush beyond the 4th-highest storage flush) and fewer than
four streaming nodes — in status and metrics, and the report clears once a fourth node catches up.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psycopg
import pytest

from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def test_cancelled_commit_wait_is_reported(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    with sc.writer.connect() as conn:
        conn.execute("CREATE TABLE hazard(x int)")
    sc.wait(lambda: sc.status(0)["unquorumed_bytes"] == 0, 10, "a quiet, fully durable start")
    pids = [sc.receiver_pid(i) for i in (3, 4, 5)]
    assert all(pids)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        notices: list[str] = []
        conn = psycopg.connect(sc.writer.conninfo(), autocommit=True)
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        threading.Timer(1.5, conn.cancel).start()
        t0 = time.monotonic()
        conn.execute("INSERT INTO hazard VALUES (42)")  # returns once cancelled: "already committed locally"
        waited = time.monotonic() - t0
        conn.close()
        assert waited >= 1.0, "the commit must have waited for the quorum"
        assert any("synchronous replication" in n for n in notices), notices
        with sc.writer.connect() as other:
            assert other.execute("SELECT count(*) FROM hazard WHERE x = 42").fetchone() == (1,)

        def reported() -> bool:
            st = sc.status(0)
            return bool(st["unquorumed_bytes"]) and st["writer_streaming_nodes"] >= 3

        sc.wait(reported, 10, "node 0 to report unquorumed bytes")
        st = sc.status(0)
        assert st["unquorumed_bytes"] > 0 and st["writer_durable_lsn"] < st["writer_flush_lsn"]
        metrics = sc.http.get(sc.urls[0] + "/metrics").text
        assert 'quorumdb_storage_writer_unquorumed_bytes{node="storage_0"} 0' not in metrics
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]
    sc.wait(lambda: sc.status(0)["unquorumed_bytes"] == 0, 15, "exposure to clear after nodes resume")
