"""Timeline histories: what a newer timeline's history supersedes on a node (pure decisions)."""

from __future__ import annotations

import pytest
from aurora_storage import history
from aurora_storage import lsn as lsnmod

SEG = lsnmod.WAL_SEGMENT_SIZE
# Timeline 1 ended inside segment 5 (at 0/5000100); timeline 2 ended exactly at the start of segment 9.
HIST3 = "1\t0/5000100\tno recovery target specified\n\n# comment\n2\t0/9000000\tafter failover\n"


def wn(name: str) -> lsnmod.WalName:
    return lsnmod.parse_wal_name(name)


def seg(tli: int, n: int, partial: bool = False) -> lsnmod.WalName:
    return wn(lsnmod.segment_name(tli, n) + (".partial" if partial else ""))


def full(*names: lsnmod.WalName) -> dict[lsnmod.WalName, int]:
    return {n: n.end_lsn() for n in names}


def test_parse_reads_postgres_history_format() -> None:
    h = history.parse(3, HIST3)
    assert h.timeline == 3
    assert h.forks == (history.Fork(1, 0x5000100), history.Fork(2, 0x9000000))
    assert h.end_of(1) == 0x5000100 and h.end_of(3) is None and h.end_of(7) is None
    assert h.after(1) == [2, 3] and h.after(2) == [3] and h.after(3) == [] and h.after(5) == []


@pytest.mark.parametrize("text", ["1\tnot-an-lsn\tx\n", "3\t0/1000000\tx\n", "2\t0/5\tx\n1\t0/9\tx\n", "1\n"])
def test_parse_refuses_malformed_histories(text: str) -> None:
    with pytest.raises(history.HistoryError):
        history.parse(3, text)


def test_newest_history_is_the_highest_timeline() -> None:
    names = [wn("00000002.history"), wn("00000003.history"), seg(3, 9)]
    assert history.newest(names) == wn("00000003.history")
    assert history.newest([seg(1, 1)]) is None


def test_off_history_is_past_where_an_ancestor_ended() -> None:
    h = history.parse(3, HIST3)
    assert not history.off_history(seg(1, 4), h)  # wholly before the fork
    assert history.off_history(seg(1, 5), h)  # holds the fork point and a superseded tail
    assert history.off_history(seg(1, 6), h)  # wholly after
    assert not history.off_history(seg(2, 8), h)  # timeline 2 ended exactly at its end
    assert history.off_history(seg(2, 9), h)
    assert not history.off_history(seg(3, 20), h)  # the current timeline
    assert not history.off_history(wn("00000002.history"), h)
    assert not history.off_history(seg(1, 6), None)


def test_files_wholly_after_a_fork_are_superseded_at_once() -> None:
    h = history.parse(3, HIST3)
    v = history.superseded(full(seg(1, 4), seg(1, 6), seg(1, 7), seg(2, 9), seg(3, 9)), h)
    assert v.superseded == (seg(1, 6).filename, seg(1, 7).filename, seg(2, 9).filename)
    assert v.waiting == ()


def test_fork_segment_waits_until_a_later_timeline_holds_its_prefix() -> None:
    h = history.parse(3, HIST3)
    fork = seg(1, 5)
    alone = history.superseded(full(fork), h)
    assert alone == history.Verdict((), (fork.filename,))
    # The new timeline's copy of segment 5 is streaming, but not yet up to the fork point.
    short = history.superseded({fork: fork.end_lsn(), seg(2, 5, partial=True): 0x5000080}, h)
    assert short.superseded == () and short.waiting == (fork.filename,)
    reached = history.superseded({fork: fork.end_lsn(), seg(2, 5, partial=True): 0x5000100}, h)
    assert reached.superseded == (fork.filename,)
    # A descendant further down the history covers it too (timeline 2's copy was superseded in turn).
    assert history.superseded(full(fork, seg(3, 5)), h).superseded == (fork.filename,)


def test_partials_current_timeline_and_strangers_are_never_touched() -> None:
    h = history.parse(3, HIST3)
    held = {
        seg(1, 6, partial=True): seg(1, 6).start_lsn() + 100,  # the receiver's: it handles its own
        seg(3, 10): seg(3, 10).end_lsn(),
        seg(4, 12): seg(4, 12).end_lsn(),  # a timeline this history does not know
        wn("00000003.history"): 0,
    }
    assert history.superseded(held, h) == history.Verdict((), ())
    assert history.superseded(full(seg(1, 6)), None) == history.Verdict((), ())
