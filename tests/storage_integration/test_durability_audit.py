"""Durability audit: every acknowledged commit is readable from every one of the 20 sets of three nodes.

Prose: a writer with ``ANY 4`` of six storage nodes takes single-row commits from four clients. In some
repetitions two receivers are frozen (SIGSTOP) mid-load, so the newest commits sit on exactly four nodes;
in others a segment switch happens mid-load. The writer is SIGKILLed at a random moment, frozen receivers
are SIGKILLed (they never drain). Then, for each of the 20 triples, the storage client reconstructs WAL
from exactly those three nodes and pg_waldump must find the COMMIT of every acknowledged transaction.
Ten repetitions, zero misses. As a check that the audit can fail, the two frozen nodes alone (a pair,
below the read quorum) must miss acknowledged commits.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aurora_storage import client
from aurora_storage import lsn as lsnmod

from tests.fixtures.storage import StorageCluster, StorageFactory
from tests.storage_integration.helpers import Committer, committed_xids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPS = int(os.environ.get("QUORUMDB_AUDIT_REPS", "10"))


def _reports(sc: StorageCluster) -> list[client.NodeReport]:
    """Status and inventory of all six nodes (after the writer died their WAL no longer changes)."""
    with client.StorageClient(sc.urls, timeout=15) as c:
        reports: list[client.NodeReport] = []
        for _ in range(5):  # a loaded machine may delay an answer; nodes must answer, not necessarily fast
            reports = c.reports()
            if len(reports) == 6:
                return reports
            time.sleep(1)
    raise AssertionError(f"all six nodes must answer, got {[r.ordinal for r in reports]}")


def _reconstruct(
    c: client.StorageClient,
    reports: list[client.NodeReport],
    nodes: tuple[int, ...],
    first_segno: int,
    out: Path,
) -> None:
    """Write what the storage client serves from exactly ``nodes`` (segments from ``first_segno`` on)."""
    q = client.ReadQuorum.of([r for r in reports if r.ordinal in nodes])
    for name in c.names(q):
        wn = lsnmod.parse_wal_name(name)
        if wn.kind is lsnmod.WalKind.SEGMENT and wn.segno >= first_segno:
            data = c.fetch_bytes(name, q)
            assert data is not None, f"{name} listed by {nodes} but not served"
            (out / name).write_bytes(data)


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.iterdir()):
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@dataclass
class Rep:
    acked: int
    misses: dict[tuple[int, ...], int]
    pair_miss: int | None
    distinct: int


def _one_rep(sc: StorageCluster, rep: int, rng: random.Random, workdir: Path) -> Rep:
    with sc.writer.connect() as conn:
        start = str(conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0])  # type: ignore[index]
    committer = Committer(sc.writer.conninfo()).start()
    paused: list[int] = []
    frozen: list[int] = []
    pause_two = rep % 2 == 0
    t_end = time.monotonic() + rng.uniform(1.5, 3.0)
    if pause_two:
        time.sleep(rng.uniform(0.3, 0.8))
        for node in rng.sample(range(6), 2):
            pid = sc.receiver_pid(node)
            assert pid, f"receiver of node {node} not running"
            os.kill(pid, signal.SIGSTOP)
            paused.append(pid)
            frozen.append(node)
            time.sleep(rng.uniform(0.1, 0.4))
    else:
        time.sleep(rng.uniform(0.3, 1.0))
        with sc.writer.connect() as conn:
            conn.execute("SELECT pg_switch_wal()")
    time.sleep(max(0.0, t_end - time.monotonic()))
    sc.writer.kill()
    for pid in paused:
        os.kill(pid, signal.SIGKILL)
    committer.stop()
    acked = {xid for xid, _ in committer.acked}
    assert len(acked) > 50, (
        f"rep {rep}: only {len(acked)} commits acknowledged; errors {committer.errors[:3]}"
    )

    first_segno = lsnmod.segment_of(lsnmod.parse_lsn(start))
    cache: dict[str, set[int]] = {}
    misses: dict[tuple[int, ...], int] = {}
    reports = _reports(sc)
    c = client.StorageClient(sc.urls, timeout=15, memoize=True)
    for triple in itertools.combinations(range(6), 3):
        out = workdir / f"rep{rep}-{''.join(map(str, triple))}"
        out.mkdir()
        _reconstruct(c, reports, triple, first_segno, out)
        key = _digest(out)
        if key not in cache:
            cache[key], _ = committed_xids(out, start)
        misses[triple] = len(acked - cache[key])
        shutil.rmtree(out)
    pair_miss = None
    if pause_two:
        stale = tuple(sorted(frozen))
        out = workdir / f"rep{rep}-pair"
        out.mkdir()
        _reconstruct(c, reports, stale, first_segno, out)
        pair_miss = len(acked - committed_xids(out, start)[0])
    c.close()
    return Rep(len(acked), misses, pair_miss, len(cache))


def test_every_triple_holds_every_acknowledged_commit(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    with sc.writer.connect() as conn:
        Committer.create_table(conn)
    rng = random.Random(int(os.environ.get("QUORUMDB_AUDIT_SEED", "20170514")))
    results = []
    with tempfile.TemporaryDirectory(prefix="quorumdb-audit-") as tmp:
        for rep in range(REPS):
            results.append(_one_rep(sc, rep, rng, Path(tmp)))
            sc.writer.start()
            sc.wait_streaming(timeout=60)
    total_misses = sum(sum(r.misses.values()) for r in results)
    summary = [(r.acked, r.pair_miss, r.distinct) for r in results]
    print(f"audit: {REPS} reps, (acked, pair misses, distinct reconstructions) per rep: {summary}")
    assert total_misses == 0, [r.misses for r in results]
    assert sum(r.acked for r in results) > REPS * 50
    # Non-vacuity: reading two nodes (below R=3) loses acknowledged commits when two nodes were frozen.
    assert any((r.pair_miss or 0) > 0 for r in results), summary
