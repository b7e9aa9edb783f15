"""The WAL tail from the fence answers: used only when READ_QUORUM healthy nodes confirmed that very term."""

from __future__ import annotations

import pytest
from aurora_instance.httpstorage import HttpStorage
from aurora_instance.storage import QuorumUnavailable
from aurora_storage.quorum import NodeView

URLS = [f"http://127.0.0.1:{9 + i}" for i in range(6)]  # nothing listens: any request would fail


def storage(term: int, views: list[NodeView]) -> HttpStorage:
    s = HttpStorage(URLS, timeout=0.2)
    s._fenced = (term, views)
    return s


def test_three_fenced_healthy_nodes_give_the_most_advanced_tail_without_asking_again() -> None:
    views = [NodeView(0, True, 5, 100, 4), NodeView(1, True, 5, 300, 4), NodeView(2, True, 5, 200, 4)]
    tail = storage(5, views).tail(min_term=5)
    assert (tail.timeline, tail.end, tail.node, tail.answered) == (4, 300, "storage_1", 3)


def test_a_newer_timeline_wins_over_a_longer_older_one() -> None:
    views = [NodeView(0, True, 5, 900, 3), NodeView(1, True, 5, 100, 4), NodeView(2, True, 5, 50, 4)]
    assert storage(5, views).tail(min_term=5).timeline == 4


def test_too_few_healthy_confirmations_fall_back_to_asking_every_node() -> None:
    views = [NodeView(0, True, 5, 100, 4), NodeView(1, False, 5, 300, 4), NodeView(2, True, 5, 200, 4)]
    with pytest.raises(QuorumUnavailable):  # nothing listens at URLS: the fallback asked and found none
        storage(5, views).tail(min_term=5)


def test_answers_of_another_term_are_not_used() -> None:
    views = [NodeView(i, True, 4, 100, 4) for i in range(3)]
    with pytest.raises(QuorumUnavailable):  # answers of term 4; the tail is wanted at term 5
        storage(4, views).tail(min_term=5)
