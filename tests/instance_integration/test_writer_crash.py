"""Known hazard: a crashed writer restarted on its local WAL resurrected commits only three nodes held.

Here three storage receivers are frozen (SIGSTOP) so a commit is written locally but reaches only three nodes
(in doubt, never acknowledged), then PostgreSQL is SIGKILLed while the manager survives. The manager must
not simply restart the writer: it restarts it with clients shut out and opens it only once the write quorum
holds its whole WAL. While only three nodes can acknowledge, no client gets in; after the receivers resume,
the writer opens and every acknowledged commit is there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psycopg
import pytest

from tests.instance_integration import harness, workload

pytestmark = pytest.mark.integration


def test_crashed_writer_opens_only_when_the_quorum_holds_its_wal(solo: harness.Bed) -> None:
    w = solo.writer
    assert w is not None
    acked = workload.audited_commits(w)
    frozen = [int(solo.storage.status(i)["receiver_pid"]) for i in (3, 4, 5)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        in_doubt = workload.next_id()
        outcome: list[str] = []
        blocked = threading.Thread(target=_insert, args=(w, in_doubt, outcome), daemon=True)
        blocked.start()
        time.sleep(1)  # the commit record is on the writer's disk and on three nodes only
        w.kill_postgres()
        blocked.join(10)
        assert outcome == ["failed"], "a commit was acknowledged with only three storage nodes"
        w.wait(lambda: w.status()["action"] == "recover writer from quorum", 30, "quorum recovery to start")
        shut_out_until = time.monotonic() + 3
        while time.monotonic() < shut_out_until:
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(w.conninfo(), connect_timeout=2).close()
            assert w.status()["ready"] is False
            time.sleep(0.3)
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    workload.first_commit(w, 90)
    w.wait(w.ready, 30, "writer ready")
    assert not workload.missing(w, acked)
    assert "is on the write quorum; open" in w.log_tail(20000)


def _insert(w: harness.Instance, i: int, outcome: list[str]) -> None:
    try:
        with w.connect() as conn:
            conn.execute("INSERT INTO audit (id) VALUES (%s)", (i,))
        outcome.append("acknowledged")
    except psycopg.Error:
        outcome.append("failed")
