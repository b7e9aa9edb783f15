"""Timeline fork: nodes holding an old timeline past the fork point follow the new writer on their own.

Prose: writer A (timeline 1) streams to six nodes. A backup of A taken early becomes writer B: it is
promoted (timeline 2) at the end of the backup, while A has since completed three more segments that
every node holds. Those segments lie wholly after timeline 1's fork point: PostgreSQL's history says
they never happened on timeline 2. pg_receivewal would ask B for timeline 1 past the fork and be refused
forever (the old "manual move-aside" gap); quorumdb-walrecv moves them to quarantine as ``.superseded``,
streams timeline 2 from the fork's segment, and B commits with its quorum. The *complete* timeline-1
segment that holds the fork point (valid WAL up to it, A's superseded WAL after it) is set aside too, by
the node, once timeline 2's copy of that segment reaches the fork point: no inventory lists it.

Second scenario, with the archive: A's segments (the fork segment and the three after it) were archived
before the fork. A node wiped after the failover repairs from peers and the archive and restores none
of them: the archive still offers them, the history says they are not WAL any more.
"""

from __future__ import annotations

import psycopg
import pytest
from aurora_storage import archive_layout, history, slots
from aurora_storage import lsn as lsnmod

from tests.fixtures.postgres import PgCluster, basebackup
from tests.fixtures.s3server import S3Bucket
from tests.fixtures.storage import StorageCluster, StorageFactory

pytestmark = pytest.mark.integration


def _fork_to_b(sc: StorageCluster) -> tuple[PgCluster, history.History]:
    """A moves on past a backup; the backup becomes B (timeline 2, term 2); all nodes follow B."""
    a = sc.writer
    with a.connect() as conn:
        conn.execute("CREATE TABLE fork(x int)")
        conn.execute("INSERT INTO fork VALUES (1)")
    b = basebackup(a, wal="stream")
    # A moves on: three more complete segments on timeline 1, on every node.
    with a.connect() as conn:
        for i in range(3):
            conn.execute("INSERT INTO fork VALUES (%s)", (i + 2,))
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("INSERT INTO fork VALUES (99)")
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    a_end = lsnmod.parse_lsn(str(row[0]))
    sc.wait(
        lambda: all(lsnmod.parse_lsn(sc.status(i)["flush_lsn"]) >= a_end for i in range(6)),
        20,
        "all nodes to hold A's WAL",
    )
    a.stop("immediate")

    # B: the backup, promoted as soon as it is consistent (timeline 2 forks inside the segment holding
    # the backup's end, which A completed, and before A's last three segments).
    (b.datadir / "standby.signal").touch()
    b.configure(
        {
            **slots.writer_settings(term=2),
            "synchronous_standby_names": "",
            "recovery_target": "immediate",
            "recovery_target_action": "promote",
        }
    )
    b.start()
    with b.connect() as conn:
        sc.wait(lambda: not _in_recovery(conn), 60, "B to promote at its consistency point")
        row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert row is not None and str(row[0]).startswith("00000002"), row
        slots.ensure_slots(conn)
        rows = conn.execute("SELECT count(*) FROM fork").fetchone()
        assert rows is not None and int(str(rows[0])) == 1  # B never saw A's later rows
    b.configure(slots.writer_settings(term=2))
    b.reload()
    b_info = f"host=127.0.0.1 port={b.port} user=postgres"
    for i in range(6):
        assert sc.set_term(i, 2, writer=b_info).status_code == 200
    sc.wait(lambda: all(sc.status(i)["streaming"] for i in range(6)), 30, "all six nodes to stream from B")
    with psycopg.connect(b.conninfo(), autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET statement_timeout = '15s'")
        conn.execute("INSERT INTO fork VALUES (100)")  # needs four acknowledgements on timeline 2
    sc.wait(lambda: all(sc.status(i)["timeline"] == 2 for i in range(6)), 20, "nodes on timeline 2")
    hist = history.parse(2, (sc.data_dir(0) / "wal" / "00000002.history").read_text())
    return b, hist


def _in_recovery(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def _timeline1_past(sc: StorageCluster, i: int, fork: int) -> list[str]:
    """Timeline-1 segments node ``i`` lists that hold anything past the fork point."""
    files = sc.http.get(sc.urls[i] + "/v1/segments").json()["files"]
    return [
        f["name"]
        for f in files
        if f["kind"] != "history" and f["timeline"] == 1 and lsnmod.segment_start(f["segno"] + 1) > fork
    ]


def test_nodes_move_superseded_segments_aside_and_follow_the_new_timeline(
    storage_factory: StorageFactory,
) -> None:
    sc = storage_factory()
    b, hist = _fork_to_b(sc)
    fork = hist.end_of(1)
    assert fork is not None and fork % lsnmod.WAL_SEGMENT_SIZE, "B forked inside a segment"
    fork_segment = lsnmod.segment_name(1, lsnmod.segment_of(fork))
    for i in range(6):
        superseded = sorted(p.name for p in (sc.data_dir(i) / "quarantine").glob("00000001*.superseded"))
        assert len(superseded) >= 3, (i, superseded, sc.log(i)[-2000:])
        assert "moved" in sc.log(i) and "aside" in sc.log(i)
    # The complete fork segment: set aside by the node itself (the receiver keeps files holding a fork).
    sc.wait(lambda: not any(_timeline1_past(sc, i, fork) for i in range(6)), 20, "fork segment set aside")
    for i in range(6):
        assert (sc.data_dir(i) / "quarantine" / f"{fork_segment}.superseded").exists(), i
        assert (sc.data_dir(i) / "wal" / lsnmod.segment_name(2, lsnmod.segment_of(fork))).exists() or (
            sc.data_dir(i) / "wal" / (lsnmod.segment_name(2, lsnmod.segment_of(fork)) + ".partial")
        ).exists(), i
    b.stop("immediate")


def test_wiped_node_does_not_restore_the_old_timeline_tail_from_the_archive(
    storage_factory: StorageFactory, s3_bucket: S3Bucket
) -> None:
    sc = storage_factory(s3=s3_bucket)
    s3 = s3_bucket.server.client()
    prefix = archive_layout.wal_prefix(sc.env["QUORUMDB_S3_PREFIX"])

    def archived() -> set[str]:
        listing = s3.list_objects_v2(Bucket=s3_bucket.name, Prefix=prefix)  # type: ignore[attr-defined]
        return {o["Key"].rsplit("/", 1)[-1] for o in listing.get("Contents", [])}

    b, hist = _fork_to_b(sc)
    fork = hist.end_of(1)
    assert fork is not None
    old_tail = {
        lsnmod.segment_name(1, n) for n in range(lsnmod.segment_of(fork), lsnmod.segment_of(fork) + 4)
    }
    sc.wait(lambda: old_tail <= archived(), 60, "A's fork segment and the three after it in the archive")
    victim = 3
    sc.wait(lambda: not _timeline1_past(sc, victim, fork), 20, "fork segment set aside before the wipe")
    sc.kill(victim)
    sc.wipe(victim)
    sc.start(victim, set_term=False)
    assert sc.set_term(victim, 2, writer=f"host=127.0.0.1 port={b.port} user=postgres").status_code == 200
    sc.wait(lambda: sc.status(victim)["healthy"], 60, "wiped node to finish repairing")
    assert _timeline1_past(sc, victim, fork) == [], sc.log(victim)[-3000:]
    assert not any((sc.data_dir(victim) / "wal" / name).exists() for name in old_tail)
    assert sc.status(victim)["timeline"] == 2
    b.stop("immediate")
