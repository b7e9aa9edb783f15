"""Timeline fork: nodes holding an old timeline past the fork point follow the new writer on their own.

Prose: writer A (timeline 1) streams to six nodes. A backup of A taken early becomes writer B: it is
promoted (timeline 2) at the end of the backup, while A has since completed three more segments that
every node holds. Those segments lie wholly after timeline 1's fork point: PostgreSQL's history says
they never happened on timeline 2. pg_receivewal would ask B for timeline 1 past the fork and be refused
forever (the old "manual move-aside" gap); quorumdb-walrecv moves them to quarantine as ``.superseded``,
streams timeline 2 from the fork's segment, and B commits with its quorum.
"""

from __future__ import annotations

import psycopg
import pytest
from aurora_storage import lsn as lsnmod
from aurora_storage import slots

from tests.fixtures.postgres import basebackup
from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def test_nodes_move_superseded_segments_aside_and_follow_the_new_timeline(
    storage_factory: StorageFactory,
) -> None:
    sc = storage_factory()
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

    # B: the backup, promoted at its end (timeline 2 forks before A's last three segments).
    (b.datadir / "standby.signal").touch()
    b.configure({**slots.writer_settings(term=2), "synchronous_standby_names": ""})
    b.start()
    with b.connect() as conn:
        conn.execute("SELECT pg_promote(true, 60)")
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
    for i in range(6):
        superseded = sorted(p.name for p in (sc.data_dir(i) / "quarantine").glob("00000001*.superseded"))
        assert len(superseded) >= 3, (i, superseded, sc.log(i)[-2000:])
        assert "moved" in sc.log(i) and "aside" in sc.log(i)
    b.stop("immediate")
