"""A writer whose pod died comes back although the dead postmaster's PID now belongs to another process.

Prose: found on the kind demo cluster after its nodes were stopped and started: in a restarted container
PIDs begin again at 1, the PID in the dead postmaster's ``postmaster.pid`` was a thread of the new instance
manager, and PostgreSQL refused to start for ever ("lock file already exists"). Here the writer's pod is
SIGKILLed (manager, postmaster, backends) and the lock file is pointed at a live process that is not a
postmaster: a ``sleep`` of the same user, started after the postmaster, which is what PID reuse looks
like. The same data directory must open again with every acknowledged commit, and the manager says which
lock it removed.
"""

from __future__ import annotations

import subprocess

import pytest
from aurora_api import contract

from tests.instance_integration import harness, workload

pytestmark = pytest.mark.integration


def test_writer_restarts_over_a_dead_postmasters_lock_whose_pid_was_reused(solo: harness.Bed) -> None:
    w = solo.writer
    assert w is not None
    acked = workload.audited_commits(w)
    w.kill()
    lock = w.data_root / "pgdata" / "postmaster.pid"
    lines = lock.read_text().splitlines()
    # As postgres, like the manager's threads: PostgreSQL takes a PID it may not signal (EPERM) for dead.
    as_pg = ["setpriv", "--reuid", harness.PG_USER, "--regid", harness.PG_USER, "--init-groups"]
    squatter = subprocess.Popen([*as_pg, "sleep", "300"])
    try:
        lock.write_text("\n".join([str(squatter.pid), *lines[1:]]) + "\n")
        w.start(contract.ROLE_WRITER, solo.term)
        workload.first_commit(w, 90)
        w.wait(w.ready, 30, "writer ready")
        assert not workload.missing(w, acked)
        assert f"pid {squatter.pid} is now sleep, not postgres" in w.log_tail(20000)
    finally:
        squatter.kill()
        squatter.wait()
