"""A read quorum does not wait for the slowest node once three qualifying nodes answered (W + R > N)."""

from __future__ import annotations

import time

import pytest
from aurora_storage import client, quorum


class SlowNodes(client.StorageClient):
    """Node reports from a table, each after its own delay (no HTTP)."""

    def __init__(self, nodes: dict[int, tuple[float, int, int]]) -> None:
        super().__init__([f"http://node-{i}:7000" for i in range(6)])
        self.nodes = nodes  # ordinal -> (delay seconds, term, flush lsn); absent: unreachable

    def _report(self, ordinal: int, url: str) -> client.NodeReport | None:
        if ordinal not in self.nodes:
            return None
        delay, term, flush = self.nodes[ordinal]
        time.sleep(delay)
        status = {"healthy": True, "term": term, "flush_lsn": f"0/{flush:X}", "timeline": 1}
        return client.NodeReport(ordinal, url, status)


def test_the_quorum_is_read_without_waiting_for_a_slow_node() -> None:
    nodes = {i: (0.0, 2, 100 + i) for i in range(5)} | {5: (3.0, 2, 999)}
    started = time.monotonic()
    q = SlowNodes(nodes).read_quorum(min_term=2)
    assert time.monotonic() - started < 1.5
    assert sorted(q.ordinals) == [0, 1, 2, 3, 4]
    assert q.flush_lsn == 104


def test_nodes_below_the_term_do_not_count_towards_the_quorum() -> None:
    # Three fast nodes still on term 1 (not fenced): the quorum must wait for the fenced ones.
    nodes = {0: (0.0, 1, 500), 1: (0.0, 1, 500), 2: (0.0, 1, 500)} | {i: (0.3, 2, 100) for i in (3, 4, 5)}
    q = SlowNodes(nodes).read_quorum(min_term=2)
    assert sorted(q.ordinals) == [3, 4, 5]
    assert q.flush_lsn == 100


def test_too_few_answers_is_an_error() -> None:
    with pytest.raises(quorum.QuorumError):
        SlowNodes({0: (0.0, 2, 1), 1: (0.0, 2, 1)}).read_quorum(min_term=2)
