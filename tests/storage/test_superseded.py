"""Setting aside old-timeline WAL past a fork, on real files (the driver around ``history.superseded``)."""

from __future__ import annotations

import struct
from pathlib import Path

from aurora_storage import lsn as lsnmod
from aurora_storage.node import store, superseded

FORK = lsnmod.segment_start(2) + 3 * 8192 + 100  # timeline 1 ended inside segment 2, on its fourth page
T1_FORK_SEG = lsnmod.segment_name(1, 2)
T2_FORK_SEG = lsnmod.segment_name(2, 2)


def _partial(path: Path, segno: int, pages: int) -> None:
    """A zero-padded segment whose first ``pages`` pages carry headers addressed to themselves."""
    buf = bytearray(lsnmod.WAL_SEGMENT_SIZE)
    start = lsnmod.segment_start(segno)
    for i in range(pages):
        buf[i * 8192 : i * 8192 + 24] = struct.pack("<HHIQI", 0xD110, 0, 2, start + i * 8192, 0) + b"\x01" * 4
    path.write_bytes(bytes(buf))


def _node(tmp_path: Path) -> store.WalStore:
    s = store.WalStore(tmp_path)
    for n in (1, 2, 3):
        (s.wal / lsnmod.segment_name(1, n)).write_bytes(b"timeline 1")
    (s.wal / "00000002.history").write_text(f"1\t{lsnmod.format_lsn(FORK)}\tno recovery target specified\n")
    s.seal_completed()
    return s


def test_fork_segment_is_set_aside_once_the_new_timeline_reaches_the_fork(tmp_path: Path) -> None:
    s = _node(tmp_path)
    _partial(s.wal / (T2_FORK_SEG + ".partial"), 2, pages=2)  # streaming, not yet at the fork point
    hist, verdict = superseded.set_aside(s)
    assert hist is not None and hist.end_of(1) == FORK
    assert verdict.superseded == (lsnmod.segment_name(1, 3),)  # wholly after the fork
    assert verdict.waiting == (T1_FORK_SEG,)
    held = {wn.filename for wn in s.names()}
    assert T1_FORK_SEG in held and lsnmod.segment_name(1, 3) not in held

    _partial(s.wal / (T2_FORK_SEG + ".partial"), 2, pages=5)  # now past it
    _, verdict = superseded.set_aside(s)
    assert verdict.superseded == (T1_FORK_SEG,) and verdict.waiting == ()
    assert sorted(wn.filename for wn in s.names()) == sorted(
        ["00000002.history", lsnmod.segment_name(1, 1), T2_FORK_SEG + ".partial"]
    )
    assert s.sealed(T1_FORK_SEG) is None
    assert {p.name for p in s.quarantine.iterdir()} == {
        f"{lsnmod.segment_name(1, 3)}.superseded",
        f"{T1_FORK_SEG}.superseded",
    }


def test_nothing_moves_without_a_history_or_with_an_unreadable_one(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / lsnmod.segment_name(1, 3)).write_bytes(b"x")
    assert superseded.set_aside(s)[1].superseded == ()
    (s.wal / "00000002.history").write_text("garbage\n")
    hist, verdict = superseded.set_aside(s)
    assert hist is None and verdict.superseded == ()
    assert [wn.filename for wn in s.names()] == [lsnmod.segment_name(1, 3), "00000002.history"]
