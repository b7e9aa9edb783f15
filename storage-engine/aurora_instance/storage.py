"""What the instance manager needs from the storage quorum, as a documented Protocol, plus an in-memory fake.

Why: promotion must read the WAL tail from any READ_QUORUM nodes and fence the old writer on enough nodes
that it can never again gather WRITE_QUORUM acknowledgements; and an instance without a data directory must
learn from the nodes whether the cluster already exists, so that it never initdb's one that does. The
storage engine (``aurora_storage``) owns the real nodes; this Protocol is the narrow seam the instance
manager codes against, so the decision and action logic is tested against ``MemoryStorage`` and run for
real against ``httpstorage.HttpStorage`` (the ``aurora_storage`` nodes, through their client library).
It must not decide anything: it reports and transports."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from aurora_api import contract
from aurora_storage import client, lsn

log = logging.getLogger(__name__)

# A deposed writer keeps at most N - FENCE_QUORUM nodes, which must be fewer than WRITE_QUORUM.
FENCE_QUORUM = contract.STORAGE_NODES - contract.WRITE_QUORUM + 1


class QuorumUnavailable(RuntimeError):
    """Fewer nodes answered than the operation needs; nothing may be decided from what did answer."""


class FenceResult(NamedTuple):
    """Outcome of raising the term: how many nodes now hold exactly it, and the highest term seen."""

    confirmed: int
    highest_term: int


class WalTail(NamedTuple):
    """The most advanced WAL among the nodes that answered: highest timeline, then highest end."""

    timeline: int
    end: int  # one past the last byte the node holds (may be mid-record)
    node: str
    answered: int  # how many nodes answered; always >= READ_QUORUM


class StorageIdentity(NamedTuple):
    """What the reachable nodes know about the cluster they store: whether it exists, and which it is."""

    answered: int  # how many nodes answered (unreachable ones are not counted)
    system_identifier: str | None  # PostgreSQL system identifier pinned by the most answering nodes
    highest_term: int  # highest term among the answering nodes (0: none was ever fenced)


def identity_of(answers: Iterable[tuple[int, str | None]]) -> StorageIdentity:
    """Summarise the answering nodes' ``(term, system_identifier)``. Nodes should never disagree on the
    identifier (a node refuses a writer of another system); if they do, that is logged and the identifier
    held by the most nodes wins (ties: the one seen at the highest term)."""
    got = list(answers)
    rank: dict[str, tuple[int, int]] = {}  # identifier -> (nodes holding it, highest term among them)
    for term, sysid in got:
        if sysid:
            count, top = rank.get(sysid, (0, 0))
            rank[sysid] = (count + 1, max(top, term))
    ranked = sorted(rank, key=lambda s: rank[s], reverse=True)
    if len(ranked) > 1:
        log.warning(
            "storage nodes disagree on the system identifier (%s); reporting %s",
            ", ".join(f"{s} on {rank[s][0]} nodes" for s in ranked), ranked[0],
        )  # fmt: skip
    return StorageIdentity(len(got), ranked[0] if ranked else None, max((t for t, _ in got), default=0))


class StorageQuorum(Protocol):
    """Consistency contract of the storage layer as seen from one PostgreSQL instance."""

    def fence(self, term: int, writer: str | None = None) -> FenceResult:
        """Raise every reachable node's term to ``term`` (never lower it); report confirmations.

        ``writer`` (libpq conninfo, no password) names the server to follow; None keeps the node's current
        one (used to fence before the new writer exists; calling again with the writer wakes the nodes).

        A confirming node has stopped acknowledging WAL from any writer of an older term *before* it confirms,
        and from then on streams only from a writer declaring ``contract.WRITER_TERM_GUC`` = ``term`` (so the
        nodes follow the new writer by themselves once it has promoted). Callers require ``FENCE_QUORUM``
        confirmations; fewer raises nothing here, the caller decides.
        """
        ...

    def tail(self, min_term: int = 0) -> WalTail:
        """The most advanced WAL among reachable nodes at ``min_term`` or later; QuorumUnavailable if fewer
        than READ_QUORUM qualify.

        Because every acknowledged commit is on WRITE_QUORUM nodes and READ_QUORUM + WRITE_QUORUM > N, the
        returned tail includes every acknowledged commit.
        """
        ...

    def fetch(self, name: str, dest: Path) -> bool:
        """Copy WAL file ``name`` (segment or ``.history``) to ``dest``; False if no reachable node has it.

        A complete segment may come from any node; an incomplete one is the ``.partial`` of the node that
        holds the most of it (same timeline => byte-identical prefixes), so replay reaches the quorum's end.
        """
        ...

    def trimmed(self, name: str) -> bool:
        """WAL file ``name`` is older than everything the reachable nodes hold (removed by retention)."""
        ...

    def fetch_range(self, timeline: int, start: int, end: int) -> bytes | None:
        """WAL bytes ``[start, end)`` (inside one segment) on ``timeline`` from a node holding them; None when
        none does. Used right after ``tail``: a promoting reader fetches only what its own receiver missed."""
        ...

    def identity(self) -> StorageIdentity:
        """Ask every node for its term and pinned system identifier; never raises (an unreachable node is
        simply not counted in ``answered``).

        A node holds a term > 0 once a writer fenced it (bootstrap fences at least FENCE_QUORUM nodes before
        the first commit) and pins the system identifier of the first writer it streamed from, so a term or
        an identifier on any node proves the cluster exists. Proving that it does *not* is the caller's
        business: it needs enough answers that a fenced node would have been among them.
        """
        ...


@dataclass
class MemoryNode:
    """One fake node: term, pinned system identifier, WAL files by name (``.partial`` for open ones)."""

    term: int = 0
    writer: str | None = None
    system_identifier: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    reachable: bool = True


@dataclass
class MemoryStorage:
    """In-memory ``StorageQuorum`` for unit tests: same contract, no processes."""

    nodes: list[MemoryNode] = field(
        default_factory=lambda: [MemoryNode() for _ in range(contract.STORAGE_NODES)]
    )

    def _up(self, min_term: int = 0) -> list[tuple[int, MemoryNode]]:
        up = [(i, n) for i, n in enumerate(self.nodes) if n.reachable and n.term >= min_term]
        if len(up) < contract.READ_QUORUM:
            raise QuorumUnavailable(f"{len(up)} of {len(self.nodes)} storage nodes reachable")
        return up

    def fence(self, term: int, writer: str | None = None) -> FenceResult:
        for node in self.nodes:
            if node.reachable and node.term <= term:
                node.term, node.writer = term, writer or node.writer
        up = [n for n in self.nodes if n.reachable]
        return FenceResult(sum(1 for n in up if n.term == term), max((n.term for n in up), default=0))

    def identity(self) -> StorageIdentity:
        return identity_of((n.term, n.system_identifier) for n in self.nodes if n.reachable)

    def tail(self, min_term: int = 0) -> WalTail:
        up = self._up(min_term)
        best: tuple[int, int, str] | None = None
        for i, node in up:
            for name, data in node.files.items():
                if not lsn.is_wal_name(name):
                    continue
                wal = lsn.parse_wal_name(name)
                if wal.kind is lsn.WalKind.HISTORY:
                    continue
                partial = wal.kind is lsn.WalKind.PARTIAL
                end = wal.start_lsn() + (len(data.rstrip(b"\0")) if partial else lsn.WAL_SEGMENT_SIZE)
                if best is None or (wal.timeline, end) > best[:2]:
                    best = (wal.timeline, end, f"storage_{i}")
        if best is None:
            raise QuorumUnavailable("no WAL on any reachable storage node")
        return WalTail(best[0], best[1], best[2], len(up))

    def fetch_range(self, timeline: int, start: int, end: int) -> bytes | None:
        segno = lsn.segment_of(start)
        name = lsn.segment_name(timeline, segno)
        offset = start - lsn.segment_start(segno)
        for _, node in self._up():
            for data in (node.files.get(name), node.files.get(name + ".partial")):
                if data is not None and len(data.rstrip(b"\0")) >= end - lsn.segment_start(segno):
                    return data[offset : end - lsn.segment_start(segno)]
        return None

    def trimmed(self, name: str) -> bool:
        return client.trimmed(name, [f for _, node in self._up() for f in node.files])

    def fetch(self, name: str, dest: Path) -> bool:
        up = self._up()
        for _, node in up:
            if name in node.files:
                dest.write_bytes(node.files[name])
                return True
        partials = [n.files[name + ".partial"] for _, n in up if name + ".partial" in n.files]
        if not partials:
            return False
        dest.write_bytes(max(partials, key=lambda d: len(d.rstrip(b"\0"))))
        return True
