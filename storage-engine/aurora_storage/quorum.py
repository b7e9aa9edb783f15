"""Quorum arithmetic for six storage nodes: write set, read set, durable position, no I/O.

Why it exists: the rules that make the product safe (W=4, R=3, W+R>N, a commit is durable once the fourth
node has flushed it) are small enough to get wrong in many places. They live here as pure functions over
plain values and are unit-tested exhaustively. It must not perform I/O or know about HTTP or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aurora_api import contract

SLOT_PREFIX = contract.STORAGE_SLOT_PREFIX


class QuorumError(RuntimeError):
    """Not enough nodes answered to form the quorum asked for."""


def node_name(ordinal: int) -> str:
    """Replication slot and ``application_name`` of storage node ``ordinal`` (``storage_3``)."""
    if not 0 <= ordinal < contract.STORAGE_NODES:
        raise ValueError(f"storage node ordinal {ordinal} outside 0..{contract.STORAGE_NODES - 1}")
    return f"{SLOT_PREFIX}{ordinal}"


def node_names(count: int = contract.STORAGE_NODES) -> list[str]:
    return [node_name(i) for i in range(count)]


def synchronous_standby_names(
    write_quorum: int = contract.WRITE_QUORUM, count: int = contract.STORAGE_NODES
) -> str:
    """The writer's ``synchronous_standby_names``: ``ANY 4 (storage_0,...,storage_5)``."""
    if not 0 < write_quorum <= count:
        raise ValueError(f"write quorum {write_quorum} impossible with {count} nodes")
    return f"ANY {write_quorum} ({','.join(node_names(count))})"


def durable_lsn(flush_lsns: Iterable[int | None], write_quorum: int = contract.WRITE_QUORUM) -> int | None:
    """Highest position flushed on at least ``write_quorum`` nodes (the W-th highest flush), or None.

    This is what PostgreSQL's ``ANY 4`` waits for; anything the writer flushed beyond it is committed
    locally but not yet durable in the product's sense.
    """
    known = sorted((lsn for lsn in flush_lsns if lsn is not None), reverse=True)
    if len(known) < write_quorum:
        return None
    return known[write_quorum - 1]


@dataclass(frozen=True)
class NodeView:
    """What one storage node reported about itself (a subset of its status document)."""

    ordinal: int
    healthy: bool
    term: int
    flush_lsn: int | None
    timeline: int | None


def pick_read_quorum(
    views: Sequence[NodeView], read_quorum: int = contract.READ_QUORUM, min_term: int = 0
) -> list[NodeView]:
    """Choose ``read_quorum`` healthy nodes on ``min_term`` or later, most advanced first.

    All healthy answering nodes are returned (at least ``read_quorum``): reading more than three only adds
    WAL, never removes it. Raises :class:`QuorumError` when fewer than ``read_quorum`` qualify.
    """
    eligible = [v for v in views if v.healthy and v.term >= min_term]
    if len(eligible) < read_quorum:
        raise QuorumError(
            f"read quorum needs {read_quorum} healthy storage nodes at term >= {min_term}, "
            f"have {len(eligible)} ({sorted(v.ordinal for v in eligible)})"
        )
    return sorted(eligible, key=lambda v: (v.timeline or 0, v.flush_lsn or 0), reverse=True)


def adoptable_term(
    peer_terms: Sequence[int], own_term: int, peers: int = contract.STORAGE_NODES - 1
) -> int | None:
    """Term a node that lost its state may adopt from its peers, or None when too few answered.

    The control plane counts a new term as established once it is stored on ``READ_QUORUM`` nodes (that
    is enough to fence: the old writer can then reach at most N-R = 3 < W nodes). A node that forgot its
    term must therefore hear from enough peers that at least one of them holds the newest term:
    with at most N-R nodes still on an old term, any ``N-R+1`` answers contain one that is not.
    """
    needed = contract.STORAGE_NODES - contract.READ_QUORUM + 1
    if len(peer_terms) < min(needed, peers):
        return None
    return max([own_term, *peer_terms])


def archive_owner(segno: int, count: int = contract.STORAGE_NODES) -> int:
    """Ordinal of the node that uploads segment ``segno`` (others only take over after a delay)."""
    return segno % count
