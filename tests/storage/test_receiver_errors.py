"""Classifying pg_receivewal's exit messages."""

from __future__ import annotations

from aurora_storage.node import receiver


def test_slot_lost_messages() -> None:
    removed = "pg_receivewal: error: requested WAL segment 000000010000000000000003 has already been removed"
    assert receiver.slot_lost(removed, "storage_5")
    assert receiver.slot_lost('error: replication slot "storage_5" does not exist', "storage_5")
    assert not receiver.slot_lost('error: replication slot "storage_4" does not exist', "storage_5")
    assert not receiver.slot_lost('FATAL: database "x" does not exist', "storage_5")
    assert not receiver.slot_lost("error: could not connect to server", "storage_5")
    assert not receiver.slot_lost(None, "storage_5")
