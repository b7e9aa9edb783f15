"""Failover audit (acceptance): SIGKILL the writer under load, promote the most advanced reader through the
instance manager, and prove every acknowledged commit survived; the other reader follows the new timeline and
the old writer rejoins as a reader. Repeated ``QUORUMDB_FAILOVER_RUNS`` times (default 20) on one cluster, so
each run starts from the previous run's topology (timelines 1 -> 21).
"""

from __future__ import annotations

import os
import time

import pytest
from aurora_api import contract
from aurora_storage import lsn

from tests.instance_integration import workload
from tests.instance_integration.harness import Bed, Instance

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RUNS = int(os.environ.get("QUORUMDB_FAILOVER_RUNS", "20"))
LOAD_SECONDS = float(os.environ.get("QUORUMDB_FAILOVER_LOAD_SECONDS", "2"))


def _position(inst: Instance) -> tuple[int, int]:
    st = inst.status()
    pos = max(lsn.parse_lsn(st[k]) for k in ("received_lsn", "replayed_lsn") if st.get(k))
    return int(st["timeline"] or 0), pos


def _follows(inst: Instance, writer: Instance, marker: int) -> bool:
    st = inst.status()
    if not st["ready"] or st["role"] != contract.ROLE_READER:
        return False
    with inst.connect() as conn:
        return conn.execute("SELECT 1 FROM audit WHERE id = %s", (marker,)).fetchone() is not None


def one_failover(bed: Bed) -> tuple[float, int, int]:
    """Returns (kill -> first commit seconds, acknowledged commits, new timeline)."""
    old = bed.writer
    assert old is not None
    bench = workload.pgbench(old, LOAD_SECONDS + 5)
    audit = workload.AuditClient(old).start()
    time.sleep(LOAD_SECONDS)
    old.kill()  # the whole pod: manager, postmaster and backends, SIGKILL
    t_kill = time.monotonic()
    # Control plane: promote the most advanced reader at a new term.
    candidates = bed.readers()
    new = max(candidates, key=_position)
    bed.term += 1
    resp = new.promote(bed.term)
    assert resp.status_code == 202, resp.text
    t_first = workload.first_commit(new, 60)
    audit.stop()
    bench.kill()
    bench.wait()
    assert new.promote(bed.term).status_code in (200, 202)  # idempotent per term
    lost = workload.missing(new, audit.acked)
    assert not lost, f"{len(lost)} of {len(audit.acked)} acknowledged commits lost: {sorted(lost)[:20]}"
    assert audit.acked, "the audit client got no commit acknowledged before the kill"
    bed.writer = new
    # The other reader follows the new writer; the old writer comes back, as a reader only.
    for other in candidates:
        if other is not new:
            assert other.demote(bed.term, new.endpoint).status_code in (200, 202)
    old.start(contract.ROLE_READER, bed.term, writer=new.endpoint)
    marker = workload.next_id()
    with new.connect() as conn:
        conn.execute("INSERT INTO audit (id) VALUES (%s)", (marker,))
    timeline = int(new.status()["timeline"])
    for r in bed.readers():
        r.wait(
            lambda r=r: _follows(r, new, marker), 90, f"reader following {new.name} on timeline {timeline}"
        )
    assert old.status()["role"] == contract.ROLE_READER
    return t_first - t_kill, len(audit.acked), timeline


def test_failover_loses_no_acknowledged_commit(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    assert bed.writer is not None
    workload.init_schema(bed.writer)
    times: list[float] = []
    acked = 0
    for run in range(RUNS):
        seconds, n, timeline = one_failover(bed)
        times.append(seconds)
        acked += n
        with capsys.disabled():
            print(
                f"\nfailover run {run + 1}/{RUNS}: {n} acked, 0 lost, "
                f"kill->first commit {seconds:.3f}s, TL {timeline}"
            )
    line = workload.summary(
        f"failover promotion (kill -> first commit), {acked} acknowledged commits, 0 lost", times
    )
    workload.write_result(line)
    with capsys.disabled():
        print("\n" + line)
