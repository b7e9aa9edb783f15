"""A node whose slot lost its WAL on the writer (``max_slot_wal_keep_size``) re-seeds and repairs.

Prose: the writer bounds what slots pin (here 32 MB). One storage node is down while the writer
produces more WAL than that and checkpoints, so the node's slot is invalidated. When the node returns,
pg_receivewal is refused ("already removed"); the node re-creates its slot, streams from the writer's
current position, refills the hole from its peers and reports healthy again, and the writer has six
quorum members again.
"""

from __future__ import annotations

import pytest

from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def test_invalidated_slot_reseeds_and_repairs(storage_factory: StorageFactory) -> None:
    sc = storage_factory(writer_settings={"max_slot_wal_keep_size": "32MB", "max_wal_size": "64MB"})
    sc.kill(5)
    with sc.writer.connect() as conn:
        conn.execute("CREATE TABLE filler(x int, pad text)")
        for _ in range(4):
            conn.execute("INSERT INTO filler SELECT g, repeat('y', 200) FROM generate_series(1, 50000) g")
            conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'storage_5'"
        ).fetchone()
    assert row is not None and row[0] == "lost", f"slot storage_5 should be invalidated, is {row}"
    sc.start(5, set_term=False)
    sc.wait(
        lambda: sc.status(5)["streaming"] and sc.status(5)["healthy"], 60, "node 5 re-seeded and repaired"
    )
    sc.wait_streaming(6, timeout=30)
    peers = {
        f["name"] for f in sc.http.get(sc.urls[0] + "/v1/segments").json()["files"] if f["kind"] == "segment"
    }
    mine = {
        f["name"] for f in sc.http.get(sc.urls[5] + "/v1/segments").json()["files"] if f["kind"] == "segment"
    }
    assert peers <= mine, f"node 5 lacks {sorted(peers - mine)}"
    assert "lost its WAL" in sc.log(5) or "re-seeding" in sc.log(5)
