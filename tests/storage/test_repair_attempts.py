"""Repair batch scheduling: slots, retries, the archive hedge, first copy wins (pure decisions)."""

from __future__ import annotations

import pytest
from aurora_storage import repair_plan
from aurora_storage.repair_attempts import Attempt, Batch

A = repair_plan.ARCHIVE


def f(name: str, *sources: int) -> repair_plan.Fetch:
    return repair_plan.Fetch(name, None, sources)


def test_first_sources_fill_the_slots_in_plan_order() -> None:
    b = Batch([f("s1", 1, 2), f("s2", 2, 3), f("s3", 3, 1)], slots=2)
    assert b.launch() == [Attempt("s1", 1), Attempt("s2", 2)]
    assert b.launch() == []  # full
    assert b.outcome(Attempt("s1", 1), ok=True) == []
    assert b.launch() == [Attempt("s3", 3)]
    b.outcome(Attempt("s2", 2), ok=True)
    b.outcome(Attempt("s3", 3), ok=True)
    assert b.finished and b.installed == ["s1", "s2", "s3"] and b.failed == []


def test_a_failure_tries_the_next_peer_and_hedges_with_the_archive() -> None:
    b = Batch([f("s1", 1, 2, 3, A)], slots=6)
    assert b.launch() == [Attempt("s1", 1)]
    b.outcome(Attempt("s1", 1), ok=False)  # e.g. peer 1's copy is corrupt
    assert b.launch() == [Attempt("s1", 2), Attempt("s1", A)]
    b.outcome(Attempt("s1", 2), ok=False)
    assert b.launch() == []  # the archive is still running: peer 3 is not asked meanwhile
    cancel = b.outcome(Attempt("s1", A), ok=True)
    assert cancel == [] and b.finished and b.installed == ["s1"]


def test_the_first_verified_copy_wins_and_the_others_are_cancelled() -> None:
    b = Batch([f("s1", 1, 2, A)], slots=6)
    b.launch()
    b.outcome(Attempt("s1", 1), ok=False)
    assert b.launch() == [Attempt("s1", 2), Attempt("s1", A)]
    assert b.outcome(Attempt("s1", A), ok=True) == [Attempt("s1", 2)]
    assert b.finished and b.running == 1  # the loser holds its slot until it reports
    assert b.outcome(Attempt("s1", 2), ok=False) == []  # cancelled: no second failure recorded
    assert b.installed == ["s1"] and b.failed == [] and b.running == 0


def test_new_files_take_slots_before_hedges() -> None:
    b = Batch([f("s1", 1, A), f("s2", 2, A), f("s3", 3, A)], slots=2)
    assert b.launch() == [Attempt("s1", 1), Attempt("s2", 2)]
    b.outcome(Attempt("s1", 1), ok=False)
    # One free slot: s1's retry (its archive: nothing of s1 is running) before nothing else.
    assert b.launch() == [Attempt("s1", A)]
    b.outcome(Attempt("s2", 2), ok=True)
    assert b.launch() == [Attempt("s3", 3)]


def test_a_file_fails_when_every_source_failed() -> None:
    b = Batch([f("s1", 1, 2), f("s2", 3)], slots=6)
    b.launch()
    b.outcome(Attempt("s1", 1), ok=False)
    assert b.launch() == [Attempt("s1", 2)]  # no archive to hedge with
    b.outcome(Attempt("s1", 2), ok=False)
    b.outcome(Attempt("s2", 3), ok=True)
    assert b.finished and b.failed == ["s1"] and b.installed == ["s2"]


def test_empty_batch_is_finished_and_slots_must_exist() -> None:
    assert Batch([], slots=1).finished
    with pytest.raises(ValueError):
        Batch([f("s1", 1)], slots=0)
