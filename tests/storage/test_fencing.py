"""Term fencing decisions."""

from __future__ import annotations

from aurora_storage import fencing

W = fencing.WriterFacts(system_identifier="7", term=3, in_recovery=False, cluster_name="demo")


def test_streams_from_writer_of_current_term() -> None:
    d = fencing.decide(3, "7", "demo", W)
    assert d.stream and "term 3" in d.reason


def test_refuses_stale_writer() -> None:
    d = fencing.decide(4, "7", "demo", W)
    assert not d.stream and "stale writer" in d.reason


def test_refuses_newer_writer_until_told() -> None:
    d = fencing.decide(2, "7", "demo", W)
    assert not d.stream and "newer" in d.reason


def test_refuses_wrong_cluster_identity() -> None:
    assert "wrong cluster identity" in fencing.decide(3, "8", "demo", W).reason
    assert "wrong cluster name" in fencing.decide(3, "7", "other", W).reason


def test_refuses_standby_and_writer_without_term() -> None:
    standby = fencing.WriterFacts("7", 3, True)
    assert "recovery" in fencing.decide(3, "7", None, standby).reason
    no_term = fencing.WriterFacts("7", None, False)
    assert "no term" in fencing.decide(3, "7", None, no_term).reason
    assert not fencing.decide(0, None, None, W).stream


def test_unpinned_identity_accepts_first_writer() -> None:
    assert fencing.decide(3, None, None, W).stream


def test_terms_never_go_backwards() -> None:
    assert not fencing.accept_term(5, 4).stream
    assert fencing.accept_term(5, 5).stream
    assert fencing.accept_term(5, 6).stream
