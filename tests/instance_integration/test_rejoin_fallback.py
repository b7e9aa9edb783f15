"""A former writer that pg_rewind cannot rejoin comes back as a reader from a fresh copy, losing nothing.

Prose: the writer's pod dies (SIGKILL) under load and the reader is promoted at a new term. While the old
writer is down its data directory is replaced by one pg_rewind must refuse: our cluster's stamp on a
different PostgreSQL system (a fresh ``initdb``), as a restored or hand-copied volume might be. Started
again as a reader of the new writer, the instance manager tries pg_rewind for real, which fails, and falls
back to a fresh copy taken into a side directory. The instance then follows the new writer, holds every
acknowledged commit, and is on the new writer's system.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from aurora_api import contract
from aurora_instance import files

from tests.fixtures.postgres import PG_BIN, _as_pg
from tests.instance_integration import harness, workload

pytestmark = pytest.mark.integration


def _system_id(inst: harness.Instance) -> int:
    with inst.connect() as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return int(row[0])


def _replace_with_foreign_system(inst: harness.Instance) -> None:
    pgdata = inst.data_root / "pgdata"
    shutil.rmtree(pgdata)
    subprocess.run(_as_pg([str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True)  # fmt: skip
    stamp = pgdata / files.STAMP
    stamp.write_text(harness.CLUSTER + "\n")
    harness.chown_tree(stamp)


def test_failed_rewind_falls_back_to_a_fresh_copy(pair: harness.Bed) -> None:
    old = pair.writer
    assert old is not None
    workload.init_schema(old)
    system = _system_id(old)
    audit = workload.AuditClient(old).start()
    time.sleep(2)
    old.kill()
    new = pair.readers()[0]
    pair.term += 1
    assert new.promote(pair.term).status_code == 202
    workload.first_commit(new, 60)
    audit.stop()
    assert audit.acked
    pair.writer = new

    _replace_with_foreign_system(old)
    old.start(contract.ROLE_READER, pair.term, writer=new.endpoint)
    marker = workload.next_id()
    with new.connect() as conn:
        conn.execute("INSERT INTO audit (id) VALUES (%s)", (marker,))
    old.wait(lambda: old.ready() and not workload.missing(old, {marker}), 120, "old writer following")

    log = old.log_tail(20000)
    assert "pg_rewind could not rejoin" in log and "after pg_rewind failed" in log, log[-3000:]
    assert old.status()["role"] == contract.ROLE_READER
    assert _system_id(old) == system
    lost = workload.missing(old, audit.acked)
    assert not lost, f"{len(lost)} of {len(audit.acked)} acknowledged commits missing on the rejoined reader"
