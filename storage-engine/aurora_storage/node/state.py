"""The node's persisted identity: current term, the writer to follow, and the pinned cluster identity.

Why it exists: fencing only works if a node never forgets a term it accepted. The term is written with
fsync before the node acts on it (and before the HTTP call that set it returns). A wiped node starts
with term 0 and must be told again, or adopt one from enough peers (``quorum.adoptable_term``). It must
not decide whether a term is acceptable (``fencing.accept_term`` does).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from aurora_storage import fsutil


@dataclass(frozen=True)
class NodeState:
    term: int = 0
    # libpq conninfo of the writer of ``term`` (no application_name: the node adds its own).
    writer: str | None = None
    # PostgreSQL system identifier of the cluster, pinned on first successful stream or by the control plane.
    system_identifier: str | None = None

    def with_term(self, term: int, writer: str | None, system_identifier: str | None) -> NodeState:
        return replace(
            self,
            term=term,
            writer=writer if writer is not None else self.writer,
            system_identifier=system_identifier if system_identifier is not None else self.system_identifier,
        )


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> NodeState:
        try:
            return NodeState(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return NodeState()

    def save(self, state: NodeState) -> None:
        fsutil.write_atomic(self.path, json.dumps(asdict(state)).encode())
