"""Planning self-repair: which files, from which peers, when the archive is needed."""

from __future__ import annotations

from aurora_storage import history, repair_plan
from aurora_storage.lsn import segment_name

P = repair_plan.PeerFile


def seg(n: int, tli: int = 1) -> str:
    return segment_name(tli, n)


def test_unknown_window_until_the_receiver_writes() -> None:
    assert repair_plan.plan([], {1: [P(seg(3), "a")]}, [], keep=64) is None


def test_wiped_node_fetches_everything_below_its_stream() -> None:
    peers = {1: [P(seg(n), f"h{n}") for n in (2, 3, 4)], 2: [P(seg(n), f"h{n}") for n in (2, 3, 4, 5)]}
    todo = repair_plan.plan([seg(5) + ".partial"], peers, [], keep=64)
    assert todo is not None
    assert [f.name for f in todo] == [seg(2), seg(3), seg(4)]
    assert todo[0].sources == (1, 2) and todo[0].sha256 == "h2"


def test_nothing_beyond_own_newest_and_nothing_outside_window() -> None:
    peers = {1: [P(seg(n), "x") for n in range(1, 12)]}
    todo = repair_plan.plan([seg(8) + ".partial", seg(7)], peers, [], keep=3)
    assert todo is not None
    assert [f.name for f in todo] == [seg(5), seg(6)]


def test_archive_fills_what_no_peer_holds() -> None:
    peers = {1: [P(seg(4), "x")]}
    todo = repair_plan.plan([seg(5) + ".partial"], peers, [seg(3), seg(4)], keep=64)
    assert todo is not None
    assert [(f.name, f.sources) for f in todo] == [
        (seg(3), (repair_plan.ARCHIVE,)),
        (seg(4), (1, repair_plan.ARCHIVE)),
    ]


def test_history_files_are_always_wanted() -> None:
    todo = repair_plan.plan([seg(5, 2) + ".partial"], {3: [P("00000002.history", "h")]}, [], keep=64)
    assert todo is not None and [f.name for f in todo] == ["00000002.history"]


def test_disagreeing_peers_leave_checksum_to_each_source() -> None:
    peers = {1: [P(seg(2), "a")], 2: [P(seg(2), "b")]}
    todo = repair_plan.plan([seg(3)], peers, [], keep=64)
    assert todo is not None and todo[0].sha256 is None


def test_rotation_spreads_load_over_peers() -> None:
    peers = {o: [P(seg(2), "a")] for o in (1, 2, 3)}
    first = repair_plan.plan([seg(3)], peers, [], keep=64, rotate=1)
    assert first is not None and first[0].sources == (2, 3, 1)


def test_consecutive_files_start_at_different_peers() -> None:
    peers = {o: [P(seg(n), f"s{n}") for n in (2, 3, 4, 5)] for o in (1, 3, 4)}
    todo = repair_plan.plan([seg(6)], peers, [], keep=64, rotate=0)
    assert todo is not None
    assert [f.sources[0] for f in todo] == [1, 3, 4, 1]
    assert all(sorted(f.sources) == [1, 3, 4] for f in todo)


def test_old_timeline_past_its_fork_is_never_fetched() -> None:
    # Timeline 2 forked from timeline 1 inside segment 5: timeline 1's segments 5 and 6 (a complete fork
    # segment with a superseded tail, and one wholly after) are not history any more, wherever offered.
    hist = history.parse(2, "1\t0/5000100\tfailover\n")
    peers = {1: [P(seg(n), "x") for n in (3, 4, 5, 6)] + [P(seg(5, 2), "y"), P("00000002.history", "h")]}
    todo = repair_plan.plan([seg(7, 2) + ".partial", "00000002.history"], peers, [seg(6)], 64, history=hist)
    assert todo is not None
    assert [f.name for f in todo] == [seg(3), seg(4), seg(5, 2)]
    unaware = repair_plan.plan([seg(7, 2) + ".partial"], peers, [seg(6)], 64)
    assert unaware is not None and seg(5) in [f.name for f in unaware]
