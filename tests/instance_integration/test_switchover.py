"""Switchover (acceptance): a planned role change under load loses no acknowledged commit and is quick.

The control plane raises the term, tells the old writer to become a reader of the chosen one (it stops
writing at once: fast shutdown, and the storage nodes refuse its old term), and promotes the chosen reader,
which first catches up from the storage quorum. Repeated ``QUORUMDB_SWITCHOVER_RUNS`` times (default 3).
"""

from __future__ import annotations

import os
import time

import pytest
from aurora_api import contract

from tests.instance_integration import workload
from tests.instance_integration.harness import Bed, Instance

pytestmark = pytest.mark.integration
RUNS = int(os.environ.get("QUORUMDB_SWITCHOVER_RUNS", "3"))


def _follows(r: Instance, marker: int) -> bool:
    st = r.status()
    if not st["ready"] or st["role"] != contract.ROLE_READER:
        return False
    with r.connect() as conn:
        return conn.execute("SELECT 1 FROM audit WHERE id = %s", (marker,)).fetchone() is not None


def test_switchover_loses_nothing_and_is_quick(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    assert bed.writer is not None
    workload.init_schema(bed.writer)
    unavailable: list[float] = []
    for run in range(RUNS):
        old = bed.writer
        assert old is not None
        new = bed.readers()[run % len(bed.readers())]
        bench = workload.pgbench(old, 8)
        audit = workload.AuditClient(old).start()
        time.sleep(2)
        bed.term += 1
        t0 = time.monotonic()
        assert old.demote(bed.term, new.endpoint).status_code == 202
        assert new.promote(bed.term).status_code == 202
        t_first = workload.first_commit(new, 60)
        audit.stop()
        bench.kill()
        bench.wait()
        lost = workload.missing(new, audit.acked)
        assert not lost, f"switchover {run + 1}: {len(lost)} of {len(audit.acked)} acknowledged commits lost"
        assert audit.acked
        bed.writer = new
        for other in bed.readers():
            if other is not old:
                assert other.demote(bed.term, new.endpoint).status_code in (200, 202)
        marker = workload.next_id()
        with new.connect() as conn:
            conn.execute("INSERT INTO audit (id) VALUES (%s)", (marker,))
        for r in bed.readers():
            r.wait(lambda r=r, m=marker: _follows(r, m), 90, f"reader following {new.name}")
        unavailable.append(t_first - t0)
        with capsys.disabled():
            print(
                f"\nswitchover {run + 1}/{RUNS}: {len(audit.acked)} acked, 0 lost, "
                f"unavailable {t_first - t0:.3f}s"
            )
    line = workload.summary(
        "switchover write unavailability (request -> first commit on new writer)", unavailable
    )
    workload.write_result(line)
    with capsys.disabled():
        print("\n" + line)


def test_switchover_over_https_control_endpoints_loses_nothing(tls_pair: Bed) -> None:
    """The same role change with every control endpoint on HTTPS (``QUORUMDB_CONTROL_TLS_DIR``): promote
    and demote reach the managers over it, and the new writer fences the storage nodes over it."""
    bed = tls_pair
    old, new = bed.writer, bed.readers()[0]
    assert old is not None and str(old.http.base_url).startswith("https://")
    workload.init_schema(old)
    audit = workload.AuditClient(old).start()
    time.sleep(1)
    bed.term += 1
    assert old.demote(bed.term, new.endpoint).status_code == 202
    assert new.promote(bed.term).status_code == 202
    workload.first_commit(new, 60)
    audit.stop()
    assert audit.acked and not workload.missing(new, audit.acked)
    # The reported role is the manager's last observation: it follows the promotion within a decision cycle.
    new.wait(lambda: new.status()["role"] == contract.ROLE_WRITER, 15, "the new writer reporting its role")
    bed.writer = new
    new.wait(lambda: bed.streaming_nodes() >= contract.WRITE_QUORUM, 30, "the storage quorum following")
