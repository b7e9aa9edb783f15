"""Quorum arithmetic: W=4, R=3 of N=6, and what follows from it."""

from __future__ import annotations

import itertools

import pytest
from aurora_storage import quorum


def test_synchronous_standby_names() -> None:
    assert quorum.synchronous_standby_names() == (
        "ANY 4 (storage_0,storage_1,storage_2,storage_3,storage_4,storage_5)"
    )
    with pytest.raises(ValueError):
        quorum.synchronous_standby_names(7)


def test_durable_lsn_is_fourth_highest() -> None:
    assert quorum.durable_lsn([10, 50, 40, 30, 20, 60]) == 30
    assert quorum.durable_lsn([10, 50, None, 30, None, 60]) == 10
    assert quorum.durable_lsn([10, 50, None, None, None, 60]) is None


def test_every_read_quorum_intersects_every_write_quorum() -> None:
    nodes = range(6)
    for w in itertools.combinations(nodes, 4):
        for r in itertools.combinations(nodes, 3):
            assert set(w) & set(r), (w, r)


def _view(o: int, healthy: bool = True, term: int = 1, flush: int | None = 100) -> quorum.NodeView:
    return quorum.NodeView(o, healthy, term, flush, 1)


def test_pick_read_quorum_orders_by_progress_and_skips_unhealthy() -> None:
    views = [_view(0, flush=10), _view(1, healthy=False, flush=99), _view(2, flush=30), _view(3, flush=20)]
    picked = quorum.pick_read_quorum(views)
    assert [v.ordinal for v in picked] == [2, 3, 0]


def test_pick_read_quorum_refuses_below_three() -> None:
    with pytest.raises(quorum.QuorumError, match="needs 3"):
        quorum.pick_read_quorum([_view(0), _view(1), _view(2, healthy=False)])


def test_pick_read_quorum_min_term_counts_only_fenced_nodes() -> None:
    views = [_view(0, term=2), _view(1, term=2), _view(2, term=1), _view(3, term=2)]
    assert {v.ordinal for v in quorum.pick_read_quorum(views, min_term=2)} == {0, 1, 3}
    with pytest.raises(quorum.QuorumError):
        quorum.pick_read_quorum(views[:3], min_term=2)


def test_adoptable_term_needs_four_peer_answers() -> None:
    assert quorum.adoptable_term([3, 3, 2], own_term=0) is None
    assert quorum.adoptable_term([3, 2, 2, 2], own_term=0) == 3


def test_adoption_from_any_four_peers_sees_a_term_stored_on_three_nodes() -> None:
    # A term counts once on 3 nodes; the wiped node may have been one of them, so 2 peers hold it.
    for holders in itertools.combinations(range(5), 2):
        terms = [5 if p in holders else 4 for p in range(5)]
        for answered in itertools.combinations(range(5), 4):
            assert quorum.adoptable_term([terms[p] for p in answered], own_term=0) == 5


def test_archive_owner_spreads_segments() -> None:
    assert [quorum.archive_owner(s) for s in range(7)] == [0, 1, 2, 3, 4, 5, 0]
