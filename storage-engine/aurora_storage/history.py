"""Which old-timeline WAL files a newer timeline's history supersedes, with no I/O.

Why it exists: after a failover the new writer's timeline forks from the old one at a switch point; the
old writer may have sent WAL past it that never reached a quorum. A node that holds such WAL must not
offer it (inventory, repair, restore) as if it were history. The receiver moves aside old-timeline files
lying wholly after a fork when it starts; the *complete* old-timeline segment that contains the fork point
(valid WAL up to it, a superseded tail after it) and files a node gets while its receiver is not running
(repair, restarts) are decided here, from the newest ``<tli>.history`` the node holds.

A fork segment is set aside only once a later timeline on the history holds the same segment up to the
fork point (the new writer's copy of it starts with the old timeline's WAL up to the switch point, and
receivers stream it from the segment's start), so no valid WAL leaves the node with it. It must not read
or move files: callers pass names and data ends, and move what :func:`superseded` returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aurora_storage import lsn as lsnmod


class HistoryError(ValueError):
    """A history file that does not parse (PostgreSQL's "syntax error in history file")."""


@dataclass(frozen=True)
class Fork:
    timeline: int
    """An ancestor timeline."""
    end: int
    """The switch point: WAL of ``timeline`` at or past this LSN is not on the history."""


@dataclass(frozen=True)
class History:
    timeline: int
    """The timeline this history leads to (the newest one the node knows)."""
    forks: tuple[Fork, ...]
    """Its ancestors, oldest first."""

    def end_of(self, timeline: int) -> int | None:
        """Where ``timeline`` ended on this history; None for the current timeline or a non-ancestor."""
        for f in self.forks:
            if f.timeline == timeline:
                return f.end
        return None

    def after(self, timeline: int) -> list[int]:
        """Timelines of this history that follow ``timeline`` (its descendants, the current one last)."""
        path = [f.timeline for f in self.forks] + [self.timeline]
        return path[path.index(timeline) + 1 :] if timeline in path else []


def parse(timeline: int, text: str) -> History:
    """Parse ``<timeline>.history``: lines ``parentTLI <tab> switchpoint <tab> reason``; ``#`` comments."""
    forks: list[Fork] = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            tli, end = int(fields[0]), lsnmod.parse_lsn(fields[1])
        except (IndexError, ValueError) as err:
            raise HistoryError(f"{lsnmod.history_name(timeline)} line {n}: {line!r}") from err
        if tli >= timeline or (forks and (tli <= forks[-1].timeline or end < forks[-1].end)):
            raise HistoryError(f"{lsnmod.history_name(timeline)} line {n}: timelines out of order: {line!r}")
        forks.append(Fork(tli, end))
    return History(timeline, tuple(forks))


def newest(names: Iterable[lsnmod.WalName]) -> lsnmod.WalName | None:
    """The history file of the highest timeline among ``names`` (None when there is none)."""
    return max((n for n in names if n.kind is lsnmod.WalKind.HISTORY), default=None)


def off_history(name: lsnmod.WalName, history: History | None) -> bool:
    """Whether segment file ``name`` holds WAL of an ancestor timeline past where that timeline ended.

    Such a file is never wanted by repair (from peers or the archive): the later timeline's file of the
    same segment carries everything up to the switch point.
    """
    if history is None or name.kind is lsnmod.WalKind.HISTORY:
        return False
    end = history.end_of(name.timeline)
    return end is not None and name.end_lsn() > end


@dataclass(frozen=True)
class Verdict:
    superseded: tuple[str, ...]
    """Complete segment files to move aside now."""
    waiting: tuple[str, ...]
    """Fork segments kept until a later timeline's file of the same segment reaches the switch point."""


def superseded(held: Mapping[lsnmod.WalName, int], history: History | None) -> Verdict:
    """Decide which held complete segments the history supersedes.

    ``held``: every WAL file in the node's directory with the LSN its data reaches (a segment's end for a
    complete file, the written prefix's end for a ``.partial``). ``.partial`` files are never set aside:
    the receiver owns them (it zeroes a superseded ``.partial`` tail itself).
    """
    if history is None:
        return Verdict((), ())
    reach: dict[tuple[int, int], int] = {}
    for wn, data_end in held.items():
        if wn.kind is not lsnmod.WalKind.HISTORY:
            key = (wn.timeline, wn.segno)
            reach[key] = max(reach.get(key, 0), data_end)
    out: list[str] = []
    waiting: list[str] = []
    for wn in sorted(held):
        end = history.end_of(wn.timeline)
        if wn.kind is not lsnmod.WalKind.SEGMENT or end is None or wn.end_lsn() <= end:
            continue  # not past where its timeline ended (or the current timeline, or no ancestor)
        if wn.start_lsn() >= end:  # wholly after the fork: never happened on this history
            out.append(wn.filename)
        elif any(reach.get((t, wn.segno), 0) >= end for t in history.after(wn.timeline)):
            out.append(wn.filename)  # the fork segment, and a later timeline holds its valid prefix
        else:
            waiting.append(wn.filename)
    return Verdict(tuple(out), tuple(waiting))
