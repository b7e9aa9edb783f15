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

    def segments(i: int) -> set[str]:
        files = sc.http.get(sc.urls[i] + "/v1/segments").json()["files"]
        return {f["name"] for f in files if f["kind"] == "segment"}

    def recovered() -> bool:
        st = sc.status(5)
        return "re-seeding" in sc.log(5) and st["streaming"] and st["healthy"] and segments(0) <= segments(5)

    sc.wait(recovered, 60, "node 5 re-seeded, streaming, and holding every segment its peers hold")
    sc.wait_streaming(6, timeout=30)
    with sc.writer.connect() as conn:
        row = conn.execute(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'storage_5'"
        ).fetchone()
    assert row is not None and row[0] in ("reserved", "extended"), row
