"""Term fencing decisions: may this storage node stream from that writer? No I/O.

Why it exists: a deposed writer must never again collect four acknowledgements. Each node stores the
current term (set by the control plane, only ever increasing) and streams only from a writer that
declares exactly that term and belongs to the node's cluster. The decision is a pure function so that
every refusal reason is unit-tested. It must not connect to anything or read files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WriterFacts:
    """What a node observed about the server it was told to stream from."""

    system_identifier: str
    term: int | None
    in_recovery: bool
    cluster_name: str | None = None


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`: ``stream`` or not, and a sentence that is logged and reported."""

    stream: bool
    reason: str


def decide(
    node_term: int,
    pinned_system_identifier: str | None,
    node_cluster: str | None,
    writer: WriterFacts,
) -> Decision:
    """Decide whether to start a receiver against ``writer``."""
    if node_term <= 0:
        return Decision(False, "no term set by the control plane yet")
    if pinned_system_identifier is not None and writer.system_identifier != pinned_system_identifier:
        return Decision(
            False,
            f"wrong cluster identity: writer system identifier {writer.system_identifier} "
            f"!= this node's {pinned_system_identifier}",
        )
    if node_cluster and writer.cluster_name and writer.cluster_name != node_cluster:
        return Decision(
            False, f"wrong cluster name: writer says {writer.cluster_name!r}, node is {node_cluster!r}"
        )
    if writer.in_recovery:
        return Decision(False, "server is in recovery (not a writer)")
    if writer.term is None:
        return Decision(False, "writer declares no term (quorumdb.term unset)")
    if writer.term < node_term:
        return Decision(False, f"stale writer: writer term {writer.term} < node term {node_term}")
    if writer.term > node_term:
        return Decision(
            False, f"writer term {writer.term} is newer than node term {node_term}; awaiting control plane"
        )
    return Decision(True, f"streaming from writer at term {node_term}")


def accept_term(current: int, proposed: int) -> Decision:
    """Whether a term update from the control plane is accepted (terms never go backwards)."""
    if proposed < current:
        return Decision(False, f"term {proposed} is older than current term {current}")
    if proposed == current:
        return Decision(True, f"term {proposed} already current")
    return Decision(True, f"term advanced {current} -> {proposed}")
