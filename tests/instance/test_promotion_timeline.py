"""Which timeline a promoting reader's own WAL is on: the receiver's, while it still ran."""

from __future__ import annotations

from aurora_instance import promotion, sql


def _reader(timeline: int | None, receiver: str | None) -> sql.PgObservation:
    return sql.PgObservation(
        in_recovery=True, timeline=timeline, version="15", pending_restart=(), receiver_status=receiver
    )


def test_the_receivers_timeline_before_it_was_stopped_wins_over_a_lagging_control_file() -> None:
    # A former writer that rejoined on timeline 2: once streaming stops, min_recovery_end_timeline says 1.
    before, after = _reader(2, "streaming"), _reader(1, None)
    assert promotion._received_timeline(before, after, None) == 2


def test_without_a_receiver_before_the_observation_after_stands() -> None:
    before, after = _reader(1, None), _reader(1, None)
    assert promotion._received_timeline(before, after, None) == 1


def test_a_receiver_already_gone_with_the_writer_is_remembered_by_the_manager() -> None:
    # A failover: the writer died, the receiver exited before the promotion began; the manager saw it on 2.
    before, after = _reader(1, None), _reader(1, None)
    assert promotion._received_timeline(before, after, 2) == 2
