"""The in-memory ``StorageQuorum`` keeps the Protocol's contract (used by the other unit tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aurora_instance.storage import (
    FENCE_QUORUM,
    MemoryNode,
    MemoryStorage,
    QuorumUnavailable,
    StorageIdentity,
)

SEG = "000000010000000000000003"


def test_fence_quorum_keeps_a_deposed_writer_below_the_write_quorum() -> None:
    assert FENCE_QUORUM == 3  # 6 - 4 + 1: the old writer keeps at most 3 < 4 nodes


def test_fence_never_lowers_a_term_and_reports_the_highest() -> None:
    s = MemoryStorage()
    s.nodes[0].term = 7
    result = s.fence(5, "host=a")
    assert result.confirmed == 5
    assert result.highest_term == 7
    assert s.nodes[0].writer is None and s.nodes[1].writer == "host=a"
    assert s.fence(5).confirmed == 5 and s.nodes[1].writer == "host=a"  # None keeps the writer


def test_tail_is_the_most_advanced_partial_of_a_read_quorum() -> None:
    s = MemoryStorage()
    s.nodes[0].files[SEG + ".partial"] = b"x" * 100 + b"\0" * 50
    s.nodes[1].files[SEG + ".partial"] = b"x" * 300 + b"\0" * 50
    tail = s.tail()
    assert (tail.timeline, tail.end - 3 * 16 * 1024 * 1024, tail.node) == (1, 300, "storage_1")


def test_tail_needs_a_read_quorum_at_the_term(tmp_path: Path) -> None:
    s = MemoryStorage([MemoryNode(term=2, files={SEG: b"x"}) for _ in range(6)])
    for n in s.nodes[:4]:
        n.reachable = False
    with pytest.raises(QuorumUnavailable):
        s.tail()
    s.nodes[0].reachable = True
    assert s.tail().answered == 3
    with pytest.raises(QuorumUnavailable):
        s.tail(min_term=3)


def test_fetch_prefers_a_complete_segment_then_the_longest_partial(tmp_path: Path) -> None:
    s = MemoryStorage()
    s.nodes[2].files[SEG + ".partial"] = b"ab\0\0"
    s.nodes[3].files[SEG + ".partial"] = b"abc\0"
    dest = tmp_path / "f"
    assert s.fetch(SEG, dest) and dest.read_bytes() == b"abc\0"
    s.nodes[5].files[SEG] = b"abcd"
    assert s.fetch(SEG, dest) and dest.read_bytes() == b"abcd"
    assert not s.fetch("00000002.history", dest)


def test_identity_of_a_new_cluster_and_of_a_fenced_one() -> None:
    s = MemoryStorage()
    assert s.identity() == StorageIdentity(answered=6, system_identifier=None, highest_term=0)
    s.fence(2)
    s.nodes[1].system_identifier = s.nodes[2].system_identifier = "7312"
    s.nodes[0].reachable = s.nodes[1].reachable = False  # unreachable nodes are not counted
    assert s.identity() == StorageIdentity(answered=4, system_identifier="7312", highest_term=2)


def test_identity_reports_the_identifier_most_nodes_hold(caplog: pytest.LogCaptureFixture) -> None:
    s = MemoryStorage([MemoryNode(term=3, system_identifier="111") for _ in range(6)])
    s.nodes[0].system_identifier = s.nodes[1].system_identifier = "222"
    s.nodes[2].term = 9
    assert s.identity() == StorageIdentity(answered=6, system_identifier="111", highest_term=9)
    assert "disagree on the system identifier (111 on 4 nodes, 222 on 2 nodes)" in caplog.text
    s.nodes[2].system_identifier = s.nodes[3].system_identifier = None  # 2 against 2: the higher term wins
    s.nodes[0].term = 5
    assert s.identity().system_identifier == "222"


def test_memory_storage_serves_a_range_of_a_partial() -> None:
    from aurora_instance.storage import MemoryNode, MemoryStorage
    from aurora_storage import lsn

    segment = lsn.segment_name(1, 3)
    data = bytes(range(256)) * 16 + b"\0" * 64
    nodes = [MemoryNode(term=2, files={segment + ".partial": data}) for _ in range(6)]
    start = lsn.segment_start(3) + 100
    assert MemoryStorage(nodes).fetch_range(1, start, start + 50) == data[100:150]
    assert MemoryStorage(nodes).fetch_range(1, start, lsn.segment_start(3) + 5000) is None  # beyond its data
