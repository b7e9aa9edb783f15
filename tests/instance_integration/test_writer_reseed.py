"""A writer whose volume comes back empty is re-seeded as a reader of a new writer, never bootstrapped again.

Prose: found on Kubernetes, where a writer pod re-created on an empty volume (emptyDir) ran initdb for a new
system and the readers then copied that empty writer: every table was gone. Here the writer's pod dies
(SIGKILL) under the audit workload and its whole volume (PGDATA and the state file) is wiped. Started again
as the writer, the instance manager asks the storage nodes, finds the cluster's system identifier there,
and does nothing but say so (``seed_needed``); no data directory appears. The test plays the operator:
it promotes the reader at a new term, then demotes the wiped instance to follow it. The instance copies
the new writer, checks that the copy is the system the storage nodes hold, and becomes a ready reader with
every acknowledged commit.
"""

from __future__ import annotations

import shutil
import time

import pytest
from aurora_api import contract

from tests.instance_integration import harness, workload

pytestmark = pytest.mark.integration


def _system_id(inst: harness.Instance) -> str:
    with inst.connect() as conn:
        row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    assert row is not None
    return str(row[0])


def test_writer_without_data_is_reseeded_not_bootstrapped(pair: harness.Bed) -> None:
    old, new = pair.writer, pair.readers()[0]
    assert old is not None
    workload.init_schema(old)
    system = _system_id(old)
    st = old.status()
    assert (st["system_identifier"], st["data_present"], st["seed_needed"]) == (system, True, False)
    audit = workload.AuditClient(old).start()
    time.sleep(2)
    old.kill()  # the whole pod, SIGKILL
    audit.stop()
    assert audit.acked, "the audit client got no commit acknowledged before the kill"

    # The pod comes back on an empty volume, still told it is the writer.
    shutil.rmtree(old.data_root)
    log_start = len(old.log_tail(10**9))
    old.start(contract.ROLE_WRITER, pair.term)
    # Within the reader's stall bound (20 s without a stream), or it starts rejoining the dead writer.
    old.wait(lambda: old.status()["seed_needed"] is True, 15, "seed_needed")
    st = old.status()
    assert st["data_present"] is False and st["system_identifier"] is None
    assert f"storage nodes hold system {system} at term {pair.term}" in st["last_decision"], st
    assert "never initdb an existing cluster" in st["last_decision"]

    # Control plane: promote the reader; the wiped instance keeps waiting meanwhile, creating nothing.
    pair.term += 1
    assert new.promote(pair.term).status_code == 202
    workload.first_commit(new, 60)
    pair.writer = new
    lost = workload.missing(new, audit.acked)
    assert not lost, f"{len(lost)} of {len(audit.acked)} acknowledged commits lost on the new writer"
    seen_new_term = f"at term {pair.term}: never initdb"
    old.wait(lambda: seen_new_term in old.status()["last_decision"], 15, "the new term seen")
    assert old.status()["seed_needed"] is True
    assert not (old.data_root / "pgdata" / "PG_VERSION").exists()
    assert not (old.data_root / "pgdata.new").exists()

    # ... and demote the wiped instance: it copies the new writer and follows it.
    assert old.demote(pair.term, new.endpoint).status_code == 202
    marker = workload.next_id()
    with new.connect() as conn:
        conn.execute("INSERT INTO audit (id) VALUES (%s)", (marker,))
    old.wait(lambda: old.ready() and not workload.missing(old, {marker}), 120, "re-seeded reader following")
    st = old.status()
    assert st["role"] == contract.ROLE_READER
    assert (st["system_identifier"], st["data_present"], st["seed_needed"]) == (system, True, False)
    assert _system_id(old) == system
    lost = workload.missing(old, audit.acked)
    assert not lost, f"{len(lost)} of {len(audit.acked)} acknowledged commits missing on the re-seeded reader"
    log = old.log_tail(10**9)[log_start:]
    assert "bootstrapping a new writer" not in log and "initdb" not in log.replace("never initdb", ""), log
    assert f"copied from {new.endpoint}" in log, log[-3000:]
